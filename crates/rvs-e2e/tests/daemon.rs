//! rvsd as an operator meets it: bad configuration, bad requests, reload,
//! a full connection table, and a clean stop that gives the ports back.

use std::time::Duration;

use rvs_e2e::topo::{RvsdOpts, TwoArm};
use rvs_e2e::{bin, run, Lab};

fn tools() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft"]);
}

fn text(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn config_errors_name_file_line_and_key() {
    tools();
    let lab = Lab::new();
    let f = lab.file(
        "bad.toml",
        "workers = 1\n\n[[netif]]\nname = \"dpdk0\"\niface = \"lan\"\nbakend = \"af_packet\"\n",
    );
    let p = f.to_string_lossy().into_owned();
    let o = run(&[bin("rvsd").to_str().unwrap_or("rvsd"), "-c", &p]);
    let (_, err) = text(&o);
    println!("rvsd -c bad.toml -> exit {:?}: {err}", o.status.code());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains(&format!("{p}:6")),
        "the message names file and line: {err}"
    );
    assert!(err.contains("bakend"), "the message names the key: {err}");
    let o = run(&[
        bin("rvsd").to_str().unwrap_or("rvsd"),
        "-c",
        "/nonexistent/rvs.toml",
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("/nonexistent/rvs.toml") && err.contains("cannot read"),
        "{err}"
    );
    // A port that does not exist: a clear message, non-zero exit, nothing left behind.
    let f = lab.file(
        "noif.toml",
        "[[netif]]\nname = \"dpdk0\"\niface = \"rvs-no-such-if\"\n",
    );
    let o = run(&[
        bin("rvsd").to_str().unwrap_or("rvsd"),
        "-c",
        f.to_str().unwrap_or(""),
    ]);
    let (_, err) = text(&o);
    println!(
        "rvsd with a missing interface -> exit {:?}: {err}",
        o.status.code()
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("rvs-no-such-if"), "{err}");
}

#[test]
fn bad_requests_are_refused_and_nothing_is_lost() {
    tools();
    let t = TwoArm::new(&RvsdOpts::default());
    t.tutorial_fnat();
    let before = t.ok("rvsadm", &["-S", "-n"]);
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "rvsadm",
            &["-A", "-t", "10.0.0.100:80", "-s", "rr"],
            "Service already exists",
        ),
        (
            "rvsadm",
            &["-a", "-t", "10.0.0.9:80", "-r", "192.168.100.2", "-b"],
            "Service not defined",
        ),
        (
            "rvsadm",
            &["-a", "-t", "10.0.0.100:80", "-r", "192.168.100.2", "-b"],
            "Destination already exists",
        ),
        (
            "rvsadm",
            &["-d", "-t", "10.0.0.100:80", "-r", "192.168.100.9"],
            "No such destination",
        ),
        ("rvsadm", &["-D", "-t", "10.0.0.9:80"], "No such service"),
        (
            "rvsadm",
            &["-A", "-t", "10.0.0.100:81", "-s", "fastest"],
            "fastest",
        ),
        (
            "rvsadm",
            &[
                "--add-laddr",
                "-z",
                "192.168.100.201",
                "-t",
                "10.0.0.100:80",
                "-F",
                "dpdk9",
            ],
            "dpdk9",
        ),
        (
            "rvsip",
            &["addr", "add", "10.0.0.7/32", "dev", "eth9"],
            "eth9",
        ),
        (
            "rvsip",
            &["route", "add", "10.9.0.0/16", "dev", "dpdk7"],
            "dpdk7",
        ),
        // An address outside every route: a gateway nothing on dpdk1 reaches.
        (
            "rvsip",
            &[
                "route",
                "add",
                "default",
                "via",
                "172.31.0.1",
                "dev",
                "dpdk1",
            ],
            "gateway 172.31.0.1",
        ),
        (
            "rvsip",
            &[
                "route",
                "add",
                "10.0.9.0/24",
                "dev",
                "dpdk1",
                "scope",
                "kni_host",
            ],
            "32",
        ),
    ];
    for (tool, args, want) in cases {
        let o = if *tool == "rvsadm" {
            t.rvsadm(args)
        } else {
            t.rvsip(args)
        };
        let (_, err) = text(&o);
        println!(
            "{tool} {} -> exit {:?}: {}",
            args.join(" "),
            o.status.code(),
            err.trim()
        );
        assert_eq!(
            o.status.code(),
            Some(1),
            "{tool} {args:?} must fail with exit 1: {err}"
        );
        assert!(
            err.contains(want),
            "{tool} {args:?}: expected '{want}' in: {err}"
        );
    }
    // Usage errors: exit 2 and never reach the daemon.
    let o = t.rvsadm(&["-A", "-t", "10.0.0.100:99999"]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    // A malformed request on the socket itself.
    let o = run(&[
        "python3",
        "-c",
        &format!(
            "import socket;s=socket.socket(socket.AF_UNIX);s.connect('{}');s.sendall(b'this is not json\\n');print(s.recv(4096).decode())",
            t.socket
        ),
    ]);
    let (out, _) = text(&o);
    println!("raw garbage on the control socket -> {}", out.trim());
    assert!(out.contains("malformed request"), "{out}");
    // The daemon is still there, with everything it had.
    assert_eq!(
        t.ok("rvsadm", &["-S", "-n"]),
        before,
        "configuration changed after refused requests"
    );
    let body = t
        .lab
        .curl("client", "http://10.0.0.100/")
        .expect("service still works");
    assert!(body.contains("192.168.100.200"), "{body}");
}

/// The `rvsadm -lnc` line of the UDP flow from client port 40000, if listed.
fn udp_flow(t: &TwoArm) -> Option<String> {
    t.ok("rvsadm", &["-lnc"])
        .lines()
        .find(|l| l.starts_with("UDP") && l.contains("10.0.0.48:40000 "))
        .map(str::to_string)
}

/// The expire column of an `-lnc` line ("mm:ss") in seconds.
fn expire_s(line: &str) -> u64 {
    let e = line.split_whitespace().nth(1).unwrap_or("");
    let (m, s) = e.split_once(':').unwrap_or(("", ""));
    m.parse::<u64>().unwrap_or(u64::MAX) * 60 + s.parse::<u64>().unwrap_or(u64::MAX)
}

#[test]
fn reload_keeps_connections_and_bad_reload_keeps_config() {
    tools();
    let mut t = TwoArm::new(&RvsdOpts::default());
    t.tutorial_fnat();
    // A UDP service and an echo server, to watch one flow's timeout.
    t.udp_fnat_service(&["192.168.100.2:53"]);
    let udp = bin("rvs-udp").to_string_lossy().into_owned();
    t.lab
        .spawn("rs1", "echo-rs1", &[&udp, "echo", "0.0.0.0:53", "rs1"], &[]);
    t.lab.wait_udp_port("rs1", 53, Duration::from_secs(5));
    let probe = |t: &TwoArm| {
        let o = t.lab.exec(
            "client",
            &[
                &udp,
                "probe",
                "--sources",
                "1",
                "--from-port",
                "40000",
                "10.0.0.100:53",
            ],
        );
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(out.contains("replies 1"), "no echo through rvs: {out}");
    };
    probe(&t);
    let _ = t
        .lab
        .curl("client", "http://10.0.0.100/")
        .expect("before reload");
    let conns_before = t.ok("rvsadm", &["-lnc"]);
    let flow = udp_flow(&t).expect("the UDP flow is listed");
    assert!(
        expire_s(&flow) > 290,
        "the default UDP timeout is 300 s: {flow}"
    );
    let pid = t.rvsd_proc().pid();
    // A valid new file: timeouts change, connections stay.
    let conf = std::fs::read_to_string(&t.conf).unwrap_or_default();
    std::fs::write(
        &t.conf,
        format!("{conf}\n[timeouts]\ntcp_time_wait = 20\nudp = 4\n"),
    )
    .expect("write conf");
    t.rvsd_proc().signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        t.rvsd_log().contains("reloaded"),
        "no reload in the log:\n{}",
        t.rvsd_log()
    );
    let conns_after = t.ok("rvsadm", &["-lnc"]);
    println!("connections before reload:\n{conns_before}after:\n{conns_after}");
    assert_eq!(
        conns_before.lines().count(),
        conns_after.lines().count(),
        "a reload must not drop connections"
    );
    // The next datagram of the same flow takes the new UDP timeout...
    probe(&t);
    let flow = udp_flow(&t).expect("the UDP flow is still listed");
    println!("after a datagram under the new timeout: {flow}");
    assert!(
        expire_s(&flow) <= 4,
        "the flow must expire within the new 4 s: {flow}"
    );
    // ...and the flow expires on that schedule, not after 300 s.
    std::thread::sleep(Duration::from_millis(5500));
    assert_eq!(udp_flow(&t), None, "the flow outlived its new 4 s timeout");
    // A new TCP connection gets the new TIME_WAIT (20 s, the default is 7 s).
    let _ = t
        .lab
        .curl("client", "http://10.0.0.100/")
        .expect("after reload");
    let lnc = t.ok("rvsadm", &["-lnc"]);
    let longest = lnc
        .lines()
        .filter(|l| l.starts_with("TCP") && l.contains("TIME_WAIT"))
        .map(expire_s)
        .max()
        .unwrap_or(0);
    assert!(longest > 7, "no TIME_WAIT over the old 7 s:\n{lnc}");
    // A broken file: rvsd logs the error and keeps running on the last good config.
    std::fs::write(&t.conf, "workers = [[[\n").expect("write conf");
    t.rvsd_proc().signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(t.rvsd_proc().alive(), "rvsd died on a bad reload");
    assert_eq!(t.rvsd_proc().pid(), pid);
    assert!(t.rvsd_log().contains("reload failed"), "{}", t.rvsd_log());
    let body = t
        .lab
        .curl("client", "http://10.0.0.100/")
        .expect("service after a failed reload");
    assert!(body.starts_with("rs"), "{body}");
    std::fs::write(&t.conf, conf).expect("restore conf");
}

#[test]
fn full_connection_table_is_counted_not_fatal() {
    tools();
    let t = TwoArm::new(&RvsdOpts {
        conn_capacity: 2,
        ..Default::default()
    });
    t.tutorial_fnat();
    let mut ok = 0;
    let mut failed = 0;
    for _ in 0..4 {
        match t.lab.exec(
            "client",
            &["curl", "-sS", "--max-time", "2", "http://10.0.0.100/"],
        ) {
            o if o.status.success() => ok += 1,
            _ => failed += 1,
        }
    }
    let s = t.ok("rvsip", &["-s", "link", "show"]);
    println!("{ok} answered, {failed} refused\n$ rvsip -s link show\n{s}");
    assert_eq!(ok, 2, "two connections fit a table of two");
    assert!(failed >= 1);
    assert!(
        s.contains("conn_table_full"),
        "the drop reason must be counted: {s}"
    );
    // Still serving once the table drains is the job of the timers; still
    // answering the control socket is checked here.
    assert!(t.rvsadm(&["-ln"]).status.success());
}

#[test]
fn sigterm_gives_the_ports_back() {
    tools();
    let mut t = TwoArm::new(&RvsdOpts {
        lb_addrs: vec![("wan".into(), "10.0.0.250/16".into())],
        ..Default::default()
    });
    t.tutorial_fnat();
    let show = |t: &TwoArm, dev: &str| {
        String::from_utf8_lossy(
            &t.lab
                .exec("lb", &["ip", "-o", "addr", "show", "dev", dev])
                .stdout,
        )
        .into_owned()
    };
    let tables = |t: &TwoArm| {
        String::from_utf8_lossy(&t.lab.exec("lb", &["nft", "list", "tables"]).stdout).into_owned()
    };
    let links = |t: &TwoArm| {
        String::from_utf8_lossy(&t.lab.exec("lb", &["ip", "-o", "link"]).stdout).into_owned()
    };
    assert!(
        !show(&t, "wan").contains("10.0.0.250"),
        "rvsd must take the kernel's address off a port it owns"
    );
    assert!(
        tables(&t).contains("rvs_wan"),
        "ingress table missing: {}",
        tables(&t)
    );
    assert!(links(&t).contains("dpdk1.kni"));
    t.rvsd_proc().signal("TERM");
    let code = t.rvsd_proc().wait_exit(Duration::from_secs(10));
    println!("rvsd exit: {code:?}\nlog:\n{}", t.rvsd_log());
    assert_eq!(code, Some(0), "clean exit on SIGTERM");
    assert!(
        show(&t, "wan").contains("10.0.0.250/16"),
        "address not restored: {}",
        show(&t, "wan")
    );
    assert!(
        !tables(&t).contains("rvs_"),
        "ingress table left behind: {}",
        tables(&t)
    );
    assert!(
        !links(&t).contains(".kni"),
        "kni device left behind: {}",
        links(&t)
    );
    assert!(
        !std::path::Path::new(&t.socket).exists(),
        "control socket left behind"
    );
}

#[test]
fn save_clear_restore_round_trips() {
    tools();
    let t = TwoArm::new(&RvsdOpts::default());
    t.tutorial_fnat();
    t.ok(
        "rvsadm",
        &["-A", "-u", "10.0.0.100:53", "-s", "wrr", "-p", "120"],
    );
    t.ok(
        "rvsadm",
        &[
            "-a",
            "-u",
            "10.0.0.100:53",
            "-r",
            "192.168.100.2",
            "-b",
            "-w",
            "3",
        ],
    );
    t.ok(
        "rvsadm",
        &[
            "--add-laddr",
            "-z",
            "192.168.100.201",
            "-u",
            "10.0.0.100:53",
            "-F",
            "dpdk0",
        ],
    );
    let saved = t.ok("rvsadm", &["-S", "-n"]);
    println!("$ rvsadm -S -n\n{saved}");
    assert!(saved.contains("-A -t 10.0.0.100:80 -s rr"), "{saved}");
    assert!(
        saved.contains("-a -t 10.0.0.100:80 -r 192.168.100.2:80 -b -w 1"),
        "{saved}"
    );
    t.ok("rvsadm", &["-C"]);
    let empty = t.ok("rvsadm", &["-S", "-n"]);
    assert!(empty.trim().is_empty(), "-C must leave no service: {empty}");
    let mut child = std::process::Command::new(bin("rvsadm"))
        .arg("-R")
        .env("RVS_SOCKET", &t.socket)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("rvsadm -R");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(saved.as_bytes()).expect("feed -R");
    }
    assert!(
        child.wait().expect("rvsadm -R").success(),
        "rvsadm -R failed"
    );
    let again = t.ok("rvsadm", &["-S", "-n"]);
    assert_eq!(again, saved, "-S after -R must equal the saved text");
    // And the restored service carries traffic.
    let body = t
        .lab
        .curl("client", "http://10.0.0.100/")
        .expect("curl after restore");
    assert!(body.contains("192.168.100.20"), "{body}");
}

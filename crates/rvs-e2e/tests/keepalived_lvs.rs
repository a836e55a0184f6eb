//! rvs-keepalived and the virtual servers: the master alone with the
//! tutorial's keepalived.conf and its real servers (nginx on 192.168.100.2
//! and .3): the virtual server it applies to rvsd serves through the VIP,
//! TCP_CHECK sets a dead real server to weight 0 and back, a reload of the
//! same file changes nothing in rvsd.

mod ka_common;

use std::time::Duration;

use ka_common::*;
use rvs_e2e::Lab;

/// The master alone with the tutorial's real servers: n1, the client and
/// rs1/rs2 (192.168.100.2 and .3, nginx) on the LAN switch; rvsd routes the
/// LAN (`rvsip route add 192.168.100.0/24 dev dpdk0`, as in the tutorial).
/// Returns the lab and the nginx processes of rs1 and rs2.
fn master_with_real_servers(conf: &str) -> (Pair, [usize; 2]) {
    rvs_e2e::require_tools(&["ip", "curl", "nginx", "python3"]);
    tools();
    let mut lab = Lab::new();
    for n in ["n1", "sw", "client", "rs1", "rs2"] {
        lab.add_ns(n);
    }
    lab.veth("n1", "lan", "sw", "p-n1");
    lab.veth("client", "eth0", "sw", "p-c");
    lab.veth("rs1", "eth0", "sw", "p-rs1");
    lab.veth("rs2", "eth0", "sw", "p-rs2");
    lab.must_in("sw", &["ip", "link", "add", "br0", "type", "bridge"]);
    for p in ["p-n1", "p-c", "p-rs1", "p-rs2"] {
        lab.must_in("sw", &["ip", "link", "set", p, "master", "br0"]);
    }
    lab.must_in("sw", &["ip", "link", "set", "br0", "up"]);
    for (ns, a) in [
        ("client", "192.168.100.48"),
        ("rs1", "192.168.100.2"),
        ("rs2", "192.168.100.3"),
    ] {
        lab.must_in(
            ns,
            &["ip", "addr", "add", &format!("{a}/24"), "dev", "eth0"],
        );
    }
    let nginx = [lab.nginx("rs1", "rs1"), lab.nginx("rs2", "rs2")];
    let n1 = node(&mut lab, "n1", "192.168.100.11", conf);
    n1.rvsd.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    let mut p = Pair {
        lab,
        nodes: vec![n1],
    };
    p.start_keepalived(1);
    if wait_for(Duration::from_secs(6), || {
        has_vip(&p.nodes[0]) == Some(true)
    })
    .is_none()
    {
        panic!("n1 did not take the VIP within 6 s\n{}", p.logs());
    }
    (p, nginx)
}

/// `rvsadm -ln` of node 1.
fn ln(p: &Pair) -> String {
    p.nodes[0].rvsd.ok("rvsadm", &["-ln"])
}

/// The weight of real server `rs` in `rvsadm -ln`.
fn weight_of(ln: &str, rs: &str) -> Option<u32> {
    let l = ln.lines().find(|l| l.contains(&format!("-> {rs}:80 ")))?;
    l.split_whitespace().nth(3)?.parse().ok()
}

/// `n` requests to the VIP from the client: who answered each.
fn curl_vip(p: &Pair, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let body = p
                .lab
                .curl("client", &format!("http://{VIP}/"))
                .unwrap_or_else(|e| panic!("curl {i} through the VIP failed: {e}"));
            body.split_whitespace().next().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn the_tutorials_virtual_server_is_applied_and_serves() {
    let (mut p, _) = master_with_real_servers(&tutorial_conf());
    let applied = wait_for(Duration::from_secs(5), || {
        let l = ln(&p);
        weight_of(&l, "192.168.100.2") == Some(100) && weight_of(&l, "192.168.100.3") == Some(100)
    });
    let l = ln(&p);
    println!("n1$ rvsadm -ln\n{l}");
    assert!(applied.is_some(), "{l}\n{}", p.logs());
    let lines: Vec<&str> = l.lines().map(str::trim_end).collect();
    assert_eq!(lines[3], "TCP  192.168.100.254:80 rr", "{l}");
    assert!(
        lines[4].starts_with("  -> 192.168.100.2:80             FullNat 100 "),
        "{l}"
    );
    assert!(
        lines[5].starts_with("  -> 192.168.100.3:80             FullNat 100 "),
        "{l}"
    );
    let g = p.nodes[0].rvsd.ok("rvsadm", &["-G"]);
    println!("n1$ rvsadm -G\n{g}");
    let gl: Vec<Vec<&str>> = g.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(gl[1], ["192.168.100.254:80", "2"], "{g}");
    assert_eq!(gl[2][0], "192.168.100.200", "{g}");
    assert_eq!(gl[3][0], "192.168.100.201", "{g}");

    let served = curl_vip(&p, 6);
    println!("client$ curl http://{VIP}/ x6 -> {served:?}");
    assert!(
        served.iter().any(|s| s == "rs1") && served.iter().any(|s| s == "rs2"),
        "both real servers answer through the VIP: {served:?}"
    );
    let log = p.keepalived_log(1);
    assert!(
        log.contains("virtual servers: add service TCP 192.168.100.254:80"),
        "{log}"
    );

    // SIGTERM: as keepalived, the virtual servers are removed from rvsd.
    p.signal(1, "TERM");
    let i = p.nodes[0].keepalived.expect("started");
    assert_eq!(p.lab.proc(i).wait_exit(Duration::from_secs(5)), Some(0));
    let l = ln(&p);
    assert!(!l.contains("192.168.100.254:80"), "removed on exit:\n{l}");
}

#[test]
fn tcp_check_inhibits_a_dead_real_server_and_brings_it_back() {
    let (mut p, nginx) = master_with_real_servers(&tutorial_conf());
    let both = wait_for(Duration::from_secs(5), || {
        let l = ln(&p);
        weight_of(&l, "192.168.100.2") == Some(100) && weight_of(&l, "192.168.100.3") == Some(100)
    });
    assert!(both.is_some(), "{}\n{}", ln(&p), p.logs());
    // Both checkers have passed at least once (warmup: up to delay_loop).
    std::thread::sleep(Duration::from_secs(3));
    assert!(!p.keepalived_log(1).contains(": down"), "{}", p.logs());

    // nginx of rs1 dies: refused connections; the checker fails its first
    // attempt and nb_sock_retry (2) retries, delay_before_retry (1 s) apart.
    p.lab.proc(nginx[0]).signal("KILL");
    // delay_loop + retries × (connect_timeout + delay_before_retry) + slack.
    let limit = Duration::from_secs(3 + 2 * (3 + 1) + 2);
    let took = wait_for(limit, || weight_of(&ln(&p), "192.168.100.2") == Some(0));
    let l = ln(&p);
    println!("n1$ rvsadm -ln\n{l}");
    let took = took.unwrap_or_else(|| {
        panic!(
            "rs1 not inhibited within {limit:?}\n{l}\n{}",
            p.keepalived_log(1)
        )
    });
    println!("rs1 at weight 0 {took:?} after its nginx was killed");
    assert_eq!(weight_of(&l, "192.168.100.3"), Some(100), "{l}");
    let log = p.keepalived_log(1);
    assert!(
        log.contains("checker 0 of real server 192.168.100.2 port 80: down"),
        "{log}"
    );
    // One weight edit, nothing deleted.
    assert!(
        log.contains(
            "virtual servers: set real server 192.168.100.2:80 of TCP 192.168.100.254:80 to weight 0"
        ),
        "{log}"
    );
    assert!(!log.contains("delete"), "{log}");
    let served = curl_vip(&p, 4);
    println!("client$ curl http://{VIP}/ x4 -> {served:?}");
    assert!(served.iter().all(|s| s == "rs2"), "{served:?}");

    // nginx of rs1 is back: UP at its next attempt (delay_loop).
    p.lab.nginx("rs1", "rs1");
    let limit = Duration::from_secs(3 + 3 + 2);
    let took = wait_for(limit, || weight_of(&ln(&p), "192.168.100.2") == Some(100));
    let took = took.unwrap_or_else(|| {
        panic!(
            "rs1 not back within {limit:?}\n{}\n{}",
            ln(&p),
            p.keepalived_log(1)
        )
    });
    println!("rs1 at weight 100 {took:?} after its nginx came back");
    let served = curl_vip(&p, 6);
    println!("client$ curl http://{VIP}/ x6 -> {served:?}");
    assert!(
        served.iter().any(|s| s == "rs1") && served.iter().any(|s| s == "rs2"),
        "{served:?}"
    );
}

/// A client that keeps one connection to the VIP: a request, then, once
/// `go` exists, a second request on the same connection; prints both
/// answers' first lines.
const KEEP_CONN: &str = r#"
import os, socket, sys, time
go = sys.argv[1]
s = socket.create_connection(("192.168.100.254", 80), timeout=5)
def ask():
    s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"\n") and len(data) < 60:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print("answer:", data.split(b"\r\n\r\n", 1)[-1].decode().strip(), flush=True)
ask()
while not os.path.exists(go):
    time.sleep(0.05)
ask()
"#;

#[test]
fn sighup_with_the_same_file_changes_nothing_in_rvsd() {
    let (mut p, _) = master_with_real_servers(&tutorial_conf());
    let applied = wait_for(Duration::from_secs(5), || {
        weight_of(&ln(&p), "192.168.100.3") == Some(100)
    });
    assert!(applied.is_some(), "{}\n{}", ln(&p), p.logs());
    // The checkers have passed at least once (warmup: up to delay_loop).
    std::thread::sleep(Duration::from_secs(3));
    let script = p.lab.file("keep_conn.py", KEEP_CONN);
    let go = p.lab.dir.join("go");
    let (s, g) = (
        script.to_string_lossy().into_owned(),
        go.to_string_lossy().into_owned(),
    );
    let client = p
        .lab
        .spawn("client", "keep-conn", &["python3", "-u", &s, &g], &[]);
    let first = wait_for(Duration::from_secs(5), || {
        p.lab.proc(client).log().contains("answer:")
    });
    assert!(first.is_some(), "{}", p.lab.proc(client).log());
    let before = ln(&p);
    println!("n1$ rvsadm -ln (before)\n{before}");
    assert!(before.contains("ActiveConn"), "{before}");

    let log_before = p.keepalived_log(1);
    p.signal(1, "HUP");
    // The checkers restart with their health; leave them a round.
    let reloaded = wait_for(Duration::from_secs(2), || {
        p.keepalived_log(1).contains("SIGHUP: reloading")
    });
    assert!(reloaded.is_some(), "{}", p.logs());
    std::thread::sleep(Duration::from_secs(4));
    let after = ln(&p);
    println!("n1$ rvsadm -ln (after)\n{after}");
    assert_eq!(before, after, "rvsadm -ln changed across the reload");
    let log = p.keepalived_log(1);
    let since = &log[log_before.len()..];
    println!("rvs-keepalived after SIGHUP:\n{since}");
    assert!(
        !since.contains("virtual servers:"),
        "a reload of the same file sent requests to rvsd:\n{since}"
    );
    // The connection made before the reload still works.
    std::fs::write(&go, "").expect("go");
    let i = client;
    assert_eq!(
        p.lab.proc(i).wait_exit(Duration::from_secs(5)),
        Some(0),
        "{}",
        p.lab.proc(i).log()
    );
    let out = p.lab.proc(i).log();
    println!("client$ python3 keep_conn.py\n{out}");
    assert_eq!(out.matches("answer: rs").count(), 2, "{out}");
}

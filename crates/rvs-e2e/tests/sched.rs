//! Case 7: schedulers seen from outside, with real connections.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use rvs_e2e::topo::{RvsdOpts, TwoArm};

fn tools() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft"]);
}

fn fnat_service(t: &TwoArm, sched: &str, weights: [u32; 2]) {
    t.ok("rvsip", &["addr", "add", "10.0.0.100/32", "dev", "dpdk1"]);
    t.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]);
    t.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    t.ok("rvsadm", &["-A", "-t", "10.0.0.100:80", "-s", sched]);
    for (i, w) in weights.iter().enumerate() {
        let rs = format!("192.168.100.{}", i + 2);
        t.ok(
            "rvsadm",
            &[
                "-a",
                "-t",
                "10.0.0.100:80",
                "-r",
                &rs,
                "-b",
                "-w",
                &w.to_string(),
            ],
        );
    }
    t.ok(
        "rvsadm",
        &[
            "--add-laddr",
            "-z",
            "192.168.100.200",
            "-t",
            "10.0.0.100:80",
            "-F",
            "dpdk0",
        ],
    );
}

/// `n` requests, each on a new connection; the RS label of each answer.
fn many(t: &TwoArm, n: usize, from: Option<&str>) -> Vec<String> {
    let url = format!("http://10.0.0.100/?[1-{n}]");
    let mut args = vec!["curl", "-sS", "--max-time", "60", "-H", "Connection: close"];
    if let Some(ip) = from {
        args.extend(["--interface", ip]);
    }
    args.push(&url);
    let o = t.lab.exec("client", &args);
    assert!(
        o.status.success(),
        "curl: {}\nrvsd log:\n{}",
        String::from_utf8_lossy(&o.stderr),
        t.rvsd_log()
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let v: Vec<String> = out
        .lines()
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(v.len(), n, "every request must be answered");
    v
}

#[test]
fn wrr_follows_weights_over_1000_requests() {
    tools();
    let t = TwoArm::new(&RvsdOpts::default());
    fnat_service(&t, "wrr", [3, 1]);
    let v = many(&t, 1000, None);
    let rs1 = v.iter().filter(|s| *s == "rs1").count();
    let rs2 = v.iter().filter(|s| *s == "rs2").count();
    println!("wrr 3:1 over 1000 requests: rs1 {rs1}, rs2 {rs2}");
    assert_eq!(rs1 + rs2, 1000);
    assert!(
        (700..=800).contains(&rs1),
        "rs1 should get 75% ± 5%, got {rs1}"
    );
}

#[test]
fn hashing_schedulers_keep_a_client_on_one_rs() {
    tools();
    for sched in ["mh", "conhash", "sh"] {
        let t = TwoArm::new(&RvsdOpts::default());
        fnat_service(&t, sched, [1, 1]);
        // Several client addresses, each making several connections.
        let mut seen = std::collections::BTreeSet::new();
        for k in 0..8 {
            let ip = format!("10.0.0.{}", 60 + k);
            t.lab.must_in(
                "client",
                &["ip", "addr", "add", &format!("{ip}/16"), "dev", "eth0"],
            );
            let v = many(&t, 10, Some(&ip));
            let first = v[0].clone();
            assert!(
                v.iter().all(|s| *s == first),
                "{sched}: client {ip} moved between RS: {v:?}"
            );
            println!("{sched}: client {ip} -> {first} (10 connections)");
            seen.insert(first);
        }
        assert_eq!(
            seen.len(),
            2,
            "{sched}: 8 clients should spread over both RS, saw {seen:?}"
        );
    }
}

#[test]
fn weight_zero_drains() {
    tools();
    let t = TwoArm::new(&RvsdOpts::default());
    fnat_service(&t, "rr", [1, 1]);
    // A keep-alive connection that stays open across the weight change.
    let script = concat!(
        "import http.client,sys\n",
        "c=http.client.HTTPConnection('10.0.0.100',80,timeout=10)\n",
        "for _ in range(2):\n",
        "    c.request('GET','/');print(c.getresponse().read().decode().strip(),flush=True);sys.stdin.readline()\n",
    );
    let ns = t.lab.ns("client");
    let mut py = Command::new("ip")
        .args(["netns", "exec", &ns, "python3", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(py.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("first answer");
    let (rs, _) = first.trim().split_once(' ').expect("answer");
    let rip = if rs == "rs1" {
        "192.168.100.2"
    } else {
        "192.168.100.3"
    };
    println!(
        "long connection on {rs}; setting its weight to 0\n{}",
        t.ok("rvsadm", &["-lnc"])
    );
    t.ok(
        "rvsadm",
        &["-e", "-t", "10.0.0.100:80", "-r", rip, "-b", "-w", "0"],
    );
    let v = many(&t, 20, None);
    println!("20 new connections after -w 0: {v:?}");
    assert!(
        v.iter().all(|s| s != rs),
        "new connections must avoid the quiescent RS"
    );
    let mut stdin = py.stdin.take().expect("stdin");
    stdin.write_all(b"\n").expect("go on");
    let mut second = String::new();
    out.read_line(&mut second).expect("second answer");
    println!("the long connection answers again: {}", second.trim());
    assert!(
        second.starts_with(rs),
        "the existing connection must keep its RS: {second}"
    );
    // Weight 0, and the long connection still counted as active on it.
    let ln = t.ok("rvsadm", &["-ln"]);
    println!("{ln}");
    assert!(
        ln.contains(&format!("{rip}:80             FullNat 0      1 ")),
        "{ln}"
    );
    let _ = stdin.write_all(b"\n");
    let _ = py.wait();
}

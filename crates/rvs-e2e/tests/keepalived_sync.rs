//! A failover that keeps an established connection: two rvs nodes with
//! the tutorial's keepalived.conf (the backup with `state BACKUP` and
//! `priority 80`) plus `lvs_sync_daemon sync VI_1 id 7` in global_defs, a
//! kernel veth `sync` between them (not taken over by rvsd), the real
//! servers of keepalived_lvs.rs (nginx on 192.168.100.2 and .3). A client
//! keeps ONE keep-alive HTTP connection through the VIP, a request every
//! 50 ms; the master's rvsd and rvs-keepalived are killed (SIGKILL). With
//! sync, the backup takes the VIP and the local addresses (gratuitous ARP)
//! and the same connection keeps getting answers, no request failing; with
//! the same run without `lvs_sync_daemon`, the connection breaks.
//!
//! The longest gap between two answers is printed (it is mostly VRRP's
//! Master_Down_Interval, 3 × advert_int + skew, plus the client's TCP
//! retransmission backoff); see BENCHMARKS.md. `KA_SYNC_DEBUG=1` prints
//! the logs, the new master's connections and sync counters after each run.

mod ka_common;

use std::time::Duration;

use ka_common::*;
use rvs_e2e::Lab;

/// How long the client runs, and when (after it started) the master dies.
const RUN_S: f64 = 13.0;
const KILL_AFTER: Duration = Duration::from_millis(1500);

/// One keep-alive connection, a GET every 50 ms; a request without an
/// answer within 10 s (longer than the failover plus TCP's retransmission
/// backoff) fails, and the client stops at its first failure (the
/// connection is gone: it does not open another).
const CLIENT: &str = r#"
import http.client, sys, time
vip, run_s = sys.argv[1], float(sys.argv[2])
c = http.client.HTTPConnection(vip, 80, timeout=10)
c.auto_open = 0  # never open a second connection
c.connect()
me = c.sock.getsockname()
print(f"client connection from {me[0]}:{me[1]}", flush=True)
start = time.monotonic()
last = start
ok, fail, gap, gap_at, port = 0, 0, 0.0, 0.0, None
while time.monotonic() - start < run_s:
    t = time.monotonic()
    try:
        c.request("GET", "/")
        body = c.getresponse().read().decode()
    except Exception as e:
        fail += 1
        print(f"FAIL at {time.monotonic() - start:.3f} s: {type(e).__name__}: {e}", flush=True)
        break
    now = time.monotonic()
    if now - last > gap:
        gap, gap_at = now - last, last - start
    last = now
    ok += 1
    if ok == 1:
        print(f"FIRST answer at {now - start:.3f} s: {body.strip()}", flush=True)
    # The real server sees the local address and port: one connection, one port.
    p = body.split()[1]
    if port is not None and p != port:
        print(f"NEW CONNECTION at {now - start:.3f} s: {port} -> {p}", flush=True)
    if c.sock is None or c.sock.getsockname() != me:
        print(f"NEW CONNECTION at {now - start:.3f} s: the client's socket changed", flush=True)
    port = p
    time.sleep(max(0.0, 0.05 - (now - t)))
print(f"RESULT ok={ok} fail={fail} max_gap_ms={gap * 1000:.0f} gap_from_s={gap_at:.3f} last_answer_s={last - start:.3f} via={port}", flush=True)
"#;

/// The tutorial's file (master or backup) with `lvs_sync_daemon` if `sync`.
fn conf(master: bool, sync: bool) -> String {
    let c = if master {
        tutorial_conf()
    } else {
        backup_conf()
    };
    if !sync {
        return c;
    }
    let c2 = c.replacen(
        "router_id DPVS_DEVEL",
        "router_id DPVS_DEVEL\nlvs_sync_daemon sync VI_1 id 7",
        1,
    );
    assert_ne!(c, c2, "global_defs has router_id");
    c2
}

/// Both nodes, the client and the real servers on the LAN switch, the sync
/// veth between the nodes; n1 master, n2 backup, both real servers healthy
/// on both.
fn lab(sync: bool) -> Pair {
    rvs_e2e::require_tools(&["ip", "nginx", "python3", "arping"]);
    let mut lab = Lab::new();
    for n in ["n1", "n2", "sw", "client", "rs1", "rs2"] {
        lab.add_ns(n);
    }
    lab.veth("n1", "lan", "sw", "p-n1");
    lab.veth("n2", "lan", "sw", "p-n2");
    lab.veth("client", "eth0", "sw", "p-c");
    lab.veth("rs1", "eth0", "sw", "p-rs1");
    lab.veth("rs2", "eth0", "sw", "p-rs2");
    lab.veth("n1", "sync", "n2", "sync");
    lab.must_in("sw", &["ip", "link", "add", "br0", "type", "bridge"]);
    for p in ["p-n1", "p-n2", "p-c", "p-rs1", "p-rs2"] {
        lab.must_in("sw", &["ip", "link", "set", p, "master", "br0"]);
    }
    lab.must_in("sw", &["ip", "link", "set", "br0", "up"]);
    for (ns, a) in [
        ("client", "192.168.100.48/24"),
        ("rs1", "192.168.100.2/24"),
        ("rs2", "192.168.100.3/24"),
        ("n1", "10.9.0.1/24"),
        ("n2", "10.9.0.2/24"),
    ] {
        let dev = if ns.starts_with('n') { "sync" } else { "eth0" };
        lab.must_in(ns, &["ip", "addr", "add", a, "dev", dev]);
    }
    lab.nginx("rs1", "rs1");
    lab.nginx("rs2", "rs2");
    let n1 = node(&mut lab, "n1", "192.168.100.11", &conf(true, sync));
    let n2 = node(&mut lab, "n2", "192.168.100.12", &conf(false, sync));
    for n in [&n1, &n2] {
        n.rvsd.ok(
            "rvsip",
            &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
        );
    }
    let mut p = Pair {
        lab,
        nodes: vec![n1, n2],
    };
    p.start_keepalived(1);
    if wait_for(Duration::from_secs(6), || {
        has_vip(&p.nodes[0]) == Some(true)
    })
    .is_none()
    {
        panic!("n1 did not take the VIP within 6 s\n{}", p.logs());
    }
    p.start_keepalived(2);
    let healthy = |n: &Node| {
        let l = n.rvsd.ok("rvsadm", &["-ln"]);
        l.contains("-> 192.168.100.2:80             FullNat 100")
            && l.contains("-> 192.168.100.3:80             FullNat 100")
    };
    let ready = wait_for(Duration::from_secs(6), || {
        healthy(&p.nodes[0]) && healthy(&p.nodes[1])
    });
    assert!(
        ready.is_some(),
        "real servers healthy on both\n{}",
        p.logs()
    );
    // Both nodes have the virtual server and a route to the LAN, which is
    // enough for rvs to answer ARP for a VIP: the backup's is standby.
    let o = p.lab.exec(
        "client",
        &["arping", "-c", "2", "-w", "2", "-I", "eth0", VIP],
    );
    let out = String::from_utf8_lossy(&o.stdout).to_lowercase();
    let mut macs: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split(" bytes from ").nth(1)?.split_whitespace().next())
        .collect();
    macs.sort();
    macs.dedup();
    assert_eq!(
        macs,
        [p.nodes[0].mac.as_str()],
        "only the master answers ARP for the VIP\n{out}"
    );
    if sync {
        let d2 = p.nodes[1].rvsd.ok("rvsadm", &["-L", "--daemon"]);
        let d1 = p.nodes[0].rvsd.ok("rvsadm", &["-L", "--daemon"]);
        println!("n1$ rvsadm -L --daemon\n{d1}n2$ rvsadm -L --daemon\n{d2}");
        assert_eq!(d1, "master sync daemon (mcast=sync, syncid=7)\n");
        assert_eq!(d2, "backup sync daemon (mcast=sync, syncid=7)\n");
    }
    p
}

/// Runs the client (and, with `wrk`, wrk's keep-alive connections: a
/// measurement, printed, not asserted) across a crash of the master;
/// returns the client's output and whether n2 listed the client's
/// connection when it took the VIP.
fn failover_under_one_connection(p: &mut Pair, wrk: bool) -> (String, bool) {
    let wrk = wrk.then(|| {
        let d = format!("{}s", RUN_S as u32);
        let url = format!("http://{VIP}/");
        let args = ["wrk", "-t1", "-c4", "-d", &d, "--timeout", "10s", &url];
        p.lab.spawn("client", "wrk", &args, &[])
    });
    let script = p.lab.file("keepalive-client.py", CLIENT);
    let script = script.to_string_lossy().into_owned();
    let run = RUN_S.to_string();
    let c = p.lab.spawn(
        "client",
        "keepalive-client",
        &["python3", &script, VIP, &run],
        &[],
    );
    let first = wait_for(Duration::from_secs(10), || {
        p.lab.proc(c).log().contains("FIRST answer")
    });
    assert!(
        first.is_some(),
        "no answer through the master\n{}",
        p.lab.proc(c).log()
    );
    std::thread::sleep(KILL_AFTER);
    println!("client before the kill:\n{}", p.lab.proc(c).log());
    p.signal(1, "KILL");
    let rvsd1 = p.nodes[0].rvsd.index;
    p.lab.proc(rvsd1).signal("KILL");
    let took = wait_for(Duration::from_secs(6), || {
        has_vip(&p.nodes[1]) == Some(true)
    });
    let took = took.unwrap_or_else(|| panic!("n2 did not take the VIP\n{}", p.logs()));
    println!("n2 holds the VIP {took:?} after the kill");
    let at_takeover = p.nodes[1].rvsd.ok("rvsadm", &["-lnc"]);
    println!("n2$ rvsadm -lnc (at the takeover)\n{at_takeover}");
    let code = p.lab.proc(c).wait_exit(Duration::from_secs(20));
    let out = p.lab.proc(c).log();
    println!("client (one keep-alive connection, GET every 50 ms):\n{out}");
    if std::env::var("KA_SYNC_DEBUG").is_ok() {
        println!("{}", p.logs());
        println!("n1 rvsd alive: {}", p.lab.proc(rvsd1).alive());
        println!(
            "n2$ rvsadm -lnc\n{}",
            p.nodes[1].rvsd.ok("rvsadm", &["-lnc"])
        );
        println!(
            "n2$ rvsadm -L --daemon --stats\n{}",
            p.nodes[1].rvsd.ok("rvsadm", &["-L", "--daemon", "--stats"])
        );
        println!("n2 rvsd log\n{}", p.nodes[1].rvsd.rvsd_log());
    }
    assert_eq!(code, Some(0), "the client script ran\n{out}");
    if let Some(w) = wrk {
        p.lab.proc(w).wait_exit(Duration::from_secs(10));
        println!(
            "wrk (4 keep-alive connections) across the failover:\n{}",
            p.lab.proc(w).log()
        );
    }
    let me = out
        .lines()
        .find_map(|l| l.strip_prefix("client connection from "))
        .unwrap_or_else(|| panic!("no client address\n{out}"))
        .trim()
        .to_string();
    let known = at_takeover.contains(&format!("{me} "));
    (out, known)
}

/// The value of `key=` in the client's RESULT line.
fn result(out: &str, key: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or_else(|| panic!("no RESULT line:\n{out}"));
    let v = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"));
    v.parse().unwrap_or_else(|_| panic!("{key}={v}"))
}

#[test]
fn with_sync_the_connection_survives_the_masters_crash() {
    let mut p = lab(true);
    let wrk = rvs_e2e::run(&["which", "wrk"]).status.success();
    let (out, known) = failover_under_one_connection(&mut p, wrk);
    let logs = p.logs();
    assert!(
        known,
        "the backup had the client's connection (synced)\n{out}"
    );
    assert_eq!(
        result(&out, "fail"),
        0.0,
        "no request failed\n{out}\n{logs}"
    );
    assert!(!out.contains("NEW CONNECTION"), "{out}");
    let last = result(&out, "last_answer_s");
    assert!(
        last > RUN_S - 1.0,
        "answers until the end ({last} s), long after the kill\n{out}\n{logs}"
    );
    assert!(p.keepalived_log(2).contains("BACKUP -> MASTER"), "{logs}");
    println!(
        "longest gap between answers: {} ms",
        result(&out, "max_gap_ms")
    );
    let d2 = p.nodes[1].rvsd.ok("rvsadm", &["-L", "--daemon"]);
    assert_eq!(
        d2, "master sync daemon (mcast=sync, syncid=7)\n",
        "the new master sends"
    );
}

#[test]
fn without_sync_the_connection_breaks() {
    let mut p = lab(false);
    let (out, known) = failover_under_one_connection(&mut p, false);
    assert!(
        !known,
        "without sync the backup does not know the connection\n{out}"
    );
    assert_eq!(
        result(&out, "fail"),
        1.0,
        "without sync the connection breaks\n{out}"
    );
    let last = result(&out, "last_answer_s");
    assert!(
        last < KILL_AFTER.as_secs_f64() + 1.0,
        "no answer after the kill ({last} s)\n{out}"
    );
}

//! Connection sync between two rvsd nodes: node 1 (master, `[sync]` in its
//! file) streams its connections over a kernel veth "sync link" to node 2
//! (backup, started with `rvsadm --start-daemon`), which lists the same
//! connections, with the same local address and port, forwards a packet of
//! one of them to the same real server from the same local port, and drops
//! them when node 1 does. A backup that joins a running stream asks for a
//! full dump and catches up; a datagram that is no sync message is counted.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rvs_e2e::bin;
use rvs_e2e::topo::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;

/// Workers on both nodes (they must match: a local port belongs to worker
/// `port % workers` on both).
const WORKERS: u16 = 2;
const FLOWS: u16 = 20;

/// (client, virtual, local, real server) of every connection, from the
/// control API (rvsadm -lnc shows no local address).
fn conns(r: &Rvsd) -> BTreeSet<String> {
    let mut s = UnixStream::connect(&r.socket).expect("control socket");
    s.write_all(b"{\"v\":1,\"req\":{\"op\":\"list_conns\",\"key\":null,\"limit\":100000}}\n")
        .expect("request");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("reply");
    let v: serde_json::Value = serde_json::from_str(&line).expect("json reply");
    let list = v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a connection list: {line}"));
    list.iter()
        .map(|c| {
            let ap = |k: &str| format!("{}:{}", c[k][0].as_str().unwrap_or("-"), c[k][1]);
            format!(
                "{} {} {} {} {}",
                c["proto"].as_str().unwrap_or("?"),
                ap("client"),
                ap("virt"),
                ap("local"),
                ap("dest")
            )
        })
        .collect()
}

/// `rvsadm -lnc` without the expire column (it differs by the time between
/// two listings).
fn lnc(r: &Rvsd) -> BTreeSet<String> {
    r.ok("rvsadm", &["-lnc"])
        .lines()
        .skip(2)
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let mut w = w.clone();
            if w.len() > 1 {
                w.remove(1);
            }
            w.join(" ")
        })
        .collect()
}

fn wait_for(what: &str, t: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + t;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            println!("not within {t:?}: {what}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The same UDP FNAT service on a node: the tutorial's two-arm commands.
fn service(r: &Rvsd) {
    r.ok("rvsip", &["addr", "add", "10.0.0.100/32", "dev", "dpdk1"]);
    r.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]);
    r.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    r.udp_fnat_service(&["192.168.100.2:53"]);
}

#[test]
fn backup_lists_the_masters_connections_and_drops_them_with_it() {
    rvs_e2e::require_tools(&["ip"]);
    let mut lab = Lab::new();
    for n in ["client", "lb", "lb2", "sw", "rs1", "spare"] {
        lab.add_ns(n);
    }
    // Both nodes on the real server's LAN; the client reaches node 1, and a
    // twin of the client (same address, namespace `spare`) reaches node 2,
    // as the client would after a failover. The sync link is a kernel veth.
    lab.veth("client", "eth0", "lb", "wan");
    lab.veth("lb", "lan", "sw", "p-lb");
    lab.veth("rs1", "eth0", "sw", "p-rs1");
    lab.veth("spare", "eth0", "lb2", "wan");
    lab.veth("lb2", "lan", "sw", "p-lb2");
    lab.veth("lb", "sync", "lb2", "sync");
    lab.must_in("sw", &["ip", "link", "add", "br0", "type", "bridge"]);
    for p in ["p-lb", "p-rs1", "p-lb2"] {
        lab.must_in("sw", &["ip", "link", "set", p, "master", "br0"]);
    }
    lab.must_in("sw", &["ip", "link", "set", "br0", "up"]);
    for c in ["client", "spare"] {
        lab.must_in(c, &["ip", "addr", "add", "10.0.0.48/16", "dev", "eth0"]);
    }
    lab.must_in(
        "rs1",
        &["ip", "addr", "add", "192.168.100.2/24", "dev", "eth0"],
    );
    lab.must_in("lb", &["ip", "addr", "add", "10.9.0.1/24", "dev", "sync"]);
    lab.must_in("lb2", &["ip", "addr", "add", "10.9.0.2/24", "dev", "sync"]);
    // UDP connections live 5 s: the removal is seen within the test.
    let opts = |extra: &str| RvsdOpts {
        workers: WORKERS,
        extra: format!("[timeouts]\nudp = 5\n{extra}"),
        ..Default::default()
    };
    let n1 = Rvsd::start_in(
        &mut lab,
        "lb",
        "",
        &[("dpdk0", "lan"), ("dpdk1", "wan")],
        &opts("[sync]\nrole = \"master\"\nsync_id = 7\nmcast_interface = \"sync\"\nnode_id = 1\n"),
    );
    let n2 = Rvsd::start_in(
        &mut lab,
        "lb2",
        "lb2-",
        &[("dpdk0", "lan"), ("dpdk1", "wan")],
        &opts(""),
    );
    n2.ok(
        "rvsadm",
        &[
            "--start-daemon",
            "backup",
            "--mcast-interface",
            "sync",
            "--syncid",
            "7",
        ],
    );
    assert_eq!(
        n1.ok("rvsadm", &["-L", "--daemon"]),
        "master sync daemon (mcast=sync, syncid=7)\n"
    );
    assert_eq!(
        n2.ok("rvsadm", &["-L", "--daemon"]),
        "backup sync daemon (mcast=sync, syncid=7)\n"
    );
    service(&n1);
    service(&n2);

    // A datagram that is no sync message is counted by name, nothing more.
    let udp = bin("rvs-udp").to_string_lossy().into_owned();
    lab.exec(
        "lb",
        &[
            &udp,
            "probe",
            "--sources",
            "1",
            "--from-port",
            "40000",
            "--timeout-ms",
            "100",
            "10.9.0.2:8848",
        ],
    );
    assert!(
        wait_for(
            "the decode error is counted",
            Duration::from_secs(1),
            || n2
                .ok("rvsadm", &["-L", "--daemon", "--stats"])
                .contains("decode error truncated: 1\n")
        ),
        "{}",
        n2.ok("rvsadm", &["-L", "--daemon", "--stats"])
    );

    lab.spawn("rs1", "echo-rs1", &[&udp, "echo", "0.0.0.0:53", "rs1"], &[]);
    let log = lab.dir.join("echo-rs1.log");
    assert!(wait_for("echo server up", Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening")
    }));
    let n = FLOWS.to_string();
    let o = lab.exec(
        "client",
        &[
            &udp,
            "probe",
            "--sources",
            &n,
            "--from-port",
            "30000",
            "--timeout-ms",
            "2000",
            "10.0.0.100:53",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    println!("client$ rvs-udp probe --sources {FLOWS} ...\n{out}");
    assert!(
        out.contains(&format!("sent {FLOWS} replies {FLOWS}")),
        "{out}"
    );

    let on1 = conns(&n1);
    println!(
        "node 1 connections:\n{}",
        on1.iter().cloned().collect::<Vec<_>>().join("\n")
    );
    assert_eq!(on1.len(), usize::from(FLOWS), "{on1:?}");
    let synced = wait_for(
        "node 2 lists node 1's connections",
        Duration::from_secs(1),
        || conns(&n2) == on1,
    );
    let stats = n2.ok("rvsadm", &["-L", "--daemon", "--stats"]);
    println!("node 2$ rvsadm -L --daemon --stats\n{stats}");
    assert!(
        synced,
        "node 2 lists:\n{:?}\nnode 1:\n{:?}\nnode 1 stats:\n{}\nnode 2 log:\n{}",
        conns(&n2),
        on1,
        n1.ok("rvsadm", &["-L", "--daemon", "--stats"]),
        n2.rvsd_log()
    );
    // What an operator compares: rvsadm -lnc on both nodes.
    assert_eq!(lnc(&n2), lnc(&n1));
    println!("node 2$ rvsadm -lnc\n{}", n2.ok("rvsadm", &["-lnc"]));

    // A backup that joins a running stream asks for a full dump: node 2
    // stops listening, node 1 makes 10 more connections, node 2 starts again.
    n2.ok("rvsadm", &["--stop-daemon", "backup"]);
    let o = lab.exec(
        "client",
        &[
            &udp,
            "probe",
            "--sources",
            "10",
            "--from-port",
            "31000",
            "--timeout-ms",
            "2000",
            "10.0.0.100:53",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("sent 10 replies 10"), "{out}");
    n2.ok(
        "rvsadm",
        &[
            "--start-daemon",
            "backup",
            "--mcast-interface",
            "sync",
            "--syncid",
            "7",
        ],
    );
    let on1 = conns(&n1);
    assert_eq!(on1.len(), usize::from(FLOWS) + 10, "{on1:?}");
    assert!(
        wait_for("node 2 catches up", Duration::from_secs(3), || conns(&n2)
            == on1),
        "node 2 lists {:?}",
        conns(&n2)
    );
    let stats2 = n2.ok("rvsadm", &["-L", "--daemon", "--stats"]);
    let stats1 = n1.ok("rvsadm", &["-L", "--daemon", "--stats"]);
    let count = |s: &str, name: &str| -> u64 {
        s.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name:?} in\n{s}"))
    };
    assert!(count(&stats2, "resyncs asked") >= 1, "{stats2}");
    assert!(count(&stats1, "full dumps") >= 1, "{stats1}");

    // The client's twin sends from 10.0.0.48:30000 through node 2: the real
    // server sees it from the local address and port node 1 chose.
    let local = on1
        .iter()
        .find(|c| c.contains(" 10.0.0.48:30000 "))
        .and_then(|c| c.split_whitespace().nth(3))
        .expect("node 1 has the connection of port 30000")
        .to_string();
    let seen = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("seen "))
            .map(|l| l[5..].to_string())
            .collect::<Vec<_>>()
    };
    let before = seen().len();
    lab.exec(
        "spare",
        &[
            &udp,
            "probe",
            "--sources",
            "1",
            "--from-port",
            "30000",
            "--timeout-ms",
            "1000",
            "10.0.0.100:53",
        ],
    );
    assert!(
        wait_for(
            "the real server sees node 2's packet",
            Duration::from_secs(1),
            || { seen().len() > before }
        ),
        "the real server saw nothing from node 2; node 2 link:\n{}",
        n2.ok("rvsip", &["-s", "link", "show"])
    );
    assert_eq!(
        seen()[before..],
        [local],
        "node 2 must use node 1's local port"
    );
    assert_eq!(
        conns(&n2),
        on1,
        "node 2 used the synced connection, made no other"
    );

    // Node 1 expires them (udp = 5 s); node 2 follows within a second.
    assert!(wait_for(
        "node 1's connections expire",
        Duration::from_secs(10),
        || { conns(&n1).is_empty() }
    ));
    assert!(
        wait_for("node 2 drops them too", Duration::from_secs(1), || conns(
            &n2
        )
        .is_empty()),
        "node 2 still lists {:?}",
        conns(&n2)
    );
    let stats = n1.ok("rvsadm", &["-L", "--daemon", "--stats"]);
    println!("node 1$ rvsadm -L --daemon --stats\n{stats}");
    n2.ok("rvsadm", &["--stop-daemon", "backup"]);
    assert_eq!(n2.ok("rvsadm", &["-L", "--daemon"]), "");
}

//! Two rvs nodes behind an ECMP switch (issue 10, item 5): FNAT with a local
//! address per node (192.168.100.201 on lb1, .202 on lb2) and active-active
//! connection sync (`[sync] role = "both"`) between them over a kernel link.
//! The switch's route to the VIP is a static multipath route over both
//! nodes with `fib_multipath_hash_policy = 1` (flows spread by L4 hash);
//! the real servers share the nodes' LAN bridge. Keep-alive connections
//! (a request every 100 ms each) spread over both nodes, then lb2 leaves the
//! route (drained, still running): its flows reach lb1, which knows them as
//! foreign connections from sync and forwards them with lb2's local address,
//! so the real servers answer lb2, which has them. Every connection must
//! keep its answers.
//!
//! The keep-alive client is `rvs-bench survival-client` (the same client as
//! `rvs-bench survival`, which measures the shares for BENCHMARKS.md).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::{bin, is_root, require_tools, Lab};

const VIP: &str = "10.0.0.100";
const CONNS: usize = 64;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Namespaces: client, the switch `sw`, bridges `wsw` (switch and nodes),
/// `lsw` (nodes and real servers), `ssw` (the sync link), rs1, rs2, lb1, lb2.
fn build(lab: &mut Lab) -> Vec<Rvsd> {
    for n in [
        "client", "sw", "wsw", "lsw", "ssw", "rs1", "rs2", "lb1", "lb2",
    ] {
        lab.add_ns(n);
    }
    lab.veth("client", "eth0", "sw", "down");
    lab.veth("sw", "wan", "wsw", "p-sw");
    let mut bridges = vec![
        ("wsw", vec!["p-sw".to_string()]),
        ("lsw", vec![]),
        ("ssw", vec![]),
    ];
    for i in 1..=2 {
        let lb = format!("lb{i}");
        lab.veth(&lb, "wan", "wsw", &format!("p-{lb}"));
        lab.veth(&lb, "lan", "lsw", &format!("p-{lb}"));
        lab.veth(&lb, "sync", "ssw", &format!("p-{lb}"));
        for b in bridges.iter_mut() {
            b.1.push(format!("p-{lb}"));
        }
        let a = format!("10.9.0.{i}/24");
        lab.must_in(&lb, &["ip", "addr", "add", &a, "dev", "sync"]);
    }
    for rs in ["rs1", "rs2"] {
        lab.veth(rs, "eth0", "lsw", &format!("p-{rs}"));
        bridges[1].1.push(format!("p-{rs}"));
    }
    for (ns, ports) in &bridges {
        lab.must_in(ns, &["ip", "link", "add", "br0", "type", "bridge"]);
        for p in ports {
            lab.must_in(ns, &["ip", "link", "set", p, "master", "br0"]);
        }
        lab.must_in(ns, &["ip", "link", "set", "br0", "up"]);
    }
    lab.must_in(
        "client",
        &["ip", "addr", "add", "172.16.0.2/24", "dev", "eth0"],
    );
    lab.must_in(
        "client",
        &["ip", "route", "add", "default", "via", "172.16.0.1"],
    );
    lab.must_in("sw", &["ip", "addr", "add", "172.16.0.1/24", "dev", "down"]);
    lab.must_in("sw", &["ip", "addr", "add", "10.0.0.254/24", "dev", "wan"]);
    lab.must_in("sw", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.must_in(
        "sw",
        &["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"],
    );
    for (rs, a) in [("rs1", "192.168.100.2/24"), ("rs2", "192.168.100.3/24")] {
        lab.must_in(rs, &["ip", "addr", "add", a, "dev", "eth0"]);
        lab.nginx(rs, rs);
    }
    (1..=2u8)
        .map(|i| {
            let opts = RvsdOpts {
                // Two workers: a peer's connection must land on the worker
                // this node steers its client's packets to.
                workers: 2,
                extra: format!(
                    "[sync]\nrole = \"both\"\nsync_id = 7\nmcast_interface = \"sync\"\nnode_id = {i}\n"
                ),
                ..Default::default()
            };
            let lb = format!("lb{i}");
            let r = Rvsd::start_in(
                lab,
                &lb,
                &format!("{lb}-"),
                &[("dpdk0", "lan"), ("dpdk1", "wan")],
                &opts,
            );
            configure(&r, i);
            r
        })
        .collect()
}

/// The tutorial's FNAT service on node `i`, with its own local address. No
/// route to the client: fast xmit answers through the switch.
fn configure(r: &Rvsd, i: u8) {
    let own = format!("10.0.0.{i}/24");
    r.ok("rvsip", &["addr", "add", &own, "dev", "dpdk1"]);
    r.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    let svc = format!("{VIP}:80");
    r.ok("rvsadm", &["-A", "-t", &svc, "-s", "rr"]);
    for rip in ["192.168.100.2", "192.168.100.3"] {
        r.ok("rvsadm", &["-a", "-t", &svc, "-r", rip, "-b"]);
    }
    let lip = format!("192.168.100.{}", 200 + i);
    r.ok(
        "rvsadm",
        &["--add-laddr", "-z", &lip, "-t", &svc, "-F", "dpdk0"],
    );
}

/// Points the switch's route to the VIP at nodes `nodes`.
fn route(lab: &Lab, nodes: &[u8]) {
    let mut cmd: Vec<String> = ["ip", "route", "replace", &format!("{VIP}/32")]
        .map(String::from)
        .to_vec();
    for n in nodes {
        cmd.extend(["nexthop".into(), "via".into(), format!("10.0.0.{n}")]);
    }
    let c: Vec<&str> = cmd.iter().map(String::as_str).collect();
    lab.must_in("sw", &c);
}

/// `rvsadm -lnc` lines of connections to the VIP: (created here, foreign).
fn conns(r: &Rvsd) -> (usize, usize) {
    let out = r.ok("rvsadm", &["-lnc"]);
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(VIP)).collect();
    let foreign = lines.iter().filter(|l| l.ends_with(" foreign")).count();
    let local = lines
        .iter()
        .filter(|l| !l.ends_with(" foreign") && !l.ends_with(" synced"))
        .count();
    (local, foreign)
}

#[test]
fn fnat_connections_survive_a_node_leaving_the_ecmp_route() {
    assert!(is_root(), "the ECMP lab needs root (network namespaces)");
    require_tools(&["nginx", "ip", "sysctl"]);
    let mut lab = Lab::new();
    let nodes = build(&mut lab);
    route(&lab, &[1, 2]);
    let out = lab.dir.join("client.json");
    let bench = bin("rvs-bench").to_string_lossy().into_owned();
    let client = lab.spawn(
        "client",
        "survival-client",
        &[
            &bench,
            "survival-client",
            "--target",
            &format!("{VIP}:80"),
            "--conns",
            &CONNS.to_string(),
            "--interval-ms",
            "100",
            "--seconds",
            "6",
            "--out",
            &out.to_string_lossy(),
        ],
        &[],
    );

    // Both nodes carry connections, and each knows the other's as foreign
    // ones (their local address is the peer's).
    let end = Instant::now() + Duration::from_secs(4);
    let (mut a, mut b) = ((0, 0), (0, 0));
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
        (a, b) = (conns(&nodes[0]), conns(&nodes[1]));
        if a.0 + b.0 == CONNS && a.1 == b.0 && b.1 == a.0 {
            break;
        }
    }
    assert_eq!(a.0 + b.0, CONNS, "lb1 {a:?}, lb2 {b:?} (created, foreign)");
    assert!(
        a.0 > 0 && b.0 > 0,
        "the switch spread the flows: lb1 {a:?}, lb2 {b:?}"
    );
    assert_eq!((a.1, b.1), (b.0, a.0), "each has the other's as foreign");
    std::thread::sleep(Duration::from_millis(500));

    // lb2 leaves: the switch sends all flows to lb1.
    let leave = unix_ms();
    route(&lab, &[1]);
    let p = lab.proc(client);
    let code = p.wait_exit(Duration::from_secs(15));
    let log = p.log();
    assert_eq!(code, Some(0), "survival-client: {log}");
    let v: serde_json::Value = std::fs::read_to_string(&out)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| panic!("no result from survival-client: {log}"));
    let failures: Vec<u64> = v["failures_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default();
    let stats1 = nodes[0].ok("rvsadm", &["-L", "--daemon", "--stats"]);
    let stats2 = nodes[1].ok("rvsadm", &["-L", "--daemon", "--stats"]);
    assert_eq!(
        v["established"].as_u64(),
        Some(CONNS as u64),
        "all connections opened: {v}"
    );
    let after = failures.iter().filter(|&&t| t >= leave).count();
    assert_eq!(
        (failures.len(), after),
        (0, 0),
        "{} of lb2's {} connections broke when it left ({} before); lb1:\n{stats1}lb2:\n{stats2}",
        after,
        b.0,
        failures.len() - after
    );
    // The operator sees what sync installed.
    let installed = stats1
        .lines()
        .find_map(|l| l.trim().strip_prefix("installed foreign"))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert!(installed.is_some_and(|n| n >= b.0), "{stats1}");
    // Nothing echoed: lb1 installed nothing of its own back from lb2.
    assert!(!stats1.contains("install error"), "{stats1}");
    assert!(!stats2.contains("install error"), "{stats2}");
}

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
//! DR the same way without sync: the `mh` scheduler (real servers added in
//! another order on each node) and `[pipeline] sloppy_tcp = true`, so that
//! lb1 takes lb2's flows up mid-stream and sends them to the same real
//! server, which answers the client directly; with `sloppy_tcp = false`
//! exactly lb2's connections break (the control).
//!
//! The keep-alive client is `rvs-bench survival-client` (the same client as
//! `rvs-bench survival`, which measures the shares for BENCHMARKS.md).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rvs_e2e::ecmp::{Ecmp, EcmpOpts, VIP};
use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::{is_root, require_tools};

const CONNS: usize = 64;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What the nodes run.
#[derive(Clone, Copy, Debug)]
enum Setup {
    /// FNAT, a local address per node, active-active sync.
    FnatSync,
    /// DR with `mh`, no sync; `sloppy_tcp` as given.
    Dr { sloppy: bool },
}

/// Two nodes with two workers each (a peer's connection must land on the
/// worker this node steers its client's packets to), configured for `setup`.
fn build(setup: Setup) -> Ecmp {
    let extra = match setup {
        Setup::FnatSync => String::new(),
        Setup::Dr { sloppy } => format!("[pipeline]\nsloppy_tcp = {sloppy}\n"),
    };
    let e = Ecmp::new(&EcmpOpts {
        nodes: 2,
        rvsd: RvsdOpts {
            workers: 2,
            extra,
            ..Default::default()
        },
        sync: matches!(setup, Setup::FnatSync),
        dr: matches!(setup, Setup::Dr { .. }),
    });
    for i in 1..=2 {
        match setup {
            Setup::FnatSync => e.fnat(i),
            Setup::Dr { .. } => configure_dr(e.node(i), i),
        }
    }
    e
}

/// A DR service with `mh` on node `i`; lb2's operator added the real
/// servers in the other order (the same table: see the mh unit tests).
fn configure_dr(r: &Rvsd, i: u8) {
    let lan = format!("192.168.100.{}/24", 10 + i);
    r.ok("rvsip", &["addr", "add", &lan, "dev", "dpdk0"]);
    let svc = format!("{VIP}:80");
    // mh-port: the client's port too, so one client's flows spread.
    r.ok(
        "rvsadm",
        &["-A", "-t", &svc, "-s", "mh", "--sched-flags", "mh-port"],
    );
    let mut rs = [("192.168.100.2", "2"), ("192.168.100.3", "3")];
    if i == 2 {
        rs.reverse();
    }
    for (rip, w) in rs {
        r.ok("rvsadm", &["-a", "-t", &svc, "-r", rip, "-g", "-w", w]);
    }
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

/// What a run saw.
struct Run {
    /// Connections created on (lb1, lb2) before lb2 left, and the foreign
    /// ones each listed.
    before: ((usize, usize), (usize, usize)),
    /// Failed connections: (before the leave, after it).
    failures: (usize, usize),
    /// `rvsadm -L --daemon --stats` of lb1 and lb2 at the end.
    stats: [String; 2],
}

/// Opens the keep-alive connections over both nodes, waits until they are
/// spread (and, with sync, known to the peer), takes lb2 out of the route,
/// and lets the connections go on for 3 s.
fn run(setup: Setup) -> Run {
    assert!(is_root(), "the ECMP lab needs root (network namespaces)");
    require_tools(&["nginx", "ip", "sysctl"]);
    let mut e = build(setup);
    e.route(&[1, 2]);
    let out = e.lab.dir.join("client.json");
    let client = e.keepalive_client(CONNS, 100, 5, &out);
    let synced = matches!(setup, Setup::FnatSync);
    let end = Instant::now() + Duration::from_secs(2);
    let (mut a, mut b) = ((0, 0), (0, 0));
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
        (a, b) = (conns(e.node(1)), conns(e.node(2)));
        if a.0 + b.0 == CONNS && (!synced || (a.1 == b.0 && b.1 == a.0)) {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    // lb2 leaves: the switch sends all flows to lb1.
    let leave = unix_ms();
    e.route(&[1]);
    let p = e.lab.proc(client);
    let code = p.wait_exit(Duration::from_secs(15));
    let log = p.log();
    assert_eq!(code, Some(0), "survival-client: {log}");
    let v: serde_json::Value = std::fs::read_to_string(&out)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| panic!("no result from survival-client: {log}"));
    assert_eq!(
        v["established"].as_u64(),
        Some(CONNS as u64),
        "all connections opened: {v}"
    );
    let failures: Vec<u64> = v["failures_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default();
    let after = failures.iter().filter(|&&t| t >= leave).count();
    let stats = |n: &Rvsd| {
        let s = n.ok("rvsadm", &["-L", "--daemon", "--stats"]);
        let drops = n.ok("rvsip", &["-s", "link", "show"]);
        format!("{s}{drops}")
    };
    Run {
        before: (a, b),
        failures: (failures.len() - after, after),
        stats: [stats(e.node(1)), stats(e.node(2))],
    }
}

#[test]
fn fnat_connections_survive_a_node_leaving_the_ecmp_route() {
    let r = run(Setup::FnatSync);
    let (a, b) = r.before;
    let [s1, s2] = &r.stats;
    // Both nodes carried connections, and each knew the other's as foreign
    // ones (their local address is the peer's).
    assert_eq!(a.0 + b.0, CONNS, "lb1 {a:?}, lb2 {b:?} (created, foreign)");
    assert!(
        a.0 > 0 && b.0 > 0,
        "the switch spread the flows: lb1 {a:?}, lb2 {b:?}"
    );
    assert_eq!((a.1, b.1), (b.0, a.0), "each has the other's as foreign");
    assert_eq!(
        r.failures,
        (0, 0),
        "connections broke (before, after lb2 left; lb2 had {}); lb1:\n{s1}lb2:\n{s2}",
        b.0
    );
    // The operator sees what sync installed.
    let installed = s1
        .lines()
        .find_map(|l| l.trim().strip_prefix("installed foreign"))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert!(installed.is_some_and(|n| n >= b.0), "{s1}");
    // Nothing echoed: no node was sent back a connection of its own.
    assert!(!s1.contains("install error"), "{s1}");
    assert!(!s2.contains("install error"), "{s2}");
}

#[test]
fn dr_connections_survive_a_node_leaving_with_sloppy_tcp_and_mh() {
    let r = run(Setup::Dr { sloppy: true });
    let (a, b) = r.before;
    let [s1, s2] = &r.stats;
    assert_eq!(a.0 + b.0, CONNS, "lb1 {a:?}, lb2 {b:?}");
    assert!(
        a.0 > 0 && b.0 > 0,
        "the switch spread the flows: lb1 {a:?}, lb2 {b:?}"
    );
    assert_eq!(
        r.failures,
        (0, 0),
        "connections broke (before, after lb2 left; lb2 had {}); lb1:\n{s1}lb2:\n{s2}",
        b.0
    );

    // The control: without sloppy_tcp, lb1 drops the moved flows' packets
    // (no_conn) and exactly lb2's connections break.
    let r = run(Setup::Dr { sloppy: false });
    let (_, b) = r.before;
    assert!(b.0 > 0, "lb2 carried connections");
    assert_eq!(r.failures, (0, b.0), "lb1:\n{}", r.stats[0]);
}

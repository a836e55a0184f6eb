//! Case 1: the tutorial's FNAT two-arm example, as a user would check it.

use rvs_e2e::capture::Capture;
use rvs_e2e::topo::{RvsdOpts, TwoArm};

fn tools() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft", "tcpdump", "ping"]);
}

/// Runs case 1 with `workers` workers (case 9 runs it with 2).
pub fn fnat_two_arm(workers: u16) {
    fnat_two_arm_on(workers, "af_packet");
}

/// Runs case 1 with `workers` workers on `backend` (`af_packet`, `af_xdp`).
pub fn fnat_two_arm_on(workers: u16, backend: &str) {
    tools();
    let mut t = TwoArm::new(&RvsdOpts {
        workers,
        backend: backend.into(),
        ..Default::default()
    });
    t.tutorial_fnat();
    let links = t.ok("rvsip", &["link", "show"]);
    println!("$ rvsip link show\n{links}");
    let want = match backend {
        // veth: the driver's hook, copy mode (veth has no zero-copy).
        "af_xdp" => "backend af_xdp (native, copy) ".to_string(),
        b if b.starts_with("dpdk-") => format!("backend {}", rvs_e2e::rvsd::shown_backend(b)),
        _ => "backend af_packet ".to_string(),
    };
    assert_eq!(links.matches(&want).count(), 2, "{links}");
    if backend.starts_with("dpdk-") && workers > 1 {
        // Neither vdev has rte_flow: both ports steer by the hand-off ring.
        let why = match backend {
            "dpdk-af_packet" => "rte_flow_validate: Function not implemented",
            _ => "1 device queue(s) for 2 workers",
        };
        let shown = format!("steering hand-off (no rte_flow: {why})");
        assert_eq!(links.matches(&shown).count(), 2, "{links}");
    }

    let cap = Capture::start(&mut t.lab, "rs1", "eth0", "tcp port 80");
    let mut served = Vec::new();
    for i in 0..6u16 {
        let port = 40000 + i * 7;
        let body = t.curl(&t.lab, "client", port, "http://10.0.0.100/");
        println!("client$ curl 10.0.0.100   -> {body}");
        let (rs, peer) = body.split_once(' ').expect("nginx answers '<rs> <peer>'");
        assert!(
            peer.starts_with("192.168.100.200:"),
            "the RS must see the LIP as its peer, saw {peer}"
        );
        served.push(rs.to_string());
    }
    let frames = cap.stop(&mut t.lab);
    // rr over two dests, per worker: with one worker strictly alternating;
    // with several, each worker alternates on its own, so both must serve.
    if workers == 1 {
        for w in served.windows(2) {
            assert_ne!(w[0], w[1], "rr must alternate: {served:?}");
        }
    }
    assert!(
        served.iter().any(|s| s == "rs1") && served.iter().any(|s| s == "rs2"),
        "both RS must serve: {served:?}"
    );

    // TOA: the RS side carries the client's real address and port (option 254).
    let toas: Vec<(u16, [u8; 4])> = frames.iter().filter_map(|f| f.toa()).collect();
    println!(
        "rs1 capture: {} frames, {} with TOA: {:?}",
        frames.len(),
        toas.len(),
        toas
    );
    assert!(!toas.is_empty(), "no TCP option 254 seen on the RS side");
    for (port, ip) in &toas {
        assert_eq!(*ip, [10, 0, 0, 48], "TOA must carry the client address");
        assert!(
            (40000..40042).contains(port),
            "TOA must carry the client's port, got {port}"
        );
    }
    // Every frame to the RS comes from the LIP.
    for f in frames
        .iter()
        .filter(|f| f.ports().is_some_and(|p| p.1 == 80))
    {
        assert_eq!(f.addrs().map(|a| a.0), Some([192, 168, 100, 200]));
    }

    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    let lines: Vec<&str> = ln.lines().collect();
    assert!(lines[0].starts_with("IP Virtual Server version "), "{ln}");
    assert_eq!(
        lines[1].trim_end(),
        "Prot LocalAddress:Port Scheduler Flags"
    );
    assert_eq!(
        lines[2].trim_end(),
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"
    );
    assert_eq!(lines[3].trim_end(), "TCP  10.0.0.100:80 rr");
    assert!(
        lines[4].starts_with("  -> 192.168.100.2:80             FullNat 1 "),
        "{ln}"
    );
    assert!(
        lines[5].starts_with("  -> 192.168.100.3:80             FullNat 1 "),
        "{ln}"
    );

    let st = t.ok("rvsadm", &["-ln", "--stats", "--exact"]);
    println!("$ rvsadm -ln --stats --exact\n{st}");
    let svc: Vec<&str> = st
        .lines()
        .find(|l| l.starts_with("TCP  10.0.0.100:80"))
        .expect("service line")
        .split_whitespace()
        .collect();
    // Prot LocalAddress:Port Conns InPkts OutPkts InBytes OutBytes
    let conns: u64 = svc[2].parse().expect("Conns");
    let inpkts: u64 = svc[3].parse().expect("InPkts");
    let outpkts: u64 = svc[4].parse().expect("OutPkts");
    assert_eq!(conns, 6, "six connections were made: {st}");
    assert!(
        inpkts >= 6 * 5 && outpkts >= 6 * 4,
        "each connection has a handshake, a request and a close: {st}"
    );

    let g = t.ok("rvsadm", &["-G"]);
    println!("$ rvsadm -G\n{g}");
    let gl: Vec<Vec<&str>> = g.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        gl[0],
        ["VIP:VPORT", "TOTAL", "SNAT_IP", "CONFLICTS", "CONNS"]
    );
    assert_eq!(gl[1], ["10.0.0.100:80", "1"]);
    assert_eq!(gl[2][..2], ["192.168.100.200", "0"]);

    let a = t.ok("rvsip", &["addr", "show"]);
    println!("$ rvsip addr show\n{a}");
    assert!(a.contains("inet 10.0.0.100/32 scope global dpdk1"), "{a}");
    assert!(
        a.contains("inet 192.168.100.200/32 scope global dpdk0"),
        "{a}"
    );
    assert!(a.contains("sa_used"), "{a}");

    // Neighbours rvs learned on the way (the client and the real servers).
    let n = t.ok("rvsip", &["neigh", "show"]);
    println!("$ rvsip neigh show\n{n}");
    for ip in ["10.0.0.48", "192.168.100.2", "192.168.100.3"] {
        assert!(
            n.lines().any(|l| l.contains(ip)),
            "{ip} not in the neighbour table:\n{n}"
        );
    }

    // rvs answers pings for its addresses.
    let p = t.lab.exec(
        "client",
        &["ping", "-c", "2", "-W", "2", "-i", "0.2", "10.0.0.100"],
    );
    println!(
        "client$ ping 10.0.0.100\n{}",
        String::from_utf8_lossy(&p.stdout)
    );
    assert!(p.status.success(), "ping to the VIP failed");
    let p = t.lab.exec(
        "rs1",
        &["ping", "-c", "2", "-W", "2", "-i", "0.2", "192.168.100.200"],
    );
    assert!(
        p.status.success(),
        "ping from rs1 to the LIP failed: {}",
        String::from_utf8_lossy(&p.stdout)
    );
}

#[test]
fn fnat_two_arm_one_worker() {
    fnat_two_arm(1);
}

#[test]
fn fnat_two_arm_two_workers() {
    fnat_two_arm(2);
}

#[test]
fn fnat_two_arm_af_xdp_one_worker() {
    fnat_two_arm_on(1, "af_xdp");
}

#[test]
fn fnat_two_arm_af_xdp_two_workers() {
    fnat_two_arm_on(2, "af_xdp");
}

/// The DPDK backend, two workers, on the vdev RVS_E2E_BACKEND names
/// (`dpdk-af_packet` or `dpdk-af_xdp`) with an rvsd built with
/// `--features dpdk` (scripts/test-all.sh):
/// `RVS_E2E_BACKEND=dpdk-af_packet cargo test -p rvs-e2e --test fnat_two_arm -- --ignored dpdk`.
#[test]
#[ignore = "needs rvsd built with --features dpdk and RVS_E2E_BACKEND=dpdk-af_packet or dpdk-af_xdp"]
fn fnat_two_arm_dpdk_two_workers() {
    let b = std::env::var("RVS_E2E_BACKEND").unwrap_or_default();
    assert!(
        b == "dpdk-af_packet" || b == "dpdk-af_xdp",
        "RVS_E2E_BACKEND must name the DPDK vdev (dpdk-af_packet or dpdk-af_xdp), not {b:?}"
    );
    fnat_two_arm_on(2, &b);
}

//! Case 4: the tutorial's SNAT section. The RS namespaces act as LAN hosts
//! with their default route via rvs's LAN IP; the client namespace acts as
//! the Internet: a host on the WAN link (10.0.0.48) that is also the WAN
//! gateway, with an "Internet" address behind it (203.0.113.10). Both run
//! one nginx that answers with the peer it sees.

use rvs_e2e::capture::Capture;
use rvs_e2e::topo::{RvsdOpts, TwoArm};

const WAN_IP: &str = "10.0.0.1";
const MATCH0: &str = "proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1";
const MATCH1: &str = "proto=icmp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1";

fn tools() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft", "tcpdump", "ping"]);
}

/// Runs case 4 with `workers` workers.
pub fn snat(workers: u16) {
    tools();
    let mut t = TwoArm::new(&RvsdOpts {
        workers,
        ..Default::default()
    });
    // The Internet side: the WAN host, also the gateway to 203.0.113.10.
    t.lab.must_in(
        "client",
        &["ip", "addr", "add", "203.0.113.10/32", "dev", "lo"],
    );
    t.lab.nginx("client", "wan");
    // LAN hosts: default route via rvs's LAN IP (the tutorial's host step).
    for h in ["rs1", "rs2"] {
        t.lab.must_in(
            h,
            &[
                "ip",
                "route",
                "add",
                "default",
                "via",
                "192.168.100.1",
                "dev",
                "eth0",
            ],
        );
    }

    // The tutorial's SNAT setting, word for word (WAN_PREF=16, GATEWAY=10.0.0.48).
    t.ok(
        "rvsip",
        &[
            "addr",
            "add",
            &format!("{WAN_IP}/16"),
            "dev",
            "dpdk1",
            "sapool",
        ],
    );
    t.ok(
        "rvsip",
        &["addr", "add", "192.168.100.1/24", "dev", "dpdk0"],
    );
    t.ok(
        "rvsip",
        &[
            "route",
            "add",
            "default",
            "via",
            "10.0.0.48",
            "dev",
            "dpdk1",
        ],
    );
    let wip = format!("{WAN_IP}:0");
    for m in [MATCH0, MATCH1] {
        t.ok("rvsadm", &["-A", "-s", "rr", "-H", m]);
        t.ok("rvsadm", &["-a", "-H", m, "-r", &wip, "-w", "100", "-J"]);
    }

    let cap = Capture::start(&mut t.lab, "client", "eth0", "tcp port 80 or icmp");
    // TCP: curl the WAN host (on-link) and the Internet host (via the gateway).
    // New flows from the LAN are steered by (src addr ^ src port) % workers
    // (rvs_io::steer): the last two make that key odd, the others even, so
    // with two workers both carry SNAT conns.
    let mut snat_ports = Vec::new();
    for (i, (host, target)) in [("rs1", "10.0.0.48"), ("rs2", "203.0.113.10")]
        .iter()
        .cycle()
        .take(16)
        .chain([("rs2", "10.0.0.48"), ("rs1", "203.0.113.10")].iter())
        .enumerate()
    {
        let port = 41000 + 3 * i as u16;
        let body = t.curl(&t.lab, host, port, &format!("http://{target}/"));
        println!("{host}$ curl --local-port {port} http://{target}/   -> {body}");
        let (label, peer) = body
            .split_once(' ')
            .expect("nginx answers '<label> <peer>'");
        assert_eq!(label, "wan");
        let (ip, p) = peer.rsplit_once(':').expect("peer ip:port");
        assert_eq!(ip, WAN_IP, "the WAN host must see the WAN IP as peer");
        snat_ports.push(p.parse::<u16>().expect("peer port"));
    }
    // The SNAT port tells the worker that owns the conn (port % workers).
    let mut by_worker = vec![0u32; usize::from(workers)];
    for p in &snat_ports {
        by_worker[usize::from(p % workers)] += 1;
    }
    println!("SNAT conns by worker (WAN port % workers): {by_worker:?}");
    assert!(
        by_worker.iter().all(|n| *n > 0),
        "every worker must carry flows: {by_worker:?}"
    );

    // ICMP echo to both, from both hosts.
    for host in ["rs1", "rs2"] {
        for target in ["10.0.0.48", "203.0.113.10"] {
            let o = t
                .lab
                .exec(host, &["ping", "-c", "3", "-W", "2", "-i", "0.2", target]);
            let out = String::from_utf8_lossy(&o.stdout);
            println!("{host}$ ping {target}\n{out}");
            assert!(
                o.status.success() && out.contains("3 received"),
                "{host}: ping {target} through SNAT failed\nrvsd log:\n{}",
                t.rvsd_log()
            );
        }
    }

    // On the WAN wire, the LAN exists only as the WAN IP.
    let frames = cap.stop(&mut t.lab);
    let wan = [10, 0, 0, 1];
    let mut tcp_out = 0;
    let mut icmp_out = 0;
    for f in &frames {
        let Some((s, d)) = f.addrs() else { continue };
        assert!(
            s[..3] != [192, 168, 100] && d[..3] != [192, 168, 100],
            "a LAN address on the WAN wire: {s:?} -> {d:?}"
        );
        if d == [10, 0, 0, 48] || d == [203, 0, 113, 10] {
            assert_eq!(s, wan, "toward the WAN host, the source must be the WAN IP");
            match f.proto() {
                Some(6) => tcp_out += 1,
                Some(1) => icmp_out += 1,
                _ => {}
            }
        }
    }
    println!(
        "client eth0 capture: {} frames; {tcp_out} TCP and {icmp_out} ICMP toward the WAN host, all from {WAN_IP}",
        frames.len()
    );
    assert!(
        tcp_out > 0 && icmp_out >= 12,
        "{tcp_out} TCP, {icmp_out} ICMP"
    );

    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    let lines: Vec<&str> = ln.lines().collect();
    for m in [MATCH0, MATCH1] {
        let i = lines
            .iter()
            .position(|l| l.trim_end() == format!("MATCH {m} rr"))
            .unwrap_or_else(|| panic!("no service MATCH {m} rr in:\n{ln}"));
        let l = lines.get(i + 1).copied().unwrap_or_default();
        let w: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(w[..4], ["->", "10.0.0.1:0", "SNAT", "100"], "{ln}");
        let conns: u32 =
            w[4].parse::<u32>().expect("ActiveConn") + w[5].parse::<u32>().expect("InActConn");
        assert!(conns > 0, "the SNAT dest of {m} must count its conns: {l}");
    }

    let a = t.ok("rvsip", &["addr", "show"]);
    println!("$ rvsip addr show\n{a}");
    assert!(a.contains("inet 10.0.0.1/16 scope global dpdk1"), "{a}");
    assert!(
        a.contains("inet 192.168.100.1/24 scope global dpdk0"),
        "{a}"
    );
    let used: u64 = a
        .split_whitespace()
        .skip_while(|w| *w != "sa_used")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no sa_used in:\n{a}"));
    assert!(used > 0, "the sapool of the WAN IP must be in use: {a}");
}

#[test]
fn snat_one_worker() {
    snat(1);
}

#[test]
fn snat_two_workers() {
    snat(2);
}

//! Case 5: the NAT (-m) and TUNNEL (-i) forwarding modes, as a user would
//! check them.

use rvs_e2e::capture::Capture;
use rvs_e2e::one_arm::{mac, OneArm, CLIENT, VIP};
use rvs_e2e::topo::{RvsdOpts, TwoArm};

/// Case 5a: NAT on the two-arm topology, the real servers routing back
/// through rvs's LAN address.
#[test]
fn nat_two_arm() {
    nat_two_arm_with(1);
}

/// NAT with two workers: the return traffic from a real server is steered
/// to the worker that owns the connection (by the client's address and port).
#[test]
fn nat_two_arm_two_workers() {
    nat_two_arm_with(2);
}

fn nat_two_arm_with(workers: u16) {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft", "tcpdump"]);
    let mut t = TwoArm::new(&RvsdOpts {
        workers,
        ..Default::default()
    });
    t.ok("rvsip", &["addr", "add", "10.0.0.100/32", "dev", "dpdk1"]);
    t.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]);
    t.ok(
        "rvsip",
        &["addr", "add", "192.168.100.1/24", "dev", "dpdk0"],
    );
    t.ok("rvsadm", &["-A", "-t", "10.0.0.100:80", "-s", "rr"]);
    for rs in ["192.168.100.2", "192.168.100.3"] {
        t.ok("rvsadm", &["-a", "-t", "10.0.0.100:80", "-r", rs, "-m"]);
    }
    for rs in ["rs1", "rs2"] {
        t.lab.must_in(
            rs,
            &["ip", "route", "add", "default", "via", "192.168.100.1"],
        );
    }

    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    let lines: Vec<&str> = ln.lines().map(str::trim_end).collect();
    assert_eq!(lines[3], "TCP  10.0.0.100:80 rr", "{ln}");
    assert!(
        lines[4].starts_with("  -> 192.168.100.2:80             Masq    1 "),
        "{ln}"
    );
    assert!(
        lines[5].starts_with("  -> 192.168.100.3:80             Masq    1 "),
        "{ln}"
    );

    let lan_mac = mac(&t.lab, "lb", "lan");
    let cap_rs1 = Capture::start(&mut t.lab, "rs1", "eth0", "tcp port 80");
    let cap_client = Capture::start(&mut t.lab, "client", "eth0", "tcp port 80");
    let mut served = Vec::new();
    for i in 0..4u16 {
        let port = 43000 + i * 7;
        let body = t.curl(&t.lab, "client", port, "http://10.0.0.100/");
        println!("client$ curl 10.0.0.100 (local port {port})   -> {body}");
        let (rs, peer) = body.split_once(' ').expect("nginx answers '<rs> <peer>'");
        assert_eq!(
            peer,
            format!("10.0.0.48:{port}"),
            "{rs} must see the client's real address and port"
        );
        served.push(rs.to_string());
    }
    let rs1_frames = cap_rs1.stop(&mut t.lab);
    let client_frames = cap_client.stop(&mut t.lab);
    if workers == 1 {
        for w in served.windows(2) {
            assert_ne!(w[0], w[1], "rr must alternate: {served:?}");
        }
    }
    assert!(
        served.iter().any(|s| s == "rs1") && served.iter().any(|s| s == "rs2"),
        "both RS must serve: {served:?}"
    );
    println!("checked: rr over both RS, each saw 10.0.0.48 and the client's port: {served:?}");

    // rs1: requests arrive from the client's address to the RIP; replies go
    // back to the client through rvs (its LAN MAC is the next hop).
    let client = [10, 0, 0, 48];
    let rip = [192, 168, 100, 2];
    let to_rs = rs1_frames
        .iter()
        .filter(|f| f.addrs() == Some((client, rip)))
        .count();
    let replies: Vec<_> = rs1_frames
        .iter()
        .filter(|f| f.addrs() == Some((rip, client)))
        .collect();
    assert!(to_rs > 0, "rs1 got nothing from {client:?}");
    assert!(!replies.is_empty(), "rs1 sent no replies");
    for f in &replies {
        assert_eq!(&f.data[0..6], lan_mac, "replies must go through rvs");
    }
    println!(
        "rs1 capture: {to_rs} frames 10.0.0.48 -> 192.168.100.2, {} replies to rvs's MAC",
        replies.len()
    );
    // The client only ever talks to the VIP: the RIP never shows.
    for f in &client_frames {
        let (s, d) = f.addrs().expect("IPv4");
        assert!(
            (s == client && d == [10, 0, 0, 100]) || (s == [10, 0, 0, 100] && d == client),
            "client saw {s:?} -> {d:?}"
        );
    }
    println!(
        "client capture: {} frames, all between 10.0.0.48 and the VIP",
        client_frames.len()
    );

    let st = t.ok("rvsadm", &["-ln", "--stats", "--exact"]);
    println!("$ rvsadm -ln --stats --exact\n{st}");
    let l = st
        .lines()
        .find(|l| l.starts_with("TCP  10.0.0.100:80"))
        .expect("service line");
    let n: Vec<u64> = l
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        n[1] > 0 && n[2] > 0,
        "NAT: rvs sees both directions (InPkts, OutPkts > 0): {l}"
    );
}

/// Case 5b: TUNNEL on the one-arm topology. The kernel has no ipip module,
/// so the real servers run the test's own decapsulating responder.
#[test]
fn tunnel_one_arm() {
    rvs_e2e::require_tools(&["ip", "nginx", "nft", "tcpdump", "python3"]);
    let mut t = OneArm::new(&RvsdOpts::default());
    t.ok(
        "rvsip",
        &["addr", "add", "192.168.100.1/24", "dev", "dpdk0"],
    );
    t.ok(
        "rvsip",
        &["addr", "add", "192.168.100.254/32", "dev", "dpdk0"],
    );
    t.ok("rvsadm", &["-A", "-u", "192.168.100.254:53", "-s", "rr"]);
    for rs in ["192.168.100.2", "192.168.100.3"] {
        t.ok(
            "rvsadm",
            &["-a", "-u", "192.168.100.254:53", "-r", rs, "-i"],
        );
    }
    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    let lines: Vec<&str> = ln.lines().map(str::trim_end).collect();
    assert_eq!(lines[3], "UDP  192.168.100.254:53 rr", "{ln}");
    assert!(
        lines[4].starts_with("  -> 192.168.100.2:53             Tunnel  1 "),
        "{ln}"
    );
    assert!(
        lines[5].starts_with("  -> 192.168.100.3:53             Tunnel  1 "),
        "{ln}"
    );

    let r1 = t.tun_responder("rs1", "rs1");
    let r2 = t.tun_responder("rs2", "rs2");
    let cap1 = Capture::start(&mut t.lab, "rs1", "eth0", "ip proto 4");
    let cap2 = Capture::start(&mut t.lab, "rs2", "eth0", "ip proto 4");
    let cap_client = Capture::start(&mut t.lab, "client", "eth0", "udp port 53");

    let mut served = Vec::new();
    let mut client_ports = Vec::new();
    for i in 0..4 {
        let msg = format!("hello-{i}");
        let line = t.udp_ask(VIP, 53, &msg).unwrap_or_else(|e| {
            panic!(
                "no reply to {msg}: {e}\nrs1 responder:\n{}\nrs2 responder:\n{}\nrvsd log:\n{}",
                t.lab.proc(r1).log(),
                t.lab.proc(r2).log(),
                t.rvsd_log()
            )
        });
        println!("client$ udp {VIP}:53 {msg}   -> {line}");
        // "reply from 192.168.100.254:53: rs1 192.168.100.146:PORT hello-i"
        let rest = line
            .strip_prefix(&format!("reply from {VIP}:53: "))
            .unwrap_or_else(|| panic!("the reply must come from the VIP:port: {line}"));
        let w: Vec<&str> = rest.split(' ').collect();
        assert_eq!(w.len(), 3, "{line}");
        assert!(
            w[1].starts_with(&format!("{CLIENT}:")),
            "the RS must see the client's address inside the tunnel: {line}"
        );
        assert_eq!(w[2], msg, "{line}");
        served.push(w[0].to_string());
        client_ports.push(w[1].rsplit(':').next().and_then(|p| p.parse::<u16>().ok()));
    }
    let f1 = cap1.stop(&mut t.lab);
    let f2 = cap2.stop(&mut t.lab);
    let fc = cap_client.stop(&mut t.lab);
    for w in served.windows(2) {
        assert_ne!(w[0], w[1], "rr must alternate: {served:?}");
    }
    println!("checked: replies from {VIP}:53, rr over both RS: {served:?}");

    // The encapsulation on the wire: IPv4 proto 4 to the RIP, the client's
    // datagram to VIP:53 inside.
    let lb_mac = mac(&t.lab, "lb", "lan");
    for (frames, rip) in [(&f1, [192, 168, 100, 2]), (&f2, [192, 168, 100, 3])] {
        assert!(!frames.is_empty(), "no IPIP frames reached {rip:?}");
        for f in frames.iter() {
            assert_eq!(f.proto(), Some(4));
            let (osrc, odst) = f.addrs().expect("IPv4");
            assert_eq!(odst, rip, "outer destination must be the RIP");
            assert_eq!(&f.data[6..12], lb_mac, "IPIP frames come from rvs");
            let (isrc, idst, sport, dport) = f.inner().expect("inner IPv4 + UDP");
            assert_eq!(isrc, [192, 168, 100, 146], "inner source = the client");
            assert_eq!(idst, [192, 168, 100, 254], "inner destination = the VIP");
            assert_eq!(dport, 53, "inner destination port = the vport");
            assert!(
                client_ports.contains(&Some(sport)),
                "inner source port {sport} is none of the client's {client_ports:?}"
            );
            println!(
                "ipip on the wire: outer {osrc:?} -> {odst:?}, inner {isrc:?}:{sport} -> {idst:?}:{dport}"
            );
        }
    }
    // The replies reached the client straight from the RS, not from rvs.
    let rs_macs = [mac(&t.lab, "rs1", "eth0"), mac(&t.lab, "rs2", "eth0")];
    let replies: Vec<_> = fc
        .iter()
        .filter(|f| f.addrs().is_some_and(|a| a.0 == [192, 168, 100, 254]))
        .collect();
    assert_eq!(replies.len(), 4, "four replies on the client's wire");
    for f in &replies {
        assert!(
            rs_macs.iter().any(|m| *m == f.data[6..12]),
            "a reply came from {:02x?}, not an RS",
            &f.data[6..12]
        );
    }
    println!("checked: the 4 replies came from the RS MACs, bypassing rvs");
    println!("rs1 responder log:\n{}", t.lab.proc(r1).log());
}

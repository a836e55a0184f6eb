//! Cases 2 and 3: the tutorial's one-arm examples (FNAT as in its keepalived
//! section, without keepalived; DR word for word), as a user would check them.

use rvs_e2e::capture::Capture;
use rvs_e2e::one_arm::{mac, OneArm, CLIENT, VIP};
use rvs_e2e::topo::RvsdOpts;

fn tools() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft", "tcpdump", "sysctl"]);
}

/// curl from the client to the VIP from `n` distinct local ports; the
/// `(rs, peer)` pairs of nginx's answers.
fn curl_vip(t: &OneArm, n: u16, first_port: u16) -> Vec<(String, String)> {
    let url = format!("http://{VIP}/");
    let mut got = Vec::new();
    for i in 0..n {
        let port = first_port + i * 7;
        let body = t.curl(&t.lab, "client", port, &url);
        println!("client$ curl {VIP} (local port {port})   -> {body}");
        let (rs, peer) = body.split_once(' ').expect("nginx answers '<rs> <peer>'");
        got.push((rs.to_string(), peer.to_string()));
    }
    got
}

fn assert_rr(got: &[(String, String)]) {
    let served: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    for w in served.windows(2) {
        assert_ne!(w[0], w[1], "rr must alternate: {served:?}");
    }
    assert!(
        served.contains(&"rs1") && served.contains(&"rs2"),
        "both RS must serve: {served:?}"
    );
    println!("checked: rr alternates over both RS: {served:?}");
}

/// The `(InPkts, OutPkts)` of the first line of `rvsadm -ln --stats --exact`
/// starting with `prefix`.
fn stats_of(listing: &str, prefix: &str) -> (u64, u64) {
    let l = listing
        .lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line for {prefix} in\n{listing}"));
    let nums: Vec<u64> = l
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 5, "Conns InPkts OutPkts InBytes OutBytes: {l}");
    (nums[1], nums[2])
}

/// Case 2: FNAT one-arm on a single port, two local addresses.
#[test]
fn fnat_one_arm() {
    tools();
    let t = OneArm::new(&RvsdOpts::default());
    // The tutorial's "for test only" commands, and the virtual server its
    // keepalived.conf describes (rr, FNAT, weight 100, laddr_g1).
    t.ok(
        "rvsip",
        &["addr", "add", "192.168.100.254/32", "dev", "dpdk0"],
    );
    t.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    t.ok("rvsadm", &["-A", "-t", "192.168.100.254:80", "-s", "rr"]);
    for rs in ["192.168.100.2", "192.168.100.3"] {
        t.ok(
            "rvsadm",
            &[
                "-a",
                "-t",
                "192.168.100.254:80",
                "-r",
                rs,
                "-b",
                "-w",
                "100",
            ],
        );
    }
    for lip in ["192.168.100.200", "192.168.100.201"] {
        t.ok(
            "rvsadm",
            &[
                "--add-laddr",
                "-z",
                lip,
                "-t",
                "192.168.100.254:80",
                "-F",
                "dpdk0",
            ],
        );
    }

    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    let lines: Vec<&str> = ln.lines().map(str::trim_end).collect();
    assert_eq!(lines[3], "TCP  192.168.100.254:80 rr", "{ln}");
    assert!(
        lines[4].starts_with("  -> 192.168.100.2:80             FullNat 100 "),
        "{ln}"
    );
    assert!(
        lines[5].starts_with("  -> 192.168.100.3:80             FullNat 100 "),
        "{ln}"
    );

    let a = t.ok("rvsip", &["addr", "show"]);
    println!("$ rvsip addr show\n{a}");
    for want in [
        "inet 192.168.100.254/32 scope global dpdk0",
        "inet 192.168.100.200/32 scope global dpdk0",
        "inet 192.168.100.201/32 scope global dpdk0",
    ] {
        assert!(a.contains(want), "missing {want:?} in\n{a}");
    }
    let r = t.ok("rvsip", &["route", "show"]);
    println!("$ rvsip route show\n{r}");
    for want in [
        "inet 192.168.100.200/32 via 0.0.0.0 src 0.0.0.0 dev dpdk0",
        "inet 192.168.100.201/32 via 0.0.0.0 src 0.0.0.0 dev dpdk0",
        "inet 192.168.100.0/24 via 0.0.0.0 src 0.0.0.0 dev dpdk0",
    ] {
        assert!(r.contains(want), "missing {want:?} in\n{r}");
    }

    let g = t.ok("rvsadm", &["-G"]);
    println!("$ rvsadm -G\n{g}");
    let gl: Vec<Vec<&str>> = g.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        gl[0],
        ["VIP:VPORT", "TOTAL", "SNAT_IP", "CONFLICTS", "CONNS"]
    );
    assert_eq!(gl[1], ["192.168.100.254:80", "2"], "{g}");
    let mut lips: Vec<&str> = gl[2..].iter().map(|l| l[0]).collect();
    lips.sort();
    assert_eq!(lips, ["192.168.100.200", "192.168.100.201"], "{g}");

    let got = curl_vip(&t, 6, 41000);
    assert_rr(&got);
    let mut peers_seen = Vec::new();
    for (rs, peer) in &got {
        let ip = peer.split(':').next().unwrap_or("");
        assert!(
            ip == "192.168.100.200" || ip == "192.168.100.201",
            "{rs} must see a LIP as its peer, saw {peer}"
        );
        assert_ne!(ip, CLIENT, "FNAT must hide the client from the RS");
        if !peers_seen.contains(&ip) {
            peers_seen.push(ip);
        }
    }
    peers_seen.sort();
    println!("checked: the RS saw only LIPs as peers: {peers_seen:?}");
    assert_eq!(
        peers_seen,
        ["192.168.100.200", "192.168.100.201"],
        "connections must use both laddrs"
    );

    let g = t.ok("rvsadm", &["-G"]);
    println!("$ rvsadm -G (after traffic)\n{g}");
    assert!(g.contains("192.168.100.200") && g.contains("192.168.100.201"));
}

/// Case 3: DR one-arm, the tutorial's DR section word for word.
#[test]
fn dr_one_arm() {
    tools();
    let mut t = OneArm::new(&RvsdOpts::default());
    t.ok(
        "rvsip",
        &["addr", "add", "192.168.100.1/24", "dev", "dpdk0"],
    );
    t.ok(
        "rvsip",
        &["addr", "add", "192.168.100.254/32", "dev", "dpdk0"],
    );
    t.ok("rvsadm", &["-A", "-t", "192.168.100.254:80", "-s", "rr"]);
    t.ok(
        "rvsadm",
        &[
            "-a",
            "-t",
            "192.168.100.254:80",
            "-r",
            "192.168.100.2",
            "-g",
        ],
    );
    t.ok(
        "rvsadm",
        &[
            "-a",
            "-t",
            "192.168.100.254:80",
            "-r",
            "192.168.100.3",
            "-g",
        ],
    );
    for rs in ["rs1", "rs2"] {
        t.dr_real_server(rs);
    }

    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    let lines: Vec<&str> = ln.lines().map(str::trim_end).collect();
    assert_eq!(lines[3], "TCP  192.168.100.254:80 rr", "{ln}");
    assert!(
        lines[4].starts_with("  -> 192.168.100.2:80             Route   1 "),
        "{ln}"
    );
    assert!(
        lines[5].starts_with("  -> 192.168.100.3:80             Route   1 "),
        "{ln}"
    );
    let r = t.ok("rvsip", &["route", "show"]);
    println!("$ rvsip route show\n{r}");
    assert!(
        r.contains("inet 192.168.100.0/24 via 0.0.0.0 src 0.0.0.0 dev dpdk0"),
        "adding 192.168.100.1/24 must generate the LAN route:\n{r}"
    );

    let lb_mac = mac(&t.lab, "lb", "lan");
    let rs_macs = [mac(&t.lab, "rs1", "eth0"), mac(&t.lab, "rs2", "eth0")];
    let before = t.ok("rvsadm", &["-ln", "--stats", "--exact"]);
    let cap_client = Capture::start(&mut t.lab, "client", "eth0", "tcp port 80");
    let cap_rs1 = Capture::start(&mut t.lab, "rs1", "eth0", "tcp port 80");
    let got = curl_vip(&t, 4, 42000);
    let rs1_frames = cap_rs1.stop(&mut t.lab);
    let client_frames = cap_client.stop(&mut t.lab);
    assert_rr(&got);
    for (rs, peer) in &got {
        assert!(
            peer.starts_with(&format!("{CLIENT}:")),
            "{rs} must see the client's real address as peer, saw {peer}"
        );
    }
    println!("checked: the RS saw the client's real address {CLIENT} as peer");

    // On the client: requests go to rvs's MAC, replies come from the RS's
    // own MAC with the VIP as source, i.e. they bypassed rvs.
    let vip = [192, 168, 100, 254];
    let client = [192, 168, 100, 146];
    let mut requests = 0;
    let mut replies = 0;
    for f in &client_frames {
        let Some((src, dst)) = f.addrs() else {
            continue;
        };
        let (dmac, smac) = (&f.data[0..6], &f.data[6..12]);
        if src == client && dst == vip {
            assert_eq!(dmac, lb_mac, "a request did not go to rvs's MAC");
            requests += 1;
        } else if src == vip && dst == client {
            assert!(
                rs_macs.iter().any(|m| m == smac),
                "a reply came from MAC {smac:02x?}, not from an RS ({rs_macs:02x?}); rvs is {lb_mac:02x?}"
            );
            replies += 1;
        }
    }
    println!(
        "client capture: {requests} requests to rvs's MAC {lb_mac:02x?}, {replies} replies from the RS MACs {rs_macs:02x?}"
    );
    assert!(requests > 0 && replies > 0, "client capture saw no traffic");

    // On rs1: the frames rvs forwarded keep the client's address and the VIP;
    // only the MACs changed.
    let fwd: Vec<_> = rs1_frames
        .iter()
        .filter(|f| f.addrs() == Some((client, vip)))
        .collect();
    assert!(!fwd.is_empty(), "rs1 got no DR frames");
    for f in &fwd {
        assert_eq!(&f.data[6..12], lb_mac, "DR frames come from rvs's MAC");
        assert_eq!(&f.data[0..6], rs_macs[0], "DR frames go to rs1's MAC");
    }
    println!(
        "rs1 capture: {} frames {CLIENT} -> {VIP} from rvs's MAC",
        fwd.len()
    );

    // rvs saw the requests only.
    let after = t.ok("rvsadm", &["-ln", "--stats", "--exact"]);
    println!("$ rvsadm -ln --stats --exact\n{after}");
    let (in0, out0) = stats_of(&before, "TCP  192.168.100.254:80");
    let (in1, out1) = stats_of(&after, "TCP  192.168.100.254:80");
    assert!(in1 > in0, "InPkts must grow: {in0} -> {in1}");
    assert_eq!(out1, 0, "OutPkts must stay 0 in DR (was {out0})");
    println!("checked: InPkts {in0} -> {in1}, OutPkts {out1}");
}

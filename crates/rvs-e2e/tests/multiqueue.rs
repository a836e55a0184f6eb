//! Multi-queue NICs on af_xdp (issue 12 item 6): the lb's client-facing
//! veth has four RX queues, and on veth the sender picks the receive queue
//! (its TX queue, hashed per flow), so the client's flows arrive on several
//! queues. rvsd with two workers must serve every flow, on every queue, and
//! say at start when it was told to leave queues out.

use std::time::Duration;

use rvs_e2e::topo::{Rvsd, RvsdOpts};
use rvs_e2e::{bin, must, Lab};

const QUEUES: &str = "4";
const SOURCES: u16 = 64;

fn tools() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft", "ethtool", "ss"]);
}

/// `client` (10.0.0.48/16, eth0) — `lb` (wan: four RX and TX queues each
/// way; lan) — `rs1` (192.168.100.2/24, eth0, with nginx and a UDP echo
/// server on port 53), and rvsd in `lb` on af_xdp with two workers.
fn lab(extra: &str) -> (Lab, Rvsd) {
    tools();
    let mut lab = Lab::new();
    for n in ["client", "lb", "rs1"] {
        lab.add_ns(n);
    }
    let tmp = format!("mq{}x", std::process::id() % 1_000_000);
    let peer = format!("{tmp}b");
    must(&[
        "ip",
        "link",
        "add",
        &tmp,
        "numrxqueues",
        QUEUES,
        "numtxqueues",
        QUEUES,
        "type",
        "veth",
        "peer",
        "name",
        &peer,
        "numrxqueues",
        QUEUES,
        "numtxqueues",
        QUEUES,
    ]);
    for (dev, ns, name) in [(&tmp, "client", "eth0"), (&peer, "lb", "wan")] {
        must(&["ip", "link", "set", dev, "netns", &lab.ns(ns), "name", name]);
        must(&["ip", "-n", &lab.ns(ns), "link", "set", "dev", name, "up"]);
    }
    lab.veth("lb", "lan", "rs1", "eth0");
    lab.must_in(
        "client",
        &["ip", "addr", "add", "10.0.0.48/16", "dev", "eth0"],
    );
    lab.must_in(
        "rs1",
        &["ip", "addr", "add", "192.168.100.2/24", "dev", "eth0"],
    );
    // The VIP's MAC up front: no ARP to hash to some queue, so each flow
    // stands or falls on its own queue.
    let wan = lab.must_in("lb", &["cat", "/sys/class/net/wan/address"]);
    lab.must_in(
        "client",
        &[
            "ip",
            "neigh",
            "add",
            "10.0.0.100",
            "lladdr",
            wan.trim(),
            "dev",
            "eth0",
            "nud",
            "permanent",
        ],
    );
    lab.nginx("rs1", "rs1");
    let udp = bin("rvs-udp").to_string_lossy().into_owned();
    lab.spawn("rs1", "echo-rs1", &[&udp, "echo", "0.0.0.0:53", "rs1"], &[]);
    lab.wait_udp_port("rs1", 53, Duration::from_secs(5));
    let rvsd = Rvsd::start(
        &mut lab,
        &[("dpdk0", "lan"), ("dpdk1", "wan")],
        &RvsdOpts {
            workers: 2,
            backend: "af_xdp".into(),
            extra: extra.into(),
            ..Default::default()
        },
    );
    (lab, rvsd)
}

/// The tutorial's FNAT two-arm set-up, for TCP port 80 and UDP port 53 on
/// the one real server.
fn fnat(r: &Rvsd) {
    r.ok("rvsip", &["addr", "add", "10.0.0.100/32", "dev", "dpdk1"]);
    r.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]);
    r.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    for (p, vip, rs) in [
        ("-t", "10.0.0.100:80", "192.168.100.2:80"),
        ("-u", "10.0.0.100:53", "192.168.100.2:53"),
    ] {
        r.ok("rvsadm", &["-A", p, vip, "-s", "rr"]);
        r.ok("rvsadm", &["-a", p, vip, "-r", rs, "-b"]);
        r.ok(
            "rvsadm",
            &[
                "--add-laddr",
                "-z",
                "192.168.100.200",
                p,
                vip,
                "-F",
                "dpdk0",
            ],
        );
    }
}

/// `rx_queue_N_xdp_redirect` of `ethtool -S wan` in `lb`: frames veth's
/// XDP hook redirected (to rvs's sockets) per RX queue.
fn redirected_by_queue(lab: &Lab) -> Vec<u64> {
    let s = lab.must_in("lb", &["ethtool", "-S", "wan"]);
    let mut v = vec![0u64; 4];
    for l in s.lines() {
        let Some((k, n)) = l.trim().split_once(": ") else {
            continue;
        };
        let Some(q) = k
            .strip_prefix("rx_queue_")
            .and_then(|k| k.strip_suffix("_xdp_redirect"))
        else {
            continue;
        };
        let (q, n): (usize, u64) = (q.parse().expect("queue"), n.parse().expect("count"));
        v[q] = n;
    }
    v
}

#[test]
fn flows_on_every_queue_are_served() {
    let (lab, r) = lab("");
    fnat(&r);
    let links = r.ok("rvsip", &["link", "show"]);
    println!("$ rvsip link show\n{links}");

    // UDP: one datagram from each of many source ports, each its own flow
    // on whichever queue the client's kernel hashed it to, each answered.
    let udp = bin("rvs-udp").to_string_lossy().into_owned();
    let n = SOURCES.to_string();
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
            "3000",
            "10.0.0.100:53",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let sent_replies = out
        .lines()
        .find(|l| l.starts_with("sent "))
        .unwrap_or_default()
        .to_string();
    println!("client$ rvs-udp probe --sources {SOURCES} 10.0.0.100:53\n{sent_replies}");
    let by_queue = redirected_by_queue(&lab);
    println!("wan: frames redirected to rvs by RX queue {by_queue:?}");
    assert_eq!(
        sent_replies,
        format!("sent {SOURCES} replies {SOURCES}"),
        "every UDP flow must be answered, whatever queue it arrived on\n$ rvsip -s link show\n{}\nrvsd log:\n{}",
        r.ok("rvsip", &["-s", "link", "show"]),
        r.rvsd_log()
    );

    // TCP: new connections from new source ports, each served.
    for i in 0..8 {
        let body = lab
            .curl("client", "http://10.0.0.100/")
            .unwrap_or_else(|e| panic!("connection {i} not served: {e}"));
        assert!(body.starts_with("rs1 192.168.100.200:"), "{body}");
    }

    // The flows did arrive on several queues, and rvs got frames from
    // queues other than 0 (the sockets there received them).
    let by_queue = redirected_by_queue(&lab);
    println!("wan: frames redirected to rvs by RX queue {by_queue:?}");
    assert!(
        by_queue.iter().filter(|n| **n > 0).count() > 1,
        "the client's flows must arrive on several queues: {by_queue:?}"
    );
    assert!(
        by_queue[1..].iter().sum::<u64>() > 0,
        "rvs must receive frames on queues other than 0: {by_queue:?}"
    );
    assert!(
        links.contains("backend af_xdp (native, copy, queues 0-3 of 4)"),
        "{links}"
    );
    assert!(
        !r.rvsd_log().contains("no worker serves"),
        "{}",
        r.rvsd_log()
    );
}

/// Told to serve one queue of four (`xdp_queues = 1`), rvsd starts and
/// warns, naming the device, its queue count and the queues left out.
#[test]
fn start_up_warns_about_queues_no_worker_serves() {
    // Appended after the last [[netif]] (dpdk1, on wan), so it is its key.
    let (_lab, r) = lab("xdp_queues = 1\n");
    let log = r.rvsd_log();
    let warn = log
        .lines()
        .find(|l| l.contains("no worker serves"))
        .unwrap_or_else(|| panic!("no warning about unserved queues in the log:\n{log}"));
    println!("{warn}");
    assert!(warn.contains("WARN"), "{warn}");
    assert!(warn.contains("dpdk1 (wan): wan has 4 RX queues"), "{warn}");
    assert!(warn.contains("no worker serves queue(s) 1-3"), "{warn}");
    let links = r.ok("rvsip", &["link", "show"]);
    assert!(
        links.contains("af_xdp (native, copy, queue 0 of 4)"),
        "{links}"
    );
    // The single-queue LAN side is served whole: nothing said about it.
    assert_eq!(log.matches("no worker serves").count(), 1, "{log}");
}

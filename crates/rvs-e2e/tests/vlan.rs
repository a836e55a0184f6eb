//! VLAN devices (issue 15 item 1): the tutorial's `dpip vlan` lines, and an
//! FNAT service on a VLAN device reached through a real 802.1Q switch.
//!
//! This kernel has no 8021q module, so the switch is Open vSwitch's
//! userspace datapath (`datapath_type=netdev`, which tags and strips in user
//! space), run in the `sw` namespace with its own database, sockets and
//! logs: the client's port is an access port of VLAN 100, the real
//! server's one of VLAN 200, rvs's two ports are trunks. The client reaches
//! nginx behind rvs only if rvs strips the tag of what it receives and tags
//! what it sends; with two workers, the real server's tagged answers to the
//! local address reach the worker owning the connection only if the
//! steering looks past the tag; a ping to an address on the VLAN device's
//! kni device checks the kernel path both ways.

use rvs_e2e::ovs::Ovs;
use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;

/// Starts a lab-local Open vSwitch in `sw` ([`rvs_e2e::ovs::Ovs`], killed
/// by pid with the lab) with bridge br0 (userspace datapath): `p-cli` an
/// access port of VLAN 100, `p-rs` one of VLAN 200, `p-wan` and `p-lan`
/// trunks.
fn ovs_switch(lab: &mut Lab) {
    let ovs = Ovs::with_bridge(lab, "sw");
    ovs.vsctl(lab, &["add-port", "br0", "p-cli", "tag=100"]);
    ovs.vsctl(lab, &["add-port", "br0", "p-rs", "tag=200"]);
    ovs.vsctl(lab, &["add-port", "br0", "p-wan"]);
    ovs.vsctl(lab, &["add-port", "br0", "p-lan"]);
}

#[test]
fn fnat_on_a_vlan_device_through_an_8021q_switch() {
    let mut tools = vec!["ip", "nginx", "curl", "ping", "ethtool"];
    tools.extend_from_slice(&rvs_e2e::ovs::TOOLS);
    rvs_e2e::require_tools(&tools);
    let mut lab = Lab::new();
    for n in ["client", "sw", "lb", "rs1"] {
        lab.add_ns(n);
    }
    lab.veth("client", "eth0", "sw", "p-cli");
    lab.veth("rs1", "eth0", "sw", "p-rs");
    lab.veth("lb", "wan", "sw", "p-wan");
    lab.veth("lb", "lan", "sw", "p-lan");
    // The userspace switch forwards what it reads from a packet socket as it
    // is: a segment whose checksum the sender left to offload would arrive
    // with a bad one.
    for n in ["client", "rs1"] {
        lab.must_in(n, &["ethtool", "-K", "eth0", "tx", "off"]);
    }
    lab.tutorial_client();
    lab.tutorial_rs(1);
    ovs_switch(&mut lab);
    let r = Rvsd::start(
        &mut lab,
        &[("dpdk0", "lan"), ("dpdk1", "wan")],
        &RvsdOpts {
            workers: 2,
            ..Default::default()
        },
    );

    // The tutorial's lines, verbatim (dpip → rvsip); its line on a bond
    // (`rvsip vlan add link bond1 id 103`) runs in tests/bond.rs, where
    // there is a bond1.
    r.ok(
        "rvsip",
        &[
            "vlan",
            "add",
            "dpdk0.100",
            "link",
            "dpdk0",
            "proto",
            "802.1q",
            "id",
            "100",
        ],
    );
    r.ok(
        "rvsip",
        &[
            "vlan", "add", "link", "dpdk0", "proto", "802.1q", "id", "101",
        ],
    );
    r.ok("rvsip", &["vlan", "add", "link", "dpdk1", "id", "102"]);
    let stacked = r.rvsip(&["vlan", "add", "link", "dpdk0.100", "id", "5"]);
    assert!(!stacked.status.success(), "VLAN on VLAN must be refused");
    assert_eq!(
        r.ok("rvsip", &["vlan", "show"]),
        "dpdk0.100 link dpdk0 proto 802.1q id 100\n\
         dpdk0.101 link dpdk0 proto 802.1q id 101\n\
         dpdk1.102 link dpdk1 proto 802.1q id 102\n"
    );
    for del in [
        &["vlan", "del", "link", "dpdk0", "id", "101"][..],
        &["vlan", "del", "dpdk1.102"],
        &["vlan", "del", "dpdk0.100"],
    ] {
        r.ok("rvsip", del);
    }

    // The client's VLAN on the WAN side, the real server's on the LAN side,
    // and the tutorial's FNAT service on them.
    r.ok(
        "rvsip",
        &[
            "vlan",
            "add",
            "dpdk1.100",
            "link",
            "dpdk1",
            "proto",
            "802.1q",
            "id",
            "100",
        ],
    );
    r.ok("rvsip", &["vlan", "add", "link", "dpdk0", "id", "200"]);
    r.tutorial_fnat_on("dpdk1.100", "dpdk0.200", &["192.168.100.2"]);
    let links = r.ok("rvsip", &["link", "show"]);
    println!("$ rvsip link show\n{links}");
    assert!(links.contains("dpdk1.100"), "{links}");
    assert!(links.contains("dpdk1.100.kni"), "{links}");
    lab.must_in("lb", &["ip", "link", "show", "dpdk1.100.kni"]);

    // Source ports that the two workers share between them (the local
    // ports, and so the answers' steering, follow the worker).
    let mut lports = Vec::new();
    for i in 0..6u16 {
        let port = 40000 + i * 7;
        let body = r.curl(&lab, "client", port, "http://10.0.0.100/");
        println!("client$ curl --local-port {port} 10.0.0.100 -> {body}");
        let lport = body
            .strip_prefix("rs1 192.168.100.200:")
            .unwrap_or_else(|| panic!("the RS sees the LIP: {body}"));
        lports.push(lport.parse::<u16>().expect("a port"));
    }
    assert!(
        lports.iter().any(|p| p % 2 == 0) && lports.iter().any(|p| p % 2 == 1),
        "both workers served (local ports {lports:?})"
    );
    let neigh = r.ok("rvsip", &["neigh", "show"]);
    assert!(
        neigh
            .lines()
            .any(|l| l.contains("10.0.0.48") && l.contains("dpdk1.100")),
        "the client is a neighbour on the VLAN device:\n{neigh}"
    );
    assert!(
        neigh
            .lines()
            .any(|l| l.contains("192.168.100.2 ") && l.contains("dpdk0.200")),
        "the real server is a neighbour on its VLAN device:\n{neigh}"
    );

    // The kernel path: an address on dpdk1.100.kni, answered by the kernel
    // (ARP and ping) through rvs, tags stripped and added.
    lab.must_in("lb", &["ip", "link", "set", "dpdk1.100.kni", "up"]);
    lab.must_in(
        "lb",
        &["ip", "addr", "add", "10.0.0.5/16", "dev", "dpdk1.100.kni"],
    );
    r.ok(
        "rvsip",
        &[
            "route",
            "add",
            "10.0.0.5/32",
            "dev",
            "dpdk1.100",
            "scope",
            "kni_host",
        ],
    );
    let ping = lab.exec("client", &["ping", "-c", "2", "-W", "2", "10.0.0.5"]);
    assert!(
        ping.status.success(),
        "ping to the kni address failed: {}",
        String::from_utf8_lossy(&ping.stdout)
    );

    // In use: deleting it is refused, naming what uses it.
    let del = r.rvsip(&["vlan", "del", "dpdk1.100"]);
    assert!(!del.status.success());
    let err = String::from_utf8_lossy(&del.stderr);
    assert!(err.contains("address 10.0.0.100/32"), "{err}");
    // lab drops here: rvsd, OVS and nginx are killed by pid, namespaces removed.
}

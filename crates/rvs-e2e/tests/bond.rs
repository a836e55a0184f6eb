//! Bonding devices (issue 15 item 2): a `[[bond]]` of two ports carrying an
//! FNAT service. Mode 0 (balance-rr) against a Linux bridge (no LAG needed:
//! the bridge relearns rvs's MAC on whichever port a frame came from);
//! mode 4 (802.3ad) against Open vSwitch's LACP on its userspace datapath.
//!
//! Lab: `client` — `sw` (the switch) — `lb` (`lan1`, `lan2` into `sw` as
//! `p-lb1`, `p-lb2`: the bond's slaves dpdk1 and dpdk2; `lan0` to `rs1`:
//! dpdk0).

use std::time::{Duration, Instant};

use rvs_e2e::ovs::Ovs;
use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;

/// The lab without its switch: namespaces, veths, addresses, nginx.
fn lab() -> Lab {
    let mut lab = Lab::new();
    for n in ["client", "sw", "lb", "rs1"] {
        lab.add_ns(n);
    }
    lab.veth("client", "eth0", "sw", "p-cli");
    lab.veth("lb", "lan1", "sw", "p-lb1");
    lab.veth("lb", "lan2", "sw", "p-lb2");
    lab.veth("rs1", "eth0", "lb", "lan0");
    lab.tutorial_client();
    lab.tutorial_rs(1);
    lab
}

/// rvsd with `workers` workers, dpdk0 (to the RS) and `bond` over dpdk1
/// and dpdk2 (mode `mode`), the tutorial's FNAT service with its VIP on the
/// bond.
fn rvsd(lab: &mut Lab, bond: &str, mode: u8, workers: u16) -> Rvsd {
    let extra = format!(
        "[[bond]]\nname = \"{bond}\"\nmode = {mode}\nslaves = [\"dpdk1\", \"dpdk2\"]\nprimary = \"dpdk1\"\n"
    );
    let r = Rvsd::start(
        lab,
        &[("dpdk0", "lan0"), ("dpdk1", "lan1"), ("dpdk2", "lan2")],
        &RvsdOpts {
            extra,
            workers,
            ..Default::default()
        },
    );
    r.tutorial_fnat_on(bond, "dpdk0", &["192.168.100.2"]);
    r
}

/// `n` curls to the VIP from distinct client ports (from `first`), run
/// together; all must succeed. The local ports rvs used toward the real
/// server, in order (a port's parity is the worker that owned the
/// connection).
fn curls(lab: &Lab, r: &Rvsd, first: u16, n: u16) -> Vec<u16> {
    let ns = lab.ns("client");
    let children: Vec<_> = (first..first + n)
        .map(|port| {
            let child = std::process::Command::new("ip")
                .args(["netns", "exec", &ns, "curl", "-sS", "--max-time", "3"])
                .args(["--local-port", &port.to_string(), "http://10.0.0.100/"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("ip netns exec curl");
            (port, child)
        })
        .collect();
    let mut lports = Vec::new();
    for (port, child) in children {
        let o = child.wait_with_output().expect("curl's output");
        assert!(
            o.status.success(),
            "curl from port {port} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            r.diag()
        );
        let body = String::from_utf8_lossy(&o.stdout);
        let lport = body
            .trim()
            .strip_prefix("rs1 192.168.100.200:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("not from the local address: {body}"));
        lports.push(lport);
    }
    lports
}

/// The `opackets` of port `name` in `rvsip -s link show`.
fn tx_packets(r: &Rvsd, name: &str) -> u64 {
    let out = r.ok("rvsip", &["-s", "link", "show"]);
    let mut lines = out.lines();
    while let Some(l) = lines.next() {
        if l.split(": ").nth(1) == Some(name) {
            // name line, UP line, addr line, header, values.
            let vals = lines.nth(3).unwrap_or_default();
            return vals
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no opackets for {name} in:\n{out}"));
        }
    }
    panic!("no port {name} in:\n{out}");
}

/// Each worker's `opackets` on port `name` (the worker rows of `rvsip -s
/// link show`).
fn worker_tx(r: &Rvsd, name: &str) -> Vec<u64> {
    let out = r.ok("rvsip", &["-s", "link", "show"]);
    let block = out
        .lines()
        .skip_while(|l| l.split(": ").nth(1) != Some(name))
        .skip(1)
        .take_while(|l| l.starts_with(' '));
    let rows: Vec<u64> = block
        .skip_while(|l| !l.trim_start().starts_with("worker    ipackets"))
        .skip(1)
        .map_while(|l| {
            let v: Vec<&str> = l.split_whitespace().collect();
            v.first()?.parse::<usize>().ok()?;
            v.get(2)?.parse().ok()
        })
        .collect();
    assert!(!rows.is_empty(), "no worker rows for {name} in:\n{out}");
    rows
}

/// Frames each worker sent on dpdk1 and dpdk2: `[slave][worker]`.
fn slave_worker_tx(r: &Rvsd) -> [Vec<u64>; 2] {
    [worker_tx(r, "dpdk1"), worker_tx(r, "dpdk2")]
}

/// `after - before` per slave and worker.
fn delta(after: &[Vec<u64>; 2], before: &[Vec<u64>; 2]) -> [Vec<u64>; 2] {
    let d = |s: usize| -> Vec<u64> {
        after[s]
            .iter()
            .zip(&before[s])
            .map(|(a, b)| a - b)
            .collect()
    };
    [d(0), d(1)]
}

/// How many of `lports` each of two workers owned (a local port's parity).
fn per_worker(lports: &[u16]) -> [u64; 2] {
    let odd = lports.iter().filter(|p| *p % 2 == 1).count() as u64;
    [lports.len() as u64 - odd, odd]
}

/// Waits until `rvsip link show` satisfies `ok`, at most `t`.
fn wait_links(r: &Rvsd, t: Duration, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + t;
    loop {
        let links = r.ok("rvsip", &["link", "show"]);
        if ok(&links) {
            return links;
        }
        assert!(
            Instant::now() < end,
            "{what} not within {t:?}:\n{links}\nrvsd log:\n{}",
            r.rvsd_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn mode0_round_robin_through_a_linux_bridge_survives_a_slave_loss() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl"]);
    let mut lab = lab();
    lab.must_in("sw", &["ip", "link", "add", "br0", "type", "bridge"]);
    for p in ["p-cli", "p-lb1", "p-lb2"] {
        lab.must_in("sw", &["ip", "link", "set", p, "master", "br0"]);
    }
    lab.must_in("sw", &["ip", "link", "set", "br0", "up"]);
    let mac =
        |lab: &Lab, i: &str| lab.must_in("lb", &["cat", &format!("/sys/class/net/{i}/address")]);
    let lan2_mac = mac(&lab, "lan2");
    let r = rvsd(&mut lab, "bond0", 0, 1);
    let links = r.ok("rvsip", &["link", "show"]);
    println!("$ rvsip link show\n{links}");
    assert!(links.contains("bond0: mtu 1500 mode balance-rr"), "{links}");
    assert!(
        links.contains("slaves dpdk1 dpdk2  (2 of 2 distributing)"),
        "{links}"
    );
    assert!(links.contains("slave of bond0"), "{links}");
    // Both slaves carry the primary's MAC (dpdk1's).
    assert_eq!(
        mac(&lab, "lan1"),
        mac(&lab, "lan2"),
        "the slaves share the bond's MAC"
    );
    // A slave takes no configuration of its own.
    let slave = r.rvsip(&["addr", "add", "10.0.0.7/32", "dev", "dpdk2"]);
    assert!(!slave.status.success());
    let err = String::from_utf8_lossy(&slave.stderr);
    assert!(err.contains("dpdk2 is a slave of bond0"), "{err}");

    let (tx1, tx2) = (tx_packets(&r, "dpdk1"), tx_packets(&r, "dpdk2"));
    curls(&lab, &r, 41000, 10);
    let (d1, d2) = (tx_packets(&r, "dpdk1") - tx1, tx_packets(&r, "dpdk2") - tx2);
    println!("frames sent: dpdk1 {d1}, dpdk2 {d2}");
    assert!(
        d1 >= 10 && d2 >= 10,
        "both slaves transmit: dpdk1 {d1}, dpdk2 {d2}"
    );

    // One slave's link down: the other carries everything.
    lab.must_in("sw", &["ip", "link", "set", "p-lb1", "down"]);
    wait_links(&r, Duration::from_secs(2), "dpdk1 out of the bond", |l| {
        l.contains("(1 of 2 distributing)")
    });
    let tx2 = tx_packets(&r, "dpdk2");
    curls(&lab, &r, 42000, 10);
    assert!(tx_packets(&r, "dpdk2") - tx2 >= 20, "dpdk2 carries it all");
    // Both down: nothing can leave (bond_no_slave), and bond0.kni's
    // carrier goes off so that routing daemons on it withdraw.
    lab.must_in("lb", &["ip", "link", "set", "bond0.kni", "up"]);
    // The carrier as rvs-bond sets it, within a second.
    let kni_carrier = |want: &str| {
        let end = Instant::now() + Duration::from_secs(1);
        loop {
            let c = lab.must_in("lb", &["cat", "/sys/class/net/bond0.kni/carrier"]);
            if c.trim() == want || Instant::now() > end {
                return c.trim().to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(kni_carrier("1"), "1");
    lab.must_in("sw", &["ip", "link", "set", "p-lb2", "down"]);
    wait_links(&r, Duration::from_secs(2), "no slave left", |l| {
        l.contains("(0 of 2 distributing)")
    });
    assert_eq!(kni_carrier("0"), "0", "bond0.kni carrier off");
    lab.must_in("sw", &["ip", "link", "set", "p-lb2", "up"]);
    lab.must_in("sw", &["ip", "link", "set", "p-lb1", "up"]);
    wait_links(&r, Duration::from_secs(3), "dpdk1 back", |l| {
        l.contains("(2 of 2 distributing)")
    });
    assert_eq!(kni_carrier("1"), "1", "bond0.kni carrier back on");
    curls(&lab, &r, 43000, 4);

    // On exit, the slaves get their own MACs back.
    lab.proc(r.index).signal("TERM");
    assert!(lab
        .proc(r.index)
        .wait_exit(Duration::from_secs(5))
        .is_some());
    assert_eq!(
        mac(&lab, "lan2"),
        lan2_mac,
        "dpdk2's own MAC restored on exit"
    );
}

/// Open vSwitch in `sw` (userspace datapath): `p-lb1`, `p-lb2` in an LACP
/// bond (active, fast, balance-tcp), `p-cli` a plain port.
fn ovs_lacp_switch(lab: &mut Lab) -> Ovs {
    let ovs = Ovs::with_bridge(lab, "sw");
    ovs.add_lacp_bond(lab, &["p-lb1", "p-lb2"]);
    ovs.vsctl(lab, &["add-port", "br0", "p-cli"]);
    // The userspace switch forwards the client's frames as read: a
    // checksum left to offload would arrive bad.
    lab.must_in("client", &["ethtool", "-K", "eth0", "tx", "off"]);
    ovs
}

/// Slave rows of `name` with mux state `mux` in `rvsip link show`.
fn mux_is(links: &str, slave: &str, mux: &str) -> bool {
    links.lines().any(|l| {
        l.trim_start().starts_with(&format!("slave {slave} ")) && l.contains(&format!("mux {mux} "))
    })
}

/// Waits (10 s at most) until the aggregate forms: both slaves collecting
/// and distributing in rvs, OVS negotiated with both members enabled.
fn wait_formed(lab: &Lab, ovs: &Ovs, r: &Rvsd) {
    let t = Instant::now();
    let end = t + Duration::from_secs(10);
    loop {
        let links = r.ok("rvsip", &["link", "show"]);
        let b = ovs.appctl(lab, &["bond/show", "bond0"]);
        if mux_is(&links, "dpdk1", "COLLECTING_DISTRIBUTING")
            && mux_is(&links, "dpdk2", "COLLECTING_DISTRIBUTING")
            && b.contains("lacp_status: negotiated")
            && b.contains("member p-lb1: enabled")
            && b.contains("member p-lb2: enabled")
        {
            println!("formed in {:?}\n$ rvsip link show\n{links}", t.elapsed());
            assert!(links.contains("(2 of 2 distributing)"), "{links}");
            assert!(
                links.contains("mode 802.3ad xmit_hash layer3+4 lacp_rate fast"),
                "{links}"
            );
            return;
        }
        assert!(
            Instant::now() < end,
            "no aggregate within 10 s:\n{links}\n{b}\n{}\nrvsd log:\n{}",
            ovs.appctl(lab, &["lacp/show", "bond0"]),
            r.rvsd_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn mode4_forms_with_open_vswitch_lacp_carries_traffic_and_survives_a_slave_loss() {
    let mut tools = vec!["ip", "nginx", "curl", "ethtool", "nft"];
    tools.extend_from_slice(&rvs_e2e::ovs::TOOLS);
    rvs_e2e::require_tools(&tools);
    let mut lab = lab();
    let ovs = ovs_lacp_switch(&mut lab);
    let mac =
        |lab: &Lab, i: &str| lab.must_in("lb", &["cat", &format!("/sys/class/net/{i}/address")]);
    let lan2_mac = mac(&lab, "lan2");
    let r = rvsd(&mut lab, "bond1", 4, 1);

    // (a) Forms within 10 s.
    wait_formed(&lab, &ovs, &r);
    // The tutorial's VLAN line on a bond, verbatim (dpip → rvsip).
    r.ok("rvsip", &["vlan", "add", "link", "bond1", "id", "103"]);
    assert_eq!(
        r.ok("rvsip", &["vlan", "show"]),
        "bond1.103 link bond1 proto 802.1q id 103\n"
    );

    // (b) Traffic through both slaves: flows hashed over them.
    let (tx1, tx2) = (tx_packets(&r, "dpdk1"), tx_packets(&r, "dpdk2"));
    curls(&lab, &r, 41000, 16);
    let (d1, d2) = (tx_packets(&r, "dpdk1") - tx1, tx_packets(&r, "dpdk2") - tx2);
    println!("frames sent: dpdk1 {d1}, dpdk2 {d2}");
    assert!(
        d1 > 0 && d2 > 0,
        "both slaves transmit: dpdk1 {d1}, dpdk2 {d2}"
    );

    // (c) Slave loss: its link down on the switch's side; the other carries on.
    lab.must_in("sw", &["ip", "link", "set", "p-lb1", "down"]);
    let links = wait_links(&r, Duration::from_secs(2), "dpdk1 out of the bond", |l| {
        l.contains("(1 of 2 distributing)")
    });
    assert!(mux_is(&links, "dpdk1", "DETACHED"), "{links}");
    let tx2 = tx_packets(&r, "dpdk2");
    curls(&lab, &r, 42000, 8);
    assert!(tx_packets(&r, "dpdk2") - tx2 >= 16, "dpdk2 carries it all");
    lab.must_in("sw", &["ip", "link", "set", "p-lb1", "up"]);
    wait_links(
        &r,
        Duration::from_secs(5),
        "dpdk1 back in the aggregate",
        |l| mux_is(l, "dpdk1", "COLLECTING_DISTRIBUTING") && l.contains("(2 of 2 distributing)"),
    );
    curls(&lab, &r, 43000, 4);

    // (d) Partner timeout: the switch's LACPDUs to dpdk2 are dropped on
    // their way (nft netdev egress on p-lb2): dpdk2's partner expires
    // (fast rate: 3 s), it leaves the aggregate, traffic goes on dpdk1.
    let nft = |rule: &str| {
        let mut cmd = vec!["nft"];
        cmd.extend(rule.split(' '));
        lab.must_in("sw", &cmd);
    };
    nft("add table netdev lacp");
    nft("add chain netdev lacp out { type filter hook egress device p-lb2 priority 0 ; }");
    nft("add rule netdev lacp out ether type 0x8809 drop");
    let t = Instant::now();
    let links = wait_links(
        &r,
        Duration::from_secs(5),
        "dpdk2's partner timed out",
        |l| l.contains("(1 of 2 distributing)"),
    );
    println!("dpdk2 out after {:?}\n{links}", t.elapsed());
    assert!(
        // 3 s after the last LACPDU, which came at most ~1 s before the rule.
        t.elapsed() >= Duration::from_millis(1500),
        "out too early: {:?}",
        t.elapsed()
    );
    assert!(
        links.lines().any(|l| l.contains("slave dpdk2 ")
            && (l.contains("rx EXPIRED") || l.contains("rx DEFAULTED"))),
        "{links}"
    );
    // EXPIRED (Sync still shown to the switch, not collecting) until
    // DEFAULTED 3 s later, when dpdk2 leaves the aggregate and the switch
    // stops sending on p-lb2; from then on nothing is lost.
    let end = Instant::now() + Duration::from_secs(6);
    loop {
        let links = r.ok("rvsip", &["link", "show"]);
        let b = ovs.appctl(&lab, &["bond/show", "bond0"]);
        if links.contains("rx DEFAULTED") && b.contains("member p-lb2: disabled") {
            println!("dpdk2 defaulted, p-lb2 disabled after {:?}", t.elapsed());
            break;
        }
        assert!(Instant::now() < end, "not defaulted:\n{links}\n{b}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let tx1 = tx_packets(&r, "dpdk1");
    curls(&lab, &r, 44000, 4);
    assert!(tx_packets(&r, "dpdk1") - tx1 >= 8, "dpdk1 carries it all");
    nft("delete table netdev lacp");
    wait_links(&r, Duration::from_secs(5), "dpdk2 back", |l| {
        mux_is(l, "dpdk2", "COLLECTING_DISTRIBUTING") && l.contains("(2 of 2 distributing)")
    });

    // A crash leaves dpdk2 with the bond's MAC; `rvsd --release` puts its own back.
    lab.proc(r.index).signal("KILL");
    assert!(lab
        .proc(r.index)
        .wait_exit(Duration::from_secs(5))
        .is_some());
    assert_ne!(mac(&lab, "lan2"), lan2_mac, "the crash left the bond's MAC");
    let o = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.ns("lb")])
        .arg(rvs_e2e::bin("rvsd"))
        .args(["--release", "lan2"])
        .env("RVS_RUN_DIR", &r.run_dir)
        .output()
        .expect("rvsd --release");
    let out = String::from_utf8_lossy(&o.stdout);
    println!(
        "$ rvsd --release lan2\n{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success() && out.contains("MAC back to"), "{out}");
    assert_eq!(
        mac(&lab, "lan2"),
        lan2_mac,
        "dpdk2's own MAC restored by --release"
    );
}

/// [`curls`] of `n` flows from port `first` with two workers: how many
/// each worker owned (both must own some) and the frames each sent on
/// each slave meanwhile (`[slave][worker]`).
fn flows(lab: &Lab, r: &Rvsd, first: u16, n: u16) -> ([u64; 2], [Vec<u64>; 2]) {
    let before = slave_worker_tx(r);
    let lports = curls(lab, r, first, n);
    let d = delta(&slave_worker_tx(r), &before);
    let owned = per_worker(&lports);
    println!("flows per worker {owned:?}; frames sent [slave][worker]: {d:?}");
    assert!(
        owned.iter().all(|n| *n > 0),
        "both workers own flows: {lports:?}"
    );
    (owned, d)
}

/// Mode 4 with two workers: many flows, spread over both workers (a local
/// port's parity names its owner) and hashed over both slaves; every flow
/// is answered and each worker's frames leave on each slave (per-worker
/// counters of `rvsip -s link show`). A slave lost: both workers' flows
/// are still answered, all on the other slave.
#[test]
fn mode4_two_workers_answer_flows_on_both_slaves_and_survive_a_slave_loss() {
    let mut tools = vec!["ip", "nginx", "curl", "ethtool"];
    tools.extend_from_slice(&rvs_e2e::ovs::TOOLS);
    rvs_e2e::require_tools(&tools);
    let mut lab = lab();
    let ovs = ovs_lacp_switch(&mut lab);
    let r = rvsd(&mut lab, "bond1", 4, 2);
    wait_formed(&lab, &ovs, &r);

    let (_, d) = flows(&lab, &r, 41000, 16);
    for (s, name) in ["dpdk1", "dpdk2"].iter().enumerate() {
        for w in 0..2 {
            assert!(
                d[s][w] > 0,
                "worker {w} sent nothing on {name}: [slave][worker] {d:?}\n{}",
                r.diag()
            );
        }
    }

    lab.must_in("sw", &["ip", "link", "set", "p-lb1", "down"]);
    wait_links(&r, Duration::from_secs(2), "dpdk1 out of the bond", |l| {
        l.contains("(1 of 2 distributing)")
    });
    let (owned, d) = flows(&lab, &r, 42000, 8);
    for w in 0..2 {
        // SYN-ACK, response, FIN at least: two frames a flow is a floor.
        assert!(
            d[1][w] >= 2 * owned[w],
            "worker {w}'s {} flows not all on dpdk2: [slave][worker] {d:?}\n{}",
            owned[w],
            r.diag()
        );
    }
}

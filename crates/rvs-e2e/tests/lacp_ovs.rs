//! LACP interop (issue 15 item 2, design devices-v6.md §5 P2): rvs-core's
//! LACP machines, run by `lacp-probe` on two AF_PACKET sockets (rvs-io's
//! queues), against Open vSwitch's own LACP: a userspace-datapath bond
//! `lacp=active bond_mode=balance-tcp other_config:lacp-time=fast` in `sw`.
//!
//! The aggregate forms (OVS `lacp_status: negotiated`, both members
//! enabled; the probe distributing on both slaves); the probe goes silent on
//! one slave and OVS times it out and stops syncing it, so the probe takes
//! it out of its masks; it comes back; then OVS's LACPDUs toward the probe
//! are dropped on that link (nft netdev egress in `sw`) and the probe's own
//! receive machine expires it at 3 s. (That the aggregate comes back after
//! a timeout is checked once, after the silence.)
//!
//! No rvsd: the test is backend-independent, so it runs in the af_packet
//! pass of `scripts/test-all.sh` only (the af_xdp pass skips it, saying so).

use std::time::{Duration, Instant};

use rvs_e2e::ovs::{Ovs, TOOLS};
use rvs_e2e::Lab;

/// The probe's latest `state` line.
fn probe_state(lab: &mut Lab, probe: usize) -> String {
    let log = lab.proc(probe).log();
    log.lines()
        .rev()
        .find(|l| l.contains(" state masks="))
        .unwrap_or("")
        .to_string()
}

/// Waits up to `t` for `ok(bond/show, lacp/show, probe state)`; returns the
/// time it took, or panics showing all three.
fn wait(
    lab: &mut Lab,
    ovs: &Ovs,
    probe: usize,
    t: Duration,
    what: &str,
    ok: impl Fn(&str, &str, &str) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let bond = ovs.appctl(lab, &["bond/show", "bond0"]);
        let lacp = ovs.appctl(lab, &["lacp/show", "bond0"]);
        let st = probe_state(lab, probe);
        if ok(&bond, &lacp, &st) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < t,
            "{what}: not within {t:?}\n--- bond/show\n{bond}\n--- lacp/show\n{lacp}\n--- probe\n{}",
            lab.proc(probe).log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `s<i> <rx state> <mux state> <selection>` of the probe's state line.
fn slave(state: &str, i: usize) -> &str {
    let tag = format!("| s{i} ");
    state
        .find(&tag)
        .map(|p| &state[p + 2..])
        .and_then(|s| s.split(" actor").next())
        .unwrap_or("")
}

/// Namespaces `sw` (a lab Open vSwitch with bridge br0, userspace
/// datapath) and `lb`, joined by `links` veth pairs `lan<i>`–`p-lb<i>`
/// (from 1); the ports are not on the bridge yet.
fn lab(links: usize) -> (Lab, Ovs) {
    let mut tools = vec!["ip", "nft"];
    tools.extend_from_slice(&TOOLS);
    rvs_e2e::require_tools(&tools);
    let mut lab = Lab::new();
    lab.add_ns("sw");
    lab.add_ns("lb");
    for i in 1..=links {
        lab.veth("lb", &format!("lan{i}"), "sw", &format!("p-lb{i}"));
    }
    let ovs = Ovs::with_bridge(&mut lab, "sw");
    (lab, ovs)
}

#[test]
fn lacp_forms_with_open_vswitch_and_times_out() {
    if std::env::var("RVS_E2E_BACKEND").as_deref() == Ok("af_xdp") {
        eprintln!("lacp_ovs: backend-independent (no rvsd); runs in the af_packet pass");
        return;
    }
    let (mut lab, ovs) = lab(2);
    ovs.add_lacp_bond(&lab, &["p-lb1", "p-lb2"]);
    let ctl = lab.dir.join("probe");
    std::fs::create_dir_all(&ctl).expect("probe dir");
    let bin = rvs_e2e::bin("lacp-probe");
    let probe = lab.spawn(
        "lb",
        "lacp-probe",
        &[
            bin.to_str().unwrap(),
            "--ctl",
            ctl.to_str().unwrap(),
            "--marker",
            "lan1",
            "lan2",
        ],
        &[],
    );

    // (a) Forms: OVS negotiated with both members enabled, the probe
    // collecting and distributing on both slaves.
    let took = wait(
        &mut lab,
        &ovs,
        probe,
        Duration::from_secs(10),
        "forms",
        |b, _, p| {
            b.contains("lacp_status: negotiated")
                && b.contains("member p-lb1: enabled")
                && b.contains("member p-lb2: enabled")
                && p.contains("masks=0b11/0b11")
        },
    );
    eprintln!("formed in {took:?}");
    let st = probe_state(&mut lab, probe);
    for i in 0..2 {
        assert_eq!(
            slave(&st, i),
            format!("s{i} CURRENT COLLECTING_DISTRIBUTING SELECTED"),
            "{st}"
        );
    }
    let lacp = ovs.appctl(&lab, &["lacp/show", "bond0"]);
    assert!(lacp.contains("status: active negotiated"), "{lacp}");
    // The probe's Marker Information frames (one per slave, rvs-core's
    // builder) are taken by OVS as markers, not as bad PDUs. (OVS 3.1 only
    // counts them: it answers none.)
    let stats = ovs.appctl(&lab, &["lacp/show-stats", "bond0"]);
    assert_eq!(
        stats.matches("RX Marker Request PDUs: 1").count(),
        2,
        "{stats}"
    );
    assert_eq!(stats.matches("RX Bad PDUs: 0").count(), 2, "{stats}");
    let log = lab.proc(probe).log();
    for l in log.lines().filter(|l| l.starts_with("lacpdu ")) {
        eprintln!("OVS {l}");
    }
    assert!(
        !log.contains("\nbad "),
        "the probe refused an OVS frame:\n{log}"
    );

    // (b) The probe goes silent on slave 1: OVS expires p-lb2 (fast: 3 s;
    // OVS keeps an EXPIRED member enabled) and defaults and disables it 3 s
    // later; its LACPDUs then stop showing sync, so the probe takes slave 1
    // out of its masks too. Slave 0 carries on.
    std::fs::write(ctl.join("mute-1"), "").expect("mute");
    let took = wait(
        &mut lab,
        &ovs,
        probe,
        Duration::from_secs(9),
        "OVS times out p-lb2",
        |b, _, p| {
            b.contains("member p-lb2: disabled")
                && b.contains("member p-lb1: enabled")
                && p.contains("masks=0b1/0b1")
        },
    );
    eprintln!("OVS timed out the silent slave in {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "timed out too early: {took:?}"
    );
    let lacp = ovs.appctl(&lab, &["lacp/show", "bond0"]);
    eprintln!("{lacp}");
    std::fs::remove_file(ctl.join("mute-1")).expect("unmute");
    wait(
        &mut lab,
        &ovs,
        probe,
        Duration::from_secs(6),
        "re-forms",
        |b, _, p| b.contains("member p-lb2: enabled") && p.contains("masks=0b11/0b11"),
    );

    // (c) OVS's LACPDUs to slave 1 are dropped on their way (nft netdev
    // egress on p-lb2): the probe's receive machine expires slave 1 at
    // 3 s (out of the masks; DEFAULTED 3 s later is checked by rvs-core's
    // tests, not waited for here).
    for rule in [
        "add table netdev lacp",
        "add chain netdev lacp out { type filter hook egress device p-lb2 priority 0 ; }",
        "add rule netdev lacp out ether type 0x8809 drop",
    ] {
        let mut cmd = vec!["nft"];
        cmd.extend(rule.split(' '));
        lab.must_in("sw", &cmd);
    }
    let took = wait(
        &mut lab,
        &ovs,
        probe,
        Duration::from_secs(6),
        "probe expires",
        |_, _, p| slave(p, 1).starts_with("s1 EXPIRED") && p.contains("masks=0b1/0b1"),
    );
    eprintln!("the probe expired slave 1 in {took:?}");
    let log = lab.proc(probe).log();
    let answered = log
        .lines()
        .filter(|l| l.starts_with("marker-response "))
        .count();
    eprintln!("OVS answered {answered} of the probe's 2 Marker Information frames");
    assert!(
        !log.contains("\nbad "),
        "the probe refused an OVS frame:\n{log}"
    );
}

/// OVS LACP on a single port (not a bond): its LACPDUs say the port is
/// individual (Aggregation off), and 802.1AX gives such a link an
/// aggregator of its own: the probe distributes on it (without fallback).
#[test]
fn lacp_with_an_individual_open_vswitch_port() {
    if std::env::var("RVS_E2E_BACKEND").as_deref() == Ok("af_xdp") {
        eprintln!("lacp_ovs: backend-independent (no rvsd); runs in the af_packet pass");
        return;
    }
    let (mut lab, ovs) = lab(1);
    ovs.vsctl(
        &lab,
        &[
            "add-port",
            "br0",
            "p-lb1",
            "--",
            "set",
            "port",
            "p-lb1",
            "lacp=active",
            "other_config:lacp-time=fast",
        ],
    );
    let bin = rvs_e2e::bin("lacp-probe");
    let probe = lab.spawn("lb", "lacp-probe", &[bin.to_str().unwrap(), "lan1"], &[]);
    let start = Instant::now();
    loop {
        let lacp = ovs.appctl(&lab, &["lacp/show", "p-lb1"]);
        let st = probe_state(&mut lab, probe);
        if lacp.contains("status: active negotiated")
            && st.contains("masks=0b1/0b1")
            && slave(&st, 0) == "s0 CURRENT COLLECTING_DISTRIBUTING FALLBACK"
        {
            eprintln!("formed in {:?}", start.elapsed());
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "an individual OVS port: no link within 8 s\n--- lacp/show\n{lacp}\n--- probe\n{}",
            lab.proc(probe).log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

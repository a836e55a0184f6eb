//! A rolling hot upgrade (`rvsd --takeover --rolling`, issue 14, design
//! section 4) with 2 workers: one worker at a time, each new worker
//! starting where its old one parked while the other old worker forwards.
//!
//! On af_packet: a successor killed (SIGKILL) once its worker 0 alone ran
//! leaves the running rvsd forwarding (its worker 1 never stopped, its
//! worker 0 resumes from the ring); then a rolling upgrade keeps every
//! keep-alive connection and the UDP stream (frames wait in the rings: at
//! most the probers' own 1 % on a loaded machine), and the new rvsd's
//! summary line names the rolling switch with a gap for each worker. On af_xdp (the workers of a port share its fill and completion
//! rings): `--rolling` is refused with the reason, and the running rvsd
//! goes on.

use std::time::Duration;

use rvs_e2e::disrupt::{udp_echoes, ProbeOpts, Probes};
use rvs_e2e::topo::{RvsdOpts, TwoArm};

fn lab() -> TwoArm {
    rvs_e2e::require_tools(&["ip", "nft", "ping", "nginx"]);
    let t = TwoArm::new(&RvsdOpts {
        workers: 2,
        ..RvsdOpts::default()
    });
    t.tutorial_fnat();
    t.udp_fnat_service(&["192.168.100.2:53", "192.168.100.3:53"]);
    // The client's connections from odd ports: steered to worker 1 (the
    // ping goes to worker 0), so that both workers have a gap to show.
    // connect() takes ports of the parity of the range's low end first.
    t.lab.must_in(
        "client",
        &["sysctl", "-qw", "net.ipv4.ip_local_port_range=32769 60999"],
    );
    t
}

/// The worker's gap in the summary line (`w1 0.912 ms`), if it read
/// frames on both sides.
fn gap(line: &str, w: &str) -> Option<f64> {
    let at = line.find(&format!("{w} "))? + w.len() + 1;
    let mut it = line[at..].split_whitespace();
    let v = it.next()?.parse().ok()?;
    (it.next()?.trim_end_matches([',', ')']) == "ms").then_some(v)
}

fn opts() -> ProbeOpts {
    ProbeOpts {
        secs: 2.5,
        udp_pps: 10_000,
        ..ProbeOpts::default()
    }
}

#[test]
fn a_rolling_upgrade_moves_one_worker_at_a_time_and_loses_nothing() {
    let mut t = lab();
    udp_echoes(&mut t.lab, &["rs1", "rs2"]);
    let backend = RvsdOpts::default().backend;
    if backend != "af_packet" {
        let e = t
            .rvsd
            .upgrade_args(&mut t.lab, &["--rolling"], &[])
            .expect_err("--rolling on af_xdp");
        assert!(e.contains("--rolling needs every port on af_packet"), "{e}");
        assert!(t.rvsd_proc().alive(), "the running rvsd goes on");
        t.lab
            .curl("client", "http://10.0.0.100/")
            .expect("the VIP answers");
        return;
    }
    // Killed with worker 0 moved and worker 1 not.
    let probes = Probes::start(&mut t.lab, &opts());
    std::thread::sleep(Duration::from_millis(800));
    t.rvsd
        .upgrade_args(
            &mut t.lab,
            &["--rolling"],
            &[("RVS_TEST_TAKEOVER_FAIL", "die_rolling")],
        )
        .expect_err("the successor was killed mid-roll");
    let d = probes.finish(&mut t.lab);
    println!("successor killed mid-roll: {d}");
    assert!(t.rvsd_proc().alive(), "the old rvsd runs on after the kill");
    assert!(d.udp.after_gap > 0 && d.udp.received > 1000, "{d}");
    t.lab
        .curl("client", "http://10.0.0.100/")
        .expect("the VIP answers after the kill");
    let log = t.rvsd_log();
    assert!(log.contains("connection lost"), "{log}");
    // The rolling upgrade itself.
    let probes = Probes::start(&mut t.lab, &opts());
    std::thread::sleep(Duration::from_millis(800));
    let up = t.rvsd.upgrade_args(&mut t.lab, &["--rolling"], &[]);
    let d = probes.finish(&mut t.lab);
    up.unwrap_or_else(|e| panic!("{e}"));
    println!("rolling hot upgrade: {d}");
    let log = t.rvsd_log();
    let line = log
        .lines()
        .find(|l| l.contains("connections moved"))
        .unwrap_or_else(|| panic!("no takeover summary in the new rvsd's log:\n{log}"));
    println!("{line}");
    assert!(line.contains("takeover (rolling"), "{line}");
    assert!(line.contains(" 0 record(s) refused"), "{line}");
    // Ping on worker 0, the keep-alive connections on worker 1: each
    // switched, each with its own gap (not asserted: a shared machine).
    for w in ["w0", "w1"] {
        assert!(gap(line, w).is_some(), "a gap for {w}: {line}");
    }
    assert_eq!(d.http.failed, 0, "no keep-alive connection lost: {d}");
    // Frames wait in the rings while nobody reads them; on a loaded
    // machine the probers' own sockets drop datagrams with no event at all
    // (the hot upgrade case of tests/disruption.rs allows the same 1 %).
    assert!(d.udp.missing * 100 <= d.udp.sent, "at most 1 % lost: {d}");
    assert!(d.udp.received > 1000 && d.udp.after_gap > 0, "{d}");
    t.lab
        .curl("client", "http://10.0.0.100/")
        .expect("the VIP answers after the upgrade");
}

//! What clients see of an event on the load balancer (issue 14), measured
//! by the probers of `rvs_e2e::disrupt` (1 ms ping to the VIP, a numbered
//! 50,000 datagrams/s UDP stream through the UDP FNAT VIP, wrk keep-alive
//! connections through the TCP FNAT VIP) across the event.
//!
//! The reference is a plain restart (SIGTERM, start, the configuration
//! applied again), what an operator does without hot upgrade: the test
//! checks that the probers see what it costs (silence at least as long as
//! rvsd took to stop, datagrams lost, every keep-alive connection lost:
//! the new rvsd does not know them) and that traffic comes back.
//!
//! A hot upgrade (`rvsd --takeover`, on both backends): the configuration
//! carries over, no datagram is lost and no request fails (the keep-alive
//! connections move with the tables), nothing of the host is undone by the
//! old rvsd exiting (addresses, kni devices, nft tables, the XDP program
//! attached as it was); then stopping the new rvsd gives the ports back. A
//! successor that fails before the freeze or after its workers ran leaves
//! the running rvsd forwarding. Each case prints its figures
//! (BENCHMARKS.md "Hot upgrade").

use std::time::Duration;

use rvs_e2e::disrupt::{udp_echoes, ProbeOpts, Probes};
use rvs_e2e::topo::{RvsdOpts, TwoArm};

fn configure(t: &TwoArm) {
    t.tutorial_fnat();
    t.udp_fnat_service(&["192.168.100.2:53", "192.168.100.3:53"]);
}

#[test]
fn a_plain_restart_silences_the_vip_and_loses_datagrams() {
    rvs_e2e::require_tools(&["ip", "nft", "ping", "wrk", "nginx"]);
    let mut t = TwoArm::new(&RvsdOpts::default());
    configure(&t);
    udp_echoes(&mut t.lab, &["rs1", "rs2"]);
    t.lab
        .curl("client", "http://10.0.0.100/")
        .expect("the VIP answers before the restart");
    // 10,000 datagrams/s rather than the issue's 50,000: on a CI machine
    // shared with the build, 50k starves wrk (BENCHMARKS runs 50k quiet).
    let o = ProbeOpts {
        udp_pps: 10_000,
        ..ProbeOpts::default()
    };
    let probes = Probes::start(&mut t.lab, &o);
    std::thread::sleep(Duration::from_millis(1500));
    let down = t.rvsd.restart(&mut t.lab);
    configure(&t);
    let d = probes.finish(&mut t.lab);
    println!(
        "plain restart ({}; rvsd took {} ms to stop): {d}",
        std::env::var("RVS_E2E_BACKEND").unwrap_or_else(|_| "af_packet".into()),
        down.as_millis()
    );
    assert!(
        d.udp.received > 1000,
        "the stream ran before the restart: {d}"
    );
    assert!(
        d.udp.missing > 0 && d.ping.received < d.ping.sent,
        "a restart loses datagrams and pings: {d}"
    );
    assert!(
        d.http.failed >= o.http_conns as u64 && d.http.requests > 0,
        "each keep-alive connection had a request pending and lost it: {d}"
    );
    assert!(
        d.udp.longest_gap_ms >= down.as_millis() as f64,
        "the stream was silent at least while rvsd stopped: {d}"
    );
    assert!(
        d.udp.after_gap > 0,
        "traffic came back after the restart: {d}"
    );
}

/// The backend the suite runs on.
fn backend() -> String {
    std::env::var("RVS_E2E_BACKEND").unwrap_or_else(|_| "af_packet".into())
}

/// What rvsd changed of the host in the `lb` namespace: addresses (the
/// kni devices' among them), nft tables, and the XDP program attached to
/// each port (by id: the same program, never re-attached).
fn host(t: &TwoArm) -> String {
    let mut h = t.lab.must_in("lb", &["ip", "-br", "addr"]);
    h += &t.lab.must_in("lb", &["nft", "list", "tables"]);
    for dev in ["lan", "wan"] {
        let l = t
            .lab
            .must_in("lb", &["ip", "-d", "link", "show", "dev", dev]);
        for x in l.lines().filter(|x| x.contains("prog/xdp")) {
            h += &format!("{dev}: {}\n", x.trim());
        }
    }
    h
}

/// Changes a real server's weight with rvsadm, 2, 3, 4, ..., against
/// `socket` until `stop`: the last weight rvsadm confirmed, and how many
/// changes were refused because a hot upgrade switched over.
fn change_weights(
    socket: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(u32, u32)> {
    std::thread::spawn(move || {
        let (mut last_ok, mut refused) = (0, 0);
        let mut w = 1u32;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            w += 1;
            let o = std::process::Command::new(rvs_e2e::bin("rvsadm"))
                .args(["-e", "-u", "10.0.0.100:53", "-r", "192.168.100.2:53"])
                .args(["-b", "-w", &w.to_string()])
                .env("RVS_SOCKET", &socket)
                .output()
                .expect("run rvsadm");
            let err = String::from_utf8_lossy(&o.stderr);
            if o.status.success() {
                last_ok = w;
            } else if err.contains("hot upgrade") {
                refused += 1;
            } else {
                panic!("rvsadm -e failed: {err}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (last_ok, refused)
    })
}

/// The UDP service's packets in (`rvsadm -ln --stats --exact`).
fn in_packets(t: &TwoArm) -> u64 {
    let out = t.ok(
        "rvsadm",
        &["-ln", "--stats", "--exact", "-u", "10.0.0.100:53"],
    );
    out.lines()
        .find(|l| l.starts_with("UDP"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet count in:\n{out}"))
}

/// The number in the new rvsd's log line "takeover: N configuration
/// change(s) made here during the probation".
fn probation_changes(log: &str) -> u64 {
    let line = log
        .lines()
        .find(|l| l.contains("made here during the probation"))
        .unwrap_or_else(|| panic!("no probation line in the new rvsd's log:\n{log}"));
    let rest = &line[line.find("takeover: ").expect("takeover: ") + 10..];
    rest.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

#[test]
fn a_hot_upgrade_keeps_the_vip_answering_and_the_host_as_it_was() {
    rvs_e2e::require_tools(&["ip", "nft", "ping", "nginx"]);
    let mut t = TwoArm::new(&RvsdOpts::default());
    configure(&t);
    udp_echoes(&mut t.lab, &["rs1", "rs2"]);
    let saved = t.ok("rvsadm", &["-S", "-n"]);
    let before = host(&t);
    if backend() == "af_xdp" {
        assert!(before.contains("prog/xdp"), "rvsd attached XDP: {before}");
    }
    let o = ProbeOpts {
        udp_pps: 10_000,
        ..ProbeOpts::default()
    };
    let probes = Probes::start(&mut t.lab, &o);
    std::thread::sleep(Duration::from_millis(1500));
    // The operator changes the configuration throughout the upgrade.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let changes = change_weights(t.rvsd.socket.clone(), stop.clone());
    let before_pkts = in_packets(&t);
    let up = t.rvsd.upgrade(&mut t.lab);
    // Right after the old rvsd exited: the new one counted only its
    // probation's packets itself, the rest are the old one's bases.
    let after_pkts = in_packets(&t);
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (last_ok, refused) = changes.join().expect("the rvsadm loop");
    let d = probes.finish(&mut t.lab);
    let up = up.unwrap_or_else(|e| panic!("{e}"));
    // No change rvsadm confirmed is lost: the new rvsd has the last one
    // (those made while the old one copied its state went along with it,
    // those of the probation were made in the new one).
    let ln = t.ok("rvsadm", &["-ln", "-u", "10.0.0.100:53"]);
    let in_probation = probation_changes(&t.rvsd_log());
    println!("configuration changes during the upgrade: last weight {last_ok}, {refused} refused at the switch-over, {in_probation} made in the new rvsd's probation\n{ln}");
    assert!(last_ok > 1, "no change was accepted: {ln}");
    println!("UDP service packets in: {before_pkts} before the upgrade, {after_pkts} after");
    assert!(
        after_pkts >= before_pkts && before_pkts > 1000,
        "the counters carried over: {before_pkts} packets in before the upgrade, {after_pkts} after"
    );
    // Changes are refused only from the freeze to the start (a few ms),
    // not through the probation (300 ms: dozens of rvsadm runs).
    assert!(
        refused <= 3,
        "{refused} changes refused: the configuration was frozen for long"
    );
    assert!(
        in_probation >= 1,
        "the new rvsd took changes in its probation"
    );
    assert!(
        ln.lines().any(|l| l.contains("192.168.100.2:53")
            && l.split_whitespace().nth(3) == Some(last_ok.to_string().as_str())),
        "the last confirmed weight {last_ok} is not in:\n{ln}"
    );
    t.ok(
        "rvsadm",
        &[
            "-e",
            "-u",
            "10.0.0.100:53",
            "-r",
            "192.168.100.2:53",
            "-b",
            "-w",
            "1",
        ],
    );
    println!(
        "hot upgrade ({}; the old rvsd exited {} ms after --takeover started): {d}",
        backend(),
        up.as_millis()
    );
    assert_eq!(
        t.ok("rvsadm", &["-S", "-n"]),
        saved,
        "the configuration carried over"
    );
    // The old rvsd exited without giving anything back.
    assert_eq!(host(&t), before, "the host as it was before the upgrade");
    // The connections move with the tables: no request fails.
    assert_eq!(d.http.failed, 0, "no keep-alive connection lost: {d}");
    // Frames wait in the rings while nobody reads them. On a loaded
    // machine the probers' own sockets drop a few datagrams with no
    // event at all (see the failing-successor case's figures), so not
    // zero: far below what the gap would cost if frames were dropped.
    assert!(d.udp.missing * 100 <= d.udp.sent, "at most 1 % lost: {d}");
    pre_copied(&t.rvsd_log());
    assert!(d.udp.received > 1000 && d.udp.after_gap > 0, "{d}");
    t.lab
        .curl("client", "http://10.0.0.100/")
        .expect("the VIP answers after the event");
    // The new rvsd owns the ports: stopping it gives them back.
    let p = t.rvsd_proc();
    p.signal("TERM");
    assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
    let after = host(&t);
    assert!(
        !after.contains("rvs_") && !after.contains("prog/xdp"),
        "the nft tables are gone and no XDP program is attached: {after}"
    );
}

/// The new rvsd's summary line: the tables went while the old one
/// forwarded (records before the freeze), none refused, the keep-alive
/// connections among them; its per-worker gap is printed (not asserted:
/// this machine is shared).
fn pre_copied(log: &str) {
    let line = log
        .lines()
        .find(|l| l.contains("connections moved"))
        .unwrap_or_else(|| panic!("no takeover summary in the new rvsd's log:\n{log}"));
    println!("{line}");
    let num = |after: &str| -> u64 {
        let rest = &line[line
            .find(after)
            .unwrap_or_else(|| panic!("{after}: {line}"))
            + after.len()..];
        rest.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or_else(|_| panic!("{after}: {line}"))
    };
    assert!(num("takeover: ") >= 1, "connections moved: {line}");
    assert!(num("B/conn; ") > 0, "records before the freeze: {line}");
    assert!(line.contains(" 0 record(s) refused"), "{line}");
}

#[test]
fn a_successor_that_fails_leaves_the_running_rvsd_forwarding() {
    rvs_e2e::require_tools(&["ip", "nft", "ping", "nginx"]);
    let mut t = TwoArm::new(&RvsdOpts::default());
    configure(&t);
    udp_echoes(&mut t.lab, &["rs1", "rs2"]);
    // Before the freeze (nothing stopped), after it but before the new
    // workers ran (the old thaws as it froze), and after they ran (the old
    // resumes from the rings as they left them; on af_xdp it rebuilds its
    // UMEM pools from the rings).
    for step in ["prepared", "start", "probation"] {
        let o = ProbeOpts {
            secs: 2.5,
            udp_pps: 10_000,
            ..ProbeOpts::default()
        };
        let probes = Probes::start(&mut t.lab, &o);
        std::thread::sleep(Duration::from_millis(800));
        let e = t
            .rvsd
            .upgrade_with(&mut t.lab, &[("RVS_TEST_TAKEOVER_FAIL", step)])
            .expect_err("the injected failure");
        let d = probes.finish(&mut t.lab);
        println!("successor failing at {step} ({}): {d}", backend());
        assert!(e.contains(&format!("failed at {step}")), "{e}");
        assert!(t.rvsd_proc().alive(), "the old rvsd runs on after {step}");
        assert!(d.udp.after_gap > 0 && d.udp.received > 1000, "{step}: {d}");
        t.lab
            .curl("client", "http://10.0.0.100/")
            .unwrap_or_else(|e| panic!("the VIP answers after {step}: {e}"));
        assert!(
            t.rvsd_log().contains("failed, forwarding on"),
            "{}",
            t.rvsd_log()
        );
    }
    // Killed (SIGKILL) while its workers ran: the old one notices the
    // connection close, makes sure it is gone and resumes from the rings.
    let o = ProbeOpts {
        secs: 2.5,
        udp_pps: 10_000,
        ..ProbeOpts::default()
    };
    let probes = Probes::start(&mut t.lab, &o);
    std::thread::sleep(Duration::from_millis(800));
    t.rvsd
        .upgrade_with(&mut t.lab, &[("RVS_TEST_TAKEOVER_FAIL", "die")])
        .expect_err("the successor was killed");
    let d = probes.finish(&mut t.lab);
    println!("successor killed in its probation ({}): {d}", backend());
    assert!(t.rvsd_proc().alive(), "the old rvsd runs on after the kill");
    assert!(d.udp.after_gap > 0 && d.udp.received > 1000, "kill: {d}");
    t.lab
        .curl("client", "http://10.0.0.100/")
        .unwrap_or_else(|e| panic!("the VIP answers after the kill: {e}"));
    let log = t.rvsd_log();
    assert!(log.contains("connection lost"), "{log}");
    if backend() == "af_xdp" {
        assert!(
            t.rvsd_log().contains("UMEM pools rebuilt from the rings"),
            "{}",
            t.rvsd_log()
        );
    }
}

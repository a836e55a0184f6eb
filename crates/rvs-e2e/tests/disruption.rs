//! What clients see of an event on the load balancer (issue 14), measured
//! by the probers of `rvs_e2e::disrupt` (1 ms ping to the VIP, a numbered
//! 50,000 datagrams/s UDP stream through the UDP FNAT VIP, wrk keep-alive
//! connections through the TCP FNAT VIP) across the event.
//!
//! The reference is a plain restart (SIGTERM, start, the configuration
//! applied again), what an operator does without hot upgrade: the test
//! checks that the probers see what it costs (silence at least as long as
//! rvsd took to stop, datagrams lost, every keep-alive connection lost:
//! the new rvsd does not know them) and that traffic comes back, and
//! prints the figures (BENCHMARKS.md "Hot upgrade").

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
    // 10,000 datagrams/s rather than the 50,000: on a CI machine
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

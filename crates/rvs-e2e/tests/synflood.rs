//! A spoofed SYN flood against the tutorial's FNAT service without the SYN
//! proxy, larger than the local address's port pool (64,512 ports, one
//! worker): every SYN takes a port, none completes its handshake. Without
//! recycling, the pool stays exhausted for the SYN_RECV timeout after the
//! flood and new clients are refused (`no_laddr_port`); with it, the oldest
//! half-open connections give their ports up and every request right after
//! the flood is served.

use rvs_e2e::topo::{RvsdOpts, TwoArm};
use std::time::Instant;

/// The counter `reason` in `rvsip -s link show`'s drop lists, summed over ports.
fn drops(t: &TwoArm, reason: &str) -> u64 {
    t.ok("rvsip", &["-s", "link", "show"])
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{reason}:")))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
}

#[test]
fn a_syn_flood_larger_than_the_port_pool_does_not_lock_clients_out() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "hping3"]);
    let t = TwoArm::new(&RvsdOpts::default());
    t.tutorial_fnat();
    t.lab
        .curl("client", "http://10.0.0.100/")
        .unwrap_or_else(|e| panic!("curl before the flood: {e}"));

    // 80,000 spoofed SYNs at most 50,000/s, to the VIP only.
    let start = Instant::now();
    let o = t.lab.exec(
        "client",
        &[
            "hping3",
            "-q",
            "-S",
            "-p",
            "80",
            "--rand-source",
            "-i",
            "u20",
            "-c",
            "80000",
            "10.0.0.100",
        ],
    );
    println!(
        "hping3: {:?} in {:?}\n{}",
        o.status,
        start.elapsed(),
        String::from_utf8_lossy(&o.stderr)
    );
    let addr = t.ok("rvsip", &["addr", "show"]);
    println!("after the flood:\n$ rvsip addr show\n{addr}");
    let recycled = drops(&t, "syn_recv_recycled");
    println!(
        "syn_recv_recycled {recycled}, no_laddr_port {}",
        drops(&t, "no_laddr_port")
    );

    // Every request right after the flood is served.
    for k in 0..10 {
        t.lab
            .curl("client", "http://10.0.0.100/")
            .unwrap_or_else(|e| {
                panic!(
                    "request {k} after the flood failed: {e}\n{}",
                    t.ok("rvsip", &["-s", "link", "show"])
                )
            });
    }
    assert!(
        recycled > 0,
        "the flood (more SYNs than ports) must have recycled half-open connections"
    );
    assert_eq!(
        drops(&t, "no_laddr_port"),
        0,
        "no new flow refused for want of a port"
    );
}

//! The DPDK backend's `net_af_xdp` port and its interface: the PMD attaches
//! an XDP program the old way (no BPF link), so it outlives a killed rvsd.
//! A stopped rvsd closes its ports and cleans EAL up (the program goes);
//! after SIGKILL the program stays and `rvsd --release IFACE` detaches it.
//! Needs an rvsd built with `--features dpdk` (scripts/test-all.sh):
//! `RVS_E2E_BACKEND=dpdk-af_xdp cargo test -p rvs-e2e --test dpdk -- --ignored`.

use std::time::Duration;

use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;

/// `ip link show IFACE` in the `lb` namespace.
fn link(lab: &Lab, iface: &str) -> String {
    lab.must_in("lb", &["ip", "link", "show", iface])
}

fn start(lab: &mut Lab, tag: &str) -> Rvsd {
    let opts = RvsdOpts {
        workers: 2,
        backend: "dpdk-af_xdp".into(),
        ..Default::default()
    };
    Rvsd::start_in(lab, "lb", tag, &[("dpdk0", "lan1")], &opts)
}

#[test]
#[ignore = "needs rvsd built with --features dpdk"]
fn dpdk_af_xdp_program_goes_on_stop_and_release_detaches_it_after_a_kill() {
    rvs_e2e::require_tools(&["ip"]);
    let mut lab = Lab::new();
    lab.add_ns("lb");
    lab.add_ns("peer");
    lab.veth("lb", "lan1", "peer", "eth0");

    let r = start(&mut lab, "");
    // A veth has one queue, so no rte_flow: the port says it hands off.
    let links = r.ok("rvsip", &["link", "show"]);
    println!("$ rvsip link show\n{links}");
    assert!(
        links.contains("steering hand-off (no rte_flow: 1 device queue(s) for 2 workers)"),
        "{links}"
    );
    let l = link(&lab, "lan1");
    assert!(l.contains("prog/xdp") && l.contains("xsk_def_prog"), "{l}");

    // SIGTERM: ports closed, EAL cleaned up, the program detached.
    let p = lab.proc(r.index);
    p.signal("TERM");
    assert_eq!(
        p.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        r.rvsd_log()
    );
    let log = r.rvsd_log();
    assert!(log.contains("rvs-io: DPDK EAL cleaned up"), "{log}");
    let l = link(&lab, "lan1");
    assert!(
        !l.contains("xdp"),
        "an XDP program left after a clean stop:\n{l}"
    );

    // SIGKILL: the PMD's program stays on the interface...
    let r = start(&mut lab, "k");
    let p = lab.proc(r.index);
    p.signal("KILL");
    assert!(p.wait_exit(Duration::from_secs(5)).is_some());
    let l = link(&lab, "lan1");
    println!("after SIGKILL:\n{l}");
    assert!(l.contains("prog/xdp") && l.contains("xsk_def_prog"), "{l}");

    // ...until `rvsd --release` detaches it (with the rest of the takeover).
    let o = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.ns("lb")])
        .arg(rvs_e2e::bin("rvsd"))
        .args(["--release", "lan1"])
        .env("RVS_RUN_DIR", &r.run_dir)
        .output()
        .expect("rvsd --release");
    let out = String::from_utf8_lossy(&o.stdout);
    println!(
        "$ rvsd --release lan1\n{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{out}");
    assert!(out.contains("(xsk_def_prog) detached"), "{out}");
    let l = link(&lab, "lan1");
    assert!(!l.contains("xdp"), "--release left the XDP program:\n{l}");
}

//! The data-plane watchdog: a worker that stops making progress (here
//! frozen by ptrace, as a worker stuck in a loop would be, while the rest
//! of rvsd runs) makes rvsd drop the carrier of its kni devices, so that
//! the routing daemons on them withdraw the node, and run the `notify`
//! program; when the worker has run again for a while, the carrier comes
//! back, with the operator's addresses and routes on the devices intact.
//! rvsd dying needs no watchdog: its kni devices disappear with it
//! (asserted at the end).

use rvs_e2e::topo::{RvsdOpts, TwoArm};
use std::time::{Duration, Instant};

/// The flags of `dev` in the lb namespace (`BROADCAST,MULTICAST,UP,LOWER_UP`).
fn flags(t: &TwoArm, dev: &str) -> Vec<String> {
    let s = t
        .lab
        .must_in("lb", &["ip", "-o", "link", "show", "dev", dev]);
    let f = s.split('<').nth(1).and_then(|r| r.split('>').next());
    f.unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect()
}

/// Whether `dev` is administratively up.
fn is_up(t: &TwoArm, dev: &str) -> bool {
    flags(t, dev).iter().any(|f| f == "UP")
}

/// Whether `dev` has carrier.
fn has_carrier(t: &TwoArm, dev: &str) -> bool {
    flags(t, dev).iter().any(|f| f == "LOWER_UP")
}

fn wait_for(what: &str, t: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < t {
        if f() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not within {t:?}");
}

#[test]
fn a_stalled_worker_drops_the_kni_carrier_until_it_has_run_again_for_a_while() {
    rvs_e2e::require_tools(&["ip", "nginx", "python3"]);
    // The notify program: appends its arguments to a file next to it.
    let notify = std::env::temp_dir().join(format!("rvs-health-{}.sh", std::process::id()));
    let log = std::path::PathBuf::from(format!("{}.log", notify.display()));
    std::fs::write(&notify, "#!/bin/sh\necho \"$@\" >>\"$0.log\"\n").expect("notify script");
    let _ = std::process::Command::new("chmod")
        .args(["+x", &notify.to_string_lossy()])
        .status();
    struct Rm(Vec<std::path::PathBuf>);
    impl Drop for Rm {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let _rm = Rm(vec![notify.clone(), log.clone()]);

    let mut t = TwoArm::new(&RvsdOpts {
        workers: 2,
        extra: format!(
            "[health]\nstall_ms = 300\nnotify = \"{}\"\n",
            notify.display()
        ),
        ..Default::default()
    });
    t.tutorial_fnat();
    t.lab
        .must_in("lb", &["ip", "link", "set", "dpdk1.kni", "up"]);
    // The operator has no use for the LAN's kni device here.
    t.lab
        .must_in("lb", &["ip", "link", "set", "dpdk0.kni", "down"]);
    assert!(is_up(&t, "dpdk1.kni") && !is_up(&t, "dpdk0.kni"));
    // The operator's configuration on the kni device (the OSPF/BGP set-ups
    // put a default route there): it must survive the watchdog.
    t.lab.must_in(
        "lb",
        &["ip", "addr", "add", "10.0.0.2/16", "dev", "dpdk1.kni"],
    );
    t.lab.must_in(
        "lb",
        &[
            "ip",
            "route",
            "add",
            "172.31.0.0/16",
            "via",
            "10.0.0.48",
            "dev",
            "dpdk1.kni",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        has_carrier(&t, "dpdk1.kni"),
        "healthy workers: carrier stays on"
    );

    let pid = t.rvsd_proc().pid();
    let freezer = rvs_e2e::fault::freeze_thread(&mut t.lab, "lb", pid, "rvs-worker-1", 2.0);
    let down = wait_for(
        "dpdk1.kni loses its carrier",
        Duration::from_secs(2),
        || !has_carrier(&t, "dpdk1.kni"),
    );
    println!("worker 1 frozen: dpdk1.kni without carrier after {down:?}");
    assert!(
        is_up(&t, "dpdk1.kni"),
        "the administrative state stays the operator's"
    );
    let up = wait_for("dpdk1.kni carrier back", Duration::from_secs(5), || {
        has_carrier(&t, "dpdk1.kni")
    });
    println!("dpdk1.kni carrier back {up:?} later (2 s frozen, then 2 x stall_ms held down)");
    let f = t.lab.proc(freezer).log();
    assert!(f.contains("frozen") && f.contains("thawed"), "freezer: {f}");
    assert!(
        !is_up(&t, "dpdk0.kni"),
        "a kni device the operator left down stays down"
    );
    let routes = t
        .lab
        .must_in("lb", &["ip", "route", "show", "dev", "dpdk1.kni"]);
    assert!(
        routes.contains("172.31.0.0/16 via 10.0.0.48"),
        "the operator's route through dpdk1.kni survives:\n{routes}"
    );
    let rl = t.rvsd_log();
    assert!(
        rl.contains("worker 1 made no progress") && rl.contains("dpdk1.kni"),
        "rvsd log names the worker and the device:\n{rl}"
    );
    // The notify program ran for both changes, in order.
    wait_for("notify ran twice", Duration::from_secs(2), || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.lines().count() >= 2)
    });
    let s = std::fs::read_to_string(&log).expect("notify log");
    assert_eq!(s.lines().collect::<Vec<_>>(), ["stalled 1", "recovered"]);
    // Forwarding goes on.
    t.lab
        .curl("client", "http://10.0.0.100/")
        .unwrap_or_else(|e| panic!("curl after recovery: {e}"));

    // rvsd gone (SIGKILL: no clean-up of its own): the kni devices go with it.
    t.rvsd_proc().signal("KILL");
    wait_for("dpdk1.kni gone with rvsd", Duration::from_secs(3), || {
        !t.lab
            .exec("lb", &["ip", "link", "show", "dev", "dpdk1.kni"])
            .status
            .success()
    });
}

//! Case 8: changes under load. wrk keeps 10 keep-alive connections busy
//! while a real server is added, another removed and the configuration
//! reloaded with SIGHUP: no request fails and rvsd never restarts.

use std::time::Duration;

use rvs_e2e::topo::{RvsdOpts, TwoArm};

#[test]
fn add_remove_and_reload_under_load() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft", "wrk"]);
    let mut t = TwoArm::new(&RvsdOpts::default());
    t.add_rs(3);
    t.tutorial_fnat();
    let pid = t.rvsd_proc().pid();
    let wrk = t.lab.spawn(
        "client",
        "wrk",
        &[
            "wrk",
            "-t1",
            "-c10",
            "-d6s",
            "--latency",
            "http://10.0.0.100/",
        ],
        &[],
    );
    std::thread::sleep(Duration::from_millis(1500));
    t.ok(
        "rvsadm",
        &["-a", "-t", "10.0.0.100:80", "-r", "192.168.100.4", "-b"],
    );
    println!("added rs3 under load");
    std::thread::sleep(Duration::from_millis(1000));
    t.ok(
        "rvsadm",
        &["-d", "-t", "10.0.0.100:80", "-r", "192.168.100.3"],
    );
    println!("removed rs2 under load");
    std::thread::sleep(Duration::from_millis(1000));
    t.rvsd_proc().signal("HUP");
    println!("sent SIGHUP under load");
    let code = t.lab.proc(wrk).wait_exit(Duration::from_secs(15));
    let out = t.lab.proc(wrk).log();
    println!("{out}");
    assert_eq!(code, Some(0), "wrk failed");
    let requests: u64 = out
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in ")
                .and_then(|(n, _)| n.trim().parse().ok())
        })
        .expect("wrk prints its request count");
    assert!(requests > 100, "too few requests: {requests}");
    assert!(
        !out.contains("Socket errors"),
        "requests failed during the changes:\n{out}"
    );
    assert!(
        !out.contains("Non-2xx"),
        "error answers during the changes:\n{out}"
    );
    assert!(
        t.rvsd_proc().alive() && t.rvsd_proc().pid() == pid,
        "rvsd restarted"
    );
    assert!(t.rvsd_log().contains("reloaded"), "{}", t.rvsd_log());
    // New connections now go to rs1 and rs3, never to the removed rs2.
    let mut seen = Vec::new();
    for _ in 0..6 {
        let body = t
            .lab
            .curl("client", "http://10.0.0.100/")
            .expect("curl after the changes");
        seen.push(body.split(' ').next().unwrap_or("").to_string());
    }
    println!("after the changes: {seen:?}");
    assert!(seen.iter().all(|s| s != "rs2"), "{seen:?}");
    assert!(seen.iter().any(|s| s == "rs3"), "{seen:?}");
}

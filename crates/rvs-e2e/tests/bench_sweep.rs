//! `rvs-bench e2e --cases pps` (issue 12 item 4): the packet-rate case is a
//! rate sweep, repeated and interleaved, with a DPDK testpmd reference row.
//! Checks what a reader of its output relies on, not any figure's size:
//! the configurations alternate (A B A B), the generator is paced to the rate
//! asked for (measured at the client) and says when it fell short, testpmd's
//! frames are counted once,
//! and the summary has one line per configuration and rate over all repeats.

use std::process::Command;

use rvs_e2e::{bin, is_root, require_tools};
use serde_json::Value;

#[test]
fn pps_sweep_interleaves_repeats_and_reports_offered_rates() {
    assert!(is_root(), "rvs-bench e2e needs root (network namespaces)");
    require_tools(&[
        "ip", "nft", "nginx", "wrk", "taskset", "ss", "sysctl", "bridge",
    ]);
    require_tools(&["dpdk-testpmd"]);
    let o = Command::new(bin("rvs-bench"))
        .args([
            "e2e",
            "--json",
            "--cases",
            "pps",
            "--lbs",
            "kernel,testpmd-af_xdp",
        ])
        .args(["--repeat", "2", "--rates", "20k,max"])
        .args(["--pps-secs", "2", "--warm-secs", "0.5"])
        .output()
        .expect("run rvs-bench");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "rvs-bench failed: {out}\n{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let errors: Vec<&Value> = lines.iter().filter(|v| v.get("error").is_some()).collect();
    assert!(errors.is_empty(), "error lines: {errors:?}");
    let case = |c: &str| -> Vec<&Value> { lines.iter().filter(|v| v["case"] == c).collect() };
    let points = case("pps");
    let order: Vec<(&str, u64)> = points
        .iter()
        .map(|p| {
            (
                p["lb"].as_str().unwrap_or(""),
                p["rep"].as_u64().unwrap_or(9),
            )
        })
        .collect();
    let (k, t) = ("kernel", "testpmd-af_xdp");
    assert_eq!(
        order,
        [
            (k, 0),
            (k, 0),
            (t, 0),
            (t, 0),
            (k, 1),
            (k, 1),
            (t, 1),
            (t, 1)
        ],
        "one point per configuration, rate and repeat, the configurations interleaved"
    );
    for p in &points {
        let offered = p["offered_pps"].as_f64().expect("offered_pps");
        let delivered = p["delivered_pps"].as_f64().expect("delivered_pps");
        if p["target_pps"] == 20_000 {
            // Paced, not flat out (which offers several times more); how
            // close it gets to 20k depends on the machine's load, so that
            // is reported (gen_short), not asserted.
            assert!(
                (1_000.0..=22_000.0).contains(&offered),
                "asked for 20k pps, the client sent {offered}: {p}"
            );
            let short = if offered < 19_000.0 { "true" } else { "false" };
            assert_eq!(
                p["gen_short"], short,
                "gen_short says whether 20k was reached: {p}"
            );
        }
        // A frame flooded by the switch to both real servers would count twice.
        assert!(
            delivered <= 1.05 * offered + 500.0,
            "counted more than offered: {p}"
        );
        // CPU per packet comes from 10 ms ticks: a cheap path at 20k pps
        // may count none in the window, and then says so (null, with
        // cpu_ticks 0) rather than claiming 0 ns; flat out it always counts.
        let dp = p["dp_ns_per_pkt"].as_f64();
        let ticks = p["cpu_ticks"].as_u64().expect("cpu_ticks");
        match dp {
            Some(x) => assert!(x > 0.0 && ticks > 0, "{p}"),
            None => assert!(
                ticks == 0 && p["target_pps"] == 20_000,
                "no CPU figure although ticks were counted or the rate was max: {p}"
            ),
        }
    }
    let summary = case("pps_summary");
    assert_eq!(
        summary.len(),
        4,
        "one summary per configuration and rate: {summary:?}"
    );
    assert!(summary.iter().all(|s| s["repeats"] == 2), "{summary:?}");
    assert!(
        err.contains("| testpmd-af_xdp | max |"),
        "the Markdown summary on stderr: {err}"
    );
}

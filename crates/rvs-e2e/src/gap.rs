//! Failover gaps as clients see them: request loops of new connections
//! from a namespace (`curl --connect-timeout 0.2`, so a SYN lost to a dead
//! node costs 200 ms), each request logged with its start, end and outcome,
//! then read back relative to the instant of a failure. Used by the routing
//! measurements of `tests/bgp.rs` and `tests/ospf.rs` (ignored tests that
//! print figures for BENCHMARKS.md; no timed assertion).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Lab;

/// Wall-clock seconds (the loops log `date +%s.%N`).
pub fn wall() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// One request of a loop.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// Wall-clock start (s).
    pub start: f64,
    /// Wall-clock end (s).
    pub end: f64,
    /// Answered.
    pub ok: bool,
}

/// Request loops running in the lab.
pub struct Loops {
    index: usize,
    stop: PathBuf,
}

impl Loops {
    /// Starts `n` loops side by side in namespace `ns`, each requesting `url`
    /// on a new connection until [`Loops::stop`].
    pub fn start(lab: &mut Lab, ns: &str, url: &str, n: usize) -> Loops {
        let stop = lab.dir.join("curl-loop.stop");
        let script = format!(
            "for k in $(seq {n}); do (while [ ! -e {stop} ]; do s=$(date +%s.%N); \
             if curl -s -o /dev/null --connect-timeout 0.2 -m 1 {url}; then r=ok; else r=fail; fi; \
             echo \"$s $(date +%s.%N) $r\"; done) & done; wait",
            stop = stop.display()
        );
        let index = lab.spawn(ns, "curl-loop", &["sh", "-c", &script], &[]);
        Loops { index, stop }
    }

    /// Stops the loops and returns their requests.
    pub fn stop(self, lab: &mut Lab) -> Vec<Request> {
        std::fs::write(&self.stop, "").expect("stop file");
        let p = lab.proc(self.index);
        assert!(
            p.wait_exit(Duration::from_secs(3)).is_some(),
            "the client's request loops did not stop"
        );
        p.log()
            .lines()
            .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
                [s, e, r] => Some(Request {
                    start: s.parse().ok()?,
                    end: e.parse().ok()?,
                    ok: r == "ok",
                }),
                _ => None,
            })
            .collect()
    }
}

/// What the client saw around a failure at wall-clock `at` whose route was
/// withdrawn `withdrawn` later.
#[derive(Clone, Copy, Debug)]
pub struct Gap {
    /// From the failure to the route's withdrawal (ms).
    pub withdrawn_ms: f64,
    /// From the failure to the start and to the end of the last request
    /// that failed (ms; 0 when none failed).
    pub last_fail_ms: (f64, f64),
    /// Requests that failed / all requests, from 1 s before the failure on.
    pub failed: usize,
    /// All requests from 1 s before the failure on.
    pub total: usize,
    /// Requests started more than 1 s after the withdrawal that failed
    /// (there should be none), and whether any was started then at all.
    pub late_failures: usize,
    /// Whether requests were made after the withdrawal settled.
    pub any_after: bool,
}

impl Gap {
    /// Reads `reqs` around a failure at `at` (wall clock).
    pub fn of(reqs: &[Request], at: f64, withdrawn: Duration) -> Gap {
        let reqs: Vec<&Request> = reqs.iter().filter(|r| r.end >= at - 1.0).collect();
        let last = reqs.iter().filter(|r| !r.ok).fold((at, at), |a, r| {
            if r.end > a.1 {
                (r.start, r.end)
            } else {
                a
            }
        });
        let settled = at + withdrawn.as_secs_f64() + 1.0;
        Gap {
            withdrawn_ms: withdrawn.as_secs_f64() * 1000.0,
            last_fail_ms: ((last.0 - at) * 1000.0, (last.1 - at) * 1000.0),
            failed: reqs.iter().filter(|r| !r.ok).count(),
            total: reqs.len(),
            late_failures: reqs.iter().filter(|r| r.start > settled && !r.ok).count(),
            any_after: reqs.iter().any(|r| r.start > settled),
        }
    }
}

/// Prints min / median / max of the withdrawal and last-failure times of
/// `gaps` under `label`.
pub fn summary(label: &str, gaps: &[Gap]) {
    let mut w: Vec<f64> = gaps.iter().map(|g| g.withdrawn_ms).collect();
    let mut l: Vec<f64> = gaps.iter().map(|g| g.last_fail_ms.0).collect();
    for (what, v) in [
        ("withdrawn", &mut w),
        ("last failed request started", &mut l),
    ] {
        v.sort_by(f64::total_cmp);
        if let (Some(min), Some(max)) = (v.first(), v.last()) {
            println!(
                "{label}: {what} ms over {} runs: min {min:.0} median {:.0} max {max:.0}",
                v.len(),
                v[v.len() / 2]
            );
        }
    }
}

/// `RVS_GAP_RUNS` (default 1): rounds of a gap measurement.
pub fn runs() -> usize {
    std::env::var("RVS_GAP_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

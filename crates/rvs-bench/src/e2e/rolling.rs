//! `rvs-bench e2e --cases upgrade,upgrade-rolling --workers 2`: whether a
//! rolling hot upgrade (`rvsd --takeover --rolling`: old worker w parks,
//! new worker w starts, then w+1) lowers the worst gap of a worker against
//! all at once. Besides the probers' longest gaps
//! ([`super::disruption`]), each upgrade reports the new rvsd's own
//! account from its summary line: the gap per worker between the old
//! worker's last frame read and the new one's first (CLOCK_MONOTONIC),
//! its worst (`rvsd_gap_max_ms`), its best, and how many workers read a
//! frame on both sides (a worker that saw no traffic has no gap).

/// With more than one worker: the client's TCP connections from odd
/// source ports, so that the keep-alive HTTP connections go to worker 1
/// while the ping goes to worker 0 (`rvs_io::steer`: `(src ^ sport) %
/// workers`, the client's address even). Linux's `connect()` takes ports of
/// the parity of the range's low end first: with its default even one
/// every connection went to worker 0, and worker 1 had no gap to measure.
pub fn spread(t: &rvs_e2e::topo::TwoArm, workers: u16) {
    if workers > 1 {
        t.lab.must_in(
            "client",
            &["sysctl", "-qw", "net.ipv4.ip_local_port_range=32769 60999"],
        );
    }
}

/// The new rvsd's gap per worker, summed up (NaN: none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RvsdGap {
    /// The worst worker's gap (ms).
    pub max_ms: f64,
    /// The best worker's gap (ms).
    pub min_ms: f64,
    /// Workers with a gap.
    pub workers: f64,
}

impl Default for RvsdGap {
    fn default() -> Self {
        RvsdGap {
            max_ms: f64::NAN,
            min_ms: f64::NAN,
            workers: f64::NAN,
        }
    }
}

impl RvsdGap {
    /// From the summary line in the new rvsd's `log` (`gap per worker
    /// (...): w0 1.436 ms, w1 no frame (...)`).
    pub fn of_log(log: &str) -> RvsdGap {
        let Some(line) = log.lines().find(|l| l.contains("connections moved")) else {
            return RvsdGap::default();
        };
        let gaps = per_worker(line);
        let max = gaps.iter().copied().fold(f64::NAN, f64::max);
        let min = gaps.iter().copied().fold(f64::NAN, f64::min);
        RvsdGap {
            max_ms: max,
            min_ms: min,
            workers: gaps.len() as f64,
        }
    }
}

/// The gaps (ms) of the workers that read a frame on both sides.
fn per_worker(line: &str) -> Vec<f64> {
    let Some(at) = line.find("last read there): ") else {
        return Vec::new();
    };
    let rest = &line[at + "last read there): ".len()..];
    let list = rest.split(" (").next().unwrap_or("");
    list.split(", ")
        .filter_map(|w| {
            let mut it = w.split_whitespace();
            let _name = it.next()?;
            let v: f64 = it.next()?.parse().ok()?;
            (it.next() == Some("ms")).then_some(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_and_best_worker_gap_come_from_the_summary_line() {
        let log = "x\n2026 INFO takeover (rolling, one worker at a time): 10 connections moved, 972 bytes, gap per worker (first read here - last read there): w0 1.436 ms, w1 no frame, w2 0.250 ms (last read there to FROZEN 1.098 ms, FROZEN to go 6.435 ms); 0 record(s) refused\n";
        let g = RvsdGap::of_log(log);
        assert_eq!((g.max_ms, g.min_ms, g.workers), (1.436, 0.25, 2.0));
        let none = RvsdGap::of_log("no summary");
        assert!(none.max_ms.is_nan() && none.workers.is_nan());
    }
}

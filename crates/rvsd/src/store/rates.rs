//! Rates for `ipvsadm --rate` over a sliding window: rvsd samples every
//! service's and dest's counters once a second and keeps the last
//! [`WINDOW_SAMPLES`]; a rate is the change from the oldest to the newest
//! sample per second of the time between them, so a burst shows for
//! [`WINDOW_SAMPLES`] − 1 seconds instead of one, and short gaps between
//! samples do not make it jump.

use std::collections::VecDeque;

use rvs_api::Rates;
use rvs_core::stats::CounterValues;

/// Samples kept per object: rates span up to this many minus one seconds.
pub const WINDOW_SAMPLES: usize = 5;

/// The last [`WINDOW_SAMPLES`] counter samples of one object, oldest first.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    samples: VecDeque<(u64, CounterValues)>,
}

/// Per-second rate of a counter between two samples `dt_ms` apart.
fn per_s(a: u64, b: u64, dt_ms: u64) -> u64 {
    let d = u128::from(b.saturating_sub(a)) * 1000 / u128::from(dt_ms.max(1));
    u64::try_from(d).unwrap_or(u64::MAX)
}

/// Whether a counter went back (a zeroing): the window starts over.
fn went_back(a: &CounterValues, b: &CounterValues) -> bool {
    b.conns < a.conns
        || b.inpkts < a.inpkts
        || b.outpkts < a.outpkts
        || b.inbytes < a.inbytes
        || b.outbytes < a.outbytes
}

impl RateWindow {
    /// Adds the sample `v` taken at `now_ms`. A sample at or before the
    /// newest one is ignored (a stalled clock cannot divide by zero); one
    /// with a counter lower than before (the counters were zeroed) starts
    /// the window over.
    pub fn push(&mut self, now_ms: u64, v: CounterValues) {
        if let Some((t, last)) = self.samples.back() {
            if *t >= now_ms {
                return;
            }
            if went_back(last, &v) {
                self.samples.clear();
            }
        }
        self.samples.push_back((now_ms, v));
        while self.samples.len() > WINDOW_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// The rates over the window: zeros until it holds two samples.
    pub fn rates(&self) -> Rates {
        let (Some((t0, a)), Some((t1, b))) = (self.samples.front(), self.samples.back()) else {
            return Rates::default();
        };
        if self.samples.len() < 2 {
            return Rates::default();
        }
        let dt = t1.saturating_sub(*t0);
        Rates {
            cps: per_s(a.conns, b.conns, dt),
            inpps: per_s(a.inpkts, b.inpkts, dt),
            outpps: per_s(a.outpkts, b.outpkts, dt),
            inbps: per_s(a.inbytes, b.inbytes, dt),
            outbps: per_s(a.outbytes, b.outbytes, dt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(conns: u64, inbytes: u64) -> CounterValues {
        CounterValues {
            conns,
            inbytes,
            ..CounterValues::default()
        }
    }

    #[test]
    fn a_rate_spans_the_whole_window() {
        let mut w = RateWindow::default();
        w.push(1_000, v(0, 0));
        assert_eq!(w.rates(), Rates::default(), "one sample gives no rate");
        // 100 connections in the first second, then none.
        w.push(2_000, v(100, 1000));
        assert_eq!((w.rates().cps, w.rates().inbps), (100, 1000));
        w.push(3_000, v(100, 1000));
        assert_eq!(w.rates().cps, 50, "the burst still shows, spread over 2 s");
        for t in [4_000, 5_000] {
            w.push(t, v(100, 1000));
        }
        assert_eq!(w.rates().cps, 25, "window of 5 samples: 100 over 4 s");
        w.push(6_000, v(100, 1000));
        assert_eq!(w.rates().cps, 0, "the burst left the window");
    }

    #[test]
    fn uneven_sample_times_divide_by_the_real_span() {
        let mut w = RateWindow::default();
        w.push(1_000, v(0, 0));
        w.push(2_500, v(30, 0));
        assert_eq!(w.rates().cps, 20);
        w.push(2_500, v(90, 0));
        assert_eq!(w.rates().cps, 20, "a sample at the same time is ignored");
    }

    #[test]
    fn zeroed_counters_start_the_window_over() {
        let mut w = RateWindow::default();
        w.push(1_000, v(0, 0));
        w.push(2_000, v(50, 0));
        w.push(3_000, v(0, 0));
        assert_eq!(w.rates(), Rates::default());
        w.push(4_000, v(7, 0));
        assert_eq!(w.rates().cps, 7);
    }
}

//! Token buckets in fixed point, and the share of a limit each worker enforces.
//!
//! A bucket holds tokens in units of `1 / 2^24` of a connection, packet or
//! byte, so that a rate split among workers (1 connection per second over
//! 3 workers is 1/3000 of a connection per millisecond) is exact to within
//! 6e-5 units per second per worker. Buckets are refilled lazily, from the milliseconds
//! elapsed since they were last touched: no timer walks them.
//!
//! Admission rule: something costing `c` passes when the bucket holds at
//! least `min(c, capacity)`, and then takes `c`, possibly leaving the bucket
//! in debt. A packet larger than a worker's share of the burst (or a burst
//! share below one connection) therefore still passes when the bucket is
//! full, and the debt is repaid at the configured rate: the long-term rate is
//! exact whatever the burst, and no share can block everything.

/// Fractional bits of a token count: one connection, packet or byte is `1 << FRAC`.
pub const FRAC: u32 = 24;
const ONE: i64 = 1 << FRAC;

/// The largest rate (units per second) and burst (units) a bucket takes:
/// 2^38, about 2.7e11 (2.2 Tbit/s as bytes); larger values are clamped.
pub const MAX_UNITS: u64 = 1 << 38;

/// One worker's share of a rate limit: refill per millisecond and capacity,
/// both in fixed point. The default (`per_ms == 0`) limits nothing.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketConf {
    per_ms: i64,
    cap: i64,
}

impl BucketConf {
    /// No limit.
    pub const NONE: BucketConf = BucketConf { per_ms: 0, cap: 0 };

    /// The share of worker `worker` of `workers` of a limit of `rate` units
    /// per second with bursts of `burst` units (0: one second of `rate`):
    /// `rate / workers` and `burst / workers`, exactly in fixed point, so
    /// that the workers' shares add up to the configured limit. `rate == 0`
    /// is no limit.
    pub fn share(rate: u64, burst: u64, workers: u16) -> BucketConf {
        if rate == 0 {
            return BucketConf::NONE;
        }
        let w = i128::from(workers.max(1));
        let rate = i128::from(rate.min(MAX_UNITS));
        let burst = match burst {
            0 => rate,
            b => i128::from(b.min(MAX_UNITS)),
        };
        // Rounded up: whole tokens arrive on time (1 per 100 ms at 10/s);
        // the excess is below 2^-24 of a unit per millisecond.
        let per_ms = ((rate * i128::from(ONE) + 1000 * w - 1) / (1000 * w)).max(1);
        let cap = (burst * i128::from(ONE) / w).max(1);
        BucketConf {
            per_ms: per_ms as i64,
            cap: cap as i64,
        }
    }

    /// Whether this is a limit at all.
    #[inline]
    pub fn is_limited(&self) -> bool {
        self.per_ms > 0
    }

    /// Capacity in units (rounded down), for tests and listings.
    pub fn cap_units(&self) -> f64 {
        self.cap as f64 / ONE as f64
    }

    /// Refill in units per second (this worker's share).
    pub fn rate_units(&self) -> f64 {
        self.per_ms as f64 * 1000.0 / ONE as f64
    }
}

fn fixed(cost: u64) -> i64 {
    i64::try_from(cost.min(MAX_UNITS)).unwrap_or(i64::MAX) << FRAC
}

/// The tokens of one bucket (its configuration is kept apart, shared by the
/// buckets of every source of a service).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    tokens: i64,
}

impl Bucket {
    /// A full bucket.
    pub fn full(c: &BucketConf) -> Bucket {
        Bucket { tokens: c.cap }
    }

    /// Adds what `elapsed_ms` milliseconds bring, up to the capacity.
    #[inline]
    pub fn refill(&mut self, c: &BucketConf, elapsed_ms: u64) {
        let add = c
            .per_ms
            .saturating_mul(i64::try_from(elapsed_ms).unwrap_or(i64::MAX));
        self.tokens = self.tokens.saturating_add(add).min(c.cap);
    }

    /// Whether something costing `cost` units may pass now (see the module doc).
    #[inline]
    pub fn allows(&self, c: &BucketConf, cost: u64) -> bool {
        !c.is_limited() || self.tokens >= fixed(cost).min(c.cap)
    }

    /// Takes `cost` units (after [`Bucket::allows`] said yes).
    #[inline]
    pub fn take(&mut self, c: &BucketConf, cost: u64) {
        if c.is_limited() {
            self.tokens = self.tokens.saturating_sub(fixed(cost));
        }
    }

    /// Keeps the fill within a new capacity (after a configuration change).
    pub fn clamp(&mut self, c: &BucketConf) {
        self.tokens = self.tokens.min(c.cap);
    }

    /// Tokens held, in units (negative: in debt).
    pub fn units(&self) -> f64 {
        self.tokens as f64 / ONE as f64
    }
}

/// A bucket with its rate and the time it was last refilled: one worker's
/// gate for single events (packets to the kernel, ICMP errors sent).
#[derive(Debug, Default)]
pub struct EventGate {
    conf: BucketConf,
    bucket: Bucket,
    last_ms: u64,
}

impl EventGate {
    /// Takes a new rate (the bucket keeps its fill; a gate that had no
    /// limit starts full).
    pub fn configure(&mut self, conf: BucketConf, now_ms: u64) {
        if conf != self.conf {
            if !self.conf.is_limited() {
                self.bucket = Bucket::full(&conf);
                self.last_ms = now_ms;
            }
            self.conf = conf;
            self.bucket.clamp(&conf);
        }
    }

    /// Whether one more event may pass now (always, without a limit).
    pub fn admit(&mut self, now_ms: u64) -> bool {
        if !self.conf.is_limited() {
            return true;
        }
        self.bucket
            .refill(&self.conf, now_ms.saturating_sub(self.last_ms));
        self.last_ms = self.last_ms.max(now_ms);
        if !self.bucket.allows(&self.conf, 1) {
            return false;
        }
        self.bucket.take(&self.conf, 1);
        true
    }
}

/// Worker `worker`'s share of a limit of `n` concurrent connections among
/// `workers`: `n / workers`, the remainder going one each to the first
/// workers, so that the shares add up to `n`; but at least 1 (with `n`
/// below the worker count the sum is then `workers`). `n == 0` is no limit (0).
pub fn share_count(n: u32, worker: u16, workers: u16) -> u32 {
    if n == 0 {
        return 0;
    }
    let w = u32::from(workers.max(1));
    let extra = u32::from(u32::from(worker) < n % w);
    (n / w + extra).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units a bucket lets through from 0 to `ms` milliseconds (both
    /// included) when offered `cost` units `per_ms` times every
    /// millisecond, starting full.
    fn passed(c: &BucketConf, ms: u64, per_ms: u32, cost: u64) -> u64 {
        let mut b = Bucket::full(c);
        let mut n = 0;
        for t in 0..=ms {
            if t > 0 {
                b.refill(c, 1);
            }
            for _ in 0..per_ms {
                if b.allows(c, cost) {
                    b.take(c, cost);
                    n += cost;
                }
            }
        }
        n
    }

    #[test]
    fn a_full_bucket_passes_its_burst_then_the_rate() {
        // 100/s, burst 20, one worker: 20 at once, then 100 per second.
        let c = BucketConf::share(100, 20, 1);
        let mut b = Bucket::full(&c);
        let mut n = 0;
        while b.allows(&c, 1) {
            b.take(&c, 1);
            n += 1;
        }
        assert_eq!(n, 20, "the burst");
        // Offered far more than the rate for 10 s: 20 + 1000 pass.
        assert_eq!(passed(&c, 10_000, 5, 1), 20 + 1000);
    }

    #[test]
    fn refill_after_time_stops_at_the_capacity() {
        let c = BucketConf::share(10, 5, 1);
        let mut b = Bucket::full(&c);
        for _ in 0..5 {
            assert!(b.allows(&c, 1));
            b.take(&c, 1);
        }
        assert!(!b.allows(&c, 1), "empty");
        b.refill(&c, 99);
        assert!(!b.allows(&c, 1), "0.99 of a token after 99 ms at 10/s");
        b.refill(&c, 1);
        assert!(b.allows(&c, 1), "one token after 100 ms");
        b.refill(&c, 3_600_000);
        assert_eq!(b.units(), 5.0, "an hour later: the burst, no more");
        // A clock that jumps far ahead does not overflow.
        b.refill(&c, u64::MAX);
        assert_eq!(b.units(), 5.0);
    }

    #[test]
    fn worker_shares_add_up_to_the_configured_rate() {
        for workers in [1u16, 2, 3, 7, 16] {
            for (rate, burst) in [(1u64, 1u64), (5, 5), (100, 250), (1000, 0), (12_345, 777)] {
                let c = BucketConf::share(rate, burst, workers);
                let rate_sum = c.rate_units() * f64::from(workers);
                // Each share is rounded up by less than 2^-24 units per ms.
                assert!(
                    (rate_sum - rate as f64).abs() <= f64::from(workers) * 6e-5,
                    "{workers} workers, rate {rate}: shares add up to {rate_sum}"
                );
                let b = if burst == 0 { rate } else { burst };
                let cap_sum = c.cap_units() * f64::from(workers);
                assert!(
                    (cap_sum - b as f64).abs() <= b as f64 * 1e-4,
                    "{workers} workers, burst {b}: shares add up to {cap_sum}"
                );
                // What W buckets let through in 60 s of overload adds up
                // to the limit: the burst plus 60 s of the rate.
                let offer = (rate / 500 + 2) as u32; // twice the rate, per worker
                let total: u64 = (0..workers).map(|_| passed(&c, 60_000, offer, 1)).sum();
                let want = b + 60 * rate;
                // Each worker rounds its burst share up to a whole unit at most.
                let slack = u64::from(workers) + want / 10_000;
                assert!(
                    total.abs_diff(want) <= slack,
                    "{workers} workers, {rate}/s burst {b}: {total} passed in 60 s, want {want}"
                );
            }
        }
    }

    #[test]
    fn a_share_below_one_unit_still_passes_at_the_rate() {
        // 1/s with burst 1 over 4 workers: a quarter of a token each. Each
        // worker passes one connection when full, then one every 4 s.
        let c = BucketConf::share(1, 1, 4);
        assert!(c.cap_units() < 1.0);
        assert_eq!(passed(&c, 40_000, 1, 1), 1 + 10);
    }

    #[test]
    fn bytes_larger_than_the_burst_pass_into_debt() {
        // 8,000 bytes/s, burst 1,000, packets of 1,500 bytes: the first
        // passes from a full bucket, then one every 187.5 ms on average.
        let c = BucketConf::share(8_000, 1_000, 1);
        let n = passed(&c, 15_000, 1, 1_500);
        let want = 1_500 + 15 * 8_000;
        assert!(
            n.abs_diff(want) <= 1_500,
            "{n} bytes passed, want about {want}"
        );
    }

    #[test]
    fn no_limit_passes_everything() {
        let c = BucketConf::share(0, 5, 2);
        assert!(!c.is_limited());
        let mut b = Bucket::default();
        assert!(b.allows(&c, 1 << 40));
        b.take(&c, 1 << 40);
        assert_eq!(b.units(), 0.0);
    }

    #[test]
    fn connection_shares_add_up() {
        for workers in [1u16, 2, 3, 8] {
            for n in [1u32, 2, 7, 10, 1000] {
                let shares: Vec<u32> = (0..workers).map(|w| share_count(n, w, workers)).collect();
                let sum: u32 = shares.iter().sum();
                assert!(shares.iter().all(|&s| s >= 1), "{shares:?}");
                assert_eq!(
                    sum,
                    n.max(u32::from(workers)),
                    "{n} over {workers}: {shares:?}"
                );
                let (lo, hi) = (shares.iter().min(), shares.iter().max());
                assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{shares:?}");
            }
        }
        assert_eq!(share_count(0, 0, 4), 0, "no limit");
    }
}

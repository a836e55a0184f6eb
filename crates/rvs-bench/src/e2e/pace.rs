//! A paced send loop for `rvs-bench e2e-gen --pps N`: frames leave in
//! small bursts so that, averaged over a millisecond, the offered rate is
//! `rate`. A generator that falls behind (preempted, or its CPU busy with the
//! softirq work its own transmits cause on veth) does not catch up by more
//! than a millisecond of frames at once: what it could not send is lost, and
//! the benchmark reports the rate actually offered (the client's transmit
//! counters), not the target.

use std::time::{Duration, Instant};

/// Largest burst handed to the kernel in one `sendto`.
const BURST: u64 = 64;

/// How many frames are due `elapsed` after the start at `rate` per second.
pub(crate) fn due(rate: u64, elapsed: Duration) -> u64 {
    (u128::from(rate) * elapsed.as_nanos() / 1_000_000_000) as u64
}

/// The frames to send now: what is due minus what was sent, the deficit
/// clipped to one millisecond of frames (at least one burst), and at most
/// one burst. Returns (frames to send now, the adjusted count of frames
/// considered sent, including skipped ones).
pub(crate) fn next_burst(rate: u64, due: u64, sent: u64) -> (u64, u64) {
    let cap = (rate / 1000).max(BURST);
    let sent = sent.max(due.saturating_sub(cap));
    (due.saturating_sub(sent).min(BURST), sent)
}

/// Sends `frames` in turn on `tx` at `rate` frames per second until `end`
/// or until `limit` frames really left (skipped ones are not counted there).
pub(crate) fn paced(
    tx: &mut rvs_io::TxRing,
    frames: &super::agent::Frames,
    rate: u64,
    end: Instant,
    limit: u64,
) {
    let start = Instant::now();
    let mut sent = 0u64;
    let mut really = 0u64;
    let mut i = 0usize;
    loop {
        let now = Instant::now();
        if now >= end || really >= limit {
            return;
        }
        let (n, s) = next_burst(rate, due(rate, now - start), sent);
        sent = s;
        if n == 0 {
            // Sleep until the next frame is due (the timer slack makes this
            // 50-100 µs in practice: bursts of a few frames at 50k pps).
            let next = Duration::from_nanos((sent + 1) * 1_000_000_000 / rate.max(1));
            std::thread::sleep((start + next).saturating_duration_since(now));
            continue;
        }
        for _ in 0..n.min(limit - really) {
            if !tx.send(frames.get(i)) {
                break;
            }
            sent += 1;
            really += 1;
            i = (i + 1) % frames.count();
        }
        tx.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_follow_the_rate_and_do_not_catch_up_past_a_millisecond() {
        // 100k pps: after 1 ms, 100 frames are due; one burst of 64 at a time.
        assert_eq!(due(100_000, Duration::from_millis(1)), 100);
        assert_eq!(next_burst(100_000, 100, 0), (64, 0));
        assert_eq!(next_burst(100_000, 100, 64), (36, 64));
        assert_eq!(next_burst(100_000, 100, 100), (0, 100));
        // 10 ms behind at 400k pps: 4,000 frames due, only the last
        // millisecond's 400 are still owed, the rest is skipped.
        assert_eq!(next_burst(400_000, 4_000, 0), (64, 3_600));
        // 1M pps over 3 s: no overflow, exact.
        assert_eq!(due(1_000_000, Duration::from_secs(3)), 3_000_000);
    }
}

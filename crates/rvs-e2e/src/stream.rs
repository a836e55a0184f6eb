//! A numbered UDP stream through a VIP, as `rvs-udp stream` sends it and
//! reads the echoes back: what an event (upgrade, failover, restart) did to
//! it, from the client's side.
//!
//! Every datagram carries its sequence number; the echo server answers each
//! one. From the send times (one per burst: the stream is paced per
//! millisecond) and the kernel's receive time of every echo: the longest
//! time the path held the stream without an echo, echoes missing, echoes
//! seen twice.
//!
//! The longest gap is the path's, not the prober's: after an echo at `t_a`
//! the path owes nothing until the next datagram is sent, so the silence
//! before the next echo at `t_b` counts from `max(t_a, sent(next))`, where
//! `next` follows the highest sequence number echoed so far. A sender that
//! was not scheduled for 8 ms (it shares a CPU with the other probers) sent
//! nothing the path could lose or hold; counting from `t_a` (the old
//! measure, kept as `longest_echo_gap_ms`) added that stall to the gap.
//!
//! A warm-up ([`Tally::warm_until`]) keeps the probers' own start out of
//! the gaps: silence before it is not counted, one that spans its end
//! counts from there. Their first 100-200 ms on the busy client CPU (the
//! processes starting side by side) showed as gaps of 20-100 ms with no
//! event at all.

use serde::{Deserialize, Serialize};

/// What the stream saw (one JSON line printed by `rvs-udp stream`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    /// Datagrams sent.
    pub sent: u64,
    /// Distinct sequence numbers echoed.
    pub received: u64,
    /// Sequence numbers sent and never echoed.
    pub missing: u64,
    /// Echoes of a sequence number already echoed.
    pub dups: u64,
    /// The longest time the path held the stream (ms): from the later of
    /// an echo and the next send to the following echo.
    pub longest_gap_ms: f64,
    /// When that gap began (wall clock, s since the epoch).
    pub gap_start: f64,
    /// Echoes after the longest gap ended: the stream came back.
    pub after_gap: u64,
    /// The longest time between two echoes (ms), sender stalls included.
    #[serde(default)]
    pub longest_echo_gap_ms: f64,
    /// Every silence of [`KEEP_GAP`] or more, as (start, wall clock s;
    /// length, ms), at most [`MAX_GAPS`] of them: which one an event made.
    #[serde(default)]
    pub gaps: Vec<[f64; 2]>,
}

/// The shortest silence a report lists (s).
pub const KEEP_GAP: f64 = 0.001;

/// The most silences a report lists.
pub const MAX_GAPS: usize = 4096;

impl StreamReport {
    /// The longest of [`StreamReport::gaps`] that overlaps the wall-clock
    /// window `from..=to` (ms; 0: none of [`KEEP_GAP`] or more did).
    pub fn longest_within(&self, from: f64, to: f64) -> f64 {
        longest_within(&self.gaps, from, to)
    }
}

/// The longest of `gaps` ((start s, length ms)) overlapping `from..=to`
/// (ms; 0 for none).
pub fn longest_within(gaps: &[[f64; 2]], from: f64, to: f64) -> f64 {
    gaps.iter()
        .filter(|[start, ms]| *start <= to && start + ms / 1e3 >= from)
        .map(|g| g[1])
        .fold(0.0, f64::max)
}

/// Tracks sends and echoes as they happen (sequence numbers below `cap`).
#[derive(Debug)]
pub struct Tally {
    seen: Vec<bool>,
    /// (first sequence number, wall-clock time) of every burst sent.
    bursts: Vec<(u64, f64)>,
    sent: u64,
    dups: u64,
    received: u64,
    last_t: f64,
    next: u64,
    longest: f64,
    gap_start: f64,
    after_gap: u64,
    longest_echo: f64,
    warm: f64,
    gaps: Vec<[f64; 2]>,
}

impl Tally {
    /// A tally for a stream started at wall-clock `t0` (s), of at most `cap` datagrams.
    pub fn new(t0: f64, cap: usize) -> Tally {
        Tally {
            seen: vec![false; cap],
            bursts: Vec::new(),
            sent: 0,
            dups: 0,
            received: 0,
            last_t: t0,
            next: 0,
            longest: 0.0,
            gap_start: t0,
            after_gap: 0,
            longest_echo: 0.0,
            warm: t0,
            gaps: Vec::new(),
        }
    }

    /// Counts no silence before wall-clock `t` (s): the warm-up.
    pub fn warm_until(&mut self, t: f64) {
        self.warm = t;
    }

    /// Datagrams `first..first + n` went out at wall-clock `t` (s).
    pub fn sent(&mut self, first: u64, n: u64, t: f64) {
        if n > 0 && first >= self.sent {
            self.bursts.push((first, t));
            self.sent = first + n;
        }
    }

    /// When datagram `seq` was sent, if it was.
    fn sent_at(&self, seq: u64) -> Option<f64> {
        if seq >= self.sent {
            return None;
        }
        let i = self.bursts.partition_point(|b| b.0 <= seq);
        self.bursts.get(i.checked_sub(1)?).map(|b| b.1)
    }

    /// The echo of `seq` arrived at wall-clock `t` (s; the kernel's
    /// receive time).
    pub fn echo(&mut self, seq: u64, t: f64) {
        let Some(s) = self.seen.get_mut(seq as usize) else {
            return;
        };
        if *s {
            self.dups += 1;
            return;
        }
        *s = true;
        self.received += 1;
        let after = self.last_t.max(self.warm);
        self.longest_echo = self.longest_echo.max(t - after);
        // Nothing sent after the last echo yet: the path owed nothing.
        let from = after.max(self.sent_at(self.next).unwrap_or(t));
        let gap = t - from;
        if gap >= KEEP_GAP && self.gaps.len() < MAX_GAPS {
            self.gaps.push([from, gap * 1e3]);
        }
        if gap > self.longest {
            self.longest = gap;
            self.gap_start = from;
            self.after_gap = 0;
        }
        self.after_gap += 1;
        self.last_t = self.last_t.max(t);
        self.next = self.next.max(seq + 1);
    }

    /// The report once `sent` datagrams went out and the last echoes had
    /// time to come back.
    pub fn report(&self, sent: u64) -> StreamReport {
        let sent_n = (sent as usize).min(self.seen.len());
        let missing = self.seen[..sent_n].iter().filter(|s| !**s).count() as u64;
        StreamReport {
            sent,
            received: self.received,
            missing,
            dups: self.dups,
            longest_gap_ms: self.longest * 1e3,
            gap_start: self.gap_start,
            after_gap: self.after_gap,
            longest_echo_gap_ms: self.longest_echo * 1e3,
            gaps: self.gaps.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `seqs` one per `every` s from `t`, one burst each.
    fn send(t: &mut Tally, seqs: std::ops::Range<u64>, from: f64, every: f64) {
        for (k, s) in seqs.enumerate() {
            t.sent(s, 1, from + k as f64 * every);
        }
    }

    #[test]
    fn a_silence_in_the_middle_is_the_longest_gap_with_what_it_lost() {
        let mut t = Tally::new(100.0, 100);
        send(&mut t, 0..100, 100.0, 0.001);
        // Echoed 1 ms after the send, then seqs 40..60 lost: silent from
        // 100.040 (the echo of 39, and the send of 40) to 100.130.
        for s in 0..40 {
            t.echo(s, 100.001 + s as f64 * 0.001);
        }
        for s in 60..100 {
            t.echo(s, 100.070 + s as f64 * 0.001);
        }
        t.echo(70, 100.2);
        let r = t.report(100);
        assert_eq!((r.received, r.missing, r.dups), (80, 20, 1));
        assert!((r.longest_gap_ms - 90.0).abs() < 0.01, "{r:?}");
        assert!((r.gap_start - 100.040).abs() < 1e-9, "{r:?}");
        assert_eq!(r.after_gap, 40);
    }

    #[test]
    fn silence_during_the_warm_up_is_not_counted_and_one_across_its_end_counts_from_it() {
        // Echoes 1 ms after each send, none between 100.010 and 100.100
        // (seqs 10..100 lost at start-up), then none from 100.200 to 100.230.
        let run = |warm: Option<f64>| {
            let mut t = Tally::new(100.0, 300);
            if let Some(w) = warm {
                t.warm_until(w);
            }
            send(&mut t, 0..300, 100.0, 0.001);
            for s in (0..10).chain(100..200).chain(230..300) {
                t.echo(s, 100.001 + s as f64 * 0.001);
            }
            t.report(300)
        };
        let cold = run(None);
        assert!((cold.longest_gap_ms - 91.0).abs() < 0.01, "{cold:?}");
        // The start-up silence ends before the warm-up: the later one shows.
        let warm = run(Some(100.150));
        assert!((warm.longest_gap_ms - 31.0).abs() < 0.01, "{warm:?}");
        assert!((warm.gap_start - 100.200).abs() < 1e-9, "{warm:?}");
        assert!((warm.longest_echo_gap_ms - 31.0).abs() < 0.01, "{warm:?}");
        assert_eq!(
            (warm.missing, cold.missing),
            (120, 120),
            "losses still count"
        );
        // A silence across the end of the warm-up counts from that end.
        let across = run(Some(100.050));
        assert!((across.longest_gap_ms - 51.0).abs() < 0.01, "{across:?}");
        assert!((across.gap_start - 100.050).abs() < 1e-9, "{across:?}");
    }

    #[test]
    fn a_sender_that_was_not_scheduled_is_no_gap_of_the_path() {
        // Every echo 0.1 ms after its send; the sender stalls 8 ms before
        // seq 20 (the prober shares a CPU). The echoes are 9 ms apart
        // there, which the old measure reported as the path's gap.
        let mut t = Tally::new(100.0, 40);
        send(&mut t, 0..20, 100.0, 0.001);
        send(&mut t, 20..40, 100.028, 0.001);
        for s in 0..40 {
            let sent = t.sent_at(s).unwrap();
            t.echo(s, sent + 0.0001);
        }
        let r = t.report(40);
        assert!((r.longest_echo_gap_ms - 9.0).abs() < 0.01, "{r:?}");
        assert!((r.longest_gap_ms - 0.1).abs() < 0.01, "{r:?}");
        assert_eq!(r.missing, 0);
    }

    #[test]
    fn datagrams_held_by_the_path_count_from_their_send() {
        // Sent every 1 ms; the load balancer holds seqs 40..45 and forwards
        // them together at 100.0451: held 5.1 ms from the send of 40.
        let mut t = Tally::new(100.0, 60);
        send(&mut t, 0..60, 100.0, 0.001);
        for s in 0..60 {
            let sent = 100.0 + s as f64 * 0.001;
            t.echo(
                s,
                if (40..45).contains(&s) {
                    100.0451
                } else {
                    sent + 0.0001
                },
            );
        }
        let r = t.report(60);
        assert!((r.longest_gap_ms - 5.1).abs() < 0.01, "{r:?}");
        assert!((r.gap_start - 100.040).abs() < 1e-9, "{r:?}");
        assert!((r.longest_echo_gap_ms - 6.0).abs() < 0.01, "{r:?}");
    }

    #[test]
    fn nothing_echoed_is_all_missing_and_sequence_numbers_out_of_range_are_ignored() {
        let mut t = Tally::new(5.0, 10);
        t.echo(10, 5.1);
        let r = t.report(10);
        assert_eq!((r.received, r.missing, r.after_gap), (0, 10, 0));
    }

    #[test]
    fn every_silence_of_a_millisecond_is_listed_and_found_by_its_window() {
        // Sent every 1 ms, echoed 0.1 ms later, but for a 3 ms hold at
        // 100.010 and a 9 ms one at 100.050.
        let mut t = Tally::new(100.0, 100);
        send(&mut t, 0..100, 100.0, 0.001);
        for s in 0..100u64 {
            let sent = 100.0 + s as f64 * 0.001;
            let at = match s {
                10..=12 => 100.0131,
                50..=58 => 100.0591,
                _ => sent + 0.0001,
            };
            t.echo(s, at);
        }
        let r = t.report(100);
        assert_eq!(r.gaps.len(), 2, "{:?}", r.gaps);
        assert!((r.longest_gap_ms - 9.1).abs() < 0.01, "{r:?}");
        // A window around the first hold sees it, not the longest.
        assert!((r.longest_within(100.011, 100.012) - 3.1).abs() < 0.01);
        assert!((r.longest_within(100.0, 100.1) - 9.1).abs() < 0.01);
        assert_eq!(r.longest_within(100.030, 100.040), 0.0);
    }
}

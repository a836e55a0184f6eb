//! A numbered UDP stream through a VIP, as `rvs-udp stream` sends it and
//! reads the echoes back: what an event (upgrade, failover, restart) did to
//! it, from the client's side.
//!
//! Every datagram carries its sequence number; the echo server answers each
//! one. From the (sequence, arrival time) of the echoes: the longest time
//! without an echo while the stream ran, echoes missing, echoes seen twice.

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
    /// The longest time between two echoes (ms), or from the start to the
    /// first one.
    pub longest_gap_ms: f64,
    /// When that gap began (wall clock, s since the epoch).
    pub gap_start: f64,
    /// Echoes after the longest gap ended: the stream came back.
    pub after_gap: u64,
}

/// Tracks echoes as they arrive (sequence numbers below `sent`).
#[derive(Debug)]
pub struct Tally {
    seen: Vec<bool>,
    dups: u64,
    received: u64,
    last_t: f64,
    longest: f64,
    gap_start: f64,
    after_gap: u64,
}

impl Tally {
    /// A tally for a stream started at wall-clock `t0` (s), of at most `cap` datagrams.
    pub fn new(t0: f64, cap: usize) -> Tally {
        Tally {
            seen: vec![false; cap],
            dups: 0,
            received: 0,
            last_t: t0,
            longest: 0.0,
            gap_start: t0,
            after_gap: 0,
        }
    }

    /// The echo of `seq` arrived at wall-clock `t` (s).
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
        let gap = t - self.last_t;
        if gap > self.longest {
            self.longest = gap;
            self.gap_start = self.last_t;
            self.after_gap = 0;
        }
        self.after_gap += 1;
        self.last_t = t;
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silence_in_the_middle_is_the_longest_gap_with_what_it_lost() {
        let mut t = Tally::new(100.0, 100);
        // 1 ms apart, then seqs 40..60 lost: silent from 100.040 to 100.130.
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
    fn nothing_echoed_is_all_missing_and_sequence_numbers_out_of_range_are_ignored() {
        let mut t = Tally::new(5.0, 10);
        t.echo(10, 5.1);
        let r = t.report(10);
        assert_eq!((r.received, r.missing, r.after_gap), (0, 10, 0));
    }
}

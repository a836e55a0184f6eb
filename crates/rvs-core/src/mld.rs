//! The listener side of MLDv2 (RFC 3810 section 6) for one interface,
//! sans-IO: the groups rvs listens to go in ([`Listener::set_groups`]),
//! Queries heard on the link go in ([`Listener::query`]), and
//! [`Listener::tick`] writes the Reports that are due.
//!
//! rvs listens to every group in EXCLUDE mode with no source (it wants all
//! senders), so its records carry no source: a join is a
//! `CHANGE_TO_EXCLUDE_MODE` record, a leave a `CHANGE_TO_INCLUDE_MODE`
//! record, both sent [`ROBUSTNESS`] times, the first at once, the next
//! after a random delay of up to [`UNSOLICITED_REPORT_MS`]. A General
//! Query is answered with the current state of every group
//! (`MODE_IS_EXCLUDE`), a Group-Specific Query with that group's if rvs
//! listens to it, each after a random delay within the Query's Maximum
//! Response Delay (an answer already pending sooner covers a new Query).
//! The all-nodes group and groups of a scope narrower than link are never
//! reported. Version 1 queriers (compatibility mode) are not handled:
//! a version 1 Query is answered with version 2 Reports.

use crate::addr::{Addr, Mac};
use crate::wire::mld::{self, record};

/// Times a state change is reported (the Robustness Variable's default).
pub const ROBUSTNESS: u8 = 2;
/// Unsolicited Report Interval: the longest delay between a state
/// change's retransmissions (RFC 3810 section 9.11: 1 second).
pub const UNSOLICITED_REPORT_MS: u64 = 1000;

/// A state change not yet reported [`ROBUSTNESS`] times.
#[derive(Debug, Clone, Copy)]
struct Change {
    group: Addr,
    kind: u8,
    left: u8,
    at: u64,
}

/// One interface's MLDv2 listener state.
#[derive(Debug)]
pub struct Listener {
    /// Reportable groups listened to now, sorted.
    groups: Vec<Addr>,
    changes: Vec<Change>,
    /// When the answer to a General Query is due.
    general_at: Option<u64>,
    /// Groups whose Group-Specific answer is due, and when.
    specific: Vec<(Addr, u64)>,
    robustness: u8,
    rng: u64,
    reports: u64,
}

impl Listener {
    /// A listener of no group; `seed` draws its random delays (any value).
    pub fn new(seed: u64) -> Listener {
        Listener {
            groups: Vec::new(),
            changes: Vec::new(),
            general_at: None,
            specific: Vec::new(),
            robustness: ROBUSTNESS,
            rng: seed | 1,
            reports: 0,
        }
    }

    /// The reportable groups listened to now, sorted.
    pub fn groups(&self) -> &[Addr] {
        &self.groups
    }

    /// Reports sent so far.
    pub fn reports(&self) -> u64 {
        self.reports
    }

    /// A delay in `0..=max` ms.
    fn delay(&mut self, max: u64) -> u64 {
        // xorshift64
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x % (max + 1)
    }

    /// Listens to exactly `want` from now on (groups MLD does not report
    /// are left out): joins and leaves are reported from the next
    /// [`Listener::tick`].
    pub fn set_groups(&mut self, want: impl IntoIterator<Item = Addr>, now: u64) {
        let mut want: Vec<Addr> = want.into_iter().filter(mld::reportable).collect();
        want.sort_unstable();
        want.dedup();
        let old = std::mem::take(&mut self.groups);
        for g in old.iter().filter(|g| want.binary_search(g).is_err()) {
            self.change(*g, record::CHANGE_TO_INCLUDE, now);
            self.specific.retain(|(s, _)| s != g);
        }
        for g in want.iter().filter(|g| old.binary_search(g).is_err()) {
            self.change(*g, record::CHANGE_TO_EXCLUDE, now);
        }
        self.groups = want;
    }

    /// A state change of `group` to report, replacing one still pending.
    fn change(&mut self, group: Addr, kind: u8, now: u64) {
        self.changes.retain(|c| c.group != group);
        self.changes.push(Change {
            group,
            kind,
            left: self.robustness,
            at: now,
        });
    }

    /// A Query heard at `now`: `group` unspecified for a General Query;
    /// `max_resp_ms` its Maximum Response Delay; `qrv` its Robustness
    /// Variable (0: not given), adopted for later state changes.
    pub fn query(&mut self, group: Addr, max_resp_ms: u32, qrv: u8, now: u64) {
        if qrv != 0 {
            self.robustness = qrv;
        }
        let at = now + self.delay(u64::from(max_resp_ms));
        if self.general_at.is_some_and(|g| g <= at) {
            return;
        }
        if group.is_unspecified() {
            self.general_at = Some(at);
            return;
        }
        if self.groups.binary_search(&group).is_err() {
            return;
        }
        match self.specific.iter_mut().find(|(g, _)| *g == group) {
            Some((_, t)) => *t = (*t).min(at),
            None => self.specific.push((group, at)),
        }
    }

    /// When the next Report is due, if one is.
    pub fn next_due(&self) -> Option<u64> {
        let c = self.changes.iter().map(|c| c.at).min();
        let s = self.specific.iter().map(|s| s.1).min();
        [c, s, self.general_at].into_iter().flatten().min()
    }

    /// Writes the Reports due at `now` from `mac`/`src` (a link-local
    /// address of the port, else `::`) and gives each frame to `emit`;
    /// returns how many.
    pub fn tick(&mut self, now: u64, mac: Mac, src: &Addr, emit: &mut dyn FnMut(&[u8])) -> usize {
        let mut recs = [(0u8, Addr::UNSPECIFIED); mld::MAX_RECORDS];
        let mut n = 0;
        let mut frames = 0;
        let mut flush = |recs: &[(u8, Addr)], frames: &mut usize| {
            let mut buf = [0u8; mld::MAX_REPORT_FRAME];
            let len = mld::write_report(&mut buf, mac, src, recs);
            if len > 0 {
                emit(&buf[..len]);
                *frames += 1;
            }
        };
        let mut push = |r: (u8, Addr), n: &mut usize, frames: &mut usize| {
            recs[*n] = r;
            *n += 1;
            if *n == mld::MAX_RECORDS {
                flush(&recs[..], frames);
                *n = 0;
            }
        };
        // State changes first: a joined group's record must not wait.
        let mut i = 0;
        while i < self.changes.len() {
            let c = self.changes[i];
            if c.at > now {
                i += 1;
                continue;
            }
            push((c.kind, c.group), &mut n, &mut frames);
            if c.left > 1 {
                let d = 1 + self.delay(UNSOLICITED_REPORT_MS - 1);
                let c = &mut self.changes[i];
                c.left -= 1;
                c.at = now + d;
                i += 1;
            } else {
                self.changes.swap_remove(i);
            }
        }
        if self.general_at.is_some_and(|g| g <= now) {
            self.general_at = None;
            self.specific.clear();
            for g in &self.groups {
                push((record::MODE_IS_EXCLUDE, *g), &mut n, &mut frames);
            }
        }
        let groups = &self.groups;
        self.specific.retain(|&(g, at)| {
            if at > now {
                return true;
            }
            if groups.binary_search(&g).is_ok() {
                push((record::MODE_IS_EXCLUDE, g), &mut n, &mut frames);
            }
            false
        });
        if n > 0 {
            flush(&recs[..n], &mut frames);
        }
        self.reports += frames as u64;
        frames
    }
}

#[cfg(test)]
#[path = "mld_tests.rs"]
mod tests;

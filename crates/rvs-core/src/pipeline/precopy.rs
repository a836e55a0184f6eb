//! The pre-copy of a hand-over while the worker forwards
//! (`docs/design/hot-upgrade.md`, section 1 step 6), as a small state
//! machine the worker loop steps once per iteration with a bounded cost:
//! the hand-over log is turned on *first*, then the table is swept a
//! bounded number of slots per step ([`Worker::export_local`]), and every
//! step also drains the log ([`Worker::drain_local`]). The records, applied
//! in the order they come out by the successor's worker of the same index
//! ([`Worker::install_local`], [`Worker::remove_local`]), build the table
//! this worker has when [`Precopy::finish`] drains the log's tail:
//! - every record reads the connection as it is *when it is written*, so a
//!   connection the sweep sent and that changed since comes again from the
//!   log (installing it again replaces it);
//! - a removal of a connection the successor does not have yet (the sweep
//!   had not reached it) removes nothing;
//! - a connection removed and made again with the same tuple comes as the
//!   removal then the creation, in that order.
//!
//! Packets refresh timers without a log event: a record's time left may be
//! shorter than the connection's at the cut-over; the successor re-arms
//! timers when it starts ([`Worker::start_imported`]).
//!
//! A full log (events lost, [`Worker::sync_lost`] grew) means the successor
//! may keep a connection whose removal was lost: [`PrecopyEvent::Restart`]
//! tells it to empty its table ([`Worker::remove_all_local`]) and the sweep
//! starts again.

use super::Worker;
use crate::conn::ConnId;
use crate::sync::{LocalRecord, Record};

/// What a pre-copy step produces, in order.
// Handed to a closure one at a time, never kept in bulk: boxing the record
// would cost an allocation per connection on the forwarding worker.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum PrecopyEvent {
    /// A record for the successor, and the record HA peers get for the same
    /// log event (`None`: a sweep record, or nothing for peers).
    Record(LocalRecord, Option<Record>),
    /// The sweep reached the end of the table (once per sweep).
    SweepDone,
    /// Events were lost: the successor empties this worker's table; the
    /// sweep starts again.
    Restart,
}

/// One worker's pre-copy (see the module doc).
#[derive(Clone, Debug)]
pub struct Precopy {
    next: Option<u32>,
    lost_seen: u64,
    restarts: u32,
    step_slots: u32,
    drain_max: usize,
    log_ours: bool,
}

impl Precopy {
    /// Starts a pre-copy: the log on (a ring of `log_capacity` events,
    /// unless it is on already for HA sync), then a sweep of `step_slots`
    /// slots and at most `drain_max` log events per [`Precopy::step`].
    pub fn start(w: &mut Worker, log_capacity: usize, step_slots: u32, drain_max: usize) -> Self {
        let log_ours = !w.sync_logging();
        if log_ours {
            w.enable_sync_log(log_capacity);
        }
        Precopy {
            next: Some(0),
            lost_seen: w.sync_lost(),
            restarts: 0,
            step_slots: step_slots.max(1),
            drain_max: drain_max.max(1),
            log_ours,
        }
    }

    /// One bounded step: a restart if events were lost, the log's events,
    /// then the sweep's next slots. Returns whether the sweep goes on.
    pub fn step(&mut self, w: &mut Worker, now_ms: u64, mut f: impl FnMut(PrecopyEvent)) -> bool {
        let lost = w.sync_lost();
        if lost > self.lost_seen {
            self.lost_seen = lost;
            self.restarts += 1;
            self.next = Some(0);
            f(PrecopyEvent::Restart);
        }
        w.drain_local(now_ms, self.drain_max, |l, p| f(PrecopyEvent::Record(l, p)));
        if let Some(s) = self.next {
            self.next = w.export_local(s, self.step_slots, now_ms, |l| {
                f(PrecopyEvent::Record(LocalRecord::Conn(l), None))
            });
            if self.next.is_none() {
                f(PrecopyEvent::SweepDone);
            }
        }
        self.next.is_some()
    }

    /// The freeze: the log's whole tail, then the rest of a sweep still
    /// under way (one restarted after the first was done: without it the
    /// successor would lack the connections it had not reached yet).
    /// Returns whether events were lost since the last step (then the
    /// successor's copy is not exact).
    pub fn finish(&mut self, w: &mut Worker, now_ms: u64, mut f: impl FnMut(PrecopyEvent)) -> bool {
        w.drain_local(now_ms, usize::MAX, |l, p| f(PrecopyEvent::Record(l, p)));
        while let Some(s) = self.next {
            self.next = w.export_local(s, self.step_slots, now_ms, |l| {
                f(PrecopyEvent::Record(LocalRecord::Conn(l), None))
            });
        }
        w.sync_lost() > self.lost_seen
    }

    /// Whether the sweep reached the end of the table.
    pub fn swept(&self) -> bool {
        self.next.is_none()
    }

    /// Sweeps started again after lost events.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Ends the pre-copy: the log goes off unless it was on before (or
    /// `keep`: HA sync wants it now).
    pub fn stop(self, w: &mut Worker, keep: bool) {
        if self.log_ours && !keep {
            w.disable_sync_log();
        }
    }
}

impl Worker {
    /// Removes every connection and template without a log event (a
    /// successor's table emptied before a pre-copy starts again).
    pub fn remove_all_local(&mut self) {
        let cap = u32::try_from(self.st.conns.capacity()).unwrap_or(u32::MAX);
        for i in 0..cap {
            if self.st.conns.try_get(ConnId(i)).is_some() {
                self.st.drop_quietly(ConnId(i));
            }
        }
        self.st.publish_conn_count();
    }
}

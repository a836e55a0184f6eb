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
//! tells it so and the sweep starts again: the successor ([`Resweep`])
//! keeps its table meanwhile (a warm standby promoted then has every
//! connection) and, once the repeated sweep is done, drops what it did not
//! send again (removed while events were lost).

use super::{SyncError, Worker};
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
        self.remove_local_unless(|_| false);
    }

    /// Removes every connection and template `keep` refuses, without a
    /// log event; returns how many.
    pub fn remove_local_unless(&mut self, mut keep: impl FnMut(ConnId) -> bool) -> usize {
        let cap = u32::try_from(self.st.conns.capacity()).unwrap_or(u32::MAX);
        let mut n = 0;
        for i in 0..cap {
            if self.st.conns.try_get(ConnId(i)).is_some() && !keep(ConnId(i)) {
                self.st.drop_quietly(ConnId(i));
                n += 1;
            }
        }
        self.st.publish_conn_count();
        n
    }
}

/// The successor's side of a pre-copy: installs the records in order and
/// follows the sweeps. A restart ([`PrecopyEvent::Restart`]) keeps the
/// table; until the repeated sweep is done ([`Resweep::done`]) it notes
/// every slot installed, then drops the others (connections removed while
/// events were lost). A record refused for its port, tuple or room meanwhile
/// (an entry not sent again yet may hold them) drops those first.
#[derive(Clone, Debug, Default)]
pub struct Resweep {
    /// Slots installed since the restart, a bit each (`None`: no repeated
    /// sweep under way).
    seen: Option<Vec<u64>>,
}

impl Resweep {
    /// Events were lost: the sweep starts again.
    pub fn restart(&mut self) {
        self.seen = Some(Vec::new());
    }

    /// Whether a repeated sweep is under way.
    pub fn repeating(&self) -> bool {
        self.seen.is_some()
    }

    /// Installs `r` on `w`; returns whether it was taken.
    pub fn install(&mut self, w: &mut Worker, r: &LocalRecord, now_ms: u64) -> bool {
        match r {
            LocalRecord::Conn(l) => {
                let mut got = w.install_local(l, now_ms);
                let blocked = matches!(
                    got,
                    Err(SyncError::PortInUse(_) | SyncError::Conflict | SyncError::TableFull)
                );
                if blocked && self.repeating() {
                    self.done(w);
                    got = w.install_local(l, now_ms);
                }
                match got {
                    Ok(id) => {
                        self.mark(id);
                        true
                    }
                    Err(_) => false,
                }
            }
            LocalRecord::Neigh(n) => w.install_neigh(n, now_ms).is_ok(),
            // A removal of a connection that never came: nothing to do.
            LocalRecord::Remove(t) => {
                w.remove_local(t);
                true
            }
        }
    }

    fn mark(&mut self, id: ConnId) {
        if let Some(seen) = self.seen.as_mut() {
            let i = id.0 as usize / 64;
            if seen.len() <= i {
                seen.resize(i + 1, 0);
            }
            seen[i] |= 1 << (id.0 % 64);
        }
    }

    /// The repeated sweep is done (or the freeze's tail is in): drops what
    /// it did not install; returns how many.
    pub fn done(&mut self, w: &mut Worker) -> usize {
        let Some(seen) = self.seen.take() else {
            return 0;
        };
        w.remove_local_unless(|id| {
            seen.get(id.0 as usize / 64)
                .is_some_and(|b| b & (1 << (id.0 % 64)) != 0)
        })
    }
}

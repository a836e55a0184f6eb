//! A worker's part of connection sync, run once per loop iteration with a
//! bounded cost: as a sender, drain at most [`DRAIN_MAX`] connection events
//! and sweep at most [`SWEEP_SLOTS`] table slots into a batch for the sync
//! thread; as a receiver, install or remove at most [`APPLY_MAX`] records
//! the sync thread routed here.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use rvs_core::conn::flags;
use rvs_core::pipeline::{SyncError, Worker};
use rvs_core::sync::Record;

use super::SyncShared;

/// Connection events taken from the worker's sync log per loop iteration.
pub const DRAIN_MAX: usize = 64;
/// Table slots swept (refresh or full dump) per loop iteration.
pub const SWEEP_SLOTS: u32 = 256;
/// Received records applied per loop iteration.
pub const APPLY_MAX: usize = 256;
/// Capacity of the worker's sync log: what several loop iterations can
/// produce (a burst's new connections plus an expiry pass's removals).
pub const LOG_CAPACITY: usize = 8192;
/// Batches in flight between one worker and the sync thread: when the
/// thread is behind, events wait in the log (and, if it fills, a full dump
/// follows).
pub const BATCHES: usize = 8;
/// Records a batch can hold.
pub const BATCH_CAPACITY: usize = DRAIN_MAX + SWEEP_SLOTS as usize;

/// Names of install failures, as counted, indexed by [`install_error_index`].
pub const INSTALL_ERRORS: [&str; 10] = [
    "service_not_found",
    "dest_not_found",
    "mode_mismatch",
    "laddr_not_found",
    "port_not_owned",
    "port_in_use",
    "bad_state",
    "conflict",
    "table_full",
    "owned",
];

/// Index of an install failure in [`INSTALL_ERRORS`].
pub fn install_error_index(e: &SyncError) -> usize {
    match e {
        SyncError::ServiceNotFound => 0,
        SyncError::DestNotFound => 1,
        SyncError::ModeMismatch => 2,
        SyncError::LocalAddrNotFound => 3,
        SyncError::PortNotOwned { .. } => 4,
        SyncError::PortInUse(_) => 5,
        SyncError::BadState(_) => 6,
        SyncError::Conflict => 7,
        SyncError::TableFull => 8,
        SyncError::Owned => 9,
    }
}

/// One worker's sync state and its channels to the sync thread.
pub struct WorkerSync {
    id: u16,
    shared: Arc<SyncShared>,
    out: Sender<(u16, Vec<Record>)>,
    empties: Receiver<Vec<Record>>,
    inbox: Receiver<Vec<Record>>,
    cur: Option<Vec<Record>>,
    applying: Option<(Vec<Record>, usize)>,
    sweep: Option<u32>,
    next_sweep: u64,
    dump_seen: u64,
    lost_seen: u64,
    logging: bool,
    active: bool,
    /// A hand-over's pre-copy drains the log meanwhile ([`WorkerSync::hold`]).
    held: bool,
}

impl WorkerSync {
    /// Worker `id`'s endpoints: batches go out on `out` and come back empty
    /// on `empties`; received records arrive on `inbox`.
    pub fn new(
        id: u16,
        shared: Arc<SyncShared>,
        out: Sender<(u16, Vec<Record>)>,
        empties: Receiver<Vec<Record>>,
        inbox: Receiver<Vec<Record>>,
    ) -> WorkerSync {
        WorkerSync {
            id,
            dump_seen: shared.dump_gen.load(Relaxed),
            shared,
            out,
            empties,
            inbox,
            cur: None,
            applying: None,
            sweep: None,
            next_sweep: 0,
            lost_seen: 0,
            logging: false,
            active: false,
            held: false,
        }
    }

    /// This iteration's share of sync work; true while there is more to do
    /// (the loop then does not sleep).
    pub fn step(&mut self, w: &mut Worker, now: u64) -> bool {
        let on = self.shared.master_on.load(Relaxed);
        let active = on && self.shared.backup_on.load(Relaxed);
        if active != self.active {
            w.set_sync_active(active);
            self.active = active;
        }
        let busy = self.apply(w, now);
        if self.held {
            // The pre-copy drains the log and carries the peers' records.
            return busy;
        }
        if on != self.logging {
            if on {
                w.enable_sync_log(LOG_CAPACITY);
                self.next_sweep = now + self.shared.refresh_ms.load(Relaxed);
            } else {
                w.disable_sync_log();
                self.sweep = None;
            }
            self.logging = on;
            self.lost_seen = 0;
        }
        if !on {
            return busy;
        }
        self.send(w, now) || busy
    }

    /// A hand-over's pre-copy holds the worker's log (`on`) or gives it
    /// back: while held, this side neither drains it nor turns it on or off.
    pub fn hold(&mut self, on: bool) {
        self.held = on;
    }

    /// Whether this side keeps a log for HA peers.
    pub fn logging(&self) -> bool {
        self.logging
    }

    /// The peers' records of events a pre-copy drained from the log.
    pub fn carry(&mut self, recs: Vec<Record>) {
        if self.logging && !recs.is_empty() {
            let _ = self.out.send((self.id, recs));
        }
    }

    fn start_sweep(&mut self, now: u64) {
        self.sweep = Some(0);
        self.next_sweep = now + self.shared.refresh_ms.load(Relaxed);
    }

    fn send(&mut self, w: &mut Worker, now: u64) -> bool {
        let g = self.shared.dump_gen.load(Relaxed);
        if g != self.dump_seen {
            self.dump_seen = g;
            self.start_sweep(now);
        }
        let lost = w.sync_lost();
        if lost > self.lost_seen {
            self.shared
                .c
                .lost_events
                .fetch_add(lost - self.lost_seen, Relaxed);
            self.shared.c.dumps.fetch_add(1, Relaxed);
            self.lost_seen = lost;
            self.start_sweep(now);
        }
        if self.sweep.is_none() && now >= self.next_sweep {
            self.start_sweep(now);
        }
        let Some(mut v) = self.cur.take().or_else(|| self.empties.try_recv().ok()) else {
            // The sync thread is behind: the events wait in the log.
            return false;
        };
        w.drain_sync(now, DRAIN_MAX, |r| v.push(r));
        let sweeping = self.sweep.is_some();
        if let Some(c) = self.sweep {
            self.sweep = w.export_range(c, SWEEP_SLOTS, now, |r| v.push(r));
        }
        if v.is_empty() {
            self.cur = Some(v);
            return sweeping;
        }
        // A closed channel means the sync thread is gone: nothing to do.
        let _ = self.out.send((self.id, v));
        true
    }

    fn apply(&mut self, w: &mut Worker, now: u64) -> bool {
        let mut n = 0;
        while n < APPLY_MAX {
            if self.applying.is_none() {
                match self.inbox.try_recv() {
                    Ok(v) => self.applying = Some((v, 0)),
                    Err(_) => break,
                }
            }
            let Some((v, i)) = &mut self.applying else {
                break;
            };
            while let Some(r) = v.get(*i).filter(|_| n < APPLY_MAX) {
                apply_one(&self.shared, self.id, w, r, now);
                *i += 1;
                n += 1;
            }
            if *i >= v.len() {
                self.applying = None;
            }
        }
        n > 0 || self.applying.is_some()
    }
}

fn apply_one(shared: &SyncShared, id: u16, w: &mut Worker, r: &Record, now: u64) {
    match r {
        Record::Create(c) | Record::Update(c) => {
            let before = w.conns().len();
            match w.install_synced(c, now) {
                Ok(cid) if w.conns().len() > before => {
                    shared.c.installed.fetch_add(1, Relaxed);
                    let fl = w.conns().try_get(cid).map_or(0, |x| x.flags);
                    if fl & flags::FOREIGN != 0 {
                        shared.c.installed_foreign.fetch_add(1, Relaxed);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(x) = shared.c.install.get(install_error_index(&e)) {
                        x.fetch_add(1, Relaxed);
                    }
                    tracing::debug!("worker {id}: {e}");
                }
            }
        }
        Record::Remove(t) => {
            w.remove_synced(t);
        }
        Record::Resync { .. } => {}
    }
}

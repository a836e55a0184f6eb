//! The new rvsd's workers during a hot upgrade, before they forward
//! (`docs/design/hot-upgrade.md`, section 1 step 5): built while the
//! running rvsd still forwards (tables allocated, transmit sockets open,
//! receive rings mapped but not read), each worker thread blocks on its
//! inbox ([`Wake`]) and installs the connection records the pre-copy
//! routes to it; it expires nothing and spins on no CPU. At the cut-over
//! it is armed with where the old worker stopped in each receive ring
//! ([`Wake::Arm`]), then let go ([`Wake::Go`]): its timers re-armed
//! ([`rvs_core::pipeline::Worker::start_imported`]), it runs the ordinary
//! loop ([`runtime::run`]).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvs_core::pipeline::{Resweep, Worker};
use rvs_core::sync::LocalRecord;
use rvs_io::af_packet::handover::RxCursor;
use rvs_io::{RxQ, TxQ};

use crate::handover::give::Cursors;
use crate::runtime::{self, WorkerCtx};

/// What a dormant worker is told.
pub(super) enum Wake {
    /// Records to install, in order.
    Records(Vec<LocalRecord>),
    /// The old worker's sweep starts again (events lost): the table stays
    /// until [`Wake::Swept`] ([`Resweep`]).
    Reset,
    /// The old worker's sweep is done (or its freeze's tail is in): what
    /// a repeated sweep did not send goes.
    Swept,
    /// Where to read each port's ring from (slot or block, frames to skip;
    /// `None`: not an AF_PACKET ring); answers whether they fit.
    Arm(Vec<Option<(u32, u32)>>, Sender<Result<(), String>>),
    /// The old worker's final counters, to add to this one's.
    Counters(Box<crate::handover::counters::CountersFrame>),
    /// Forward from now on.
    Go,
    /// A warm standby's promotion: read each ring where it says (the
    /// active died without a freeze; AF_XDP pools rebuilt just before).
    Recover(Sender<Result<(), String>>),
}

/// What a dormant worker did, for the hand-over thread.
#[derive(Default)]
pub(super) struct Stats {
    /// Messages sent to it.
    pub queued: AtomicU64,
    /// Messages it handled.
    pub done: AtomicU64,
    /// Records it refused.
    pub refused: AtomicU64,
    /// CLOCK_MONOTONIC ns of its first frame read once started (0: none yet).
    pub first_rx: Arc<AtomicU64>,
    /// Connections and templates in its table after its last install.
    pub conns: AtomicU64,
    /// Neighbours in its table after its last install.
    pub neigh: AtomicU64,
    /// Its thread id once it lowered its priority (0: not yet).
    pub tid: AtomicU32,
    /// It started: timers re-armed, entering its loop.
    pub running: std::sync::atomic::AtomicBool,
}

/// A dormant worker's end.
pub(super) struct Gate {
    inbox: Receiver<Wake>,
    /// Shared with [`Gates`].
    pub stats: Arc<Stats>,
}

/// The hand-over thread's ends, by worker.
pub(super) struct Gates {
    tx: Vec<Sender<Wake>>,
    /// By worker.
    pub stats: Vec<Arc<Stats>>,
}

/// The gates of `n` workers.
pub(super) fn gates(n: usize) -> (Gates, Vec<Gate>) {
    let mut g = Gates {
        tx: Vec::new(),
        stats: Vec::new(),
    };
    let mut ends = Vec::new();
    for _ in 0..n {
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        g.tx.push(tx);
        g.stats.push(stats.clone());
        ends.push(Gate { inbox: rx, stats });
    }
    (g, ends)
}

impl Gates {
    fn send(&self, w: usize, m: Wake) -> Result<(), String> {
        let (tx, st) = self
            .tx
            .get(w)
            .zip(self.stats.get(w))
            .ok_or_else(|| format!("records of worker {w}, which is not configured here"))?;
        st.queued.fetch_add(1, Relaxed);
        tx.send(m).map_err(|_| format!("worker {w} is gone"))
    }

    /// Records for worker `w`.
    pub(super) fn records(&self, w: usize, recs: Vec<LocalRecord>) -> Result<(), String> {
        self.send(w, Wake::Records(recs))
    }

    /// The old worker's counters, for the worker of the same index.
    pub(super) fn counters(
        &self,
        f: crate::handover::counters::CountersFrame,
    ) -> Result<(), String> {
        self.send(usize::from(f.worker), Wake::Counters(Box::new(f)))
    }

    pub(super) fn reset(&self, w: usize) -> Result<(), String> {
        self.send(w, Wake::Reset)
    }

    /// Worker `w`'s sweep is done: it drops what a repeated one did not send.
    pub(super) fn swept(&self, w: usize) -> Result<(), String> {
        self.send(w, Wake::Swept)
    }

    /// Waits until every worker handled what it was sent (the pre-copy's
    /// installs stay out of the gap), at most `limit`.
    pub(super) fn wait_installed(&self, limit: Duration) -> Result<(), String> {
        let t = Instant::now();
        loop {
            let left: u64 = self
                .stats
                .iter()
                .map(|s| s.queued.load(Relaxed).saturating_sub(s.done.load(Relaxed)))
                .sum();
            if left == 0 {
                return Ok(());
            }
            if t.elapsed() > limit {
                return Err(format!(
                    "the workers did not install the pre-copy within {} s ({left} batches left)",
                    limit.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// Sets every worker's ring positions; all or nothing checked before
    /// any worker reads (on `Err`, none will).
    pub(super) fn arm(&self, cursors: &Cursors) -> Result<(), String> {
        let (atx, arx) = mpsc::channel();
        for w in 0..self.tx.len() {
            let c = cursors.get(w).cloned().unwrap_or_default();
            self.send(w, Wake::Arm(c, atx.clone()))?;
        }
        for _ in 0..self.tx.len() {
            arx.recv_timeout(Duration::from_secs(1))
                .map_err(|_| "a worker did not take its ring positions within 1 s".to_string())??;
        }
        Ok(())
    }

    /// Rolling: sets worker `w`'s ring positions (`c`, by port), checked
    /// before it reads.
    pub(super) fn arm_one(&self, w: usize, c: Vec<Option<(u32, u32)>>) -> Result<(), String> {
        let (atx, arx) = mpsc::channel();
        self.send(w, Wake::Arm(c, atx))?;
        arx.recv_timeout(Duration::from_secs(1))
            .map_err(|_| format!("worker {w} did not take its ring positions within 1 s"))?
    }

    /// A warm standby's promotion: every worker re-reads its rings as the
    /// dead active left them ([`Wake::Recover`]); then [`Gates::go`].
    pub(super) fn recover(&self) -> Result<(), String> {
        let (atx, arx) = mpsc::channel();
        for w in 0..self.tx.len() {
            self.send(w, Wake::Recover(atx.clone()))?;
        }
        for _ in 0..self.tx.len() {
            // After the installs queued before it: a big backlog takes time.
            arx.recv_timeout(Duration::from_secs(10))
                .map_err(|_| "a worker did not recover its rings within 10 s".to_string())??;
        }
        Ok(())
    }

    /// Rolling: waits until worker `w`, let go, re-armed its timers (at
    /// most `limit`; whether it did), so that this work is not in the
    /// next worker's gap when all of rvsd shares a CPU.
    pub(super) fn wait_running(&self, w: usize, limit: Duration) -> bool {
        let Some(st) = self.stats.get(w) else {
            return false;
        };
        let t = Instant::now();
        while !st.running.load(Relaxed) {
            if t.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        true
    }

    /// Connections and templates in the workers' tables.
    pub(super) fn conns(&self) -> u64 {
        self.stats.iter().map(|s| s.conns.load(Relaxed)).sum()
    }

    /// Neighbours known (the most any worker has: each has its table).
    pub(super) fn neigh(&self) -> u64 {
        self.stats
            .iter()
            .map(|s| s.neigh.load(Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Lets every worker go, each first back at nice 0: woken at nice 19,
    /// a worker waited behind every other thread of its CPU (the new
    /// rvsd's own main thread when all of rvsd shares one core; a build on
    /// a busy machine) before it could even restore its priority: up to
    /// 25 ms of the gap.
    pub(super) fn go(&self) {
        for w in 0..self.tx.len() {
            self.go_one(w);
        }
    }

    /// Lets worker `w` go, first back at nice 0 ([`Gates::go`]).
    pub(super) fn go_one(&self, w: usize) {
        let (Some(tx), Some(st)) = (self.tx.get(w), self.stats.get(w)) else {
            return;
        };
        let tid = st.tid.load(Relaxed);
        if tid > 0 {
            if let Err(e) = rvs_io::iface::set_nice_of(tid, 0) {
                tracing::warn!("worker {w}: cannot restore its priority: {e}");
            }
        }
        if tx.send(Wake::Go).is_err() {
            tracing::error!("takeover: worker {w} is gone before it started");
        }
    }

    /// Records refused by all workers.
    pub(super) fn refused(&self) -> u64 {
        self.stats.iter().map(|s| s.refused.load(Relaxed)).sum()
    }
}

/// Installs records in order; returns how many were refused.
fn install(w: &mut Worker, rs: &mut Resweep, recs: Vec<LocalRecord>, now: u64) -> u64 {
    recs.iter().filter(|r| !rs.install(w, r, now)).count() as u64
}

/// Sets the worker's ring positions (`c`, by port): AF_PACKET receive
/// rings at the running rvsd's cursors, AF_XDP rings re-read as it left
/// them (their pools were applied just before).
fn arm(id: u16, rx: &mut [RxQ], tx: &mut [TxQ], c: &[Option<(u32, u32)>]) -> Result<(), String> {
    for q in tx.iter_mut() {
        if let TxQ::Xdp(t) = q {
            t.resync();
        }
    }
    for (p, q) in rx.iter_mut().enumerate() {
        if let RxQ::Xdp(x) = q {
            x.resync();
            continue;
        }
        if let RxQ::Packet(r) = q {
            let (index, skip) = c
                .get(p)
                .copied()
                .flatten()
                .ok_or_else(|| format!("no ring position of worker {id} on port {p}"))?;
            r.start_at(RxCursor { index, skip })
                .map_err(|e| format!("port {p}, worker {id}: {e}"))?;
        }
    }
    Ok(())
}

/// Positions the worker's rings as a dead process left them: AF_PACKET
/// receive rings at the first frame nobody gave back
/// ([`rvs_io::af_packet::RxRing::recover`]), AF_XDP rings re-read (their
/// pools rebuilt from the rings just before).
fn recover(rx: &mut [RxQ], tx: &mut [TxQ]) {
    for q in tx.iter_mut() {
        if let TxQ::Xdp(t) = q {
            t.resync();
        }
    }
    for q in rx.iter_mut() {
        if let RxQ::Xdp(x) = q {
            x.resync();
        }
        if let RxQ::Packet(r) = q {
            r.recover();
        }
    }
}

/// The nice value of a dormant worker (the lowest priority short of
/// SCHED_IDLE, which could starve the pre-copy on a busy machine).
const DORMANT_NICE: i32 = 19;

/// Lowers the calling dormant worker's priority and tells [`Gates::go`]
/// which thread to raise again.
fn lower_priority(id: impl std::fmt::Display, gate: &Gate) {
    if let Err(e) = rvs_io::iface::set_thread_nice(DORMANT_NICE) {
        tracing::warn!("dormant worker {id}: cannot lower its priority: {e}");
    }
    gate.stats.tid.store(rvs_io::iface::thread_id(), Relaxed);
}

/// A dormant worker's thread: installs what comes until [`Wake::Go`], then
/// forwards; returns when the gate closes or `stop` is set first.
pub(super) fn run(mut ctx: WorkerCtx, gate: Gate) {
    let now = |ctx: &WorkerCtx| ctx.epoch.elapsed().as_millis() as u64;
    // Installing a big pre-copy takes CPU the running rvsd forwards with:
    // yield to it until the cut-over.
    let id = ctx.worker.id();
    lower_priority(id, &gate);
    let mut resweep = Resweep::default();
    loop {
        let m = match gate.inbox.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) if !ctx.stop.load(Relaxed) => continue,
            Err(_) => return,
        };
        match m {
            Wake::Records(v) => {
                let t = now(&ctx);
                let n = install(&mut ctx.worker, &mut resweep, v, t);
                gate.stats.refused.fetch_add(n, Relaxed);
                let c = ctx.worker.conn_count() as u64;
                gate.stats.conns.store(c, Relaxed);
                let n = ctx.worker.neigh().len() as u64;
                gate.stats.neigh.store(n, Relaxed);
            }
            Wake::Reset => resweep.restart(),
            Wake::Swept => {
                let n = resweep.done(&mut ctx.worker);
                if n > 0 {
                    tracing::info!("dormant worker {id}: {n} connection(s) the repeated sweep did not send dropped");
                }
                let c = ctx.worker.conn_count() as u64;
                gate.stats.conns.store(c, Relaxed);
            }
            Wake::Recover(ack) => {
                recover(&mut ctx.rx, &mut ctx.tx);
                let _ = ack.send(Ok(()));
            }
            Wake::Counters(f) => {
                use crate::handover::counters;
                let b = counters::bases(&f, ctx.worker.snapshot());
                ctx.worker.add_counters(&b);
                counters::add_ports(&f, &ctx.counters);
            }
            Wake::Arm(c, ack) => {
                let _ = ack.send(arm(ctx.worker.id(), &mut ctx.rx, &mut ctx.tx, &c));
            }
            Wake::Go => {
                if let Err(e) = rvs_io::iface::set_thread_nice(0) {
                    tracing::warn!("worker {id}: cannot restore its priority: {e}");
                }
                let t = now(&ctx);
                ctx.worker.start_imported(t);
                gate.stats.running.store(true, Relaxed);
                return runtime::run(ctx);
            }
        }
        gate.stats.done.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dormant_worker_wakes_at_nice_0_not_19() {
        let (gates, mut ends) = gates(1);
        let gate = ends.pop().expect("one gate");
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            lower_priority(0, &gate);
            let low = rvs_io::iface::thread_nice().expect("nice");
            ready_tx.send(()).expect("test alive");
            // As a dormant worker: the priority it has when Go wakes it.
            let woke = matches!(gate.inbox.recv(), Ok(Wake::Go));
            (low, woke, rvs_io::iface::thread_nice().expect("nice"))
        });
        ready.recv().expect("worker lowered its priority");
        gates.go();
        let (low, woke, nice) = worker.join().expect("worker");
        assert_eq!((low, woke), (DORMANT_NICE, true));
        assert_eq!(nice, 0, "woken at nice {nice} (raising it needs root)");
    }
}

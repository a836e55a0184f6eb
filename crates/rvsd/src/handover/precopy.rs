//! The pre-copy of the connection tables while the running rvsd forwards
//! (`docs/design/hot-upgrade.md`, section 1 step 6).
//!
//! Each worker, asked by the hand-over thread ([`Query::Precopy`]), turns
//! its hand-over log on, then sweeps its table a bounded number of slots
//! per loop iteration ([`rvs_core::pipeline::Precopy`]) and keeps draining
//! the log; the records go, encoded, in [`Batch`]es over a bounded channel
//! to the hand-over thread ([`Run`]), which sends them to the new rvsd as
//! CONNS frames of that worker, plus SWEEP_DONE frames ([`Mark`]). At the
//! freeze a worker drains its log's tail and sends the rest of a repeated
//! sweep ([`WorkerPrecopy::finish`]).
//! Events lost from a full log restart that worker's sweep; the successor
//! keeps its table until the repeated sweep is done, then drops what it did
//! not send again ([`rvs_core::pipeline::Resweep`]); a third restart gives
//! up (the running rvsd forwards on; a warm standby never gives up).
//!
//! To a warm standby, which follows for hours and has no freeze, each
//! worker also sends its neighbours (as CONNS records) and, when the
//! standby reads them ([`COUNTERS_EVERY`]), its counters every
//! [`STATE_EVERY`]: the latest are the standby's at its promotion.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvs_core::pipeline::{Precopy, PrecopyEvent, Worker};
use rvs_core::sync::{encode_local, Header, LocalRecord};

use super::compat::Kind;
use super::park::Parked;
use super::session::{Out, Sink};
use crate::control::{Control, Query};
use crate::runtime::PortCounters;
use crate::sync::WorkerSync;

/// Table slots swept per loop iteration.
pub const STEP_SLOTS: u32 = 1024;
/// Log events drained per loop iteration.
pub const DRAIN_MAX: usize = 256;
/// Capacity of the hand-over log (events between two iterations).
pub const LOG_CAPACITY: usize = 65536;
/// Sweeps restarted before the hand-over gives up.
pub const MAX_RESTARTS: u32 = 3;
/// Batches in flight between a worker and the hand-over thread.
const CHANNEL: usize = 256;
/// Batches a worker keeps when the channel is full before it pauses its sweep.
const PENDING_MAX: usize = 64;
/// Largest hand-over message (bytes).
const MESSAGE: usize = 60 * 1024;
/// How often a worker sends a warm standby its neighbours and counters (ms).
pub const STATE_EVERY: u64 = 1000;
/// The COUNTERS version from which they also go every [`STATE_EVERY`] to
/// a warm standby (which keeps the latest as its bases at its promotion);
/// an older standby gets them at a freeze only.
pub const COUNTERS_EVERY: u16 = 3;

/// What a worker's pre-copy tells the new rvsd besides records: the
/// SWEEP_DONE frame is `worker (u16 LE) | mark (u8) [| last read (u64 LE,
/// CLOCK_MONOTONIC ns) for TAIL]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The sweep reached the end of the table.
    Swept,
    /// Events were lost: the sweep starts again (the successor drops what
    /// it does not send again once it is done).
    Restart,
    /// The freeze's tail is all sent; the worker last read a frame at
    /// this CLOCK_MONOTONIC time (ns; 0: never).
    Tail(u64),
}

impl Mark {
    /// The SWEEP_DONE payload of worker `w`.
    pub fn encode(self, w: u16) -> Vec<u8> {
        let mut v = w.to_le_bytes().to_vec();
        match self {
            Mark::Swept => v.push(0),
            Mark::Restart => v.push(1),
            Mark::Tail(ns) => {
                v.push(2);
                v.extend_from_slice(&ns.to_le_bytes());
            }
        }
        v
    }

    /// A SWEEP_DONE payload: the worker and the mark.
    pub fn decode(b: &[u8]) -> Result<(u16, Mark), String> {
        let bad = || format!("a sweep mark of {} bytes that does not parse", b.len());
        let w = u16::from_le_bytes(b.get(..2).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        let m = match (b.get(2), b.get(3..11)) {
            (Some(0), _) => Mark::Swept,
            (Some(1), _) => Mark::Restart,
            (Some(2), Some(ns)) => {
                Mark::Tail(u64::from_le_bytes(ns.try_into().map_err(|_| bad())?))
            }
            _ => return Err(bad()),
        };
        Ok((w, m))
    }
}

/// What a worker hands the hand-over thread.
#[derive(Debug)]
pub enum Batch {
    /// Encoded hand-over messages of its records.
    Msgs(u16, Vec<Vec<u8>>),
    /// A mark, sent after the records before it.
    Mark(u16, Mark),
    /// Its counters now (to a warm standby, every [`STATE_EVERY`]).
    Counters(Box<super::counters::CountersFrame>),
    /// It gave up (the text says why); its pre-copy ended.
    Failed(u16, String),
}

/// Asks a worker to start its pre-copy ([`Query::Precopy`]).
#[derive(Debug)]
pub struct PrecopyReq {
    /// Where its batches go.
    pub out: SyncSender<Batch>,
    /// Set when the hand-over ends before the freeze: the worker stops.
    pub cancel: Arc<AtomicBool>,
    /// For a warm standby: it follows for hours, so a sweep restarts as
    /// often as the log overflows and never gives up, and its neighbours
    /// go every [`STATE_EVERY`].
    pub standby: bool,
    /// Its counters go every [`STATE_EVERY`] too (a standby that reads
    /// them: COUNTERS version [`COUNTERS_EVERY`]).
    pub counters: bool,
}

/// Records as hand-over messages of at most [`MESSAGE`] bytes.
pub fn encode(recs: &[LocalRecord]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = recs;
    let mut buf = vec![0u8; MESSAGE];
    while !rest.is_empty() {
        let h = Header {
            sync_id: 0,
            node: 0,
            seq: out.len() as u64,
        };
        match encode_local(&mut buf, h, rest) {
            Ok((len, n)) => {
                out.push(buf[..len].to_vec());
                rest = &rest[n..];
            }
            Err(e) => {
                tracing::error!("hand-over: a record that does not encode ({e:?}), left out");
                rest = &rest[1..];
            }
        }
    }
    out
}

/// A worker's neighbours as hand-over messages (its connections went by
/// the pre-copy).
pub fn neigh_tables(worker: &Worker, now: u64) -> Vec<Vec<u8>> {
    let mut recs = Vec::new();
    worker.export_neigh(now, |n| recs.push(LocalRecord::Neigh(n)));
    encode(&recs)
}

/// A worker's running pre-copy (its loop holds it).
pub struct WorkerPrecopy {
    id: u16,
    pc: Precopy,
    out: SyncSender<Batch>,
    cancel: Arc<AtomicBool>,
    pending: VecDeque<Batch>,
    standby: bool,
    counters: bool,
    /// When the neighbours and counters go next (ms, a standby's).
    state_at: u64,
}

/// Collects one step's events into batches; HA peers' records to `sync`.
fn collect(
    id: u16,
    pending: &mut VecDeque<Batch>,
    sync: Option<&mut WorkerSync>,
    f: impl FnOnce(&mut dyn FnMut(PrecopyEvent)),
) {
    let mut recs = Vec::new();
    let mut peers = Vec::new();
    f(&mut |e| match e {
        PrecopyEvent::Record(r, p) => {
            recs.push(r);
            peers.extend(p);
        }
        PrecopyEvent::SweepDone | PrecopyEvent::Restart => {
            if !recs.is_empty() {
                pending.push_back(Batch::Msgs(id, encode(&recs)));
                recs.clear();
            }
            let m = match e {
                PrecopyEvent::Restart => Mark::Restart,
                _ => Mark::Swept,
            };
            pending.push_back(Batch::Mark(id, m));
        }
    });
    if !recs.is_empty() {
        pending.push_back(Batch::Msgs(id, encode(&recs)));
    }
    if let Some(s) = sync {
        s.carry(peers);
    }
}

impl WorkerPrecopy {
    /// Starts worker `w`'s pre-copy: the log on, then the sweep; HA sync
    /// (`sync`) leaves the log to it meanwhile.
    pub fn begin(w: &mut Worker, sync: Option<&mut WorkerSync>, r: PrecopyReq) -> Self {
        if let Some(s) = sync {
            s.hold(true);
        }
        WorkerPrecopy {
            id: w.id(),
            pc: Precopy::start(w, LOG_CAPACITY, STEP_SLOTS, DRAIN_MAX),
            out: r.out,
            cancel: r.cancel,
            pending: VecDeque::new(),
            standby: r.standby,
            counters: r.counters,
            state_at: 0,
        }
    }

    /// This iteration's share: `Some(busy)`, or `None` once the pre-copy
    /// is over (cancelled, the hand-over gone, or given up): then
    /// [`WorkerPrecopy::end`] it.
    pub fn step(
        &mut self,
        w: &mut Worker,
        sync: Option<&mut WorkerSync>,
        now: u64,
        ports: &[PortCounters],
    ) -> Option<bool> {
        if self.cancel.load(Relaxed) {
            return None;
        }
        let mut busy = false;
        if self.pending.len() < PENDING_MAX {
            let pc = &mut self.pc;
            collect(self.id, &mut self.pending, sync, |f| {
                busy = pc.step(w, now, f)
            });
            self.state(w, now, ports);
        }
        if self.pc.restarts() >= MAX_RESTARTS && !self.standby {
            let why = format!(
                "worker {}: connection churn outruns the hand-over log ({} events; the sweep restarted {MAX_RESTARTS} times)",
                self.id, LOG_CAPACITY
            );
            let _ = self.out.try_send(Batch::Failed(self.id, why));
            return None;
        }
        while let Some(b) = self.pending.pop_front() {
            match self.out.try_send(b) {
                Ok(()) => {}
                Err(TrySendError::Full(b)) => {
                    self.pending.push_front(b);
                    break;
                }
                Err(TrySendError::Disconnected(_)) => return None,
            }
        }
        Some(busy || !self.pending.is_empty())
    }

    /// A standby's neighbours and counters, once every [`STATE_EVERY`].
    fn state(&mut self, w: &Worker, now: u64, ports: &[PortCounters]) {
        if !self.standby || now < self.state_at {
            return;
        }
        self.state_at = now + STATE_EVERY;
        let neigh = neigh_tables(w, now);
        if !neigh.is_empty() {
            self.pending.push_back(Batch::Msgs(self.id, neigh));
        }
        if self.counters {
            let c = super::counters::export(w, ports);
            self.pending.push_back(Batch::Counters(Box::new(c)));
        }
    }

    /// The freeze: the log's tail and the mark with `last_rx_ns`, all sent
    /// (the hand-over thread reads them while it waits for the workers).
    pub fn finish(
        self,
        w: &mut Worker,
        mut sync: Option<&mut WorkerSync>,
        now: u64,
        last_rx_ns: u64,
    ) {
        let WorkerPrecopy {
            id,
            mut pc,
            out,
            mut pending,
            ..
        } = self;
        let mut lost = false;
        collect(id, &mut pending, sync.as_deref_mut(), |f| {
            lost = pc.finish(w, now, f)
        });
        pending.push_back(match lost {
            true => Batch::Failed(
                id,
                format!("worker {id}: hand-over log events lost at the freeze"),
            ),
            false => Batch::Mark(id, Mark::Tail(last_rx_ns)),
        });
        for b in pending {
            if out.send(b).is_err() {
                break;
            }
        }
        end_log(pc, w, sync);
    }

    /// Ends a pre-copy that will not finish: the log as it was.
    pub fn end(self, w: &mut Worker, sync: Option<&mut WorkerSync>) {
        end_log(self.pc, w, sync);
    }
}

fn end_log(pc: Precopy, w: &mut Worker, sync: Option<&mut WorkerSync>) {
    let keep = sync.as_ref().is_some_and(|s| s.logging());
    pc.stop(w, keep);
    if let Some(s) = sync {
        s.hold(false);
    }
}

/// Starts the pre-copy on every worker of `ctl` and forwards batches until
/// every sweep is done; `None` when the new rvsd does not read sweep marks
/// (the tables then go whole at the freeze).
pub fn start(
    ctl: &Control,
    agreed: &super::compat::Agreed,
    out: &mut Sink,
    standby: bool,
) -> Result<Option<Run>, String> {
    let (Some(conns), Some(marks)) = (
        agreed.version(Kind::CONNS),
        agreed.version(Kind::SWEEP_DONE),
    ) else {
        return Ok(None);
    };
    let counters = agreed
        .version(Kind::COUNTERS)
        .filter(|v| standby && *v >= COUNTERS_EVERY);
    let mut run = Run::start(ctl, (conns, marks, counters), standby)?;
    run.sweep(out, SWEEP_LIMIT)?;
    tracing::info!(
        "hand-over: tables pre-copied in {} ms ({} bytes)",
        run.started.elapsed().as_millis(),
        run.bytes
    );
    Ok(Some(run))
}

/// How long the sweeps may take.
const SWEEP_LIMIT: Duration = Duration::from_secs(110);

/// A worker's park report within 1 s, forwarding the pre-copy's batches
/// meanwhile if there is one.
pub fn recv_parked(
    pre: Option<&mut Run>,
    parked: &Receiver<Parked>,
    out: &mut Sink,
) -> Result<Parked, String> {
    let t = Duration::from_secs(1);
    match pre {
        Some(p) => p.recv_parked(parked, out, t),
        None => parked
            .recv_timeout(t)
            .map_err(|_| "a worker did not park within 1 s".to_string()),
    }
}

/// The worker loop's hook: starts a pre-copy on `req`, steps the running
/// one, ends it when it is over. Returns whether it keeps the loop busy.
pub fn step(
    pre: &mut Option<WorkerPrecopy>,
    req: Option<PrecopyReq>,
    w: &mut Worker,
    mut sync: Option<&mut WorkerSync>,
    now: u64,
    ports: &[PortCounters],
) -> bool {
    if let Some(r) = req {
        if let Some(old) = pre.take() {
            old.end(w, sync.as_deref_mut());
        }
        *pre = Some(WorkerPrecopy::begin(w, sync.as_deref_mut(), r));
    }
    let Some(p) = pre.as_mut() else {
        return false;
    };
    match p.step(w, sync.as_deref_mut(), now, ports) {
        Some(busy) => busy,
        None => {
            if let Some(p) = pre.take() {
                p.end(w, sync);
            }
            false
        }
    }
}

/// The hand-over thread's side: the workers' batches to CONNS and
/// SWEEP_DONE frames.
pub struct Run {
    rx: Receiver<Batch>,
    cancel: Arc<AtomicBool>,
    swept: Vec<bool>,
    tails: Vec<bool>,
    conns: u16,
    marks: u16,
    /// The COUNTERS version, when they go every [`STATE_EVERY`].
    counters: Option<u16>,
    /// Bytes of records sent.
    pub bytes: u64,
    /// When it started.
    pub started: Instant,
}

impl Drop for Run {
    fn drop(&mut self) {
        self.cancel.store(true, Relaxed);
    }
}

impl Run {
    /// Asks every worker of `ctl` to start; frames in the versions given
    /// (CONNS, SWEEP_DONE, and COUNTERS if they go every [`STATE_EVERY`];
    /// `standby`: see [`PrecopyReq::standby`]).
    pub fn start(
        ctl: &Control,
        (conns, marks, counters): (u16, u16, Option<u16>),
        standby: bool,
    ) -> Result<Run, String> {
        let (tx, rx) = mpsc::sync_channel(CHANNEL);
        let cancel = Arc::new(AtomicBool::new(false));
        let n = ctl.workers.len();
        let run = Run {
            rx,
            cancel: cancel.clone(),
            swept: vec![false; n],
            tails: vec![false; n],
            conns,
            marks,
            counters,
            bytes: 0,
            started: Instant::now(),
        };
        for (w, h) in ctl.workers.iter().enumerate() {
            let r = PrecopyReq {
                out: tx.clone(),
                cancel: cancel.clone(),
                standby,
                counters: counters.is_some(),
            };
            h.queries
                .send(Query::Precopy(r))
                .map_err(|_| format!("worker {w} is gone"))?;
        }
        Ok(run)
    }

    fn forward(&mut self, b: Batch, out: &mut Sink) -> Result<(), String> {
        let send = |out: &mut Sink, kind: Kind, version, payload| {
            out(Out {
                kind: kind.0,
                version,
                payload,
                fds: Vec::new(),
            })
            .map_err(|e| e.to_string())
        };
        match b {
            Batch::Msgs(w, msgs) => {
                for m in msgs {
                    self.bytes += m.len() as u64;
                    let mut p = w.to_le_bytes().to_vec();
                    p.extend_from_slice(&m);
                    send(out, Kind::CONNS, self.conns, p)?;
                }
                Ok(())
            }
            Batch::Mark(w, m) => {
                let i = usize::from(w);
                match m {
                    Mark::Swept => self.swept[i] = true,
                    Mark::Restart => self.swept[i] = false,
                    Mark::Tail(_) => self.tails[i] = true,
                }
                send(out, Kind::SWEEP_DONE, self.marks, m.encode(w))
            }
            Batch::Counters(c) => match self.counters {
                Some(v) => {
                    let p = serde_json::to_vec(&c).map_err(|e| e.to_string())?;
                    send(out, Kind::COUNTERS, v, p)
                }
                None => Ok(()),
            },
            Batch::Failed(_, why) => Err(why),
        }
    }

    /// Forwards batches until every worker's sweep is done.
    pub fn sweep(&mut self, out: &mut Sink, limit: Duration) -> Result<(), String> {
        let t = Instant::now();
        while !self.swept.iter().all(|s| *s) {
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(b) => self.forward(b, out)?,
                Err(RecvTimeoutError::Timeout) if t.elapsed() < limit => {}
                Err(_) => return Err("the workers' pre-copy stopped".into()),
            }
        }
        Ok(())
    }

    /// Forwards what the workers sent since (the log of changes).
    pub fn follow(&mut self, out: &mut Sink) -> Result<(), String> {
        while let Ok(b) = self.rx.try_recv() {
            self.forward(b, out)?;
        }
        Ok(())
    }

    /// Waits up to `t` for a worker's park report, forwarding batches
    /// meanwhile (a parking worker sends its tail first).
    pub fn recv_parked(
        &mut self,
        parked: &Receiver<Parked>,
        out: &mut Sink,
        t: Duration,
    ) -> Result<Parked, String> {
        let start = Instant::now();
        loop {
            if let Ok(p) = parked.try_recv() {
                return Ok(p);
            }
            if start.elapsed() > t {
                return Err(format!("a worker did not park within {} ms", t.as_millis()));
            }
            match self.rx.recv_timeout(Duration::from_micros(200)) {
                Ok(b) => self.forward(b, out)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::yield_now(),
            }
        }
    }

    /// After the workers `ws` parked: their tails still queued.
    pub fn tails(&mut self, ws: &[usize], out: &mut Sink) -> Result<(), String> {
        let t = Instant::now();
        while !ws
            .iter()
            .all(|&w| self.tails.get(w).copied().unwrap_or(true))
        {
            match self.rx.recv_timeout(Duration::from_millis(10)) {
                Ok(b) => self.forward(b, out)?,
                Err(_) if t.elapsed() < Duration::from_secs(1) => {}
                Err(_) => return Err("a worker's log tail did not come".into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker of the lab's FNAT service that knows one neighbour.
    fn worker() -> Worker {
        use rvs_core::lab;
        let snap = Arc::new(lab::snapshot(1, vec![], 1));
        let conf = rvs_core::pipeline::WorkerConf {
            conn_capacity: 1024,
            ..Default::default()
        };
        let mut w = Worker::new(conf, snap, 0);
        let mac = rvs_core::addr::Mac([2, 0, 0, 0, 0, 7]);
        w.learn_neigh(lab::rs_ip(0), mac, lab::LAN, 0);
        w
    }

    /// The neighbours and whether counters came, of what a step sent.
    fn sent(rx: &Receiver<Batch>) -> (usize, bool) {
        let (mut neigh, mut counters) = (0, false);
        while let Ok(b) = rx.try_recv() {
            match b {
                Batch::Msgs(_, msgs) => {
                    for m in msgs {
                        let m =
                            rvs_core::sync::LocalMessage::parse(&m, rvs_core::sync::Source::Local)
                                .expect("a hand-over message");
                        neigh += m
                            .records()
                            .filter(|r| matches!(r, LocalRecord::Neigh(_)))
                            .count();
                    }
                }
                Batch::Counters(c) => counters |= c.worker == 0,
                _ => {}
            }
        }
        (neigh, counters)
    }

    /// A warm standby gets the worker's neighbours and counters once a
    /// second (counters only if it reads them); a hot upgrade's successor
    /// gets them at the freeze only.
    #[test]
    fn a_standby_gets_neighbours_and_counters_every_second() {
        for (standby, counters) in [(true, true), (true, false), (false, false)] {
            let mut w = worker();
            let (tx, rx) = mpsc::sync_channel(CHANNEL);
            let r = PrecopyReq {
                out: tx,
                cancel: Arc::new(AtomicBool::new(false)),
                standby,
                counters,
            };
            let ports = [PortCounters::default()];
            let mut pc = WorkerPrecopy::begin(&mut w, None, r);
            let mut at = |now| {
                pc.step(&mut w, None, now, &ports).expect("runs");
                sent(&rx)
            };
            let every = (usize::from(standby), counters);
            assert_eq!(at(5), every, "at once ({standby}, {counters})");
            assert_eq!(at(900), (0, false), "not within the second");
            assert_eq!(at(1005), every, "a second later");
        }
    }

    #[test]
    fn sweep_marks_read_back_and_junk_is_refused() {
        for m in [
            Mark::Swept,
            Mark::Restart,
            Mark::Tail(0x0123_4567_89ab_cdef),
        ] {
            assert_eq!(Mark::decode(&m.encode(3)), Ok((3, m)));
        }
        assert!(Mark::decode(&[1]).is_err());
        assert!(Mark::decode(&[1, 0, 9]).is_err());
        assert!(
            Mark::decode(&[1, 0, 2, 1, 2]).is_err(),
            "a tail without its time"
        );
    }
}

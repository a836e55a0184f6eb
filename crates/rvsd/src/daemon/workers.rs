//! The worker threads and the neighbour hub that shares what one worker
//! learns with the others.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use arc_swap::ArcSwap;
use rvs_core::pipeline::{Learned, Worker, WorkerConf};
use rvs_core::snapshot::Snapshot;
use rvs_core::sync::Record;
use rvs_io::Queue;

use super::DaemonError;
use crate::config::Config;
use crate::control::{Query, WorkerHandle};
use crate::runtime::{self, PortCounters, Taps, WorkerCtx};
use crate::sync;

/// The running workers. [`Workers::join`] waits for them once `stop` is set.
#[derive(Default)]
pub(super) struct Workers {
    threads: Vec<JoinHandle<()>>,
    hub: Option<JoinHandle<()>>,
    sync: Option<JoinHandle<()>>,
}

/// What the control plane and the link reporter keep of the workers.
pub(super) struct Started {
    /// The threads.
    pub workers: Workers,
    /// Query channels and drop counters, by worker.
    pub handles: Vec<WorkerHandle>,
    /// Port counters, by worker.
    pub counters: Vec<Arc<Vec<PortCounters>>>,
}

/// Shared inputs of every worker.
pub(super) struct Shared<'a> {
    /// Where the workers' flow-log records go (`[flow_log]`; none: off).
    pub flow: Option<crate::flowlog::FlowSink>,
    /// The configuration file's settings.
    pub conf: &'a Config,
    /// The published snapshot.
    pub snap: &'a Arc<ArcSwap<Snapshot>>,
    /// Exception-path devices.
    pub taps: &'a Taps,
    /// Set to stop.
    pub stop: &'a Arc<AtomicBool>,
    /// The clock all workers share.
    pub epoch: Instant,
    /// Connection sync.
    pub sync: &'a Arc<crate::sync::SyncCtl>,
    /// Where the conn tables get their memory (`huge_pages`).
    pub table_mem: rvs_core::conn::mem::TableMem,
    /// The ports' XDP fast-path maps, when `fast_path = "xdp"`.
    pub fast: Option<crate::fastpath::FastMaps>,
    /// The bonds.
    pub bonds: &'a crate::bond::Bonds,
    /// The MLD listener's channels.
    pub mld: &'a super::mld::MldLinks,
}

/// Starts one worker per entry of `queues` (its queues, by port), and the
/// neighbour hub. `gates`: a hot upgrade's, by worker: the workers start
/// dormant ([`super::dormant`]).
pub(super) fn start(
    sh: &Shared<'_>,
    queues: Vec<Vec<Queue>>,
    gates: Option<Vec<super::dormant::Gate>>,
) -> Result<Started, DaemonError> {
    let mut gates = gates.map(Vec::into_iter);
    let nports = sh.conf.netif.len();
    let (learned_tx, learned_rx) = mpsc::channel::<(u16, Learned)>();
    let mut neigh_txs = Vec::new();
    let mut started = Started {
        workers: Workers {
            threads: Vec::new(),
            hub: None,
            sync: None,
        },
        handles: Vec::new(),
        counters: Vec::new(),
    };
    let (batch_tx, batch_rx) = mpsc::channel::<(u16, Vec<Record>)>();
    let mut links = sync::net::Links {
        from_workers: batch_rx,
        empties: Vec::new(),
        inboxes: Vec::new(),
    };
    for (w, qs) in queues.into_iter().enumerate() {
        let (qtx, qrx) = mpsc::channel::<Query>();
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<Record>>();
        for _ in 0..sync::worker::BATCHES {
            let _ = empty_tx.send(Vec::with_capacity(sync::worker::BATCH_CAPACITY));
        }
        let (inbox_tx, inbox_rx) = mpsc::sync_channel::<Vec<Record>>(64);
        links.empties.push(empty_tx);
        links.inboxes.push(inbox_tx);
        let ws = sync::WorkerSync::new(
            w as u16,
            sh.sync.shared.clone(),
            batch_tx.clone(),
            empty_rx,
            inbox_rx,
        );
        let (ntx, nrx) = mpsc::channel::<Learned>();
        neigh_txs.push(ntx);
        let wc = WorkerConf {
            id: w as u16,
            conn_capacity: sh.conf.conn_capacity,
            wall_clock_ms: wall_clock_at(sh.epoch),
            table_mem: sh.table_mem,
            prefetch: Some(rvs_io::mem::prefetch),
            ..WorkerConf::default()
        };
        let mut worker = Worker::new(wc, sh.snap.load_full(), 0);
        if sh.flow.is_some() {
            worker.enable_flow_log(crate::flowlog::WORKER_RECORDS);
        }
        let gate = gates.as_mut().and_then(Iterator::next);
        started.handles.push(WorkerHandle {
            queries: qtx,
            drops: worker.drops().clone(),
            gauges: worker.gauges().clone(),
        });
        let counters: Arc<Vec<PortCounters>> =
            Arc::new((0..nports).map(|_| PortCounters::default()).collect());
        started.counters.push(counters.clone());
        let (rx, tx) = qs.into_iter().map(|q| (q.rx, q.tx)).unzip();
        let ctx = WorkerCtx {
            worker,
            snap: sh.snap.clone(),
            rx,
            tx,
            counters,
            taps: sh.taps.clone(),
            kni_reader: w == 0,
            queries: qrx,
            neigh_in: nrx,
            neigh_out: learned_tx.clone(),
            stop: sh.stop.clone(),
            idle: sh.conf.idle,
            cpu: sh.conf.cpus.get(w).copied(),
            epoch: sh.epoch,
            sync: Some(ws),
            flow: sh.flow.clone(),
            fast: sh.fast.clone().map(crate::fastpath::FastGlue::new),
            egress: crate::bond::Egress::new(sh.bonds, w == 0),
            mld: sh.mld.worker(w == 0),
            first_rx: gate.as_ref().map(|g| g.stats.first_rx.clone()),
        };
        let t = std::thread::Builder::new()
            .name(format!("rvs-worker-{w}"))
            .spawn(move || match gate {
                Some(g) => super::dormant::run(ctx, g),
                None => runtime::run(ctx),
            })
            .map_err(|e| DaemonError::thread(format!("worker {w}"), e))?;
        started.workers.threads.push(t);
    }
    drop(learned_tx);
    drop(batch_tx);
    let (ctl, stop, epoch) = (sh.sync.clone(), sh.stop.clone(), sh.epoch);
    let t = std::thread::Builder::new()
        .name("rvs-sync".into())
        .spawn(move || sync::net::run(ctl, links, stop, epoch))
        .map_err(|e| DaemonError::thread("the sync thread", e))?;
    started.workers.sync = Some(t);
    // What one worker learns, the others learn too; ends when every worker
    // has dropped its sender.
    let hub = std::thread::Builder::new()
        .name("rvs-neigh".into())
        .spawn(move || {
            while let Ok((from, l)) = learned_rx.recv() {
                for (i, t) in neigh_txs.iter().enumerate() {
                    if i != from as usize {
                        let _ = t.send(l);
                    }
                }
            }
        })
        .map_err(|e| DaemonError::thread("the neighbour thread", e))?;
    started.workers.hub = Some(hub);
    tracing::info!(
        "connection tables ({} × {} conns): {}",
        sh.conf.workers,
        sh.conf.conn_capacity,
        super::hugepages::describe()
    );
    Ok(started)
}

impl Workers {
    /// Waits for the workers (after `stop` was set), then for the hub.
    pub(super) fn join(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(h) = self.sync.take() {
            let _ = h.join();
        }
        if let Some(h) = self.hub.take() {
            let _ = h.join();
        }
    }
}

/// The wall-clock time (ms since the Unix epoch) at `epoch`, the workers'
/// clock's 0: SYN cookies count their epochs on it, so that ECMP nodes
/// sharing a `[synproxy]` key agree on them.
fn wall_clock_at(epoch: std::time::Instant) -> u64 {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    wall.saturating_sub(epoch.elapsed().as_millis() as u64)
}

//! The control plane: one JSON request per line in, one reply per line out
//! (see `rvs-api`), over the unix socket [`socket`] serves. Changes go through
//! the [`Store`]; every successful change publishes a new snapshot that the
//! workers pick up on their next loop.
//!
//! Reads cost the workers O(1) per loop iteration whatever their table size:
//! counts come from gauges the workers publish ([`WorkerHandle::gauges`]);
//! what needs worker-owned state (connections, port pools, learned
//! neighbours) is asked over each worker's query channel, and connections are
//! walked a bounded number of slots per loop iteration ([`conns`]). A worker
//! that does not answer in time turns the request into an error: no listing
//! silently leaves a worker out.

pub mod conns;
pub mod follow;
pub mod socket;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rvs_api::{ApiError, ErrorKind, LinkInfo, NeighInfo, Reply, Request, StatusInfo};
use rvs_core::addr::Addr;
use rvs_core::snapshot::Snapshot;
use rvs_core::stats::{DropCounters, WorkerGauges};

use crate::store::Store;
pub use conns::{ConnChunk, ConnFilter, ConnScan, ConnScans};
pub use socket::{serve, serve_with, Limits};

/// Questions a worker answers between bursts.
pub enum Query {
    /// Connections, walked a bounded number of slots per loop iteration
    /// (see [`ConnScans`]).
    Conns {
        /// What to list.
        scan: ConnScan,
        /// Where to answer.
        reply: Sender<ConnChunk>,
    },
    /// Port-pool usage per local address: (addr, used, free, misses).
    Pools {
        /// Where to answer.
        reply: Sender<Vec<(Addr, u64, u64, u64)>>,
    },
    /// Learned neighbours.
    Neigh {
        /// Where to answer.
        reply: Sender<Vec<NeighInfo>>,
    },
    /// Start capturing (`rvsadm --capture`): the worker's side of the ring.
    Capture(Box<crate::capture::WorkerCapture>),
    /// Stop capturing.
    CaptureStop,
    /// Duplicates of the worker's receive sockets, by port (a hand-over).
    ExportRx {
        /// Where to answer.
        reply: Sender<std::io::Result<Vec<crate::handover::park::ExportedRx>>>,
    },
    /// Park between two iterations (a hand-over).
    Park(crate::handover::park::Park),
    /// Pre-copy the table while forwarding (a hand-over).
    Precopy(crate::handover::precopy::PrecopyReq),
}

/// What the control plane keeps of each worker.
pub struct WorkerHandle {
    /// Its query channel.
    pub queries: Sender<Query>,
    /// Its drop counters.
    pub drops: Arc<DropCounters>,
    /// Its published gauges (the live connection count).
    pub gauges: Arc<WorkerGauges>,
}

/// Builds `rvsip link show` entries (ports and their counters).
pub type LinkReporter = Box<dyn Fn() -> Vec<LinkInfo> + Send + Sync>;

/// Called after every configuration change (e.g. to update fanout steering).
pub type ChangeHook = Box<dyn Fn(&Store) + Send + Sync>;

/// Shared state of the control plane.
pub struct Control {
    /// The configuration.
    pub store: Mutex<Store>,
    /// Where workers read the snapshot from.
    pub snap: Arc<ArcSwap<Snapshot>>,
    /// The workers.
    pub workers: Vec<WorkerHandle>,
    /// Start time.
    pub started: Instant,
    /// Connection-table capacity per worker.
    pub conn_capacity: usize,
    /// Ports and counters for `rvsip link show`.
    pub links: LinkReporter,
    /// Runs after each change.
    pub on_change: ChangeHook,
    /// Set to ask the main thread for a reload.
    pub reload: Arc<AtomicBool>,
    /// The connection-sync daemons.
    pub sync: Arc<crate::sync::SyncCtl>,
    /// Packet capture (`rvsadm --capture`).
    pub capture: crate::capture::CaptureCtl,
    /// Serves a takeover request's connection (`rvsd --takeover`); none:
    /// this process cannot hand over.
    pub handover: Option<crate::handover::give::Hook>,
    /// Who takes every applied change ([`follow`]).
    pub followers: follow::Followers,
}

/// Port-pool usage of a local address: (used, free, misses).
type PoolUsage = (u64, u64, u64);

/// How long the control plane waits for one worker's answer.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(2);

impl Control {
    /// Asks worker `w` one question; an error names the worker when it is
    /// gone or does not answer within [`ASK_TIMEOUT`].
    fn ask_one<T>(
        &self,
        w: usize,
        what: &str,
        make: impl FnOnce(Sender<T>) -> Query,
    ) -> Result<T, ApiError> {
        let (tx, rx) = mpsc::channel();
        let gone = || {
            ApiError::new(
                ErrorKind::Internal,
                format!("worker {w} is not running: cannot answer {what}"),
            )
        };
        self.workers
            .get(w)
            .ok_or_else(gone)?
            .queries
            .send(make(tx))
            .map_err(|_| gone())?;
        rx.recv_timeout(ASK_TIMEOUT).map_err(|_| {
            ApiError::new(
                ErrorKind::Internal,
                format!(
                    "worker {w} did not answer {what} within {} s; rvsd gives no answer that leaves a worker out",
                    ASK_TIMEOUT.as_secs()
                ),
            )
        })
    }

    /// Asks every worker (all questions sent first, then the answers
    /// collected); an error when one does not answer.
    fn ask<T>(&self, what: &str, make: impl Fn(Sender<T>) -> Query) -> Result<Vec<T>, ApiError> {
        let mut rxs = Vec::new();
        for (w, h) in self.workers.iter().enumerate() {
            let (tx, rx) = mpsc::channel();
            if h.queries.send(make(tx)).is_err() {
                return Err(ApiError::new(
                    ErrorKind::Internal,
                    format!("worker {w} is not running: cannot answer {what}"),
                ));
            }
            rxs.push(rx);
        }
        let deadline = Instant::now() + ASK_TIMEOUT;
        let mut out = Vec::new();
        for (w, rx) in rxs.into_iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            out.push(rx.recv_timeout(left).map_err(|_| {
                ApiError::new(
                    ErrorKind::Internal,
                    format!(
                        "worker {w} did not answer {what} within {} s; rvsd gives no answer that leaves a worker out",
                        ASK_TIMEOUT.as_secs()
                    ),
                )
            })?);
        }
        Ok(out)
    }

    /// Port-pool usage of `addr` summed over workers.
    fn pool_usage(&self) -> Result<impl Fn(&Addr) -> Option<PoolUsage>, ApiError> {
        let all: Vec<(Addr, u64, u64, u64)> = self
            .ask("the port-pool usage", |reply| Query::Pools { reply })?
            .into_iter()
            .flatten()
            .collect();
        Ok(move |a: &Addr| {
            let mut found = None;
            for (x, u, f, m) in &all {
                if x == a {
                    let e = found.get_or_insert((0, 0, 0));
                    e.0 += u;
                    e.1 += f;
                    e.2 += m;
                }
            }
            found
        })
    }

    /// Live connections of all workers, from the gauges they publish: no
    /// question to any worker.
    pub fn conn_count(&self) -> u64 {
        self.workers
            .iter()
            .map(|w| w.gauges.conns.load(Ordering::Relaxed))
            .sum()
    }

    fn publish(&self, store: &Store) {
        self.snap.store(Arc::new(store.snapshot()));
        (self.on_change)(store);
    }

    /// Handles one request (its time goes to the latency histogram of
    /// [`crate::metrics`]).
    pub fn handle(&self, req: &Request) -> Reply {
        let t = Instant::now();
        let r = match self.try_handle(req) {
            Ok(r) => r,
            Err(e) => Reply::Error(e),
        };
        crate::metrics::observe_op(req, t.elapsed());
        r
    }

    /// Answers a read for the metrics scrape (not timed as a request).
    pub fn query(&self, req: &Request) -> Result<Reply, ApiError> {
        self.try_handle(req)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Store>, ApiError> {
        self.store.lock().map_err(|_| {
            ApiError::new(
                ErrorKind::Internal,
                "configuration store poisoned by an earlier failure",
            )
        })
    }

    fn try_handle(&self, req: &Request) -> Result<Reply, ApiError> {
        match req {
            Request::Status => {
                let st = self.lock()?;
                Ok(Reply::Status(StatusInfo {
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    uptime_s: self.started.elapsed().as_secs(),
                    workers: self.workers.len() as u16,
                    conn_capacity: self.conn_capacity,
                    conns: self.conn_count(),
                    generation: st.generation(),
                }))
            }
            Request::ListServices { key } => {
                Ok(Reply::Services(self.lock()?.list_services(key.as_ref())?))
            }
            Request::ListLaddrs { key } => {
                let usage = self.pool_usage()?;
                let st = self.lock()?;
                Ok(Reply::Laddrs(st.list_laddrs(key.as_ref(), |a| {
                    usage(a).unwrap_or((0, 0, 0))
                })?))
            }
            Request::ListConns { key, limit } => {
                Ok(Reply::Conns(self.list_conns(key.as_ref(), *limit)?))
            }
            Request::ListConnPage { key, cursor, limit } => Ok(Reply::ConnPage(self.conn_page(
                key.as_ref(),
                *cursor,
                *limit,
            )?)),
            Request::ListAddrs { dev } => {
                let usage = self.pool_usage()?;
                let st = self.lock()?;
                Ok(Reply::Addrs(st.list_addrs(dev.as_deref(), usage)?))
            }
            Request::ListRoutes => Ok(Reply::Routes(self.lock()?.list_routes())),
            Request::ListNeigh { dev } => {
                let learned = self.ask("the neighbour listing", |reply| Query::Neigh { reply })?;
                let mut v = self.lock()?.static_neigh(dev.as_deref());
                for w in learned {
                    for n in w {
                        if dev.as_ref().is_none_or(|d| *d == n.dev)
                            && !v.iter().any(|x| x.addr == n.addr)
                        {
                            v.push(n);
                        }
                    }
                }
                Ok(Reply::Neigh(v))
            }
            Request::ListLinks { dev } => {
                let mut links = (self.links)();
                crate::daemon::vlan_links(&*self.lock()?, &mut links);
                if let Some(d) = dev {
                    links.retain(|l| &l.name == d);
                    if links.is_empty() {
                        return Err(ApiError::new(
                            ErrorKind::NotFound,
                            format!("no such device {d}"),
                        ));
                    }
                }
                Ok(Reply::Links(links))
            }
            Request::StartDaemon { spec } => {
                self.sync.start(spec)?;
                Ok(Reply::Ok)
            }
            Request::StopDaemon { role } => {
                self.sync.stop(*role)?;
                Ok(Reply::Ok)
            }
            Request::ListDaemon => Ok(Reply::Daemons(self.sync.list())),
            Request::ListLimits { key } => {
                Ok(Reply::Limits(self.lock()?.list_limits(key.as_ref())?))
            }
            Request::ListAcl { kind, key } => {
                Ok(Reply::Acl(self.lock()?.list_acl(*kind, key.as_ref())?))
            }
            Request::IpsetList { name, members } => Ok(Reply::Ipsets(
                self.lock()?.ipset_list(name.as_deref(), *members)?,
            )),
            Request::IpsetTest { name, entry } => {
                Ok(Reply::IpsetTest(self.lock()?.ipset_test(name, entry)?))
            }
            Request::ListVlans { sel } => Ok(Reply::Vlans(self.lock()?.list_vlans(sel)?)),
            Request::Reload => {
                self.reload.store(true, Ordering::SeqCst);
                Ok(Reply::Ok)
            }
            Request::Capture { .. } => Err(ApiError::new(
                ErrorKind::Invalid,
                "a capture answers with a stream: it is served on the control socket only",
            )),
            Request::Takeover { .. } => Err(ApiError::new(
                ErrorKind::Invalid,
                "a takeover hands descriptors over: it is served on the control socket only",
            )),
            _ => {
                let mut st = self.lock()?;
                self.frozen_refusal()?;
                st.apply(req)?;
                self.publish(&st);
                self.followers.publish(req);
                Ok(st.warning(req).map_or(Reply::Ok, Reply::Warning))
            }
        }
    }
}

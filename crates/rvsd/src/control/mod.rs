//! The control socket: one JSON request per line in, one reply per line out
//! (see `rvs-api`). Changes go through the [`Store`]; every successful change
//! publishes a new snapshot that the workers pick up on their next loop.
//! Reads that need worker-owned state (connections, port pools, learned
//! neighbours) are asked of each worker over its query channel.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rvs_api::{ApiError, ConnInfo, ErrorKind, LinkInfo, NeighInfo, Reply, Request, StatusInfo};
use rvs_core::addr::Addr;
use rvs_core::snapshot::Snapshot;
use rvs_core::stats::DropCounters;

use crate::store::Store;

/// Questions a worker answers between bursts.
pub enum Query {
    /// Up to `limit` connections.
    Conns {
        /// How many at most.
        limit: usize,
        /// Where to answer.
        reply: Sender<Vec<ConnInfo>>,
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
}

/// What the control plane keeps of each worker.
pub struct WorkerHandle {
    /// Its query channel.
    pub queries: Sender<Query>,
    /// Its drop counters.
    pub drops: Arc<DropCounters>,
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
}

const ASK_TIMEOUT: Duration = Duration::from_secs(2);

impl Control {
    fn ask<T>(&self, make: impl Fn(Sender<T>) -> Query) -> Vec<T> {
        let mut out = Vec::new();
        let mut rxs = Vec::new();
        for w in &self.workers {
            let (tx, rx) = mpsc::channel();
            if w.queries.send(make(tx)).is_ok() {
                rxs.push(rx);
            }
        }
        for rx in rxs {
            if let Ok(v) = rx.recv_timeout(ASK_TIMEOUT) {
                out.push(v);
            }
        }
        out
    }

    /// Port-pool usage of `addr` summed over workers.
    fn pool_usage(&self) -> impl Fn(&Addr) -> Option<(u64, u64, u64)> {
        let all: Vec<(Addr, u64, u64, u64)> = self
            .ask(|reply| Query::Pools { reply })
            .into_iter()
            .flatten()
            .collect();
        move |a: &Addr| {
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
        }
    }

    fn publish(&self, store: &Store) {
        self.snap.store(Arc::new(store.snapshot()));
        (self.on_change)(store);
    }

    /// Handles one request.
    pub fn handle(&self, req: &Request) -> Reply {
        match self.try_handle(req) {
            Ok(r) => r,
            Err(e) => Reply::Error(e),
        }
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
                let conns = self
                    .ask(|reply| Query::Conns {
                        limit: usize::MAX,
                        reply,
                    })
                    .iter()
                    .map(|v| v.len() as u64)
                    .sum();
                let st = self.lock()?;
                Ok(Reply::Status(StatusInfo {
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    uptime_s: self.started.elapsed().as_secs(),
                    workers: self.workers.len() as u16,
                    conn_capacity: self.conn_capacity,
                    conns,
                    generation: st.generation(),
                }))
            }
            Request::ListServices { key } => {
                Ok(Reply::Services(self.lock()?.list_services(key.as_ref())?))
            }
            Request::ListLaddrs { key } => {
                let usage = self.pool_usage();
                let st = self.lock()?;
                Ok(Reply::Laddrs(st.list_laddrs(key.as_ref(), |a| {
                    usage(a).unwrap_or((0, 0, 0))
                })?))
            }
            Request::ListConns { key, limit } => {
                let mut all: Vec<ConnInfo> = self
                    .ask(|reply| Query::Conns {
                        limit: *limit,
                        reply,
                    })
                    .into_iter()
                    .flatten()
                    .collect();
                if let Some(rvs_api::ServiceKey::Vs { vip, port, proto }) = key {
                    let p = if *proto == rvs_api::Proto::Tcp {
                        "TCP"
                    } else {
                        "UDP"
                    };
                    all.retain(|c| c.virt == (*vip, *port) && c.proto == p);
                }
                all.truncate(*limit);
                Ok(Reply::Conns(all))
            }
            Request::ListAddrs { dev } => {
                let usage = self.pool_usage();
                let st = self.lock()?;
                Ok(Reply::Addrs(st.list_addrs(dev.as_deref(), usage)?))
            }
            Request::ListRoutes => Ok(Reply::Routes(self.lock()?.list_routes())),
            Request::ListNeigh { dev } => {
                let mut v = self.lock()?.static_neigh(dev.as_deref());
                for w in self.ask(|reply| Query::Neigh { reply }) {
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
            Request::Reload => {
                self.reload.store(true, Ordering::SeqCst);
                Ok(Reply::Ok)
            }
            _ => {
                let mut st = self.lock()?;
                st.apply(req)?;
                self.publish(&st);
                Ok(Reply::Ok)
            }
        }
    }
}

/// Creates the socket (root-only: mode 0600, in a 0755 directory) and serves
/// it until `stop` is set.
pub fn serve(
    path: &str,
    ctl: Arc<Control>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::path::Path::new(path).exists() {
        // A live daemon answers; a stale socket file does not.
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another rvsd is serving {path} (set RVS_SOCKET or socket = ... to run several)"),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    let path = path.to_string();
    let h = std::thread::Builder::new()
        .name("rvs-control".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let ctl = ctl.clone();
                        let _ = std::thread::Builder::new()
                            .name("rvs-client".into())
                            .spawn(move || client(s, &ctl));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => {
                        tracing::warn!("control socket: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
            let _ = std::fs::remove_file(&path);
        })?;
    Ok(h)
}

fn client(s: UnixStream, ctl: &Control) {
    let _ = s.set_nonblocking(false);
    let Ok(mut w) = s.try_clone() else { return };
    let r = BufReader::new(s);
    for line in r.lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let reply = match rvs_api::decode_request(&line) {
            Ok(req) => {
                let reply = ctl.handle(&req);
                if let Reply::Error(e) = &reply {
                    tracing::info!("request refused: {e}");
                }
                reply
            }
            Err(e) => {
                tracing::info!("malformed control request: {e}");
                Reply::Error(e)
            }
        };
        if w.write_all(rvs_api::encode_reply(&reply).as_bytes())
            .is_err()
        {
            break;
        }
    }
}

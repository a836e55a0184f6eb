//! Assembling the daemon, one task per module: [`ports`] (discovery,
//! takeover, TAPs, queues), [`workers`] (the worker threads and the
//! neighbour hub), [`links`] (`rvsip link show`), the control socket
//! ([`crate::control`]), and here the [`Daemon`] that owns them all, runs
//! the signal loop, and gives the ports back when dropped, also on an error
//! half-way through start-up.

mod adopt;
mod adopt_xdp;
mod dormant;
mod error;
pub mod health;
mod hugepages;
mod links;
mod mcast;
pub(crate) mod mld;
mod ports;
mod standby;
mod takeover_report;
mod vlan;
mod workers;

pub use vlan::vlan_links;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rvs_core::snapshot::Snapshot;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

pub use adopt::takeover;
pub use error::DaemonError;
pub use standby::standby;

use crate::config::Config;
use crate::control::{self, Control};
use crate::handover::give::GiveCtx;
use crate::store::Store;
use crate::sync::{SyncCtl, SyncShared};

/// A running rvsd. Dropping it stops the workers and the control socket and
/// gives every port back (addresses, IPv6 setting, nftables table, TAPs,
/// XDP programs).
pub struct Daemon {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    snap: Arc<ArcSwap<Snapshot>>,
    workers: workers::Workers,
    ctl: Option<Arc<Control>>,
    sync: Arc<SyncCtl>,
    server: Option<JoinHandle<()>>,
    metrics: Option<JoinHandle<()>>,
    socket: Option<String>,
    epoch: Instant,
    health: Option<health::Health>,
    /// Set once a successor committed a hand-over: stop, give nothing back.
    committed: Arc<AtomicBool>,
    /// What a hand-over needs (for the control socket's takeover hook).
    give: Option<Arc<GiveCtx>>,
    /// Adopted ports not yet this daemon's (a takeover before its commit):
    /// dropping it gives nothing back.
    keep_ports: bool,
    /// Declared last: dropped after the workers stopped using the queues.
    ports: ports::Ports,
}

impl Daemon {
    /// Takes the ports over, starts the workers and serves the control socket.
    pub fn start(conf: &Config) -> Result<Daemon, DaemonError> {
        // Checked before any port is touched: a refusal leaves the host as it was.
        let metrics = bind_metrics(conf)?;
        let table_mem = hugepages::table_mem(conf)?;
        let mut defs = ports::discover(conf)?;
        let (bond_defs, bonds) = crate::bond::plan(conf, &mut defs)?;
        let takeovers = ports::take_over(&defs)?;
        let mut ports = ports::Ports {
            defs,
            opened: Arc::new(Mutex::new(Vec::new())),
            taps: Arc::new(ArcSwap::from_pointee(Vec::new())),
            takeovers,
            bonds: Arc::new(bonds),
        };
        crate::bond::set_macs(&ports.bonds, &mut ports.takeovers)?;
        // Bonds are ports after the taken-over ones (their kni devices too).
        let all_defs = [ports.defs.clone(), bond_defs].concat();
        ports.taps = ports::open_taps(&all_defs)?;
        let mut store = Store::new(
            all_defs,
            conf.workers,
            conf.timeouts(),
            conf.pipeline_conf(),
        );
        for v in &conf.vlan {
            let req = rvs_api::Request::AddVlan { spec: v.spec() };
            store
                .apply(&req)
                .map_err(|e| DaemonError::port(&v.link, format!("[[vlan]]: {}", e.message)))?;
        }
        vlan::sync_taps(&ports.taps, &store);
        let (opened, queues) =
            ports::open_queues(&ports.defs, conf, &ports::steering(&store, conf.workers))?;
        let fast = ports::fast_maps(conf, &ports.defs, &opened)?;
        ports.opened = Arc::new(Mutex::new(opened));
        let mut d = Daemon::assemble(conf, ports, store, queues, fast, table_mem, None)?;
        d.serve(conf, None, metrics)?;
        Ok(d)
    }

    /// Starts the workers on `queues` (by worker, then port) with the
    /// configuration `store`, and builds the control plane (not served yet:
    /// [`Daemon::serve`]). On an error the ports are given back.
    fn assemble(
        conf: &Config,
        ports: ports::Ports,
        store: Store,
        queues: Vec<Vec<rvs_io::Queue>>,
        fast: Option<crate::fastpath::FastMaps>,
        table_mem: rvs_core::conn::mem::TableMem,
        gates: Option<Vec<dormant::Gate>>,
    ) -> Result<Daemon, DaemonError> {
        let workers = conf.workers;
        let snap = Arc::new(ArcSwap::from_pointee(store.snapshot()));
        let mut d = Daemon {
            stop: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
            snap,
            workers: workers::Workers::default(),
            ctl: None,
            sync: Arc::new(SyncCtl::new(
                Arc::new(SyncShared::new(refresh_ms(conf))),
                node_id(conf),
            )),
            server: None,
            metrics: None,
            socket: None,
            epoch: Instant::now(),
            health: None,
            committed: Arc::new(AtomicBool::new(false)),
            give: None,
            keep_ports: false,
            ports,
        };
        let flow = match &conf.flow_log {
            Some(fl) => Some(
                crate::flowlog::start(fl, d.epoch)
                    .map_err(|e| DaemonError::thread("the flow-log writer", e))?
                    .0,
            ),
            None => None,
        };
        let mld = Arc::new(mld::MldLinks::new());
        let shared = workers::Shared {
            flow,
            conf,
            snap: &d.snap,
            taps: &d.ports.taps,
            stop: &d.stop,
            epoch: d.epoch,
            sync: &d.sync,
            table_mem,
            fast,
            bonds: &d.ports.bonds,
            mld: &mld,
        };
        // On an error from here on, `d` drops and gives the ports back.
        let started = workers::start(&shared, queues, gates)?;
        crate::bond::monitor::start(&d.ports.bonds, &d.ports.taps, &d.stop, d.epoch)
            .map_err(|e| DaemonError::thread("rvs-bond", e))?;
        mld::start(&mld, &d.stop, d.epoch).map_err(|e| DaemonError::thread("rvs-mld", e))?;
        d.workers = started.workers;
        d.health = Some(health::Health::new(
            conf.health.clone(),
            started.handles.iter().map(|h| h.gauges.clone()).collect(),
            d.ports.kni_carriers(),
        ));
        d.give = Some(d.give_ctx(conf)?);
        let ctl = d.control(conf, store, started.handles, started.counters, mld);
        d.ctl = Some(ctl);
        if let Some(sy) = &conf.sync {
            let specs = sy.specs().map_err(DaemonError::Sync)?;
            for s in &specs {
                d.sync.start(s).map_err(|e| DaemonError::Sync(e.message))?;
            }
        }
        tracing::info!(
            "rvsd {} up: {} worker(s)",
            env!("CARGO_PKG_VERSION"),
            workers
        );
        Ok(d)
    }

    /// Serves the control socket (on `control` when it was passed by the
    /// rvsd this one took over from), and the metrics on `metrics` if any.
    fn serve(
        &mut self,
        conf: &Config,
        control: Option<std::os::unix::net::UnixListener>,
        metrics: Option<std::net::TcpListener>,
    ) -> Result<(), DaemonError> {
        let Some(ctl) = self.ctl.clone() else {
            return Ok(());
        };
        let socket = conf.socket_path();
        let err = |source| DaemonError::Socket {
            path: socket.clone(),
            source,
        };
        let listener = match control {
            Some(l) => l,
            None => control::socket::listen(&socket).map_err(err)?,
        };
        self.keep_listener(|l| l.control = listener.as_fd().try_clone_to_owned().ok());
        self.server = Some(
            control::socket::serve_listener(listener, ctl.clone(), self.stop.clone())
                .map_err(err)?,
        );
        self.socket = Some(socket.clone());
        tracing::info!("control socket {socket}");
        match metrics {
            Some(l) => self.serve_metrics(l),
            None => Ok(()),
        }
    }

    /// Serves the metrics on `l`.
    fn serve_metrics(&mut self, l: std::net::TcpListener) -> Result<(), DaemonError> {
        let Some(ctl) = self.ctl.clone() else {
            return Ok(());
        };
        let addr = l
            .local_addr()
            .map_err(|e| DaemonError::thread("the metrics server", e))?;
        self.keep_listener(|k| k.metrics = l.as_fd().try_clone_to_owned().ok());
        let h = crate::metrics::http::serve(l, ctl, self.stop.clone())
            .map_err(|e| DaemonError::thread("the metrics server", e))?;
        self.metrics = Some(h);
        tracing::info!("metrics at http://{addr}/metrics");
        Ok(())
    }

    /// Keeps a duplicate of a listening socket for a successor.
    fn keep_listener(&self, f: impl FnOnce(&mut crate::handover::give::Listeners)) {
        if let Some(Ok(mut l)) = self.give.as_ref().map(|g| g.listeners.lock()) {
            f(&mut l);
        }
    }

    /// What a hand-over needs of the ports: duplicates of their locks and TAPs.
    fn give_ctx(&self, conf: &Config) -> Result<Arc<GiveCtx>, DaemonError> {
        let dup = |what: &str, fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .map_err(|e| DaemonError::thread(format!("a duplicate of {what}"), e))
        };
        let mut locks = Vec::new();
        for t in &self.ports.takeovers {
            locks.push(dup("a port lock", t.lock().as_fd())?);
        }
        let mut taps = Vec::new();
        // The ports' own; a successor makes its VLAN devices' kni devices
        // anew from the store (`vlan::sync_taps`).
        let phys = self.ports.defs.len();
        for t in self.ports.taps.load().iter().take(phys) {
            taps.push(match t {
                Some(t) => {
                    let t = t.tap.lock().map_err(|_| {
                        DaemonError::thread("a TAP", std::io::Error::other("poisoned"))
                    })?;
                    Some(dup("a TAP", t.as_fd())?)
                }
                None => None,
            });
        }
        Ok(Arc::new(GiveCtx {
            conf: conf.clone(),
            locks,
            taps,
            committed: self.committed.clone(),
            stop: self.stop.clone(),
            busy: AtomicBool::new(false),
            opened: self.ports.opened.clone(),
            listeners: Default::default(),
            standby: Default::default(),
        }))
    }

    /// The control plane: the store, the link reporter and the hook that
    /// re-steers the ports after every change.
    fn control(
        &self,
        conf: &Config,
        store: Store,
        handles: Vec<control::WorkerHandle>,
        counters: Vec<Arc<Vec<crate::runtime::PortCounters>>>,
        mld: Arc<mld::MldLinks>,
    ) -> Arc<Control> {
        let workers = conf.workers;
        let drops = handles.iter().map(|h| h.drops.clone()).collect();
        let opened = self.ports.opened.clone();
        let backends = match opened.lock() {
            Ok(o) => o.iter().map(|p| p.backend().to_string()).collect(),
            Err(_) => Vec::new(),
        };
        let links = links::reporter(self.ports.defs.clone(), backends, counters, drops);
        let links = crate::bond::links::wrap(links, self.ports.bonds.clone());
        let taps = self.ports.taps.clone();
        let groups = mcast::Groups::new(&self.ports.defs, mld);
        groups.sync(&store);
        let on_change: control::ChangeHook = Box::new(move |st: &Store| {
            vlan::sync_taps(&taps, st);
            groups.sync(st);
            let s = ports::steering(st, workers);
            if let Ok(ports) = opened.lock() {
                for p in ports.iter() {
                    if let Err(e) = p.set_steering(&s) {
                        tracing::warn!("cannot update the steering of a port: {e}");
                    }
                }
            }
        });
        Arc::new(Control {
            store: Mutex::new(store),
            snap: self.snap.clone(),
            workers: handles,
            started: Instant::now(),
            conn_capacity: conf.conn_capacity,
            links,
            on_change,
            reload: self.reload.clone(),
            sync: self.sync.clone(),
            capture: crate::capture::CaptureCtl::new(self.epoch),
            handover: self.give.clone().map(crate::handover::give::hook),
            followers: Default::default(),
        })
    }

    /// Serves until SIGTERM or SIGINT; SIGHUP (or a reload request) re-reads
    /// `path` and applies what can change live.
    pub fn run_until_signalled(&mut self, path: &Path) -> Result<(), DaemonError> {
        let term = Arc::new(AtomicBool::new(false));
        let hup = Arc::new(AtomicBool::new(false));
        for s in [SIGTERM, SIGINT] {
            signal_hook::flag::register(s, term.clone()).map_err(DaemonError::Signal)?;
        }
        signal_hook::flag::register(SIGHUP, hup.clone()).map_err(DaemonError::Signal)?;
        let mut last_rates = 0u64;
        while !term.load(Ordering::Relaxed) && !self.committed.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(health::POLL_MS));
            if hup.swap(false, Ordering::SeqCst) || self.reload.swap(false, Ordering::SeqCst) {
                self.reload_from(path);
            }
            let now = self.epoch.elapsed().as_millis() as u64;
            // Parked workers are not stalled: no watchdog during a hand-over
            // (a warm standby parks none).
            let handing = self.give.as_ref().is_some_and(|g| {
                g.busy.load(Ordering::Relaxed) && g.standby.load(Ordering::Relaxed) == 0
            });
            if let Some(h) = self.health.as_mut().filter(|_| !handing) {
                h.poll(now);
            }
            if now >= last_rates + 1000 {
                last_rates = now;
                if let Some(Ok(mut st)) = self.ctl.as_ref().map(|c| c.store.lock()) {
                    st.sample_rates(now);
                }
            }
        }
        if self.committed.load(Ordering::Relaxed) {
            tracing::info!("handed over to the new rvsd: exiting without giving anything back");
        } else {
            tracing::info!("stopping");
        }
        Ok(())
    }

    /// Applies what a re-read configuration file can change live (timeouts,
    /// `[pipeline]`, `[synproxy]`); a file that does not load changes nothing.
    fn reload_from(&self, path: &Path) {
        let Some(ctl) = &self.ctl else { return };
        match Config::load(path) {
            Ok(c) => {
                if let Ok(mut st) = ctl.store.lock() {
                    st.set_timeouts(c.timeouts());
                    st.set_pipeline_conf(c.pipeline_conf());
                    self.snap.store(Arc::new(st.snapshot()));
                    tracing::info!("reloaded {}: timeouts, [pipeline] and [synproxy] applied (ports, workers and capacity need a restart)", path.display());
                }
            }
            Err(e) => tracing::error!("reload failed, keeping the running configuration: {e}"),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        standby::let_go(self.give.as_deref());
        self.workers.join();
        if let Some(s) = self.server.take() {
            let _ = s.join();
        }
        if let Some(m) = self.metrics.take() {
            let _ = m.join();
        }
        self.ctl = None;
        if adopt::keeps(self) {
            // The successor holds the same locks, TAPs and sockets and
            // answers for the state files: nothing is given back.
            for t in self.ports.takeovers.drain(..) {
                t.forget();
            }
            return;
        }
        if let Some(socket) = self.socket.take() {
            let _ = std::fs::remove_file(socket);
        }
        // `ports` drops after this body: queues, TAPs, then the takeovers.
        tracing::info!("stopped; giving the interfaces back");
    }
}

/// The refresh period of connection sync: `[sync] refresh`, else a third
/// of the shorter of the TCP established and UDP timeouts.
fn refresh_ms(conf: &Config) -> u64 {
    if let Some(s) = conf.sync.as_ref().and_then(|s| s.refresh) {
        return u64::from(s) * 1000;
    }
    let t = conf.timeouts();
    u64::from(t.established_ms.min(t.udp_ms)) / 3
}

/// This node's id in the sync stream: `[sync] node_id`, else one that
/// differs between nodes and restarts (clock and pid mixed).
fn node_id(conf: &Config) -> u32 {
    if let Some(n) = conf.sync.as_ref().and_then(|s| s.node_id) {
        return n;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(16) ^ std::process::id().rotate_left(8))
        .max(1)
}

/// Binds the metrics listener (`metrics_listen`), if any.
fn bind_metrics(conf: &Config) -> Result<Option<std::net::TcpListener>, DaemonError> {
    conf.metrics_addr
        .map(|addr| {
            crate::metrics::http::bind(addr).map_err(|source| DaemonError::Metrics { addr, source })
        })
        .transpose()
}

/// Runs the daemon until SIGTERM/SIGINT, then gives everything back.
pub fn run(path: PathBuf, conf: Config) -> Result<(), DaemonError> {
    let r = Daemon::start(&conf).and_then(|mut d| d.run_until_signalled(&path));
    // Every port is closed now (net_af_xdp's XDP program detached with it).
    #[cfg(feature = "dpdk")]
    rvs_io::dpdk::eal::cleanup();
    r
}

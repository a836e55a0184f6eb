//! The running rvsd's side of a hand-over ([`session::Giver`]) for its
//! AF_PACKET ports: HELLO checked against this daemon's settings, the
//! configuration ([`Store::to_requests`](crate::store::Store::to_requests)
//! and its fingerprint), every port's lock, TAP and worker receive sockets
//! passed, the workers parked at the freeze and their ring positions sent.
//!
//! AF_XDP ports: [`super::xdp`] (descriptors, UMEM pools, recovery).
//!
//! Each worker's connections and templates go while it forwards
//! ([`super::precopy`]: CONNS frames, the worker index then a hand-over
//! message of `rvs_core::sync::local`, and SWEEP_DONE marks), then at the
//! freeze the last changes, its neighbours and its final counters
//! ([`super::counters`]).
//!
//! The control and metrics listeners go too (LISTENERS): the new rvsd
//! serves the control socket from its probation on, while this one takes
//! no client, and sends back every change it applies there; if it fails,
//! this one applies them before it takes clients again.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::compat::{self, Hello, Kind};
use super::park::{Park, Parked, Resume};
use super::session::{Giver, Out, Sink};
use crate::config::{BackendKind, Config};
use crate::control::{Control, Query};

/// What a hand-over needs of the daemon besides the control plane: kept
/// by the control socket's takeover hook.
pub struct GiveCtx {
    /// The running configuration.
    pub conf: Config,
    /// Each port's lock (a duplicate), by port.
    pub locks: Vec<OwnedFd>,
    /// Each port's kni TAP (a duplicate), by port.
    pub taps: Vec<Option<OwnedFd>>,
    /// Set once a successor committed: the daemon stops without giving
    /// anything back.
    pub committed: Arc<AtomicBool>,
    /// Set to stop the daemon.
    pub stop: Arc<AtomicBool>,
    /// A hand-over is under way (one at a time).
    pub busy: AtomicBool,
    /// The opened ports (their AF_XDP objects, exported and frozen by
    /// [`super::xdp`]).
    pub opened: Arc<std::sync::Mutex<Vec<rvs_io::Port>>>,
    /// The pid of the warm standby attached (0: none).
    pub standby: std::sync::atomic::AtomicU32,
    /// Duplicates of the listening sockets, passed to a successor.
    pub listeners: std::sync::Mutex<Listeners>,
}

/// The daemon's listening sockets (duplicates), for the LISTENERS frame.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The control socket's.
    pub control: Option<OwnedFd>,
    /// The metrics server's (`metrics_listen`).
    pub metrics: Option<OwnedFd>,
}

/// The LISTENERS frame: which descriptors follow, in this order.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ListenersFrame {
    /// The control socket's listener.
    pub control: bool,
    /// The metrics server's, and its address.
    pub metrics: Option<std::net::SocketAddr>,
}

/// The STORE frame.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoreFrame {
    /// The configuration as requests, in order.
    pub requests: Vec<rvs_api::Request>,
    /// [`Store::fingerprint`](crate::store::Store::fingerprint) of it.
    pub fingerprint: u64,
}

/// The FDS frame of one port (its descriptors: the lock, the TAP if
/// `tap`, then one receive socket per worker in worker order).
#[derive(Debug, Serialize, Deserialize)]
pub struct PortFrame {
    /// Port index.
    pub port: u16,
    /// Whether a TAP descriptor follows the lock.
    pub tap: bool,
    /// The AF_PACKET manifest of the receive sockets
    /// ([`rvs_io::af_packet::handover::PacketManifest::encode`]).
    pub manifest: Vec<u8>,
    /// An AF_XDP port's manifest ([`rvs_io::af_xdp::XdpManifest::encode`];
    /// empty: AF_PACKET), its descriptors after the lock and TAP.
    #[serde(default)]
    pub xdp: Vec<u8>,
}

/// Where each worker's receive rings stopped, by worker then port
/// ((slot or block, frames of it already read); `None`: not AF_PACKET):
/// the RX_CURSORS frame.
pub type Cursors = Vec<Vec<Option<(u32, u32)>>>;

/// A running rvsd giving itself to the process on the other end.
pub struct DaemonGiver<'a> {
    ctl: &'a Control,
    cx: &'a GiveCtx,
    peer: rvs_io::peer::Peer,
    agreed: compat::Agreed,
    resumes: Vec<mpsc::Sender<Resume>>,
    /// The tables' pre-copy, once started.
    pre: Option<super::precopy::Run>,
    /// The configuration changes applied since STORE, to pass on.
    tail: Option<mpsc::Receiver<rvs_api::Request>>,
    /// To a warm standby (the pre-copy never gives up).
    standby: bool,
    /// The changes the new rvsd made in its probation, in order.
    back: Vec<rvs_api::Request>,
    /// The new rvsd's HELLO says it takes a death watch.
    deathwatch: bool,
    /// By worker: parked for this hand-over (empty: no freeze yet).
    frozen: Vec<bool>,
}

impl<'a> DaemonGiver<'a> {
    /// A giver to `peer`.
    pub fn new(ctl: &'a Control, cx: &'a GiveCtx, peer: rvs_io::peer::Peer) -> Self {
        DaemonGiver {
            ctl,
            cx,
            peer,
            agreed: compat::Agreed::default(),
            resumes: Vec::new(),
            pre: None,
            tail: None,
            standby: false,
            back: Vec::new(),
            deathwatch: false,
            frozen: Vec::new(),
        }
    }

    /// The same to a warm standby: the pre-copy never gives up.
    pub fn for_standby(mut self) -> Self {
        self.standby = true;
        self
    }

    fn version(&self, k: Kind) -> u16 {
        self.agreed.version(k).unwrap_or(1)
    }

    fn live(&self) -> Vec<u64> {
        self.ctl
            .workers
            .iter()
            .map(|w| w.gauges.conns.load(Ordering::Relaxed))
            .collect()
    }

    fn store_frame(&mut self) -> Result<Out, String> {
        let f = self.ctl.follow().map_err(|e| e.message)?;
        self.tail = Some(f.tail);
        let f = StoreFrame {
            requests: f.requests,
            fingerprint: f.fingerprint,
        };
        Ok(Out {
            kind: Kind::STORE.0,
            version: self.version(Kind::STORE),
            payload: serde_json::to_vec(&f).map_err(|e| e.to_string())?,
            fds: Vec::new(),
        })
    }

    /// Sends the configuration changes applied since the last call (the
    /// control log, in order), if any.
    fn control_log(&mut self, out: &mut Sink) -> Result<(), String> {
        let Some(tail) = &self.tail else {
            return Ok(());
        };
        let mut reqs = Vec::new();
        loop {
            match tail.try_recv() {
                Ok(r) => reqs.push(r),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(
                        "the configuration changed faster than the hand-over passes it on".into(),
                    )
                }
            }
        }
        if reqs.is_empty() {
            return Ok(());
        }
        tracing::info!(
            "hand-over: {} configuration change(s) passed on",
            reqs.len()
        );
        out(Out {
            kind: Kind::CONTROL_LOG.0,
            version: self.version(Kind::CONTROL_LOG),
            payload: serde_json::to_vec(&reqs).map_err(|e| e.to_string())?,
            fds: Vec::new(),
        })
        .map_err(|e| e.to_string())
    }

    /// The LISTENERS frame: duplicates of the listening sockets.
    fn listeners_frame(&self) -> Result<Out, String> {
        let l = self
            .cx
            .listeners
            .lock()
            .map_err(|_| "the listeners' lock is poisoned")?;
        let dup = |fd: &Option<OwnedFd>, what: &str| {
            fd.as_ref()
                .map(|f| {
                    f.try_clone()
                        .map_err(|e| format!("the {what} listener: {e}"))
                })
                .transpose()
        };
        let (control, metrics) = (dup(&l.control, "control")?, dup(&l.metrics, "metrics")?);
        let f = ListenersFrame {
            control: control.is_some(),
            metrics: self.cx.conf.metrics_addr.filter(|_| metrics.is_some()),
        };
        Ok(Out {
            kind: Kind::LISTENERS.0,
            version: self.version(Kind::LISTENERS),
            payload: serde_json::to_vec(&f).map_err(|e| e.to_string())?,
            fds: control.into_iter().chain(metrics).collect(),
        })
    }

    /// Every worker's receive sockets, by worker then port.
    fn worker_rx(&self) -> Result<Vec<Vec<super::park::ExportedRx>>, String> {
        let mut all = Vec::new();
        for (w, h) in self.ctl.workers.iter().enumerate() {
            let (tx, rx) = mpsc::channel();
            h.queries
                .send(Query::ExportRx { reply: tx })
                .map_err(|_| format!("worker {w} is gone"))?;
            let got = rx
                .recv_timeout(crate::control::ASK_TIMEOUT)
                .map_err(|_| format!("worker {w} did not give its sockets"))?
                .map_err(|e| format!("worker {w}: cannot duplicate a socket: {e}"))?;
            all.push(got);
        }
        Ok(all)
    }

    fn port_frames(&self) -> Result<Vec<Out>, String> {
        let mut rx = self.worker_rx()?;
        let mut out = Vec::new();
        for (p, n) in self.cx.conf.netif.iter().enumerate() {
            if n.backend == BackendKind::AfXdp {
                out.push(super::xdp::port_frame(self.cx, p, self.version(Kind::FDS))?);
                continue;
            }
            let mut geos = Vec::new();
            let mut fds = vec![self.cx.locks[p]
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| format!("{}: the lock: {e}", n.name))?];
            let tap = match self.cx.taps.get(p).and_then(Option::as_ref) {
                Some(t) => {
                    fds.push(
                        t.try_clone()
                            .map_err(|e| format!("{}: the TAP: {e}", n.name))?,
                    );
                    true
                }
                None => false,
            };
            for (w, ports) in rx.iter_mut().enumerate() {
                let Some((g, fd)) = ports.get_mut(p).and_then(Option::take) else {
                    return Err(format!("{}: worker {w} has no AF_PACKET queue", n.name));
                };
                geos.push(g);
                fds.push(fd);
            }
            let ifindex = rvs_io::iface::if_index(&n.iface)
                .map_err(|e| format!("{}: interface {}: {e}", n.name, n.iface))?;
            let first = fds.last().map(|f| f.as_fd());
            let fanout = match first {
                Some(fd) if !geos.is_empty() => rvs_io::af_packet::handover::fanout_of(fd)
                    .map_err(|e| format!("{}: the fanout group: {e}", n.name))?,
                _ => None,
            };
            let manifest = rvs_io::af_packet::handover::PacketManifest {
                version: rvs_io::af_packet::handover::MANIFEST_VERSION,
                port: p as u16,
                iface: n.iface.clone(),
                ifindex,
                fanout,
                queues: geos,
            };
            let f = PortFrame {
                port: p as u16,
                tap,
                manifest: manifest.encode(),
                xdp: Vec::new(),
            };
            out.push(Out {
                kind: Kind::FDS.0,
                version: self.version(Kind::FDS),
                payload: serde_json::to_vec(&f).map_err(|e| e.to_string())?,
                fds,
            });
        }
        Ok(out)
    }

    /// The first park of a freeze: from here until the hand-over ends the
    /// configuration stays as the new rvsd has it (changes are refused),
    /// the last changes sent.
    fn begin_freeze(&mut self, out: &mut Sink) -> Result<(), String> {
        self.ctl.freeze_config().map_err(|e| e.message)?;
        self.frozen = vec![false; self.ctl.workers.len()];
        self.control_log(out)
    }

    /// Parks the workers `ws` and sends what they leave (their log's tail,
    /// tables, counters): their ring positions, by worker (empty for the
    /// others). On `Err` the session thaws or recovers them.
    fn park_some(&mut self, ws: &[usize], out: &mut Sink) -> Result<Cursors, String> {
        let (ptx, prx) = mpsc::channel::<Parked>();
        for &w in ws {
            let h = self
                .ctl
                .workers
                .get(w)
                .ok_or_else(|| format!("worker {w} is not configured here"))?;
            let (rtx, rrx) = mpsc::channel();
            let p = Park {
                parked: ptx.clone(),
                resume: rrx,
                precopied: self.pre.is_some(),
            };
            if h.queries.send(Query::Park(p)).is_err() {
                return Err(format!("worker {w} is gone"));
            }
            self.resumes.push(rtx);
        }
        let mut parked: Vec<Parked> = Vec::new();
        for _ in ws {
            parked.push(super::precopy::recv_parked(self.pre.as_mut(), &prx, out)?);
        }
        if let Some(pre) = self.pre.as_mut() {
            pre.tails(ws, out)?;
        }
        let mut cursors: Cursors = vec![Vec::new(); self.ctl.workers.len()];
        for p in &parked {
            let w = p.worker;
            for m in &p.tables {
                let mut payload = w.to_le_bytes().to_vec();
                payload.extend_from_slice(m);
                self.send_frame(Kind::CONNS, payload, out)?;
            }
            let counters = serde_json::to_vec(&p.counters).map_err(|e| e.to_string())?;
            self.send_frame(Kind::COUNTERS, counters, out)?;
            if let Some(f) = self.frozen.get_mut(usize::from(w)) {
                *f = true;
            }
            if let Some(c) = cursors.get_mut(usize::from(w)) {
                *c = p
                    .cursors
                    .iter()
                    .map(|c| c.map(|c| (c.index, c.skip)))
                    .collect();
            }
        }
        Ok(cursors)
    }

    /// Once every worker parked: the sync stream as it stops here (node
    /// id, next sequence number, the daemons running, also those started
    /// at run time) and the AF_XDP pools.
    fn end_freeze(&mut self, out: &mut Sink) -> Result<(), String> {
        let st = serde_json::to_vec(&self.ctl.sync.state()).map_err(|e| e.to_string())?;
        self.send_frame(Kind::RUNTIME, st, out)?;
        for f in super::xdp::pool_frames(self.cx, self.version(Kind::POOL_STATE))? {
            out(f).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn cursors_frame(&self, c: &Cursors, out: &mut Sink) -> Result<(), String> {
        let payload = serde_json::to_vec(c).map_err(|e| e.to_string())?;
        self.send_frame(Kind::RX_CURSORS, payload, out)
    }

    fn send_frame(&self, k: Kind, payload: Vec<u8>, out: &mut Sink) -> Result<(), String> {
        out(Out {
            kind: k.0,
            version: self.version(k),
            payload,
            fds: Vec::new(),
        })
        .map_err(|e| e.to_string())
    }

    fn resume_all(&mut self, r: Resume) {
        for t in self.resumes.drain(..) {
            let _ = t.send(r);
        }
    }
}

/// Why this daemon cannot hand over at all, whatever the successor.
fn unsupported(conf: &Config) -> Option<String> {
    super::xdp::unsupported(conf)
}

impl Giver for DaemonGiver<'_> {
    fn hello(&mut self, theirs: &[u8]) -> Result<Vec<u8>, String> {
        if let Some(why) = crate::config::dpdk::no_handover(&self.cx.conf.netif) {
            return Err(why);
        }
        if let Some(why) = unsupported(&self.cx.conf) {
            return Err(why);
        }
        let new: Hello = serde_json::from_slice(theirs)
            .map_err(|e| format!("a HELLO that does not parse: {e}"))?;
        let ours = Hello::ours(&self.cx.conf, self.live());
        self.agreed = compat::check(&ours, &new).map_err(|r| r.text)?;
        self.deathwatch = new.deathwatch;
        serde_json::to_vec(&ours).map_err(|e| e.to_string())
    }

    fn deathwatch(&self) -> bool {
        self.deathwatch
    }

    fn precopy(&mut self, out: &mut Sink) -> Result<(), String> {
        out(self.store_frame()?).map_err(|e| e.to_string())?;
        for f in self.port_frames()? {
            out(f).map_err(|e| e.to_string())?;
        }
        out(self.listeners_frame()?).map_err(|e| e.to_string())?;
        tracing::debug!("hand-over: configuration and descriptors sent");
        self.pre = super::precopy::start(self.ctl, &self.agreed, out, self.standby)?;
        Ok(())
    }

    fn follow(&mut self, out: &mut Sink) -> Result<(), String> {
        self.control_log(out)?;
        match self.pre.as_mut() {
            Some(p) => p.follow(out),
            None => Ok(()),
        }
    }

    fn freeze(&mut self, out: &mut Sink) -> Result<(), String> {
        self.begin_freeze(out)?;
        let all: Vec<usize> = (0..self.ctl.workers.len()).collect();
        let cursors = self.park_some(&all, out)?;
        self.end_freeze(out)?;
        self.cursors_frame(&cursors, out)
    }

    fn freeze_worker(&mut self, w: u16, out: &mut Sink) -> Result<(), String> {
        if let Some(why) = super::xdp::no_rolling(&self.cx.conf) {
            return Err(why);
        }
        let w = usize::from(w);
        if w >= self.ctl.workers.len() || self.frozen.get(w).copied().unwrap_or(false) {
            return Err(format!(
                "worker {w}: not configured here, or parked already"
            ));
        }
        if self.frozen.is_empty() {
            self.begin_freeze(out)?;
        }
        let cursors = self.park_some(&[w], out)?;
        if self.frozen.iter().all(|f| *f) {
            self.end_freeze(out)?;
        }
        self.cursors_frame(&cursors, out)
    }

    fn started(&mut self) {
        // The new rvsd serves the control socket from now on.
        self.ctl.hand_socket(true);
    }

    fn carried_back(&mut self, f: &rvs_io::fdpass::Frame) -> Result<(), String> {
        let reqs: Vec<rvs_api::Request> = serde_json::from_slice(&f.payload)
            .map_err(|e| format!("a change sent back by the new rvsd: {e}"))?;
        self.back.extend(reqs);
        Ok(())
    }

    fn thaw(&mut self) {
        self.pre = None;
        self.ctl.hand_socket(false);
        self.ctl.thaw_config();
        self.resume_all(Resume::Thaw);
    }

    fn recover(&mut self) {
        // What the new rvsd confirmed to its clients first, then clients.
        let n = self.ctl.apply_carried(&std::mem::take(&mut self.back));
        if n > 0 {
            tracing::info!("hand-over: {n} configuration change(s) the new rvsd made applied here");
        }
        self.ctl.hand_socket(false);
        self.ctl.thaw_config();
        // The workers are still parked: the pools are rebuilt before they run.
        super::xdp::reconstruct(self.cx);
        self.resume_all(Resume::Recover);
    }

    fn commit(&mut self) {
        // The new rvsd forwards on the same CPUs: this process's way out
        // (joins, freeing its tables, the kernel unmapping them: ~0.2 s
        // per GiB) runs only when its workers leave the CPU idle.
        if let Err(e) = rvs_io::iface::set_process_idle() {
            tracing::warn!("hand-over: cannot lower this process to SCHED_IDLE for its exit: {e}");
        }
        self.cx.committed.store(true, Ordering::SeqCst);
        self.resume_all(Resume::Exit);
        self.cx.stop.store(true, Ordering::SeqCst);
    }

    fn kill_successor(&mut self) {
        if let Err(e) = self.peer.kill() {
            tracing::warn!("hand-over: cannot kill pid {}: {e}", self.peer.pid());
        }
        let _ = self.peer.wait_exit(Duration::from_secs(2));
    }
}

impl Drop for DaemonGiver<'_> {
    fn drop(&mut self) {
        // However the hand-over ended, a running rvsd takes changes again
        // (after a commit it is on its way out).
        if !self.cx.committed.load(Ordering::SeqCst) {
            self.ctl.hand_socket(false);
            self.ctl.thaw_config();
        }
    }
}

/// What the control socket calls with a takeover request's connection
/// (and whether it asks for a warm standby).
pub type Hook = Box<dyn Fn(&Control, std::os::unix::net::UnixStream, bool) + Send + Sync>;

/// The control socket's hook over `cx`: one hand-over at a time, from a
/// root peer; the session's end is logged.
pub fn hook(cx: Arc<GiveCtx>) -> Hook {
    Box::new(
        move |ctl: &Control, s: std::os::unix::net::UnixStream, standby: bool| {
            let peer = match rvs_io::peer::Peer::of_stream(&s) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("takeover request: cannot identify the peer: {e}");
                    return;
                }
            };
            if peer.uid() != 0 {
                tracing::warn!(
                    "takeover request from pid {} (uid {}) refused: root only",
                    peer.pid(),
                    peer.uid()
                );
                return;
            }
            if let Some(b) = cx.conf.bond.first() {
                tracing::warn!(
                "takeover request from pid {} refused: bonds ([[bond]] {}) cannot be handed over",
                peer.pid(),
                b.name
            );
                return;
            }
            if cx.busy.swap(true, Ordering::SeqCst) {
                let why = super::standby::busy(cx.standby.load(Ordering::SeqCst));
                tracing::warn!("takeover request from pid {} refused: {why}", peer.pid());
                super::standby::refuse(&s, &why);
                return;
            }
            let pid = peer.pid();
            if standby {
                super::standby::attached(ctl, &cx, s, peer);
                cx.busy.store(false, Ordering::SeqCst);
                return;
            }
            tracing::info!("hand-over to pid {pid} started");
            let mut g = DaemonGiver::new(ctl, &cx, peer);
            match super::session::give(&s, &mut g, super::session::Timeouts::default()) {
                Ok(()) => tracing::info!("handed over to pid {pid}"),
                Err(e) => tracing::warn!("hand-over to pid {pid} failed, forwarding on: {e}"),
            }
            cx.busy.store(false, Ordering::SeqCst);
        },
    )
}

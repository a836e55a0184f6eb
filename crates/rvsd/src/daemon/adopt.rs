//! `rvsd --takeover -c FILE`: the new rvsd's side of a hot upgrade
//! ([`session::Taker`]). It asks the running rvsd (found on the control
//! socket the file names) to hand over, rebuilds the configuration from
//! its requests (checked by fingerprint), adopts every port's lock, TAP
//! and receive sockets, opens its own transmit rings and builds its
//! workers dormant ([`super::dormant`]) while the old rvsd forwards; they
//! install the pre-copied tables, then start where the old ones parked,
//! and after a short probation it commits: the old rvsd exits. It serves
//! the control socket it was passed from the probation on (the old one
//! refuses changes only from the freeze to the start), and sends every
//! change it applies there back to the old one before answering: any
//! failure before the commit leaves the old one forwarding, with them.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rvs_core::sync::{LocalMessage, Source};
use rvs_io::af_packet::handover::{self as pkt, AdoptedRx, PacketManifest};
use rvs_io::fdpass::Frame;
use rvs_io::{Port, Queue, RxQ, Tap, TxQ};

use super::{ports, Daemon, DaemonError};
use crate::config::Config;
use crate::handover::compat::{Hello, Kind};
use crate::handover::give::{Cursors, PortFrame, StoreFrame};
use crate::handover::session::{self, Taker, Timeouts};
use crate::store::{PortDef, Store};
use crate::takeover::{PortLock, Takeover};

/// How long the new workers run before the commit.
const PROBATION: Duration = Duration::from_millis(300);

/// Rolling: how long to wait for a worker let go to run before the next
/// worker's FREEZE.
const ROLL_WAIT: Duration = Duration::from_millis(100);

/// How long the dormant workers may take to install the pre-copy.
const INSTALL_LIMIT: Duration = Duration::from_secs(100);

/// A port as it arrived.
struct PortIn {
    lock: PortLock,
    tap: Option<Tap>,
    rx: Vec<AdoptedRx>,
    ifindex: u32,
    /// An AF_XDP port, mapped (its `rx` is empty).
    xdp: Option<rvs_io::af_xdp::XdpPrepared>,
}

/// The new rvsd taking over (or a warm standby, `super::standby`).
pub(super) struct DaemonTaker<'a> {
    conf: &'a Config,
    defs: Vec<PortDef>,
    store: Option<Store>,
    ports: Vec<Option<PortIn>>,
    cursors: Option<Cursors>,
    pub(super) daemon: Option<Daemon>,
    /// The UMEM pools of each AF_XDP port, from the freeze.
    pools: Vec<Option<rvs_io::af_xdp::XdpPoolState>>,
    /// The dormant workers' inboxes, once the daemon is built.
    pub(super) gates: Option<super::dormant::Gates>,
    /// What the summary line reports.
    report: super::takeover_report::Report,
    /// The session's connection, for the changes sent back.
    back: Option<UnixStream>,
    /// The listening sockets passed (control, metrics).
    listeners: Listeners,
    /// Changes made here during the probation.
    changes: Arc<std::sync::atomic::AtomicUsize>,
    /// A warm standby's: the active's latest counters by worker, kept as
    /// they come (every second) and added at the promotion (`None`: a hot
    /// upgrade's, added as they come at the freeze).
    pub(super) latest: Option<Vec<Option<crate::handover::counters::CountersFrame>>>,
    /// Start one worker at a time (`--rolling`).
    rolling: bool,
}

/// The listening sockets the running rvsd passed.
#[derive(Default)]
struct Listeners {
    control: Option<std::os::unix::net::UnixListener>,
    metrics: Option<std::net::TcpListener>,
}

fn frame_err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

impl<'a> DaemonTaker<'a> {
    /// A taker for `conf`, nothing received yet.
    pub(super) fn new(conf: &'a Config) -> Result<Self, DaemonError> {
        Ok(DaemonTaker {
            conf,
            defs: ports::discover(conf)?,
            store: None,
            ports: (0..conf.netif.len()).map(|_| None).collect(),
            cursors: None,
            daemon: None,
            pools: (0..conf.netif.len()).map(|_| None).collect(),
            gates: None,
            report: super::takeover_report::Report::new(usize::from(conf.workers)),
            back: None,
            listeners: Listeners::default(),
            changes: Default::default(),
            latest: None,
            rolling: false,
        })
    }

    fn store_in(&mut self, f: &Frame) -> Result<(), String> {
        let sf: StoreFrame =
            serde_json::from_slice(&f.payload).map_err(|e| frame_err("the configuration", e))?;
        let mut st = Store::new(
            self.defs.clone(),
            self.conf.workers,
            self.conf.timeouts(),
            self.conf.pipeline_conf(),
        );
        for (i, r) in sf.requests.iter().enumerate() {
            st.apply(r)
                .map_err(|e| format!("the configuration's request {i} is refused here: {e}"))?;
        }
        let fp = st.fingerprint();
        if fp != sf.fingerprint {
            return Err(format!(
                "the configuration rebuilt here differs from the running one (fingerprint {fp:016x}, running {:016x})",
                sf.fingerprint
            ));
        }
        self.store = Some(st);
        Ok(())
    }

    fn port_in(&mut self, f: Frame) -> Result<(), String> {
        let pf: PortFrame =
            serde_json::from_slice(&f.payload).map_err(|e| frame_err("a port", e))?;
        let p = pf.port as usize;
        let def = self
            .defs
            .get(p)
            .ok_or_else(|| format!("port {p} is not in this configuration"))?
            .clone();
        let mut fds = f.fds.into_iter();
        let lock_fd = fds.next().ok_or("a port without its lock")?;
        let lock = PortLock::adopt(&crate::takeover::run_dir(), &def.iface, lock_fd)?;
        let tap = match pf.tap {
            true => {
                let fd: OwnedFd = fds.next().ok_or("a port without its TAP")?;
                let name = format!("{}.kni", def.name);
                let ifindex = rvs_io::iface::if_index(&name).map_err(|e| frame_err(&name, e))?;
                Some(Tap::adopt(fd, &name, ifindex).map_err(|e| frame_err(&name, e))?)
            }
            false => None,
        };
        if !pf.xdp.is_empty() {
            let x = super::adopt_xdp::prepare(self.conf, p, &def, &pf.xdp, fds.collect())?;
            if let Some(slot) = self.ports.get_mut(p) {
                *slot = Some(PortIn {
                    lock,
                    tap,
                    rx: Vec::new(),
                    ifindex: 0,
                    xdp: Some(x),
                });
            }
            return Ok(());
        }
        let m = PacketManifest::decode(&pf.manifest).map_err(|e| frame_err(&def.name, e))?;
        if m.queues.len() != usize::from(self.conf.workers) {
            return Err(format!(
                "{}: {} receive queues for {} workers",
                def.name,
                m.queues.len(),
                self.conf.workers
            ));
        }
        let ifindex = m.ifindex;
        let rx = pkt::adopt(&m, fds.collect()).map_err(|e| frame_err(&def.name, e))?;
        if let Some(slot) = self.ports.get_mut(p) {
            *slot = Some(PortIn {
                lock,
                tap,
                rx,
                ifindex,
                xdp: None,
            });
        }
        Ok(())
    }

    fn conns_in(&mut self, f: &Frame) -> Result<(), String> {
        let (w, m) = f
            .payload
            .split_first_chunk::<2>()
            .ok_or("a connection frame without its worker")?;
        let w = usize::from(u16::from_le_bytes(*w));
        let msg = LocalMessage::parse(m, Source::Local)
            .map_err(|e| format!("connection records of worker {w}: {e:?}"))?;
        self.report.bytes += m.len() as u64;
        self.dormant()?.records(w, msg.records().collect())
    }

    /// The dormant daemon's inboxes, the daemon built first if need be.
    fn dormant(&mut self) -> Result<&super::dormant::Gates, String> {
        if self.gates.is_none() {
            let t = Instant::now();
            let (gates, ends) = super::dormant::gates(usize::from(self.conf.workers));
            self.daemon = Some(self.build(ends)?);
            self.gates = Some(gates);
            self.report.build_ms = t.elapsed().as_millis() as u64;
            tracing::debug!("takeover: dormant daemon built");
        }
        self.gates.as_ref().ok_or_else(|| "no daemon".to_string())
    }

    /// A SWEEP_DONE frame: a worker's sweep ended, restarted, or its tail
    /// at the freeze is all in.
    fn mark_in(&mut self, f: &Frame) -> Result<(), String> {
        use crate::handover::precopy::Mark;
        let (w, m) = Mark::decode(&f.payload)?;
        let w = usize::from(w);
        match m {
            Mark::Swept => self.dormant()?.swept(w),
            Mark::Restart => {
                self.report.restarts += 1;
                self.dormant()?.reset(w)
            }
            Mark::Tail(ns) => {
                if let Some(l) = self.report.last_rx.get_mut(w) {
                    *l = ns;
                }
                // The tail carries the rest of a repeated sweep.
                self.dormant()?.swept(w)
            }
        }
    }

    /// Applies the configuration changes the running rvsd made after
    /// STORE, in order: to the configuration, or once the daemon is built
    /// to its control plane (published to the dormant workers).
    fn control_log_in(&mut self, f: &Frame) -> Result<(), String> {
        let reqs: Vec<rvs_api::Request> =
            serde_json::from_slice(&f.payload).map_err(|e| frame_err("the control log", e))?;
        let refused = |r: &rvs_api::Request, e: &dyn std::fmt::Display| {
            format!("a configuration change of the running rvsd ({r:?}) is refused here: {e}")
        };
        for r in &reqs {
            if let Some(st) = self.store.as_mut() {
                st.apply(r).map_err(|e| refused(r, &e))?;
                continue;
            }
            let ctl = self
                .daemon
                .as_ref()
                .and_then(|d| d.ctl.clone())
                .ok_or("a configuration change before the configuration")?;
            if let rvs_api::Reply::Error(e) = ctl.handle(r) {
                return Err(refused(r, &e));
            }
        }
        tracing::info!(
            "takeover: {} configuration change(s) of the running rvsd applied",
            reqs.len()
        );
        Ok(())
    }

    /// The LISTENERS frame: the control socket's listener (checked to be
    /// the one this configuration names) and the metrics' one (kept when
    /// this configuration listens on the same address).
    fn listeners_in(&mut self, f: Frame) -> Result<(), String> {
        use crate::handover::give::ListenersFrame;
        let lf: ListenersFrame =
            serde_json::from_slice(&f.payload).map_err(|e| frame_err("the listeners", e))?;
        let mut fds = f.fds.into_iter();
        if lf.control {
            let l = std::os::unix::net::UnixListener::from(
                fds.next().ok_or("the control listener did not come")?,
            );
            let path = l
                .local_addr()
                .map_err(|e| frame_err("the control listener", e))?;
            let want = self.conf.socket_path();
            if path.as_pathname() != Some(Path::new(&want)) {
                return Err(format!(
                    "the control listener passed is {path:?}, not this configuration's {want}"
                ));
            }
            self.listeners.control = Some(l);
        }
        if let Some(addr) = lf.metrics {
            let l =
                std::net::TcpListener::from(fds.next().ok_or("the metrics listener did not come")?);
            if self.conf.metrics_addr == Some(addr) {
                self.listeners.metrics = Some(l);
            }
        }
        Ok(())
    }

    /// The listening sockets the running rvsd passed (control, metrics).
    pub(super) fn passed_listeners(
        &mut self,
    ) -> (
        Option<std::os::unix::net::UnixListener>,
        Option<std::net::TcpListener>,
    ) {
        let l = std::mem::take(&mut self.listeners);
        (l.control, l.metrics)
    }

    /// Serves the control socket passed (and the metrics), each change
    /// applied sent back to the running rvsd before it is answered.
    fn serve_passed(&mut self) -> Result<(), String> {
        let (Some(d), Some(control)) = (self.daemon.as_mut(), self.listeners.control.take()) else {
            return Ok(());
        };
        let (Some(ctl), Some(back)) = (d.ctl.clone(), self.back.take()) else {
            return Ok(());
        };
        // No takeover from this one before it committed.
        if let Some(g) = &d.give {
            g.busy.store(true, Ordering::SeqCst);
        }
        let n = self.changes.clone();
        ctl.set_back(Some(Box::new(move |r: &rvs_api::Request| {
            let payload = serde_json::to_vec(&[r]).map_err(std::io::Error::other)?;
            n.fetch_add(1, Ordering::SeqCst);
            rvs_io::fdpass::send(&back, Kind::CONTROL_LOG.0, 2, &payload, &[])
        })));
        d.serve(self.conf, Some(control), self.listeners.metrics.take())
            .map_err(|e| e.to_string())
    }

    /// The daemon on the adopted ports, its workers dormant on `gates`
    /// until the cut-over: nothing reads a ring yet.
    fn build(&mut self, gates: Vec<super::dormant::Gate>) -> Result<Daemon, String> {
        let store = self.store.take().ok_or("no configuration came")?;
        let mut takeovers = Vec::new();
        let mut taps = Vec::new();
        let mut per_worker: Vec<Vec<Queue>> = (0..self.conf.workers).map(|_| Vec::new()).collect();
        let mut opened = Vec::new();
        for (p, slot) in self.ports.iter_mut().enumerate() {
            let mut pin = slot
                .take()
                .ok_or_else(|| format!("port {p} did not come"))?;
            takeovers.push(Takeover::adopt(pin.lock)?);
            taps.push(pin.tap.map(crate::runtime::KniDev::plain));
            if let Some(x) = pin.xdp.take() {
                // Its pools come at the freeze (`adopt_xdp::apply_pools`), its rings are
                // re-read at the cut-over (`dormant::Wake::Arm`).
                let mut port = rvs_io::Port::from_xdp(x.into_unstarted());
                for (w, q) in port.take_queues().into_iter().enumerate() {
                    if let Some(v) = per_worker.get_mut(w) {
                        v.push(q);
                    }
                }
                opened.push(port);
                continue;
            }
            let mut queues = Vec::new();
            for a in pin.rx {
                // Positioned at the cut-over (`dormant::Wake::Arm`).
                let rx = a.unstarted();
                let tx = rvs_io::af_packet::TxRing::open(pin.ifindex, 2048, 1024)
                    .map_err(|e| format!("port {p}: a transmit ring: {e}"))?;
                queues.push(Queue {
                    rx: RxQ::Packet(rx),
                    tx: TxQ::Packet(tx),
                });
            }
            let mut port = Port::adopted_af_packet(queues).map_err(|e| format!("port {p}: {e}"))?;
            for (w, q) in port.take_queues().into_iter().enumerate() {
                if let Some(v) = per_worker.get_mut(w) {
                    v.push(q);
                }
            }
            opened.push(port);
        }
        let fast = ports::fast_maps(self.conf, &self.defs, &opened).map_err(|e| e.to_string())?;
        let ports = ports::Ports {
            bonds: Arc::new(crate::bond::Bonds::none(self.defs.len())),
            defs: self.defs.clone(),
            opened: Arc::new(Mutex::new(opened)),
            taps: Arc::new(arc_swap::ArcSwap::from_pointee(taps)),
            takeovers,
        };
        // The VLAN devices came with the configuration: their kni devices.
        super::vlan::sync_taps(&ports.taps, &store);
        let table_mem = super::hugepages::table_mem(self.conf).map_err(|e| e.to_string())?;
        let mut d = Daemon::assemble(
            self.conf,
            ports,
            store,
            per_worker,
            fast,
            table_mem,
            Some(gates),
        )
        .map_err(|e| e.to_string())?;
        d.keep_ports = true;
        Ok(d)
    }
}

/// `RVS_TEST_TAKEOVER_FAIL=STEP` (debug builds only): the new rvsd fails
/// at STEP (`prepared`, `start` or `probation`; `die`: killed by SIGKILL
/// during the probation, its workers running; `promote`: a standby's
/// promotion; `active_dies_early`: a standby kills its active before its
/// pre-copy; rolling: `start_workerN` before worker N starts,
/// `die_rolling`: killed by SIGKILL once worker 0 alone runs), for the
/// tests of what the running rvsd does then.
pub(super) fn injected(step: &str) -> Result<(), String> {
    if cfg!(debug_assertions) && std::env::var("RVS_TEST_TAKEOVER_FAIL").is_ok_and(|s| s == step) {
        return Err(format!("failed at {step} (RVS_TEST_TAKEOVER_FAIL)"));
    }
    Ok(())
}

impl Taker for DaemonTaker<'_> {
    fn hello(&mut self) -> Vec<u8> {
        serde_json::to_vec(&Hello::ours(self.conf, Vec::new())).unwrap_or_default()
    }

    fn accepted(&mut self, theirs: &[u8]) -> Result<(), String> {
        let h: Hello = serde_json::from_slice(theirs).map_err(|e| frame_err("HELLO", e))?;
        tracing::info!("taking over from rvsd {} (pid {})", h.version, h.pid);
        if self.rolling && !h.rolling {
            return Err(format!(
                "the running rvsd {} cannot switch one worker at a time: run rvsd --takeover without --rolling",
                h.version
            ));
        }
        self.report.accepted = Some(Instant::now());
        Ok(())
    }

    fn receive(&mut self, f: Frame) -> Result<(), String> {
        match Kind(f.kind) {
            Kind::STORE => self.store_in(&f),
            Kind::FDS => self.port_in(f),
            Kind::CONNS => self.conns_in(&f),
            Kind::POOL_STATE => super::adopt_xdp::pool_in(&f, &mut self.pools),
            Kind::CONTROL_LOG => self.control_log_in(&f),
            Kind::SWEEP_DONE => self.mark_in(&f),
            Kind::LISTENERS => self.listeners_in(f),
            Kind::RUNTIME => {
                let st: crate::sync::net::SyncState = serde_json::from_slice(&f.payload)
                    .map_err(|e| frame_err("the runtime state", e))?;
                self.dormant()?;
                let d = self.daemon.as_ref().ok_or("no daemon")?;
                d.sync
                    .adopt(&st)
                    .map_err(|e| format!("the sync daemons of the running rvsd: {e}"))
            }
            Kind::COUNTERS => {
                let c: crate::handover::counters::CountersFrame =
                    serde_json::from_slice(&f.payload).map_err(|e| frame_err("the counters", e))?;
                match self.latest.as_mut() {
                    Some(l) => crate::handover::counters::keep_latest(l, c),
                    None => self.dormant()?.counters(c),
                }
            }
            Kind::RX_CURSORS => {
                let c = serde_json::from_slice(&f.payload)
                    .map_err(|e| frame_err("the ring positions", e))?;
                self.cursors = Some(c);
                Ok(())
            }
            k => Err(format!("{} are not understood here", k.name())),
        }
    }

    fn prepared(&mut self) -> Result<(), String> {
        injected("prepared")?;
        // Built already when connection records came: it took them all.
        if self.gates.is_none() {
            if self.store.is_none() {
                return Err("no configuration came".into());
            }
            if let Some(p) = self.ports.iter().position(Option::is_none) {
                return Err(format!("port {p} did not come"));
            }
        }
        tracing::debug!("takeover: pre-copy received");
        // Built before the freeze; the pre-copy installed before it.
        self.dormant()?.wait_installed(INSTALL_LIMIT)?;
        tracing::debug!("takeover: pre-copy installed");
        self.report.prepared = Some(Instant::now());
        self.report.pre_bytes = self.report.bytes;
        Ok(())
    }

    fn start(&mut self) -> Result<(), String> {
        injected("start")?;
        self.report.frozen_ns = rvs_io::clock::monotonic_ns();
        let cursors = self.cursors.take().ok_or("no ring positions came")?;
        self.dormant()?;
        let (Some(d), Some(gates)) = (&self.daemon, &self.gates) else {
            return Err("no daemon".into());
        };
        super::adopt_xdp::apply_pools(d, &mut self.pools)?;
        gates.arm(&cursors)?;
        gates.go();
        self.report.go_ns = rvs_io::clock::monotonic_ns();
        self.report.started = Some(Instant::now());
        Ok(())
    }

    fn rolling(&self) -> u16 {
        match self.rolling {
            true => self.conf.workers,
            false => 0,
        }
    }

    fn start_worker(&mut self, w: u16) -> Result<(), String> {
        injected(&format!("start_worker{w}"))?;
        if w == 0 {
            self.report.frozen_ns = rvs_io::clock::monotonic_ns();
            self.report.rolling = true;
        }
        let w = usize::from(w);
        // Each FROZEN brings the ring positions of the worker it parked.
        let c = self
            .cursors
            .take()
            .and_then(|mut c| c.get_mut(w).map(std::mem::take))
            .ok_or_else(|| format!("no ring positions of worker {w} came"))?;
        self.dormant()?;
        let gates = self.gates.as_ref().ok_or("no daemon")?;
        gates.arm_one(w, c)?;
        gates.go_one(w);
        // The next old worker forwards until this one runs: re-arming its
        // timers (ms per 100,000 connections) stays out of the next gap.
        let last = w + 1 == usize::from(self.conf.workers);
        if !last && !gates.wait_running(w, ROLL_WAIT) {
            tracing::warn!("takeover: worker {w} not running after {ROLL_WAIT:?}, rolling on");
        }
        tracing::debug!("takeover: worker {w} started");
        if last {
            self.report.go_ns = rvs_io::clock::monotonic_ns();
            self.report.started = Some(Instant::now());
        }
        // Killed here (debug builds): some workers moved, some not.
        if w == 0 && injected("die_rolling").is_err() {
            if let Ok(me) = rvs_io::peer::Peer::of_pid(std::process::id()) {
                let _ = me.kill();
            }
        }
        Ok(())
    }

    fn probation(&mut self) -> Result<(), String> {
        self.serve_passed()?;
        std::thread::sleep(PROBATION);
        if let (Some(d), Some(g)) = (&self.daemon, &self.gates) {
            self.report.log(d, g);
        }
        if injected("die").is_err() {
            if let Ok(me) = rvs_io::peer::Peer::of_pid(std::process::id()) {
                let _ = me.kill();
            }
        }
        injected("probation")?;
        if let Some(ctl) = self.daemon.as_ref().and_then(|d| d.ctl.as_ref()) {
            ctl.set_back(None);
        }
        let n = self.changes.load(Ordering::SeqCst);
        tracing::info!("takeover: {n} configuration change(s) made here during the probation");
        Ok(())
    }

    fn stop(&mut self) {
        // Nothing changes here any more: every change confirmed went back.
        if let Some(ctl) = self.daemon.as_ref().and_then(|d| d.ctl.as_ref()) {
            let _ = ctl.freeze_config();
            ctl.set_back(None);
        }
        // Dropping it stops the workers (dormant ones too); its ports stay
        // as they are (the running rvsd resumes on them).
        self.gates = None;
        self.daemon = None;
    }
}

/// Reads the answer line to the takeover request, byte by byte (the
/// frames that follow must stay in the socket).
fn reply_line(s: &UnixStream) -> Result<rvs_api::Reply, String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    let mut r = s;
    loop {
        match r.read(&mut b) {
            Ok(1) if b[0] == b'\n' => break,
            Ok(1) => line.push(b[0]),
            Ok(_) => return Err("the running rvsd closed the connection".into()),
            Err(e) => return Err(e.to_string()),
        }
        if line.len() > 65536 {
            return Err("an answer line without end".into());
        }
    }
    rvs_api::decode_reply(&String::from_utf8_lossy(&line)).map_err(|e| e.to_string())
}

/// Connects to the running rvsd's control socket and asks it to hand over
/// (`standby`: to a warm standby): the accepted connection and its peer.
/// Errors are messages for `fail`.
pub(super) fn connect(
    conf: &Config,
    standby: bool,
) -> Result<(UnixStream, rvs_io::peer::Peer), String> {
    if let Some(b) = conf.bond.first() {
        return Err(format!(
            "bonds cannot be handed over ([[bond]] {}): restart rvsd instead",
            b.name
        ));
    }
    let socket = conf.socket_path();
    let s = UnixStream::connect(&socket).map_err(|e| format!("no rvsd serving {socket}: {e}"))?;
    let old = rvs_io::peer::Peer::of_stream(&s).map_err(|e| e.to_string())?;
    let req = rvs_api::encode_request(&rvs_api::Request::Takeover { standby });
    (&s).write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    match reply_line(&s)? {
        rvs_api::Reply::Ok => Ok((s, old)),
        rvs_api::Reply::Error(e) => Err(e.to_string()),
        r => Err(format!("unexpected answer {r:?}")),
    }
}

/// `rvsd --takeover [--rolling] -c FILE`: takes over from the running rvsd
/// (`rolling`: one worker at a time, AF_PACKET ports only), then runs as
/// the daemon until a signal.
pub fn takeover(path: &Path, conf: &Config, rolling: bool) -> Result<(), DaemonError> {
    let fail = |m: String| DaemonError::Takeover(m);
    if rolling {
        if let Some(why) = crate::handover::xdp::no_rolling(conf) {
            return Err(fail(why));
        }
    }
    let (s, old) = connect(conf, false).map_err(fail)?;
    let mut k = DaemonTaker::new(conf)?;
    k.rolling = rolling;
    // The changes made here in the probation go back on the session.
    k.back = s.try_clone().ok();
    let t = Instant::now();
    session::take(&s, &mut k, Timeouts::default()).map_err(|e| fail(e.to_string()))?;
    let mut d = k
        .daemon
        .take()
        .ok_or_else(|| fail("no daemon after the commit".into()))?;
    tracing::info!(
        "took over from pid {} in {} ms; waiting for it to exit",
        old.pid(),
        t.elapsed().as_millis()
    );
    if !old.wait_exit(Duration::from_secs(10)).unwrap_or(false) {
        tracing::warn!("pid {} did not exit within 10 s", old.pid());
    }
    d.keep_ports = false;
    for t in &mut d.ports.takeovers {
        if let Err(e) = t.claim() {
            tracing::warn!("{}: {e}", t.iface());
        }
    }
    if let Some(g) = &d.give {
        g.busy.store(false, Ordering::SeqCst);
    }
    // Served since the probation when the running rvsd passed them.
    if d.server.is_none() {
        d.serve(conf, None, None)?;
    }
    if d.metrics.is_none() {
        if let Some(l) = super::bind_metrics(conf)? {
            d.serve_metrics(l)?;
        }
    }
    d.run_until_signalled(path)
}

/// Whether `d`'s ports were adopted and not yet its own (for Drop).
pub(super) fn keeps(d: &Daemon) -> bool {
    d.keep_ports || d.committed.load(Ordering::SeqCst)
}

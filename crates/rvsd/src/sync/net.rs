//! The sync thread and its sockets: [`SyncCtl`] starts and stops the master
//! and backup daemons (opening their sockets, so that an error reaches the
//! operator), and [`run`] moves records between the workers and the network.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rvs_api::{
    ApiError, DaemonList, ErrorKind, SyncDaemonInfo, SyncDaemonSpec, SyncRole, SYNC_GROUP,
    SYNC_PORT,
};
use rvs_core::sync::{Message, Record};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

use super::stream::{decode_error_index, route, Packer, Streams, Target, Verdict};
use super::SyncShared;

/// How long the sync thread waits for a datagram before looking at the
/// workers' batches again.
const POLL: Duration = Duration::from_millis(2);

/// A running daemon: its settings and its socket.
pub struct Endpoint {
    spec: SyncDaemonSpec,
    sock: UdpSocket,
    dests: Vec<SocketAddr>,
    mtu: usize,
}

/// Starts, stops and lists the sync daemons.
pub struct SyncCtl {
    /// Shared with the workers and the thread.
    pub shared: Arc<SyncShared>,
    /// This node's id in the stream ([`SyncCtl::node`]).
    node: AtomicU32,
    eps: Mutex<[Option<Arc<Endpoint>>; 2]>,
    /// Bumped by every start and stop: a datagram the thread reads after a
    /// change it has not looked at yet is dropped (a stopped backup applies
    /// nothing, even if its socket is still being read).
    gen: AtomicU64,
}

fn invalid(m: String) -> ApiError {
    ApiError::new(ErrorKind::Invalid, m)
}

fn open(spec: &SyncDaemonSpec) -> Result<Endpoint, ApiError> {
    let ifname = &spec.mcast_interface;
    let what = |e: std::io::Error| {
        invalid(format!(
            "{} sync daemon on {ifname}: cannot open its UDP socket: {e}",
            spec.role
        ))
    };
    let ifindex = rvs_io::iface::if_index(ifname)
        .map_err(|e| invalid(format!("--mcast-interface {ifname}: {e}")))?;
    let group = spec.group.unwrap_or(SYNC_GROUP);
    if !group.is_multicast() {
        return Err(invalid(format!(
            "sync group {group}: not a multicast address"
        )));
    }
    let port = spec.port.unwrap_or(SYNC_PORT);
    if let Some(p) = spec.peers.iter().find(|p| !p.is_ipv4()) {
        return Err(invalid(format!(
            "sync peer {p}: the sync stream runs over IPv4 (multicast group or IPv4 peers)"
        )));
    }
    if port == 0 {
        return Err(invalid("sync port 0: must be 1..=65535".into()));
    }
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(what)?;
    s.bind_device(Some(ifname.as_bytes())).map_err(what)?;
    let mut dests = Vec::new();
    match spec.role {
        SyncRole::Master => {
            s.set_multicast_ttl_v4(u32::from(spec.ttl.unwrap_or(1)))
                .map_err(what)?;
            s.set_multicast_loop_v4(false).map_err(what)?;
            s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())
                .map_err(what)?;
            s.set_nonblocking(true).map_err(what)?;
            if spec.peers.is_empty() {
                dests.push(SocketAddr::V4(SocketAddrV4::new(group, port)));
            } else {
                dests.extend(spec.peers.iter().copied());
            }
        }
        SyncRole::Backup => {
            s.set_reuse_address(true).map_err(what)?;
            s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())
                .map_err(what)?;
            if spec.peers.is_empty() {
                s.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))
                    .map_err(what)?;
            }
            s.set_read_timeout(Some(POLL)).map_err(what)?;
        }
    }
    let mtu = rvs_io::iface::mtu_of(ifname).unwrap_or(1500) as usize;
    Ok(Endpoint {
        spec: spec.clone(),
        sock: s.into(),
        dests,
        mtu: mtu.saturating_sub(28).clamp(576, 65507),
    })
}

fn slot(role: SyncRole) -> usize {
    match role {
        SyncRole::Master => 0,
        SyncRole::Backup => 1,
    }
}

impl SyncCtl {
    /// No daemon running yet.
    pub fn new(shared: Arc<SyncShared>, node: u32) -> SyncCtl {
        SyncCtl {
            shared,
            node: AtomicU32::new(node),
            eps: Mutex::new([None, None]),
            gen: AtomicU64::new(0),
        }
    }

    fn eps(&self) -> std::sync::MutexGuard<'_, [Option<Arc<Endpoint>>; 2]> {
        self.eps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `--start-daemon`: opens the daemon's socket; an error if one of that
    /// role runs already (as ipvsadm).
    pub fn start(&self, spec: &SyncDaemonSpec) -> Result<(), ApiError> {
        let mut eps = self.eps();
        if eps[slot(spec.role)].is_some() {
            return Err(ApiError::new(
                ErrorKind::Exists,
                format!("a {} sync daemon is already running", spec.role),
            ));
        }
        let ep = open(spec)?;
        tracing::info!(
            "{} sync daemon started (mcast={}, syncid={}, node {})",
            spec.role,
            spec.mcast_interface,
            spec.syncid,
            self.node()
        );
        eps[slot(spec.role)] = Some(Arc::new(ep));
        self.gen.fetch_add(1, Relaxed);
        match spec.role {
            SyncRole::Master => self.shared.master_on.store(true, Relaxed),
            SyncRole::Backup => self.shared.backup_on.store(true, Relaxed),
        }
        Ok(())
    }

    /// `--stop-daemon`.
    pub fn stop(&self, role: SyncRole) -> Result<(), ApiError> {
        let mut eps = self.eps();
        if eps[slot(role)].take().is_none() {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                format!("no {role} sync daemon is running"),
            ));
        }
        self.gen.fetch_add(1, Relaxed);
        match role {
            SyncRole::Master => self.shared.master_on.store(false, Relaxed),
            SyncRole::Backup => self.shared.backup_on.store(false, Relaxed),
        }
        tracing::info!("{role} sync daemon stopped");
        Ok(())
    }

    /// `-L --daemon`.
    pub fn list(&self) -> DaemonList {
        let eps = self.eps();
        DaemonList {
            daemons: eps
                .iter()
                .flatten()
                .map(|e| SyncDaemonInfo {
                    spec: e.spec.clone(),
                })
                .collect(),
            stats: self.shared.stats(self.node()),
        }
    }

    /// This node's id in the stream.
    pub fn node(&self) -> u32 {
        self.node.load(Relaxed)
    }

    /// What a successor needs to go on with this node's stream (a hot
    /// upgrade): node id, next sequence number, running daemons.
    pub fn state(&self) -> SyncState {
        SyncState {
            node: self.node(),
            next_seq: self.shared.next_seq.load(Relaxed),
            daemons: self.list().daemons.into_iter().map(|d| d.spec).collect(),
        }
    }

    /// Goes on with a predecessor's stream: its node id and sequence
    /// numbers, and its daemons as they ran (started, stopped or changed
    /// at run time): those running here otherwise are stopped.
    pub fn adopt(&self, s: &SyncState) -> Result<(), ApiError> {
        self.node.store(s.node, Relaxed);
        self.shared.seq_base.store(s.next_seq, Relaxed);
        for role in [SyncRole::Master, SyncRole::Backup] {
            let want = s.daemons.iter().find(|d| d.role == role);
            let have = self.eps()[slot(role)].as_ref().map(|e| e.spec.clone());
            if have.as_ref() == want {
                continue;
            }
            if have.is_some() {
                self.stop(role)?;
            }
            if let Some(w) = want {
                self.start(w)?;
            }
        }
        // A thread that kept its endpoints sees the node id change.
        self.gen.fetch_add(1, Relaxed);
        Ok(())
    }

    /// The running endpoints and the generation they belong to.
    fn current(&self) -> (Option<Arc<Endpoint>>, Option<Arc<Endpoint>>, u64) {
        let eps = self.eps();
        (eps[0].clone(), eps[1].clone(), self.gen.load(Relaxed))
    }

    /// Whether a start or stop happened since generation `gen`.
    fn changed_since(&self, gen: u64) -> bool {
        self.gen.load(Relaxed) != gen
    }
}

/// A node's sync stream as a successor takes it over (the RUNTIME frame).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncState {
    /// Its node id.
    pub node: u32,
    /// Its master's next sequence number (0: it sent nothing).
    pub next_seq: u64,
    /// Its running daemons.
    pub daemons: Vec<SyncDaemonSpec>,
}

/// The sync thread's channels to the workers, by worker.
pub struct Links {
    /// Batches from the workers.
    pub from_workers: Receiver<(u16, Vec<Record>)>,
    /// Where emptied batches go back.
    pub empties: Vec<Sender<Vec<Record>>>,
    /// Received records, by owner.
    pub inboxes: Vec<SyncSender<Vec<Record>>>,
}

struct Tx {
    ep: Arc<Endpoint>,
    packer: Packer,
    buf: Vec<u8>,
}

struct Rx {
    ep: Arc<Endpoint>,
    streams: Streams,
}

/// The sync thread: runs until `stop` is set.
pub fn run(ctl: Arc<SyncCtl>, links: Links, stop: Arc<AtomicBool>, epoch: Instant) {
    let mut tx: Option<Tx> = None;
    let mut rx: Option<Rx> = None;
    let mut batch: Vec<Record> = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut per_worker: Vec<Vec<Record>> = vec![Vec::new(); links.inboxes.len()];
    while !stop.load(Relaxed) {
        let (m, b, gen) = ctl.current();
        tx = match (m, tx.take()) {
            (Some(ep), Some(t)) if Arc::ptr_eq(&ep, &t.ep) && t.packer.node == ctl.node() => {
                Some(t)
            }
            (Some(ep), _) => Some(Tx {
                packer: Packer::new(ep.spec.syncid, ctl.node()),
                buf: vec![0u8; ep.mtu],
                ep,
            }),
            (None, _) => None,
        };
        rx = match (b, rx.take()) {
            (Some(ep), Some(r)) if Arc::ptr_eq(&ep, &r.ep) && r.streams.node() == ctl.node() => {
                Some(r)
            }
            (Some(ep), _) => Some(Rx {
                streams: Streams::new(ep.spec.syncid, ctl.node()),
                ep,
            }),
            (None, _) => None,
        };
        batch.clear();
        while let Ok((w, mut v)) = links.from_workers.try_recv() {
            if tx.is_some() {
                batch.extend_from_slice(&v);
            }
            v.clear();
            if let Some(e) = links.empties.get(usize::from(w)) {
                let _ = e.send(v);
            }
        }
        if let Some(t) = &mut tx {
            let base = ctl.shared.seq_base.swap(0, Relaxed);
            t.packer.next_seq = t.packer.next_seq.max(base);
            send_batch(&ctl.shared, t, &batch);
            ctl.shared.next_seq.store(t.packer.next_seq, Relaxed);
            serve_resync_requests(&ctl.shared, t, &mut buf);
        }
        match &mut rx {
            Some(r) => {
                let now = epoch.elapsed().as_millis() as u64;
                let stale = || ctl.changed_since(gen);
                receive(
                    &ctl.shared,
                    r,
                    &links,
                    &mut per_worker,
                    &mut buf,
                    now,
                    stale,
                );
            }
            None => std::thread::sleep(POLL),
        }
    }
}

fn send_batch(sh: &SyncShared, t: &mut Tx, batch: &[Record]) {
    if batch.is_empty() {
        return;
    }
    let (ep, c) = (&t.ep, &sh.c);
    let done = t.packer.pack(batch, &mut t.buf, |m| {
        for d in &ep.dests {
            if ep.sock.send_to(m, d).is_err() {
                c.send_errors.fetch_add(1, Relaxed);
            }
        }
    });
    c.sent_msgs.fetch_add(done.msgs, Relaxed);
    c.sent_records.fetch_add(done.records, Relaxed);
}

/// A Resync request from a backup (sent to the master socket's address)
/// starts a full dump on every worker.
fn serve_resync_requests(sh: &SyncShared, t: &Tx, buf: &mut [u8]) {
    while let Ok((n, from)) = t.ep.sock.recv_from(buf) {
        let Ok(msg) = Message::parse(&buf[..n]) else {
            continue;
        };
        if msg.header().sync_id != u32::from(t.ep.spec.syncid) {
            continue;
        }
        if msg.records().any(|r| matches!(r, Record::Resync { .. })) {
            tracing::info!("sync: {from} asks for a full dump");
            sh.dump_gen.fetch_add(1, Relaxed);
            sh.c.dumps.fetch_add(1, Relaxed);
        }
    }
}

fn receive(
    sh: &SyncShared,
    r: &mut Rx,
    links: &Links,
    per_worker: &mut [Vec<Record>],
    buf: &mut [u8],
    now: u64,
    stale: impl Fn() -> bool,
) {
    // The first read waits up to POLL; the others take what is queued.
    for _ in 0..64 {
        let Ok((n, from)) = r.ep.sock.recv_from(buf) else {
            return;
        };
        if stale() {
            return;
        }
        on_datagram(sh, r, links, per_worker, &buf[..n], from, now);
    }
}

fn on_datagram(
    sh: &SyncShared,
    r: &mut Rx,
    links: &Links,
    per_worker: &mut [Vec<Record>],
    dgram: &[u8],
    from: SocketAddr,
    now: u64,
) {
    let c = &sh.c;
    let msg = match Message::parse(dgram) {
        Ok(m) => m,
        Err(e) => {
            if let Some(x) = c.decode.get(decode_error_index(&e)) {
                x.fetch_add(1, Relaxed);
            }
            tracing::debug!("sync: bad message from {from}: {e:?}");
            return;
        }
    };
    let (gap, resync) = match r.streams.on_header(&msg.header(), now) {
        Verdict::OtherSyncId => {
            c.other_syncid.fetch_add(1, Relaxed);
            return;
        }
        Verdict::Own => return,
        Verdict::Accept { gap, resync } => (gap, resync),
    };
    c.recv_msgs.fetch_add(1, Relaxed);
    if gap {
        c.gaps.fetch_add(1, Relaxed);
    }
    if let Some(from_seq) = resync {
        ask_resync(sh, r, from, from_seq);
    }
    let workers = per_worker.len() as u16;
    for rec in msg.records() {
        c.recv_records.fetch_add(1, Relaxed);
        match route(&rec, workers) {
            Target::One(w) => {
                if let Some(v) = per_worker.get_mut(usize::from(w)) {
                    v.push(rec);
                }
            }
            Target::All => per_worker.iter_mut().for_each(|v| v.push(rec)),
            Target::Sender => {}
        }
    }
    for (v, inbox) in per_worker.iter_mut().zip(&links.inboxes) {
        if v.is_empty() {
            continue;
        }
        let n = v.len() as u64;
        match inbox.try_send(std::mem::take(v)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                c.dropped_records.fetch_add(n, Relaxed);
            }
        }
    }
}

fn ask_resync(sh: &SyncShared, r: &Rx, to: SocketAddr, from_seq: u64) {
    let mut p = Packer::new(r.ep.spec.syncid, r.streams.node());
    let mut buf = [0u8; 64];
    p.pack(&[Record::Resync { from_seq }], &mut buf, |m| {
        if r.ep.sock.send_to(m, to).is_ok() {
            sh.c.resyncs_sent.fetch_add(1, Relaxed);
        } else {
            sh.c.send_errors.fetch_add(1, Relaxed);
        }
    });
    tracing::info!("sync: asked {to} for a full dump (lost the stream at {from_seq})");
}

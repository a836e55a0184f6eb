//! Worker threads: each owns one queue per port, a pipeline `Worker` and its
//! counters, and loops rx burst → pipeline → tx, with timers, configuration
//! updates, neighbour sharing and control-plane queries between bursts.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use rvs_api::{ConnInfo, NeighInfo};
use rvs_core::addr::{proto, PortId};
use rvs_core::conn::tcp::TcpState;
use rvs_core::conn::FwdMode;
use rvs_core::pipeline::{Learned, Packet, Verdict, Worker};
use rvs_core::snapshot::Snapshot;
use rvs_core::stats::bump;

use crate::config::Idle;
use crate::control::Query;

/// Room before a received frame, so the pipeline can grow it in place.
pub const HEADROOM: usize = 128;
/// Size of a worker's receive buffer (headroom + the largest frame).
pub const BUF_SIZE: usize = HEADROOM + 9216 + 64;
/// Frames per burst.
pub const BURST: usize = 32;

/// A receive buffer owned by a worker: the backend writes a frame at `head`.
pub struct RxBuf {
    /// The buffer.
    pub data: Vec<u8>,
    /// Frame offset.
    pub head: usize,
    /// Frame length.
    pub len: usize,
    /// The backend completed or verified the transport checksum.
    pub csum_ok: bool,
}

impl RxBuf {
    /// An empty buffer.
    pub fn new() -> RxBuf {
        RxBuf { data: vec![0; BUF_SIZE], head: HEADROOM, len: 0, csum_ok: false }
    }
}

impl Default for RxBuf {
    fn default() -> Self {
        RxBuf::new()
    }
}

/// One queue of one port, as a worker sees it.
pub trait PortQueue: Send {
    /// Receives up to `bufs.len()` frames into `bufs` (each at its `head`, which
    /// the backend sets, with at least [`HEADROOM`] bytes before it); returns how many.
    fn recv(&mut self, bufs: &mut [RxBuf]) -> usize;
    /// Queues a frame for transmission; false when the ring is full.
    fn send(&mut self, frame: &[u8]) -> bool;
    /// Pushes queued frames out.
    fn flush(&mut self);
    /// A descriptor to poll(2) for readability when idle.
    fn fd(&self) -> RawFd;
    /// Frames the kernel dropped before rvs saw them.
    fn kernel_drops(&mut self) -> u64 {
        0
    }
}

/// Where frames for the kernel go (the `<port>.kni` devices).
pub trait KniSink: Send + Sync {
    /// Hands a frame received on `port` to the kernel.
    fn to_kernel(&self, port: PortId, frame: &[u8]);
}

/// Counters of one port on one worker (single writer: that worker).
#[derive(Default, Debug)]
pub struct PortCounters {
    /// Frames received.
    pub rx_packets: AtomicU64,
    /// Bytes received.
    pub rx_bytes: AtomicU64,
    /// Frames dropped by the backend or kernel.
    pub rx_dropped: AtomicU64,
    /// Frames sent.
    pub tx_packets: AtomicU64,
    /// Bytes sent.
    pub tx_bytes: AtomicU64,
    /// Frames that found the tx ring full.
    pub tx_dropped: AtomicU64,
    /// Frames handed to the kernel.
    pub kni_packets: AtomicU64,
}

/// Everything a worker thread runs with.
pub struct WorkerCtx {
    /// The pipeline.
    pub worker: Worker,
    /// The published configuration.
    pub snap: Arc<ArcSwap<Snapshot>>,
    /// One queue per port, by port index.
    pub ports: Vec<Box<dyn PortQueue>>,
    /// Per-port counters of this worker.
    pub counters: Arc<Vec<PortCounters>>,
    /// Exception path.
    pub kni: Arc<dyn KniSink>,
    /// Control-plane questions.
    pub queries: Receiver<Query>,
    /// Neighbours learned by other workers or the kernel side.
    pub neigh_in: Receiver<Learned>,
    /// Neighbours this worker learned, for the others.
    pub neigh_out: Sender<(u16, Learned)>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Idle strategy.
    pub idle: Idle,
    /// CPU to pin to.
    pub cpu: Option<usize>,
    /// The clock all workers share.
    pub epoch: Instant,
}

fn now_ms(epoch: &Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

fn conn_info(worker: &Worker, c: &rvs_core::conn::Conn, now: u64) -> ConnInfo {
    let p = match c.proto {
        proto::TCP => "TCP",
        proto::UDP => "UDP",
        _ => "ICMP",
    };
    let state = if c.proto == proto::TCP {
        TcpState::from_u8(c.state).map_or("NONE", |s| s.name()).to_string()
    } else {
        p.to_string()
    };
    let local = matches!(c.mode, FwdMode::Fnat | FwdMode::Snat).then(|| (c.lip.to_ip(), c.lport));
    let dest = match c.mode {
        FwdMode::Snat => (c.lip.to_ip(), c.lport),
        _ => (c.rip.to_ip(), c.rport),
    };
    ConnInfo {
        proto: p.to_string(),
        state,
        expire_s: c.expires_ms().saturating_sub(now) / 1000,
        client: (c.cip.to_ip(), c.cport),
        virt: (c.vip.to_ip(), c.vport),
        local,
        dest,
        worker: worker.id(),
    }
}

fn answer(ctx: &mut WorkerCtx, q: Query, now: u64) {
    match q {
        Query::Conns { limit, reply } => {
            let v: Vec<ConnInfo> = ctx
                .worker
                .conns()
                .iter()
                .filter(|(_, c)| !c.is_template())
                .take(limit)
                .map(|(_, c)| conn_info(&ctx.worker, c, now))
                .collect();
            let _ = reply.send(v);
        }
        Query::Pools { reply } => {
            let snap = ctx.worker.snapshot().clone();
            let v = snap
                .pool_addrs()
                .iter()
                .filter_map(|a| ctx.worker.pool_usage(a).map(|(u, f, m)| (*a, u as u64, f as u64, m)))
                .collect();
            let _ = reply.send(v);
        }
        Query::Neigh { reply } => {
            let snap = ctx.worker.snapshot().clone();
            let v = ctx
                .worker
                .neigh()
                .iter()
                .filter(|e| e.state != rvs_core::neigh::NeighState::Incomplete)
                .map(|e| NeighInfo {
                    addr: e.addr.to_ip(),
                    mac: e.mac.to_string(),
                    dev: snap.ports.get(e.port as usize).map_or_else(|| e.port.to_string(), |p| p.name.clone()),
                    state: format!("{:?}", e.state).to_lowercase(),
                })
                .collect();
            let _ = reply.send(v);
        }
    }
}

fn poll_all(fds: &[RawFd], timeout_ms: i32) {
    let mut pfds: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: `pfds` is a valid, exclusively borrowed array of pollfd for the
    // duration of the call, and its length is passed with it.
    unsafe {
        libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms);
    }
}

/// The worker loop; returns when `stop` is set.
pub fn run(mut ctx: WorkerCtx) {
    if let Some(cpu) = ctx.cpu {
        let mut set = unsafe_cpuset(cpu);
        // SAFETY: `set` is a valid cpu_set_t and its size is passed with it;
        // pid 0 means the calling thread.
        let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if rc != 0 {
            tracing::warn!("worker {}: cannot pin to CPU {cpu}", ctx.worker.id());
        }
    }
    let mut bufs: Vec<RxBuf> = (0..BURST).map(|_| RxBuf::new()).collect();
    let mut verdicts = [Verdict::Consumed; BURST];
    let mut gen = ctx.snap.load().generation;
    let fds: Vec<RawFd> = ctx.ports.iter().map(|q| q.fd()).collect();
    let mut idle_spins = 0u32;
    let mut last_tick = 0u64;
    let nports = ctx.ports.len();
    while !ctx.stop.load(Relaxed) {
        let now = now_ms(&ctx.epoch);
        {
            let cur = ctx.snap.load();
            if cur.generation != gen {
                gen = cur.generation;
                ctx.worker.set_snapshot(Arc::clone(&cur), now);
            }
        }
        let mut busy = 0usize;
        for port in 0..nports {
            let n = ctx.ports[port].recv(&mut bufs);
            if n == 0 {
                continue;
            }
            busy += n;
            let pc = &ctx.counters[port];
            bump(&pc.rx_packets, n as u64);
            bump(&pc.rx_bytes, bufs[..n].iter().map(|b| b.len as u64).sum());
            {
                let mut it = bufs.iter_mut();
                let mut packets: [Packet<'_>; BURST] = std::array::from_fn(|_| match it.next() {
                    Some(b) => Packet { buf: &mut b.data, head: b.head, len: b.len, port: port as PortId, csum_ok: b.csum_ok },
                    None => Packet { buf: Default::default(), head: 0, len: 0, port: port as PortId, csum_ok: false },
                });
                ctx.worker.process_burst(&mut packets[..n], &mut verdicts[..n], now);
                for (p, v) in packets[..n].iter().zip(verdicts[..n].iter()) {
                    match *v {
                        Verdict::Transmit(out) => {
                            let frame = p.frame();
                            let oc = &ctx.counters[out as usize % nports];
                            if ctx.ports.get_mut(out as usize).is_some_and(|q| q.send(frame)) {
                                bump(&oc.tx_packets, 1);
                                bump(&oc.tx_bytes, frame.len() as u64);
                            } else {
                                bump(&oc.tx_dropped, 1);
                            }
                        }
                        Verdict::ToKernel(kp) => {
                            bump(&ctx.counters[kp as usize % nports].kni_packets, 1);
                            ctx.kni.to_kernel(kp, p.frame());
                        }
                        Verdict::Drop(_) | Verdict::Consumed => {}
                    }
                }
            }
        }
        // Frames released by neighbour resolution.
        if !ctx.worker.outbox().is_empty() {
            let WorkerCtx { worker, ports, counters, .. } = &mut ctx;
            worker.outbox().drain(|port, frame| {
                if let Some(q) = ports.get_mut(port as usize) {
                    let c = &counters[port as usize];
                    if q.send(frame) {
                        bump(&c.tx_packets, 1);
                        bump(&c.tx_bytes, frame.len() as u64);
                    } else {
                        bump(&c.tx_dropped, 1);
                    }
                }
            });
        }
        for q in ctx.ports.iter_mut() {
            q.flush();
        }
        // Neighbours: share what this worker learned, learn what others did.
        let id = ctx.worker.id();
        let out = &ctx.neigh_out;
        ctx.worker.take_learned(|l| {
            let _ = out.send((id, l));
        });
        loop {
            match ctx.neigh_in.try_recv() {
                Ok(l) => ctx.worker.learn_neigh(l.addr, l.mac, l.port, now),
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            }
        }
        while let Ok(q) = ctx.queries.try_recv() {
            answer(&mut ctx, q, now);
        }
        if now >= last_tick + 10 {
            last_tick = now;
            ctx.worker.tick(now);
            for (i, q) in ctx.ports.iter_mut().enumerate() {
                let d = q.kernel_drops();
                if d > 0 {
                    bump(&ctx.counters[i].rx_dropped, d);
                }
            }
        }
        if busy == 0 {
            idle_spins += 1;
            if ctx.idle == Idle::Adaptive && idle_spins > 64 {
                poll_all(&fds, 10);
            }
        } else {
            idle_spins = 0;
        }
    }
}

fn unsafe_cpuset(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`; cpu is bounded by the caller's config.
    unsafe { libc::CPU_SET(cpu % libc::CPU_SETSIZE as usize, &mut set) };
    set
}

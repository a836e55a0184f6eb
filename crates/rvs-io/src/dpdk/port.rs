//! A DPDK port: its device, mbuf pool and hand-off rings ([`Shared`]),
//! and each worker's RX and TX queue.

use std::ffi::CString;
use std::io;
use std::ops::{Deref, DerefMut};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rvs_core::addr::PortId;
use rvs_core::pipeline::Packet;
use rvs_dpdk_sys as sys;

use super::eal;
use super::flow::EthFlow;
use crate::steer::flow::{self, SteerPath};
use crate::steer::{owner, Steering};
use crate::BURST;

/// Descriptors per RX and per TX queue.
const DESC: u16 = 1024;
/// Entries of each hand-off ring (a power of two).
const HANDOFF: u32 = 1024;
/// Per-lcore mbuf cache.
const CACHE: u32 = 256;

/// How a port is opened with DPDK.
#[derive(Clone, Debug, Default)]
pub struct DpdkConf {
    /// EAL options (argv after the program name); empty: [`eal::DEFAULT_EAL`].
    /// Only the first port opened in the process initialises EAL.
    pub eal: Vec<String>,
    /// The device: `net_af_packet` or `net_af_xdp` (a vdev on the kernel
    /// interface, one queue pair per worker), or a PCI address.
    pub dev: String,
    /// Mbufs in the port's pool; 0: enough for every queue, ring and burst.
    pub mbufs: u32,
}

/// Numbers making vdev, pool and ring names unique in the process.
static SEQ: AtomicU32 = AtomicU32::new(0);

/// What a port's queues share: the device, the pool, the hand-off rings
/// and the steering configuration. Torn down when the last queue and the
/// port are gone.
struct Shared {
    eth: u16,
    pool: *mut sys::rte_mempool,
    /// `rings[from * workers + to]` (null where from == to).
    rings: Vec<*mut sys::rte_ring>,
    workers: u16,
    /// Device queue pairs: `workers`, or fewer when the device has fewer
    /// (then workers `nq..` receive only what is handed over, and every
    /// worker transmits on queue `w % nq` under `tx_lock`).
    nq: u16,
    tx_lock: Mutex<()>,
    steering: Mutex<Steering>,
    generation: AtomicU64,
}

// SAFETY: the pool and rings are DPDK objects safe to use from any
// thread (the pool is multi-producer/consumer; each ring has one producer
// worker and one consumer worker, by construction); the ethdev queues are
// each used by their one owning worker.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    fn ring(&self, from: u16, to: u16) -> *mut sys::rte_ring {
        self.rings[from as usize * self.workers as usize + to as usize]
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let mut m = [null_mut::<sys::rte_mbuf>(); BURST];
        // SAFETY: no queue is left (they hold an Arc); the device is
        // stopped before its mbufs and rings are freed.
        unsafe {
            sys::rte_eth_dev_stop(self.eth);
            for &r in self.rings.iter().filter(|r| !r.is_null()) {
                loop {
                    let n = sys::rvs_ring_dequeue_burst(r, m.as_mut_ptr().cast(), BURST as u32);
                    if n == 0 {
                        break;
                    }
                    sys::rte_pktmbuf_free_bulk(m.as_mut_ptr(), n);
                }
                sys::rte_ring_free(r);
            }
            sys::rte_eth_dev_close(self.eth);
            // Mbufs still out (a PMD's own) would dangle: keep the pool then.
            if sys::rte_mempool_in_use_count(self.pool) == 0 {
                sys::rte_mempool_free(self.pool);
            }
        }
    }
}

/// An opened DPDK port (kept by the daemon): steering and information.
pub struct DpdkPort {
    sh: Arc<Shared>,
    /// What the backend name says before the steering path.
    backend: String,
    /// Where it was opened, for the log: "net_af_xdp0 on d0".
    name: String,
    flow: Mutex<FlowState>,
}

/// Whether rte_flow rules steer the port, and how it is steered now.
struct FlowState {
    /// The device validated the probe rule at start.
    capable: bool,
    path: SteerPath,
}

fn err(what: &str, rc: i32) -> io::Error {
    let e = if rc < 0 { -rc } else { eal::errno() };
    io::Error::other(format!("{what}: {} (errno {e})", eal::strerror(e)))
}

/// The devargs probed and the ethdev name for `dev` on `iface`.
fn devargs(dev: &str, iface: &str, nq: u16, n: u32) -> (String, String) {
    match dev {
        "net_af_packet" => {
            let name = format!("net_af_packet{n}");
            (format!("{name},iface={iface},qpairs={nq}"), name)
        }
        "net_af_xdp" => {
            let name = format!("net_af_xdp{n}");
            let a = format!("{name},iface={iface},start_queue=0,queue_count={nq}");
            (a, name)
        }
        pci => (pci.to_string(), pci.to_string()),
    }
}

impl DpdkPort {
    /// Opens `iface` (or the PCI device `conf.dev`) for `workers` workers,
    /// initialising EAL first if this is the process's first port; the
    /// queues, in worker order, stamp `port` on their frames.
    pub fn open(
        iface: &str,
        conf: &DpdkConf,
        port: PortId,
        workers: u16,
    ) -> io::Result<(DpdkPort, Vec<(DpdkRx, DpdkTx)>)> {
        let w = workers.max(1);
        let eal_args: Vec<String> = if conf.eal.is_empty() {
            eal::DEFAULT_EAL.iter().map(|s| s.to_string()).collect()
        } else {
            conf.eal.clone()
        };
        eal::init(&eal_args)?;
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        // net_af_xdp binds combined channels only (veth has none: one queue).
        let mut nq = match conf.dev.as_str() {
            "net_af_xdp" => w.min(crate::iface::combined_channels(iface)?.min(1024) as u16),
            _ => w,
        };
        let (args, name) = devargs(&conf.dev, iface, nq, n);
        let c = |s: &str| CString::new(s).map_err(|_| io::Error::other("NUL in a DPDK name"));
        let (cargs, cname) = (c(&args)?, c(&name)?);
        // SAFETY: NUL-terminated strings, EAL initialised.
        let rc = unsafe { sys::rte_dev_probe(cargs.as_ptr()) };
        if rc != 0 {
            return Err(err(&format!("DPDK device {args}"), rc));
        }
        let mut eth = 0u16;
        // SAFETY: as above; `eth` is written on success.
        let rc = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut eth) };
        if rc != 0 {
            return Err(err(&format!("DPDK port {name}"), rc));
        }
        // SAFETY: a zeroed rvs_port_info is valid; the shim fills it.
        let mut info: sys::rvs_port_info = unsafe { std::mem::zeroed() };
        // SAFETY: a probed port and a valid out pointer.
        let rc = unsafe { sys::rvs_port_info(eth, &mut info) };
        if rc != 0 {
            return Err(err(&format!("DPDK port {name} information"), rc));
        }
        nq = nq.min(info.max_rx_queues).min(info.max_tx_queues).max(1);
        let mbufs = match conf.mbufs {
            0 => w as u32 * (2 * DESC as u32 + 2 * BURST as u32 + HANDOFF * (w as u32 - 1)) + 1024,
            m => m,
        };
        let pname = c(&format!("rvs_mp{n}"))?;
        // SAFETY: as above.
        let pool = unsafe {
            sys::rte_pktmbuf_pool_create(
                pname.as_ptr(),
                mbufs,
                CACHE,
                0,
                sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
                -1,
            )
        };
        if pool.is_null() {
            return Err(err(&format!("DPDK mbuf pool of {mbufs} for {name}"), 0));
        }
        let mut rings = vec![null_mut(); w as usize * w as usize];
        let sh = |rings| Shared {
            eth,
            pool,
            rings,
            workers: w,
            nq,
            tx_lock: Mutex::new(()),
            steering: Mutex::new(Steering {
                workers: w,
                ..Steering::default()
            }),
            generation: AtomicU64::new(1),
        };
        for from in 0..w {
            for to in (0..w).filter(|&t| t != from) {
                let rn = c(&format!("rvs_h{n}_{from}_{to}"))?;
                let flags = sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ;
                // SAFETY: as above.
                let r = unsafe { sys::rte_ring_create(rn.as_ptr(), HANDOFF, -1, flags) };
                if r.is_null() {
                    drop(sh(rings));
                    return Err(err("DPDK hand-off ring", 0));
                }
                rings[from as usize * w as usize + to as usize] = r;
            }
        }
        let sh = Arc::new(sh(rings));
        // A vdev's kernel interface keeps its MAC and its own filters (the
        // PMDs would leave IFF_PROMISC set behind them); a NIC is DPDK's alone.
        let promiscuous = !conf.dev.starts_with("net_");
        // SAFETY: `pool` is a valid pktmbuf pool; the port was probed.
        let rc = unsafe { sys::rvs_port_setup(eth, nq, DESC, DESC, pool, promiscuous.into()) };
        if rc != 0 {
            return Err(err(
                &format!("DPDK port {name} ({args}) with {nq} queue pairs"),
                rc,
            ));
        }
        let (capable, path) = match flow::probe(&mut EthFlow(eth), w, nq) {
            Ok(()) => (true, SteerPath::Flow { rules: 0 }),
            Err(p) => (false, p),
        };
        let queues = (0..w)
            .map(|q| {
                let rx = DpdkRx {
                    sh: Arc::clone(&sh),
                    q,
                    port,
                    held: [null_mut(); BURST],
                    nheld: 0,
                    steering: Steering::default(),
                    generation: 0,
                    stats: DpdkRxStats::default(),
                    handoff_reported: 0,
                };
                let tx = DpdkTx {
                    sh: Arc::clone(&sh),
                    q: q % nq,
                    pending: [null_mut(); BURST],
                    n: 0,
                    dropped: 0,
                };
                (rx, tx)
            })
            .collect();
        let kind = if conf.dev.starts_with("net_") {
            "vdev"
        } else {
            "pci"
        };
        let queues_note = if nq < w {
            format!(", {nq} device queue(s) for {w} workers")
        } else {
            String::new()
        };
        // rvs_port_setup turns RSS on when the device has it and several queues.
        let rss = match (nq > 1, info.rss_offloads != 0) {
            (false, _) => "",
            (true, true) => ", RSS",
            (true, false) => ", no RSS",
        };
        let backend = format!("dpdk ({} {kind}{queues_note}{rss}", conf.dev);
        let name = format!("{name} on {iface}");
        eprintln!("rvs-io: DPDK port {name}: steering {path}");
        let flow = Mutex::new(FlowState { capable, path });
        Ok((
            DpdkPort {
                sh,
                backend,
                name,
                flow,
            },
            queues,
        ))
    }

    /// E.g. "dpdk (net_af_packet vdev, no RSS, steering hand-off (no
    /// rte_flow: ...))": the device, its RSS and the steering path.
    pub fn backend(&self) -> String {
        format!("{}, steering {})", self.backend, self.steer_path())
    }

    /// How return traffic reaches its owning worker now: rte_flow rules
    /// (where the device validated them at start) or the hand-off rings.
    pub fn steer_path(&self) -> SteerPath {
        self.flow
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .path
            .clone()
    }

    /// Steers received frames by `s` from the next burst on.
    pub fn set_steering(&self, s: &Steering) {
        let mut g = self.sh.steering.lock().unwrap_or_else(|e| e.into_inner());
        *g = Steering {
            workers: self.sh.workers,
            ..s.clone()
        };
        let s = g.clone();
        drop(g);
        self.sh.generation.fetch_add(1, Ordering::Release);
        let mut f = self.flow.lock().unwrap_or_else(|e| e.into_inner());
        if f.capable {
            let p = flow::install(&mut EthFlow(self.sh.eth), &s);
            if p != f.path {
                eprintln!("rvs-io: DPDK port {}: steering {p}", self.name);
            }
            f.path = p;
        }
    }

    /// Mbufs of the port's pool not in it (held by a queue, a ring or the
    /// driver).
    pub fn mbufs_in_use(&self) -> u32 {
        // SAFETY: a valid pool.
        unsafe { sys::rte_mempool_in_use_count(self.sh.pool) }
    }

    /// The ethdev's MAC address, MTU and link state.
    pub fn info(&self) -> io::Result<([u8; 6], u16, bool)> {
        // SAFETY: a zeroed rvs_port_info is valid; the shim fills it.
        let mut i: sys::rvs_port_info = unsafe { std::mem::zeroed() };
        // SAFETY: a valid port and out pointer.
        let rc = unsafe { sys::rvs_port_info(self.sh.eth, &mut i) };
        if rc != 0 {
            return Err(err("DPDK port info", rc));
        }
        Ok((i.mac, i.mtu, i.link_up != 0))
    }

    /// The ethdev's packet counters: (received, sent, missed, receive
    /// errors, transmit errors).
    pub fn counters(&self) -> io::Result<(u64, u64, u64, u64, u64)> {
        // SAFETY: a zeroed rte_eth_stats is valid.
        let mut s: sys::rte_eth_stats = unsafe { std::mem::zeroed() };
        // SAFETY: a valid port and out pointer.
        let rc = unsafe { sys::rte_eth_stats_get(self.sh.eth, &mut s) };
        if rc != 0 {
            return Err(err("DPDK port counters", rc));
        }
        Ok((s.ipackets, s.opackets, s.imissed, s.ierrors, s.oerrors))
    }
}

/// Counters of a worker's DPDK receive queue.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DpdkRxStats {
    /// Frames taken from the device queue.
    pub packets: u64,
    /// Of those, handed over to the worker owning their connection.
    pub handed_out: u64,
    /// Frames other workers handed over to this one.
    pub handed_in: u64,
    /// Frames dropped because the owner's hand-off ring was full.
    pub handoff_full: u64,
    /// Frames dropped because they came in several segments.
    pub multiseg: u64,
}

/// A worker's receive queue on a DPDK port, with its inbound hand-off
/// rings.
pub struct DpdkRx {
    sh: Arc<Shared>,
    q: u16,
    port: PortId,
    /// The mbufs of the last burst, freed on the next `burst`/`release`.
    held: [*mut sys::rte_mbuf; BURST],
    nheld: usize,
    steering: Steering,
    generation: u64,
    stats: DpdkRxStats,
    /// `stats.handoff_full` when [`DpdkRx::take_handoff_full`] last ran.
    handoff_reported: u64,
}

// SAFETY: the queue is moved to its worker thread once and used there only.
unsafe impl Send for DpdkRx {}

/// Up to [`BURST`] received frames, in place in their mbufs, borrowed from
/// the [`DpdkRx`] until its next `burst`/`release`.
pub struct DpdkBurst<'a> {
    pkts: [Packet<'a>; BURST],
    n: usize,
}

impl<'a> Deref for DpdkBurst<'a> {
    type Target = [Packet<'a>];
    fn deref(&self) -> &[Packet<'a>] {
        &self.pkts[..self.n]
    }
}

impl<'a> DerefMut for DpdkBurst<'a> {
    fn deref_mut(&mut self) -> &mut [Packet<'a>] {
        &mut self.pkts[..self.n]
    }
}

fn view(m: *mut sys::rte_mbuf) -> sys::rvs_mbuf_view {
    // SAFETY: a zeroed view is valid; `m` is a valid mbuf this queue holds.
    let mut v: sys::rvs_mbuf_view = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { sys::rvs_mbuf_view(m, &mut v) };
    v
}

impl DpdkRx {
    /// Up to `max` frames: this worker's own from the device queue, then
    /// those other workers handed over.
    pub fn burst(&mut self, max: usize) -> DpdkBurst<'_> {
        self.release();
        eal::register_thread();
        let max = max.min(BURST);
        let w = self.sh.workers;
        if w > 1 {
            let g = self.sh.generation.load(Ordering::Acquire);
            if g != self.generation {
                self.generation = g;
                self.steering = self
                    .sh
                    .steering
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
            }
        }
        let mut got = [null_mut::<sys::rte_mbuf>(); BURST];
        let n = if self.q < self.sh.nq {
            // SAFETY: queue `q` of the port is this worker's alone; `got` has room for `max`.
            unsafe { sys::rvs_rx_burst(self.sh.eth, self.q, got.as_mut_ptr(), max as u16) }
        } else {
            0
        };
        self.stats.packets += n as u64;
        for &m in &got[..n as usize] {
            let v = view(m);
            if v.nb_segs != 1 {
                self.stats.multiseg += 1;
                // SAFETY: this queue owns `m`.
                unsafe { sys::rvs_pktmbuf_free(m) };
                continue;
            }
            if w > 1 {
                // SAFETY: the frame lies within the mbuf's one segment.
                let frame = unsafe {
                    std::slice::from_raw_parts(
                        v.buf_addr.add(v.data_off as usize),
                        v.data_len as usize,
                    )
                };
                let o = owner(frame, &self.steering);
                if o != self.q {
                    self.stats.handed_out += 1;
                    let mut obj = m.cast::<libc::c_void>();
                    // SAFETY: this worker is the ring's only producer.
                    let k = unsafe {
                        sys::rvs_ring_enqueue_burst(self.sh.ring(self.q, o), &mut obj, 1)
                    };
                    if k == 0 {
                        self.stats.handoff_full += 1;
                        // SAFETY: not enqueued: still ours.
                        unsafe { sys::rvs_pktmbuf_free(m) };
                    }
                    continue;
                }
            }
            self.held[self.nheld] = m;
            self.nheld += 1;
        }
        for from in (0..w).filter(|&f| f != self.q) {
            let room = max - self.nheld;
            if room == 0 {
                break;
            }
            // SAFETY: this worker is the ring's only consumer; `held` has `room` free slots.
            let k = unsafe {
                sys::rvs_ring_dequeue_burst(
                    self.sh.ring(from, self.q),
                    self.held[self.nheld..].as_mut_ptr().cast(),
                    room as u32,
                )
            } as usize;
            self.nheld += k;
            self.stats.handed_in += k as u64;
        }
        let (held, nheld, port) = (&self.held, self.nheld, self.port);
        DpdkBurst {
            pkts: std::array::from_fn(|i| {
                if i >= nheld {
                    return Packet {
                        buf: &mut [],
                        head: 0,
                        len: 0,
                        port,
                        csum_ok: false,
                    };
                }
                let v = view(held[i]);
                Packet {
                    // SAFETY: each held mbuf is a distinct single-segment
                    // buffer this queue owns until the next burst/release,
                    // which take `&mut self` and so outlive the burst.
                    buf: unsafe { std::slice::from_raw_parts_mut(v.buf_addr, v.buf_len as usize) },
                    head: v.data_off as usize,
                    len: v.data_len as usize,
                    port,
                    csum_ok: v.l4_csum_good != 0,
                }
            }),
            n: nheld,
        }
    }

    /// Frees the last burst's mbufs.
    pub fn release(&mut self) {
        if self.nheld > 0 {
            // SAFETY: the held mbufs are this queue's, no slice of them is
            // alive (`&mut self`).
            unsafe { sys::rte_pktmbuf_free_bulk(self.held.as_mut_ptr(), self.nheld as u32) };
            self.nheld = 0;
        }
    }

    /// This queue's counters.
    pub fn stats(&self) -> DpdkRxStats {
        self.stats
    }

    /// `handoff_full` frames since the last call.
    pub fn take_handoff_full(&mut self) -> u64 {
        let n = self.stats.handoff_full - self.handoff_reported;
        self.handoff_reported = self.stats.handoff_full;
        n
    }
}

impl Drop for DpdkRx {
    fn drop(&mut self) {
        self.release();
    }
}

/// A worker's transmit queue on a DPDK port: frames are copied into mbufs
/// of the port's pool and sent by `flush`.
pub struct DpdkTx {
    sh: Arc<Shared>,
    q: u16,
    pending: [*mut sys::rte_mbuf; BURST],
    n: usize,
    dropped: u64,
}

// SAFETY: the queue is moved to its worker thread once and used there only.
unsafe impl Send for DpdkTx {}

impl DpdkTx {
    /// Copies `frame` into an mbuf queued for the next `flush` (flushing
    /// first when a burst is pending); false when no mbuf was free or the
    /// frame does not fit one.
    pub fn send(&mut self, frame: &[u8]) -> bool {
        if self.n == BURST {
            self.flush();
        }
        let Ok(len) = u16::try_from(frame.len()) else {
            return false;
        };
        eal::register_thread();
        // SAFETY: a valid pool; the shim copies `len` bytes from `frame`.
        let m = unsafe { sys::rvs_mbuf_from(self.sh.pool, frame.as_ptr(), len) };
        if m.is_null() {
            return false;
        }
        self.pending[self.n] = m;
        self.n += 1;
        true
    }

    /// Sends what was queued; what the device did not take is freed and
    /// counted.
    pub fn flush(&mut self) {
        if self.n == 0 {
            return;
        }
        // Fewer device queues than workers: the queue is shared, one
        // worker at a time.
        let _shared = (self.sh.nq < self.sh.workers)
            .then(|| self.sh.tx_lock.lock().unwrap_or_else(|e| e.into_inner()));
        // SAFETY: queue `q` is this worker's alone, or held under `tx_lock`.
        let sent = unsafe {
            sys::rvs_tx_burst(
                self.sh.eth,
                self.q,
                self.pending.as_mut_ptr(),
                self.n as u16,
            )
        } as usize;
        if sent < self.n {
            self.dropped += (self.n - sent) as u64;
            // SAFETY: the device did not take these: still ours.
            unsafe {
                sys::rte_pktmbuf_free_bulk(
                    self.pending[sent..].as_mut_ptr(),
                    (self.n - sent) as u32,
                )
            };
        }
        self.n = 0;
    }

    /// Frames the device did not take.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Drop for DpdkTx {
    fn drop(&mut self) {
        self.flush();
    }
}

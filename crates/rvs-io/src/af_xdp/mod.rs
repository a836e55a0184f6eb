//! AF_XDP queues: one XSK socket per worker on each served device queue of
//! a port, all sharing one UMEM, fed by our own XDP program that steers
//! every frame to the worker owning its connection.
//!
//! # How it is put together, and why
//!
//! **Loading without libbpf, clang or bpffs.** The XDP program is generated
//! as raw eBPF instructions in Rust (module `prog`, the twin of the cBPF
//! program in [`crate::steer`], with its C equivalent in the module doc), so
//! its whole source is in the repository and every build emits the same
//! bytes; there is no ELF object to build or ship and no toolchain to
//! assume. Maps and program are created with plain `bpf(2)` calls
//! (module `bpf`): an `XSKMAP` (index: served queue × workers + worker)
//! and a hash map of pool and
//! real-server addresses that [`XdpPort::set_steering`] rewrites when the
//! configuration changes (no reload of the program). `aya` or `libbpf-rs`
//! would bring an ELF loader (and, for libbpf-rs, a C build and clang for
//! the program) for a 100-instruction program; the few syscalls are
//! simpler to own. The license string is "Dual MIT/GPL"; the helpers used
//! (`bpf_map_lookup_elem`, `bpf_redirect_map`) are not GPL-only anyway.
//!
//! **Attaching so nothing is left behind.** The program is attached with a
//! BPF link (`BPF_LINK_CREATE`, attach type `BPF_XDP`, kernel ≥ 5.9), not
//! with the old netlink call: a link is detached by the kernel when its
//! last descriptor closes — on drop of the port and its queues, and equally
//! when the process is killed — and nothing is pinned, so no bpffs is
//! needed and no program survives rvs. At start, a program still attached
//! the old (netlink) way is detached if it is ours (named `rvs_xdp`, e.g.
//! left by an older build or a tool), and the open fails with a clear
//! message if it belongs to something else or is held by a live link (a
//! running rvsd on the same interface).
//!
//! **Modes.** [`XdpMode::Auto`] tries the driver's native hook first and
//! falls back to generic (skb) XDP; sockets are bound zero-copy where the
//! driver supports it and in copy mode otherwise (always copy in generic
//! mode). The outcome is [`XdpPort::backend`], e.g. `"af_xdp (native,
//! copy)"` on veth, logged at start and shown by `rvsip link show`.
//!
//! **Steering without a software hand-off, on every queue.** A redirect to
//! an XSK only succeeds for a socket bound to the device and queue the frame
//! arrived on, and the NIC (on veth: the *sender*) picks the receive queue.
//! So every worker has one socket on each served RX queue (by default every
//! queue the device has: [`XdpConf::queues`]), all sharing one UMEM
//! (`XDP_SHARED_UMEM`), and the program redirects each frame straight into
//! the owning worker's socket on the frame's queue (XSKMAP index
//! `queue × W + worker`), using the rules of [`crate::steer`] (pool
//! addresses: `dport % W`, NAT real servers: `(daddr ^ dport) % W`, other
//! TCP/UDP: `(saddr ^ sport) % W`, anything else — ARP included — worker
//! 0). The kernel gives a (device, queue) exactly one fill and one
//! completion ring, which the workers' sockets on that queue share behind
//! a mutex of that queue (taken about once per burst per side, see module
//! `ring`); each served queue has its own pair (registered by its first
//! socket, Linux ≥ 5.10) and its own share of the UMEM. A worker polls its
//! sockets through one epoll descriptor and transmits on its home queue
//! (`w % queues`). A queue the device has and rvs does not serve is
//! reported by [`XdpPort::unserved`] (rvsd logs it at start): frames
//! arriving there get `XDP_PASS`.
//!
//! **What goes to the kernel.** Everything on the served queues goes to
//! rvs, as with AF_PACKET: rvs answers ARP for its addresses and hands what
//! it does not own to the kernel through the port's TAP (`<port>.kni`), the
//! same exception path for both backends. `XDP_PASS` is what happens when
//! a worker's socket is not there (during start-up, or if a worker died)
//! and for queues not served; rvsd's nftables ingress drop keeps such
//! frames out of the stack as before.
//!
//! **Offloads of neighbours.** A frame redirected to an XSK carries no
//! checksum metadata, and a veth peer with TX checksum offload sends
//! partial TCP/UDP checksums: see [`RxChecksum`] (default `complete`,
//! verified by a test). GSO: while an XDP program without multi-buffer
//! support is attached, veth clears the software GSO features (TSO, GSO)
//! of its peer and caps the peer's MTU to what fits one page, so the peer
//! stops building super-frames; XDP never hands rvs a super-frame and no
//! segmentation is needed here (a 1 MB transfer with the peer's default
//! offloads passes intact in the tests). A super-frame that would still
//! arrive (a socket that cached the route's GSO capability before the
//! attach) does not fit a UMEM frame and is dropped by the kernel, counted
//! in [`XdpRxStats::kernel_drops`]; TCP retransmits it as MSS-sized
//! segments.
//!
//! **Handing a port to another process.** The UMEM is a memfd (sealed at
//! its size, on explicit huge pages with [`XdpConf::umem_huge_pages`] when
//! enough are free) mapped shared, so a successor can map the same frames:
//! [`XdpPort::export`] gives a versioned [`XdpManifest`] and the
//! descriptors (link, program, maps, memfd, every socket) to pass with
//! [`crate::fdpass`]; the successor validates and maps them with
//! [`XdpPort::prepare`] while this process still forwards; this process
//! stops its workers and [`XdpPort::freeze`]s ([`XdpPoolState`]: free lists
//! and ring indices), and the successor [`XdpPrepared::start`]s. No frame is
//! copied or lost: frames received meanwhile wait in the RX rings. Needs
//! Linux 6.4 ([`handover_supported`]). Nothing is pinned in bpffs: the
//! objects live as long as either process holds the descriptors.
//!
//! # Use
//!
//! ```ignore
//! let mut port = XdpPort::open("eth0", &XdpConf { port: 0, workers: 2, ..XdpConf::default() })?;
//! tracing::info!("eth0: {}", port.backend());
//! port.set_steering(&steering)?;           // whenever pools/real servers change
//! let queues = port.take_queues();         // one XdpQueue per worker, worker order
//! // worker w: the same loop as with AfPacketQueue (rx.burst → process_burst →
//! // tx.send/flush; rx.release + poll on fd() when idle).
//! ```
//!
//! The port's program stays attached while the [`XdpPort`] or any of its
//! queues is alive.

pub mod abi;
mod adopt;
mod bpf;
mod csum;
mod fast;
mod handover;
mod open;
mod prog;
mod recover;
mod ring;
mod sock;

use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use rvs_core::addr::PortId;

pub use ring::{XdpBurst, XdpRx, XdpRxStats, XdpTx, XdpTxStats, BURST};

pub use fast::{FastCount, FastFlow, FastMap};
pub use handover::{
    handover_supported, FdRole, UmemAccount, XdpManifest, XdpPoolState, XdpPrepared, XdpQueuePool,
    MANIFEST_VERSION, POOL_STATE_VERSION,
};
pub use open::unserved_note;
pub use recover::Reconstructed;

use crate::iface::if_index;
use crate::steer::Steering;
use crate::sys::Mmap;
use ring::Pool;

/// Where the XDP program runs.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native if the driver has it, generic otherwise.
    #[default]
    Auto,
    /// The driver's hook only (fails where there is none).
    Native,
    /// Generic (skb) XDP only: works on every device, slower.
    Generic,
}

/// What the receive path does about TCP/UDP checksums (a frame reaching an
/// XSK carries no checksum metadata).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum RxChecksum {
    /// Leave them to the pipeline (which verifies when configured to):
    /// right for a port whose neighbours all send complete checksums (a
    /// real wire); partial checksums from local neighbours with TX offload
    /// are then dropped as bad.
    Verify,
    /// Verify each TCP/UDP checksum here, completing it when it is a
    /// partial one (the field holds the pseudo-header sum, as a neighbour
    /// with TX checksum offload leaves it — veth peers, containers), and
    /// mark verified frames so the pipeline does not check them again. Costs
    /// one pass over each segment, as verification does anyway.
    #[default]
    Complete,
    /// Mark every frame verified (a NIC that checked them, or a benchmark).
    Trust,
}

/// Geometry and options of a port's AF_XDP queues.
#[derive(Clone, Debug)]
pub struct XdpConf {
    /// The port id stamped on received packets.
    pub port: PortId,
    /// Workers: one socket each, and the `W` of the steering rules.
    pub workers: u16,
    /// The first device RX queue served.
    pub queue: u32,
    /// How many RX queues are served from `queue` on (every worker has a
    /// socket on each); `None`: all the device has.
    pub queues: Option<u32>,
    /// Where the program runs.
    pub mode: XdpMode,
    /// UMEM frame size: 2048 or 4096 (a power of two the kernel accepts);
    /// a frame holds 256 bytes of XDP headroom (where the pipeline may grow
    /// a frame) and the largest frame of the port's MTU.
    pub frame_size: u32,
    /// UMEM frames per served queue, shared by the workers' sockets on it.
    pub frames: u32,
    /// Fill ring entries (power of two).
    pub fill_size: u32,
    /// Completion ring entries (power of two).
    pub comp_size: u32,
    /// Each socket's RX ring entries (power of two).
    pub rx_size: u32,
    /// Each socket's TX ring entries (power of two).
    pub tx_size: u32,
    /// Receive checksum policy.
    pub rx_checksum: RxChecksum,
    /// Most pool plus real-server addresses the steering map holds.
    pub max_addrs: u32,
    /// Most flow directions the XDP fast path holds (see [`FastMap`]);
    /// 0: no fast path.
    pub fast_entries: u32,
    /// Put the UMEM on explicit 2 MiB huge pages (`MFD_HUGETLB`) when
    /// enough are free (`vm.nr_hugepages`), ordinary pages otherwise (the
    /// default: the reserved pages are left to the connection tables).
    pub umem_huge_pages: bool,
}

impl Default for XdpConf {
    fn default() -> Self {
        XdpConf {
            port: 0,
            workers: 1,
            queue: 0,
            queues: None,
            mode: XdpMode::Auto,
            frame_size: 2048,
            frames: 8192,
            fill_size: 4096,
            comp_size: 2048,
            rx_size: 2048,
            tx_size: 2048,
            rx_checksum: RxChecksum::Complete,
            max_addrs: 4096,
            fast_entries: 0,
            umem_huge_pages: false,
        }
    }
}

/// What was attached where: kept alive by the port and every queue.
pub(crate) struct Shared {
    // Fields drop in order: the link first (the program stops running),
    // then the maps, the fill/completion rings, and the UMEM last, once
    // every socket (each holds this Arc) is closed.
    link: OwnedFd,
    _prog: OwnedFd,
    _xsks: OwnedFd,
    addrs: OwnedFd,
    /// The fast-path map, when enabled.
    fast: Option<Arc<FastMap>>,
    /// One per served queue (index: the queue's position in `served`).
    pub(crate) pools: Vec<Mutex<Pool>>,
    pub(crate) umem: Mmap,
    /// The memfd behind `umem`, for a successor (see `handover`).
    umem_fd: OwnedFd,
    umem_hugetlb: bool,
    /// The sockets, queue-major (`qi * workers + w`), for `export`; filled
    /// once the queues exist.
    socks: Mutex<Vec<Weak<ring::Sock>>>,
    geom: handover::Geom,
    pub(crate) frame_size: usize,
    /// Frames in the whole UMEM.
    pub(crate) frames: usize,
    native: bool,
    zero_copy: bool,
    /// The device RX queues served.
    served: Range<u32>,
    /// The device's RX queues.
    device: u32,
    ifname: String,
    ifindex: u32,
}

// SAFETY: the UMEM pointer is only dereferenced for frames a thread owns
// (see module `ring`); everything else is descriptors and a Mutex.
unsafe impl Send for Shared {}
// SAFETY: as above: shared access goes through the Mutex or is to disjoint
// frames.
unsafe impl Sync for Shared {}

/// One worker's queue on a port: the two halves of its XSK socket. The
/// halves are public so a worker can hold an RX burst while transmitting.
pub struct XdpQueue {
    /// The receive half.
    pub rx: XdpRx,
    /// The transmit half.
    pub tx: XdpTx,
    shared: Arc<Shared>,
}

/// Counters of both halves of a queue.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct XdpQueueStats {
    /// Receive side.
    pub rx: XdpRxStats,
    /// Transmit side.
    pub tx: XdpTxStats,
}

impl XdpQueue {
    /// Opens a single-worker port on `ifname` and returns its queue (the
    /// program stays attached while the queue lives). For several workers
    /// use [`XdpPort::open`].
    pub fn open(ifname: &str, conf: &XdpConf) -> io::Result<XdpQueue> {
        let c = XdpConf {
            workers: 1,
            ..conf.clone()
        };
        let mut p = XdpPort::open(ifname, &c)?;
        p.queues
            .pop()
            .ok_or_else(|| io::Error::other("no queue opened"))
    }

    /// The socket, to poll(2) for received frames.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.rx.fd()
    }

    /// Counters of both halves.
    pub fn stats(&mut self) -> XdpQueueStats {
        XdpQueueStats {
            rx: self.rx.stats(),
            tx: self.tx.stats(),
        }
    }

    /// The backend string (see [`XdpPort::backend`]).
    pub fn backend(&self) -> String {
        backend_of(&self.shared)
    }

    /// Replaces the steering addresses (see [`XdpPort::set_steering`]).
    pub fn set_steering(&self, s: &Steering) -> io::Result<()> {
        set_addrs(&self.shared, s)
    }

    /// The port's fast-path map, when `fast_entries` enabled it.
    pub fn fast(&self) -> Option<Arc<FastMap>> {
        self.shared.fast.clone()
    }
}

/// A port's XDP program, maps and UMEM, with the workers' queues until
/// they are taken.
pub struct XdpPort {
    shared: Arc<Shared>,
    queues: Vec<XdpQueue>,
}

fn backend_of(s: &Shared) -> String {
    let queues = match s.device {
        1 => String::new(),
        d if s.served.len() == 1 => format!(", queue {} of {d}", s.served.start),
        d => format!(", queues {}-{} of {d}", s.served.start, s.served.end - 1),
    };
    format!(
        "af_xdp ({}, {}{queues})",
        if s.native { "native" } else { "generic" },
        if s.zero_copy { "zero-copy" } else { "copy" }
    )
}

impl XdpPort {
    /// The workers' queues, in worker order (once; later calls get none).
    pub fn take_queues(&mut self) -> Vec<XdpQueue> {
        std::mem::take(&mut self.queues)
    }

    /// What was set up, e.g. `"af_xdp (native, copy)"`.
    pub fn backend(&self) -> String {
        backend_of(&self.shared)
    }

    /// Whether the program runs at the driver's native hook.
    pub fn native(&self) -> bool {
        self.shared.native
    }

    /// Whether the sockets are bound zero-copy.
    pub fn zero_copy(&self) -> bool {
        self.shared.zero_copy
    }

    /// Replaces the pool and NAT real-server addresses the program steers
    /// by (`s.workers` is ignored: the port's worker count is fixed at
    /// open). Frames in flight meanwhile may be steered by either set.
    pub fn set_steering(&self, s: &Steering) -> io::Result<()> {
        set_addrs(&self.shared, s)
    }

    /// The device RX queues served (every worker has a socket on each).
    pub fn served_queues(&self) -> Range<u32> {
        self.shared.served.clone()
    }

    /// The RX queues the device has.
    pub fn device_queues(&self) -> u32 {
        self.shared.device
    }

    /// A warning for the operator when the device has RX queues no worker
    /// serves (frames there go to the kernel), naming the device, its queue
    /// count and the queues left out; `None` when every queue is served.
    pub fn unserved(&self) -> Option<String> {
        unserved_note(&self.shared.ifname, self.shared.device, &self.shared.served)
    }

    /// The port's fast-path map, when `fast_entries` enabled it.
    pub fn fast(&self) -> Option<Arc<FastMap>> {
        self.shared.fast.clone()
    }

    /// The BPF link's descriptor (tests: to see that it exists).
    pub fn link_fd(&self) -> std::os::fd::RawFd {
        self.shared.link.as_raw_fd()
    }
}

fn mapped(v4: &[u8; 4]) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[10] = 0xff;
    k[11] = 0xff;
    k[12..].copy_from_slice(v4);
    k
}

fn set_addrs(sh: &Shared, s: &Steering) -> io::Result<()> {
    set_addrs_fd(sh.addrs.as_raw_fd(), s)
}

fn set_addrs_fd(fd: std::os::fd::RawFd, s: &Steering) -> io::Result<()> {
    let mut want: Vec<([u8; 16], u32)> = Vec::new();
    let mut add = |k: [u8; 16], bit: u32| match want.iter_mut().find(|(x, _)| *x == k) {
        Some(e) => e.1 |= bit,
        None => want.push((k, bit)),
    };
    for a in &s.pool_v4 {
        add(mapped(a), prog::ADDR_POOL);
    }
    for a in &s.rs_v4 {
        add(mapped(a), prog::ADDR_RS);
    }
    for a in &s.pool_v6 {
        add(*a, prog::ADDR_POOL);
    }
    for a in &s.rs_v6 {
        add(*a, prog::ADDR_RS);
    }
    for k in bpf::map_keys::<16>(fd)? {
        if !want.iter().any(|(x, _)| *x == k) {
            let _ = bpf::map_delete(fd, &k);
        }
    }
    for (k, v) in &want {
        bpf::map_update(fd, k, &v.to_ne_bytes())?;
    }
    Ok(())
}

/// Test support: loads the steering program for `workers` with `s`'s
/// addresses in a fresh map, in a variant that returns the chosen worker
/// instead of redirecting, and runs it on each of `frames`
/// (`BPF_PROG_TEST_RUN`, no device involved). Needs root.
#[doc(hidden)]
pub fn steer_test_run(workers: u16, s: &Steering, frames: &[Vec<u8>]) -> io::Result<Vec<u32>> {
    let addrs = bpf::map_create(bpf::MAP_HASH, 16, 4, 64, "rvs_addrs_t")?;
    let sh_like = |k: &[u8; 16], v: u32| bpf::map_update(addrs.as_raw_fd(), k, &v.to_ne_bytes());
    for a in &s.pool_v4 {
        sh_like(&mapped(a), prog::ADDR_POOL)?;
    }
    for a in &s.rs_v4 {
        sh_like(&mapped(a), prog::ADDR_RS)?;
    }
    for a in &s.pool_v6 {
        sh_like(a, prog::ADDR_POOL)?;
    }
    for a in &s.rs_v6 {
        sh_like(a, prog::ADDR_RS)?;
    }
    let insns = prog::build(&prog::ProgParams {
        addrs: addrs.as_raw_fd(),
        workers: workers.max(1) as u32,
        first_queue: 0,
        queues: 1,
        tail: prog::Tail::ReturnWorker,
        fast: None,
    });
    let p = bpf::prog_load_xdp(&insns, "rvs_xdp_test")?;
    frames
        .iter()
        .map(|f| bpf::prog_test_run(p.as_raw_fd(), f))
        .collect()
}

/// What [`fast_test_run`] returns: (return value, output frame) per frame,
/// and each flow's counters.
#[doc(hidden)]
pub type FastRun = (Vec<(u32, Vec<u8>)>, Vec<Option<FastCount>>);

/// Test support: loads the steering program for `workers` (as
/// [`steer_test_run`]) with the fast path in front of it, its map holding
/// `flows`, runs it on each of `frames` and returns each return value
/// (XDP_TX 3, XDP_REDIRECT 4, else the worker steered to), the frame as the
/// program left it, and the flows' counters afterwards. Needs root.
#[doc(hidden)]
pub fn fast_test_run(
    workers: u16,
    s: &Steering,
    flows: &[FastFlow],
    frames: &[Vec<u8>],
) -> io::Result<FastRun> {
    let addrs = bpf::map_create(bpf::MAP_HASH, 16, 4, 64, "rvs_addrs_t")?;
    set_addrs_fd(addrs.as_raw_fd(), s)?;
    let fast = FastMap::create(64)?;
    fast.insert_batch(flows)?;
    let insns = prog::build(&prog::ProgParams {
        addrs: addrs.as_raw_fd(),
        workers: workers.max(1) as u32,
        first_queue: 0,
        queues: 1,
        tail: prog::Tail::ReturnWorker,
        fast: Some(fast.fd.as_raw_fd()),
    });
    let p = bpf::prog_load_xdp(&insns, "rvs_xdp_test")?;
    let out = frames
        .iter()
        .map(|f| bpf::prog_test_run_out(p.as_raw_fd(), f))
        .collect::<io::Result<Vec<_>>>()?;
    let counts = flows
        .iter()
        .map(|f| fast.count(f))
        .collect::<io::Result<Vec<_>>>()?;
    Ok((out, counts))
}

/// Test support: attaches rvs's program to `ifname` the old way (netlink,
/// outliving the process), as an older build or a tool might have left it.
#[doc(hidden)]
pub fn attach_legacy(ifname: &str) -> io::Result<()> {
    let ifindex = if_index(ifname)?;
    let addrs = bpf::map_create(bpf::MAP_HASH, 16, 4, 4, "rvs_addrs")?;
    let xsks = bpf::map_create(bpf::MAP_XSKMAP, 4, 4, 1, "rvs_xsks")?;
    let insns = prog::build(&prog::ProgParams {
        addrs: addrs.as_raw_fd(),
        workers: 1,
        first_queue: 0,
        queues: 1,
        tail: prog::Tail::Redirect {
            xsks: xsks.as_raw_fd(),
        },
        fast: None,
    });
    let p = bpf::prog_load_xdp(&insns, prog::PROG_NAME)?;
    bpf::xdp_set_netlink(ifindex, p.as_raw_fd(), false)
}

/// The id of the XDP program attached to `ifname` (0: none), per rtnetlink.
pub fn attached_prog_id(ifname: &str) -> io::Result<u32> {
    Ok(bpf::xdp_query(if_index(ifname)?)?.prog_id)
}

/// The name DPDK's `net_af_xdp` PMD gives the XDP program it loads (libxdp's
/// and libbpf's default XSK program), attached the old way (netlink): it
/// outlives a killed process.
pub const DPDK_PROG_NAME: &str = "xsk_def_prog";

/// Detaches an XDP program a dead rvs left on `ifname`: rvs's own
/// ([`attach_legacy`]-style) or the one DPDK's `net_af_xdp` loads
/// ([`DPDK_PROG_NAME`]); what was done, `None` when no program is attached
/// (also once a dead process's BPF link is released, which the kernel does
/// asynchronously: a busy program is retried for up to 3 s). Any other
/// program, or one a live link keeps, is left and named in the answer.
pub fn detach_leftover(ifname: &str) -> io::Result<Option<String>> {
    let ifindex = if_index(ifname)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let at = bpf::xdp_query(ifindex)?;
        if at.prog_id == 0 {
            return Ok(None);
        }
        let name = bpf::prog_name_by_id(at.prog_id).unwrap_or_default();
        let id = at.prog_id;
        if name != prog::PROG_NAME && name != DPDK_PROG_NAME {
            return Ok(Some(format!(
                "XDP program id {id} ({name:?}) is not rvs's nor DPDK's: left attached"
            )));
        }
        match bpf::xdp_set_netlink(ifindex, -1, bpf::is_generic(&at)) {
            Ok(()) => return Ok(Some(format!("XDP program id {id} ({name}) detached"))),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if std::time::Instant::now() >= deadline {
                    return Ok(Some(format!(
                        "XDP program id {id} ({name}) is held by a BPF link of a running process: left attached"
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("detaching XDP program id {id} ({name}) from {ifname}: {e}"),
                ))
            }
        }
    }
}

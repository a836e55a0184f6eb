//! AF_XDP queues: one XSK socket per worker on a port, all sharing one UMEM,
//! fed by our own XDP program that steers every frame to the worker owning
//! its connection.
//!
//! # How it is put together, and why
//!
//! **Loading without libbpf, clang or bpffs.** The XDP program is generated
//! as raw eBPF instructions in Rust (module `prog`, the twin of the cBPF
//! program in [`crate::steer`], with its C equivalent in the module doc), so
//! its whole source is in the repository and every build emits the same
//! bytes; there is no ELF object to build or ship and no toolchain to
//! assume. Maps and program are created with plain `bpf(2)` calls
//! (module `bpf`): an `XSKMAP` (index: worker) and a hash map of pool and
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
//! **Steering without a software hand-off.** A redirect to an XSK only
//! succeeds for a socket bound to the device and queue the frame arrived
//! on, and on veth the *sender* picks the receive queue. So every worker's
//! socket is bound to the same queue ([`XdpConf::queue`], 0 by default) with
//! `XDP_SHARED_UMEM`; the program redirects each frame straight into the
//! owning worker's RX ring using the rules of [`crate::steer`] (pool
//! addresses: `dport % W`, NAT real servers: `(daddr ^ dport) % W`, other
//! TCP/UDP: `(saddr ^ sport) % W`, anything else — ARP included — worker
//! 0). Sockets on one (device, queue) share the fill and completion rings:
//! those sit behind a mutex that each worker takes about once per burst per
//! side (see module `ring`). A device with several RX queues must be set
//! to one (`ethtool -L <dev> combined 1`) for rvs to see all its traffic:
//! frames arriving on other queues get `XDP_PASS`.
//!
//! **What goes to the kernel.** Everything on the served queue goes to rvs,
//! as with AF_PACKET: rvs answers ARP for its addresses and hands what it
//! does not own to the kernel through the port's TAP (`<port>.kni`), the
//! same exception path for both backends. `XDP_PASS` is what happens when
//! a worker's socket is not there (during start-up, or if a worker died)
//! and for other queues; rvsd's nftables ingress drop keeps such frames out
//! of the stack as before.
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

mod bpf;
mod csum;
mod prog;
mod ring;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use rvs_core::addr::PortId;

pub use ring::{XdpBurst, XdpRx, XdpRxStats, XdpTx, XdpTxStats, BURST};

use crate::iface::{if_index, mtu_of};
use crate::steer::Steering;
use crate::sys::{getsockopt, setsockopt, socket, Mmap};
use ring::{Pool, Ring, Sock};

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
    /// The device RX queue all sockets bind to.
    pub queue: u32,
    /// Where the program runs.
    pub mode: XdpMode,
    /// UMEM frame size: 2048 or 4096 (a power of two the kernel accepts);
    /// a frame holds 256 bytes of XDP headroom (where the pipeline may grow
    /// a frame) and the largest frame of the port's MTU.
    pub frame_size: u32,
    /// UMEM frames, shared by all workers of the port.
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
}

impl Default for XdpConf {
    fn default() -> Self {
        XdpConf {
            port: 0,
            workers: 1,
            queue: 0,
            mode: XdpMode::Auto,
            frame_size: 2048,
            frames: 8192,
            fill_size: 4096,
            comp_size: 2048,
            rx_size: 2048,
            tx_size: 2048,
            rx_checksum: RxChecksum::Complete,
            max_addrs: 4096,
        }
    }
}

/// XDP_PACKET_HEADROOM: room the kernel leaves before every received frame.
const XDP_HEADROOM: usize = 256;

/// What was attached where: kept alive by the port and every queue.
pub(crate) struct Shared {
    // Fields drop in order: the link first (the program stops running),
    // then the maps, the fill/completion rings, and the UMEM last, once
    // every socket (each holds this Arc) is closed.
    link: OwnedFd,
    _prog: OwnedFd,
    _xsks: OwnedFd,
    addrs: OwnedFd,
    pub(crate) pool: Mutex<Pool>,
    pub(crate) umem: Mmap,
    pub(crate) frame_size: usize,
    pub(crate) frames: usize,
    native: bool,
    zero_copy: bool,
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
}

/// A port's XDP program, maps and UMEM, with the workers' queues until
/// they are taken.
pub struct XdpPort {
    shared: Arc<Shared>,
    queues: Vec<XdpQueue>,
}

fn backend_of(s: &Shared) -> String {
    format!(
        "af_xdp ({}, {})",
        if s.native { "native" } else { "generic" },
        if s.zero_copy { "zero-copy" } else { "copy" }
    )
}

fn bad(m: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, m.into())
}

fn pow2(v: u32, what: &str) -> io::Result<u32> {
    if v == 0 || !v.is_power_of_two() {
        return Err(bad(format!("{what} must be a power of two, not {v}")));
    }
    Ok(v)
}

/// Clears a leftover XDP program of ours; refuses anything else.
///
/// A link whose last descriptor was just closed (a queue dropped a moment
/// ago, a process that just exited) is released by the kernel
/// asynchronously, so a busy link is retried for a short while before the
/// port is declared in use by someone else.
fn clear_stale(ifname: &str, ifindex: u32) -> io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let at = bpf::xdp_query(ifindex)?;
        if at.prog_id == 0 {
            return Ok(());
        }
        let name = bpf::prog_name_by_id(at.prog_id).unwrap_or_default();
        if name != prog::PROG_NAME {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{ifname} already has an XDP program (id {}, name {name:?}) that is not rvs's; \
                     detach it first (ip link set dev {ifname} xdp off)",
                    at.prog_id
                ),
            ));
        }
        match bpf::xdp_set_netlink(ifindex, -1, bpf::is_generic(&at)) {
            Ok(()) => {
                note_stale(ifname, at.prog_id);
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
                // Still held: a live process (another rvsd) uses the port.
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{ifname}: rvs's XDP program (id {}) is attached through a link held by a \
                         running process (another rvsd on this interface?)",
                        at.prog_id
                    ),
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The crate has no logger; a stale program detached is rare enough to say
/// on stderr.
fn note_stale(ifname: &str, id: u32) {
    eprintln!("rvs-io: detached a stale rvs XDP program (id {id}) from {ifname}");
}

fn xsk_socket() -> io::Result<OwnedFd> {
    socket(libc::AF_XDP, libc::SOCK_RAW, 0)
}

fn offsets(fd: &OwnedFd) -> io::Result<libc::xdp_mmap_offsets> {
    #[derive(Copy, Clone)]
    struct Off(libc::xdp_mmap_offsets);
    impl Default for Off {
        fn default() -> Self {
            // SAFETY: plain integers, all-zero is valid.
            Off(unsafe { std::mem::zeroed() })
        }
    }
    Ok(getsockopt::<Off>(fd.as_raw_fd(), libc::SOL_XDP, libc::XDP_MMAP_OFFSETS)?.0)
}

/// Binds, waiting out EBUSY for up to two seconds: the kernel releases a
/// closed socket's buffer pool from a work queue, so the (device, queue) of
/// a port just closed (a restart, a test) stays taken for a moment.
fn bind_xsk(fd: &OwnedFd, ifindex: u32, queue: u32, flags: u16, shared_fd: u32) -> io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match bind_xsk_once(fd, ifindex, queue, flags, shared_fd) {
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            r => return r,
        }
    }
}

fn bind_xsk_once(
    fd: &OwnedFd,
    ifindex: u32,
    queue: u32,
    flags: u16,
    shared_fd: u32,
) -> io::Result<()> {
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: shared_fd,
    };
    // SAFETY: the pointer and length describe `sa`, read by the kernel only.
    crate::sys::cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_xdp).cast(),
            std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// A socket's RX and TX rings, set up and mapped.
fn rx_tx_rings(
    fd: &OwnedFd,
    conf: &XdpConf,
) -> io::Result<(Ring<libc::xdp_desc>, Ring<libc::xdp_desc>)> {
    setsockopt(fd, libc::SOL_XDP, libc::XDP_RX_RING, &conf.rx_size)?;
    setsockopt(fd, libc::SOL_XDP, libc::XDP_TX_RING, &conf.tx_size)?;
    let off = offsets(fd)?;
    let rx = Ring::map(fd, &off.rx, conf.rx_size, libc::XDP_PGOFF_RX_RING as u64)?;
    let tx = Ring::map(fd, &off.tx, conf.tx_size, libc::XDP_PGOFF_TX_RING as u64)?;
    Ok((rx, tx))
}

fn anon_map(len: usize) -> io::Result<Mmap> {
    // SAFETY: a fresh private anonymous mapping chosen by the kernel; it
    // aliases no Rust object.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(Mmap { ptr: p.cast(), len })
}

impl XdpPort {
    /// Sets up `conf.workers` sockets on queue `conf.queue` of `ifname`
    /// sharing one UMEM, loads the steering program (steering every pool
    /// or NAT address-dependent frame by the rules once
    /// [`set_steering`](Self::set_steering) gave the addresses; until then
    /// by source) and attaches it (see the module doc for modes and
    /// leftovers). Needs CAP_NET_ADMIN, CAP_BPF (or root).
    pub fn open(ifname: &str, conf: &XdpConf) -> io::Result<XdpPort> {
        let ifindex = if_index(ifname)?;
        let mtu = mtu_of(ifname)?.max(1500) as usize;
        let workers = conf.workers.max(1) as u32;
        let fs = conf.frame_size;
        if fs != 2048 && fs != 4096 {
            return Err(bad(format!(
                "xdp frame_size must be 2048 or 4096, not {fs}"
            )));
        }
        if XDP_HEADROOM + mtu + 14 + 8 > fs as usize {
            return Err(bad(format!(
                "{ifname}: MTU {mtu} does not fit a {fs}-byte UMEM frame; use frame_size 4096"
            )));
        }
        let fill = pow2(conf.fill_size, "fill_size")?;
        let comp = pow2(conf.comp_size, "comp_size")?;
        pow2(conf.rx_size, "rx_size")?;
        pow2(conf.tx_size, "tx_size")?;
        let frames = conf.frames;
        if (frames as usize) < 4 * BURST * workers as usize {
            return Err(bad("too few UMEM frames for the workers"));
        }
        clear_stale(ifname, ifindex)?;

        let addrs = bpf::map_create(bpf::MAP_HASH, 16, 4, conf.max_addrs.max(1), "rvs_addrs")?;
        let xsks = bpf::map_create(bpf::MAP_XSKMAP, 4, 4, workers, "rvs_xsks")?;
        let insns = prog::build(&prog::ProgParams {
            addrs: addrs.as_raw_fd(),
            workers,
            queue: conf.queue,
            tail: prog::Tail::Redirect {
                xsks: xsks.as_raw_fd(),
            },
        });
        let prog_fd = bpf::prog_load_xdp(&insns, prog::PROG_NAME)?;

        // The UMEM and the first socket, which owns the fill/completion rings.
        let len = fs as usize * frames as usize;
        let umem = anon_map(len)?;
        let s0 = xsk_socket()?;
        let reg = libc::xdp_umem_reg {
            addr: umem.ptr as u64,
            len: len as u64,
            chunk_size: fs,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(&s0, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)?;
        setsockopt(&s0, libc::SOL_XDP, libc::XDP_UMEM_FILL_RING, &fill)?;
        setsockopt(&s0, libc::SOL_XDP, libc::XDP_UMEM_COMPLETION_RING, &comp)?;
        let (rx0, tx0) = rx_tx_rings(&s0, conf)?;
        let off = offsets(&s0)?;
        let fill_ring: Ring<u64> = Ring::map(&s0, &off.fr, fill, libc::XDP_UMEM_PGOFF_FILL_RING)?;
        let comp_ring: Ring<u64> =
            Ring::map(&s0, &off.cr, comp, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;
        let generic_only = conf.mode == XdpMode::Generic;
        let mut zero_copy = false;
        if !generic_only && bind_xsk(&s0, ifindex, conf.queue, libc::XDP_ZEROCOPY, 0).is_ok() {
            zero_copy = true;
        } else {
            bind_xsk(&s0, ifindex, conf.queue, libc::XDP_COPY, 0)
                .map_err(|e| io::Error::new(e.kind(), format!("{ifname}: AF_XDP bind: {e}")))?;
        }
        let mut socks = vec![(s0, rx0, tx0)];
        for _ in 1..workers {
            let s = xsk_socket()?;
            let (rx, tx) = rx_tx_rings(&s, conf)?;
            bind_xsk(
                &s,
                ifindex,
                conf.queue,
                libc::XDP_SHARED_UMEM,
                socks[0].0.as_raw_fd() as u32,
            )?;
            socks.push((s, rx, tx));
        }
        for (w, (s, _, _)) in socks.iter().enumerate() {
            bpf::map_update(
                xsks.as_raw_fd(),
                &(w as u32).to_ne_bytes(),
                &(s.as_raw_fd() as u32).to_ne_bytes(),
            )?;
        }

        // Frames: half (at most the fill ring) for reception, the rest kept
        // free for transmission.
        let mut pool = Pool {
            fill: fill_ring,
            comp: comp_ring,
            free: Vec::with_capacity(frames as usize),
            reserve: (frames as usize / 2).max(2 * BURST * workers as usize),
        };
        for i in (0..frames as u64).rev() {
            pool.free.push(i * fs as u64);
        }
        let n = (frames as usize - pool.reserve).min(fill as usize);
        let room = pool.fill.free(n as u32) as usize;
        for _ in 0..n.min(room) {
            if let Some(a) = pool.free.pop() {
                pool.fill.push(a);
            }
        }
        pool.fill.submit();

        // Attach last, when every socket is in the map.
        let (link, native) = match conf.mode {
            XdpMode::Native => (
                bpf::link_create_xdp(prog_fd.as_raw_fd(), ifindex, bpf::XDP_FLAGS_DRV_MODE)?,
                true,
            ),
            XdpMode::Generic => (
                bpf::link_create_xdp(prog_fd.as_raw_fd(), ifindex, bpf::XDP_FLAGS_SKB_MODE)?,
                false,
            ),
            XdpMode::Auto => {
                match bpf::link_create_xdp(prog_fd.as_raw_fd(), ifindex, bpf::XDP_FLAGS_DRV_MODE) {
                    Ok(l) => (l, true),
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Err(e),
                    Err(_) => (
                        bpf::link_create_xdp(
                            prog_fd.as_raw_fd(),
                            ifindex,
                            bpf::XDP_FLAGS_SKB_MODE,
                        )?,
                        false,
                    ),
                }
            }
        };
        let shared = Arc::new(Shared {
            link,
            _prog: prog_fd,
            _xsks: xsks,
            addrs,
            pool: Mutex::new(pool),
            umem,
            frame_size: fs as usize,
            frames: frames as usize,
            native,
            zero_copy,
        });
        let queues = socks
            .into_iter()
            .map(|(fd, rx, tx)| {
                let sock = Arc::new(Sock {
                    fd,
                    shared: shared.clone(),
                });
                XdpQueue {
                    rx: XdpRx::new(rx, sock.clone(), conf.port, conf.rx_checksum),
                    tx: XdpTx::new(tx, sock),
                    shared: shared.clone(),
                }
            })
            .collect();
        Ok(XdpPort { shared, queues })
    }

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
    let fd = sh.addrs.as_raw_fd();
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
        queue: 0,
        tail: prog::Tail::ReturnWorker,
    });
    let p = bpf::prog_load_xdp(&insns, "rvs_xdp_test")?;
    frames
        .iter()
        .map(|f| bpf::prog_test_run(p.as_raw_fd(), f))
        .collect()
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
        queue: 0,
        tail: prog::Tail::Redirect {
            xsks: xsks.as_raw_fd(),
        },
    });
    let p = bpf::prog_load_xdp(&insns, prog::PROG_NAME)?;
    bpf::xdp_set_netlink(ifindex, p.as_raw_fd(), false)
}

/// The id of the XDP program attached to `ifname` (0: none), per rtnetlink.
pub fn attached_prog_id(ifname: &str) -> io::Result<u32> {
    Ok(bpf::xdp_query(if_index(ifname)?)?.prog_id)
}

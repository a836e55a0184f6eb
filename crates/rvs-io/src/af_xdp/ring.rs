//! The four AF_XDP rings, the UMEM frame pools, and the two halves of a
//! worker's queue ([`XdpRx`], [`XdpTx`]).
//!
//! Every worker has a socket on every served device queue, all sharing one
//! UMEM. The kernel gives a (device, queue) exactly one buffer pool, hence
//! one fill ring and one completion ring, which the workers' sockets on
//! that queue share; each served queue has its own (registered by its first
//! socket, `XDP_SHARED_UMEM` with own rings, Linux ≥ 5.10) and its own
//! share of the UMEM's frames. Those two rings are single-producer/
//! single-consumer, so each queue's live in a [`Pool`] behind a mutex of its
//! own that a worker takes at most once per burst on each side: a received
//! burst comes from one socket and goes back to that queue's pool, and a
//! worker transmits on its socket on its home queue (worker `w`: served
//! queue `w % queues`, counting only queues the device also has for TX), so
//! with at least as many queues as workers no two workers transmit through
//! one pool. The RX and TX rings are per socket and
//! need no lock.
//!
//! Frame ownership: every UMEM frame is at any time in exactly one place —
//! the fill ring, the kernel (received into some socket's RX ring, or being
//! sent), a worker's burst, a worker's TX cache, or the pool's free list —
//! so the `&mut [u8]` a burst hands out never aliases another.

use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use rvs_core::addr::PortId;
use rvs_core::pipeline::Packet;

use super::csum::{rx_checksum, CsumOutcome};
use super::{RxChecksum, Shared};
use crate::sys::{cvt, getsockopt, Mmap};

/// Most frames in one burst (as the AF_PACKET backend).
pub const BURST: usize = crate::af_packet::BURST;

/// One mapped ring: producer and consumer indices, and `size` entries of
/// `T` (a `u64` UMEM address for fill/completion, an `xdp_desc` for RX/TX).
pub(crate) struct Ring<T> {
    prod: *const AtomicU32,
    cons: *const AtomicU32,
    desc: *mut T,
    mask: u32,
    /// Our copy of the index we advance (producer or consumer).
    local: u32,
    /// The last value read of the index the kernel advances.
    remote: u32,
    role: Role,
    _map: Mmap,
}

/// Which end of a ring this process is: what `local` and `remote` hold.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Fill and TX: `local` is our producer, `remote` the kernel's consumer.
    Producer,
    /// RX and completion: `local` is our consumer, `remote` the kernel's
    /// producer.
    Consumer,
}

// SAFETY: the ring's pointers point into its own mapping, which moves with
// it; the kernel side synchronises through the atomic indices.
unsafe impl<T> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    /// Maps the ring `pgoff` of socket `fd` described by `off` (`size` a
    /// power of two) as its `role` end, with our index and the kernel's read
    /// from the shared page: 0/0 for a fresh ring, wherever another process
    /// (handing the socket over) left them for a live one.
    pub(crate) fn map(
        fd: &OwnedFd,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: u64,
        role: Role,
    ) -> io::Result<Ring<T>> {
        let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: a fresh shared mapping chosen by the kernel (addr NULL) of
        // the ring the socket set up; it aliases no Rust object.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                pgoff as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = Mmap { ptr: p.cast(), len };
        let base = map.ptr;
        let mut r = Ring {
            prod: base.wrapping_add(off.producer as usize).cast(),
            cons: base.wrapping_add(off.consumer as usize).cast(),
            desc: base.wrapping_add(off.desc as usize).cast(),
            mask: size - 1,
            local: 0,
            remote: 0,
            role,
            _map: map,
        };
        r.resync();
        Ok(r)
    }

    /// Re-reads both indices from the shared page: after another process
    /// (the one handing the ring over) moved them since we mapped it.
    pub(crate) fn resync(&mut self) {
        let (prod, cons) = self.indices();
        (self.local, self.remote) = match self.role {
            Role::Producer => (prod, cons),
            Role::Consumer => (cons, prod),
        };
    }

    /// The published (producer, consumer) indices.
    pub(crate) fn indices(&self) -> (u32, u32) {
        (
            self.prod().load(Ordering::Acquire),
            self.cons().load(Ordering::Acquire),
        )
    }

    /// Our own index (producer or consumer, by role) as we last moved it.
    pub(crate) fn local(&self) -> u32 {
        self.local
    }

    /// The entries between the two ends, oldest first: for a producer ring
    /// those we wrote (published or not) that the kernel has not consumed,
    /// for a consumer ring those the kernel published that we did not take.
    /// For accounting the UMEM frames, not for the packet path.
    pub(crate) fn pending(&self) -> Vec<T> {
        let (prod, cons) = self.indices();
        let (from, to) = match self.role {
            Role::Producer => (cons, self.local),
            Role::Consumer => (self.local, prod),
        };
        (0..to.wrapping_sub(from).min(self.size()))
            .map(|i| {
                // SAFETY: the slot index is masked into the ring, inside the
                // mapping; entries are plain data and a stale read is harmless.
                unsafe { self.slot(from.wrapping_add(i)).read_volatile() }
            })
            .collect()
    }

    fn prod(&self) -> &AtomicU32 {
        // SAFETY: the producer index lies inside the mapping (offset given
        // by the kernel), 4-aligned, shared with the kernel: atomics only.
        unsafe { &*self.prod }
    }

    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as `prod`, for the consumer index.
        unsafe { &*self.cons }
    }

    fn size(&self) -> u32 {
        self.mask + 1
    }

    fn slot(&self, i: u32) -> *mut T {
        self.desc.wrapping_add((i & self.mask) as usize)
    }

    // Producer side (fill, TX): `local` is our producer, `remote` the
    // kernel's consumer.

    /// Free entries, re-reading the kernel's consumer when fewer than `want`.
    pub(crate) fn free(&mut self, want: u32) -> u32 {
        let mut n = self.size() - self.local.wrapping_sub(self.remote);
        if n < want {
            self.remote = self.cons().load(Ordering::Acquire);
            n = self.size() - self.local.wrapping_sub(self.remote);
        }
        n
    }

    /// Writes the next entry (the caller checked `free`).
    pub(crate) fn push(&mut self, v: T) {
        // SAFETY: the entry at `local` is free (between the kernel's
        // consumer and our producer, checked by the caller through `free`),
        // inside the mapping, and only we write it until `submit`.
        unsafe { self.slot(self.local).write(v) };
        self.local = self.local.wrapping_add(1);
    }

    /// Publishes the entries pushed so far.
    pub(crate) fn submit(&mut self) {
        // Release: the entries are written before the kernel sees them.
        self.prod().store(self.local, Ordering::Release);
    }

    /// Whether the kernel consumed everything produced.
    pub(crate) fn drained(&mut self) -> bool {
        self.remote = self.cons().load(Ordering::Acquire);
        self.remote == self.local
    }

    // Consumer side (RX, completion): `local` is our consumer, `remote` the
    // kernel's producer.

    /// Entries ready, re-reading the kernel's producer when none are known.
    pub(crate) fn ready(&mut self) -> u32 {
        let mut n = self.remote.wrapping_sub(self.local);
        if n == 0 {
            self.remote = self.prod().load(Ordering::Acquire);
            n = self.remote.wrapping_sub(self.local);
        }
        n
    }

    /// Reads the next entry (the caller checked `ready`).
    pub(crate) fn pop(&mut self) -> T {
        // SAFETY: the entry at `local` was published by the kernel (before
        // its producer, acquired in `ready`) and stays put until `release`.
        let v = unsafe { self.slot(self.local).read() };
        self.local = self.local.wrapping_add(1);
        v
    }

    /// Hands the entries popped so far back to the kernel.
    pub(crate) fn release(&mut self) {
        // Release: our reads of the entries happen before the kernel reuses them.
        self.cons().store(self.local, Ordering::Release);
    }
}

/// The port's fill and completion rings and the frames no one holds.
pub(crate) struct Pool {
    pub(crate) fill: Ring<u64>,
    pub(crate) comp: Ring<u64>,
    pub(crate) free: Vec<u64>,
    /// Frames kept in `free` for transmission rather than moved to the fill
    /// ring.
    pub(crate) reserve: usize,
}

impl Pool {
    /// Moves completed transmissions to the free list.
    fn reap(&mut self) {
        let n = self.comp.ready();
        for _ in 0..n {
            let a = self.comp.pop();
            self.free.push(a);
        }
        if n > 0 {
            self.comp.release();
        }
    }

    /// Gives `frames` back for reception, and tops the fill ring up from the
    /// free list beyond the transmit reserve.
    fn refill(&mut self, frames: &[u64]) {
        self.reap();
        let room = self.fill.free(u32::MAX) as usize;
        let mut pushed = 0;
        for &a in frames {
            if pushed < room {
                self.fill.push(a);
                pushed += 1;
            } else {
                self.free.push(a);
            }
        }
        while pushed < room && self.free.len() > self.reserve {
            if let Some(a) = self.free.pop() {
                self.fill.push(a);
                pushed += 1;
            }
        }
        if pushed > 0 {
            self.fill.submit();
        }
    }
}

/// Counters of the receive half.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct XdpRxStats {
    /// Frames handed out.
    pub packets: u64,
    /// Bytes handed out.
    pub bytes: u64,
    /// Descriptors outside the UMEM (never expected; the frame is skipped).
    pub bad_desc: u64,
    /// TCP/UDP checksums found valid by the `complete` policy.
    pub csum_valid: u64,
    /// Partial checksums completed (`complete` policy).
    pub csum_completed: u64,
    /// Checksums neither valid nor partial (left to the pipeline, which
    /// drops them when it verifies).
    pub csum_bad: u64,
    /// Frames the kernel dropped for this socket (XDP_STATISTICS
    /// rx_dropped: e.g. larger than a UMEM frame).
    pub kernel_drops: u64,
    /// Frames the kernel dropped because this socket's RX ring was full.
    pub kernel_ring_full: u64,
    /// Times the kernel found the (shared) fill ring of a socket's queue
    /// empty.
    pub kernel_fill_empty: u64,
}

/// Counters of the transmit half.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct XdpTxStats {
    /// Frames queued.
    pub packets: u64,
    /// Bytes queued.
    pub bytes: u64,
    /// Frames refused: no free UMEM frame or TX ring entry.
    pub ring_full: u64,
    /// Frames refused because they exceed a UMEM frame.
    pub oversize: u64,
    /// Kicks (`sendto`) that failed other than with EAGAIN/EBUSY/ENOBUFS.
    pub kick_errors: u64,
}

/// A worker's socket on one device queue: both halves hold it.
pub(crate) struct Sock {
    pub(crate) fd: OwnedFd,
    /// Index of its queue among the served ones: its pool in
    /// `Shared::pools`.
    pub(crate) queue: usize,
    /// The device queue it is bound to.
    pub(crate) qid: u32,
    /// Kept after `fd` so the socket closes (leaving the XSKMAP) before the
    /// port state (link, UMEM) can go.
    pub(crate) shared: Arc<Shared>,
}

/// Up to [`BURST`] received frames, in place in the UMEM, borrowed from the
/// [`XdpRx`] until its next `burst`/`release`. Dereferences to the
/// pipeline's `[Packet]`.
pub struct XdpBurst<'a> {
    pkts: [Packet<'a>; BURST],
    n: usize,
}

impl<'a> Deref for XdpBurst<'a> {
    type Target = [Packet<'a>];
    fn deref(&self) -> &[Packet<'a>] {
        &self.pkts[..self.n]
    }
}

impl<'a> DerefMut for XdpBurst<'a> {
    fn deref_mut(&mut self) -> &mut [Packet<'a>] {
        &mut self.pkts[..self.n]
    }
}

/// One socket's RX ring in a worker's receive half.
struct RxSock {
    ring: Ring<libc::xdp_desc>,
    sock: Arc<Sock>,
    packets: u64,
}

/// The receive half of a worker's queue on a port: the RX rings of its
/// sockets, one per served device queue, taken in turn.
pub struct XdpRx {
    socks: Vec<RxSock>,
    /// The socket the next burst looks at first.
    next: usize,
    /// UMEM addresses (frame bases) of the last burst, returned to the fill
    /// ring of `held_queue` by the next `release`/`burst`.
    held: [u64; BURST],
    nheld: usize,
    held_queue: usize,
    port: PortId,
    csum: RxChecksum,
    stats: XdpRxStats,
    /// With several sockets, an epoll descriptor over them, to poll.
    poll: Option<OwnedFd>,
}

impl XdpRx {
    pub(crate) fn new(
        rings: Vec<(Ring<libc::xdp_desc>, Arc<Sock>)>,
        port: PortId,
        csum: RxChecksum,
    ) -> io::Result<XdpRx> {
        let poll = match rings.len() {
            0 => return Err(io::Error::other("a receive half needs a socket")),
            1 => None,
            _ => {
                let fds: Vec<RawFd> = rings.iter().map(|(_, s)| s.fd.as_raw_fd()).collect();
                Some(super::sock::epoll_of(&fds)?)
            }
        };
        Ok(XdpRx {
            socks: rings
                .into_iter()
                .map(|(ring, sock)| RxSock {
                    ring,
                    sock,
                    packets: 0,
                })
                .collect(),
            next: 0,
            held: [0; BURST],
            nheld: 0,
            held_queue: 0,
            port,
            csum,
            stats: XdpRxStats::default(),
            poll,
        })
    }

    /// Returns the frames of the previous burst to the kernel (one lock of
    /// their queue's pool). Taking `&mut self` guarantees none is still
    /// borrowed.
    pub fn release(&mut self) {
        if self.nheld == 0 {
            return;
        }
        let sh = &self.socks[0].sock.shared;
        if let Ok(mut p) = sh.pools[self.held_queue].lock() {
            p.refill(&self.held[..self.nheld]);
        }
        self.nheld = 0;
    }

    /// UMEM frames of this half: (those held by the last burst, the RX
    /// rings' published entries as frame bases).
    pub(crate) fn frames(&self) -> (Vec<u64>, Vec<u64>) {
        let fs = self.socks[0].sock.shared.frame_size as u64;
        let ring = self
            .socks
            .iter()
            .flat_map(|s| s.ring.pending())
            .map(|d| d.addr & !(fs - 1))
            .collect();
        (self.held[..self.nheld].to_vec(), ring)
    }

    /// Re-reads its rings' indices from the shared pages: after another
    /// process (a successor of a hand-over, or the one handing over) moved
    /// them. Holds no frame when called (its last burst released).
    pub fn resync(&mut self) {
        for s in &mut self.socks {
            s.ring.resync();
        }
    }

    /// Whether frames are waiting on any of its sockets.
    pub fn ready(&mut self) -> bool {
        self.socks.iter_mut().any(|s| s.ring.ready() > 0)
    }

    /// Frames received so far on each device queue, as (queue, frames).
    pub fn queue_packets(&self) -> Vec<(u32, u64)> {
        self.socks.iter().map(|s| (s.sock.qid, s.packets)).collect()
    }

    /// Takes up to `max` (at most [`BURST`]) received frames from one of
    /// its sockets (the next one, in turn, that has any), after returning
    /// the previous burst's.
    pub fn burst(&mut self, max: usize) -> XdpBurst<'_> {
        self.release();
        let ns = self.socks.len();
        let mut k = self.next;
        for i in 0..ns {
            k = (self.next + i) % ns;
            if self.socks[k].ring.ready() > 0 {
                break;
            }
        }
        self.next = (k + 1) % ns;
        self.held_queue = self.socks[k].sock.queue;
        let RxSock {
            ring,
            sock,
            packets,
        } = &mut self.socks[k];
        let port = self.port;
        let mut b = XdpBurst {
            pkts: std::array::from_fn(|_| Packet {
                buf: <&mut [u8]>::default(),
                head: 0,
                len: 0,
                port,
                csum_ok: false,
            }),
            n: 0,
        };
        let n = (ring.ready() as usize).min(max.min(BURST));
        if n == 0 {
            return b;
        }
        *packets += n as u64;
        let sh = &sock.shared;
        let fsize = sh.frame_size as u64;
        let total = sh.frame_size as u64 * sh.frames as u64;
        for _ in 0..n {
            let d = ring.pop();
            let base = d.addr & !(fsize - 1);
            let head = (d.addr - base) as usize;
            let len = d.len as usize;
            if base >= total {
                self.stats.bad_desc += 1;
                continue;
            }
            // The frame is ours from here on: return it with the burst.
            self.held[self.nheld] = base;
            self.nheld += 1;
            if head + len > sh.frame_size {
                self.stats.bad_desc += 1;
                continue;
            }
            // SAFETY: [base, base + frame_size) lies inside the UMEM
            // (checked above) and the kernel handed this frame to our RX
            // ring alone: no other worker, ring or burst refers to it until
            // we return it (next release, which needs &mut self, so after
            // this burst's borrow ended).
            let buf: &mut [u8] = unsafe {
                std::slice::from_raw_parts_mut(sh.umem.ptr.add(base as usize), sh.frame_size)
            };
            let csum_ok = match self.csum {
                RxChecksum::Trust => true,
                RxChecksum::Verify => false,
                RxChecksum::Complete => match rx_checksum(&mut buf[head..head + len]) {
                    CsumOutcome::Valid => {
                        self.stats.csum_valid += 1;
                        true
                    }
                    CsumOutcome::Completed => {
                        self.stats.csum_completed += 1;
                        true
                    }
                    CsumOutcome::Bad => {
                        self.stats.csum_bad += 1;
                        false
                    }
                    CsumOutcome::NotTcpUdp => false,
                },
            };
            self.stats.packets += 1;
            self.stats.bytes += len as u64;
            b.pkts[b.n] = Packet {
                buf,
                head,
                len,
                port,
                csum_ok,
            };
            b.n += 1;
        }
        ring.release();
        b
    }

    /// Counters, with the kernel's per-socket counters (which it keeps as
    /// totals) read in and summed over its sockets.
    pub fn stats(&mut self) -> XdpRxStats {
        let mut sum = XdpKernelStats::default();
        for s in &self.socks {
            if let Ok(k) = getsockopt::<XdpKernelStats>(
                s.sock.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
            ) {
                for (t, v) in sum.0.iter_mut().zip(k.0) {
                    *t += v;
                }
            }
        }
        self.stats.kernel_drops = sum.0[0];
        self.stats.kernel_ring_full = sum.0[3];
        self.stats.kernel_fill_empty = sum.0[4];
        self.stats
    }

    /// The descriptor to poll(2) for received frames: the socket, or with
    /// several sockets an epoll descriptor over them.
    pub fn fd(&self) -> RawFd {
        match &self.poll {
            Some(ep) => ep.as_raw_fd(),
            None => self.socks[0].sock.fd.as_raw_fd(),
        }
    }
}

/// `struct xdp_statistics` as six u64.
#[derive(Copy, Clone, Default)]
struct XdpKernelStats([u64; 6]);

/// The transmit half of a worker's queue: the TX ring of its socket on its
/// home queue, and a small cache of free UMEM frames (of that queue's pool)
/// to copy frames into.
pub struct XdpTx {
    ring: Ring<libc::xdp_desc>,
    cache: Vec<u64>,
    pending: u32,
    stats: XdpTxStats,
    sock: Arc<Sock>,
}

/// How many free frames a TX half takes from the pool at once.
const TX_BATCH: usize = 2 * BURST;

impl XdpTx {
    pub(crate) fn new(ring: Ring<libc::xdp_desc>, sock: Arc<Sock>) -> XdpTx {
        XdpTx {
            ring,
            cache: Vec::with_capacity(TX_BATCH),
            pending: 0,
            stats: XdpTxStats::default(),
            sock,
        }
    }

    fn take_frames(&mut self) {
        if let Ok(mut p) = self.sock.shared.pools[self.sock.queue].lock() {
            p.reap();
            while self.cache.len() < TX_BATCH {
                match p.free.pop() {
                    Some(a) => self.cache.push(a),
                    None => break,
                }
            }
        }
    }

    /// Copies `frame` into a free UMEM frame and queues it on the TX ring;
    /// false (counted) when no frame or ring entry is free or the frame is
    /// larger than a UMEM frame.
    pub fn send(&mut self, frame: &[u8]) -> bool {
        if frame.len() > self.sock.shared.frame_size {
            self.stats.oversize += 1;
            return false;
        }
        if self.ring.free(1) == 0 {
            self.stats.ring_full += 1;
            return false;
        }
        if self.cache.is_empty() {
            self.take_frames();
        }
        let Some(addr) = self.cache.pop() else {
            self.stats.ring_full += 1;
            return false;
        };
        // SAFETY: `addr` is a free frame (from the pool's free list, held by
        // this TX half alone) inside the UMEM, frame_size bytes long, and the
        // frame fits it (checked above).
        unsafe {
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                self.sock.shared.umem.ptr.add(addr as usize),
                frame.len(),
            );
        }
        self.ring.push(libc::xdp_desc {
            addr,
            len: frame.len() as u32,
            options: 0,
        });
        self.pending += 1;
        self.stats.packets += 1;
        self.stats.bytes += frame.len() as u64;
        true
    }

    /// Publishes the queued frames and kicks the kernel to send them. In
    /// copy mode one kick sends at most 32 frames, so it kicks until the
    /// kernel took everything (or says it is busy).
    pub fn flush(&mut self) {
        // Frames left by a kick the kernel refused are kicked again.
        if self.pending == 0 && self.ring.drained() {
            return;
        }
        self.ring.submit();
        let kicks = self.pending.div_ceil(32) + 1;
        self.pending = 0;
        for _ in 0..kicks {
            // SAFETY: no buffer, no address: the kernel reads the TX ring only.
            let r = unsafe {
                libc::sendto(
                    self.sock.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            if let Err(e) = cvt(r as libc::c_int) {
                match e.raw_os_error() {
                    // Copy mode sends a batch per call and says EAGAIN
                    // when more is queued: kick again.
                    Some(libc::EAGAIN) => continue,
                    // Busy or out of buffers: the next flush kicks again.
                    Some(libc::EBUSY) | Some(libc::ENOBUFS) => {}
                    _ => self.stats.kick_errors += 1,
                }
                break;
            }
            if self.ring.drained() {
                break;
            }
        }
    }

    /// Stops transmitting for a hand-over: publishes and kicks what is
    /// queued and gives its cache of free frames back to the pool, so the
    /// port's [`freeze`](super::XdpPort::freeze) sees every frame. Sending
    /// afterwards works (it takes frames again) but must not happen once the
    /// port is frozen.
    pub fn freeze(&mut self) {
        self.flush();
        if let Ok(mut p) = self.sock.shared.pools[self.sock.queue].lock() {
            p.free.append(&mut self.cache);
        }
    }

    /// UMEM frames of this half: (its cache of free frames, the TX ring's
    /// published entries).
    pub(crate) fn frames(&self) -> (Vec<u64>, Vec<u64>) {
        let ring = self.ring.pending().iter().map(|d| d.addr).collect();
        (self.cache.clone(), ring)
    }

    /// Re-reads its ring's indices from the shared pages (see
    /// [`XdpRx::resync`]); frames queued and not flushed are forgotten.
    pub fn resync(&mut self) {
        self.pending = 0;
        self.ring.resync();
    }

    /// Counters so far.
    pub fn stats(&self) -> XdpTxStats {
        self.stats
    }

    /// The socket.
    pub fn fd(&self) -> RawFd {
        self.sock.fd.as_raw_fd()
    }

    /// The device queue it transmits on (its worker's home queue).
    pub fn queue(&self) -> u32 {
        self.sock.qid
    }
}

impl Drop for XdpTx {
    fn drop(&mut self) {
        if let Ok(mut p) = self.sock.shared.pools[self.sock.queue].lock() {
            p.free.append(&mut self.cache);
        }
    }
}

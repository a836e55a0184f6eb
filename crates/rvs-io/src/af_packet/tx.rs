//! The transmit half: a TPACKET_V2 TX ring on a socket of its own.
//!
//! Why V2 and a second socket rather than the V3 TX ring of the receive
//! socket: transmitted frames are at most MTU-sized, so V3's variable-size
//! blocks buy nothing on this side, while V2 TX is the long-standing, simplest
//! path (V3 TX only exists since 4.11 and requires fixed slots anyway). A
//! separate socket bound with protocol 0 receives nothing, needs no vnet
//! header in front of every frame, and above all makes the TX ring an object
//! of its own: a worker can hold the frames of an RX burst borrowed while it
//! transmits them out of the same port (one-arm FNAT) or another one.
//!
//! Every slot starts with a virtio-net header (PACKET_VNET_HDR) whose
//! `hdr_len` is the whole frame: the kernel then copies the frame into the
//! socket buffer's linear area. Without it the kernel copies only the
//! Ethernet header and attaches the rest as a page of the ring marked
//! zero-copy, and a veth (or any delivery into a local stack) has to copy
//! that page into a freshly allocated one (`skb_copy_ubufs`) before the
//! peer may see it: a page allocation per frame, a tenth of an overloaded
//! worker's time. A physical NIC would have sent the page without a copy,
//! but for the frames a load balancer sends (headers and at most an MTU)
//! the linear copy is small and never allocates.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::offload::VNET_HDR_LEN;
use crate::sys::{bind_packet, cvt, setsockopt, socket, Mmap};

/// Offset of the slot's data (the virtio-net header, then the frame) in a
/// V2 slot when PACKET_TX_HAS_OFF is off: `TPACKET2_HDRLEN - sizeof(sockaddr_ll)`.
const DATA_OFF: usize = 32;

/// Offset of the frame in a slot.
const FRAME_OFF: usize = DATA_OFF + VNET_HDR_LEN;

/// Counters of the transmit half.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TxStats {
    /// Frames queued into the ring.
    pub packets: u64,
    /// Bytes queued into the ring.
    pub bytes: u64,
    /// Frames refused because no slot was free.
    pub ring_full: u64,
    /// Frames refused because they exceed a slot.
    pub oversize: u64,
    /// Kicks (`sendto`) that failed, e.g. the link is down; the frames stay
    /// queued for the next kick.
    pub kick_errors: u64,
}

/// A TPACKET_V2 TX ring bound to one interface.
pub struct TxRing {
    // Unmapped before the socket closes (fields drop in order).
    map: Mmap,
    fd: OwnedFd,
    frame_size: usize,
    frames: usize,
    next: usize,
    pending: usize,
    stats: TxStats,
}

// SAFETY: the mapping pointer is owned by the ring alone (no other Rust
// reference into it exists), so moving the ring to a worker thread moves
// sole ownership; the kernel side synchronises through the status words.
unsafe impl Send for TxRing {}

impl TxRing {
    /// Opens the ring: `frames` slots of `frame_size` bytes (a multiple of
    /// 16 that, with the 42 bytes of slot and virtio-net headers, holds an
    /// MTU-sized frame).
    pub fn open(ifindex: u32, frame_size: u32, frames: u32) -> io::Result<TxRing> {
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, 0)?;
        setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V2 as libc::c_int),
        )?;
        // Frames go straight to the driver: rvs does its own queueing, and
        // the qdisc layer would only add a lock and a copy of the decision.
        setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &1 as &libc::c_int,
        )?;
        // A malformed slot is skipped instead of stalling the whole ring.
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_LOSS, &1 as &libc::c_int)?;
        // A virtio-net header in every slot, to make the frame linear (see
        // the module doc); only settable before the ring exists.
        setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_VNET_HDR,
            &1 as &libc::c_int,
        )?;
        // Every frame in flight (handed to the driver, not yet freed: on a
        // veth, until the peer's backlog has processed it) is charged to the
        // socket's send buffer. With the default buffer (wmem_default, about
        // 200 KiB, a few hundred small frames) that limit is hit before the
        // ring is full, and then the kernel fails the send with EAGAIN, marks
        // the slot available without sending it and stops its head on that
        // slot: nothing more leaves until the ring wraps around to it, so the
        // ring fills and frames are dropped at a fraction of the rate. Size
        // the buffer for the whole ring so that the ring is the only limit.
        let sndbuf = (u64::from(frames) * (u64::from(frame_size) + 1024)).min(i32::MAX as u64)
            as libc::c_int;
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &sndbuf).is_err() {
            // Without CAP_NET_ADMIN: as much as net.core.wmem_max allows.
            let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &sndbuf);
        }
        let page = 4096u32;
        let block = frame_size.max(page).next_multiple_of(page);
        let per_block = block / frame_size.max(1);
        if frame_size < 64 + FRAME_OFF as u32
            || !frame_size.is_multiple_of(16)
            || per_block == 0
            || frames == 0
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad tx ring geometry",
            ));
        }
        let blocks = frames.div_ceil(per_block);
        let req = libc::tpacket_req {
            tp_block_size: block,
            tp_block_nr: blocks,
            tp_frame_size: frame_size,
            tp_frame_nr: blocks * per_block,
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_TX_RING, &req)?;
        let map = Mmap::ring(&fd, (block as usize) * (blocks as usize))?;
        bind_packet(&fd, ifindex, 0)?;
        Ok(TxRing {
            map,
            fd,
            frame_size: frame_size as usize,
            frames: (blocks * per_block) as usize,
            next: 0,
            pending: 0,
            stats: TxStats::default(),
        })
    }

    fn slot(&self, i: usize) -> *mut u8 {
        // Slots never straddle a block (block is a multiple of frame_size),
        // so slot i is at i * frame_size in the contiguous mapping.
        self.map.ptr.wrapping_add(i * self.frame_size)
    }

    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: slot i lies inside the mapping, is 16-aligned (page-aligned
        // mapping, frame_size multiple of 16), and its first word is the
        // status the kernel updates concurrently, hence accessed atomically.
        unsafe { AtomicU32::from_ptr(self.slot(i).cast()) }
    }

    /// Copies `frame` into the next free slot; false when the ring is full
    /// or the frame is larger than a slot (both counted).
    pub fn send(&mut self, frame: &[u8]) -> bool {
        if frame.len() > self.max_frame() {
            self.stats.oversize += 1;
            return false;
        }
        let i = self.next;
        let st = self.status(i).load(Ordering::Acquire);
        if st != libc::TP_STATUS_AVAILABLE && st != libc::TP_STATUS_WRONG_FORMAT {
            self.stats.ring_full += 1;
            return false;
        }
        let p = self.slot(i);
        let len = (VNET_HDR_LEN + frame.len()) as u32;
        // virtio_net_hdr: no offload, no checksum to complete, and the whole
        // frame as `hdr_len` (native byte order: the kernel reads it as
        // little-endian on little-endian hosts, and legacy virtio headers on
        // big-endian hosts are big-endian); at most a slot, so it fits 16 bits.
        let mut vnet = [0u8; VNET_HDR_LEN];
        vnet[2..4].copy_from_slice(&(frame.len() as u16).to_ne_bytes());
        // SAFETY: the slot is ours (status AVAILABLE: the kernel neither reads
        // nor writes it until we set SEND_REQUEST below); header, data and
        // the two length words lie within the slot as checked above.
        unsafe {
            std::ptr::copy_nonoverlapping(vnet.as_ptr(), p.add(DATA_OFF), VNET_HDR_LEN);
            std::ptr::copy_nonoverlapping(frame.as_ptr(), p.add(FRAME_OFF), frame.len());
            p.add(4).cast::<u32>().write(len); // tp_len
            p.add(8).cast::<u32>().write(len); // tp_snaplen
        }
        // Release: the data and lengths are visible before the kernel sees
        // the request.
        self.status(i)
            .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.next = if i + 1 == self.frames { 0 } else { i + 1 };
        self.pending += 1;
        self.stats.packets += 1;
        self.stats.bytes += frame.len() as u64;
        true
    }

    /// Kicks the kernel to send everything queued: one syscall per burst.
    pub fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        self.pending = 0;
        // SAFETY: a NULL buffer of length 0 and no address: the kernel reads
        // nothing from user memory besides the (shared) ring itself.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if cvt(r as libc::c_int).is_err() {
            self.stats.kick_errors += 1;
        }
    }

    /// Slots in the ring.
    pub fn capacity(&self) -> usize {
        self.frames
    }

    /// The largest frame a slot holds.
    pub fn max_frame(&self) -> usize {
        (self.frame_size - FRAME_OFF).min(usize::from(u16::MAX))
    }

    /// Counters so far.
    pub fn stats(&self) -> TxStats {
        self.stats
    }

    /// The descriptor (polled for POLLOUT when the ring is full, if wanted).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

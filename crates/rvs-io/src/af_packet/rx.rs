//! The receive half: a TPACKET_V2 or TPACKET_V3 RX ring whose frames are
//! handed to the pipeline in place.
//!
//! **V2** (the default, [`RxRingKind::V2`](super::RxRingKind)): fixed-size
//! slots, each with its own status word. The kernel marks a slot ready as
//! soon as it copied the frame into it and wakes the poller, so a frame is
//! visible the moment it arrives: no timer is involved, and the added latency
//! at low load is nil. A frame larger than a slot (a GSO super-frame from a
//! peer with TSO, up to 64 KiB) is stored truncated, flagged
//! `TP_STATUS_COPY`, and kept whole in the socket's receive queue
//! (PACKET_COPY_THRESH); when the cursor reaches that slot, the frame is read
//! with recvfrom(2) into a per-ring buffer and segmented from there, and the
//! truncated slot is returned to the kernel in ring order like any other.
//! The kernel queues the copy before it marks the slot, both in ring order
//! and under the queue's lock, so the n-th `COPY` slot is the n-th queued
//! frame; the whole length recvfrom reports is checked against the slot's
//! `tp_len` all the same.
//!
//! **V3**: the kernel fills 1 MiB-class blocks with variable-size frames and
//! hands a whole block over at once (when full or when the retire timer
//! fires, in milliseconds rounded up to the scheduler tick): fewer wake-ups
//! at high packet rates, but at low and moderate rates every frame waits for
//! the timer. A super-frame fits a block whole.
//!
//! Either way a burst borrows up to [`BURST`] frames as disjoint `&mut [u8]`
//! slices of the mapping (each frame's headroom, frame and tailroom up to the
//! end of its slot, or to the next frame); the slots or blocks they came from
//! go back to the kernel on the next [`RxRing::release`] or
//! [`RxRing::burst`], which take `&mut self` and so cannot run while any
//! slice of the previous burst is alive.
//!
//! GSO super-frames are cut into segments written to per-ring scratch slots
//! (one per burst entry), the super-frame staying where it is (ring or copy
//! buffer) until its last segment was handed out, possibly over several
//! bursts.

use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use rvs_core::addr::PortId;
use rvs_core::pipeline::Packet;

use crate::offload::{complete_csum, Gso, GsoError, VnetHdr, VNET_HDR_LEN};
use crate::sys::{getsockopt, Mmap};

/// Most frames in one burst (the pipeline's lookup batch).
pub const BURST: usize = 32;

/// `TPACKET_ALIGN(sizeof(tpacket3_hdr)) + sizeof(sockaddr_ll)`: where a V3
/// frame's usable buffer starts. Everything from there to the MAC header
/// (PACKET_RESERVE, alignment, the vnet header once read) is headroom.
const HDR3: usize = 68;

/// `TPACKET_ALIGN(sizeof(tpacket2_hdr)) + sizeof(sockaddr_ll)`: the same for
/// a V2 slot.
pub(crate) const HDR2: usize = 52;

/// Largest frame read with recvfrom for a `TP_STATUS_COPY` slot: a 64 KiB
/// GSO super-frame (IPv4 total length is 16 bits) plus Ethernet and two
/// VLAN tags.
const COPY_MAX: usize = 65535 + 14 + 8;

/// Room before the vnet header in the copy buffer, so a VLAN tag can be put
/// back in front of the frame.
const COPY_HEAD: usize = 16;

/// Counters of the receive half.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RxStats {
    /// Frames handed out (each GSO segment counts).
    pub packets: u64,
    /// Bytes handed out.
    pub bytes: u64,
    /// Frames the kernel dropped because the ring was full (tp_drops).
    pub kernel_drops: u64,
    /// Times the kernel found every block in use (tp_freeze_q_cnt; V3 only).
    pub kernel_freezes: u64,
    /// Frames dropped because the ring could not hold them whole: larger than
    /// a V3 block, or larger than a V2 slot with no whole copy kept (or the
    /// copy not a GSO super-frame: nothing larger than the MTU is passed on).
    pub truncated: u64,
    /// Frames larger than a V2 slot read whole with recvfrom (TP_STATUS_COPY).
    pub copied: u64,
    /// Frames whose ring header was inconsistent (V3: the rest of the block
    /// is skipped; V2: the slot is skipped).
    pub bad_desc: u64,
    /// GSO super-frames segmented.
    pub gso_frames: u64,
    /// Segments produced from them.
    pub gso_segments: u64,
    /// GSO super-frames dropped (unsupported type, malformed, or a segment
    /// larger than a scratch slot).
    pub gso_dropped: u64,
    /// Partial checksums completed.
    pub csum_completed: u64,
    /// Partial checksums that could not be located (frame passed on with
    /// `csum_ok = false`).
    pub csum_failed: u64,
}

/// Up to [`BURST`] received frames, borrowed from the ring until the next
/// `release`/`burst`. Dereferences to the pipeline's `[Packet]`, ready for
/// `Worker::process_burst`.
pub struct RxBurst<'a> {
    pkts: [Packet<'a>; BURST],
    n: usize,
}

impl<'a> Deref for RxBurst<'a> {
    type Target = [Packet<'a>];
    fn deref(&self) -> &[Packet<'a>] {
        &self.pkts[..self.n]
    }
}

impl<'a> DerefMut for RxBurst<'a> {
    fn deref_mut(&mut self) -> &mut [Packet<'a>] {
        &mut self.pkts[..self.n]
    }
}

/// A super-frame being segmented: where it lives (its ring slot or block,
/// or the copy buffer).
pub(super) struct GsoFrame {
    gso: Gso,
    pub(super) frame: *const u8,
    len: usize,
}

#[repr(C)]
#[derive(Copy, Clone, Default)]
struct KernelStats {
    packets: u32,
    drops: u32,
    freezes: u32,
}

/// Cursor of a V3 ring.
pub(super) struct V3 {
    pub(super) block_size: usize,
    pub(super) blocks: usize,
    /// Block being read, or next to be opened.
    pub(super) cur: usize,
    pub(super) open: bool,
    /// Frames left in `cur`, offset of the current one and its
    /// `tp_next_offset` (when `open`).
    pub(super) left: u32,
    pub(super) off: usize,
    pub(super) next: usize,
    /// Consumed blocks, just before `cur`, not yet returned to the kernel.
    pub(super) unreleased: usize,
}

/// Cursor of a V2 ring, and its buffer for frames read with recvfrom.
pub(super) struct V2 {
    pub(super) block_size: usize,
    pub(super) per_block: usize,
    pub(super) frame_size: usize,
    pub(super) frames: usize,
    /// Slot to read next.
    pub(super) cur: usize,
    /// Consumed slots, just before `cur`, not yet returned to the kernel.
    pub(super) unreleased: usize,
    /// `COPY_HEAD + VNET_HDR_LEN + COPY_MAX` bytes; never reallocated, so
    /// `copy_ptr` stays valid.
    _copy: Vec<u8>,
    copy_ptr: *mut u8,
}

pub(super) enum Layout {
    V2(V2),
    V3(V3),
}

/// Where a frame is and what the ring header says of it, for [`RxRing::prepare`].
struct FrameInfo {
    /// Offset of the MAC header in the buffer passed along.
    head: usize,
    /// Bytes of the frame present.
    len: usize,
    /// Its length on the wire (`tp_len`).
    wire_len: usize,
    status: u32,
    tci: u16,
    tpid: u16,
    /// The buffer is ring memory that can be handed out (false: the copy
    /// buffer, only segmented from).
    in_place: bool,
}

/// A TPACKET_V2 or V3 RX ring (see the module doc).
pub struct RxRing {
    // Unmapped before the socket closes (fields drop in order).
    pub(super) map: Mmap,
    pub(super) fd: OwnedFd,
    pub(super) port: PortId,
    pub(super) layout: Layout,
    pub(super) gso: Option<GsoFrame>,
    /// Scratch slots for segments, one per burst entry; never reallocated
    /// after `open`, so `scratch_ptr` stays valid.
    _scratch: Vec<u8>,
    scratch_ptr: *mut u8,
    slot_size: usize,
    pub(super) slot_head: usize,
    pub(super) seg_max: usize,
    stats: RxStats,
}

// SAFETY: the raw pointers point into memory the ring owns (its mapping,
// scratch and copy vectors); nothing is shared with other threads, so moving
// the ring to another thread (a worker) moves sole ownership.
unsafe impl Send for RxRing {}

impl RxRing {
    fn with_layout(
        fd: OwnedFd,
        map: Mmap,
        port: PortId,
        layout: Layout,
        seg_max: usize,
        headroom: usize,
    ) -> RxRing {
        let slot_size = (headroom + seg_max + 64).next_multiple_of(64);
        let mut scratch = vec![0u8; slot_size * BURST];
        let scratch_ptr = scratch.as_mut_ptr();
        RxRing {
            map,
            fd,
            port,
            layout,
            gso: None,
            _scratch: scratch,
            scratch_ptr,
            slot_size,
            slot_head: headroom,
            seg_max,
            stats: RxStats::default(),
        }
    }

    /// Wraps a socket whose V3 RX ring (`blocks` × `block_size`) is mapped
    /// at `map`; `seg_max` is the largest segment produced from GSO frames
    /// and `headroom` the room left before each segment.
    pub(crate) fn new_v3(
        fd: OwnedFd,
        map: Mmap,
        port: PortId,
        block_size: usize,
        blocks: usize,
        seg_max: usize,
        headroom: usize,
    ) -> RxRing {
        let layout = Layout::V3(V3 {
            block_size,
            blocks,
            cur: 0,
            open: false,
            left: 0,
            off: 0,
            next: 0,
            unreleased: 0,
        });
        RxRing::with_layout(fd, map, port, layout, seg_max, headroom)
    }

    /// Wraps a socket whose V2 RX ring (`blocks` × `block_size`, slots of
    /// `frame_size` that never straddle a block) is mapped at `map`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_v2(
        fd: OwnedFd,
        map: Mmap,
        port: PortId,
        block_size: usize,
        blocks: usize,
        frame_size: usize,
        seg_max: usize,
        headroom: usize,
    ) -> RxRing {
        let per_block = block_size / frame_size;
        let mut copy = vec![0u8; COPY_HEAD + VNET_HDR_LEN + COPY_MAX];
        let copy_ptr = copy.as_mut_ptr();
        let layout = Layout::V2(V2 {
            block_size,
            per_block,
            frame_size,
            frames: per_block * blocks,
            cur: 0,
            unreleased: 0,
            _copy: copy,
            copy_ptr,
        });
        RxRing::with_layout(fd, map, port, layout, seg_max, headroom)
    }

    /// Which kind of ring this is.
    pub fn kind(&self) -> super::RxRingKind {
        match self.layout {
            Layout::V2(_) => super::RxRingKind::V2,
            Layout::V3(_) => super::RxRingKind::V3,
        }
    }

    /// Start of V3 block `i`.
    pub(super) fn block(&self, i: usize) -> *mut u8 {
        let bs = match &self.layout {
            Layout::V3(s) => s.block_size,
            Layout::V2(s) => s.block_size,
        };
        self.map.ptr.wrapping_add(i * bs)
    }

    /// Start of V2 slot `i`.
    pub(super) fn slot(&self, s: &V2, i: usize) -> *mut u8 {
        self.map
            .ptr
            .wrapping_add((i / s.per_block) * s.block_size + (i % s.per_block) * s.frame_size)
    }

    /// The status word at `p`: a V3 block's (offset 8 of its descriptor) or
    /// a V2 slot's (offset 0).
    pub(super) fn status_at(&self, p: *mut u8) -> &AtomicU32 {
        // SAFETY: callers pass a 4-aligned address inside the mapping (block
        // and slot starts are 16-aligned), which lives as long as `self`.
        // The kernel writes the word concurrently, hence only atomic access.
        unsafe { AtomicU32::from_ptr(p.cast()) }
    }

    /// Returns the blocks or slots every frame of which was handed out to the
    /// kernel, in ring order. Taking `&mut self` guarantees no frame of an
    /// earlier burst is alive.
    pub fn release(&mut self) {
        match &self.layout {
            Layout::V3(s) => {
                for k in (1..=s.unreleased).rev() {
                    let b = (s.cur + s.blocks - k) % s.blocks;
                    // Release: our writes into the block's frames happen
                    // before the kernel may reuse it.
                    self.status_at(self.block(b).wrapping_add(8))
                        .store(libc::TP_STATUS_KERNEL, Ordering::Release);
                }
            }
            Layout::V2(s) => {
                for k in (1..=s.unreleased).rev() {
                    let i = (s.cur + s.frames - k) % s.frames;
                    self.status_at(self.slot(s, i))
                        .store(libc::TP_STATUS_KERNEL, Ordering::Release);
                }
            }
        }
        match &mut self.layout {
            Layout::V3(s) => s.unreleased = 0,
            Layout::V2(s) => s.unreleased = 0,
        }
    }

    /// Whether a frame is ready without waiting.
    pub fn ready(&self) -> bool {
        if self.gso.is_some() {
            return true;
        }
        match &self.layout {
            Layout::V3(s) => {
                s.open
                    || (s.unreleased < s.blocks
                        && self
                            .status_at(self.block(s.cur).wrapping_add(8))
                            .load(Ordering::Acquire)
                            & libc::TP_STATUS_USER
                            != 0)
            }
            Layout::V2(s) => {
                s.unreleased < s.frames
                    && self.status_at(self.slot(s, s.cur)).load(Ordering::Acquire)
                        & libc::TP_STATUS_USER
                        != 0
            }
        }
    }

    pub(super) fn close_block(&mut self) {
        if let Layout::V3(s) = &mut self.layout {
            s.open = false;
            s.unreleased += 1;
            s.cur = (s.cur + 1) % s.blocks;
        }
    }

    /// Steps past the current frame (it stays unreleased until the next
    /// `release`).
    pub(super) fn advance(&mut self) {
        match &mut self.layout {
            Layout::V3(s) => {
                s.left = s.left.saturating_sub(1);
                s.off += s.next;
                if s.left == 0 {
                    self.close_block();
                }
            }
            Layout::V2(s) => {
                s.cur = if s.cur + 1 == s.frames { 0 } else { s.cur + 1 };
                s.unreleased += 1;
            }
        }
    }

    /// Opens V3 block `cur` if the kernel handed it over; false if not.
    pub(super) fn open_block(&mut self) -> bool {
        let Layout::V3(s) = &self.layout else {
            return false;
        };
        // Every block is consumed but unreturned: `cur` is one of them.
        if s.unreleased >= s.blocks {
            return false;
        }
        let (cur, block_size) = (s.cur, s.block_size);
        let b = self.block(cur);
        let st = self.status_at(b.wrapping_add(8)).load(Ordering::Acquire);
        if st & libc::TP_STATUS_USER == 0 {
            return false;
        }
        // SAFETY: the block is ours (status USER, acquired above); the
        // descriptor words at 12 and 16 lie in its first 48 bytes.
        let (num, first) = unsafe {
            (
                b.add(12).cast::<u32>().read(),
                b.add(16).cast::<u32>().read(),
            )
        };
        let bad = num != 0 && first as usize >= block_size;
        if let Layout::V3(s) = &mut self.layout {
            s.open = true;
            s.left = num;
            s.off = first as usize;
        }
        if num == 0 || bad {
            if bad {
                self.stats.bad_desc += 1;
            }
            self.close_block();
        }
        true
    }

    /// Takes up to `max` (at most [`BURST`]) frames. Releases the previous
    /// burst's slots or blocks first.
    pub fn burst(&mut self, max: usize) -> RxBurst<'_> {
        self.release();
        let port = self.port;
        let mut b = RxBurst {
            pkts: std::array::from_fn(|_| Packet {
                buf: <&mut [u8]>::default(),
                head: 0,
                len: 0,
                port,
                csum_ok: false,
            }),
            n: 0,
        };
        let max = max.min(BURST);
        while b.n < max {
            if self.gso.is_some() {
                self.next_segment(&mut b);
                continue;
            }
            let more = match self.layout {
                Layout::V3(ref s) => {
                    if s.open || self.open_block() {
                        self.next_frame_v3(&mut b);
                        true
                    } else {
                        false
                    }
                }
                Layout::V2(_) => self.next_frame_v2(&mut b),
            };
            if !more {
                break;
            }
        }
        b
    }

    /// Hands out the next segment of the pending super-frame into slot `b.n`.
    fn next_segment<'a>(&mut self, b: &mut RxBurst<'a>) {
        let Some(g) = self.gso.as_mut() else { return };
        // SAFETY: the super-frame lies in a slot or block we own and have not
        // released (its frame is not consumed until the last segment), or in
        // the copy buffer, which is not written again before the last
        // segment; no mutable slice of it was handed out.
        let frame = unsafe { std::slice::from_raw_parts(g.frame, g.len) };
        // SAFETY: slot b.n is inside the scratch vector (BURST slots of
        // slot_size bytes) and no other live slice covers it: each burst
        // entry uses its own slot, and earlier bursts ended (&mut self).
        let slot: &'a mut [u8] = unsafe {
            std::slice::from_raw_parts_mut(
                self.scratch_ptr.add(b.n * self.slot_size),
                self.slot_size,
            )
        };
        let head = self.slot_head;
        match g.gso.next_segment(frame, &mut slot[head..]) {
            Some(len) => {
                self.stats.gso_segments += 1;
                self.stats.packets += 1;
                self.stats.bytes += len as u64;
                b.pkts[b.n] = Packet {
                    buf: slot,
                    head,
                    len,
                    port: self.port,
                    csum_ok: true,
                };
                b.n += 1;
            }
            // Cannot happen for a frame `plan` accepted (segments fit a
            // slot by construction), but never spin on it.
            None => {
                self.stats.gso_dropped += 1;
                self.gso = None;
                self.advance();
                return;
            }
        }
        if g.gso.done() {
            self.gso = None;
            self.advance();
        }
    }

    /// Processes the frame at the cursor of the open V3 block.
    fn next_frame_v3<'a>(&mut self, b: &mut RxBurst<'a>) {
        let Layout::V3(s) = &self.layout else { return };
        let (cur, off, left, block_size) = (s.cur, s.off, s.left, s.block_size);
        let fp = self.block(cur).wrapping_add(off);
        // The header must fit in the block before it can be read.
        if off + HDR3 > block_size {
            self.stats.bad_desc += 1;
            self.skip_block();
            return;
        }
        // SAFETY: the frame header lies inside the open block (checked just
        // above), which we own; read_unaligned copies it out.
        let h = unsafe { fp.cast::<libc::tpacket3_hdr>().read_unaligned() };
        let next = h.tp_next_offset as usize;
        let region = if next != 0 { next } else { block_size - off };
        let mac = h.tp_mac as usize;
        let snap = h.tp_snaplen as usize;
        let ok = off + region <= block_size
            && (next != 0 || left == 1)
            && region >= HDR3
            && mac >= HDR3 + VNET_HDR_LEN + 4
            && mac + snap <= region;
        if !ok {
            self.stats.bad_desc += 1;
            self.skip_block();
            return;
        }
        if let Layout::V3(s) = &mut self.layout {
            s.next = next;
        }
        // SAFETY: [fp + HDR3, fp + region) is inside the open block we own,
        // disjoint from every other frame's range (frames follow each other
        // at next_offset) and from the block descriptor; no other slice of it
        // exists, the previous bursts having ended (&mut self).
        let buf: &'a mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(fp.add(HDR3), region - HDR3) };
        let info = FrameInfo {
            head: mac - HDR3,
            len: snap,
            wire_len: h.tp_len as usize,
            status: h.tp_status,
            tci: h.hv1.tp_vlan_tci as u16,
            tpid: h.hv1.tp_vlan_tpid,
            in_place: true,
        };
        self.deliver(b, buf, fp.wrapping_add(HDR3), info);
    }

    /// Gives up on the rest of the open V3 block.
    fn skip_block(&mut self) {
        if let Layout::V3(s) = &mut self.layout {
            s.left = 0;
        }
        self.close_block();
    }

    /// Processes the V2 slot at the cursor; false when it is not ready.
    fn next_frame_v2<'a>(&mut self, b: &mut RxBurst<'a>) -> bool {
        let Layout::V2(s) = &self.layout else {
            return false;
        };
        // Every slot is consumed but unreturned: `cur` is one of them.
        if s.unreleased >= s.frames {
            return false;
        }
        let frame_size = s.frame_size;
        let fp = self.slot(s, s.cur);
        let st = self.status_at(fp).load(Ordering::Acquire);
        if st & libc::TP_STATUS_USER == 0 {
            return false;
        }
        // SAFETY: the slot is ours (status USER, acquired above) and at least
        // HDR2 bytes long (checked at open); read_unaligned copies it out.
        let h = unsafe { fp.cast::<libc::tpacket2_hdr>().read_unaligned() };
        if st & libc::TP_STATUS_COPY != 0 {
            self.take_copy(&h, st);
            return true;
        }
        let mac = h.tp_mac as usize;
        let snap = h.tp_snaplen as usize;
        if mac < HDR2 + VNET_HDR_LEN + 4 || mac + snap > frame_size {
            self.stats.bad_desc += 1;
            self.advance();
            return true;
        }
        // SAFETY: [fp + HDR2, fp + frame_size) is inside the slot we own
        // (status USER), disjoint from every other slot; no other slice of it
        // exists, the previous bursts having ended (&mut self).
        let buf: &'a mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(fp.add(HDR2), frame_size - HDR2) };
        let info = FrameInfo {
            head: mac - HDR2,
            len: snap,
            wire_len: h.tp_len as usize,
            status: st,
            tci: h.tp_vlan_tci,
            tpid: h.tp_vlan_tpid,
            in_place: true,
        };
        self.deliver(b, buf, fp.wrapping_add(HDR2), info);
        true
    }

    /// A slot flagged TP_STATUS_COPY: the frame did not fit, the kernel
    /// stored it truncated and queued the whole of it on the socket. Reads
    /// it into the copy buffer and starts segmenting it from there; the slot
    /// is consumed when the last segment is out (or now, if it is dropped).
    fn take_copy(&mut self, h: &libc::tpacket2_hdr, st: u32) {
        let Layout::V2(s) = &self.layout else { return };
        let base = s.copy_ptr;
        let cap = VNET_HDR_LEN + COPY_MAX;
        // SAFETY: [base + COPY_HEAD, + cap) is inside the copy vector, which
        // no live slice covers (it is never handed out, and no segmentation
        // from it is pending: `self.gso` is None here); recv writes at most
        // `cap` bytes. MSG_TRUNC makes it return the whole length.
        let r = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                base.add(COPY_HEAD).cast(),
                cap,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        let n = if r < 0 { 0 } else { r as usize };
        if n > cap || n < VNET_HDR_LEN + 14 {
            // Larger than any GSO frame we take, or nothing queued.
            self.stats.truncated += 1;
            self.advance();
            return;
        }
        let len = n - VNET_HDR_LEN;
        if len != h.tp_len as usize {
            // Not the frame of this slot (cannot happen: the kernel queues
            // copies in slot order), never pass on a wrong one.
            self.stats.bad_desc += 1;
            self.advance();
            return;
        }
        self.stats.copied += 1;
        let total = COPY_HEAD + VNET_HDR_LEN + COPY_MAX;
        // SAFETY: the whole copy vector; no other slice of it is alive (see
        // above). It lives only for this call: only a raw pointer into it is
        // kept (by `prepare`, for segmentation).
        let buf = unsafe { std::slice::from_raw_parts_mut(base, total) };
        let info = FrameInfo {
            head: COPY_HEAD + VNET_HDR_LEN,
            len,
            wire_len: len,
            status: st,
            tci: h.tp_vlan_tci,
            tpid: h.tp_vlan_tpid,
            in_place: false,
        };
        // Out of place, a frame is never handed out whole.
        let _ = self.prepare(buf, base, info);
    }

    /// Hands out the frame in `buf` as `b.n` if `prepare` leaves it whole.
    fn deliver<'a>(
        &mut self,
        b: &mut RxBurst<'a>,
        buf: &'a mut [u8],
        base: *const u8,
        f: FrameInfo,
    ) {
        if let Some((head, len, csum_ok)) = self.prepare(&mut *buf, base, f) {
            self.stats.packets += 1;
            self.stats.bytes += len as u64;
            b.pkts[b.n] = Packet {
                buf,
                head,
                len,
                port: self.port,
                csum_ok,
            };
            b.n += 1;
            self.advance();
        }
    }

    /// Reads the vnet header in front of the frame at `f.head` of `buf`
    /// (whose first byte is at `base`), puts a stripped VLAN tag back,
    /// completes a partial checksum, or plans the segmentation of a GSO
    /// super-frame. Returns where the frame now is and whether its checksum
    /// is known good when it is to be handed out whole; `None` when it was
    /// dropped (the cursor then moved on) or is being segmented.
    fn prepare(
        &mut self,
        buf: &mut [u8],
        base: *const u8,
        f: FrameInfo,
    ) -> Option<(usize, usize, bool)> {
        let mut head = f.head;
        let mut len = f.len;
        if f.wire_len > len
            || head < VNET_HDR_LEN + 4
            || head.checked_add(len).is_none_or(|e| e > buf.len())
        {
            self.stats.truncated += 1;
            self.advance();
            return None;
        }
        let mut vh = [0u8; VNET_HDR_LEN];
        vh.copy_from_slice(&buf[head - VNET_HDR_LEN..head]);
        let mut vnet = VnetHdr::parse(&vh);
        let st = f.status;
        if st & libc::TP_STATUS_VLAN_VALID != 0 && len >= 12 {
            // The kernel stripped the tag into metadata; put it back so the
            // pipeline sees the frame as on the wire.
            let tpid = if st & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                f.tpid
            } else {
                0x8100
            };
            buf.copy_within(head..head + 12, head - 4);
            head -= 4;
            len += 4;
            buf[head + 12..head + 14].copy_from_slice(&tpid.to_be_bytes());
            buf[head + 14..head + 16].copy_from_slice(&f.tci.to_be_bytes());
            vnet.csum_start = vnet.csum_start.wrapping_add(4);
        }
        if vnet.is_gso() {
            match Gso::plan(&buf[head..head + len], &vnet, self.seg_max) {
                // Out of place even a single segment is cut (into a scratch
                // slot), the copy buffer being no frame to hand out.
                Ok(g) if g.remaining() > 1 || !f.in_place => {
                    self.stats.gso_frames += 1;
                    self.gso = Some(GsoFrame {
                        gso: g,
                        frame: base.wrapping_add(head),
                        len,
                    });
                    return None;
                }
                // One segment: an ordinary frame with a partial checksum.
                Ok(_) => {}
                Err(GsoError::Bad | GsoError::TooBig) => {
                    self.stats.gso_dropped += 1;
                    self.advance();
                    return None;
                }
            }
        }
        if !f.in_place {
            // A frame larger than a slot that is no super-frame: larger than
            // the MTU, which nothing downstream could send either.
            self.stats.truncated += 1;
            self.advance();
            return None;
        }
        let csum_ok = if st & libc::TP_STATUS_CSUMNOTREADY != 0 {
            let ok = complete_csum(&mut buf[head..head + len], &vnet);
            if ok {
                self.stats.csum_completed += 1;
            } else {
                self.stats.csum_failed += 1;
            }
            ok
        } else {
            st & libc::TP_STATUS_CSUM_VALID != 0
        };
        Some((head, len, csum_ok))
    }

    /// Counters so far, with the kernel's drop counters folded in (reading
    /// them resets the kernel's copy, so they accumulate here).
    pub fn stats(&mut self) -> RxStats {
        if let Ok(k) = getsockopt::<KernelStats>(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
        ) {
            self.stats.kernel_drops += k.drops as u64;
            self.stats.kernel_freezes += k.freezes as u64;
        }
        self.stats
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

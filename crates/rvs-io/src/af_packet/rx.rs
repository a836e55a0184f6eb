//! The receive half: a TPACKET_V3 RX ring whose frames are handed to the
//! pipeline in place.
//!
//! The kernel fills 1 MiB-class blocks with variable-size frames and hands a
//! whole block over at once (when full or when the retire timer fires). A
//! burst borrows up to [`BURST`] frames as disjoint `&mut [u8]` slices of
//! the mapping (each frame's headroom, frame and tailroom up to the next
//! frame); the blocks they came from go back to the kernel on the next
//! [`RxRing::release`] or [`RxRing::burst`], which take `&mut self` and so
//! cannot run while any slice of the previous burst is alive.
//!
//! GSO super-frames are cut into segments written to per-ring scratch slots
//! (one per burst entry), the super-frame staying in its block until its last
//! segment was handed out, possibly over several bursts.

use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use rvs_core::addr::PortId;
use rvs_core::pipeline::Packet;

use crate::offload::{complete_csum, Gso, GsoError, VnetHdr, VNET_HDR_LEN};
use crate::sys::{getsockopt, Mmap};

/// Most frames in one burst (the pipeline's lookup batch).
pub const BURST: usize = 32;

/// `TPACKET_ALIGN(sizeof(tpacket3_hdr)) + sizeof(sockaddr_ll)`: where a
/// frame's usable buffer starts. Everything from there to the MAC header
/// (PACKET_RESERVE, alignment, the vnet header once read) is headroom.
const HDR3: usize = 68;

/// Counters of the receive half.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RxStats {
    /// Frames handed out (each GSO segment counts).
    pub packets: u64,
    /// Bytes handed out.
    pub bytes: u64,
    /// Frames the kernel dropped because the ring was full (tp_drops).
    pub kernel_drops: u64,
    /// Times the kernel found every block in use (tp_freeze_q_cnt).
    pub kernel_freezes: u64,
    /// Frames dropped because the block could not hold them whole.
    pub truncated: u64,
    /// Frames whose ring header was inconsistent (the rest of the block is skipped).
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

/// A super-frame being segmented: where it lives in its block.
struct GsoFrame {
    gso: Gso,
    frame: *const u8,
    len: usize,
    next_offset: usize,
}

#[repr(C)]
#[derive(Copy, Clone, Default)]
struct KernelStats {
    packets: u32,
    drops: u32,
    freezes: u32,
}

/// A TPACKET_V3 RX ring (see the module doc).
pub struct RxRing {
    // Unmapped before the socket closes (fields drop in order).
    map: Mmap,
    fd: OwnedFd,
    port: PortId,
    block_size: usize,
    blocks: usize,
    /// Block being read, or next to be opened.
    cur: usize,
    open: bool,
    /// Frames left in `cur` and offset of the next one (when `open`).
    left: u32,
    off: usize,
    /// Consumed blocks, just before `cur`, not yet returned to the kernel.
    unreleased: usize,
    gso: Option<GsoFrame>,
    /// Scratch slots for segments, one per burst entry; never reallocated
    /// after `open`, so `scratch_ptr` stays valid.
    _scratch: Vec<u8>,
    scratch_ptr: *mut u8,
    slot_size: usize,
    slot_head: usize,
    seg_max: usize,
    stats: RxStats,
}

// SAFETY: the raw pointers point into memory the ring owns (its mapping and
// scratch vector); nothing is shared with other threads, so moving the ring
// to another thread (a worker) moves sole ownership.
unsafe impl Send for RxRing {}

impl RxRing {
    /// Wraps a socket whose V3 RX ring (`blocks` × `block_size`) is mapped
    /// at `map`; `seg_max` is the largest segment produced from GSO frames
    /// and `headroom` the room left before each segment.
    pub(crate) fn new(
        fd: OwnedFd,
        map: Mmap,
        port: PortId,
        block_size: usize,
        blocks: usize,
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
            block_size,
            blocks,
            cur: 0,
            open: false,
            left: 0,
            off: 0,
            unreleased: 0,
            gso: None,
            _scratch: scratch,
            scratch_ptr,
            slot_size,
            slot_head: headroom,
            seg_max,
            stats: RxStats::default(),
        }
    }

    fn block(&self, i: usize) -> *mut u8 {
        self.map.ptr.wrapping_add(i * self.block_size)
    }

    fn block_status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: block i is inside the mapping; its descriptor's
        // block_status word (offset 8, 4-aligned in a page-aligned block) is
        // written by the kernel concurrently, hence only accessed atomically.
        unsafe { AtomicU32::from_ptr(self.block(i).add(8).cast()) }
    }

    /// Returns the blocks every frame of which was handed out to the kernel.
    /// Taking `&mut self` guarantees no frame of an earlier burst is alive.
    pub fn release(&mut self) {
        while self.unreleased > 0 {
            let b = (self.cur + self.blocks - self.unreleased) % self.blocks;
            // Release: our writes into the block's frames happen before the
            // kernel may reuse it.
            self.block_status(b)
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.unreleased -= 1;
        }
    }

    /// Whether a frame is ready without waiting.
    pub fn ready(&self) -> bool {
        self.gso.is_some()
            || self.open
            || (self.unreleased < self.blocks
                && self.block_status(self.cur).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0)
    }

    fn close_block(&mut self) {
        self.open = false;
        self.unreleased += 1;
        self.cur = (self.cur + 1) % self.blocks;
    }

    fn advance(&mut self, next_offset: usize) {
        self.left = self.left.saturating_sub(1);
        self.off += next_offset;
        if self.left == 0 {
            self.close_block();
        }
    }

    /// Opens block `cur` if the kernel handed it over; false if not.
    fn open_block(&mut self) -> bool {
        // Every block is consumed but unreturned: `cur` is one of them.
        if self.unreleased >= self.blocks {
            return false;
        }
        let st = self.block_status(self.cur).load(Ordering::Acquire);
        if st & libc::TP_STATUS_USER == 0 {
            return false;
        }
        let b = self.block(self.cur);
        // SAFETY: the block is ours (status USER, acquired above); the
        // descriptor words at 12 and 16 lie in its first 48 bytes.
        let (num, first) = unsafe {
            (
                b.add(12).cast::<u32>().read(),
                b.add(16).cast::<u32>().read(),
            )
        };
        self.open = true;
        self.left = num;
        self.off = first as usize;
        if num == 0 || self.off >= self.block_size {
            if num != 0 {
                self.stats.bad_desc += 1;
            }
            self.close_block();
        }
        true
    }

    /// Takes up to `max` (at most [`BURST`]) frames. Releases the previous
    /// burst's blocks first.
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
            if !self.open && !self.open_block() {
                break;
            }
            if self.open {
                self.next_frame(&mut b);
            }
        }
        b
    }

    /// Hands out the next segment of the pending super-frame into slot `b.n`.
    fn next_segment<'a>(&mut self, b: &mut RxBurst<'a>) {
        let Some(g) = self.gso.as_mut() else { return };
        // SAFETY: the super-frame lies in a block we own and have not
        // released (its frame is not consumed until the last segment), and
        // no mutable slice of it was handed out.
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
                let next = g.next_offset;
                self.gso = None;
                self.advance(next);
                return;
            }
        }
        if g.gso.done() {
            let next = g.next_offset;
            self.gso = None;
            self.advance(next);
        }
    }

    /// Processes the frame at the cursor of the open block.
    fn next_frame<'a>(&mut self, b: &mut RxBurst<'a>) {
        let fp = self.block(self.cur).wrapping_add(self.off);
        // The header must fit in the block before it can be read.
        if self.off + HDR3 > self.block_size {
            self.stats.bad_desc += 1;
            self.left = 0;
            self.close_block();
            return;
        }
        // SAFETY: the frame header lies inside the open block (checked just
        // above), which we own; read_unaligned copies it out.
        let h = unsafe { fp.cast::<libc::tpacket3_hdr>().read_unaligned() };
        let next = h.tp_next_offset as usize;
        let region = if next != 0 {
            next
        } else {
            self.block_size - self.off
        };
        let mac = h.tp_mac as usize;
        let snap = h.tp_snaplen as usize;
        let ok = self.off + region <= self.block_size
            && (next != 0 || self.left == 1)
            && region >= HDR3
            && mac >= HDR3 + VNET_HDR_LEN + 4
            && mac + snap <= region;
        if !ok {
            self.stats.bad_desc += 1;
            self.left = 0;
            self.close_block();
            return;
        }
        // SAFETY: [fp + HDR3, fp + region) is inside the open block we own,
        // disjoint from every other frame's range (frames follow each other
        // at next_offset) and from the block descriptor; no other slice of it
        // exists, the previous bursts having ended (&mut self).
        let buf: &'a mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(fp.add(HDR3), region - HDR3) };
        let mut head = mac - HDR3;
        let mut len = snap;
        let mut vh = [0u8; VNET_HDR_LEN];
        vh.copy_from_slice(&buf[head - VNET_HDR_LEN..head]);
        let mut vnet = VnetHdr::parse(&vh);
        if (h.tp_len as usize) > snap {
            self.stats.truncated += 1;
            self.advance(next);
            return;
        }
        let st = h.tp_status;
        if st & libc::TP_STATUS_VLAN_VALID != 0 && len >= 12 {
            // The kernel stripped the tag into metadata; put it back so the
            // pipeline sees the frame as on the wire.
            let tpid = if st & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                h.hv1.tp_vlan_tpid
            } else {
                0x8100
            };
            let tci = h.hv1.tp_vlan_tci as u16;
            buf.copy_within(head..head + 12, head - 4);
            head -= 4;
            len += 4;
            buf[head + 12..head + 14].copy_from_slice(&tpid.to_be_bytes());
            buf[head + 14..head + 16].copy_from_slice(&tci.to_be_bytes());
            vnet.csum_start = vnet.csum_start.wrapping_add(4);
        }
        if vnet.is_gso() {
            match Gso::plan(&buf[head..head + len], &vnet, self.seg_max) {
                Ok(g) if g.remaining() > 1 => {
                    self.stats.gso_frames += 1;
                    self.gso = Some(GsoFrame {
                        gso: g,
                        frame: fp.wrapping_add(HDR3 + head),
                        len,
                        next_offset: next,
                    });
                    return;
                }
                // One segment: an ordinary frame with a partial checksum.
                Ok(_) => {}
                Err(GsoError::Bad | GsoError::TooBig) => {
                    self.stats.gso_dropped += 1;
                    self.advance(next);
                    return;
                }
            }
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
        self.advance(next);
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

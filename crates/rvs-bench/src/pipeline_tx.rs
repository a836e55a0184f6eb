//! The transmit copy as the daemon makes it, without the syscall: rvsd's
//! worker copies each forwarded frame into a slot of the port's transmit
//! ring (`rvs_io::af_packet::TxRing::send`: status word checked, frame copied
//! 32 bytes into a 2048-byte slot, two length words and the status written;
//! AF_XDP's `XdpTx::send` copies into a free 2048-byte UMEM frame) and bumps
//! the port's packet and byte counters. [`TxRing`] does the same into
//! preallocated memory, slot after slot round-robin, and nothing sends: the
//! kernel's side (reading the slot, the kick) is not the worker's work.

use std::sync::atomic::AtomicU64;

use rvs_core::stats::bump;

/// Slot size: rvsd's transmit slot (AF_PACKET `tx_frame_size`, AF_XDP
/// `xdp_frame_size`), 2048 bytes by default.
pub(crate) const SLOT: usize = 2048;
/// Slots: rvsd's AF_PACKET transmit ring (`tx_frames`, 1,024 by default: 2 MiB).
pub(crate) const SLOTS: usize = 1024;
/// Where the frame starts in a slot (TPACKET2 header, aligned).
const DATA_OFF: usize = 32;
/// `TP_STATUS_AVAILABLE` and `TP_STATUS_SEND_REQUEST`.
const AVAILABLE: u32 = 0;
const SEND_REQUEST: u32 = 1;

/// A transmit ring in memory: [`SLOTS`] slots of [`SLOT`] bytes, all
/// written (touched) when made, as the kernel's mapping is before traffic.
pub(crate) struct TxRing {
    mem: Vec<u8>,
    next: usize,
    /// The port's counters (`PortCounters::tx_packets`, `tx_bytes`).
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    /// Frames refused: larger than a slot, or the slot not yet sent.
    refused: u64,
}

impl TxRing {
    /// The ring, every slot available.
    pub(crate) fn new() -> TxRing {
        TxRing {
            mem: vec![0u8; SLOTS * SLOT],
            next: 0,
            tx_packets: AtomicU64::new(0),
            tx_bytes: AtomicU64::new(0),
            refused: 0,
        }
    }

    /// Copies `frame` into the next slot and marks it for sending; false
    /// (counted) when it does not fit. Every slot is taken as sent by the
    /// time the ring comes round to it again (the kernel's side is not
    /// modelled), so the status check always passes, as it does in rvsd
    /// while the kernel keeps up.
    #[inline]
    pub(crate) fn send(&mut self, frame: &[u8]) -> bool {
        let i = self.next;
        let Some(slot) = self.mem.get_mut(i * SLOT..(i + 1) * SLOT) else {
            self.refused += 1;
            return false;
        };
        let st = u32::from_ne_bytes([slot[0], slot[1], slot[2], slot[3]]);
        if frame.len() > SLOT - DATA_OFF || (st != AVAILABLE && st != SEND_REQUEST) {
            self.refused += 1;
            return false;
        }
        slot[DATA_OFF..DATA_OFF + frame.len()].copy_from_slice(frame);
        let len = (frame.len() as u32).to_ne_bytes();
        slot[4..8].copy_from_slice(&len); // tp_len
        slot[8..12].copy_from_slice(&len); // tp_snaplen
        slot[0..4].copy_from_slice(&SEND_REQUEST.to_ne_bytes());
        self.next = if i + 1 == SLOTS { 0 } else { i + 1 };
        bump(&self.tx_packets, 1);
        bump(&self.tx_bytes, frame.len() as u64);
        true
    }

    /// Frames copied so far.
    #[cfg(test)]
    fn packets(&self) -> u64 {
        self.tx_packets.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Frames refused so far.
    #[cfg(test)]
    fn refused(&self) -> u64 {
        self.refused
    }

    /// The frame in slot `i` (tests).
    #[cfg(test)]
    fn slot_frame(&self, i: usize) -> &[u8] {
        let s = &self.mem[i * SLOT..(i + 1) * SLOT];
        let len = u32::from_ne_bytes([s[4], s[5], s[6], s[7]]) as usize;
        &s[DATA_OFF..DATA_OFF + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_land_in_consecutive_slots_and_the_ring_wraps() {
        let mut r = TxRing::new();
        for i in 0..SLOTS + 2 {
            let f = [i as u8; 64];
            assert!(r.send(&f[..60 + i % 4]));
        }
        assert_eq!(r.packets(), (SLOTS + 2) as u64);
        // Slots 0 and 1 were written twice: the second frames are there.
        assert_eq!(r.slot_frame(0), &[SLOTS as u8; 64][..60]);
        assert_eq!(r.slot_frame(1), &[(SLOTS + 1) as u8; 64][..61]);
        assert_eq!(r.slot_frame(2), &[2u8; 64][..62]);
        assert!(!r.send(&[0u8; SLOT]), "larger than a slot's data area");
        assert_eq!(r.refused(), 1);
    }
}

//! Local ports under pressure. Without the SYN proxy, every SYN to an FNAT
//! service takes a local port, and a half-open connection (SYN_RECV: the
//! client never completes the handshake, as a spoofed SYN never does) would
//! hold it for the whole SYN_RECV timeout: a flood of a few tens of thousands
//! of SYNs per second exhausts a local address and locks the service out
//! until long after the flood ends. Two defences, per local address and
//! worker:
//!
//! - when fewer than 1/[`LOW_FRACTION`] of the pool's ports are free, a
//!   connection that enters or stays in SYN_RECV gets at most
//!   [`PRESSURE_SYN_RECV_MS`] instead of the configured timeout;
//! - when the pool is empty, the oldest half-open connection holding one of
//!   its ports is removed and its port reused (counted as
//!   `syn_recv_recycled`): a new flow wins over a handshake that has been
//!   waiting longest, which is almost always a spoofed one.
//!
//! The oldest half-open connections are found through a ring per pool of
//! (connection, port) in the order the ports were taken, preallocated to the
//! pool's size; an entry whose connection has moved on (established,
//! closed, port reused) is skipped when it comes up.

use crate::conn::ConnId;

/// A pool is under pressure below this share (1/8) of free ports.
pub(crate) const LOW_FRACTION: u32 = 8;

/// The SYN_RECV timeout of a connection whose pool is under pressure.
pub(crate) const PRESSURE_SYN_RECV_MS: u32 = 2_000;

/// Ring entries looked at for one recycling before giving up.
pub(crate) const RECYCLE_SCAN: usize = 64;

/// Whether a pool with `free` of `owned` ports free is under pressure.
pub(crate) fn under_pressure(free: u32, owned: u32) -> bool {
    free < owned / LOW_FRACTION
}

/// (connection, local port) in the order the ports were taken.
#[derive(Debug, Default)]
pub(crate) struct HalfOpen {
    ring: Vec<(u32, u16)>,
    head: usize,
    len: usize,
}

impl HalfOpen {
    /// A ring for a pool of `owned` ports.
    pub fn new(owned: u32) -> HalfOpen {
        HalfOpen {
            ring: vec![(0, 0); owned as usize],
            head: 0,
            len: 0,
        }
    }

    /// Notes that connection `id` took `port`. When the ring is full, its
    /// oldest entry is forgotten.
    pub fn push(&mut self, id: ConnId, port: u16) {
        let cap = self.ring.len();
        if cap == 0 {
            return;
        }
        if self.len == cap {
            self.head = (self.head + 1) % cap;
            self.len -= 1;
        }
        if let Some(e) = self.ring.get_mut((self.head + self.len) % cap) {
            *e = (id.0, port);
        }
        self.len += 1;
    }

    /// The oldest entry, removed.
    pub fn pop(&mut self) -> Option<(ConnId, u16)> {
        if self.len == 0 {
            return None;
        }
        let (id, port) = *self.ring.get(self.head)?;
        self.head = (self.head + 1) % self.ring.len();
        self.len -= 1;
        Some((ConnId(id), port))
    }

    /// Heap bytes of the ring (8 bytes per port of its pool).
    pub fn memory_bytes(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<(u32, u16)>()
    }

    /// Entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_oldest_first_and_a_full_ring_forgets_the_oldest() {
        let mut r = HalfOpen::new(3);
        for i in 0..5u32 {
            r.push(ConnId(i), 1000 + i as u16);
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.pop(), Some((ConnId(2), 1002)));
        r.push(ConnId(9), 2000);
        assert_eq!(r.pop(), Some((ConnId(3), 1003)));
        assert_eq!(r.pop(), Some((ConnId(4), 1004)));
        assert_eq!(r.pop(), Some((ConnId(9), 2000)));
        assert_eq!(r.pop(), None);
        let mut empty = HalfOpen::new(0);
        empty.push(ConnId(1), 1);
        assert_eq!(empty.pop(), None);
    }

    #[test]
    fn pressure_starts_below_an_eighth_free() {
        assert!(!under_pressure(8064, 64512));
        assert!(under_pressure(8063, 64512));
        assert!(!under_pressure(0, 0));
    }
}

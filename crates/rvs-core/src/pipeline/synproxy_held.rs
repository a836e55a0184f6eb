//! Frames the SYN proxy keeps while it waits for a real server's SYN-ACK:
//! at most one client segment per connection (its ACK, or a segment with
//! data that came before the real server answered), replayed to the real
//! server once the handshake with it is done.
//!
//! The pool is preallocated (once, when the configuration first has a
//! synproxy service) and keyed by the connection's in tuple; lookups scan
//! only the slots in use, about as many as handshakes are waiting on a
//! real server at a time.

use crate::addr::PortId;
use crate::conn::Tuple;

/// One kept frame's bookkeeping.
#[derive(Copy, Clone, Debug, Default)]
struct Meta {
    key: Tuple,
    len: u16,
    port: PortId,
    data: bool,
}

/// The pool of kept frames of one worker.
#[derive(Debug, Default)]
pub(super) struct Held {
    buf: Vec<u8>,
    size: usize,
    meta: Vec<Meta>,
    free: Vec<u16>,
    used: Vec<u16>,
}

impl Held {
    /// Allocates room for `count` frames of up to `size` bytes, once.
    pub fn reserve(&mut self, count: usize, size: usize) {
        if !self.meta.is_empty() {
            return;
        }
        let count = count.clamp(1, usize::from(u16::MAX));
        self.buf = vec![0; count * size];
        self.size = size;
        self.meta = vec![Meta::default(); count];
        self.free = (0..count as u16).rev().collect();
        self.used = Vec::with_capacity(count);
    }

    /// Whether no frame is kept.
    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }

    /// Position in `used` of the frame kept for `key`.
    fn position(&self, key: &Tuple) -> Option<usize> {
        self.used
            .iter()
            .position(|&s| self.meta.get(usize::from(s)).is_some_and(|m| m.key == *key))
    }

    /// Keeps `frame` (received on `port`; `data`: it carries payload or a
    /// FIN) for connection `key`, unless a frame with data is kept already
    /// or there is no room. Returns whether it was kept.
    pub fn offer(&mut self, key: &Tuple, port: PortId, frame: &[u8], data: bool) -> bool {
        if frame.len() > self.size {
            return false;
        }
        let slot = match self.position(key) {
            Some(i) => {
                let s = self.used[i];
                if self.meta[usize::from(s)].data || !data {
                    return false;
                }
                s
            }
            None => match self.free.pop() {
                Some(s) => {
                    self.used.push(s);
                    s
                }
                None => return false,
            },
        };
        let at = usize::from(slot) * self.size;
        self.buf[at..at + frame.len()].copy_from_slice(frame);
        self.meta[usize::from(slot)] = Meta {
            key: *key,
            len: frame.len() as u16,
            port,
            data,
        };
        true
    }

    /// The frame kept for `key` and the port it came in by.
    pub fn get(&self, key: &Tuple) -> Option<(&[u8], PortId)> {
        let s = usize::from(self.used[self.position(key)?]);
        let m = self.meta.get(s)?;
        let at = s * self.size;
        Some((self.buf.get(at..at + usize::from(m.len))?, m.port))
    }

    /// Forgets the frame kept for `key`, if any.
    pub fn remove(&mut self, key: &Tuple) {
        if let Some(i) = self.position(key) {
            let s = self.used.swap_remove(i);
            self.free.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{proto, Addr};

    fn key(port: u16) -> Tuple {
        Tuple::new(
            proto::TCP,
            Addr::v4(10, 0, 0, 1),
            port,
            Addr::v4(10, 0, 0, 2),
            80,
        )
    }

    #[test]
    fn keeps_one_frame_per_connection_preferring_data() {
        let mut h = Held::default();
        assert!(
            !h.offer(&key(1), 0, b"ack", false),
            "nothing before reserve"
        );
        h.reserve(2, 8);
        assert!(h.offer(&key(1), 0, b"ack", false));
        assert!(
            h.offer(&key(1), 1, b"data", true),
            "data replaces a bare ACK"
        );
        assert!(!h.offer(&key(1), 1, b"more", true), "the first data stays");
        assert!(!h.offer(&key(1), 1, b"ack2", false));
        assert_eq!(h.get(&key(1)), Some((&b"data"[..], 1)));
        assert!(h.offer(&key(2), 0, b"two", false));
        assert!(!h.offer(&key(3), 0, b"three", false), "full");
        assert!(!h.offer(&key(2), 0, b"123456789", true), "too long");
        h.remove(&key(1));
        assert_eq!(h.get(&key(1)), None);
        assert!(h.offer(&key(3), 0, b"three", false), "room again");
        assert_eq!(h.get(&key(2)), Some((&b"two"[..], 0)));
        h.remove(&key(2));
        h.remove(&key(3));
        assert!(h.is_empty());
    }
}

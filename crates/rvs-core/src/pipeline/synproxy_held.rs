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
    /// When the last SYN went to the real server.
    sent_ms: u64,
    /// Timer retransmissions of the SYN so far.
    tries: u8,
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

    /// Keeps `frame` (received on `port` at `now_ms`; `data`: it carries
    /// payload or a FIN) for connection `key`, unless a frame with data is
    /// kept already or there is no room. Returns whether it was kept.
    pub fn offer(
        &mut self,
        key: &Tuple,
        port: PortId,
        frame: &[u8],
        data: bool,
        now_ms: u64,
    ) -> bool {
        if frame.len() > self.size {
            return false;
        }
        let (slot, sent_ms, tries) = match self.position(key) {
            Some(i) => {
                let s = self.used[i];
                let m = self.meta[usize::from(s)];
                if m.data || !data {
                    return false;
                }
                (s, m.sent_ms, m.tries)
            }
            None => match self.free.pop() {
                Some(s) => {
                    self.used.push(s);
                    (s, now_ms, 0)
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
            sent_ms,
            tries,
        };
        true
    }

    /// The bookkeeping of the frame kept for `key`.
    fn meta_mut(&mut self, key: &Tuple) -> Option<&mut Meta> {
        let s = usize::from(self.used[self.position(key)?]);
        self.meta.get_mut(s)
    }

    /// Notes that the SYN of connection `key` went to the real server at
    /// `now_ms`; whether a frame is kept for it (the timer resends only then).
    pub fn sent(&mut self, key: &Tuple, now_ms: u64) -> bool {
        self.meta_mut(key).map(|m| m.sent_ms = now_ms).is_some()
    }

    /// Counts one timer retransmission for connection `key`.
    pub fn count_try(&mut self, key: &Tuple) {
        if let Some(m) = self.meta_mut(key) {
            m.tries = m.tries.saturating_add(1);
        }
    }

    /// When the last SYN of connection `key` went out, if a frame is kept.
    pub fn sent_ms(&self, key: &Tuple) -> Option<u64> {
        let s = usize::from(self.used[self.position(key)?]);
        self.meta.get(s).map(|m| m.sent_ms)
    }

    /// The `i`-th kept frame's connection, last SYN time and timer tries.
    pub fn nth(&self, i: usize) -> Option<(Tuple, u64, u8)> {
        let m = self.meta.get(usize::from(*self.used.get(i)?))?;
        Some((m.key, m.sent_ms, m.tries))
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
            !h.offer(&key(1), 0, b"ack", false, 0),
            "nothing before reserve"
        );
        h.reserve(2, 8);
        assert!(h.offer(&key(1), 0, b"ack", false, 0));
        assert!(
            h.offer(&key(1), 1, b"data", true, 0),
            "data replaces a bare ACK"
        );
        assert!(
            !h.offer(&key(1), 1, b"more", true, 0),
            "the first data stays"
        );
        assert!(!h.offer(&key(1), 1, b"ack2", false, 0));
        assert_eq!(h.get(&key(1)), Some((&b"data"[..], 1)));
        assert!(h.offer(&key(2), 0, b"two", false, 0));
        assert!(!h.offer(&key(3), 0, b"three", false, 0), "full");
        assert!(!h.offer(&key(2), 0, b"123456789", true, 0), "too long");
        h.remove(&key(1));
        assert_eq!(h.get(&key(1)), None);
        assert!(h.offer(&key(3), 0, b"three", false, 0), "room again");
        assert_eq!(h.get(&key(2)), Some((&b"two"[..], 0)));
        h.remove(&key(2));
        h.remove(&key(3));
        assert!(h.is_empty());
    }
}

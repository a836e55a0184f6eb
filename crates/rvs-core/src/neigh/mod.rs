//! Neighbour (ARP / IPv6 ND) table with a small queue of frames awaiting
//! resolution (`dpip neigh`).
//!
//! One table per worker, mutated only by that worker, so nothing here is
//! shared or locked. Everything is preallocated by [`NeighTable::new`]: the
//! entry slots, the address index, and the pending-frame storage, because
//! learning and queueing happen on the packet path.
//!
//! Learned (non-static) entries sit on an intrusive list in order of last
//! update, so evicting the oldest one when the table is full is O(1). A frame
//! for an unresolved address creates an `Incomplete` entry that remembers when
//! the last solicitation went out (to rate-limit ARP requests / NS to one per
//! second) and links that address's pending frames in arrival order.

mod index;

use std::fmt;

use crate::addr::{Addr, Mac, PortId};
use index::AddrIndex;

/// Marks the end of an intrusive list.
const NIL: u32 = u32::MAX;

/// Minimum interval between two solicitations for the same address.
pub const SOLICIT_INTERVAL_MS: u64 = 1000;

/// State of a neighbour entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NeighState {
    /// Solicitation sent, no answer yet: not usable for forwarding.
    Incomplete,
    /// Learned and recently confirmed.
    Reachable,
    /// Learned, but not confirmed for more than half the maximum age; still
    /// used for forwarding (the caller may re-solicit).
    Stale,
    /// Configured by the operator; never aged, evicted or overridden by learning.
    Static,
}

impl fmt::Display for NeighState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NeighState::Incomplete => "incomplete",
            NeighState::Reachable => "reachable",
            NeighState::Stale => "stale",
            NeighState::Static => "static",
        })
    }
}

/// One neighbour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighEntry {
    /// The neighbour's IP address.
    pub addr: Addr,
    /// Its MAC address (`Mac::ZERO` while `Incomplete`).
    pub mac: Mac,
    /// The port it was learned on / is reached through.
    pub port: PortId,
    /// State.
    pub state: NeighState,
    /// When the entry was last learned or refreshed (creation time for
    /// `Incomplete`, meaningless for `Static`), in the caller's milliseconds.
    pub updated_ms: u64,
}

/// Why a neighbour operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighError {
    /// Every slot holds a static entry: nothing can be evicted to make room.
    Full,
    /// No entry for that address.
    NotFound,
}

impl fmt::Display for NeighError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NeighError::Full => "neighbour table full of static entries",
            NeighError::NotFound => "no such neighbour",
        })
    }
}

impl std::error::Error for NeighError {}

/// What the caller should do after [`NeighTable::queue`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum QueueResult {
    /// The frame was copied into the pending queue; if `solicit`, send an
    /// ARP request / neighbour solicitation for the address now.
    Queued {
        /// Whether a solicitation is due.
        solicit: bool,
    },
    /// The frame was not kept (pending queue full, frame larger than the
    /// configured frame size, or no entry slot available): count a drop.
    Dropped,
}

#[derive(Clone, Debug)]
struct Slot {
    entry: NeighEntry,
    used: bool,
    /// Age-ordered list of non-static entries (oldest at the table's `lru_head`).
    prev: u32,
    next: u32,
    /// This address's pending frames, oldest first.
    pend_head: u32,
    pend_tail: u32,
    last_solicit_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    next: u32,
    len: usize,
    port: PortId,
    queued_ms: u64,
}

/// Per-worker neighbour table.
#[derive(Clone, Debug)]
pub struct NeighTable {
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    index: AddrIndex,
    lru_head: u32,
    lru_tail: u32,
    count: usize,
    pend: Vec<Pending>,
    pend_free: Vec<u32>,
    /// `pend.len()` frames of `frame_size` bytes, back to back.
    buf: Vec<u8>,
    frame_size: usize,
}

fn idx(i: u32) -> usize {
    i as usize
}

impl NeighTable {
    /// A table of `capacity` entries and a pending queue of at most
    /// `pending_frames` frames of at most `frame_size` bytes each, all
    /// allocated here and never again.
    pub fn new(capacity: usize, pending_frames: usize, frame_size: usize) -> Self {
        // Slot numbers are u32 with one value reserved for NIL.
        let capacity = capacity.min(idx(NIL) - 1);
        let mut pending_frames = pending_frames.min(idx(NIL) - 1);
        let buf_len = match pending_frames.checked_mul(frame_size) {
            Some(n) => n,
            None => {
                pending_frames = 0;
                0
            }
        };
        let blank = Slot {
            entry: NeighEntry {
                addr: Addr::UNSPECIFIED,
                mac: Mac::ZERO,
                port: 0,
                state: NeighState::Incomplete,
                updated_ms: 0,
            },
            used: false,
            prev: NIL,
            next: NIL,
            pend_head: NIL,
            pend_tail: NIL,
            last_solicit_ms: None,
        };
        NeighTable {
            slots: vec![blank; capacity],
            // Popped from the back: lowest slot numbers are used first.
            free_slots: (0..capacity as u32).rev().collect(),
            index: AddrIndex::new(capacity),
            lru_head: NIL,
            lru_tail: NIL,
            count: 0,
            pend: vec![
                Pending {
                    next: NIL,
                    len: 0,
                    port: 0,
                    queued_ms: 0,
                };
                pending_frames
            ],
            pend_free: (0..pending_frames as u32).rev().collect(),
            buf: vec![0; buf_len],
            frame_size,
        }
    }

    /// The MAC and port for `addr` if it is resolved (`Reachable`, `Stale`
    /// or `Static`). This is the per-packet call.
    #[inline]
    pub fn lookup(&self, addr: &Addr) -> Option<(Mac, PortId)> {
        let s = self.slots.get(idx(self.index.get(addr)?))?;
        match s.entry.state {
            NeighState::Incomplete => None,
            _ => Some((s.entry.mac, s.entry.port)),
        }
    }

    /// The full entry for `addr`, in any state.
    pub fn get(&self, addr: &Addr) -> Option<&NeighEntry> {
        self.slots.get(idx(self.index.get(addr)?)).map(|s| &s.entry)
    }

    /// Learns or refreshes `addr` from an ARP packet or neighbour
    /// advertisement. Returns true if the entry is new (including an
    /// `Incomplete` one becoming resolved) or its MAC changed. A static entry
    /// is left alone (false). When the table is full the oldest learned entry
    /// is evicted; if every entry is static nothing is learned (false).
    pub fn learn(&mut self, addr: Addr, mac: Mac, port: PortId, now_ms: u64) -> bool {
        if let Some(i) = self.index.get(&addr) {
            let Some(s) = self.slots.get_mut(idx(i)) else {
                return false;
            };
            let changed = match s.entry.state {
                NeighState::Static => return false,
                NeighState::Incomplete => true,
                NeighState::Reachable | NeighState::Stale => s.entry.mac != mac,
            };
            s.entry.mac = mac;
            s.entry.port = port;
            s.entry.state = NeighState::Reachable;
            s.entry.updated_ms = now_ms;
            s.last_solicit_ms = None;
            self.lru_unlink(i);
            self.lru_push_tail(i);
            return changed;
        }
        let Some(i) = self.alloc_slot(addr) else {
            return false;
        };
        if let Some(s) = self.slots.get_mut(idx(i)) {
            s.entry.mac = mac;
            s.entry.port = port;
            s.entry.state = NeighState::Reachable;
            s.entry.updated_ms = now_ms;
        }
        self.lru_push_tail(i);
        true
    }

    /// Adds (or turns an existing entry into) a static entry. Evicts the
    /// oldest learned entry when the table is full; `Full` if all are static.
    pub fn add_static(&mut self, addr: Addr, mac: Mac, port: PortId) -> Result<(), NeighError> {
        let i = match self.index.get(&addr) {
            Some(i) => {
                self.lru_unlink(i);
                i
            }
            None => self.alloc_slot(addr).ok_or(NeighError::Full)?,
        };
        let s = self.slots.get_mut(idx(i)).ok_or(NeighError::Full)?;
        s.entry.mac = mac;
        s.entry.port = port;
        s.entry.state = NeighState::Static;
        s.last_solicit_ms = None;
        Ok(())
    }

    /// Removes the entry for `addr` (static or not) and drops its pending frames.
    pub fn del(&mut self, addr: &Addr) -> Result<(), NeighError> {
        let i = self.index.get(addr).ok_or(NeighError::NotFound)?;
        self.remove_slot(i);
        Ok(())
    }

    /// Keeps a copy of `frame`, which cannot be sent until `addr` resolves,
    /// to be handed back by [`NeighTable::drain`] on port `port`. Solicit is
    /// true for the first frame of an unresolved address and whenever the
    /// last solicitation is at least [`SOLICIT_INTERVAL_MS`] old; never for
    /// an address that is already resolved (the frame is still queued: drain it).
    pub fn queue(&mut self, addr: Addr, port: PortId, frame: &[u8], now_ms: u64) -> QueueResult {
        if frame.len() > self.frame_size || self.pend_free.is_empty() {
            return QueueResult::Dropped;
        }
        let i = match self.index.get(&addr) {
            Some(i) => i,
            None => {
                let Some(i) = self.alloc_slot(addr) else {
                    return QueueResult::Dropped;
                };
                if let Some(s) = self.slots.get_mut(idx(i)) {
                    s.entry.updated_ms = now_ms;
                }
                self.lru_push_tail(i);
                i
            }
        };
        // Evicting an entry above may only have freed pending frames, so a
        // frame slot is still there.
        let Some(p) = self.pend_free.pop() else {
            return QueueResult::Dropped;
        };
        let start = idx(p) * self.frame_size;
        match self.buf.get_mut(start..start + frame.len()) {
            Some(dst) => dst.copy_from_slice(frame),
            None => {
                self.pend_free.push(p);
                return QueueResult::Dropped;
            }
        }
        if let Some(pf) = self.pend.get_mut(idx(p)) {
            *pf = Pending {
                next: NIL,
                len: frame.len(),
                port,
                queued_ms: now_ms,
            };
        }
        let Some(s) = self.slots.get_mut(idx(i)) else {
            return QueueResult::Dropped;
        };
        let old_tail = s.pend_tail;
        s.pend_tail = p;
        if old_tail == NIL {
            s.pend_head = p;
        } else if let Some(t) = self.pend.get_mut(idx(old_tail)) {
            t.next = p;
        }
        let solicit = s.entry.state == NeighState::Incomplete
            && match s.last_solicit_ms {
                None => true,
                Some(t) => now_ms.saturating_sub(t) >= SOLICIT_INTERVAL_MS,
            };
        if solicit {
            s.last_solicit_ms = Some(now_ms);
        }
        QueueResult::Queued { solicit }
    }

    /// Hands every pending frame for `addr` to `f`, oldest first, with the
    /// port given at queue time and the frame's bytes (mutable, so the caller
    /// can write in the now-known MAC), and removes them from the queue.
    pub fn drain(&mut self, addr: &Addr, mut f: impl FnMut(PortId, &mut [u8])) {
        let Some(i) = self.index.get(addr) else {
            return;
        };
        let Some(s) = self.slots.get_mut(idx(i)) else {
            return;
        };
        let mut p = s.pend_head;
        s.pend_head = NIL;
        s.pend_tail = NIL;
        while p != NIL {
            let Some(&pf) = self.pend.get(idx(p)) else {
                break;
            };
            let start = idx(p) * self.frame_size;
            if let Some(bytes) = self.buf.get_mut(start..start + pf.len) {
                f(pf.port, bytes);
            }
            self.pend_free.push(p);
            p = pf.next;
        }
    }

    /// Ages the table at `now_ms`: pending frames queued more than
    /// `pending_ms` ago are dropped; learned entries not refreshed for more
    /// than `max_age_ms` are removed, and those older than half of it become
    /// `Stale`; `Incomplete` entries left with no pending frame are removed.
    /// Static entries stay. O(capacity): call it periodically, not per packet.
    pub fn age(&mut self, now_ms: u64, max_age_ms: u64, pending_ms: u64) {
        for i in 0..self.slots.len() as u32 {
            let Some(s) = self.slots.get_mut(idx(i)) else {
                break;
            };
            if !s.used {
                continue;
            }
            // Frames of one address are linked in arrival order.
            while s.pend_head != NIL {
                let Some(&pf) = self.pend.get(idx(s.pend_head)) else {
                    break;
                };
                if now_ms.saturating_sub(pf.queued_ms) <= pending_ms {
                    break;
                }
                self.pend_free.push(s.pend_head);
                s.pend_head = pf.next;
            }
            if s.pend_head == NIL {
                s.pend_tail = NIL;
            }
            let age = now_ms.saturating_sub(s.entry.updated_ms);
            let remove = match s.entry.state {
                NeighState::Static => false,
                NeighState::Incomplete => s.pend_head == NIL,
                NeighState::Reachable | NeighState::Stale => {
                    if age > max_age_ms / 2 {
                        s.entry.state = NeighState::Stale;
                    }
                    age > max_age_ms
                }
            };
            if remove {
                self.remove_slot(i);
            }
        }
    }

    /// All entries, in every state, in slot order (not sorted).
    pub fn iter(&self) -> impl Iterator<Item = &NeighEntry> {
        self.slots.iter().filter(|s| s.used).map(|s| &s.entry)
    }

    /// Number of entries, in every state.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Number of frames waiting in the pending queue.
    pub fn pending(&self) -> usize {
        self.pend.len() - self.pend_free.len()
    }

    /// Heap and inline memory held by the table.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.free_slots.capacity() * 4
            + self.index.memory_bytes()
            + self.pend.capacity() * std::mem::size_of::<Pending>()
            + self.pend_free.capacity() * 4
            + self.buf.capacity()
    }

    /// A fresh slot for `addr` (indexed, not yet on the age list), evicting
    /// the oldest learned entry when none is free.
    fn alloc_slot(&mut self, addr: Addr) -> Option<u32> {
        if self.free_slots.is_empty() && self.lru_head != NIL {
            self.remove_slot(self.lru_head);
        }
        let i = self.free_slots.pop()?;
        if !self.index.insert(addr, i) {
            self.free_slots.push(i);
            return None;
        }
        let s = self.slots.get_mut(idx(i))?;
        s.entry = NeighEntry {
            addr,
            mac: Mac::ZERO,
            port: 0,
            state: NeighState::Incomplete,
            updated_ms: 0,
        };
        s.used = true;
        s.prev = NIL;
        s.next = NIL;
        s.pend_head = NIL;
        s.pend_tail = NIL;
        s.last_solicit_ms = None;
        self.count += 1;
        Some(i)
    }

    /// Frees slot `i` with its pending frames.
    fn remove_slot(&mut self, i: u32) {
        self.lru_unlink(i);
        let Some(s) = self.slots.get_mut(idx(i)) else {
            return;
        };
        if !s.used {
            return;
        }
        s.used = false;
        let mut p = s.pend_head;
        s.pend_head = NIL;
        s.pend_tail = NIL;
        let addr = s.entry.addr;
        while p != NIL {
            self.pend_free.push(p);
            p = self.pend.get(idx(p)).map_or(NIL, |pf| pf.next);
        }
        self.index.remove(&addr);
        self.free_slots.push(i);
        self.count -= 1;
    }

    /// Takes slot `i` off the age list; a no-op if it is not on it.
    fn lru_unlink(&mut self, i: u32) {
        let Some(s) = self.slots.get(idx(i)) else {
            return;
        };
        let (prev, next) = (s.prev, s.next);
        if prev == NIL && self.lru_head != i {
            return; // not linked (static, or never pushed)
        }
        match self.slots.get_mut(idx(prev)) {
            Some(p) => p.next = next,
            None => self.lru_head = next,
        }
        match self.slots.get_mut(idx(next)) {
            Some(n) => n.prev = prev,
            None => self.lru_tail = prev,
        }
        if let Some(s) = self.slots.get_mut(idx(i)) {
            s.prev = NIL;
            s.next = NIL;
        }
    }

    /// Appends slot `i` (not currently linked) as the newest entry.
    fn lru_push_tail(&mut self, i: u32) {
        let tail = self.lru_tail;
        if let Some(s) = self.slots.get_mut(idx(i)) {
            s.prev = tail;
            s.next = NIL;
        }
        match self.slots.get_mut(idx(tail)) {
            Some(t) => t.next = i,
            None => self.lru_head = i,
        }
        self.lru_tail = i;
    }
}

#[cfg(test)]
mod tests;

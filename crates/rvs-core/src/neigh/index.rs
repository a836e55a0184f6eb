//! Fixed-size open-addressing map from address to entry slot.
//!
//! `std`'s `HashMap` may reallocate on insert after many removals (its
//! tombstones eat the growth budget), and ARP learning runs on the packet
//! path, so the neighbour table uses this small linear-probing map instead:
//! sized once to at least twice the entry capacity, with backward-shift
//! deletion so no tombstones ever accumulate.

use crate::addr::Addr;
use crate::hash::avalanche;

/// Marks an empty bucket.
const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    addr: Addr,
    slot: u32,
}

/// Address -> slot map that never allocates after construction.
#[derive(Clone, Debug)]
pub(super) struct AddrIndex {
    buckets: Vec<Bucket>,
    mask: usize,
    len: usize,
}

#[inline]
fn hash(a: &Addr) -> u64 {
    let v = a.as_u128();
    avalanche((v as u64) ^ avalanche((v >> 64) as u64))
}

impl AddrIndex {
    /// Room for `entries` addresses at a load factor of at most one half, so
    /// probe sequences stay short and always reach an empty bucket.
    pub(super) fn new(entries: usize) -> AddrIndex {
        let size = entries
            .saturating_mul(2)
            .checked_next_power_of_two()
            .unwrap_or(1 << 20)
            .max(8);
        AddrIndex {
            buckets: vec![
                Bucket {
                    addr: Addr::UNSPECIFIED,
                    slot: EMPTY,
                };
                size
            ],
            mask: size - 1,
            len: 0,
        }
    }

    #[inline]
    fn home(&self, a: &Addr) -> usize {
        (hash(a) as usize) & self.mask
    }

    /// Bucket position holding `a`.
    fn position(&self, a: &Addr) -> Option<usize> {
        let mut i = self.home(a);
        for _ in 0..self.buckets.len() {
            let b = self.buckets.get(i)?;
            if b.slot == EMPTY {
                return None;
            }
            if b.addr == *a {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// The slot recorded for `a`.
    #[inline]
    pub(super) fn get(&self, a: &Addr) -> Option<u32> {
        self.position(a)
            .and_then(|i| self.buckets.get(i))
            .map(|b| b.slot)
    }

    /// Records `a` -> `slot`; `a` must not be present. False only when the
    /// map is full, which the neighbour table's sizing rules out.
    pub(super) fn insert(&mut self, a: Addr, slot: u32) -> bool {
        if self.len >= self.mask {
            return false;
        }
        let mut i = self.home(&a);
        for _ in 0..self.buckets.len() {
            match self.buckets.get_mut(i) {
                Some(b) if b.slot == EMPTY => {
                    *b = Bucket { addr: a, slot };
                    self.len += 1;
                    return true;
                }
                Some(_) => i = (i + 1) & self.mask,
                None => return false,
            }
        }
        false
    }

    /// Forgets `a`, returning its slot.
    pub(super) fn remove(&mut self, a: &Addr) -> Option<u32> {
        let mut hole = self.position(a)?;
        let slot = self.buckets.get(hole)?.slot;
        // Backward-shift: pull later members of the probe run into the hole
        // unless their home lies cyclically in (hole, j], where they would
        // become unreachable.
        let mut j = hole;
        for _ in 0..self.buckets.len() {
            j = (j + 1) & self.mask;
            let Some(&b) = self.buckets.get(j) else { break };
            if b.slot == EMPTY {
                break;
            }
            let home = self.home(&b.addr);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                if let Some(h) = self.buckets.get_mut(hole) {
                    *h = b;
                }
                hole = j;
            }
        }
        if let Some(h) = self.buckets.get_mut(hole) {
            h.slot = EMPTY;
        }
        self.len -= 1;
        Some(slot)
    }

    /// Heap bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn agrees_with_a_hashmap_under_churn() {
        let mut idx = AddrIndex::new(64);
        let mut model: HashMap<Addr, u32> = HashMap::new();
        let mut x = 0x1234_5678_9abc_def0u64;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // 100 distinct addresses for at most 64 live: inserts, hits and misses all occur.
            let a = Addr::v4(10, 0, 0, (x % 100) as u8);
            if model.contains_key(&a) {
                if x & 0x100 == 0 {
                    assert_eq!(idx.remove(&a), model.remove(&a));
                } else {
                    assert_eq!(idx.get(&a), model.get(&a).copied());
                }
            } else if model.len() < 64 {
                assert!(idx.insert(a, step));
                model.insert(a, step);
            } else {
                assert_eq!(idx.get(&a), None);
            }
        }
        for i in 0..=255u8 {
            let a = Addr::v4(10, 0, 0, i);
            assert_eq!(idx.get(&a), model.get(&a).copied());
        }
        assert_eq!(idx.len, model.len());
    }
}

//! The per-source state of one worker: a bounded, preallocated table.
//!
//! A source is a service and a client address masked to the service's
//! source prefix. The table is set-associative: a keyed hash picks a set of
//! [`WAYS`] slots; a lookup reads one cache line of tags and, on a tag
//! match, the entry. A new source takes a free slot of its set or evicts
//! one: the least recently seen source of the set that holds no
//! connection, or, when all of them hold some, the least recently seen
//! (counted as a busy eviction, [`SrcTable::busy_evictions`]).
//!
//! **Trade-off.** Memory is fixed (64 bytes per slot plus 8 of tags), so a
//! flood of random sources cannot grow it; it only cycles through the
//! slots. An evicted source that comes back starts with full buckets and no
//! connections counted, so eviction can let it exceed its limit, once per
//! eviction. To be evicted, a source must stay silent while [`WAYS`] newer
//! sources land in its set: with a table of `E` slots that takes about `E`
//! new sources between two of its packets. A source sending at or above its
//! limit is seen often and stays; one that slows down enough to be evicted
//! was within its limit anyway. A flood of fresh sources large enough to
//! cycle the table every second (65,536 per second per worker with the
//! default size) makes every source look new: that is the case the
//! service-wide limits are for, and rvsd's drop counters show it
//! (`limit_*` under a service next to `rvsadm -ln --rate`). Sources holding
//! connections are evicted last, so their connection counts survive a
//! flood of sources that hold none (spoofed SYNs refused by another limit,
//! say). The hash is keyed with a per-worker random seed, so a sender cannot
//! aim its sources at one set.

use crate::addr::Addr;
use crate::hash::avalanche;

use super::bucket::Bucket;

/// Slots per set.
pub const WAYS: usize = 8;

/// Tag bit: the entry holds connections (evicted last).
const BUSY: u32 = 1 << 31;
/// Tag bits that hold the hash fingerprint (never zero: zero is a free slot).
const FP: u32 = !BUSY;

/// Which source: a service and a (masked) client address.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SrcKey {
    /// The service's stable id.
    pub svc: u32,
    /// The client address masked to the service's source prefix.
    pub addr: Addr,
}

/// The state of one source.
#[derive(Copy, Clone, Debug, Default)]
#[repr(align(64))]
pub struct SrcEntry {
    /// Which source.
    pub key: SrcKey,
    /// Its connections on this worker (made while a per-source limit was set).
    pub conns: u32,
    /// When its buckets were last refilled.
    pub last_ms: u64,
    /// New-connection tokens.
    pub conn: Bucket,
    /// Packet tokens.
    pub pkt: Bucket,
    /// Byte tokens.
    pub byte: Bucket,
}

#[derive(Copy, Clone, Debug, Default)]
struct Tag {
    /// Fingerprint (0: free) and [`BUSY`].
    tag: u32,
    /// Low 32 bits of the millisecond the source was last seen.
    seen: u32,
}

/// A bounded table of per-source state (see the module doc).
#[derive(Debug, Default)]
pub struct SrcTable {
    tags: Vec<Tag>,
    ents: Vec<SrcEntry>,
    sets_mask: usize,
    seed: u64,
    evictions: u64,
    busy_evictions: u64,
}

impl SrcTable {
    /// A table of at least `slots` slots (rounded up to a power of two
    /// sets of [`WAYS`]), allocated now; 0 makes an empty table that holds
    /// nothing. `seed` keys the hash.
    pub fn new(slots: usize, seed: u64) -> SrcTable {
        if slots == 0 {
            return SrcTable::default();
        }
        let sets = slots.div_ceil(WAYS).next_power_of_two();
        SrcTable {
            tags: vec![Tag::default(); sets * WAYS],
            ents: vec![SrcEntry::default(); sets * WAYS],
            sets_mask: sets - 1,
            seed,
            evictions: 0,
            busy_evictions: 0,
        }
    }

    /// Number of slots (0: not allocated).
    pub fn capacity(&self) -> usize {
        self.ents.len()
    }

    /// Heap bytes of the table (allocated whole when a per-source limit is
    /// first set; its size follows `limit_sources`, not the connections).
    pub fn memory_bytes(&self) -> usize {
        self.tags.capacity() * std::mem::size_of::<Tag>()
            + self.ents.capacity() * std::mem::size_of::<SrcEntry>()
    }

    /// Sources evicted to make room for new ones.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Evictions of sources that still held connections (their counts were lost).
    pub fn busy_evictions(&self) -> u64 {
        self.busy_evictions
    }

    /// Sources held now.
    pub fn len(&self) -> usize {
        self.tags.iter().filter(|t| t.tag != 0).count()
    }

    /// Whether the table holds no source.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keyed: the low half of the address goes through a bijection keyed
    /// by the seed before the high half and the service join it, so that
    /// two sources collide only by chance, whatever their addresses.
    #[inline]
    fn hash(&self, k: &SrcKey) -> u64 {
        let v = k.addr.as_u128();
        let h = avalanche(self.seed ^ v as u64);
        avalanche(h ^ (v >> 64) as u64 ^ u64::from(k.svc).rotate_left(32))
    }

    /// The slot of `k`, if present, without marking it seen.
    #[inline]
    pub fn lookup(&self, k: &SrcKey) -> Option<usize> {
        if self.ents.is_empty() {
            return None;
        }
        let h = self.hash(k);
        let base = (h as usize & self.sets_mask) * WAYS;
        let fp = ((h >> 32) as u32 & FP) | 1;
        let tags = self.tags.get(base..base + WAYS)?;
        let ents = self.ents.get(base..base + WAYS)?;
        tags.iter()
            .zip(ents)
            .position(|(t, e)| t.tag & FP == fp && e.key == *k)
            .map(|w| base + w)
    }

    /// The slot of `k`, if present; marks it seen at `now_ms`.
    #[inline]
    pub fn find(&mut self, k: &SrcKey, now_ms: u64) -> Option<usize> {
        let i = self.lookup(k)?;
        self.tags[i].seen = now_ms as u32;
        Some(i)
    }

    /// The slot of `k`, inserting it (from `init`) when absent, evicting
    /// another source of its set if the set is full; `None` only when the
    /// table is not allocated.
    pub fn find_or_insert(
        &mut self,
        k: &SrcKey,
        now_ms: u64,
        init: impl FnOnce() -> SrcEntry,
    ) -> Option<usize> {
        if let Some(i) = self.find(k, now_ms) {
            return Some(i);
        }
        if self.ents.is_empty() {
            return None;
        }
        let h = self.hash(k);
        let base = (h as usize & self.sets_mask) * WAYS;
        let fp = ((h >> 32) as u32 & FP) | 1;
        let now = now_ms as u32;
        // A free slot, else the oldest idle source, else the oldest.
        let mut victim = None;
        let mut idle: Option<(u32, usize)> = None;
        let mut any: Option<(u32, usize)> = None;
        for i in base..base + WAYS {
            let t = self.tags[i];
            if t.tag == 0 {
                victim = Some(i);
                break;
            }
            let age = now.wrapping_sub(t.seen);
            if t.tag & BUSY == 0 && idle.is_none_or(|(a, _)| age > a) {
                idle = Some((age, i));
            }
            if any.is_none_or(|(a, _)| age > a) {
                any = Some((age, i));
            }
        }
        let i = match (victim, idle, any) {
            (Some(i), _, _) => i,
            (None, Some((_, i)), _) => {
                self.evictions += 1;
                i
            }
            (None, None, Some((_, i))) => {
                self.evictions += 1;
                self.busy_evictions += 1;
                i
            }
            (None, None, None) => return None,
        };
        let mut e = init();
        e.key = *k;
        self.ents[i] = e;
        self.tags[i] = Tag { tag: fp, seen: now };
        Some(i)
    }

    /// The entry in slot `i`.
    #[inline]
    pub fn entry_mut(&mut self, i: usize) -> &mut SrcEntry {
        &mut self.ents[i]
    }

    /// Records whether slot `i` holds connections (such sources are evicted last).
    #[inline]
    pub fn set_busy(&mut self, i: usize, busy: bool) {
        if let Some(t) = self.tags.get_mut(i) {
            match busy {
                true => t.tag |= BUSY,
                false => t.tag &= !BUSY,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(svc: u32, n: u32) -> SrcKey {
        SrcKey {
            svc,
            addr: Addr::from_v4_bytes(n.to_be_bytes()),
        }
    }

    fn entry() -> SrcEntry {
        SrcEntry::default()
    }

    #[test]
    fn finds_what_it_inserted_per_service() {
        let mut t = SrcTable::new(1024, 7);
        assert_eq!(t.capacity(), 1024);
        let a = t.find_or_insert(&key(1, 10), 0, entry).unwrap();
        let b = t.find_or_insert(&key(2, 10), 0, entry).unwrap();
        assert_ne!(a, b, "one source of two services is two entries");
        t.entry_mut(a).conns = 3;
        assert_eq!(t.find(&key(1, 10), 1), Some(a));
        assert_eq!(t.entry_mut(a).conns, 3);
        assert_eq!(t.find(&key(1, 11), 1), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn an_empty_table_holds_nothing() {
        let mut t = SrcTable::new(0, 1);
        assert_eq!(t.capacity(), 0);
        assert_eq!(t.find_or_insert(&key(1, 1), 0, entry), None);
    }

    #[test]
    fn a_flood_of_sources_keeps_the_size_and_evicts_the_oldest() {
        let mut t = SrcTable::new(64, 3);
        let cap = t.capacity();
        // A source seen at every step of a flood of a million new ones.
        let hot = key(1, 0xffff_0001);
        for n in 0..1_000_000u32 {
            let now = u64::from(n);
            t.find_or_insert(&hot, now, entry).unwrap();
            t.find_or_insert(&key(1, n), now, entry).unwrap();
        }
        assert_eq!(t.capacity(), cap, "no growth");
        assert_eq!(t.len(), cap);
        assert!(t.evictions() >= 1_000_000 - cap as u64);
        assert!(
            t.find(&hot, 2_000_000).is_some(),
            "a source seen more recently than its set's newcomers stays"
        );
        // The oldest of a set goes first: fill a set, then add one more.
        let mut t = SrcTable::new(WAYS, 9); // one set
        for n in 0..WAYS as u32 {
            t.find_or_insert(&key(1, n), u64::from(n), entry).unwrap();
        }
        t.find(&key(1, 0), 100); // refreshed: now the newest
        t.find_or_insert(&key(1, 99), 101, entry).unwrap();
        assert!(t.find(&key(1, 0), 102).is_some());
        assert!(
            t.find(&key(1, 1), 102).is_none(),
            "the least recently seen went"
        );
    }

    #[test]
    fn sources_with_connections_are_evicted_last() {
        let mut t = SrcTable::new(WAYS, 5); // one set
        let busy = t.find_or_insert(&key(1, 1000), 0, entry).unwrap();
        t.entry_mut(busy).conns = 1;
        t.set_busy(busy, true);
        for n in 0..10_000u32 {
            t.find_or_insert(&key(1, n), u64::from(n) + 1, entry)
                .unwrap();
        }
        let i = t.find(&key(1, 1000), 20_000).expect("kept while busy");
        assert_eq!(t.entry_mut(i).conns, 1);
        assert_eq!(t.busy_evictions(), 0);
        // When every slot is busy, the oldest goes anyway (and it is counted):
        // seven new busy sources take the idle slots, the eighth evicts 1000.
        for n in 0..WAYS as u32 {
            let i = t.find_or_insert(&key(2, n), 30_000, entry).unwrap();
            t.set_busy(i, true);
        }
        assert_eq!(t.busy_evictions(), 1);
        assert!(t.find(&key(1, 1000), 30_001).is_none());
        let i = t.find(&key(2, 5), 30_001).unwrap();
        t.set_busy(i, false);
        t.find_or_insert(&key(3, 0), 30_002, entry).unwrap();
        assert!(
            t.find(&key(2, 5), 30_003).is_none(),
            "the idle one went first"
        );
        assert!(t.find(&key(2, 0), 30_003).is_some(), "older, but busy");
        assert_eq!(t.busy_evictions(), 1);
    }

    #[test]
    fn the_seed_changes_where_sources_land() {
        // With another seed, the sources that share a set are others.
        let set_of = |seed: u64, n: u32| {
            let t = SrcTable::new(1 << 12, seed);
            t.hash(&key(1, n)) as usize & t.sets_mask
        };
        let same: usize = (0..1000u32)
            .filter(|&n| set_of(1, n) == set_of(1, 0))
            .count();
        let still: usize = (0..1000u32)
            .filter(|&n| set_of(1, n) == set_of(1, 0) && set_of(2, n) == set_of(2, 0))
            .count();
        assert!(same >= 1);
        assert!(
            still <= 2,
            "{still} of {same} still collide under another seed"
        );
    }
}

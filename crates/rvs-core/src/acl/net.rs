//! [`NetTable`]: addresses and prefixes of both families, each with a 32-bit
//! value, looked up by longest prefix without allocating.
//!
//! One hash map per prefix length in use (as the route table does), so a
//! lookup costs one probe per length present. A large IPv4 table also gets an
//! index of 65,536 slots, one per /16: the lengths longer than /16 that occur
//! inside that /16 (a bit mask) and the value of the longest prefix of /16 or
//! shorter that covers it. A lookup then probes only the lengths that occur
//! in the address's /16: none at all for an address far from every entry,
//! however many entries there are.

use std::hash::Hash;

use crate::addr::Addr;
use crate::hash::FastMap;

/// IPv4 entries from which a table builds its /16 index.
const INDEX_MIN: usize = 1024;

/// "No value" in an index slot.
const NONE: u32 = u32::MAX;

/// A key type of one address family.
trait Key: Copy + Eq + Hash {
    const WIDTH: u8;
    /// Keeps the top `plen` bits.
    fn masked(self, plen: u8) -> Self;
}

impl Key for u32 {
    const WIDTH: u8 = 32;
    #[inline]
    fn masked(self, plen: u8) -> u32 {
        let shift = u32::from(Self::WIDTH.saturating_sub(plen));
        self & u32::MAX.checked_shl(shift).unwrap_or(0)
    }
}

impl Key for u128 {
    const WIDTH: u8 = 128;
    #[inline]
    fn masked(self, plen: u8) -> u128 {
        let shift = u32::from(Self::WIDTH.saturating_sub(plen));
        self & u128::MAX.checked_shl(shift).unwrap_or(0)
    }
}

/// One /16 of the IPv4 index.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Bit `i` set: some entry of length `17 + i` lies inside this /16.
    longer: u16,
    /// Value of the longest entry of length <= 16 covering this /16, or [`NONE`].
    short: u32,
}

/// The entries of one family.
#[derive(Clone, Debug)]
struct Fam<K: Key> {
    /// Index = prefix length; empty maps do not allocate.
    by_len: Vec<FastMap<K, u32>>,
    /// Lengths with at least one entry, longest first.
    active: Vec<u8>,
    len: usize,
}

impl<K: Key> Fam<K> {
    fn new() -> Self {
        Fam {
            by_len: (0..=K::WIDTH).map(|_| FastMap::default()).collect(),
            active: Vec::new(),
            len: 0,
        }
    }

    fn map(&self, plen: u8) -> Option<&FastMap<K, u32>> {
        self.by_len.get(usize::from(plen))
    }

    /// Inserts or replaces; returns the previous value.
    fn insert(&mut self, key: K, plen: u8, v: u32) -> Option<u32> {
        let map = self.by_len.get_mut(usize::from(plen))?;
        let old = map.insert(key.masked(plen), v);
        if old.is_none() {
            self.len += 1;
            if !self.active.contains(&plen) {
                self.active.push(plen);
                self.active.sort_unstable_by(|a, b| b.cmp(a));
            }
        }
        old
    }

    fn remove(&mut self, key: K, plen: u8) -> Option<u32> {
        let map = self.by_len.get_mut(usize::from(plen))?;
        let old = map.remove(&key.masked(plen));
        if old.is_some() {
            self.len -= 1;
            if map.is_empty() {
                self.active.retain(|l| *l != plen);
            }
        }
        old
    }

    fn get(&self, key: K, plen: u8) -> Option<u32> {
        self.map(plen)?.get(&key.masked(plen)).copied()
    }

    /// Longest match by probing every active length.
    #[inline]
    fn lookup(&self, key: K) -> Option<u32> {
        for &l in &self.active {
            if let Some(v) = self.map(l).and_then(|m| m.get(&key.masked(l))) {
                return Some(*v);
            }
        }
        None
    }

    fn clear(&mut self) {
        for m in &mut self.by_len {
            *m = FastMap::default();
        }
        self.active.clear();
        self.len = 0;
    }

    fn iter(&self) -> impl Iterator<Item = (K, u8, u32)> + '_ {
        self.active.iter().flat_map(move |&l| {
            self.map(l)
                .into_iter()
                .flat_map(move |m| m.iter().map(move |(k, v)| (*k, l, *v)))
        })
    }

    fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(K, u32)>() + 1;
        self.by_len.iter().map(|m| m.capacity() * entry).sum()
    }
}

/// Prefixes of both families with a value each, longest match first.
#[derive(Clone, Debug)]
pub struct NetTable {
    v4: Fam<u32>,
    v6: Fam<u128>,
    /// The /16 index of `v4`, when it is large (built by [`NetTable::reindex`]).
    index: Option<Box<[Slot]>>,
}

impl Default for NetTable {
    fn default() -> Self {
        NetTable::new()
    }
}

impl NetTable {
    /// An empty table.
    pub fn new() -> NetTable {
        NetTable {
            v4: Fam::new(),
            v6: Fam::new(),
            index: None,
        }
    }

    /// Entries of both families.
    pub fn len(&self) -> usize {
        self.v4.len + self.v6.len
    }

    /// Whether the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts `addr/plen` (host bits ignored) with value `v`, replacing and
    /// returning an earlier value of the same prefix. A length past the
    /// family's width is refused (`None`, nothing changed). Call
    /// [`NetTable::reindex`] after a batch of changes.
    pub fn insert(&mut self, addr: &Addr, plen: u8, v: u32) -> Option<u32> {
        if addr.is_v4() {
            self.v4.insert(addr.v4_u32(), plen, v)
        } else {
            self.v6.insert(addr.as_u128(), plen, v)
        }
    }

    /// Removes `addr/plen`; returns its value if it was there.
    pub fn remove(&mut self, addr: &Addr, plen: u8) -> Option<u32> {
        if addr.is_v4() {
            self.v4.remove(addr.v4_u32(), plen)
        } else {
            self.v6.remove(addr.as_u128(), plen)
        }
    }

    /// The value of exactly `addr/plen`.
    pub fn get(&self, addr: &Addr, plen: u8) -> Option<u32> {
        if addr.is_v4() {
            self.v4.get(addr.v4_u32(), plen)
        } else {
            self.v6.get(addr.as_u128(), plen)
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
        self.index = None;
    }

    /// Rebuilds the /16 index after changes (or drops it for a small table).
    /// Lookups are correct without it, only slower on a large table; they are
    /// wrong with a stale one, so call it after every batch of changes.
    pub fn reindex(&mut self) {
        if self.v4.len < INDEX_MIN {
            self.index = None;
            return;
        }
        let mut slots = vec![
            Slot {
                longer: 0,
                short: NONE,
            };
            1 << 16
        ]
        .into_boxed_slice();
        // Short prefixes from the shortest up, so that a longer one overrides.
        let mut shorts: Vec<u8> = self
            .v4
            .active
            .iter()
            .copied()
            .filter(|l| *l <= 16)
            .collect();
        shorts.sort_unstable();
        for l in shorts {
            let Some(m) = self.v4.map(l) else { continue };
            let span = 1usize << (16 - l);
            for (k, v) in m {
                let first = (*k >> 16) as usize;
                for s in slots.iter_mut().skip(first).take(span) {
                    s.short = *v;
                }
            }
        }
        for &l in self.v4.active.iter().filter(|l| **l > 16) {
            let Some(m) = self.v4.map(l) else { continue };
            let bit = 1u16 << (l - 17);
            for k in m.keys() {
                if let Some(s) = slots.get_mut((*k >> 16) as usize) {
                    s.longer |= bit;
                }
            }
        }
        self.index = Some(slots);
    }

    /// The value of the longest prefix containing `a`. No allocation.
    #[inline]
    pub fn lookup(&self, a: &Addr) -> Option<u32> {
        if !a.is_v4() {
            return self.v6.lookup(a.as_u128());
        }
        let k = a.v4_u32();
        let Some(index) = &self.index else {
            return self.v4.lookup(k);
        };
        let slot = index.get((k >> 16) as usize)?;
        let mut longer = slot.longer;
        while longer != 0 {
            let top = 15 - longer.leading_zeros() as u8;
            let l = 17 + top;
            if let Some(v) = self.v4.map(l).and_then(|m| m.get(&k.masked(l))) {
                return Some(*v);
            }
            longer &= !(1u16 << top);
        }
        (slot.short != NONE).then_some(slot.short)
    }

    /// Every entry as (network, length, value), IPv4 first, longer prefixes
    /// first within a family, in no particular order within a length.
    pub fn iter(&self) -> impl Iterator<Item = (Addr, u8, u32)> + '_ {
        let v4 = self
            .v4
            .iter()
            .map(|(k, l, v)| (Addr::from_v4_bytes(k.to_be_bytes()), l, v));
        let v6 = self.v6.iter().map(|(k, l, v)| (Addr::from_u128(k), l, v));
        v4.chain(v6)
    }

    /// Approximate heap bytes (tables and index).
    pub fn heap_bytes(&self) -> usize {
        let index = self
            .index
            .as_ref()
            .map_or(0, |i| i.len() * std::mem::size_of::<Slot>());
        self.v4.heap_bytes() + self.v6.heap_bytes() + index
    }
}

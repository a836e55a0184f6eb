//! [`NetTable`]: addresses and prefixes of both families, each with a 32-bit
//! value, looked up by longest prefix without allocating.
//!
//! One hash map per prefix length in use (as the route table does) holds
//! the entries; a small table is looked up by probing each length, longest
//! first. A large IPv4 table is also flattened by [`NetTable::reindex`] into
//! the address ranges between prefix boundaries, each with the value of the
//! longest prefix covering it, sorted, with the first range of every /20
//! indexed: a lookup is one load from the 1,048,577-entry index and a
//! search among the few boundaries of that /20 (one or two for most), the
//! same for one prefix length as for 32 of them. Before that, a bitmap of
//! the /24s any entry touches (2 MiB) answers most addresses far from every
//! entry with one load: a source that matches nothing is the common case.

use std::sync::Arc;

use crate::addr::Addr;
use crate::prefix::{PrefixKey, PrefixMap};

/// IPv4 entries from which a table builds its flat index.
const INDEX_MIN: usize = 1024;

/// "No value" in the flat index (values must stay below it).
const NONE: u32 = u32::MAX;

/// The IPv4 entries flattened: `starts[i]..starts[i + 1]` has value
/// `values[i]` ([`NONE`]: no prefix), `starts[0]` is 0, and `slot[s]` is
/// the index of the first range starting in the /20 `s` or later, so the
/// range holding an address of that /20 is one of `slot[s] - 1 ..
/// slot[s + 1]` (one or two for most /20s). Bit `n` of `touched` is set
/// when some entry covers part of the /24 `n`.
#[derive(Clone, Debug)]
pub(super) struct Flat {
    starts: Box<[u32]>,
    values: Box<[u32]>,
    slot: Box<[u32]>,
    touched: Box<[u64]>,
}

/// Bits of an address below a slot of [`Flat`] (a /20).
const SLOT_SHIFT: u32 = 12;

/// Words of a bitmap with one bit per IPv4 /24.
const TOUCH_WORDS: usize = (1 << 24) / 64;

/// Sets the bits of the /24s `lo >> 8 ..= hi >> 8`.
fn touch(bits: &mut [u64], lo: u32, hi: u32) {
    let (a, b) = ((lo >> 8) as usize, (hi >> 8) as usize);
    let mut n = a;
    while n <= b {
        if n % 64 == 0 && n + 63 <= b {
            if let Some(w) = bits.get_mut(n / 64) {
                *w = u64::MAX;
            }
            n += 64;
        } else {
            if let Some(w) = bits.get_mut(n / 64) {
                *w |= 1 << (n % 64);
            }
            n += 1;
        }
    }
}

impl Flat {
    /// Flattens well-nested ranges (prefixes, or disjoint ranges) given as
    /// (first, last, value).
    pub(super) fn build(mut nets: Vec<(u32, u32, u32)>) -> Flat {
        let mut touched = vec![0u64; TOUCH_WORDS].into_boxed_slice();
        for (lo, hi, _) in &nets {
            touch(&mut touched, *lo, *hi);
        }
        // Outer prefixes first at a shared start.
        nets.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut bounds: Vec<(u64, u32)> = vec![(0, NONE)];
        let bound = |b: &mut Vec<(u64, u32)>, start: u64, v: u32| match b.last_mut() {
            Some(last) if last.0 == start => last.1 = v,
            Some(last) if last.1 == v => {}
            _ => b.push((start, v)),
        };
        let mut open: Vec<(u32, u32)> = Vec::new();
        let close = |open: &mut Vec<(u32, u32)>, b: &mut Vec<(u64, u32)>, before: u64| {
            while let Some(&(hi, _)) = open.last() {
                if u64::from(hi) >= before {
                    break;
                }
                open.pop();
                let v = open.last().map_or(NONE, |o| o.1);
                bound(b, u64::from(hi) + 1, v);
            }
        };
        for (lo, hi, v) in nets {
            close(&mut open, &mut bounds, u64::from(lo));
            open.push((hi, v));
            bound(&mut bounds, u64::from(lo), v);
        }
        close(&mut open, &mut bounds, 1 << 32);
        // The end of the address space closes what is open: nothing starts there.
        bounds.retain(|b| b.0 <= u64::from(u32::MAX));
        let starts: Vec<u32> = bounds.iter().map(|b| b.0 as u32).collect();
        let values: Vec<u32> = bounds.iter().map(|b| b.1).collect();
        let mut slot = Vec::with_capacity((1 << (32 - SLOT_SHIFT)) + 1);
        let mut j = 0;
        for s in 0..=(1u64 << (32 - SLOT_SHIFT)) {
            let first = s << SLOT_SHIFT;
            while j < bounds.len() && bounds[j].0 < first {
                j += 1;
            }
            slot.push(j as u32);
        }
        Flat {
            starts: starts.into(),
            values: values.into(),
            slot: slot.into(),
            touched,
        }
    }

    /// The value of the range holding `k`.
    #[inline]
    pub(super) fn lookup(&self, k: u32) -> Option<u32> {
        let n = (k >> 8) as usize;
        if self.touched.get(n / 64)? & (1 << (n % 64)) == 0 {
            return None;
        }
        let s = (k >> SLOT_SHIFT) as usize;
        // The range holding the slot's first address starts before the
        // slot or at it: one before the first starting in it, at most.
        let a = (*self.slot.get(s)? as usize).saturating_sub(1);
        let b = *self.slot.get(s + 1)? as usize;
        // starts[a] <= k (starts[0] is 0): at least one range qualifies.
        let n = self.starts.get(a..b)?.partition_point(|x| *x <= k);
        let v = *self.values.get(a + n.checked_sub(1)?)?;
        (v != NONE).then_some(v)
    }

    /// The ranges whose value passes `want`, in address order, as (first, last).
    fn ranges(&self, want: &impl Fn(u32) -> bool, out: &mut Vec<(u32, u32)>) {
        for (i, (s, v)) in self.starts.iter().zip(self.values.iter()).enumerate() {
            if *v == NONE || !want(*v) {
                continue;
            }
            let end = self.starts.get(i + 1).map_or(u32::MAX, |n| n - 1);
            match out.last_mut() {
                Some(last) if u64::from(last.1) + 1 == u64::from(*s) => last.1 = end,
                _ => out.push((*s, end)),
            }
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        4 * (self.starts.len() + self.values.len() + self.slot.len()) + 8 * self.touched.len()
    }
}

/// The entries of one family: keys are masked to their prefix here.
#[derive(Clone, Debug)]
struct Fam<K: PrefixKey> {
    map: PrefixMap<K, u32>,
}

impl<K: PrefixKey> Fam<K> {
    fn new() -> Self {
        Fam {
            map: PrefixMap::new(),
        }
    }

    /// Inserts or replaces; returns the previous value.
    fn insert(&mut self, key: K, plen: u8, v: u32) -> Option<u32> {
        self.map.insert(key.masked(plen), plen, v).ok().flatten()
    }

    fn remove(&mut self, key: K, plen: u8) -> Option<u32> {
        self.map.remove(key.masked(plen), plen)
    }

    fn get(&self, key: K, plen: u8) -> Option<u32> {
        self.map.get(key.masked(plen), plen).copied()
    }

    /// Longest match by probing every active length.
    #[inline]
    fn lookup(&self, key: K) -> Option<u32> {
        self.map.lookup(key).copied()
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn clear(&mut self) {
        self.map.clear();
    }

    fn iter(&self) -> impl Iterator<Item = (K, u8, u32)> + '_ {
        self.map.iter().map(|(k, l, v)| (k, l, *v))
    }

    fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(K, u32)>() + 1;
        self.map.maps().iter().map(|m| m.capacity() * entry).sum()
    }
}

/// Prefixes of both families with a value each, longest match first.
#[derive(Clone, Debug)]
pub struct NetTable {
    v4: Fam<u32>,
    v6: Fam<u128>,
    /// `v4` flattened, when it is large (built by [`NetTable::reindex`];
    /// shared with the snapshot's deny index and with clones).
    flat: Option<Arc<Flat>>,
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
            flat: None,
        }
    }

    /// Entries of both families.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
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
        self.flat = None;
    }

    /// Rebuilds the flat index after changes (or drops it for a small
    /// table). Lookups are correct without it, only slower on a large table;
    /// they are wrong with a stale one, so call it after every batch of
    /// changes. Values must be below `u32::MAX`.
    pub fn reindex(&mut self) {
        if self.v4.len() < INDEX_MIN {
            self.flat = None;
            return;
        }
        let nets = self
            .v4
            .iter()
            .map(|(k, l, v)| {
                (
                    k,
                    k | !u32::MAX.checked_shl(u32::from(32 - l)).unwrap_or(0),
                    v,
                )
            })
            .collect();
        self.flat = Some(Arc::new(Flat::build(nets)));
    }

    /// The value of the longest prefix containing `a`. No allocation.
    #[inline]
    pub fn lookup(&self, a: &Addr) -> Option<u32> {
        if !a.is_v4() {
            return self.v6.lookup(a.as_u128());
        }
        match &self.flat {
            Some(f) => f.lookup(a.v4_u32()),
            None => self.v4.lookup(a.v4_u32()),
        }
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

    /// The flat index of the IPv4 entries, when the table has one.
    pub(super) fn v4_flat(&self) -> Option<&Arc<Flat>> {
        self.flat.as_ref()
    }

    /// Appends IPv4 ranges covering every address whose longest prefix has
    /// a value passing `want`: exactly those ranges, in address order, for a
    /// table with a flat index; for a small one, the prefixes whose own
    /// value passes (a superset when a longer prefix inside one does not).
    pub(super) fn v4_ranges(&self, want: impl Fn(u32) -> bool, out: &mut Vec<(u32, u32)>) {
        match &self.flat {
            Some(f) => f.ranges(&want, out),
            None => {
                out.extend(self.v4.iter().filter(|e| want(e.2)).map(|(k, l, _)| {
                    (k, k | !u32::MAX.checked_shl(u32::from(32 - l)).unwrap_or(0))
                }))
            }
        }
    }

    /// Approximate heap bytes (tables and index).
    pub fn heap_bytes(&self) -> usize {
        let flat = self.flat.as_ref().map_or(0, |f| f.heap_bytes());
        self.v4.heap_bytes() + self.v6.heap_bytes() + flat
    }
}

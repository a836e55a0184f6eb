//! Prefixes of one address family, one hash map per prefix length, looked
//! up by longest prefix: the shared core of the route table
//! ([`crate::route`]) and of the allow/deny lists' [`crate::acl::NetTable`].
//!
//! A lookup costs one masked hash probe per distinct length in use
//! (typically a handful) and never allocates.

use std::hash::Hash;

use crate::hash::FastMap;

/// A key type of one address family (`u32` for IPv4, `u128` for IPv6).
pub(crate) trait PrefixKey: Copy + Eq + Hash {
    /// Bits in an address.
    const WIDTH: u8;
    /// Keeps the top `plen` bits (`plen` >= WIDTH keeps all).
    fn masked(self, plen: u8) -> Self;
}

impl PrefixKey for u32 {
    const WIDTH: u8 = 32;
    #[inline]
    fn masked(self, plen: u8) -> u32 {
        // A shift by the full width is `None` from `checked_shl`: that is /0.
        let shift = u32::from(Self::WIDTH.saturating_sub(plen));
        self & u32::MAX.checked_shl(shift).unwrap_or(0)
    }
}

impl PrefixKey for u128 {
    const WIDTH: u8 = 128;
    #[inline]
    fn masked(self, plen: u8) -> u128 {
        let shift = u32::from(Self::WIDTH.saturating_sub(plen));
        self & u128::MAX.checked_shl(shift).unwrap_or(0)
    }
}

/// Values by prefix of one family. Keys are stored as given: callers mask
/// them (or refuse host bits) before [`PrefixMap::insert`].
#[derive(Clone, Debug)]
pub(crate) struct PrefixMap<K: PrefixKey, V> {
    /// Index = prefix length; empty maps do not allocate, so 129 of them
    /// for IPv6 cost nothing until prefixes of those lengths exist.
    by_len: Vec<FastMap<K, V>>,
    /// Lengths with at least one entry, longest first.
    active: Vec<u8>,
    /// Entries in all maps.
    len: usize,
}

impl<K: PrefixKey, V> PrefixMap<K, V> {
    /// An empty map.
    pub(crate) fn new() -> Self {
        PrefixMap {
            by_len: (0..=K::WIDTH).map(|_| FastMap::default()).collect(),
            active: Vec::new(),
            len: 0,
        }
    }

    /// Inserts or replaces `key`/`plen`; returns the previous value.
    /// `Err(v)` (the value back) when `plen` is longer than the family's.
    pub(crate) fn insert(&mut self, key: K, plen: u8, v: V) -> Result<Option<V>, V> {
        let Some(map) = self.by_len.get_mut(usize::from(plen)) else {
            return Err(v);
        };
        let old = map.insert(key, v);
        if old.is_none() {
            self.len += 1;
            if let Err(pos) = self.active.binary_search_by(|l| plen.cmp(l)) {
                self.active.insert(pos, plen);
            }
        }
        Ok(old)
    }

    /// Removes exactly `key`/`plen`.
    pub(crate) fn remove(&mut self, key: K, plen: u8) -> Option<V> {
        let map = self.by_len.get_mut(usize::from(plen))?;
        let old = map.remove(&key)?;
        self.len -= 1;
        if map.is_empty() {
            self.active.retain(|l| *l != plen);
        }
        Some(old)
    }

    /// The value for exactly `key`/`plen`.
    pub(crate) fn get(&self, key: K, plen: u8) -> Option<&V> {
        self.by_len.get(usize::from(plen))?.get(&key)
    }

    /// Longest match for the address `key`, probing every length in use.
    #[inline]
    pub(crate) fn lookup(&self, key: K) -> Option<&V> {
        for &plen in &self.active {
            if let Some(v) = self
                .by_len
                .get(usize::from(plen))
                .and_then(|m| m.get(&key.masked(plen)))
            {
                return Some(v);
            }
        }
        None
    }

    /// Entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// No entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every entry and frees the maps.
    pub(crate) fn clear(&mut self) {
        for m in &mut self.by_len {
            *m = FastMap::default();
        }
        self.active.clear();
        self.len = 0;
    }

    /// Entries as (key, prefix length, value), longest prefixes first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, u8, &V)> + '_ {
        self.active.iter().flat_map(move |&l| {
            self.by_len
                .get(usize::from(l))
                .into_iter()
                .flat_map(move |m| m.iter().map(move |(k, v)| (*k, l, v)))
        })
    }

    /// The maps, index = prefix length (for sizes and unordered walks).
    pub(crate) fn maps(&self) -> &[FastMap<K, V>] {
        &self.by_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_lengths_follow_entries() {
        let mut m: PrefixMap<u32, &str> = PrefixMap::new();
        assert_eq!(m.insert(0x0a00_0000, 8, "ten"), Ok(None));
        assert_eq!(m.insert(0x0a01_0000, 16, "ten-one"), Ok(None));
        assert_eq!(m.insert(0, 0, "default"), Ok(None));
        assert_eq!(m.insert(0, 33, "too long"), Err("too long"));
        assert_eq!(m.lookup(0x0a01_0203), Some(&"ten-one"));
        assert_eq!(m.lookup(0x0a02_0203), Some(&"ten"));
        assert_eq!(m.lookup(0x0b00_0001), Some(&"default"));
        assert_eq!(m.len(), 3);
        let lens: Vec<u8> = m.iter().map(|(_, l, _)| l).collect();
        assert_eq!(lens, vec![16, 8, 0]);
        assert_eq!(m.remove(0x0a01_0000, 16), Some("ten-one"));
        assert_eq!(m.remove(0x0a01_0000, 16), None);
        assert_eq!(m.lookup(0x0a01_0203), Some(&"ten"));
        // Exact lookups do not mask.
        assert_eq!(m.get(0x0a00_0001, 8), None);
        m.clear();
        assert!(m.is_empty());
        assert_eq!(m.lookup(0x0a00_0001), None);
    }

    #[test]
    fn masks_both_widths() {
        assert_eq!(0xffff_ffffu32.masked(0), 0);
        assert_eq!(0xffff_ffffu32.masked(24), 0xffff_ff00);
        assert_eq!(0xffff_ffffu32.masked(32), 0xffff_ffff);
        assert_eq!(u128::MAX.masked(0), 0);
        assert_eq!(u128::MAX.masked(128), u128::MAX);
        assert_eq!(u128::MAX.masked(127), u128::MAX - 1);
    }
}

//! The two-direction hash index of the conn table: cache-line buckets with
//! overflow counters (see the module doc of [`crate::conn`]).

use super::mem::{MemVec, TableMem};
use super::Tuple;

/// Entries per bucket: 10 × (u16 signature + u32 slot) + u32 overflow = 64 bytes.
pub(super) const WAYS: usize = 10;

/// One cache line of the index. Signatures first, so that matching a key touches
/// the front of the line only; the slot values are read for candidates.
#[repr(C, align(64))]
#[derive(Copy, Clone, Default)]
pub(super) struct Bucket {
    pub(super) sigs: [u16; WAYS],
    pub(super) slots: [u32; WAYS],
    /// Entries whose home is this bucket or an earlier one but that sit beyond it.
    pub(super) overflow: u32,
}

const K0: u64 = 0xa076_1d64_78bd_642f;
const K1: u64 = 0xe703_7ed1_a0b4_28db;
const K2: u64 = 0x8ebc_6af0_9c88_c6e3;
const K3: u64 = 0x5899_65cc_7537_4cc3;
const K4: u64 = 0x1d8e_4e27_c47d_124f;
const K5: u64 = 0x9e37_79b9_7f4a_7c15;

/// The 128-bit product folded to 64 bits: every input bit reaches the middle bits.
#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Hashes a tuple. Source and destination go through independent multiplies so
/// the CPU runs them in parallel; ports and proto join in the final multiply.
#[inline]
pub(super) fn hash_tuple(t: &Tuple, seed: u64) -> u64 {
    let s = u128::from_le_bytes(t.src.0);
    let d = u128::from_le_bytes(t.dst.0);
    let ports = u64::from(t.sport) | u64::from(t.dport) << 16 | u64::from(t.proto) << 32;
    let a = fold_mul(s as u64 ^ seed ^ K0, (s >> 64) as u64 ^ K1);
    let b = fold_mul(d as u64 ^ K2, (d >> 64) as u64 ^ K3);
    fold_mul(a ^ ports ^ K4, b ^ K5 ^ seed)
}

/// Signature stored in the bucket: the low 16 bits of the hash, never 0 (empty).
#[inline(always)]
pub(super) fn sig_of(h: u64) -> u16 {
    let s = h as u16;
    if s == 0 {
        1
    } else {
        s
    }
}

/// The index proper. Slot values are opaque `u32`s to it; matching a candidate
/// against the key is the caller's job (it needs the conn slab).
pub(super) struct Index {
    pub(super) buckets: MemVec<Bucket>,
    nb: u64,
    seed: u64,
}

impl Index {
    /// Room for `entries` entries at ≤ 50 % load (at least one bucket, and always
    /// strictly more entries than `entries`, so probing for a free entry ends).
    fn buckets_for(entries: usize) -> usize {
        (entries.saturating_mul(2)).div_ceil(WAYS).saturating_add(1)
    }

    /// Bytes of the bucket array of `Index::new(entries, ..)`.
    pub(super) fn bytes_for(entries: usize) -> usize {
        Index::buckets_for(entries).saturating_mul(std::mem::size_of::<Bucket>())
    }

    pub(super) fn new(entries: usize, seed: u64, mem: TableMem) -> Index {
        let nb = Index::buckets_for(entries);
        let mut buckets = MemVec::with_capacity_in(nb, mem.0);
        buckets.resize(nb, Bucket::default());
        Index {
            buckets,
            nb: nb as u64,
            seed,
        }
    }

    #[inline(always)]
    pub(super) fn hash(&self, t: &Tuple) -> u64 {
        hash_tuple(t, self.seed)
    }

    /// Home bucket of a hash: multiply-shift range reduction of the high 32 bits
    /// (`nb` < 2^32 is guaranteed by the table's capacity limit).
    #[inline(always)]
    pub(super) fn home(&self, h: u64) -> usize {
        (((h >> 32) * self.nb) >> 32) as usize
    }

    #[inline(always)]
    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// Bitmask of the entries of bucket `b` whose signature is `sig`. Branch-free so
    /// that batched lookups keep several bucket misses in flight.
    #[inline(always)]
    pub(super) fn sig_mask(&self, b: usize, sig: u16) -> u16 {
        let mut m = 0u16;
        if let Some(bk) = self.buckets.get(b) {
            for (w, &s) in bk.sigs.iter().enumerate() {
                m |= u16::from(s == sig) << w;
            }
        }
        m
    }

    /// The first slot value with hash `h` for which `is_match` holds.
    #[inline]
    pub(super) fn find(&self, h: u64, mut is_match: impl FnMut(u32) -> bool) -> Option<u32> {
        let sig = sig_of(h);
        let mut b = self.home(h);
        for _ in 0..self.buckets.len() {
            let bk = &self.buckets[b];
            for w in 0..WAYS {
                if bk.sigs[w] == sig && is_match(bk.slots[w]) {
                    return Some(bk.slots[w]);
                }
            }
            if bk.overflow == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    /// Buckets a lookup of hash `h` walks: its home, then one more per bucket
    /// whose overflow counter says entries of this or earlier homes lie beyond.
    pub(super) fn probe_len(&self, h: u64) -> usize {
        let mut b = self.home(h);
        for n in 1..=self.buckets.len() {
            if self.buckets[b].overflow == 0 {
                return n;
            }
            b = self.next(b);
        }
        self.buckets.len()
    }

    /// Adds an entry. Returns false only if every entry is taken, which the sizing
    /// rules out (the table never indexes more than half the entries).
    pub(super) fn insert(&mut self, h: u64, val: u32) -> bool {
        let sig = sig_of(h);
        let home = self.home(h);
        let mut b = home;
        for step in 0..self.buckets.len() {
            let bk = &mut self.buckets[b];
            if let Some(w) = bk.sigs.iter().position(|&s| s == 0) {
                bk.sigs[w] = sig;
                bk.slots[w] = val;
                // Counters go up only once a free entry is known to exist, so a
                // (by sizing impossible) failed insert changes nothing.
                let mut p = home;
                for _ in 0..step {
                    let o = &mut self.buckets[p].overflow;
                    *o = o.saturating_add(1);
                    p = self.next(p);
                }
                return true;
            }
            b = self.next(b);
        }
        false
    }

    /// Removes the entry (`h`, `val`) and decrements the overflow counters on its
    /// probe path. Returns false if no such entry is on the path.
    pub(super) fn remove(&mut self, h: u64, val: u32) -> bool {
        let sig = sig_of(h);
        let home = self.home(h);
        let mut b = home;
        for step in 0..self.buckets.len() {
            let bk = &mut self.buckets[b];
            if let Some(w) = (0..WAYS).find(|&w| bk.sigs[w] == sig && bk.slots[w] == val) {
                bk.sigs[w] = 0;
                bk.slots[w] = 0;
                let mut p = home;
                for _ in 0..step {
                    let o = &mut self.buckets[p].overflow;
                    *o = o.saturating_sub(1);
                    p = self.next(p);
                }
                return true;
            }
            if bk.overflow == 0 {
                return false;
            }
            b = self.next(b);
        }
        false
    }

    /// Removes every entry with slot value `val`, wherever it is. A safety net for a
    /// conn whose key fields were changed after insert (a pipeline bug): its entries
    /// cannot be found by hash any more. Overflow counters on the lost path stay
    /// high, which only costs extra probing, never a wrong answer.
    pub(super) fn purge(&mut self, val: u32) {
        for bk in self.buckets.iter_mut() {
            for w in 0..WAYS {
                if bk.sigs[w] != 0 && bk.slots[w] == val {
                    bk.sigs[w] = 0;
                    bk.slots[w] = 0;
                }
            }
        }
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }
}

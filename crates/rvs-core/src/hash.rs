//! A fast, deterministic hasher for the data path's internal maps.
//!
//! The keys of the routing table are masked addresses chosen by the operator,
//! not by the peer, so HashDoS resistance buys nothing here while SipHash would
//! cost a good share of a per-packet lookup. A multiply-xorshift mix is enough
//! to spread both the low bits (bucket index) and the high bits (the control
//! byte `std`'s table keeps per slot) of its output.

use std::hash::{BuildHasher, Hasher};

const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// Folds one 64-bit word into the running state.
#[inline]
fn fold(state: u64, word: u64) -> u64 {
    (state ^ word).wrapping_mul(K).rotate_left(31)
}

/// Final avalanche (the `fmix64` step of MurmurHash3), so that every input bit
/// reaches both ends of the output.
#[inline]
pub(crate) fn avalanche(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// A multiply-xorshift [`Hasher`]: deterministic across runs and processes.
#[derive(Clone, Copy, Debug, Default)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        avalanche(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            // `chunks(8)` never yields more than 8 bytes, so the copy fits.
            for (d, s) in w.iter_mut().zip(chunk) {
                *d = *s;
            }
            self.0 = fold(self.0, u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.0 = fold(self.0, u64::from(v));
    }

    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.0 = fold(self.0, u64::from(v));
    }

    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.0 = fold(self.0, u64::from(v));
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = fold(self.0, v);
    }

    #[inline]
    fn write_u128(&mut self, v: u128) {
        self.0 = fold(fold(self.0, v as u64), (v >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.0 = fold(self.0, v as u64);
    }
}

/// Builds [`FastHasher`]s; use as the `S` parameter of `std::collections::HashMap`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FastBuildHasher;

impl BuildHasher for FastBuildHasher {
    type Hasher = FastHasher;
    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher::default()
    }
}

/// A `HashMap` using [`FastHasher`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn h<T: Hash>(v: T) -> u64 {
        FastBuildHasher.hash_one(v)
    }

    #[test]
    fn deterministic_and_spreads_neighbouring_keys() {
        assert_eq!(h(0x0a00_0000u32), h(0x0a00_0000u32));
        // Masked prefixes differ only in a few high bits; they must still land
        // in different buckets of a small table and carry different control bytes.
        let a = h(0x0a00_0000u32);
        let b = h(0x0a01_0000u32);
        assert_ne!(a & 0xff, b & 0xff);
        assert_ne!(a >> 57, b >> 57);
        // Byte-slice hashing covers every chunk, including a short tail.
        assert_ne!(h([1u8; 9]), h([1u8; 8]));
    }
}

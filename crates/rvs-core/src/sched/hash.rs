//! Deterministic hashing and small number theory for the table-driven schedulers.
//!
//! The hashes must be identical on every worker, every process and every
//! restart (a source must keep landing on the same real server after a
//! control-plane rebuild), so nothing here is randomly keyed. Flows are
//! attacker-chosen, but the worst an attacker can do with a predictable hash
//! is steer his own connections, which he can do anyway by picking sources.

use crate::addr::Addr;

/// Seed domains: each use of the hash gets its own so that, say, a Maglev
/// permutation offset is independent of the same dest's ring points.
pub(crate) const SEED_SH: u64 = 0x5348_0000_0000_0001;
pub(crate) const SEED_RING_POINT: u64 = 0x4348_0000_0000_0001;
pub(crate) const SEED_RING_SRC: u64 = 0x4348_0000_0000_0002;
pub(crate) const SEED_MH_OFFSET: u64 = 0x4d48_0000_0000_0001;
pub(crate) const SEED_MH_SKIP: u64 = 0x4d48_0000_0000_0002;
pub(crate) const SEED_MH_LOOKUP: u64 = 0x4d48_0000_0001_0000;

/// A bijective 64-bit finaliser (Pelle Evensen's "moremur" constants for the
/// splitmix64 structure): every input bit affects every output bit.
#[inline]
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 27;
    x = x.wrapping_mul(0x3c79_ac49_2ba7_b653);
    x ^= x >> 33;
    x = x.wrapping_mul(0x1c69_b3f7_4ac4_ae35);
    x ^= x >> 27;
    x
}

/// Hashes an address and port under a seed.
///
/// Chained finaliser rounds rather than one multiply so that the two halves
/// of an IPv6 address and the port cannot cancel each other out.
#[inline]
pub(crate) fn hash_addr_port(addr: &Addr, port: u16, seed: u64) -> u64 {
    let v = addr.as_u128();
    let hi = (v >> 64) as u64;
    let lo = v as u64;
    let mut h = mix64(seed ^ 0x9e37_79b9_7f4a_7c15);
    h = mix64(h ^ hi);
    h = mix64(h ^ lo);
    mix64(h ^ u64::from(port))
}

/// Maps a uniform 64-bit hash onto `0..m` without a division (Lemire's
/// multiply-shift range reduction); `m` must be non-zero for a meaningful
/// result, and the result is always `< m` when it is.
#[inline]
pub(crate) fn reduce(h: u64, m: usize) -> usize {
    ((u128::from(h) * m as u128) >> 64) as usize
}

/// Greatest common divisor (0 when both are 0).
pub(crate) fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Trial division; only used at table-build time on numbers of a few million.
pub(crate) fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    // `checked_rem` rather than `% == 0`: clippy wants `is_multiple_of`,
    // which is newer than the workspace's rust-version.
    if n.checked_rem(2) == Some(0) {
        return n == 2;
    }
    let mut d = 3u64;
    while d.saturating_mul(d) <= n {
        if n.checked_rem(d) == Some(0) {
            return false;
        }
        d += 2;
    }
    true
}

/// The smallest prime `>= n`.
pub(crate) fn next_prime(n: u64) -> u64 {
    let mut p = n.max(2);
    while !is_prime(p) {
        p += 1;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes() {
        let small: Vec<u64> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(small, vec![2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65537));
        assert!(!is_prime(65535));
        assert_eq!(next_prime(65537), 65537);
        // 65538..65542 are composite: 65538 = 2*32769, 65539 is prime.
        assert_eq!(next_prime(65538), 65539);
        assert!(!is_prime(65541)); // 3 * 21847
    }

    #[test]
    fn gcd_values() {
        assert_eq!(gcd(12, 18), 6);
        assert_eq!(gcd(0, 5), 5);
        assert_eq!(gcd(5, 0), 5);
        assert_eq!(gcd(0, 0), 0);
        assert_eq!(gcd(7, 13), 1);
    }

    #[test]
    fn reduce_stays_in_range() {
        for &h in &[0u64, 1, u64::MAX, u64::MAX / 2, 0x8000_0000_0000_0000] {
            assert!(reduce(h, 65537) < 65537);
        }
        assert_eq!(reduce(u64::MAX, 10), 9);
        assert_eq!(reduce(0, 10), 0);
        // The top half of the hash space maps to the top half of the range.
        assert_eq!(reduce(1 << 63, 10), 5);
    }

    #[test]
    fn hash_depends_on_every_part() {
        let a = Addr::v4(10, 0, 0, 1);
        let b = Addr::v4(10, 0, 0, 2);
        let h = hash_addr_port(&a, 80, 1);
        assert_ne!(h, hash_addr_port(&b, 80, 1));
        assert_ne!(h, hash_addr_port(&a, 81, 1));
        assert_ne!(h, hash_addr_port(&a, 80, 2));
        assert_eq!(h, hash_addr_port(&a, 80, 1));
        let v6: Addr = "2001:db8::1".parse().unwrap();
        let v6b: Addr = "2001:db9::1".parse().unwrap();
        assert_ne!(hash_addr_port(&v6, 0, 1), hash_addr_port(&v6b, 0, 1));
    }

    #[test]
    fn mix_is_avalanching() {
        // Flipping one input bit flips roughly half of the output bits.
        let mut total = 0u32;
        for bit in 0..64 {
            total += (mix64(0x1234_5678) ^ mix64(0x1234_5678 ^ (1 << bit))).count_ones();
        }
        let avg = total as f64 / 64.0;
        assert!((24.0..40.0).contains(&avg), "avg flipped bits {avg}");
    }
}

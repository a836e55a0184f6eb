//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are carried as `u32` partial sums so that pieces (pseudo-header,
//! header, payload) can be added together before one final fold. Every
//! function here returns partial sums below 2^17, so callers may add many of
//! them without overflow.
//!
//! UDP is special: a computed checksum of 0 is sent as 0xffff (use
//! [`udp_fix`]), and a stored UDP checksum of 0 means "no checksum" and must be
//! left alone when rewriting the packet (use the `update_udp*` functions).
//! TCP, ICMP, ICMPv6 and IPv4 headers use the plain functions.

use crate::addr::{proto, Addr};

/// The one's-complement sum of `data` as big-endian 16-bit words (a trailing
/// odd byte is padded with zero), not folded to 16 bits.
///
/// The data is consumed 8 bytes at a time as `u64` with end-around carry,
/// which is congruent to the 16-bit sum modulo 0xffff (2^16 ≡ 1) and never
/// turns a nonzero sum into zero, so [`fold`] of the result is exactly the
/// RFC 1071 value.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let chunks = data.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let v = u64::from_be_bytes(w);
        let (s, carry) = acc.overflowing_add(v);
        acc = s + carry as u64;
    }
    // Fold the 64-bit accumulator to at most 17 bits before adding the tail.
    let mut s = (acc >> 32) + (acc & 0xffff_ffff);
    s = (s >> 32) + (s & 0xffff_ffff);
    s = (s >> 16) + (s & 0xffff);
    let mut t: u64 = 0;
    let pairs = rest.chunks_exact(2);
    if let [b] = pairs.remainder() {
        t += (*b as u64) << 8;
    }
    for p in pairs {
        t += u16::from_be_bytes([p[0], p[1]]) as u64;
    }
    s += t;
    s = (s >> 16) + (s & 0xffff);
    s as u32
}

/// Folds the carries of a partial sum into 16 bits (not complemented).
#[inline]
pub fn fold(sum: u32) -> u16 {
    let s = (sum >> 16) + (sum & 0xffff);
    let s = (s >> 16) + (s & 0xffff);
    s as u16
}

/// The checksum to store for a partial sum: `!fold(sum)`.
#[inline]
pub fn finish(sum: u32) -> u16 {
    !fold(sum)
}

/// The partial sum of the TCP/UDP/ICMPv6 pseudo-header: the IPv4 form
/// (RFC 793) when `src` is IPv4, else the IPv6 form (RFC 8200 §8.1).
///
/// `len` is the upper-layer length (header plus payload).
#[inline]
pub fn pseudo_header(src: &Addr, dst: &Addr, proto: u8, len: u32) -> u32 {
    // Both forms add the same words apart from the address widths: the IPv4
    // zero/proto/16-bit-length words and the IPv6 32-bit length/zero/next
    // header words have the same one's-complement sum.
    let addrs = if src.is_v4() {
        let (s, d) = (src.v4_u32(), dst.v4_u32());
        (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff)
    } else {
        sum(&src.0) + sum(&dst.0)
    };
    addrs + (len >> 16) + (len & 0xffff) + proto as u32
}

/// The checksum to store in the TCP/UDP/ICMPv6 segment `l4`, whose checksum
/// field must be zero. For UDP, a result of 0 is returned as 0xffff.
#[inline]
pub fn l4_checksum(src: &Addr, dst: &Addr, proto: u8, l4: &[u8]) -> u16 {
    let c = finish(pseudo_header(src, dst, proto, l4.len() as u32) + sum(l4));
    if proto == proto::UDP {
        udp_fix(c)
    } else {
        c
    }
}

/// Whether the segment `l4`, including its stored checksum, verifies.
///
/// A UDP checksum of 0 ("none") does not verify here; the caller decides
/// whether to accept it (it is legal for UDP over IPv4 only).
#[inline]
pub fn verify_l4(src: &Addr, dst: &Addr, proto: u8, l4: &[u8]) -> bool {
    fold(pseudo_header(src, dst, proto, l4.len() as u32) + sum(l4)) == 0xffff
}

/// The UDP rule that a computed checksum of 0 is transmitted as 0xffff.
#[inline]
pub fn udp_fix(c: u16) -> u16 {
    if c == 0 {
        0xffff
    } else {
        c
    }
}

/// Updates checksum `csum` for a 16-bit word changing from `old` to `new`
/// (RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`), valid for an aligned word.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    finish(!csum as u32 + !old as u32 + new as u32)
}

/// Updates `csum` for an aligned 32-bit value changing from `old` to `new`.
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let s = !csum as u32 + (!(old >> 16) & 0xffff) + (!old & 0xffff) + (new >> 16) + (new & 0xffff);
    finish(s)
}

/// Updates `csum` for an address changing as it is on the wire (4 bytes for
/// IPv4, 16 for IPv6); the families may differ (a translated pseudo-header).
#[inline]
pub fn update_addr(csum: u16, old: &Addr, new: &Addr) -> u16 {
    if old.is_v4() && new.is_v4() {
        update32(csum, old.v4_u32(), new.v4_u32())
    } else {
        update_bytes(csum, old.wire_bytes(), new.wire_bytes())
    }
}

/// Updates `csum` for the bytes `old` being replaced by `new`.
///
/// Both must start at an even offset of the checksummed data and be of
/// even length (an odd length is fine only at the very end of the data).
/// Only their sums matter, so the lengths may differ: a pseudo-header's
/// 16-byte IPv6 address replaced by a 4-byte IPv4 one (NAT64, RFC 7915
/// §4.5/§5.5) is `update_bytes(c, &v6, &v4)`.
#[inline]
pub fn update_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    finish(!csum as u32 + !fold(sum(old)) as u32 + sum(new))
}

/// [`update16`] for a UDP checksum: 0 ("none") stays 0, and a result of 0 is
/// sent as 0xffff.
#[inline]
pub fn update_udp16(csum: u16, old: u16, new: u16) -> u16 {
    if csum == 0 {
        0
    } else {
        udp_fix(update16(csum, old, new))
    }
}

/// [`update32`] for a UDP checksum (see [`update_udp16`]).
#[inline]
pub fn update_udp32(csum: u16, old: u32, new: u32) -> u16 {
    if csum == 0 {
        0
    } else {
        udp_fix(update32(csum, old, new))
    }
}

/// [`update_addr`] for a UDP checksum (see [`update_udp16`]).
#[inline]
pub fn update_udp_addr(csum: u16, old: &Addr, new: &Addr) -> u16 {
    if csum == 0 {
        0
    } else {
        udp_fix(update_addr(csum, old, new))
    }
}

/// [`update_bytes`] for a UDP checksum (see [`update_udp16`]).
#[inline]
pub fn update_udp_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    if csum == 0 {
        0
    } else {
        udp_fix(update_bytes(csum, old, new))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// RFC 1071 reference: 16-bit words one at a time, folded at the end.
    pub(crate) fn ref_sum(data: &[u8]) -> u16 {
        let mut s: u64 = 0;
        let mut i = 0;
        while i < data.len() {
            let hi = data[i] as u64;
            let lo = if i + 1 < data.len() {
                data[i + 1] as u64
            } else {
                0
            };
            s += (hi << 8) | lo;
            i += 2;
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    pub(crate) struct XorShift(pub u64);
    impl XorShift {
        pub(crate) fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        pub(crate) fn fill(&mut self, b: &mut [u8]) {
            for v in b {
                *v = self.next() as u8;
            }
        }
    }

    #[test]
    fn classic_ipv4_header() {
        // The textbook example header; its stored checksum is 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(finish(sum(&h)), 0xb861);
        h[10] = 0xb8;
        h[11] = 0x61;
        assert_eq!(fold(sum(&h)), 0xffff);
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        assert_eq!(
            fold(sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])),
            0xddf2
        );
        assert_eq!(fold(sum(&[])), 0);
        assert_eq!(fold(sum(&[0xab])), 0xab00);
    }

    #[test]
    fn sum_matches_reference_on_random_lengths() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut buf = [0u8; 200];
        for i in 0..2000 {
            let len = (rng.next() % 200) as usize;
            rng.fill(&mut buf[..len]);
            if i % 7 == 0 {
                // Saturated data exercises the carry paths.
                buf[..len].fill(0xff);
            }
            let d = &buf[..len];
            assert_eq!(fold(sum(d)), ref_sum(d), "len {len}");
            assert!(sum(d) < 1 << 17);
        }
    }

    #[test]
    fn pseudo_header_forms() {
        // IPv4 pseudo-header written out as bytes: src, dst, 0, proto, len.
        let s = Addr::v4(10, 1, 2, 3);
        let d = Addr::v4(192, 168, 255, 254);
        let b4 = [10, 1, 2, 3, 192, 168, 255, 254, 0, 6, 0x05, 0xdc];
        assert_eq!(fold(pseudo_header(&s, &d, 6, 1500)), ref_sum(&b4));
        // IPv6: src, dst, 32-bit length, 3 zero bytes, next header.
        let s6: Addr = "2001:db8::1".parse().unwrap();
        let d6: Addr = "fe80::abcd:ef01".parse().unwrap();
        let mut b6 = [0u8; 40];
        b6[..16].copy_from_slice(&s6.0);
        b6[16..32].copy_from_slice(&d6.0);
        b6[32..36].copy_from_slice(&70000u32.to_be_bytes());
        b6[39] = 17;
        assert_eq!(fold(pseudo_header(&s6, &d6, 17, 70000)), ref_sum(&b6));
    }

    #[test]
    fn l4_checksum_and_verify() {
        // A UDP datagram 10.0.0.1:1234 -> 10.0.0.2:53 with 4 payload bytes.
        let s = Addr::v4(10, 0, 0, 1);
        let d = Addr::v4(10, 0, 0, 2);
        let mut u = [
            0x04, 0xd2, 0x00, 0x35, 0x00, 0x0c, 0, 0, 0xde, 0xad, 0xbe, 0xef,
        ];
        let mut ph = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 12];
        ph.extend_from_slice(&u);
        let expect = !ref_sum(&ph);
        let c = l4_checksum(&s, &d, proto::UDP, &u);
        assert_eq!(c, expect);
        u[6..8].copy_from_slice(&c.to_be_bytes());
        assert!(verify_l4(&s, &d, proto::UDP, &u));
        u[9] ^= 1;
        assert!(!verify_l4(&s, &d, proto::UDP, &u));
    }

    #[test]
    fn udp_zero_becomes_ffff() {
        assert_eq!(udp_fix(0), 0xffff);
        assert_eq!(udp_fix(0x1234), 0x1234);
        // Data whose pseudo-header+segment sum folds to 0xffff computes to 0.
        // Build it: choose the segment so the total is exactly 0xffff.
        let s = Addr::v4(0, 0, 0, 0);
        let d = Addr::v4(0, 0, 0, 0);
        // pseudo = 17 + 10 (len); segment words: ports 0, len 10, csum 0, payload word x.
        let x: u16 = 0xffff - 17 - 10 - 10;
        let seg = [0, 0, 0, 0, 0, 10, 0, 0, (x >> 8) as u8, x as u8];
        assert_eq!(l4_checksum(&s, &d, proto::UDP, &seg), 0xffff);
        assert_eq!(
            l4_checksum(&s, &d, proto::TCP, &seg),
            (0xffff - 17 + 6) ^ 0xffff
        );
        let mut seg2 = seg;
        seg2[6] = 0xff;
        seg2[7] = 0xff;
        assert!(verify_l4(&s, &d, proto::UDP, &seg2));
        assert_eq!(update_udp16(0, 1, 2), 0);
    }

    /// Random data with an embedded checksum field at offset 2..4; random
    /// word/dword/byte-range changes updated incrementally must equal a full
    /// recomputation.
    #[test]
    fn incremental_matches_full() {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        let mut buf = [0u8; 64];
        for i in 0..5000 {
            let len = 8 + 2 * (rng.next() % 28) as usize;
            let d = &mut buf[..len];
            rng.fill(d);
            match i % 5 {
                0 => d.fill(0xff),
                1 => d.fill(0),
                _ => {}
            }
            // Keep one nonzero byte so the all-zero sum (whose checksum would be
            // 0xffff, a form the incremental update never produces) is avoided.
            d[0] |= 0x80;
            d[2] = 0;
            d[3] = 0;
            let mut c = !ref_sum(d);
            d[2..4].copy_from_slice(&c.to_be_bytes());
            assert_eq!(ref_sum(d), 0xffff);
            // A change in an even-aligned spot that is not the checksum field.
            let nwords = (len - 4) / 2;
            let off = 4 + 2 * (rng.next() as usize % nwords);
            let kind = rng.next() % 3;
            let v = rng.next();
            let v = match i % 4 {
                0 => 0,
                1 => u64::MAX,
                _ => v,
            };
            if kind == 0 || off + 4 > len {
                let old = u16::from_be_bytes([d[off], d[off + 1]]);
                let new = v as u16;
                d[off..off + 2].copy_from_slice(&new.to_be_bytes());
                c = update16(c, old, new);
            } else if kind == 1 {
                let old = u32::from_be_bytes([d[off], d[off + 1], d[off + 2], d[off + 3]]);
                let new = v as u32;
                d[off..off + 4].copy_from_slice(&new.to_be_bytes());
                c = update32(c, old, new);
            } else {
                let end = (off + 6).min(len);
                let mut old = [0u8; 6];
                old[..end - off].copy_from_slice(&d[off..end]);
                let new = v.to_be_bytes();
                d[off..end].copy_from_slice(&new[..end - off]);
                c = update_bytes(c, &old[..end - off], &new[..end - off]);
            }
            let mut z = [0u8; 64];
            z[..len].copy_from_slice(d);
            z[2] = 0;
            z[3] = 0;
            assert_eq!(c, !ref_sum(&z[..len]), "iteration {i}");
        }
    }

    #[test]
    fn incremental_checksum_corner_values() {
        // Words chosen so the checksum before/after is 0x0000 or 0xffff-adjacent.
        // data = [w0, csum]: checksum = !w0 (for nonzero w0).
        for (w0, w1) in [
            (0xffffu16, 0x0001u16),
            (0x0001, 0xffff),
            (0xfffe, 0xffff),
            (0x8000, 0x7fff),
        ] {
            let c0 = !ref_sum(&w0.to_be_bytes());
            let c1 = update16(c0, w0, w1);
            assert_eq!(c1, !ref_sum(&w1.to_be_bytes()), "{w0:#x}->{w1:#x}");
        }
        // Replacing the only word 0x1234 (checksum 0xedcb) by 0xffff makes the
        // sum 0xffff: the checksum is 0, which UDP must send as 0xffff.
        assert_eq!(update_udp16(0xedcb, 0x1234, 0xffff), 0xffff);
        assert_eq!(update16(0xedcb, 0x1234, 0xffff), 0x0000);
    }

    #[test]
    fn update_addr_both_families() {
        let mut rng = XorShift(42);
        for _ in 0..500 {
            let mut d = [0u8; 40];
            rng.fill(&mut d);
            d[0] |= 1;
            // v4: checksum over 8 bytes of address + 2 bytes csum at the end.
            let a = Addr::from_v4_bytes([d[0], d[1], d[2], d[3]]);
            let b = Addr::from_v4_bytes([d[4], d[5], d[6], d[7]]);
            let mut z = [0u8; 6];
            z[..4].copy_from_slice(&a.v4_bytes());
            let c = !ref_sum(&z);
            z[..4].copy_from_slice(&b.v4_bytes());
            assert_eq!(update_addr(c, &a, &b), !ref_sum(&z));
            let a6 = Addr(d[..16].try_into().unwrap());
            let b6 = Addr(d[16..32].try_into().unwrap());
            let c6 = !ref_sum(&a6.0);
            assert_eq!(update_addr(c6, &a6, &b6), !ref_sum(&b6.0));
            assert_eq!(update_udp_addr(c6, &a6, &b6), udp_fix(!ref_sum(&b6.0)),);
        }
    }
}

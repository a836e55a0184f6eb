//! Zero-copy packet views and Internet checksums.
//!
//! Every view wraps a buffer (`Foo<T: AsRef<[u8]>>`) and is built with
//! `Foo::new_checked`, which validates the lengths once. Getters then read the
//! bytes directly. They never panic: all of them go through the small
//! `get`-based helpers below, so even a view whose length fields were later
//! changed through a setter degrades to zeros / empty slices instead of
//! panicking. Setters exist where `T: AsMut<[u8]>`.
//!
//! The `rewrite_*` helpers change a field and fix the checksum incrementally
//! (RFC 1624) because a full recomputation over the payload is too slow for
//! the forwarding path; the plain `set_*` setters never touch a checksum.

use core::fmt;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod mld;
pub mod proxy_proto;
pub mod tcp;
pub mod udp;
pub mod uoa;

pub use arp::ArpPacket;
pub use ethernet::EthernetFrame;
pub use icmp::IcmpPacket;
pub use icmpv6::Icmpv6Packet;
pub use ip::IpHeader;
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use tcp::{TcpOption, TcpOptions, TcpPacket};
pub use udp::UdpPacket;

/// Why a buffer was rejected by a view's `new_checked` (or a parse helper).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The buffer is shorter than the header (or than a length field says).
    Truncated,
    /// The IP version nibble is not the one the view expects.
    BadVersion,
    /// A header-length field is smaller than the fixed header.
    BadHeaderLen,
    /// The IPv4 total length is smaller than the header.
    BadTotalLen,
    /// A length field (UDP length) is smaller than the header.
    BadLength,
    /// A checksum did not verify.
    BadChecksum,
    /// A well-formed packet of a kind this module does not handle
    /// (e.g. ARP for a non-Ethernet/IPv4 pair, a third VLAN tag).
    Unsupported,
    /// An option or extension header is malformed.
    BadOption,
    /// Too many IPv6 extension headers to walk.
    TooManyExtHeaders,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            WireError::Truncated => "packet truncated",
            WireError::BadVersion => "bad IP version",
            WireError::BadHeaderLen => "bad header length",
            WireError::BadTotalLen => "bad IPv4 total length",
            WireError::BadLength => "bad length field",
            WireError::BadChecksum => "bad checksum",
            WireError::Unsupported => "unsupported packet format",
            WireError::BadOption => "malformed option or extension header",
            WireError::TooManyExtHeaders => "too many IPv6 extension headers",
        };
        f.write_str(s)
    }
}

impl std::error::Error for WireError {}

/// The source and destination ports of a TCP or UDP header.
///
/// Works on the 8-byte prefix that ICMP errors quote, where a full
/// [`TcpPacket`] or [`UdpPacket`] view would be rejected as truncated.
#[inline]
pub fn l4_ports(l4: &[u8]) -> Option<(u16, u16)> {
    match l4.get(..4) {
        Some(&[a, b, c, d]) => Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]))),
        _ => None,
    }
}

// Byte-access helpers shared by the views. They read zero / write nothing when
// out of range so that getters stay panic-free whatever state the buffer is in;
// `new_checked` guarantees the in-range case for the fields it validated.

#[inline(always)]
pub(crate) fn rd8(b: &[u8], off: usize) -> u8 {
    match b.get(off) {
        Some(&v) => v,
        None => 0,
    }
}

#[inline(always)]
pub(crate) fn rd16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.wrapping_add(2)) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

#[inline(always)]
pub(crate) fn rd32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.wrapping_add(4)) {
        Some(&[x, y, z, w]) => u32::from_be_bytes([x, y, z, w]),
        _ => 0,
    }
}

#[inline(always)]
pub(crate) fn rd_arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = b.get(off..off.wrapping_add(N)) {
        out.copy_from_slice(s);
    }
    out
}

#[inline(always)]
pub(crate) fn wr8(b: &mut [u8], off: usize, v: u8) {
    if let Some(x) = b.get_mut(off) {
        *x = v;
    }
}

#[inline(always)]
pub(crate) fn wr16(b: &mut [u8], off: usize, v: u16) {
    wr_bytes(b, off, &v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn wr32(b: &mut [u8], off: usize, v: u32) {
    wr_bytes(b, off, &v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn wr_bytes(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(s) = b.get_mut(off..off.wrapping_add(v.len())) {
        s.copy_from_slice(v);
    }
}

/// `b[start..end]`, or an empty slice when the range is out of bounds.
#[inline(always)]
pub(crate) fn sub(b: &[u8], start: usize, end: usize) -> &[u8] {
    b.get(start..end).unwrap_or(&[])
}

/// Mutable `b[start..end]`, or an empty slice when out of bounds.
#[inline(always)]
pub(crate) fn sub_mut(b: &mut [u8], start: usize, end: usize) -> &mut [u8] {
    b.get_mut(start..end).unwrap_or(&mut [])
}

/// Overwrites `new.len()` bytes at `off` inside the checksummed region `b` and
/// returns `csum` updated for the change (RFC 1624).
///
/// The changed bytes may sit at an odd offset (TCP options often do): the
/// update is done over the enclosing 16-bit-aligned window so the words stay
/// aligned with the checksum's. `new` is at most 20 bytes (a TOA address);
/// longer or out-of-range writes change nothing and return `csum` unchanged.
pub(crate) fn write_with_csum(b: &mut [u8], off: usize, new: &[u8], csum: u16) -> u16 {
    const MAX: usize = 24;
    let Some(end) = off.checked_add(new.len()) else {
        return csum;
    };
    if end > b.len() || new.len() > MAX - 2 {
        return csum;
    }
    let start = off & !1;
    // Round the end up to even, except at the end of the data where `sum` pads.
    let wend = (end + (end & 1)).min(b.len());
    let n = wend - start;
    let mut old = [0u8; MAX];
    let mut upd = [0u8; MAX];
    old[..n].copy_from_slice(&b[start..wend]);
    b[off..end].copy_from_slice(new);
    upd[..n].copy_from_slice(&b[start..wend]);
    checksum::update_bytes(csum, &old[..n], &upd[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_are_panic_free_out_of_range() {
        let mut b = [1u8, 2, 3];
        assert_eq!(rd16(&b, 1), 0x0203);
        assert_eq!(rd16(&b, 2), 0);
        assert_eq!(rd32(&b, 0), 0);
        assert_eq!(rd16(&b, usize::MAX), 0);
        assert_eq!(rd_arr::<2>(&b, usize::MAX - 1), [0, 0]);
        wr16(&mut b, 2, 0xffff);
        assert_eq!(b, [1, 2, 3]);
        assert_eq!(sub(&b, 2, 1), &[] as &[u8]);
        assert_eq!(l4_ports(&[0, 80, 1, 187, 9]), Some((80, 443)));
        assert_eq!(l4_ports(&[0, 80, 1]), None);
    }

    #[test]
    fn write_with_csum_handles_odd_offsets() {
        // 9 bytes of data (odd length) plus a checksum computed independently.
        let mut d = [0x12u8, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11];
        let full = |d: &[u8]| -> u16 {
            let mut s: u32 = 0;
            for c in d.chunks(2) {
                let hi = c[0] as u32;
                let lo = if c.len() == 2 { c[1] as u32 } else { 0 };
                s += (hi << 8) | lo;
            }
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            !(s as u16)
        };
        let mut c = full(&d);
        for (off, new) in [
            (1usize, &[0xaa, 0xbb][..]),
            (7, &[1, 2][..]),
            (8, &[0x77][..]),
        ] {
            c = write_with_csum(&mut d, off, new, c);
            assert_eq!(c, full(&d), "off {off}");
        }
        // Out of range: unchanged.
        assert_eq!(write_with_csum(&mut d, 8, &[1, 2], c), c);
    }
}

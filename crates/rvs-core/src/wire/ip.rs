//! A fresh IP header of either family, for the code that writes one in
//! front of a payload (TUNNEL's outer header, NAT64/NAT46, generated ICMP
//! errors and SYN-proxy segments): the family follows the addresses, the
//! bytes are [`super::ipv4::write_header`]'s or [`super::ipv6::write_header`]'s.

use super::ethernet::ethertype;
use super::{ipv4, ipv6, Ipv4Packet, Ipv6Packet};
use crate::addr::Addr;

/// The fields of a fixed IP header (IPv4 without options, IPv6 without
/// extension headers). `src` and `dst` are of one family, which is the
/// header's.
#[derive(Copy, Clone, Debug)]
pub struct IpHeader<'a> {
    /// Source address.
    pub src: &'a Addr,
    /// Destination address.
    pub dst: &'a Addr,
    /// IPv4 protocol or IPv6 next header.
    pub proto: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 DSCP+ECN byte or IPv6 traffic class.
    pub tos: u8,
    /// Bytes after the header.
    pub payload_len: u16,
    /// IPv4 identification (IPv6 has none here).
    pub ident: u16,
    /// IPv4 Don't Fragment (IPv6 never fragments on the way).
    pub df: bool,
}

impl IpHeader<'_> {
    /// Whether the header is IPv6.
    #[inline]
    pub fn is_v6(&self) -> bool {
        !self.src.is_v4()
    }

    /// The header's length: 20 or 40 bytes.
    #[inline]
    pub fn len(&self) -> usize {
        if self.is_v6() {
            ipv6::HEADER_LEN
        } else {
            ipv4::HEADER_LEN
        }
    }

    /// Never empty (for clippy's `len` convention).
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The Ethernet type of a frame carrying it.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        if self.is_v6() {
            ethertype::IPV6
        } else {
            ethertype::IPV4
        }
    }

    /// Writes the header (the IPv4 checksum filled) at the start of `buf`;
    /// the length written, 0 if `buf` is too short or the payload too long.
    #[inline]
    pub fn write(&self, buf: &mut [u8]) -> usize {
        if self.is_v6() {
            self.write_v6(buf)
        } else {
            self.write_v4(buf)
        }
    }

    /// [`IpHeader::write`] for a caller that checked [`IpHeader::is_v6`].
    #[inline]
    pub fn write_v6(&self, buf: &mut [u8]) -> usize {
        let n = ipv6::write_header(
            buf,
            self.src,
            self.dst,
            self.proto,
            self.ttl,
            self.payload_len,
        );
        if n > 0 && self.tos != 0 {
            Ipv6Packet::new_unchecked(&mut buf[..n]).set_traffic_class(self.tos);
        }
        n
    }

    /// [`IpHeader::write`] for a caller that checked it is not IPv6.
    #[inline]
    pub fn write_v4(&self, buf: &mut [u8]) -> usize {
        let n = ipv4::write_header(
            buf,
            self.src,
            self.dst,
            self.proto,
            self.ttl,
            self.payload_len,
            self.ident,
            self.df,
        );
        if n > 0 && self.tos != 0 {
            let mut h = Ipv4Packet::new_unchecked(&mut buf[..n]);
            h.set_dscp_ecn(self.tos);
            h.fill_checksum();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr<'a>(src: &'a Addr, dst: &'a Addr, tos: u8) -> IpHeader<'a> {
        IpHeader {
            src,
            dst,
            proto: 17,
            ttl: 63,
            tos,
            payload_len: 8,
            ident: 0x1234,
            df: false,
        }
    }

    #[test]
    fn v4_header_with_tos_verifies() {
        let (s, d) = (Addr::v4(10, 0, 0, 1), Addr::v4(10, 0, 0, 2));
        let mut b = [0u8; 28];
        let h = hdr(&s, &d, 0xb8);
        assert_eq!((h.len(), h.ethertype()), (20, ethertype::IPV4));
        assert_eq!(h.write(&mut b), 20);
        let p = Ipv4Packet::new_checked(&b[..]).expect("a valid IPv4 header");
        assert!(p.verify_checksum());
        assert_eq!((p.dscp_ecn(), p.ttl(), p.ident()), (0xb8, 63, 0x1234));
        assert_eq!((p.src(), p.dst(), p.total_len()), (s, d, 28));
    }

    #[test]
    fn v6_header_with_traffic_class() {
        let s: Addr = "2001:db8::1".parse().expect("addr");
        let d: Addr = "2001:db8::2".parse().expect("addr");
        let mut b = [0u8; 48];
        let h = hdr(&s, &d, 0xb8);
        assert_eq!((h.len(), h.ethertype()), (40, ethertype::IPV6));
        assert_eq!(h.write(&mut b), 40);
        let p = Ipv6Packet::new_checked(&b[..]).expect("a valid IPv6 header");
        assert_eq!((p.traffic_class(), p.hop_limit()), (0xb8, 63));
        assert_eq!((p.src(), p.dst(), p.payload_len()), (s, d, 8));
        assert_eq!(h.write(&mut b[..39]), 0, "too short");
    }
}

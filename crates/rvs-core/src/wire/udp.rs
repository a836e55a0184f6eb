//! UDP datagrams (RFC 768).

use super::checksum;
use super::{rd16, sub, sub_mut, wr16, WireError};
use crate::addr::{proto, Addr};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// Where each field of the UDP header is, in bytes from its start: the
/// one place that knows the layout (the view and the pipeline use these).
pub mod field {
    use core::ops::{Range, RangeFrom};

    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Length (header and payload).
    pub const LENGTH: Range<usize> = 4..6;
    /// Checksum (0: none, IPv4 only).
    pub const CHECKSUM: Range<usize> = 6..8;
    /// Payload.
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

/// A view of a UDP datagram (the whole IP payload).
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buf` without checking it, for a buffer an earlier check
    /// already validated (as `new_checked` would). The getters stay
    /// panic-free whatever the buffer holds: out of range they read zeros
    /// and the setters write nothing.
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        UdpPacket { buf }
    }

    /// Validates the header and that the length field is at least 8
    /// (`BadLength`) and within the buffer (`Truncated`).
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let l = rd16(b, field::LENGTH.start) as usize;
        if l < HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if l > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(UdpPacket { buf })
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The whole buffer (which may extend past the length field).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        rd16(self.buf.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        rd16(self.buf.as_ref(), field::DST_PORT.start)
    }

    /// Length field (header plus payload).
    #[inline]
    pub fn len(&self) -> u16 {
        rd16(self.buf.as_ref(), field::LENGTH.start)
    }

    /// Whether the payload is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() as usize <= HEADER_LEN
    }

    /// Checksum as stored (0 means "none", legal over IPv4 only).
    #[inline]
    pub fn checksum(&self) -> u16 {
        rd16(self.buf.as_ref(), field::CHECKSUM.start)
    }

    /// The datagram up to the length field (clamped to the buffer).
    #[inline]
    fn datagram(&self) -> &[u8] {
        let b = self.buf.as_ref();
        sub(b, 0, (self.len() as usize).min(b.len()))
    }

    /// The payload, up to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let d = self.datagram();
        sub(d, HEADER_LEN, d.len())
    }

    /// Whether the checksum verifies between `src` and `dst`. A zero checksum
    /// is accepted over IPv4 ("none") and rejected over IPv6 (RFC 8200 §8.1).
    #[inline]
    pub fn verify_checksum(&self, src: &Addr, dst: &Addr) -> bool {
        if self.checksum() == 0 {
            return src.is_v4();
        }
        checksum::verify_l4(src, dst, proto::UDP, self.datagram())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port (checksum untouched).
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        wr16(self.buf.as_mut(), field::SRC_PORT.start, p);
    }

    /// Sets the destination port (checksum untouched).
    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        wr16(self.buf.as_mut(), field::DST_PORT.start, p);
    }

    /// Sets the length field (checksum untouched). The payload accessors clamp
    /// to the buffer, so a too-large value cannot cause a panic.
    #[inline]
    pub fn set_len(&mut self, l: u16) {
        wr16(self.buf.as_mut(), field::LENGTH.start, l);
    }

    /// Sets the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        wr16(self.buf.as_mut(), field::CHECKSUM.start, c);
    }

    /// Computes and stores the checksum over the datagram (a computed 0 is
    /// stored as 0xffff).
    #[inline]
    pub fn fill_checksum(&mut self, src: &Addr, dst: &Addr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum(src, dst, proto::UDP, self.datagram());
        self.set_checksum(c);
    }

    /// Sets the source port, updating a present checksum incrementally (a
    /// zero "none" checksum stays zero).
    #[inline]
    pub fn rewrite_src_port(&mut self, p: u16) {
        let c = checksum::update_udp16(self.checksum(), self.src_port(), p);
        self.set_src_port(p);
        self.set_checksum(c);
    }

    /// Sets the destination port, updating a present checksum incrementally.
    #[inline]
    pub fn rewrite_dst_port(&mut self, p: u16) {
        let c = checksum::update_udp16(self.checksum(), self.dst_port(), p);
        self.set_dst_port(p);
        self.set_checksum(c);
    }

    /// The payload, mutably (up to the length field).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = self.len() as usize;
        let b = self.buf.as_mut();
        let end = l.min(b.len());
        sub_mut(b, HEADER_LEN, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::tests::{ref_sum, XorShift};

    const S: Addr = Addr::v4(10, 0, 0, 1);
    const D: Addr = Addr::v4(10, 0, 0, 2);

    /// DNS-ish query 10.0.0.1:1234 -> 10.0.0.2:53, 4 payload bytes, 2 pad.
    fn dgram() -> Vec<u8> {
        vec![
            0x04, 0xd2, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0, 0,
        ]
    }

    fn ref_csum(src: &Addr, dst: &Addr, d: &[u8]) -> u16 {
        let mut v = Vec::new();
        v.extend_from_slice(src.wire_bytes());
        v.extend_from_slice(dst.wire_bytes());
        v.extend_from_slice(&[0, 17]);
        v.extend_from_slice(&(d.len() as u16).to_be_bytes());
        let mut d = d.to_vec();
        d[6] = 0;
        d[7] = 0;
        v.extend_from_slice(&d);
        let c = !ref_sum(&v);
        if c == 0 {
            0xffff
        } else {
            c
        }
    }

    #[test]
    fn parses_and_checksums() {
        let mut v = dgram();
        let mut u = UdpPacket::new_checked(&mut v[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port(), u.len()), (1234, 53, 12));
        assert!(!u.is_empty());
        assert_eq!(u.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        // No checksum: fine over IPv4, not over IPv6.
        assert!(u.verify_checksum(&S, &D));
        let s6: Addr = "2001:db8::1".parse().unwrap();
        assert!(!u.verify_checksum(&s6, &s6));
        u.fill_checksum(&S, &D);
        let c = u.checksum();
        assert!(u.verify_checksum(&S, &D));
        assert_eq!(c, ref_csum(&S, &D, &v[..12]));
        v[8] ^= 0x40;
        let u = UdpPacket::new_checked(&v[..]).unwrap();
        assert!(!u.verify_checksum(&S, &D));
    }

    #[test]
    fn malformed() {
        let v = dgram();
        assert_eq!(
            UdpPacket::new_checked(&v[..7]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            UdpPacket::new_checked(&v[..11]).unwrap_err(),
            WireError::Truncated
        );
        let mut b = v.clone();
        b[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::BadLength
        );
        b[5] = 8;
        assert!(UdpPacket::new_checked(&b[..]).unwrap().is_empty());
    }

    #[test]
    fn rewrites_keep_zero_and_match_full() {
        let mut v = dgram();
        let mut u = UdpPacket::new_checked(&mut v[..]).unwrap();
        u.rewrite_src_port(9999);
        u.rewrite_dst_port(80);
        assert_eq!(u.checksum(), 0);
        assert_eq!(&v[..4], &[0x27, 0x0f, 0x00, 0x50]);

        let mut rng = XorShift(99);
        for i in 0..3000 {
            let mut v = dgram();
            rng.fill(&mut v[8..12]);
            let c = ref_csum(&S, &D, &v[..12]);
            v[6..8].copy_from_slice(&c.to_be_bytes());
            let mut u = UdpPacket::new_checked(&mut v[..]).unwrap();
            let p = rng.next() as u16;
            if i % 2 == 0 {
                u.rewrite_src_port(p);
            } else {
                u.rewrite_dst_port(p);
            }
            let c = u.checksum();
            assert_eq!(c, ref_csum(&S, &D, &v[..12]), "iteration {i}");
        }
        // Force the computed-zero case: pick the new port so the sum is 0xffff.
        let mut v = dgram();
        let c = ref_csum(&S, &D, &v[..12]);
        v[6..8].copy_from_slice(&c.to_be_bytes());
        // With checksum c = !S, a port change old -> old + c (one's
        // complement) makes the new sum S - old + new ≡ 0: the computed
        // checksum is 0 and must be sent as 0xffff.
        let old = 1234u32;
        let mut new = old + c as u32;
        new = (new & 0xffff) + (new >> 16);
        let mut u = UdpPacket::new_checked(&mut v[..]).unwrap();
        u.rewrite_src_port(new as u16);
        assert_eq!(u.checksum(), 0xffff);
        assert!(u.verify_checksum(&S, &D));
    }

    #[test]
    fn setters_clamp() {
        let mut v = dgram();
        let mut u = UdpPacket::new_checked(&mut v[..]).unwrap();
        u.set_len(60000);
        assert_eq!(u.payload().len(), 6);
        u.payload_mut()[0] = 1;
        u.set_len(2);
        assert!(u.payload().is_empty());
        u.set_checksum(0xabcd);
        u.set_src_port(7);
        u.set_dst_port(8);
        assert_eq!(&v[..8], &[0, 7, 0, 8, 0, 2, 0xab, 0xcd]);
        assert_eq!(v[8], 1);
    }
}

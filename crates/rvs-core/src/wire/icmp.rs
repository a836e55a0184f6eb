//! ICMPv4 messages (RFC 792).

use super::checksum;
use super::{rd16, rd8, sub, wr16, wr8, WireError};

/// Length of the ICMP header (type, code, checksum, 4 bytes of rest).
pub const HEADER_LEN: usize = 8;

/// Where each field of the ICMPv4 header is, in bytes from its start: the
/// one place that knows the layout (the view and the pipeline use these).
pub mod field {
    use core::ops::{Range, RangeFrom};

    /// Message type.
    pub const TYPE: usize = 0;
    /// Message code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo identifier.
    pub const ECHO_IDENT: Range<usize> = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQ: Range<usize> = 6..8;
    /// Next-hop MTU of a "fragmentation needed" message.
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    /// Echo data, or the datagram an error quotes.
    pub const DATA: RangeFrom<usize> = 8..;
}

/// ICMPv4 message types.
pub mod icmp_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 3;
    /// Source quench (deprecated, still an error message).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Destination-unreachable code: port unreachable.
pub const PORT_UNREACH: u8 = 3;
/// Destination-unreachable code: fragmentation needed and DF set.
pub const FRAG_NEEDED: u8 = 4;

/// A view of an ICMPv4 message (the whole IP payload).
#[derive(Debug, Clone)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps `buf` without checking it, for a buffer an earlier check
    /// already validated (as `new_checked` would). The getters stay
    /// panic-free whatever the buffer holds: out of range they read zeros
    /// and the setters write nothing.
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        IcmpPacket { buf }
    }

    /// Validates that the 8-byte header is present.
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(IcmpPacket { buf })
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The whole message.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Message type (see [`icmp_type`]).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        rd8(self.buf.as_ref(), field::TYPE)
    }

    /// Message code.
    #[inline]
    pub fn code(&self) -> u8 {
        rd8(self.buf.as_ref(), field::CODE)
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        rd16(self.buf.as_ref(), field::CHECKSUM.start)
    }

    /// Whether this is an echo request or reply.
    #[inline]
    pub fn is_echo(&self) -> bool {
        matches!(
            self.msg_type(),
            icmp_type::ECHO_REQUEST | icmp_type::ECHO_REPLY
        )
    }

    /// Echo identifier (meaningful for echo request/reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        rd16(self.buf.as_ref(), field::ECHO_IDENT.start)
    }

    /// Echo sequence number (meaningful for echo request/reply).
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        rd16(self.buf.as_ref(), field::ECHO_SEQ.start)
    }

    /// Whether this is an error message quoting an original datagram
    /// (destination unreachable, source quench, redirect, time exceeded,
    /// parameter problem).
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            icmp_type::DEST_UNREACH
                | icmp_type::SOURCE_QUENCH
                | icmp_type::REDIRECT
                | icmp_type::TIME_EXCEEDED
                | icmp_type::PARAM_PROBLEM
        )
    }

    /// The quoted original IP header and leading payload bytes of an error
    /// (possibly truncated; parse with `Ipv4Packet::new_checked_embedded`).
    /// Empty for non-error messages.
    #[inline]
    pub fn inner(&self) -> &[u8] {
        if !self.is_error() {
            return &[];
        }
        let b = self.buf.as_ref();
        sub(b, HEADER_LEN, b.len())
    }

    /// The data after the 8-byte header (echo payload, or the quoted datagram).
    #[inline]
    pub fn data(&self) -> &[u8] {
        let b = self.buf.as_ref();
        sub(b, HEADER_LEN, b.len())
    }

    /// The next-hop MTU of a "fragmentation needed" message (RFC 1191).
    #[inline]
    pub fn next_hop_mtu(&self) -> Option<u16> {
        if self.msg_type() == icmp_type::DEST_UNREACH && self.code() == FRAG_NEEDED {
            Some(rd16(self.buf.as_ref(), field::NEXT_HOP_MTU.start))
        } else {
            None
        }
    }

    /// Whether the checksum over the whole message verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buf.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Sets the type (checksum untouched).
    #[inline]
    pub fn set_msg_type(&mut self, t: u8) {
        wr8(self.buf.as_mut(), field::TYPE, t);
    }

    /// Sets the code (checksum untouched).
    #[inline]
    pub fn set_code(&mut self, c: u8) {
        wr8(self.buf.as_mut(), field::CODE, c);
    }

    /// Sets the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        wr16(self.buf.as_mut(), field::CHECKSUM.start, c);
    }

    /// Sets the four bytes after the checksum of an error message: the
    /// unused half (zero) and the next-hop MTU (RFC 1191; 0 for errors
    /// other than "fragmentation needed"). Checksum untouched.
    #[inline]
    pub fn set_next_hop_mtu(&mut self, mtu: u16) {
        wr16(self.buf.as_mut(), field::ECHO_IDENT.start, 0);
        wr16(self.buf.as_mut(), field::NEXT_HOP_MTU.start, mtu);
    }

    /// Sets the echo identifier (checksum untouched; see
    /// [`IcmpPacket::rewrite_echo_ident`]).
    #[inline]
    pub fn set_echo_ident(&mut self, id: u16) {
        wr16(self.buf.as_mut(), field::ECHO_IDENT.start, id);
    }

    /// Sets the echo sequence number (checksum untouched).
    #[inline]
    pub fn set_echo_seq(&mut self, s: u16) {
        wr16(self.buf.as_mut(), field::ECHO_SEQ.start, s);
    }

    /// Sets the type, updating the checksum incrementally (an echo request
    /// becomes a reply).
    #[inline]
    pub fn rewrite_msg_type(&mut self, t: u8) {
        let code = self.code() as u16;
        let old = (self.msg_type() as u16) << 8 | code;
        let c = checksum::update16(self.checksum(), old, (t as u16) << 8 | code);
        self.set_msg_type(t);
        self.set_checksum(c);
    }

    /// Sets the echo identifier, updating the checksum incrementally (used
    /// when NATing echo "connections" by identifier).
    #[inline]
    pub fn rewrite_echo_ident(&mut self, id: u16) {
        let c = checksum::update16(self.checksum(), self.echo_ident(), id);
        self.set_echo_ident(id);
        self.set_checksum(c);
    }

    /// Recomputes the checksum over the whole message.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::sum(self.buf.as_ref()));
        self.set_checksum(c);
    }

    /// The data after the header, mutably (e.g. to rewrite the quoted
    /// datagram of an error; fix the checksum afterwards).
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let b = self.buf.as_mut();
        let n = b.len();
        super::sub_mut(b, HEADER_LEN, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::tests::{ref_sum, XorShift};
    use crate::wire::{Ipv4Packet, UdpPacket};

    /// Port unreachable from 10.0.0.2 about a UDP datagram 10.0.0.1:1234 ->
    /// 10.0.0.2:53 (IP total 40, so the quote is cut after the UDP header).
    fn port_unreach() -> Vec<u8> {
        let mut v = vec![3, 3, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&[
            0x45, 0x00, 0x00, 0x28, 0xab, 0xcd, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 10, 0, 0, 1,
            10, 0, 0, 2,
        ]);
        v.extend_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0x00, 0x14, 0x12, 0x34]);
        let c = !ref_sum(&v);
        v[2..4].copy_from_slice(&c.to_be_bytes());
        v
    }

    #[test]
    fn port_unreachable_with_inner_udp() {
        let v = port_unreach();
        let p = IcmpPacket::new_checked(&v[..]).unwrap();
        assert_eq!(
            (p.msg_type(), p.code()),
            (icmp_type::DEST_UNREACH, PORT_UNREACH)
        );
        assert!(p.is_error());
        assert!(!p.is_echo());
        assert!(p.verify_checksum());
        assert_eq!(p.next_hop_mtu(), None);
        assert_eq!(p.inner().len(), 28);
        assert!(Ipv4Packet::new_checked(p.inner()).is_err());
        let ip = Ipv4Packet::new_checked_embedded(p.inner()).unwrap();
        assert_eq!(ip.protocol(), 17);
        assert_eq!(ip.src(), crate::addr::Addr::v4(10, 0, 0, 1));
        assert_eq!(crate::wire::l4_ports(ip.payload()), Some((1234, 53)));
        // The quoted UDP header claims 20 bytes but only 8 are here.
        assert!(UdpPacket::new_checked(ip.payload()).is_err());
    }

    #[test]
    fn echo_and_rewrite() {
        // Echo request id 0x1234 seq 1, payload "abc" (odd length).
        let mut v = vec![8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c'];
        let mut p = IcmpPacket::new_checked(&mut v[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert!(p.is_echo());
        assert!(!p.is_error());
        assert!(p.inner().is_empty());
        assert_eq!(p.data(), b"abc");
        assert_eq!((p.echo_ident(), p.echo_seq()), (0x1234, 1));
        let c = p.checksum();
        assert_eq!(
            c,
            !ref_sum(&[8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c'])
        );
        let mut rng = XorShift(3);
        for _ in 0..500 {
            let mut p = IcmpPacket::new_checked(&mut v[..]).unwrap();
            p.rewrite_echo_ident(rng.next() as u16);
            let c = p.checksum();
            let mut z = v.clone();
            z[2] = 0;
            z[3] = 0;
            assert_eq!(c, !ref_sum(&z));
        }
        let mut p = IcmpPacket::new_checked(&mut v[..]).unwrap();
        p.rewrite_msg_type(icmp_type::ECHO_REPLY);
        assert!(p.verify_checksum());
        p.set_msg_type(icmp_type::ECHO_REPLY);
        p.set_code(0);
        p.set_echo_seq(2);
        p.set_echo_ident(7);
        p.data_mut()[0] = b'z';
        assert_eq!(&v[..2], &[0, 0]);
        assert_eq!(&v[4..9], &[0, 7, 0, 2, b'z']);
    }

    #[test]
    fn frag_needed_and_truncated() {
        let mut v = port_unreach();
        v[1] = FRAG_NEEDED;
        v[6] = 0x05;
        v[7] = 0xdc;
        let p = IcmpPacket::new_checked(&v[..]).unwrap();
        assert_eq!(p.next_hop_mtu(), Some(1500));
        assert!(!p.verify_checksum());
        assert_eq!(
            IcmpPacket::new_checked(&v[..7]).unwrap_err(),
            WireError::Truncated
        );
        // An error with nothing quoted is valid, with an empty inner().
        let p = IcmpPacket::new_checked(&v[..8]).unwrap();
        assert!(p.is_error());
        assert!(p.inner().is_empty());
    }
}

//! ICMPv6 messages (RFC 4443) and Neighbor Discovery (RFC 4861).

use super::checksum;
use super::{rd16, rd32, rd8, rd_arr, sub, wr16, wr8, WireError};
use crate::addr::{proto, Addr, Mac};

/// Length of the common ICMPv6 header (type, code, checksum, 4 bytes).
pub const HEADER_LEN: usize = 8;
/// Length of a Neighbor Solicitation / Advertisement before its options.
pub const ND_LEN: usize = 24;
/// Length of the Neighbor Advertisement written by [`write_neighbor_advert`].
pub const NA_REPLY_LEN: usize = 32;

/// ICMPv6 message types.
pub mod icmpv6_type {
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// Neighbor Discovery option: source link-layer address.
pub const OPT_SOURCE_LL: u8 = 1;
/// Neighbor Discovery option: target link-layer address.
pub const OPT_TARGET_LL: u8 = 2;

/// Neighbor Advertisement flag: sender is a router.
pub const NA_FLAG_ROUTER: u8 = 0x80;
/// Neighbor Advertisement flag: sent in response to a solicitation.
pub const NA_FLAG_SOLICITED: u8 = 0x40;
/// Neighbor Advertisement flag: override an existing cache entry.
pub const NA_FLAG_OVERRIDE: u8 = 0x20;

#[inline(always)]
fn is_nd(t: u8) -> bool {
    t == icmpv6_type::NEIGHBOR_SOLICIT || t == icmpv6_type::NEIGHBOR_ADVERT
}

/// A view of an ICMPv6 message (the upper-layer payload).
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Validates the 8-byte header, and for NS/NA the 24 bytes up to the end
    /// of the target address.
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN || (is_nd(rd8(b, 0)) && b.len() < ND_LEN) {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv6Packet { buf })
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

    /// Message type (see [`icmpv6_type`]).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        rd8(self.buf.as_ref(), 0)
    }

    /// Message code.
    #[inline]
    pub fn code(&self) -> u8 {
        rd8(self.buf.as_ref(), 1)
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        rd16(self.buf.as_ref(), 2)
    }

    /// Whether this is an echo request or reply.
    #[inline]
    pub fn is_echo(&self) -> bool {
        matches!(
            self.msg_type(),
            icmpv6_type::ECHO_REQUEST | icmpv6_type::ECHO_REPLY
        )
    }

    /// Echo identifier (meaningful for echo request/reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        rd16(self.buf.as_ref(), 4)
    }

    /// Echo sequence number (meaningful for echo request/reply).
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        rd16(self.buf.as_ref(), 6)
    }

    /// Whether this is an error message (types 1 to 4) quoting a packet.
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(self.msg_type(), 1..=4)
    }

    /// The quoted original packet of an error (possibly truncated; parse with
    /// `Ipv6Packet::new_checked_embedded`). Empty for other messages.
    #[inline]
    pub fn inner(&self) -> &[u8] {
        if !self.is_error() {
            return &[];
        }
        let b = self.buf.as_ref();
        sub(b, HEADER_LEN, b.len())
    }

    /// The MTU of a Packet Too Big message.
    #[inline]
    pub fn mtu(&self) -> Option<u32> {
        if self.msg_type() == icmpv6_type::PACKET_TOO_BIG {
            Some(rd32(self.buf.as_ref(), 4))
        } else {
            None
        }
    }

    /// The target address of a Neighbor Solicitation / Advertisement.
    #[inline]
    pub fn nd_target(&self) -> Option<Addr> {
        if is_nd(self.msg_type()) {
            Some(Addr(rd_arr(self.buf.as_ref(), 8)))
        } else {
            None
        }
    }

    /// The flag byte of a Neighbor Advertisement (`NA_FLAG_*`), 0 otherwise.
    #[inline]
    pub fn na_flags(&self) -> u8 {
        if self.msg_type() == icmpv6_type::NEIGHBOR_ADVERT {
            rd8(self.buf.as_ref(), 4)
        } else {
            0
        }
    }

    /// The MAC of the first ND option of `kind` (source or target link-layer
    /// address) in an NS/NA. A malformed option list (zero length, running
    /// past the end) yields `None`, as RFC 4861 says to drop such messages.
    fn nd_ll_option(&self, kind: u8) -> Option<Mac> {
        if !is_nd(self.msg_type()) {
            return None;
        }
        let b = self.buf.as_ref();
        let mut off = ND_LEN;
        // Each option is at least 8 bytes, so this loop is bounded by the
        // message length.
        while off < b.len() {
            let len = rd8(b, off + 1) as usize * 8;
            if len == 0 || off + len > b.len() {
                return None;
            }
            if rd8(b, off) == kind && len == 8 {
                return Some(Mac(rd_arr(b, off + 2)));
            }
            off += len;
        }
        None
    }

    /// The Source Link-Layer Address option of an NS/NA.
    #[inline]
    pub fn source_ll_addr(&self) -> Option<Mac> {
        self.nd_ll_option(OPT_SOURCE_LL)
    }

    /// The Target Link-Layer Address option of an NS/NA.
    #[inline]
    pub fn target_ll_addr(&self) -> Option<Mac> {
        self.nd_ll_option(OPT_TARGET_LL)
    }

    /// Whether the checksum verifies between `src` and `dst`.
    #[inline]
    pub fn verify_checksum(&self, src: &Addr, dst: &Addr) -> bool {
        checksum::verify_l4(src, dst, proto::ICMPV6, self.buf.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the type (checksum untouched).
    #[inline]
    pub fn set_msg_type(&mut self, t: u8) {
        wr8(self.buf.as_mut(), 0, t);
    }

    /// Sets the code (checksum untouched).
    #[inline]
    pub fn set_code(&mut self, c: u8) {
        wr8(self.buf.as_mut(), 1, c);
    }

    /// Sets the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        wr16(self.buf.as_mut(), 2, c);
    }

    /// Sets the echo identifier (checksum untouched).
    #[inline]
    pub fn set_echo_ident(&mut self, id: u16) {
        wr16(self.buf.as_mut(), 4, id);
    }

    /// Sets the echo identifier, updating the checksum incrementally.
    #[inline]
    pub fn rewrite_echo_ident(&mut self, id: u16) {
        let c = checksum::update16(self.checksum(), self.echo_ident(), id);
        self.set_echo_ident(id);
        self.set_checksum(c);
    }

    /// Recomputes the checksum (with the IPv6 pseudo-header).
    #[inline]
    pub fn fill_checksum(&mut self, src: &Addr, dst: &Addr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum(src, dst, proto::ICMPV6, self.buf.as_ref());
        self.set_checksum(c);
    }
}

/// Writes a Neighbor Advertisement for `target` with a Target Link-Layer
/// Address option carrying `mac`, checksummed for `src` -> `dst`; returns
/// [`NA_REPLY_LEN`], or 0 if `buf` is shorter. `flags` are `NA_FLAG_*` bits.
pub fn write_neighbor_advert(
    buf: &mut [u8],
    src: &Addr,
    dst: &Addr,
    target: &Addr,
    mac: Mac,
    flags: u8,
) -> usize {
    let Some(b) = buf.get_mut(..NA_REPLY_LEN) else {
        return 0;
    };
    b[..8].copy_from_slice(&[icmpv6_type::NEIGHBOR_ADVERT, 0, 0, 0, flags & 0xe0, 0, 0, 0]);
    b[8..24].copy_from_slice(&target.0);
    b[24] = OPT_TARGET_LL;
    b[25] = 1;
    b[26..32].copy_from_slice(&mac.0);
    let c = checksum::l4_checksum(src, dst, proto::ICMPV6, b);
    b[2..4].copy_from_slice(&c.to_be_bytes());
    NA_REPLY_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::tests::ref_sum;
    use crate::wire::Ipv6Packet;

    fn a(s: &str) -> Addr {
        s.parse().unwrap()
    }

    /// Reference ICMPv6 checksum: pseudo-header bytes written out.
    fn ref_csum(src: &Addr, dst: &Addr, m: &[u8]) -> u16 {
        let mut v = Vec::new();
        v.extend_from_slice(&src.0);
        v.extend_from_slice(&dst.0);
        v.extend_from_slice(&(m.len() as u32).to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 58]);
        let mut m = m.to_vec();
        m[2] = 0;
        m[3] = 0;
        v.extend_from_slice(&m);
        !ref_sum(&v)
    }

    /// NS from fe80::1 for 2001:db8::100 with SLLA 52:54:00:00:00:01.
    fn ns() -> Vec<u8> {
        let mut v = vec![135, 0, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&a("2001:db8::100").0);
        v.extend_from_slice(&[1, 1, 0x52, 0x54, 0, 0, 0, 1]);
        v
    }

    #[test]
    fn neighbor_solicitation() {
        let src = a("fe80::1");
        let dst = a("ff02::1:ff00:100");
        let mut v = ns();
        let c = ref_csum(&src, &dst, &v);
        v[2..4].copy_from_slice(&c.to_be_bytes());
        let p = Icmpv6Packet::new_checked(&v[..]).unwrap();
        assert!(p.verify_checksum(&src, &dst));
        assert_eq!(p.msg_type(), icmpv6_type::NEIGHBOR_SOLICIT);
        assert_eq!(p.nd_target(), Some(a("2001:db8::100")));
        assert_eq!(p.source_ll_addr(), Some(Mac([0x52, 0x54, 0, 0, 0, 1])));
        assert_eq!(p.target_ll_addr(), None);
        assert!(!p.is_error());
        assert!(p.inner().is_empty());
        assert_eq!(
            Icmpv6Packet::new_checked(&v[..23]).unwrap_err(),
            WireError::Truncated
        );
        // Zero-length option: malformed, no address.
        let mut b = v.clone();
        b[25] = 0;
        assert_eq!(
            Icmpv6Packet::new_checked(&b[..]).unwrap().source_ll_addr(),
            None
        );
        // Option running past the end.
        b[25] = 2;
        assert_eq!(
            Icmpv6Packet::new_checked(&b[..]).unwrap().source_ll_addr(),
            None
        );
    }

    #[test]
    fn advert_builder() {
        let src = a("2001:db8::100");
        let dst = a("fe80::1");
        let mac = Mac([2, 0, 0, 0, 0, 0x42]);
        let mut b = [0u8; 40];
        let n = write_neighbor_advert(
            &mut b,
            &src,
            &dst,
            &src,
            mac,
            NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
        );
        assert_eq!(n, 32);
        let mut expect = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
        expect.extend_from_slice(&src.0);
        expect.extend_from_slice(&[2, 1, 2, 0, 0, 0, 0, 0x42]);
        let c = ref_csum(&src, &dst, &expect);
        expect[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(&b[..32], &expect[..]);
        let p = Icmpv6Packet::new_checked(&b[..32]).unwrap();
        assert_eq!(p.na_flags(), 0x60);
        assert_eq!(p.target_ll_addr(), Some(mac));
        assert_eq!(p.nd_target(), Some(src));
        assert!(p.verify_checksum(&src, &dst));
        assert_eq!(
            write_neighbor_advert(&mut b[..31], &src, &dst, &src, mac, 0),
            0
        );
    }

    #[test]
    fn echo_and_errors() {
        let src = a("2001:db8::1");
        let dst = a("2001:db8::2");
        let mut v = vec![128, 0, 0, 0, 0xbe, 0xef, 0, 9, 1, 2, 3];
        let mut p = Icmpv6Packet::new_checked(&mut v[..]).unwrap();
        p.fill_checksum(&src, &dst);
        assert!(p.is_echo());
        assert_eq!((p.echo_ident(), p.echo_seq()), (0xbeef, 9));
        p.rewrite_echo_ident(0x0102);
        assert!(p.verify_checksum(&src, &dst));
        let c = p.checksum();
        assert_eq!(c, ref_csum(&src, &dst, &v));
        assert_eq!(
            Icmpv6Packet::new_checked(&v[..7]).unwrap_err(),
            WireError::Truncated
        );

        // Packet Too Big (MTU 1280) quoting an IPv6 header + 8 bytes of UDP.
        let mut m = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00, 0x60, 0, 0, 0, 0, 100, 17, 64];
        m.extend_from_slice(&dst.0);
        m.extend_from_slice(&src.0);
        m.extend_from_slice(&[0x13, 0x88, 0x00, 0x35, 0, 100, 0, 0]);
        let mut p = Icmpv6Packet::new_checked(&mut m[..]).unwrap();
        p.set_code(0);
        p.set_msg_type(2);
        p.fill_checksum(&dst, &src);
        assert!(p.is_error());
        assert_eq!(p.mtu(), Some(1280));
        assert_eq!(p.nd_target(), None);
        let ip = Ipv6Packet::new_checked_embedded(p.inner()).unwrap();
        assert_eq!(ip.upper_layer(), Ok((17, 40, false)));
        assert_eq!(crate::wire::l4_ports(ip.payload()), Some((5000, 53)));
        assert!(p.verify_checksum(&dst, &src));
    }
}

//! ICMPv6 messages (RFC 4443) and Neighbor Discovery (RFC 4861).

use super::checksum;
use super::{rd16, rd32, rd8, rd_arr, sub, wr16, wr8, WireError};
use crate::addr::{proto, Addr, Mac};

/// Length of the common ICMPv6 header (type, code, checksum, 4 bytes).
pub const HEADER_LEN: usize = 8;

/// Where each field of the ICMPv6 header is, in bytes from its start: the
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
    /// MTU of a Packet Too Big message.
    pub const MTU: Range<usize> = 4..8;
    /// Flags of a Neighbor Advertisement.
    pub const NA_FLAGS: usize = 4;
    /// Target address of a Neighbor Solicitation / Advertisement.
    pub const ND_TARGET: Range<usize> = 8..24;
    /// Options of a Neighbor Solicitation / Advertisement.
    pub const ND_OPTIONS: RangeFrom<usize> = 24..;
    /// The packet an error quotes.
    pub const DATA: RangeFrom<usize> = 8..;
}
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

/// Whether an ND option list is well formed: each option's length (in units
/// of 8 bytes) is nonzero and the option ends inside the list.
fn nd_options_ok(opts: &[u8]) -> bool {
    let mut off = 0;
    while off < opts.len() {
        let len = rd8(opts, off + 1) as usize * 8;
        if len == 0 || off + len > opts.len() {
            return false;
        }
        off += len;
    }
    true
}

/// A view of an ICMPv6 message (the upper-layer payload).
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps `buf` without checking it, for a buffer an earlier check
    /// already validated (as `new_checked` would). The getters stay
    /// panic-free whatever the buffer holds: out of range they read zeros
    /// and the setters write nothing.
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        Icmpv6Packet { buf }
    }

    /// Validates the 8-byte header, and for NS/NA the 24 bytes up to the end
    /// of the target address (`Truncated`) and the option list: every option
    /// at least 8 bytes and inside the message (`BadOption`; RFC 4861 §7.1
    /// discards such messages).
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        let nd = is_nd(rd8(b, field::TYPE));
        if b.len() < HEADER_LEN || (nd && b.len() < ND_LEN) {
            return Err(WireError::Truncated);
        }
        if nd && !nd_options_ok(sub(b, ND_LEN, b.len())) {
            return Err(WireError::BadOption);
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
            icmpv6_type::ECHO_REQUEST | icmpv6_type::ECHO_REPLY
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
            Some(rd32(self.buf.as_ref(), field::MTU.start))
        } else {
            None
        }
    }

    /// The target address of a Neighbor Solicitation / Advertisement.
    #[inline]
    pub fn nd_target(&self) -> Option<Addr> {
        if is_nd(self.msg_type()) {
            Some(Addr(rd_arr(self.buf.as_ref(), field::ND_TARGET.start)))
        } else {
            None
        }
    }

    /// The flag byte of a Neighbor Advertisement (`NA_FLAG_*`), 0 otherwise.
    #[inline]
    pub fn na_flags(&self) -> u8 {
        if self.msg_type() == icmpv6_type::NEIGHBOR_ADVERT {
            rd8(self.buf.as_ref(), field::NA_FLAGS)
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

    /// Sets the four bytes after the checksum of an error message: the MTU
    /// of a Packet Too Big, zero (unused) for the others. Checksum untouched.
    #[inline]
    pub fn set_mtu(&mut self, mtu: u32) {
        super::wr32(self.buf.as_mut(), field::MTU.start, mtu);
    }

    /// Sets the echo identifier (checksum untouched).
    #[inline]
    pub fn set_echo_ident(&mut self, id: u16) {
        wr16(self.buf.as_mut(), field::ECHO_IDENT.start, id);
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

/// Length of the Neighbor Solicitation written by [`write_neighbor_solicit`].
pub const NS_LEN: usize = 32;

/// Writes a Neighbor Solicitation for `target` with a Source Link-Layer
/// Address option carrying `mac`, checksummed for `src` -> `dst`; returns
/// [`NS_LEN`], or 0 if `buf` is shorter.
pub fn write_neighbor_solicit(
    buf: &mut [u8],
    src: &Addr,
    dst: &Addr,
    target: &Addr,
    mac: Mac,
) -> usize {
    let Some(b) = buf.get_mut(..NS_LEN) else {
        return 0;
    };
    b[..8].copy_from_slice(&[icmpv6_type::NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0]);
    b[field::ND_TARGET].copy_from_slice(&target.0);
    b[24] = OPT_SOURCE_LL;
    b[25] = 1;
    b[26..32].copy_from_slice(&mac.0);
    let c = checksum::l4_checksum(src, dst, proto::ICMPV6, b);
    b[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    NS_LEN
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
        // Zero-length option: malformed (RFC 4861 §7.1.1), and an unchecked
        // view yields no address from it.
        let mut b = v.clone();
        b[25] = 0;
        assert_eq!(
            Icmpv6Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadOption
        );
        assert_eq!(Icmpv6Packet::new_unchecked(&b[..]).source_ll_addr(), None);
        // Option running past the end.
        b[25] = 2;
        assert_eq!(
            Icmpv6Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadOption
        );
        assert_eq!(Icmpv6Packet::new_unchecked(&b[..]).source_ll_addr(), None);
        // A partial option after a whole one.
        let mut b = v.clone();
        b.extend_from_slice(&[1, 1, 0]);
        assert_eq!(
            Icmpv6Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadOption
        );
    }

    #[test]
    fn solicit_builder() {
        let src = a("fe80::1");
        let dst = a("ff02::1:ff00:100");
        let mut b = [0u8; 40];
        let mac = Mac([0x52, 0x54, 0, 0, 0, 1]);
        assert_eq!(
            write_neighbor_solicit(&mut b, &src, &dst, &a("2001:db8::100"), mac),
            NS_LEN
        );
        let mut expect = ns();
        let c = ref_csum(&src, &dst, &expect);
        expect[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(&b[..NS_LEN], &expect[..]);
        assert_eq!(
            write_neighbor_solicit(&mut b[..31], &src, &dst, &src, mac),
            0
        );
    }

    #[test]
    fn echo_request_becomes_reply() {
        let src = a("2001:db8::1");
        let dst = a("2001:db8::2");
        let mut v = vec![128, 0, 0, 0, 0x12, 0x34, 0, 1, b'a', b'b', b'c'];
        let mut p = Icmpv6Packet::new_checked(&mut v[..]).unwrap();
        p.fill_checksum(&src, &dst);
        p.rewrite_msg_type(icmpv6_type::ECHO_REPLY);
        assert_eq!(p.msg_type(), icmpv6_type::ECHO_REPLY);
        assert!(p.verify_checksum(&src, &dst));
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

//! IPv6 headers (RFC 8200) and the extension-header walk.

use super::{rd16, rd32, rd8, rd_arr, sub, sub_mut, wr16, wr32, wr8, wr_bytes, WireError};
use crate::addr::Addr;

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// Where each field of the IPv6 header is, in bytes from its start: the
/// one place that knows the layout (the view and the pipeline use these).
pub mod field {
    use core::ops::{Range, RangeFrom};

    /// Version, traffic class and flow label.
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    /// Payload length.
    pub const LENGTH: Range<usize> = 4..6;
    /// Next header.
    pub const NXT_HDR: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC_ADDR: Range<usize> = 8..24;
    /// Destination address.
    pub const DST_ADDR: Range<usize> = 24..40;
    /// Extension headers and payload.
    pub const PAYLOAD: RangeFrom<usize> = 40..;
}

/// Extension-header numbers the walk understands.
pub mod ext {
    /// Hop-by-Hop Options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing.
    pub const ROUTING: u8 = 43;
    /// Fragment.
    pub const FRAGMENT: u8 = 44;
    /// Authentication Header.
    pub const AH: u8 = 51;
    /// No Next Header.
    pub const NO_NEXT: u8 = 59;
    /// Destination Options.
    pub const DEST_OPTS: u8 = 60;
}

/// At most this many extension headers are walked; a longer chain is
/// rejected rather than let an attacker make us loop over a jumbo packet.
pub const MAX_EXT_HEADERS: usize = 8;

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buf` without checking it, for a buffer an earlier check
    /// already validated (as `new_checked` would). The getters stay
    /// panic-free whatever the buffer holds: out of range they read zeros
    /// and the setters write nothing.
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        Ipv6Packet { buf }
    }

    /// Validates the version and that the payload length fits the buffer
    /// (which may be longer: Ethernet padding).
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let p = Self::new_checked_embedded(buf)?;
        if HEADER_LEN + p.payload_len() as usize > p.buf.as_ref().len() {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    /// Like [`Ipv6Packet::new_checked`] but accepts a payload length beyond
    /// the buffer, for the original packet quoted inside an ICMPv6 error.
    #[inline]
    pub fn new_checked_embedded(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if rd8(b, field::VER_TC_FLOW.start) >> 4 != 6 {
            return Err(WireError::BadVersion);
        }
        Ok(Ipv6Packet { buf })
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The whole buffer (which may extend past the payload).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Traffic class (DSCP/ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (rd16(self.buf.as_ref(), field::VER_TC_FLOW.start) >> 4) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        rd32(self.buf.as_ref(), field::VER_TC_FLOW.start) & 0x000f_ffff
    }

    /// Payload length (everything after the fixed header).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        rd16(self.buf.as_ref(), field::LENGTH.start)
    }

    /// The Next Header field of the fixed header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        rd8(self.buf.as_ref(), field::NXT_HDR)
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        rd8(self.buf.as_ref(), field::HOP_LIMIT)
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Addr {
        Addr(rd_arr(self.buf.as_ref(), field::SRC_ADDR.start))
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Addr {
        Addr(rd_arr(self.buf.as_ref(), field::DST_ADDR.start))
    }

    /// The payload after the fixed header, up to the payload length (or the
    /// buffer's end if shorter).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        sub(b, HEADER_LEN, self.end())
    }

    #[inline]
    fn end(&self) -> usize {
        (HEADER_LEN + self.payload_len() as usize).min(self.buf.as_ref().len())
    }

    /// Whether a Routing header before the upper layer has segments left
    /// (RFC 7915 §5.1: such a packet is not translated). Stops at the first
    /// header that is not an extension header, or at a short one.
    pub fn routing_pending(&self) -> bool {
        let b = self.buf.as_ref();
        let end = self.end();
        let mut nh = self.next_header();
        let mut off = HEADER_LEN;
        for _ in 0..=MAX_EXT_HEADERS {
            let len = match nh {
                ext::HOP_BY_HOP | ext::ROUTING | ext::DEST_OPTS => {
                    (rd8(b, off + 1) as usize + 1) * 8
                }
                ext::AH => (rd8(b, off + 1) as usize + 2) * 4,
                ext::FRAGMENT => 8,
                _ => return false,
            };
            if off + 8 > end {
                return false;
            }
            if nh == ext::ROUTING && rd8(b, off + 3) != 0 {
                return true;
            }
            nh = rd8(b, off);
            off += len;
        }
        false
    }

    /// Walks the extension headers to the upper layer.
    ///
    /// Returns `(protocol, offset of the L4 header from the start of the IPv6
    /// header, is_fragment)`. `is_fragment` is true when a Fragment header
    /// describes a real fragment (nonzero offset or M set); an atomic fragment
    /// (RFC 6946) is a whole packet. For a non-first fragment the walk stops
    /// at the Fragment header: the returned protocol is the one it names, but
    /// the bytes at the offset are not that protocol's header.
    ///
    /// Headers other than Hop-by-Hop, Routing, Fragment, Destination Options
    /// and AH end the walk (including No Next Header, 59). Errors: `Truncated`
    /// if a header runs past the payload, `TooManyExtHeaders` after
    /// [`MAX_EXT_HEADERS`].
    pub fn upper_layer(&self) -> Result<(u8, usize, bool), WireError> {
        let b = self.buf.as_ref();
        let end = self.end();
        let mut nh = self.next_header();
        let mut off = HEADER_LEN;
        let mut frag = false;
        for _ in 0..=MAX_EXT_HEADERS {
            let len = match nh {
                ext::HOP_BY_HOP | ext::ROUTING | ext::DEST_OPTS => {
                    (rd8(b, off + 1) as usize + 1) * 8
                }
                ext::AH => (rd8(b, off + 1) as usize + 2) * 4,
                ext::FRAGMENT => 8,
                _ => return Ok((nh, off, frag)),
            };
            // Each header's first two bytes must be inside the payload before
            // its length byte means anything.
            if off + 8 > end || off + len > end {
                return Err(WireError::Truncated);
            }
            let next = rd8(b, off);
            if nh == ext::FRAGMENT {
                let fo = rd16(b, off + 2);
                if fo & 0xfff9 != 0 {
                    frag = true;
                    if fo & 0xfff8 != 0 {
                        return Ok((next, off + len, true));
                    }
                }
            }
            nh = next;
            off += len;
        }
        Err(WireError::TooManyExtHeaders)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, h: u8) {
        wr8(self.buf.as_mut(), field::HOP_LIMIT, h);
    }

    /// Sets the traffic class (DSCP/ECN), keeping version and flow label.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let b = self.buf.as_mut();
        let w = rd32(b, field::VER_TC_FLOW.start);
        let w = (w & 0xf00f_ffff) | (u32::from(tc) << 20);
        wr32(b, field::VER_TC_FLOW.start, w);
    }

    /// Sets the payload length. The payload accessors clamp to the buffer, so
    /// a too-large value cannot cause a panic.
    #[inline]
    pub fn set_payload_len(&mut self, l: u16) {
        wr16(self.buf.as_mut(), field::LENGTH.start, l);
    }

    /// Sets the Next Header field of the fixed header.
    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        wr8(self.buf.as_mut(), field::NXT_HDR, nh);
    }

    /// Sets the source address (there is no IPv6 header checksum; the L4
    /// checksum is the caller's).
    #[inline]
    pub fn set_src(&mut self, a: &Addr) {
        wr_bytes(self.buf.as_mut(), field::SRC_ADDR.start, &a.0);
    }

    /// Sets the destination address (the L4 checksum is the caller's).
    #[inline]
    pub fn set_dst(&mut self, a: &Addr) {
        wr_bytes(self.buf.as_mut(), field::DST_ADDR.start, &a.0);
    }

    /// The payload, mutably (up to the payload length).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let e = self.end();
        sub_mut(self.buf.as_mut(), HEADER_LEN, e)
    }
}

/// Writes a 40-byte IPv6 header (traffic class and flow label zero);
/// returns 40, or 0 if `buf` is shorter.
#[inline]
pub fn write_header(
    buf: &mut [u8],
    src: &Addr,
    dst: &Addr,
    next_header: u8,
    hop_limit: u8,
    payload_len: u16,
) -> usize {
    let Some(h) = buf.get_mut(..HEADER_LEN) else {
        return 0;
    };
    h[..4].copy_from_slice(&[0x60, 0, 0, 0]);
    h[4..6].copy_from_slice(&payload_len.to_be_bytes());
    h[6] = next_header;
    h[7] = hop_limit;
    h[8..24].copy_from_slice(&src.0);
    h[24..40].copy_from_slice(&dst.0);
    HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(nh: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x6b, 0x81, 0x23, 0x45];
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.push(nh);
        v.push(64);
        // 2001:db8::1 -> 2001:db8::2
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v.extend_from_slice(payload);
        v
    }

    const UDP8: [u8; 8] = [0x13, 0x88, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00];

    #[test]
    fn fixed_header() {
        let mut v = base(17, &UDP8);
        v.extend_from_slice(&[0, 0]); // padding
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), 17);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src(), "2001:db8::1".parse().unwrap());
        assert_eq!(p.dst(), "2001:db8::2".parse().unwrap());
        assert_eq!(p.payload(), &UDP8);
        assert_eq!(p.upper_layer(), Ok((17, 40, false)));
    }

    #[test]
    fn malformed() {
        let v = base(17, &UDP8);
        assert_eq!(
            Ipv6Packet::new_checked(&v[..39]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Ipv6Packet::new_checked(&v[..47]).unwrap_err(),
            WireError::Truncated
        );
        assert!(Ipv6Packet::new_checked_embedded(&v[..44]).is_ok());
        let mut b = v.clone();
        b[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadVersion
        );
    }

    #[test]
    fn hop_by_hop_then_fragment() {
        // HBH (next 44, len 0: Router Alert option + PadN), then a first
        // fragment (offset 0, M=1, id 0xdeadbeef) of a UDP datagram.
        let mut pl = vec![44, 0, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00];
        pl.extend_from_slice(&[17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        pl.extend_from_slice(&UDP8);
        let v = base(0, &pl);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Ok((17, 56, true)));

        // A non-first fragment (offset 1 unit, M=0) stops at the Fragment header.
        let mut v2 = v.clone();
        v2[40 + 8 + 2] = 0x00;
        v2[40 + 8 + 3] = 0x08;
        let p = Ipv6Packet::new_checked(&v2[..]).unwrap();
        assert_eq!(p.upper_layer(), Ok((17, 56, true)));

        // An atomic fragment (offset 0, M=0) is not a fragment.
        let mut v3 = v.clone();
        v3[40 + 8 + 3] = 0x00;
        let p = Ipv6Packet::new_checked(&v3[..]).unwrap();
        assert_eq!(p.upper_layer(), Ok((17, 56, false)));
    }

    #[test]
    fn routing_dest_opts_and_ah() {
        // Routing (len 2 -> 24 bytes), Dest opts (len 0), AH (len 4 -> 24 bytes), TCP.
        let mut pl = vec![60, 2, 0, 0];
        pl.extend_from_slice(&[0; 20]);
        pl.extend_from_slice(&[51, 0, 1, 4, 0, 0, 0, 0]);
        pl.extend_from_slice(&[6, 4, 0, 0]);
        pl.extend_from_slice(&[0; 20]);
        pl.extend_from_slice(&[0; 20]);
        let v = base(43, &pl);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Ok((6, 40 + 24 + 8 + 24, false)));
        // No Next Header ends the walk.
        let v = base(59, &[]);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Ok((59, 40, false)));
    }

    #[test]
    fn ext_header_errors() {
        // HBH claiming 16 bytes with only 8 present.
        let v = base(0, &[17, 1, 0, 0, 0, 0, 0, 0]);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(WireError::Truncated));
        // HBH with fewer than 8 bytes left.
        let v = base(0, &[17, 0, 0, 0]);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(WireError::Truncated));
        // The walk respects payload_len, not the buffer: padding is not a header.
        let mut v = base(0, &[]);
        v.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(WireError::Truncated));
        // Nine chained destination-options headers.
        let mut pl = Vec::new();
        for _ in 0..9 {
            pl.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        let v = base(60, &pl);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(WireError::TooManyExtHeaders));
        // Eight are fine.
        let mut pl = Vec::new();
        for i in 0..8 {
            pl.extend_from_slice(&[if i == 7 { 6 } else { 60 }, 0, 1, 4, 0, 0, 0, 0]);
        }
        let v = base(60, &pl);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Ok((6, 40 + 64, false)));
    }

    #[test]
    fn setters_and_builder() {
        let src: Addr = "2001:db8::1".parse().unwrap();
        let dst: Addr = "2001:db8::2".parse().unwrap();
        let mut b = [0u8; 48];
        assert_eq!(write_header(&mut b, &src, &dst, 17, 64, 8), 40);
        let mut expect = base(17, &UDP8);
        expect[..4].copy_from_slice(&[0x60, 0, 0, 0]);
        assert_eq!(&b[..40], &expect[..40]);
        assert_eq!(write_header(&mut b[..39], &src, &dst, 17, 64, 8), 0);

        let mut p = Ipv6Packet::new_checked(&mut b[..]).unwrap();
        p.set_hop_limit(3);
        p.set_next_header(6);
        p.set_src(&dst);
        p.set_dst(&src);
        p.set_payload_len(4);
        p.payload_mut()[0] = 0xab;
        assert_eq!((p.hop_limit(), p.next_header(), p.payload_len()), (3, 6, 4));
        assert_eq!((p.src(), p.dst()), (dst, src));
        assert_eq!(p.payload(), &[0xab, 0, 0, 0]);
        p.set_payload_len(9000);
        assert_eq!(p.payload().len(), 8);
    }
}

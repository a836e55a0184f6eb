//! IPv4 headers (RFC 791).

use super::checksum;
use super::{rd16, rd8, rd_arr, sub, sub_mut, wr16, wr8, wr_bytes, WireError};
use crate::addr::Addr;

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

/// Where each field of the IPv4 header is, in bytes from its start: the
/// one place that knows the layout (the view and the pipeline use these).
pub mod field {
    use core::ops::{Range, RangeFrom};

    /// Version (high nibble) and header length in 32-bit words.
    pub const VER_IHL: usize = 0;
    /// DSCP and ECN.
    pub const DSCP_ECN: usize = 1;
    /// Total length.
    pub const LENGTH: Range<usize> = 2..4;
    /// Identification.
    pub const IDENT: Range<usize> = 4..6;
    /// Flags and fragment offset.
    pub const FLG_OFF: Range<usize> = 6..8;
    /// Time to live (the first byte of the TTL/protocol word).
    pub const TTL: usize = 8;
    /// Protocol.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Range<usize> = 10..12;
    /// Source address.
    pub const SRC_ADDR: Range<usize> = 12..16;
    /// Destination address.
    pub const DST_ADDR: Range<usize> = 16..20;
    /// Options (up to the header length), then the payload.
    pub const OPTIONS: RangeFrom<usize> = 20..;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buf` without checking it, for a buffer an earlier check
    /// already validated (as `new_checked` would). The getters stay
    /// panic-free whatever the buffer holds: out of range they read zeros
    /// and the setters write nothing.
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        Ipv4Packet { buf }
    }

    /// Validates version, IHL and total length against the buffer.
    ///
    /// The buffer may be longer than the total length (Ethernet padding);
    /// [`Ipv4Packet::payload`] stops at the total length.
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let p = Self::new_checked_embedded(buf)?;
        if p.total_len() as usize > p.buf.as_ref().len() {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    /// Like [`Ipv4Packet::new_checked`] but accepts a total length beyond the
    /// buffer, for the original header quoted inside an ICMP error (which is
    /// cut after 8 bytes of payload); `payload()` then ends at the buffer.
    #[inline]
    pub fn new_checked_embedded(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if rd8(b, field::VER_IHL) >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        let hl = (rd8(b, field::VER_IHL) & 0x0f) as usize * 4;
        if hl < HEADER_LEN {
            return Err(WireError::BadHeaderLen);
        }
        if hl > b.len() {
            return Err(WireError::Truncated);
        }
        if (rd16(b, field::LENGTH.start) as usize) < hl {
            return Err(WireError::BadTotalLen);
        }
        Ok(Ipv4Packet { buf })
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The whole buffer (which may extend past the total length).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Header length in bytes (20..=60).
    #[inline]
    pub fn header_len(&self) -> usize {
        (rd8(self.buf.as_ref(), field::VER_IHL) & 0x0f) as usize * 4
    }

    /// The DSCP/ECN byte (formerly TOS).
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        rd8(self.buf.as_ref(), field::DSCP_ECN)
    }

    /// Total length (header plus payload).
    #[inline]
    pub fn total_len(&self) -> u16 {
        rd16(self.buf.as_ref(), field::LENGTH.start)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        rd16(self.buf.as_ref(), field::IDENT.start)
    }

    /// The Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        rd16(self.buf.as_ref(), field::FLG_OFF.start) & FLAG_DF != 0
    }

    /// The More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        rd16(self.buf.as_ref(), field::FLG_OFF.start) & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the wire field times 8).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (rd16(self.buf.as_ref(), field::FLG_OFF.start) & 0x1fff) << 3
    }

    /// Whether this is a fragment (MF set or nonzero offset), i.e. whether the
    /// payload may not start with, or not contain all of, the L4 segment.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        rd16(self.buf.as_ref(), field::FLG_OFF.start) & (FLAG_MF | 0x1fff) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        rd8(self.buf.as_ref(), field::TTL)
    }

    /// Protocol of the payload (see [`crate::addr::proto`]).
    #[inline]
    pub fn protocol(&self) -> u8 {
        rd8(self.buf.as_ref(), field::PROTOCOL)
    }

    /// Header checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        rd16(self.buf.as_ref(), field::CHECKSUM.start)
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Addr {
        Addr::from_v4_bytes(rd_arr(self.buf.as_ref(), field::SRC_ADDR.start))
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Addr {
        Addr::from_v4_bytes(rd_arr(self.buf.as_ref(), field::DST_ADDR.start))
    }

    /// The options (empty for a 20-byte header).
    #[inline]
    pub fn options(&self) -> &[u8] {
        sub(self.buf.as_ref(), HEADER_LEN, self.header_len())
    }

    /// The header including options.
    #[inline]
    pub fn header(&self) -> &[u8] {
        sub(self.buf.as_ref(), 0, self.header_len())
    }

    /// The payload, up to the total length (or the buffer's end if shorter).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        let end = (self.total_len() as usize).min(b.len());
        sub(b, self.header_len(), end)
    }

    /// Whether the options carry a source route (LSRR or SSRR), which a
    /// NAT46 translation must refuse (RFC 7915 §4.1). A malformed option
    /// list ends the walk.
    pub fn has_source_route(&self) -> bool {
        let o = self.options();
        let mut i = 0;
        while let Some(&kind) = o.get(i) {
            match kind {
                0 => return false,
                1 => i += 1,
                0x83 | 0x89 => return true,
                _ => match o.get(i + 1) {
                    Some(&l) if l >= 2 => i += l as usize,
                    _ => return false,
                },
            }
        }
        false
    }

    /// Whether the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.header())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the source address (checksum untouched; see
    /// [`Ipv4Packet::rewrite_src`]).
    #[inline]
    pub fn set_src(&mut self, a: &Addr) {
        wr_bytes(self.buf.as_mut(), field::SRC_ADDR.start, &a.v4_bytes());
    }

    /// Sets the destination address (checksum untouched).
    #[inline]
    pub fn set_dst(&mut self, a: &Addr) {
        wr_bytes(self.buf.as_mut(), field::DST_ADDR.start, &a.v4_bytes());
    }

    /// Sets the TTL (checksum untouched).
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        wr8(self.buf.as_mut(), field::TTL, ttl);
    }

    /// Sets the protocol (checksum untouched).
    #[inline]
    pub fn set_protocol(&mut self, p: u8) {
        wr8(self.buf.as_mut(), field::PROTOCOL, p);
    }

    /// Sets the identification (checksum untouched).
    #[inline]
    pub fn set_ident(&mut self, id: u16) {
        wr16(self.buf.as_mut(), field::IDENT.start, id);
    }

    /// Sets the total length (checksum untouched). The payload accessors
    /// clamp to the buffer, so a too-large value cannot cause a panic.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        wr16(self.buf.as_mut(), field::LENGTH.start, len);
    }

    /// Sets the DSCP/ECN byte (checksum untouched).
    #[inline]
    pub fn set_dscp_ecn(&mut self, v: u8) {
        wr8(self.buf.as_mut(), field::DSCP_ECN, v);
    }

    /// Sets the stored header checksum.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        wr16(self.buf.as_mut(), field::CHECKSUM.start, c);
    }

    /// Recomputes the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::sum(self.header()));
        self.set_checksum(c);
    }

    /// Sets the source address and updates the header checksum incrementally.
    /// The L4 checksum (which covers the pseudo-header) is the caller's.
    #[inline]
    pub fn rewrite_src(&mut self, a: &Addr) {
        let c = checksum::update_addr(self.checksum(), &self.src(), a);
        self.set_src(a);
        self.set_checksum(c);
    }

    /// Sets the destination address and updates the header checksum
    /// incrementally. The L4 checksum is the caller's.
    #[inline]
    pub fn rewrite_dst(&mut self, a: &Addr) {
        let c = checksum::update_addr(self.checksum(), &self.dst(), a);
        self.set_dst(a);
        self.set_checksum(c);
    }

    /// Sets the TTL, updating the header checksum incrementally.
    #[inline]
    pub fn rewrite_ttl(&mut self, ttl: u8) {
        let old = rd16(self.buf.as_ref(), field::TTL);
        let new = (ttl as u16) << 8 | (old & 0xff);
        let c = checksum::update16(self.checksum(), old, new);
        wr16(self.buf.as_mut(), field::TTL, new);
        self.set_checksum(c);
    }

    /// Sets the total length, updating the header checksum incrementally.
    #[inline]
    pub fn rewrite_total_len(&mut self, len: u16) {
        let c = checksum::update16(self.checksum(), self.total_len(), len);
        self.set_total_len(len);
        self.set_checksum(c);
    }

    /// Decrements the TTL (saturating at 0) with an incremental checksum
    /// update, and returns the new TTL; the caller drops the packet (and may
    /// send Time Exceeded) when it is 0.
    #[inline]
    pub fn decrement_ttl(&mut self) -> u8 {
        let b = self.buf.as_ref();
        let old = rd16(b, field::TTL);
        let ttl = rd8(b, field::TTL);
        if ttl == 0 {
            return 0;
        }
        let new = old - 0x0100;
        let c = checksum::update16(self.checksum(), old, new);
        wr16(self.buf.as_mut(), field::TTL, new);
        self.set_checksum(c);
        ttl - 1
    }

    /// The payload, mutably (up to the total length).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        let t = self.total_len() as usize;
        let b = self.buf.as_mut();
        let end = t.min(b.len());
        sub_mut(b, h, end)
    }
}

/// Writes a 20-byte IPv4 header with its checksum; returns 20, or 0 if `buf`
/// is shorter or the total length would exceed 65535.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn write_header(
    buf: &mut [u8],
    src: &Addr,
    dst: &Addr,
    proto: u8,
    ttl: u8,
    payload_len: u16,
    ident: u16,
    df: bool,
) -> usize {
    let Some(total) = payload_len.checked_add(HEADER_LEN as u16) else {
        return 0;
    };
    let Some(h) = buf.get_mut(..HEADER_LEN) else {
        return 0;
    };
    h[0] = 0x45;
    h[1] = 0;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&ident.to_be_bytes());
    h[6..8].copy_from_slice(&(if df { FLAG_DF } else { 0 }).to_be_bytes());
    h[8] = ttl;
    h[9] = proto;
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&src.v4_bytes());
    h[16..20].copy_from_slice(&dst.v4_bytes());
    let c = checksum::finish(checksum::sum(h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::tests::{ref_sum, XorShift};

    // The classic example: 192.168.0.1 -> 192.168.0.199, UDP, total 0x73.
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn packet(payload_len: usize, pad: usize) -> Vec<u8> {
        let mut v = HDR.to_vec();
        v.extend((0..payload_len).map(|i| i as u8));
        v.resize(v.len() + pad, 0xee);
        v
    }

    #[test]
    fn parses_classic_header() {
        let v = packet(0x73 - 20, 6);
        let p = Ipv4Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 0x73);
        assert_eq!(p.dscp_ecn(), 0);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.checksum(), 0xb861);
        assert_eq!(p.src(), Addr::v4(192, 168, 0, 1));
        assert_eq!(p.dst(), Addr::v4(192, 168, 0, 199));
        assert!(p.options().is_empty());
        // Padding is excluded from the payload.
        assert_eq!(p.payload().len(), 0x73 - 20);
        assert_eq!(p.payload().last(), Some(&(0x73 - 21)));
        assert!(p.verify_checksum());
    }

    #[test]
    fn malformed() {
        let v = packet(0x73 - 20, 0);
        assert_eq!(
            Ipv4Packet::new_checked(&v[..19]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&v[..0x72]).unwrap_err(),
            WireError::Truncated
        );
        let mut b = v.clone();
        b[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadVersion
        );
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadHeaderLen
        );
        b[0] = 0x4f; // 60-byte header in a 40-byte buffer.
        assert_eq!(
            Ipv4Packet::new_checked(&b[..40]).unwrap_err(),
            WireError::Truncated
        );
        let mut b = v.clone();
        b[2] = 0;
        b[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadTotalLen
        );
        // Embedded (ICMP-quoted) headers may claim more than is present.
        let p = Ipv4Packet::new_checked_embedded(&v[..28]).unwrap();
        assert_eq!(p.payload(), &[0, 1, 2, 3, 4, 5, 6, 7]);
        let mut b = v.clone();
        b[11] ^= 0x10;
        assert!(!Ipv4Packet::new_checked(&b[..]).unwrap().verify_checksum());
    }

    #[test]
    fn options_and_fragments() {
        // IHL 6 with a 4-byte option (NOP NOP NOP EOL), MF set, offset 185*8.
        let mut v = vec![
            0x46, 0xb8, 0x00, 0x1c, 0x12, 0x34, 0x20, 0xb9, 0x01, 0x06, 0x00, 0x00, 10, 0, 0, 1,
            10, 0, 0, 2, 1, 1, 1, 0, 0xaa, 0xbb, 0xcc, 0xdd,
        ];
        let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.dscp_ecn(), 0xb8);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert!(p.more_frags());
        assert!(!p.dont_frag());
        assert_eq!(p.frag_offset(), 185 * 8);
        assert!(p.is_fragment());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            p.checksum(),
            !ref_sum(&{
                let mut h = v[..24].to_vec();
                h[10] = 0;
                h[11] = 0;
                h
            })
        );
    }

    #[test]
    fn incremental_rewrites_match_full() {
        let mut rng = XorShift(7);
        let mut v = packet(8, 0);
        v[2] = 0;
        v[3] = 28;
        Ipv4Packet::new_checked(&mut v[..]).unwrap().fill_checksum();
        for _ in 0..1000 {
            let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
            let a = Addr::from_v4_bytes((rng.next() as u32).to_be_bytes());
            match rng.next() % 3 {
                0 => p.rewrite_src(&a),
                1 => p.rewrite_dst(&a),
                _ => {
                    if p.ttl() < 2 {
                        p.set_ttl(200);
                        p.fill_checksum();
                    }
                    let t = p.ttl();
                    assert_eq!(p.decrement_ttl(), t - 1);
                }
            }
            let c = p.checksum();
            let mut h = v[..20].to_vec();
            h[10] = 0;
            h[11] = 0;
            assert_eq!(c, !ref_sum(&h));
        }
        let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        p.set_ttl(0);
        p.fill_checksum();
        let c = p.checksum();
        assert_eq!(p.decrement_ttl(), 0);
        assert_eq!((p.ttl(), p.checksum()), (0, c));
    }

    #[test]
    fn ttl_and_length_rewrites_keep_the_checksum() {
        let mut v = packet(0x73 - 20, 0);
        let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        p.rewrite_ttl(3);
        p.rewrite_total_len(0x70);
        assert_eq!((p.ttl(), p.protocol(), p.total_len()), (3, 17, 0x70));
        assert!(p.verify_checksum());
        let c = p.checksum();
        p.fill_checksum();
        assert_eq!(p.checksum(), c);
    }

    #[test]
    fn builder_reproduces_classic_header() {
        let mut b = [0u8; 20];
        let n = write_header(
            &mut b,
            &Addr::v4(192, 168, 0, 1),
            &Addr::v4(192, 168, 0, 199),
            17,
            64,
            0x73 - 20,
            0,
            true,
        );
        assert_eq!(n, 20);
        assert_eq!(b, HDR);
        let a = Addr::v4(1, 2, 3, 4);
        assert_eq!(write_header(&mut b[..19], &a, &a, 6, 64, 0, 0, false), 0);
        assert_eq!(write_header(&mut b, &a, &a, 6, 64, 65516, 0, false), 0);
        assert_eq!(write_header(&mut b, &a, &a, 6, 64, 65515, 0, false), 20);
    }

    #[test]
    fn setters_past_buffer_do_not_panic() {
        let mut v = packet(8, 0);
        v[3] = 28;
        let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        p.set_total_len(60000);
        assert_eq!(p.payload().len(), 8);
        assert_eq!(p.payload_mut().len(), 8);
        p.set_total_len(3);
        assert!(p.payload().is_empty());
    }
}

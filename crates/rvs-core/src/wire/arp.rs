//! ARP for Ethernet/IPv4 (RFC 826).

use super::{rd16, rd8, rd_arr, wr16, wr_bytes, WireError};
use crate::addr::{Addr, Mac};

/// Length of an Ethernet/IPv4 ARP body.
pub const PACKET_LEN: usize = 28;
/// ARP operation: request.
pub const OP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const OP_REPLY: u16 = 2;

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Validates the length and that this is Ethernet (htype 1) / IPv4
    /// (ptype 0x0800) with 6- and 4-byte addresses; other kinds are
    /// `Unsupported`. Trailing bytes (Ethernet padding) are allowed.
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < PACKET_LEN {
            return Err(WireError::Truncated);
        }
        if rd16(b, 0) != 1 || rd16(b, 2) != 0x0800 || rd8(b, 4) != 6 || rd8(b, 5) != 4 {
            return Err(WireError::Unsupported);
        }
        Ok(ArpPacket { buf })
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The underlying bytes (including any trailing padding).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Operation ([`OP_REQUEST`] or [`OP_REPLY`]; others are passed through).
    #[inline]
    pub fn operation(&self) -> u16 {
        rd16(self.buf.as_ref(), 6)
    }

    /// Sender hardware address.
    #[inline]
    pub fn sender_mac(&self) -> Mac {
        Mac(rd_arr(self.buf.as_ref(), 8))
    }

    /// Sender protocol (IPv4) address.
    #[inline]
    pub fn sender_ip(&self) -> Addr {
        Addr::from_v4_bytes(rd_arr(self.buf.as_ref(), 14))
    }

    /// Target hardware address.
    #[inline]
    pub fn target_mac(&self) -> Mac {
        Mac(rd_arr(self.buf.as_ref(), 18))
    }

    /// Target protocol (IPv4) address.
    #[inline]
    pub fn target_ip(&self) -> Addr {
        Addr::from_v4_bytes(rd_arr(self.buf.as_ref(), 24))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        wr16(self.buf.as_mut(), 6, op);
    }

    /// Sets the sender hardware address.
    #[inline]
    pub fn set_sender_mac(&mut self, m: Mac) {
        wr_bytes(self.buf.as_mut(), 8, &m.0);
    }

    /// Sets the sender IPv4 address.
    #[inline]
    pub fn set_sender_ip(&mut self, a: &Addr) {
        wr_bytes(self.buf.as_mut(), 14, &a.v4_bytes());
    }

    /// Sets the target hardware address.
    #[inline]
    pub fn set_target_mac(&mut self, m: Mac) {
        wr_bytes(self.buf.as_mut(), 18, &m.0);
    }

    /// Sets the target IPv4 address.
    #[inline]
    pub fn set_target_ip(&mut self, a: &Addr) {
        wr_bytes(self.buf.as_mut(), 24, &a.v4_bytes());
    }
}

/// Writes a 28-byte Ethernet/IPv4 ARP body; returns 28, or 0 if `buf` is
/// shorter. `spa` and `tpa` are taken as IPv4 (their low 4 bytes).
#[inline]
pub fn write_arp(buf: &mut [u8], op: u16, sha: Mac, spa: Addr, tha: Mac, tpa: Addr) -> usize {
    let Some(b) = buf.get_mut(..PACKET_LEN) else {
        return 0;
    };
    b[..6].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    b[6..8].copy_from_slice(&op.to_be_bytes());
    b[8..14].copy_from_slice(&sha.0);
    b[14..18].copy_from_slice(&spa.v4_bytes());
    b[18..24].copy_from_slice(&tha.0);
    b[24..28].copy_from_slice(&tpa.v4_bytes());
    PACKET_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    // Who has 10.0.0.1? Tell 10.0.0.2 (from 52:54:00:12:34:56), padded to 46.
    const REQ: [u8; 46] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0,
        0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn parses_request() {
        let a = ArpPacket::new_checked(&REQ[..]).unwrap();
        assert_eq!(a.operation(), OP_REQUEST);
        assert_eq!(a.sender_mac(), Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
        assert_eq!(a.sender_ip(), Addr::v4(10, 0, 0, 2));
        assert_eq!(a.target_mac(), Mac::ZERO);
        assert_eq!(a.target_ip(), Addr::v4(10, 0, 0, 1));
    }

    #[test]
    fn rejects_bad() {
        assert_eq!(
            ArpPacket::new_checked(&REQ[..27]).unwrap_err(),
            WireError::Truncated
        );
        for (i, v) in [(1usize, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut p = REQ;
            p[i] = v;
            assert_eq!(
                ArpPacket::new_checked(&p[..]).unwrap_err(),
                WireError::Unsupported
            );
        }
    }

    #[test]
    fn reply_in_place_matches_builder() {
        let me = Mac([2, 0, 0, 0, 0, 9]);
        let mut p = REQ;
        let mut a = ArpPacket::new_checked(&mut p[..]).unwrap();
        let (sha, spa, tpa) = (a.sender_mac(), a.sender_ip(), a.target_ip());
        a.set_operation(OP_REPLY);
        a.set_target_mac(sha);
        a.set_target_ip(&spa);
        a.set_sender_mac(me);
        a.set_sender_ip(&tpa);
        let mut b = [0u8; 28];
        assert_eq!(write_arp(&mut b, OP_REPLY, me, tpa, sha, spa), 28);
        assert_eq!(&p[..28], &b[..]);
        assert_eq!(
            b,
            [
                0, 1, 8, 0, 6, 4, 0, 2, 2, 0, 0, 0, 0, 9, 10, 0, 0, 1, 0x52, 0x54, 0, 0x12, 0x34,
                0x56, 10, 0, 0, 2
            ]
        );
        assert_eq!(write_arp(&mut b[..27], OP_REPLY, me, tpa, sha, spa), 0);
    }
}

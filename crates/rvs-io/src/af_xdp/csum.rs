//! Receive checksums under AF_XDP.
//!
//! A frame redirected to an XSK carries no checksum metadata: a veth peer
//! (or any local sender) with TX checksum offload hands over TCP/UDP
//! segments whose checksum field holds only the pseudo-header sum
//! (CHECKSUM_PARTIAL), and nothing in the frame says so. The `complete`
//! policy therefore verifies each TCP/UDP checksum, and when it is wrong but
//! the field equals the folded pseudo-header sum — exactly what a partial
//! checksum looks like — computes the real one in place. A checksum that is
//! neither valid nor partial is left alone and reported as not verified, so
//! the pipeline drops the frame as it would any corrupt one; only a corrupt
//! frame whose field happens to equal its pseudo-header sum (1 in 65536 of
//! corrupt frames) would be repaired instead of dropped.

use rvs_core::addr::{proto, Addr};
use rvs_core::wire::checksum::{finish, fold, pseudo_header, sum};

use crate::offload::parse_l4;

/// What [`rx_checksum`] found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum CsumOutcome {
    /// The TCP/UDP checksum is right.
    Valid,
    /// It was partial and is now complete.
    Completed,
    /// Wrong, and not a partial one: left as is.
    Bad,
    /// Not a TCP/UDP segment this code checks (other protocols, fragments,
    /// UDP over IPv4 without checksum): left to the pipeline.
    NotTcpUdp,
}

/// Verifies, or completes when partial, the TCP/UDP checksum of frame `f`.
pub(crate) fn rx_checksum(f: &mut [u8]) -> CsumOutcome {
    let Some(i) = parse_l4(f) else {
        return CsumOutcome::NotTcpUdp;
    };
    let field = match i.proto {
        proto::TCP => i.l4 + 16,
        proto::UDP => i.l4 + 6,
        _ => return CsumOutcome::NotTcpUdp,
    };
    if field + 2 > i.end {
        return CsumOutcome::NotTcpUdp;
    }
    let cur = u16::from_be_bytes([f[field], f[field + 1]]);
    if i.proto == proto::UDP && !i.v6 && cur == 0 {
        return CsumOutcome::NotTcpUdp;
    }
    let (src, dst) = if i.v6 {
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s.copy_from_slice(&f[i.l3 + 8..i.l3 + 24]);
        d.copy_from_slice(&f[i.l3 + 24..i.l3 + 40]);
        (Addr::from_v6_bytes(s), Addr::from_v6_bytes(d))
    } else {
        let a = |o: usize| [f[o], f[o + 1], f[o + 2], f[o + 3]];
        (
            Addr::from_v4_bytes(a(i.l3 + 12)),
            Addr::from_v4_bytes(a(i.l3 + 16)),
        )
    };
    let seg_len = (i.end - i.l4) as u32;
    let ph = pseudo_header(&src, &dst, i.proto, seg_len);
    let body = sum(&f[i.l4..i.end]);
    if fold(ph + body) == 0xffff {
        return CsumOutcome::Valid;
    }
    if cur != fold(ph) {
        return CsumOutcome::Bad;
    }
    // The field holds the pseudo-header sum: the segment's sum, field
    // included, is the whole sum (as skb_checksum_help computes it).
    let c = finish(body);
    let c = if c == 0 { 0xffff } else { c };
    f[field..field + 2].copy_from_slice(&c.to_be_bytes());
    CsumOutcome::Completed
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::wire::checksum::l4_checksum;

    fn tcp_frame() -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + 11];
        f[12] = 0x08;
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(20u16 + 31).to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let t = &mut f[34..];
        t[0..2].copy_from_slice(&1234u16.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t[12] = 0x50;
        t[20..].copy_from_slice(b"hello world");
        f
    }

    fn addrs() -> (Addr, Addr) {
        (
            Addr::from_v4_bytes([10, 0, 0, 1]),
            Addr::from_v4_bytes([10, 0, 0, 2]),
        )
    }

    #[test]
    fn valid_partial_and_bad_checksums() {
        let (s, d) = addrs();
        let mut f = tcp_frame();
        let c = l4_checksum(&s, &d, 6, &f[34..]);
        f[50..52].copy_from_slice(&c.to_be_bytes());
        let good = f.clone();
        assert_eq!(rx_checksum(&mut f), CsumOutcome::Valid);
        assert_eq!(f, good);

        // Partial, as a sender with TX offload leaves it.
        let p = fold(pseudo_header(&s, &d, 6, 31));
        f[50..52].copy_from_slice(&p.to_be_bytes());
        assert_eq!(rx_checksum(&mut f), CsumOutcome::Completed);
        assert_eq!(f, good, "completed to the real checksum");

        // Corrupt: neither valid nor partial; untouched.
        f[60] ^= 0x40;
        let bad = f.clone();
        assert_eq!(rx_checksum(&mut f), CsumOutcome::Bad);
        assert_eq!(f, bad);

        // Truncated and non-IP frames are not looked at.
        assert_eq!(rx_checksum(&mut f[..20]), CsumOutcome::NotTcpUdp);
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(rx_checksum(&mut arp), CsumOutcome::NotTcpUdp);
    }
}

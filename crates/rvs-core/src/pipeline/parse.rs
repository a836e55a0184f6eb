//! One pass over a received frame: validate the headers once and record the
//! offsets and fields the rest of the pipeline reads.

use crate::addr::{proto, Addr};
use crate::stats::DropReason;
use crate::wire::checksum;
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::WireError;

/// What the transport header is, as far as the pipeline cares.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum L4 {
    /// TCP segment.
    Tcp,
    /// UDP datagram.
    Udp,
    /// ICMP / ICMPv6 echo request (`true`) or reply (`false`).
    Echo(bool),
    /// ICMP / ICMPv6 error carrying an inner packet.
    IcmpError,
    /// Anything else (other ICMP types, other protocols).
    Other,
}

/// Offsets (from the frame start) and fields of a parsed IP packet.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Parsed {
    /// IP header offset.
    pub l3: usize,
    /// Transport header offset.
    pub l4: usize,
    /// IP total length (header + payload).
    pub ip_len: usize,
    /// IPv6?
    pub v6: bool,
    /// Transport protocol.
    pub proto: u8,
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// Source port (echo identifier for ICMP echo).
    pub sport: u16,
    /// Destination port (echo identifier for ICMP echo).
    pub dport: u16,
    /// TCP flags (0 otherwise).
    pub tcp_flags: u8,
    /// TCP header length (0 otherwise).
    pub tcp_hlen: usize,
    /// TTL / hop limit.
    pub ttl: u8,
    /// What the transport is.
    pub kind: L4,
}

impl Parsed {
    /// Bytes of transport payload (after the TCP/UDP header).
    pub fn payload_len(&self) -> usize {
        let l4_len = self.l3 + self.ip_len - self.l4;
        match self.kind {
            L4::Tcp => l4_len.saturating_sub(self.tcp_hlen),
            L4::Udp => l4_len.saturating_sub(8),
            _ => l4_len,
        }
    }
}

fn wire_drop(e: WireError) -> DropReason {
    match e {
        WireError::Truncated => DropReason::Truncated,
        WireError::BadChecksum => DropReason::BadChecksum,
        _ => DropReason::Malformed,
    }
}

#[inline]
pub(crate) fn be16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

/// Parses the IP packet at `l3` in `frame`. `verify_l4` checks the transport
/// checksum too (the IPv4 header checksum is always checked).
pub(crate) fn parse_ip(
    frame: &[u8],
    l3: usize,
    v6: bool,
    verify_l4: bool,
) -> Result<Parsed, DropReason> {
    let ip = frame.get(l3..).ok_or(DropReason::Truncated)?;
    let (src, dst, ip_len, hlen, proto_, ttl, frag) = if !v6 {
        let p = Ipv4Packet::new_checked(ip).map_err(wire_drop)?;
        if !p.verify_checksum() {
            return Err(DropReason::BadChecksum);
        }
        (
            p.src(),
            p.dst(),
            p.total_len() as usize,
            p.header_len(),
            p.protocol(),
            p.ttl(),
            p.is_fragment(),
        )
    } else {
        let p = Ipv6Packet::new_checked(ip).map_err(wire_drop)?;
        let (nh, off, frag) = p.upper_layer().map_err(wire_drop)?;
        (
            p.src(),
            p.dst(),
            40 + p.payload_len() as usize,
            off,
            nh,
            p.hop_limit(),
            frag,
        )
    };
    if frag {
        return Err(DropReason::Fragment);
    }
    if hlen > ip_len {
        return Err(DropReason::Malformed);
    }
    let l4 = l3 + hlen;
    let seg = frame.get(l4..l3 + ip_len).ok_or(DropReason::Truncated)?;
    let mut p = Parsed {
        l3,
        l4,
        ip_len,
        v6,
        proto: proto_,
        src,
        dst,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        tcp_hlen: 0,
        ttl,
        kind: L4::Other,
    };
    match proto_ {
        proto::TCP => {
            if seg.len() < 20 {
                return Err(DropReason::Truncated);
            }
            let hl = ((seg[12] >> 4) as usize) * 4;
            if hl < 20 || hl > seg.len() {
                return Err(DropReason::Malformed);
            }
            if verify_l4 && !checksum::verify_l4(&src, &dst, proto_, seg) {
                return Err(DropReason::BadChecksum);
            }
            p.sport = be16(seg, 0);
            p.dport = be16(seg, 2);
            p.tcp_flags = seg[13];
            p.tcp_hlen = hl;
            p.kind = L4::Tcp;
        }
        proto::UDP => {
            if seg.len() < 8 {
                return Err(DropReason::Truncated);
            }
            let ulen = be16(seg, 4) as usize;
            if ulen < 8 || ulen > seg.len() {
                return Err(DropReason::Malformed);
            }
            let stored = be16(seg, 6);
            // A zero UDP/IPv4 checksum means "not computed".
            if verify_l4
                && (v6 || stored != 0)
                && !checksum::verify_l4(&src, &dst, proto_, &seg[..ulen])
            {
                return Err(DropReason::BadChecksum);
            }
            p.sport = be16(seg, 0);
            p.dport = be16(seg, 2);
            p.kind = L4::Udp;
        }
        proto::ICMP | proto::ICMPV6 if (proto_ == proto::ICMP) != v6 => {
            if seg.len() < 8 {
                return Err(DropReason::Truncated);
            }
            let ok = if v6 {
                checksum::verify_l4(&src, &dst, proto_, seg)
            } else {
                checksum::fold(checksum::sum(seg)) == 0xffff
            };
            if verify_l4 && !ok {
                return Err(DropReason::BadChecksum);
            }
            let ty = seg[0];
            p.kind = match (v6, ty) {
                (false, 8) | (true, 128) => L4::Echo(true),
                (false, 0) | (true, 129) => L4::Echo(false),
                (false, 3 | 4 | 5 | 11 | 12) | (true, 1..=4) => L4::IcmpError,
                _ => L4::Other,
            };
            if let L4::Echo(_) = p.kind {
                let id = be16(seg, 4);
                p.sport = id;
                p.dport = id;
            }
        }
        _ => {}
    }
    Ok(p)
}

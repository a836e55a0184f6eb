//! One pass over a received frame: validate the headers once and record the
//! offsets and fields the rest of the pipeline reads.

use crate::addr::{proto, Addr};
use crate::stats::DropReason;
use crate::wire::icmp::{icmp_type, IcmpPacket};
use crate::wire::icmpv6::{icmpv6_type, Icmpv6Packet};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::tcp::TcpPacket;
use crate::wire::udp::{self, UdpPacket};
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
            L4::Udp => l4_len.saturating_sub(udp::HEADER_LEN),
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
            ipv6::HEADER_LEN + p.payload_len() as usize,
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
            let t = TcpPacket::new_checked(seg).map_err(wire_drop)?;
            if verify_l4 && !t.verify_checksum(&src, &dst) {
                return Err(DropReason::BadChecksum);
            }
            p.sport = t.src_port();
            p.dport = t.dst_port();
            p.tcp_flags = t.flags();
            p.tcp_hlen = t.header_len();
            p.kind = L4::Tcp;
        }
        proto::UDP => {
            let u = UdpPacket::new_checked(seg).map_err(wire_drop)?;
            if verify_l4 && !u.verify_checksum(&src, &dst) {
                return Err(DropReason::BadChecksum);
            }
            p.sport = u.src_port();
            p.dport = u.dst_port();
            p.kind = L4::Udp;
        }
        proto::ICMP if !v6 => {
            let m = IcmpPacket::new_checked(seg).map_err(wire_drop)?;
            if verify_l4 && !m.verify_checksum() {
                return Err(DropReason::BadChecksum);
            }
            p.kind = match m.msg_type() {
                icmp_type::ECHO_REQUEST => L4::Echo(true),
                icmp_type::ECHO_REPLY => L4::Echo(false),
                _ if m.is_error() => L4::IcmpError,
                _ => L4::Other,
            };
            if let L4::Echo(_) = p.kind {
                // One identifier for both sides.
                p.sport = m.echo_ident();
                p.dport = p.sport;
            }
        }
        proto::ICMPV6 if v6 => {
            let m = Icmpv6Packet::new_checked(seg).map_err(wire_drop)?;
            if verify_l4 && !m.verify_checksum(&src, &dst) {
                return Err(DropReason::BadChecksum);
            }
            p.kind = match m.msg_type() {
                icmpv6_type::ECHO_REQUEST => L4::Echo(true),
                icmpv6_type::ECHO_REPLY => L4::Echo(false),
                _ if m.is_error() => L4::IcmpError,
                _ => L4::Other,
            };
            if let L4::Echo(_) = p.kind {
                // One identifier for both sides.
                p.sport = m.echo_ident();
                p.dport = p.sport;
            }
        }
        _ => {}
    }
    Ok(p)
}

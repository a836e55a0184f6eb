//! NAT64 and NAT46: IP header translation (RFC 7915 §4.1, §5.1) for FNAT
//! connections whose client side (`cip`, `vip`) and server side (`lip`,
//! `rip`) are of different families.
//!
//! Translation is stateful and per connection: the new addresses are the
//! conn's (no RFC 6052 prefix is embedded). It works in place and moves only
//! the Ethernet header: IPv6 → IPv4 writes the 20-byte IPv4 header at the end
//! of the old IPv6 header (and its extension headers) and moves the Ethernet
//! header forward; IPv4 → IPv6 moves the Ethernet header into the headroom.
//! The transport checksum is updated by the address difference only: the
//! upper-layer length and protocol number are the same in both
//! pseudo-headers. [`super::conns`]'s `forward` calls it before the port
//! translation, which then sees a packet of the conn's other family. A
//! packet too big once translated gets the ICMP error of its own family
//! ([`super::icmp_gen`]).

use super::icmp_gen::IcmpError;
use super::parse::{parse_ip, Parsed, L4};
use super::rewrite::{clamp_mss, open_gap, put_ip_header, split};
use super::{Packet, State, Verdict};
use crate::addr::{proto, Addr};
use crate::conn::{Conn, Dir};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::ethernet::{ethertype, EthernetFrame};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::tcp::{flags as tcpf, TcpPacket};
use crate::wire::udp::UdpPacket;
use crate::wire::{checksum, sub_mut, IpHeader};

/// IPv4 packets longer than this leave with DF set and identification 0;
/// shorter ones with DF clear and an identification, so that an IPv4 hop
/// with an MTU below 1280 + 20 may fragment them (RFC 7915 §5.1: 1280 − 20).
pub(crate) const DF_ABOVE: usize = 1260;

/// How much an IPv6 header is longer than an IPv4 one without options.
pub(crate) const GROWTH: usize = ipv6::HEADER_LEN - ipv4::HEADER_LEN;

/// Updates the TCP/UDP checksum of `seg` for the pseudo-header addresses
/// changing from `p`'s to `src`/`dst` (any families). A UDP checksum of 0
/// stays 0 toward IPv4 and is computed whole toward IPv6 (RFC 7915 §4.5),
/// where it is mandatory.
fn l4_addrs(seg: &mut [u8], p: &Parsed, src: &Addr, dst: &Addr) {
    let upd = |c: u16| {
        let c = checksum::update_bytes(c, p.src.wire_bytes(), src.wire_bytes());
        checksum::update_bytes(c, p.dst.wire_bytes(), dst.wire_bytes())
    };
    match p.kind {
        L4::Tcp => {
            let mut t = TcpPacket::new_unchecked(seg);
            let c = upd(t.checksum());
            t.set_checksum(c);
        }
        L4::Udp => {
            let mut u = UdpPacket::new_unchecked(&mut *seg);
            match u.checksum() {
                0 if src.is_v4() => {}
                0 => {
                    let c = checksum::l4_checksum(src, dst, proto::UDP, seg);
                    UdpPacket::new_unchecked(seg).set_checksum(c);
                }
                c => u.set_checksum(checksum::udp_fix(upd(c))),
            }
        }
        // ICMP errors are translated by `xlate_icmp`, which recomputes the
        // whole checksum; nothing else of another protocol is FNAT'd.
        _ => {}
    }
}

/// The IPv4 protocol number for an IPv6 next header, and back.
pub(super) fn map_proto(nh: u8, to_v4: bool) -> u8 {
    match (nh, to_v4) {
        (proto::ICMPV6, true) => proto::ICMP,
        (proto::ICMP, false) => proto::ICMPV6,
        (n, _) => n,
    }
}

/// Translates the IPv6 packet of the frame `buf[*head..*head + *len]`,
/// parsed as `p`, into an IPv4 packet from `src` to `dst` (both IPv4);
/// `ident` is the identification used when DF is clear. Extension headers
/// are dropped; a Routing header with segments left is refused
/// (`xlate_refused`). `p` describes the new packet afterwards.
pub(crate) fn to_v4(
    buf: &mut [u8],
    head: &mut usize,
    len: &mut usize,
    p: &mut Parsed,
    src: &Addr,
    dst: &Addr,
    ident: u16,
) -> Result<(), DropReason> {
    let f = sub_mut(buf, *head, *head + *len);
    let h = Ipv6Packet::new_unchecked(sub_mut(f, p.l3, p.l4));
    if h.routing_pending() {
        return Err(DropReason::XlateRefused);
    }
    let tc = h.traffic_class();
    let l4_len = p.l3 + p.ip_len - p.l4;
    let total = ipv4::HEADER_LEN + l4_len;
    if total > usize::from(u16::MAX) {
        // A jumbo IPv6 payload has no IPv4 form.
        return Err(DropReason::XlateTooBig);
    }
    let shift = p.l4 - p.l3 - ipv4::HEADER_LEN;
    {
        let (_, seg) = split(f, p);
        l4_addrs(seg, p, src, dst);
    }
    let df = total > DF_ABOVE;
    let h = IpHeader {
        src,
        dst,
        proto: map_proto(p.proto, true),
        ttl: p.ttl,
        tos: tc,
        payload_len: l4_len as u16,
        ident: if df { 0 } else { ident },
        df,
    };
    f.copy_within(0..p.l3, shift);
    put_ip_header(sub_mut(f, shift, f.len()), p, &h);
    *head += shift;
    *len -= shift;
    Ok(())
}

/// The length of the IPv6 packet [`to_v6`] makes of the IPv4 packet `p`.
pub(crate) fn v6_len(p: &Parsed) -> usize {
    p.ip_len - (p.l4 - p.l3) + ipv6::HEADER_LEN
}

/// Translates the IPv4 packet of the frame `buf[*head..*head + *len]`,
/// parsed as `p`, into an IPv6 packet from `src` to `dst` (both IPv6).
/// Options are dropped; a source route (LSRR, SSRR) is refused
/// (`xlate_refused`); no room to grow the frame is `xlate_too_big`. `p`
/// describes the new packet afterwards.
pub(crate) fn to_v6(
    buf: &mut [u8],
    head: &mut usize,
    len: &mut usize,
    p: &mut Parsed,
    src: &Addr,
    dst: &Addr,
) -> Result<(), DropReason> {
    let hl = p.l4 - p.l3;
    let tos = {
        let f = sub_mut(buf, *head, *head + *len);
        let h = Ipv4Packet::new_unchecked(sub_mut(f, p.l3, p.l4));
        if h.has_source_route() {
            return Err(DropReason::XlateRefused);
        }
        h.dscp_ecn()
    };
    let l4_len = p.ip_len - hl;
    if hl <= ipv6::HEADER_LEN {
        let n = ipv6::HEADER_LEN - hl;
        if n > 0 && !open_gap(buf, head, len, p.l4, n) {
            return Err(DropReason::XlateTooBig);
        }
    } else {
        // 20 bytes of options or more: the frame shrinks.
        let shift = hl - ipv6::HEADER_LEN;
        let f = sub_mut(buf, *head, *head + *len);
        f.copy_within(0..p.l3, shift);
        *head += shift;
        *len -= shift;
    }
    let f = sub_mut(buf, *head, *head + *len);
    let h = IpHeader {
        src,
        dst,
        proto: map_proto(p.proto, false),
        ttl: p.ttl,
        tos,
        payload_len: l4_len as u16,
        ident: 0,
        df: false,
    };
    let old = *p;
    put_ip_header(f, p, &h);
    let (_, seg) = split(f, p);
    l4_addrs(seg, &old, src, dst);
    Ok(())
}

/// NAT64/NAT46 header translation (RFC 7915) of the Ethernet
/// frame `buf[*head..*head + *len]` into the family of `src`/`dst` (both of
/// one family, the other than the frame's), moving `*head` and `*len`; the
/// transport checksum is kept valid, the ports are left as they are. For
/// fuzzing and tools: the pipeline translates a conn's packets itself. `Err`
/// when the frame is not an unfragmented IP packet, or RFC 7915 refuses it.
pub fn translate_family(
    buf: &mut [u8],
    head: &mut usize,
    len: &mut usize,
    src: &Addr,
    dst: &Addr,
) -> Result<(), DropReason> {
    let frame = buf.get(*head..*head + *len).ok_or(DropReason::Truncated)?;
    let v6 = match EthernetFrame::new_checked(frame).map(|e| e.ethertype()) {
        Ok(ethertype::IPV4) => false,
        Ok(ethertype::IPV6) => true,
        _ => return Err(DropReason::UnknownProto),
    };
    let mut p = parse_ip(frame, 14, v6, false)?;
    if src.is_v4() != dst.is_v4() || src.is_v4() != v6 {
        return Err(DropReason::Invalid);
    }
    *len = 14 + p.ip_len;
    match v6 {
        true => to_v4(buf, head, len, &mut p, src, dst, 0),
        false => to_v6(buf, head, len, &mut p, src, dst),
    }
}

/// Whether conn `c` joins two families (NAT64 or NAT46).
#[inline(always)]
pub(crate) fn is_xlate(c: &Conn) -> bool {
    c.vip.is_v4() != c.rip.is_v4()
}

impl State {
    /// `forward`'s family change for a NAT64/NAT46 conn `c`: the packet from
    /// side `dir` gets the other side's family, with the conn's addresses
    /// (`lip → rip` inbound, `vip → cip` outbound; the ports are left to
    /// `translate`). A SYN toward the IPv6 side of a NAT46 conn, or the
    /// RS's SYN-ACK, has its MSS lowered by the 20 bytes the other side's
    /// segments grow by. `Some(verdict)`: the packet went no further.
    ///
    /// A packet that would not fit the egress MTU once translated is
    /// answered in its sender's family (RFC 7915 §4.1/§5.1 with the PMTU
    /// numbers of the other side): an IPv6 one with Packet Too Big (the
    /// egress MTU + 20, at least 1280), an IPv4 one with DF with
    /// Fragmentation Needed (the egress MTU − 20); an IPv4 one without DF
    /// is dropped as `xlate_too_big` (rvs does not fragment).
    #[cold]
    #[inline(never)]
    pub(super) fn xlate_conn(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        c: &Conn,
        dir: Dir,
        now_ms: u64,
    ) -> Option<Verdict> {
        let (src, dst) = match dir {
            Dir::In => (c.lip, c.rip),
            Dir::Out => (c.vip, c.cip),
        };
        let mtu = snap
            .routes
            .lookup(&dst)
            .and_then(|r| snap.ports.get(r.port as usize))
            .map_or(usize::MAX, |pc| pc.mtu as usize);
        let r = if p.v6 {
            if v4_len(p) > mtu {
                let m = (mtu + GROWTH).clamp(1280, usize::from(u16::MAX)) as u16;
                let e = IcmpError::TooBig { mtu: m };
                return Some(self.send_icmp_error(snap, pkt, p, e, now_ms));
            }
            let id = self.xlate_ident;
            self.xlate_ident = id.wrapping_add(1);
            to_v4(pkt.buf, &mut pkt.head, &mut pkt.len, p, &src, &dst, id)
        } else {
            if v6_len(p) > mtu {
                if !dont_frag(pkt, p) {
                    return Some(self.drop(DropReason::XlateTooBig));
                }
                let m = mtu.saturating_sub(GROWTH).clamp(68, usize::from(u16::MAX)) as u16;
                let e = IcmpError::TooBig { mtu: m };
                return Some(self.send_icmp_error(snap, pkt, p, e, now_ms));
            }
            to_v6(pkt.buf, &mut pkt.head, &mut pkt.len, p, &src, &dst)
        };
        if let Err(r) = r {
            return Some(self.drop(r));
        }
        if p.kind == L4::Tcp && p.tcp_flags & tcpf::SYN != 0 && c.vip.is_v4() {
            // NAT46: the client's MSS (SYN) was computed for IPv4 headers,
            // 20 bytes short of the RS's IPv6 ones, and the client's
            // segments to the RS's MSS (SYN-ACK) grow by 20 once translated.
            clamp_mss(&mut pkt.buf[pkt.head..pkt.head + pkt.len], p, GROWTH as u16);
        }
        None
    }
}

/// The length of the IPv4 packet [`to_v4`] makes of the IPv6 packet `p`.
pub(crate) fn v4_len(p: &Parsed) -> usize {
    p.ip_len - (p.l4 - p.l3) + ipv4::HEADER_LEN
}

/// Whether the IPv4 packet `p` of `pkt` has DF set.
fn dont_frag(pkt: &Packet<'_>, p: &Parsed) -> bool {
    let f = &pkt.buf[pkt.head + p.l3..pkt.head + pkt.len];
    Ipv4Packet::new_unchecked(f).dont_frag()
}

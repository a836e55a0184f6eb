//! In-place header rewrites with incremental checksum updates (RFC 1624):
//! address/port translation, TTL, TOA insertion, MSS clamping and IPIP
//! encapsulation. Offsets in [`Parsed`] are relative to the frame start; the
//! header fields are read and written through the `wire` views only.

use super::parse::{Parsed, L4};
use crate::addr::{proto, Addr};
use crate::wire::ethernet::{ethertype, EthernetFrame};
use crate::wire::icmp::IcmpPacket;
use crate::wire::icmpv6::Icmpv6Packet;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
pub(crate) use crate::wire::tcp::toa_len;
use crate::wire::tcp::{self, write_toa, TcpPacket, TOA_LEN_V6};
use crate::wire::udp::UdpPacket;
use crate::wire::{checksum, sub_mut, IpHeader};

/// The smallest MSS a clamp leaves (the IPv4 default, RFC 9293).
const MIN_MSS: u16 = 536;

/// The IP header (from `l3`) and the transport segment (from `l4` to the end
/// of the IP packet) of the frame `f`, as two disjoint slices. Out of range
/// (never, for a frame `p` was parsed from) they are cut short, not a panic.
#[inline]
pub(crate) fn split<'a>(f: &'a mut [u8], p: &Parsed) -> (&'a mut [u8], &'a mut [u8]) {
    let end = (p.l3 + p.ip_len).min(f.len());
    let (front, seg) = f[..end].split_at_mut(p.l4.min(end));
    (sub_mut(front, p.l3, p.l4), seg)
}

/// The transport checksum as stored and whether it covers a pseudo-header;
/// `None` when there is none to maintain (other protocols, UDP/IPv4 "none").
#[inline]
fn l4_checksum(seg: &[u8], p: &Parsed) -> Option<(u16, bool)> {
    match p.kind {
        L4::Tcp => Some((TcpPacket::new_unchecked(seg).checksum(), true)),
        L4::Udp => match UdpPacket::new_unchecked(seg).checksum() {
            0 if !p.v6 => None,
            c => Some((c, true)),
        },
        _ if p.proto == proto::ICMPV6 => Some((Icmpv6Packet::new_unchecked(seg).checksum(), true)),
        L4::Echo(_) | L4::IcmpError => Some((IcmpPacket::new_unchecked(seg).checksum(), false)),
        L4::Other => None,
    }
}

/// Stores the transport checksum `c` computed by updates (UDP sends a
/// computed 0 as 0xffff).
#[inline]
fn set_l4_checksum(seg: &mut [u8], p: &Parsed, c: u16) {
    match p.kind {
        L4::Tcp => TcpPacket::new_unchecked(seg).set_checksum(c),
        L4::Udp => UdpPacket::new_unchecked(seg).set_checksum(checksum::udp_fix(c)),
        _ if p.proto == proto::ICMPV6 => Icmpv6Packet::new_unchecked(seg).set_checksum(c),
        _ => IcmpPacket::new_unchecked(seg).set_checksum(c),
    }
}

/// Sets the IP source and destination from `p`'s to `src` and `dst`; the
/// IPv4 header checksum is updated once for both.
#[inline]
fn set_ip_addrs(ip: &mut [u8], p: &Parsed, src: &Addr, dst: &Addr) {
    if p.v6 {
        let mut h = Ipv6Packet::new_unchecked(ip);
        h.set_src(src);
        h.set_dst(dst);
    } else {
        let mut h = Ipv4Packet::new_unchecked(ip);
        let c = checksum::update_addr(h.checksum(), &p.src, src);
        let c = checksum::update_addr(c, &p.dst, dst);
        h.set_src(src);
        h.set_dst(dst);
        h.set_checksum(c);
    }
}

/// Rewrites source and destination address and port (the echo identifier for
/// ICMP echo), updating the IPv4 header checksum and the transport checksum
/// incrementally. Both families must match the packet's.
pub(crate) fn translate(
    f: &mut [u8],
    p: &mut Parsed,
    src: Addr,
    sport: u16,
    dst: Addr,
    dport: u16,
) {
    let (ip, seg) = split(f, p);
    let csum = l4_checksum(seg, p);
    let mut c = csum.map_or(0, |(c, _)| c);
    if src != p.src || dst != p.dst {
        if csum.is_some_and(|(_, pseudo)| pseudo) {
            c = checksum::update_addr(c, &p.src, &src);
            c = checksum::update_addr(c, &p.dst, &dst);
        }
        set_ip_addrs(ip, p, &src, &dst);
        p.src = src;
        p.dst = dst;
    }
    match p.kind {
        L4::Tcp | L4::Udp => {
            if sport != p.sport || dport != p.dport {
                c = checksum::update16(c, p.sport, sport);
                c = checksum::update16(c, p.dport, dport);
                if p.kind == L4::Tcp {
                    let mut t = TcpPacket::new_unchecked(&mut *seg);
                    t.set_src_port(sport);
                    t.set_dst_port(dport);
                } else {
                    let mut u = UdpPacket::new_unchecked(&mut *seg);
                    u.set_src_port(sport);
                    u.set_dst_port(dport);
                }
                p.sport = sport;
                p.dport = dport;
            }
        }
        L4::Echo(req) => {
            // One identifier: requests carry the "source" side's, replies the other's.
            let (old, new) = if req {
                (p.sport, sport)
            } else {
                (p.dport, dport)
            };
            if old != new {
                c = checksum::update16(c, old, new);
                if p.v6 {
                    Icmpv6Packet::new_unchecked(&mut *seg).set_echo_ident(new);
                } else {
                    IcmpPacket::new_unchecked(&mut *seg).set_echo_ident(new);
                }
                p.sport = new;
                p.dport = new;
            }
        }
        L4::IcmpError | L4::Other => {}
    }
    if csum.is_some() {
        set_l4_checksum(seg, p, c);
    }
}

/// The TCP sequence number of the frame `f` parsed as `p`.
pub(crate) fn tcp_seq(f: &[u8], p: &Parsed) -> u32 {
    let seg = f.get(p.l4..p.l3 + p.ip_len).unwrap_or(&[]);
    TcpPacket::new_unchecked(seg).seq()
}

/// Decrements the TTL / hop limit. False when it would reach zero.
pub(crate) fn dec_ttl(f: &mut [u8], p: &mut Parsed) -> bool {
    if p.ttl <= 1 {
        return false;
    }
    let ttl = p.ttl - 1;
    let (ip, _) = split(f, p);
    if p.v6 {
        Ipv6Packet::new_unchecked(ip).set_hop_limit(ttl);
    } else {
        Ipv4Packet::new_unchecked(ip).rewrite_ttl(ttl);
    }
    p.ttl = ttl;
    true
}

/// Sets the IP length fields after the packet grew or shrank.
fn set_ip_len(f: &mut [u8], p: &mut Parsed, new_len: usize) {
    let ip = sub_mut(f, p.l3, p.l4);
    if p.v6 {
        Ipv6Packet::new_unchecked(ip).set_payload_len((new_len - ipv6::HEADER_LEN) as u16);
    } else {
        Ipv4Packet::new_unchecked(ip).rewrite_total_len(new_len as u16);
    }
    p.ip_len = new_len;
}

/// Opens `n` bytes of room at offset `at` of the frame `buf[*head..*head + *len]`,
/// moving the bytes before `at` toward the front (into headroom) when there is
/// headroom, else the bytes after it toward the end. False when neither fits.
pub(crate) fn open_gap(
    buf: &mut [u8],
    head: &mut usize,
    len: &mut usize,
    at: usize,
    n: usize,
) -> bool {
    if *head >= n {
        buf.copy_within(*head..*head + at, *head - n);
        *head -= n;
    } else if buf.len() >= *head + *len + n {
        buf.copy_within(*head + at..*head + *len, *head + at + n);
    } else {
        return false;
    }
    *len += n;
    true
}

/// Inserts a TOA option (kind 254: client port and address) at the end of the
/// TCP options. Returns false, leaving the frame as it was, when the option
/// would not fit in the TCP header, the MTU or the buffer.
pub(crate) fn insert_toa(
    buf: &mut [u8],
    head: &mut usize,
    len: &mut usize,
    p: &mut Parsed,
    cip: &Addr,
    cport: u16,
    mtu: usize,
) -> bool {
    let n = toa_len(cip);
    if p.tcp_hlen + n > tcp::MAX_HEADER_LEN || p.ip_len + n > mtu {
        return false;
    }
    let at = p.l4 + p.tcp_hlen;
    if !open_gap(buf, head, len, at, n) {
        return false;
    }
    let f = sub_mut(buf, *head, *head + *len);
    let mut opt = [0u8; TOA_LEN_V6];
    write_toa(&mut opt, cport, cip);
    sub_mut(f, at, at + n).copy_from_slice(&opt[..n]);
    // Checksum: the data-offset word, the pseudo-header length and the new bytes.
    let old_seg = (p.ip_len - (p.l4 - p.l3)) as u32;
    let mut t = TcpPacket::new_unchecked(sub_mut(f, p.l4, p.l3 + p.ip_len + n));
    t.rewrite_header_len(p.tcp_hlen + n);
    let c = checksum::update32(t.checksum(), old_seg, old_seg + n as u32);
    t.set_checksum(checksum::finish(u32::from(!c) + checksum::sum(&opt[..n])));
    p.tcp_hlen += n;
    let new_len = p.ip_len + n;
    set_ip_len(f, p, new_len);
    true
}

/// Lowers the MSS option of a SYN by `by` bytes (room for TOA), not below
/// 536. No-op without an MSS option.
pub(crate) fn clamp_mss(f: &mut [u8], p: &Parsed, by: u16) {
    let (_, seg) = split(f, p);
    let mut t = TcpPacket::new_unchecked(seg);
    if let Some(old) = t.mss() {
        let new = old.saturating_sub(by).max(MIN_MSS);
        if new != old {
            t.set_mss(new);
        }
    }
}

/// Wraps the IP packet in an outer IP header (IPIP or IPv6-in-IP) from `src` to
/// `dst` (TUNNEL mode). The Ethernet header is kept in front; its ethertype is set
/// for the outer family. False when the result would not fit `mtu` or the buffer.
pub(crate) fn encapsulate(
    buf: &mut [u8],
    head: &mut usize,
    len: &mut usize,
    p: &mut Parsed,
    src: &Addr,
    dst: &Addr,
    mtu: usize,
) -> bool {
    let outer_v6 = !dst.is_v4();
    let n = if outer_v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::HEADER_LEN
    };
    if p.ip_len + n > mtu || !open_gap(buf, head, len, p.l3, n) {
        return false;
    }
    let f = sub_mut(buf, *head, *head + *len);
    let h = IpHeader {
        src,
        dst,
        proto: if p.v6 { proto::IPV6 } else { proto::IPIP },
        ttl: 64,
        tos: 0,
        payload_len: p.ip_len as u16,
        ident: 0,
        df: false,
    };
    put_ip_header(f, p, &h);
    p.kind = L4::Other;
    true
}

/// Writes `h` as the IP header at `f[p.l3..]` (room made by the caller),
/// sets the frame's Ethernet type to its family and makes `p` describe the
/// new packet: the header's addresses and protocol, its payload right
/// after it.
#[inline]
pub(crate) fn put_ip_header(f: &mut [u8], p: &mut Parsed, h: &IpHeader) {
    let v6 = h.is_v6();
    let n = if v6 {
        h.write_v6(sub_mut(f, p.l3, p.l3 + ipv6::HEADER_LEN))
    } else {
        h.write_v4(sub_mut(f, p.l3, p.l3 + ipv4::HEADER_LEN))
    };
    let et = if v6 { ethertype::IPV6 } else { ethertype::IPV4 };
    EthernetFrame::new_unchecked(sub_mut(f, 0, p.l3)).set_ethertype(et);
    p.l4 = p.l3 + n;
    p.ip_len = n + usize::from(h.payload_len);
    p.v6 = v6;
    p.proto = h.proto;
    p.src = *h.src;
    p.dst = *h.dst;
}

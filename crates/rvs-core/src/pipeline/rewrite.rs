//! In-place header rewrites with incremental checksum updates (RFC 1624):
//! address/port translation, TTL, TOA insertion, MSS clamping and IPIP
//! encapsulation. Offsets are relative to the frame start.

use super::parse::{be16, Parsed, L4};
use crate::addr::{proto, Addr};
use crate::wire::checksum;
pub(crate) use crate::wire::tcp::toa_len;
use crate::wire::tcp::write_toa;

#[inline]
pub(crate) fn put16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

#[inline]
fn put_addr(b: &mut [u8], off: usize, a: &Addr) {
    let w = a.wire_bytes();
    if let Some(s) = b.get_mut(off..off + w.len()) {
        s.copy_from_slice(w);
    }
}

/// Where the transport checksum lives, and whether it covers a pseudo-header.
fn l4_csum_off(p: &Parsed) -> Option<(usize, bool)> {
    match p.kind {
        L4::Tcp => Some((16, true)),
        L4::Udp => Some((6, true)),
        L4::Echo(_) | L4::IcmpError | L4::Other if p.proto == proto::ICMPV6 => Some((2, true)),
        L4::Echo(_) | L4::IcmpError => Some((2, false)),
        L4::Other => None,
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
    let (sa, da) = if p.v6 {
        (p.l3 + 8, p.l3 + 24)
    } else {
        (p.l3 + 12, p.l3 + 16)
    };
    let csum = l4_csum_off(p);
    let udp_none = p.kind == L4::Udp && !p.v6 && be16(f, p.l4 + 6) == 0;
    let mut l4c = csum.map(|(o, _)| be16(f, p.l4 + o)).unwrap_or(0);
    let pseudo = csum.is_some_and(|(_, ps)| ps) && !udp_none;
    let mut ipc = if p.v6 { 0 } else { be16(f, p.l3 + 10) };
    if src != p.src {
        if !p.v6 {
            ipc = checksum::update_addr(ipc, &p.src, &src);
        }
        if pseudo {
            l4c = checksum::update_addr(l4c, &p.src, &src);
        }
        put_addr(f, sa, &src);
        p.src = src;
    }
    if dst != p.dst {
        if !p.v6 {
            ipc = checksum::update_addr(ipc, &p.dst, &dst);
        }
        if pseudo {
            l4c = checksum::update_addr(l4c, &p.dst, &dst);
        }
        put_addr(f, da, &dst);
        p.dst = dst;
    }
    let ports = matches!(p.kind, L4::Tcp | L4::Udp);
    if ports {
        if sport != p.sport {
            if !udp_none {
                l4c = checksum::update16(l4c, p.sport, sport);
            }
            put16(f, p.l4, sport);
            p.sport = sport;
        }
        if dport != p.dport {
            if !udp_none {
                l4c = checksum::update16(l4c, p.dport, dport);
            }
            put16(f, p.l4 + 2, dport);
            p.dport = dport;
        }
    } else if let L4::Echo(req) = p.kind {
        // One identifier: requests carry the "source" side's, replies the other's.
        let (old, new) = if req {
            (p.sport, sport)
        } else {
            (p.dport, dport)
        };
        if old != new {
            l4c = checksum::update16(l4c, old, new);
            put16(f, p.l4 + 4, new);
            p.sport = new;
            p.dport = new;
        }
    }
    if let Some((o, _)) = csum {
        if !udp_none {
            if p.kind == L4::Udp {
                l4c = checksum::udp_fix(l4c);
            }
            put16(f, p.l4 + o, l4c);
        }
    }
    if !p.v6 {
        put16(f, p.l3 + 10, ipc);
    }
}

/// Decrements the TTL / hop limit. False when it would reach zero.
pub(crate) fn dec_ttl(f: &mut [u8], p: &mut Parsed) -> bool {
    if p.ttl <= 1 {
        return false;
    }
    let ttl = p.ttl - 1;
    if p.v6 {
        if let Some(b) = f.get_mut(p.l3 + 7) {
            *b = ttl;
        }
    } else {
        let old = be16(f, p.l3 + 8);
        let new = ((ttl as u16) << 8) | (old & 0xff);
        let c = checksum::update16(be16(f, p.l3 + 10), old, new);
        put16(f, p.l3 + 8, new);
        put16(f, p.l3 + 10, c);
    }
    p.ttl = ttl;
    true
}

/// Sets the IP length fields after the packet grew or shrank.
fn set_ip_len(f: &mut [u8], p: &mut Parsed, new_len: usize) {
    if p.v6 {
        put16(f, p.l3 + 4, (new_len - 40) as u16);
    } else {
        let old = be16(f, p.l3 + 2);
        let c = checksum::update16(be16(f, p.l3 + 10), old, new_len as u16);
        put16(f, p.l3 + 2, new_len as u16);
        put16(f, p.l3 + 10, c);
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
    if p.tcp_hlen + n > 60 || p.ip_len + n > mtu {
        return false;
    }
    let at = p.l4 + p.tcp_hlen;
    if !open_gap(buf, head, len, at, n) {
        return false;
    }
    let f = &mut buf[*head..*head + *len];
    let mut opt = [0u8; 20];
    write_toa(&mut opt, cport, cip);
    f[at..at + n].copy_from_slice(&opt[..n]);
    // Checksum: the data-offset word, the pseudo-header length and the new bytes.
    let old_w = be16(f, p.l4 + 12);
    let new_hlen = p.tcp_hlen + n;
    let new_w = (old_w & 0x0fff) | (((new_hlen / 4) as u16) << 12);
    put16(f, p.l4 + 12, new_w);
    let old_seg = (p.ip_len - (p.l4 - p.l3)) as u32;
    let mut c = be16(f, p.l4 + 16);
    c = checksum::update16(c, old_w, new_w);
    c = checksum::update32(c, old_seg, old_seg + n as u32);
    c = checksum::finish(u32::from(!c) + checksum::sum(&opt[..n]));
    put16(f, p.l4 + 16, c);
    p.tcp_hlen = new_hlen;
    let new_len = p.ip_len + n;
    set_ip_len(f, p, new_len);
    true
}

/// Lowers the MSS option of a SYN by `by` bytes (room for TOA). No-op without an MSS option.
pub(crate) fn clamp_mss(f: &mut [u8], p: &Parsed, by: u16) {
    let end = p.l4 + p.tcp_hlen;
    let mut i = p.l4 + 20;
    while i < end {
        let kind = f[i];
        match kind {
            0 => return,
            1 => i += 1,
            _ => {
                let l = f.get(i + 1).copied().unwrap_or(0) as usize;
                if l < 2 || i + l > end {
                    return;
                }
                if kind == 2 && l == 4 {
                    let old = be16(f, i + 2);
                    let new = old.saturating_sub(by).max(536);
                    if new != old {
                        let c = checksum::update16(be16(f, p.l4 + 16), old, new);
                        put16(f, i + 2, new);
                        put16(f, p.l4 + 16, c);
                    }
                    return;
                }
                i += l;
            }
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
    let n = if outer_v6 { 40 } else { 20 };
    if p.ip_len + n > mtu || !open_gap(buf, head, len, p.l3, n) {
        return false;
    }
    let f = &mut buf[*head..*head + *len];
    let inner_proto = if p.v6 { proto::IPV6 } else { proto::IPIP };
    let total = p.ip_len + n;
    let l3 = p.l3;
    if outer_v6 {
        put16(f, l3 - 2, 0x86dd);
        f[l3..l3 + 4].copy_from_slice(&[0x60, 0, 0, 0]);
        put16(f, l3 + 4, p.ip_len as u16);
        f[l3 + 6] = inner_proto;
        f[l3 + 7] = 64;
        f[l3 + 8..l3 + 24].copy_from_slice(&src.0);
        f[l3 + 24..l3 + 40].copy_from_slice(&dst.0);
    } else {
        put16(f, l3 - 2, 0x0800);
        let h = &mut f[l3..l3 + 20];
        h.copy_from_slice(&[
            0x45,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            64,
            inner_proto,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ]);
        h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        h[12..16].copy_from_slice(&src.v4_bytes());
        h[16..20].copy_from_slice(&dst.v4_bytes());
        let c = checksum::finish(checksum::sum(h));
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }
    p.l4 = l3 + n;
    p.ip_len = total;
    p.v6 = outer_v6;
    p.proto = inner_proto;
    p.src = *src;
    p.dst = *dst;
    p.kind = L4::Other;
    true
}

//! ICMP ↔ ICMPv6 errors about NAT64/NAT46 conns (RFC 7915 §4.2, §5.2).
//!
//! The error takes the family of the side it goes to: its type, code and
//! MTU or pointer are mapped by the RFC's tables, the quoted packet is
//! translated too (header of the other family, the conn's addresses and
//! ports, its checksums), the whole is cut to 1280 bytes (IPv6) or 576
//! (IPv4) and the ICMP/ICMPv6 checksum is computed whole. A type or code
//! without a counterpart is dropped as `icmp_xlate_unmapped`.
//!
//! Errors are rare: the new packet is built in a stack buffer and copied
//! back over the frame (the quote is at most 1280 bytes).

use super::icmp_err::Inner;
use super::parse::{parse_ip, Parsed};
use super::{Packet, State, Verdict};
use crate::addr::{proto, Addr};
use crate::conn::{Conn, Dir};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::ethernet::{ethertype, EthernetFrame};
use crate::wire::icmp::IcmpPacket;
use crate::wire::icmpv6::Icmpv6Packet;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::{checksum, sub_mut, IpHeader};

/// The largest ICMPv6 error (RFC 4443 §2.4: the minimum MTU).
const MAX_V6: usize = 1280;
/// The largest ICMPv4 error (RFC 1812 §4.3.2.3).
const MAX_V4: usize = 576;
/// The minimum IPv6 MTU: a Packet Too Big never says less.
const MIN_MTU_V6: u32 = 1280;
/// The minimum IPv4 MTU (RFC 791).
const MIN_MTU_V4: u32 = 68;

/// RFC 1191's MTU plateaus, for a Fragmentation Needed without an MTU.
const PLATEAUS: [u32; 10] = [32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/// An ICMP or ICMPv6 error's type, code and the 4 bytes after the checksum
/// (unused, MTU or pointer).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct ErrHead {
    /// Type.
    pub ty: u8,
    /// Code.
    pub code: u8,
    /// Bytes 4..8 of the message.
    pub rest: [u8; 4],
}

impl ErrHead {
    fn new(ty: u8, code: u8) -> ErrHead {
        ErrHead {
            ty,
            code,
            rest: [0; 4],
        }
    }

    fn with32(ty: u8, code: u8, v: u32) -> ErrHead {
        ErrHead {
            ty,
            code,
            rest: v.to_be_bytes(),
        }
    }
}

/// RFC 7915 Figure 3: an ICMPv4 Parameter Problem pointer into the IPv4
/// header as a pointer into the IPv6 header (`None`: no counterpart).
fn pointer_4to6(ptr: u8) -> Option<u32> {
    Some(match ptr {
        0 => 0,
        1 => 1,
        2 | 3 => 4,
        8 => 7,
        9 => 6,
        12..=15 => 8,
        16..=19 => 24,
        _ => return None,
    })
}

/// RFC 7915 Figure 6: an ICMPv6 Parameter Problem pointer into the IPv6
/// header as a pointer into the IPv4 header.
fn pointer_6to4(ptr: u32) -> Option<u8> {
    Some(match ptr {
        0 => 0,
        1 => 1,
        4 | 5 => 2,
        6 => 9,
        7 => 8,
        8..=23 => 12,
        24..=39 => 16,
        _ => return None,
    })
}

/// The ICMPv6 error for an ICMPv4 error `h` (RFC 7915 §4.2); `quoted_len`
/// is the quoted packet's total length (for a Fragmentation Needed with no
/// MTU, RFC 1191's plateau below it). `None`: dropped.
pub(crate) fn map_4to6(h: ErrHead, quoted_len: u32) -> Option<ErrHead> {
    Some(match (h.ty, h.code) {
        (3, 0 | 1 | 5 | 6 | 7 | 8 | 11 | 12) => ErrHead::new(1, 0),
        (3, 2) => ErrHead::with32(4, 1, 6),
        (3, 3) => ErrHead::new(1, 4),
        (3, 4) => {
            let mut mtu = u32::from(u16::from_be_bytes([h.rest[2], h.rest[3]]));
            if mtu == 0 {
                mtu = PLATEAUS
                    .into_iter()
                    .find(|&m| m < quoted_len)
                    .unwrap_or(MIN_MTU_V4);
            }
            ErrHead::with32(2, 0, (mtu + 20).max(MIN_MTU_V6))
        }
        (3, 9 | 10 | 13 | 15) => ErrHead::new(1, 1),
        (11, c @ (0 | 1)) => ErrHead::new(3, c),
        (12, 0 | 2) => ErrHead::with32(4, 0, pointer_4to6(h.rest[0])?),
        _ => return None,
    })
}

/// The ICMPv4 error for an ICMPv6 error `h` (RFC 7915 §5.2). `None`:
/// dropped.
pub(crate) fn map_6to4(h: ErrHead) -> Option<ErrHead> {
    let v = u32::from_be_bytes(h.rest);
    Some(match (h.ty, h.code) {
        (1, 0 | 2 | 3) => ErrHead::new(3, 1),
        (1, 1) => ErrHead::new(3, 10),
        (1, 4) => ErrHead::new(3, 3),
        (2, 0) => {
            let mtu = v.saturating_sub(20).clamp(MIN_MTU_V4, u32::from(u16::MAX));
            ErrHead::with32(3, 4, mtu)
        }
        (3, c @ (0 | 1)) => ErrHead::new(11, c),
        (4, 0) => ErrHead {
            ty: 12,
            code: 0,
            rest: [pointer_6to4(v)?, 0, 0, 0],
        },
        (4, 1) => ErrHead::new(3, 2),
        _ => return None,
    })
}

/// The quoted packet's fields that survive translation.
struct Quote {
    tos: u8,
    ttl: u8,
    proto: u8,
    /// Its transport length as the quoted header says (not as quoted).
    l4_len: usize,
}

fn read_quote(f: &[u8], i: &Inner) -> Quote {
    let h = &f[i.l3..i.l4];
    if i.v6 {
        let h = Ipv6Packet::new_unchecked(h);
        Quote {
            tos: h.traffic_class(),
            ttl: h.hop_limit(),
            proto: h.next_header(),
            l4_len: h.payload_len() as usize,
        }
    } else {
        let h = Ipv4Packet::new_unchecked(h);
        Quote {
            tos: h.dscp_ecn(),
            ttl: h.ttl(),
            proto: h.protocol(),
            l4_len: (h.total_len() as usize).saturating_sub(i.l4 - i.l3),
        }
    }
}

/// The new addresses and ports of an error's outer and quoted packets, and
/// the conn and side the error is about.
struct Ends {
    c: Conn,
    dir: Dir,
    src: Addr,
    dst: Addr,
    in_src: Addr,
    in_sport: u16,
    in_dst: Addr,
    in_dport: u16,
}

/// Rewrites the ports of the quoted transport header `seg` (cut anywhere)
/// and its checksum when quoted, for addresses and ports going from `i`'s
/// to `e`'s.
fn quote_l4(seg: &mut [u8], i: &Inner, e: &Ends) {
    if seg.len() < 4 {
        return;
    }
    seg[0..2].copy_from_slice(&e.in_sport.to_be_bytes());
    seg[2..4].copy_from_slice(&e.in_dport.to_be_bytes());
    let at = match i.proto {
        proto::TCP => 16,
        proto::UDP => 6,
        _ => return,
    };
    let Some(cs) = seg.get_mut(at..at + 2) else {
        return;
    };
    let old = u16::from_be_bytes([cs[0], cs[1]]);
    if old == 0 && i.proto == proto::UDP {
        // No checksum (IPv4): cannot be computed over a cut quote.
        return;
    }
    let c = checksum::update_bytes(old, i.src.wire_bytes(), e.in_src.wire_bytes());
    let c = checksum::update_bytes(c, i.dst.wire_bytes(), e.in_dst.wire_bytes());
    let c = checksum::update16(c, i.sport, e.in_sport);
    let c = checksum::update16(c, i.dport, e.in_dport);
    let c = if i.proto == proto::UDP {
        checksum::udp_fix(c)
    } else {
        c
    };
    cs.copy_from_slice(&c.to_be_bytes());
}

/// Builds in `out` the translated error (an IP packet of the other family
/// than `p`'s) with head `h`; returns its length.
fn build(out: &mut [u8], f: &[u8], p: &Parsed, i: &Inner, h: ErrHead, e: &Ends) -> usize {
    let to_v6 = !p.v6;
    let (ohl, ihl, cap) = match to_v6 {
        true => (ipv6::HEADER_LEN, ipv6::HEADER_LEN, MAX_V6),
        false => (ipv4::HEADER_LEN, ipv4::HEADER_LEN, MAX_V4),
    };
    let q = read_quote(f, i);
    let quote = &f[i.l4..i.end];
    let at = ohl + 8 + ihl;
    let qn = quote.len().min(cap - at);
    let n = at + qn;
    let seg = &mut out[at..n];
    seg.copy_from_slice(&quote[..qn]);
    quote_l4(seg, i, e);
    if i.proto == proto::TCP {
        super::synproxy::shift_quote(seg, &e.c, e.dir);
        super::proxy_proto::pp_shift_quote(seg, &e.c, e.dir);
    }
    let inner = &mut out[ohl + 8..at];
    let quoted = IpHeader {
        src: &e.in_src,
        dst: &e.in_dst,
        proto: super::xlate::map_proto(q.proto, !to_v6),
        ttl: q.ttl,
        tos: q.tos,
        payload_len: q.l4_len as u16,
        ident: 0,
        df: true,
    };
    quoted.write(inner);
    let m = &mut out[ohl..ohl + 8];
    m.copy_from_slice(&[
        h.ty, h.code, 0, 0, h.rest[0], h.rest[1], h.rest[2], h.rest[3],
    ]);
    let outer = IpHeader {
        src: &e.src,
        dst: &e.dst,
        proto: if to_v6 { proto::ICMPV6 } else { proto::ICMP },
        ttl: p.ttl,
        tos: 0,
        payload_len: (n - ohl) as u16,
        ident: 0,
        df: true,
    };
    outer.write(&mut out[..ohl]);
    if to_v6 {
        Icmpv6Packet::new_unchecked(&mut out[ohl..n]).fill_checksum(&e.src, &e.dst);
    } else {
        IcmpPacket::new_unchecked(&mut out[ohl..n]).fill_checksum();
    }
    n
}

impl State {
    /// Translates an ICMP error that quotes a packet of the NAT64/NAT46 conn
    /// `c`, received from side `dir` (TTL already decremented), into the
    /// other family's, and sends it on.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn icmp_xlate(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        i: &Inner,
        c: &Conn,
        dir: Dir,
        now_ms: u64,
    ) -> Verdict {
        let f = &pkt.buf[pkt.head..pkt.head + pkt.len];
        let m = &f[p.l4..p.l4 + 8];
        let h = ErrHead {
            ty: m[0],
            code: m[1],
            rest: [m[4], m[5], m[6], m[7]],
        };
        let mapped = match p.v6 {
            true => map_6to4(h),
            false => map_4to6(h, (read_quote(f, i).l4_len + (i.l4 - i.l3)) as u32),
        };
        let Some(h) = mapped else {
            return self.drop(DropReason::IcmpXlateUnmapped);
        };
        let e = match dir {
            // The quote is vip → cip as rvs sent it; the RS sent rip → lip.
            Dir::In => Ends {
                c: *c,
                dir,
                src: c.lip,
                dst: c.rip,
                in_src: c.rip,
                in_sport: c.rport,
                in_dst: c.lip,
                in_dport: c.lport,
            },
            // The quote is lip → rip as rvs sent it; the client sent cip → vip.
            Dir::Out => Ends {
                c: *c,
                dir,
                src: c.vip,
                dst: c.cip,
                in_src: c.cip,
                in_sport: c.cport,
                in_dst: c.vip,
                in_dport: c.vport,
            },
        };
        let mut out = [0u8; MAX_V6];
        let n = build(&mut out, f, p, i, h, &e);
        let l2 = p.l3;
        let mut eth = [0u8; 14];
        eth[..l2.min(14)].copy_from_slice(&f[..l2.min(14)]);
        if pkt.head + l2 + n > pkt.buf.len() {
            return self.drop(DropReason::XlateTooBig);
        }
        let fr = sub_mut(pkt.buf, pkt.head, pkt.head + l2 + n);
        fr[..l2].copy_from_slice(&eth[..l2]);
        fr[l2..].copy_from_slice(&out[..n]);
        let et = if p.v6 {
            ethertype::IPV4
        } else {
            ethertype::IPV6
        };
        EthernetFrame::new_unchecked(&mut fr[..l2]).set_ethertype(et);
        pkt.len = l2 + n;
        *p = match parse_ip(pkt.frame(), l2, !p.v6, false) {
            Ok(np) => np,
            Err(r) => return self.drop(r),
        };
        if dir == Dir::Out {
            if let Some(v) = self.send_to_in_hop(snap, pkt, p, c) {
                return v;
            }
        }
        let target = match dir {
            Dir::In => c.rip,
            Dir::Out => c.cip,
        };
        self.send(snap, pkt, p, target, false, now_ms)
    }
}

//! ICMP errors about a connection's packets (fragmentation needed, port
//! unreachable, time exceeded...) are translated like the connection itself:
//! outer and inner headers both, so the far side can match the error to its
//! socket.

use super::parse::Parsed;
use super::rewrite::{dec_ttl, split};
use super::{Packet, State, Verdict};
use crate::addr::{proto, Addr};
use crate::conn::{Dir, FwdMode, Tuple};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::icmp::{self, IcmpPacket};
use crate::wire::icmpv6::Icmpv6Packet;
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::tcp::{self, TcpPacket};
use crate::wire::udp::UdpPacket;
use crate::wire::{checksum, l4_ports, sub_mut, WireError};

/// Bytes of the transport header an ICMP error quotes at least (RFC 792:
/// "64 bits of Original Data Datagram"): the ports, or the echo identifier.
const QUOTED_L4: usize = 8;

/// The packet quoted inside an ICMP error.
pub(super) struct Inner {
    /// Offset of the inner IP header.
    pub(super) l3: usize,
    /// Offset of the inner transport header.
    pub(super) l4: usize,
    /// End of the quote.
    pub(super) end: usize,
    /// IPv6?
    pub(super) v6: bool,
    /// Transport protocol.
    pub(super) proto: u8,
    /// Source address.
    pub(super) src: Addr,
    /// Destination address.
    pub(super) dst: Addr,
    /// Source port (echo identifier).
    pub(super) sport: u16,
    /// Destination port (echo identifier).
    pub(super) dport: u16,
}

/// Reads the packet an ICMP error quotes. `Err`: the quoted IP header is
/// malformed (bad version, header or total length), which no connection's
/// packet can be. `Ok(None)`: the quote is cut short or not of a protocol
/// rvs tracks, so no connection can be told.
fn parse_inner(f: &[u8], p: &Parsed) -> Result<Option<Inner>, DropReason> {
    // ICMP and ICMPv6 errors both quote after their 8-byte header.
    let l3 = p.l4 + icmp::HEADER_LEN;
    let end = p.l3 + p.ip_len;
    let Some(q) = f.get(l3..end) else {
        return Ok(None);
    };
    let head = if p.v6 {
        // Extension headers in quotes are rare; only a direct transport header is translated.
        Ipv6Packet::new_checked_embedded(q)
            .map(|h| (true, ipv6::HEADER_LEN, h.next_header(), h.src(), h.dst()))
    } else {
        Ipv4Packet::new_checked_embedded(q)
            .map(|h| (false, h.header_len(), h.protocol(), h.src(), h.dst()))
    };
    let (v6, hl, proto_, src, dst) = match head {
        Ok(h) => h,
        // Cut inside its header: nothing to match a connection with.
        Err(WireError::Truncated) => return Ok(None),
        Err(_) => return Err(DropReason::Malformed),
    };
    let l4 = l3 + hl;
    let Some(seg) = f.get(l4..end).filter(|s| s.len() >= QUOTED_L4) else {
        return Ok(None);
    };
    let (sport, dport) = match proto_ {
        proto::TCP | proto::UDP => match l4_ports(seg) {
            Some(pp) => pp,
            None => return Ok(None),
        },
        proto::ICMP if !v6 => match IcmpPacket::new_checked(seg) {
            Ok(m) => (m.echo_ident(), m.echo_ident()),
            Err(_) => return Ok(None),
        },
        proto::ICMPV6 if v6 => match Icmpv6Packet::new_checked(seg) {
            Ok(m) => (m.echo_ident(), m.echo_ident()),
            Err(_) => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(Inner {
        l3,
        l4,
        end,
        v6,
        proto: proto_,
        src,
        dst,
        sport,
        dport,
    }))
}

/// Rewrites the quoted packet's addresses and ports; the inner IPv4 header
/// checksum and, when quoted, the inner UDP/TCP checksum are updated.
fn rewrite_inner(f: &mut [u8], i: &Inner, src: Addr, sport: u16, dst: Addr, dport: u16) {
    let (front, seg) = sub_mut(f, 0, i.end).split_at_mut(i.l4.min(i.end));
    let ip = sub_mut(front, i.l3, i.l4);
    if i.v6 {
        let mut h = Ipv6Packet::new_unchecked(ip);
        h.set_src(&src);
        h.set_dst(&dst);
    } else {
        let mut h = Ipv4Packet::new_unchecked(ip);
        h.rewrite_src(&src);
        h.rewrite_dst(&dst);
    }
    let pseudo = |c: u16| {
        let c = checksum::update_addr(c, &i.src, &src);
        let c = checksum::update_addr(c, &i.dst, &dst);
        let c = checksum::update16(c, i.sport, sport);
        checksum::update16(c, i.dport, dport)
    };
    match i.proto {
        proto::TCP => {
            let mut t = TcpPacket::new_unchecked(seg);
            // Only the first 8 bytes may be quoted: the checksum may be cut off.
            let quoted = t.as_bytes().len() >= tcp::field::CHECKSUM.end;
            let c = pseudo(t.checksum());
            t.set_src_port(sport);
            t.set_dst_port(dport);
            if quoted {
                t.set_checksum(c);
            }
        }
        proto::UDP => {
            let mut u = UdpPacket::new_unchecked(seg);
            let c = u.checksum();
            u.set_src_port(sport);
            u.set_dst_port(dport);
            if c != 0 || i.v6 {
                u.set_checksum(checksum::udp_fix(pseudo(c)));
            }
        }
        _ => {
            // The quoted echo carries one identifier; an error is about a request we forwarded.
            let new = if sport != i.sport { sport } else { dport };
            if i.v6 {
                Icmpv6Packet::new_unchecked(seg).rewrite_echo_ident(new);
            } else {
                IcmpPacket::new_unchecked(seg).rewrite_echo_ident(new);
            }
        }
    }
}

impl State {
    /// Translates an ICMP error that quotes a packet of a known connection.
    pub(super) fn icmp_error(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        now_ms: u64,
    ) -> Verdict {
        let f = &pkt.buf[pkt.head..pkt.head + pkt.len];
        let inner = match parse_inner(f, p) {
            Ok(Some(i)) => i,
            Ok(None) => return self.kernel_or_drop(snap, pkt.port, DropReason::IcmpNoConn),
            Err(r) => return self.drop(r),
        };
        // The quote is a packet rvs sent; its reverse is what rvs receives.
        let t = Tuple::new(inner.proto, inner.dst, inner.dport, inner.src, inner.sport);
        let Some((id, dir)) = self.conns.lookup(&t) else {
            if snap.if_addr(&p.dst).is_some() {
                return self.kernel_or_drop(snap, pkt.port, DropReason::IcmpNoConn);
            }
            return self.drop(DropReason::IcmpNoConn);
        };
        let c = *self.conns.get(id);
        let f = &mut pkt.buf[pkt.head..pkt.head + pkt.len];
        if !dec_ttl(f, p) {
            return self.drop(DropReason::TtlExpired);
        }
        if c.mode == FwdMode::Fnat && super::xlate::is_xlate(&c) {
            return self.icmp_xlate(snap, pkt, p, &inner, &c, dir, now_ms);
        }
        let target = match (c.mode, dir) {
            (FwdMode::Dr | FwdMode::Tunnel, _) => {
                // The RS answers clients directly; errors about its replies are
                // not rvs's to forward, and client-side errors are rare: hand to
                // the real server unchanged on link.
                return self.send(snap, pkt, p, c.rip, true, now_ms);
            }
            (_, Dir::In) => {
                // Quoted: vip:vport -> cip:cport as rvs sent it to the client;
                // the RS sent rip:rport -> lip:lport.
                rewrite_inner(f, &inner, c.rip, c.rport, c.lip, c.lport);
                let src = if c.mode == FwdMode::Nat { p.src } else { c.lip };
                set_outer(f, p, src, c.rip);
                c.rip
            }
            (_, Dir::Out) => {
                // Quoted: lip:lport -> rip:rport as rvs sent it to the RS; the
                // client sent cip:cport -> vip:vport.
                rewrite_inner(f, &inner, c.cip, c.cport, c.vip, c.vport);
                let src = if c.mode == FwdMode::Snat {
                    p.src
                } else {
                    c.vip
                };
                set_outer(f, p, src, c.cip);
                c.cip
            }
        };
        if inner.proto == proto::TCP {
            let seg = sub_mut(f, inner.l4, inner.end);
            super::synproxy::shift_quote(seg, &c, dir);
            super::proxy_proto::pp_shift_quote(seg, &c, dir);
        }
        // The ICMP checksum covers the quote: recompute it whole.
        let (_, seg) = split(f, p);
        if p.v6 {
            Icmpv6Packet::new_unchecked(seg).fill_checksum(&p.src, &p.dst);
        } else {
            IcmpPacket::new_unchecked(seg).fill_checksum();
        }
        if dir == Dir::Out {
            if let Some(v) = self.send_to_in_hop(snap, pkt, p, &c) {
                return v;
            }
        }
        self.send(snap, pkt, p, target, false, now_ms)
    }
}

/// Sets the outer addresses (the transport checksum is recomputed by the caller).
fn set_outer(f: &mut [u8], p: &mut Parsed, src: Addr, dst: Addr) {
    let (ip, _) = split(f, p);
    if p.v6 {
        let mut h = Ipv6Packet::new_unchecked(ip);
        h.set_src(&src);
        h.set_dst(&dst);
    } else {
        let mut h = Ipv4Packet::new_unchecked(ip);
        h.rewrite_src(&src);
        h.rewrite_dst(&dst);
    }
    p.src = src;
    p.dst = dst;
}

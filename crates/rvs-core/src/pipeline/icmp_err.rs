//! ICMP errors about a connection's packets (fragmentation needed, port
//! unreachable, time exceeded...) are translated like the connection itself:
//! outer and inner headers both, so the far side can match the error to its
//! socket.

use super::parse::{be16, Parsed};
use super::rewrite::{dec_ttl, put16};
use super::{Packet, State, Verdict};
use crate::addr::{proto, Addr};
use crate::conn::{Dir, FwdMode, Tuple};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::checksum;

/// The packet quoted inside an ICMP error.
struct Inner {
    /// Offset of the inner IP header.
    l3: usize,
    /// Offset of the inner transport header.
    l4: usize,
    /// End of the quote.
    end: usize,
    v6: bool,
    proto: u8,
    src: Addr,
    dst: Addr,
    sport: u16,
    dport: u16,
}

fn parse_inner(f: &[u8], p: &Parsed) -> Option<Inner> {
    let l3 = p.l4 + 8;
    let end = p.l3 + p.ip_len;
    let q = f.get(l3..end)?;
    let (v6, hl, proto_, src, dst) = if !p.v6 {
        if q.len() < 20 || q[0] >> 4 != 4 {
            return None;
        }
        let hl = (q[0] & 0xf) as usize * 4;
        let mut s = [0u8; 4];
        let mut d = [0u8; 4];
        s.copy_from_slice(&q[12..16]);
        d.copy_from_slice(&q[16..20]);
        (
            false,
            hl,
            q[9],
            Addr::from_v4_bytes(s),
            Addr::from_v4_bytes(d),
        )
    } else {
        if q.len() < 40 || q[0] >> 4 != 6 {
            return None;
        }
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s.copy_from_slice(&q[8..24]);
        d.copy_from_slice(&q[24..40]);
        // Extension headers in quotes are rare; only a direct transport header is translated.
        (true, 40, q[6], Addr(s), Addr(d))
    };
    let l4 = l3 + hl;
    if l4 + 8 > end {
        return None;
    }
    let (sport, dport) = match proto_ {
        proto::TCP | proto::UDP => (be16(f, l4), be16(f, l4 + 2)),
        proto::ICMP | proto::ICMPV6 => {
            let id = be16(f, l4 + 4);
            (id, id)
        }
        _ => return None,
    };
    Some(Inner {
        l3,
        l4,
        end,
        v6,
        proto: proto_,
        src,
        dst,
        sport,
        dport,
    })
}

/// Rewrites the quoted packet's addresses and ports; the inner IPv4 header
/// checksum and, when quoted, the inner UDP/TCP checksum are updated.
fn rewrite_inner(f: &mut [u8], i: &Inner, src: Addr, sport: u16, dst: Addr, dport: u16) {
    let (so, dso) = if i.v6 {
        (i.l3 + 8, i.l3 + 24)
    } else {
        (i.l3 + 12, i.l3 + 16)
    };
    let csum_off = match i.proto {
        proto::TCP if i.l4 + 18 <= i.end => Some(i.l4 + 16),
        proto::UDP if be16(f, i.l4 + 6) != 0 || i.v6 => Some(i.l4 + 6),
        _ => None,
    };
    let mut l4c = csum_off.map(|o| be16(f, o));
    if !i.v6 {
        let mut c = be16(f, i.l3 + 10);
        c = checksum::update_addr(c, &i.src, &src);
        c = checksum::update_addr(c, &i.dst, &dst);
        put16(f, i.l3 + 10, c);
    }
    if let Some(c) = l4c.as_mut() {
        *c = checksum::update_addr(*c, &i.src, &src);
        *c = checksum::update_addr(*c, &i.dst, &dst);
    }
    let w = src.wire_bytes().len();
    f[so..so + w].copy_from_slice(src.wire_bytes());
    f[dso..dso + w].copy_from_slice(dst.wire_bytes());
    match i.proto {
        proto::TCP | proto::UDP => {
            if let Some(c) = l4c.as_mut() {
                *c = checksum::update16(*c, i.sport, sport);
                *c = checksum::update16(*c, i.dport, dport);
            }
            put16(f, i.l4, sport);
            put16(f, i.l4 + 2, dport);
        }
        _ => {
            // The quoted echo carries one identifier; an error is about a request we forwarded.
            let new = if sport != i.sport { sport } else { dport };
            let c = checksum::update16(be16(f, i.l4 + 2), be16(f, i.l4 + 4), new);
            put16(f, i.l4 + 2, c);
            put16(f, i.l4 + 4, new);
        }
    }
    if let (Some(o), Some(c)) = (csum_off, l4c) {
        put16(
            f,
            o,
            if i.proto == proto::UDP {
                checksum::udp_fix(c)
            } else {
                c
            },
        );
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
        let Some(inner) = parse_inner(f, p) else {
            return self.kernel_or_drop(snap, pkt.port, DropReason::IcmpNoConn);
        };
        if inner.v6 != p.v6 {
            return self.drop(DropReason::Malformed);
        }
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
        // The ICMP checksum covers the quote: recompute it whole.
        let l4 = p.l4;
        let end = p.l3 + p.ip_len;
        put16(f, l4 + 2, 0);
        let c = if p.v6 {
            checksum::l4_checksum(&p.src, &p.dst, proto::ICMPV6, &f[l4..end])
        } else {
            checksum::finish(checksum::sum(&f[l4..end]))
        };
        put16(f, l4 + 2, c);
        self.send(snap, pkt, p, target, false, now_ms)
    }
}

/// Sets the outer addresses (the transport checksum is recomputed by the caller).
fn set_outer(f: &mut [u8], p: &mut Parsed, src: Addr, dst: Addr) {
    let (so, dso) = if p.v6 {
        (p.l3 + 8, p.l3 + 24)
    } else {
        (p.l3 + 12, p.l3 + 16)
    };
    if !p.v6 {
        let mut c = be16(f, p.l3 + 10);
        c = checksum::update_addr(c, &p.src, &src);
        c = checksum::update_addr(c, &p.dst, &dst);
        put16(f, p.l3 + 10, c);
    }
    let w = src.wire_bytes().len();
    f[so..so + w].copy_from_slice(src.wire_bytes());
    f[dso..dso + w].copy_from_slice(dst.wire_bytes());
    p.src = src;
    p.dst = dst;
}

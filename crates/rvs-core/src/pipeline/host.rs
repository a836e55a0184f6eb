//! What rvs does as a host on its ports: answers ARP and IPv6 neighbour
//! solicitations for its addresses, learns neighbours, answers pings, and
//! solicits the MAC of next hops it does not know yet.

use super::parse::{be16, Parsed};
use super::rewrite::put16;
use super::{Learned, Packet, State, Verdict, LEARNED_MAX};
use crate::addr::{proto, Addr, Mac, PortId};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::arp::{self, ArpPacket};
use crate::wire::checksum;
use crate::wire::ethernet::{self, ethertype};

/// The solicited-node multicast address and MAC of an IPv6 address.
fn solicited_node(a: &Addr) -> (Addr, Mac) {
    let mut ip = [0u8; 16];
    ip[0] = 0xff;
    ip[1] = 0x02;
    ip[11] = 1;
    ip[12] = 0xff;
    ip[13..16].copy_from_slice(&a.0[13..16]);
    (Addr(ip), Mac([0x33, 0x33, 0xff, a.0[13], a.0[14], a.0[15]]))
}

/// An address of rvs on `port` of the family of `like`, to source ARP/NS from.
fn port_source(snap: &Snapshot, port: PortId, like: &Addr) -> Option<Addr> {
    snap.addrs
        .iter()
        .find(|a| a.port == port && a.addr.is_v4() == like.is_v4())
        .map(|a| a.addr)
        .or_else(|| {
            snap.services
                .iter()
                .flat_map(|s| s.laddrs.iter())
                .find(|l| l.port == port && l.addr.is_v4() == like.is_v4())
                .map(|l| l.addr)
        })
}

/// Writes an ARP request (IPv4) or neighbour solicitation (IPv6) for `target`
/// into the packet's buffer, replacing the frame. False when rvs has no
/// address on the port to send it from.
pub(super) fn write_solicit(
    pkt: &mut Packet<'_>,
    snap: &Snapshot,
    port: PortId,
    target: &Addr,
    src: Option<Addr>,
) -> bool {
    let Some(pc) = snap.ports.get(port as usize) else {
        return false;
    };
    let Some(src) = src
        .filter(|s| s.is_v4() == target.is_v4())
        .or_else(|| port_source(snap, port, target))
    else {
        return false;
    };
    let f = &mut pkt.buf[pkt.head..];
    if target.is_v4() {
        if f.len() < 60 {
            return false;
        }
        ethernet::write_header(f, Mac::BROADCAST, pc.mac, ethertype::ARP);
        arp::write_arp(
            &mut f[14..],
            arp::OP_REQUEST,
            pc.mac,
            src,
            Mac::ZERO,
            *target,
        );
        f[42..60].fill(0);
        pkt.len = 60;
    } else {
        // Ethernet + IPv6 + NS (24) + source link-layer option (8).
        let len = 14 + 40 + 32;
        if f.len() < len {
            return false;
        }
        let (mc_ip, mc_mac) = solicited_node(target);
        ethernet::write_header(f, mc_mac, pc.mac, ethertype::IPV6);
        write_ipv6(&mut f[14..54], &src, &mc_ip, 32);
        let icmp = &mut f[54..86];
        icmp.fill(0);
        icmp[0] = 135;
        icmp[8..24].copy_from_slice(&target.0);
        icmp[24] = 1;
        icmp[25] = 1;
        icmp[26..32].copy_from_slice(&pc.mac.0);
        let c = checksum::l4_checksum(&src, &mc_ip, proto::ICMPV6, icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        pkt.len = len;
    }
    true
}

fn write_ipv6(h: &mut [u8], src: &Addr, dst: &Addr, payload: u16) {
    h[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    h[4..6].copy_from_slice(&payload.to_be_bytes());
    h[6] = proto::ICMPV6;
    h[7] = 255;
    h[8..24].copy_from_slice(&src.0);
    h[24..40].copy_from_slice(&dst.0);
}

impl State {
    fn learned(&mut self, addr: Addr, mac: Mac, port: PortId, now_ms: u64) {
        let changed = self.neigh.learn(addr, mac, port, now_ms);
        if changed && self.learned.len() < LEARNED_MAX {
            self.learned.push(Learned { addr, mac, port });
        }
        let outbox = &mut self.outbox;
        self.neigh.drain(&addr, |p, f| {
            if let Some(d) = f.get_mut(0..6) {
                d.copy_from_slice(&mac.0);
            }
            outbox.push(p, f);
        });
    }

    /// ARP: answer requests for rvs's addresses, learn the neighbours that talk
    /// to rvs, and leave the rest to the kernel.
    pub(super) fn arp(&mut self, snap: &Snapshot, pkt: &mut Packet<'_>, now_ms: u64) -> Verdict {
        let port = pkt.port;
        let f = &pkt.buf[pkt.head..pkt.head + pkt.len];
        let Ok(a) = ArpPacket::new_checked(&f[14..]) else {
            return self.kernel_or_drop(snap, port, DropReason::Malformed);
        };
        let (op, sha, spa, tpa) = (a.operation(), a.sender_mac(), a.sender_ip(), a.target_ip());
        let ours = snap.owns(&tpa, port);
        if !spa.is_unspecified()
            && !sha.is_multicast()
            && (ours || self.neigh.lookup(&spa).is_some())
        {
            self.learned(spa, sha, port, now_ms);
        }
        if !ours {
            return self.kernel_or_drop(snap, port, DropReason::OtherHost);
        }
        if op != arp::OP_REQUEST {
            return Verdict::Consumed;
        }
        let Some(pc) = snap.ports.get(port as usize) else {
            return self.drop(DropReason::BadPort);
        };
        let f = &mut pkt.buf[pkt.head..pkt.head + pkt.len];
        ethernet::write_header(f, sha, pc.mac, ethertype::ARP);
        arp::write_arp(&mut f[14..], arp::OP_REPLY, pc.mac, tpa, sha, spa);
        pkt.len = pkt.len.max(42);
        Verdict::Transmit(port)
    }

    /// Answers an ICMP/ICMPv6 echo request to an address of rvs, in place.
    pub(super) fn echo_reply(&mut self, pkt: &mut Packet<'_>, p: &Parsed) -> Verdict {
        let f = &mut pkt.buf[pkt.head..pkt.head + pkt.len];
        let (l3, l4) = (p.l3, p.l4);
        // Swap MACs: the reply goes back to the hop it came from.
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&f[0..6]);
        f.copy_within(6..12, 0);
        f[6..12].copy_from_slice(&mac);
        if p.v6 {
            let mut tmp = [0u8; 16];
            tmp.copy_from_slice(&f[l3 + 8..l3 + 24]);
            f.copy_within(l3 + 24..l3 + 40, l3 + 8);
            f[l3 + 24..l3 + 40].copy_from_slice(&tmp);
            f[l3 + 7] = 64;
            let c = checksum::update16(be16(f, l4 + 2), 128 << 8, 129 << 8);
            f[l4] = 129;
            put16(f, l4 + 2, c);
        } else {
            let mut tmp = [0u8; 4];
            tmp.copy_from_slice(&f[l3 + 12..l3 + 16]);
            f.copy_within(l3 + 16..l3 + 20, l3 + 12);
            f[l3 + 16..l3 + 20].copy_from_slice(&tmp);
            let old = be16(f, l3 + 8);
            let new = (64 << 8) | (old & 0xff);
            let c = checksum::update16(be16(f, l3 + 10), old, new);
            put16(f, l3 + 8, new);
            put16(f, l3 + 10, c);
            let c = checksum::update16(be16(f, l4 + 2), 8 << 8, 0);
            f[l4] = 0;
            put16(f, l4 + 2, c);
        }
        Verdict::Transmit(pkt.port)
    }

    /// IPv6 neighbour discovery: answers solicitations for rvs's addresses and
    /// learns from solicitations and advertisements. `None` when the packet is
    /// not ND and goes on through the pipeline.
    pub(super) fn nd(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &Parsed,
        now_ms: u64,
    ) -> Option<Verdict> {
        let port = pkt.port;
        let f = &pkt.buf[pkt.head..pkt.head + pkt.len];
        let end = p.l3 + p.ip_len;
        let l4 = p.l4;
        let ty = *f.get(l4)?;
        if ty != 135 && ty != 136 {
            return None;
        }
        if end < l4 + 24 || p.ttl != 255 {
            return Some(self.drop(DropReason::Malformed));
        }
        let mut target = [0u8; 16];
        target.copy_from_slice(&f[l4 + 8..l4 + 24]);
        let target = Addr(target);
        // Link-layer address option: source (1) in NS, target (2) in NA.
        let want = if ty == 135 { 1 } else { 2 };
        let mut lladdr = None;
        let mut i = l4 + 24;
        while i + 8 <= end {
            let (k, l) = (f[i], f[i + 1] as usize * 8);
            if l == 0 || i + l > end {
                break;
            }
            if k == want {
                let mut m = [0u8; 6];
                m.copy_from_slice(&f[i + 2..i + 8]);
                lladdr = Some(Mac(m));
            }
            i += l;
        }
        let ours = snap.owns(&target, port);
        if ty == 136 {
            if let Some(m) = lladdr {
                if snap.owns(&p.dst, port) || self.neigh.get(&target).is_some() {
                    self.learned(target, m, port, now_ms);
                }
            }
            return Some(if ours {
                Verdict::Consumed
            } else {
                self.kernel_or_drop(snap, port, DropReason::OtherHost)
            });
        }
        if !ours {
            return Some(self.kernel_or_drop(snap, port, DropReason::OtherHost));
        }
        if let Some(m) = lladdr {
            if !p.src.is_unspecified() {
                self.learned(p.src, m, port, now_ms);
            }
        }
        let pc = snap.ports.get(port as usize)?.clone();
        let (dst_ip, dst_mac) = if p.src.is_unspecified() {
            (
                Addr([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
                Mac([0x33, 0x33, 0, 0, 0, 1]),
            )
        } else {
            let mut m = [0u8; 6];
            m.copy_from_slice(&f[6..12]);
            (p.src, Mac(m))
        };
        let len = 14 + 40 + 32;
        let buf = &mut pkt.buf[pkt.head..];
        if buf.len() < len {
            return Some(self.drop(DropReason::TooBig));
        }
        ethernet::write_header(buf, dst_mac, pc.mac, ethertype::IPV6);
        write_ipv6(&mut buf[14..54], &target, &dst_ip, 32);
        let icmp = &mut buf[54..86];
        icmp.fill(0);
        icmp[0] = 136;
        // Solicited + override (not a router).
        icmp[4] = if p.src.is_unspecified() { 0x20 } else { 0x60 };
        icmp[8..24].copy_from_slice(&target.0);
        icmp[24] = 2;
        icmp[25] = 1;
        icmp[26..32].copy_from_slice(&pc.mac.0);
        let c = checksum::l4_checksum(&target, &dst_ip, proto::ICMPV6, icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        pkt.len = len;
        Some(Verdict::Transmit(port))
    }
}

//! What rvs does as a host on its ports: answers ARP and IPv6 neighbour
//! solicitations for its addresses, learns neighbours, answers pings, and
//! solicits the MAC of next hops it does not know yet.

use super::parse::Parsed;
use super::rewrite::split;
use super::{Learned, Packet, State, Verdict, LEARNED_MAX};
use crate::addr::{proto, Addr, Mac, PortId};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::arp::{self, ArpPacket};
use crate::wire::ethernet::{self, ethertype, EthernetFrame};
use crate::wire::icmp::{icmp_type, IcmpPacket};
use crate::wire::icmpv6::{self, icmpv6_type, Icmpv6Packet};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::{sub, sub_mut};

/// Hop limit of what rvs sends itself (echo replies).
const TTL: u8 = 64;
/// Hop limit of Neighbor Discovery messages (RFC 4861: 255, checked on receipt).
const ND_HOP_LIMIT: u8 = 255;
/// Length of a frame carrying an ARP packet.
const ARP_FRAME_LEN: usize = ethernet::HEADER_LEN + arp::PACKET_LEN;
/// The shortest Ethernet frame (without FCS): ARP requests are padded to it.
const MIN_FRAME_LEN: usize = 60;
/// Length of a frame carrying a Neighbor Solicitation / Advertisement.
const ND_FRAME_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + icmpv6::NS_LEN;

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
        if f.len() < MIN_FRAME_LEN {
            return false;
        }
        let l3 = ethernet::write_header(f, Mac::BROADCAST, pc.mac, ethertype::ARP);
        arp::write_arp(
            sub_mut(f, l3, ARP_FRAME_LEN),
            arp::OP_REQUEST,
            pc.mac,
            src,
            Mac::ZERO,
            *target,
        );
        sub_mut(f, ARP_FRAME_LEN, MIN_FRAME_LEN).fill(0);
        pkt.len = MIN_FRAME_LEN;
    } else {
        if f.len() < ND_FRAME_LEN {
            return false;
        }
        let (mc_ip, mc_mac) = solicited_node(target);
        write_nd_headers(f, mc_mac, pc.mac, &src, &mc_ip);
        let icmp = sub_mut(f, ND_FRAME_LEN - icmpv6::NS_LEN, ND_FRAME_LEN);
        icmpv6::write_neighbor_solicit(icmp, &src, &mc_ip, target, pc.mac);
        pkt.len = ND_FRAME_LEN;
    }
    true
}

/// Writes the Ethernet and IPv6 headers of an ND frame (NS or NA, 32 bytes).
fn write_nd_headers(f: &mut [u8], dst_mac: Mac, src_mac: Mac, src: &Addr, dst: &Addr) {
    let l3 = ethernet::write_header(f, dst_mac, src_mac, ethertype::IPV6);
    ipv6::write_header(
        sub_mut(f, l3, l3 + ipv6::HEADER_LEN),
        src,
        dst,
        proto::ICMPV6,
        ND_HOP_LIMIT,
        icmpv6::NS_LEN as u16,
    );
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
        let Ok(a) = ArpPacket::new_checked(sub(f, ethernet::HEADER_LEN, f.len())) else {
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
        let l3 = ethernet::write_header(f, sha, pc.mac, ethertype::ARP);
        arp::write_arp(
            sub_mut(f, l3, ARP_FRAME_LEN),
            arp::OP_REPLY,
            pc.mac,
            tpa,
            sha,
            spa,
        );
        pkt.len = pkt.len.max(ARP_FRAME_LEN);
        Verdict::Transmit(port)
    }

    /// Answers an ICMP/ICMPv6 echo request to an address of rvs, in place.
    pub(super) fn echo_reply(&mut self, pkt: &mut Packet<'_>, p: &Parsed) -> Verdict {
        let f = &mut pkt.buf[pkt.head..pkt.head + pkt.len];
        // Swap MACs: the reply goes back to the hop it came from.
        let mut eth = EthernetFrame::new_unchecked(&mut *f);
        let (dmac, smac) = (eth.dst(), eth.src());
        eth.set_dst(smac);
        eth.set_src(dmac);
        let (ip, seg) = split(f, p);
        // Swapping the addresses keeps every checksum: the sums are unchanged.
        if p.v6 {
            let mut h = Ipv6Packet::new_unchecked(ip);
            h.set_src(&p.dst);
            h.set_dst(&p.src);
            h.set_hop_limit(TTL);
            Icmpv6Packet::new_unchecked(seg).rewrite_msg_type(icmpv6_type::ECHO_REPLY);
        } else {
            let mut h = Ipv4Packet::new_unchecked(ip);
            h.set_src(&p.dst);
            h.set_dst(&p.src);
            h.rewrite_ttl(TTL);
            IcmpPacket::new_unchecked(seg).rewrite_msg_type(icmp_type::ECHO_REPLY);
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
        // The view was checked at parse: an NS/NA is whole up to its target
        // and its options are well formed.
        let m = Icmpv6Packet::new_unchecked(f.get(p.l4..p.l3 + p.ip_len)?);
        let na = match m.msg_type() {
            icmpv6_type::NEIGHBOR_SOLICIT => false,
            icmpv6_type::NEIGHBOR_ADVERT => true,
            crate::wire::mld::QUERY => {
                self.mld_heard(pkt, p);
                return None;
            }
            _ => return None,
        };
        if p.ttl != ND_HOP_LIMIT {
            return Some(self.drop(DropReason::Malformed));
        }
        let target = m.nd_target()?;
        // Link-layer address option: source in NS, target in NA.
        let lladdr = if na {
            m.target_ll_addr()
        } else {
            m.source_ll_addr()
        };
        let sender_mac = EthernetFrame::new_unchecked(f).src();
        let ours = snap.owns(&target, port);
        if na {
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
        // Override, and solicited unless answering duplicate address detection
        // (to all nodes); not a router.
        let (dst_ip, dst_mac, flags) = if p.src.is_unspecified() {
            (
                Addr([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
                Mac([0x33, 0x33, 0, 0, 0, 1]),
                icmpv6::NA_FLAG_OVERRIDE,
            )
        } else {
            (
                p.src,
                sender_mac,
                icmpv6::NA_FLAG_SOLICITED | icmpv6::NA_FLAG_OVERRIDE,
            )
        };
        let buf = &mut pkt.buf[pkt.head..];
        if buf.len() < ND_FRAME_LEN {
            return Some(self.drop(DropReason::TooBig));
        }
        write_nd_headers(buf, dst_mac, pc.mac, &target, &dst_ip);
        let icmp = sub_mut(buf, ND_FRAME_LEN - icmpv6::NA_REPLY_LEN, ND_FRAME_LEN);
        icmpv6::write_neighbor_advert(icmp, &target, &dst_ip, &target, pc.mac, flags);
        pkt.len = ND_FRAME_LEN;
        Some(Verdict::Transmit(port))
    }
}

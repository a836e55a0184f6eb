//! ICMP and ICMPv6 errors rvs sends itself about a packet it cannot
//! forward, as IPVS does (`icmp_send` / `icmpv6_send` in its transmit
//! paths): "fragmentation needed" / "packet too big" when a packet of a
//! DR or TUNNEL service does not fit the way to the real server (whose
//! replies bypass rvs, so no MSS clamp can help and without the error the
//! connection hangs on its first full-size segment), and "time exceeded"
//! when a forwarded packet's TTL or hop limit runs out.
//!
//! The received frame is turned into the error in place: the new IP and
//! ICMP headers are opened in front of the IP header (the Ethernet header
//! moves into the headroom), the original packet stays behind them as the
//! quote, cut so that the whole error is at most 576 (IPv4, RFC 1812) or
//! 1280 (IPv6, RFC 4443) bytes. It goes back to the packet's source, from
//! the address the packet was sent to when that is rvs's own (the VIP),
//! else from the route's source. Errors are never sent about an ICMP
//! error or to a multicast or broadcast source, and at most
//! [`ICMP_RATE`] per second with bursts of [`ICMP_BURST`] over all
//! workers, as the kernel's `icmp_ratelimit`; the rest only count their
//! drop reason ([`crate::stats::WorkerGauges::icmp_rate_limited`]).

use super::parse::{Parsed, L4};
use super::rewrite::{open_gap, put_ip_header};
use super::{Packet, State, Verdict};
use crate::addr::{proto, Addr};
use crate::limit::bucket::{BucketConf, EventGate};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::icmp::{icmp_type, IcmpPacket, FRAG_NEEDED};
use crate::wire::icmpv6::{icmpv6_type, Icmpv6Packet};
use crate::wire::{sub_mut, IpHeader, Ipv4Packet};

/// Errors per second rvs sends at most (all workers together).
pub const ICMP_RATE: u64 = 1000;
/// The burst above [`ICMP_RATE`].
pub const ICMP_BURST: u64 = 50;
/// The TTL / hop limit of the errors.
const TTL: u8 = 64;
/// ICMP header length (type, code, checksum, 4 more bytes).
const ICMP_HDR: usize = 8;

/// What went wrong with the packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum IcmpError {
    /// It does not fit the next hop's MTU (the MTU the sender must use).
    TooBig {
        /// The largest IP packet that fits.
        mtu: u16,
    },
    /// Its TTL or hop limit ran out here.
    TimeExceeded,
}

impl IcmpError {
    fn reason(self) -> DropReason {
        match self {
            IcmpError::TooBig { .. } => DropReason::TooBig,
            IcmpError::TimeExceeded => DropReason::TtlExpired,
        }
    }
}

/// One worker's share of the error rate.
#[derive(Debug, Default)]
pub(super) struct IcmpRate(EventGate);

impl IcmpRate {
    /// Takes the worker count of a new snapshot (the bucket keeps its fill).
    pub(super) fn configure(&mut self, workers: u16, now_ms: u64) {
        let conf = BucketConf::share(ICMP_RATE, ICMP_BURST, workers);
        self.0.configure(conf, now_ms);
    }

    fn admit(&mut self, now_ms: u64) -> bool {
        self.0.admit(now_ms)
    }
}

/// Whether rvs may answer a packet from `src` with an error at all.
fn answerable(p: &Parsed, src: &Addr) -> bool {
    if p.kind == L4::IcmpError || src.is_unspecified() {
        return false;
    }
    if src.is_v4() {
        let a = src.v4_bytes();
        !(a[0] >= 224 || a == [255; 4])
    } else {
        src.0[0] != 0xff
    }
}

impl State {
    /// Drops the packet under `e`'s reason and, when allowed, turns it into
    /// the ICMP error telling its sender why and sends that back.
    pub(super) fn send_icmp_error(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &Parsed,
        e: IcmpError,
        now_ms: u64,
    ) -> Verdict {
        let dropped = self.drop(e.reason());
        if !answerable(p, &p.src) {
            return dropped;
        }
        if let IcmpError::TooBig { .. } = e {
            // An IPv4 packet without DF may be fragmented: the sender is not
            // told, rvs (which does not fragment) drops it.
            let f = &pkt.buf[pkt.head + p.l3..pkt.head + pkt.len];
            if !p.v6 && !Ipv4Packet::new_unchecked(f).dont_frag() {
                return dropped;
            }
        }
        let Some(src) = error_source(snap, p) else {
            return dropped;
        };
        if !self.icmp_rate.admit(now_ms) {
            bump(&self.gauges.icmp_rate_limited);
            return dropped;
        }
        let Some(q) = write_error(pkt, p, &src, e) else {
            return dropped;
        };
        bump(&self.gauges.icmp_sent);
        self.send(snap, pkt, &q, p.src, false, now_ms)
    }
}

fn bump(c: &std::sync::atomic::AtomicU64) {
    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// The error's source: the address the packet was sent to when it is
/// rvs's (a VIP, an interface or local address), else rvs's address on the
/// way back to the sender.
fn error_source(snap: &Snapshot, p: &Parsed) -> Option<Addr> {
    if snap.is_vip(&p.dst) || snap.if_addr(&p.dst).is_some() {
        return Some(p.dst);
    }
    super::conns::route_source(snap, &p.src)
}

/// Rewrites the frame into the error from `src` to the packet's source;
/// the parse of the new packet, or `None` when the buffer has no room.
fn write_error(pkt: &mut Packet<'_>, p: &Parsed, src: &Addr, e: IcmpError) -> Option<Parsed> {
    let mut h = IpHeader {
        src,
        dst: &p.src,
        proto: if p.v6 { proto::ICMPV6 } else { proto::ICMP },
        ttl: TTL,
        tos: 0,
        payload_len: 0,
        ident: 0,
        df: false,
    };
    let max = if p.v6 { 1280 } else { 576 };
    let n = h.len() + ICMP_HDR;
    let quote = p.ip_len.min(max - n);
    // Drop what is not quoted first, then open room for the headers.
    pkt.len = p.l3 + quote;
    if !open_gap(pkt.buf, &mut pkt.head, &mut pkt.len, p.l3, n) {
        return None;
    }
    h.payload_len = (ICMP_HDR + quote) as u16;
    let f = sub_mut(pkt.buf, pkt.head, pkt.head + pkt.len);
    let mut q = Parsed {
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        tcp_hlen: 0,
        ttl: TTL,
        kind: L4::IcmpError,
        ..*p
    };
    put_ip_header(f, &mut q, &h);
    let icmp = sub_mut(f, q.l4, q.l3 + q.ip_len);
    if q.v6 {
        let mut m = Icmpv6Packet::new_unchecked(icmp);
        let (t, mtu) = match e {
            IcmpError::TooBig { mtu } => (icmpv6_type::PACKET_TOO_BIG, u32::from(mtu)),
            IcmpError::TimeExceeded => (icmpv6_type::TIME_EXCEEDED, 0),
        };
        m.set_msg_type(t);
        m.set_code(0);
        m.set_mtu(mtu);
        m.fill_checksum(src, &p.src);
    } else {
        let mut m = IcmpPacket::new_unchecked(icmp);
        let (t, code, mtu) = match e {
            IcmpError::TooBig { mtu } => (icmp_type::DEST_UNREACH, FRAG_NEEDED, mtu),
            IcmpError::TimeExceeded => (icmp_type::TIME_EXCEEDED, 0, 0),
        };
        m.set_msg_type(t);
        m.set_code(code);
        m.set_next_hop_mtu(mtu);
        m.fill_checksum();
    }
    Some(q)
}

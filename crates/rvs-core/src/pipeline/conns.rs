//! Connection handling in the pipeline: creating a connection (scheduling,
//! persistence, local address and port), forwarding a packet of a known
//! connection in each mode, and expiring connections.

use super::fast::{FastMoved, FAST_IN, FAST_OUT};
use super::flowlog::EndReason;
use super::half_open;
use super::icmp_gen::IcmpError;
use super::parse::{Parsed, L4};
use super::proxy_proto;
use super::rewrite;
use super::slots::{DestView, NONE};
use super::sync::SyncEvent;
use super::uoa;
use super::xlate;
use super::{Packet, State, Verdict};
use crate::addr::{proto, Addr, Mac, PortId};
use crate::conn::local_flags::IMPORTED;
use crate::conn::tcp::{self, TcpState};
use crate::conn::{flags, Conn, ConnId, Dir, Expiry, FwdMode, InsertError, Tuple};
use crate::sched::{self, FlowKey};
use crate::service::ServiceKey;
use crate::snapshot::Snapshot;
use crate::stats::{bump, DropReason};
use crate::wire::ethernet::EthernetFrame;
use crate::wire::tcp::flags as tcpf;
use crate::wire::uoa::Mode as UoaMode;

/// Due connections removed before a new one is refused for a full table.
const RECLAIM_ON_FULL: usize = 64;

/// Protocol number used for persistence-template keys (never a real IP protocol here).
const TEMPLATE_PROTO: u8 = 255;

fn template_key(proto_: u8, cip: &Addr, vip: &Addr, vport: u16) -> Tuple {
    Tuple::new(TEMPLATE_PROTO, *cip, proto_ as u16, *vip, vport)
}

/// The conn's state for ActiveConn/InActConn: active only when ESTABLISHED TCP.
pub(super) fn conn_is_active(c: &Conn) -> bool {
    c.proto == proto::TCP && TcpState::from_u8(c.state).is_some_and(tcp::is_active)
}

impl State {
    pub(super) fn publish_gauges(&self, dest: u32) {
        if let Some(d) = self.slots.dests.get(dest) {
            let c = d.dest.stats.worker(self.id as usize);
            c.active
                .store(d.active as u64, std::sync::atomic::Ordering::Relaxed);
            c.inactive
                .store(d.inactive as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Creates the connection for the first packet of a flow to service `svc_index`.
    pub(super) fn new_conn(
        &mut self,
        snap: &Snapshot,
        svc_index: usize,
        in_port: PortId,
        p: &Parsed,
        now_ms: u64,
    ) -> Result<ConnId, DropReason> {
        // A TCP flow starts with a SYN; with sloppy_tcp any packet but a RST
        // may start one (DR and TUNNEL only, checked once the dest is known).
        let sloppy = p.kind == L4::Tcp
            && p.tcp_flags & (tcpf::SYN | tcpf::ACK | tcpf::RST | tcpf::FIN) != tcpf::SYN;
        if sloppy && (!snap.conf.sloppy_tcp || p.tcp_flags & tcpf::RST != 0) {
            return Err(DropReason::NoConn);
        }
        snap.acl()
            .check(svc_index, &p.src, p.proto, p.dport, usize::from(self.id))?;
        let svc_slot = *self
            .slots
            .svc_of_index
            .get(svc_index)
            .ok_or(DropReason::NoService)?;
        let svc = self
            .slots
            .svcs
            .get(svc_slot)
            .ok_or(DropReason::NoService)?
            .svc
            .clone();
        if sloppy
            && !svc
                .dests
                .iter()
                .any(|d| matches!(d.mode, FwdMode::Dr | FwdMode::Tunnel))
        {
            // Only DR and TUNNEL flows may start mid-stream: spare the
            // persistence templates and the scheduler a stray packet.
            return Err(DropReason::NoConn);
        }
        let is_snat = matches!(svc.key, ServiceKey::Match(_));
        if self.conns.len() >= self.conns.capacity() {
            // Full: dead connections the last tick did not reach go first.
            self.expire_due(now_ms, RECLAIM_ON_FULL);
        }
        let ticket = self.limit_admit(svc_slot, p, now_ms)?;

        // Persistence: a template sends the client back to the same dest.
        let mut pos = None;
        let tkey = template_key(p.proto, &p.src, &p.dst, p.dport);
        if svc.persistence_ms > 0 {
            if let Some((tid, _)) = self.conns.lookup(&tkey) {
                let t = *self.conns.get(tid);
                let ss = self.slots.svcs.get(svc_slot).ok_or(DropReason::NoService)?;
                let usable = self
                    .slots
                    .dests
                    .get(t.dest)
                    .is_some_and(|d| d.live && d.dest.weight > 0 && !d.overloaded);
                if usable {
                    pos = ss.dests.iter().position(|&d| d == t.dest);
                }
                if pos.is_some() {
                    self.conns.refresh(tid, svc.persistence_ms, now_ms);
                } else {
                    self.remove_conn(tid);
                }
            }
        }
        let pos = match pos {
            Some(i) => i,
            None => {
                let State { slots, .. } = self;
                let ss = slots.svcs.get_mut(svc_slot).ok_or(DropReason::NoService)?;
                let view = DestView {
                    idx: &ss.dests,
                    dests: &slots.dests,
                };
                let flow = FlowKey {
                    src: p.src,
                    sport: p.sport,
                    dst: p.dst,
                    dport: p.dport,
                };
                sched::schedule(&ss.svc.sched, &mut ss.sched, &view, &flow)
                    .ok_or(DropReason::NoDest)?
            }
        };
        let dest_slot = *self
            .slots
            .svcs
            .get(svc_slot)
            .and_then(|ss| ss.dests.get(pos))
            .ok_or(DropReason::NoDest)?;
        let dest = svc.dests.get(pos).ok_or(DropReason::NoDest)?.clone();
        let mode = dest.mode;
        if sloppy && !matches!(mode, FwdMode::Dr | FwdMode::Tunnel) {
            return Err(DropReason::NoConn);
        }
        if dest.addr.is_v4() != p.dst.is_v4() && (mode != FwdMode::Fnat || svc.synproxy) {
            // Only FNAT translates between IPv4 and IPv6 (NAT64, NAT46:
            // `xlate`), not behind the SYN proxy; for SNAT the dest is the
            // WAN address the packet's source becomes.
            return Err(DropReason::Invalid);
        }

        // Local address and port for the modes that own the return path.
        let mut pool_slot = NONE;
        let (lip, lport) = match mode {
            FwdMode::Fnat => {
                let v4 = dest.addr.is_v4();
                let got = match self.take_laddr(svc_slot, v4) {
                    // Ports held by dead connections the last tick did not reach.
                    None if self.expire_due(now_ms, RECLAIM_ON_FULL) > 0 => {
                        self.take_laddr(svc_slot, v4)
                    }
                    got => got,
                };
                let got = match got {
                    // Then the port of the oldest half-open connection.
                    None if self.recycle_half_open(svc_slot, v4) => self.take_laddr(svc_slot, v4),
                    got => got,
                };
                let (a, port, ps) = got.ok_or(DropReason::NoLocalPort)?;
                pool_slot = ps;
                (a, port)
            }
            FwdMode::Snat => {
                let ps = self
                    .slots
                    .pool_of(&dest.addr)
                    .ok_or(DropReason::NoLocalPort)?;
                let pool = self
                    .slots
                    .pools
                    .get_mut(ps)
                    .ok_or(DropReason::NoLocalPort)?;
                let port = pool.pool.alloc().ok_or(DropReason::NoLocalPort)?;
                pool_slot = ps;
                (dest.addr, port)
            }
            FwdMode::Nat => (p.src, p.sport),
            FwdMode::Dr | FwdMode::Tunnel => (Addr::UNSPECIFIED, 0),
        };
        let (rip, rport) = match mode {
            // The remote echoes the translated identifier back: the reply's
            // tuple carries lport on both sides.
            FwdMode::Snat if matches!(p.kind, L4::Echo(_)) => (p.dst, lport),
            FwdMode::Snat => (p.dst, p.dport),
            _ => (dest.addr, if dest.port == 0 { p.dport } else { dest.port }),
        };
        let in_t = Tuple::new(p.proto, p.src, p.sport, p.dst, p.dport);
        let mut c = match mode {
            FwdMode::Dr | FwdMode::Tunnel => {
                let mut c = Conn::new_in_only(mode, &in_t);
                c.rip = rip;
                c.rport = rport;
                c
            }
            _ => Conn::new(mode, &in_t, &Tuple::new(p.proto, rip, rport, lip, lport)),
        };
        c.service = svc_slot;
        c.dest = dest_slot;
        c.laddr = pool_slot;
        c.in_port = in_port;
        c.flags |= flags::LIMIT_COUNTED;
        // A sloppy flow is taken as established, as IPVS's state table takes
        // an ACK from NONE to ESTABLISHED.
        let first = match sloppy {
            true => TcpState::Established,
            false => TcpState::None,
        };
        c.state = first as u8;
        let timeout = match p.kind {
            L4::Tcp => snap.timeouts.tcp(TcpState::SynRecv),
            L4::Udp => snap.timeouts.udp_ms,
            _ => snap.timeouts.icmp_ms,
        };
        let id = match self.conns.insert(c, timeout, now_ms) {
            Ok(id) => {
                if p.kind == L4::Tcp {
                    if let Some(pl) = self.slots.pools.get_mut(pool_slot) {
                        pl.half_open.push(id, lport);
                    }
                }
                id
            }
            Err(e) => {
                if pool_slot != NONE {
                    if let Some(pl) = self.slots.pools.get_mut(pool_slot) {
                        pl.pool.free(lport);
                    }
                }
                return Err(match e {
                    InsertError::Full => DropReason::ConnTableFull,
                    InsertError::Exists => DropReason::Invalid,
                });
            }
        };
        self.sync_note(SyncEvent::Created(id));
        if let Some(fl) = self.flowlog.as_mut() {
            fl.created(id, self.conns.get(id), now_ms);
        }
        self.limit_created(svc_slot, ticket);
        // References and counters.
        if let Some(s) = self.slots.svcs.get_mut(svc_slot) {
            s.refs += 1;
            bump(&s.svc.stats.worker(self.id as usize).conns, 1);
        }
        let workers = snap.workers as u32;
        if let Some(d) = self.slots.dests.get_mut(dest_slot) {
            d.refs += 1;
            match tcp::is_active(first) {
                true => d.active += 1,
                false => d.inactive += 1,
            }
            d.update_overload(workers);
            bump(&d.dest.stats.worker(self.id as usize).conns, 1);
        }
        self.publish_gauges(dest_slot);
        if pool_slot != NONE {
            if let Some(pl) = self.slots.pools.get_mut(pool_slot) {
                pl.refs += 1;
            }
            if let Some(l) = svc.laddrs.iter().find(|l| l.addr == lip) {
                bump(&l.stats.worker(self.id as usize).conns, 1);
            }
        }
        if svc.persistence_ms > 0 && !is_snat && self.conns.lookup(&tkey).is_none() {
            let mut t = Conn::new_in_only(mode, &tkey);
            t.flags |= flags::TEMPLATE;
            t.service = svc_slot;
            t.dest = dest_slot;
            t.rip = rip;
            t.rport = rport;
            if let Ok(tid) = self.conns.insert(t, svc.persistence_ms, now_ms) {
                self.templates += 1;
                self.sync_note(SyncEvent::Created(tid));
                if let Some(s) = self.slots.svcs.get_mut(svc_slot) {
                    s.refs += 1;
                }
                if let Some(d) = self.slots.dests.get_mut(dest_slot) {
                    d.refs += 1;
                }
            }
        }
        Ok(id)
    }

    /// A local address of the family `v4` and a port from the pools of
    /// service `svc_slot`, taken round robin over its addresses:
    /// (address, port, pool slot).
    /// Frees a port of one of the service's pools (of family `v4`) by
    /// removing the oldest half-open TCP connection holding one; false when
    /// none was found among the next [`half_open::RECYCLE_SCAN`] entries.
    fn recycle_half_open(&mut self, svc_slot: u32, v4: bool) -> bool {
        let Some(ss) = self.slots.svcs.get(svc_slot) else {
            return false;
        };
        for k in 0..ss.pools.len() {
            let Some(&ps) = self.slots.svcs.get(svc_slot).and_then(|ss| ss.pools.get(k)) else {
                break;
            };
            if self
                .slots
                .pools
                .get(ps)
                .is_none_or(|pl| pl.addr.is_v4() != v4)
            {
                continue;
            }
            for _ in 0..half_open::RECYCLE_SCAN {
                let Some((id, lport)) = self
                    .slots
                    .pools
                    .get_mut(ps)
                    .and_then(|pl| pl.half_open.pop())
                else {
                    break;
                };
                let half = self.conns.try_get(id).is_some_and(|c| {
                    c.laddr == ps
                        && c.lport == lport
                        && c.proto == proto::TCP
                        && matches!(
                            TcpState::from_u8(c.state),
                            Some(TcpState::None | TcpState::SynRecv)
                        )
                });
                if half {
                    self.remove_conn(id);
                    self.drops.count(DropReason::SynRecvRecycled);
                    return true;
                }
            }
        }
        false
    }

    fn take_laddr(&mut self, svc_slot: u32, v4: bool) -> Option<(Addr, u16, u32)> {
        let ss = self.slots.svcs.get(svc_slot)?;
        let n = ss.pools.len();
        let start = ss.laddr_next;
        for k in 0..n {
            let ps = ss.pools[(start + k) % n];
            let Some(pool) = self.slots.pools.get_mut(ps) else {
                continue;
            };
            if pool.addr.is_v4() != v4 {
                continue;
            }
            if let Some(port) = pool.pool.alloc() {
                let got = (pool.addr, port, ps);
                if let Some(ss) = self.slots.svcs.get_mut(svc_slot) {
                    ss.laddr_next = (start + k + 1) % n.max(1);
                }
                return Some(got);
            }
        }
        None
    }

    /// Whether the local-address pool in slot `ps` (NONE: no pool) has
    /// fewer than an eighth of its ports free.
    fn pool_under_pressure(&self, ps: u32) -> bool {
        self.slots
            .pools
            .get(ps)
            .is_some_and(|pl| half_open::under_pressure(pl.pool.free_count(), pl.pool.owned()))
    }

    /// Forwards a packet of connection `id` coming from side `dir`.
    pub(super) fn forward(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        id: ConnId,
        dir: Dir,
        now_ms: u64,
    ) -> Verdict {
        if let Some(fl) = self.flowlog.as_mut() {
            fl.count(id, p.ip_len);
        }
        if self.conns.get(id).flags & flags::SYNPROXY != 0 {
            if let Some(v) = self.synproxy_conn(snap, pkt, p, id, dir, now_ms) {
                return v;
            }
        }
        let c = *self.conns.get(id);
        if c.is_template() {
            return self.drop(DropReason::Invalid);
        }
        if dir == Dir::In {
            if let Err(r) = self.limit_police(&c, p, now_ms) {
                return self.drop(r);
            }
        }
        if dir == Dir::In && c.flags & flags::NO_OUT_TUPLE == 0 {
            self.note_in_hop(pkt, id, &c);
        }
        // Protocol state and timer.
        let timeout = match p.kind {
            L4::Tcp => {
                let old = TcpState::from_u8(c.state).unwrap_or_default();
                // DR/TUNNEL see only the client's side: LVS's input-only table.
                let new = if c.flags & flags::NO_OUT_TUPLE != 0 {
                    tcp::transition_input_only(old, p.tcp_flags)
                } else {
                    tcp::transition(old, dir, p.tcp_flags)
                };
                if new != old {
                    let was = tcp::is_active(old);
                    let now_active = tcp::is_active(new);
                    self.conns.get_mut(id).state = new as u8;
                    if old != TcpState::None {
                        // From None only on the packet that created it: the
                        // creation's record carries the new state already.
                        self.sync_note_of(c.flags, SyncEvent::Changed(id));
                    }
                    if was != now_active {
                        if let Some(d) = self.slots.dests.get_mut(c.dest) {
                            if now_active {
                                d.active += 1;
                                d.inactive = d.inactive.saturating_sub(1);
                            } else {
                                d.inactive += 1;
                                d.active = d.active.saturating_sub(1);
                            }
                        }
                        self.publish_gauges(c.dest);
                    }
                }
                let t = snap.timeouts.tcp(new);
                if new == TcpState::SynRecv && self.pool_under_pressure(c.laddr) {
                    t.min(half_open::PRESSURE_SYN_RECV_MS)
                } else {
                    t
                }
            }
            L4::Udp => snap.timeouts.udp_ms,
            _ => snap.timeouts.icmp_ms,
        };
        self.conns.refresh(id, timeout, now_ms);
        if c.flags & (flags::SYNCED | flags::LOCAL_SEEN) == flags::SYNCED && self.sync_active {
            // A moved flow: from now on this node keeps it alive.
            self.conns.get_mut(id).flags |= flags::LOCAL_SEEN;
        }
        let w = self.id as usize;
        let bytes = p.ip_len as u64;
        if let Some(s) = self.slots.svcs.get(c.service) {
            let st = s.svc.stats.worker(w);
            let d = self.slots.dests.get(c.dest).map(|d| d.dest.stats.worker(w));
            match dir {
                Dir::In => {
                    bump(&st.inpkts, 1);
                    bump(&st.inbytes, bytes);
                    if let Some(d) = d {
                        bump(&d.inpkts, 1);
                        bump(&d.inbytes, bytes);
                    }
                }
                Dir::Out => {
                    bump(&st.outpkts, 1);
                    bump(&st.outbytes, bytes);
                    if let Some(d) = d {
                        bump(&d.outpkts, 1);
                        bump(&d.outbytes, bytes);
                    }
                }
            }
        }
        let f = &mut pkt.buf[pkt.head..pkt.head + pkt.len];
        if !rewrite::dec_ttl(f, p) {
            return self.send_icmp_error(snap, pkt, p, IcmpError::TimeExceeded, now_ms);
        }
        if xlate::is_xlate(&c) {
            // NAT64/NAT46: the packet takes the other side's family first.
            if let Some(v) = self.xlate_conn(snap, pkt, p, &c, dir, now_ms) {
                return v;
            }
        }
        let f = &mut pkt.buf[pkt.head..pkt.head + pkt.len];
        let (target, on_link) = match (c.mode, dir) {
            (FwdMode::Fnat, Dir::In) => {
                rewrite::translate(f, p, c.lip, c.lport, c.rip, c.rport);
                if p.kind == L4::Tcp && snap.conf.toa {
                    self.fnat_toa(snap, pkt, p, id, &c);
                }
                if c.flags & proxy_proto::PP_MASK != 0 {
                    if let Err(r) = self.pp_in(snap, pkt, p, &c) {
                        return self.drop(r);
                    }
                }
                if p.kind == L4::Udp && snap.conf.uoa_mode != UoaMode::Off {
                    self.uoa_in(snap, pkt, p, id, &c);
                }
                (c.rip, false)
            }
            (FwdMode::Nat, Dir::In) => {
                rewrite::translate(f, p, c.cip, c.cport, c.rip, c.rport);
                (c.rip, false)
            }
            (FwdMode::Snat, Dir::In) => {
                rewrite::translate(f, p, c.lip, c.lport, c.vip, c.vport);
                (c.vip, false)
            }
            (_, Dir::Out) => {
                rewrite::translate(f, p, c.vip, c.vport, c.cip, c.cport);
                if c.flags & proxy_proto::PP_MASK != 0 {
                    proxy_proto::pp_out(f, p, &c, snap.conf.toa);
                }
                if p.kind == L4::Udp
                    && snap.conf.uoa_mode != UoaMode::Off
                    && c.mode == FwdMode::Fnat
                {
                    uoa::uoa_out(&mut self.conns, id, &c);
                }
                (c.cip, false)
            }
            (FwdMode::Dr, Dir::In) => (c.rip, true),
            (FwdMode::Tunnel, Dir::In) => {
                let Some(src) = route_source(snap, &c.rip) else {
                    return self.drop(DropReason::NoRoute);
                };
                let mtu = snap
                    .routes
                    .lookup(&c.rip)
                    .and_then(|r| snap.ports.get(r.port as usize))
                    .map_or(1500, |pc| pc.mtu as usize);
                if !rewrite::encapsulate(pkt.buf, &mut pkt.head, &mut pkt.len, p, &src, &c.rip, mtu)
                {
                    let outer = if c.rip.is_v4() { 20 } else { 40 };
                    let mtu = mtu.saturating_sub(outer) as u16;
                    return self.send_icmp_error(snap, pkt, p, IcmpError::TooBig { mtu }, now_ms);
                }
                (c.rip, false)
            }
        };
        if dir == Dir::Out {
            if c.out_port != pkt.port {
                self.conns.get_mut(id).out_port = pkt.port;
            }
            if let Some(v) = self.send_to_in_hop(snap, pkt, p, &c) {
                return self.fast_note(snap, pkt, p, id, dir, v);
            }
        }
        let v = self.send(snap, pkt, p, target, on_link, now_ms);
        self.fast_note(snap, pkt, p, id, dir, v)
    }

    /// Remembers where the client-side packets of connection `id` come from
    /// (the port and source MAC of the first one seen here: its first
    /// packet, or for a connection from sync the first after it was
    /// installed), for fast xmit. Learned once, as DPVS does: a later packet
    /// with the same addresses and ports from elsewhere (spoofed, or from
    /// another upstream router) does not move the replies.
    pub(super) fn note_in_hop(&mut self, pkt: &Packet<'_>, id: ConnId, c: &Conn) {
        if c.in_mac != Mac::ZERO {
            return;
        }
        let Ok(eth) = EthernetFrame::new_checked(pkt.frame()) else {
            return;
        };
        let m = self.conns.get_mut(id);
        m.in_mac = eth.src();
        m.in_port = pkt.port;
    }

    /// Fast xmit: sends a reply of connection `c` (already translated) out
    /// of the port its client-side packets come in by, to the MAC they come
    /// from, without a route lookup. `None` when fast xmit is off or the
    /// previous hop is not known: the route table decides.
    pub(super) fn send_to_in_hop(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &Parsed,
        c: &Conn,
    ) -> Option<Verdict> {
        if !snap.conf.fast_xmit || c.in_mac == Mac::ZERO {
            return None;
        }
        let pc = snap.ports.get(c.in_port as usize)?;
        if p.ip_len > pc.mtu as usize {
            return Some(self.drop(DropReason::TooBig));
        }
        let mut eth = EthernetFrame::new_unchecked(&mut pkt.buf[pkt.head..pkt.head + pkt.len]);
        eth.set_dst(c.in_mac);
        eth.set_src(pc.mac);
        Some(Verdict::Transmit(c.in_port))
    }

    /// TOA for FNAT TCP: clamp the SYN's MSS to leave room, then insert the
    /// client address into every packet up to and including the first one that
    /// carries data (the RS's TOA module reads it from the handshake's last ACK
    /// or the first data segment).
    pub(super) fn fnat_toa(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        id: ConnId,
        c: &Conn,
    ) {
        if c.flags & flags::TOA_SENT != 0 || p.tcp_flags & tcpf::RST != 0 {
            return;
        }
        let n = rewrite::toa_len(&c.cip) as u16;
        if p.tcp_flags & tcpf::SYN != 0 {
            rewrite::clamp_mss(&mut pkt.buf[pkt.head..pkt.head + pkt.len], p, n);
            return;
        }
        let mtu = snap
            .routes
            .lookup(&c.rip)
            .and_then(|r| snap.ports.get(r.port as usize))
            .map_or(1500, |pc| pc.mtu as usize);
        let data = p.payload_len() > 0;
        if rewrite::insert_toa(
            pkt.buf,
            &mut pkt.head,
            &mut pkt.len,
            p,
            &c.cip,
            c.cport,
            mtu,
        ) && data
        {
            self.conns.get_mut(id).flags |= flags::TOA_SENT;
        } else if data {
            // Did not fit: do not keep trying on every segment.
            self.conns.get_mut(id).flags |= flags::TOA_SENT;
        }
    }

    /// Removes a conn now, releasing its port, counts and slot references.
    pub(super) fn remove_conn(&mut self, id: ConnId) {
        let c = self.conns.remove(id);
        if let Some(fl) = self.flowlog.as_mut() {
            fl.ended(id, &c, EndReason::Removed);
        }
        self.release(&c);
    }

    fn release(&mut self, c: &Conn) {
        self.fast_removed(c);
        self.sync_note_of(c.flags, SyncEvent::Removed(c.in_tuple()));
        self.synproxy_release(c);
        if c.is_template() {
            self.templates = self.templates.saturating_sub(1);
        } else {
            self.limit_released(c);
            if let Some(d) = self.slots.dests.get_mut(c.dest) {
                if conn_is_active(c) {
                    d.active = d.active.saturating_sub(1);
                } else {
                    d.inactive = d.inactive.saturating_sub(1);
                }
                d.update_overload(self.workers as u32);
            }
            self.publish_gauges(c.dest);
        }
        let pool = if c.is_template() { NONE } else { c.laddr };
        self.slots.release(c.service, c.dest, pool, c.lport);
    }

    /// Timer work: expires due connections. The budget is the configured one
    /// plus every connection inserted since the last call, so removal keeps
    /// pace with any rate of new connections (a fixed budget per tick would
    /// cap removals at `budget / tick interval` and let dead connections fill
    /// the table).
    pub(super) fn expire(&mut self, snap: &Snapshot, now_ms: u64, moved: Option<FastMoved<'_>>) {
        let inserted = self.conns.inserts().wrapping_sub(self.inserts_at_tick);
        self.inserts_at_tick = self.conns.inserts();
        let budget = self
            .conf
            .expire_budget
            .saturating_add(usize::try_from(inserted).unwrap_or(usize::MAX));
        self.expire_due_fast(now_ms, budget, moved.map(|m| (snap, m)));
    }

    /// Removes up to `budget` connections that are due at `now_ms`, releasing
    /// their ports and references. Returns how many went.
    pub(super) fn expire_due(&mut self, now_ms: u64, budget: usize) -> usize {
        self.expire_due_fast(now_ms, budget, None)
    }

    /// [`State::expire_due`], keeping (timer re-armed) the connections with
    /// fast-path directions that `moved` says carried packets.
    fn expire_due_fast(
        &mut self,
        now_ms: u64,
        budget: usize,
        mut moved: Option<(&Snapshot, FastMoved<'_>)>,
    ) -> usize {
        let mut due: [Conn; 64] = [Conn::EMPTY; 64];
        let mut left = budget;
        let mut removed = 0;
        while left > 0 {
            let mut n = 0;
            let want = left.min(due.len());
            let mut ids = [ConnId(0); 64];
            let (import, slots) = (self.import, &self.slots);
            self.conns.expire(now_ms, want, |id, c| {
                if c.local_flags & IMPORTED != 0 {
                    // From a hand-over: its old process may have refreshed it.
                    if let Some(ms) = import.and_then(|f| f.hold(c, slots, now_ms)) {
                        return Expiry::Extend(ms);
                    }
                }
                if let Some((snap, m)) = moved.as_mut() {
                    if c.local_flags & (FAST_IN | FAST_OUT) != 0 && State::fast_moved(c, *m) {
                        return Expiry::Extend(match c.proto {
                            proto::TCP => snap.timeouts.tcp(TcpState::Established),
                            _ => snap.timeouts.udp_ms,
                        });
                    }
                }
                if n < due.len() {
                    due[n] = *c;
                    ids[n] = id;
                    n += 1;
                }
                Expiry::Remove
            });
            for (c, id) in due[..n].iter().zip(&ids[..n]) {
                if let Some(fl) = self.flowlog.as_mut() {
                    fl.ended(*id, c, EndReason::Timeout);
                }
                self.release(c);
            }
            removed += n;
            if n < want {
                break;
            }
            left -= n;
        }
        removed
    }
}

/// The outer source address for a tunnel to `rip`: the route's source, or
/// an address of rvs on the port the route leaves by.
pub(super) fn route_source(snap: &Snapshot, to: &Addr) -> Option<Addr> {
    let r = snap.routes.lookup(to)?;
    if let Some(s) = r.src {
        return Some(s);
    }
    snap.addrs
        .iter()
        .find(|a| a.port == r.port && a.addr.is_v4() == to.is_v4())
        .map(|a| a.addr)
}

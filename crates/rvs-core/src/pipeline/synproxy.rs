//! The SYN proxy stage (DPVS's synproxy): for a service with the SYN proxy
//! on (`rvsadm -j enable`), rvs completes the client's handshake itself with
//! a SYN cookie ([`crate::synproxy`]) and opens the connection to a real
//! server only for a client that returned a valid cookie.
//!
//! 1. A SYN (no connection) is answered with a SYN-ACK carrying the cookie,
//!    out of the port it came in by, to the MAC it came from. Nothing is
//!    kept: no connection, no local port, nothing sent to a real server.
//! 2. An ACK (no connection) whose `ack - 1` is a valid cookie creates the
//!    connection as a SYN would (scheduling, persistence, local address and
//!    port), in state SYN_SENT with [`flags::SYNPROXY`], keeps the ACK (with
//!    any data it carries) and sends the real server a SYN with the client's
//!    ISN and the options the cookie carries. An ACK with an invalid cookie
//!    is dropped as `synproxy_bad_ack` and costs nothing else.
//! 3. While waiting for the real server, the client's first segment with
//!    data (or its ACK) is kept in place of the previous one; others are
//!    dropped as `synproxy_wait` (the client sends them again). A client
//!    segment more than a second after the SYN went out sends it again, and
//!    so does the worker's timer, 1, 2 and 4 s apart; 8 s after the last
//!    the connection goes as `synproxy_rs_timeout` (`synproxy_retry.rs`).
//! 4. The real server's SYN-ACK fixes the shifts between the two handshakes
//!    ([`Conn::sp_seq`], [`Conn::sp_ts`], and the window scale if the real
//!    server's differs from the one rvs gave the client) and is answered
//!    with the kept client segment (the ACK of the handshake, with its data
//!    and TOA); the connection is ESTABLISHED. A RST instead goes to the
//!    client, in its sequence space.
//! 5. From then on, for the life of the connection: real server to client,
//!    `seq - sp_seq`, `TSval + sp_ts`, and the window rescaled if needed;
//!    client to real server, `ack + sp_seq`, SACK blocks `+ sp_seq`,
//!    `TSecr - sp_ts`. (The real server's SACK blocks are in the client's
//!    sequence space, which the proxy leaves alone: they pass unchanged.)
//!
//! FNAT and NAT only: DR and TUNNEL replies bypass rvs, whose shift they
//! would need. The window scale rvs offers clients is [`OUR_WSCALE`]; ECN
//! is not negotiated through the proxy.

use super::parse::{parse_ip, Parsed, L4};
use super::rewrite::{split, toa_len};
use super::sync::SyncEvent;
use super::synproxy_build::{write_frame, Seg};
use super::synproxy_held::Held;
use super::{Packet, State, Verdict};
use crate::addr::{proto, Addr, Mac};
use crate::conn::tcp::{self, TcpState};
use crate::conn::{flags, Conn, ConnId, Dir, FwdMode, Tuple};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::synproxy::{process_key, CookieJar, Negotiated, SynOptions};
use crate::wire::ethernet::EthernetFrame;
use crate::wire::proxy_proto::{self, Version};
use crate::wire::tcp::{field as tcp_field, flags as tcpf, TcpPacket};
use crate::wire::{ipv4, ipv6};

/// The window scale rvs offers a client that offers one (Linux's usual).
pub const OUR_WSCALE: u8 = 7;
/// The smallest MSS rvs gives out (RFC 9293's IPv4 default).
const MIN_MSS: u16 = 536;
/// Window of the ACK rvs writes to a real server when it kept no client
/// segment to send instead (the client's next segment gives the real one).
const FALLBACK_WINDOW: u16 = 1024;
/// A client segment this long after the SYN to the real server went out
/// sends it again.
pub(super) const RESEND_MS: u64 = 1_000;
/// Timer retransmissions of the SYN to a real server (1, 2 and 4 s apart,
/// as Linux's SYN retries); the connection goes [`RESEND_MS`] `<<` this
/// after the last (8 s), counted as `synproxy_rs_timeout`.
pub(super) const SYN_RETRIES: u8 = 3;
/// Life of a connection waiting for the real server, from each SYN sent,
/// when the timer resends it (longer than the wait for the next step).
const WAIT_LIFE_MS: u64 = (RESEND_MS << SYN_RETRIES) + RESEND_MS;
/// Room before the frame in [`SynProxy::scratch`].
pub(super) const SCRATCH_HEADROOM: usize = 128;

/// The SYN proxy's state in a worker: the cookie jar and the kept frames.
#[derive(Debug)]
pub(super) struct SynProxy {
    pub(super) jar: CookieJar,
    /// The jar's master key.
    key: [u64; 2],
    /// Added to the worker's clock for the jar (see `WorkerConf::wall_clock_ms`).
    wall_ms: u64,
    pub(super) held: Held,
    /// A frame buffer for the SYNs the retransmission timer writes.
    pub(super) scratch: Vec<u8>,
}

impl SynProxy {
    /// The proxy of a worker whose clock started at wall-clock `wall_ms`,
    /// with the process's key until a snapshot names one.
    pub fn new(wall_ms: u64) -> SynProxy {
        SynProxy {
            jar: CookieJar::new(process_key()),
            key: process_key(),
            wall_ms,
            held: Held::default(),
            scratch: Vec::new(),
        }
    }

    /// Allocates the kept-frame pool (once) when `snap` has a synproxy
    /// service, and takes the cookie key `snap` names.
    pub fn configure(&mut self, snap: &Snapshot, count: usize, size: usize) {
        if snap.services.iter().any(|s| s.synproxy) {
            self.held.reserve(count, size);
            if self.scratch.is_empty() {
                self.scratch = vec![0; SCRATCH_HEADROOM + size];
            }
        }
        let key = snap.conf.synproxy_key.unwrap_or_else(process_key);
        if key != self.key {
            self.key = key;
            self.jar = CookieJar::new(key);
        }
    }

    /// Writes the client frame kept for connection `key` over `pkt` (with
    /// the port it came in by); false when none is kept or it does not fit.
    fn load_held(&self, key: &Tuple, pkt: &mut Packet<'_>) -> bool {
        let Some((f, port)) = self.held.get(key) else {
            return false;
        };
        let Some(dst) = pkt.buf.get_mut(pkt.head..pkt.head + f.len()) else {
            return false;
        };
        dst.copy_from_slice(f);
        pkt.len = f.len();
        pkt.port = port;
        true
    }

    /// The cookie jar's clock at the worker's `now_ms`.
    fn clock(&self, now_ms: u64) -> u64 {
        now_ms.wrapping_add(self.wall_ms)
    }
}

/// The TCP segment of a parsed frame.
fn segment<'a>(pkt: &'a Packet<'_>, p: &Parsed) -> TcpPacket<&'a [u8]> {
    let f = pkt.frame();
    TcpPacket::new_unchecked(f.get(p.l4..p.l3 + p.ip_len).unwrap_or(&[]))
}

/// The source of the packets rvs sends a real server for `c`.
fn rs_side_source(c: &Conn) -> (Addr, u16) {
    match c.mode {
        FwdMode::Fnat => (c.lip, c.lport),
        _ => (c.cip, c.cport),
    }
}

/// Parses the frame the pipeline just wrote into `pkt`.
fn reparse(pkt: &Packet<'_>) -> Option<Parsed> {
    let v6 = EthernetFrame::new_checked(pkt.frame()).ok()?.ethertype()
        == crate::wire::ethernet::ethertype::IPV6;
    parse_ip(pkt.frame(), 14, v6, false).ok()
}

/// Writes `s` over `pkt` (MACs left to routing) and parses it back.
fn write_seg(pkt: &mut Packet<'_>, s: &Seg) -> Result<Parsed, DropReason> {
    let n =
        write_frame(&mut pkt.buf[pkt.head..], Mac::ZERO, Mac::ZERO, s).ok_or(DropReason::TooBig)?;
    pkt.len = n;
    reparse(pkt).ok_or(DropReason::Malformed)
}

impl State {
    /// A TCP packet for synproxy service `svc_index` that has no connection.
    pub(super) fn synproxy_new(
        &mut self,
        snap: &Snapshot,
        svc_index: usize,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        now_ms: u64,
    ) -> Verdict {
        match p.tcp_flags & (tcpf::SYN | tcpf::ACK | tcpf::RST | tcpf::FIN) {
            // Allow/deny lists first, as DPVS: a refused client gets no cookie.
            tcpf::SYN => {
                match snap
                    .acl()
                    .check(svc_index, &p.src, p.proto, p.dport, usize::from(self.id))
                {
                    Err(r) => self.drop(r),
                    Ok(()) => self.sp_answer_syn(snap, svc_index, pkt, p, now_ms),
                }
            }
            f if f & (tcpf::SYN | tcpf::ACK | tcpf::RST) == tcpf::ACK => {
                self.sp_check_ack(snap, svc_index, pkt, p, now_ms)
            }
            _ => self.drop(DropReason::NoConn),
        }
    }

    /// Step 1: the SYN-ACK with the cookie, written over the SYN.
    fn sp_answer_syn(
        &mut self,
        snap: &Snapshot,
        svc_index: usize,
        pkt: &mut Packet<'_>,
        p: &Parsed,
        now_ms: u64,
    ) -> Verdict {
        let usable = snap
            .services
            .get(svc_index)
            .is_some_and(|s| s.dests.iter().any(|d| d.weight > 0));
        if !usable {
            return self.drop(DropReason::NoDest);
        }
        let Some(pc) = snap.ports.get(pkt.port as usize) else {
            return self.drop(DropReason::BadPort);
        };
        let t = segment(pkt, p);
        let seq = t.seq();
        let mut o = SynOptions::from_options(t.option_iter(), false);
        let pp = snap.services[svc_index].proxy_protocol;
        if pp != Version::Off {
            // The PROXY protocol keeps its offset where the timestamp shift goes.
            o.tsval = None;
        }
        let client_mac = EthernetFrame::new_unchecked(pkt.frame()).src();
        let flow = Tuple::new(proto::TCP, p.src, p.sport, p.dst, p.dport);
        let c = self.sp.jar.make(&flow, seq, &o, self.sp.clock(now_ms));
        // The MSS the client may send: the port's MTU, less room for TOA.
        let hdrs = if p.v6 {
            ipv6::HEADER_LEN
        } else {
            ipv4::HEADER_LEN
        } + 20;
        let toa = if snap.conf.toa { toa_len(&p.src) } else { 0 };
        let toa = toa + proxy_proto::len(pp, &p.src, p.sport, &p.dst, p.dport);
        let mss = (usize::from(pc.mtu).saturating_sub(hdrs + toa) as u16).max(MIN_MSS);
        let s = Seg {
            seq: c.isn,
            ack: seq.wrapping_add(1),
            flags: tcpf::SYN | tcpf::ACK,
            // One segment until the real server's own window reaches the
            // client: the proxy keeps only one while it waits.
            window: c.opts.mss,
            mss: Some(mss),
            sack: c.opts.sack,
            ts: c.tsval.zip(o.tsval),
            wscale: c.opts.wscale.map(|_| OUR_WSCALE),
            ..Seg::new(p.dst, p.dport, p.src, p.sport)
        };
        let mac = pc.mac;
        match write_frame(&mut pkt.buf[pkt.head..], client_mac, mac, &s) {
            Some(n) => {
                pkt.len = n;
                Verdict::Transmit(pkt.port)
            }
            None => self.drop(DropReason::TooBig),
        }
    }

    /// Step 2: an ACK that may carry a cookie.
    fn sp_check_ack(
        &mut self,
        snap: &Snapshot,
        svc_index: usize,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        now_ms: u64,
    ) -> Verdict {
        let t = segment(pkt, p);
        let (seq, ack) = (t.seq(), t.ack());
        let tsecr = t.timestamps().map(|(_, e)| e);
        let flow = Tuple::new(proto::TCP, p.src, p.sport, p.dst, p.dport);
        let clock = self.sp.clock(now_ms);
        let Some(neg) = self.sp.jar.check(&flow, seq, ack, tsecr, clock) else {
            return self.drop(DropReason::SynproxyBadAck);
        };
        // The connection is made as for a SYN.
        let flags_were = p.tcp_flags;
        p.tcp_flags = tcpf::SYN;
        let made = self.new_conn(snap, svc_index, pkt.port, p, now_ms);
        p.tcp_flags = flags_were;
        let id = match made {
            Ok(id) => id,
            Err(r) => return self.drop(r),
        };
        let c = self.conns.get_mut(id);
        if !matches!(c.mode, FwdMode::Fnat | FwdMode::Nat) {
            // Replies would bypass rvs (DR, TUNNEL): the control plane
            // refuses such a service, and so does the pipeline.
            self.remove_conn(id);
            return self.drop(DropReason::Invalid);
        }
        c.flags |= flags::SYNPROXY;
        if neg.wscale.is_some() {
            c.flags |= flags::SP_WSCALE;
        }
        c.sp_seq = ack.wrapping_sub(1);
        c.sp_ts = tsecr.unwrap_or(0);
        c.state = TcpState::SynSent as u8;
        self.pp_start(snap, svc_index, id, seq);
        let c = *self.conns.get(id);
        self.note_in_hop(pkt, id, &c);
        let data = p.payload_len() > 0 || p.tcp_flags & tcpf::FIN != 0;
        self.sp
            .held
            .offer(&c.in_tuple(), pkt.port, pkt.frame(), data, now_ms);
        self.sp_syn_to_rs(snap, pkt, p, id, &neg, now_ms)
    }

    /// Writes the SYN to the real server of connection `id` over the
    /// client's ACK in `pkt` (parsed as `p`) and sends it.
    fn sp_syn_to_rs(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &Parsed,
        id: ConnId,
        neg: &Negotiated,
        now_ms: u64,
    ) -> Verdict {
        let c = *self.conns.get(id);
        let t = segment(pkt, p);
        let shift = neg.wscale.unwrap_or(0);
        let window = (u32::from(t.window()) << shift).min(u32::from(u16::MAX)) as u16;
        let tsval = t.timestamps().map_or(0, |(v, _)| v);
        let mut mss = neg.mss;
        if c.mode == FwdMode::Fnat && snap.conf.toa {
            // As for a client's own SYN: room for TOA.
            mss = mss.saturating_sub(toa_len(&c.cip) as u16).max(MIN_MSS);
        }
        let (src, sport) = rs_side_source(&c);
        let s = Seg {
            seq: t.seq().wrapping_sub(1),
            flags: tcpf::SYN,
            window,
            mss: Some(mss),
            sack: neg.sack,
            ts: neg.timestamps.then_some((tsval, 0)),
            wscale: neg.wscale,
            ..Seg::new(src, sport, c.rip, c.rport)
        };
        let mut life = snap.timeouts.tcp(TcpState::SynSent);
        if self.sp.held.sent(&c.in_tuple(), now_ms) {
            life = life.max(WAIT_LIFE_MS as u32);
        }
        self.conns.refresh(id, life, now_ms);
        self.sp_send(snap, pkt, &s, c.rip, now_ms)
    }

    /// Writes `s` over `pkt` and routes it to `target`.
    fn sp_send(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        s: &Seg,
        target: Addr,
        now_ms: u64,
    ) -> Verdict {
        match write_seg(pkt, s) {
            Ok(p) => self.send(snap, pkt, &p, target, false, now_ms),
            Err(r) => self.drop(r),
        }
    }

    /// A packet of a SYN proxy connection, before the usual forwarding:
    /// `Some` when the proxy handled it, `None` to forward it as usual
    /// (sequence numbers already shifted).
    pub(super) fn synproxy_conn(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        id: ConnId,
        dir: Dir,
        now_ms: u64,
    ) -> Option<Verdict> {
        let c = *self.conns.get(id);
        if p.kind != L4::Tcp || c.flags & flags::SYNPROXY == 0 {
            return None;
        }
        if c.state == TcpState::SynSent as u8 {
            return match dir {
                Dir::Out => self.sp_rs_answer(snap, pkt, p, id, &c, now_ms),
                Dir::In => self.sp_client_waits(snap, pkt, p, id, &c, now_ms),
            };
        }
        if dir == Dir::Out && p.tcp_flags & tcpf::SYN != 0 {
            // The real server did not get the handshake's ACK: again.
            return Some(self.sp_ack_to_rs(snap, pkt, p, id, now_ms));
        }
        shift(pkt, p, &c, dir);
        None
    }

    /// Step 4: the real server answers the proxy's SYN.
    fn sp_rs_answer(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        id: ConnId,
        c: &Conn,
        now_ms: u64,
    ) -> Option<Verdict> {
        let f = p.tcp_flags & (tcpf::SYN | tcpf::ACK | tcpf::RST);
        if f & tcpf::RST != 0 {
            // Refused: the client hears it at the sequence number it expects.
            let (_, seg) = split(&mut pkt.buf[pkt.head..pkt.head + pkt.len], p);
            TcpPacket::new_unchecked(seg).rewrite_seq(c.sp_seq.wrapping_add(1));
            self.sp_abort(id, c, Dir::Out);
            return None;
        }
        if f != tcpf::SYN | tcpf::ACK {
            return Some(self.drop(DropReason::Invalid));
        }
        let t = segment(pkt, p);
        let ts_shift = t.timestamps().map_or(0, |(v, _)| c.sp_ts.wrapping_sub(v));
        let wfix = match (c.flags & flags::SP_WSCALE) >> flags::SP_WSCALE_SHIFT {
            0 => 0,
            _ => match t.wscale().unwrap_or(0).min(crate::synproxy::WSCALE_MAX) {
                OUR_WSCALE => 0,
                s => u16::from(s) + 1,
            },
        };
        let m = self.conns.get_mut(id);
        m.sp_seq = t.seq().wrapping_sub(c.sp_seq);
        if m.flags & super::proxy_proto::PP_MASK == 0 {
            m.sp_ts = ts_shift;
        }
        m.flags = (m.flags & !flags::SP_WSCALE) | (wfix << flags::SP_WSCALE_SHIFT);
        m.out_port = pkt.port;
        self.sp_set_state(id, c, TcpState::Established);
        self.conns
            .refresh(id, snap.timeouts.tcp(TcpState::Established), now_ms);
        Some(self.sp_replay(snap, pkt, p, id, now_ms))
    }

    /// Sends the real server the kept client segment (the handshake's ACK,
    /// with data if any) in place of its SYN-ACK in `pkt`, or an ACK
    /// written from the SYN-ACK when none was kept.
    fn sp_replay(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &Parsed,
        id: ConnId,
        now_ms: u64,
    ) -> Verdict {
        let key = self.conns.get(id).in_tuple();
        let kept = self.sp.load_held(&key, pkt);
        self.sp.held.remove(&key);
        if !kept {
            return self.sp_ack_to_rs(snap, pkt, p, id, now_ms);
        }
        match reparse(pkt) {
            Some(mut q) => self.forward(snap, pkt, &mut q, id, Dir::In, now_ms),
            None => self.drop(DropReason::Malformed),
        }
    }

    /// The handshake's ACK to the real server, written over its SYN-ACK in
    /// `pkt` (parsed as `p`).
    fn sp_ack_to_rs(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &Parsed,
        id: ConnId,
        now_ms: u64,
    ) -> Verdict {
        let c = *self.conns.get(id);
        let t = segment(pkt, p);
        let (src, sport) = rs_side_source(&c);
        let s = Seg {
            seq: t.ack(),
            ack: t.seq().wrapping_add(1),
            flags: tcpf::ACK,
            window: FALLBACK_WINDOW,
            ts: t.timestamps().map(|(v, e)| (e, v)),
            ..Seg::new(src, sport, c.rip, c.rport)
        };
        let mut q = match write_seg(pkt, &s) {
            Ok(q) => q,
            Err(r) => return self.drop(r),
        };
        if c.mode == FwdMode::Fnat && snap.conf.toa {
            self.fnat_toa(snap, pkt, &mut q, id, &c);
        }
        self.send(snap, pkt, &q, c.rip, false, now_ms)
    }

    /// Step 3: a client segment while the real server has not answered.
    fn sp_client_waits(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        id: ConnId,
        c: &Conn,
        now_ms: u64,
    ) -> Option<Verdict> {
        let key = c.in_tuple();
        if p.tcp_flags & tcpf::RST != 0 {
            // The client gives up: the real server hears it (its sequence
            // number is the client's own).
            self.sp_abort(id, c, Dir::In);
            return None;
        }
        if p.tcp_flags & tcpf::SYN != 0 {
            return Some(self.drop(DropReason::Invalid));
        }
        let data = p.payload_len() > 0 || p.tcp_flags & tcpf::FIN != 0;
        let kept = self
            .sp
            .held
            .offer(&key, pkt.port, pkt.frame(), data, now_ms);
        let sent_at = self.sp.held.sent_ms(&key).unwrap_or(u64::MAX - RESEND_MS);
        if now_ms >= sent_at + RESEND_MS {
            if let Some(v) = self.sp_resend(snap, pkt, id, now_ms) {
                return Some(v);
            }
        }
        Some(match kept {
            true => Verdict::Consumed,
            false => self.drop(DropReason::SynproxyWait),
        })
    }

    /// Sends the SYN to the real server again, written from the kept
    /// client ACK; `None` when none is kept or its cookie expired.
    pub(super) fn sp_resend(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        id: ConnId,
        now_ms: u64,
    ) -> Option<Verdict> {
        let key = self.conns.get(id).in_tuple();
        if !self.sp.load_held(&key, pkt) {
            return None;
        }
        let q = reparse(pkt)?;
        let t = segment(pkt, &q);
        let tsecr = t.timestamps().map(|(_, e)| e);
        let clock = self.sp.clock(now_ms);
        let neg = self.sp.jar.check(&key, t.seq(), t.ack(), tsecr, clock)?;
        Some(self.sp_syn_to_rs(snap, pkt, &q, id, &neg, now_ms))
    }

    /// The handshake with the real server ends with a RST from side `dir`,
    /// which goes on as usual: nothing to shift any more, and the state
    /// machine closes the connection (from SYN_SENT for the client's, from
    /// SYN_RECV for the real server's).
    fn sp_abort(&mut self, id: ConnId, c: &Conn, dir: Dir) {
        self.sp.held.remove(&c.in_tuple());
        let m = self.conns.get_mut(id);
        m.flags &= !(flags::SYNPROXY | flags::SP_WSCALE);
        if dir == Dir::Out {
            m.state = TcpState::SynRecv as u8;
        }
    }

    /// Moves connection `id` (as `c` was) to state `new`, keeping its
    /// dest's active and inactive counts and telling sync.
    fn sp_set_state(&mut self, id: ConnId, c: &Conn, new: TcpState) {
        self.conns.get_mut(id).state = new as u8;
        self.sync_note_of(c.flags, SyncEvent::Changed(id));
        let was = TcpState::from_u8(c.state).is_some_and(tcp::is_active);
        if was == tcp::is_active(new) {
            return;
        }
        if let Some(d) = self.slots.dests.get_mut(c.dest) {
            if was {
                d.active = d.active.saturating_sub(1);
                d.inactive += 1;
            } else {
                d.inactive = d.inactive.saturating_sub(1);
                d.active += 1;
            }
        }
        self.publish_gauges(c.dest);
    }

    /// A connection goes: forget what the proxy kept for it.
    pub(super) fn synproxy_release(&mut self, c: &Conn) {
        if c.flags & flags::SYNPROXY != 0 && !self.sp.held.is_empty() {
            self.sp.held.remove(&c.in_tuple());
        }
    }
}

/// Shifts the TCP segment `seg` quoted in an ICMP error about SYN proxy
/// connection `c` (`dir`: the direction of the packets the error's sender
/// sends rvs) into the sequence space of the side the error goes to: a
/// segment rvs sent the client (`Dir::In`) had `seq - sp_seq`, given back;
/// one it sent the real server (`Dir::Out`) had `ack + sp_seq`, taken off
/// when the quote reaches the flags and has ACK. The quoted TCP checksum
/// follows when quoted; the caller recomputes the ICMP checksum.
pub(super) fn shift_quote(seg: &mut [u8], c: &Conn, dir: Dir) {
    if c.flags & flags::SYNPROXY == 0 || c.state == TcpState::SynSent as u8 {
        return;
    }
    let has_csum = seg.len() >= tcp_field::CHECKSUM.end;
    let has_ack = seg.len() > tcp_field::FLAGS && seg[tcp_field::FLAGS] & tcpf::ACK != 0;
    let mut t = TcpPacket::new_unchecked(seg);
    let (old, new) = match dir {
        Dir::In => {
            let (old, new) = (t.seq(), t.seq().wrapping_add(c.sp_seq));
            t.set_seq(new);
            (old, new)
        }
        Dir::Out if has_ack => {
            let (old, new) = (t.ack(), t.ack().wrapping_sub(c.sp_seq));
            t.set_ack(new);
            (old, new)
        }
        Dir::Out => return,
    };
    if has_csum {
        let sum = crate::wire::checksum::update32(t.checksum(), old, new);
        t.set_checksum(sum);
    }
}

/// Step 5: shifts a packet of an established SYN proxy connection `c`
/// between the real server's sequence space and the client's.
fn shift(pkt: &mut Packet<'_>, p: &Parsed, c: &Conn, dir: Dir) {
    let (_, seg) = split(&mut pkt.buf[pkt.head..pkt.head + pkt.len], p);
    let mut t = TcpPacket::new_unchecked(seg);
    match dir {
        Dir::In => {
            if p.tcp_flags & tcpf::ACK != 0 {
                let a = t.ack().wrapping_add(c.sp_seq);
                t.rewrite_ack(a);
                t.shift_sack(c.sp_seq);
            }
            if c.sp_ts != 0 && c.flags & super::proxy_proto::PP_MASK == 0 {
                if let Some((v, e)) = t.timestamps() {
                    t.set_timestamps(v, e.wrapping_sub(c.sp_ts));
                }
            }
        }
        Dir::Out => {
            let s = t.seq().wrapping_sub(c.sp_seq);
            t.rewrite_seq(s);
            if c.sp_ts != 0 && c.flags & super::proxy_proto::PP_MASK == 0 {
                if let Some((v, e)) = t.timestamps() {
                    t.set_timestamps(v.wrapping_add(c.sp_ts), e);
                }
            }
            let wfix = (c.flags & flags::SP_WSCALE) >> flags::SP_WSCALE_SHIFT;
            if wfix != 0 {
                let w = (u32::from(t.window()) << (wfix - 1)) >> OUR_WSCALE;
                t.rewrite_window(w.min(u32::from(u16::MAX)) as u16);
            }
        }
    }
}

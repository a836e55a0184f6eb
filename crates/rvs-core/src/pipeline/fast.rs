//! The fast path's bookkeeping ([`PipelineConf::fast_path`]): which FNAT
//! flow directions an I/O layer may forward without the worker (an XDP
//! program, see rvs-io's `af_xdp::fast`), told as [`FastEvent`]s, and the
//! expiry of such a connection, which asks the I/O layer whether its
//! directions still carried packets.
//!
//! A direction is offered once a packet of it left the worker with nothing
//! per-packet left to do: an IPv4 FNAT connection, TCP ESTABLISHED without
//! SYN proxy and with its TOA sent (or TOA off), or UDP. Its translation is
//! the one just applied, its MACs those the frame left with. Directions are
//! withdrawn when the connection leaves ESTABLISHED (a FIN or RST reaches
//! the worker: the fast path never takes those) and when it goes.
//!
//! [`PipelineConf::fast_path`]: crate::snapshot::PipelineConf::fast_path

use super::parse::{Parsed, L4};
use super::{Packet, State, Verdict};
use crate::addr::{Addr, Mac, PortId};
use crate::conn::tcp::TcpState;
use crate::conn::{flags, Conn, ConnId, Dir, FwdMode, Tuple};
use crate::snapshot::Snapshot;
use crate::stats::bump;

pub use crate::conn::local_flags::{FAST_IN, FAST_OUT};

/// Most additions kept between two [`crate::pipeline::Worker::take_fast`]
/// calls; beyond it a direction is offered again on its next packet.
const ADDS_MAX: usize = 1024;

/// An IPv4 TCP/UDP header tuple as on the wire, and the port whose frames
/// it matches.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct FastKey {
    /// The port the frames arrive on.
    pub port: PortId,
    /// 6 or 17.
    pub proto: u8,
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

/// Asked at expiry: whether the direction with this key carried packets
/// outside the worker since it was last asked.
pub type FastMoved<'a> = &'a mut dyn FnMut(&FastKey) -> bool;

/// A change to the set of directions forwarded outside the worker.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FastEvent {
    /// Frames matching `key` may be rewritten to `new` (its `port`: the
    /// port to send them out of) with these MACs, TTL decremented.
    Add {
        /// What is matched.
        key: FastKey,
        /// What it becomes.
        new: FastKey,
        /// Destination MAC.
        dmac: Mac,
        /// Source MAC.
        smac: Mac,
    },
    /// Frames matching `key` go to the worker again.
    Remove(FastKey),
}

/// The events not yet taken.
#[derive(Debug, Default)]
pub(super) struct FastLog {
    adds: Vec<FastEvent>,
    removes: Vec<FastEvent>,
}

/// The key of direction `dir` of `c` (its in/out port as last seen).
pub(super) fn key_of(c: &Conn, dir: Dir) -> FastKey {
    let (port, s, d, sp, dp) = match dir {
        Dir::In => (c.in_port, c.cip, c.vip, c.cport, c.vport),
        Dir::Out => (c.out_port, c.rip, c.lip, c.rport, c.lport),
    };
    FastKey {
        port,
        proto: c.proto,
        src: s.v4_bytes(),
        dst: d.v4_bytes(),
        sport: sp,
        dport: dp,
    }
}

fn bit(dir: Dir) -> u8 {
    match dir {
        Dir::In => FAST_IN,
        Dir::Out => FAST_OUT,
    }
}

impl State {
    /// After `forward` decided `v` for a packet of `id` in `dir`: offers the
    /// direction, or withdraws the conn's when it no longer qualifies.
    pub(super) fn fast_note(
        &mut self,
        snap: &Snapshot,
        pkt: &Packet<'_>,
        p: &Parsed,
        id: ConnId,
        dir: Dir,
        v: Verdict,
    ) -> Verdict {
        if !snap.conf.fast_path {
            return v;
        }
        let c = self.conns.get(id);
        if c.mode != FwdMode::Fnat || !c.cip.is_v4() || !c.rip.is_v4() {
            return v;
        }
        // A packet or byte rate on the service (or its sources) is policed
        // per packet by the worker, which the XDP program does not do.
        let policed = self
            .slots
            .svcs
            .get(c.service)
            .is_some_and(|s| s.limit.per_packet());
        let ok = match p.kind {
            L4::Tcp => {
                c.state == TcpState::Established as u8
                    && c.flags & (flags::SYNPROXY | flags::PROXY_V1 | flags::PROXY_V2) == 0
                    && (!snap.conf.toa || c.flags & flags::TOA_SENT != 0)
            }
            // Not the client's datagrams while they still carry UOA.
            L4::Udp => dir == Dir::Out || !super::uoa::pending(snap, c),
            _ => false,
        };
        if !ok || policed {
            self.fast_withdraw(id);
            return v;
        }
        let (Verdict::Transmit(out), true) = (v, c.local_flags & bit(dir) == 0) else {
            return v;
        };
        // The XDP program neither strips nor adds VLAN tags: a VLAN
        // device's flows stay with the workers.
        if snap.vlan_of(pkt.port).is_some() || snap.vlan_of(out).is_some() {
            return v;
        }
        if self.fast.adds.len() >= ADDS_MAX {
            return v;
        }
        let key = FastKey {
            port: pkt.port,
            ..key_of(c, dir)
        };
        let f = pkt.frame();
        // The frame as it leaves: IPv4 without options (an ARP solicitation
        // sent instead while the next hop resolves is not it).
        if f.len() < 38 || f[12..14] != [8, 0] || f[14] != 0x45 {
            return v;
        }
        let b4 = |o: usize| [f[o], f[o + 1], f[o + 2], f[o + 3]];
        let b2 = |o: usize| u16::from_be_bytes([f[o], f[o + 1]]);
        let new = FastKey {
            port: out,
            proto: key.proto,
            src: b4(26),
            dst: b4(30),
            sport: b2(34),
            dport: b2(36),
        };
        let mac = |o: usize| Mac([f[o], f[o + 1], f[o + 2], f[o + 3], f[o + 4], f[o + 5]]);
        let (dmac, smac) = (mac(0), mac(6));
        self.fast.adds.push(FastEvent::Add {
            key,
            new,
            dmac,
            smac,
        });
        self.conns.get_mut(id).local_flags |= bit(dir);
        v
    }

    /// Withdraws the offered directions of `id`.
    pub(super) fn fast_withdraw(&mut self, id: ConnId) {
        let c = self.conns.get(id);
        if c.local_flags & (FAST_IN | FAST_OUT) == 0 {
            return;
        }
        let c = *c;
        self.fast_removed(&c);
        self.conns.get_mut(id).local_flags &= !(FAST_IN | FAST_OUT);
    }

    /// Logs the removal of the offered directions of `c` (going away).
    pub(super) fn fast_removed(&mut self, c: &Conn) {
        for dir in [Dir::In, Dir::Out] {
            if c.local_flags & bit(dir) != 0 {
                self.fast.removes.push(FastEvent::Remove(key_of(c, dir)));
            }
        }
    }

    /// Hands over the events: removals first (a key removed and added again
    /// in the same round ends up added).
    pub(super) fn take_fast(&mut self, mut f: impl FnMut(&FastEvent)) {
        for e in self.fast.removes.drain(..).chain(self.fast.adds.drain(..)) {
            f(&e);
        }
    }

    /// Adds `packets` and `bytes` (IP bytes) that the I/O layer forwarded
    /// for the direction `key` to the stats a forwarded packet bumps: its
    /// service's and destination's in/out counters and the flow log's.
    /// False when no connection has that direction.
    pub(super) fn fast_counted(&mut self, key: &FastKey, packets: u64, bytes: u64) -> bool {
        let t = Tuple::new(
            key.proto,
            Addr::from_v4_bytes(key.src),
            key.sport,
            Addr::from_v4_bytes(key.dst),
            key.dport,
        );
        let Some((id, dir)) = self.conns.lookup(&t) else {
            return false;
        };
        if let Some(fl) = self.flowlog.as_mut() {
            fl.count_many(id, packets, bytes);
        }
        let c = self.conns.get(id);
        let w = self.id as usize;
        let Some(s) = self.slots.svcs.get(c.service) else {
            return true;
        };
        let st = s.svc.stats.worker(w);
        let d = self.slots.dests.get(c.dest).map(|d| d.dest.stats.worker(w));
        for x in std::iter::once(st).chain(d) {
            let (p, b) = match dir {
                Dir::In => (&x.inpkts, &x.inbytes),
                Dir::Out => (&x.outpkts, &x.outbytes),
            };
            bump(p, packets);
            bump(b, bytes);
        }
        true
    }

    /// Whether `c`, due, carried packets outside the worker since it was
    /// last asked (`moved` answers per offered direction).
    pub(super) fn fast_moved(c: &Conn, moved: FastMoved<'_>) -> bool {
        let mut any = false;
        for dir in [Dir::In, Dir::Out] {
            if c.local_flags & bit(dir) != 0 {
                any |= moved(&key_of(c, dir));
            }
        }
        any
    }
}

//! The worker's side of a hand-over to a successor process on the same host
//! (hot upgrade, warm standby; `docs/design/hot-upgrade.md`, step 6
//! PRECOPY): exporting its whole state as version 4 records
//! ([`crate::sync::local`]) while it keeps forwarding, and installing them
//! on the successor's worker of the same index.
//!
//! # The old process
//! 1. [`Worker::enable_sync_log`] (the hand-over log; it may be on already
//!    for HA sync), *then* a sweep of the table with
//!    [`Worker::export_local`], a bounded number of slots per call, and
//!    the neighbours ([`Worker::export_neigh`]) and counters
//!    ([`Worker::export_counters`]).
//! 2. Meanwhile and until the freeze, [`Worker::drain_local`] turns the
//!    log into records of what changed since (created, changed, removed);
//!    it also gives the record HA peers get for each event, as
//!    [`Worker::drain_sync`] would. A connection the sweep has not reached
//!    yet may come twice (log and sweep): installing it again replaces it.
//!    A full log ([`Worker::sync_lost`] grew) means the sweep must restart.
//!
//! Packets refresh timers without a log event, so a record's time left can
//! only be shorter than the old process's at the cut-over; see the timers
//! below.
//!
//! # The successor
//! [`Worker::install_local`] re-creates each connection as the old one's
//! own (no [`flags::SYNCED`] mark; every flag as it was): service and dest
//! by identity, the *same* local port taken from its pool (so the pool
//! ownership is the old one's: a new connection never gets a port a moved
//! one holds; the worker must have the old one's index and worker count),
//! dest active/inactive gauges by state, templates, limit counts for
//! [`flags::LIMIT_COUNTED`] connections, half-open tracking for TCP ones in
//! a SYN state, the fast path's bits, the previous hop and the flow log's
//! counters. [`Worker::remove_local`] applies a removal. No sync event is
//! logged and no flow-log record is written for either: the old process
//! reported them.
//!
//! Timers: each record's time left is re-armed as the larger of it and the
//! timeout one packet would refresh the connection to (its state's; a
//! template's persistence timeout), and once the workers start,
//! [`Worker::start_imported`] makes that floor count from the start: an
//! imported connection expires no earlier than its state's timeout after
//! the start, so nothing expires earlier than on the old process (an idle
//! one lives at most one timeout longer).
//!
//! Not carried: the SYN proxy's kept frames and retransmission timers (the
//! clients retransmit), rate-limiter buckets (they start full), frames
//! waiting for a neighbour. Between active HA peers, the log leaves out
//! connections installed from a peer ([`flags::SYNCED`], [`flags::FOREIGN`]):
//! their changes during the hand-over come from the peer's stream, which the
//! successor keeps receiving.

use super::flowlog::FlowCounts;
use super::slots::{Slots, NONE};
use super::sync::SyncEvent;
use super::{State, Worker};
use crate::addr::{proto, Addr};
use crate::conn::tcp::{TcpState, Timeouts};
use crate::conn::{flags, local_flags, Conn, ConnId, Dir, FwdMode, InsertError, Tuple};
use crate::neigh::NeighState;
use crate::service::ServiceKey;
use crate::snapshot::Snapshot;
use crate::stats::{bump, CounterValues, DropReason};
use crate::sync::{FlowState, LocalConn, LocalRecord, NeighRecord, Record};
use std::sync::atomic::Ordering::Relaxed;

use super::SyncError;

/// The fast path's bits a hand-over carries.
const FAST_BITS: u8 = local_flags::FAST_IN | local_flags::FAST_OUT;

/// When imported connections may start to expire.
#[derive(Copy, Clone, Debug)]
pub(super) struct ImportFloor {
    start_ms: u64,
    timeouts: Timeouts,
}

impl ImportFloor {
    /// How much longer imported connection `c`, due at `now_ms`, must live:
    /// until its refresh timeout after the start.
    pub(super) fn hold(&self, c: &Conn, slots: &Slots, now_ms: u64) -> Option<u32> {
        let floor = self
            .start_ms
            .saturating_add(u64::from(refresh_ms(&self.timeouts, slots, c)));
        (now_ms < floor).then(|| u32::try_from(floor - now_ms).unwrap_or(u32::MAX))
    }
}

/// The timeout one packet of `c` would refresh it to (a template: its
/// service's persistence timeout).
fn refresh_ms(t: &Timeouts, slots: &Slots, c: &Conn) -> u32 {
    if c.is_template() {
        return slots
            .svcs
            .get(c.service)
            .map_or(0, |s| s.svc.persistence_ms);
    }
    match c.proto {
        proto::TCP => t.tcp(TcpState::from_u8(c.state).unwrap_or_default()),
        proto::UDP => t.udp_ms,
        _ => t.icmp_ms,
    }
}

/// A service's counters on one worker, by identity, as bases for a
/// successor ([`Worker::export_counters`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SvcCounters {
    /// The service.
    pub key: ServiceKey,
    /// Its counters on this worker (the gauges `active`/`inactive` are
    /// rebuilt from the connections, not carried).
    pub values: CounterValues,
    /// Each dest's, by configured address and port.
    pub dests: Vec<(Addr, u16, CounterValues)>,
    /// Each local address's connection count.
    pub laddrs: Vec<(Addr, u64)>,
}

/// A worker's counters as bases for the same worker of a successor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterBases {
    /// Drops by reason (only non-zero ones).
    pub drops: Vec<(DropReason, u64)>,
    /// Services' counters.
    pub services: Vec<SvcCounters>,
    /// UDP option of origin: datagrams sent, and not sent (too big).
    pub uoa: (u64, u64),
}

fn own(v: &CounterValues) -> CounterValues {
    CounterValues {
        active: 0,
        inactive: 0,
        ..*v
    }
}

fn add_into(c: &crate::stats::Counters, v: &CounterValues) {
    bump(&c.conns, v.conns);
    bump(&c.inpkts, v.inpkts);
    bump(&c.outpkts, v.outpkts);
    bump(&c.inbytes, v.inbytes);
    bump(&c.outbytes, v.outbytes);
}

impl Worker {
    /// Connection (or template) `id` as a hand-over record; `None` if the
    /// slot is free or its service or dest is unknown.
    pub fn local_conn(&self, id: ConnId, now_ms: u64) -> Option<LocalConn> {
        let c = self.st.conns.try_get(id)?;
        let mut s = self.export_conn(id, now_ms)?;
        s.flags = c.flags;
        let flow = self.st.flowlog.as_ref().and_then(|fl| {
            let k = fl.counts(id);
            k.live.then(|| FlowState {
                age_ms: now_ms.saturating_sub(k.created_ms),
                packets: k.packets,
                bytes: k.bytes,
            })
        });
        Some(LocalConn {
            conn: s,
            local_flags: c.local_flags & FAST_BITS,
            in_port: c.in_port,
            out_port: c.out_port,
            in_mac: c.in_mac,
            flow,
        })
    }

    /// The sweep of a hand-over, a bounded piece at a time: every
    /// connection and template in table slots `start..start + max_slots`
    /// (synced and foreign ones too) as [`LocalConn`]s; returns where to
    /// continue, or `None` when the table is done. O(`max_slots`) per call;
    /// the worker keeps forwarding between calls.
    pub fn export_local(
        &self,
        start: u32,
        max_slots: u32,
        now_ms: u64,
        mut f: impl FnMut(LocalConn),
    ) -> Option<u32> {
        self.sweep_slots(start, max_slots, |id| {
            if let Some(l) = self.local_conn(id, now_ms) {
                f(l);
            }
        })
    }

    /// Turns up to `max` logged events ([`Worker::enable_sync_log`]) into
    /// hand-over records, each with the record HA peers get for it
    /// ([`Worker::drain_sync`]'s, `None` where that one has none). Returns
    /// the events taken.
    pub fn drain_local(
        &mut self,
        now_ms: u64,
        max: usize,
        mut f: impl FnMut(LocalRecord, Option<Record>),
    ) -> usize {
        let mut n = 0;
        while n < max {
            let Some(ev) = self.st.sync_log.as_mut().and_then(|l| l.pop()) else {
                break;
            };
            n += 1;
            match ev {
                SyncEvent::Created(id) | SyncEvent::Changed(id) => {
                    let Some(l) = self.local_conn(id, now_ms) else {
                        continue;
                    };
                    let peer = self.export_own(id, now_ms).map(|s| match ev {
                        SyncEvent::Created(_) => Record::Create(s),
                        _ => Record::Update(s),
                    });
                    f(LocalRecord::Conn(l), peer);
                }
                SyncEvent::Removed(t) => f(LocalRecord::Remove(t), Some(Record::Remove(t))),
            }
        }
        n
    }

    /// Installs a connection from a hand-over as this worker's own (see the
    /// module doc); one with the same in tuple is replaced. Run it on the
    /// worker of the old one's index. Returns its id here.
    pub fn install_local(&mut self, l: &LocalConn, now_ms: u64) -> Result<ConnId, SyncError> {
        let r = self.st.install_local(&self.snap, l, now_ms);
        self.st.publish_conn_count();
        r
    }

    /// Removes the connection whose in tuple is `t` (a hand-over's
    /// [`LocalRecord::Remove`]), freeing its port; logs nothing. Returns
    /// whether there was one.
    pub fn remove_local(&mut self, t: &Tuple) -> bool {
        match self.st.conns.lookup(t) {
            Some((id, Dir::In)) => {
                self.st.drop_quietly(id);
                self.st.publish_conn_count();
                true
            }
            _ => false,
        }
    }

    /// The workers start forwarding after a hand-over: from `now_ms` on, an
    /// imported connection expires no earlier than the timeout its state
    /// (or template) is refreshed to by one packet.
    pub fn start_imported(&mut self, now_ms: u64) {
        self.st.import = Some(ImportFloor {
            start_ms: now_ms,
            timeouts: self.snap.timeouts,
        });
    }

    /// The neighbours to hand over: learned ones (reachable or stale) with
    /// their age, and static ones. Incomplete ones are left out (their
    /// frames are dropped; the senders retransmit).
    pub fn export_neigh(&self, now_ms: u64, mut f: impl FnMut(NeighRecord)) {
        for e in self.st.neigh.iter() {
            let is_static = match e.state {
                NeighState::Incomplete => continue,
                NeighState::Static => true,
                NeighState::Reachable | NeighState::Stale => false,
            };
            f(NeighRecord {
                addr: e.addr,
                mac: e.mac,
                port: e.port,
                is_static,
                age_ms: if is_static {
                    0
                } else {
                    now_ms.saturating_sub(e.updated_ms)
                },
            });
        }
    }

    /// Installs a handed-over neighbour (a learned one as learned `age_ms`
    /// ago, at most `now_ms` ago).
    pub fn install_neigh(
        &mut self,
        n: &NeighRecord,
        now_ms: u64,
    ) -> Result<(), crate::neigh::NeighError> {
        if n.is_static {
            return self.st.neigh.add_static(n.addr, n.mac, n.port);
        }
        let at = now_ms.saturating_sub(n.age_ms);
        self.st.neigh.learn(n.addr, n.mac, n.port, at);
        Ok(())
    }

    /// This worker's counters (drops, services', dests', local addresses')
    /// as bases for the successor's worker of the same index.
    pub fn export_counters(&self) -> CounterBases {
        let w = self.st.id as usize;
        let drops = DropReason::ALL
            .iter()
            .map(|r| (*r, self.st.drops.get(*r)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let services = self
            .snap
            .services
            .iter()
            .map(|s| SvcCounters {
                key: s.key.clone(),
                values: own(&s.stats.worker(w).read()),
                dests: s
                    .dests
                    .iter()
                    .map(|d| (d.addr, d.port, own(&d.stats.worker(w).read())))
                    .collect(),
                laddrs: s
                    .laddrs
                    .iter()
                    .map(|l| (l.addr, l.stats.worker(w).conns.load(Relaxed)))
                    .collect(),
            })
            .collect();
        let g = &self.st.gauges;
        CounterBases {
            drops,
            services,
            uoa: (g.uoa_sent.load(Relaxed), g.uoa_too_big.load(Relaxed)),
        }
    }

    /// Adds a predecessor's counters ([`Worker::export_counters`]) to this
    /// worker's, by identity: services, dests and local addresses this
    /// configuration does not have are skipped.
    pub fn add_counters(&mut self, b: &CounterBases) {
        let w = self.st.id as usize;
        for (r, n) in &b.drops {
            self.st.drops.add(*r, *n);
        }
        for sc in &b.services {
            let Some(s) = self.snap.services.iter().find(|s| s.key == sc.key) else {
                continue;
            };
            add_into(s.stats.worker(w), &sc.values);
            for (addr, port, v) in &sc.dests {
                if let Some(d) = s.dests.iter().find(|d| d.addr == *addr && d.port == *port) {
                    add_into(d.stats.worker(w), v);
                }
            }
            for (addr, n) in &sc.laddrs {
                if let Some(l) = s.laddrs.iter().find(|l| l.addr == *addr) {
                    bump(&l.stats.worker(w).conns, *n);
                }
            }
        }
        bump(&self.st.gauges.uoa_sent, b.uoa.0);
        bump(&self.st.gauges.uoa_too_big, b.uoa.1);
    }
}

impl State {
    /// Removes connection `id` without a sync event, a fast-path removal or
    /// a flow-log record (its old process reports those).
    pub(super) fn drop_quietly(&mut self, id: ConnId) {
        self.conns.get_mut(id).local_flags &= !FAST_BITS;
        let (log, fl) = (self.sync_log.take(), self.flowlog.take());
        self.remove_conn(id);
        self.sync_log = log;
        self.flowlog = fl;
        if let Some(fl) = self.flowlog.as_mut() {
            fl.adopt(id, FlowCounts::default());
        }
    }

    /// Installs `l`; a connection with the same in tuple (the sweep and the
    /// log may both send one) is replaced. The table is searched for it
    /// only when the port or a tuple is taken: most records are new.
    fn install_local(
        &mut self,
        snap: &Snapshot,
        l: &LocalConn,
        now_ms: u64,
    ) -> Result<ConnId, SyncError> {
        match self.try_install_local(snap, l, now_ms) {
            Err(e @ (SyncError::PortInUse(_) | SyncError::Conflict)) => {
                match self.conns.lookup(&l.conn.in_tuple()) {
                    Some((id, Dir::In)) => {
                        self.drop_quietly(id);
                        self.try_install_local(snap, l, now_ms)
                    }
                    _ => Err(e),
                }
            }
            r => r,
        }
    }

    fn try_install_local(
        &mut self,
        snap: &Snapshot,
        l: &LocalConn,
        now_ms: u64,
    ) -> Result<ConnId, SyncError> {
        let s = &l.conn;
        let template = s.flags & flags::TEMPLATE != 0;
        if s.proto == proto::TCP && !template && TcpState::from_u8(s.state).is_none() {
            return Err(SyncError::BadState(s.state));
        }
        let (svc_slot, dest_slot) = self.synced_slots(snap, s)?;
        let in_t = s.in_tuple();
        let mut c = match s.flags & flags::NO_OUT_TUPLE != 0 {
            true => Conn::new_in_only(s.mode, &in_t),
            false => Conn::new(
                s.mode,
                &in_t,
                &Tuple::new(s.proto, s.rip, s.rport, s.lip, s.lport),
            ),
        };
        (c.rip, c.rport, c.lip, c.lport) = (s.rip, s.rport, s.lip, s.lport);
        c.flags = s.flags;
        c.local_flags = (l.local_flags & FAST_BITS) | local_flags::IMPORTED;
        (c.sp_seq, c.sp_ts) = (s.sp_seq, s.sp_ts);
        (c.service, c.dest, c.state) = (svc_slot, dest_slot, s.state);
        (c.in_port, c.out_port, c.in_mac) = (l.in_port, l.out_port, l.in_mac);
        let pool_slot = match s.mode {
            FwdMode::Fnat if s.flags & flags::FOREIGN != 0 => {
                self.check_owner(s.lport)?;
                NONE
            }
            FwdMode::Fnat | FwdMode::Snat if !template => self.take_synced_port(svc_slot, s)?,
            _ => NONE,
        };
        c.laddr = pool_slot;
        let refresh = refresh_ms(&snap.timeouts, &self.slots, &c);
        let id = match self.conns.insert(c, s.timeout_ms.max(refresh), now_ms) {
            Ok(id) => id,
            Err(e) => {
                if let Some(pl) = self.slots.pools.get_mut(pool_slot) {
                    pl.pool.free(s.lport);
                }
                return Err(match e {
                    InsertError::Full => SyncError::TableFull,
                    InsertError::Exists => SyncError::Conflict,
                });
            }
        };
        self.count_installed(&c, id, l, now_ms);
        Ok(id)
    }

    /// The references, gauges, limit counts, half-open entry and flow
    /// counters of an installed connection.
    fn count_installed(&mut self, c: &Conn, id: ConnId, l: &LocalConn, now_ms: u64) {
        let template = c.is_template();
        if template {
            self.templates += 1;
        }
        if let Some(ss) = self.slots.svcs.get_mut(c.service) {
            ss.refs += 1;
        }
        if let Some(d) = self.slots.dests.get_mut(c.dest) {
            d.refs += 1;
            if !template {
                match super::conns::conn_is_active(c) {
                    true => d.active += 1,
                    false => d.inactive += 1,
                }
                d.update_overload(u32::from(self.workers));
            }
        }
        if !template {
            self.publish_gauges(c.dest);
        }
        if let Some(pl) = self.slots.pools.get_mut(c.laddr) {
            pl.refs += 1;
            let syn = matches!(
                TcpState::from_u8(c.state),
                Some(TcpState::None | TcpState::SynRecv)
            );
            if c.proto == proto::TCP && syn {
                pl.half_open.push(id, c.lport);
            }
        }
        if !template && c.flags & flags::LIMIT_COUNTED != 0 {
            let State { slots, limits, .. } = self;
            if let Some(ss) = slots.svcs.get_mut(c.service) {
                ss.limit.adopt(&mut limits.sources, &c.cip, now_ms);
            }
        }
        if let Some(fl) = self.flowlog.as_mut() {
            let counts = l.flow.map_or(FlowCounts::default(), |f| FlowCounts {
                created_ms: now_ms.saturating_sub(f.age_ms),
                packets: f.packets,
                bytes: f.bytes,
                live: true,
            });
            fl.adopt(id, counts);
        }
    }
}

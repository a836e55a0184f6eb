//! The worker's side of connection sync ([`crate::sync`]): exporting its
//! connections as [`SyncConn`]s, and installing connections synced from a
//! peer.
//!
//! # Sending
//! With [`Worker::enable_sync_log`] the pipeline appends an event to a small
//! preallocated ring whenever it creates a connection (or a persistence
//! template), a TCP connection changes state, or a connection goes away. The
//! daemon drains it between bursts with [`Worker::drain_sync`] (bounded per
//! call), which turns each event into a [`Record`]. Off by default: then the
//! pipeline only tests an `Option` when a connection is created, changes
//! state or is removed, never per packet of an established flow. When the
//! ring is full, events are counted in [`Worker::sync_lost`] and dropped: the
//! daemon then sends a full dump ([`Worker::export_range`]), as it does for a
//! peer's [`Record::Resync`]. Size the ring for what one loop iteration
//! can produce: a burst's new connections plus one expiry pass's removals.
//!
//! Packets refresh a connection's timer on the sender but not on the
//! receiver, which only hears of creations, state changes and removals: a
//! long-lived idle-looking ESTABLISHED connection would expire early on the
//! receiver. The daemon therefore also sweeps the table with
//! [`Worker::export_range`] (bounded per call) once per period shorter than
//! the shortest timeout it cares about; each record re-arms the receiver's
//! timer (LVS's sync daemon resends a connection every N packets for the
//! same reason).
//!
//! # Receiving
//! [`Worker::install_synced`] resolves the service and dest by their
//! configuration identity in this worker's snapshot, takes the *same* local
//! port from this worker's pool ([`crate::sapool::PortPool::take`]) and
//! inserts the connection with the remaining timeout. It must run on the
//! worker that owns the local port (`lport % workers`, see
//! [`crate::sync`]): both nodes need the same number of workers. A record
//! for a connection that exists already updates its state, flags and
//! timeout. Installing counts the connection in its dest's active/inactive
//! gauges and holds references like a scheduled one, but not in the
//! "connections scheduled" counters, as LVS's backup does.
//! Installed connections carry [`flags::SYNCED`].
//!
//! # Active peers
//! Master and backup (the default) is LVS's model: the backup only listens,
//! and once it becomes master it reports every connection it has, synced
//! ones included, to the next backup. Between active peers (ECMP nodes,
//! role `both`, [`Worker::set_sync_active`]) every node sends its own
//! connections and installs the others', so a node must never report a
//! connection it installed from a peer, or each would echo the other's
//! connections back (and a peer's timer would reset its owner's). There:
//! - a synced connection is never reported: not its creation, not a state
//!   change seen here, not its removal, and full dumps leave it out. Its
//!   owner alone speaks for it;
//! - a state change seen here (packets that reach this node) applies here
//!   (state, timeout), until the owner's next record for it, which wins;
//! - its removal here (it expired, or a packet reset it) is silent: if the
//!   owner still has it, its next refresh installs it again;
//! - once it carried a packet here ([`flags::LOCAL_SEEN`]: the switch moved
//!   the flow to this node), the owner's removal no longer removes it and
//!   the owner's timer no longer shortens it: the owner may not see the
//!   flow any more (NAT, DR/TUNNEL, one-way UDP) and would expire it while
//!   it runs here; it lives on this node's own timer;
//! - a peer's record for a connection this node created is refused
//!   ([`SyncError::Owned`]), and a peer's removal does not touch it;
//! - an FNAT connection whose local address is not one of this node's (each
//!   ECMP node has its own local addresses) is installed as a *foreign*
//!   connection ([`flags::FOREIGN`]): no port is taken from any pool and
//!   none is freed when it goes; packets from the client that reach this
//!   node go to the real server with the owner's local address and port as
//!   their source, so the real server's answer goes to the owner (the LAN
//!   delivers its local address there), which has the connection. Such a
//!   connection lives on worker `lport % workers`, which is also where this
//!   node's steering sends its client's packets (`(cip ^ cport) % workers`
//!   chose the owner's worker, which took a port it owns): the peers need
//!   the same number of workers.

use super::slots::NONE;
use super::{State, Worker};
use crate::addr::proto;
use crate::conn::tcp::{self, TcpState};
use crate::conn::{flags, Conn, ConnId, Dir, FwdMode, InsertError, Tuple};
use crate::sapool::TakeError;
use crate::service::ServiceKey;
use crate::snapshot::Snapshot;
use crate::sync::{Record, SvcRef, SyncConn, SYNC_FLAGS_V3};
use std::fmt;

/// A connection event kept for the sync sender.
#[derive(Copy, Clone, Debug)]
pub(super) enum SyncEvent {
    /// A connection or template was created.
    Created(ConnId),
    /// A TCP connection changed state.
    Changed(ConnId),
    /// A connection went away: its in tuple.
    Removed(Tuple),
}

/// A fixed ring of [`SyncEvent`]s.
#[derive(Debug)]
pub(super) struct SyncLog {
    ring: Vec<SyncEvent>,
    head: usize,
    len: usize,
    lost: u64,
}

impl SyncLog {
    fn new(capacity: usize) -> SyncLog {
        SyncLog {
            ring: vec![SyncEvent::Removed(Tuple::default()); capacity.max(1)],
            head: 0,
            len: 0,
            lost: 0,
        }
    }

    /// Appends an event, or counts it lost when the ring is full.
    #[inline]
    pub(super) fn push(&mut self, ev: SyncEvent) {
        let cap = self.ring.len();
        if self.len == cap {
            self.lost += 1;
            return;
        }
        if let Some(slot) = self.ring.get_mut((self.head + self.len) % cap) {
            *slot = ev;
        }
        self.len += 1;
    }

    pub(super) fn pop(&mut self) -> Option<SyncEvent> {
        if self.len == 0 {
            return None;
        }
        let ev = self.ring.get(self.head).copied();
        self.head = (self.head + 1) % self.ring.len();
        self.len -= 1;
        ev
    }
}

/// Why a synced connection was not installed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SyncError {
    /// No service with this identity in the configuration.
    ServiceNotFound,
    /// The service has no dest with this address and port.
    DestNotFound,
    /// The dest's forwarding mode differs from the connection's.
    ModeMismatch,
    /// The local address is not one of the service's (or has no pool).
    LocalAddrNotFound,
    /// The local port belongs to another worker: install the connection on
    /// worker `port % workers`, and run as many workers as the sender.
    PortNotOwned {
        /// The local port.
        port: u16,
        /// This worker.
        worker: u16,
        /// Workers on this node.
        workers: u16,
    },
    /// The local port is already used by another connection here.
    PortInUse(u16),
    /// Not a TCP state.
    BadState(u8),
    /// The in or out tuple is already used by a different connection.
    Conflict,
    /// Between active peers: this node created the connection itself, a
    /// peer's record does not change it.
    Owned,
    /// The connection table is full.
    TableFull,
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SyncError::ServiceNotFound => f.write_str("synced connection: no such service here"),
            SyncError::DestNotFound => f.write_str("synced connection: no such real server here"),
            SyncError::ModeMismatch => {
                f.write_str("synced connection: the real server's forwarding mode differs here")
            }
            SyncError::LocalAddrNotFound => {
                f.write_str("synced connection: the local address is not the service's here")
            }
            SyncError::PortNotOwned {
                port,
                worker,
                workers,
            } => write!(
                f,
                "synced connection: local port {port} belongs to worker {} of {workers}, not {worker} \
                 (both nodes need the same number of workers)",
                port % workers.max(1)
            ),
            SyncError::PortInUse(p) => write!(f, "synced connection: local port {p} in use here"),
            SyncError::BadState(s) => write!(f, "synced connection: bad TCP state {s}"),
            SyncError::Conflict => {
                f.write_str("synced connection: its tuples belong to another connection here")
            }
            SyncError::Owned => f.write_str(
                "synced connection: this node created it (a peer's record does not change it)",
            ),
            SyncError::TableFull => f.write_str("synced connection: connection table full"),
        }
    }
}

impl std::error::Error for SyncError {}

impl Worker {
    /// Starts logging connection events for the sync sender, in a ring of
    /// `capacity` events (allocated now). Drain it with
    /// [`Worker::drain_sync`] more often than it fills.
    pub fn enable_sync_log(&mut self, capacity: usize) {
        self.st.sync_log = Some(SyncLog::new(capacity));
    }

    /// Whether connection events are logged ([`Worker::enable_sync_log`]).
    pub fn sync_logging(&self) -> bool {
        self.st.sync_log.is_some()
    }

    /// Stops logging connection events and frees the ring.
    pub fn disable_sync_log(&mut self) {
        self.st.sync_log = None;
    }

    /// Sync between active peers (`on`) or master and backup (the
    /// default); see the module doc.
    pub fn set_sync_active(&mut self, on: bool) {
        self.st.sync_active = on;
    }

    /// Whether sync runs between active peers.
    pub fn sync_active(&self) -> bool {
        self.st.sync_active
    }

    /// Events dropped because the sync ring was full (the peers then need a
    /// full dump).
    pub fn sync_lost(&self) -> u64 {
        self.st.sync_log.as_ref().map_or(0, |l| l.lost)
    }

    /// Turns up to `max` logged events into records for the sender:
    /// [`Record::Create`], [`Record::Update`] (with the connection's current
    /// contents) and [`Record::Remove`]. Events of connections that are gone
    /// by now are skipped (their removal follows). Returns the events taken.
    pub fn drain_sync(&mut self, now_ms: u64, max: usize, mut f: impl FnMut(Record)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(ev) = self.st.sync_log.as_mut().and_then(SyncLog::pop) else {
                break;
            };
            n += 1;
            let rec = match ev {
                SyncEvent::Created(id) => self.export_own(id, now_ms).map(Record::Create),
                SyncEvent::Changed(id) => self.export_own(id, now_ms).map(Record::Update),
                SyncEvent::Removed(t) => Some(Record::Remove(t)),
            };
            if let Some(r) = rec {
                f(r);
            }
        }
        n
    }

    /// Connection `id` as it travels to a peer; `None` if the slot is free
    /// or its service or dest is unknown.
    pub fn export_conn(&self, id: ConnId, now_ms: u64) -> Option<SyncConn> {
        let c = self.st.conns.try_get(id)?;
        let ss = self.st.slots.svcs.get(c.service)?;
        let d = self.st.slots.dests.get(c.dest)?;
        let svc = match &ss.svc.key {
            ServiceKey::Vs { proto, vip, vport } => SvcRef::Vs {
                proto: *proto,
                vip: *vip,
                vport: *vport,
            },
            ServiceKey::Match(m) => SvcRef::Snat { proto: m.proto },
        };
        let left = c.expires_ms().saturating_sub(now_ms);
        Some(SyncConn {
            proto: c.proto,
            mode: c.mode,
            state: c.state,
            flags: c.flags & SYNC_FLAGS_V3,
            cip: c.cip,
            cport: c.cport,
            vip: c.vip,
            vport: c.vport,
            rip: c.rip,
            rport: c.rport,
            lip: c.lip,
            lport: c.lport,
            timeout_ms: u32::try_from(left).unwrap_or(u32::MAX),
            svc,
            dest: d.dest.addr,
            dest_port: d.dest.port,
            sp_seq: c.sp_seq,
            sp_ts: c.sp_ts,
        })
    }

    /// [`Worker::export_conn`], except a synced connection between active
    /// peers (its owner reports it) and a foreign one whatever the mode (its
    /// local address is a peer's: a node that installed it as its own would
    /// take a port of its own pool for it).
    pub(super) fn export_own(&self, id: ConnId, now_ms: u64) -> Option<SyncConn> {
        let c = self.st.conns.try_get(id)?;
        if c.flags & flags::FOREIGN != 0 || self.st.sync_active && c.flags & flags::SYNCED != 0 {
            return None;
        }
        self.export_conn(id, now_ms)
    }

    /// A full dump, a bounded piece at a time: exports the connections in
    /// table slots `start..start + max_slots` as [`Record::Create`]s and
    /// returns where to continue, or `None` when the table is done. Each call
    /// costs O(`max_slots`) whatever the table size. Between active peers,
    /// connections installed from a peer are left out.
    pub fn export_range(
        &self,
        start: u32,
        max_slots: u32,
        now_ms: u64,
        mut f: impl FnMut(Record),
    ) -> Option<u32> {
        self.sweep_slots(start, max_slots, |id| {
            if let Some(c) = self.export_own(id, now_ms) {
                f(Record::Create(c));
            }
        })
    }

    /// The iteration every bounded sweep shares (sync dumps, hand-over
    /// pre-copies): calls `f` with each slot id of `start..start +
    /// max_slots` within the table; returns where to continue, or `None`
    /// when the table is done.
    pub(super) fn sweep_slots(
        &self,
        start: u32,
        max_slots: u32,
        mut f: impl FnMut(ConnId),
    ) -> Option<u32> {
        let cap = u32::try_from(self.st.conns.capacity()).unwrap_or(u32::MAX);
        let end = start.saturating_add(max_slots).min(cap);
        for i in start..end {
            f(ConnId(i));
        }
        (end < cap).then_some(end)
    }

    /// Installs (or updates) a connection synced from a peer; see the module
    /// doc. Returns its id here.
    pub fn install_synced(&mut self, s: &SyncConn, now_ms: u64) -> Result<ConnId, SyncError> {
        self.st.install_synced(&self.snap, s, now_ms)
    }

    /// Removes the connection whose in tuple is `t` (a peer's
    /// [`Record::Remove`]), freeing its local port. Logs no sync event.
    /// Between active peers, only a connection installed from a peer goes.
    /// Returns whether there was one.
    pub fn remove_synced(&mut self, t: &Tuple) -> bool {
        let Some((id, Dir::In)) = self.st.conns.lookup(t) else {
            return false;
        };
        let cf = self.st.conns.get(id).flags;
        if self.st.sync_active && (cf & flags::SYNCED == 0 || cf & flags::LOCAL_SEEN != 0) {
            // Ours, or a moved flow that runs through this node now.
            return false;
        }
        let log = self.st.sync_log.take();
        self.st.remove_conn(id);
        self.st.sync_log = log;
        true
    }
}

impl State {
    /// Logs a sync event if sync is on.
    #[inline]
    pub(super) fn sync_note(&mut self, ev: SyncEvent) {
        if let Some(l) = &mut self.sync_log {
            l.push(ev);
        }
    }

    /// Logs a sync event of a connection with flags `cflags`, unless it was
    /// installed from an active peer (which reports it itself).
    #[inline]
    pub(super) fn sync_note_of(&mut self, cflags: u16, ev: SyncEvent) {
        if cflags & flags::FOREIGN != 0 || self.sync_active && cflags & flags::SYNCED != 0 {
            return;
        }
        self.sync_note(ev);
    }

    /// The worker-local service slot of a synced service identity.
    pub(super) fn synced_svc(&self, snap: &Snapshot, s: &SyncConn) -> Option<u32> {
        let index = match s.svc {
            SvcRef::Vs { proto, vip, vport } => snap.vs_lookup(proto, &vip, vport)?,
            SvcRef::Snat { proto } => *snap.match_services().iter().find(|&&i| {
                let svc = &snap.services[i];
                let ServiceKey::Match(m) = &svc.key else {
                    return false;
                };
                let iif = m.iif.as_ref().map_or(0, |x| x.1);
                let oif = m.oif.as_ref().map(|x| x.1);
                m.proto == proto
                    && svc.dests.iter().any(|d| d.addr == s.dest)
                    && m.matches(&s.in_tuple(), iif, oif)
            })?,
        };
        self.slots.svc_of_index.get(index).copied()
    }

    fn install_synced(
        &mut self,
        snap: &Snapshot,
        s: &SyncConn,
        now_ms: u64,
    ) -> Result<ConnId, SyncError> {
        let template = s.flags & flags::TEMPLATE != 0;
        if s.proto == proto::TCP && !template && TcpState::from_u8(s.state).is_none() {
            return Err(SyncError::BadState(s.state));
        }
        match self.conns.lookup(&s.in_tuple()) {
            Some((id, Dir::In))
                if self.sync_active && self.conns.get(id).flags & flags::SYNCED == 0 =>
            {
                return Err(SyncError::Owned)
            }
            Some((id, Dir::In)) => return self.update_synced(id, s, now_ms),
            Some((_, Dir::Out)) => return Err(SyncError::Conflict),
            None => {}
        }
        let (svc_slot, dest_slot) = self.synced_slots(snap, s)?;
        let in_t = s.in_tuple();
        let mut c = match s.mode {
            _ if template => Conn::new_in_only(s.mode, &in_t),
            FwdMode::Dr | FwdMode::Tunnel => Conn::new_in_only(s.mode, &in_t),
            m => Conn::new(
                m,
                &in_t,
                &Tuple::new(s.proto, s.rip, s.rport, s.lip, s.lport),
            ),
        };
        c.rip = s.rip;
        c.rport = s.rport;
        c.flags |= s.flags & SYNC_FLAGS_V3 | flags::SYNCED;
        c.sp_seq = s.sp_seq;
        c.sp_ts = s.sp_ts;
        c.service = svc_slot;
        c.dest = dest_slot;
        c.state = s.state;
        c.in_port = snap.routes.lookup(&s.cip).map_or(0, |r| r.port);
        let foreign = self.is_foreign(s, template);
        let pool_slot = match s.mode {
            FwdMode::Fnat if foreign => {
                self.check_owner(s.lport)?;
                c.flags |= flags::FOREIGN;
                NONE
            }
            FwdMode::Fnat | FwdMode::Snat if !template => self.take_synced_port(svc_slot, s)?,
            _ => NONE,
        };
        c.laddr = pool_slot;
        let id = match self.conns.insert(c, s.timeout_ms, now_ms) {
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
        if template {
            self.templates += 1;
        }
        if let Some(ss) = self.slots.svcs.get_mut(svc_slot) {
            ss.refs += 1;
        }
        let active = !template && super::conns::conn_is_active(&c);
        if let Some(d) = self.slots.dests.get_mut(dest_slot) {
            d.refs += 1;
            if !template {
                if active {
                    d.active += 1;
                } else {
                    d.inactive += 1;
                }
                d.update_overload(u32::from(self.workers));
            }
        }
        if !template {
            self.publish_gauges(dest_slot);
        }
        if let Some(pl) = self.slots.pools.get_mut(pool_slot) {
            pl.refs += 1;
        }
        Ok(id)
    }

    /// The worker-local service and dest slots of a synced connection's
    /// service and dest identities (the dest's mode must be the record's).
    pub(super) fn synced_slots(
        &self,
        snap: &Snapshot,
        s: &SyncConn,
    ) -> Result<(u32, u32), SyncError> {
        let svc_slot = self.synced_svc(snap, s).ok_or(SyncError::ServiceNotFound)?;
        let ss = self
            .slots
            .svcs
            .get(svc_slot)
            .ok_or(SyncError::ServiceNotFound)?;
        let pos = ss
            .svc
            .dests
            .iter()
            .position(|d| d.addr == s.dest && d.port == s.dest_port)
            .ok_or(SyncError::DestNotFound)?;
        if ss.svc.dests.get(pos).map(|d| d.mode) != Some(s.mode) {
            return Err(SyncError::ModeMismatch);
        }
        let dest_slot = *ss.dests.get(pos).ok_or(SyncError::DestNotFound)?;
        Ok((svc_slot, dest_slot))
    }

    /// Between active peers, an FNAT connection whose local address has no
    /// pool here belongs to a peer's local address: a foreign connection.
    fn is_foreign(&self, s: &SyncConn, template: bool) -> bool {
        self.sync_active
            && !template
            && s.mode == FwdMode::Fnat
            && self.slots.pool_of(&s.lip).is_none()
    }

    /// A connection with local port `lport` belongs to this worker (the one
    /// its client's packets are steered to).
    pub(super) fn check_owner(&self, lport: u16) -> Result<(), SyncError> {
        if crate::sapool::owner_worker(lport, self.workers) == self.id {
            return Ok(());
        }
        Err(SyncError::PortNotOwned {
            port: lport,
            worker: self.id,
            workers: self.workers,
        })
    }

    /// Takes the synced connection's local port from the right pool: the
    /// service's local address (FNAT) or the WAN address (SNAT).
    pub(super) fn take_synced_port(
        &mut self,
        svc_slot: u32,
        s: &SyncConn,
    ) -> Result<u32, SyncError> {
        let ps = self
            .slots
            .pool_of(&s.lip)
            .ok_or(SyncError::LocalAddrNotFound)?;
        let ours = match s.mode {
            FwdMode::Snat => s.lip == s.dest,
            _ => self
                .slots
                .svcs
                .get(svc_slot)
                .is_some_and(|ss| ss.pools.contains(&ps)),
        };
        if !ours {
            return Err(SyncError::LocalAddrNotFound);
        }
        let pool = self
            .slots
            .pools
            .get_mut(ps)
            .ok_or(SyncError::LocalAddrNotFound)?;
        match pool.pool.take(s.lport) {
            Ok(()) => Ok(ps),
            Err(TakeError::InUse) => Err(SyncError::PortInUse(s.lport)),
            Err(TakeError::NotOwned) => Err(SyncError::PortNotOwned {
                port: s.lport,
                worker: self.id,
                workers: self.workers,
            }),
        }
    }

    /// A synced record for a connection this worker has: new state, flags
    /// and timeout.
    fn update_synced(
        &mut self,
        id: ConnId,
        s: &SyncConn,
        now_ms: u64,
    ) -> Result<ConnId, SyncError> {
        let c = *self.conns.get(id);
        let same = c.mode == s.mode
            && (c.flags & flags::NO_OUT_TUPLE != 0
                || (c.rip, c.rport, c.lip, c.lport) == (s.rip, s.rport, s.lip, s.lport));
        if !same || c.is_template() != (s.flags & flags::TEMPLATE != 0) {
            return Err(SyncError::Conflict);
        }
        if !c.is_template() && c.proto == proto::TCP && c.state != s.state {
            let was = super::conns::conn_is_active(&c);
            self.conns.get_mut(id).state = s.state;
            let now = tcp::is_active(TcpState::from_u8(s.state).unwrap_or_default());
            if was != now {
                if let Some(d) = self.slots.dests.get_mut(c.dest) {
                    if now {
                        d.active += 1;
                        d.inactive = d.inactive.saturating_sub(1);
                    } else {
                        d.inactive += 1;
                        d.active = d.active.saturating_sub(1);
                    }
                }
                self.publish_gauges(c.dest);
            }
        } else {
            self.conns.get_mut(id).state = s.state;
        }
        let m = self.conns.get_mut(id);
        m.flags |= s.flags & flags::TOA_SENT;
        if s.flags & flags::SYNPROXY != 0 || c.flags & flags::SYNPROXY != 0 {
            // The SYN proxy's shifts are fixed once its handshake with the
            // real server is done: the owner's record says what they are.
            let sp = flags::SYNPROXY | flags::SP_WSCALE;
            m.flags = (m.flags & !sp) | (s.flags & sp);
            m.sp_seq = s.sp_seq;
            m.sp_ts = s.sp_ts;
        }
        let pp = super::proxy_proto::PP_MASK;
        if s.flags & pp != 0 {
            // The PROXY protocol's offset is fixed at the connection's
            // creation; sent in every record of it (version 3).
            m.flags = (m.flags & !pp) | (s.flags & pp);
            m.sp_ts = s.sp_ts;
        }
        let moved_here = c.flags & flags::LOCAL_SEEN != 0;
        if !moved_here || now_ms.saturating_add(u64::from(s.timeout_ms)) > c.expires_ms() {
            // A flow that runs through this node keeps its own timer when
            // the owner's is shorter (the owner no longer sees its packets).
            self.conns.refresh(id, s.timeout_ms, now_ms);
        }
        Ok(id)
    }
}

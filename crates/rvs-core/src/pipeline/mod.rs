//! The packet pipeline of one worker: parse → classify → connection lookup or
//! scheduling → rewrite → route/neighbour → verdict.
//!
//! A [`Worker`] owns its connection table, neighbour table, port pools and
//! scheduler state (share nothing) and reads the configuration from an
//! immutable [`Snapshot`]. It never blocks, makes no syscalls and allocates
//! nothing per packet; the I/O layer hands it frames and acts on the
//! [`Verdict`]s.

mod conns;
mod fast;
mod flowlog;
mod half_open;
mod handover;
mod host;
mod icmp_err;
mod icmp_gen;
mod kni_guard;
mod limits;
mod mld_rx;
mod outbox;
mod parse;
mod precopy;
mod proxy_proto;
mod rewrite;
mod slots;
mod sync;
mod synproxy;
mod synproxy_build;
mod synproxy_held;
mod synproxy_retry;
mod uoa;
mod vlan;
mod xlate;
mod xlate_icmp;

use std::sync::Arc;

pub use fast::{FastEvent, FastKey, FastMoved};
pub use flowlog::{EndReason, FlowCounts, FlowEvent, FlowLog, FlowRecord};
pub use handover::{CounterBases, SvcCounters};
pub use mld_rx::MldHeard;
pub use outbox::Outbox;
pub use precopy::{Precopy, PrecopyEvent, Resweep};
pub use sync::SyncError;
pub use xlate::translate_family;

use crate::addr::{Addr, Mac, PortId};
use crate::conn::{Conn, ConnId, ConnTable, Dir, Tuple};
use crate::neigh::{NeighTable, QueueResult};
use crate::route::Scope;
use crate::snapshot::Snapshot;
use crate::stats::{DropCounters, DropReason, WorkerGauges};
use crate::wire::ethernet::{ethertype, EthernetFrame};
use icmp_gen::IcmpError;
use parse::{parse_ip, Parsed, L4};
use slots::Slots;

/// A received frame, in `buf[head..head + len]`. Headroom before `head` (and
/// room after the frame) lets the pipeline grow the frame for TOA or tunnel
/// headers without copying the payload.
#[derive(Debug)]
pub struct Packet<'a> {
    /// The buffer holding the frame.
    pub buf: &'a mut [u8],
    /// Offset of the frame in `buf`.
    pub head: usize,
    /// Frame length.
    pub len: usize,
    /// Port it was received on.
    pub port: PortId,
    /// The I/O layer already verified (or the NIC/peer vouches for) the
    /// transport checksum.
    pub csum_ok: bool,
}

impl Packet<'_> {
    /// The frame bytes.
    pub fn frame(&self) -> &[u8] {
        &self.buf[self.head..self.head + self.len]
    }
}

/// What to do with a frame after the pipeline ran.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send `buf[head..head + len]` (as updated) out of this port.
    Transmit(PortId),
    /// Hand the frame, unchanged, to the kernel through the port's exception path.
    ToKernel(PortId),
    /// Drop it; already counted under the reason.
    Drop(DropReason),
    /// The pipeline kept a copy (waiting for a neighbour) or consumed it (an ARP
    /// reply to rvs); the buffer is free.
    Consumed,
}

/// Sizes of a worker's preallocated state.
#[derive(Debug, Clone)]
pub struct WorkerConf {
    /// Worker index (0-based).
    pub id: u16,
    /// Connection table capacity.
    pub conn_capacity: usize,
    /// Neighbour table capacity.
    pub neigh_capacity: usize,
    /// Frames that may wait for neighbour resolution.
    pub pending_frames: usize,
    /// Largest frame kept while waiting (and in the outbox).
    pub frame_size: usize,
    /// Connections expired per [`Worker::tick`] at least (more when new
    /// connections arrive faster; see [`Worker::tick`]).
    pub expire_budget: usize,
    /// Seed of the connection index: `None` (the default) draws a fresh one
    /// per worker ([`crate::conn::fresh_seed`]); fix it only for
    /// reproducible tests, fuzzing and benchmarks.
    pub hash_seed: Option<u64>,
    /// The wall-clock time (ms since the Unix epoch) when `now_ms` was 0:
    /// SYN cookies count their epochs on the wall clock, which nodes share,
    /// rather than on the worker's clock. 0: on the worker's clock.
    pub wall_clock_ms: u64,
    /// Where the connection table's slab and index get their memory
    /// (default: the heap; rvsd asks for huge pages).
    pub table_mem: crate::conn::mem::TableMem,
    /// The CPU prefetch used to overlap a burst's table misses (`None`:
    /// plain loads; rvsd gives rvs-io's).
    pub prefetch: Option<crate::conn::mem::Prefetch>,
}

impl Default for WorkerConf {
    fn default() -> Self {
        WorkerConf {
            id: 0,
            conn_capacity: 1 << 20,
            neigh_capacity: 4096,
            pending_frames: 256,
            frame_size: 2048,
            expire_budget: 4096,
            hash_seed: None,
            wall_clock_ms: 0,
            table_mem: Default::default(),
            prefetch: None,
        }
    }
}

/// A neighbour learned by a worker, for the daemon to share with the others.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Learned {
    /// The neighbour's address.
    pub addr: Addr,
    /// Its MAC.
    pub mac: Mac,
    /// The port it is on.
    pub port: PortId,
}

/// One worker's pipeline and state.
pub struct Worker {
    snap: Arc<Snapshot>,
    st: State,
}

/// Everything a worker mutates. The pipeline's methods live here and take the
/// snapshot as a separate borrow, so no reference count is touched per packet.
struct State {
    /// Flow logs, when enabled.
    flowlog: Option<Box<FlowLog>>,
    id: u16,
    workers: u16,
    conns: ConnTable,
    neigh: NeighTable,
    slots: Slots,
    drops: Arc<DropCounters>,
    /// Published counts (live connections).
    gauges: Arc<WorkerGauges>,
    /// Persistence templates in `conns` (not connections: left out of the count).
    templates: usize,
    outbox: Outbox,
    learned: Vec<Learned>,
    /// MLD Queries heard ([`mld_rx`]).
    mld_heard: Vec<MldHeard>,
    /// [`ConnTable::inserts`] at the last expiry (its budget grows by the difference).
    inserts_at_tick: u64,
    /// Connection events for the sync sender; `None` (the default) when
    /// sync is off.
    sync_log: Option<sync::SyncLog>,
    /// Sync runs between active peers ([`Worker::set_sync_active`]).
    sync_active: bool,
    /// Since when connections from a hand-over may expire
    /// ([`Worker::start_imported`]); `None` before.
    import: Option<handover::ImportFloor>,
    conf: WorkerConf,
    /// The SYN proxy's cookie jar and kept frames.
    sp: synproxy::SynProxy,
    /// Limit state beyond the services' ([`crate::limit`]): the per-source
    /// table, empty until a per-source limit is set.
    limits: crate::limit::WorkerLimits,
    /// The rate of VIP packets to the kernel ([`kni_guard`]).
    kni_guard: kni_guard::KniGuard,
    /// The rate of the ICMP errors rvs sends ([`icmp_gen`]).
    icmp_rate: icmp_gen::IcmpRate,
    /// Fast-path events not yet taken ([`fast`]).
    fast: fast::FastLog,
    /// The next IPv4 identification of a NAT64 packet sent with DF clear
    /// ([`xlate`]).
    xlate_ident: u16,
}

/// Memory of a worker besides its connection table ([`Worker::memory`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerMemory {
    /// The local-address port pools (free-port ring, position index and
    /// free bitmap: about 4 bytes per port this worker owns, per address).
    pub port_pools: usize,
    /// The pools' half-open rings (8 bytes per owned port, per address).
    pub half_open: usize,
    /// The per-source limit table: sized by `limit_sources` once a
    /// per-source limit is set, 0 before.
    pub src_limits: usize,
}

const LEARNED_MAX: usize = 64;

/// Frames looked up together, overlapping their connection-table misses.
const BATCH: usize = 32;

impl Worker {
    /// A worker with all its tables preallocated.
    pub fn new(conf: WorkerConf, snap: Arc<Snapshot>, now_ms: u64) -> Worker {
        let st = State {
            flowlog: None,
            id: conf.id,
            workers: snap.workers,
            conns: match conf.hash_seed {
                Some(seed) => {
                    ConnTable::with_seed_in(conf.conn_capacity, now_ms, seed, conf.table_mem)
                }
                None => ConnTable::new_in(conf.conn_capacity, now_ms, conf.table_mem),
            },
            neigh: NeighTable::new(conf.neigh_capacity, conf.pending_frames, conf.frame_size),
            slots: Slots::default(),
            drops: Arc::new(DropCounters::default()),
            gauges: Arc::new(WorkerGauges::default()),
            templates: 0,
            outbox: Outbox::new(conf.pending_frames, conf.frame_size),
            learned: Vec::with_capacity(LEARNED_MAX),
            mld_heard: Vec::with_capacity(mld_rx::MLD_HEARD_MAX),
            inserts_at_tick: 0,
            sync_log: None,
            sync_active: false,
            import: None,
            sp: synproxy::SynProxy::new(conf.wall_clock_ms),
            limits: Default::default(),
            kni_guard: Default::default(),
            icmp_rate: Default::default(),
            fast: Default::default(),
            xlate_ident: 0,
            conf,
        };
        let mut w = Worker {
            snap: snap.clone(),
            st,
        };
        w.st.conns.set_prefetch(w.st.conf.prefetch);
        w.set_snapshot(snap, now_ms);
        w
    }

    /// Switches to a new configuration. Connections keep their dests, even
    /// ones the new configuration removed, until they expire.
    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>, now_ms: u64) {
        self.st.slots.sync(&snap, self.st.id);
        self.st.sync_limits(&snap, now_ms);
        self.st.kni_guard.configure(&snap, now_ms);
        self.st.icmp_rate.configure(snap.workers, now_ms);
        self.st.workers = snap.workers;
        let (n, size) = (self.st.conf.pending_frames, self.st.conf.frame_size);
        self.st.sp.configure(&snap, n, size);
        // Configured neighbours are static (they never age out); those the
        // new configuration dropped go.
        for (addr, _, _) in &self.snap.static_neigh {
            if !snap.static_neigh.iter().any(|(a, _, _)| a == addr) {
                let _ = self.st.neigh.del(addr);
            }
        }
        for (addr, mac, port) in &snap.static_neigh {
            // Only fails with every slot already static (more configured
            // neighbours than `neigh_capacity`): the first ones are kept.
            let _ = self.st.neigh.add_static(*addr, *mac, *port);
        }
        self.snap = snap;
    }

    /// The configuration in use.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snap
    }

    /// This worker's index.
    pub fn id(&self) -> u16 {
        self.st.id
    }

    /// This worker's drop counters (shared with readers).
    pub fn drops(&self) -> &Arc<DropCounters> {
        &self.st.drops
    }

    /// This worker's published gauges (shared with readers): the live
    /// connection count, updated after every burst and timer tick.
    pub fn gauges(&self) -> &Arc<WorkerGauges> {
        &self.st.gauges
    }

    /// Live connections now (persistence templates not counted).
    pub fn conn_count(&self) -> usize {
        self.st.conn_count()
    }

    /// The connection table (for listing and statistics).
    pub fn conns(&self) -> &ConnTable {
        &self.st.conns
    }

    /// Heap bytes of the worker's structures besides the connection table
    /// that grow with the connections it can hold or with its ports.
    pub fn memory(&self) -> WorkerMemory {
        let (mut port_pools, mut half_open) = (0, 0);
        for (_, p) in self.st.slots.pools.iter() {
            port_pools += p.pool.memory_bytes();
            half_open += p.half_open.memory_bytes();
        }
        WorkerMemory {
            port_pools,
            half_open,
            src_limits: self.st.limits.sources.memory_bytes(),
        }
    }

    /// Visits the connections (persistence templates left out) in slot order
    /// from slot `start`, looking at no more than `max_slots` slots; `f`
    /// returns false to stop after the connection it was given. Returns the
    /// slot to resume from, or `None` when the end of the table was reached.
    /// A connection that stays in the table is visited exactly once by a walk
    /// that resumes where the previous step stopped, however many steps it takes.
    pub fn scan_conns(
        &self,
        start: u32,
        max_slots: usize,
        mut f: impl FnMut(ConnId, &Conn) -> bool,
    ) -> Option<u32> {
        let t = &self.st.conns;
        let end = t.slots();
        let mut i = start as usize;
        let stop = i.saturating_add(max_slots).min(end);
        while i < stop {
            let id = ConnId(i as u32);
            i += 1;
            if let Some(c) = t.try_get(id).filter(|c| !c.is_template()) {
                if !f(id, c) {
                    break;
                }
            }
        }
        (i < end).then_some(i as u32)
    }

    /// The neighbour table.
    pub fn neigh(&self) -> &NeighTable {
        &self.st.neigh
    }

    /// Port pool usage of a local address on this worker: (used, free, misses).
    pub fn pool_usage(&self, addr: &Addr) -> Option<(u32, u32, u64)> {
        let s = self.st.slots.pool_of(addr)?;
        let p = self.st.slots.pools.get(s)?;
        Some((p.pool.used(), p.pool.free_count(), p.pool.misses()))
    }

    /// Frames produced besides verdicts (released by neighbour resolution);
    /// the I/O layer sends them with [`Worker::drain_outbox`], which tags
    /// those of VLAN devices.
    pub fn outbox(&mut self) -> &mut Outbox {
        &mut self.st.outbox
    }

    /// The fast-path events since the last call ([`FastEvent`]; only with
    /// [`crate::snapshot::PipelineConf::fast_path`]), removals first.
    pub fn take_fast(&mut self, f: impl FnMut(&FastEvent)) {
        self.st.take_fast(f);
    }

    /// Counts `packets` packets of `bytes` IP bytes that the I/O layer
    /// forwarded itself for an offered direction ([`FastEvent::Add`]'s
    /// `key`) since it last counted: they go to the connection's service and
    /// destination counters in that direction, and to its flow-log counts,
    /// as if the worker had forwarded them. False (nothing counted) when no
    /// connection has that direction any more.
    pub fn fast_counted(&mut self, key: &FastKey, packets: u64, bytes: u64) -> bool {
        self.st.fast_counted(key, packets, bytes)
    }

    /// Neighbours learned since the last call, for sharing with other workers.
    pub fn take_learned(&mut self, mut f: impl FnMut(Learned)) {
        for l in self.st.learned.drain(..) {
            f(l);
        }
    }

    /// Learns a neighbour (from another worker or the kernel) and releases the
    /// frames that waited for it into the outbox.
    pub fn learn_neigh(&mut self, addr: Addr, mac: Mac, port: PortId, now_ms: u64) {
        let st = &mut self.st;
        st.neigh.learn(addr, mac, port, now_ms);
        let outbox = &mut st.outbox;
        st.neigh.drain(&addr, |p, f| {
            if let Some(d) = f.get_mut(0..6) {
                d.copy_from_slice(&mac.0);
            }
            outbox.push(p, f);
        });
    }

    /// Timer work: expires connections (at least the configured budget, plus
    /// as many as were created since the last tick), resends the SYN proxy's
    /// unanswered SYNs to real servers (into the outbox) and ages neighbours.
    /// Call every few ms. Publishes `now_ms` as the worker's heartbeat
    /// ([`WorkerGauges::heartbeat_ms`]).
    pub fn tick(&mut self, now_ms: u64) {
        self.tick_fast(now_ms, None);
    }

    /// [`Worker::tick`] for a worker whose I/O layer forwards some flow
    /// directions itself ([`FastEvent`]): a due connection with offered
    /// directions stays (its timer re-armed for its state) when `moved` says
    /// one of them carried packets since it was last asked; `None`: such
    /// connections go when due, as others.
    pub fn tick_fast(&mut self, now_ms: u64, moved: Option<FastMoved<'_>>) {
        if let Some(fl) = self.st.flowlog.as_mut() {
            fl.now_ms = now_ms;
        }
        self.st.expire(&self.snap, now_ms, moved);
        self.st.synproxy_tick(&self.snap, now_ms);
        self.st.neigh.age(now_ms, 300_000, 3_000);
        self.st.publish_conn_count();
        self.st
            .gauges
            .heartbeat_ms
            .store(now_ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Starts flow logs: a record per connection made and ended from now
    /// on, up to `cap` records between two [`Worker::drain_flow_log`] calls
    /// (more are counted as lost). Allocates a counter per table slot.
    pub fn enable_flow_log(&mut self, cap: usize) {
        let slots = self.st.conns.capacity();
        self.st.flowlog = Some(Box::new(FlowLog::new(slots, cap)));
    }

    /// Hands the flow-log records made since the last call to `f`.
    pub fn drain_flow_log(&mut self, f: impl FnMut(&FlowRecord)) {
        if let Some(fl) = self.st.flowlog.as_mut() {
            fl.drain(f);
        }
    }

    /// Flow-log records lost because the buffer was full between two drains.
    pub fn flow_log_lost(&self) -> u64 {
        self.st.flowlog.as_ref().map_or(0, |fl| fl.lost())
    }

    /// Runs the pipeline over one frame.
    pub fn process(&mut self, pkt: &mut Packet<'_>, now_ms: u64) -> Verdict {
        let snap = &*self.snap;
        if let Some(fl) = self.st.flowlog.as_mut() {
            fl.now_ms = now_ms;
        }
        let v = match self.st.classify(snap, pkt, now_ms) {
            Err(v) => v,
            Ok((mut p, true)) => {
                let t = Tuple::new(p.proto, p.src, p.sport, p.dst, p.dport);
                let found = self.st.conns.lookup(&t);
                self.st.finish(snap, pkt, &mut p, found, now_ms)
            }
            Ok((mut p, false)) => self.st.slow_path(snap, pkt, &mut p, now_ms),
        };
        let v = match snap.has_vlans() {
            true => self.st.vlan_out(snap, pkt, v),
            false => v,
        };
        self.st.publish_conn_count();
        v
    }

    /// Runs the pipeline over a burst of frames, writing one verdict per
    /// frame. Connection lookups of up to 32 frames are made together so
    /// that their cache misses overlap.
    pub fn process_burst(
        &mut self,
        pkts: &mut [Packet<'_>],
        verdicts: &mut [Verdict],
        now_ms: u64,
    ) {
        let snap = &*self.snap;
        if let Some(fl) = self.st.flowlog.as_mut() {
            fl.now_ms = now_ms;
        }
        let n = pkts.len().min(verdicts.len());
        let mut base = 0;
        while base < n {
            let m = (n - base).min(BATCH);
            let mut parsed: [Option<Parsed>; BATCH] = [None; BATCH];
            let mut keys = [Tuple::default(); BATCH];
            let mut which = [0u8; BATCH];
            let mut k = 0;
            for i in 0..m {
                match self.st.classify(snap, &mut pkts[base + i], now_ms) {
                    Err(v) => verdicts[base + i] = v,
                    Ok((p, lookup)) => {
                        if lookup {
                            keys[k] = Tuple::new(p.proto, p.src, p.sport, p.dst, p.dport);
                            which[k] = i as u8;
                            k += 1;
                        } else {
                            verdicts[base + i] = Verdict::Consumed;
                        }
                        parsed[i] = Some(p);
                    }
                }
            }
            let mut found = [None; BATCH];
            self.st.conns.lookup_batch(&keys[..k], &mut found[..k]);
            let inserts = self.st.conns.inserts();
            let mut j = 0;
            for i in 0..m {
                let Some(mut p) = parsed[i] else { continue };
                let pkt = &mut pkts[base + i];
                verdicts[base + i] = if j < k && which[j] as usize == i {
                    let f = found[j];
                    j += 1;
                    // An earlier frame of this burst may have created the conn;
                    // look again only if the table gained one since the batch.
                    let f = match f {
                        None if self.st.conns.inserts() != inserts => {
                            self.st.conns.lookup(&keys[j - 1])
                        }
                        f => f,
                    };
                    self.st.finish(snap, pkt, &mut p, f, now_ms)
                } else {
                    self.st.slow_path(snap, pkt, &mut p, now_ms)
                };
            }
            base += m;
        }
        if snap.has_vlans() {
            for (pkt, v) in pkts.iter_mut().zip(verdicts.iter_mut()).take(n) {
                *v = self.st.vlan_out(snap, pkt, *v);
            }
        }
        self.st.publish_conn_count();
    }
}

impl State {
    fn conn_count(&self) -> usize {
        self.conns.len().saturating_sub(self.templates)
    }

    /// One relaxed store: readers see the count as of the last burst or tick.
    fn publish_conn_count(&self) {
        self.gauges.conns.store(
            self.conn_count() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn drop(&self, r: DropReason) -> Verdict {
        self.drops.count(r);
        Verdict::Drop(r)
    }

    fn kernel_or_drop(&self, snap: &Snapshot, port: PortId, r: DropReason) -> Verdict {
        match snap.ports.get(port as usize) {
            Some(pc) if pc.kni => Verdict::ToKernel(port),
            _ => self.drop(r),
        }
    }

    /// Validates the frame and handles what needs no connection lookup (ARP,
    /// ND, the exception path). `Ok((parsed, true))`: look the flow up.
    fn classify(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        now_ms: u64,
    ) -> Result<(Parsed, bool), Verdict> {
        let dmac = match self.l2(snap, pkt)? {
            Some(dmac) => dmac,
            // A VLAN device's frame, untagged, is classified as that device's.
            None => self.vlan_l2(snap, pkt)?,
        };
        let Some(frame) = pkt.buf.get(pkt.head..pkt.head + pkt.len) else {
            return Err(self.drop(DropReason::Truncated));
        };
        let v6 = match EthernetFrame::new_unchecked(frame).ethertype() {
            ethertype::ARP => return Err(self.arp(snap, pkt, now_ms)),
            ethertype::IPV4 => false,
            ethertype::IPV6 => true,
            _ => return Err(self.kernel_or_drop(snap, pkt.port, DropReason::UnknownProto)),
        };
        let verify = snap.conf.verify_l4_checksum && !pkt.csum_ok;
        let p = match parse_ip(frame, 14, v6, verify) {
            Ok(p) => p,
            Err(r) => return Err(self.drop(r)),
        };
        pkt.len = 14 + p.ip_len;
        if v6 && p.proto == crate::addr::proto::ICMPV6 && matches!(p.kind, L4::Other) {
            if let Some(v) = self.nd(snap, pkt, &p, now_ms) {
                return Err(v);
            }
        }
        if dmac.is_multicast() {
            // OSPF, VRRP and friends belong to the kernel.
            return Err(self.kernel_or_drop(snap, pkt.port, DropReason::NoService));
        }
        Ok((p, matches!(p.kind, L4::Tcp | L4::Udp | L4::Echo(_))))
    }

    /// The Ethernet header's checks: the destination MAC of an untagged
    /// frame, `None` for a tagged one.
    #[inline(always)]
    fn l2(&mut self, snap: &Snapshot, pkt: &Packet<'_>) -> Result<Option<Mac>, Verdict> {
        let Some(pc) = snap.ports.get(pkt.port as usize) else {
            return Err(self.drop(DropReason::BadPort));
        };
        let Some(frame) = pkt.buf.get(pkt.head..pkt.head + pkt.len) else {
            return Err(self.drop(DropReason::Truncated));
        };
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Err(self.drop(DropReason::Truncated));
        };
        let dmac = eth.dst();
        if dmac != pc.mac && !dmac.is_multicast() {
            return Err(self.drop(DropReason::OtherHost));
        }
        Ok((eth.header_len() == 14).then_some(dmac))
    }

    /// A tagged frame: [`State::vlan_in`], then the untagged frame's checks
    /// as its VLAN device's (a second tag goes where `vlan_in` sends it).
    #[cold]
    #[inline(never)]
    fn vlan_l2(&mut self, snap: &Snapshot, pkt: &mut Packet<'_>) -> Result<Mac, Verdict> {
        self.vlan_in(snap, pkt)?;
        match self.l2(snap, pkt)? {
            Some(dmac) => Ok(dmac),
            None => {
                // A VLAN device's port: never `Ok`.
                self.vlan_in(snap, pkt)?;
                Err(self.drop(DropReason::Malformed))
            }
        }
    }

    /// After the lookup: forward along the connection, or take the slow path.
    #[inline]
    fn finish(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        found: Option<(ConnId, Dir)>,
        now_ms: u64,
    ) -> Verdict {
        match found {
            Some((id, dir)) => self.forward(snap, pkt, p, id, dir, now_ms),
            None => self.slow_path(snap, pkt, p, now_ms),
        }
    }

    /// Packets without a connection: new connections, packets for rvs itself,
    /// ICMP errors, the exception path.
    fn slow_path(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        now_ms: u64,
    ) -> Verdict {
        if p.kind == L4::IcmpError {
            return self.icmp_error(snap, pkt, p, now_ms);
        }
        if matches!(p.kind, L4::Tcp | L4::Udp) {
            if let Some(i) = snap.vs_lookup(p.proto, &p.dst, p.dport) {
                if p.kind == L4::Tcp && snap.services[i].synproxy {
                    return self.synproxy_new(snap, i, pkt, p, now_ms);
                }
                return match self.new_conn(snap, i, pkt.port, p, now_ms) {
                    Ok(id) => {
                        if p.kind == L4::Tcp {
                            let isn = rewrite::tcp_seq(pkt.frame(), p);
                            self.pp_start(snap, i, id, isn.wrapping_add(1));
                        }
                        self.forward(snap, pkt, p, id, Dir::In, now_ms)
                    }
                    Err(r) => self.drop(r),
                };
            }
        }
        let vip = snap.is_vip(&p.dst);
        if vip || snap.if_addr(&p.dst).is_some() {
            if p.kind == L4::Echo(true) {
                return self.echo_reply(pkt, p);
            }
            if vip {
                if let Err(r) = self.kni_guard.admit(now_ms) {
                    return self.drop(r);
                }
            }
            return self.kernel_or_drop(snap, pkt.port, DropReason::NoService);
        }
        let route = snap.routes.lookup(&p.dst);
        if route.is_some_and(|r| r.scope == Scope::KniHost) {
            return self.kernel_or_drop(snap, pkt.port, DropReason::NoService);
        }
        if matches!(p.kind, L4::Tcp | L4::Udp | L4::Echo(true)) {
            let oif = route.map(|r| r.port);
            for &i in snap.match_services() {
                let m = match &snap.services[i].key {
                    crate::service::ServiceKey::Match(m) => m,
                    _ => continue,
                };
                if m.matches(
                    &Tuple::new(p.proto, p.src, p.sport, p.dst, p.dport),
                    pkt.port,
                    oif,
                ) {
                    return match self.new_conn(snap, i, pkt.port, p, now_ms) {
                        Ok(id) => self.forward(snap, pkt, p, id, Dir::In, now_ms),
                        Err(r) => self.drop(r),
                    };
                }
            }
        }
        let r = if p.kind == L4::Tcp && p.tcp_flags & crate::wire::tcp::flags::SYN == 0 {
            DropReason::NoConn
        } else {
            DropReason::NoService
        };
        if route.is_none() {
            // Not for rvs and nowhere to go: the kernel's (DPVS hands a
            // route miss to the KNI device), e.g. an address on `dpdk1.kni`.
            return self.kernel_or_drop(snap, pkt.port, r);
        }
        self.drop(r)
    }

    /// Routes the packet toward `target`, writes the Ethernet header and
    /// decides the verdict. `on_link` ignores the route's gateway (DR).
    pub(super) fn send(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &Parsed,
        target: Addr,
        on_link: bool,
        now_ms: u64,
    ) -> Verdict {
        let Some(r) = snap.routes.lookup(&target) else {
            return self.drop(DropReason::NoRoute);
        };
        let port = r.port;
        let Some(pc) = snap.ports.get(port as usize) else {
            return self.drop(DropReason::BadPort);
        };
        if p.ip_len > pc.mtu as usize {
            // On-link (DR) packets are as received: the sender can be told.
            return match on_link {
                true => {
                    self.send_icmp_error(snap, pkt, p, IcmpError::TooBig { mtu: pc.mtu }, now_ms)
                }
                false => self.drop(DropReason::TooBig),
            };
        }
        let nh = if on_link {
            target
        } else {
            r.gateway.unwrap_or(target)
        };
        let f = &mut pkt.buf[pkt.head..pkt.head + pkt.len];
        f[6..12].copy_from_slice(&pc.mac.0);
        if let Some((mac, _)) = self.neigh.lookup(&nh) {
            f[0..6].copy_from_slice(&mac.0);
            return Verdict::Transmit(port);
        }
        match self.neigh.queue(nh, port, f, now_ms) {
            QueueResult::Queued { solicit: true } => {
                match host::write_solicit(pkt, snap, port, &nh, r.src) {
                    true => Verdict::Transmit(port),
                    false => Verdict::Consumed,
                }
            }
            QueueResult::Queued { solicit: false } => Verdict::Consumed,
            QueueResult::Dropped => self.drop(DropReason::NeighPendingFull),
        }
    }
}

#[cfg(test)]
mod tests;

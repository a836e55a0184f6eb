//! Worker-local state attached to configuration objects: scheduler state and
//! connection counts per service and dest, port pools per local address.
//!
//! Connections refer to these slots by index. A slot outlives its object's
//! removal from the configuration while connections still use it, as LVS keeps
//! removed dests in a trash list until their connections are gone.

use std::sync::Arc;

use crate::addr::Addr;
use crate::hash::FastMap;
use crate::sapool::PortPool;
use crate::sched::{DestSet, SchedState};
use crate::service::{Dest, Service};
use crate::snapshot::Snapshot;

/// Marks "no slot".
pub(crate) const NONE: u32 = u32::MAX;

/// A vector of optional items with a free list, indexed by `u32`.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    pub fn insert(&mut self, t: T) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.items[i as usize] = Some(t);
                i
            }
            None => {
                self.items.push(Some(t));
                (self.items.len() - 1) as u32
            }
        }
    }

    pub fn remove(&mut self, i: u32) -> Option<T> {
        let t = self.items.get_mut(i as usize)?.take();
        if t.is_some() {
            self.free.push(i);
        }
        t
    }

    #[inline]
    pub fn get(&self, i: u32) -> Option<&T> {
        self.items.get(i as usize).and_then(|x| x.as_ref())
    }

    #[inline]
    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.items.get_mut(i as usize).and_then(|x| x.as_mut())
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        self.items
            .iter_mut()
            .enumerate()
            .filter_map(|(i, x)| x.as_mut().map(|t| (i as u32, t)))
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, x)| x.as_ref().map(|t| (i as u32, t)))
    }
}

/// Worker state of one dest.
#[derive(Debug)]
pub(crate) struct DestSlot {
    pub dest: Arc<Dest>,
    pub active: u32,
    pub inactive: u32,
    pub overloaded: bool,
    pub refs: u32,
    pub live: bool,
}

impl DestSlot {
    /// Updates the overload flag after the connection count changed. The
    /// thresholds are divided among workers, since each counts only its own.
    pub fn update_overload(&mut self, workers: u32) {
        let u = self.dest.u_threshold;
        if u == 0 {
            self.overloaded = false;
            return;
        }
        let per = u.div_ceil(workers.max(1));
        let l = match self.dest.l_threshold {
            // In u64: `per * 3` overflows u32 for thresholds above ~1.4e9.
            0 => (u64::from(per) * 3 / 4) as u32,
            l => l.div_ceil(workers.max(1)),
        };
        let n = self.active + self.inactive;
        if n >= per {
            self.overloaded = true;
        } else if n < l.max(1) || (self.overloaded && n < l) {
            self.overloaded = false;
        }
    }
}

/// Worker state of one service.
#[derive(Debug)]
pub(crate) struct SvcSlot {
    pub svc: Arc<Service>,
    pub sched: SchedState,
    /// Dest slot of each position in `svc.dests`.
    pub dests: Vec<u32>,
    /// Pool slot of each entry of `svc.laddrs`.
    pub pools: Vec<u32>,
    /// Next local address to try (round robin).
    pub laddr_next: usize,
    pub refs: u32,
    pub live: bool,
}

/// Worker state of one pooled local address.
#[derive(Debug)]
pub(crate) struct PoolSlot {
    pub addr: Addr,
    pub pool: PortPool,
    pub refs: u32,
    pub live: bool,
    /// Connections holding its ports, oldest first (see `half_open`).
    pub half_open: super::half_open::HalfOpen,
}

/// All worker-local slots, with the maps from configuration identity to slot.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    pub svcs: Slab<SvcSlot>,
    pub dests: Slab<DestSlot>,
    pub pools: Slab<PoolSlot>,
    svc_by_id: FastMap<u32, u32>,
    dest_by_id: FastMap<u32, u32>,
    pool_by_addr: FastMap<Addr, u32>,
    /// Service slot of each snapshot service index.
    pub svc_of_index: Vec<u32>,
}

/// The scheduler's view of one service's dests on this worker.
pub(crate) struct DestView<'a> {
    pub idx: &'a [u32],
    pub dests: &'a Slab<DestSlot>,
}

impl DestView<'_> {
    #[inline]
    fn slot(&self, i: usize) -> Option<&DestSlot> {
        self.idx.get(i).and_then(|s| self.dests.get(*s))
    }
}

impl DestSet for DestView<'_> {
    fn len(&self) -> usize {
        self.idx.len()
    }
    fn weight(&self, i: usize) -> u32 {
        self.slot(i).map_or(0, |d| d.dest.weight)
    }
    fn active(&self, i: usize) -> u32 {
        self.slot(i).map_or(0, |d| d.active)
    }
    fn inactive(&self, i: usize) -> u32 {
        self.slot(i).map_or(0, |d| d.inactive)
    }
    fn available(&self, i: usize) -> bool {
        self.slot(i)
            .is_some_and(|d| !d.overloaded && d.dest.weight > 0)
    }
}

impl Slots {
    fn pool_slot(&mut self, addr: Addr, worker: u16, snap: &Snapshot) -> u32 {
        if let Some(&s) = self.pool_by_addr.get(&addr) {
            if let Some(p) = self.pools.get_mut(s) {
                p.live = true;
            }
            return s;
        }
        let pool = PortPool::new(
            worker,
            snap.workers,
            snap.conf.min_lport,
            snap.conf.max_lport,
        );
        let half_open = super::half_open::HalfOpen::new(pool.owned());
        let s = self.pools.insert(PoolSlot {
            addr,
            pool,
            refs: 0,
            live: true,
            half_open,
        });
        self.pool_by_addr.insert(addr, s);
        s
    }

    /// Attaches slots to every object of a new snapshot, keeping the state of
    /// objects that were already known, and frees slots nothing uses any more.
    pub fn sync(&mut self, snap: &Snapshot, worker: u16) {
        for (_, s) in self.svcs.iter_mut() {
            s.live = false;
        }
        for (_, d) in self.dests.iter_mut() {
            d.live = false;
        }
        for (_, p) in self.pools.iter_mut() {
            p.live = false;
        }
        self.svc_of_index.clear();
        for svc in &snap.services {
            let mut dslots = Vec::with_capacity(svc.dests.len());
            for d in &svc.dests {
                let slot = match self.dest_by_id.get(&d.id) {
                    Some(&s) if self.dests.get(s).is_some() => {
                        let ds = self.dests.get_mut(s).expect("checked above");
                        ds.dest = d.clone();
                        ds.live = true;
                        ds.update_overload(snap.workers as u32);
                        s
                    }
                    _ => {
                        let s = self.dests.insert(DestSlot {
                            dest: d.clone(),
                            active: 0,
                            inactive: 0,
                            overloaded: false,
                            refs: 0,
                            live: true,
                        });
                        self.dest_by_id.insert(d.id, s);
                        s
                    }
                };
                dslots.push(slot);
            }
            let pslots: Vec<u32> = svc
                .laddrs
                .iter()
                .map(|l| self.pool_slot(l.addr, worker, snap))
                .collect();
            let slot = match self.svc_by_id.get(&svc.id) {
                Some(&s) if self.svcs.get(s).is_some() => {
                    let ss = self.svcs.get_mut(s).expect("checked above");
                    if ss.dests != dslots {
                        ss.sched = SchedState::default();
                    }
                    ss.svc = svc.clone();
                    ss.dests = dslots;
                    ss.pools = pslots;
                    ss.live = true;
                    s
                }
                _ => {
                    let s = self.svcs.insert(SvcSlot {
                        svc: svc.clone(),
                        sched: SchedState::default(),
                        dests: dslots,
                        pools: pslots,
                        laddr_next: worker as usize,
                        refs: 0,
                        live: true,
                    });
                    self.svc_by_id.insert(svc.id, s);
                    s
                }
            };
            self.svc_of_index.push(slot);
        }
        for a in snap.pool_addrs() {
            self.pool_slot(*a, worker, snap);
        }
        self.gc();
    }

    fn gc(&mut self) {
        let dead: Vec<u32> = self
            .svcs
            .iter()
            .filter(|(_, s)| !s.live && s.refs == 0)
            .map(|(i, _)| i)
            .collect();
        for i in dead {
            if let Some(s) = self.svcs.remove(i) {
                self.svc_by_id.remove(&s.svc.id);
            }
        }
        let dead: Vec<u32> = self
            .dests
            .iter()
            .filter(|(_, d)| !d.live && d.refs == 0)
            .map(|(i, _)| i)
            .collect();
        for i in dead {
            if let Some(d) = self.dests.remove(i) {
                self.dest_by_id.remove(&d.dest.id);
            }
        }
        let dead: Vec<u32> = self
            .pools
            .iter()
            .filter(|(_, p)| !p.live && p.refs == 0)
            .map(|(i, _)| i)
            .collect();
        for i in dead {
            if let Some(p) = self.pools.remove(i) {
                self.pool_by_addr.remove(&p.addr);
            }
        }
    }

    /// The pool slot of a local address, if it has one.
    pub fn pool_of(&self, addr: &Addr) -> Option<u32> {
        self.pool_by_addr.get(addr).copied()
    }

    /// Drops one reference to each slot a connection held; frees slots that are
    /// out of the configuration and no longer used.
    pub fn release(&mut self, svc: u32, dest: u32, pool: u32, lport: u16) {
        let mut dead = false;
        if let Some(s) = self.svcs.get_mut(svc) {
            s.refs = s.refs.saturating_sub(1);
            dead |= !s.live && s.refs == 0;
        }
        if let Some(d) = self.dests.get_mut(dest) {
            d.refs = d.refs.saturating_sub(1);
            dead |= !d.live && d.refs == 0;
        }
        if pool != NONE {
            if let Some(p) = self.pools.get_mut(pool) {
                p.pool.free(lport);
                p.refs = p.refs.saturating_sub(1);
                dead |= !p.live && p.refs == 0;
            }
        }
        if dead {
            self.gc();
        }
    }
}

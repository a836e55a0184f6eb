//! The XDP fast path's glue ([`crate::config::FastPathConf::Xdp`]): each
//! worker applies its pipeline's [`FastEvent`]s to the ports' fast-path maps
//! (one batched update per port per round), at expiry tells the pipeline
//! whether an offered direction's packet counter moved, and every
//! [`COUNT_EVERY_MS`] (and when a direction is withdrawn, before its entry
//! goes) adds what the program forwarded since the last read to the
//! service, destination and flow-log counters ([`Worker::fast_counted`])
//! and to the port's `fast_packets`.

use std::collections::HashMap;
use std::sync::Arc;

use rvs_core::pipeline::{FastEvent, FastKey, Worker};
use rvs_core::stats::bump;
use rvs_io::af_xdp::{FastCount, FastFlow, FastMap};

use crate::runtime::PortCounters;

/// How often (worker clock, ms) a worker reads the counters of the
/// directions it offered: the delay of the fast path's share in the stats.
pub const COUNT_EVERY_MS: u64 = 500;

/// The program counts Ethernet frames; the stats count IP bytes (the fast
/// path takes untagged IPv4 frames only).
const ETH_HLEN: u64 = 14;

/// Every port's fast-path map and interface index, by port.
#[derive(Clone, Default)]
pub struct FastMaps {
    /// The map of each port (`None`: the port has none).
    pub maps: Vec<Option<Arc<FastMap>>>,
    /// The interface index of each port.
    pub ifindex: Vec<u32>,
}

/// One worker's view: the maps, what it installed and the counters it saw.
pub struct FastGlue {
    maps: FastMaps,
    /// What was last read of each installed direction.
    seen: HashMap<FastKey, Seen>,
    /// Additions of this round, by port.
    adds: Vec<Vec<FastFlow>>,
    /// Removals of this round.
    removes: Vec<FastKey>,
    /// When the counters were last read (worker clock, ms).
    counted_ms: u64,
}

/// The counters of one installed direction as last read.
#[derive(Copy, Clone, Default)]
struct Seen {
    /// Packets when the expiry last asked ([`FastGlue::moved`]).
    asked: u64,
    /// Packets and bytes already added to the stats.
    counted: FastCount,
}

fn flow(k: &FastKey) -> FastFlow {
    FastFlow::matching(k.proto, k.src, k.dst, k.sport, k.dport)
}

impl FastGlue {
    /// A worker's glue over `maps`.
    pub fn new(maps: FastMaps) -> FastGlue {
        let n = maps.maps.len();
        FastGlue {
            maps,
            seen: HashMap::new(),
            adds: (0..n).map(|_| Vec::new()).collect(),
            removes: Vec::new(),
            counted_ms: 0,
        }
    }

    fn map(&self, port: u16) -> Option<&Arc<FastMap>> {
        self.maps.maps.get(port as usize)?.as_ref()
    }

    /// Applies the worker's events: removals one by one (what the direction
    /// forwarded since the last read counted first), additions in one batch
    /// per port.
    pub fn apply(&mut self, worker: &mut Worker, counters: &[PortCounters]) {
        let mut events = std::mem::take(&mut self.adds);
        let mut removes = std::mem::take(&mut self.removes);
        worker.take_fast(|e| match *e {
            FastEvent::Remove(k) => removes.push(k),
            FastEvent::Add {
                key,
                new,
                dmac,
                smac,
            } => {
                let Some(ifindex) = self.maps.ifindex.get(new.port as usize) else {
                    return;
                };
                if let Some(v) = events.get_mut(key.port as usize) {
                    v.push(FastFlow {
                        new_saddr: new.src,
                        new_daddr: new.dst,
                        new_sport: new.sport,
                        new_dport: new.dport,
                        dmac: dmac.0,
                        smac: smac.0,
                        ifindex: *ifindex,
                        ..flow(&key)
                    });
                    self.seen.insert(key, Seen::default());
                }
            }
        });
        // Removals first: a key removed and added again this round is added.
        for k in removes.drain(..) {
            self.count_one(worker, counters, &k);
            self.seen.remove(&k);
            if let Some(m) = self.map(k.port) {
                if let Err(e) = m.remove(&flow(&k)) {
                    tracing::warn!("fast path: removing a flow: {e}");
                }
            }
        }
        self.removes = removes;
        for (port, v) in events.iter_mut().enumerate() {
            if v.is_empty() {
                continue;
            }
            if let Some(Some(m)) = self.maps.maps.get(port) {
                if let Err(e) = m.insert_batch(v) {
                    tracing::warn!("fast path: installing {} flows: {e}", v.len());
                }
            }
            v.clear();
        }
        self.adds = events;
    }

    /// The program's counters of the direction `k` (`None`: no map, no
    /// entry, or the lookup failed).
    fn read(&self, k: &FastKey) -> Option<FastCount> {
        self.map(k.port)?.count(&flow(k)).ok().flatten()
    }

    /// Whether the direction `k` carried packets since the last question.
    pub fn moved(&mut self, k: &FastKey) -> bool {
        let Some(now) = self.read(k).map(|c| c.packets) else {
            return false;
        };
        let s = self.seen.entry(*k).or_default();
        let last = std::mem::replace(&mut s.asked, now);
        now != last
    }

    /// Adds what the direction `k` forwarded since its last read to the
    /// worker's stats and to its port's `fast_packets`.
    fn count_one(&mut self, worker: &mut Worker, counters: &[PortCounters], k: &FastKey) {
        let Some(now) = self.read(k) else {
            return;
        };
        let Some(s) = self.seen.get_mut(k) else {
            return;
        };
        let packets = now.packets.wrapping_sub(s.counted.packets);
        if packets == 0 {
            return;
        }
        let bytes = now.bytes.wrapping_sub(s.counted.bytes);
        s.counted = now;
        worker.fast_counted(k, packets, bytes.saturating_sub(packets * ETH_HLEN));
        if let Some(pc) = counters.get(k.port as usize) {
            bump(&pc.fast_packets, packets);
        }
    }

    /// Adds what every offered direction forwarded since its last read to
    /// the stats, when [`COUNT_EVERY_MS`] passed since the last time.
    pub fn count(&mut self, worker: &mut Worker, counters: &[PortCounters], now: u64) {
        if now < self.counted_ms + COUNT_EVERY_MS {
            return;
        }
        self.counted_ms = now;
        let keys: Vec<FastKey> = self.seen.keys().copied().collect();
        for k in &keys {
            self.count_one(worker, counters, k);
        }
    }

    /// Runs the worker's timers, asking about offered directions, and
    /// counts what they forwarded ([`FastGlue::count`]).
    pub fn tick(&mut self, worker: &mut Worker, counters: &[PortCounters], now: u64) {
        self.count(worker, counters, now);
        worker.tick_fast(now, Some(&mut |k: &FastKey| self.moved(k)));
    }
}

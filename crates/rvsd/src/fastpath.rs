//! The XDP fast path's glue ([`crate::config::FastPathConf::Xdp`]): each
//! worker applies its pipeline's [`FastEvent`]s to the ports' fast-path maps
//! (one batched update per port per round), and at expiry tells the
//! pipeline whether an offered direction's packet counter moved.

use std::collections::HashMap;
use std::sync::Arc;

use rvs_core::pipeline::{FastEvent, FastKey, Worker};
use rvs_io::af_xdp::{FastFlow, FastMap};

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
    /// Packets last seen per installed direction.
    seen: HashMap<FastKey, u64>,
    /// Additions of this round, by port.
    adds: Vec<Vec<FastFlow>>,
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
        }
    }

    fn map(&self, port: u16) -> Option<&Arc<FastMap>> {
        self.maps.maps.get(port as usize)?.as_ref()
    }

    /// Applies the worker's events: removals one by one, additions in one
    /// batch per port.
    pub fn apply(&mut self, worker: &mut Worker) {
        let mut events = std::mem::take(&mut self.adds);
        worker.take_fast(|e| match *e {
            FastEvent::Remove(k) => {
                self.seen.remove(&k);
                if let Some(m) = self.map(k.port) {
                    if let Err(e) = m.remove(&flow(&k)) {
                        tracing::warn!("fast path: removing a flow: {e}");
                    }
                }
            }
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
                    self.seen.insert(key, 0);
                }
            }
        });
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

    /// Whether the direction `k` carried packets since the last question.
    pub fn moved(&mut self, k: &FastKey) -> bool {
        let Some(m) = self.map(k.port) else {
            return false;
        };
        let now = match m.count(&flow(k)) {
            Ok(Some(c)) => c.packets,
            _ => return false,
        };
        let last = self.seen.insert(*k, now).unwrap_or(0);
        now != last
    }

    /// Runs the worker's timers, asking about offered directions.
    pub fn tick(&mut self, worker: &mut Worker, now: u64) {
        worker.tick_fast(now, Some(&mut |k: &FastKey| self.moved(k)));
    }
}

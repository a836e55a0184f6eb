//! The XDP fast path's glue ([`crate::config::FastPathConf::Xdp`]): each
//! worker applies its pipeline's [`FastEvent`]s to the ports' fast-path maps
//! (one batched update per port per round), at expiry tells the pipeline
//! whether an offered direction's packet counter moved, and once per
//! [`COUNT_EVERY_MS`] (and when a direction is withdrawn, before its entry
//! goes) adds what the program forwarded since the last read to the
//! service, destination and flow-log counters ([`Worker::fast_counted`])
//! and to the port's `fast_packets`. Each read is a map lookup (a system
//! call), so a pass over the offered directions is spread over the timer
//! ticks of the period ([`CountPacer`]) rather than done at once: at
//! 100,000 directions one pass costs about 0.1 s, which in one piece
//! stalled the worker's receive that long.

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
    /// Which directions to read this tick.
    pacer: CountPacer<FastKey>,
    /// The directions of this tick (reused).
    due: Vec<FastKey>,
}

/// Spreads a pass over a set of keys across the ticks of a period: each
/// tick takes its share, so that the whole set is visited once per
/// `period_ms` (a key added meanwhile waits for the next pass; one
/// removed is skipped by the caller). No allocation once warm: the keys of
/// a pass are copied into a reused vector.
#[derive(Debug)]
pub struct CountPacer<K> {
    pending: Vec<K>,
    /// How many keys the pass started with.
    pass_len: usize,
    /// When the current pass started (worker clock, ms).
    pass_ms: u64,
    period_ms: u64,
}

impl<K: Copy> CountPacer<K> {
    /// A pacer visiting every key once per `period_ms`.
    pub fn new(period_ms: u64) -> CountPacer<K> {
        CountPacer {
            pending: Vec::new(),
            pass_len: 0,
            pass_ms: 0,
            period_ms: period_ms.max(1),
        }
    }

    /// The keys to visit at `now`: a new pass over `keys` starts when the
    /// last one ended and a period passed since it began; then each call
    /// takes the share due by `now` (all that is left once the period
    /// ran out).
    pub fn due<I: IntoIterator<Item = K>>(&mut self, now: u64, keys: impl FnOnce() -> I) -> Vec<K> {
        let mut out = Vec::new();
        self.due_into(now, keys, &mut out);
        out
    }

    /// As [`CountPacer::due`], into `out` (cleared first).
    pub fn due_into<I: IntoIterator<Item = K>>(
        &mut self,
        now: u64,
        keys: impl FnOnce() -> I,
        out: &mut Vec<K>,
    ) {
        out.clear();
        if self.pending.is_empty() {
            if now < self.pass_ms + self.period_ms && self.pass_len > 0 {
                return;
            }
            self.pending.extend(keys());
            self.pass_len = self.pending.len();
            self.pass_ms = now;
            if self.pass_len == 0 {
                return;
            }
        }
        let elapsed = now.saturating_sub(self.pass_ms);
        let done = self.pass_len - self.pending.len();
        let due = if elapsed >= self.period_ms {
            self.pass_len
        } else {
            // At least one key per call, so a pass always ends.
            ((self.pass_len as u64 * (elapsed + 1)).div_ceil(self.period_ms) as usize)
                .clamp(done + 1, self.pass_len)
        };
        let n = due.saturating_sub(done).min(self.pending.len());
        let at = self.pending.len() - n;
        out.extend(self.pending.drain(at..));
    }
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
            pacer: CountPacer::new(COUNT_EVERY_MS),
            due: Vec::new(),
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

    /// Adds what this tick's share of the offered directions forwarded
    /// since their last read to the stats (each direction once per
    /// [`COUNT_EVERY_MS`]).
    pub fn count(&mut self, worker: &mut Worker, counters: &[PortCounters], now: u64) {
        let mut due = std::mem::take(&mut self.due);
        let seen = &self.seen;
        self.pacer.due_into(now, || seen.keys().copied(), &mut due);
        for k in &due {
            self.count_one(worker, counters, k);
        }
        self.due = due;
    }

    /// Runs the worker's timers, asking about offered directions, and
    /// counts what they forwarded ([`FastGlue::count`]).
    pub fn tick(&mut self, worker: &mut Worker, counters: &[PortCounters], now: u64) {
        self.count(worker, counters, now);
        worker.tick_fast(now, Some(&mut |k: &FastKey| self.moved(k)));
    }
}

#[cfg(test)]
mod tests {
    use super::CountPacer;

    /// Ticks every 10 ms over two periods: (tick, keys visited).
    fn run(keys: u32, period: u64) -> Vec<(u64, Vec<u32>)> {
        let mut p = CountPacer::new(period);
        (0..=2 * period / 10)
            .map(|i| {
                let now = 1000 + i * 10;
                (now, p.due(now, || 0..keys))
            })
            .collect()
    }

    #[test]
    fn a_pass_is_spread_over_the_ticks_of_a_period_and_visits_each_key_once() {
        let ticks = run(100_000, 500);
        // The pass ends at the latest on the first tick after its period.
        let first: Vec<u32> = ticks
            .iter()
            .filter(|(t, _)| *t <= 1500)
            .flat_map(|(_, k)| k.iter().copied())
            .collect();
        let mut sorted = first.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 100_000, "every key once in the first pass");
        assert_eq!(first.len(), 100_000, "and none twice");
        let most = ticks.iter().map(|(_, k)| k.len()).max().unwrap();
        assert!(
            most <= 100_000 / 50 + 1,
            "no tick reads more than its share of 50 ticks: {most}"
        );
        let second: usize = ticks
            .iter()
            .filter(|(t, _)| *t > 1500 && *t <= 2010)
            .map(|(_, k)| k.len())
            .sum();
        assert!(second >= 98_000, "the next period is a new pass: {second}");
    }

    #[test]
    fn few_keys_are_read_once_per_period_not_every_tick() {
        let ticks = run(3, 500);
        let in_period = |from: u64| -> usize {
            ticks
                .iter()
                .filter(|(t, _)| (from..from + 500).contains(t))
                .map(|(_, k)| k.len())
                .sum()
        };
        assert_eq!((in_period(1000), in_period(1500)), (3, 3), "{ticks:?}");
        let mut none = CountPacer::<u32>::new(500);
        assert!(none.due(0, || 0..0).is_empty());
        assert_eq!(none.due(10, || 0..2), vec![1], "keys that appear are read");
    }
}

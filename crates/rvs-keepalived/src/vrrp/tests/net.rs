//! A tiny simulated LAN for scenario tests: instances exchange their
//! adverts in simulated time, with a fixed latency. Multicast adverts reach
//! every other running node; unicast ones the node whose source address is
//! the destination. Everything is deterministic: at equal times, deliveries
//! (in sending order) come before timers (in node order).

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::vrrp::packet::{IpMeta, TTL};
use crate::vrrp::{Action, Event, Instance, InstanceConf, State};

/// One router: its instance, whether its process runs, what it did.
pub struct Node {
    /// The state machine.
    pub vi: Instance,
    /// False once killed: it neither sends nor receives nor times out.
    pub alive: bool,
    /// Every action with the time it was emitted.
    pub log: Vec<(u64, Action)>,
    /// The virtual addresses this node holds (from Add/RemoveVips).
    pub vips: BTreeSet<IpAddr>,
    /// Whether a link cut isolates it (sends and receives nothing).
    pub isolated: bool,
}

/// Rewrites the adverts of node `.0` before they leave.
pub type Tamper = (usize, fn(&mut Vec<u8>));

struct InFlight {
    at: u64,
    seq: u64,
    to: usize,
    meta: IpMeta,
    payload: Vec<u8>,
}

/// The simulated network.
pub struct Net {
    /// Simulated time in ms.
    pub now: u64,
    /// The routers.
    pub nodes: Vec<Node>,
    /// One-way latency in ms.
    pub latency: u64,
    /// The TTL adverts arrive with.
    pub ttl: u8,
    /// Tamper with adverts from node `.0` (e.g. wrong password) before they
    /// leave.
    pub tamper: Option<Tamper>,
    queue: Vec<InFlight>,
    seq: u64,
}

impl Net {
    /// A network of the given instances, none started, latency 0.
    pub fn new(confs: Vec<InstanceConf>) -> Net {
        let nodes = confs
            .into_iter()
            .map(|c| Node {
                vi: Instance::new(c).expect("valid configuration"),
                alive: true,
                log: Vec::new(),
                vips: BTreeSet::new(),
                isolated: false,
            })
            .collect();
        Net {
            now: 0,
            nodes,
            latency: 0,
            ttl: TTL,
            tamper: None,
            queue: Vec::new(),
            seq: 0,
        }
    }

    /// Feeds an event to node `i` now and routes what it sends.
    pub fn event(&mut self, i: usize, ev: Event<'_>) {
        if !self.nodes[i].alive {
            return;
        }
        let mut out = Vec::new();
        self.nodes[i].vi.handle(self.now, ev, &mut out);
        for a in out {
            self.apply(i, &a);
            self.nodes[i].log.push((self.now, a));
        }
    }

    /// Starts node `i` now.
    pub fn start(&mut self, i: usize) {
        self.event(i, Event::Startup);
    }

    /// Kills node `i` now (a crash of the whole node: no priority-0 advert,
    /// and its addresses answer no more).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
        self.nodes[i].vips.clear();
    }

    fn apply(&mut self, from: usize, a: &Action) {
        match a {
            Action::SendAdvert {
                src, dst, payload, ..
            } => self.send(from, *src, *dst, payload),
            Action::AddVips(v) => self.nodes[from].vips.extend(v.iter().map(|v| v.addr)),
            Action::RemoveVips(v) => {
                for x in v {
                    self.nodes[from].vips.remove(&x.addr);
                }
            }
            _ => {}
        }
    }

    fn send(&mut self, from: usize, src: IpAddr, dst: IpAddr, payload: &[u8]) {
        if self.nodes[from].isolated {
            return;
        }
        let mut payload = payload.to_vec();
        if let Some((who, f)) = self.tamper {
            if who == from {
                f(&mut payload);
            }
        }
        for to in 0..self.nodes.len() {
            let n = &self.nodes[to];
            let reaches = if dst.is_multicast() {
                to != from
            } else {
                n.vi.conf().src == dst
            };
            if reaches {
                let meta = IpMeta {
                    src,
                    dst,
                    ttl: Some(self.ttl),
                };
                let (at, seq) = (self.now + self.latency, self.seq);
                self.seq += 1;
                self.queue.push(InFlight {
                    at,
                    seq,
                    to,
                    meta,
                    payload: payload.clone(),
                });
            }
        }
    }

    /// The time of the next delivery or timer, if any.
    fn next_time(&self) -> Option<u64> {
        let d = self.queue.iter().map(|f| f.at).min();
        let t = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .filter_map(|n| n.vi.next_timeout())
            .min();
        d.into_iter().chain(t).min()
    }

    /// Processes one instant's worth of work due at or before `limit`;
    /// returns false when nothing is due by then.
    fn step(&mut self, limit: u64) -> bool {
        let Some(t) = self.next_time().filter(|&t| t <= limit) else {
            return false;
        };
        self.now = self.now.max(t);
        let due = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, f)| f.at <= self.now)
            .min_by_key(|(_, f)| f.seq)
            .map(|(k, _)| k);
        if let Some(k) = due {
            let f = self.queue.remove(k);
            let n = &self.nodes[f.to];
            if n.alive && !n.isolated {
                let ev = Event::Advert {
                    meta: f.meta,
                    payload: &f.payload,
                };
                self.event(f.to, ev);
            }
            return true;
        }
        for i in 0..self.nodes.len() {
            let due = self.nodes[i]
                .vi
                .next_timeout()
                .is_some_and(|t| t <= self.now);
            if due {
                self.event(i, Event::Timeout);
            }
        }
        true
    }

    /// Runs until `t` (inclusive) and sets the time to `t`.
    pub fn run_until(&mut self, t: u64) {
        while self.step(t) {}
        self.now = self.now.max(t);
    }

    /// Runs until node `i` is in `state`, at most until `limit`; returns the
    /// time it got there.
    pub fn run_until_state(&mut self, i: usize, state: State, limit: u64) -> Option<u64> {
        loop {
            if self.nodes[i].vi.state() == state {
                return Some(self.now);
            }
            if !self.step(limit) {
                return None;
            }
        }
    }

    /// The times at which node `i` entered each state.
    pub fn transitions(&self, i: usize) -> Vec<(u64, State)> {
        self.nodes[i]
            .log
            .iter()
            .filter_map(|(t, a)| match a {
                Action::Transition { to, .. } => Some((*t, *to)),
                _ => None,
            })
            .collect()
    }

    /// The nodes currently holding virtual addresses.
    pub fn vip_holders(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].vips.is_empty())
            .collect()
    }

    /// The state of every node.
    pub fn states(&self) -> Vec<State> {
        self.nodes.iter().map(|n| n.vi.state()).collect()
    }
}

//! The health of every real server and the quorum of every virtual server,
//! updated from [`CheckEvent`]s, with the notify scripts each change calls
//! for. Pure: scripts are returned, the runner runs them.
//!
//! keepalived's rules:
//! - A real server is UP when all its checkers are UP (one without
//!   checkers is always UP). Every checker starts UP, or DOWN with `alpha`.
//! - `notify_up` / `notify_down` run when a real server changes.
//! - A virtual server's quorum starts gained. It is lost when the weight
//!   of its live real servers falls to 0 or below `quorum - hysteresis`
//!   (`quorum_down` runs), and gained again when it reaches
//!   `quorum + hysteresis` (`quorum_up` runs).
//! - `omega`: on shutdown, `notify_down` of every live real server and
//!   `quorum_down` if the quorum is held ([`HealthState::shutdown`]).

use std::net::IpAddr;

use super::{CheckEvent, Status};
use crate::conf::{Config, RealServer, VirtualServer};

/// A script to run and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The command line (keepalived's `notify_up`, `quorum_down`, ...).
    pub script: String,
    /// What happened, for the log: "real server 10.0.0.2:80 of virtual
    /// server 1 is down".
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RsHealth {
    /// Per checker: UP.
    checkers: Vec<bool>,
    /// Weight set by `misc_dynamic`.
    weight: Option<u32>,
}

impl RsHealth {
    fn alive(&self) -> bool {
        self.checkers.iter().all(|&up| up)
    }
}

/// Health of every real server and quorum of every virtual server of one
/// configuration (indices as in [`Config::virtual_servers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthState {
    rs: Vec<Vec<RsHealth>>,
    quorum_up: Vec<bool>,
}

impl HealthState {
    /// The state before any check: checkers UP, DOWN with `alpha`; quorum
    /// evaluated at once (so `alpha` with a `sorry_server` starts on the
    /// sorry server), with the scripts that calls for.
    pub fn new(cfg: &Config) -> (HealthState, Vec<Notify>) {
        Self::with(cfg, |_, _, rs, _| !rs.alpha)
    }

    /// The state for `cfg` after a reload from `old_cfg`: a checker of a
    /// real server that is still in the same virtual server (same address
    /// and port, same service) keeps its state; new ones start as in
    /// [`HealthState::new`].
    pub fn reloaded(
        cfg: &Config,
        old_cfg: &Config,
        old: &HealthState,
    ) -> (HealthState, Vec<Notify>) {
        let (mut h, _) = Self::with(cfg, |vs, _, rs, c| {
            old.find(old_cfg, vs, rs)
                .and_then(|(i, j)| old.rs[i][j].checkers.get(c).copied())
                .unwrap_or(!rs.alpha)
        });
        for (i, vs) in cfg.virtual_servers.iter().enumerate() {
            for (j, rs) in vs.real_servers.iter().enumerate() {
                if let Some((oi, oj)) = old.find(old_cfg, vs, rs) {
                    h.rs[i][j].weight = old.rs[oi][oj].weight;
                }
            }
            // The quorum as it was (a new virtual server's starts gained,
            // as in `new`), evaluated again below with the scripts it calls for.
            h.quorum_up[i] = old_cfg
                .virtual_servers
                .iter()
                .position(|o| same_vs(o, vs))
                .and_then(|oi| old.quorum_up.get(oi).copied())
                .unwrap_or(true);
        }
        let mut notes = Vec::new();
        for i in 0..cfg.virtual_servers.len() {
            h.update_quorum(cfg, i, &mut notes);
        }
        (h, notes)
    }

    fn with(
        cfg: &Config,
        up: impl Fn(&VirtualServer, usize, &RealServer, usize) -> bool,
    ) -> (HealthState, Vec<Notify>) {
        let rs = cfg
            .virtual_servers
            .iter()
            .map(|vs| {
                vs.real_servers
                    .iter()
                    .enumerate()
                    .map(|(j, rs)| RsHealth {
                        checkers: (0..rs.checkers.len()).map(|c| up(vs, j, rs, c)).collect(),
                        weight: None,
                    })
                    .collect()
            })
            .collect();
        let mut h = HealthState {
            rs,
            quorum_up: vec![true; cfg.virtual_servers.len()],
        };
        let mut notes = Vec::new();
        for i in 0..cfg.virtual_servers.len() {
            h.update_quorum(cfg, i, &mut notes);
        }
        (h, notes)
    }

    /// Where real server `rs` of `vs` is in this (old) state.
    fn find(&self, cfg: &Config, vs: &VirtualServer, rs: &RealServer) -> Option<(usize, usize)> {
        let i = cfg.virtual_servers.iter().position(|o| same_vs(o, vs))?;
        let j = cfg.virtual_servers[i]
            .real_servers
            .iter()
            .position(|o| o.addr == rs.addr && o.port == rs.port)?;
        self.rs.get(i)?.get(j).map(|_| (i, j))
    }

    /// Whether real server `rs` of virtual server `vs` is UP (false for
    /// indices out of range).
    pub fn alive(&self, vs: usize, rs: usize) -> bool {
        self.rs
            .get(vs)
            .and_then(|v| v.get(rs))
            .is_some_and(RsHealth::alive)
    }

    /// Whether checker `c` of that real server is UP.
    pub fn checker_up(&self, vs: usize, rs: usize, c: usize) -> bool {
        self.rs
            .get(vs)
            .and_then(|v| v.get(rs))
            .and_then(|r| r.checkers.get(c).copied())
            .unwrap_or(true)
    }

    /// The weight `misc_dynamic` set for that real server, if any.
    pub fn dynamic_weight(&self, vs: usize, rs: usize) -> Option<u32> {
        self.rs
            .get(vs)
            .and_then(|v| v.get(rs))
            .and_then(|r| r.weight)
    }

    /// Whether virtual server `vs` holds its quorum.
    pub fn quorum_up(&self, vs: usize) -> bool {
        self.quorum_up.get(vs).copied().unwrap_or(true)
    }

    /// Takes one checker's change; returns the scripts it calls for. An
    /// event for an index that does not exist (from before a reload) is
    /// ignored.
    pub fn event(&mut self, cfg: &Config, ev: &CheckEvent) -> Vec<Notify> {
        let mut notes = Vec::new();
        let (Some(vs), Some(r)) = (
            cfg.virtual_servers.get(ev.vs),
            self.rs.get_mut(ev.vs).and_then(|v| v.get_mut(ev.rs)),
        ) else {
            return notes;
        };
        let was = r.alive();
        let Some(c) = r.checkers.get_mut(ev.checker) else {
            return notes;
        };
        *c = ev.status != Status::Down;
        if let Status::Weight(w) = ev.status {
            r.weight = Some(w);
        }
        let now = r.alive();
        let rs = &vs.real_servers[ev.rs];
        if now != was {
            let script = if now { &rs.notify_up } else { &rs.notify_down };
            if let Some(s) = script {
                notes.push(Notify {
                    script: s.clone(),
                    reason: rs_reason(rs, ev.vs, now),
                });
            }
        }
        self.update_quorum(cfg, ev.vs, &mut notes);
        notes
    }

    /// The scripts `omega` calls for when rvs-keepalived stops.
    pub fn shutdown(&self, cfg: &Config) -> Vec<Notify> {
        let mut notes = Vec::new();
        for (i, vs) in cfg.virtual_servers.iter().enumerate() {
            if !vs.omega {
                continue;
            }
            for (j, rs) in vs.real_servers.iter().enumerate() {
                if let (true, Some(s)) = (self.alive(i, j), &rs.notify_down) {
                    notes.push(Notify {
                        script: s.clone(),
                        reason: rs_reason(rs, i, false),
                    });
                }
            }
            if let (true, Some(s)) = (self.quorum_up(i), &vs.quorum_down) {
                notes.push(Notify {
                    script: s.clone(),
                    reason: format!("virtual server {i} ({}) stops", vs.loc),
                });
            }
        }
        notes
    }

    /// The weight of the live real servers of `vs`.
    pub fn live_weight(&self, cfg: &Config, vs: usize) -> u64 {
        let Some(v) = cfg.virtual_servers.get(vs) else {
            return 0;
        };
        v.real_servers
            .iter()
            .enumerate()
            .filter(|(j, _)| self.alive(vs, *j))
            .map(|(j, rs)| u64::from(self.dynamic_weight(vs, j).unwrap_or(rs.weight)))
            .sum()
    }

    fn update_quorum(&mut self, cfg: &Config, i: usize, notes: &mut Vec<Notify>) {
        let vs = &cfg.virtual_servers[i];
        let sum = self.live_weight(cfg, i);
        let (q, h) = (u64::from(vs.quorum), u64::from(vs.hysteresis));
        let up = self.quorum_up[i];
        let (now, script) = if !up && sum >= q + h {
            (true, &vs.quorum_up)
        } else if up && (sum == 0 || sum < q.saturating_sub(h)) {
            (false, &vs.quorum_down)
        } else {
            return;
        };
        self.quorum_up[i] = now;
        if let Some(s) = script {
            let what = if now { "gained" } else { "lost" };
            notes.push(Notify {
                script: s.clone(),
                reason: format!(
                    "virtual server {i} ({}) {what} its quorum: live weight {sum}, quorum {q}, hysteresis {h}",
                    vs.loc
                ),
            });
        }
    }
}

fn rs_reason(rs: &RealServer, vs: usize, up: bool) -> String {
    let ep = match rs.addr {
        IpAddr::V4(a) => format!("{a}:{}", rs.port),
        IpAddr::V6(a) => format!("[{a}]:{}", rs.port),
    };
    let state = if up { "up" } else { "down" };
    format!("real server {ep} of virtual server {vs} is {state}")
}

/// The same virtual server in two configurations: same address (or group,
/// or match) and protocol.
fn same_vs(a: &VirtualServer, b: &VirtualServer) -> bool {
    a.addr == b.addr && a.protocol == b.protocol
}

//! The data-plane watchdog. A node whose workers stop forwarding must stop
//! attracting traffic: when rvsd dies, its kni devices disappear and the
//! routing daemons on them (OSPF, BGP, VRRP) lose their adjacencies; when a
//! worker hangs while the rest of rvsd runs, nothing would tell them. So
//! the daemon's main thread compares each worker's heartbeat (the clock of
//! its last timer tick, [`WorkerGauges::heartbeat_ms`]) with the time: a
//! worker silent for longer than `[health] stall_ms` is stalled, and while
//! one is, rvsd takes its kni devices down (the routing daemons withdraw
//! this node's routes, VRRP gives up mastership) and runs the `notify`
//! command with `stalled W1,W2`; when every worker ticks again it brings
//! them back up and runs `notify recovered`.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use rvs_core::stats::WorkerGauges;
use serde::Deserialize;

/// `[health]`: the watchdog's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// A worker whose last tick is older than this (ms) is stalled; 0 turns
    /// the watchdog off.
    #[serde(default = "default_stall_ms")]
    pub stall_ms: u32,
    /// Take the kni devices that are up down while a worker is stalled.
    #[serde(default = "yes")]
    pub kni_down: bool,
    /// A program run (no shell) with `stalled W1,W2` or `recovered`
    /// appended to its arguments, e.g. a script that withdraws routes.
    pub notify: Option<String>,
}

fn default_stall_ms() -> u32 {
    2000
}

fn yes() -> bool {
    true
}

impl Default for HealthSection {
    fn default() -> Self {
        HealthSection {
            stall_ms: default_stall_ms(),
            kni_down: true,
            notify: None,
        }
    }
}

/// A change of the workers' health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// These workers (and no others before) stopped ticking.
    Stalled(Vec<u16>),
    /// Every worker ticks again.
    Recovered,
}

/// Decides from heartbeats; no I/O.
#[derive(Debug)]
pub struct Watchdog {
    stall_ms: u64,
    last_check: Option<u64>,
    stalled: Vec<u16>,
}

impl Watchdog {
    /// A watchdog for `stall_ms` (0: never reports).
    pub fn new(stall_ms: u32) -> Watchdog {
        Watchdog {
            stall_ms: u64::from(stall_ms),
            last_check: None,
            stalled: Vec::new(),
        }
    }

    /// Looks at the heartbeats at `now` (the workers' clock). When the
    /// watchdog itself was not run for half the stall time (the whole
    /// process was stopped, or the machine starved it), it does not judge
    /// this round: every heartbeat would look old.
    pub fn check(&mut self, now: u64, beats: &[u64]) -> Option<Event> {
        if self.stall_ms == 0 {
            return None;
        }
        let last = self.last_check.replace(now);
        if last.is_some_and(|l| now.saturating_sub(l) > self.stall_ms / 2) {
            return None;
        }
        let stalled: Vec<u16> = (0..beats.len())
            .filter(|&w| now.saturating_sub(beats[w]) > self.stall_ms)
            .map(|w| w as u16)
            .collect();
        let event = match (self.stalled.is_empty(), stalled.is_empty()) {
            (true, false) => Some(Event::Stalled(stalled.clone())),
            (false, true) => Some(Event::Recovered),
            _ => None,
        };
        self.stalled = stalled;
        event
    }
}

/// The watchdog and what it acts on.
pub struct Health {
    dog: Watchdog,
    conf: HealthSection,
    gauges: Vec<Arc<WorkerGauges>>,
    knis: Vec<String>,
    /// kni devices this watchdog took down (to bring back up).
    downed: Vec<String>,
    children: Vec<Child>,
}

impl Health {
    /// The watchdog over `gauges` (one per worker) and the kni devices `knis`.
    pub fn new(conf: HealthSection, gauges: Vec<Arc<WorkerGauges>>, knis: Vec<String>) -> Health {
        Health {
            dog: Watchdog::new(conf.stall_ms),
            conf,
            gauges,
            knis,
            downed: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Checks the workers at `now` and acts on a change.
    pub fn poll(&mut self, now: u64) {
        self.children
            .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        let beats: Vec<u64> = self
            .gauges
            .iter()
            .map(|g| g.heartbeat_ms.load(Relaxed))
            .collect();
        match self.dog.check(now, &beats) {
            Some(Event::Stalled(ws)) => self.on_stalled(&ws),
            Some(Event::Recovered) => self.on_recovered(),
            None => {}
        }
    }

    fn on_stalled(&mut self, ws: &[u16]) {
        let list = ws.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        if self.conf.kni_down {
            for k in &self.knis {
                if rvs_io::iface::is_up(k).unwrap_or(false) {
                    match rvs_io::iface::set_down(k) {
                        Ok(()) => self.downed.push(k.clone()),
                        Err(e) => tracing::error!("health: cannot take {k} down: {e}"),
                    }
                }
            }
        }
        tracing::error!(
            "health: worker {list} made no progress for more than {} ms; kni devices taken down: [{}] (routing daemons on them withdraw this node)",
            self.conf.stall_ms,
            self.downed.join(", ")
        );
        self.notify(&["stalled", &list]);
    }

    fn on_recovered(&mut self) {
        for k in std::mem::take(&mut self.downed) {
            if let Err(e) = rvs_io::iface::set_up(&k) {
                tracing::error!("health: cannot bring {k} back up: {e}");
            }
        }
        tracing::warn!("health: every worker makes progress again; kni devices back up");
        self.notify(&["recovered"]);
    }

    fn notify(&mut self, args: &[&str]) {
        let Some(cmd) = &self.conf.notify else { return };
        let mut words = cmd.split_whitespace();
        let Some(prog) = words.next() else { return };
        match Command::new(prog)
            .args(words)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
        {
            Ok(c) => self.children.push(c),
            Err(e) => tracing::error!("health: cannot run notify {cmd:?}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_worker_is_reported_once_and_its_recovery_too() {
        let mut d = Watchdog::new(1000);
        // Worker 1 stops ticking at 495; the watchdog looks every 200 ms.
        for t in [300, 500, 700, 900, 1100, 1300] {
            assert_eq!(d.check(t, &[t - 10, 495.min(t - 5)]), None, "at {t}");
        }
        assert_eq!(d.check(1500, &[1490, 495]), Some(Event::Stalled(vec![1])));
        assert_eq!(d.check(1700, &[1690, 495]), None, "reported once");
        assert_eq!(d.check(1900, &[1890, 1895]), Some(Event::Recovered));
        assert_eq!(d.check(2100, &[2090, 2095]), None);
    }

    #[test]
    fn a_watchdog_that_was_not_run_does_not_judge() {
        // The whole process stopped for 5 s (SIGSTOP): on resume, every
        // heartbeat is old, but so is the watchdog's last look.
        let mut d = Watchdog::new(1000);
        assert_eq!(d.check(100, &[90]), None);
        assert_eq!(d.check(5100, &[90]), None);
        assert_eq!(d.check(5150, &[5140]), None);
    }

    #[test]
    fn zero_turns_it_off() {
        let mut d = Watchdog::new(0);
        assert_eq!(d.check(100, &[0]), None);
        assert_eq!(d.check(150, &[0]), None);
    }

    #[test]
    fn the_section_defaults_and_refuses_unknown_keys() {
        let h: HealthSection = toml::from_str("").expect("empty");
        assert_eq!(h, HealthSection::default());
        assert_eq!(h.stall_ms, 2000);
        let e = toml::from_str::<HealthSection>("stall = 3").unwrap_err();
        assert!(e.to_string().contains("stall"), "{e}");
    }
}

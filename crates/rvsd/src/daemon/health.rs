//! The data-plane watchdog. A node whose workers stop forwarding must stop
//! attracting traffic: when rvsd dies, its kni devices disappear and the
//! routing daemons on them (OSPF, BGP, VRRP) lose their adjacencies; when a
//! worker hangs while the rest of rvsd runs, nothing would tell them. So
//! the daemon's main thread compares each worker's heartbeat (the clock of
//! its last timer tick, [`WorkerGauges::heartbeat_ms`]) with the time: a
//! worker silent for longer than `[health] stall_ms` is stalled, and while
//! one is, rvsd drops the carrier of its kni devices (the kernel sends
//! nothing on them and the routing daemons take them as down: they withdraw
//! this node's routes, VRRP gives up mastership) and runs the `notify`
//! command with `stalled W1,W2`. Carrier, not an administrative down: the
//! addresses and routes the operator put on the devices stay (an
//! administrative down would delete every route through them). When every
//! worker has ticked again for twice `stall_ms` (a hold-down, so that a
//! worker that stalls now and then does not make the routing flap), the
//! carrier comes back and `notify recovered` runs.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use rvs_core::stats::WorkerGauges;
use rvs_io::TapCarrier;
use serde::Deserialize;

/// `[health]`: the watchdog's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// A worker whose last tick is older than this (ms) is stalled; 0 turns
    /// the watchdog off, otherwise at least [`MIN_STALL_MS`].
    #[serde(default = "default_stall_ms")]
    pub stall_ms: u32,
    /// Drop the carrier of the kni devices while a worker is stalled.
    #[serde(default = "yes")]
    pub kni_down: bool,
    /// A program run (no shell) with `stalled W1,W2` or `recovered`
    /// appended to its arguments, e.g. a script that withdraws routes.
    pub notify: Option<String>,
}

fn default_stall_ms() -> u32 {
    2000
}

/// How often the daemon's main loop polls the watchdog (ms).
pub const POLL_MS: u64 = 50;

/// The smallest `stall_ms` (a few polls: a shorter one could not be told
/// from the watchdog's own lateness).
pub const MIN_STALL_MS: u32 = 200;

impl HealthSection {
    /// What is wrong with the section, if anything.
    pub fn problem(&self) -> Option<String> {
        (self.stall_ms != 0 && self.stall_ms < MIN_STALL_MS).then(|| {
            format!(
                "health stall_ms = {}: 0 (off) or at least {MIN_STALL_MS}",
                self.stall_ms
            )
        })
    }
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
    /// Reported stalled, and not yet reported recovered.
    down: bool,
    /// Since when every worker ticks again (while `down`).
    healthy_since: Option<u64>,
}

impl Watchdog {
    /// A watchdog for `stall_ms` (0: never reports).
    pub fn new(stall_ms: u32) -> Watchdog {
        Watchdog {
            stall_ms: u64::from(stall_ms),
            last_check: None,
            stalled: Vec::new(),
            down: false,
            healthy_since: None,
        }
    }

    /// Looks at the heartbeats at `now` (the workers' clock). When the
    /// watchdog itself was not run for a while (half the stall time, or
    /// four polls: the whole process was stopped, or the machine starved
    /// it), it does not judge this round: every heartbeat would look old.
    /// Recovery is reported once every worker has ticked for twice
    /// `stall_ms` without a stall (a worker that stalls now and then stays
    /// reported).
    pub fn check(&mut self, now: u64, beats: &[u64]) -> Option<Event> {
        if self.stall_ms == 0 {
            return None;
        }
        let last = self.last_check.replace(now);
        let late = (self.stall_ms / 2).max(4 * POLL_MS);
        if last.is_some_and(|l| now.saturating_sub(l) > late) {
            return None;
        }
        let stalled: Vec<u16> = (0..beats.len())
            .filter(|&w| now.saturating_sub(beats[w]) > self.stall_ms)
            .map(|w| w as u16)
            .collect();
        let event = match (self.down, stalled.is_empty()) {
            (false, false) => {
                self.down = true;
                Some(Event::Stalled(stalled.clone()))
            }
            (true, false) => {
                self.healthy_since = None;
                None
            }
            (true, true) => {
                let since = *self.healthy_since.get_or_insert(now);
                if now.saturating_sub(since) >= 2 * self.stall_ms {
                    self.down = false;
                    self.healthy_since = None;
                    Some(Event::Recovered)
                } else {
                    None
                }
            }
            (false, true) => None,
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
    knis: Vec<TapCarrier>,
    /// Whether the carriers are off (by this watchdog).
    dropped: bool,
    children: Vec<Child>,
}

impl Health {
    /// The watchdog over `gauges` (one per worker) and the carriers of the
    /// kni devices `knis`.
    pub fn new(
        conf: HealthSection,
        gauges: Vec<Arc<WorkerGauges>>,
        knis: Vec<TapCarrier>,
    ) -> Health {
        Health {
            dog: Watchdog::new(conf.stall_ms),
            conf,
            gauges,
            knis,
            dropped: false,
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

    fn carriers(&mut self, on: bool) -> Vec<String> {
        let mut done = Vec::new();
        for k in &self.knis {
            match k.set(on) {
                Ok(()) => done.push(k.name().to_string()),
                Err(e) => tracing::error!(
                    "health: cannot turn the carrier of {} {}: {e}",
                    k.name(),
                    if on { "on" } else { "off" }
                ),
            }
        }
        done
    }

    fn on_stalled(&mut self, ws: &[u16]) {
        let list = ws.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        let off = match self.conf.kni_down {
            true => self.carriers(false),
            false => Vec::new(),
        };
        self.dropped = !off.is_empty();
        tracing::error!(
            "health: worker {list} made no progress for more than {} ms; carrier off on the kni devices [{}] (routing daemons on them withdraw this node)",
            self.conf.stall_ms,
            off.join(", ")
        );
        self.notify(&["stalled", &list]);
    }

    fn on_recovered(&mut self) {
        if std::mem::take(&mut self.dropped) {
            self.carriers(true);
        }
        tracing::warn!(
            "health: every worker has made progress for {} ms; kni carrier back on",
            self.conf.stall_ms
        );
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
    fn a_silent_worker_is_reported_once_and_its_recovery_after_a_hold_down() {
        let mut d = Watchdog::new(1000);
        // Worker 1 stops ticking at 495; the watchdog looks every 100 ms.
        for t in (100..=1400).step_by(100) {
            assert_eq!(d.check(t, &[t - 10, 495.min(t - 5)]), None, "at {t}");
        }
        assert_eq!(d.check(1500, &[1490, 495]), Some(Event::Stalled(vec![1])));
        assert_eq!(d.check(1600, &[1590, 495]), None, "reported once");
        // It ticks again at 1650: recovery once it has for 2 × 1000 ms.
        for t in (1700..3700).step_by(100) {
            assert_eq!(d.check(t, &[t - 10, t - 5]), None, "at {t}: held down");
        }
        assert_eq!(d.check(3700, &[3690, 3695]), Some(Event::Recovered));
        assert_eq!(d.check(3800, &[3790, 3795]), None);
    }

    #[test]
    fn a_worker_that_stalls_now_and_then_does_not_flap() {
        // Ticks once every 2.5 s with stall_ms = 2000: reported once, and it
        // stays reported (never 4 s without a stall).
        let mut d = Watchdog::new(2000);
        let mut events = Vec::new();
        for t in (50..30_000u64).step_by(50) {
            let beat = t - t % 2500;
            if let Some(e) = d.check(t, &[t, beat]) {
                events.push((t, e));
            }
        }
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(matches!(events[0].1, Event::Stalled(_)));
    }

    #[test]
    fn the_smallest_stall_time_is_judged() {
        let mut d = Watchdog::new(MIN_STALL_MS);
        let mut fired = None;
        for t in (50..2000u64).step_by(50) {
            if let Some(e) = d.check(t, &[0]) {
                fired = Some((t, e));
                break;
            }
        }
        assert_eq!(fired, Some((250, Event::Stalled(vec![0]))));
        let small = HealthSection {
            stall_ms: 80,
            ..HealthSection::default()
        };
        assert!(small.problem().is_some_and(|p| p.contains("stall_ms = 80")));
        assert_eq!(HealthSection::default().problem(), None);
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

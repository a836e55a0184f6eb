//! The checker threads: one per checker, each on its own timer, sending
//! [`CheckEvent`]s into a channel; and the notify scripts.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::process::{Command, Stdio};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::health::{HealthState, Notify};
use super::probe::{split_words, Probe};
use super::retry::Retry;
use super::{CheckEvent, Status};
use crate::conf::Config;

/// One checker ready to run.
#[derive(Debug, Clone)]
pub struct CheckerPlan {
    /// Virtual server index.
    pub vs: usize,
    /// Real server index.
    pub rs: usize,
    /// Checker index.
    pub checker: usize,
    /// The attempt.
    pub probe: Probe,
    /// The timing, starting in the state `HealthState` has for it.
    pub retry: Retry,
    /// `warmup`: the first attempt comes after a random delay up to this.
    pub warmup: Duration,
}

/// The checkers of `cfg`, starting in the states of `health`, and a
/// warning (file, line, why) for each checker that is not run.
pub fn checker_plans(cfg: &Config, health: &HealthState) -> (Vec<CheckerPlan>, Vec<String>) {
    let mut plans = Vec::new();
    let mut warnings = Vec::new();
    for (i, vs) in cfg.virtual_servers.iter().enumerate() {
        for (j, rs) in vs.real_servers.iter().enumerate() {
            for (c, ck) in rs.checkers.iter().enumerate() {
                match Probe::new(ck, rs) {
                    Ok(probe) if !probe.is_run() => warnings.push(format!(
                        "{}: SSL_GET is not run (rvs-keepalived has no TLS): it never marks {} down",
                        ck.loc, rs.addr
                    )),
                    Ok(probe) => plans.push(CheckerPlan {
                        vs: i,
                        rs: j,
                        checker: c,
                        probe,
                        retry: Retry::new(ck, health.checker_up(i, j, c)),
                        warmup: ck.warmup,
                    }),
                    Err(e) => warnings.push(format!("{}: checker not run: {e}", ck.loc)),
                }
            }
        }
    }
    (plans, warnings)
}

/// A stop flag threads can sleep on.
#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl Stop {
    /// Sleeps `d` unless stopped first; true when stopped.
    fn sleep(&self, d: Duration) -> bool {
        let g = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self
            .cv
            .wait_timeout_while(g, d, |s| !*s)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }
}

/// The running checkers; stopped (and joined) by [`Checkers::stop`] or
/// when dropped. A checker in the middle of an attempt finishes it first
/// (at most its timeout).
#[derive(Debug)]
pub struct Checkers {
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
}

impl Checkers {
    /// Number of checker threads.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Whether no checker runs.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Stops every checker and waits for the threads.
    pub fn stop(mut self) {
        self.halt();
    }

    /// Stops every checker without waiting: a thread in the middle of an
    /// attempt ends after it (its event goes nowhere once the receiver is
    /// dropped). For a reload or an exit that must not wait for timeouts.
    pub fn detach(mut self) {
        self.stop.stop();
        self.threads.clear();
    }

    fn halt(&mut self) {
        self.stop.stop();
        for t in self.threads.drain(..) {
            // A checker thread does not panic; if one did, there is nothing to recover.
            let _ = t.join();
        }
    }
}

impl Drop for Checkers {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Starts a thread per checker of `plans`; their changes go to `tx`. The
/// threads end when the receiver is gone or on [`Checkers::stop`].
pub fn spawn(plans: Vec<CheckerPlan>, tx: Sender<CheckEvent>) -> std::io::Result<Checkers> {
    let stop = Arc::new(Stop::default());
    let mut threads = Vec::new();
    for p in plans {
        let (stop2, tx) = (stop.clone(), tx.clone());
        let name = format!("check-{}-{}-{}", p.vs, p.rs, p.checker);
        threads.push(
            std::thread::Builder::new()
                .name(name)
                .spawn(move || run(p, &stop2, &tx))?,
        );
    }
    Ok(Checkers { stop, threads })
}

fn run(mut p: CheckerPlan, stop: &Stop, tx: &Sender<CheckEvent>) {
    if stop.sleep(random_below(p.warmup)) {
        return;
    }
    loop {
        let (outcome, why) = p.probe.run();
        let (changes, next) = p.retry.on_outcome(outcome);
        for status in changes {
            let detail = match status {
                Status::Down => why.clone(),
                _ => String::new(),
            };
            let ev = CheckEvent {
                vs: p.vs,
                rs: p.rs,
                checker: p.checker,
                status,
                detail,
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
        if stop.sleep(next) {
            return;
        }
    }
}

/// A random duration in `[0, max]`.
fn random_below(max: Duration) -> Duration {
    let nanos = max.as_nanos();
    if nanos == 0 {
        return Duration::ZERO;
    }
    let r = RandomState::new().build_hasher().finish();
    let n = u128::from(r) % (nanos + 1);
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

/// Runs a notify script without waiting for it (a thread reaps it); an
/// error when it cannot be started.
pub fn run_notify(n: &Notify) -> std::io::Result<()> {
    let argv = split_words(&n.script);
    let Some((prog, args)) = argv.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty script",
        ));
    };
    let mut child = Command::new(prog).args(args).stdin(Stdio::null()).spawn()?;
    std::thread::spawn(move || {
        // Only reaping: the script's status is not used, as in keepalived.
        let _ = child.wait();
    });
    Ok(())
}

/// What a checker event means, in words: for the log.
pub fn describe(cfg: &Config, ev: &CheckEvent) -> String {
    let rs = cfg
        .virtual_servers
        .get(ev.vs)
        .and_then(|v| v.real_servers.get(ev.rs));
    let who = match rs {
        Some(rs) => format!(
            "checker {} of real server {} port {}",
            ev.checker, rs.addr, rs.port
        ),
        None => format!("checker {} of real server {}/{}", ev.checker, ev.vs, ev.rs),
    };
    match ev.status {
        Status::Up => format!("{who}: up"),
        Status::Down if ev.detail.is_empty() => format!("{who}: down"),
        Status::Down => format!("{who}: down ({})", ev.detail),
        Status::Weight(w) => format!("{who}: up, weight {w}"),
    }
}

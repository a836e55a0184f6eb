//! The virtual servers of the running configuration, kept in rvsd: the
//! checkers, the health they report, and the reconciler, on a thread of
//! their own so that the VRRP loop is never held up by a check or by rvsd.
//!
//! - At start and on every reload ([`Services::reload`]): the checkers of
//!   every real server are (re)started, the health carried over with
//!   [`HealthState::reloaded`], and `policy::wanted(cfg, health)` is
//!   reconciled into rvsd (services, real servers, `laddr_group_name`
//!   local addresses).
//! - On every [`CheckEvent`]: health updated, notify and quorum scripts
//!   run, the wanted services reconciled again (only the difference: a
//!   weight change is one `EditDest`).
//! - A reconciliation that fails (rvsd not up yet, a request refused) is
//!   logged with what failed and tried again at the next event, or after
//!   a backoff (0.5 s doubling up to 5 s). That rvsd does not answer is
//!   logged once, and again when it answers.
//! - Every request that changes rvsd is logged ("virtual servers: set real
//!   server 192.168.100.2:80 of TCP 192.168.100.254:80 to weight 0").
//! - [`Services::stop`]: checkers stopped, `omega` scripts run, and, as
//!   keepalived does unless started with `-I` (`--dont-release-ipvs`),
//!   the virtual servers it owns removed from rvsd.

#[cfg(test)]
mod tests;

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rvs_api::Request;

use crate::check::{self, runner, CheckEvent, Checkers, HealthState, Notify};
use crate::conf::Config;
use crate::reconcile::{describe, CliError, Reconciler, Transport};
use crate::runtime::log;

/// The first wait before a failed reconciliation is tried again.
const RETRY_MIN: Duration = Duration::from_millis(500);
/// The longest wait between two tries.
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How often the thread looks for a reload or a stop.
const POLL: Duration = Duration::from_millis(100);

enum Control {
    Reload(Box<Config>),
    Stop { release: bool },
}

/// The thread that keeps the virtual servers in rvsd.
#[derive(Debug)]
pub struct Services {
    ctl: Sender<Control>,
    thread: Option<JoinHandle<()>>,
}

impl Services {
    /// Starts the checkers of `cfg` and applies its virtual servers to rvsd
    /// through `rvsd`, on a new thread.
    pub fn start<T: Transport + Send + 'static>(cfg: Config, rvsd: T) -> std::io::Result<Services> {
        let (ctl, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("services".into())
            .spawn(move || Worker::new(cfg, rvsd).run(&rx))?;
        Ok(Services {
            ctl,
            thread: Some(thread),
        })
    }

    /// Takes a new configuration (a successful reload): returns at once.
    pub fn reload(&self, cfg: Config) {
        // The thread only ends on `stop`.
        let _ = self.ctl.send(Control::Reload(Box::new(cfg)));
    }

    /// Stops the checkers, runs the `omega` scripts and, with `release`,
    /// removes the owned virtual servers from rvsd; waits for it.
    pub fn stop(mut self, release: bool) {
        let _ = self.ctl.send(Control::Stop { release });
        if let Some(t) = self.thread.take() {
            // The thread does not panic; if it did, there is nothing left to do.
            let _ = t.join();
        }
    }
}

/// Counts and logs the requests that change rvsd.
struct Logged<T> {
    inner: T,
    changes: usize,
}

impl<T: Transport> Transport for Logged<T> {
    fn call(&mut self, req: &Request) -> Result<rvs_api::Reply, CliError> {
        if !matches!(
            req,
            Request::ListServices { .. } | Request::ListLaddrs { .. }
        ) {
            self.changes += 1;
            log::info(&format!("virtual servers: {}", describe(req)));
        }
        self.inner.call(req)
    }
}

/// The state of the services thread (driven directly by the unit tests).
struct Worker<T> {
    cfg: Config,
    health: HealthState,
    checkers: Option<Checkers>,
    /// The checkers' channel; a new one per generation of checkers, so
    /// that an old checker finishing its attempt after a reload sends
    /// nowhere.
    events: Receiver<CheckEvent>,
    rvsd: Logged<T>,
    rec: Reconciler,
    /// rvsd may differ from the wanted services.
    dirty: bool,
    retry_at: Option<Instant>,
    backoff: Duration,
    /// rvsd did not answer the last time (logged once).
    unreachable: bool,
    /// The failures logged last (the same ones are not logged again).
    last_failures: Vec<String>,
}

impl<T: Transport> Worker<T> {
    fn new(cfg: Config, rvsd: T) -> Worker<T> {
        let (health, notes) = HealthState::new(&cfg);
        notify(&notes);
        let (_, events) = channel();
        let mut w = Worker {
            cfg,
            health,
            checkers: None,
            events,
            rvsd: Logged {
                inner: rvsd,
                changes: 0,
            },
            rec: Reconciler::new(),
            dirty: true,
            retry_at: None,
            backoff: RETRY_MIN,
            unreachable: false,
            last_failures: Vec::new(),
        };
        w.start_checkers();
        w
    }

    fn run(mut self, ctl: &Receiver<Control>) {
        loop {
            match ctl.try_recv() {
                Ok(Control::Reload(cfg)) => self.reload(*cfg),
                Ok(Control::Stop { release }) => return self.stop(release),
                Err(TryRecvError::Disconnected) => return self.stop(true),
                Err(TryRecvError::Empty) => {}
            }
            if self.due(Instant::now()) {
                self.reconcile();
            }
            match self.events.recv_timeout(POLL) {
                Ok(ev) => {
                    self.event(&ev);
                    self.drain();
                }
                Err(RecvTimeoutError::Timeout) => {}
                // No checkers: only reloads and the stop are waited for.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(POLL),
            }
        }
    }

    /// Starts the checkers of the configuration in their current health.
    fn start_checkers(&mut self) {
        let (plans, warnings) = runner::checker_plans(&self.cfg, &self.health);
        for w in &warnings {
            log::warn(w);
        }
        let (tx, rx) = channel();
        self.events = rx;
        let n = plans.len();
        match check::spawn(plans, tx) {
            Ok(c) => {
                log::debug(&format!("{n} checker(s) started"));
                self.checkers = Some(c);
            }
            Err(e) => log::warn(&format!("cannot start the checkers: {e}")),
        }
    }

    /// Applies the events already sent.
    fn drain(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            self.event(&ev);
        }
    }

    fn event(&mut self, ev: &CheckEvent) {
        log::info(&runner::describe(&self.cfg, ev));
        notify(&self.health.event(&self.cfg, ev));
        self.dirty = true;
        // A change is tried at once, whatever the backoff.
        self.retry_at = None;
    }

    fn reload(&mut self, cfg: Config) {
        if let Some(c) = self.checkers.take() {
            c.detach();
        }
        self.drain();
        let (health, notes) = HealthState::reloaded(&cfg, &self.cfg, &self.health);
        notify(&notes);
        self.cfg = cfg;
        self.health = health;
        self.start_checkers();
        self.dirty = true;
        self.retry_at = None;
    }

    fn due(&self, now: Instant) -> bool {
        self.dirty && self.retry_at.is_none_or(|t| now >= t)
    }

    /// Makes rvsd's virtual servers the wanted ones.
    fn reconcile(&mut self) {
        let wanted = match check::wanted(&self.cfg, &self.health) {
            Ok(w) => w,
            Err(e) => {
                // Checked when the file was loaded: not expected here.
                log::warn(&format!("virtual servers not applied: {e}"));
                self.dirty = false;
                return;
            }
        };
        let before = self.rvsd.changes;
        match self.rec.reconcile(&mut self.rvsd, &wanted) {
            Err(e) => {
                if !self.unreachable {
                    log::warn(&format!(
                        "cannot read rvsd's virtual servers ({}): trying again until it answers",
                        e.message
                    ));
                    self.unreachable = true;
                }
                self.later();
            }
            Ok(report) => {
                if self.unreachable {
                    log::info("rvsd answers: applying the virtual servers");
                    self.unreachable = false;
                }
                let failures: Vec<String> =
                    report.failures.iter().map(ToString::to_string).collect();
                if failures.is_empty() {
                    let n = self.rvsd.changes - before;
                    if n > 0 {
                        log::info(&format!("virtual servers: {n} change(s) applied"));
                    }
                    self.dirty = false;
                    self.retry_at = None;
                    self.backoff = RETRY_MIN;
                    self.last_failures.clear();
                } else {
                    if failures != self.last_failures {
                        for f in &failures {
                            log::warn(&format!("virtual servers: {f} (will try again)"));
                        }
                        self.last_failures = failures;
                    }
                    self.later();
                }
            }
        }
    }

    /// Tries again after the backoff, which doubles.
    fn later(&mut self) {
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(RETRY_MAX);
    }

    fn stop(&mut self, release: bool) {
        if let Some(c) = self.checkers.take() {
            c.detach();
        }
        self.drain();
        notify(&self.health.shutdown(&self.cfg));
        if !release {
            log::info("leaving the virtual servers in rvsd (--dont-release-ipvs)");
            return;
        }
        match self.rec.reconcile(&mut self.rvsd, &[]) {
            Ok(r) => {
                for f in &r.failures {
                    log::warn(&format!("virtual servers: {f}"));
                }
            }
            Err(e) => log::warn(&format!(
                "cannot remove the virtual servers from rvsd: {}",
                e.message
            )),
        }
    }
}

/// Runs the scripts (logged; one that cannot start is a warning).
fn notify(notes: &[Notify]) {
    for n in notes {
        log::info(&format!("{}: running {}", n.reason, n.script));
        if let Err(e) = check::run_notify(n) {
            log::warn(&format!("cannot run {}: {e}", n.script));
        }
    }
}

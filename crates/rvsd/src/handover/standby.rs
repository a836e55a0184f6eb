//! A warm standby's session (`rvsd --standby`, `docs/design/hot-upgrade.md`
//! section 3): the same steps as a hot upgrade up to the pre-copy
//! ([`session::give_precopy`], [`session::take_precopy`]), then, instead of
//! FREEZE, it stays: the active rvsd keeps sending the changes of its
//! tables and configuration ([`Giver::follow`]) for as long as the standby
//! lives, and both send a HEARTBEAT every [`HEARTBEAT_EVERY`].
//!
//! | event | active ([`give`]) | standby ([`follow`]) |
//! |---|---|---|
//! | the standby dies, closes, or is silent for [`STANDBY_SILENT`] (before its first heartbeat: [`FIRST_BEAT_GRACE`], while it installs the pre-copy) | logs it, logs off, forwards on ([`Giver::thaw`]) | - |
//! | the active dies (SIGKILL included) | - | its pidfd is readable: [`Ended::ActiveDied`], promote |
//! | the active stops (SIGTERM) | sends ABORT [`STOPPING`], gives its ports back | [`Ended::ActiveStopped`]: exits |
//! | the active is silent for `[standby] hung_ms` ([`StandbySection`]) | - | warns; with `kill_hung`, SIGKILLs it (its pidfd) and promotes once it is gone |
//! | the active drops the standby (connection closed, it lives) | - | `Err`: exits 1 |
//!
//! Only the active's death promotes: two processes must never read the
//! same rings, and a closed connection alone does not say the other is
//! gone (its pidfd does). A hung active is killed first (`kill_hung`).

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

use rvs_io::deathwatch::{self, DeathWatch, Outcome, Watcher};
use rvs_io::peer::Peer;
use serde::{Deserialize, Serialize};

use super::give::{DaemonGiver, GiveCtx};
use super::session::{self, kind, Failure, Giver, Taker, Timeouts};
use crate::control::Control;

/// How often each side sends a HEARTBEAT.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(10);
/// The active lets go a standby that sent nothing for this long (generous:
/// a standby on a busy machine is slow, not dead; its death is EOF).
pub const STANDBY_SILENT: Duration = Duration::from_secs(2);

/// How long a standby may take after the pre-copy before its first
/// heartbeat: it installs what came first (seconds per million
/// connections; 5,000,000 at nice 19 beside a busy active took over 2 s,
/// and the active gave it up). rvsd's own limit for that is 100 s.
pub const FIRST_BEAT_GRACE: Duration = Duration::from_secs(120);
/// `[standby]`: what a warm standby does about an active that lives but
/// sent nothing (no heartbeat) for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandbySection {
    /// Silence (ms) after which the active counts as hung and is logged.
    #[serde(default = "default_hung_ms")]
    pub hung_ms: u32,
    /// A hung active is killed (SIGKILL by its pidfd) and this standby
    /// takes over.
    #[serde(default)]
    pub kill_hung: bool,
}

fn default_hung_ms() -> u32 {
    200
}

impl Default for StandbySection {
    fn default() -> Self {
        StandbySection {
            hung_ms: default_hung_ms(),
            kill_hung: false,
        }
    }
}

/// The shortest and longest `hung_ms` (5 heartbeats; a minute).
const HUNG_MS: std::ops::RangeInclusive<u32> = 50..=60_000;

impl StandbySection {
    /// What is wrong with the section, if anything.
    pub fn problem(&self) -> Option<String> {
        (!HUNG_MS.contains(&self.hung_ms)).then(|| {
            format!(
                "[standby] hung_ms = {}: must be {}..={} (ms without a heartbeat of the active; \
                 they come every {} ms)",
                self.hung_ms,
                HUNG_MS.start(),
                HUNG_MS.end(),
                HEARTBEAT_EVERY.as_millis()
            )
        })
    }

    fn hung(&self) -> Duration {
        Duration::from_millis(u64::from(self.hung_ms))
    }
}
/// The ABORT text of an active rvsd that stops on purpose (the standby
/// stops too rather than promote on ports given back).
pub const STOPPING: &str = "the active rvsd is stopping";

/// One side's heartbeats: when the next is due, and how long the other
/// side has been silent. Pure (the caller gives the time).
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    every: Duration,
    silent: Duration,
    sent: Instant,
    heard: Instant,
    /// The limit until the other side is first heard.
    first: Duration,
    heard_any: bool,
}

impl Heartbeat {
    /// Starts at `now`: one due at once, the other side heard now.
    pub fn new(now: Instant, every: Duration, silent: Duration) -> Heartbeat {
        Heartbeat {
            every,
            silent,
            sent: now.checked_sub(every).unwrap_or(now),
            heard: now,
            first: silent,
            heard_any: false,
        }
    }

    /// The other side may take `grace` (if longer than the limit) before
    /// its first heartbeat.
    pub fn with_first_grace(mut self, grace: Duration) -> Heartbeat {
        self.first = grace.max(self.silent);
        self
    }

    /// Whether one is due at `now` (then it counts as sent).
    pub fn send_due(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.sent) < self.every {
            return false;
        }
        self.sent = now;
        true
    }

    /// The other side sent something at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.heard = self.heard.max(now);
        self.heard_any = true;
    }

    /// How long the other side has been silent, once that is at least the
    /// limit (`None`: not silent for long).
    pub fn silent_for(&self, now: Instant) -> Option<Duration> {
        let d = now.saturating_duration_since(self.heard);
        let limit = if self.heard_any {
            self.silent
        } else {
            self.first
        };
        (d >= limit).then_some(d)
    }
}

fn beat() -> session::Out {
    session::control(kind::HEARTBEAT, "")
}

fn readable(s: &UnixStream) -> bool {
    rvs_io::wait_any(&[s.as_raw_fd()], 0).is_ok_and(|n| n > 0)
}

/// The active rvsd's side, on the connection of a standby request: the
/// pre-copy, then the changes and heartbeats until the standby goes or
/// `stop` is set. Always ends with why (the logs are then off).
pub fn give(s: &UnixStream, g: &mut dyn Giver, t: Timeouts, stop: &AtomicBool) -> Failure {
    if let Err(e) = session::give_hello(s, g, t) {
        return e;
    }
    let e = match session::give_precopy(s, g) {
        Ok(()) => {
            // Held until this session ends (released after STOPPING is sent).
            let _held = g.deathwatch().then(|| offer_deathwatch(s)).flatten();
            serve(s, g, stop)
        }
        Err(e) => e,
    };
    g.thaw();
    e
}

/// Holds a new death watch on a thread of this process and sends it to
/// the standby (`None`, logged: it then watches the pidfd alone).
fn offer_deathwatch(s: &UnixStream) -> Option<rvs_io::deathwatch::Holder> {
    let made = DeathWatch::new().map(std::sync::Arc::new);
    let r = made.and_then(|w| {
        let held = w.hold()?;
        let fd = w.fd().try_clone_to_owned()?;
        let mut o = session::control(kind::DEATHWATCH, "");
        o.fds.push(fd);
        session::send(s, o)?;
        Ok(held)
    });
    r.map_err(|e| tracing::warn!("no death watch for the standby (it watches the pidfd): {e}"))
        .ok()
}

fn serve(s: &UnixStream, g: &mut dyn Giver, stop: &AtomicBool) -> Failure {
    let mut hb = Heartbeat::new(Instant::now(), HEARTBEAT_EVERY, STANDBY_SILENT)
        .with_first_grace(FIRST_BEAT_GRACE);
    loop {
        let mut sink = |o: session::Out| session::send(s, o);
        if let Err(why) = g.follow(&mut sink) {
            return session::abort(s, why);
        }
        if stop.load(Relaxed) {
            return session::abort(s, STOPPING.into());
        }
        let now = Instant::now();
        if hb.send_due(now) {
            if let Err(e) = session::send(s, beat()) {
                return session::lost(e);
            }
        }
        if let Some(d) = hb.silent_for(now) {
            return session::abort(
                s,
                format!("the standby sent nothing for {} ms", d.as_millis()),
            );
        }
        if rvs_io::wait_any(&[s.as_raw_fd()], 1).is_ok_and(|n| n > 0) {
            match session::recv(s, Duration::from_secs(1), "a heartbeat") {
                Ok(f) if f.kind == kind::HEARTBEAT => hb.heard(Instant::now()),
                Ok(f) => return session::abort(s, format!("frame kind {} from a standby", f.kind)),
                Err(e) => return e,
            }
        }
    }
}

/// Why a takeover or standby request is refused while a hand-over runs
/// (`standby`: the attached standby's pid, 0: none).
pub fn busy(standby: u32) -> String {
    match standby {
        0 => "another takeover is under way".into(),
        pid => format!(
            "a warm standby (rvsd --standby, pid {pid}) is attached; stop it first (kill {pid}) \
             and try again"
        ),
    }
}

/// Refuses a request whose connection was accepted: its HELLO read (so
/// that it reads the answer rather than a closed socket), then REFUSE.
pub fn refuse(s: &UnixStream, why: &str) {
    let _ = session::recv(s, Duration::from_secs(1), "HELLO");
    let _ = session::send(s, session::control(kind::REFUSE, why));
}

/// The control socket's hook for a standby request from `peer` (root,
/// checked): the session runs on this thread for as long as the standby
/// lives; the active forwards on unchanged when it ends.
pub fn attached(ctl: &Control, cx: &GiveCtx, s: UnixStream, peer: Peer) {
    let pid = peer.pid();
    cx.standby.store(pid, SeqCst);
    tracing::info!("warm standby pid {pid} attached");
    let mut g = DaemonGiver::new(ctl, cx, peer).for_standby();
    let e = give(&s, &mut g, Timeouts::default(), &cx.stop);
    drop(g);
    tracing::warn!("warm standby pid {pid} detached, forwarding on unchanged: {e}");
    cx.standby.store(0, SeqCst);
}

/// How a standby's following ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The active rvsd is gone: promote (every frame it sent is taken in).
    ActiveDied,
    /// The active rvsd stopped on purpose: exit too.
    ActiveStopped,
    /// This standby was told to stop: exit, giving nothing back.
    Stopped,
}

/// The standby's side after [`session::take_precopy`]: takes the active's
/// frames in (`k.receive`), sends heartbeats, and watches `active`'s pidfd,
/// until it dies or stops or `term` is set; a hung one is logged (and
/// killed: `conf.kill_hung`). `Err`: the session failed while the active
/// lives (this standby then exits).
pub fn follow(
    s: &UnixStream,
    k: &mut dyn Taker,
    active: &Peer,
    term: &AtomicBool,
    conf: &StandbySection,
) -> Result<Ended, Failure> {
    let mut hb = Heartbeat::new(Instant::now(), HEARTBEAT_EVERY, conf.hung());
    let mut warned = false;
    let mut watch = Watch::default();
    loop {
        if term.load(Relaxed) {
            let _ = session::send(s, session::control(kind::ABORT, "the standby stops"));
            return Ok(Ended::Stopped);
        }
        let now = Instant::now();
        if hb.send_due(now) && session::send(s, beat()).is_err() {
            // Its end is closed: dead, or it let this standby go.
            return died_or(s, k, active, Failure::Lost("the active closed".into()));
        }
        // Frames waiting: this standby was late (descheduled), not the
        // active silent.
        match hb.silent_for(now).filter(|_| !readable(s)) {
            Some(d) if !warned => {
                warned = true;
                hung(active, d, conf);
            }
            Some(_) => {}
            None if warned => {
                tracing::warn!(
                    "standby: the active rvsd (pid {}) sends heartbeats again",
                    active.pid()
                );
                warned = false;
            }
            None => {}
        }
        let _ = rvs_io::wait_any(&watch.fds(s, active), watch.timeout_ms());
        if let Some(how) = watch.died(active) {
            tracing::info!(
                "standby: the active rvsd (pid {}) died ({how})",
                active.pid()
            );
            return Ok(drain(s, k));
        }
        if !readable(s) {
            continue;
        }
        match session::recv(s, Duration::from_secs(1), "the active's changes") {
            Ok(f) if f.kind == kind::DEATHWATCH => watch.take(f),
            Ok(f) => {
                hb.heard(Instant::now());
                if f.kind != kind::HEARTBEAT {
                    k.receive(f).map_err(|why| session::abort(s, why))?;
                }
            }
            Err(Failure::Aborted(why)) if why == STOPPING => return Ok(Ended::ActiveStopped),
            Err(e) => return died_or(s, k, active, e),
        }
    }
}

/// The active sent nothing for `d` (at least `hung_ms`) but lives: logs
/// it, and with `kill_hung` kills it (its death then promotes as any
/// other).
fn hung(active: &Peer, d: Duration, conf: &StandbySection) {
    let pid = active.pid();
    let ms = d.as_millis();
    if !conf.kill_hung {
        tracing::error!(
            "standby: the active rvsd (pid {pid}) is hung: no heartbeat for {ms} ms \
             ([standby] hung_ms = {}); not taking over while it lives (kill_hung = false): \
             kill it (kill -9 {pid}) and this standby takes over",
            conf.hung_ms
        );
        return;
    }
    tracing::error!(
        "standby: the active rvsd (pid {pid}) is hung: no heartbeat for {ms} ms ([standby] \
         hung_ms = {}); killing it (kill_hung = true) to take over",
        conf.hung_ms
    );
    if let Err(e) = active.kill() {
        tracing::error!("standby: cannot kill the hung active rvsd (pid {pid}): {e}");
    }
}

/// The connection ended or failed: promotion if the active is gone (the
/// kernel closes a dead process's files just before its pidfd says so),
/// else the failure.
fn died_or(s: &UnixStream, k: &mut dyn Taker, active: &Peer, e: Failure) -> Result<Ended, Failure> {
    if active
        .wait_exit(Duration::from_millis(200))
        .unwrap_or(false)
    {
        return Ok(drain(s, k));
    }
    Err(e)
}

/// Takes in what the dead active sent before it died (up to the end of
/// the stream, or a frame it did not finish): [`Ended::ActiveDied`], or
/// [`Ended::ActiveStopped`] if it said it was stopping (its ports given
/// back: no promotion).
fn drain(s: &UnixStream, k: &mut dyn Taker) -> Ended {
    while readable(s) {
        match session::recv(s, Duration::from_millis(10), "the active's last changes") {
            Ok(f) if f.kind == kind::HEARTBEAT || f.kind == kind::DEATHWATCH => {}
            Ok(f) => {
                if let Err(why) = k.receive(f) {
                    tracing::warn!("standby: a last change of the dead active not taken: {why}");
                }
            }
            Err(Failure::Aborted(why)) if why == STOPPING => return Ended::ActiveStopped,
            Err(_) => break,
        }
    }
    Ended::ActiveDied
}

/// The standby's view of the active's death: its death watch if it sent
/// one (fires before the kernel unmaps the dead process's memory), else
/// its pidfd (after).
#[derive(Default)]
struct Watch {
    watcher: Option<Watcher>,
    /// The death watch fired (`EOWNERDEAD`): waiting for every thread of
    /// the active to be exiting.
    fired: bool,
}

impl Watch {
    /// Takes the active's death watch in (a frame of [`kind::DEATHWATCH`]).
    fn take(&mut self, f: rvs_io::fdpass::Frame) {
        let r = f.fds.into_iter().next().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no descriptor in it")
        });
        match r
            .and_then(DeathWatch::open)
            .and_then(|w| std::sync::Arc::new(w).watch())
        {
            Ok(w) => self.watcher = Some(w),
            Err(e) => {
                tracing::warn!("standby: the active's death watch not taken ({e}): pidfd only")
            }
        }
    }

    /// What to wait on: the connection, the pidfd and the death watch
    /// (until it fired).
    fn fds(&self, s: &UnixStream, active: &Peer) -> Vec<i32> {
        let mut v = vec![s.as_raw_fd(), active.fd().as_raw_fd()];
        if let Some(w) = self.watcher.as_ref().filter(|_| !self.fired) {
            v.push(w.fd().as_raw_fd());
        }
        v
    }

    fn timeout_ms(&self) -> i32 {
        if self.fired {
            1
        } else {
            5
        }
    }

    /// Whether the active is gone, and how that was seen: its pidfd, or
    /// its death watch once every thread of it is exiting (none can touch
    /// a ring again). A watch released normally is ignored.
    fn died(&mut self, active: &Peer) -> Option<&'static str> {
        if active.wait_exit(Duration::ZERO).unwrap_or(false) {
            return Some("its pidfd");
        }
        match self.watcher.as_mut().and_then(Watcher::outcome) {
            Some(Outcome::OwnerDied) => self.fired = true,
            Some(Outcome::Released) => self.watcher = None,
            None => {}
        }
        (self.fired && deathwatch::all_tasks_exiting(active.pid()))
            .then_some("its death watch, every thread exiting")
    }
}

#[cfg(test)]
mod tests;

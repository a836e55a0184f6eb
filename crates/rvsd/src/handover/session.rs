//! The order of a hand-over's steps, and what each side does when the
//! other fails at any of them (`docs/design/hot-upgrade.md`, sections 1
//! and 2), over the running rvsd's control connection with
//! [`rvs_io::fdpass`] frames.
//!
//! | step | running rvsd ([`give`], a [`Giver`]) | new rvsd ([`take`], a [`Taker`]) |
//! |---|---|---|
//! | HELLO | checks the new one's, answers its own or REFUSE | sends its own; REFUSE ends it |
//! | pre-copy | sends state while it forwards, then PRECOPY_DONE | takes every frame in |
//! | FREEZE | parks its workers, sends what they leave, then FROZEN | sends FREEZE when prepared |
//! | START | waits | starts its workers, sends STARTED |
//! | rolling (instead) | per FREEZE naming a worker: parks it alone, FROZEN | per worker: FREEZE naming it, starts it on FROZEN; then STARTED |
//! | probation | takes no client ([`Giver::started`]), keeps the changes the new one made ([`Giver::carried_back`]) | serves the control socket, sends back each change it applies |
//! | COMMIT | lets go of everything and exits | after a probation, sends COMMIT |
//!
//! Until FREEZE a failure on either side costs nothing: the running rvsd
//! never stopped. After FREEZE, an ABORT from the new rvsd is its promise
//! that its workers do not run (any more): before STARTED the running
//! rvsd thaws its workers as they were ([`Giver::thaw`]), after STARTED it
//! resumes from the rings as the new one left them ([`Giver::recover`]).
//! Anything else after FREEZE (the connection lost, a timeout) may mean
//! workers of the new rvsd ran or still run: the running rvsd kills it
//! first ([`Giver::kill_successor`]; two processes must never read the
//! same rings), then recovers.
//!
//! Rolling (`rvsd --takeover --rolling`, AF_PACKET only): the same, one
//! worker at a time. After the first FROZEN a failure is handled as one
//! after STARTED: the running rvsd's parked workers recover from their
//! rings (those of a worker whose successor never started are as it left
//! them), its workers not yet parked never stopped; the new rvsd stops
//! every worker it started before it sends ABORT, and when the running
//! rvsd fails itself it kills the new one before it recovers.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rvs_io::fdpass::{self, Frame};

use super::compat::Kind;

/// Frame kinds of the session itself, as `u16` (from [`Kind`]); every
/// other kind is the state a step carries.
pub mod kind {
    use super::Kind;
    /// HELLO: each side's versions and settings.
    pub const HELLO: u16 = Kind::HELLO.0;
    /// REFUSE: the running rvsd will not hand over (text).
    pub const REFUSE: u16 = Kind::REFUSE.0;
    /// ABORT: a side gives up (text).
    pub const ABORT: u16 = Kind::ABORT.0;
    /// FREEZE: the new rvsd is ready; the running one stops reading.
    pub const FREEZE: u16 = Kind::FREEZE.0;
    /// FROZEN: every worker of the running rvsd parked, all state sent.
    pub const FROZEN: u16 = Kind::FROZEN.0;
    /// COMMIT: the new rvsd forwards; the running one exits.
    pub const COMMIT: u16 = Kind::COMMIT.0;
    /// PRECOPY_DONE: the pre-copy is complete.
    pub const PRECOPY_DONE: u16 = Kind::PRECOPY_DONE.0;
    /// STARTED: the new rvsd's workers run.
    pub const STARTED: u16 = Kind::STARTED.0;
    /// HEARTBEAT: a warm standby's session is alive (both ways).
    pub const HEARTBEAT: u16 = Kind::HEARTBEAT.0;
    /// DEATHWATCH: the active's [`rvs_io::deathwatch`] memfd, held by it
    /// (to a standby whose HELLO says `deathwatch`; not negotiated).
    pub const DEATHWATCH: u16 = Kind::DEATHWATCH.0;
}

/// The version of the session's own frames.
pub const VERSION: u16 = 1;

/// A frame to send: its descriptors are closed once sent.
#[derive(Debug)]
pub struct Out {
    /// What it is.
    pub kind: u16,
    /// The version of `kind` both sides agreed on.
    pub version: u16,
    /// Its bytes.
    pub payload: Vec<u8>,
    /// Descriptors passed with it.
    pub fds: Vec<OwnedFd>,
}

/// Where a step's frames go.
pub type Sink<'a> = dyn FnMut(Out) -> io::Result<()> + 'a;

/// The running rvsd's part.
pub trait Giver {
    /// Checks the new rvsd's HELLO: this side's HELLO, or why not.
    fn hello(&mut self, theirs: &[u8]) -> Result<Vec<u8>, String>;
    /// Sends the state that can go while the workers forward
    /// (configuration, descriptors, a pre-copy of the tables).
    fn precopy(&mut self, out: &mut Sink) -> Result<(), String>;
    /// Between the pre-copy and FREEZE, called every millisecond or so:
    /// sends what changed since (the log of the tables' changes).
    fn follow(&mut self, _out: &mut Sink) -> Result<(), String> {
        Ok(())
    }
    /// Whether the new rvsd's HELLO said it takes a death watch
    /// ([`kind::DEATHWATCH`]; a warm standby only).
    fn deathwatch(&self) -> bool {
        false
    }
    /// Parks the workers and sends what they leave (the last changes of
    /// the tables, ring positions).
    fn freeze(&mut self, out: &mut Sink) -> Result<(), String>;
    /// Rolling (a FREEZE naming worker `w`): parks that worker alone and
    /// sends what it leaves; with the last one, what belongs to no worker
    /// (the sync stream's state). Changes are refused from the first.
    fn freeze_worker(&mut self, w: u16, _out: &mut Sink) -> Result<(), String> {
        Err(format!(
            "worker {w}: this rvsd cannot switch one worker at a time"
        ))
    }
    /// The hand-over ended before the new rvsd started: stop sending
    /// changes; the workers resume (if parked) as they were.
    fn thaw(&mut self);
    /// The new rvsd started and then failed or died: the workers resume
    /// from the rings as the new one left them.
    fn recover(&mut self);
    /// The new rvsd's workers run and it serves the control socket from
    /// now on: this side accepts no client until it recovers.
    fn started(&mut self) {}
    /// A change the new rvsd applied in its probation (a CONTROL_LOG
    /// frame), kept to be applied here if it fails.
    fn carried_back(&mut self, _f: &Frame) -> Result<(), String> {
        Ok(())
    }
    /// The new rvsd committed: let go of everything without giving
    /// anything back (the caller then exits).
    fn commit(&mut self);
    /// Stops the new rvsd for good (it may still run after a timeout).
    fn kill_successor(&mut self);
}

/// The new rvsd's part.
pub trait Taker {
    /// This side's HELLO.
    fn hello(&mut self) -> Vec<u8>;
    /// The running rvsd's HELLO (it accepted).
    fn accepted(&mut self, theirs: &[u8]) -> Result<(), String>;
    /// A frame of state (pre-copy or the freeze's).
    fn receive(&mut self, f: Frame) -> Result<(), String>;
    /// The pre-copy is complete: last checks before asking for the freeze.
    fn prepared(&mut self) -> Result<(), String>;
    /// Everything is in: start the workers. Whatever can fail comes before
    /// the workers are let go: on `Err` no worker touched a ring.
    fn start(&mut self) -> Result<(), String>;
    /// How many workers to start one at a time ([`take`] sends a FREEZE
    /// naming each, in order); 0: all at once.
    fn rolling(&self) -> u16 {
        0
    }
    /// Rolling: starts worker `w` alone (its old one parked). On `Err` it
    /// did not touch a ring; workers started before it may run.
    fn start_worker(&mut self, w: u16) -> Result<(), String> {
        Err(format!("worker {w}: this rvsd starts all workers at once"))
    }
    /// The workers run: whether they keep running well enough to commit.
    fn probation(&mut self) -> Result<(), String>;
    /// The hand-over failed after [`Taker::start`]: stop the workers; when
    /// this returns none touches a ring again.
    fn stop(&mut self);
}

/// How long each side waits for the other.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Before FREEZE (the running rvsd forwards meanwhile).
    pub prepare: Duration,
    /// From FREEZE to STARTED: the workers are parked, nothing forwards.
    pub start: Duration,
    /// From STARTED to COMMIT (the probation).
    pub commit: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            prepare: Duration::from_secs(120),
            start: Duration::from_secs(2),
            commit: Duration::from_secs(10),
        }
    }
}

/// What a session ended with, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The running rvsd refused (HELLO).
    Refused(String),
    /// A side gave up with this text (its own or the other's ABORT).
    Aborted(String),
    /// The connection failed or ended, or a wait timed out.
    Lost(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(t) => write!(f, "refused: {t}"),
            Failure::Aborted(t) => write!(f, "aborted: {t}"),
            Failure::Lost(t) => write!(f, "connection lost: {t}"),
        }
    }
}

pub(super) fn send(s: &UnixStream, o: Out) -> io::Result<()> {
    let fds: Vec<_> = o.fds.iter().map(|f| f.as_fd()).collect();
    fdpass::send(s, o.kind, o.version, &o.payload, &fds)
}

pub(super) fn control(kind: u16, text: &str) -> Out {
    control_bytes(kind, text.as_bytes().to_vec())
}

/// Receives the next frame within `t`.
pub(super) fn recv(s: &UnixStream, t: Duration, waiting_for: &str) -> Result<Frame, Failure> {
    s.set_read_timeout(Some(t))
        .map_err(|e| Failure::Lost(e.to_string()))?;
    match fdpass::recv(s) {
        Ok(Some(f)) if f.kind == kind::ABORT => Err(Failure::Aborted(text(&f))),
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err(Failure::Lost(format!(
            "the other side closed the connection while this one waited for {waiting_for}"
        ))),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(Failure::Lost(format!(
                "no {waiting_for} within {} ms",
                t.as_millis()
            )))
        }
        Err(e) => Err(Failure::Lost(e.to_string())),
    }
}

fn text(f: &Frame) -> String {
    String::from_utf8_lossy(&f.payload).into_owned()
}

/// Receives a frame that must be `want`.
fn expect(s: &UnixStream, t: Duration, want: u16, name: &str) -> Result<Frame, Failure> {
    let f = recv(s, t, name)?;
    if f.kind == want {
        Ok(f)
    } else {
        Err(Failure::Lost(format!(
            "frame kind {} where {name} was due",
            f.kind
        )))
    }
}

/// Sends ABORT (best effort) and returns the failure.
pub(super) fn abort(s: &UnixStream, why: String) -> Failure {
    let _ = send(s, control(kind::ABORT, &why));
    Failure::Aborted(why)
}

/// The running rvsd's side of a session on `s`, the connection the new
/// rvsd opened. `Ok` once it committed: the caller exits.
pub fn give(s: &UnixStream, g: &mut dyn Giver, t: Timeouts) -> Result<(), Failure> {
    give_hello(s, g, t)?;
    // Before FREEZE nothing stopped: giving up costs only the sinks.
    let pre = give_precopy(s, g).and_then(|()| follow_until(s, g, t.prepare, &[kind::FREEZE]));
    let freeze = match pre {
        Ok(f) => f,
        Err(e) => {
            g.thaw();
            return Err(e);
        }
    };
    match freeze.payload.is_empty() {
        true => give_all(s, g, t)?,
        false => give_rolling(s, g, t, freeze)?,
    }
    g.started();
    match wait_commit(s, g, t.commit) {
        Ok(()) => {
            g.commit();
            Ok(())
        }
        Err(e) => Err(fail_after_start(g, e)),
    }
}

/// FREEZE for all workers at once, up to STARTED; on `Err` the workers
/// were thawed or recovered.
fn give_all(s: &UnixStream, g: &mut dyn Giver, t: Timeouts) -> Result<(), Failure> {
    let frozen = (|| {
        let mut sink = |o: Out| send(s, o);
        g.freeze(&mut sink).map_err(|why| abort(s, why))?;
        send(s, control(kind::FROZEN, "")).map_err(lost)?;
        expect(s, t.start, kind::STARTED, "STARTED")
    })();
    match frozen {
        Ok(_) => Ok(()),
        // Its workers never ran.
        Err(e @ Failure::Aborted(_)) => {
            g.thaw();
            Err(e)
        }
        Err(e) => Err(fail_after_start(g, e)),
    }
}

/// The worker a rolling FREEZE names.
fn worker_of(f: &Frame) -> Result<u16, Failure> {
    let b: [u8; 2] = f.payload.as_slice().try_into().map_err(|_| {
        Failure::Lost(format!(
            "a FREEZE of {} bytes (a worker index has 2)",
            f.payload.len()
        ))
    })?;
    Ok(u16::from_le_bytes(b))
}

/// Rolling: one FREEZE per worker (`first` names the first), each answered
/// by that worker parked and FROZEN, until STARTED. Whatever fails after
/// the first FROZEN, new workers may have read rings: the new rvsd is
/// killed unless it said it stopped them (its ABORT), then every parked
/// worker recovers from its rings; workers not yet parked never stopped.
fn give_rolling(
    s: &UnixStream,
    g: &mut dyn Giver,
    t: Timeouts,
    first: Frame,
) -> Result<(), Failure> {
    let mut f = first;
    let mut moved = 0u32;
    loop {
        let step = worker_of(&f).and_then(|w| {
            let mut sink = |o: Out| send(s, o);
            g.freeze_worker(w, &mut sink).map_err(|why| abort(s, why))?;
            send(s, control(kind::FROZEN, "")).map_err(lost)
        });
        match step {
            Ok(()) => moved += 1,
            // Its own failure before any new worker ran.
            Err(e) if moved == 0 => {
                g.thaw();
                return Err(e);
            }
            // Its own failure, new workers running: they must be gone
            // before the rings are read here again.
            Err(e) => {
                g.kill_successor();
                g.recover();
                return Err(e);
            }
        }
        f = match follow_until(s, g, t.start, &[kind::FREEZE, kind::STARTED]) {
            Ok(f) => f,
            Err(e) => return Err(fail_after_start(g, e)),
        };
        if f.kind == kind::STARTED {
            return Ok(());
        }
    }
}

/// The first step a hot upgrade and a warm standby share on the running
/// side: HELLO checked (or REFUSE). Nothing to undo on `Err`.
pub(super) fn give_hello(s: &UnixStream, g: &mut dyn Giver, t: Timeouts) -> Result<(), Failure> {
    let theirs = expect(s, t.prepare, kind::HELLO, "HELLO")?;
    match g.hello(&theirs.payload) {
        Ok(ours) => send(s, control_bytes(kind::HELLO, ours)).map_err(lost),
        Err(why) => {
            let _ = send(s, control(kind::REFUSE, &why));
            Err(Failure::Refused(why))
        }
    }
}

/// The next: the pre-copy sent, then PRECOPY_DONE. On `Err` the caller
/// thaws.
pub(super) fn give_precopy(s: &UnixStream, g: &mut dyn Giver) -> Result<(), Failure> {
    let mut sink = |o: Out| send(s, o);
    g.precopy(&mut sink).map_err(|why| abort(s, why))?;
    send(s, control(kind::PRECOPY_DONE, "")).map_err(lost)
}

/// Waits for a frame of a kind in `want` (FREEZE; when rolling also
/// STARTED), sending what changed meanwhile ([`Giver::follow`]).
fn follow_until(
    s: &UnixStream,
    g: &mut dyn Giver,
    t: Duration,
    want: &[u16],
) -> Result<Frame, Failure> {
    use std::os::fd::AsRawFd;
    let start = std::time::Instant::now();
    let name = match want {
        [kind::FREEZE] => "FREEZE",
        _ => "FREEZE or STARTED",
    };
    loop {
        let mut sink = |o: Out| send(s, o);
        g.follow(&mut sink).map_err(|why| abort(s, why))?;
        // FREEZE and STARTED are small frames: once readable, they come whole.
        let ready = rvs_io::wait_any(&[s.as_raw_fd()], 1).is_ok_and(|n| n > 0);
        if ready || start.elapsed() >= t {
            let left = t
                .saturating_sub(start.elapsed())
                .max(Duration::from_millis(1));
            let f = recv(s, left, name)?;
            if want.contains(&f.kind) {
                return Ok(f);
            }
            return Err(Failure::Lost(format!(
                "frame kind {} where {name} was due",
                f.kind
            )));
        }
    }
}

/// Waits for COMMIT, keeping the changes the new rvsd sends back meanwhile.
fn wait_commit(s: &UnixStream, g: &mut dyn Giver, t: Duration) -> Result<(), Failure> {
    let end = std::time::Instant::now() + t;
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        let f = recv(s, left.max(Duration::from_millis(1)), "COMMIT")?;
        match f.kind {
            kind::COMMIT => return Ok(()),
            k if k == Kind::CONTROL_LOG.0 => g.carried_back(&f).map_err(Failure::Lost)?,
            k => {
                return Err(Failure::Lost(format!(
                    "frame kind {k} where COMMIT was due"
                )))
            }
        }
    }
}

/// The new rvsd's workers may have used the rings: unless it said it
/// stopped them (ABORT), it must be gone first; then resume from the rings.
fn fail_after_start(g: &mut dyn Giver, e: Failure) -> Failure {
    if !matches!(e, Failure::Aborted(_)) {
        g.kill_successor();
    }
    g.recover();
    e
}

pub(super) fn control_bytes(kind: u16, payload: Vec<u8>) -> Out {
    Out {
        kind,
        version: VERSION,
        payload,
        fds: Vec::new(),
    }
}

pub(super) fn lost(e: io::Error) -> Failure {
    Failure::Lost(e.to_string())
}

/// The new rvsd's side of a session on `s`, connected to the running
/// rvsd's control socket (after its takeover request was accepted). `Ok`
/// once it committed: the running rvsd exits and this one is the daemon.
pub fn take(s: &UnixStream, k: &mut dyn Taker, t: Timeouts) -> Result<(), Failure> {
    take_precopy(s, k, t)?;
    match k.rolling() {
        0 => {
            ask_freeze(s, Vec::new())?;
            receive_until(s, k, t.start, kind::FROZEN, "FROZEN")?;
            k.start().map_err(|why| abort(s, why))?;
        }
        n => roll(s, k, t, n)?,
    }
    send(s, control(kind::STARTED, "")).map_err(|e| {
        k.stop();
        lost(e)
    })?;
    if let Err(why) = k.probation() {
        // Stopped before the ABORT that tells the running rvsd so.
        k.stop();
        return Err(abort(s, why));
    }
    send(s, control(kind::COMMIT, "")).map_err(|e| {
        k.stop();
        lost(e)
    })
}

/// Sends FREEZE (`payload`: empty, or the worker a rolling one names).
fn ask_freeze(s: &UnixStream, payload: Vec<u8>) -> Result<(), Failure> {
    // A running rvsd that gave up while it sent changes closed its end
    // after its ABORT: its reason, rather than the broken pipe.
    send(s, control_bytes(kind::FREEZE, payload)).map_err(|e| {
        match recv(s, Duration::from_millis(100), "ABORT") {
            Err(f @ Failure::Aborted(_)) => f,
            _ => lost(e),
        }
    })
}

/// How a rolling step failed: here (to be told with ABORT) or there.
enum Stop {
    Here(String),
    There(Failure),
}

/// Rolling: for each of the `n` workers in turn, FREEZE naming it, what
/// its old worker leaves until FROZEN, then it alone starts. On a failure
/// the workers already started stop before the running rvsd hears of it
/// (its ABORT is the promise that none runs).
fn roll(s: &UnixStream, k: &mut dyn Taker, t: Timeouts, n: u16) -> Result<(), Failure> {
    for w in 0..n {
        let e = match roll_one(s, k, t, w) {
            Ok(()) => continue,
            Err(e) => e,
        };
        if w > 0 {
            k.stop();
        }
        return Err(match e {
            Stop::Here(why) => abort(s, why),
            Stop::There(f) => f,
        });
    }
    Ok(())
}

fn roll_one(s: &UnixStream, k: &mut dyn Taker, t: Timeouts, w: u16) -> Result<(), Stop> {
    ask_freeze(s, w.to_le_bytes().to_vec()).map_err(Stop::There)?;
    loop {
        let f = recv(s, t.start, "FROZEN").map_err(Stop::There)?;
        if f.kind == kind::FROZEN {
            break;
        }
        k.receive(f).map_err(Stop::Here)?;
    }
    k.start_worker(w).map_err(Stop::Here)
}

/// The steps a hot upgrade and a warm standby share on the new side: HELLO
/// sent and answered, the pre-copy taken in until PRECOPY_DONE, then
/// [`Taker::prepared`].
pub fn take_precopy(s: &UnixStream, k: &mut dyn Taker, t: Timeouts) -> Result<(), Failure> {
    send(s, control_bytes(kind::HELLO, k.hello())).map_err(lost)?;
    let f = recv(s, t.prepare, "HELLO")?;
    match f.kind {
        kind::HELLO => k.accepted(&f.payload).map_err(|why| abort(s, why))?,
        kind::REFUSE => return Err(Failure::Refused(text(&f))),
        other => return Err(Failure::Lost(format!("frame kind {other} for HELLO"))),
    }
    receive_until(s, k, t.prepare, kind::PRECOPY_DONE, "PRECOPY_DONE")?;
    k.prepared().map_err(|why| abort(s, why))
}

/// Hands frames to `k` until one of kind `end`.
fn receive_until(
    s: &UnixStream,
    k: &mut dyn Taker,
    t: Duration,
    end: u16,
    name: &str,
) -> Result<(), Failure> {
    loop {
        let f = recv(s, t, name)?;
        if f.kind == end {
            return Ok(());
        }
        k.receive(f).map_err(|why| abort(s, why))?;
    }
}

#[cfg(test)]
mod tests;

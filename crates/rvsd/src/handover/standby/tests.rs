use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvs_io::fdpass::Frame;
use rvs_io::peer::Peer;

use super::*;
use crate::handover::session::{Giver, Out, Sink, Taker};

#[test]
fn heartbeats_are_due_every_period_and_silence_counts_from_the_last_heard() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut hb = Heartbeat::new(t0, ms(10), ms(200));
    assert!(hb.send_due(t0), "the first is due at once");
    assert!(!hb.send_due(t0 + ms(9)));
    assert!(hb.send_due(t0 + ms(10)));
    assert!(!hb.send_due(t0 + ms(19)));
    assert!(hb.send_due(t0 + ms(25)));
    assert_eq!(hb.silent_for(t0 + ms(199)), None);
    assert_eq!(hb.silent_for(t0 + ms(200)), Some(ms(200)));
    hb.heard(t0 + ms(150));
    assert_eq!(hb.silent_for(t0 + ms(300)), None);
    assert_eq!(hb.silent_for(t0 + ms(400)), Some(ms(250)));
    // A late report of an earlier frame does not move it back.
    hb.heard(t0 + ms(100));
    assert_eq!(hb.silent_for(t0 + ms(400)), Some(ms(250)));
}

#[test]
fn a_standby_may_take_the_grace_before_its_first_heartbeat_then_the_limit() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut hb = Heartbeat::new(t0, ms(10), ms(200)).with_first_grace(ms(5000));
    assert_eq!(hb.silent_for(t0 + ms(4999)), None, "still installing");
    assert_eq!(hb.silent_for(t0 + ms(5000)), Some(ms(5000)));
    hb.heard(t0 + ms(3000));
    assert_eq!(hb.silent_for(t0 + ms(3199)), None);
    assert_eq!(hb.silent_for(t0 + ms(3200)), Some(ms(200)));
    // A grace shorter than the limit changes nothing.
    let hb = Heartbeat::new(t0, ms(10), ms(200)).with_first_grace(ms(50));
    assert_eq!(hb.silent_for(t0 + ms(199)), None);
}

#[test]
fn a_request_while_a_standby_is_attached_is_refused_naming_its_pid() {
    assert_eq!(
        busy(4242),
        "a warm standby (rvsd --standby, pid 4242) is attached; stop it first (kill 4242) and try again"
    );
    assert_eq!(busy(0), "another takeover is under way");
}

/// The active's part: one change sent by `follow` (kind 102), calls noted.
#[derive(Default)]
struct G {
    calls: Vec<String>,
    sent: bool,
}

impl Giver for G {
    fn hello(&mut self, _: &[u8]) -> Result<Vec<u8>, String> {
        self.calls.push("hello".into());
        Ok(b"active".to_vec())
    }
    fn precopy(&mut self, out: &mut Sink) -> Result<(), String> {
        self.calls.push("precopy".into());
        out(Out {
            kind: 100,
            version: 1,
            payload: b"tables".to_vec(),
            fds: Vec::new(),
        })
        .map_err(|e| e.to_string())
    }
    fn follow(&mut self, out: &mut Sink) -> Result<(), String> {
        if !self.sent {
            self.sent = true;
            return out(Out {
                kind: 102,
                version: 1,
                payload: b"change".to_vec(),
                fds: Vec::new(),
            })
            .map_err(|e| e.to_string());
        }
        Ok(())
    }
    fn freeze(&mut self, _: &mut Sink) -> Result<(), String> {
        self.calls.push("freeze".into());
        Ok(())
    }
    fn thaw(&mut self) {
        self.calls.push("thaw".into());
    }
    fn recover(&mut self) {
        self.calls.push("recover".into());
    }
    fn commit(&mut self) {
        self.calls.push("commit".into());
    }
    fn kill_successor(&mut self) {
        self.calls.push("kill".into());
    }
}

/// The standby's part: the kinds of the frames it took in.
#[derive(Default)]
struct K {
    got: Vec<(u16, Vec<u8>)>,
    /// How long `prepared` takes (installing the pre-copy).
    install: Duration,
}

impl Taker for K {
    fn hello(&mut self) -> Vec<u8> {
        b"standby".to_vec()
    }
    fn accepted(&mut self, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn receive(&mut self, f: Frame) -> Result<(), String> {
        self.got.push((f.kind, f.payload));
        Ok(())
    }
    fn prepared(&mut self) -> Result<(), String> {
        std::thread::sleep(self.install);
        Ok(())
    }
    fn start(&mut self) -> Result<(), String> {
        Err("a standby never starts in the session".into())
    }
    fn probation(&mut self) -> Result<(), String> {
        Err("no probation".into())
    }
    fn stop(&mut self) {}
}

fn active(s: UnixStream, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Failure, Vec<String>)> {
    std::thread::spawn(move || {
        let mut g = G::default();
        let e = give(&s, &mut g, Timeouts::default(), &stop);
        (e, g.calls)
    })
}

/// An active (a [`G`]) and a standby (`k`) through the pre-copy; the
/// active is stopped `after` the standby starts following. The standby's
/// end, then the active's end and calls.
fn stopped_after(k: &mut K, after: Duration) -> (Result<Ended, Failure>, (Failure, Vec<String>)) {
    let (a, b) = UnixStream::pair().expect("pair");
    let stop = Arc::new(AtomicBool::new(false));
    let h = active(a, stop.clone());
    session::take_precopy(&b, k, Timeouts::default()).expect("pre-copy");
    let me = Peer::of_pid(std::process::id()).expect("pidfd");
    let t = std::thread::spawn(move || {
        std::thread::sleep(after);
        stop.store(true, SeqCst);
    });
    let end = follow(
        &b,
        k,
        &me,
        &AtomicBool::new(false),
        &StandbySection::default(),
    );
    t.join().expect("stopper");
    (end, h.join().expect("active"))
}

#[test]
fn an_active_that_stops_tells_its_standby_which_stops_with_every_change_taken() {
    let mut k = K::default();
    let (end, (e, calls)) = stopped_after(&mut k, Duration::from_millis(50));
    assert_eq!(end, Ok(Ended::ActiveStopped));
    assert_eq!(
        k.got,
        [(100, b"tables".to_vec()), (102, b"change".to_vec())]
    );
    assert_eq!(e, Failure::Aborted(STOPPING.into()));
    assert_eq!(
        calls,
        ["hello", "precopy", "thaw"],
        "logs off, nothing frozen"
    );
}

/// A standby that installs its pre-copy for longer than the silence
/// limit before it first beats is not given up (5,000,000 connections
/// were: the active detached it as it became ready).
#[test]
fn a_standby_installing_its_pre_copy_past_the_silence_limit_stays_attached() {
    let mut k = K {
        install: STANDBY_SILENT + Duration::from_millis(500),
        ..K::default()
    };
    let (end, (e, _)) = stopped_after(&mut k, Duration::from_millis(100));
    assert_eq!(end, Ok(Ended::ActiveStopped), "the active gave it up");
    assert_eq!(e, Failure::Aborted(STOPPING.into()));
}

#[test]
fn a_standby_that_goes_away_leaves_the_active_thawed() {
    let (a, b) = UnixStream::pair().expect("pair");
    let h = active(a, Arc::new(AtomicBool::new(false)));
    let mut k = K::default();
    session::take_precopy(&b, &mut k, Timeouts::default()).expect("pre-copy");
    drop(b);
    let (e, calls) = h.join().expect("active");
    // Lost on a heartbeat, or (a loaded machine: its one change sent after
    // the drop) the change's broken pipe.
    let pipe = matches!(&e, Failure::Aborted(w) if w.contains("Broken pipe"));
    assert!(matches!(e, Failure::Lost(_)) || pipe, "{e:?}");
    assert_eq!(calls, ["hello", "precopy", "thaw"]);
}

#[test]
fn the_standby_promotes_only_when_the_active_process_is_gone() {
    // The active drops the connection but lives (here: this process):
    // no promotion, an error.
    let (a, b) = UnixStream::pair().expect("pair");
    let me = Peer::of_pid(std::process::id()).expect("pidfd");
    drop(a);
    let end = follow(
        &b,
        &mut K::default(),
        &me,
        &AtomicBool::new(false),
        &StandbySection::default(),
    );
    assert!(matches!(end, Err(Failure::Lost(_))), "{end:?}");
    // It dies (a child killed) after sending a change while its end of
    // the connection stays open: the pidfd tells, and the change it sent
    // is taken in first.
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let dying = Peer::of_pid(child.id()).expect("pidfd");
    let (a, b) = UnixStream::pair().expect("pair");
    session::send(&a, session::control(102, "last change")).expect("send");
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        let _ = child.kill();
        let killed = Instant::now();
        let _ = child.wait();
        (a, killed)
    });
    let mut k = K::default();
    let end = follow(
        &b,
        &mut k,
        &dying,
        &AtomicBool::new(false),
        &StandbySection::default(),
    );
    let seen = Instant::now();
    let (_a, killed) = t.join().expect("killer");
    assert_eq!(end, Ok(Ended::ActiveDied));
    assert_eq!(k.got, [(102, b"last change".to_vec())]);
    // The connection stays open (`_a`): only the pidfd told.
    println!(
        "the death noticed {:.2} ms after the kill",
        seen.saturating_duration_since(killed).as_secs_f64() * 1e3
    );
}

/// Set in a child of this test binary: the death watch to hold (a path
/// to reopen its memfd by) and how many MiB to touch.
const HOLD: &str = "RVS_TEST_DEATHWATCH_HOLD";
/// The line such a child prints once it holds the death watch.
const HELD: &str = "rvs-deathwatch-held";

/// Run as a child (with [`HOLD`] set) by [`child_holding`]: holds the
/// death watch, touches its memory, says so on stdout, and waits to be
/// killed. Returns at once in a normal run.
#[test]
fn death_watch_holder_child() {
    let Ok(arg) = std::env::var(HOLD) else { return };
    let (path, mib) = arg.split_once(',').expect("path,mib");
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(path)
        .expect("reopen");
    let w = rvs_io::deathwatch::DeathWatch::open(f.into()).expect("open");
    w.hold_until_exit().expect("hold");
    let mut mem = vec![0u8; mib.parse::<usize>().expect("mib") << 20];
    for i in (0..mem.len()).step_by(4096) {
        mem[i] = 1;
    }
    let mut out = std::io::stdout();
    std::io::Write::write_all(&mut out, format!("\n{HELD}\n").as_bytes()).expect("stdout");
    std::io::Write::flush(&mut out).expect("stdout");
    loop {
        std::thread::sleep(Duration::from_secs(1));
        std::hint::black_box(&mem);
    }
}

/// A child process that holds `w`'s death watch, with `mib` MiB of
/// memory touched (the kernel unmaps it before the pidfd says it died).
fn child_holding(w: &rvs_io::deathwatch::DeathWatch, mib: usize) -> std::process::Child {
    use std::os::fd::AsRawFd;
    let path = format!("/proc/{}/fd/{}", std::process::id(), w.fd().as_raw_fd());
    let mut c = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "handover::standby::tests::death_watch_holder_child",
            "--nocapture",
        ])
        .env(HOLD, format!("{path},{mib}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the holder");
    let out = std::io::BufReader::new(c.stdout.take().expect("stdout"));
    // The test harness prints too: wait for the holder's line.
    let held = std::io::BufRead::lines(out).any(|l| l.is_ok_and(|l| l == HELD));
    if !held {
        let _ = c.kill();
        let _ = c.wait();
        panic!("the holder child died before it held the death watch");
    }
    c
}

#[test]
fn the_standby_sees_the_active_dead_on_its_death_watch_before_its_pidfd() {
    let w = Arc::new(rvs_io::deathwatch::DeathWatch::new().expect("death watch"));
    let mut child = child_holding(&w, 256);
    let peer = Peer::of_pid(child.id()).expect("pidfd");
    let mut watch = Watch::default();
    watch.take(Frame {
        kind: kind::DEATHWATCH,
        version: 1,
        payload: Vec::new(),
        fds: vec![w.fd().try_clone_to_owned().expect("dup")],
    });
    assert_eq!(watch.died(&peer), None, "alive");
    peer.kill().expect("kill");
    let killed = Instant::now();
    let how = loop {
        if let Some(how) = watch.died(&peer) {
            break how;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "never seen dead"
        );
        std::thread::sleep(Duration::from_micros(200));
    };
    let seen = killed.elapsed();
    let pidfd_too = peer.wait_exit(Duration::ZERO).expect("poll");
    peer.wait_exit(Duration::from_secs(10)).expect("poll");
    let pidfd = killed.elapsed();
    let _ = child.wait();
    println!(
        "death watch: {:.2} ms, pidfd: {:.2} ms after the kill",
        seen.as_secs_f64() * 1e3,
        pidfd.as_secs_f64() * 1e3
    );
    assert_eq!(how, "its death watch, every thread exiting");
    assert!(!pidfd_too, "the pidfd said it first");
}

#[test]
fn a_death_watch_released_normally_does_not_promote() {
    let w = Arc::new(rvs_io::deathwatch::DeathWatch::new().expect("death watch"));
    let held = w.hold().expect("hold");
    let me = Peer::of_pid(std::process::id()).expect("pidfd");
    let mut watch = Watch::default();
    watch.take(Frame {
        kind: kind::DEATHWATCH,
        version: 1,
        payload: Vec::new(),
        fds: vec![w.fd().try_clone_to_owned().expect("dup")],
    });
    drop(held);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(100) {
        assert_eq!(watch.died(&me), None);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(watch.watcher.is_none(), "the release was seen");
}

/// An active that lives but sends nothing: a child that sleeps, its end
/// of the connection open and silent.
fn silent_active() -> (std::process::Child, Peer, UnixStream, UnixStream) {
    let child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let peer = Peer::of_pid(child.id()).expect("pidfd");
    let (a, b) = UnixStream::pair().expect("pair");
    (child, peer, a, b)
}

#[test]
fn a_hung_active_is_killed_and_replaced_only_with_kill_hung() {
    let conf = |kill_hung| StandbySection {
        hung_ms: 50,
        kill_hung,
    };
    // kill_hung = false: logged, never killed, no promotion while it lives.
    let (mut child, peer, _a, b) = silent_active();
    let term = Arc::new(AtomicBool::new(false));
    let t2 = term.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        t2.store(true, SeqCst);
    });
    let end = follow(&b, &mut K::default(), &peer, &term, &conf(false));
    stopper.join().expect("stopper");
    assert_eq!(end, Ok(Ended::Stopped));
    assert!(child.try_wait().expect("wait").is_none(), "it lives");
    let _ = child.kill();
    let _ = child.wait();
    // kill_hung = true: SIGKILLed after hung_ms, then promoted.
    let (mut child, peer, _a, b) = silent_active();
    let t = Instant::now();
    let end = follow(
        &b,
        &mut K::default(),
        &peer,
        &AtomicBool::new(false),
        &conf(true),
    );
    let took = t.elapsed();
    let status = child.wait().expect("wait");
    assert_eq!(end, Ok(Ended::ActiveDied));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(took >= Duration::from_millis(50), "not before hung_ms");
}

#[test]
fn hung_ms_is_refused_outside_50_to_60000() {
    let at = |hung_ms| StandbySection {
        hung_ms,
        kill_hung: false,
    };
    assert_eq!(StandbySection::default().problem(), None);
    assert_eq!(at(50).problem(), None);
    assert_eq!(at(60_000).problem(), None);
    let p = at(49).problem().expect("too short");
    assert!(
        p.starts_with("[standby] hung_ms = 49: must be 50..=60000"),
        "{p}"
    );
    assert!(at(60_001).problem().is_some());
}

//! The session's order and its failure handling, with both sides in one
//! process over a socket pair: each side's calls are logged, and the
//! checks are what an operator relies on (a failed hand-over leaves the
//! running rvsd forwarding; two processes never run workers on the same
//! rings; the new one says why it stopped).

use std::io::{Read, Seek, Write};
use std::sync::{Arc, Mutex};

use super::*;

type Log = Arc<Mutex<Vec<String>>>;

fn push(l: &Log, s: &str) {
    l.lock().unwrap().push(s.to_string());
}

fn calls(l: &Log) -> Vec<String> {
    l.lock().unwrap().clone()
}

/// A running rvsd that sends one pre-copy frame carrying a descriptor, two
/// frames of changes while it waits for FREEZE, and one freeze frame, and
/// fails where `fail` says.
struct G {
    log: Log,
    fail: &'static str,
    followed: bool,
}

fn file_with(text: &str) -> OwnedFd {
    let p = std::env::temp_dir().join(format!(
        "rvs-session-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut f = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    std::fs::remove_file(&p).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.into()
}

impl Giver for G {
    fn hello(&mut self, theirs: &[u8]) -> Result<Vec<u8>, String> {
        push(
            &self.log,
            &format!("hello {}", String::from_utf8_lossy(theirs)),
        );
        if self.fail == "hello" {
            return Err(
                "workers: the running rvsd has 2, this config 4: restart to change it".into(),
            );
        }
        Ok(b"old".to_vec())
    }
    fn precopy(&mut self, out: &mut Sink) -> Result<(), String> {
        push(&self.log, "precopy");
        if self.fail == "precopy" {
            return Err("connection churn outruns the log".into());
        }
        let o = Out {
            kind: 100,
            version: 1,
            payload: b"tables".to_vec(),
            fds: vec![file_with("umem")],
        };
        out(o).map_err(|e| e.to_string())
    }
    fn follow(&mut self, out: &mut Sink) -> Result<(), String> {
        if self.followed {
            return Ok(());
        }
        self.followed = true;
        push(&self.log, "follow");
        if self.fail == "follow" {
            return Err("connection churn outruns the hand-over log".into());
        }
        for c in [b"change 1", b"change 2"] {
            let o = Out {
                kind: 102,
                version: 1,
                payload: c.to_vec(),
                fds: Vec::new(),
            };
            out(o).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
    fn freeze(&mut self, out: &mut Sink) -> Result<(), String> {
        push(&self.log, "freeze");
        let o = Out {
            kind: 101,
            version: 1,
            payload: b"last".to_vec(),
            fds: Vec::new(),
        };
        out(o).map_err(|e| e.to_string())
    }
    fn freeze_worker(&mut self, w: u16, out: &mut Sink) -> Result<(), String> {
        push(&self.log, &format!("freeze_worker {w}"));
        if self.fail == format!("freeze_worker {w}") {
            return Err(format!("worker {w} did not park within 1 s"));
        }
        let o = Out {
            kind: 101,
            version: 1,
            payload: format!("last of {w}").into_bytes(),
            fds: Vec::new(),
        };
        out(o).map_err(|e| e.to_string())
    }
    fn thaw(&mut self) {
        push(&self.log, "thaw");
    }
    fn recover(&mut self) {
        push(&self.log, "recover");
    }
    fn commit(&mut self) {
        push(&self.log, "commit");
    }
    fn started(&mut self) {
        push(&self.log, "started");
    }
    fn carried_back(&mut self, f: &Frame) -> Result<(), String> {
        push(
            &self.log,
            &format!("back {}", String::from_utf8_lossy(&f.payload)),
        );
        Ok(())
    }
    fn kill_successor(&mut self) {
        push(&self.log, "kill");
    }
}

/// A new rvsd failing where `fail` says; `hang` after STARTED it waits
/// (sends no COMMIT); `die` it drops the connection after STARTED.
struct K {
    log: Log,
    fail: &'static str,
    got: Vec<(u16, Vec<u8>, Vec<String>)>,
    /// Workers to start one at a time (0: all at once).
    roll: u16,
}

impl K {
    fn step(&mut self, name: &str) -> Result<(), String> {
        push(&self.log, name);
        if self.fail == name {
            Err(format!("{name} failed here"))
        } else {
            Ok(())
        }
    }
}

fn read_fd(fd: OwnedFd) -> String {
    let mut f = std::fs::File::from(fd);
    f.rewind().unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

impl Taker for K {
    fn hello(&mut self) -> Vec<u8> {
        push(&self.log, "hello");
        b"new".to_vec()
    }
    fn accepted(&mut self, theirs: &[u8]) -> Result<(), String> {
        self.step(&format!("accepted {}", String::from_utf8_lossy(theirs)))?;
        self.step("accepted")
    }
    fn receive(&mut self, f: Frame) -> Result<(), String> {
        let texts = f.fds.into_iter().map(read_fd).collect();
        self.got.push((f.kind, f.payload, texts));
        self.step("receive")
    }
    fn prepared(&mut self) -> Result<(), String> {
        self.step("prepared")
    }
    fn start(&mut self) -> Result<(), String> {
        self.step("start")
    }
    fn rolling(&self) -> u16 {
        self.roll
    }
    fn start_worker(&mut self, w: u16) -> Result<(), String> {
        self.step(&format!("start_worker {w}"))
    }
    fn probation(&mut self) -> Result<(), String> {
        self.step("probation")?;
        if self.fail == "hang" {
            std::thread::sleep(Duration::from_millis(600));
        }
        Ok(())
    }
    fn stop(&mut self) {
        push(&self.log, "stop");
    }
}

struct Ended {
    giver: Result<(), Failure>,
    taker: Result<(), Failure>,
    g: Vec<String>,
    k: Vec<String>,
    got: Vec<(u16, Vec<u8>, Vec<String>)>,
}

fn short() -> Timeouts {
    Timeouts {
        prepare: Duration::from_secs(5),
        start: Duration::from_millis(300),
        commit: Duration::from_millis(300),
    }
}

/// Runs a session: the running side fails at `gfail`, the new at `kfail`
/// (`die`: the new one's connection closes right after STARTED).
fn run(gfail: &'static str, kfail: &'static str) -> Ended {
    run_rolling(gfail, kfail, 0)
}

/// [`run`] with the new rvsd starting `roll` workers one at a time
/// (`die` then: its connection closes once worker 0 started).
fn run_rolling(gfail: &'static str, kfail: &'static str, roll: u16) -> Ended {
    let (a, b) = UnixStream::pair().unwrap();
    let (gl, kl): (Log, Log) = Default::default();
    let gl2 = gl.clone();
    let old = std::thread::spawn(move || {
        let mut g = G {
            log: gl2,
            fail: gfail,
            followed: false,
        };
        give(&a, &mut g, short())
    });
    let mut k = K {
        log: kl.clone(),
        fail: kfail,
        got: Vec::new(),
        roll,
    };
    let taker = if kfail == "die" && roll > 0 {
        // Worker 0 moved, then the process "dies".
        send(&b, control_bytes(kind::HELLO, k.hello())).unwrap();
        let _ = recv(&b, short().prepare, "HELLO").unwrap();
        receive_until(&b, &mut k, short().prepare, kind::PRECOPY_DONE, "x").unwrap();
        send(&b, control_bytes(kind::FREEZE, 0u16.to_le_bytes().to_vec())).unwrap();
        receive_until(&b, &mut k, short().prepare, kind::FROZEN, "x").unwrap();
        drop(b);
        Ok(())
    } else if kfail == "die" || kfail == "change-die" {
        // Up to STARTED by hand, then the process "dies".
        let mut k2 = K {
            log: kl.clone(),
            fail: "probation",
            got: Vec::new(),
            roll: 0,
        };
        send(&b, control_bytes(kind::HELLO, k2.hello())).unwrap();
        let _ = recv(&b, short().prepare, "HELLO").unwrap();
        receive_until(&b, &mut k2, short().prepare, kind::PRECOPY_DONE, "x").unwrap();
        send(&b, control(kind::FREEZE, "")).unwrap();
        receive_until(&b, &mut k2, short().prepare, kind::FROZEN, "x").unwrap();
        send(&b, control(kind::STARTED, "")).unwrap();
        if kfail == "change-die" {
            // A change it applied and confirmed, then it dies.
            send(&b, control(Kind::CONTROL_LOG.0, "weight 7")).unwrap();
        }
        drop(b);
        Ok(())
    } else {
        take(&b, &mut k, short())
    };
    let giver = old.join().unwrap();
    Ended {
        giver,
        taker,
        g: calls(&gl),
        k: calls(&kl),
        got: k.got,
    }
}

#[test]
fn a_hand_over_runs_the_steps_in_order_and_passes_descriptors() {
    let e = run("", "");
    assert_eq!(e.giver, Ok(()));
    assert_eq!(e.taker, Ok(()));
    assert_eq!(
        e.g,
        [
            "hello new",
            "precopy",
            "follow",
            "freeze",
            "started",
            "commit"
        ]
    );
    assert_eq!(
        e.k,
        [
            "hello",
            "accepted old",
            "accepted",
            "receive",
            "prepared",
            "receive",
            "receive",
            "receive",
            "start",
            "probation"
        ]
    );
    // The changes sent between the pre-copy and FREEZE come before the
    // freeze's own frames.
    assert_eq!(
        e.got,
        [
            (100, b"tables".to_vec(), vec!["umem".to_string()]),
            (102, b"change 1".to_vec(), vec![]),
            (102, b"change 2".to_vec(), vec![]),
            (101, b"last".to_vec(), vec![])
        ]
    );
}

#[test]
fn a_refusal_reaches_the_new_rvsd_word_for_word_and_nothing_else_happens() {
    let e = run("hello", "");
    let why = "workers: the running rvsd has 2, this config 4: restart to change it";
    assert_eq!(e.taker, Err(Failure::Refused(why.into())));
    assert_eq!(e.giver, Err(Failure::Refused(why.into())));
    assert_eq!(e.g, ["hello new"]);
    assert_eq!(e.k, ["hello"]);
}

#[test]
fn before_the_freeze_a_failure_of_either_side_only_thaws_the_running_rvsd() {
    for kfail in ["accepted", "receive", "prepared"] {
        let e = run("", kfail);
        let why = format!("{kfail} failed here");
        assert_eq!(e.taker, Err(Failure::Aborted(why.clone())), "{kfail}");
        assert_eq!(e.giver, Err(Failure::Aborted(why)), "{kfail}");
        assert_eq!(
            e.g.last().map(String::as_str),
            Some("thaw"),
            "{kfail}: {:?}",
            e.g
        );
        assert!(
            !e.g.iter().any(|c| c == "freeze" || c == "kill"),
            "{:?}",
            e.g
        );
    }
    let e = run("precopy", "");
    let why = "connection churn outruns the log".to_string();
    assert_eq!(e.taker, Err(Failure::Aborted(why.clone())));
    assert_eq!(e.giver, Err(Failure::Aborted(why)));
    assert_eq!(e.g, ["hello new", "precopy", "thaw"]);
    // Following the changes fails: the running rvsd thaws.
    let e = run("follow", "");
    let why = "connection churn outruns the hand-over log".to_string();
    assert_eq!(e.taker, Err(Failure::Aborted(why.clone())));
    assert_eq!(e.giver, Err(Failure::Aborted(why)));
    assert_eq!(e.g, ["hello new", "precopy", "follow", "thaw"]);
}

#[test]
fn a_new_rvsd_that_cannot_start_leaves_the_running_one_thawed_not_killed() {
    let e = run("", "start");
    assert_eq!(e.taker, Err(Failure::Aborted("start failed here".into())));
    assert_eq!(e.g, ["hello new", "precopy", "follow", "freeze", "thaw"]);
    assert!(
        !e.k.contains(&"stop".to_string()),
        "never started: {:?}",
        e.k
    );
}

#[test]
fn a_failed_probation_stops_the_new_workers_then_the_running_rvsd_recovers() {
    let e = run("", "probation");
    assert_eq!(
        e.taker,
        Err(Failure::Aborted("probation failed here".into()))
    );
    assert_eq!(e.k.last().map(String::as_str), Some("stop"), "{:?}", e.k);
    assert_eq!(
        e.g,
        [
            "hello new",
            "precopy",
            "follow",
            "freeze",
            "started",
            "recover"
        ]
    );
}

#[test]
fn a_new_rvsd_that_dies_or_hangs_after_starting_is_killed_before_the_recovery() {
    for kfail in ["die", "hang"] {
        let e = run("", kfail);
        assert!(
            matches!(e.giver, Err(Failure::Lost(_))),
            "{kfail}: {:?}",
            e.giver
        );
        assert_eq!(
            e.g,
            [
                "hello new",
                "precopy",
                "follow",
                "freeze",
                "started",
                "kill",
                "recover"
            ],
            "{kfail}"
        );
    }
}

#[test]
fn a_change_the_new_rvsd_confirmed_in_its_probation_reaches_the_running_one_before_it_recovers() {
    let e = run("", "change-die");
    assert!(matches!(e.giver, Err(Failure::Lost(_))), "{:?}", e.giver);
    assert_eq!(
        e.g,
        [
            "hello new",
            "precopy",
            "follow",
            "freeze",
            "started",
            "back weight 7",
            "kill",
            "recover"
        ]
    );
}

#[test]
fn rolling_parks_and_starts_one_worker_at_a_time_in_order() {
    let e = run_rolling("", "", 2);
    assert_eq!(e.giver, Ok(()));
    assert_eq!(e.taker, Ok(()));
    assert_eq!(
        e.g,
        [
            "hello new",
            "precopy",
            "follow",
            "freeze_worker 0",
            "freeze_worker 1",
            "started",
            "commit"
        ]
    );
    // Worker 0 starts on what its old one left, before worker 1 parks.
    let k: Vec<&str> = e.k.iter().map(String::as_str).skip(5).collect();
    assert_eq!(
        k,
        [
            "receive",
            "receive",
            "receive",
            "start_worker 0",
            "receive",
            "start_worker 1",
            "probation"
        ]
    );
    let last: Vec<&[u8]> = e
        .got
        .iter()
        .filter(|g| g.0 == 101)
        .map(|g| g.1.as_slice())
        .collect();
    assert_eq!(last, [b"last of 0".as_slice(), b"last of 1".as_slice()]);
}

#[test]
fn rolling_a_new_worker_that_cannot_start_first_stops_those_started_then_the_old_recovers() {
    let e = run_rolling("", "start_worker 1", 2);
    assert_eq!(
        e.taker,
        Err(Failure::Aborted("start_worker 1 failed here".into()))
    );
    assert_eq!(e.k.last().map(String::as_str), Some("stop"), "{:?}", e.k);
    // The ABORT is the promise that no new worker runs: no kill; worker
    // 0 of the old reads its rings as the new one left them.
    assert_eq!(
        e.g,
        [
            "hello new",
            "precopy",
            "follow",
            "freeze_worker 0",
            "freeze_worker 1",
            "recover"
        ]
    );
    // Before any new worker ran: nothing to stop, the old recovers.
    let e = run_rolling("", "start_worker 0", 2);
    assert!(!e.k.contains(&"stop".to_string()), "{:?}", e.k);
    assert_eq!(e.g.last().map(String::as_str), Some("recover"));
}

#[test]
fn rolling_the_old_failing_mid_roll_kills_the_new_one_before_it_recovers() {
    let e = run_rolling("freeze_worker 1", "", 2);
    let why = "worker 1 did not park within 1 s".to_string();
    assert_eq!(e.giver, Err(Failure::Aborted(why.clone())));
    assert_eq!(e.taker, Err(Failure::Aborted(why)));
    assert_eq!(
        e.g,
        [
            "hello new",
            "precopy",
            "follow",
            "freeze_worker 0",
            "freeze_worker 1",
            "kill",
            "recover"
        ]
    );
    assert_eq!(e.k.last().map(String::as_str), Some("stop"), "{:?}", e.k);
    // Failing on the first worker: no new worker ran, the old thaws.
    let e = run_rolling("freeze_worker 0", "", 2);
    assert_eq!(e.g.last().map(String::as_str), Some("thaw"), "{:?}", e.g);
    assert!(!e.g.contains(&"kill".to_string()), "{:?}", e.g);
    assert!(!e.k.contains(&"stop".to_string()), "{:?}", e.k);
}

#[test]
fn rolling_a_new_rvsd_dying_with_one_worker_moved_is_killed_then_the_old_recovers() {
    let e = run_rolling("", "die", 2);
    assert!(matches!(e.giver, Err(Failure::Lost(_))), "{:?}", e.giver);
    // Worker 1 of the old never parked: it forwarded all along.
    assert_eq!(
        e.g,
        [
            "hello new",
            "precopy",
            "follow",
            "freeze_worker 0",
            "kill",
            "recover"
        ]
    );
}

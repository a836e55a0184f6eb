//! `vrrp_script`s: each runs its command every `interval` on its own
//! thread, killed after `timeout` (a failure); exit status 0 is a success.
//! `rise` consecutive successes make it OK, `fall` consecutive failures
//! make it FAILED ([`Counter`]); after each run the status goes to the
//! runtime loop as a [`Status`], which feeds it to every instance tracking
//! the script as [`Event::Script`](crate::vrrp::Event::Script).
//!
//! The command line is split on white space, with single and double
//! quotes and backslash escapes, as keepalived does, and run without a
//! shell ([`split_command`]). `user` is not supported (the parser warns):
//! scripts run as rvs-keepalived's user.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conf::VrrpScript;

use super::log;

/// How often a running script is polled for its exit.
const POLL: Duration = Duration::from_millis(10);

/// The status of a `vrrp_script` after a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The `vrrp_script` name.
    pub name: String,
    /// Whether it is OK now.
    pub ok: bool,
}

/// The rise / fall count of one script: pure, one call per result.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    rise: u32,
    fall: u32,
    ok: bool,
    streak: u32,
}

impl Counter {
    /// A counter needing `rise` successes to go OK and `fall` failures to go
    /// FAILED (0 taken as 1), starting FAILED when `init_fail`, else OK.
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> Counter {
        Counter {
            rise: rise.max(1),
            fall: fall.max(1),
            ok: !init_fail,
            streak: 0,
        }
    }

    /// The current status.
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// Records one result; returns the new status when it changed.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        if success == self.ok {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if success { self.rise } else { self.fall };
        if self.streak < needed {
            return None;
        }
        self.ok = success;
        self.streak = 0;
        Some(success)
    }
}

/// Splits a command line into words: white space separates, `'...'` and
/// `"..."` quote (quotes removed), a backslash escapes the next character
/// outside single quotes. None when a quote is not closed.
pub fn split_command(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        q if q == c => break,
                        '\\' if c == '"' => cur.push(chars.next()?),
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// Runs `argv` once: whether it exited 0 within `timeout` (killed and a
/// failure otherwise; a command that cannot start is a failure, logged).
pub fn run_once(name: &str, argv: &[String], timeout: Duration) -> bool {
    run_unless(name, argv, timeout, &AtomicBool::new(false))
}

/// [`run_once`], killing the command early (a failure) when `stop` is set.
fn run_unless(name: &str, argv: &[String], timeout: Duration, stop: &AtomicBool) -> bool {
    let Some((prog, args)) = argv.split_first() else {
        return false;
    };
    let mut child = match Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            log::warn(&format!("vrrp_script {name}: cannot run {prog}: {e}"));
            return false;
        }
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st.success(),
            Ok(None) if stop.load(Ordering::Relaxed) => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            Ok(None) if Instant::now() >= deadline => {
                log::warn(&format!(
                    "vrrp_script {name}: timed out after {timeout:?}, killed"
                ));
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => {
                log::warn(&format!("vrrp_script {name}: wait: {e}"));
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// The threads running the scripts; dropping it stops them: a script
/// running is killed, and nothing more is sent.
pub struct Scripts {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Scripts {
    /// Starts one thread per script; their statuses go to `sink`.
    pub fn start(scripts: &[VrrpScript], sink: Sender<Status>) -> Scripts {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for s in scripts {
            let Some(argv) = split_command(&s.script).filter(|a| !a.is_empty()) else {
                log::warn(&format!(
                    "vrrp_script {}: cannot parse script '{}' (unclosed quote?); not run",
                    s.name, s.script
                ));
                continue;
            };
            let (s, stop, sink) = (s.clone(), Arc::clone(&stop), sink.clone());
            let t = std::thread::Builder::new()
                .name(format!("script {}", s.name))
                .spawn(move || script_loop(&s, &argv, &stop, &sink));
            match t {
                Ok(t) => threads.push(t),
                Err(e) => log::warn(&format!("vrrp_script: cannot start a thread: {e}")),
            }
        }
        Scripts { stop, threads }
    }

    /// Stops the threads without waiting for them (the VRRP loop must not
    /// stall): each kills its script, if running, within 10 ms and sends
    /// nothing more.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.clear();
    }
}

impl Drop for Scripts {
    fn drop(&mut self) {
        self.stop();
    }
}

fn script_loop(s: &VrrpScript, argv: &[String], stop: &AtomicBool, sink: &Sender<Status>) {
    let mut counter = Counter::new(s.rise, s.fall, s.init_fail);
    // As keepalived: without `timeout`, a run may take the whole interval.
    let timeout = s.timeout.unwrap_or(s.interval);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let success = run_unless(&s.name, argv, timeout, stop);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Some(ok) = counter.record(success) {
            let what = if ok { "succeeded" } else { "failed" };
            log::info(&format!("VRRP_Script({}) {what}", s.name));
        }
        // Every run, not only changes: an instance started since (reload)
        // learns the status within one interval.
        let status = Status {
            name: s.name.clone(),
            ok: counter.ok(),
        };
        if sink.send(status).is_err() {
            return;
        }
        let until = started + s.interval;
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(POLL.max(Duration::from_millis(50)).min(s.interval));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_lines_split_like_keepalived() {
        assert_eq!(
            split_command("/bin/check  -a 'x y'   \"z \\\" w\" a\\ b").unwrap(),
            words(&["/bin/check", "-a", "x y", "z \" w", "a b"])
        );
        assert_eq!(split_command("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_command("echo 'open"), None);
    }

    #[test]
    fn rise_and_fall_need_consecutive_results() {
        let mut c = Counter::new(2, 3, false);
        assert!(c.ok());
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(true), None, "a success resets the failure streak");
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(false), Some(false), "third failure in a row");
        assert!(!c.ok());
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(true), Some(true), "second success in a row");
    }

    #[test]
    fn init_fail_starts_failed_and_defaults_change_at_once() {
        let mut c = Counter::new(1, 1, true);
        assert!(!c.ok());
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(true), Some(true));
        assert_eq!(c.record(false), Some(false));
    }

    #[test]
    fn real_scripts_succeed_fail_and_time_out() {
        let t = Duration::from_secs(1);
        assert!(run_once("t", &words(&["/bin/true"]), t));
        assert!(!run_once("f", &words(&["/bin/false"]), t));
        assert!(!run_once("x", &words(&["/nonexistent/check"]), t));
        let started = Instant::now();
        assert!(
            !run_once("s", &words(&["sleep", "5"]), t),
            "killed: failure"
        );
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "killed after ~1 s, took {took:?}"
        );
    }

    fn script(name: &str, cmd: &str, init_fail: bool) -> VrrpScript {
        VrrpScript {
            loc: crate::conf::Loc {
                file: "test.conf".into(),
                line: 1,
            },
            name: name.to_string(),
            script: cmd.to_string(),
            interval: Duration::from_millis(100),
            timeout: Some(Duration::from_secs(1)),
            weight: 0,
            rise: 1,
            fall: 2,
            init_fail,
        }
    }

    #[test]
    fn threads_report_each_scripts_status_after_fall_count() {
        let (tx, rx) = std::sync::mpsc::channel();
        let list = [
            script("good", "/bin/true", true),
            script("bad", "/bin/false", false),
        ];
        let mut s = Scripts::start(&list, tx);
        let mut bad = Vec::new();
        let mut good = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while (bad.len() < 3 || good.is_empty()) && Instant::now() < deadline {
            if let Ok(st) = rx.recv_timeout(Duration::from_millis(100)) {
                let v = if st.name == "bad" {
                    &mut bad
                } else {
                    &mut good
                };
                v.push(st.ok);
            }
        }
        s.stop();
        assert_eq!(good.first(), Some(&true), "init_fail, then one success");
        assert_eq!(bad.get(..3), Some(&[true, false, false][..]), "fall 2");
    }

    /// Feeds statuses from `rx` to `vi` until it is in `want` (or 5 s).
    fn feed_until(
        vi: &mut crate::vrrp::Instance,
        rx: &std::sync::mpsc::Receiver<Status>,
        want: crate::vrrp::State,
    ) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        while vi.state() != want && Instant::now() < deadline {
            if let Ok(st) = rx.recv_timeout(Duration::from_millis(100)) {
                let ev = crate::vrrp::Event::Script {
                    name: &st.name,
                    ok: st.ok,
                };
                vi.handle(0, ev, &mut out);
            }
        }
        vi.state() == want
    }

    #[test]
    fn failing_tracked_script_with_weight_0_means_fault_until_it_succeeds() {
        use crate::vrrp::{Event, Instance, InstanceConf, State, Tracked};
        let flag = std::env::temp_dir().join(format!("rvs-ka-chk-{}", std::process::id()));
        let _ = std::fs::remove_file(&flag);
        let mut conf = InstanceConf::new("VI_1", 51, "eth0", "192.0.2.1".parse().unwrap());
        conf.track_scripts = vec![Tracked::new("chk")];
        let mut vi = Instance::new(conf).unwrap();
        vi.handle(0, Event::Startup, &mut Vec::new());
        assert_eq!(vi.state(), State::Backup);
        let (tx, rx) = std::sync::mpsc::channel();
        let mut chk = script("chk", &format!("test -e {}", flag.display()), false);
        chk.fall = 1;
        let mut s = Scripts::start(&[chk], tx);
        assert!(feed_until(&mut vi, &rx, State::Fault), "file absent: FAULT");
        std::fs::write(&flag, b"").unwrap();
        let back = feed_until(&mut vi, &rx, State::Backup);
        s.stop();
        let _ = std::fs::remove_file(&flag);
        assert!(back, "file present: out of FAULT, {:?}", vi.state());
    }

    #[test]
    fn stopping_neither_waits_for_a_running_script_nor_reports_it() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut slow = script("slow", "sleep 5", false);
        slow.timeout = Some(Duration::from_secs(10));
        let mut s = Scripts::start(&[slow], tx);
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        s.stop();
        assert!(started.elapsed() < Duration::from_millis(100));
        let got = rx.recv_timeout(Duration::from_secs(1));
        assert!(got.is_err(), "killed by stop, not a result: {got:?}");
    }
}

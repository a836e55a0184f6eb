//! Child processes for the multi-process tests: the test binary run again
//! with one test selected and an environment that gives it a role, killed
//! (by pid) if still running when dropped; and a scratch directory removed
//! on drop, so nothing is left behind when a test fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process: this test binary running test `entry` with `env`;
/// its stdout lines starting with "HO:" are its status lines.
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Starts the child.
    pub fn spawn(entry: &str, env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", entry, "--nocapture", "-q"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the test binary again");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(l) = l.strip_prefix("HO:") {
                    let _ = tx.send(l.to_string());
                }
            }
        });
        Proc { child, lines }
    }

    /// Asserts the next status line (within 10 s).
    pub fn expect_line(&self, want: &str) {
        let got = self.lines.recv_timeout(Duration::from_secs(10));
        assert_eq!(got.as_deref(), Ok(want), "child's status line");
    }

    /// Waits up to 20 s for the exit; the status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "child {} hangs", self.child.id());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGKILL.
    pub fn sigkill(&mut self) {
        // SAFETY: kill(2) on our own child's pid (not reaped yet, so the pid
        // cannot have been reused).
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.sigkill();
            let _ = self.child.wait();
        }
    }
}

/// Prints a status line for the parent ("HO:" + `line`).
pub fn say(line: &str) {
    use std::io::Write;
    println!("HO:{line}");
    std::io::stdout().flush().unwrap();
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory under the temporary directory.
    pub fn new(tag: &str) -> Scratch {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("rvsio-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    /// A path inside.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

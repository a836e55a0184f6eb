//! BIRD 2 (`/usr/sbin/bird`) as a lab runs it: one daemon per namespace with
//! its own configuration file, control socket (`-s`) and pid file (`-P`), in
//! the foreground (`-f`) under the lab's process machinery, so that it is
//! killed when the lab drops (also when a test fails). `birdc -s SOCK`
//! queries it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{run, Lab};

/// A bird started by [`Bird::start`].
pub struct Bird {
    /// What it is called in the lab (its files are `<name>.conf`, `.ctl`,
    /// `.pid`, `.log` in the lab dir).
    pub name: String,
    /// Its control socket (`birdc -s`).
    pub socket: PathBuf,
    /// Index of its process in the lab ([`Lab::proc`]).
    pub index: usize,
    log: PathBuf,
}

impl Bird {
    /// Writes `conf` to `<name>.conf`, starts bird in namespace `ns` and
    /// waits until it answers on its control socket (its configuration
    /// parsed). Panics with bird's log when it does not within 5 s.
    pub fn start(lab: &mut Lab, ns: &str, name: &str, conf: &str) -> Bird {
        crate::require_tools(&["bird", "birdc"]);
        let c = lab.file(&format!("{name}.conf"), conf);
        let socket = lab.dir.join(format!("{name}.ctl"));
        let pid = lab.dir.join(format!("{name}.pid"));
        let (c, s, p) = (
            c.to_string_lossy().into_owned(),
            socket.to_string_lossy().into_owned(),
            pid.to_string_lossy().into_owned(),
        );
        let index = lab.spawn(ns, name, &["bird", "-f", "-c", &c, "-s", &s, "-P", &p], &[]);
        let b = Bird {
            name: name.to_string(),
            socket,
            index,
            log: lab.dir.join(format!("{name}.log")),
        };
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if b.birdc(&["show", "status"]).is_ok() {
                return b;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "bird {name} in {} did not answer on {} within 5 s; its log:\n{}\nits configuration:\n{conf}",
            lab.ns(ns),
            b.socket.display(),
            b.log()
        );
    }

    /// bird's log so far (stderr: `log stderr all;` in its configuration).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `birdc -s SOCK ARGS...`: its output, or an error with it.
    pub fn birdc(&self, args: &[&str]) -> Result<String, String> {
        let s = self.socket.to_string_lossy().into_owned();
        let mut cmd = vec!["birdc", "-s", s.as_str()];
        cmd.extend_from_slice(args);
        let o = run(&cmd);
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        if o.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "birdc {} failed ({}): {out}",
                args.join(" "),
                o.status
            ))
        }
    }

    /// `birdc show WHAT` (e.g. "protocols all", "bfd sessions", "route"),
    /// panicking with bird's log on failure.
    pub fn show(&self, what: &str) -> String {
        let mut args = vec!["show"];
        args.extend(what.split_whitespace());
        self.birdc(&args)
            .unwrap_or_else(|e| panic!("{e}\nbird {} log:\n{}", self.name, self.log()))
    }

    /// The `State` and `Info` columns of protocol `proto` in `show
    /// protocols` (e.g. `("up", "Established")`), if bird has it.
    pub fn protocol(&self, proto: &str) -> Option<(String, String)> {
        let out = self.show("protocols");
        out.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Name Proto Table State Since Info... (Since: hh:mm:ss.mmm)
            if f.first() != Some(&proto) || f.len() < 5 {
                return None;
            }
            Some((f[3].to_string(), f[5..].join(" ")))
        })
    }

    /// The state (`Up`, `Down`, `Init`, `AdminDown`) of the BFD session
    /// with `peer` in `show bfd sessions`, if there is one.
    pub fn bfd_state(&self, peer: &str) -> Option<String> {
        let out = self.show("bfd sessions");
        out.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&peer) && f.len() >= 3).then(|| f[2].to_string())
        })
    }

    /// Polls `check` every 50 ms until it returns `Some`, for at most `t`.
    pub fn wait<T>(&self, t: Duration, mut check: impl FnMut(&Bird) -> Option<T>) -> Option<T> {
        let end = Instant::now() + t;
        loop {
            if let Some(v) = check(self) {
                return Some(v);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

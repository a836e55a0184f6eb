//! FRR routing daemons (zebra, ospfd, bgpd, bfdd, ...) as a lab runs them:
//! several FRR instances side by side, one per namespace, each with its own
//! directory (configuration files, pid files, zserv socket, vty sockets)
//! owned by user `frr`, the daemons in the foreground as processes of the
//! [`Lab`] (so they die with it, also when a test fails). There is no
//! systemd and no `/etc/frr/daemons` involved.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{must, Lab};

/// Where Debian's frr package installs the daemons.
pub const FRR_LIB: &str = "/usr/lib/frr";

/// One FRR instance: the daemons of one namespace, sharing a zserv socket.
pub struct Frr {
    /// The namespace (short name) the daemons run in.
    pub ns: String,
    /// The instance's directory (owned by `frr`): `<daemon>.conf`,
    /// `<daemon>.pid`, `<daemon>.vty`, `zserv.api`, logs.
    pub dir: PathBuf,
    /// (daemon, lab process index, its output file).
    daemons: Vec<(String, usize, PathBuf)>,
}

/// Fails loudly when FRR (its daemons, vtysh, the `frr` user) is missing.
pub fn require_frr(daemons: &[&str]) {
    crate::require_tools(&["vtysh"]);
    for d in daemons {
        let p = Path::new(FRR_LIB).join(d);
        assert!(
            p.exists(),
            "{} is not installed: apt-get install frr (scripts/deps.sh does)",
            p.display()
        );
    }
    assert!(
        crate::run(&["id", "frr"]).status.success(),
        "user frr does not exist: apt-get install frr (scripts/deps.sh does)"
    );
}

impl Frr {
    /// A new instance in namespace `ns`; `tag` names its directory
    /// (`<lab dir>/frr-<tag>`), so that several instances run in one lab.
    pub fn new(lab: &Lab, ns: &str, tag: &str) -> Frr {
        let dir = lab.dir.join(format!("frr-{tag}"));
        std::fs::create_dir_all(&dir).expect("frr dir");
        chown_frr(&dir);
        Frr {
            ns: ns.to_string(),
            dir,
            daemons: Vec::new(),
        }
    }

    /// A path in the instance's directory (for `log file ...` in a
    /// configuration).
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// Writes `<daemon>.conf` and starts `daemon` (`zebra` first, then
    /// `ospfd`, `bgpd`, `bfdd`...) in the foreground as user `frr`, with the
    /// instance's pid file, zserv socket and vty socket directory and no vty
    /// TCP port; waits until its vty socket answers. Returns the lab's
    /// process index.
    pub fn start(&mut self, lab: &mut Lab, daemon: &str, config: &str) -> usize {
        // A daemon started again: no stale pid file or vty socket.
        for ext in ["pid", "vty"] {
            let _ = std::fs::remove_file(self.dir.join(format!("{daemon}.{ext}")));
        }
        let conf = self.dir.join(format!("{daemon}.conf"));
        std::fs::write(&conf, config).expect("frr config");
        chown_frr(&conf);
        let exe = format!("{FRR_LIB}/{daemon}");
        let conf = conf.to_string_lossy().into_owned();
        let pid = self.path(&format!("{daemon}.pid"));
        let zserv = self.path("zserv.api");
        let vty = self.dir.to_string_lossy().into_owned();
        // Its output file: `<dir name>-<daemon>[-<n>].log` in the lab dir.
        let again = self.daemons.iter().filter(|(d, _, _)| d == daemon).count();
        let mut name = format!(
            "{}-{daemon}",
            self.dir.file_name().unwrap().to_string_lossy()
        );
        if again > 0 {
            name.push_str(&format!("-{again}"));
        }
        let i = lab.spawn(
            &self.ns,
            &name,
            &[
                &exe,
                "-f",
                &conf,
                "-i",
                &pid,
                "-z",
                &zserv,
                "--vty_socket",
                &vty,
                "-u",
                "frr",
                "-g",
                "frr",
                "-P",
                "0",
            ],
            &[],
        );
        let log = lab.dir.join(format!("{name}.log"));
        self.daemons.push((daemon.to_string(), i, log));
        self.wait_vty(lab, daemon, i);
        i
    }

    fn wait_vty(&self, lab: &mut Lab, daemon: &str, i: usize) {
        let sock = self.dir.join(format!("{daemon}.vty"));
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if sock.exists() {
                return;
            }
            let p = lab.proc(i);
            if !p.alive() {
                panic!("{daemon} in {} exited at start:\n{}", self.ns, p.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{daemon} in {} made no vty socket {} within 10 s:\n{}",
            self.ns,
            sock.display(),
            lab.proc(i).log()
        );
    }

    /// The lab's process index of `daemon` (the last one started).
    pub fn daemon(&self, daemon: &str) -> usize {
        self.daemons
            .iter()
            .rfind(|(d, _, _)| d == daemon)
            .unwrap_or_else(|| panic!("{daemon} was not started in {}", self.ns))
            .1
    }

    /// The pid `daemon` wrote to its pid file (what an operator kills).
    pub fn pid(&self, daemon: &str) -> u32 {
        let f = self.dir.join(format!("{daemon}.pid"));
        let s = std::fs::read_to_string(&f)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{} holds no pid: {s:?}", f.display()))
    }

    /// `vtysh --vty_socket DIR -c CMD` in the namespace; its output
    /// (requires success).
    pub fn vtysh(&self, lab: &Lab, cmd: &str) -> String {
        let dir = self.dir.to_string_lossy().into_owned();
        lab.must_in(&self.ns, &["vtysh", "--vty_socket", &dir, "-c", cmd])
    }

    /// The lines of the daemons' output and of the log files in the
    /// instance's directory where FRR refused a configuration line (an FRR
    /// daemon goes on without it).
    pub fn config_errors(&self) -> Vec<String> {
        let mut text = String::new();
        for (_, _, log) in &self.daemons {
            text.push_str(&std::fs::read_to_string(log).unwrap_or_default());
        }
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        text.lines()
            .filter(|l| {
                l.contains("No such command")
                    || l.contains("Config Failed")
                    || l.contains("Unknown command")
                    || l.contains("Ambiguous command")
            })
            .map(str::to_string)
            .collect()
    }
}

/// Gives `path` to user and group `frr` (FRR drops to them).
fn chown_frr(path: &Path) {
    must(&["chown", "frr:frr", &path.to_string_lossy()]);
}

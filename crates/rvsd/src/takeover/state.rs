//! The takeover state file: what rvsd changed on a port, written before it
//! changes anything, so that the port can be given back after a crash.
//!
//! One file per interface, `<run dir>/takeover/<iface>.state` (see
//! [`Paths`]), in a line format an operator can read:
//!
//! ```text
//! # rvsd takeover of wan: given back on exit, at the next start or by `rvsd --release wan`
//! pid 4242
//! iface wan
//! mac 02:00:00:00:00:01
//! table rvs_wan
//! disable_ipv6 0
//! addr inet 10.0.0.250/16
//! addr inet6 fd00::250/64
//! ```

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Where rvsd keeps its run-time files when `RVS_RUN_DIR` is not set.
pub const DEFAULT_RUN_DIR: &str = "/run/rvs";

/// The run-time directory: `RVS_RUN_DIR`, else [`DEFAULT_RUN_DIR`].
pub fn run_dir() -> PathBuf {
    std::env::var_os("RVS_RUN_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_DIR))
}

/// The files rvsd keeps for one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Locked (flock) by the rvsd that owns the port, holding its pid.
    pub lock: PathBuf,
    /// What that rvsd changed, present while the port is taken.
    pub state: PathBuf,
}

impl Paths {
    /// The files for `iface` under `dir/takeover/`. Interface names are per
    /// network namespace: outside the namespace of pid 1 the name carries
    /// the namespace's inode (`wan@net4026532281`).
    pub fn new(dir: &Path, iface: &str) -> Paths {
        let key = match netns_suffix() {
            Some(ns) => format!("{iface}@{ns}"),
            None => iface.to_string(),
        };
        let base = dir.join("takeover");
        Paths {
            lock: base.join(format!("{key}.lock")),
            state: base.join(format!("{key}.state")),
        }
    }
}

/// `net<inode>` when this process is not in pid 1's network namespace.
fn netns_suffix() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::metadata(p).map(|m| m.ino());
    let own = ino("/proc/self/ns/net").ok()?;
    match ino("/proc/1/ns/net") {
        Ok(init) if init == own => None,
        _ => Some(format!("net{own}")),
    }
}

/// An address family, as `ip` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 (`ip -4`, `inet`).
    V4,
    /// IPv6 (`ip -6`, `inet6`).
    V6,
}

impl Family {
    /// The `ip` option selecting the family.
    pub fn flag(self) -> &'static str {
        match self {
            Family::V4 => "-4",
            Family::V6 => "-6",
        }
    }

    /// The word `ip addr` prints before such an address.
    pub fn word(self) -> &'static str {
        match self {
            Family::V4 => "inet",
            Family::V6 => "inet6",
        }
    }
}

/// A kernel address taken off the port: family and `address/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// The family.
    pub family: Family,
    /// `address/prefix`, as `ip addr add` takes it.
    pub cidr: String,
}

impl Addr {
    /// Checks `cidr` (`address/prefix` of `family`).
    pub fn new(family: Family, cidr: &str) -> Result<Addr, String> {
        let (a, p) = cidr
            .split_once('/')
            .ok_or_else(|| format!("{cidr}: expected address/prefix"))?;
        let ip: IpAddr = a.parse().map_err(|_| format!("{cidr}: not an address"))?;
        let max = match (family, ip) {
            (Family::V4, IpAddr::V4(_)) => 32,
            (Family::V6, IpAddr::V6(_)) => 128,
            _ => return Err(format!("{cidr}: not an {} address", family.word())),
        };
        match p.parse::<u8>() {
            Ok(n) if n <= max => Ok(Addr {
                family,
                cidr: cidr.to_string(),
            }),
            _ => Err(format!("{cidr}: prefix must be 0..={max}")),
        }
    }
}

/// What an rvsd changed on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The rvsd that took the port.
    pub pid: u32,
    /// The interface.
    pub iface: String,
    /// Its MAC address then (a file for another device is not replayed).
    pub mac: String,
    /// The nftables `netdev` table installed on it.
    pub table: String,
    /// `net.ipv6.conf.<iface>.disable_ipv6` before (none without IPv6).
    pub disable_ipv6: Option<String>,
    /// The kernel addresses removed from it.
    pub addrs: Vec<Addr>,
    /// The MAC rvsd gave it (a bond's slave), `mac` being the one to put back.
    pub set_mac: Option<String>,
}

impl State {
    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut t = format!(
            "# rvsd takeover of {i}: given back on exit, at the next start or by `rvsd --release {i}`\n\
             pid {}\niface {i}\nmac {}\ntable {}\n",
            self.pid,
            self.mac,
            self.table,
            i = self.iface
        );
        if let Some(v) = &self.disable_ipv6 {
            t.push_str(&format!("disable_ipv6 {v}\n"));
        }
        for a in &self.addrs {
            t.push_str(&format!("addr {} {}\n", a.family.word(), a.cidr));
        }
        if let Some(m) = &self.set_mac {
            t.push_str(&format!("set_mac {m}\n"));
        }
        t
    }

    /// Reads the text back; errors name the line.
    pub fn parse(text: &str) -> Result<State, String> {
        let (mut pid, mut iface, mut mac, mut table) = (None, None, None, None);
        let mut disable_ipv6 = None;
        let mut set_mac = None;
        let mut addrs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |m: String| format!("line {}: {m}", i + 1);
            let (key, val) = line.split_once(' ').unwrap_or((line, ""));
            let val = val.trim();
            match key {
                "pid" => pid = Some(val.parse::<u32>().map_err(|_| at(format!("pid {val}")))?),
                "iface" => iface = Some(val.to_string()),
                "mac" => mac = Some(val.to_string()),
                "table" => table = Some(val.to_string()),
                "disable_ipv6" => disable_ipv6 = Some(val.to_string()),
                "set_mac" => set_mac = Some(val.to_string()),
                "addr" => {
                    let (fam, cidr) = val.split_once(' ').unwrap_or((val, ""));
                    let family = match fam {
                        "inet" => Family::V4,
                        "inet6" => Family::V6,
                        _ => return Err(at(format!("addr {val}: expected inet or inet6"))),
                    };
                    addrs.push(Addr::new(family, cidr.trim()).map_err(at)?);
                }
                _ => return Err(at(format!("unknown key '{key}'"))),
            }
        }
        let need = |v: Option<String>, k: &str| v.ok_or_else(|| format!("no '{k}' line"));
        let table = need(table, "table")?;
        if table.is_empty() || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("table '{table}': not a table rvsd makes"));
        }
        Ok(State {
            pid: pid.ok_or("no 'pid' line")?,
            iface: need(iface, "iface")?,
            mac: need(mac, "mac")?,
            table,
            disable_ipv6,
            addrs,
            set_mac,
        })
    }

    /// Reads `path`: `None` when there is no such file.
    pub fn read(path: &Path) -> Result<Option<State>, String> {
        match std::fs::read_to_string(path) {
            Ok(t) => State::parse(&t)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes `path` whole or not at all (a temporary file synced, then
    /// renamed over it), so that a crash never leaves half a file.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let tmp = path.with_extension("state.tmp");
        let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        let mut f = std::fs::File::create(&tmp).map_err(fail)?;
        f.write_all(self.to_text().as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(fail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        State {
            pid: 4242,
            iface: "wan".into(),
            mac: "02:00:00:00:00:01".into(),
            table: "rvs_wan".into(),
            disable_ipv6: Some("0".into()),
            addrs: vec![
                Addr::new(Family::V4, "10.0.0.250/16").unwrap(),
                Addr::new(Family::V6, "fd00::250/64").unwrap(),
            ],
            set_mac: Some("02:00:00:00:00:09".into()),
        }
    }

    #[test]
    fn state_round_trips_through_its_text() {
        let s = sample();
        let t = s.to_text();
        assert!(t.contains("addr inet 10.0.0.250/16\n"), "{t}");
        assert!(t.contains("addr inet6 fd00::250/64\n"), "{t}");
        assert_eq!(State::parse(&t).unwrap(), s);
        let none = State {
            disable_ipv6: None,
            addrs: Vec::new(),
            set_mac: None,
            ..sample()
        };
        assert_eq!(State::parse(&none.to_text()).unwrap(), none);
    }

    #[test]
    fn a_damaged_state_file_is_refused_with_its_line() {
        let t = sample().to_text();
        for (bad, want) in [
            (t.replace("pid 4242", "pid x"), "line 2"),
            (t.replace("10.0.0.250/16", "10.0.0.250/33"), "0..=32"),
            (t.replace("inet 10.0.0.250", "inet6 10.0.0.250"), "inet6"),
            (
                t.replace("table rvs_wan", "table rvs wan; flush ruleset"),
                "table",
            ),
            (t.replace("iface wan\n", ""), "iface"),
            (format!("{t}colour red\n"), "colour"),
        ] {
            let e = State::parse(&bad).expect_err(&bad);
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn write_then_read() {
        let dir = std::env::temp_dir().join(format!("rvsd-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("wan.state");
        assert_eq!(State::read(&p).unwrap(), None);
        sample().write(&p).unwrap();
        assert_eq!(State::read(&p).unwrap(), Some(sample()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn paths_live_under_the_run_dir() {
        let p = Paths::new(Path::new("/tmp/x"), "wan");
        assert!(p.lock.starts_with("/tmp/x/takeover"), "{p:?}");
        let name = p.state.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("wan") && name.ends_with(".state"),
            "{name}"
        );
    }
}

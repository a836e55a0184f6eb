//! Taking a kernel interface over, and giving it back, also after a crash.
//!
//! While rvs owns a port the kernel must not also answer on it: rvsd removes
//! the interface's addresses, turns IPv6 off on it (no autoconfigured
//! address, no ND of its own), and installs an nftables `netdev` ingress
//! table with policy drop on the device, which the kernel's stack sees after
//! AF_PACKET has already handed the frame to rvs.
//!
//! Crash safety: before changing anything rvsd locks the port ([`PortLock`],
//! one rvsd per interface) and writes what it is about to change to a state
//! file ([`State`]). A clean exit gives everything back and removes the
//! file. After a crash the file stays, and the kernel drops the lock with
//! the process: the next rvsd on the port, or `rvsd --release IFACE`, finds
//! the file under a free lock and gives the port back from it.
//!
//! The nftables table is not tied to rvsd's netlink socket
//! (`NFT_TABLE_F_OWNER`, which the kernel removes with the process): that
//! takes a netlink client of its own instead of `nft`, and the addresses
//! would still need the state file, which covers the table as well.

pub mod lock;
pub mod state;

use std::path::Path;
use std::process::{Command, Stdio};

pub use lock::PortLock;
pub use state::{run_dir, Addr, Family, Paths, State, DEFAULT_RUN_DIR};

use crate::config::iface_name_problem;

/// What was changed on one interface, to undo on exit. Holds the port's
/// lock until dropped.
#[derive(Debug)]
pub struct Takeover {
    lock: PortLock,
    state: State,
    restored: bool,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let prog = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("cannot run {prog}: not installed (apt-get install nftables iproute2)")
        } else {
            format!("cannot run {prog}: {e}")
        }
    })?;
    if !out.status.success() {
        return Err(format!(
            "{prog} {} failed: {}",
            cmd.get_args()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The nftables table name rvsd uses for an interface: `rvs_` and the name,
/// letters and digits kept, `_` doubled, any other byte as `_` and two hex
/// digits (`veth-a` → `rvs_veth_2da`), so that two names never share a table.
pub fn table_name(iface: &str) -> String {
    let mut t = String::from("rvs_");
    for b in iface.bytes() {
        match b {
            b'_' => t.push_str("__"),
            b if b.is_ascii_alphanumeric() => t.push(b as char),
            b => t.push_str(&format!("_{b:02x}")),
        }
    }
    t
}

fn sysctl_path(iface: &str) -> String {
    format!("/proc/sys/net/ipv6/conf/{iface}/disable_ipv6")
}

fn mac_of(iface: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn check_name(iface: &str) -> Result<(), String> {
    match iface_name_problem(iface) {
        Some(why) => Err(format!("interface name {iface:?}: {why}")),
        None => Ok(()),
    }
}

/// The interface's global kernel addresses.
fn kernel_addrs(iface: &str) -> Result<Vec<Addr>, String> {
    let mut addrs = Vec::new();
    for fam in [Family::V4, Family::V6] {
        let out = run(Command::new("ip").args([
            "-o",
            fam.flag(),
            "addr",
            "show",
            "dev",
            iface,
            "scope",
            "global",
        ]))?;
        for line in out.lines() {
            let mut it = line.split_whitespace();
            while let Some(w) = it.next() {
                if w == fam.word() {
                    let a = it.next().unwrap_or_default();
                    addrs.push(
                        Addr::new(fam, a)
                            .map_err(|e| format!("cannot record an address of {iface}: {e}"))?,
                    );
                }
            }
        }
    }
    Ok(addrs)
}

fn table_exists(table: &str) -> Result<bool, String> {
    match run(Command::new("nft").args(["list", "table", "netdev", table])) {
        Ok(_) => Ok(true),
        Err(e) if e.contains("No such file or directory") => Ok(false),
        Err(e) => Err(e),
    }
}

fn delete_table(table: &str) -> Result<bool, String> {
    if !table_exists(table)? {
        return Ok(false);
    }
    run(Command::new("nft").args(["delete", "table", "netdev", table]))?;
    Ok(true)
}

fn install_table(iface: &str, table: &str) -> Result<(), String> {
    let script = format!(
        "table netdev {table} {{\n  chain ingress {{\n    type filter hook ingress device \"{iface}\" priority -500; policy drop;\n  }}\n}}\n"
    );
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run nft ({e}): install nftables (apt-get install nftables)")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "nft could not install the ingress table on {iface}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Undoes what `st` records: the table removed, the IPv6 setting and the
/// addresses put back (an address already there counts as restored).
/// Says what was done, or everything that failed.
fn give_back(st: &State) -> Result<String, String> {
    let mut done = Vec::new();
    let mut errs = Vec::new();
    match delete_table(&st.table) {
        Ok(true) => done.push(format!("nftables table netdev {} removed", st.table)),
        Ok(false) => {}
        Err(e) => errs.push(e),
    }
    if let Some(v) = &st.disable_ipv6 {
        match std::fs::write(sysctl_path(&st.iface), v) {
            Ok(()) => done.push(format!("disable_ipv6 back to {v}")),
            Err(e) => errs.push(format!("cannot write {}: {e}", sysctl_path(&st.iface))),
        }
    }
    if let Some(set) = &st.set_mac {
        match mac_of(&st.iface) {
            Some(m) if m == st.mac => {}
            _ => match run(
                Command::new("ip").args(["link", "set", "dev", &st.iface, "address", &st.mac])
            ) {
                Ok(_) => done.push(format!("MAC back to {} (was {set}, a bond's)", st.mac)),
                Err(e) => errs.push(e),
            },
        }
    }
    let mut back = Vec::new();
    for a in &st.addrs {
        let add = Command::new("ip")
            .args([a.family.flag(), "addr", "add", &a.cidr, "dev", &st.iface])
            .output();
        match add {
            Ok(o)
                if o.status.success() || String::from_utf8_lossy(&o.stderr).contains("exists") =>
            {
                back.push(a.cidr.as_str())
            }
            Ok(o) => errs.push(format!(
                "ip addr add {} dev {}: {}",
                a.cidr,
                st.iface,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => errs.push(format!("cannot run ip: {e}")),
        }
    }
    done.push(match back.is_empty() {
        true => "no kernel address to restore".to_string(),
        false => format!("addresses restored: {}", back.join(" ")),
    });
    match errs.is_empty() {
        true => Ok(done.join("; ")),
        false => Err(errs.join("; ")),
    }
}

/// Gives back what the state file under `lock` records, if there is one
/// (its writer is gone: we hold the lock). The file is removed once
/// everything is back, kept otherwise. Returns the writer's pid and what
/// was done.
fn replay(lock: &PortLock) -> Result<Option<(u32, String)>, String> {
    let path = &lock.paths().state;
    let Some(old) = State::read(path)? else {
        return Ok(None);
    };
    let iface = lock.iface();
    let kept = |why: String| {
        format!(
            "{why}; {} (left by rvsd pid {}) is kept: remove it by hand if it is stale",
            path.display(),
            old.pid
        )
    };
    if old.iface != iface {
        return Err(kept(format!(
            "{} names interface {}",
            path.display(),
            old.iface
        )));
    }
    match mac_of(iface) {
        None => return Err(kept(format!("no such interface {iface}"))),
        Some(m) if m != old.mac && old.set_mac.as_ref() != Some(&m) => {
            return Err(kept(format!(
                "{iface} has MAC {m}, the state was written for MAC {}: another device",
                old.mac
            )))
        }
        Some(_) => {}
    }
    let done = give_back(&old).map_err(|e| kept(format!("giving {iface} back: {e}")))?;
    std::fs::remove_file(path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    Ok(Some((old.pid, done)))
}

impl Takeover {
    /// Takes the port `lock` holds over. What a crashed rvsd left on it is
    /// given back first. What is about to change is written to the state
    /// file before anything changes. Fails if the interface does not exist
    /// or `nft` is missing; whatever was changed by then is given back.
    pub fn take(lock: PortLock) -> Result<Takeover, String> {
        let iface = lock.iface().to_string();
        check_name(&iface)?;
        let Some(mac) = mac_of(&iface) else {
            return Err(format!("no such interface {iface}"));
        };
        let table = table_name(&iface);
        match replay(&lock)? {
            Some((pid, done)) => {
                tracing::info!("{iface}: gave back what rvsd pid {pid} left (it died): {done}")
            }
            None => {
                if delete_table(&table)? {
                    tracing::info!("{iface}: removed the table {table} an older run left");
                }
            }
        }
        let state = State {
            pid: std::process::id(),
            disable_ipv6: std::fs::read_to_string(sysctl_path(&iface))
                .ok()
                .map(|s| s.trim().to_string()),
            addrs: kernel_addrs(&iface)?,
            iface: iface.clone(),
            mac,
            table,
            set_mac: None,
        };
        state.write(&lock.paths().state)?;
        // From here on, dropping `t` (an error below) gives the port back.
        let t = Takeover {
            lock,
            state,
            restored: false,
        };
        install_table(&iface, &t.state.table)?;
        let _ = std::fs::write(sysctl_path(&iface), "1");
        for a in &t.state.addrs {
            let _ = run(Command::new("ip").args([
                a.family.flag(),
                "addr",
                "del",
                &a.cidr,
                "dev",
                &iface,
            ]));
        }
        let _ = run(Command::new("ip").args(["link", "set", &iface, "up"]));
        Ok(t)
    }

    /// Gives the interface the MAC `mac` (a bond's slave), recorded in the
    /// state file first: exit and `rvsd --release` put the old one back.
    pub fn set_mac(&mut self, mac: &str) -> Result<(), String> {
        self.state.set_mac = Some(mac.to_string());
        self.state.write(&self.lock.paths().state)?;
        let iface = self.iface().to_string();
        run(Command::new("ip").args(["link", "set", "dev", &iface, "address", mac]))?;
        Ok(())
    }

    /// The interface.
    pub fn iface(&self) -> &str {
        self.lock.iface()
    }

    /// The port's lock, to pass to a successor.
    pub fn lock(&self) -> &PortLock {
        &self.lock
    }

    /// A successor's side of a hand-over: the port as the running rvsd took
    /// it, from the lock it passed and the state file it wrote. Changes
    /// nothing on the interface; [`claim`](Self::claim) once committed.
    pub fn adopt(lock: PortLock) -> Result<Takeover, String> {
        let path = lock.paths().state.clone();
        let Some(state) = State::read(&path)? else {
            return Err(format!(
                "{}: the running rvsd left no takeover state at {}",
                lock.iface(),
                path.display()
            ));
        };
        if state.iface != lock.iface() {
            return Err(format!(
                "{}: the takeover state at {} is for {}",
                lock.iface(),
                path.display(),
                state.iface
            ));
        }
        Ok(Takeover {
            lock,
            state,
            restored: false,
        })
    }

    /// The successor, once committed, answers for the port: its pid goes
    /// into the lock and state files.
    pub fn claim(&mut self) -> Result<(), String> {
        self.lock.claim()?;
        self.state.pid = std::process::id();
        self.state.write(&self.lock.paths().state)
    }

    /// The running rvsd's side once its successor committed: lets go
    /// without giving anything back and without removing the lock or state
    /// files (the successor holds the same lock and answers for the state).
    pub fn forget(mut self) {
        self.restored = true;
        self.lock.keep_file();
    }

    /// Gives the interface back: table removed, addresses and IPv6 setting
    /// restored, state file removed. If something cannot be restored the
    /// state file stays, for the next start or `rvsd --release`.
    pub fn restore(&mut self) {
        if self.restored {
            return;
        }
        self.restored = true;
        let path = &self.lock.paths().state;
        match give_back(&self.state) {
            Ok(done) => {
                tracing::info!("{}: given back: {done}", self.iface());
                if let Err(e) = std::fs::remove_file(path) {
                    tracing::warn!("cannot remove {}: {e}", path.display());
                }
            }
            Err(e) => tracing::warn!(
                "giving {} back: {e}; {} is kept for `rvsd --release {}`",
                self.iface(),
                path.display(),
                self.iface()
            ),
        }
    }
}

impl Drop for Takeover {
    fn drop(&mut self) {
        self.restore();
    }
}

/// `rvsd --release IFACE`: gives back a port a dead rvsd left taken (the
/// state file under `dir`), or removes a table an older rvsd left, and
/// detaches the XDP program a killed DPDK rvsd on `net_af_xdp` leaves (or
/// one of rvs's own attached the old way). Refused, naming the pid, while a
/// running rvsd holds the port. Says what was done.
pub fn release(dir: &Path, iface: &str) -> Result<String, String> {
    check_name(iface)?;
    let lock = PortLock::acquire(dir, iface)?;
    let done = release_state(&lock, iface)?;
    // Under the lock: no rvsd can be starting on the port meanwhile.
    let r = match rvs_io::af_xdp::detach_leftover(iface) {
        Ok(None) => Ok(done),
        Ok(Some(x)) => Ok(format!("{done}; {x}")),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(done),
        Err(e) => Err(format!("{done}; but {e}")),
    };
    drop(lock);
    r
}

/// [`release`] of the takeover state and nftables table.
fn release_state(lock: &PortLock, iface: &str) -> Result<String, String> {
    if let Some((pid, done)) = replay(lock)? {
        return Ok(format!(
            "{iface}: given back (taken by rvsd pid {pid}, which is gone): {done}"
        ));
    }
    let table = table_name(iface);
    let state = lock.paths().state.display();
    Ok(match delete_table(&table)? {
        true => {
            format!("{iface}: no takeover state ({state}); nftables table netdev {table} removed")
        }
        false => format!(
            "{iface}: nothing to give back (no takeover state {state}, no nftables table {table})"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_distinct_for_distinct_interfaces() {
        assert_eq!(table_name("wan"), "rvs_wan");
        assert_eq!(table_name("eth0"), "rvs_eth0");
        let names = ["a-b", "a_b", "a.b", "a__b", "a_2db", "a_5fb"];
        let tables: std::collections::HashSet<_> = names.iter().map(|n| table_name(n)).collect();
        assert_eq!(tables.len(), names.len(), "{tables:?}");
        for t in &tables {
            assert!(
                t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{t}"
            );
        }
    }
}

//! Taking a kernel interface over, and giving it back.
//!
//! While rvs owns a port the kernel must not also answer on it: rvsd removes
//! the interface's addresses (keeping them to restore), turns IPv6 off on it
//! (no autoconfigured address, no ND of its own), and installs an nftables
//! `netdev` ingress table with policy drop on the device, which the kernel's
//! stack sees after AF_PACKET has already handed the frame to rvs. All of it
//! is undone on exit; a table left by a crashed run is removed at the next
//! start.

use std::process::Command;

/// What was changed on one interface, to undo on exit.
#[derive(Debug)]
pub struct Takeover {
    iface: String,
    table: String,
    addrs: Vec<(String, String)>,
    disable_ipv6: Option<String>,
    restored: bool,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} {:?} failed: {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The nftables table name rvsd uses for an interface.
pub fn table_name(iface: &str) -> String {
    let safe: String = iface
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("rvs_{safe}")
}

fn sysctl_path(iface: &str) -> String {
    format!("/proc/sys/net/ipv6/conf/{iface}/disable_ipv6")
}

impl Takeover {
    /// Takes `iface` over. Fails, changing nothing it cannot undo, if the
    /// interface does not exist or `nft` is missing.
    pub fn take(iface: &str) -> Result<Takeover, String> {
        if !std::path::Path::new(&format!("/sys/class/net/{iface}")).exists() {
            return Err(format!("no such interface {iface}"));
        }
        let table = table_name(iface);
        // A table left over by a run that crashed.
        let _ = run(Command::new("nft").args(["delete", "table", "netdev", &table]));
        let mut addrs = Vec::new();
        for fam in ["-4", "-6"] {
            let out = run(Command::new("ip")
                .args(["-o", fam, "addr", "show", "dev", iface, "scope", "global"]))?;
            for line in out.lines() {
                let mut it = line.split_whitespace();
                while let Some(w) = it.next() {
                    if w == "inet" || w == "inet6" {
                        if let Some(a) = it.next() {
                            addrs.push((fam.to_string(), a.to_string()));
                        }
                    }
                }
            }
        }
        let script = format!(
            "table netdev {table} {{\n  chain ingress {{\n    type filter hook ingress device \"{iface}\" priority -500; policy drop;\n  }}\n}}\n"
        );
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
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
        let disable_ipv6 = std::fs::read_to_string(sysctl_path(iface))
            .ok()
            .map(|s| s.trim().to_string());
        let _ = std::fs::write(sysctl_path(iface), "1");
        for (fam, a) in &addrs {
            let _ = run(Command::new("ip").args([fam.as_str(), "addr", "del", a, "dev", iface]));
        }
        let _ = run(Command::new("ip").args(["link", "set", iface, "up"]));
        Ok(Takeover {
            iface: iface.to_string(),
            table,
            addrs,
            disable_ipv6,
            restored: false,
        })
    }

    /// The interface.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Gives the interface back: table removed, addresses and IPv6 setting restored.
    pub fn restore(&mut self) {
        if self.restored {
            return;
        }
        self.restored = true;
        if let Err(e) = run(Command::new("nft").args(["delete", "table", "netdev", &self.table])) {
            tracing::warn!("restoring {}: {e}", self.iface);
        }
        if let Some(v) = &self.disable_ipv6 {
            let _ = std::fs::write(sysctl_path(&self.iface), v);
        }
        for (fam, a) in &self.addrs {
            if let Err(e) =
                run(Command::new("ip").args([fam.as_str(), "addr", "add", a, "dev", &self.iface]))
            {
                tracing::warn!("restoring {} on {}: {e}", a, self.iface);
            }
        }
    }
}

impl Drop for Takeover {
    fn drop(&mut self) {
        self.restore();
    }
}

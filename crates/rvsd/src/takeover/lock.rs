//! One rvsd per interface: a lock file per port, locked with flock(2) for
//! the life of the process that owns the port, holding its pid. The kernel
//! drops the lock when that process dies, even by SIGKILL, so a crash never
//! leaves the port locked. The file itself is never removed (removing a
//! lock file races with whoever opens it next).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use super::state::Paths;

/// The right to change one interface: held from [`PortLock::acquire`] until
/// dropped.
#[derive(Debug)]
pub struct PortLock {
    iface: String,
    paths: Paths,
    _file: File,
}

impl PortLock {
    /// Locks `iface` (files under `dir`, see [`Paths`]). Refused, naming
    /// the holder's pid, while another rvsd holds it; changes nothing on
    /// the interface either way.
    pub fn acquire(dir: &Path, iface: &str) -> Result<PortLock, String> {
        let paths = Paths::new(dir, iface);
        let base = paths.lock.parent().unwrap_or(dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(base)
            .map_err(|e| format!("cannot create {}: {e}", base.display()))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&paths.lock)
            .map_err(|e| format!("cannot open {}: {e}", paths.lock.display()))?;
        let locked = rvs_io::lock::try_lock_exclusive(&file)
            .map_err(|e| format!("cannot lock {}: {e}", paths.lock.display()))?;
        if !locked {
            return Err(format!(
                "{iface} is taken by another rvsd (pid {}, lock {}): stop it first (SIGTERM gives the port back)",
                holder(&mut file),
                paths.lock.display()
            ));
        }
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(format!("{pid}\n").as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", paths.lock.display()))?;
        Ok(PortLock {
            iface: iface.to_string(),
            paths,
            _file: file,
        })
    }

    /// The interface.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Its files.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }
}

/// The pid written in a lock file held by someone else ("unknown" when the
/// holder has not written it yet).
fn holder(file: &mut File) -> String {
    for _ in 0..20 {
        let mut s = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok() && file.read_to_string(&mut s).is_ok() {
            let s = s.trim();
            if !s.is_empty() {
                return s.to_string();
            }
        }
        // The holder writes its pid right after taking the lock.
        std::thread::sleep(Duration::from_millis(10));
    }
    "unknown".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_port_is_refused_with_the_holders_pid() {
        let dir = std::env::temp_dir().join(format!("rvsd-lock-{}", std::process::id()));
        let a = PortLock::acquire(&dir, "wan").expect("first lock");
        let e = PortLock::acquire(&dir, "wan").expect_err("second lock");
        assert!(
            e.contains(&format!("pid {}", std::process::id())),
            "the holder's pid: {e}"
        );
        assert!(e.contains("wan"), "{e}");
        let other = PortLock::acquire(&dir, "lan").expect("another port is free");
        drop(a);
        let again = PortLock::acquire(&dir, "wan").expect("free once the holder is gone");
        drop((other, again));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

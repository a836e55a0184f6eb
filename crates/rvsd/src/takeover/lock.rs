//! One rvsd per interface: a lock file per port, locked with flock(2) for
//! the life of the process that owns the port, holding its pid. The kernel
//! drops the lock when that process dies, even by SIGKILL, so a crash never
//! leaves the port locked. The holder removes the file when it lets go;
//! whoever locks a file checks that it is still the one at the path (not
//! one removed meanwhile), and tries again if not.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use super::state::Paths;

/// The right to change one interface: held from [`PortLock::acquire`] until
/// dropped.
#[derive(Debug)]
pub struct PortLock {
    iface: String,
    paths: Paths,
    /// Holds the lock while open.
    _file: File,
    /// Leave the file in place on drop ([`forget`](Self::forget)).
    keep_file: bool,
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
        for _ in 0..100 {
            if let Some(mut file) = lock_file(&paths.lock, iface)? {
                let pid = std::process::id().to_string();
                file.set_len(0)
                    .and_then(|_| file.seek(SeekFrom::Start(0)))
                    .and_then(|_| file.write_all(format!("{pid}\n").as_bytes()))
                    .map_err(|e| format!("cannot write {}: {e}", paths.lock.display()))?;
                return Ok(PortLock {
                    iface: iface.to_string(),
                    paths,
                    _file: file,
                    keep_file: false,
                });
            }
        }
        Err(format!(
            "cannot lock {}: it keeps being replaced",
            paths.lock.display()
        ))
    }

    /// The lock's descriptor, to pass to a successor (hot upgrade): the
    /// passed copy shares this open file description, and so the lock.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self._file.as_fd()
    }

    /// Takes over the lock of `iface` from a descriptor the running rvsd
    /// passed (see [`as_fd`](Self::as_fd)): no new lock is taken, so there
    /// is no moment when the port is free. Refused, saying why, when `fd`
    /// is not the lock file now at its path or does not hold its lock. The
    /// pid in the file stays the old holder's until [`claim`](Self::claim).
    pub fn adopt(dir: &Path, iface: &str, fd: OwnedFd) -> Result<PortLock, String> {
        let paths = Paths::new(dir, iface);
        let file = rvs_io::lock::adopt_lock(fd, &paths.lock)
            .map_err(|e| format!("cannot take over the lock of {iface}: {e}"))?;
        // The running rvsd's file until [`claim`]: a successor that fails
        // must not remove it on its way out.
        Ok(PortLock {
            iface: iface.to_string(),
            paths,
            _file: file,
            keep_file: true,
        })
    }

    /// Writes this process's pid into the lock file (the successor, once
    /// it is the one serving the port): from now on the file is its own.
    pub fn claim(&mut self) -> Result<(), String> {
        self.keep_file = false;
        let pid = std::process::id().to_string();
        let f = &mut self._file;
        f.set_len(0)
            .and_then(|_| f.seek(SeekFrom::Start(0)))
            .and_then(|_| f.write_all(format!("{pid}\n").as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", self.paths.lock.display()))
    }

    /// Lets go of this copy without removing the lock file (the old rvsd
    /// after a hand-over: its successor holds the same lock).
    pub fn forget(mut self) {
        self.keep_file();
    }

    /// As [`forget`](Self::forget), for a lock held inside another value.
    pub fn keep_file(&mut self) {
        self.keep_file = true;
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

impl Drop for PortLock {
    fn drop(&mut self) {
        // Still locked here: nobody holds the file being removed.
        if !self.keep_file {
            let _ = std::fs::remove_file(&self.paths.lock);
        }
    }
}

/// Opens and locks the lock file at `path`: `None` when the file locked was
/// removed from `path` meanwhile (its holder let go: try again).
fn lock_file(path: &Path, iface: &str) -> Result<Option<File>, String> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let locked = rvs_io::lock::try_lock_exclusive(&file)
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    if !locked {
        return Err(format!(
            "{iface} is taken by another rvsd (pid {}, lock {}): stop it first (SIGTERM gives the port back)",
            holder(&mut file),
            path.display()
        ));
    }
    let same = match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    Ok(same.then_some(file))
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
        let path = again.paths().lock.clone();
        assert!(path.exists());
        drop((other, again));
        assert!(!path.exists(), "the lock file goes with its holder");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_passed_lock_is_adopted_and_never_free_in_between() {
        let dir = std::env::temp_dir().join(format!("rvsd-lock-adopt-{}", std::process::id()));
        let old = PortLock::acquire(&dir, "wan").unwrap();
        // What SCM_RIGHTS delivers: a copy of the same open file description.
        let passed = old.as_fd().try_clone_to_owned().unwrap();
        let mut new = PortLock::adopt(&dir, "wan", passed).expect("adopt the passed lock");
        old.forget();
        let path = new.paths().lock.clone();
        assert!(
            path.exists(),
            "the old holder's exit leaves the file to its successor"
        );
        let e = PortLock::acquire(&dir, "wan").expect_err("held by the successor");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        new.claim().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        // A descriptor of the file that does not hold the lock is refused.
        let stray = std::fs::File::open(&path).unwrap();
        let e = PortLock::adopt(&dir, "wan", stray.into()).expect_err("not the holder");
        assert!(e.contains("does not hold its lock"), "{e}");
        drop(new);
        assert!(!path.exists(), "the successor removes it when it lets go");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_successor_that_fails_before_claiming_leaves_the_lock_file_to_the_holder() {
        let dir = std::env::temp_dir().join(format!("rvsd-lock-fail-{}", std::process::id()));
        let old = PortLock::acquire(&dir, "wan").unwrap();
        let passed = old.as_fd().try_clone_to_owned().unwrap();
        let new = PortLock::adopt(&dir, "wan", passed).unwrap();
        drop(new);
        let path = old.paths().lock.clone();
        assert!(path.exists(), "the running rvsd's lock file stays");
        // A second successor can still adopt it.
        let again = PortLock::adopt(&dir, "wan", old.as_fd().try_clone_to_owned().unwrap());
        assert!(again.is_ok(), "{:?}", again.err());
        drop((again, old));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Advisory whole-file locks (flock(2)). The kernel releases such a lock when
//! the last descriptor of the open file goes away, so a process that dies,
//! even by SIGKILL, never leaves one behind.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::sys::cvt;

/// Takes an exclusive lock on `file` without waiting. `Ok(false)` when
/// another open of the file (another process, or another `File` of this
/// one) holds it. The lock lasts as long as `file` stays open.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: flock(2) has no memory arguments; `file` keeps the descriptor
    // open for the duration of the call.
    match cvt(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Takes over a lock another process holds and passed as a descriptor
/// (hot upgrade): the descriptor shares the holder's open file description,
/// and a flock belongs to that description, so the lock never lapses: the
/// old process may close its copy or die, the lock stays held. Checks that
/// `fd` is the file now at `path` (not one removed or replaced since) and
/// that its description holds the lock (locking again through it is a
/// no-op then; another holder makes it fail). Errors name what differs.
pub fn adopt_lock(fd: OwnedFd, path: &Path) -> io::Result<File> {
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let file = File::from(fd);
    let (ours, there) = (file.metadata()?, std::fs::metadata(path)?);
    if !ours.is_file() || ours.dev() != there.dev() || ours.ino() != there.ino() {
        return Err(bad(format!(
            "the passed lock descriptor is not the file at {} (inode {} there, {} passed)",
            path.display(),
            there.ino(),
            ours.ino()
        )));
    }
    if !try_lock_exclusive(&file)? {
        return Err(bad(format!(
            "the passed descriptor of {} does not hold its lock (another open does)",
            path.display()
        )));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_open_is_refused_until_the_first_closes() {
        let path = std::env::temp_dir().join(format!("rvs-io-lock-{}", std::process::id()));
        let a = File::create(&path).unwrap();
        let b = File::open(&path).unwrap();
        assert!(try_lock_exclusive(&a).unwrap());
        assert!(
            !try_lock_exclusive(&b).unwrap(),
            "a held lock must be refused"
        );
        drop(a);
        assert!(try_lock_exclusive(&b).unwrap(), "closing releases the lock");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn an_adopted_lock_stays_held_after_the_first_holder_closes() {
        let path = std::env::temp_dir().join(format!("rvs-io-adopt-{}", std::process::id()));
        let a = File::create(&path).unwrap();
        assert!(try_lock_exclusive(&a).unwrap());
        // A dup stands for the descriptor passed by SCM_RIGHTS: the same
        // open file description.
        let passed = OwnedFd::from(a.try_clone().unwrap());
        let b = adopt_lock(passed, &path).expect("the holder's description");
        drop(a);
        let other = File::open(&path).unwrap();
        assert!(!try_lock_exclusive(&other).unwrap(), "still held through b");
        let e = adopt_lock(OwnedFd::from(File::open(&path).unwrap()), &path).unwrap_err();
        assert!(e.to_string().contains("does not hold its lock"), "{e}");
        let elsewhere = std::env::temp_dir().join(format!("rvs-io-adopt-x-{}", std::process::id()));
        std::fs::write(&elsewhere, b"").unwrap();
        let e = adopt_lock(OwnedFd::from(b.try_clone().unwrap()), &elsewhere).unwrap_err();
        assert!(e.to_string().contains("not the file at"), "{e}");
        drop(b);
        assert!(
            try_lock_exclusive(&other).unwrap(),
            "free once the last copy closes"
        );
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&elsewhere);
    }
}

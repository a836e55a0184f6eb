//! Advisory whole-file locks (flock(2)). The kernel releases such a lock when
//! the last descriptor of the open file goes away, so a process that dies,
//! even by SIGKILL, never leaves one behind.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

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
}

//! A death signal that fires before the kernel tears a dead process's
//! memory down (issue 14, warm standby). In `do_exit` the kernel unmaps the
//! whole address space (`exit_mm`) before it closes the files (socket EOF)
//! and signals the pidfd (`exit_notify`): with gigabytes of connection
//! tables that takes hundreds of milliseconds. Robust futexes are released
//! earlier, in `exit_mm_release`, before the unmapping: a process-shared
//! robust mutex held by a thread of the watched process is handed to its
//! waiter with `EOWNERDEAD` within a millisecond of a SIGKILL.
//!
//! The mutex lives in a small memfd ([`DeathWatch::new`]), passed to the
//! watcher ([`DeathWatch::open`], e.g. with [`crate::fdpass`]). The watched
//! process holds it ([`DeathWatch::hold`]) for as long as it wants to be
//! watched; the watcher waits on it ([`DeathWatch::watch`]). A normal
//! release ([`Holder`] dropped) is [`Outcome::Released`], never a death.
//! `EOWNERDEAD` says one thread died holding it: [`all_tasks_exiting`]
//! tells whether the whole process is going (every thread past the point
//! of no return, none able to run user code again).

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The size of the shared memory (one page; the mutex is at its start).
const SIZE: usize = 4096;

/// A process-shared robust mutex in a memfd, mapped in this process.
#[derive(Debug)]
pub struct DeathWatch {
    fd: OwnedFd,
    mutex: NonNull<libc::pthread_mutex_t>,
}

// SAFETY: the mapping is shared memory whose only content is a pthread
// mutex, made for use by several threads and processes at once.
unsafe impl Send for DeathWatch {}
// SAFETY: as above; every access goes through the pthread functions.
unsafe impl Sync for DeathWatch {}

/// How a wait on a [`DeathWatch`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The holder died holding it (`EOWNERDEAD`).
    OwnerDied,
    /// The holder let it go normally.
    Released,
}

fn map(fd: OwnedFd) -> io::Result<DeathWatch> {
    // SAFETY: a fresh shared mapping of `SIZE` bytes of a memfd we own; the
    // kernel checks the arguments; the result is checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let mutex = NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap gave null"))?;
    Ok(DeathWatch { fd, mutex })
}

/// A new close-on-exec memfd named `name` (also used by the tests).
fn memfd(name: &str) -> io::Result<OwnedFd> {
    let n = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated name; the result is checked.
    let fd = unsafe { libc::memfd_create(n.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just made, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn check(rc: i32, what: &str) -> io::Result<()> {
    match rc {
        0 => Ok(()),
        e => Err(io::Error::new(
            io::Error::from_raw_os_error(e).kind(),
            format!("{what}: {}", io::Error::from_raw_os_error(e)),
        )),
    }
}

impl DeathWatch {
    /// A new memfd with an unlocked process-shared robust mutex in it.
    pub fn new() -> io::Result<DeathWatch> {
        let fd = memfd("rvs-deathwatch")?;
        // SAFETY: our memfd; the kernel checks the size.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), SIZE as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let w = map(fd)?;
        let mut a = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: the attribute is initialised before use and destroyed
        // after; the mutex points to our zeroed, page-aligned mapping.
        unsafe {
            check(
                libc::pthread_mutexattr_init(a.as_mut_ptr()),
                "mutexattr_init",
            )?;
            let a = a.as_mut_ptr();
            let r = check(
                libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED),
                "setpshared",
            )
            .and_then(|()| {
                check(
                    libc::pthread_mutexattr_setrobust(a, libc::PTHREAD_MUTEX_ROBUST),
                    "setrobust",
                )
            })
            .and_then(|()| check(libc::pthread_mutex_init(w.mutex.as_ptr(), a), "mutex_init"));
            libc::pthread_mutexattr_destroy(a);
            r?;
        }
        Ok(w)
    }

    /// Maps the mutex of a memfd made by [`DeathWatch::new`] (in another
    /// process); refuses a descriptor that is not one.
    pub fn open(fd: OwnedFd) -> io::Result<DeathWatch> {
        let size = std::fs::File::from(fd.try_clone()?).metadata()?.len();
        if size != SIZE as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a death watch is {SIZE} bytes, this descriptor {size}"),
            ));
        }
        map(fd)
    }

    /// The memfd, to pass to the watcher.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Blocks until it gets the mutex: [`Outcome::OwnerDied`] if the holder
    /// died holding it, else [`Outcome::Released`]; it is unlocked again
    /// (and consistent) on return.
    pub fn wait(&self) -> io::Result<Outcome> {
        let m = self.mutex.as_ptr();
        // SAFETY: `m` is an initialised robust mutex in our live mapping.
        let rc = unsafe { libc::pthread_mutex_lock(m) };
        let out = match rc {
            0 => Outcome::Released,
            libc::EOWNERDEAD => {
                // SAFETY: we own it (EOWNERDEAD): mark it usable again.
                check(unsafe { libc::pthread_mutex_consistent(m) }, "consistent")?;
                Outcome::OwnerDied
            }
            e => return check(e, "waiting on the death watch").map(|()| Outcome::Released),
        };
        // SAFETY: this thread holds it.
        check(unsafe { libc::pthread_mutex_unlock(m) }, "unlock")?;
        Ok(out)
    }

    /// Takes the mutex on this thread and keeps it until the thread ends
    /// (for a process that is watched until it dies, e.g. a forked child
    /// in a test). `Err`: it could not be taken.
    pub fn hold_until_exit(&self) -> io::Result<()> {
        let m = self.mutex.as_ptr();
        // SAFETY: an initialised robust mutex in our live mapping.
        match unsafe { libc::pthread_mutex_lock(m) } {
            // SAFETY: held (a former holder died): made usable.
            libc::EOWNERDEAD => check(unsafe { libc::pthread_mutex_consistent(m) }, "consistent"),
            e => check(e, "taking the death watch"),
        }
    }

    /// Holds the mutex on a thread of its own until the [`Holder`] is
    /// dropped; returns once it is held (`Err`: it could not be taken).
    pub fn hold(self: &Arc<Self>) -> io::Result<Holder> {
        let (tx, rx) = mpsc::channel::<()>();
        let (held_tx, held_rx) = mpsc::channel::<io::Result<()>>();
        let w = self.clone();
        let thread = std::thread::Builder::new()
            .name("rvs-deathwatch".into())
            .spawn(move || {
                let m = w.mutex.as_ptr();
                // SAFETY: an initialised robust mutex in a live mapping.
                let rc = unsafe { libc::pthread_mutex_lock(m) };
                let r = match rc {
                    // SAFETY: held (a former holder died): made usable.
                    libc::EOWNERDEAD => check(unsafe { libc::pthread_mutex_consistent(m) }, "c"),
                    e => check(e, "taking the death watch"),
                };
                let ok = r.is_ok();
                let _ = held_tx.send(r);
                if ok {
                    let _ = rx.recv();
                    // SAFETY: this thread holds it.
                    unsafe { libc::pthread_mutex_unlock(m) };
                }
            })?;
        held_rx
            .recv()
            .map_err(|_| io::Error::other("the death watch thread died"))??;
        Ok(Holder {
            release: Some(tx),
            thread: Some(thread),
        })
    }

    /// Waits on a thread of its own ([`DeathWatch::wait`]); the returned
    /// [`Watcher`]'s descriptor becomes readable when the wait ends.
    pub fn watch(self: &Arc<Self>) -> io::Result<Watcher> {
        let (mut a, b) = UnixStream::pair()?;
        let w = self.clone();
        std::thread::Builder::new()
            .name("rvs-deathwatch".into())
            .spawn(move || {
                let byte = match w.wait() {
                    Ok(Outcome::OwnerDied) => b'D',
                    _ => b'R',
                };
                let _ = std::io::Write::write_all(&mut a, &[byte]);
            })?;
        b.set_nonblocking(true)?;
        Ok(Watcher { end: b, seen: None })
    }
}

impl Drop for DeathWatch {
    fn drop(&mut self) {
        // SAFETY: our mapping of `SIZE` bytes; no thread uses it any more
        // (the threads of `hold` and `watch` hold an `Arc` of it).
        unsafe { libc::munmap(self.mutex.as_ptr().cast(), SIZE) };
    }
}

/// The mutex held by a thread of this process; dropped: released normally.
#[derive(Debug)]
pub struct Holder {
    release: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A wait on a [`DeathWatch`] running on its own thread.
#[derive(Debug)]
pub struct Watcher {
    end: UnixStream,
    seen: Option<Outcome>,
}

impl Watcher {
    /// Readable when the wait ended (to poll with other descriptors).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.end.as_fd()
    }

    /// How the wait ended, if it did (does not block).
    pub fn outcome(&mut self) -> Option<Outcome> {
        if self.seen.is_none() {
            let mut b = [0u8; 1];
            self.seen = match self.end.read(&mut b) {
                Ok(1) if b[0] == b'D' => Some(Outcome::OwnerDied),
                Ok(_) => Some(Outcome::Released),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                Err(_) => Some(Outcome::Released),
            };
        }
        self.seen
    }
}

/// `PF_EXITING` in `/proc/<pid>/task/<tid>/stat`'s flags.
const PF_EXITING: u64 = 0x4;

/// Whether every thread of process `pid` is exiting (`PF_EXITING`: it
/// runs no user code again) or gone. `false` while any thread may still run.
pub fn all_tasks_exiting(pid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true; // the process is gone
    };
    for e in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue; // that thread is gone
        };
        if stat_flags(&stat).is_none_or(|f| f & PF_EXITING == 0) {
            return false;
        }
    }
    true
}

/// The flags field of a `/proc/.../stat` line (the 9th; the name in
/// parentheses may hold spaces).
fn stat_flags(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(6)?.parse().ok()
}

#[cfg(test)]
mod tests;

//! The process at the other end of a hand-over (issue 14): who it is
//! (`SO_PEERCRED`), and its death seen within microseconds through a
//! pidfd, which becomes readable when the process exits, SIGKILL included.
//! A warm standby watches the active rvsd this way; an rvsd handing over
//! watches its successor until the commit.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

/// Another process, held by a pidfd (so its pid cannot be reused under us).
#[derive(Debug)]
pub struct Peer {
    pid: u32,
    uid: u32,
    pidfd: OwnedFd,
}

impl Peer {
    /// The process at the other end of a connected unix stream.
    pub fn of_stream(s: &UnixStream) -> io::Result<Peer> {
        let cred = rustix::net::sockopt::socket_peercred(s.as_fd())?;
        let mut p = Peer::of_pid(cred.pid.as_raw_nonzero().get() as u32)?;
        p.uid = cred.uid.as_raw();
        Ok(p)
    }

    /// Process `pid` (uid unknown: reported as `u32::MAX`).
    pub fn of_pid(pid: u32) -> io::Result<Peer> {
        let p = Pid::from_raw(pid as i32).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("no such pid {pid}"))
        })?;
        Ok(Peer {
            pid,
            uid: u32::MAX,
            pidfd: pidfd_open(p, PidfdFlags::empty())?,
        })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its user id, from the credentials of the stream it was found on.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// Whether it exited within `timeout` (zero: just look).
    pub fn wait_exit(&self, timeout: Duration) -> io::Result<bool> {
        let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
        let ts = Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        loop {
            match poll(&mut fds, Some(&ts)) {
                Ok(n) => return Ok(n > 0),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends SIGKILL (a hung process is replaced, not waited for).
    pub fn kill(&self) -> io::Result<()> {
        Ok(pidfd_send_signal(&self.pidfd, Signal::KILL)?)
    }

    /// The pidfd, to poll together with other descriptors.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.pidfd.as_fd()
    }
}

/// Stamps the listening unix socket `l` with this process's credentials
/// (`listen` again on a listening socket keeps its queue and sets the
/// credentials [`Peer::of_stream`] gives each client connecting from then
/// on). A listener passed from another process otherwise keeps naming
/// that process, also after it is gone.
pub fn claim_listener(l: &std::os::unix::net::UnixListener) -> io::Result<()> {
    // -1: the kernel's maximum backlog, as the standard library binds.
    Ok(rustix::net::listen(l, -1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn a_killed_process_is_seen_dead_at_once_and_a_live_one_is_not() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep");
        let p = Peer::of_pid(child.id()).unwrap();
        assert_eq!(p.pid(), child.id());
        assert!(!p.wait_exit(Duration::from_millis(20)).unwrap(), "alive");
        p.kill().unwrap();
        assert!(p.wait_exit(Duration::from_secs(5)).unwrap(), "dead");
        let _ = child.wait();
    }

    #[test]
    fn the_peer_of_a_stream_is_this_process_for_a_socket_pair() {
        let (a, _b) = UnixStream::pair().unwrap();
        let p = Peer::of_stream(&a).unwrap();
        assert_eq!(p.pid(), std::process::id());
        assert_eq!(p.uid(), rustix::process::getuid().as_raw());
        assert!(!p.wait_exit(Duration::ZERO).unwrap());
        assert!(Peer::of_pid(0).is_err());
    }
}

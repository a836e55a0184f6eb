use super::*;
use std::time::{Duration, Instant};

use crate::peer::Peer;

/// A child process holding `w`'s mutex (locked before this returns).
fn child_holding(w: &DeathWatch) -> u32 {
    let mut p = [0i32; 2];
    // SAFETY: a pipe into a two-int array.
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    // SAFETY: the child only calls async-signal-safe functions (the lock of
    // a process-shared mutex is a futex), then waits to be killed.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: the inherited shared mapping; a pipe end.
        unsafe {
            libc::pthread_mutex_lock(w.mutex.as_ptr());
            libc::write(p[1], b"x".as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    let mut b = [0u8; 1];
    // SAFETY: our pipe's read end, then both ends closed.
    unsafe {
        assert_eq!(libc::read(p[0], b.as_mut_ptr().cast(), 1), 1);
        libc::close(p[0]);
        libc::close(p[1]);
    }
    pid as u32
}

fn wait_outcome(w: &mut Watcher, limit: Duration) -> Option<Outcome> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Some(o) = w.outcome() {
            return Some(o);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    None
}

fn reap(pid: u32) {
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), 0) };
}

#[test]
fn a_holder_killed_is_seen_dead_and_its_threads_exiting() {
    let w = Arc::new(DeathWatch::new().expect("death watch"));
    let pid = child_holding(&w);
    let peer = Peer::of_pid(pid).unwrap();
    let mut watcher = w.watch().unwrap();
    assert_eq!(wait_outcome(&mut watcher, Duration::from_millis(50)), None);
    assert!(!all_tasks_exiting(pid), "a live child is not exiting");
    peer.kill().unwrap();
    let got = wait_outcome(&mut watcher, Duration::from_secs(5));
    assert_eq!(got, Some(Outcome::OwnerDied));
    assert!(peer.wait_exit(Duration::from_secs(5)).unwrap());
    assert!(all_tasks_exiting(pid), "a dead (zombie) child is exiting");
    reap(pid);
    assert!(all_tasks_exiting(pid), "a reaped child is gone");
    // Consistent again: the next holder and waiter work as new.
    let h = w.hold().unwrap();
    drop(h);
}

#[test]
fn a_normal_release_is_not_a_death() {
    let w = Arc::new(DeathWatch::new().unwrap());
    let other = Arc::new(DeathWatch::open(w.fd().try_clone_to_owned().unwrap()).unwrap());
    let h = w.hold().unwrap();
    let mut watcher = other.watch().unwrap();
    assert_eq!(wait_outcome(&mut watcher, Duration::from_millis(50)), None);
    drop(h);
    let got = wait_outcome(&mut watcher, Duration::from_secs(5));
    assert_eq!(got, Some(Outcome::Released));
}

#[test]
fn this_process_is_not_exiting_and_a_wrong_descriptor_is_refused() {
    assert!(!all_tasks_exiting(std::process::id()));
    let f = memfd("x").unwrap();
    let e = DeathWatch::open(f).unwrap_err();
    assert!(e.to_string().contains("a death watch is 4096 bytes"), "{e}");
    let line = "12 (a (b) c) S 1 12 12 0 -1 4194628 0 0";
    assert_eq!(stat_flags(line), Some(4194628));
}

//! The host's monotonic clock as a number, comparable between processes
//! (a hand-over's gap: the old process's last read and the new one's
//! first, `docs/design/hot-upgrade.md` section 5).

/// `CLOCK_MONOTONIC` in nanoseconds (the clock `std::time::Instant` reads
/// on Linux).
pub fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_with_instant() {
        let i = std::time::Instant::now();
        let a = super::monotonic_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::monotonic_ns();
        let e = i.elapsed().as_nanos() as u64;
        // Both read one clock: what it saw lies within what Instant saw.
        assert!(b - a >= 2_000_000 && b - a <= e, "{} vs {e}", b - a);
    }
}

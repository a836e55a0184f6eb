//! Health checks of real servers, with keepalived's semantics, and the
//! policy that turns their results into the services rvsd should have.
//!
//! The checks run from the kernel's stack (the process lives where the
//! real servers are reached through the kni device), each checker on its
//! own thread and timer:
//! - [`probe`]: one attempt of `TCP_CHECK`, `HTTP_GET`, `UDP_CHECK` or
//!   `MISC_CHECK` (blocking, bounded by its timeout).
//! - [`retry`]: keepalived's timing around the attempts, sans-IO: `retry`
//!   (`nb_sock_retry`, `nb_get_retry`) consecutive failures after the first,
//!   `delay_before_retry` apart, make a checker DOWN; one success makes it
//!   UP; `delay_loop` between rounds.
//! - [`runner`]: the threads (a random `warmup` delay before the first
//!   check), sending [`CheckEvent`]s into a channel, and the notify
//!   scripts.
//! - [`health`]: what the events mean for a real server (UP when all its
//!   checkers are UP; `alpha` starts it DOWN) and for a virtual server's
//!   quorum (`quorum`, `hysteresis`, `quorum_up` / `quorum_down` scripts,
//!   `omega`), as notifications to run.
//! - [`policy`]: pure, (configuration, health) to wanted services: a DOWN
//!   real server gets weight 0 with `inhibit_on_failure` and is left out
//!   otherwise; the `sorry_server` replaces the live ones while the quorum
//!   is lost.
//!
//! A `SSL_GET` checker is not run (rvs-keepalived has no TLS): it never
//! marks its real server down, and [`runner::checker_plans`] warns about it.
//! `ha_suspend` is parsed but checks are not suspended.
//!
//! # Driving it
//! The daemon's loop, with the reconciler: on a reload, stop the checkers,
//! carry the health over with [`HealthState::reloaded`], and start the
//! checkers of the new configuration from it; on exit, run
//! [`HealthState::shutdown`]'s scripts (`omega`). [`crate::services`] is
//! that loop, on its own thread; in short:
//!
//! ```no_run
//! use rvs_keepalived::check::{self, runner, HealthState};
//! use rvs_keepalived::reconcile::{socket_transport, Reconciler};
//!
//! let cfg = rvs_keepalived::conf::load("/etc/keepalived/keepalived.conf").unwrap().config;
//! let (mut health, notes) = HealthState::new(&cfg);
//! let (plans, warnings) = runner::checker_plans(&cfg, &health);
//! let (tx, rx) = std::sync::mpsc::channel();
//! let _checkers = check::spawn(plans, tx).unwrap();
//! let (mut rvsd, mut rec) = (socket_transport(), Reconciler::new());
//! rec.reconcile(&mut rvsd, &check::wanted(&cfg, &health).unwrap()).unwrap();
//! for ev in rx {
//!     eprintln!("{}", runner::describe(&cfg, &ev));
//!     for n in health.event(&cfg, &ev) {
//!         let _ = check::run_notify(&n);
//!     }
//!     let report = rec.reconcile(&mut rvsd, &check::wanted(&cfg, &health).unwrap());
//!     for f in report.map(|r| r.failures).unwrap_or_default() {
//!         eprintln!("{f}");
//!     }
//! }
//! # let _ = (notes, warnings);
//! ```

pub mod health;
pub mod policy;
pub mod probe;
pub mod retry;
pub mod runner;

#[cfg(test)]
mod tests;

pub use health::{HealthState, Notify};
pub use policy::wanted;
pub use runner::{checker_plans, run_notify, spawn, Checkers};

/// What a checker found, as sent to the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The checker succeeds again (or for the first time, after `alpha`).
    Up,
    /// The checker failed `retry + 1` times in a row.
    Down,
    /// `MISC_CHECK` with `misc_dynamic` succeeded with exit status `n + 2`:
    /// the real server is up with weight `n`.
    Weight(u32),
}

/// A change of one checker of one real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckEvent {
    /// Index of the virtual server in [`crate::conf::Config::virtual_servers`].
    pub vs: usize,
    /// Index of the real server in its virtual server's `real_servers`.
    pub rs: usize,
    /// Index of the checker in the real server's `checkers`.
    pub checker: usize,
    /// What changed.
    pub status: Status,
    /// Why, for the log: the failure of the last attempt for
    /// [`Status::Down`] ("TCP connection to 10.0.0.2:80 failed: Connection
    /// refused"); empty otherwise.
    pub detail: String,
}

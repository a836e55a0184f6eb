//! Handing the running daemon over to another process: a hot upgrade
//! (`rvsd --takeover`) or a warm standby (`rvsd --standby`), as
//! `docs/design/hot-upgrade.md` describes. The running rvsd passes its
//! descriptors, configuration and connection tables to its successor over
//! its control socket, in frames of kinds each with its own version
//! (`rvsd --takeover`: `crate::daemon::takeover`; `rvsd --standby`:
//! `crate::daemon::standby`).
//!
//! - [`compat`]: the HELLO both sides exchange first, the check that the
//!   successor can take over what the running rvsd holds (what may not
//!   change without a restart) and the version of each frame kind both
//!   speak. Pure: no I/O.
//! - [`session`]: the order of the steps over the control connection and
//!   what each side does when the other fails.
//! - [`park`]: a worker's part (its receive sockets given, parked between
//!   two iterations, resumed or ended).
//! - [`standby`]: a warm standby's session (the pre-copy, then following
//!   for as long as it lives, heartbeats both ways, the active's death).
pub mod compat;
pub mod counters;
pub mod give;
pub mod park;
pub mod precopy;
pub mod session;
pub mod standby;
pub mod xdp;

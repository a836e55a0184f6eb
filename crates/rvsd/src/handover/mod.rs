//! Handing the running daemon over to another process: a hot upgrade
//! (`rvsd --takeover`) or a warm standby (`rvsd --standby`), as
//! `docs/design/hot-upgrade.md` describes. Not wired to the command line
//! yet (issue 14).
//!
//! - [`session`]: the order of the steps over the control connection and
//!   what each side does when the other fails.
pub mod session;

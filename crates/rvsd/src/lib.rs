//! rvsd: the rvs daemon, as a library so that its parts can be tested.
//!
//! - [`store`]: the configuration (services, dests, local addresses,
//!   addresses, routes, neighbours) as the control API changes it, and the
//!   snapshots built from it for the workers.
#![forbid(unsafe_code)]
pub mod bond;
pub mod capture;
pub mod config;
pub mod control;
pub mod daemon;
pub mod fastpath;
pub mod flowlog;
pub mod handover;
pub mod metrics;
pub mod runtime;
pub mod store;
pub mod sync;
pub mod takeover;

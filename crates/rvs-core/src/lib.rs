//! rvs-core: the sans-IO packet pipeline of rvs.
//!
//! Bytes and state go in, verdicts come out. Nothing in this crate makes a
//! syscall, spawns a thread or allocates per packet; the I/O backends in other
//! crates drive it (`rvs-io` backends under `rvsd`, and the in-memory
//! benchmark `rvs-bench`); the repository's README.md shows how the pieces fit.
#![forbid(unsafe_code)]

pub mod acl;
pub mod addr;
pub mod bond;
pub mod conn;
pub mod hash;
pub mod lab;
pub mod limit;
pub mod mld;
pub mod neigh;
pub mod pipeline;
mod prefix;
pub mod route;
pub mod sapool;
pub mod sched;
pub mod service;
pub mod snapshot;
pub mod stats;
pub mod sync;
pub mod synproxy;
pub mod wire;

//! rvs-keepalived: keepalived for rvs, in the DPVS dialect of the DPVS
//! tutorial's keepalived section. It speaks to rvsd only through the control
//! API (like `rvsadm`), and runs VRRP on the kni device.
//!
//! Modules, as in holo's protocol crates:
//! - [`conf`]: the keepalived.conf language (parser, typed configuration,
//!   warnings and errors with file, line and keyword).
//! - [`vrrp`]: VRRP v2/v3 packets and a sans-IO state machine per instance
//!   (events in, actions out), driven by a thin socket runtime.
#![forbid(unsafe_code)]

pub mod conf;
pub mod runtime;
pub mod vrrp;

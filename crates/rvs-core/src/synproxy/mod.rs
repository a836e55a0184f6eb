//! SYN proxy (DPVS's synproxy, after LVS's): rvs answers a client's SYN to
//! a synproxy service itself with a SYN cookie, and only a client that
//! returns a valid cookie in its ACK gets a real server, a local port and a
//! connection. Spoofed SYN floods then cost a SYN-ACK each and never reach
//! a real server or take a local port.
//!
//! This module is the sans-IO part that knows nothing about packets:
//! making and checking cookies ([`CookieJar`]) and the SipHash they rest
//! on. The pipeline's stage (answering SYNs, opening the connection to the
//! real server, shifting sequence numbers) is `pipeline/synproxy.rs`.

mod cookie;
mod siphash;
#[cfg(test)]
mod tests;

pub use cookie::{Cookie, CookieJar, Negotiated, SynOptions, EPOCH_MS, MSS_V4, MSS_V6, WSCALE_MAX};

use std::sync::OnceLock;

/// The process's master key for SYN cookies: drawn once, from the standard
/// library's per-process random hash keys, and shared by every worker so
/// that a cookie made by one checks on any.
pub fn process_key() -> [u64; 2] {
    static KEY: OnceLock<[u64; 2]> = OnceLock::new();
    *KEY.get_or_init(|| [crate::conn::fresh_seed(), crate::conn::fresh_seed()])
}

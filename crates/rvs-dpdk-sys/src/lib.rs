//! FFI to the system's DPDK for rvs's DPDK backend (`rvs-io` feature
//! `dpdk`).
//!
//! With the feature `link`, `build.rs` finds libdpdk (>= 22.11) by
//! pkg-config, compiles `shim/rvs_shim.c` (exported wrappers for DPDK's
//! `static inline` burst, mbuf and ring functions, its per-lcore `rte_errno`,
//! and port setup kept in C so that `rte_eth_conf` never crosses), and runs
//! bindgen over `shim/rvs_shim.h` with an allowlist of what rvs calls;
//! `rte_mbuf`, `rte_mempool` and `rte_ring` stay opaque. Without the
//! feature the crate is empty: the default build needs neither DPDK nor
//! libclang.

#![allow(missing_docs)]

#[cfg(feature = "link")]
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    clippy::all
)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

#[cfg(feature = "link")]
pub use bindings::*;

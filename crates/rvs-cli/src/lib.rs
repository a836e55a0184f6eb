//! rvs-cli: the operator tools of rvs.
//!
//! - [`adm`]: `rvsadm`, the ipvsadm-compatible front end (with the DPVS
//!   additions: `-b`, `-J`, `-H`, local addresses).
//! - [`ip`]: `rvsip`, the dpip-compatible front end (addr, route, neigh, link).
//! - [`client`]: the socket to rvsd and the mapping of failures to exit codes.
//!
//! Parsing (argv to requests) and formatting (replies to text) are pure
//! functions so that the ipvsadm/dpip compatibility can be tested without a
//! daemon; the binaries only glue them to a [`client::Transport`].
#![forbid(unsafe_code)]

pub mod adm;
pub mod client;
pub mod ip;

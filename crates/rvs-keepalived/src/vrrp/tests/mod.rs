//! Tests of the VRRP module: packets byte by byte, the state machine in
//! simulated time against itself, and conformance tables.

mod config;
mod conformance;
mod net;
mod packet;
mod scenarios;
mod sync_group;

//! Bonding (802.3ad / IEEE 802.1AX) in the core: the slow-protocols PDU
//! views ([`pdu`]), the LACP machines of one bond ([`lacp`]) and the
//! transmit hash ([`hash`]). All sans-IO: the `rvs-bond` thread of rvsd
//! drives [`Lacp`] with frames, carrier changes and the time.
//!
//! ```
//! use rvs_core::bond::{xmit_hash, Lacp, LacpConf, XmitHash};
//!
//! let conf = LacpConf {
//!     system_priority: 65535,
//!     system_mac: [2, 0, 0, 0, 0, 1], // the bond's MAC
//!     key: 9,
//!     fast: true,      // lacp_rate = "fast"
//!     active: true,    // lacp_active
//!     fallback: true,  // lacp_fallback
//! };
//! // Slave i: its own MAC (LACPDUs' source), port number i + 1.
//! let mut lacp = Lacp::new(conf, &[[2, 0, 0, 1, 0, 0], [2, 0, 0, 1, 0, 1]], 0);
//! let now = 0; // ms, monotonic
//! lacp.link(0, true, now); // carrier (miimon)
//! lacp.link(1, true, now);
//! // A 0x8809 frame received on slave 1: Some(marker response) to send back.
//! # let frame = [0u8; 124];
//! if let Ok(Some(resp)) = lacp.receive(1, &frame, now) { /* send resp on slave 1 */ }
//! // LACPDUs due now; call again at next_deadline() (or after receive/link).
//! lacp.tick(now, &mut |slave, pdu: &[u8; 124]| { /* send pdu on slave */ });
//! let (collecting, distributing) = lacp.masks(); // publish to the workers
//! let _sleep_until = lacp.next_deadline();
//! // Egress: pick among the distributing slaves.
//! let n = distributing.count_ones();
//! if n > 0 {
//!     let k = xmit_hash(&frame, XmitHash::Layer34) % n; // k-th set bit
//! #   let _ = k;
//! }
//! let info = lacp.info(0); // for `rvsip link show`
//! println!("{} {} {}", info.rx.name(), info.mux.name(), info.selected.name());
//! # let _ = collecting;
//! ```

pub mod hash;
pub mod lacp;
pub mod pdu;

pub use hash::{xmit_hash, XmitHash};
pub use lacp::{Lacp, LacpConf, LagId, MuxState, RxState, Selection, SlaveLacp};
pub use pdu::{LacpPdu, MarkerPdu, PduError, PortInfo, StateFlags};

#[cfg(test)]
mod tests;

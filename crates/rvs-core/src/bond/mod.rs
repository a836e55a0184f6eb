//! Bonding (802.3ad / IEEE 802.1AX) in the core: the slow-protocols PDU
//! views ([`pdu`]), the LACP machines of one bond ([`lacp`]) and the
//! transmit hash ([`hash`]). All sans-IO: the `rvs-bond` thread of rvsd
//! drives [`Lacp`] with frames, carrier changes and the time.

pub mod hash;
pub mod lacp;
pub mod pdu;

pub use hash::{xmit_hash, XmitHash};
pub use lacp::{Lacp, LacpConf, LagId, MuxState, RxState, Selection, SlaveLacp};
pub use pdu::{LacpPdu, MarkerPdu, PduError, PortInfo, StateFlags};

#[cfg(test)]
mod tests;

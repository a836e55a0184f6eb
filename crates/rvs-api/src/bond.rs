//! Bonding devices as `rvsip link show` reports them.

use serde::{Deserialize, Serialize};

/// A bond's own line in `rvsip link show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BondInfo {
    /// 0 (balance-rr) or 4 (802.3ad).
    pub mode: u8,
    /// Transmit hash (mode 4), e.g. "layer3+4".
    pub xmit_hash: String,
    /// "fast" or "slow" (mode 4).
    pub lacp_rate: String,
    /// Slaves now distributing.
    pub distributing: u32,
    /// The aggregator's partner system MAC and key (mode 4, once known).
    pub partner: Option<(String, u16)>,
    /// Frames dropped: no slave could send them.
    pub no_slave: u64,
    /// Frames dropped: received on a slave not collecting.
    pub not_collecting: u64,
    /// The slaves, in configuration order.
    pub slaves: Vec<BondSlaveInfo>,
}

/// One slave of a bond.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BondSlaveInfo {
    /// Its port name (`dpdk0`).
    pub name: String,
    /// Its kernel interface.
    pub iface: String,
    /// Carrier.
    pub up: bool,
    /// Frames are sent on it.
    pub distributing: bool,
    /// LACP (mode 4).
    pub lacp: Option<SlaveLacpInfo>,
}

/// One end of a LACP link as a slave sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LacpEnd {
    /// System MAC.
    pub system: String,
    /// System priority.
    pub system_priority: u16,
    /// Port number.
    pub port: u16,
    /// Port priority.
    pub port_priority: u16,
    /// Key.
    pub key: u16,
    /// State bits (802.1AX: Activity, Timeout, Aggregation, Sync, Collecting, Distributing, Defaulted, Expired).
    pub state: u8,
}

/// A slave's LACP machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SlaveLacpInfo {
    /// Mux machine state, e.g. "COLLECTING_DISTRIBUTING".
    pub mux: String,
    /// Receive machine state, e.g. "CURRENT".
    pub rx: String,
    /// rvs's side.
    pub actor: LacpEnd,
    /// The switch's side.
    pub partner: LacpEnd,
    /// LACPDUs received.
    pub pdu_rx: u64,
    /// LACPDUs sent.
    pub pdu_tx: u64,
    /// Malformed LACPDUs.
    pub pdu_bad: u64,
}

/// The names of the state bits set in `s`, as `rvsip link show` prints them.
pub fn lacp_state_names(s: u8) -> String {
    const N: [&str; 8] = [
        "ACTIVE", "FAST", "AGG", "SYNC", "COLL", "DIST", "DEF", "EXP",
    ];
    N.iter()
        .enumerate()
        .filter(|(i, _)| s & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

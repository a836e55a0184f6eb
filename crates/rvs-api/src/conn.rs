//! Connections as listed (`rvsadm -lnc`), page by page.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A connection (`-lnc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnInfo {
    /// "TCP", "UDP", "ICMP".
    pub proto: String,
    /// State name (ESTABLISHED...), or "UDP".
    pub state: String,
    /// Seconds until it expires.
    pub expire_s: u64,
    /// Client address and port.
    #[cfg_attr(feature = "openapi", schema(value_type = (String, u16)))]
    pub client: (IpAddr, u16),
    /// Virtual address and port.
    #[cfg_attr(feature = "openapi", schema(value_type = (String, u16)))]
    pub virt: (IpAddr, u16),
    /// Local address and port (FNAT/SNAT), if any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<(String, u16)>))]
    pub local: Option<(IpAddr, u16)>,
    /// Real server address and port.
    #[cfg_attr(feature = "openapi", schema(value_type = (String, u16)))]
    pub dest: (IpAddr, u16),
    /// Worker that owns it.
    pub worker: u16,
    /// Created here, or installed from a sync peer (`-lnc` marks those).
    #[serde(default)]
    pub origin: ConnOrigin,
}

/// Where a connection comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ConnOrigin {
    /// Created by this node.
    #[default]
    Local,
    /// Installed from a sync peer (a master, or an active peer).
    Synced,
    /// Installed from an active peer, through the peer's local address
    /// (FNAT): the real server answers the peer.
    Foreign,
}

/// Most connections rvsd puts in one [`ConnPage`].
pub const CONN_PAGE_MAX: usize = 4096;

/// Where a connection listing resumes: a worker and a slot of its table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnCursor {
    /// The worker.
    pub worker: u16,
    /// The first slot of its table not listed yet.
    pub slot: u32,
}

/// One page of connections ([`Request::ListConnPage`](crate::Request::ListConnPage)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnPage {
    /// The connections (may be fewer than asked for, even none, before the end).
    pub conns: Vec<ConnInfo>,
    /// Where the next page starts; `None` when the listing is complete.
    pub next: Option<ConnCursor>,
}

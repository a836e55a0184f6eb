//! Addresses, routes, neighbours and ports (`rvsip addr/route/neigh/link`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Route scope as `rvsip` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// An address of rvs.
    Host,
    /// An on-link network.
    Link,
    /// Via a gateway.
    Global,
    /// Handed to the kernel through the exception path.
    KniHost,
}

/// A route (`rvsip route add`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RouteSpec {
    /// Network address.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "ip"))]
    pub prefix: IpAddr,
    /// Prefix length.
    pub plen: u8,
    /// Gateway (`via`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = "ip"))]
    pub via: Option<IpAddr>,
    /// Device name.
    pub dev: String,
    /// Scope; `None` = derived (global with a gateway, link without).
    pub scope: Option<Scope>,
    /// Preferred source address (`src`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = "ip"))]
    pub src: Option<IpAddr>,
    /// MTU (`mtu`), `None` = the device's.
    pub mtu: Option<u16>,
    /// Metric.
    pub metric: u32,
}

/// An address of rvs (`rvsip addr show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddrInfo {
    /// Address.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "ip"))]
    pub addr: IpAddr,
    /// Prefix length.
    pub plen: u8,
    /// Device.
    pub dev: String,
    /// Scope ("global").
    pub scope: Scope,
    /// Socket-address pool usage, when it has one: (used, free, miss).
    pub sapool: Option<(u64, u64, u64)>,
    /// Standby ([`Request::SetAddrStandby`](crate::Request::SetAddrStandby)): configured, not announced.
    #[serde(default)]
    pub standby: bool,
}

/// A route as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RouteInfo {
    /// The route.
    pub route: RouteSpec,
    /// Effective scope.
    pub scope: Scope,
    /// Effective MTU.
    pub mtu: u16,
    /// "auto" for routes rvs derived from addresses, "static" for added ones.
    pub origin: String,
}

/// A neighbour as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NeighInfo {
    /// Address.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "ip"))]
    pub addr: IpAddr,
    /// MAC.
    pub mac: String,
    /// Device.
    pub dev: String,
    /// State: "static", "reachable", "stale", "incomplete".
    pub state: String,
}

/// A port's counters (`rvsip link show -s`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Receive errors/drops reported by the backend.
    pub rx_dropped: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames that could not be sent (ring full).
    pub tx_dropped: u64,
    /// Frames handed to the kernel (exception path).
    pub kni_packets: u64,
    /// Pipeline drops by reason (name, count), non-zero only.
    pub drops: Vec<(String, u64)>,
    /// Receive bursts that came back full (the ring held a whole burst or
    /// more: the worker is behind).
    #[serde(default)]
    pub rx_full_bursts: u64,
    /// Frames received that the XDP fast path forwarded itself, without a
    /// worker (not in `rx_packets`/`tx_packets`; read every ~0.5 s).
    #[serde(default)]
    pub fast_packets: u64,
    /// The same counters per worker, in worker order (`rvsip -s link show`);
    /// a worker's `drops` are the pipeline's, which are per worker, not per port.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub workers: Vec<LinkStats>,
}

/// A port as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkInfo {
    /// Index.
    pub index: u16,
    /// Name (`dpdk0`).
    pub name: String,
    /// Kernel interface it took over.
    pub iface: String,
    /// Backend and mode, e.g. "af_packet" or "af_xdp (native, copy)".
    pub backend: String,
    /// MAC.
    pub mac: String,
    /// MTU.
    pub mtu: u16,
    /// Link up.
    pub up: bool,
    /// Exception-path device, e.g. `dpdk0.kni`.
    pub kni: Option<String>,
    /// Counters.
    pub stats: LinkStats,
    /// A bond's mode, slaves and LACP state.
    #[serde(default)]
    pub bond: Option<crate::BondInfo>,
    /// The bond this port is a slave of.
    #[serde(default)]
    pub slave_of: Option<String>,
}

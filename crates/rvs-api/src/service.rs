//! Virtual services and their real servers (`rvsadm -A/-E/-a/-e`), as set
//! and as listed with their counters.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP (`-t`).
    Tcp,
    /// UDP (`-u`).
    Udp,
}

/// How a service is identified (`-t`, `-u` or `-H`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ServiceKey {
    /// `-t/-u VIP:port`.
    Vs {
        /// TCP or UDP.
        proto: Proto,
        /// Virtual address.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = "ip"))]
        vip: IpAddr,
        /// Virtual port.
        port: u16,
    },
    /// `-H match` (SNAT), in the DPVS syntax, e.g. `proto=tcp,src-range=...,oif=dpdk1`.
    Match(String),
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Vs { proto, vip, port } => {
                let p = if *proto == Proto::Tcp { "TCP" } else { "UDP" };
                match vip {
                    IpAddr::V4(a) => write!(f, "{p} {a}:{port}"),
                    IpAddr::V6(a) => write!(f, "{p} [{a}]:{port}"),
                }
            }
            ServiceKey::Match(m) => write!(f, "MATCH {m}"),
        }
    }
}

/// Forwarding method of a real server (`-b -g -m -i -J`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    /// Full NAT (`-b`).
    Fnat,
    /// Direct routing (`-g`).
    Dr,
    /// NAT / masquerading (`-m`).
    Nat,
    /// IP-in-IP tunnel (`-i`).
    Tunnel,
    /// SNAT (`-J`).
    Snat,
}

impl Forward {
    /// The name `ipvsadm -L` prints in the Forward column.
    pub fn column(&self) -> &'static str {
        match self {
            Forward::Fnat => "FullNat",
            Forward::Dr => "Route",
            Forward::Nat => "Masq",
            Forward::Tunnel => "Tunnel",
            Forward::Snat => "SNAT",
        }
    }
}

/// A virtual service's settings (`-A/-E`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceSpec {
    /// Identity.
    pub key: ServiceKey,
    /// Scheduler name (`-s`): rr, wrr, wlc, lc, sh, conhash, fo, mh.
    pub sched: String,
    /// Persistence timeout in seconds (`-p`); `None` = not persistent.
    pub persistence: Option<u32>,
    /// Scheduler flags (`--sched-flags`, ipvsadm's names): `sh-fallback`,
    /// `sh-port` for sh; `mh-fallback`, `mh-port` for mh. Absent = none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sched_flags: Vec<String>,
    /// SYN proxy (`-j enable|disable`, DPVS's ipvsadm): rvs answers the
    /// client's handshake itself with a SYN cookie and opens the connection
    /// to a real server only for a valid one (TCP; FNAT and NAT real
    /// servers). `None`: off for a new service, unchanged by an edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synproxy: Option<bool>,
    /// PROXY protocol header toward the real servers (`--proxy-protocol
    /// v1|v2|disable`, DPVS's ipvsadm): the client's address and port in
    /// front of the stream (TCP; FNAT real servers). `None`: off for a new
    /// service, unchanged by an edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
}

/// The PROXY protocol header a service sends its real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    /// None.
    Disable,
    /// Version 1 (text line).
    V1,
    /// Version 2 (binary).
    V2,
}

impl ProxyProtocol {
    /// The name `--proxy-protocol` takes and listings show.
    pub fn name(self) -> &'static str {
        match self {
            ProxyProtocol::Disable => "disable",
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        }
    }
}

/// A real server's settings (`-a/-e`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DestSpec {
    /// Address (`-r`; for SNAT the WAN address).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "ip"))]
    pub addr: IpAddr,
    /// Port (`-r IP:port`; without a port the service's port, 0 for SNAT).
    pub port: u16,
    /// Weight (`-w`, default 1).
    pub weight: u32,
    /// Forwarding method.
    pub forward: Forward,
    /// Upper connection threshold (`-x`, 0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`, 0 = none).
    pub l_threshold: u32,
}

/// Traffic counters (`ipvsadm --stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stats {
    /// Connections created.
    pub conns: u64,
    /// Packets in.
    pub inpkts: u64,
    /// Packets out.
    pub outpkts: u64,
    /// Bytes in.
    pub inbytes: u64,
    /// Bytes out.
    pub outbytes: u64,
}

/// Per-second rates (`ipvsadm --rate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets in per second.
    pub inpps: u64,
    /// Packets out per second.
    pub outpps: u64,
    /// Bytes in per second.
    pub inbps: u64,
    /// Bytes out per second.
    pub outbps: u64,
}

/// A real server as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DestInfo {
    /// Settings.
    pub spec: DestSpec,
    /// Established connections now.
    pub active: u64,
    /// Other connections now.
    pub inactive: u64,
    /// Counters.
    pub stats: Stats,
    /// Rates.
    pub rates: Rates,
}

/// A service as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceInfo {
    /// Settings.
    pub spec: ServiceSpec,
    /// Real servers, in the order they were added.
    pub dests: Vec<DestInfo>,
    /// Counters.
    pub stats: Stats,
    /// Rates.
    pub rates: Rates,
}

/// A local address of a service (`-G`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LaddrInfo {
    /// Address.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "ip"))]
    pub addr: IpAddr,
    /// Device.
    pub dev: String,
    /// Port conflicts (allocation failures).
    pub conflicts: u64,
    /// Connections using it now.
    pub conns: u64,
    /// Standby ([`Request::SetAddrStandby`](crate::Request::SetAddrStandby)): configured, not announced.
    #[serde(default)]
    pub standby: bool,
}

/// A service's local addresses (`-G`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LaddrGroup {
    /// The service.
    pub key: ServiceKey,
    /// Its local addresses.
    pub laddrs: Vec<LaddrInfo>,
}

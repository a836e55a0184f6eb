//! What rvsd answers: [`Reply`], or an [`ApiError`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    AclListing, AddrInfo, ConnInfo, ConnPage, DaemonList, IpsetInfo, LaddrGroup, LimitInfo,
    LinkInfo, NeighInfo, RouteInfo, ServiceInfo,
};

/// The daemon's state in one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusInfo {
    /// rvsd version.
    pub version: String,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Worker count.
    pub workers: u16,
    /// Connection-table capacity per worker.
    pub conn_capacity: usize,
    /// Connections now (all workers).
    pub conns: u64,
    /// Configuration generation.
    pub generation: u64,
}

/// What the daemon answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "data")]
pub enum Reply {
    /// Done, nothing to show.
    Ok,
    /// The request failed; nothing changed.
    Error(ApiError),
    /// [`Request::Status`](crate::Request::Status).
    Status(StatusInfo),
    /// [`Request::ListServices`](crate::Request::ListServices).
    Services(Vec<ServiceInfo>),
    /// [`Request::ListLaddrs`](crate::Request::ListLaddrs).
    Laddrs(Vec<LaddrGroup>),
    /// [`Request::ListConns`](crate::Request::ListConns).
    Conns(Vec<ConnInfo>),
    /// [`Request::ListConnPage`](crate::Request::ListConnPage).
    ConnPage(ConnPage),
    /// [`Request::ListAddrs`](crate::Request::ListAddrs).
    Addrs(Vec<AddrInfo>),
    /// [`Request::ListRoutes`](crate::Request::ListRoutes).
    Routes(Vec<RouteInfo>),
    /// [`Request::ListNeigh`](crate::Request::ListNeigh).
    Neigh(Vec<NeighInfo>),
    /// [`Request::ListLinks`](crate::Request::ListLinks).
    Links(Vec<LinkInfo>),
    /// [`Request::ListDaemon`](crate::Request::ListDaemon).
    Daemons(DaemonList),
    /// [`Request::ListLimits`](crate::Request::ListLimits).
    Limits(Vec<LimitInfo>),
    /// [`Request::ListAcl`](crate::Request::ListAcl).
    Acl(AclListing),
    /// [`Request::IpsetList`](crate::Request::IpsetList).
    Ipsets(Vec<IpsetInfo>),
    /// [`Request::IpsetTest`](crate::Request::IpsetTest): whether the entry is in the set.
    IpsetTest(bool),
    /// One frame of a [`Request::Capture`](crate::Request::Capture) stream.
    CaptureFrame(crate::CaptureFrame),
    /// The last line of a capture stream.
    CaptureEnd(crate::CaptureEnd),
    /// [`Request::ListVlans`](crate::Request::ListVlans): every field set.
    Vlans(Vec<crate::VlanSpec>),
    /// Done, with a one-line warning for the user (e.g. a NAT64 dest added
    /// while the service has no local address of its family yet).
    Warning(String),
}

/// Why a request failed, with the kind a tool maps to its exit code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A message naming what was wrong.
    pub message: String,
}

/// Kinds of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed or a value is invalid.
    Invalid,
    /// The object already exists.
    Exists,
    /// The object (service, dest, device...) does not exist.
    NotFound,
    /// The protocol version is not spoken.
    Version,
    /// A limit was reached.
    Full,
    /// The daemon failed internally.
    Internal,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

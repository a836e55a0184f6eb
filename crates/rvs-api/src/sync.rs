//! Connection-sync daemons (`rvsadm --start-daemon`, `--stop-daemon`,
//! `-L --daemon`): what is started and what is listed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Role of a connection-sync daemon (ipvsadm's `--start-daemon` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SyncRole {
    /// Sends this node's connections.
    Master,
    /// Installs a master's connections.
    Backup,
}

impl fmt::Display for SyncRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        })
    }
}

/// Default multicast group of the sync stream (IPVS's).
pub const SYNC_GROUP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(224, 0, 0, 81);
/// Default UDP port of the sync stream (IPVS's).
pub const SYNC_PORT: u16 = 8848;

/// A connection-sync daemon to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncDaemonSpec {
    /// Master or backup.
    pub role: SyncRole,
    /// Kernel interface the stream goes over (`--mcast-interface`).
    pub mcast_interface: String,
    /// Sync id (`--syncid`): messages of other ids are ignored.
    pub syncid: u8,
    /// Multicast group (default [`SYNC_GROUP`]); unused with `peers`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = "ipv4"))]
    pub group: Option<std::net::Ipv4Addr>,
    /// UDP port (default [`SYNC_PORT`]).
    pub port: Option<u16>,
    /// Multicast TTL (default 1).
    pub ttl: Option<u8>,
    /// Unicast peers instead of the multicast group (master: where to send).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub peers: Vec<std::net::SocketAddr>,
}

/// A running sync daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncDaemonInfo {
    /// Its settings.
    pub spec: SyncDaemonSpec,
}

/// Counters of connection sync (since rvsd started).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncStatsInfo {
    /// This node's id in the stream.
    pub node_id: u32,
    /// Messages sent.
    pub sent_msgs: u64,
    /// Records sent.
    pub sent_records: u64,
    /// Datagrams that could not be sent.
    pub send_errors: u64,
    /// Connection events the workers dropped (sync log full).
    pub lost_events: u64,
    /// Full dumps started (peer's Resync request or lost events).
    pub dumps: u64,
    /// Messages received and accepted.
    pub recv_msgs: u64,
    /// Records received.
    pub recv_records: u64,
    /// Messages of another sync id, ignored.
    pub other_syncid: u64,
    /// Sequence gaps seen.
    pub gaps: u64,
    /// Resync requests sent.
    pub resyncs_sent: u64,
    /// Records the workers could not take (their channel was full).
    pub dropped_records: u64,
    /// Undecodable messages, by reason.
    pub decode_errors: Vec<(String, u64)>,
    /// Connections not installed, by reason.
    pub install_errors: Vec<(String, u64)>,
    /// Connections installed from a peer (new ones, not updates).
    #[serde(default)]
    pub installed: u64,
    /// Of those, foreign ones: FNAT connections through a peer's local
    /// address (active peers, role both).
    #[serde(default)]
    pub installed_foreign: u64,
}

/// [`crate::Request::ListDaemon`]'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DaemonList {
    /// Running daemons (master first).
    pub daemons: Vec<SyncDaemonInfo>,
    /// Counters.
    pub stats: SyncStatsInfo,
}

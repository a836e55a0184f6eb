//! The `[sync]` section: which connection-sync daemons rvsd starts, and
//! its checks, each naming the key's line.

use serde::Deserialize;

use super::{iface_name_problem, section_key_line};

/// `[sync] role`: which sync daemons start with rvsd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncRoleConf {
    /// Send this node's connections.
    Master,
    /// Install a master's connections.
    Backup,
    /// Both (active peers).
    Both,
}

/// Connection sync (`[sync]`): see `conf/rvs.toml.sample`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSection {
    /// Which daemons start.
    pub role: SyncRoleConf,
    /// Sync id (ipvsadm's `--syncid`).
    #[serde(default)]
    pub sync_id: u8,
    /// This node's id in the stream (default: random at start).
    pub node_id: Option<u32>,
    /// Kernel interface of the sync stream.
    pub mcast_interface: String,
    /// Multicast group (default 224.0.0.81).
    pub mcast_group: Option<std::net::Ipv4Addr>,
    /// UDP port (default 8848).
    pub port: Option<u16>,
    /// Multicast TTL (default 1).
    pub ttl: Option<u8>,
    /// Unicast peers (addresses, optionally with :port) instead of multicast.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Seconds between two refreshes of every connection (default: a third
    /// of the shorter of the TCP established and UDP timeouts).
    pub refresh: Option<u32>,
}

impl SyncSection {
    /// The unicast peers as socket addresses (the section's port when none is given).
    pub fn peer_addrs(&self) -> Result<Vec<std::net::SocketAddr>, String> {
        let port = self.port.unwrap_or(rvs_api::SYNC_PORT);
        self.peers
            .iter()
            .map(|p| {
                p.parse::<std::net::SocketAddr>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(|a| (a, port).into()))
                    .map_err(|_| format!("sync peers: {p:?} is not an address or address:port"))
            })
            .collect()
    }

    /// The control-API specs of the daemons this section starts.
    pub fn specs(&self) -> Result<Vec<rvs_api::SyncDaemonSpec>, String> {
        let peers = self.peer_addrs()?;
        let roles: &[rvs_api::SyncRole] = match self.role {
            SyncRoleConf::Master => &[rvs_api::SyncRole::Master],
            SyncRoleConf::Backup => &[rvs_api::SyncRole::Backup],
            SyncRoleConf::Both => &[rvs_api::SyncRole::Master, rvs_api::SyncRole::Backup],
        };
        Ok(roles
            .iter()
            .map(|&role| rvs_api::SyncDaemonSpec {
                role,
                mcast_interface: self.mcast_interface.clone(),
                syncid: self.sync_id,
                group: self.mcast_group,
                port: self.port,
                ttl: self.ttl,
                peers: peers.clone(),
            })
            .collect())
    }
}

/// The line (1-based) of `key` in the `[sync]` section of `text`, else the
/// line of the section's header.
fn sync_key_line(text: &str, key: &str) -> Option<usize> {
    section_key_line(text, "[sync]", key)
}

pub(super) fn check_sync(sy: &SyncSection, text: &str) -> Result<(), (Option<usize>, String)> {
    let at = |key: &str| sync_key_line(text, key);
    if let Some(why) = iface_name_problem(&sy.mcast_interface) {
        return Err((
            at("mcast_interface"),
            format!("sync mcast_interface = {:?}: {why}", sy.mcast_interface),
        ));
    }
    if let Some(g) = sy.mcast_group.filter(|g| !g.is_multicast()) {
        return Err((
            at("mcast_group"),
            format!("sync mcast_group = \"{g}\": not a multicast address (224.0.0.0/4)"),
        ));
    }
    if sy.port == Some(0) {
        return Err((at("port"), "sync port = 0: must be 1..=65535".into()));
    }
    if sy.ttl == Some(0) {
        return Err((at("ttl"), "sync ttl = 0: must be 1..=255".into()));
    }
    if sy.refresh == Some(0) {
        return Err((
            at("refresh"),
            "sync refresh = 0: must be at least 1 second".into(),
        ));
    }
    let peers = sy.peer_addrs().map_err(|m| (at("peers"), m))?;
    if let Some(p) = peers.iter().find(|p| !p.is_ipv4()) {
        return Err((
            at("peers"),
            format!("sync peers: {p} is IPv6; the sync stream runs over IPv4"),
        ));
    }
    Ok(())
}

//! The typed configuration: global definitions, address groups and VRRP.
//! Defaults are keepalived's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::lvs_types::{VirtualServer, VirtualServerGroup};
use super::Loc;

/// A whole keepalived.conf (with its includes).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `global_defs`.
    pub global: GlobalDefs,
    /// `local_address_group NAME { IP IFACE ... }` (DPVS): FNAT local addresses.
    pub laddr_groups: Vec<LaddrGroup>,
    /// `deny_address_group NAME { ... }` (DPVS blacklist), used by
    /// `daddr_group_name`.
    pub deny_address_groups: Vec<AddrGroup>,
    /// `allow_address_group NAME { ... }` (DPVS whitelist), used by
    /// `waddr_group_name`.
    pub allow_address_groups: Vec<AddrGroup>,
    /// `vrrp_script NAME { ... }`.
    pub vrrp_scripts: Vec<VrrpScript>,
    /// `vrrp_sync_group NAME { ... }`.
    pub vrrp_sync_groups: Vec<VrrpSyncGroup>,
    /// `vrrp_instance NAME { ... }`.
    pub vrrp_instances: Vec<VrrpInstance>,
    /// `virtual_server_group NAME { ... }`.
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    /// `virtual_server ... { ... }`.
    pub virtual_servers: Vec<VirtualServer>,
}

impl Config {
    /// The local address group called `name`.
    pub fn laddr_group(&self, name: &str) -> Option<&LaddrGroup> {
        self.laddr_groups.iter().find(|g| g.name == name)
    }

    /// The virtual server group called `name`.
    pub fn virtual_server_group(&self, name: &str) -> Option<&VirtualServerGroup> {
        self.virtual_server_groups.iter().find(|g| g.name == name)
    }

    /// The VRRP instance called `name`.
    pub fn vrrp_instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.vrrp_instances.iter().find(|i| i.name == name)
    }

    /// The VRRP script called `name`.
    pub fn vrrp_script(&self, name: &str) -> Option<&VrrpScript> {
        self.vrrp_scripts.iter().find(|s| s.name == name)
    }
}

/// `global_defs { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalDefs {
    /// `router_id` (keepalived's default is the host name: `None` here).
    pub router_id: Option<String>,
    /// `vrrp_version 2|3`, the default of every instance (2).
    pub vrrp_version: u8,
    /// `vrrp_mcast_group4` (224.0.0.18).
    pub vrrp_mcast_group4: Ipv4Addr,
    /// `vrrp_mcast_group6` (ff02::12).
    pub vrrp_mcast_group6: Ipv6Addr,
    /// `vrrp_garp_*` / `vrrp_gna_interval`: defaults of every instance.
    pub garp: Garp,
    /// `notification_email { ... }`: accepted, not used (no mail is sent).
    pub notification_email: Vec<String>,
    /// `notification_email_from`: accepted, not used.
    pub notification_email_from: Option<String>,
    /// `smtp_server`: accepted, not used.
    pub smtp_server: Option<String>,
    /// `smtp_connect_timeout`: accepted, not used.
    pub smtp_connect_timeout: Option<String>,
    /// `lvs_sync_daemon IFACE VRRP_INSTANCE [id N] [port P] [ttl T] [group IP]`:
    /// rvsd's connection sync, following the instance's state.
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
}

/// `lvs_sync_daemon <INTERFACE> <VRRP_INSTANCE> [id <SYNC_ID>] [maxlen <LEN>]
/// [port <PORT>] [ttl <TTL>] [group <IP ADDR>]` (keepalived.conf(5)): the
/// sync daemon runs as master while the instance is MASTER, as backup
/// otherwise. `maxlen` is accepted and ignored (rvsd sizes messages from
/// the interface's MTU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvsSyncDaemon {
    /// The kernel interface the stream goes over.
    pub interface: String,
    /// The `vrrp_instance` whose state it follows.
    pub instance: String,
    /// `id` (0..=255, default 0).
    pub syncid: u8,
    /// `port` (default rvsd's, 8848).
    pub port: Option<u16>,
    /// `ttl` (default 1).
    pub ttl: Option<u8>,
    /// `group` (default 224.0.0.81).
    pub group: Option<Ipv4Addr>,
    /// Where it is written.
    pub loc: Loc,
}

impl Default for GlobalDefs {
    fn default() -> GlobalDefs {
        GlobalDefs {
            router_id: None,
            vrrp_version: 2,
            vrrp_mcast_group4: Ipv4Addr::new(224, 0, 0, 18),
            vrrp_mcast_group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
            garp: Garp::default(),
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_connect_timeout: None,
            lvs_sync_daemon: None,
        }
    }
}

/// Gratuitous ARP / unsolicited NA timing (global `vrrp_garp_*`, or an
/// instance's `garp_*` which default to the global ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Garp {
    /// Delay of the second burst after becoming master (5 s; 0 = none).
    pub master_delay: Duration,
    /// Messages per burst after becoming master (5).
    pub master_repeat: u32,
    /// Delay of the second burst after a lower-priority advert as master
    /// (defaults to `master_delay`).
    pub lower_prio_delay: Duration,
    /// Messages per burst after a lower-priority advert (defaults to
    /// `master_repeat`).
    pub lower_prio_repeat: u32,
    /// Refresh period while master (0 = no refresh).
    pub master_refresh: Duration,
    /// Messages per refresh (1).
    pub master_refresh_repeat: u32,
    /// Gap between gratuitous ARPs on an interface (0).
    pub interval: Duration,
    /// Gap between unsolicited NAs on an interface (0).
    pub gna_interval: Duration,
}

impl Default for Garp {
    fn default() -> Garp {
        Garp {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            lower_prio_delay: Duration::from_secs(5),
            lower_prio_repeat: 5,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
            interval: Duration::ZERO,
            gna_interval: Duration::ZERO,
        }
    }
}

/// `local_address_group NAME { IP IFACE ... }` (DPVS): the FNAT local
/// addresses (LIPs) of the services that name it in `laddr_group_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaddrGroup {
    /// Where it is defined.
    pub loc: Loc,
    /// Its name.
    pub name: String,
    /// Addresses and the rvs port (device) each is on; ranges expanded.
    pub addrs: Vec<(IpAddr, String)>,
}

/// `deny_address_group` / `allow_address_group NAME { ... }` (DPVS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrGroup {
    /// Where it is defined.
    pub loc: Loc,
    /// Its name.
    pub name: String,
    /// Its entries.
    pub entries: Vec<AddrEntry>,
}

/// One entry of an [`AddrGroup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrEntry {
    /// An address (`first == last`) or a range `IP-END`.
    Range {
        /// First address.
        first: IpAddr,
        /// Last address (inclusive).
        last: IpAddr,
    },
    /// `ipset:NAME`.
    Ipset(String),
}

/// `vrrp_script NAME { ... }`: a check whose result moves instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpScript {
    /// Where it is defined.
    pub loc: Loc,
    /// Its name (what `track_script` refers to).
    pub name: String,
    /// `script`: the command line (required).
    pub script: String,
    /// `interval` (1 s).
    pub interval: Duration,
    /// `timeout` (none: keepalived waits `interval`).
    pub timeout: Option<Duration>,
    /// `weight` (0: failure means FAULT; otherwise added to the priority).
    pub weight: i32,
    /// `rise`: successes needed to go OK (1).
    pub rise: u32,
    /// `fall`: failures needed to go KO (1).
    pub fall: u32,
    /// `init_fail`: start in the failed state.
    pub init_fail: bool,
}

/// VRRP state at start (`state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VrrpState {
    /// `MASTER`.
    Master,
    /// `BACKUP` (keepalived's default).
    #[default]
    Backup,
}

/// `authentication { auth_type PASS auth_pass X }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// The password (simple text authentication, VRRPv2); at most 8 bytes
    /// are used, as keepalived does.
    pub pass: String,
}

/// One line of `virtual_ipaddress`: `IP[/PLEN] [dev DEV] [label L] [scope S]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualIp {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (32 or 128 when not given).
    pub plen: u8,
    /// `dev`: where it goes (default: the instance's `dpdk_interface`).
    pub dev: Option<String>,
    /// `label`.
    pub label: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
}

/// A tracked interface or script, with its optional weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// Interface or `vrrp_script` name.
    pub name: String,
    /// `weight N`: added to the priority while up (script) / subtracted
    /// when down; `None` = the script's own weight, or FAULT for interfaces.
    pub weight: Option<i32>,
}

/// State-change scripts of an instance or a sync group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notify {
    /// `notify_master`.
    pub master: Option<String>,
    /// `notify_backup`.
    pub backup: Option<String>,
    /// `notify_fault`.
    pub fault: Option<String>,
    /// `notify_stop`.
    pub stop: Option<String>,
    /// `notify`: called on every change with `INSTANCE|GROUP NAME STATE PRIO`.
    pub any: Option<String>,
}

/// `vrrp_instance NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    /// Where it is defined.
    pub loc: Loc,
    /// Its name.
    pub name: String,
    /// `state MASTER|BACKUP` (BACKUP).
    pub state: VrrpState,
    /// `interface`: where VRRP runs (the kni device, e.g. `dpdk0.kni`). Required.
    pub interface: String,
    /// `dpdk_interface` (DPVS): the rvs port the VIPs are added to.
    pub dpdk_interface: Option<String>,
    /// `virtual_router_id` (1..255). Required.
    pub virtual_router_id: u8,
    /// `priority` (1..255, default 100).
    pub priority: u8,
    /// `advert_int` (1 s; fractions with VRRPv3, 0.01..40.95 s).
    pub advert_int: Duration,
    /// `version`, or the global `vrrp_version`.
    pub version: u8,
    /// `authentication` with `auth_type PASS`.
    pub auth: Option<Auth>,
    /// `virtual_ipaddress { ... }`.
    pub virtual_ipaddress: Vec<VirtualIp>,
    /// `virtual_ipaddress_excluded { ... }` (moved, not advertised).
    pub virtual_ipaddress_excluded: Vec<VirtualIp>,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `preempt_delay` (0..1000 s, default 0).
    pub preempt_delay: Duration,
    /// `unicast_src_ip` (or `mcast_src_ip`): source of adverts.
    pub src_ip: Option<IpAddr>,
    /// `unicast_peer { ... }`: unicast adverts to these instead of multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// `track_interface { ... }`.
    pub track_interfaces: Vec<Tracked>,
    /// `track_script { ... }` (names of `vrrp_script`s).
    pub track_scripts: Vec<Tracked>,
    /// `notify_*` scripts.
    pub notify: Notify,
    /// `garp_*` timings (defaulting to the global `vrrp_garp_*`).
    pub garp: Garp,
}

/// `vrrp_sync_group NAME { group { ... } ... }`: instances that change
/// state together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpSyncGroup {
    /// Where it is defined.
    pub loc: Loc,
    /// Its name.
    pub name: String,
    /// Member instance names.
    pub group: Vec<String>,
    /// `track_interface { ... }`.
    pub track_interfaces: Vec<Tracked>,
    /// `track_script { ... }`.
    pub track_scripts: Vec<Tracked>,
    /// `notify_*` scripts.
    pub notify: Notify,
}

//! The typed configuration of virtual servers, real servers and health
//! checkers. Where keepalived lets a virtual server set a default for its
//! real servers, and a real server for its checkers (connect_timeout,
//! retry, delay_before_retry, warmup, delay_loop, inhibit_on_failure,
//! alpha, virtualhost), the values here are already resolved.

use std::net::IpAddr;
use std::time::Duration;

use super::Loc;

/// `virtual_server_group NAME { IP PORT ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServerGroup {
    /// Where it is defined.
    pub loc: Loc,
    /// Its name.
    pub name: String,
    /// Its entries (`fwmark` entries are not supported and are dropped with
    /// a warning).
    pub entries: Vec<VsgEntry>,
}

/// `IP[-END] PORT` in a virtual server group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsgEntry {
    /// First address.
    pub first: IpAddr,
    /// Last address (== `first` without a range).
    pub last: IpAddr,
    /// Port.
    pub port: u16,
}

/// What a virtual server serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VsAddr {
    /// `virtual_server IP PORT`.
    Ip {
        /// Virtual address.
        addr: IpAddr,
        /// Virtual port.
        port: u16,
    },
    /// `virtual_server group NAME`.
    Group(String),
    /// `virtual_server match [NAME]` (DPVS SNAT): `src-range`, `dst-range`,
    /// `iif`, `oif` in the block.
    Match(MatchSpec),
}

/// The match of a `virtual_server match` (DPVS).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchSpec {
    /// The word after `match` (DPVS writes `SNAT`), if any.
    pub name: Option<String>,
    /// `src-range IP1[-IP2][:PORT1[-PORT2]]`.
    pub src_range: Option<String>,
    /// `dst-range ...`.
    pub dst_range: Option<String>,
    /// `iif DEV`.
    pub iif: Option<String>,
    /// `oif DEV`.
    pub oif: Option<String>,
}

/// Transport protocol (`protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `TCP` (default).
    #[default]
    Tcp,
    /// `UDP`.
    Udp,
    /// `ICMP` (only for `virtual_server match`).
    Icmp,
}

/// Forwarding method (`lb_kind` / `lvs_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LbKind {
    /// `NAT` (keepalived's default).
    #[default]
    Nat,
    /// `DR`.
    Dr,
    /// `TUN`.
    Tun,
    /// `FNAT` (DPVS full NAT).
    Fnat,
    /// `SNAT` (DPVS).
    Snat,
}

impl LbKind {
    /// The control API's forwarding method.
    pub fn forward(self) -> rvs_api::Forward {
        match self {
            LbKind::Nat => rvs_api::Forward::Nat,
            LbKind::Dr => rvs_api::Forward::Dr,
            LbKind::Tun => rvs_api::Forward::Tunnel,
            LbKind::Fnat => rvs_api::Forward::Fnat,
            LbKind::Snat => rvs_api::Forward::Snat,
        }
    }
}

/// `sorry_server IP PORT`: the only server while the quorum is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SorryServer {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// `sorry_server_inhibit`: weight 0 instead of removal when not needed.
    pub inhibit: bool,
    /// `sorry_server_lvs_method` (default: the virtual server's).
    pub lb_kind: Option<LbKind>,
}

/// `virtual_server ... { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServer {
    /// Where it is defined.
    pub loc: Loc,
    /// What it serves.
    pub addr: VsAddr,
    /// `protocol TCP|UDP` (TCP).
    pub protocol: Protocol,
    /// `lb_algo` / `lvs_sched`: rr wrr lc wlc sh conhash fo mh (wlc).
    pub lb_algo: String,
    /// `sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`.
    pub sched_flags: Vec<String>,
    /// `lb_kind` / `lvs_method` (NAT).
    pub lb_kind: LbKind,
    /// `persistence_timeout [SECS]` (360 without a value).
    pub persistence_timeout: Option<u32>,
    /// `persistence_granularity` (as written).
    pub persistence_granularity: Option<String>,
    /// `delay_loop`: checker period (60 s).
    pub delay_loop: Duration,
    /// `laddr_group_name` (DPVS): FNAT local addresses.
    pub laddr_group_name: Option<String>,
    /// `daddr_group_name` (DPVS): the `deny_address_group` used.
    pub deny_group_name: Option<String>,
    /// `waddr_group_name` (DPVS): the `allow_address_group` used.
    pub allow_group_name: Option<String>,
    /// `quorum`: minimum total weight of live servers (1).
    pub quorum: u32,
    /// `hysteresis` around the quorum (0).
    pub hysteresis: u32,
    /// `quorum_up` script.
    pub quorum_up: Option<String>,
    /// `quorum_down` script.
    pub quorum_down: Option<String>,
    /// `sorry_server`.
    pub sorry_server: Option<SorryServer>,
    /// `omega`: run down notifiers on shutdown.
    pub omega: bool,
    /// `ha_suspend`: suspend checks while the VIP is not ours.
    pub ha_suspend: bool,
    /// `syn_proxy` (DPVS).
    pub syn_proxy: bool,
    /// `establish_timeout` (DPVS, seconds).
    pub establish_timeout: Option<u32>,
    /// `vip_bind_dev` (DPVS).
    pub vip_bind_dev: Option<String>,
    /// `real_server`s.
    pub real_servers: Vec<RealServer>,
}

/// `real_server IP PORT { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    /// Where it is defined.
    pub loc: Loc,
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// `weight` (1).
    pub weight: u32,
    /// `lvs_method` (default: the virtual server's `lb_kind`).
    pub lb_kind: Option<LbKind>,
    /// `inhibit_on_failure`: weight 0 instead of removal when it fails.
    pub inhibit_on_failure: bool,
    /// `alpha`: start as failed until a check succeeds.
    pub alpha: bool,
    /// `notify_up` script.
    pub notify_up: Option<String>,
    /// `notify_down` script.
    pub notify_down: Option<String>,
    /// `uthreshold` (0 = none).
    pub uthreshold: u32,
    /// `lthreshold` (0 = none).
    pub lthreshold: u32,
    /// Health checkers.
    pub checkers: Vec<Checker>,
}

/// One health checker of a real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checker {
    /// Where it is defined.
    pub loc: Loc,
    /// Which check, with its own settings.
    pub kind: CheckKind,
    /// `connect_ip` (default: the real server's address).
    pub connect_ip: Option<IpAddr>,
    /// `connect_port` (default: the real server's port).
    pub connect_port: Option<u16>,
    /// `bindto`: source address.
    pub bindto: Option<IpAddr>,
    /// `bind_port`: source port.
    pub bind_port: Option<u16>,
    /// `connect_timeout` (5 s).
    pub connect_timeout: Duration,
    /// `retry` / `nb_sock_retry` / `nb_get_retry`: extra attempts before a
    /// server is declared down (1; 0 for MISC_CHECK).
    pub retry: u32,
    /// `delay_before_retry` (1 s).
    pub delay_before_retry: Duration,
    /// `warmup`: random delay before the first check, at most this (default
    /// `delay_loop`; 0 = none).
    pub warmup: Duration,
    /// `delay_loop`: period of this checker.
    pub delay_loop: Duration,
}

impl Checker {
    /// Where the check connects: `connect_ip`/`connect_port` or the real server's.
    pub fn target(&self, rs: &RealServer) -> (IpAddr, u16) {
        (
            self.connect_ip.unwrap_or(rs.addr),
            self.connect_port.unwrap_or(rs.port),
        )
    }
}

/// The kinds of checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// `TCP_CHECK`: a TCP connection succeeds.
    Tcp,
    /// `UDP_CHECK`: a datagram draws no ICMP error (or the expected reply).
    Udp(UdpCheck),
    /// `HTTP_GET` / `SSL_GET`.
    Http(HttpCheck),
    /// `MISC_CHECK`: a program's exit status.
    Misc(MiscCheck),
}

/// `UDP_CHECK` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UdpCheck {
    /// `payload` (hex) to send.
    pub payload: Option<String>,
    /// `require_reply [hex]`: a reply is needed (matching, if given).
    pub require_reply: Option<String>,
}

/// `HTTP_GET` / `SSL_GET` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// `SSL_GET`.
    pub tls: bool,
    /// `url { ... }` blocks (at least one).
    pub urls: Vec<UrlCheck>,
}

/// `url { path ... status_code ... digest ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlCheck {
    /// `path` (required).
    pub path: String,
    /// `status_code` values and ranges (`200`, `200-299`); empty = any 2xx.
    pub status_codes: Vec<(u16, u16)>,
    /// `digest`: MD5 of the body, lowercase hex.
    pub digest: Option<String>,
    /// `virtualhost` (url, checker, real server or virtual server).
    pub virtualhost: Option<String>,
}

/// `MISC_CHECK` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiscCheck {
    /// `misc_path`: the command line (required).
    pub path: String,
    /// `misc_timeout` (default: the checker's `delay_loop`).
    pub timeout: Duration,
    /// `misc_dynamic`: exit status 2..255 sets the weight to status - 2.
    pub dynamic: bool,
}

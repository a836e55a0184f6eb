//! The control API of rvs: what `rvsadm`, `rvsip` and other tools ask `rvsd`,
//! and what it answers.
//!
//! Transport: a unix stream socket (default `/run/rvs/rvs.sock`, or the
//! `RVS_SOCKET` environment variable), one JSON object per line each way: an
//! [`Envelope`] with the protocol version and a [`Request`], answered by a
//! [`Reply`]. The daemon refuses a version it does not speak, with a message
//! naming both versions. Types here are plain data: no behaviour beyond
//! (de)serialisation and small helpers, so the daemon and every tool agree on
//! them by construction.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

mod acl;
mod limits;
mod sync;
pub use acl::{
    AclKind, AclListing, AclRejected, AclRule, AclRuleInfo, Family, IpsetEntry, IpsetInfo,
    IpsetMember, IpsetSpec,
};
pub use limits::{LimitDropStats, LimitInfo, LimitSet, Limits, RateLimit, LIMIT_MAX};
pub use sync::{
    DaemonList, SyncDaemonInfo, SyncDaemonSpec, SyncRole, SyncStatsInfo, SYNC_GROUP, SYNC_PORT,
};

/// The protocol version this crate speaks.
pub const VERSION: u32 = 1;

/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/rvs/rvs.sock";

/// The control socket path: `RVS_SOCKET` if set, else [`DEFAULT_SOCKET`].
pub fn socket_path() -> String {
    std::env::var("RVS_SOCKET").unwrap_or_else(|_| DEFAULT_SOCKET.to_string())
}

/// A request with its protocol version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Protocol version of the sender ([`VERSION`]).
    pub v: u32,
    /// The request.
    pub req: Request,
}

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP (`-t`).
    Tcp,
    /// UDP (`-u`).
    Udp,
}

/// How a service is identified (`-t`, `-u` or `-H`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKey {
    /// `-t/-u VIP:port`.
    Vs {
        /// TCP or UDP.
        proto: Proto,
        /// Virtual address.
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
}

/// A real server's settings (`-a/-e`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestSpec {
    /// Address (`-r`; for SNAT the WAN address).
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

/// Route scope as `rvsip` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
pub struct RouteSpec {
    /// Network address.
    pub prefix: IpAddr,
    /// Prefix length.
    pub plen: u8,
    /// Gateway (`via`).
    pub via: Option<IpAddr>,
    /// Device name.
    pub dev: String,
    /// Scope; `None` = derived (global with a gateway, link without).
    pub scope: Option<Scope>,
    /// Preferred source address (`src`).
    pub src: Option<IpAddr>,
    /// MTU (`mtu`), `None` = the device's.
    pub mtu: Option<u16>,
    /// Metric.
    pub metric: u32,
}

/// Every request the daemon takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Request {
    /// Daemon version and uptime.
    Status,
    /// `-A`.
    AddService {
        /// The service.
        spec: ServiceSpec,
    },
    /// `-E`.
    EditService {
        /// The service (matched by key).
        spec: ServiceSpec,
    },
    /// `-D`.
    DelService {
        /// Which.
        key: ServiceKey,
    },
    /// `-C`: delete every service.
    Clear,
    /// `-Z`: zero counters of one service or all.
    Zero {
        /// Which; `None` = all.
        key: Option<ServiceKey>,
    },
    /// `-a`.
    AddDest {
        /// Service.
        key: ServiceKey,
        /// Real server.
        dest: DestSpec,
    },
    /// `-e`.
    EditDest {
        /// Service.
        key: ServiceKey,
        /// Real server (matched by address and port).
        dest: DestSpec,
    },
    /// `-d`.
    DelDest {
        /// Service.
        key: ServiceKey,
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
    },
    /// `--add-laddr -z IP -F DEV`.
    AddLaddr {
        /// Service.
        key: ServiceKey,
        /// Local address.
        addr: IpAddr,
        /// Device.
        dev: String,
    },
    /// `--del-laddr -z IP -F DEV`.
    DelLaddr {
        /// Service.
        key: ServiceKey,
        /// Local address.
        addr: IpAddr,
        /// Device.
        dev: String,
    },
    /// `-L/-l`: services with their dests and counters.
    ListServices {
        /// One service, or all.
        key: Option<ServiceKey>,
    },
    /// `-G`: local addresses per service.
    ListLaddrs {
        /// One service, or all.
        key: Option<ServiceKey>,
    },
    /// `-l -c`: connections, in one reply (up to `limit`); rvsd assembles it
    /// page by page. Tools should prefer [`Request::ListConnPage`].
    ListConns {
        /// Only this service's.
        key: Option<ServiceKey>,
        /// At most this many.
        limit: usize,
    },
    /// `-l -c`, one page: up to `limit` connections (at most
    /// [`CONN_PAGE_MAX`]) from `cursor` on; the reply's `next` is where the
    /// following page starts. Pages from [`ConnCursor::default`] until `next`
    /// is `None` list every connection that lived throughout exactly once.
    ListConnPage {
        /// Only this service's (filtered before the limit).
        key: Option<ServiceKey>,
        /// Where to start.
        cursor: ConnCursor,
        /// At most this many.
        limit: usize,
    },
    /// `rvsip addr add`.
    AddAddr {
        /// Address.
        addr: IpAddr,
        /// Prefix length (32/128 when omitted).
        plen: u8,
        /// Device.
        dev: String,
        /// With a socket-address pool (`sapool`).
        sapool: bool,
    },
    /// `rvsip addr del`.
    DelAddr {
        /// Address.
        addr: IpAddr,
        /// Device.
        dev: String,
    },
    /// `rvsip addr set IP... standby|active`: a standby address stays
    /// configured (its pools exist, synced connections through it are
    /// installed) but rvs answers no ARP or neighbour solicitation for it;
    /// an active one is answered as usual. Meant for the local addresses of
    /// a master/backup pair: rvs-keepalived keeps them standby on the
    /// backup. The mark is kept per address even when the address is not
    /// (or not yet) configured, so the order of requests does not matter.
    SetAddrStandby {
        /// The addresses.
        addrs: Vec<IpAddr>,
        /// Standby (true) or active (false).
        standby: bool,
    },
    /// `rvsip addr show`.
    ListAddrs {
        /// Only this device.
        dev: Option<String>,
    },
    /// `rvsip route add`.
    AddRoute {
        /// The route.
        route: RouteSpec,
    },
    /// `rvsip route del`.
    DelRoute {
        /// Network.
        prefix: IpAddr,
        /// Prefix length.
        plen: u8,
    },
    /// `rvsip route show`.
    ListRoutes,
    /// `rvsip neigh add`.
    AddNeigh {
        /// Address.
        addr: IpAddr,
        /// MAC, `aa:bb:cc:dd:ee:ff`.
        mac: String,
        /// Device.
        dev: String,
    },
    /// `rvsip neigh del`.
    DelNeigh {
        /// Address.
        addr: IpAddr,
        /// Device.
        dev: String,
    },
    /// `rvsip neigh show`.
    ListNeigh {
        /// Only this device.
        dev: Option<String>,
    },
    /// `rvsip link show`.
    ListLinks {
        /// Only this device.
        dev: Option<String>,
    },
    /// Re-read the configuration file (like SIGHUP).
    Reload,
    /// `--start-daemon master|backup`: start a connection-sync daemon.
    StartDaemon {
        /// What to start.
        spec: SyncDaemonSpec,
    },
    /// `--stop-daemon master|backup`.
    StopDaemon {
        /// Which.
        role: SyncRole,
    },
    /// `-L --daemon`: the running sync daemons and their counters.
    ListDaemon,
    /// `-A/-E` with limit options: replaces every rate and connection limit
    /// of a service (empty [`Limits`]: none). Rejected whole, naming the
    /// value, when one is out of range.
    SetLimits {
        /// The service.
        key: ServiceKey,
        /// Its limits.
        limits: Limits,
    },
    /// `-L --rate`: the limits of one service or all (services without
    /// limits included), with what each refused.
    ListLimits {
        /// One service, or all.
        key: Option<ServiceKey>,
    },
    /// `--add-blklst -k` / `--add-whtlst -2`, with or without a service.
    AddAcl {
        /// The rule.
        rule: AclRule,
    },
    /// `--del-blklst` / `--del-whtlst`.
    DelAcl {
        /// The rule.
        rule: AclRule,
    },
    /// `--get-blklst` / `--get-whtlst`: the rules with their counters.
    ListAcl {
        /// Which list.
        kind: AclKind,
        /// Only this service's rules; `None` = every rule, global ones too.
        key: Option<ServiceKey>,
    },
    /// `rvsip ipset create`.
    IpsetCreate {
        /// The set.
        spec: IpsetSpec,
    },
    /// `rvsip ipset destroy`: refused while a list refers to the set.
    IpsetDestroy {
        /// Which.
        name: String,
    },
    /// `rvsip ipset add`: all entries or none.
    IpsetAdd {
        /// The set.
        name: String,
        /// Entries.
        entries: Vec<IpsetEntry>,
        /// `-F`: members already there are replaced instead of refused.
        force: bool,
    },
    /// `rvsip ipset del`: all entries or none.
    IpsetDel {
        /// The set.
        name: String,
        /// Entries.
        entries: Vec<String>,
        /// `-F`: members not there are skipped instead of refused.
        force: bool,
    },
    /// `rvsip ipset flush [NAME]`: removes the members (of every set without a name).
    IpsetFlush {
        /// Which; `None` = all.
        name: Option<String>,
    },
    /// `rvsip ipset list [NAME]`.
    IpsetList {
        /// Which; `None` = all.
        name: Option<String>,
        /// With the members (else the headers only).
        members: bool,
    },
    /// `rvsip ipset test NAME ENTRY`.
    IpsetTest {
        /// The set.
        name: String,
        /// What to look up.
        entry: String,
    },
}

/// Traffic counters (`ipvsadm --stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct LaddrInfo {
    /// Address.
    pub addr: IpAddr,
    /// Device.
    pub dev: String,
    /// Port conflicts (allocation failures).
    pub conflicts: u64,
    /// Connections using it now.
    pub conns: u64,
    /// Standby ([`Request::SetAddrStandby`]): configured, not announced.
    #[serde(default)]
    pub standby: bool,
}

/// A service's local addresses (`-G`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaddrGroup {
    /// The service.
    pub key: ServiceKey,
    /// Its local addresses.
    pub laddrs: Vec<LaddrInfo>,
}

/// A connection (`-lnc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnInfo {
    /// "TCP", "UDP", "ICMP".
    pub proto: String,
    /// State name (ESTABLISHED...), or "UDP".
    pub state: String,
    /// Seconds until it expires.
    pub expire_s: u64,
    /// Client address and port.
    pub client: (IpAddr, u16),
    /// Virtual address and port.
    pub virt: (IpAddr, u16),
    /// Local address and port (FNAT/SNAT), if any.
    pub local: Option<(IpAddr, u16)>,
    /// Real server address and port.
    pub dest: (IpAddr, u16),
    /// Worker that owns it.
    pub worker: u16,
    /// Created here, or installed from a sync peer (`-lnc` marks those).
    #[serde(default)]
    pub origin: ConnOrigin,
}

/// Where a connection comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct ConnCursor {
    /// The worker.
    pub worker: u16,
    /// The first slot of its table not listed yet.
    pub slot: u32,
}

/// One page of connections ([`Request::ListConnPage`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnPage {
    /// The connections (may be fewer than asked for, even none, before the end).
    pub conns: Vec<ConnInfo>,
    /// Where the next page starts; `None` when the listing is complete.
    pub next: Option<ConnCursor>,
}

/// An address of rvs (`rvsip addr show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrInfo {
    /// Address.
    pub addr: IpAddr,
    /// Prefix length.
    pub plen: u8,
    /// Device.
    pub dev: String,
    /// Scope ("global").
    pub scope: Scope,
    /// Socket-address pool usage, when it has one: (used, free, miss).
    pub sapool: Option<(u64, u64, u64)>,
    /// Standby ([`Request::SetAddrStandby`]): configured, not announced.
    #[serde(default)]
    pub standby: bool,
}

/// A route as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct NeighInfo {
    /// Address.
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
}

/// A port as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// The daemon's state in one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// [`Request::Status`].
    Status(StatusInfo),
    /// [`Request::ListServices`].
    Services(Vec<ServiceInfo>),
    /// [`Request::ListLaddrs`].
    Laddrs(Vec<LaddrGroup>),
    /// [`Request::ListConns`].
    Conns(Vec<ConnInfo>),
    /// [`Request::ListConnPage`].
    ConnPage(ConnPage),
    /// [`Request::ListAddrs`].
    Addrs(Vec<AddrInfo>),
    /// [`Request::ListRoutes`].
    Routes(Vec<RouteInfo>),
    /// [`Request::ListNeigh`].
    Neigh(Vec<NeighInfo>),
    /// [`Request::ListLinks`].
    Links(Vec<LinkInfo>),
    /// [`Request::ListDaemon`].
    Daemons(DaemonList),
    /// [`Request::ListLimits`].
    Limits(Vec<LimitInfo>),
    /// [`Request::ListAcl`].
    Acl(AclListing),
    /// [`Request::IpsetList`].
    Ipsets(Vec<IpsetInfo>),
    /// [`Request::IpsetTest`]: whether the entry is in the set.
    IpsetTest(bool),
}

/// Why a request failed, with the kind a tool maps to its exit code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A message naming what was wrong.
    pub message: String,
}

/// Kinds of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// Encodes a request as one line (with the trailing newline).
pub fn encode_request(req: &Request) -> String {
    let mut s = serde_json::to_string(&Envelope {
        v: VERSION,
        req: req.clone(),
    })
    .unwrap_or_default();
    s.push('\n');
    s
}

/// Decodes a request line, checking the version.
pub fn decode_request(line: &str) -> Result<Request, ApiError> {
    let v: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| ApiError::new(ErrorKind::Invalid, format!("malformed request: {e}")))?;
    let ver = v.get("v").and_then(|x| x.as_u64()).unwrap_or(0);
    if ver != VERSION as u64 {
        return Err(ApiError::new(
            ErrorKind::Version,
            format!("request speaks protocol version {ver}, rvsd speaks {VERSION}"),
        ));
    }
    serde_json::from_value::<Envelope>(v)
        .map(|e| e.req)
        .map_err(|e| ApiError::new(ErrorKind::Invalid, format!("malformed request: {e}")))
}

/// Encodes a reply as one line.
pub fn encode_reply(r: &Reply) -> String {
    let mut s = serde_json::to_string(r).unwrap_or_else(|e| {
        serde_json::to_string(&Reply::Error(ApiError::new(
            ErrorKind::Internal,
            e.to_string(),
        )))
        .unwrap_or_default()
    });
    s.push('\n');
    s
}

/// Decodes a reply line.
pub fn decode_reply(line: &str) -> Result<Reply, ApiError> {
    serde_json::from_str(line).map_err(|e| {
        ApiError::new(
            ErrorKind::Internal,
            format!("malformed reply from rvsd: {e}"),
        )
    })
}

/// Sends one request over a connected stream and reads the reply (blocking).
pub fn call<S: std::io::Read + std::io::Write>(
    stream: &mut S,
    req: &Request,
) -> Result<Reply, ApiError> {
    use std::io::BufRead;
    stream
        .write_all(encode_request(req).as_bytes())
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("cannot send to rvsd: {e}")))?;
    let mut line = String::new();
    let mut r = std::io::BufReader::new(stream);
    r.read_line(&mut line)
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("cannot read from rvsd: {e}")))?;
    if line.is_empty() {
        return Err(ApiError::new(
            ErrorKind::Internal,
            "rvsd closed the connection",
        ));
    }
    decode_reply(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_and_version_check() {
        let req = Request::AddDest {
            key: ServiceKey::Vs {
                proto: Proto::Tcp,
                vip: "10.0.0.100".parse().unwrap(),
                port: 80,
            },
            dest: DestSpec {
                addr: "192.168.100.2".parse().unwrap(),
                port: 80,
                weight: 1,
                forward: Forward::Fnat,
                u_threshold: 0,
                l_threshold: 0,
            },
        };
        let line = encode_request(&req);
        assert!(line.ends_with('\n'));
        assert_eq!(decode_request(line.trim()).unwrap(), req);
        let old = line.replace("\"v\":1", "\"v\":0");
        let e = decode_request(&old).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Version);
        assert!(e.message.contains("version 0"), "{e}");
        let e = decode_request("{\"v\":1,\"req\":{\"op\":\"fly\"}}").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(decode_request("not json").is_err());
    }

    #[test]
    fn conn_page_round_trip() {
        let req = Request::ListConnPage {
            key: None,
            cursor: ConnCursor {
                worker: 1,
                slot: 42,
            },
            limit: 100,
        };
        assert_eq!(decode_request(encode_request(&req).trim()).unwrap(), req);
        let r = Reply::ConnPage(ConnPage {
            conns: vec![],
            next: Some(ConnCursor {
                worker: 1,
                slot: 99,
            }),
        });
        assert_eq!(decode_reply(encode_reply(&r).trim()).unwrap(), r);
        // A version-1 request without paging still decodes.
        let old = "{\"v\":1,\"req\":{\"op\":\"list_conns\",\"key\":null,\"limit\":5}}";
        assert_eq!(
            decode_request(old).unwrap(),
            Request::ListConns {
                key: None,
                limit: 5
            }
        );
    }

    #[test]
    fn reply_round_trip() {
        let r = Reply::Error(ApiError::new(
            ErrorKind::NotFound,
            "no such service TCP 10.0.0.1:80",
        ));
        assert_eq!(decode_reply(encode_reply(&r).trim()).unwrap(), r);
        let key = ServiceKey::Vs {
            proto: Proto::Udp,
            vip: "2001:db8::1".parse().unwrap(),
            port: 53,
        };
        assert_eq!(key.to_string(), "UDP [2001:db8::1]:53");
    }
}

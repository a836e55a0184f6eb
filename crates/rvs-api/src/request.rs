//! What a tool asks rvsd: [`Request`].

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{
    AclKind, AclRule, ConnCursor, DestSpec, IpsetEntry, IpsetSpec, Limits, RouteSpec, ServiceKey,
    ServiceSpec, SyncDaemonSpec, SyncRole,
};

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
    /// [`CONN_PAGE_MAX`](crate::CONN_PAGE_MAX)) from `cursor` on; the reply's `next` is where the
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
    /// `rvsadm --capture`: answered by a stream of
    /// [`Reply::CaptureFrame`](crate::Reply::CaptureFrame) lines closed by
    /// [`Reply::CaptureEnd`](crate::Reply::CaptureEnd); the connection then closes.
    Capture {
        /// What to capture.
        spec: crate::CaptureSpec,
    },
    /// `rvsd --takeover` (a hot upgrade) and `rvsd --standby`: answered
    /// [`Reply::Ok`](crate::Reply::Ok) (or an error), after which the
    /// connection carries the hand-over's binary frames, with descriptors
    /// (`docs/design/hot-upgrade.md`); root only, one at a time.
    Takeover {
        /// A warm standby that stays beside the running rvsd, rather than
        /// its successor.
        standby: bool,
    },
    /// `rvsip vlan add`: a VLAN device on a taken-over port, with its own
    /// kni device.
    AddVlan {
        /// The device.
        spec: crate::VlanSpec,
    },
    /// `rvsip vlan del`: refused while an address, route, neighbour or
    /// local address uses the device.
    DelVlan {
        /// Which (a name, or link and ID).
        sel: crate::VlanSel,
    },
    /// `rvsip vlan show`.
    ListVlans {
        /// Which; empty = all.
        sel: crate::VlanSel,
    },
}

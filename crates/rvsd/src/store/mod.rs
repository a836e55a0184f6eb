//! The configuration store: the control API applied to a configuration model,
//! and the snapshots the workers forward with.
//!
//! The daemon holds one [`Store`], hands it every control request
//! ([`Store::apply`]) and publishes `Arc::new(store.snapshot())` after each
//! successful change. The semantics follow `ipvsadm`/LVS for services, dests
//! and local addresses, and `dpip`/DPVS for addresses, routes and neighbours
//! (see the DPVS tutorial): an address brings its own host route and on-link
//! network route, and a FNAT local address is also an interface address with
//! a socket-address pool.
//!
//! Every request is validated completely before anything is touched, so an
//! error always leaves the store exactly as it was.

mod acl;
mod bond;
pub mod fingerprint;
mod ipset;
mod limits;
mod mcast;
pub use mcast::MldPort;
mod net;
pub mod rates;
mod read;
pub mod save;
mod services;
#[cfg(test)]
mod tests;
pub mod vlan;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use rvs_api::ProxyProtocol;
use rvs_api::{ApiError, DestSpec, ErrorKind, Request, RouteSpec, Scope as ApiScope, ServiceSpec};
use rvs_core::addr::{Addr, Mac, PortId};
use rvs_core::conn::tcp::Timeouts;
use rvs_core::route::{Route, RouteTable, Scope};
use rvs_core::sched::{SchedKind, SchedTable};
use rvs_core::service::{Dest, Laddr, Service, ServiceKey as CoreKey};
use rvs_core::snapshot::{IfAddr, PipelineConf, PortConf, Snapshot};
use rvs_core::stats::PerWorker;
use rvs_core::wire::proxy_proto::Version as PpVersion;

/// A port rvsd took over, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortDef {
    /// Name the tools use (`dpdk0`).
    pub name: String,
    /// Kernel interface taken over (`eth1`).
    pub iface: String,
    /// MAC address.
    pub mac: Mac,
    /// IP MTU.
    pub mtu: u16,
    /// Whether the port has an exception path to the kernel.
    pub kni: bool,
    /// The bond this port is a slave of (its port index): the port then
    /// takes no address, route, neighbour, VLAN device or service.
    pub slave_of: Option<PortId>,
}

/// A dest with the spec it was configured with.
#[derive(Debug, Clone)]
struct DestEntry {
    spec: DestSpec,
    /// Shared with every snapshot; replaced (same id, same counters) on edit.
    dest: Arc<Dest>,
}

/// A local address of a service with the device name it was given with.
#[derive(Debug, Clone)]
struct LaddrEntry {
    dev: String,
    laddr: Laddr,
}

/// A virtual service.
#[derive(Debug)]
struct SvcEntry {
    id: u32,
    /// Settings as listed; a match key is kept in canonical form.
    spec: ServiceSpec,
    key: CoreKey,
    kind: SchedKind,
    persistence_ms: u32,
    stats: Arc<PerWorker>,
    /// Rebuilt whenever the dest list or the scheduler changes, kept
    /// otherwise so that a worker's wrr position stays meaningful.
    sched: Arc<SchedTable>,
    dests: Vec<DestEntry>,
    laddrs: Vec<LaddrEntry>,
}

/// An interface address.
#[derive(Debug, Clone)]
struct AddrEntry {
    addr: Addr,
    plen: u8,
    port: PortId,
    /// `sapool` as given to `addr add` (a local address adds a pool anyway).
    sapool: bool,
    /// Added by `addr add`; false when it exists only because a service uses
    /// it as a local address, in which case it goes away with the last one.
    explicit: bool,
}

/// A route.
#[derive(Debug, Clone)]
struct RouteEntry {
    spec: RouteSpec,
    port: PortId,
    scope: ApiScope,
    /// The address whose `addr add` created it, for routes derived automatically.
    auto_of: Option<Addr>,
}

/// A static neighbour.
#[derive(Debug, Clone)]
struct NeighEntry {
    addr: Addr,
    mac: Mac,
    port: PortId,
}

/// Which object a rate sample belongs to (service and dest ids are separate spaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RateObj {
    Svc(u32),
    Dest(u32),
}

/// The configuration of rvsd as the control API changes it.
#[derive(Debug)]
pub struct Store {
    ports: Vec<PortDef>,
    workers: u16,
    timeouts: Timeouts,
    conf: PipelineConf,
    generation: u64,
    next_svc_id: u32,
    next_dest_id: u32,
    services: Vec<SvcEntry>,
    addrs: Vec<AddrEntry>,
    routes: Vec<RouteEntry>,
    neigh: Vec<NeighEntry>,
    /// Addresses marked standby (`SetAddrStandby`), configured or not.
    standby: HashSet<Addr>,
    rates: HashMap<RateObj, rates::RateWindow>,
    /// Rate and connection limits by service id.
    limits: HashMap<u32, limits::LimitEntry>,
    /// Allow/deny lists and ipsets.
    acl: acl::AclStore,
    /// VLAN devices by slot ([`vlan`]).
    vlans: Vec<Option<vlan::VlanDef>>,
}

fn err(kind: ErrorKind, msg: impl Into<String>) -> ApiError {
    ApiError::new(kind, msg)
}

fn invalid(msg: impl Into<String>) -> ApiError {
    err(ErrorKind::Invalid, msg)
}

fn not_found(msg: impl Into<String>) -> ApiError {
    err(ErrorKind::NotFound, msg)
}

fn exists(msg: impl Into<String>) -> ApiError {
    err(ErrorKind::Exists, msg)
}

/// The longest prefix of the address's family.
fn max_plen(a: &Addr) -> u8 {
    if a.is_v4() {
        32
    } else {
        128
    }
}

/// `a` with the bits past `plen` cleared.
fn network(a: &Addr, plen: u8) -> Addr {
    if a.is_v4() {
        let shift = 32u32.saturating_sub(u32::from(plen));
        let m = u32::MAX.checked_shl(shift).unwrap_or(0);
        Addr::from_v4_bytes((a.v4_u32() & m).to_be_bytes())
    } else {
        let shift = 128u32.saturating_sub(u32::from(plen));
        let m = u128::MAX.checked_shl(shift).unwrap_or(0);
        Addr::from_u128(a.as_u128() & m)
    }
}

/// `addr:port` as ipvsadm prints it (IPv6 in brackets).
fn endpoint(a: &IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(v) => format!("{v}:{port}"),
        IpAddr::V6(v) => format!("[{v}]:{port}"),
    }
}

fn core_scope(s: ApiScope) -> Scope {
    match s {
        ApiScope::Host => Scope::Host,
        ApiScope::Link => Scope::Link,
        ApiScope::Global => Scope::Global,
        ApiScope::KniHost => Scope::KniHost,
    }
}

/// The name of a request in messages about it.
fn op_name(req: &Request) -> &'static str {
    match req {
        Request::Status => "status",
        Request::ListServices { .. } => "list services",
        Request::ListLaddrs { .. } => "list local addresses",
        Request::ListConns { .. } | Request::ListConnPage { .. } => "list connections",
        Request::ListAddrs { .. } => "addr show",
        Request::ListRoutes => "route show",
        Request::ListNeigh { .. } => "neigh show",
        Request::ListLinks { .. } => "link show",
        Request::Reload => "reload",
        Request::ListLimits { .. } => "list limits",
        Request::ListAcl { .. } => "list blklst/whtlst",
        Request::IpsetList { .. } => "ipset list",
        Request::IpsetTest { .. } => "ipset test",
        Request::ListVlans { .. } => "vlan show",
        _ => "request",
    }
}

impl Store {
    /// An empty configuration over `ports` for `workers` workers.
    pub fn new(ports: Vec<PortDef>, workers: u16, timeouts: Timeouts, conf: PipelineConf) -> Store {
        Store {
            ports,
            workers: workers.max(1),
            timeouts,
            conf,
            generation: 0,
            next_svc_id: 1,
            next_dest_id: 1,
            services: Vec::new(),
            addrs: Vec::new(),
            routes: Vec::new(),
            neigh: Vec::new(),
            standby: HashSet::new(),
            rates: HashMap::new(),
            limits: HashMap::new(),
            acl: acl::AclStore::new(usize::from(workers.max(1))),
            vlans: Vec::new(),
        }
    }

    /// A one-line warning about a change `req` just applied, for the
    /// reply (today: a NAT64/NAT46 dest without a local address of its
    /// family).
    pub fn warning(&self, req: &Request) -> Option<String> {
        match req {
            Request::AddDest { key, dest } | Request::EditDest { key, dest } => {
                self.xlate_warning(key, dest)
            }
            _ => None,
        }
    }

    /// Applies a mutating request. `Ok(())` means the configuration changed
    /// and the generation was bumped; an error (with an ipvsadm/dpip-style
    /// message naming what was wrong) means nothing changed. Reads are
    /// refused here: they have their own methods.
    pub fn apply(&mut self, req: &Request) -> Result<(), ApiError> {
        match req {
            Request::AddService { spec } => self.add_service(spec),
            Request::EditService { spec } => self.edit_service(spec),
            Request::DelService { key } => self.del_service(key),
            Request::Clear => {
                self.clear();
                Ok(())
            }
            Request::Zero { key } => self.zero(key.as_ref()),
            Request::AddDest { key, dest } => self.add_dest(key, dest),
            Request::EditDest { key, dest } => self.edit_dest(key, dest),
            Request::DelDest { key, addr, port } => self.del_dest(key, addr, *port),
            Request::AddLaddr { key, addr, dev } => self.add_laddr(key, addr, dev),
            Request::DelLaddr { key, addr, dev } => self.del_laddr(key, addr, dev),
            Request::AddAddr {
                addr,
                plen,
                dev,
                sapool,
            } => self.add_addr(addr, *plen, dev, *sapool),
            Request::DelAddr { addr, dev } => self.del_addr(addr, dev),
            Request::AddRoute { route } => self.add_route(route),
            Request::DelRoute { prefix, plen } => self.del_route(prefix, *plen),
            Request::AddNeigh { addr, mac, dev } => self.add_neigh(addr, mac, dev),
            Request::DelNeigh { addr, dev } => self.del_neigh(addr, dev),
            Request::SetAddrStandby { addrs, standby } => {
                self.set_standby(addrs, *standby);
                Ok(())
            }
            Request::SetLimits { key, limits } => self.set_limits(key, limits),
            Request::AddAcl { rule } => self.add_acl(rule),
            Request::DelAcl { rule } => self.del_acl(rule),
            Request::IpsetCreate { spec } => self.ipset_create(spec),
            Request::IpsetDestroy { name } => self.ipset_destroy(name),
            Request::IpsetAdd {
                name,
                entries,
                force,
            } => self.ipset_add(name, entries, *force),
            Request::IpsetDel {
                name,
                entries,
                force,
            } => self.ipset_del(name, entries, *force),
            Request::IpsetFlush { name } => self.ipset_flush(name.as_deref()),
            Request::AddVlan { spec } => self.add_vlan(spec),
            Request::DelVlan { sel } => self.del_vlan(sel),
            other => Err(invalid(format!(
                "{} does not change the configuration; the store only applies changes",
                op_name(other)
            ))),
        }?;
        // A service's lists go with it; `-C` clears the global lists too.
        if matches!(req, Request::DelService { .. } | Request::Clear) {
            self.prune_acl(matches!(req, Request::Clear));
        }
        self.generation += 1;
        Ok(())
    }

    /// The configuration generation: 0 for the empty store, +1 per change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Replaces the protocol timeouts (configuration reload); a change like any other.
    pub fn set_timeouts(&mut self, t: Timeouts) {
        self.timeouts = t;
        self.generation += 1;
    }

    /// Replaces the pipeline switches (config reload).
    pub fn set_pipeline_conf(&mut self, conf: PipelineConf) {
        self.conf = conf;
        self.generation += 1;
    }

    /// The ports, in port-index order.
    pub fn ports(&self) -> &[PortDef] {
        &self.ports
    }

    /// The port index of device `dev`, or the error dpip gives for an unknown one.
    fn port_of(&self, dev: &str) -> Result<PortId, ApiError> {
        self.refuse_slave(dev)?;
        self.ports
            .iter()
            .position(|p| p.name == dev)
            .and_then(|i| PortId::try_from(i).ok())
            .or_else(|| self.vlan_port(dev))
            .ok_or_else(|| not_found(format!("no such device {dev}")))
    }

    fn port_name(&self, port: PortId) -> &str {
        self.ports
            .get(usize::from(port))
            .map(|p| p.name.as_str())
            .or_else(|| self.vlan_at(port).map(|v| v.name.as_str()))
            .unwrap_or("?")
    }

    fn port_mtu(&self, port: PortId) -> u16 {
        let phys = self.vlan_at(port).map_or(port, |v| v.parent);
        self.ports.get(usize::from(phys)).map_or(1500, |p| p.mtu)
    }

    /// Marks `addrs` standby or active (see [`Request::SetAddrStandby`]).
    fn set_standby(&mut self, addrs: &[IpAddr], standby: bool) {
        for a in addrs {
            if standby {
                self.standby.insert(Addr::from(*a));
            } else {
                self.standby.remove(&Addr::from(*a));
            }
        }
    }

    /// Whether `a` is marked standby.
    fn is_standby(&self, a: &Addr) -> bool {
        self.standby.contains(a)
    }

    /// Whether some service uses `a` as a local address.
    fn is_laddr(&self, a: &Addr) -> bool {
        self.services
            .iter()
            .any(|s| s.laddrs.iter().any(|l| l.laddr.addr == *a))
    }

    /// Every address some service uses as a local address; built once per
    /// listing so that marking pools stays linear in the configuration size.
    fn laddr_set(&self) -> HashSet<Addr> {
        self.services
            .iter()
            .flat_map(|s| s.laddrs.iter().map(|l| l.laddr.addr))
            .collect()
    }

    fn core_route(&self, r: &RouteEntry) -> Route {
        Route {
            prefix: Addr::from(r.spec.prefix),
            plen: r.spec.plen,
            gateway: r.spec.via.map(Addr::from),
            port: r.port,
            scope: core_scope(r.scope),
            src: r.spec.src.map(Addr::from),
            mtu: r.spec.mtu.unwrap_or_else(|| self.port_mtu(r.port)),
            metric: r.spec.metric,
        }
    }

    /// The snapshot for the workers: every service, address, route (the
    /// automatic ones included) and static neighbour as configured now.
    pub fn snapshot(&self) -> Snapshot {
        let ports = self
            .ports
            .iter()
            .map(|p| PortConf {
                name: p.name.clone(),
                mac: p.mac,
                mtu: p.mtu,
                kni: p.kni,
                vlan: None,
            })
            .chain(self.vlan_port_confs())
            .collect();
        let laddrs = self.laddr_set();
        let addrs = self
            .addrs
            .iter()
            .map(|e| IfAddr {
                addr: e.addr,
                plen: e.plen,
                port: e.port,
                sapool: e.sapool || laddrs.contains(&e.addr),
            })
            .collect();
        let mut routes = RouteTable::new();
        for r in &self.routes {
            // Validated when added; a failure here would be a store bug, and
            // leaving the route out is better than taking the daemon down.
            let _ = routes.add(self.core_route(r));
        }
        let services = self
            .services
            .iter()
            .map(|s| {
                Arc::new(Service {
                    id: s.id,
                    key: s.key.clone(),
                    sched: s.sched.clone(),
                    persistence_ms: s.persistence_ms,
                    dests: s.dests.iter().map(|d| d.dest.clone()).collect(),
                    laddrs: s.laddrs.iter().map(|l| l.laddr.clone()).collect(),
                    stats: s.stats.clone(),
                    synproxy: s.spec.synproxy == Some(true),
                    proxy_protocol: match s.spec.proxy_protocol {
                        Some(ProxyProtocol::V1) => PpVersion::V1,
                        Some(ProxyProtocol::V2) => PpVersion::V2,
                        _ => PpVersion::Off,
                    },
                })
            })
            .collect();
        let neigh = self.neigh.iter().map(|n| (n.addr, n.mac, n.port)).collect();
        let (global, per_svc) = self.acl_lists();
        Snapshot::new(
            self.generation,
            self.workers,
            ports,
            addrs,
            routes,
            services,
            neigh,
            self.timeouts,
            self.conf.clone(),
        )
        .with_standby(self.standby.iter().copied().collect())
        .with_limits(self.core_limits())
        .with_acl(global, &per_svc)
    }

    /// Steering inputs for the I/O layer: the addresses with a port pool
    /// (FNAT local addresses, `sapool` addresses, SNAT WAN addresses), whose
    /// return traffic must reach the worker owning the port, and the
    /// addresses of NAT real servers, whose replies must reach the worker of
    /// the connection; both families (the steering programs match IPv6 on
    /// all 128 bits).
    pub fn steering(&self) -> (Vec<Addr>, Vec<Addr>) {
        let mut pools: Vec<Addr> = Vec::new();
        let push = |v: &mut Vec<Addr>, a: Addr| {
            if !v.contains(&a) {
                v.push(a);
            }
        };
        let laddrs = self.laddr_set();
        for e in &self.addrs {
            if e.sapool || laddrs.contains(&e.addr) {
                push(&mut pools, e.addr);
            }
        }
        let mut nat = Vec::new();
        for s in &self.services {
            for l in &s.laddrs {
                push(&mut pools, l.laddr.addr);
            }
            for d in &s.dests {
                match d.spec.forward {
                    rvs_api::Forward::Snat => push(&mut pools, d.dest.addr),
                    rvs_api::Forward::Nat => push(&mut nat, d.dest.addr),
                    _ => {}
                }
            }
        }
        (pools, nat)
    }
}

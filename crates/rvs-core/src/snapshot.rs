//! The immutable configuration a worker forwards with.
//!
//! The control plane builds a new [`Snapshot`] on every change and hands it to
//! the workers (through an atomic pointer swap in the daemon); workers read it
//! without locks and keep forwarding on the last one they got.

use std::sync::Arc;

use crate::acl::{Acl, Lists};
use crate::addr::{proto, Addr, Mac, PortId};
use crate::conn::tcp::Timeouts;
use crate::hash::FastMap;
use crate::limit::ServiceLimits;
use crate::route::RouteTable;
use crate::service::{Service, ServiceKey};

/// A port (a taken-over device) as the pipeline sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConf {
    /// Device name the tools use (`dpdk0`).
    pub name: String,
    /// The port's MAC address (also the `<name>.kni` device's).
    pub mac: Mac,
    /// IP MTU.
    pub mtu: u16,
    /// Whether the port has an exception path to the kernel.
    pub kni: bool,
    /// A VLAN device (`rvsip vlan add`): its frames arrive on and leave by
    /// `parent` with this tag; `None` for a taken-over device.
    pub vlan: Option<Vlan>,
}

/// What makes a port a VLAN device: the device it sits on and its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vlan {
    /// The port the tagged frames arrive on and leave by (never a VLAN port).
    pub parent: PortId,
    /// The tag protocol identifier (0x8100 for 802.1Q).
    pub tpid: u16,
    /// The VLAN ID (1 to 4094).
    pub vid: u16,
}

/// An address configured on a port (`rvsip addr add`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: Addr,
    /// Prefix length given with it.
    pub plen: u8,
    /// The port.
    pub port: PortId,
    /// Whether it has a socket-address pool (SNAT WAN addresses, FNAT LIPs).
    pub sapool: bool,
}

/// Knobs of the pipeline that are not per service.
#[derive(Debug, Clone)]
pub struct PipelineConf {
    /// Verify TCP/UDP/ICMP checksums of received packets (unless the I/O layer already did).
    pub verify_l4_checksum: bool,
    /// Insert TOA (client address) into FNAT TCP traffic toward real servers.
    pub toa: bool,
    /// Lowest local port handed out by FNAT/SNAT.
    pub min_lport: u16,
    /// Highest local port handed out by FNAT/SNAT.
    pub max_lport: u16,
    /// IPVS's `sloppy_tcp`: a TCP packet other than a SYN (and not a RST)
    /// of an unknown flow creates a connection when the scheduled real
    /// server is DR or TUNNEL (it starts ESTABLISHED), so that a flow an
    /// ECMP switch moves to this node keeps going; never FNAT or NAT (the
    /// real server would not know the new tuple: those rely on sync).
    pub sloppy_tcp: bool,
    /// Fast xmit (DPVS's default; `fast_xmit_close` turns it off there):
    /// FNAT, NAT and SNAT replies go back out of the port the connection's
    /// client-side packets came in by, to the MAC they came from, without a
    /// route lookup. Off: the route table decides.
    pub fast_xmit: bool,
    /// Slots of each worker's per-source limit table
    /// ([`crate::limit::src::SrcTable`], 72 bytes each), allocated when a
    /// per-source limit is first configured.
    pub limit_sources: usize,
    /// The SYN proxy's master key for cookies: `None` (the default), one
    /// drawn per process; the same key on ECMP nodes lets a client's ACK be
    /// checked by a node that did not answer its SYN (their clocks, see
    /// [`crate::pipeline::WorkerConf::wall_clock_ms`], must agree within a
    /// second or so).
    pub synproxy_key: Option<[u64; 2]>,
    /// Packets per second (all workers together, bursts of one second)
    /// that rvs hands to the kernel (kni) for its VIPs when they match no
    /// service: a flood to the VIP's other ports must not make the workers
    /// feed the kernel. 0: no limit. Beyond it: `kni_vip_rate` drops.
    pub kni_vip_rate: u32,
    /// Offer established FNAT flow directions to the I/O layer's fast path
    /// ([`crate::pipeline::FastEvent`]). Off by default.
    pub fast_path: bool,
    /// UOA for FNAT UDP (DPVS's `uoa_mode`): how the client's address rides
    /// in the first datagrams toward the real server; off by default.
    pub uoa_mode: crate::wire::uoa::Mode,
    /// DPVS's `uoa_max_trail`: how many datagrams of a connection carry UOA
    /// at most (fewer when the real server answers first); 0: none.
    pub uoa_max_trail: u8,
}

impl Default for PipelineConf {
    fn default() -> Self {
        PipelineConf {
            verify_l4_checksum: true,
            toa: true,
            min_lport: 1024,
            max_lport: 65535,
            sloppy_tcp: false,
            fast_xmit: true,
            limit_sources: 65536,
            synproxy_key: None,
            kni_vip_rate: 1000,
            fast_path: false,
            uoa_mode: crate::wire::uoa::Mode::Off,
            uoa_max_trail: 3,
        }
    }
}

/// Everything a worker needs to forward, frozen.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every change.
    pub generation: u64,
    /// Number of workers (local ports are split among them).
    pub workers: u16,
    /// Ports by [`PortId`].
    pub ports: Vec<PortConf>,
    /// Addresses of rvs.
    pub addrs: Vec<IfAddr>,
    /// Routes.
    pub routes: RouteTable,
    /// Services.
    pub services: Vec<Arc<Service>>,
    /// Static neighbours (`rvsip neigh add`).
    pub static_neigh: Vec<(Addr, Mac, PortId)>,
    /// Protocol timeouts.
    pub timeouts: Timeouts,
    /// Pipeline knobs.
    pub conf: PipelineConf,
    /// Whether some port is a VLAN device (one branch per burst when not).
    has_vlans: bool,
    local: FastMap<Addr, usize>,
    vs: FastMap<(u8, Addr, u16), usize>,
    matches: Vec<usize>,
    pools: Vec<Addr>,
    standby: Vec<Addr>,
    limits: FastMap<u32, Arc<ServiceLimits>>,
    acl: Acl,
}

/// Where a local (owned) address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalKind {
    /// Configured with `rvsip addr add`.
    IfAddr,
    /// A service's local address (`--add-laddr`).
    Laddr,
}

impl Snapshot {
    /// Builds the lookup indexes over the given parts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        generation: u64,
        workers: u16,
        ports: Vec<PortConf>,
        addrs: Vec<IfAddr>,
        routes: RouteTable,
        services: Vec<Arc<Service>>,
        static_neigh: Vec<(Addr, Mac, PortId)>,
        timeouts: Timeouts,
        conf: PipelineConf,
    ) -> Snapshot {
        let mut local = FastMap::default();
        for (i, a) in addrs.iter().enumerate() {
            local.insert(a.addr, i);
        }
        let mut vs = FastMap::default();
        let mut matches = Vec::new();
        let mut pools: Vec<Addr> = addrs.iter().filter(|a| a.sapool).map(|a| a.addr).collect();
        for (i, s) in services.iter().enumerate() {
            match &s.key {
                ServiceKey::Vs { proto, vip, vport } => {
                    vs.insert((*proto, *vip, *vport), i);
                }
                ServiceKey::Match(_) => matches.push(i),
            }
            for l in &s.laddrs {
                if !pools.contains(&l.addr) {
                    pools.push(l.addr);
                }
            }
            // SNAT dests are WAN addresses whose ports come from a pool.
            if matches!(s.key, ServiceKey::Match(_)) {
                for d in &s.dests {
                    if !pools.contains(&d.addr) {
                        pools.push(d.addr);
                    }
                }
            }
        }
        Snapshot {
            generation,
            workers: workers.max(1),
            has_vlans: ports.iter().any(|p| p.vlan.is_some()),
            ports,
            addrs,
            routes,
            services,
            static_neigh,
            timeouts,
            conf,
            local,
            vs,
            matches,
            pools,
            standby: Vec::new(),
            limits: FastMap::default(),
            acl: Acl::default(),
        }
    }

    /// The snapshot with `standby` as its standby addresses: configured
    /// (pools, connections) but not answered for in ARP/ND ([`Snapshot::owns`]).
    pub fn with_standby(mut self, standby: Vec<Addr>) -> Snapshot {
        self.standby = standby;
        self
    }

    /// The snapshot with the rate and connection limits of services, by
    /// service id (see [`crate::limit`]).
    pub fn with_limits(mut self, limits: Vec<(u32, Arc<ServiceLimits>)>) -> Snapshot {
        self.limits = limits.into_iter().collect();
        self
    }

    /// The limits of the service with id `id`, if it has any.
    pub fn limits_of(&self, id: u32) -> Option<&Arc<ServiceLimits>> {
        self.limits.get(&id)
    }

    /// Whether some service has a per-source limit (the workers need their
    /// source tables then).
    pub fn has_source_limits(&self) -> bool {
        self.limits.values().any(|l| l.source.any())
    }

    /// The snapshot with allow/deny lists: `global` for every service,
    /// `per_svc` by service id ([`crate::acl`]).
    pub fn with_acl(
        mut self,
        global: Option<Arc<Lists>>,
        per_svc: &[(u32, Arc<Lists>)],
    ) -> Snapshot {
        let ids: Vec<u32> = self.services.iter().map(|s| s.id).collect();
        self.acl = Acl::new(global, per_svc, &ids);
        self
    }

    /// The allow/deny lists, checked for every new connection.
    #[inline]
    pub fn acl(&self) -> &Acl {
        &self.acl
    }

    /// Whether `a` is a standby address (see [`Snapshot::with_standby`]).
    pub fn is_standby(&self, a: &Addr) -> bool {
        self.standby.contains(a)
    }

    /// Whether some port is a VLAN device.
    #[inline]
    pub fn has_vlans(&self) -> bool {
        self.has_vlans
    }

    /// The VLAN device on `parent` with tag protocol `tpid` and ID `vid`.
    pub fn vlan_port(&self, parent: PortId, tpid: u16, vid: u16) -> Option<PortId> {
        self.ports
            .iter()
            .position(|p| p.vlan == Some(Vlan { parent, tpid, vid }))
            .map(|i| i as PortId)
    }

    /// Whether some VLAN device sits on `parent`.
    pub fn has_vlans_on(&self, parent: PortId) -> bool {
        self.ports
            .iter()
            .any(|p| p.vlan.is_some_and(|v| v.parent == parent))
    }

    /// The VLAN of port `port`, if it is a VLAN device.
    #[inline]
    pub fn vlan_of(&self, port: PortId) -> Option<Vlan> {
        self.ports.get(port as usize).and_then(|p| p.vlan)
    }

    /// An empty snapshot for `workers` workers over `ports`.
    pub fn empty(workers: u16, ports: Vec<PortConf>) -> Snapshot {
        Snapshot::new(
            0,
            workers,
            ports,
            Vec::new(),
            RouteTable::new(),
            Vec::new(),
            Vec::new(),
            Timeouts::default(),
            PipelineConf::default(),
        )
    }

    /// The interface address `a` if rvs owns it.
    #[inline]
    pub fn if_addr(&self, a: &Addr) -> Option<&IfAddr> {
        self.local.get(a).and_then(|i| self.addrs.get(*i))
    }

    /// Whether rvs answers ARP/ND for `a` on `port`: an interface address, a
    /// VIP or a local address of a service on that port, unless it is a
    /// standby address (owned by the master of a pair, not by this node).
    pub fn owns(&self, a: &Addr, port: PortId) -> bool {
        if self.is_standby(a) {
            return false;
        }
        if let Some(ia) = self.if_addr(a) {
            return ia.port == port;
        }
        self.services.iter().any(|s| {
            s.laddrs.iter().any(|l| l.addr == *a && l.port == port)
                || matches!(&s.key, ServiceKey::Vs { vip, .. } if vip == a && self.routes.lookup(a).is_some_and(|r| r.port == port))
        })
    }

    /// The service index for `(proto, vip, vport)`.
    #[inline]
    pub fn vs_lookup(&self, proto: u8, vip: &Addr, vport: u16) -> Option<usize> {
        self.vs.get(&(proto, *vip, vport)).copied()
    }

    /// Whether any virtual service listens on `vip` (any port, any protocol).
    pub fn is_vip(&self, a: &Addr) -> bool {
        self.vs.keys().any(|(_, v, _)| v == a)
    }

    /// SNAT match services, in configuration order.
    #[inline]
    pub fn match_services(&self) -> &[usize] {
        &self.matches
    }

    /// Addresses that have a port pool (FNAT LIPs and SNAT WAN addresses).
    pub fn pool_addrs(&self) -> &[Addr] {
        &self.pools
    }

    /// Whether the service at index `i` is TCP.
    pub fn is_tcp(&self, i: usize) -> bool {
        self.services
            .get(i)
            .is_some_and(|s| s.proto() == proto::TCP)
    }
}

//! Addresses, routes and static neighbours (`dpip`).

use std::net::IpAddr;

use rvs_api::{ApiError, RouteSpec, Scope as ApiScope};
use rvs_core::addr::{Addr, Mac, PortId};
use rvs_core::route::{RouteError, RouteTable};

use super::{exists, invalid, max_plen, network, not_found};
use super::{AddrEntry, NeighEntry, RouteEntry, Store};

fn family(a: &Addr) -> &'static str {
    if a.is_v4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

impl Store {
    fn route_index(&self, prefix: &Addr, plen: u8) -> Option<usize> {
        self.routes
            .iter()
            .position(|r| Addr::from(r.spec.prefix) == *prefix && r.spec.plen == plen)
    }

    /// Adds the routes dpip derives from an address: a host route for the
    /// address and, for a shorter prefix, the on-link route of its network.
    /// Either is skipped when a route for that prefix exists already.
    pub(super) fn add_auto_routes(&mut self, a: Addr, plen: u8, port: PortId) {
        let max = max_plen(&a);
        let dev = self.port_name(port).to_string();
        let add = |routes: &mut Vec<RouteEntry>, prefix: Addr, plen: u8, scope: ApiScope| {
            if routes
                .iter()
                .any(|r| Addr::from(r.spec.prefix) == prefix && r.spec.plen == plen)
            {
                return;
            }
            routes.push(RouteEntry {
                spec: RouteSpec {
                    prefix: prefix.to_ip(),
                    plen,
                    via: None,
                    dev: dev.clone(),
                    scope: Some(scope),
                    src: None,
                    mtu: None,
                    metric: 0,
                },
                port,
                scope,
                auto_of: Some(a),
            });
        };
        add(&mut self.routes, a, max, ApiScope::Host);
        if plen < max {
            add(&mut self.routes, network(&a, plen), plen, ApiScope::Link);
        }
    }

    pub(super) fn add_addr(
        &mut self,
        addr: &IpAddr,
        plen: u8,
        dev: &str,
        sapool: bool,
    ) -> Result<(), ApiError> {
        let port = self.port_of(dev)?;
        let a = Addr::from(*addr);
        let max = max_plen(&a);
        if plen > max {
            return Err(invalid(format!(
                "prefix length {plen} of {} address {a} is too long (at most {max})",
                family(&a)
            )));
        }
        if a.is_unspecified() || addr.is_multicast() {
            return Err(invalid(format!(
                "{a} cannot be an interface address (unspecified or multicast)"
            )));
        }
        if let Some(e) = self.addrs.iter().find(|e| e.addr == a) {
            return Err(exists(format!(
                "address {a} already exists on {}",
                self.port_name(e.port)
            )));
        }
        self.addrs.push(AddrEntry {
            addr: a,
            plen,
            port,
            sapool,
            explicit: true,
        });
        self.add_auto_routes(a, plen, port);
        Ok(())
    }

    pub(super) fn del_addr(&mut self, addr: &IpAddr, dev: &str) -> Result<(), ApiError> {
        let port = self.port_of(dev)?;
        let a = Addr::from(*addr);
        let i = self
            .addrs
            .iter()
            .position(|e| e.addr == a && e.port == port)
            .ok_or_else(|| not_found(format!("no such address {a} on {dev}")))?;
        let users = self.laddr_users(&a);
        if !users.is_empty() {
            return Err(invalid(format!(
                "{a} is a local address of {}: remove it with --del-laddr first",
                users.join(", ")
            )));
        }
        let e = self.addrs.remove(i);
        self.drop_auto_routes(&e);
        Ok(())
    }

    pub(super) fn add_route(&mut self, r: &RouteSpec) -> Result<(), ApiError> {
        let port = self.port_of(&r.dev)?;
        let prefix = Addr::from(r.prefix);
        // dpip shows "via 0.0.0.0" for an on-link route, so it means none.
        let via = r.via.filter(|v| !Addr::from(*v).is_unspecified());
        let scope = r.scope.unwrap_or(if via.is_some() {
            ApiScope::Global
        } else {
            ApiScope::Link
        });
        let max = max_plen(&prefix);
        let spec = RouteSpec { via, ..r.clone() };
        let entry = RouteEntry {
            spec,
            port,
            scope,
            auto_of: None,
        };
        // The route table checks prefix, host bits and families with precise messages.
        let mut probe = RouteTable::new();
        match probe.add(self.core_route(&entry)) {
            Ok(()) => {}
            Err(RouteError::BadPrefix(m)) => return Err(invalid(m)),
            Err(e) => return Err(invalid(format!("route {prefix}/{}: {e}", r.plen))),
        }
        if scope == ApiScope::KniHost && r.plen != max {
            return Err(invalid(format!(
                "the prefix length of kni_host must be {max} (route {prefix}/{})",
                r.plen
            )));
        }
        if let Some(gw) = via {
            // As Linux ("Nexthop has invalid gateway"): a gateway must be
            // reachable on the device, or nothing could ever resolve it.
            let g = Addr::from(gw);
            let on_link = self.routes.iter().any(|e| {
                e.port == port
                    && e.scope == ApiScope::Link
                    && Addr::from(e.spec.prefix).is_v4() == g.is_v4()
                    && network(&g, e.spec.plen) == Addr::from(e.spec.prefix)
            });
            if !on_link {
                return Err(invalid(format!(
                    "gateway {gw} is outside every on-link route of {}: add an address or a route for its network on {} first",
                    r.dev, r.dev
                )));
            }
        }
        if let Some(m) = r.mtu {
            let min = if prefix.is_v4() { 68 } else { 1280 };
            let dev_mtu = self.port_mtu(port);
            if m < min || m > dev_mtu {
                return Err(invalid(format!(
                    "mtu {m} of route {prefix}/{} is out of range ({min}-{dev_mtu}, the mtu of {})",
                    r.plen, r.dev
                )));
            }
        }
        if let Some(i) = self.route_index(&prefix, r.plen) {
            return Err(exists(format!(
                "route {prefix}/{} already exists (dev {})",
                r.plen, self.routes[i].spec.dev
            )));
        }
        self.routes.push(entry);
        Ok(())
    }

    pub(super) fn del_route(&mut self, prefix: &IpAddr, plen: u8) -> Result<(), ApiError> {
        let p = Addr::from(*prefix);
        let max = max_plen(&p);
        if plen > max {
            return Err(invalid(format!(
                "prefix length {plen} of {} route {p} is too long (at most {max})",
                family(&p)
            )));
        }
        if network(&p, plen) != p {
            return Err(invalid(format!(
                "{p}/{plen} has host bits set (network is {}/{plen})",
                network(&p, plen)
            )));
        }
        let i = self
            .route_index(&p, plen)
            .ok_or_else(|| not_found(format!("no such route {p}/{plen}")))?;
        self.routes.remove(i);
        Ok(())
    }

    pub(super) fn add_neigh(
        &mut self,
        addr: &IpAddr,
        mac: &str,
        dev: &str,
    ) -> Result<(), ApiError> {
        let port = self.port_of(dev)?;
        let a = Addr::from(*addr);
        let m: Mac = mac
            .parse()
            .map_err(|e| invalid(format!("neighbour {a}: {e}")))?;
        if m.is_multicast() || m == Mac::ZERO {
            return Err(invalid(format!(
                "neighbour {a}: {m} is not a unicast MAC address"
            )));
        }
        if a.is_unspecified() || addr.is_multicast() {
            return Err(invalid(format!(
                "{a} cannot be a neighbour (unspecified or multicast)"
            )));
        }
        if self.neigh.iter().any(|n| n.addr == a && n.port == port) {
            return Err(exists(format!("neighbour {a} already exists on {dev}")));
        }
        self.neigh.push(NeighEntry {
            addr: a,
            mac: m,
            port,
        });
        Ok(())
    }

    pub(super) fn del_neigh(&mut self, addr: &IpAddr, dev: &str) -> Result<(), ApiError> {
        let port = self.port_of(dev)?;
        let a = Addr::from(*addr);
        let i = self
            .neigh
            .iter()
            .position(|n| n.addr == a && n.port == port)
            .ok_or_else(|| not_found(format!("no such neighbour {a} on {dev}")))?;
        self.neigh.remove(i);
        Ok(())
    }
}

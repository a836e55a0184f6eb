//! Reads: listings with counters and rates, and rate sampling.

use std::collections::HashMap;

use rvs_api::{
    AddrInfo, ApiError, DestInfo, LaddrGroup, LaddrInfo, NeighInfo, Rates, RouteInfo, Scope,
    ServiceInfo, ServiceKey, Stats,
};
use rvs_core::addr::Addr;
use rvs_core::stats::CounterValues;

use super::rates::RateWindow;
use super::{RateObj, Store, SvcEntry};

fn stats(v: &CounterValues) -> Stats {
    Stats {
        conns: v.conns,
        inpkts: v.inpkts,
        outpkts: v.outpkts,
        inbytes: v.inbytes,
        outbytes: v.outbytes,
    }
}

impl Store {
    fn rates_of(&self, o: RateObj) -> Rates {
        self.rates
            .get(&o)
            .map(RateWindow::rates)
            .unwrap_or_default()
    }

    /// The services to list: one (NotFound when it does not exist) or all.
    fn selected(&self, key: Option<&ServiceKey>) -> Result<&[SvcEntry], ApiError> {
        match key {
            None => Ok(&self.services),
            Some(k) => {
                let i = self.svc_index(k, "No such service")?;
                Ok(&self.services[i..=i])
            }
        }
    }

    /// Services with their dests (both in the order added), counters summed
    /// over the workers, connection gauges and rates (`ipvsadm -L`).
    pub fn list_services(&self, key: Option<&ServiceKey>) -> Result<Vec<ServiceInfo>, ApiError> {
        Ok(self
            .selected(key)?
            .iter()
            .map(|s| ServiceInfo {
                spec: s.spec.clone(),
                dests: s
                    .dests
                    .iter()
                    .map(|d| {
                        let v = d.dest.stats.sum();
                        DestInfo {
                            spec: d.spec.clone(),
                            active: v.active,
                            inactive: v.inactive,
                            stats: stats(&v),
                            rates: self.rates_of(RateObj::Dest(d.dest.id)),
                        }
                    })
                    .collect(),
                stats: stats(&s.stats.sum()),
                rates: self.rates_of(RateObj::Svc(s.id)),
            })
            .collect())
    }

    /// Local addresses per service (`ipvsadm -G`). `usage` gives the pool
    /// usage of an address as (used, free, miss): used ports are the
    /// connections through it now, misses the allocation conflicts. SNAT
    /// match services, which take no local address, are left out of the
    /// full listing.
    pub fn list_laddrs(
        &self,
        key: Option<&ServiceKey>,
        usage: impl Fn(&Addr) -> (u64, u64, u64),
    ) -> Result<Vec<LaddrGroup>, ApiError> {
        Ok(self
            .selected(key)?
            .iter()
            .filter(|s| key.is_some() || matches!(s.spec.key, ServiceKey::Vs { .. }))
            .map(|s| LaddrGroup {
                key: s.spec.key.clone(),
                laddrs: s
                    .laddrs
                    .iter()
                    .map(|l| {
                        let (used, _free, miss) = usage(&l.laddr.addr);
                        LaddrInfo {
                            addr: l.laddr.addr.to_ip(),
                            dev: l.dev.clone(),
                            conflicts: miss,
                            conns: used,
                            standby: self.is_standby(&l.laddr.addr),
                        }
                    })
                    .collect(),
            })
            .collect())
    }

    /// Interface addresses in the order added (`dpip addr show`), optionally
    /// of one device. An address with a pool shows `usage(addr)`, or zeros
    /// while no worker reports one.
    pub fn list_addrs(
        &self,
        dev: Option<&str>,
        usage: impl Fn(&Addr) -> Option<(u64, u64, u64)>,
    ) -> Result<Vec<AddrInfo>, ApiError> {
        let port = dev.map(|d| self.port_of(d)).transpose()?;
        let laddrs = self.laddr_set();
        Ok(self
            .addrs
            .iter()
            .filter(|e| port.is_none_or(|p| p == e.port))
            .map(|e| AddrInfo {
                addr: e.addr.to_ip(),
                plen: e.plen,
                dev: self.port_name(e.port).to_string(),
                scope: Scope::Global,
                sapool: (e.sapool || laddrs.contains(&e.addr))
                    .then(|| usage(&e.addr).unwrap_or((0, 0, 0))),
                standby: self.is_standby(&e.addr),
            })
            .collect())
    }

    /// Routes as `dpip route show` orders them: IPv4 before IPv6, host
    /// routes first, then longest prefix first, then by address.
    pub fn list_routes(&self) -> Vec<RouteInfo> {
        let mut v: Vec<_> = self.routes.iter().collect();
        v.sort_by_key(|r| {
            let p = Addr::from(r.spec.prefix);
            (
                !p.is_v4(),
                r.scope != Scope::Host,
                std::cmp::Reverse(r.spec.plen),
                p,
            )
        });
        v.into_iter()
            .map(|r| RouteInfo {
                route: r.spec.clone(),
                scope: r.scope,
                mtu: r.spec.mtu.unwrap_or_else(|| self.port_mtu(r.port)),
                origin: if r.auto_of.is_some() {
                    "auto"
                } else {
                    "static"
                }
                .to_string(),
            })
            .collect()
    }

    /// Static neighbours, optionally of one device (none for an unknown one).
    pub fn static_neigh(&self, dev: Option<&str>) -> Vec<NeighInfo> {
        self.neigh
            .iter()
            .filter(|n| dev.is_none_or(|d| self.port_name(n.port) == d))
            .map(|n| NeighInfo {
                addr: n.addr.to_ip(),
                mac: n.mac.to_string(),
                dev: self.port_name(n.port).to_string(),
                state: "static".to_string(),
            })
            .collect()
    }

    /// Takes a counter sample of every service and dest at `now_ms` (call it
    /// every second); rates are computed over the window [`RateWindow`] keeps.
    pub fn sample_rates(&mut self, now_ms: u64) {
        let mut old = std::mem::take(&mut self.rates);
        let mut next: HashMap<RateObj, RateWindow> = HashMap::with_capacity(old.len());
        let mut take = |o: RateObj, v: CounterValues| {
            let mut w = old.remove(&o).unwrap_or_default();
            w.push(now_ms, v);
            next.insert(o, w);
        };
        for s in &self.services {
            take(RateObj::Svc(s.id), s.stats.sum());
            for d in &s.dests {
                take(RateObj::Dest(d.dest.id), d.dest.stats.sum());
            }
        }
        // Objects deleted since the last sample are dropped with the old map.
        self.rates = next;
    }
}

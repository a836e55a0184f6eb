//! The link-layer multicast groups each taken-over port must receive so
//! that neighbour solicitations for rvs's IPv6 addresses reach it on a NIC
//! that filters multicast ([`rvs_io::mcast`]).
//!
//! An interface address is solicited on its port (a VLAN device's on the
//! port under it: the filter sees the MAC, not the tag). A VIP or a local
//! address is answered on whichever port the neighbour asks, so its group
//! is joined on every port; a few groups too many cost a few frames, a
//! missing one costs the address.

use std::collections::BTreeSet;
use std::net::Ipv6Addr;

use rvs_core::addr::{Addr, Mac};
use rvs_core::service::ServiceKey as CoreKey;
use rvs_io::mcast::Group;

use super::Store;

fn v6(a: &Addr) -> Option<Ipv6Addr> {
    (!a.is_v4()).then(|| Ipv6Addr::from(a.0))
}

impl Store {
    /// The groups each taken-over port must receive, by port index: none
    /// for a port without IPv6; else the all-nodes group and the
    /// solicited-node group of every IPv6 address rvs answers there.
    pub fn multicast_groups(&self) -> Vec<BTreeSet<Group>> {
        let mut by_port: Vec<BTreeSet<Group>> = self
            .listened()
            .iter()
            .map(|set| set.iter().map(group_of).collect())
            .collect();
        self.bond_groups_to_slaves(&mut by_port);
        by_port
    }
}

/// The link-layer group of an IPv6 multicast address (RFC 2464 section 7).
fn group_of(a: &Ipv6Addr) -> Group {
    let o = a.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A port's MLD listener as the store wants it ([`Store::mld_ports`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MldPort {
    /// The port's name (`dpdk0`, a bond's).
    pub name: String,
    /// Its MAC: the source of its Reports.
    pub mac: Mac,
    /// Its first link-local address, the Reports' source (none: `::`).
    pub link_local: Option<Ipv6Addr>,
    /// The IPv6 groups it listens to (all-nodes included: the listener
    /// leaves it out of its Reports).
    pub groups: BTreeSet<Ipv6Addr>,
}

impl Store {
    /// The IPv6 groups each port listens to, by port index: none for a
    /// port without IPv6; else all-nodes and the solicited-node group of
    /// every IPv6 address rvs answers there (a VLAN device's on the port
    /// under it). Bond slaves listen to none themselves.
    fn listened(&self) -> Vec<BTreeSet<Ipv6Addr>> {
        let mut by_port = vec![BTreeSet::new(); self.ports.len()];
        let mut everywhere = BTreeSet::new();
        for e in &self.addrs {
            let Some(a) = v6(&e.addr) else { continue };
            let parent = match self.vlan_at(e.port) {
                Some(v) => v.parent,
                None => e.port,
            };
            if let Some(set) = by_port.get_mut(usize::from(parent)) {
                set.insert(solicited_node_addr(&a));
            }
        }
        for s in &self.services {
            if let CoreKey::Vs { vip, .. } = &s.key {
                everywhere.extend(v6(vip).map(|a| solicited_node_addr(&a)));
            }
            for l in &s.laddrs {
                everywhere.extend(v6(&l.laddr.addr).map(|a| solicited_node_addr(&a)));
            }
        }
        for (i, set) in by_port.iter_mut().enumerate() {
            if self.ports[i].slave_of.is_some() {
                continue;
            }
            set.extend(everywhere.iter().copied());
            if !set.is_empty() {
                set.insert(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1));
            }
        }
        by_port
    }

    /// Each port's MLD listener (bond slaves' are empty: their bond
    /// reports), by port index.
    pub fn mld_ports(&self) -> Vec<MldPort> {
        self.listened()
            .into_iter()
            .enumerate()
            .map(|(i, groups)| {
                let link_local = self.addrs.iter().find_map(|e| {
                    let a = v6(&e.addr).filter(|a| a.segments()[0] & 0xffc0 == 0xfe80)?;
                    (usize::from(e.port) == i).then_some(a)
                });
                MldPort {
                    name: self.ports[i].name.clone(),
                    mac: self.ports[i].mac,
                    link_local,
                    groups,
                }
            })
            .collect()
    }
}

/// `ff02::1:ffXX:XXXX`, the solicited-node group of `a` (RFC 4291 section 2.7.1).
fn solicited_node_addr(a: &Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::from([
        0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

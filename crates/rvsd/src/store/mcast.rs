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

use rvs_core::addr::Addr;
use rvs_core::service::ServiceKey as CoreKey;
use rvs_io::mcast::{solicited_node, Group, ALL_NODES};

use super::Store;

fn v6(a: &Addr) -> Option<Ipv6Addr> {
    (!a.is_v4()).then(|| Ipv6Addr::from(a.0))
}

impl Store {
    /// The groups each taken-over port must receive, by port index: none
    /// for a port without IPv6; else the all-nodes group and the
    /// solicited-node group of every IPv6 address rvs answers there.
    pub fn multicast_groups(&self) -> Vec<BTreeSet<Group>> {
        let mut by_port = vec![BTreeSet::new(); self.ports.len()];
        let mut everywhere = BTreeSet::new();
        for e in &self.addrs {
            let Some(a) = v6(&e.addr) else { continue };
            let parent = match self.vlan_at(e.port) {
                Some(v) => v.parent,
                None => e.port,
            };
            if let Some(set) = by_port.get_mut(usize::from(parent)) {
                set.insert(solicited_node(&a));
            }
        }
        for s in &self.services {
            if let CoreKey::Vs { vip, .. } = &s.key {
                everywhere.extend(v6(vip).map(|a| solicited_node(&a)));
            }
            for l in &s.laddrs {
                everywhere.extend(v6(&l.laddr.addr).map(|a| solicited_node(&a)));
            }
        }
        for set in &mut by_port {
            set.extend(everywhere.iter().copied());
            if !set.is_empty() {
                set.insert(ALL_NODES);
            }
        }
        self.bond_groups_to_slaves(&mut by_port);
        by_port
    }
}

//! Bonding devices in the store: a bond is a port after the taken-over ones
//! (before the VLAN slots); its slaves stay ports (their queues, counters)
//! but take no configuration of their own.

use std::collections::BTreeSet;

use rvs_api::ApiError;
use rvs_io::mcast::Group;

use super::{invalid, Store};

impl Store {
    /// Refuses `dev` when it is a bond's slave: "dpdk0 is a slave of bond0".
    pub(super) fn refuse_slave(&self, dev: &str) -> Result<(), ApiError> {
        let Some(p) = self.ports.iter().find(|p| p.name == dev) else {
            return Ok(());
        };
        match p.slave_of.and_then(|b| self.ports.get(usize::from(b))) {
            Some(b) => Err(invalid(format!(
                "{dev} is a slave of {}: configure {} instead",
                b.name, b.name
            ))),
            None => Ok(()),
        }
    }

    /// A bond's multicast groups are its slaves' (the NICs filter, not the bond).
    pub(super) fn bond_groups_to_slaves(&self, by_port: &mut [BTreeSet<Group>]) {
        for (i, p) in self.ports.iter().enumerate() {
            let Some(b) = p.slave_of else { continue };
            if let Some(groups) = by_port.get(usize::from(b)).cloned() {
                if let Some(set) = by_port.get_mut(i) {
                    set.extend(groups);
                }
            }
        }
    }
}

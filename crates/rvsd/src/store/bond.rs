//! Bonding devices in the store: a bond is a port after the taken-over ones
//! (before the VLAN slots); its slaves stay ports (their queues, counters)
//! but take no configuration of their own.

use rvs_api::ApiError;

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
}

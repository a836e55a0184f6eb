//! The ports' multicast memberships ([`rvs_io::mcast`]), kept in step with
//! the store: after every change each taken-over interface holds exactly
//! the groups [`Store::multicast_groups`] names. They go with the process
//! (the kernel drops a socket's memberships when it closes), also on a
//! crash; in a hot upgrade both processes hold them until the old exits.

use std::sync::{Arc, Mutex};

use super::mld::MldLinks;

use rvs_io::mcast::Membership;

use crate::store::{PortDef, Store};

/// One membership socket per taken-over interface, opened when the port
/// first needs a group.
pub(super) struct Groups {
    ports: Mutex<Vec<(String, Option<Membership>)>>,
    /// The MLD listener, told the same groups ([`super::mld`]).
    mld: Arc<MldLinks>,
}

impl Groups {
    /// Holds nothing yet.
    pub fn new(defs: &[PortDef], mld: Arc<MldLinks>) -> Groups {
        Groups {
            ports: Mutex::new(defs.iter().map(|d| (d.iface.clone(), None)).collect()),
            mld,
        }
    }

    /// Joins and leaves what the store asks now. A failure is logged and
    /// leaves that port's other groups as they were: the address still
    /// works where the NIC does not filter (and always on veth).
    pub fn sync(&self, store: &Store) {
        self.mld.sync(store);
        let Ok(mut ports) = self.ports.lock() else {
            return;
        };
        for ((iface, m), want) in ports.iter_mut().zip(store.multicast_groups()) {
            if m.is_none() && want.is_empty() {
                continue;
            }
            if m.is_none() {
                match Membership::open(iface) {
                    Ok(n) => *m = Some(n),
                    Err(e) => {
                        tracing::warn!("multicast groups of {iface}: {e}");
                        continue;
                    }
                }
            }
            if let Some(m) = m.as_mut() {
                if let Err(e) = m.set(&want) {
                    tracing::warn!("multicast groups: {e}");
                }
            }
        }
    }
}

//! VLAN devices (`rvsip vlan add|del|show`, DPVS's `dpip vlan`): logical
//! ports on a taken-over port, with a tag. Their port index is the number of
//! taken-over ports plus their slot, stable while they exist (connections
//! and neighbours keep port indexes); a deleted device leaves its slot empty
//! for the next one.
//!
//! A device is deleted only when nothing uses it: `rvsip vlan del` is
//! refused with the list of its addresses, routes, static neighbours, local
//! addresses and SNAT matches (DPVS frees the device under them instead,
//! leaving them pointing at nothing).

use rvs_api::{ApiError, VlanProto, VlanSel, VlanSpec};
use rvs_core::addr::PortId;
use rvs_core::service::ServiceKey as CoreKey;
use rvs_core::snapshot::{PortConf, Vlan};

use super::{exists, invalid, not_found, Store};

/// Most VLAN devices rvsd holds (each has a kni device).
pub const MAX_VLANS: usize = 256;

/// Longest interface name Linux takes (IFNAMSIZ less the NUL).
const IFNAME_MAX: usize = 15;

/// A VLAN device as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanDef {
    /// Its name (`dpdk0.100`).
    pub name: String,
    /// The taken-over port it sits on.
    pub parent: PortId,
    /// Tag protocol.
    pub proto: VlanProto,
    /// VLAN ID.
    pub id: u16,
}

impl Store {
    /// The VLAN devices by slot (port index = ports + slot); `None`: a free slot.
    pub fn vlans(&self) -> &[Option<VlanDef>] {
        &self.vlans
    }

    /// The VLAN device of port `port`, if it is one.
    pub(super) fn vlan_at(&self, port: PortId) -> Option<&VlanDef> {
        let slot = usize::from(port).checked_sub(self.ports.len())?;
        self.vlans.get(slot)?.as_ref()
    }

    /// The port index of the VLAN device `dev`.
    pub(super) fn vlan_port(&self, dev: &str) -> Option<PortId> {
        let slot = self
            .vlans
            .iter()
            .position(|v| v.as_ref().is_some_and(|v| v.name == dev))?;
        PortId::try_from(self.ports.len() + slot).ok()
    }

    /// The pipeline's view of the VLAN devices, after the taken-over ports.
    pub(super) fn vlan_port_confs(&self) -> Vec<PortConf> {
        self.vlans
            .iter()
            .map(|v| match v {
                Some(v) => {
                    let p = &self.ports[usize::from(v.parent)];
                    PortConf {
                        name: v.name.clone(),
                        mac: p.mac,
                        mtu: p.mtu,
                        kni: p.kni,
                        vlan: Some(Vlan {
                            parent: v.parent,
                            tpid: v.proto.tpid(),
                            vid: v.id,
                        }),
                    }
                }
                // A free slot: no frame arrives there; one sent there (a
                // connection of a deleted device) finds no queue.
                None => PortConf {
                    name: String::new(),
                    mac: rvs_core::addr::Mac::ZERO,
                    mtu: 0,
                    kni: false,
                    vlan: None,
                },
            })
            .collect()
    }

    pub(super) fn add_vlan(&mut self, spec: &VlanSpec) -> Result<(), ApiError> {
        let what = format!("VLAN {} on {}", spec.id, spec.link);
        if !(1..=4094).contains(&spec.id) {
            return Err(invalid(format!(
                "cannot add {what}: invalid VLAN ID {} (1 to 4094)",
                spec.id
            )));
        }
        if self.vlan_port(&spec.link).is_some() {
            return Err(invalid(format!(
                "cannot add {what}: {} is a VLAN device, and VLAN devices do not stack",
                spec.link
            )));
        }
        self.refuse_slave(&spec.link)
            .map_err(|e| invalid(format!("cannot add {what}: {}", e.message)))?;
        let Some(parent) = self.ports.iter().position(|p| p.name == spec.link) else {
            return Err(not_found(format!(
                "cannot add {what}: no such device {} (link)",
                spec.link
            )));
        };
        let parent = parent as PortId;
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| format!("{}.{}", spec.link, spec.id));
        if name.is_empty() || name.len() + ".kni".len() > IFNAME_MAX || name.contains('/') {
            return Err(invalid(format!(
                "cannot add {what}: name \"{name}\" does not make a kni device name ({name}.kni: at most {IFNAME_MAX} bytes, no '/')"
            )));
        }
        if self.ports.iter().any(|p| p.name == name) || self.vlan_port(&name).is_some() {
            return Err(exists(format!("device {name} already exists")));
        }
        if let Some(v) = self
            .vlans
            .iter()
            .flatten()
            .find(|v| v.parent == parent && v.proto == spec.proto && v.id == spec.id)
        {
            return Err(exists(format!(
                "cannot add {name}: {} is already VLAN {} ({}) on {}",
                v.name,
                spec.id,
                spec.proto.name(),
                spec.link
            )));
        }
        let def = VlanDef {
            name,
            parent,
            proto: spec.proto,
            id: spec.id,
        };
        match self.vlans.iter().position(Option::is_none) {
            Some(slot) => self.vlans[slot] = Some(def),
            None if self.vlans.len() < MAX_VLANS => self.vlans.push(Some(def)),
            None => {
                return Err(invalid(format!(
                    "cannot add {what}: rvsd holds at most {MAX_VLANS} VLAN devices"
                )))
            }
        }
        Ok(())
    }

    /// The slot of the device `sel` names (by name, or link, protocol and ID).
    fn vlan_slot(&self, sel: &VlanSel) -> Result<usize, ApiError> {
        let found = match (&sel.name, &sel.link, sel.id) {
            (Some(n), _, _) => self
                .vlans
                .iter()
                .position(|v| v.as_ref().is_some_and(|v| &v.name == n))
                .ok_or_else(|| not_found(format!("no such VLAN device {n}")))?,
            (None, Some(l), Some(id)) => {
                let parent = self.ports.iter().position(|p| &p.name == l);
                let proto = sel.proto.unwrap_or_default();
                self.vlans
                    .iter()
                    .position(|v| {
                        v.as_ref().is_some_and(|v| {
                            Some(usize::from(v.parent)) == parent && v.id == id && v.proto == proto
                        })
                    })
                    .ok_or_else(|| not_found(format!("no VLAN {id} ({}) on {l}", proto.name())))?
            }
            _ => return Err(invalid("name a VLAN device, or give link DEV and id ID")),
        };
        Ok(found)
    }

    pub(super) fn del_vlan(&mut self, sel: &VlanSel) -> Result<(), ApiError> {
        let slot = self.vlan_slot(sel)?;
        let port = (self.ports.len() + slot) as PortId;
        let name = self.vlans[slot]
            .as_ref()
            .map_or("", |v| &v.name)
            .to_string();
        let users = self.port_users(port, &name);
        if !users.is_empty() {
            return Err(invalid(format!(
                "cannot delete {name}: it is in use by {}; delete them first",
                users.join(", ")
            )));
        }
        self.vlans[slot] = None;
        while self.vlans.last().is_some_and(Option::is_none) {
            self.vlans.pop();
        }
        Ok(())
    }

    /// What refers to port `port` (named `name`), as a user reads it.
    fn port_users(&self, port: PortId, name: &str) -> Vec<String> {
        let mut u = Vec::new();
        for a in self.addrs.iter().filter(|a| a.port == port) {
            u.push(format!("address {}/{}", a.addr, a.plen));
        }
        for r in self
            .routes
            .iter()
            .filter(|r| r.port == port && r.auto_of.is_none())
        {
            u.push(format!("route {}/{}", r.spec.prefix, r.spec.plen));
        }
        for n in self.neigh.iter().filter(|n| n.port == port) {
            u.push(format!("neighbour {}", n.addr));
        }
        for s in &self.services {
            for l in s.laddrs.iter().filter(|l| l.dev == name) {
                u.push(format!("local address {} of {}", l.laddr.addr, s.spec.key));
            }
            if let CoreKey::Match(m) = &s.key {
                let on = |x: &Option<(String, PortId)>| x.as_ref().is_some_and(|(_, p)| *p == port);
                if on(&m.iif) || on(&m.oif) {
                    u.push(format!("service {}", s.spec.key));
                }
            }
        }
        u
    }

    /// `rvsip vlan show`: the devices `sel` selects (all when it is empty).
    pub fn list_vlans(&self, sel: &VlanSel) -> Result<Vec<VlanSpec>, ApiError> {
        if let Some(l) = &sel.link {
            if !self.ports.iter().any(|p| &p.name == l) {
                return Err(not_found(format!("no such device {l}")));
            }
        }
        let v: Vec<VlanSpec> = self
            .vlans
            .iter()
            .flatten()
            .filter(|v| sel.name.as_ref().is_none_or(|n| *n == v.name))
            .filter(|v| {
                sel.link
                    .as_ref()
                    .is_none_or(|l| *l == self.ports[usize::from(v.parent)].name)
            })
            .filter(|v| sel.proto.is_none_or(|p| p == v.proto))
            .filter(|v| sel.id.is_none_or(|id| id == v.id))
            .map(|v| VlanSpec {
                name: Some(v.name.clone()),
                link: self.ports[usize::from(v.parent)].name.clone(),
                proto: v.proto,
                id: v.id,
            })
            .collect();
        if let (Some(n), true) = (&sel.name, v.is_empty()) {
            return Err(not_found(format!("no such VLAN device {n}")));
        }
        Ok(v)
    }
}

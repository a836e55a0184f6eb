//! `[[vlan]]`: VLAN devices made at start, as `rvsip vlan add` makes them.

use rvs_api::{VlanProto, VlanSpec};
use serde::Deserialize;

use super::{BondSection, Netif};

/// A VLAN device (`[[vlan]]`): `link` a `[[netif]]` name, `id` 1 to 4094,
/// `proto` "802.1q" (the default) or "802.1ad", `name` by default
/// `<link>.<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlanSection {
    /// Device name (default `<link>.<id>`).
    pub name: Option<String>,
    /// The `[[netif]]` it sits on.
    pub link: String,
    /// Tag protocol.
    #[serde(default)]
    pub proto: VlanProto,
    /// VLAN ID.
    pub id: u16,
}

impl VlanSection {
    /// The request that makes it.
    pub fn spec(&self) -> VlanSpec {
        VlanSpec {
            name: self.name.clone(),
            link: self.link.clone(),
            proto: self.proto,
            id: self.id,
        }
    }
}

/// Checks the `[[vlan]]` sections against the ports: the key at fault and
/// what is wrong (the store checks the rest when rvsd applies them).
pub(super) fn check_vlans(
    vlans: &[VlanSection],
    netif: &[Netif],
    bonds: &[BondSection],
) -> Result<(), (usize, &'static str, String)> {
    for (i, v) in vlans.iter().enumerate() {
        if let Some(b) = bonds.iter().find(|b| b.slaves.contains(&v.link)) {
            return Err((
                i,
                "link",
                format!(
                    "vlan link = \"{}\": {} is a slave of {}",
                    v.link, v.link, b.name
                ),
            ));
        }
        if !netif.iter().any(|n| n.name == v.link) && !bonds.iter().any(|b| b.name == v.link) {
            return Err((
                i,
                "link",
                format!(
                    "vlan link = \"{}\": no [[netif]] or [[bond]] has that name (VLAN devices sit on ports, not on VLAN devices)",
                    v.link
                ),
            ));
        }
        if !(1..=4094).contains(&v.id) {
            return Err((i, "id", format!("vlan id = {}: must be 1..=4094", v.id)));
        }
    }
    Ok(())
}

//! VLAN devices (`rvsip vlan add|del|show`, DPVS's `dpip vlan`).

use serde::{Deserialize, Serialize};

/// The tag protocol of a VLAN device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum VlanProto {
    /// IEEE 802.1Q (TPID 0x8100), dpip's default (`802.1q`, `vlan`).
    #[default]
    #[serde(rename = "802.1q")]
    Dot1q,
    /// IEEE 802.1ad (TPID 0x88a8; `802.1ad`, `QinQ`).
    #[serde(rename = "802.1ad")]
    Dot1ad,
}

impl VlanProto {
    /// The name dpip shows (`802.1q`, `802.1ad`).
    pub fn name(self) -> &'static str {
        match self {
            VlanProto::Dot1q => "802.1q",
            VlanProto::Dot1ad => "802.1ad",
        }
    }

    /// The tag protocol identifier on the wire.
    pub fn tpid(self) -> u16 {
        match self {
            VlanProto::Dot1q => 0x8100,
            VlanProto::Dot1ad => 0x88a8,
        }
    }
}

/// A VLAN device (`rvsip vlan add [NAME] link DEV [proto P] id ID`), and
/// what `rvsip vlan show` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VlanSpec {
    /// Device name; `None` when adding: `<link>.<id>`, as DPVS names it.
    pub name: Option<String>,
    /// The device it sits on (a taken-over port, never a VLAN device).
    pub link: String,
    /// Tag protocol.
    pub proto: VlanProto,
    /// VLAN ID, 1 to 4094.
    pub id: u16,
}

/// Which VLAN devices `rvsip vlan del` and `rvsip vlan show` mean: by name,
/// or by link (and protocol and ID); nothing given shows them all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VlanSel {
    /// Device name.
    pub name: Option<String>,
    /// The device they sit on.
    pub link: Option<String>,
    /// Tag protocol (`None`: any; `del` takes 802.1q then).
    pub proto: Option<VlanProto>,
    /// VLAN ID.
    pub id: Option<u16>,
}

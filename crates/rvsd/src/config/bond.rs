//! `[[bond]]`: bonding devices made at start (DPVS's `bonding bond0 { ... }`),
//! modes 0 (balance-rr) and 4 (802.3ad with LACP). Not changeable at run time.

use serde::Deserialize;

use super::{BackendKind, Netif};

/// Most slaves a bond takes (the distributing set is a 32-bit mask; 16 as Linux's default).
pub const MAX_SLAVES: usize = 16;

/// LACPDU rate rvs asks of its partner (`lacp_rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LacpRate {
    /// Every second (short timeout, 3 s).
    #[default]
    Fast,
    /// Every 30 seconds (long timeout, 90 s).
    Slow,
}

/// The transmit hash of mode 4 (Linux's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum XmitHashConf {
    /// Source and destination MACs.
    #[serde(rename = "layer2")]
    Layer2,
    /// MACs and IP addresses.
    #[serde(rename = "layer2+3")]
    Layer23,
    /// IP addresses and ports.
    #[default]
    #[serde(rename = "layer3+4")]
    Layer34,
}

impl XmitHashConf {
    /// The name as configured.
    pub fn name(self) -> &'static str {
        match self {
            XmitHashConf::Layer2 => "layer2",
            XmitHashConf::Layer23 => "layer2+3",
            XmitHashConf::Layer34 => "layer3+4",
        }
    }
}

fn yes() -> bool {
    true
}
fn miimon() -> u32 {
    100
}
fn prio() -> u16 {
    65535
}

/// A bonding device (`[[bond]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BondSection {
    /// The port name the tools use (`bond0`).
    pub name: String,
    /// 0 (balance-rr) or 4 (802.3ad).
    pub mode: u8,
    /// `[[netif]]` names, 1 to [`MAX_SLAVES`], same backend, in no other bond.
    pub slaves: Vec<String>,
    /// The slave whose MAC the bond takes (default: the first).
    pub primary: Option<String>,
    /// Create the `<name>.kni` exception-path device.
    #[serde(default = "yes")]
    pub kni: bool,
    /// LACPDU rate asked of the partner (mode 4).
    #[serde(default)]
    pub lacp_rate: LacpRate,
    /// Send LACPDUs unasked (mode 4).
    #[serde(default = "yes")]
    pub lacp_active: bool,
    /// Transmit hash (mode 4).
    #[serde(default)]
    pub xmit_hash: XmitHashConf,
    /// LACP system priority (mode 4).
    #[serde(default = "prio")]
    pub system_priority: u16,
    /// Without an aggregatable partner, one slave carries traffic alone (mode 4).
    #[serde(default = "yes")]
    pub lacp_fallback: bool,
    /// Carrier poll period in milliseconds.
    #[serde(default = "miimon")]
    pub miimon_ms: u32,
}

impl BondSection {
    /// The primary slave's name.
    pub fn primary(&self) -> &str {
        self.primary
            .as_deref()
            .or(self.slaves.first().map(String::as_str))
            .unwrap_or("")
    }
}

/// Checks the `[[bond]]` sections against the ports: the bond at fault, the
/// key and what is wrong.
pub(super) fn check_bonds(
    bonds: &[BondSection],
    netif: &[Netif],
    xdp_fast_path: bool,
) -> Result<(), (usize, &'static str, String)> {
    for (i, b) in bonds.iter().enumerate() {
        let name = &b.name;
        if netif.iter().any(|n| &n.name == name) || bonds[..i].iter().any(|o| &o.name == name) {
            return Err((i, "name", format!("bond name = \"{name}\" is taken")));
        }
        if name.is_empty() || name.len() + ".kni".len() > 15 || name.contains('/') {
            return Err((
                i,
                "name",
                format!("bond name = \"{name}\": 1 to 11 bytes, no '/' (it names {name}.kni)"),
            ));
        }
        if b.mode != 0 && b.mode != 4 {
            return Err((
                i,
                "mode",
                format!(
                    "bond mode = {}: rvs has mode 0 (balance-rr) and mode 4 (802.3ad) only",
                    b.mode
                ),
            ));
        }
        if b.slaves.is_empty() || b.slaves.len() > MAX_SLAVES {
            return Err((
                i,
                "slaves",
                format!("bond {name}: 1 to {MAX_SLAVES} slaves"),
            ));
        }
        let mut backend = None;
        for (k, s) in b.slaves.iter().enumerate() {
            let Some(n) = netif.iter().find(|n| &n.name == s) else {
                return Err((
                    i,
                    "slaves",
                    format!("bond {name}: slave \"{s}\" is no [[netif]] name"),
                ));
            };
            if b.slaves[..k].contains(s) {
                return Err((i, "slaves", format!("bond {name}: slave {s} appears twice")));
            }
            if let Some(o) = bonds[..i].iter().find(|o| o.slaves.contains(s)) {
                return Err((
                    i,
                    "slaves",
                    format!("bond {name}: {s} is already a slave of {}", o.name),
                ));
            }
            if backend.is_some_and(|be: BackendKind| be != n.backend) {
                return Err((
                    i,
                    "slaves",
                    format!("bond {name}: the slaves must share one backend ({s} differs)"),
                ));
            }
            backend = Some(n.backend);
        }
        if !b.slaves.iter().any(|s| s == b.primary()) {
            return Err((
                i,
                "primary",
                format!(
                    "bond {name}: primary = \"{}\" is not one of its slaves",
                    b.primary()
                ),
            ));
        }
        if !(10..=10_000).contains(&b.miimon_ms) {
            return Err((
                i,
                "miimon_ms",
                format!(
                    "bond {name}: miimon_ms = {}: must be 10..=10000",
                    b.miimon_ms
                ),
            ));
        }
        if xdp_fast_path {
            return Err((
                i,
                "name",
                format!("bond {name}: the XDP fast path does not handle bonds (fast_path = \"xdp\" in [pipeline]); leave it off"),
            ));
        }
    }
    Ok(())
}

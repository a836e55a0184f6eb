//! The bond port model at start: each `[[bond]]` becomes a port after the
//! taken-over ones (index `netifs + i`), with its primary's MAC and the
//! slaves' smallest MTU; its slaves are marked (`slave_of`, no kni) and get
//! the bond's MAC once taken over.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::config::Config;
use crate::daemon::DaemonError;
use crate::store::PortDef;
use crate::takeover::Takeover;

use super::{Bond, BondShared, Bonds, SlaveState};

/// Marks the slaves in `defs` (the taken-over ports, in configuration
/// order) and returns the bonds' port definitions and the bonds.
pub fn plan(conf: &Config, defs: &mut [PortDef]) -> Result<(Vec<PortDef>, Bonds), DaemonError> {
    let phys = defs.len();
    let mut bond_defs = Vec::new();
    let mut list = Vec::new();
    for (i, b) in conf.bond.iter().enumerate() {
        let port = (phys + i) as u16;
        let idx = |s: &str| {
            defs.iter()
                .position(|d| d.name == s)
                .ok_or_else(|| DaemonError::port(&b.name, format!("[[bond]]: no [[netif]] {s}")))
        };
        let slaves: Vec<usize> = b.slaves.iter().map(|s| idx(s)).collect::<Result<_, _>>()?;
        let primary = &defs[idx(b.primary())?];
        let mac = primary.mac;
        let mtu = slaves.iter().map(|&s| defs[s].mtu).min().unwrap_or(1500);
        let shared = BondShared::default();
        let all = if slaves.len() >= 32 {
            u32::MAX
        } else {
            (1u32 << slaves.len()) - 1
        };
        // Mode 0 sends on every slave until the monitor says otherwise;
        // mode 4 on none until LACP agrees.
        if b.mode == 0 {
            shared.collecting.store(all, Relaxed);
            shared.distributing.store(all, Relaxed);
        }
        if let Ok(mut s) = shared.slaves.lock() {
            *s = vec![SlaveState::default(); slaves.len()];
        }
        list.push(Arc::new(Bond {
            port,
            conf: b.clone(),
            slaves: slaves.iter().map(|&s| s as u16).collect(),
            names: b.slaves.clone(),
            ifaces: slaves.iter().map(|&s| defs[s].iface.clone()).collect(),
            macs: slaves.iter().map(|&s| defs[s].mac.0).collect(),
            mac: mac.0,
            shared: Arc::new(shared),
        }));
        bond_defs.push(PortDef {
            name: b.name.clone(),
            iface: String::new(),
            mac,
            mtu,
            kni: b.kni,
            slave_of: None,
        });
        for &s in &slaves {
            defs[s].slave_of = Some(port);
            defs[s].kni = false;
        }
    }
    Ok((bond_defs, Bonds::new(phys, list)))
}

/// Gives every slave its bond's MAC (recorded in its takeover state first,
/// so that exit and `rvsd --release` put the old one back).
pub fn set_macs(bonds: &Bonds, takeovers: &mut [Takeover]) -> Result<(), DaemonError> {
    for b in &bonds.list {
        for (k, &s) in b.slaves.iter().enumerate() {
            if b.macs[k] == b.mac {
                continue;
            }
            let Some(t) = takeovers.get_mut(usize::from(s)) else {
                continue;
            };
            let mac = rvs_core::addr::Mac(b.mac).to_string();
            t.set_mac(&mac).map_err(|e| {
                DaemonError::port(&b.names[k], format!("slave of {}: {e}", b.conf.name))
            })?;
            tracing::info!(
                "{} ({}): MAC {mac} of {}",
                b.names[k],
                b.ifaces[k],
                b.conf.name
            );
        }
    }
    Ok(())
}

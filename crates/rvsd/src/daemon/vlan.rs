//! VLAN devices on the daemon's side: their kni devices (`dpdk0.100.kni`,
//! made and removed as `rvsip vlan add|del` change the store) and their
//! lines in `rvsip link show`.

use std::sync::Arc;

use rvs_api::LinkInfo;
use rvs_core::snapshot::Vlan;
use rvs_io::Tap;

use crate::runtime::{KniDev, Taps};
use crate::store::Store;

/// Brings the kni devices in step with the store's VLAN devices: a new one
/// gets its TAP (the parent's MAC and MTU), a deleted one's goes. A TAP that
/// cannot be made is logged (the device then has no kernel path).
pub(super) fn sync_taps(taps: &Taps, store: &Store) {
    let cur = taps.load_full();
    let phys = store.ports().len();
    let mut next: Vec<Option<Arc<KniDev>>> = cur.iter().take(phys).cloned().collect();
    next.resize(phys, None);
    for (slot, v) in store.vlans().iter().enumerate() {
        let port = phys + slot;
        let want = v.as_ref().and_then(|v| {
            let parent = store.ports().get(usize::from(v.parent))?;
            parent.kni.then_some((v, parent))
        });
        let Some((v, parent)) = want else {
            next.push(None);
            continue;
        };
        let vlan = Vlan {
            parent: v.parent,
            tpid: v.proto.tpid(),
            vid: v.id,
        };
        let name = format!("{}.kni", v.name);
        let kept = cur
            .get(port)
            .cloned()
            .flatten()
            .filter(|k| k.vlan == Some(vlan) && k.tap.lock().is_ok_and(|t| t.name() == name));
        if kept.is_some() {
            next.push(kept);
            continue;
        }
        // The old device of this slot (if any) must go before its name is
        // taken again: drop it from the list first.
        match Tap::open(&name, parent.mac.0, parent.mtu) {
            Ok(t) => {
                tracing::info!(
                    "exception path {name} up (VLAN {} on {})",
                    v.id,
                    parent.name
                );
                next.push(Some(Arc::new(KniDev {
                    tap: std::sync::Mutex::new(t),
                    vlan: Some(vlan),
                })));
            }
            Err(e) => {
                tracing::error!("VLAN device {}: cannot create {name}: {e}", v.name);
                next.push(None);
            }
        }
    }
    while next.len() > phys && next.last().is_some_and(Option::is_none) {
        next.pop();
    }
    let changed = next.len() != cur.len()
        || next.iter().zip(cur.iter()).any(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
            (None, None) => false,
            _ => true,
        });
    if changed {
        taps.store(Arc::new(next));
    }
}

/// Appends the VLAN devices to `rvsip link show`'s list: the parent's MAC,
/// MTU and state; their frames are counted on the parent.
pub fn vlan_links(store: &Store, links: &mut Vec<LinkInfo>) {
    let phys = store.ports().len();
    for (slot, v) in store.vlans().iter().enumerate() {
        let Some(v) = v else { continue };
        let Some(parent) = links.iter().find(|l| l.index == v.parent).cloned() else {
            continue;
        };
        links.push(LinkInfo {
            index: (phys + slot) as u16,
            name: v.name.clone(),
            iface: parent.iface.clone(),
            backend: format!("vlan {} id {} on {}", v.proto.name(), v.id, parent.name),
            mac: parent.mac.clone(),
            mtu: parent.mtu,
            up: parent.up,
            kni: parent.kni.is_some().then(|| format!("{}.kni", v.name)),
            stats: Default::default(),
            bond: None,
            slave_of: None,
        });
    }
}

//! `rvsip link show`: ports with the counters the workers publish.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rvs_api::{LinkInfo, LinkStats};
use rvs_core::stats::DropCounters;

use crate::control::LinkReporter;
use crate::runtime::PortCounters;
use crate::store::PortDef;

/// A reporter that sums every worker's counters per port (no worker is
/// asked anything).
pub(super) fn reporter(
    defs: Vec<PortDef>,
    backends: Vec<String>,
    counters: Vec<Arc<Vec<PortCounters>>>,
    drops: Vec<Arc<DropCounters>>,
) -> LinkReporter {
    Box::new(move || {
        defs.iter()
            .enumerate()
            .map(|(i, d)| LinkInfo {
                index: i as u16,
                name: d.name.clone(),
                iface: d.iface.clone(),
                backend: backends.get(i).cloned().unwrap_or_default(),
                mac: d.mac.to_string(),
                mtu: d.mtu,
                up: std::fs::read_to_string(format!("/sys/class/net/{}/operstate", d.iface))
                    .is_ok_and(|s| operstate_up(&s)),
                kni: d.kni.then(|| format!("{}.kni", d.name)),
                stats: port_stats(i, &counters, &drops),
            })
            .collect()
    })
}

/// Whether an interface with this `operstate` carries traffic: "up", or
/// "unknown" for drivers that report no carrier; not "down", nor
/// "lowerlayerdown" (a veth whose peer is down), "notpresent", "dormant".
fn operstate_up(s: &str) -> bool {
    matches!(s.trim(), "up" | "unknown")
}

fn port_stats(
    port: usize,
    counters: &[Arc<Vec<PortCounters>>],
    drops: &[Arc<DropCounters>],
) -> LinkStats {
    let mut s = LinkStats::default();
    let g = |x: &AtomicU64| x.load(Ordering::Relaxed);
    for pc in counters.iter().filter_map(|c| c.get(port)) {
        s.rx_packets += g(&pc.rx_packets);
        s.rx_bytes += g(&pc.rx_bytes);
        s.rx_dropped += g(&pc.rx_dropped);
        s.tx_packets += g(&pc.tx_packets);
        s.tx_bytes += g(&pc.tx_bytes);
        s.tx_dropped += g(&pc.tx_dropped);
        s.kni_packets += g(&pc.kni_packets);
    }
    // Pipeline drops are per worker, not per port: shown on every port.
    for d in drops {
        for (name, n) in d.nonzero() {
            match s.drops.iter_mut().find(|(x, _)| x == name) {
                Some(e) => e.1 += n,
                None => s.drops.push((name.to_string(), n)),
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::operstate_up;

    #[test]
    fn a_port_without_carrier_is_down() {
        assert!(operstate_up("up\n"));
        assert!(operstate_up("unknown\n"));
        assert!(!operstate_up("down\n"));
        assert!(!operstate_up("lowerlayerdown\n"));
        assert!(!operstate_up("notpresent\n"));
    }
}

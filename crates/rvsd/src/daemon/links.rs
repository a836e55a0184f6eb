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
                bond: None,
                slave_of: None,
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
    let workers: Vec<LinkStats> = counters
        .iter()
        .zip(drops)
        .map(|(c, d)| worker_stats(c.get(port), d))
        .collect();
    let mut s = LinkStats::default();
    for w in &workers {
        s.rx_packets += w.rx_packets;
        s.rx_bytes += w.rx_bytes;
        s.rx_dropped += w.rx_dropped;
        s.tx_packets += w.tx_packets;
        s.tx_bytes += w.tx_bytes;
        s.tx_dropped += w.tx_dropped;
        s.kni_packets += w.kni_packets;
        s.rx_full_bursts += w.rx_full_bursts;
        s.fast_packets += w.fast_packets;
        // Pipeline drops are per worker, not per port: shown on every port.
        for (name, n) in &w.drops {
            match s.drops.iter_mut().find(|(x, _)| x == name) {
                Some(e) => e.1 += n,
                None => s.drops.push((name.clone(), *n)),
            }
        }
    }
    s.workers = workers;
    s
}

/// One worker's counters of a port (zeros when it has no queue there) and
/// its pipeline drops.
fn worker_stats(pc: Option<&PortCounters>, drops: &DropCounters) -> LinkStats {
    let g = |f: fn(&PortCounters) -> &AtomicU64| pc.map_or(0, |c| f(c).load(Ordering::Relaxed));
    LinkStats {
        rx_packets: g(|c| &c.rx_packets),
        rx_bytes: g(|c| &c.rx_bytes),
        rx_dropped: g(|c| &c.rx_dropped),
        tx_packets: g(|c| &c.tx_packets),
        tx_bytes: g(|c| &c.tx_bytes),
        tx_dropped: g(|c| &c.tx_dropped),
        kni_packets: g(|c| &c.kni_packets),
        rx_full_bursts: g(|c| &c.rx_full_bursts),
        fast_packets: g(|c| &c.fast_packets),
        drops: drops
            .nonzero()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
        workers: Vec::new(),
    }
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

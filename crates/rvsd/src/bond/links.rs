//! Bonds in `rvsip link show`: a slave's row names its bond; each bond has
//! a row after the taken-over ports, its counters the sum of its slaves'.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use rvs_api::{BondInfo, BondSlaveInfo, LinkInfo, LinkStats};

use super::Bonds;
use crate::control::LinkReporter;

/// `inner` (the taken-over ports) with the bonds added.
pub fn wrap(inner: LinkReporter, bonds: Arc<Bonds>) -> LinkReporter {
    if bonds.list.is_empty() {
        return inner;
    }
    Box::new(move || {
        let mut links = inner();
        add_bonds(&bonds, &mut links);
        links
    })
}

fn add_bonds(bonds: &Bonds, links: &mut Vec<LinkInfo>) {
    for b in &bonds.list {
        let dist = b.shared.distributing.load(Relaxed);
        let rows = b
            .shared
            .slaves
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        let mut stats = LinkStats::default();
        let mut slaves = Vec::new();
        for (k, &s) in b.slaves.iter().enumerate() {
            let row = rows.get(k).cloned().unwrap_or_default();
            if let Some(l) = links.get_mut(usize::from(s)) {
                l.slave_of = Some(b.conf.name.clone());
                // Its interface carries the bond's MAC now.
                l.mac = rvs_core::addr::Mac(b.mac).to_string();
                add(&mut stats, &l.stats);
            }
            slaves.push(BondSlaveInfo {
                name: b.names[k].clone(),
                iface: b.ifaces[k].clone(),
                up: row.up,
                distributing: k < 32 && dist & (1 << k) != 0,
                lacp: row.lacp,
            });
        }
        let partner = slaves
            .iter()
            .filter(|s| s.distributing)
            .find_map(|s| s.lacp.as_ref())
            .map(|l| (l.partner.system.clone(), l.partner.key));
        links.push(LinkInfo {
            index: b.port,
            name: b.conf.name.clone(),
            iface: String::new(),
            backend: match b.conf.mode {
                4 => "bond 802.3ad".into(),
                _ => "bond balance-rr".into(),
            },
            mac: rvs_core::addr::Mac(b.mac).to_string(),
            mtu: links
                .iter()
                .filter(|l| b.slaves.contains(&l.index))
                .map(|l| l.mtu)
                .min()
                .unwrap_or(1500),
            up: dist != 0,
            kni: b.conf.kni.then(|| format!("{}.kni", b.conf.name)),
            stats,
            bond: Some(BondInfo {
                mode: b.conf.mode,
                xmit_hash: b.conf.xmit_hash.name().into(),
                lacp_rate: match b.conf.lacp_rate {
                    crate::config::LacpRate::Fast => "fast".into(),
                    crate::config::LacpRate::Slow => "slow".into(),
                },
                distributing: dist.count_ones(),
                partner,
                no_slave: b.shared.no_slave.load(Relaxed),
                not_collecting: b.shared.not_collecting.load(Relaxed),
                slaves,
            }),
            slave_of: None,
        });
    }
}

fn add(s: &mut LinkStats, o: &LinkStats) {
    s.rx_packets += o.rx_packets;
    s.rx_bytes += o.rx_bytes;
    s.rx_dropped += o.rx_dropped;
    s.tx_packets += o.tx_packets;
    s.tx_bytes += o.tx_bytes;
    s.tx_dropped += o.tx_dropped;
    s.kni_packets += o.kni_packets;
}

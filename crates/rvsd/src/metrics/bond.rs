//! Bond metrics: which slaves distribute, and the bonds' drops.

use rvs_api::LinkInfo;

use super::{lbl, Families};

impl Families {
    /// `rvs_bond_slave_distributing{bond,slave}` (1: frames are sent on it)
    /// and `rvs_bond_drops{bond,reason}`.
    pub(super) fn bonds(&mut self, links: &[LinkInfo]) {
        for l in links {
            let Some(b) = &l.bond else { continue };
            for s in &b.slaves {
                self.gauge(
                    "rvs_bond_slave_distributing",
                    "Whether the bond sends on this slave (1) or not (0)",
                    lbl(&[("bond", l.name.clone()), ("slave", s.name.clone())]),
                    u64::from(s.distributing),
                );
            }
            for (why, n) in [
                ("bond_no_slave", b.no_slave),
                ("bond_not_collecting", b.not_collecting),
            ] {
                self.counter(
                    "rvs_bond_drops",
                    "Frames a bond dropped, by reason",
                    lbl(&[("bond", l.name.clone()), ("reason", why.to_string())]),
                    n,
                );
            }
        }
    }
}

/// A mode 4 bond with dpdk1 distributing, dpdk2 not (for the tests).
#[cfg(test)]
pub(super) fn sample_bond() -> LinkInfo {
    use rvs_api::{BondInfo, BondSlaveInfo};
    let slave = |n: &str, d: bool| BondSlaveInfo {
        name: n.into(),
        iface: format!("lan-{n}"),
        up: true,
        distributing: d,
        lacp: None,
    };
    LinkInfo {
        index: 2,
        name: "bond1".into(),
        iface: String::new(),
        backend: "bond 802.3ad".into(),
        mac: "02:00:00:00:00:01".into(),
        mtu: 1500,
        up: true,
        kni: None,
        stats: Default::default(),
        bond: Some(BondInfo {
            mode: 4,
            xmit_hash: "layer3+4".into(),
            lacp_rate: "fast".into(),
            distributing: 1,
            partner: None,
            no_slave: 0,
            not_collecting: 6,
            slaves: vec![slave("dpdk1", true), slave("dpdk2", false)],
        }),
        slave_of: None,
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::{render, Scrape};

    #[test]
    fn a_bond_shows_which_slaves_distribute() {
        let sc = Scrape {
            services: Vec::new(),
            addrs: Vec::new(),
            links: vec![super::sample_bond()],
            drops: Vec::new(),
            conns: Vec::new(),
            capacity: 0,
            uoa: Vec::new(),
            icmp: Vec::new(),
            mld: Vec::new(),
        };
        let text = render(&sc);
        for want in [
            "rvs_bond_slave_distributing{bond=\"bond1\",slave=\"dpdk1\"} 1",
            "rvs_bond_slave_distributing{bond=\"bond1\",slave=\"dpdk2\"} 0",
            "rvs_bond_drops_total{bond=\"bond1\",reason=\"bond_not_collecting\"} 6",
        ] {
            assert!(text.contains(want), "{want} in:\n{text}");
        }
    }
}

//! Bonds in `rvsip link show`: the bond's mode and aggregator, then a row
//! per slave with its LACP machines (mode 4).

use std::fmt::Write;

use rvs_api::{lacp_state_names, BondInfo, LacpEnd, LinkInfo};

/// A bond's first two lines:
/// `3: bond0: mtu 1500 mode 802.3ad xmit_hash layer3+4 lacp_rate fast`,
/// `    UP kni bond0.kni  slaves dpdk0 dpdk2  aggregator partner ... (2 of 2 distributing)`.
pub fn head(out: &mut String, l: &LinkInfo, b: &BondInfo) {
    let _ = write!(
        out,
        "{}: {}: mtu {} ",
        u32::from(l.index) + 1,
        l.name,
        l.mtu
    );
    match b.mode {
        4 => {
            let _ = writeln!(
                out,
                "mode 802.3ad xmit_hash {} lacp_rate {}",
                b.xmit_hash, b.lacp_rate
            );
        }
        _ => out.push_str("mode balance-rr\n"),
    }
    out.push_str(if l.up { "    UP" } else { "    DOWN" });
    if let Some(k) = &l.kni {
        let _ = write!(out, " kni {k}");
    }
    let names: Vec<&str> = b.slaves.iter().map(|s| s.name.as_str()).collect();
    let _ = write!(out, "  slaves {}  ", names.join(" "));
    if let Some((sys, key)) = &b.partner {
        let _ = write!(out, "aggregator partner {sys} key {key} ");
    }
    let _ = writeln!(
        out,
        "({} of {} distributing)",
        b.distributing,
        b.slaves.len()
    );
}

/// The slave rows, after the bond's `addr` line.
pub fn slaves(out: &mut String, b: &BondInfo) {
    for s in &b.slaves {
        let _ = write!(
            out,
            "    slave {} ({}) {}",
            s.name,
            s.iface,
            if s.up { "UP" } else { "DOWN" }
        );
        match &s.lacp {
            None => {
                let _ = writeln!(
                    out,
                    " {}",
                    if s.distributing { "ACTIVE" } else { "INACTIVE" }
                );
            }
            Some(l) => {
                let _ = writeln!(out, " mux {} rx {}", l.mux, l.rx);
                end(out, "actor  ", &l.actor, false);
                end(out, "partner", &l.partner, true);
                let _ = writeln!(
                    out,
                    "        lacpdu rx {} tx {} bad {}",
                    l.pdu_rx, l.pdu_tx, l.pdu_bad
                );
            }
        }
    }
    if b.no_slave + b.not_collecting > 0 {
        let _ = writeln!(
            out,
            "    drops: bond_no_slave {} bond_not_collecting {}",
            b.no_slave, b.not_collecting
        );
    }
}

fn end(out: &mut String, what: &str, e: &LacpEnd, system: bool) {
    let _ = write!(out, "        {what} ");
    if system {
        let _ = write!(out, "{} ", e.system);
    }
    let _ = writeln!(
        out,
        "prio {} port {} key {} state {:#04x} <{}>",
        e.system_priority,
        e.port,
        e.key,
        e.state,
        lacp_state_names(e.state)
    );
}

#[cfg(test)]
mod tests {
    use rvs_api::{BondInfo, BondSlaveInfo, LacpEnd, LinkInfo, SlaveLacpInfo};

    use crate::ip::format::format_links;

    #[test]
    fn a_mode4_bond_shows_its_aggregator_and_each_slave_s_lacp_state() {
        let end = |sys: &str, port| LacpEnd {
            system: sys.into(),
            system_priority: 65535,
            port,
            port_priority: 255,
            key: 4,
            state: 0x3f,
        };
        let slave = |name: &str, port| BondSlaveInfo {
            name: name.into(),
            iface: format!("lan{port}"),
            up: true,
            distributing: true,
            lacp: Some(SlaveLacpInfo {
                mux: "COLLECTING_DISTRIBUTING".into(),
                rx: "CURRENT".into(),
                actor: end("02:00:00:00:00:01", port),
                partner: end("02:00:00:00:01:00", port + 1),
                pdu_rx: 120,
                pdu_tx: 121,
                pdu_bad: 0,
            }),
        };
        let l = LinkInfo {
            index: 2,
            name: "bond0".into(),
            iface: String::new(),
            backend: "bond 802.3ad".into(),
            mac: "02:00:00:00:00:01".into(),
            mtu: 1500,
            up: true,
            kni: Some("bond0.kni".into()),
            stats: Default::default(),
            bond: Some(BondInfo {
                mode: 4,
                xmit_hash: "layer3+4".into(),
                lacp_rate: "fast".into(),
                distributing: 2,
                partner: Some(("02:00:00:00:01:00".into(), 4)),
                no_slave: 0,
                not_collecting: 0,
                slaves: vec![slave("dpdk0", 1), slave("dpdk2", 2)],
            }),
            slave_of: None,
        };
        let out = format_links(&[l], false);
        for want in [
            "3: bond0: mtu 1500 mode 802.3ad xmit_hash layer3+4 lacp_rate fast\n",
            "    UP kni bond0.kni  slaves dpdk0 dpdk2  aggregator partner 02:00:00:00:01:00 key 4 (2 of 2 distributing)\n",
            "    slave dpdk0 (lan1) UP mux COLLECTING_DISTRIBUTING rx CURRENT\n",
            "        actor   prio 65535 port 1 key 4 state 0x3f <ACTIVE,FAST,AGG,SYNC,COLL,DIST>\n",
            "        partner 02:00:00:00:01:00 prio 65535 port 2 key 4 state 0x3f <ACTIVE,FAST,AGG,SYNC,COLL,DIST>\n",
            "        lacpdu rx 120 tx 121 bad 0\n",
        ] {
            assert!(out.contains(want), "{want:?} in:\n{out}");
        }
    }
}

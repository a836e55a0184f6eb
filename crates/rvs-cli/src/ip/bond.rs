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

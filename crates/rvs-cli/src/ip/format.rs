//! dpip's output shapes: `addr show`, `route show`, `neigh show`, `link show [-s]`.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvs_api::{AddrInfo, LinkInfo, LinkStats, NeighInfo, RouteInfo, Scope};

/// The scope word dpip prints and `route add ... scope` accepts.
pub fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::Host => "host",
        Scope::Link => "link",
        Scope::Global => "global",
        Scope::KniHost => "kni_host",
    }
}

fn family(a: &IpAddr) -> &'static str {
    if a.is_ipv4() {
        "inet"
    } else {
        "inet6"
    }
}

/// dpip prints an absent gateway or source as the unspecified address of the family.
fn or_any(a: Option<IpAddr>, like: &IpAddr) -> IpAddr {
    a.unwrap_or(if like.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    })
}

/// `rvsip addr show`, as dpip:
/// `inet 10.0.0.100/32 scope global dpdk1[ standby]` then
/// `     valid_lft forever preferred_lft forever[ sa_used U sa_free F sa_miss M]`.
pub fn format_addrs(addrs: &[AddrInfo]) -> String {
    let mut out = String::new();
    for a in addrs {
        let _ = writeln!(
            out,
            "{} {}/{} scope {} {}{}",
            family(&a.addr),
            a.addr,
            a.plen,
            scope_name(a.scope),
            a.dev,
            if a.standby { " standby" } else { "" }
        );
        out.push_str("     valid_lft forever preferred_lft forever");
        if let Some((used, free, miss)) = a.sapool {
            let _ = write!(out, " sa_used {used} sa_free {free} sa_miss {miss}");
        }
        out.push('\n');
    }
    out
}

/// `rvsip route show`, as dpip:
/// `inet 10.0.0.0/16 via 0.0.0.0 src 0.0.0.0 dev dpdk1 mtu 1500 tos 0 scope link metric 0 proto auto`.
pub fn format_routes(routes: &[RouteInfo]) -> String {
    let mut out = String::new();
    for r in routes {
        let s = &r.route;
        let _ = writeln!(
            out,
            "{} {}/{} via {} src {} dev {} mtu {} tos 0 scope {} metric {} proto {}",
            family(&s.prefix),
            s.prefix,
            s.plen,
            or_any(s.via, &s.prefix),
            or_any(s.src, &s.prefix),
            s.dev,
            r.mtu,
            scope_name(r.scope),
            s.metric,
            r.origin
        );
    }
    out
}

/// `rvsip neigh show`, in dpip's column layout (without its per-core column:
/// rvs neighbours are shared by all workers).
pub fn format_neigh(neigh: &[NeighInfo]) -> String {
    let mut out = String::new();
    for n in neigh {
        let line = format!(
            "ip: {:<48} mac: {}   state: {:<12}  dev: {}",
            n.addr.to_string(),
            n.mac,
            n.state.to_uppercase(),
            n.dev
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A row of dpip's `-s` counter tables: 20-column cells after four spaces.
fn cells(out: &mut String, vals: &[String]) {
    let mut line = String::from("    ");
    for v in vals {
        let _ = write!(line, "{v:<20}");
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// `rvsip link show`, dpip's shape with the backend named:
/// `1: dpdk0: mtu 1500 backend af_packet iface eth1`, `    UP kni dpdk0.kni`,
/// `    addr 02:00:00:00:00:10`; with `stats`, the counters and drop reasons.
/// The number is the port index plus one, as dpip numbers ports from 1.
pub fn format_links(links: &[LinkInfo], stats: bool) -> String {
    let mut out = String::new();
    for l in links {
        if let Some(b) = &l.bond {
            super::bond::head(&mut out, l, b);
            let _ = writeln!(out, "    addr {}", l.mac);
            super::bond::slaves(&mut out, b);
        } else {
            link_head(&mut out, l);
        }
        if stats {
            let s = &l.stats;
            let head = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
            cells(
                &mut out,
                &head(&["ipackets", "opackets", "ibytes", "obytes"]),
            );
            cells(
                &mut out,
                &[s.rx_packets, s.tx_packets, s.rx_bytes, s.tx_bytes].map(|n| n.to_string()),
            );
            cells(&mut out, &head(&["idropped", "odropped", "kni-packets"]));
            cells(
                &mut out,
                &[s.rx_dropped, s.tx_dropped, s.kni_packets].map(|n| n.to_string()),
            );
            if s.fast_packets > 0 {
                cells(&mut out, &head(&["fast-packets"]));
                cells(&mut out, &[s.fast_packets.to_string()]);
            }
            if !s.drops.is_empty() {
                out.push_str("    drops:\n");
                for (why, n) in &s.drops {
                    let _ = writeln!(out, "        {why}: {n}");
                }
            }
            worker_rows(&mut out, &s.workers);
        }
    }
    out
}

/// A taken-over port's first three lines (a bond's slave says so).
fn link_head(out: &mut String, l: &LinkInfo) {
    let _ = writeln!(
        out,
        "{}: {}: mtu {} backend {} iface {}",
        u32::from(l.index) + 1,
        l.name,
        l.mtu,
        l.backend,
        l.iface
    );
    out.push_str(if l.up { "    UP" } else { "    DOWN" });
    if let Some(k) = &l.kni {
        let _ = write!(out, " kni {k}");
    }
    if let Some(b) = &l.slave_of {
        let _ = write!(out, " slave of {b}");
    }
    out.push('\n');
    let _ = writeln!(out, "    addr {}", l.mac);
}

/// The per-worker rows of `rvsip -s link show`: the counters' two tables
/// with a worker column first (DPVS's per-queue statistics are per lcore),
/// then each worker's pipeline drops.
fn worker_rows(out: &mut String, workers: &[LinkStats]) {
    if workers.is_empty() {
        return;
    }
    let row = |out: &mut String, first: String, vals: [String; 4]| {
        let mut line = format!("    {first:<10}");
        for v in vals {
            let _ = write!(line, "{v:<20}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    let head = |v: [&str; 4]| v.map(str::to_string);
    row(
        out,
        "worker".into(),
        head(["ipackets", "opackets", "ibytes", "obytes"]),
    );
    for (i, w) in workers.iter().enumerate() {
        let v = [w.rx_packets, w.tx_packets, w.rx_bytes, w.tx_bytes];
        row(out, i.to_string(), v.map(|n| n.to_string()));
    }
    row(
        out,
        "worker".into(),
        head(["idropped", "odropped", "kni-packets", "full-bursts"]),
    );
    for (i, w) in workers.iter().enumerate() {
        let v = [w.rx_dropped, w.tx_dropped, w.kni_packets, w.rx_full_bursts];
        row(out, i.to_string(), v.map(|n| n.to_string()));
    }
    for (i, w) in workers
        .iter()
        .enumerate()
        .filter(|(_, w)| !w.drops.is_empty())
    {
        let d: Vec<String> = w
            .drops
            .iter()
            .map(|(why, n)| format!("{why}: {n}"))
            .collect();
        let _ = writeln!(out, "    worker {i} drops: {}", d.join(", "));
    }
}

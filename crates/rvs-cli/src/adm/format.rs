//! ipvsadm's output, byte for byte where ipvsadm defines it: column widths,
//! the two spaces after the protocol, the padded last columns, the K/M/G
//! abbreviations of `--stats`/`--rate`, and DPVS's `-G` table.

use std::cmp::Ordering;
use std::fmt::Write;
use std::net::IpAddr;

use rvs_api::{
    ConnInfo, ConnOrigin, DestInfo, Forward, LaddrGroup, LimitInfo, Proto, ServiceInfo, ServiceKey,
    StatusInfo,
};

use super::{ListOpts, ListView};

/// `addr:port`, IPv6 in brackets, as ipvsadm prints addresses numerically.
fn addr_port(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The service column of `-L`: `TCP  10.0.0.100:80` (two spaces, as ipvsadm)
/// or `MATCH proto=...`.
fn service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Vs { proto, vip, port } => {
            let p = if *proto == Proto::Tcp { "TCP" } else { "UDP" };
            format!("{p}  {}", addr_port(vip, *port))
        }
        ServiceKey::Match(m) => format!("MATCH {m}"),
    }
}

/// The service as `-S` writes it: `-t 10.0.0.100:80` or `-H match`.
pub(super) fn service_rule(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Vs { proto, vip, port } => {
            let p = if *proto == Proto::Tcp { "-t" } else { "-u" };
            format!("{p} {}", addr_port(vip, *port))
        }
        ServiceKey::Match(m) => format!("-H {m}"),
    }
}

fn forward_switch(f: Forward) -> &'static str {
    match f {
        Forward::Fnat => "-b",
        Forward::Dr => "-g",
        Forward::Nat => "-m",
        Forward::Tunnel => "-i",
        Forward::Snat => "-J",
    }
}

/// ipvsadm's ordering: by protocol, address family, address, port; DPVS
/// match services after the address-keyed ones.
fn cmp_keys(a: &ServiceKey, b: &ServiceKey) -> Ordering {
    match (a, b) {
        (
            ServiceKey::Vs {
                proto: pa,
                vip: va,
                port: xa,
            },
            ServiceKey::Vs {
                proto: pb,
                vip: vb,
                port: xb,
            },
        ) => {
            let p = |p: &Proto| if *p == Proto::Tcp { 0 } else { 1 };
            (p(pa), va, xa).cmp(&(p(pb), vb, xb))
        }
        (ServiceKey::Vs { .. }, ServiceKey::Match(_)) => Ordering::Less,
        (ServiceKey::Match(_), ServiceKey::Vs { .. }) => Ordering::Greater,
        (ServiceKey::Match(x), ServiceKey::Match(y)) => x.cmp(y),
    }
}

fn sorted_services(services: &[ServiceInfo], sort: bool) -> Vec<&ServiceInfo> {
    let mut v: Vec<&ServiceInfo> = services.iter().collect();
    if sort {
        v.sort_by(|a, b| cmp_keys(&a.spec.key, &b.spec.key));
    }
    v
}

fn sorted_dests(dests: &[DestInfo], sort: bool) -> Vec<&DestInfo> {
    let mut v: Vec<&DestInfo> = dests.iter().collect();
    if sort {
        v.sort_by_key(|d| (d.spec.addr, d.spec.port));
    }
    v
}

/// One number of `--stats`/`--rate` with its leading space, as ipvsadm's
/// `print_largenum`: nine columns, abbreviated to K/M/G/T from 100 million on
/// unless `exact`.
pub fn large_num(i: u64, exact: bool) -> String {
    if exact {
        let len = i.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        return format!("{i:>width$}");
    }
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

/// The output of `-L` (plain, `--stats` or `--rate`). `status` is given when
/// the whole table is listed: ipvsadm prints the version banner only then.
pub fn format_list(
    status: Option<&StatusInfo>,
    services: &[ServiceInfo],
    opts: &ListOpts,
) -> String {
    format_list_limits(status, services, opts, &[])
}

/// [`format_list`] with the services' limits: `--rate` shows each limited
/// service's limits, and what they refused, under its line.
pub fn format_list_limits(
    status: Option<&StatusInfo>,
    services: &[ServiceInfo],
    opts: &ListOpts,
    limits: &[LimitInfo],
) -> String {
    let mut out = String::new();
    if let Some(s) = status {
        // The table size is the connection capacity of all workers together.
        let size = s.conn_capacity.saturating_mul(s.workers.max(1) as usize);
        let _ = writeln!(out, "IP Virtual Server version {} (size={size})", s.version);
    }
    match opts.view {
        ListView::Stats => {
            let _ = writeln!(
                out,
                "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
                "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
            );
        }
        ListView::Rate => {
            let _ = writeln!(
                out,
                "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
                "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
            );
        }
        ListView::Table | ListView::Conns => {
            out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
            out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
        }
    }
    let ex = opts.exact;
    for svc in sorted_services(services, opts.sort) {
        let name = service_name(&svc.spec.key);
        match opts.view {
            ListView::Stats => {
                let s = &svc.stats;
                let _ = write!(out, "{name:<33}");
                for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                    out.push_str(&large_num(n, ex));
                }
                out.push('\n');
            }
            ListView::Rate => {
                let r = &svc.rates;
                let _ = write!(out, "{name:<33}");
                for n in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
                    out.push_str(&large_num(n, ex));
                }
                out.push('\n');
                if let Some(l) = limits.iter().find(|l| l.key == svc.spec.key) {
                    super::limits::rate_lines(&mut out, l);
                }
            }
            ListView::Table | ListView::Conns => {
                let _ = write!(out, "{name} {}", svc.spec.sched);
                if !svc.spec.sched_flags.is_empty() {
                    let _ = write!(out, " ({})", svc.spec.sched_flags.join(","));
                }
                if let Some(t) = svc.spec.persistence {
                    let _ = write!(out, " persistent {t}");
                }
                if svc.spec.synproxy == Some(true) {
                    // Where DPVS's ipvsadm shows it: after persistence.
                    out.push_str(" synproxy");
                }
                if let Some(v) = svc.spec.proxy_protocol {
                    let _ = write!(out, " proxy-protocol {}", v.name());
                }
                out.push('\n');
            }
        }
        for d in sorted_dests(&svc.dests, opts.sort) {
            let dname = addr_port(&d.spec.addr, d.spec.port);
            match opts.view {
                ListView::Stats => {
                    let s = &d.stats;
                    let _ = write!(out, "  -> {dname:<28}");
                    for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                        out.push_str(&large_num(n, ex));
                    }
                    out.push('\n');
                }
                ListView::Rate => {
                    let r = &d.rates;
                    let _ = write!(
                        out,
                        "  -> {dname:<28} {:>8} {:>8} {:>8}",
                        r.cps, r.inpps, r.outpps
                    );
                    out.push_str(&large_num(r.inbps, ex));
                    out.push_str(&large_num(r.outbps, ex));
                    out.push('\n');
                }
                ListView::Table | ListView::Conns => {
                    let _ = writeln!(
                        out,
                        "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                        d.spec.forward.column(),
                        d.spec.weight,
                        d.active,
                        d.inactive
                    );
                }
            }
        }
    }
    out
}

/// The output of `-L -c`, as ipvsadm's `-lnc`.
pub fn format_conns(conns: &[ConnInfo]) -> String {
    let mut out = String::from("IPVS connection entries\n");
    let _ = writeln!(
        out,
        "pro expire {:<11} {:<18} {:<18} destination",
        "state", "source", "virtual"
    );
    out.push_str(&format_conn_lines(conns));
    out
}

/// The entry lines of `-L -c` (no title), one per connection. A foreign
/// connection (installed from an active sync peer, through the peer's local
/// address) ends with `foreign`; other synced connections look like local
/// ones, as on an LVS backup (the API tells them apart: `origin`).
pub fn format_conn_lines(conns: &[ConnInfo]) -> String {
    let mut out = String::new();
    for c in conns {
        let dest = addr_port(&c.dest.0, c.dest.1);
        let _ = write!(
            out,
            "{:<3} {:02}:{:02}  {:<11} {:<18} {:<18} ",
            c.proto,
            c.expire_s / 60,
            c.expire_s % 60,
            c.state,
            addr_port(&c.client.0, c.client.1),
            addr_port(&c.virt.0, c.virt.1),
        );
        let _ = match c.origin {
            ConnOrigin::Local | ConnOrigin::Synced => writeln!(out, "{dest}"),
            ConnOrigin::Foreign => writeln!(out, "{dest:<18} foreign"),
        };
    }
    out
}

/// The output of `-G`, as DPVS's ipvsadm (trailing padding included). The
/// title is printed with the first service, or always when one service was
/// asked for (`title_always`).
pub fn format_laddrs(groups: &[LaddrGroup], title_always: bool) -> String {
    let mut out = String::new();
    if title_always || !groups.is_empty() {
        let _ = writeln!(
            out,
            "{:<20} {:<8} {:<20} {:<10} {:<10}",
            "VIP:VPORT", "TOTAL", "SNAT_IP", "CONFLICTS", "CONNS"
        );
    }
    for g in groups {
        let name = match &g.key {
            ServiceKey::Vs { vip, port, .. } => addr_port(vip, *port),
            ServiceKey::Match(m) => m.clone(),
        };
        let _ = writeln!(out, "{name:<20} {:<8} ", g.laddrs.len());
        for l in &g.laddrs {
            let line = format!(
                "{:<20} {:<8} {:<20} {:<10} {:<10}",
                "",
                "",
                l.addr.to_string(),
                l.conflicts,
                l.conns
            );
            if l.standby {
                // Owned by the master of the pair, not announced here.
                let _ = writeln!(out, "{line} standby");
            } else {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}

/// The output of `-S`: ipvsadm's rules (`-A ... -s rr [-p N]`, `-a ... -r
/// addr:port -b -w N [-x N] [-y N]`) plus DPVS local addresses
/// (`--add-laddr ... -z IP -F dev`), each service followed by its servers and
/// local addresses, in `-L`'s order; `-R` reads it back.
pub fn format_save(services: &[ServiceInfo], laddrs: &[LaddrGroup]) -> String {
    let mut out = String::new();
    for svc in sorted_services(services, true) {
        let rule = service_rule(&svc.spec.key);
        let _ = write!(out, "-A {rule} -s {}", svc.spec.sched);
        if !svc.spec.sched_flags.is_empty() {
            let _ = write!(out, " --sched-flags {}", svc.spec.sched_flags.join(","));
        }
        if let Some(t) = svc.spec.persistence {
            let _ = write!(out, " -p {t}");
        }
        if svc.spec.synproxy == Some(true) {
            out.push_str(" -j enable");
        }
        if let Some(v) = svc.spec.proxy_protocol {
            let _ = write!(out, " --proxy-protocol {}", v.name());
        }
        out.push('\n');
        for d in sorted_dests(&svc.dests, true) {
            let s = &d.spec;
            let _ = write!(
                out,
                "-a {rule} -r {} {} -w {}",
                addr_port(&s.addr, s.port),
                forward_switch(s.forward),
                s.weight
            );
            if s.u_threshold != 0 {
                let _ = write!(out, " -x {}", s.u_threshold);
            }
            if s.l_threshold != 0 {
                let _ = write!(out, " -y {}", s.l_threshold);
            }
            out.push('\n');
        }
        for g in laddrs.iter().filter(|g| g.key == svc.spec.key) {
            for l in &g.laddrs {
                let _ = writeln!(out, "--add-laddr {rule} -z {} -F {}", l.addr, l.dev);
            }
        }
    }
    out
}

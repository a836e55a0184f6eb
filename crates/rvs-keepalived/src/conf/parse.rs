//! The top level: dispatch of the root keywords, `global_defs`, the DPVS
//! address groups, and the checks that need the whole file (names that
//! refer to groups, duplicate definitions).

use std::collections::HashMap;

use super::parse_lvs::{virtual_server, virtual_server_group};
use super::parse_vrrp::{garp_keyword, vrrp_instance, vrrp_script, vrrp_sync_group, GarpOpts};
use super::tree::Stmt;
use super::types::*;
use super::values::{Ctx, RefKind};
use super::{ConfError, Diagnostic, Loc};

/// Root keywords of stock keepalived that rvs-keepalived does not implement.
const UNSUPPORTED_ROOT: &[&str] = &[
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "garp_group",
    "vrrp_track_file",
    "track_file",
    "vrrp_track_process",
    "bfd_instance",
    "linkbeat_interfaces",
    "net_namespace",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "child_wait_time",
    "SSL",
    "tunnel_group",
];

/// global_defs keywords keepalived has and rvs-keepalived ignores.
const UNSUPPORTED_GLOBAL: &[&str] = &[
    "script_user",
    "enable_script_security",
    "vrrp_strict",
    "vrrp_skip_check_adv_addr",
    "vrrp_check_unicast_src",
    "vrrp_iptables",
    "vrrp_ipsets",
    "lvs_flush",
    "dynamic_interfaces",
    "default_interface",
    "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert",
    "vrrp_priority",
    "checker_priority",
    "vrrp_no_swap",
    "checker_no_swap",
    "vrrp_rt_priority",
    "checker_rt_priority",
    "snmp_socket",
    "enable_snmp_keepalived",
    "enable_snmp_checker",
    "enable_snmp_rfc",
    "enable_traps",
    "enable_dbus",
    "notify_fifo",
    "vrrp_notify_fifo",
    "lvs_notify_fifo",
];

/// The typed configuration out of the statement tree.
pub(crate) fn config(stmts: &[Stmt], warnings: &mut Vec<Diagnostic>) -> Result<Config, ConfError> {
    let mut ctx = Ctx {
        warnings,
        refs: Vec::new(),
    };
    let mut cfg = Config::default();
    // global_defs first: instances take their defaults from it wherever it is.
    let mut garp = GarpOpts::default();
    for s in stmts.iter().filter(|s| s.kw() == "global_defs") {
        global_defs(s, &mut cfg.global, &mut garp, &mut ctx)?;
    }
    cfg.global.garp = garp.resolve(&GarpOpts::default());
    for s in stmts {
        root_stmt(s, &mut cfg, &garp, &mut ctx)?;
    }
    check_refs(&cfg, &ctx)?;
    check_names(&cfg)?;
    super::parse_vrrp::check_tracking(&mut cfg, &mut ctx);
    Ok(cfg)
}

fn root_stmt(s: &Stmt, cfg: &mut Config, garp: &GarpOpts, ctx: &mut Ctx) -> Result<(), ConfError> {
    match s.kw() {
        "global_defs" => {}
        "local_address_group" => cfg.laddr_groups.push(laddr_group(s)?),
        "deny_address_group" => cfg.deny_address_groups.push(addr_group(s)?),
        "allow_address_group" => cfg.allow_address_groups.push(addr_group(s)?),
        "vrrp_script" => cfg.vrrp_scripts.push(vrrp_script(s, ctx)?),
        "vrrp_instance" => {
            let v = vrrp_instance(s, cfg.global.vrrp_version, garp, ctx)?;
            cfg.vrrp_instances.push(v);
        }
        "vrrp_sync_group" => cfg.vrrp_sync_groups.push(vrrp_sync_group(s, ctx)?),
        "virtual_server_group" => {
            let g = virtual_server_group(s, ctx)?;
            cfg.virtual_server_groups.push(g);
        }
        "virtual_server" => {
            if let Some(vs) = virtual_server(s, ctx)? {
                cfg.virtual_servers.push(vs);
            }
        }
        kw if UNSUPPORTED_ROOT.contains(&kw) => ctx.unsupported(s),
        _ => ctx.unknown(s, "the top level"),
    }
    Ok(())
}

fn global_defs(
    s: &Stmt,
    g: &mut GlobalDefs,
    garp: &mut GarpOpts,
    ctx: &mut Ctx,
) -> Result<(), ConfError> {
    for st in s.body()? {
        if let Some(kw) = st.kw().strip_prefix("vrrp_") {
            if garp_keyword(st, kw, garp)? {
                continue;
            }
        }
        match st.kw() {
            "router_id" => g.router_id = Some(st.arg(1)?.to_string()),
            "vrrp_version" => g.vrrp_version = st.num(1, 2, 3)? as u8,
            "vrrp_mcast_group4" => match st.ip(1)? {
                std::net::IpAddr::V4(a) if a.is_multicast() => g.vrrp_mcast_group4 = a,
                _ => return Err(st.err("needs an IPv4 multicast address")),
            },
            "vrrp_mcast_group6" => match st.ip(1)? {
                std::net::IpAddr::V6(a) if a.is_multicast() => g.vrrp_mcast_group6 = a,
                _ => return Err(st.err("needs an IPv6 multicast address")),
            },
            "notification_email" => {
                let body = st.block.as_deref().unwrap_or_default();
                g.notification_email = body.iter().map(|e| e.rest(0)).collect();
            }
            "notification_email_from" => g.notification_email_from = Some(st.rest(1)),
            "smtp_server" => g.smtp_server = Some(st.rest(1)),
            "smtp_connect_timeout" => g.smtp_connect_timeout = Some(st.rest(1)),
            "lvs_sync_daemon" => g.lvs_sync_daemon = Some(lvs_sync_daemon(st, ctx)?),
            "smtp_helo_name" | "smtp_alert" | "smtp_alert_vrrp" | "smtp_alert_checker"
            | "no_email_faults" => {}
            kw if UNSUPPORTED_GLOBAL.contains(&kw) => ctx.unsupported(st),
            _ => ctx.unknown(st, "global_defs"),
        }
    }
    Ok(())
}

/// `lvs_sync_daemon IFACE INSTANCE [id N] [maxlen N] [port P] [ttl T] [group IP]`.
fn lvs_sync_daemon(st: &Stmt, ctx: &mut Ctx) -> Result<LvsSyncDaemon, ConfError> {
    let mut d = LvsSyncDaemon {
        interface: st.arg(1)?.to_string(),
        instance: st.arg(2)?.to_string(),
        syncid: 0,
        port: None,
        ttl: None,
        group: None,
        loc: st.loc.clone(),
    };
    let mut i = 3;
    while i < st.words.len() {
        match st.words[i].as_str() {
            "id" => d.syncid = st.num(i + 1, 0, 255)? as u8,
            "maxlen" => {
                st.num(i + 1, 1, 65507)?;
            }
            "port" => d.port = Some(st.port(i + 1)?),
            "ttl" => d.ttl = Some(st.num(i + 1, 1, 255)? as u8),
            "group" => match st.ip(i + 1)? {
                std::net::IpAddr::V4(a) if a.is_multicast() => d.group = Some(a),
                _ => return Err(st.err("group needs an IPv4 multicast address")),
            },
            other => {
                ctx.warn(st, format!("unknown option '{other}' ignored"));
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    Ok(d)
}

/// The name of a named block (`KEYWORD NAME { ... }`).
pub(crate) fn block_name(s: &Stmt) -> Result<String, ConfError> {
    s.words.get(1).cloned().ok_or_else(|| s.err("missing name"))
}

/// `local_address_group NAME { IP[-END] IFACE ... }`.
fn laddr_group(s: &Stmt) -> Result<LaddrGroup, ConfError> {
    let name = block_name(s)?;
    let mut addrs = Vec::new();
    for e in s.body()? {
        let (first, last) = e.ip_range(0).map_err(|x| x.under(s.kw()))?;
        let dev = e.words.get(1).ok_or_else(|| {
            ConfError::new(
                &e.loc,
                s.kw(),
                "needs an interface after the address (IP IFACE)",
            )
        })?;
        for a in super::values::range_addrs(first, last) {
            addrs.push((a, dev.clone()));
        }
    }
    Ok(LaddrGroup {
        loc: s.loc.clone(),
        name,
        addrs,
    })
}

/// `deny_address_group` / `allow_address_group NAME { IP[-END] | ipset:NAME ... }`.
fn addr_group(s: &Stmt) -> Result<AddrGroup, ConfError> {
    let name = block_name(s)?;
    let mut entries = Vec::new();
    for e in s.body()? {
        if let Some(set) = e.kw().strip_prefix("ipset:") {
            entries.push(AddrEntry::Ipset(set.to_string()));
            continue;
        }
        let (first, last) = e.ip_range(0).map_err(|x| x.under(s.kw()))?;
        entries.push(AddrEntry::Range { first, last });
    }
    Ok(AddrGroup {
        loc: s.loc.clone(),
        name,
        entries,
    })
}

/// Every `laddr_group_name`, `daddr_group_name`, `waddr_group_name` and
/// `virtual_server group` names a group that exists.
fn check_refs(cfg: &Config, ctx: &Ctx) -> Result<(), ConfError> {
    for r in &ctx.refs {
        let (found, what) = match r.kind {
            RefKind::Laddr => (cfg.laddr_group(&r.name).is_some(), "local_address_group"),
            RefKind::Deny => (
                cfg.deny_address_groups.iter().any(|g| g.name == r.name),
                "deny_address_group",
            ),
            RefKind::Allow => (
                cfg.allow_address_groups.iter().any(|g| g.name == r.name),
                "allow_address_group",
            ),
            RefKind::VsGroup => (
                cfg.virtual_server_group(&r.name).is_some(),
                "virtual_server_group",
            ),
        };
        if !found {
            return Err(ConfError::new(
                &r.loc,
                &r.keyword,
                format!("no {what} named '{}'", r.name),
            ));
        }
    }
    Ok(())
}

/// Names of groups, scripts and instances are unique; so is a VRID per
/// interface and address family.
fn check_names(cfg: &Config) -> Result<(), ConfError> {
    if let Some(d) = &cfg.global.lvs_sync_daemon {
        if cfg.vrrp_instance(&d.instance).is_none() {
            return Err(ConfError::new(
                &d.loc,
                "lvs_sync_daemon",
                format!("no vrrp_instance named '{}'", d.instance),
            ));
        }
    }
    let l = cfg.laddr_groups.iter().map(|g| (&g.name, &g.loc));
    unique("local_address_group", l)?;
    let d = cfg.deny_address_groups.iter().map(|g| (&g.name, &g.loc));
    unique("deny_address_group", d)?;
    let a = cfg.allow_address_groups.iter().map(|g| (&g.name, &g.loc));
    unique("allow_address_group", a)?;
    let v = cfg.virtual_server_groups.iter().map(|g| (&g.name, &g.loc));
    unique("virtual_server_group", v)?;
    unique(
        "vrrp_script",
        cfg.vrrp_scripts.iter().map(|g| (&g.name, &g.loc)),
    )?;
    unique(
        "vrrp_instance",
        cfg.vrrp_instances.iter().map(|g| (&g.name, &g.loc)),
    )?;
    let sg = cfg.vrrp_sync_groups.iter().map(|g| (&g.name, &g.loc));
    unique("vrrp_sync_group", sg)?;
    let mut vrids: HashMap<(&str, u8, bool), &VrrpInstance> = HashMap::new();
    for i in &cfg.vrrp_instances {
        let v6 = i
            .virtual_ipaddress
            .first()
            .is_some_and(|v| v.addr.is_ipv6());
        let key = (i.interface.as_str(), i.virtual_router_id, v6);
        if let Some(prev) = vrids.insert(key, i) {
            return Err(ConfError::new(
                &i.loc,
                "virtual_router_id",
                format!(
                    "VRID {} on {} is already used by vrrp_instance {} ({})",
                    i.virtual_router_id, i.interface, prev.name, prev.loc
                ),
            ));
        }
    }
    Ok(())
}

fn unique<'a>(
    keyword: &str,
    items: impl Iterator<Item = (&'a String, &'a Loc)>,
) -> Result<(), ConfError> {
    let mut seen: HashMap<&str, &Loc> = HashMap::new();
    for (name, loc) in items {
        if let Some(prev) = seen.insert(name, loc) {
            return Err(ConfError::new(
                loc,
                keyword,
                format!("'{name}' is already defined at {prev}"),
            ));
        }
    }
    Ok(())
}

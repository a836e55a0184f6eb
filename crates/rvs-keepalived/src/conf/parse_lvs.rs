//! `virtual_server_group`, `virtual_server` and `real_server`.

use std::net::IpAddr;

use super::lvs_types::*;
use super::parse::block_name;
use super::parse_check::{checker, is_checker, Inherit, PendingChecker, DELAY_LOOP};
use super::parse_vrrp::script;
use super::tree::Stmt;
use super::values::{Ctx, RefKind};
use super::ConfError;

/// Schedulers rvs has (`ipvsadm -s` names).
const SCHEDULERS: &[&str] = &["rr", "wrr", "lc", "wlc", "sh", "conhash", "fo", "mh"];
/// Schedulers keepalived knows and rvs does not have.
const OTHER_SCHEDULERS: &[&str] = &["lblc", "lblcr", "dh", "sed", "nq", "ovf"];

/// virtual_server keywords keepalived (or DPVS's fork) has and
/// rvs-keepalived ignores.
const UNSUPPORTED_VS: &[&str] = &[
    "hashed",
    "ops",
    "flag-1",
    "flag-2",
    "flag-3",
    "persistence_engine",
    "nat_mask",
    "bps",
    "limit_proportion",
    "hash_target",
    "proxy_protocol",
    "expire_quiescent_conn",
    "quic",
];

/// `virtual_server_group NAME { IP[-END] PORT ... }`.
pub(crate) fn virtual_server_group(
    s: &Stmt,
    ctx: &mut Ctx,
) -> Result<VirtualServerGroup, ConfError> {
    let name = block_name(s)?;
    let mut entries = Vec::new();
    for e in s.body()? {
        if e.kw() == "fwmark" {
            ctx.warn(e, "fwmark services are not supported by rvs; entry ignored");
            continue;
        }
        let (first, last) = e.ip_range(0).map_err(|x| x.under(s.kw()))?;
        let port = e.port(1).map_err(|x| x.under(s.kw()))?;
        ctx.extra(e, 2);
        entries.push(VsgEntry { first, last, port });
    }
    Ok(VirtualServerGroup {
        loc: s.loc.clone(),
        name,
        entries,
    })
}

/// Which virtual server a `virtual_server` line declares; `None` (with a
/// warning) for `fwmark`, which rvs does not have.
fn vs_addr(s: &Stmt, ctx: &mut Ctx) -> Result<Option<VsAddr>, ConfError> {
    let addr = match s.arg(1)? {
        "group" => {
            let name = s.arg(2)?;
            ctx.refer(s, RefKind::VsGroup, name);
            ctx.extra(&head(s), 3);
            VsAddr::Group(name.to_string())
        }
        "match" => {
            ctx.extra(&head(s), 3);
            VsAddr::Match(MatchSpec {
                name: s.words.get(2).cloned(),
                ..MatchSpec::default()
            })
        }
        "fwmark" => {
            ctx.warn(
                s,
                "fwmark services are not supported by rvs; virtual_server skipped",
            );
            return Ok(None);
        }
        _ => {
            let addr = s.ip(1)?;
            let port = s.port(2)?;
            ctx.extra(&head(s), 3);
            VsAddr::Ip { addr, port }
        }
    };
    Ok(Some(addr))
}

/// The statement without its block (to check its words only).
fn head(s: &Stmt) -> Stmt {
    Stmt {
        words: s.words.clone(),
        loc: s.loc.clone(),
        block: None,
    }
}

/// A real server as read, before its virtual server's settings are known.
struct PendingRs {
    rs: RealServer,
    inherit: Inherit,
    checkers: Vec<PendingChecker>,
}

/// `virtual_server IP PORT | group NAME | match [NAME] { ... }`.
pub(crate) fn virtual_server(s: &Stmt, ctx: &mut Ctx) -> Result<Option<VirtualServer>, ConfError> {
    let Some(addr) = vs_addr(s, ctx)? else {
        return Ok(None);
    };
    let mut vs = VirtualServer {
        loc: s.loc.clone(),
        addr,
        protocol: Protocol::Tcp,
        lb_algo: "wlc".into(),
        sched_flags: Vec::new(),
        lb_kind: LbKind::Nat,
        persistence_timeout: None,
        persistence_granularity: None,
        delay_loop: DELAY_LOOP,
        laddr_group_name: None,
        deny_group_name: None,
        allow_group_name: None,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        sorry_server: None,
        omega: false,
        ha_suspend: false,
        syn_proxy: false,
        establish_timeout: None,
        vip_bind_dev: None,
        real_servers: Vec::new(),
    };
    let mut inherit = Inherit::default();
    let mut pending = Vec::new();
    for st in s.body()? {
        if st.kw() == "real_server" {
            pending.push(real_server(st, ctx)?);
        } else if !inherit.keyword(st)? && !vs_keyword(st, &mut vs, ctx)? {
            match_keyword(st, &mut vs, ctx);
        }
    }
    vs.delay_loop = inherit.delay_loop.unwrap_or(DELAY_LOOP);
    for p in pending {
        let rs = finish_rs(p, &inherit);
        if let Some(prev) = vs
            .real_servers
            .iter()
            .find(|r| (r.addr, r.port) == (rs.addr, rs.port))
        {
            return Err(ConfError::new(
                &rs.loc,
                "real_server",
                format!(
                    "{} {} is already a real server here (line {})",
                    rs.addr, rs.port, prev.loc.line
                ),
            ));
        }
        vs.real_servers.push(rs);
    }
    finish_vs(s, &mut vs, ctx)?;
    Ok(Some(vs))
}

fn finish_rs(p: PendingRs, vs_inherit: &Inherit) -> RealServer {
    let eff = p.inherit.or(vs_inherit);
    let mut rs = p.rs;
    rs.inhibit_on_failure = eff.inhibit_on_failure.unwrap_or(false);
    rs.alpha = eff.alpha.unwrap_or(false);
    rs.weight = eff.weight.unwrap_or(1);
    rs.checkers = p.checkers.into_iter().map(|c| c.finish(&eff)).collect();
    rs
}

/// Checks that need the whole block.
fn finish_vs(s: &Stmt, vs: &mut VirtualServer, ctx: &mut Ctx) -> Result<(), ConfError> {
    let is_match = matches!(vs.addr, VsAddr::Match(_));
    if let VsAddr::Match(m) = &vs.addr {
        if m.src_range.is_none() && m.dst_range.is_none() {
            return Err(s.err("virtual_server match needs a src-range or a dst-range"));
        }
    }
    if vs.protocol == Protocol::Icmp && !is_match {
        return Err(s.err("protocol ICMP is only for virtual_server match"));
    }
    if vs.lb_kind == LbKind::Fnat && vs.laddr_group_name.is_none() {
        ctx.warn(
            s,
            "lb_kind FNAT without laddr_group_name: the service has no local address",
        );
    }
    let sched = vs.lb_algo.clone();
    let mut kept = Vec::new();
    for f in std::mem::take(&mut vs.sched_flags) {
        if f.starts_with(&format!("{sched}-")) {
            kept.push(f);
        } else {
            ctx.warn(
                s,
                format!("{f} does not apply to scheduler {sched}; ignored"),
            );
        }
    }
    vs.sched_flags = kept;
    Ok(())
}

/// The virtual server's own keywords; false when `st` is not one.
fn vs_keyword(st: &Stmt, vs: &mut VirtualServer, ctx: &mut Ctx) -> Result<bool, ConfError> {
    match st.kw() {
        "lb_algo" | "lvs_sched" => vs.lb_algo = scheduler(st)?,
        "lb_kind" | "lvs_method" => vs.lb_kind = lb_kind(st)?,
        "protocol" => vs.protocol = protocol(st)?,
        "persistence_timeout" => {
            vs.persistence_timeout = Some(match st.words.len() {
                1 => 360,
                _ => st.u32_in(1, 1, u32::MAX)?,
            })
        }
        "persistence_granularity" => vs.persistence_granularity = Some(st.arg(1)?.to_string()),
        "laddr_group_name" => vs.laddr_group_name = Some(group_ref(st, RefKind::Laddr, ctx)?),
        "daddr_group_name" => vs.deny_group_name = Some(group_ref(st, RefKind::Deny, ctx)?),
        "waddr_group_name" => vs.allow_group_name = Some(group_ref(st, RefKind::Allow, ctx)?),
        "quorum" => vs.quorum = st.u32_in(1, 1, u32::MAX)?,
        "hysteresis" => vs.hysteresis = st.u32_in(1, 0, u32::MAX)?,
        "quorum_up" => vs.quorum_up = Some(script(st, ctx)?),
        "quorum_down" => vs.quorum_down = Some(script(st, ctx)?),
        "sorry_server" => {
            vs.sorry_server = Some(SorryServer {
                addr: st.ip(1)?,
                port: st.port(2)?,
                inhibit: false,
                lb_kind: None,
            })
        }
        "sorry_server_inhibit" | "sorry_server_lvs_method" => sorry_option(st, vs)?,
        "omega" => vs.omega = true,
        "ha_suspend" => vs.ha_suspend = true,
        "syn_proxy" => vs.syn_proxy = true,
        "establish_timeout" => vs.establish_timeout = Some(st.u32_in(1, 1, 3600)?),
        "vip_bind_dev" => vs.vip_bind_dev = Some(st.arg(1)?.to_string()),
        "weight" => return Ok(false),
        "sh-port" | "sh-fallback" | "mh-port" | "mh-fallback" => {
            vs.sched_flags.push(st.kw().to_string())
        }
        "ip_family" | "smtp_alert" => {}
        kw if UNSUPPORTED_VS.contains(&kw) => ctx.unsupported(st),
        _ => return Ok(false),
    }
    Ok(true)
}

/// DPVS's match keywords (and the virtual server level `weight`), else unknown.
fn match_keyword(st: &Stmt, vs: &mut VirtualServer, ctx: &mut Ctx) {
    let VsAddr::Match(m) = &mut vs.addr else {
        if st.kw() == "weight" {
            ctx.warn(st, "weight belongs in real_server; ignored here");
        } else if matches!(st.kw(), "src-range" | "dst-range" | "iif" | "oif") {
            ctx.warn(st, "only for virtual_server match; ignored");
        } else {
            ctx.unknown(st, "virtual_server");
        }
        return;
    };
    let slot = match st.kw() {
        "src-range" => &mut m.src_range,
        "dst-range" => &mut m.dst_range,
        "iif" => &mut m.iif,
        "oif" => &mut m.oif,
        _ => {
            ctx.unknown(st, "virtual_server");
            return;
        }
    };
    match st.words.get(1) {
        Some(v) => *slot = Some(v.clone()),
        None => ctx.warn(st, "missing value; ignored"),
    }
}

fn sorry_option(st: &Stmt, vs: &mut VirtualServer) -> Result<(), ConfError> {
    let kind = if st.kw() == "sorry_server_lvs_method" {
        Some(lb_kind(st)?)
    } else {
        None
    };
    let Some(ss) = vs.sorry_server.as_mut() else {
        return Err(st.err("needs a sorry_server before it"));
    };
    match kind {
        Some(k) => ss.lb_kind = Some(k),
        None => ss.inhibit = true,
    }
    Ok(())
}

fn group_ref(st: &Stmt, kind: RefKind, ctx: &mut Ctx) -> Result<String, ConfError> {
    let name = st.arg(1)?;
    ctx.refer(st, kind, name);
    Ok(name.to_string())
}

fn scheduler(st: &Stmt) -> Result<String, ConfError> {
    let v = st.arg(1)?;
    if SCHEDULERS.contains(&v) {
        return Ok(v.to_string());
    }
    let list = SCHEDULERS.join(" ");
    if OTHER_SCHEDULERS.contains(&v) {
        return Err(st.err(format!("scheduler {v} is not supported by rvs ({list})")));
    }
    Err(st.err(format!("unknown scheduler '{v}' ({list})")))
}

fn lb_kind(st: &Stmt) -> Result<LbKind, ConfError> {
    Ok(match st.arg(1)? {
        "NAT" => LbKind::Nat,
        "DR" => LbKind::Dr,
        "TUN" => LbKind::Tun,
        "FNAT" => LbKind::Fnat,
        "SNAT" => LbKind::Snat,
        o => {
            return Err(st.err(format!(
                "unknown forwarding method '{o}' (NAT DR TUN FNAT SNAT)"
            )))
        }
    })
}

fn protocol(st: &Stmt) -> Result<Protocol, ConfError> {
    Ok(match st.arg(1)? {
        "TCP" => Protocol::Tcp,
        "UDP" => Protocol::Udp,
        "ICMP" => Protocol::Icmp,
        o => return Err(st.err(format!("protocol '{o}' is not supported (TCP UDP)"))),
    })
}

/// `real_server IP PORT [{ ... }]`.
fn real_server(s: &Stmt, ctx: &mut Ctx) -> Result<PendingRs, ConfError> {
    let addr: IpAddr = s.ip(1)?;
    let port = s.port(2)?;
    ctx.extra(&head(s), 3);
    let mut p = PendingRs {
        rs: RealServer {
            loc: s.loc.clone(),
            addr,
            port,
            weight: 1,
            lb_kind: None,
            inhibit_on_failure: false,
            alpha: false,
            notify_up: None,
            notify_down: None,
            uthreshold: 0,
            lthreshold: 0,
            checkers: Vec::new(),
        },
        inherit: Inherit::default(),
        checkers: Vec::new(),
    };
    for st in s.block.as_deref().unwrap_or_default() {
        if is_checker(st.kw()) {
            p.checkers.extend(checker(st, ctx)?);
            continue;
        }
        if p.inherit.keyword(st)? {
            continue;
        }
        let rs = &mut p.rs;
        match st.kw() {
            "weight" => p.inherit.weight = Some(st.u32_in(1, 0, 65535)?),
            "lvs_method" | "lb_kind" => rs.lb_kind = Some(lb_kind(st)?),
            "notify_up" => rs.notify_up = Some(script(st, ctx)?),
            "notify_down" => rs.notify_down = Some(script(st, ctx)?),
            "uthreshold" => rs.uthreshold = st.u32_in(1, 0, u32::MAX)?,
            "lthreshold" => rs.lthreshold = st.u32_in(1, 0, u32::MAX)?,
            "smtp_alert" => {}
            _ => ctx.unknown(st, "real_server"),
        }
    }
    Ok(p)
}

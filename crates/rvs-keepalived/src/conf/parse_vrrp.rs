//! `vrrp_script`, `vrrp_instance`, `vrrp_sync_group`, and the gratuitous
//! ARP timings shared by `global_defs` (`vrrp_garp_*`) and instances.

use std::net::IpAddr;
use std::time::Duration;

use super::parse::block_name;
use super::tree::Stmt;
use super::types::*;
use super::values::Ctx;
use super::ConfError;

/// vrrp_instance keywords keepalived has and rvs-keepalived ignores.
const UNSUPPORTED_INSTANCE: &[&str] = &[
    "use_vmac",
    "vmac_xmit_base",
    "native_ipv6",
    "dont_track_primary",
    "track_src_ip",
    "accept",
    "no_accept",
    "skip_check_adv_addr",
    "strict_mode",
    "virtual_routes",
    "virtual_rules",
    "track_file",
    "track_bfd",
    "track_process",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "old_unicast_checksum",
    "promote_secondaries",
    "debug",
    "kernel_rx_buf_size",
];

const SECS_0: Duration = Duration::ZERO;
const HOUR: Duration = Duration::from_secs(3600);
const MICRO: Duration = Duration::from_micros(1);

/// Gratuitous ARP settings as written (unset ones take defaults).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GarpOpts {
    master_delay: Option<Duration>,
    master_repeat: Option<u32>,
    lower_prio_delay: Option<Duration>,
    lower_prio_repeat: Option<u32>,
    master_refresh: Option<Duration>,
    master_refresh_repeat: Option<u32>,
    interval: Option<Duration>,
    gna_interval: Option<Duration>,
}

impl GarpOpts {
    /// Values set here, else in `parent`, else keepalived's defaults; the
    /// lower-priority ones default to the master ones.
    pub fn resolve(&self, parent: &GarpOpts) -> Garp {
        let d = Garp::default();
        let master_delay = self
            .master_delay
            .or(parent.master_delay)
            .unwrap_or(d.master_delay);
        let master_repeat = self
            .master_repeat
            .or(parent.master_repeat)
            .unwrap_or(d.master_repeat);
        Garp {
            master_delay,
            master_repeat,
            lower_prio_delay: self
                .lower_prio_delay
                .or(parent.lower_prio_delay)
                .unwrap_or(master_delay),
            lower_prio_repeat: self
                .lower_prio_repeat
                .or(parent.lower_prio_repeat)
                .unwrap_or(master_repeat),
            master_refresh: self
                .master_refresh
                .or(parent.master_refresh)
                .unwrap_or(d.master_refresh),
            master_refresh_repeat: self
                .master_refresh_repeat
                .or(parent.master_refresh_repeat)
                .unwrap_or(d.master_refresh_repeat),
            interval: self.interval.or(parent.interval).unwrap_or(d.interval),
            gna_interval: self
                .gna_interval
                .or(parent.gna_interval)
                .unwrap_or(d.gna_interval),
        }
    }
}

/// Reads `garp_*` / `gna_interval` (`kw` without any `vrrp_` prefix) into
/// `g`; false when `kw` is not one of them.
pub(crate) fn garp_keyword(s: &Stmt, kw: &str, g: &mut GarpOpts) -> Result<bool, ConfError> {
    let ten = Duration::from_secs(10);
    match kw {
        "garp_master_delay" => g.master_delay = Some(s.secs(1, SECS_0, HOUR)?),
        "garp_master_repeat" => g.master_repeat = Some(s.u32_in(1, 1, 1000)?),
        "garp_lower_prio_delay" => g.lower_prio_delay = Some(s.secs(1, SECS_0, HOUR)?),
        "garp_lower_prio_repeat" => g.lower_prio_repeat = Some(s.u32_in(1, 1, 1000)?),
        "garp_master_refresh" => g.master_refresh = Some(s.secs(1, SECS_0, HOUR)?),
        "garp_master_refresh_repeat" => g.master_refresh_repeat = Some(s.u32_in(1, 1, 1000)?),
        "garp_interval" => g.interval = Some(s.secs(1, SECS_0, ten)?),
        "gna_interval" => g.gna_interval = Some(s.secs(1, SECS_0, ten)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `vrrp_script NAME { script ... interval ... }`.
pub(crate) fn vrrp_script(s: &Stmt, ctx: &mut Ctx) -> Result<VrrpScript, ConfError> {
    let mut v = VrrpScript {
        loc: s.loc.clone(),
        name: block_name(s)?,
        script: String::new(),
        interval: Duration::from_secs(1),
        timeout: None,
        weight: 0,
        rise: 1,
        fall: 1,
        init_fail: false,
    };
    for st in s.body()? {
        match st.kw() {
            "script" => {
                st.arg(1)?;
                v.script = st.rest(1);
            }
            "interval" => v.interval = st.secs(1, MICRO, HOUR)?,
            "timeout" => v.timeout = Some(st.secs(1, MICRO, HOUR)?),
            "weight" => {
                v.weight = st.num(1, -253, 253)? as i32;
                ctx.extra(
                    st,
                    if st.words.get(2).is_some_and(|w| w == "reverse") {
                        3
                    } else {
                        2
                    },
                );
            }
            "rise" => v.rise = st.u32_in(1, 1, u32::MAX)?,
            "fall" => v.fall = st.u32_in(1, 1, u32::MAX)?,
            "init_fail" => v.init_fail = true,
            "user" => ctx.unsupported(st),
            _ => ctx.unknown(st, "vrrp_script"),
        }
    }
    if v.script.is_empty() {
        return Err(ConfError::new(
            &s.loc,
            "vrrp_script",
            format!("{} has no script", v.name),
        ));
    }
    Ok(v)
}

/// `vrrp_instance NAME { ... }`, with the global VRRP version and garp
/// settings as defaults.
pub(crate) fn vrrp_instance(
    s: &Stmt,
    global_version: u8,
    global_garp: &GarpOpts,
    ctx: &mut Ctx,
) -> Result<VrrpInstance, ConfError> {
    let name = block_name(s)?;
    let mut v = VrrpInstance {
        loc: s.loc.clone(),
        name: name.clone(),
        state: VrrpState::Backup,
        interface: String::new(),
        dpdk_interface: None,
        virtual_router_id: 0,
        priority: 100,
        advert_int: Duration::from_secs(1),
        version: global_version,
        auth: None,
        virtual_ipaddress: Vec::new(),
        virtual_ipaddress_excluded: Vec::new(),
        nopreempt: false,
        preempt_delay: Duration::ZERO,
        src_ip: None,
        unicast_peers: Vec::new(),
        track_interfaces: Vec::new(),
        track_scripts: Vec::new(),
        notify: Notify::default(),
        garp: Garp::default(),
    };
    let mut garp = GarpOpts::default();
    let mut advert: Option<&Stmt> = None;
    for st in s.body()? {
        if garp_keyword(st, st.kw(), &mut garp)? {
            continue;
        }
        if notify_keyword(st, &mut v.notify, ctx)? {
            continue;
        }
        instance_keyword(st, &mut v, &mut advert, ctx)?;
    }
    if v.interface.is_empty() {
        return Err(missing(s, &name, "interface"));
    }
    if v.virtual_router_id == 0 {
        return Err(missing(s, &name, "virtual_router_id"));
    }
    if let Some(st) = advert {
        v.advert_int = advert_int(st, v.version, ctx)?;
    }
    if v.version == 3 && v.auth.is_some() {
        ctx.warn(
            s,
            format!("{name}: VRRPv3 has no authentication; authentication ignored"),
        );
        v.auth = None;
    }
    if v.nopreempt && v.state == VrrpState::Master {
        ctx.warn(s, format!("{name}: nopreempt only works with state BACKUP"));
    }
    v.garp = garp.resolve(global_garp);
    Ok(v)
}

fn missing(s: &Stmt, name: &str, what: &str) -> ConfError {
    ConfError::new(
        &s.loc,
        what,
        format!("vrrp_instance {name} has no {what} (required)"),
    )
}

fn instance_keyword<'a>(
    st: &'a Stmt,
    v: &mut VrrpInstance,
    advert: &mut Option<&'a Stmt>,
    ctx: &mut Ctx,
) -> Result<(), ConfError> {
    match st.kw() {
        "state" => {
            v.state = match st.arg(1)? {
                "MASTER" => VrrpState::Master,
                "BACKUP" => VrrpState::Backup,
                o => return Err(st.err(format!("'{o}' is not MASTER or BACKUP"))),
            }
        }
        "interface" => v.interface = st.arg(1)?.to_string(),
        "dpdk_interface" => v.dpdk_interface = Some(st.arg(1)?.to_string()),
        "virtual_router_id" => v.virtual_router_id = st.num(1, 1, 255)? as u8,
        "priority" => v.priority = st.num(1, 1, 255)? as u8,
        "advert_int" => *advert = Some(st),
        "version" => v.version = st.num(1, 2, 3)? as u8,
        "authentication" => v.auth = authentication(st, ctx)?,
        "virtual_ipaddress" => v.virtual_ipaddress = vips(st, ctx)?,
        "virtual_ipaddress_excluded" => v.virtual_ipaddress_excluded = vips(st, ctx)?,
        "nopreempt" => v.nopreempt = true,
        "preempt" => v.nopreempt = false,
        "preempt_delay" => v.preempt_delay = st.secs(1, SECS_0, Duration::from_secs(1000))?,
        "unicast_src_ip" | "mcast_src_ip" => v.src_ip = Some(st.ip(1)?),
        "unicast_peer" => v.unicast_peers = peers(st, ctx)?,
        "track_interface" => v.track_interfaces = tracked(st, ctx)?,
        "track_script" => v.track_scripts = tracked(st, ctx)?,
        "smtp_alert" => {}
        kw if UNSUPPORTED_INSTANCE.contains(&kw) => ctx.unsupported(st),
        _ => ctx.unknown(st, "vrrp_instance"),
    }
    Ok(())
}

/// `advert_int`: whole seconds (1..255) with VRRPv2, centiseconds
/// (0.01..40.95) with VRRPv3; other values are rounded with a warning.
fn advert_int(st: &Stmt, version: u8, ctx: &mut Ctx) -> Result<Duration, ConfError> {
    if version == 2 {
        let d = st.secs(1, Duration::from_millis(500), Duration::from_secs(255))?;
        let secs = (d.as_millis() + 500) / 1000;
        let r = Duration::from_secs(secs as u64);
        if r != d {
            ctx.warn(
                st,
                format!("VRRPv2 adverts are in whole seconds: {}s used", secs),
            );
        }
        return Ok(r);
    }
    let d = st.secs(1, Duration::from_millis(10), Duration::from_millis(40950))?;
    let cs = (d.as_micros() + 5000) / 10_000;
    let r = Duration::from_millis(cs as u64 * 10);
    if r != d {
        ctx.warn(
            st,
            format!(
                "VRRPv3 adverts are in centiseconds: {}s used",
                r.as_secs_f64()
            ),
        );
    }
    Ok(r)
}

fn authentication(st: &Stmt, ctx: &mut Ctx) -> Result<Option<Auth>, ConfError> {
    let mut kind = None;
    let mut pass = None;
    for a in st.body()? {
        match a.kw() {
            "auth_type" => match a.arg(1)? {
                "PASS" => kind = Some(a),
                "AH" => return Err(a.err("auth_type AH is not supported (PASS only)")),
                o => return Err(a.err(format!("'{o}' is not PASS or AH"))),
            },
            "auth_pass" => pass = Some((a, a.arg(1)?.to_string())),
            _ => ctx.unknown(a, "authentication"),
        }
    }
    match (kind, pass) {
        (None, None) => Ok(None),
        (Some(k), None) => Err(ConfError::new(
            &k.loc,
            "auth_pass",
            "auth_type PASS needs an auth_pass",
        )),
        (None, Some((p, _))) => Err(ConfError::new(
            &p.loc,
            "auth_type",
            "auth_pass needs auth_type PASS",
        )),
        (Some(_), Some((p, mut pass))) => {
            if pass.len() > 8 {
                let mut end = 8;
                while !pass.is_char_boundary(end) {
                    end -= 1;
                }
                pass.truncate(end);
                ctx.warn(p, format!("only the first 8 bytes are used: '{pass}'"));
            }
            Ok(Some(Auth { pass }))
        }
    }
}

fn vips(st: &Stmt, ctx: &mut Ctx) -> Result<Vec<VirtualIp>, ConfError> {
    st.body()?
        .iter()
        .map(|l| vip(l, ctx).map_err(|e| e.under(st.kw())))
        .collect()
}

/// `IP[/PLEN] [dev D] [label L] [scope S] [brd B] [flags...]`.
fn vip(l: &Stmt, ctx: &mut Ctx) -> Result<VirtualIp, ConfError> {
    let w = l.kw();
    let (a, p) = w.split_once('/').map_or((w, None), |(a, p)| (a, Some(p)));
    let addr: IpAddr = a
        .parse()
        .map_err(|_| l.err(format!("'{a}' is not an IP address")))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let plen = match p {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(l.err(format!("'/{p}' is not a prefix length (0..{max})"))),
        },
    };
    let mut v = VirtualIp {
        addr,
        plen,
        dev: None,
        label: None,
        scope: None,
    };
    let mut i = 1;
    while i < l.words.len() {
        let val = || l.arg(i + 1).map(str::to_string);
        match l.words[i].as_str() {
            "dev" => v.dev = Some(val()?),
            "label" => v.label = Some(val()?),
            "scope" => v.scope = Some(val()?),
            "brd" | "broadcast" | "preferred_lft" | "valid_lft" => {
                val()?;
                ctx.warn(l, format!("'{}' is not supported; ignored", l.words[i]));
            }
            o => {
                ctx.warn(l, format!("'{o}' is not supported; ignored"));
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    Ok(v)
}

fn peers(st: &Stmt, ctx: &mut Ctx) -> Result<Vec<IpAddr>, ConfError> {
    let mut out = Vec::new();
    for l in st.body()? {
        let a: IpAddr = l.kw().parse().map_err(|_| {
            l.err(format!("'{}' is not an IP address", l.kw()))
                .under(st.kw())
        })?;
        ctx.extra(l, 1);
        out.push(a);
    }
    Ok(out)
}

/// `track_interface` / `track_script` entries: `NAME [weight N]`.
fn tracked(st: &Stmt, ctx: &mut Ctx) -> Result<Vec<Tracked>, ConfError> {
    let mut out = Vec::new();
    for l in st.body()? {
        let weight = match l.words.get(1).map(String::as_str) {
            Some("weight") => Some(l.num(2, -253, 253).map_err(|e| e.under(st.kw()))? as i32),
            _ => None,
        };
        let used = if weight.is_some() { 3 } else { 1 };
        ctx.extra(
            l,
            if l.words.get(3).is_some_and(|w| w == "reverse") {
                4
            } else {
                used
            },
        );
        out.push(Tracked {
            name: l.kw().to_string(),
            weight,
        });
    }
    Ok(out)
}

/// `notify_*` keywords; false when `s` is not one.
fn notify_keyword(s: &Stmt, n: &mut Notify, ctx: &mut Ctx) -> Result<bool, ConfError> {
    let slot = match s.kw() {
        "notify_master" => &mut n.master,
        "notify_backup" => &mut n.backup,
        "notify_fault" => &mut n.fault,
        "notify_stop" => &mut n.stop,
        "notify" => &mut n.any,
        _ => return Ok(false),
    };
    *slot = Some(script(s, ctx)?);
    Ok(true)
}

/// A script value: one word (quote it to pass arguments); a user/group
/// after it is not supported.
pub(crate) fn script(s: &Stmt, ctx: &mut Ctx) -> Result<String, ConfError> {
    let cmd = s.arg(1)?.to_string();
    if s.words.len() > 2 {
        ctx.warn(
            s,
            format!(
                "running scripts as user '{}' is not supported; run as rvs-keepalived's user",
                s.rest(2)
            ),
        );
    }
    Ok(cmd)
}

/// `vrrp_sync_group NAME { group { ... } ... }`.
pub(crate) fn vrrp_sync_group(s: &Stmt, ctx: &mut Ctx) -> Result<VrrpSyncGroup, ConfError> {
    let mut g = VrrpSyncGroup {
        loc: s.loc.clone(),
        name: block_name(s)?,
        group: Vec::new(),
        track_interfaces: Vec::new(),
        track_scripts: Vec::new(),
        notify: Notify::default(),
    };
    for st in s.body()? {
        if notify_keyword(st, &mut g.notify, ctx)? {
            continue;
        }
        match st.kw() {
            "group" => {
                for m in st.body()? {
                    ctx.extra(m, 1);
                    g.group.push(m.kw().to_string());
                }
            }
            "track_interface" => g.track_interfaces = tracked(st, ctx)?,
            "track_script" => g.track_scripts = tracked(st, ctx)?,
            "smtp_alert" => {}
            "global_tracking" | "sync_group_tracking_weight" | "track_file" | "track_bfd" => {
                ctx.unsupported(st)
            }
            _ => ctx.unknown(st, "vrrp_sync_group"),
        }
    }
    if g.group.is_empty() {
        return Err(ConfError::new(
            &s.loc,
            "group",
            format!("vrrp_sync_group {} has no group {{ ... }}", g.name),
        ));
    }
    Ok(g)
}

/// As keepalived: a `track_script` naming no `vrrp_script`, or a sync group
/// member naming no `vrrp_instance`, is dropped with a warning.
pub(crate) fn check_tracking(cfg: &mut Config, ctx: &mut Ctx) {
    let scripts: Vec<String> = cfg.vrrp_scripts.iter().map(|s| s.name.clone()).collect();
    let instances: Vec<String> = cfg.vrrp_instances.iter().map(|i| i.name.clone()).collect();
    for i in &mut cfg.vrrp_instances {
        let (name, loc) = (&i.name, &i.loc);
        i.track_scripts.retain(|t| {
            let ok = scripts.contains(&t.name);
            if !ok {
                let msg = format!("{name}: no vrrp_script named '{}'; ignored", t.name);
                warn_at(ctx, loc, "track_script", msg);
            }
            ok
        });
    }
    for g in &mut cfg.vrrp_sync_groups {
        let (name, loc) = (&g.name, &g.loc);
        g.track_scripts.retain(|t| {
            let ok = scripts.contains(&t.name);
            if !ok {
                let msg = format!("{name}: no vrrp_script named '{}'; ignored", t.name);
                warn_at(ctx, loc, "track_script", msg);
            }
            ok
        });
        g.group.retain(|m| {
            let ok = instances.contains(m);
            if !ok {
                let msg = format!("{name}: no vrrp_instance named '{m}'; ignored");
                warn_at(ctx, loc, "group", msg);
            }
            ok
        });
    }
}

fn warn_at(ctx: &mut Ctx, loc: &super::Loc, keyword: &str, message: String) {
    ctx.warnings.push(super::Diagnostic {
        loc: loc.clone(),
        keyword: keyword.into(),
        message,
    });
}

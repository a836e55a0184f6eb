//! DPVS's list commands: `--add-blklst|--del-blklst -k ADDR|ipset:NAME`,
//! `--add-whtlst|--del-whtlst -2 ADDR|ipset:NAME`, each with `-t|-u
//! service-address` for one service or without for every service (the
//! global lists), and `--get-blklst|--get-whtlst [-t|-u service-address]
//! [--stats]`. They take none of the other options, so they are parsed here
//! before ipvsadm's table.

use std::fmt::Write;
use std::net::IpAddr;

use rvs_api::{AclKind, AclListing, AclRule, Proto, Reply, Request, ServiceKey};

use super::values::{option_value, parse_host_port};
use super::AdmCommand;
use crate::client::{unexpected, CliError, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Del,
    Get,
}

/// The command words: long name, short name, operation, list.
const CMDS: [(&str, &str, Op, AclKind); 6] = [
    ("--add-blklst", "-U", Op::Add, AclKind::Blklst),
    ("--del-blklst", "-V", Op::Del, AclKind::Blklst),
    ("--get-blklst", "-B", Op::Get, AclKind::Blklst),
    ("--add-whtlst", "-O", Op::Add, AclKind::Whtlst),
    ("--del-whtlst", "-Y", Op::Del, AclKind::Whtlst),
    ("--get-whtlst", "-W", Op::Get, AclKind::Whtlst),
];

/// The ipvsadm name of a list's address option.
fn opt_name(k: AclKind) -> &'static str {
    match k {
        AclKind::Blklst => "blklst-address",
        AclKind::Whtlst => "whtlst-address",
    }
}

/// The list command of `args`, or `None` when it is another command.
pub fn parse_acl(args: &[&str]) -> Option<Result<AdmCommand, CliError>> {
    let is_cmd = |a: &&str| CMDS.iter().any(|(l, s, _, _)| a == l || a == s);
    if !args.iter().any(is_cmd) {
        return None;
    }
    Some(parse(args))
}

/// Collected options.
#[derive(Default)]
struct Opts {
    cmd: Option<(&'static str, Op, AclKind)>,
    key: Option<ServiceKey>,
    /// (list, subject) from `-k` or `-2`.
    subject: Option<(AclKind, String)>,
    stats: bool,
}

fn service(proto: Proto, v: &str) -> Result<ServiceKey, CliError> {
    let (vip, port): (IpAddr, Option<u16>) =
        parse_host_port(v).map_err(|e| e.into_cli("virtual server", v))?;
    Ok(ServiceKey::Vs {
        proto,
        vip,
        port: port.unwrap_or(0),
    })
}

fn subject(kind: AclKind, v: &str) -> Result<(AclKind, String), CliError> {
    let ok = v.starts_with("ipset:") && v.len() > "ipset:".len()
        || v.split_once('/')
            .map_or(v, |(a, _)| a)
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok();
    if !ok {
        let which = match kind {
            AclKind::Blklst => "blacklist",
            AclKind::Whtlst => "whitelist",
        };
        return Err(CliError::usage(format!(
            "illegal {which} entry format '{v}', require [ IP | IP/PLEN | ipset:NAME ]"
        )));
    }
    Ok((kind, v.to_string()))
}

fn parse(args: &[&str]) -> Result<AdmCommand, CliError> {
    let mut o = Opts::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        i += 1;
        if let Some((long, _, op, kind)) = CMDS.iter().find(|(l, s, _, _)| a == *l || a == *s) {
            if o.cmd.is_some() {
                return Err(CliError::usage("Two or more commands specified"));
            }
            o.cmd = Some((&long[2..], *op, *kind));
            continue;
        }
        // `-t X`, `-tX`, `--tcp-service X`, `--tcp-service=X`.
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ if a.len() > 2 && !a.starts_with("--") && a.starts_with('-') => {
                (&a[..2], Some(&a[2..]))
            }
            _ => (a, None),
        };
        let mut value = || option_value(args, &mut i, name, inline);
        match name {
            "-t" | "--tcp-service" | "-u" | "--udp-service" => {
                if o.key.is_some() {
                    return Err(CliError::usage("multiple 'service-address' options specified"));
                }
                let proto = if name.contains('t') { Proto::Tcp } else { Proto::Udp };
                o.key = Some(service(proto, value()?)?);
            }
            "-k" | "--blklst" | "-2" | "--whtlst" => {
                let kind = if matches!(name, "-k" | "--blklst") {
                    AclKind::Blklst
                } else {
                    AclKind::Whtlst
                };
                if o.subject.is_some() {
                    return Err(CliError::usage(format!(
                        "multiple '{}' options specified",
                        opt_name(kind)
                    )));
                }
                o.subject = Some(subject(kind, value()?)?);
            }
            "--stats" if inline.is_none() => o.stats = true,
            "-n" | "--numeric" if inline.is_none() => {}
            _ => {
                return Err(CliError::usage(format!(
                    "{a}: not an option of the blklst/whtlst commands (-t|-u service-address, -k|-2 address, --stats)"
                )))
            }
        }
    }
    build(o)
}

fn build(o: Opts) -> Result<AdmCommand, CliError> {
    let Some((cname, op, kind)) = o.cmd else {
        return Err(CliError::usage("No command specified"));
    };
    if op == Op::Get {
        if let Some((k, _)) = &o.subject {
            return Err(CliError::usage(format!(
                "Illegal '{}' option with the '{cname}' command",
                opt_name(*k)
            )));
        }
        return Ok(AdmCommand::GetAcl {
            kind,
            key: o.key,
            stats: o.stats,
        });
    }
    if o.stats {
        return Err(CliError::usage(format!(
            "Illegal 'stats' option with the '{cname}' command"
        )));
    }
    let subject = match o.subject {
        Some((k, s)) if k == kind => s,
        Some((k, _)) => {
            return Err(CliError::usage(format!(
                "Illegal '{}' option with the '{cname}' command",
                opt_name(k)
            )))
        }
        None => {
            return Err(CliError::usage(format!(
                "You need to supply the '{}' option for the '{cname}' command",
                opt_name(kind)
            )))
        }
    };
    let rule = AclRule {
        kind,
        key: o.key,
        subject,
    };
    Ok(AdmCommand::Apply(match op {
        Op::Add => Request::AddAcl { rule },
        _ => Request::DelAcl { rule },
    }))
}

/// The rules of one list (all, or one service's).
pub fn fetch(
    t: &mut dyn Transport,
    kind: AclKind,
    key: Option<ServiceKey>,
) -> Result<AclListing, CliError> {
    match t.call(&Request::ListAcl { kind, key })? {
        Reply::Acl(l) => Ok(l),
        other => Err(unexpected(other, "list blklst/whtlst")),
    }
}

/// PROTO and VIP:VPORT columns; `*` for a global rule.
fn columns(key: Option<&ServiceKey>) -> (String, String) {
    match key {
        Some(ServiceKey::Vs { proto, vip, port }) => {
            let p = if *proto == Proto::Tcp { "TCP" } else { "UDP" };
            let vp = match vip {
                IpAddr::V4(a) => format!("{a}:{port}"),
                IpAddr::V6(a) => format!("[{a}]:{port}"),
            };
            (p.to_string(), vp)
        }
        Some(ServiceKey::Match(m)) => ("MATCH".to_string(), m.clone()),
        None => ("*".to_string(), "*".to_string()),
    }
}

/// `--get-blklst`/`--get-whtlst` as DPVS's ipvsadm prints them; `stats`
/// adds a HITS column (connections refused by a blacklist entry, admitted
/// by a whitelist entry) and, per whitelist, the connections it refused.
pub fn format_acl(l: &AclListing, kind: AclKind, stats: bool) -> String {
    let title = match kind {
        AclKind::Blklst => "BLACKLIST",
        AclKind::Whtlst => "WHITELIST",
    };
    let line = |p: &str, vp: &str, subject: &str, hits: Option<String>| {
        let mut l = format!("{p:<8} {vp:<30} {subject:<30}");
        if let Some(h) = hits {
            l.push(' ');
            l.push_str(&h);
        }
        format!("{}\n", l.trim_end())
    };
    let mut out = line("PROTO", "VIP:VPORT", title, stats.then(|| "HITS".into()));
    for r in &l.rules {
        let (p, vp) = columns(r.rule.key.as_ref());
        out.push_str(&line(
            &p,
            &vp,
            &r.rule.subject,
            stats.then(|| r.hits.to_string()),
        ));
    }
    if stats {
        for r in &l.rejected {
            let (p, vp) = columns(r.key.as_ref());
            out.push_str(&line(
                &p,
                &vp,
                "(no match: refused)",
                Some(r.count.to_string()),
            ));
        }
    }
    out
}

/// The rules as `-S` writes them (global ones without a service option).
pub fn format_acl_save(l: &AclListing) -> String {
    let mut out = String::new();
    for r in &l.rules {
        let (cmd, opt) = match r.rule.kind {
            AclKind::Blklst => ("--add-blklst", "-k"),
            AclKind::Whtlst => ("--add-whtlst", "-2"),
        };
        out.push_str(cmd);
        if let Some(ServiceKey::Vs { proto, vip, port }) = &r.rule.key {
            let p = if *proto == Proto::Tcp { "-t" } else { "-u" };
            let vp = match vip {
                IpAddr::V4(a) => format!("{a}:{port}"),
                IpAddr::V6(a) => format!("[{a}]:{port}"),
            };
            let _ = write!(out, " {p} {vp}");
        }
        let _ = writeln!(out, " {opt} {}", r.rule.subject);
    }
    out
}

/// `-S`'s part: both lists.
pub fn save(t: &mut dyn Transport) -> Result<String, CliError> {
    let mut out = String::new();
    for k in [AclKind::Blklst, AclKind::Whtlst] {
        out.push_str(&format_acl_save(&fetch(t, k, None)?));
    }
    Ok(out)
}

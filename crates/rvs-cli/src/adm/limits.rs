//! Rate and connection limits on `rvsadm -A/-E` (ipvsadm has none; DPVS
//! has none yet): the options, their values, what `-S` writes for them,
//! and the lines `-L --rate` shows under a limited service.
//!
//! ```text
//! --conn-rate RATE[,BURST]      new connections per second to the service
//! --pkt-rate RATE[,BURST]       packets per second from clients
//! --bit-rate RATE[,BURST]       bits per second from clients (IP length)
//! --max-conns N                 concurrent connections
//! --src-conn-rate, --src-pkt-rate, --src-bit-rate, --src-max-conns
//!                               the same, for each source
//! --src-prefix LEN4[,LEN6]      a source is an address (32,128) or a prefix
//! ```
//!
//! Numbers take a `K`, `M` or `G` suffix (×1000). A burst defaults to one
//! second of the rate; 0 removes a limit. On `-E`, limit options replace
//! all of the service's limits (as `-E` replaces its scheduler and
//! persistence); `-E` without any keeps them.

use std::fmt::Write;

use rvs_api::{LimitInfo, LimitSet, Limits, RateLimit, Request, ServiceKey};

use super::values::option_value;
use super::AdmCommand;
use crate::client::CliError;

/// The limit options, as `rvsadm -h` lists them.
pub const USAGE: &str = "\
Limits (with -A or -E; numbers take K, M, G; a burst defaults to one second of the rate):
  --conn-rate RATE[,BURST]            new connections per second to the service
  --pkt-rate RATE[,BURST]             packets per second from clients
  --bit-rate RATE[,BURST]             bits per second from clients
  --max-conns N                       concurrent connections of the service
  --src-conn-rate, --src-pkt-rate, --src-bit-rate, --src-max-conns
                                      the same for each source of the service
  --src-prefix LEN[,LEN6]             sources are /LEN (IPv4, default 32) and
                                      /LEN6 (IPv6, default 128) prefixes
  0 removes a limit; -E with limit options replaces all limits of the service.
";

#[derive(Copy, Clone, PartialEq, Eq)]
enum Which {
    ConnRate,
    PktRate,
    BitRate,
    MaxConns,
}

/// The options, with the set (service or source) and limit each sets.
const OPTS: [(&str, bool, Which); 8] = [
    ("conn-rate", false, Which::ConnRate),
    ("pkt-rate", false, Which::PktRate),
    ("bit-rate", false, Which::BitRate),
    ("max-conns", false, Which::MaxConns),
    ("src-conn-rate", true, Which::ConnRate),
    ("src-pkt-rate", true, Which::PktRate),
    ("src-bit-rate", true, Which::BitRate),
    ("src-max-conns", true, Which::MaxConns),
];

/// A number with an optional K/M/G suffix (×1000).
fn units(s: &str) -> Option<u64> {
    let (digits, mul) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1_000),
        b'm' | b'M' => (&s[..s.len() - 1], 1_000_000),
        b'g' | b'G' => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

/// `n` as `-S` and `--rate` write it: with a K/M/G suffix when exact.
pub fn fmt_units(n: u64) -> String {
    for (m, suffix) in [(1_000_000_000, 'G'), (1_000_000, 'M'), (1_000, 'K')] {
        if n >= m && n.is_multiple_of(m) {
            return format!("{}{suffix}", n / m);
        }
    }
    n.to_string()
}

fn rate_value(name: &str, v: &str) -> Result<Option<RateLimit>, CliError> {
    let bad = || {
        CliError::usage(format!(
            "--{name}: invalid value `{v}' (RATE[,BURST], e.g. 100 or 100,200 or 10M)"
        ))
    };
    let (r, b) = match v.split_once(',') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let rate = units(r).ok_or_else(bad)?;
    let burst = match b {
        Some(b) => units(b).ok_or_else(bad)?,
        None => 0,
    };
    Ok((rate > 0).then_some(RateLimit { rate, burst }))
}

fn set_value(set: &mut LimitSet, name: &str, which: Which, v: &str) -> Result<(), CliError> {
    match which {
        Which::ConnRate => set.conn_rate = rate_value(name, v)?,
        Which::PktRate => set.pkt_rate = rate_value(name, v)?,
        Which::BitRate => set.bit_rate = rate_value(name, v)?,
        Which::MaxConns => {
            let n = units(v)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    CliError::usage(format!(
                        "--{name}: invalid value `{v}' (a number of connections, 0 for none)"
                    ))
                })?;
            set.max_conns = (n > 0).then_some(n);
        }
    }
    Ok(())
}

fn prefix_value(l: &mut Limits, v: &str) -> Result<(), CliError> {
    let (p4, p6) = match v.split_once(',') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    let num = |s: &str, fam: &str, max: u8| -> Result<u8, CliError> {
        s.parse::<u8>()
            .ok()
            .filter(|p| (1..=max).contains(p))
            .ok_or_else(|| {
                CliError::usage(format!(
                    "--src-prefix: invalid value `{v}' ({s} is not an {fam} prefix length within 1-{max})"
                ))
            })
    };
    l.src_prefix_v4 = Some(num(p4, "IPv4", 32)?).filter(|p| *p != 32);
    if let Some(p6) = p6 {
        l.src_prefix_v6 = Some(num(p6, "IPv6", 128)?).filter(|p| *p != 128);
    }
    Ok(())
}

/// Takes the limit options (`--opt VALUE` or `--opt=VALUE`) out of `args`:
/// the other words, in order, and the limits if any option was given.
pub(super) fn extract<'a>(args: &[&'a str]) -> Result<(Vec<&'a str>, Option<Limits>), CliError> {
    let mut rest = Vec::with_capacity(args.len());
    let mut limits = Limits::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        i += 1;
        let Some(long) = a.strip_prefix("--") else {
            rest.push(a);
            continue;
        };
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (long, None),
        };
        let known = name == "src-prefix" || OPTS.iter().any(|o| o.0 == name);
        if !known {
            rest.push(a);
            continue;
        }
        let v = option_value(args, &mut i, &format!("--{name}"), inline)?;
        if seen.contains(&name) {
            return Err(CliError::usage(format!(
                "multiple '{name}' options specified"
            )));
        }
        seen.push(name);
        match OPTS.iter().find(|o| o.0 == name) {
            Some(&(_, true, w)) => set_value(&mut limits.source, name, w, v)?,
            Some(&(_, false, w)) => set_value(&mut limits.service, name, w, v)?,
            None => prefix_value(&mut limits, v)?,
        }
    }
    if seen.is_empty() {
        return Ok((rest, None));
    }
    limits
        .check()
        .map_err(|e| CliError::usage(format!("invalid limit: {e}")))?;
    Ok((rest, Some(limits)))
}

/// Joins limits given on the command line to the command they came with:
/// `-A`/`-E` then also set them; any other command refuses them.
pub(super) fn attach(cmd: AdmCommand, limits: Option<Limits>) -> Result<AdmCommand, CliError> {
    let Some(limits) = limits else {
        return Ok(cmd);
    };
    match cmd {
        AdmCommand::Help | AdmCommand::Version => Ok(cmd),
        AdmCommand::Apply(req @ (Request::AddService { .. } | Request::EditService { .. })) => {
            let key = match &req {
                Request::AddService { spec } | Request::EditService { spec } => spec.key.clone(),
                _ => unreachable!("matched above"),
            };
            Ok(AdmCommand::ApplyAll(vec![
                req,
                Request::SetLimits { key, limits },
            ]))
        }
        _ => Err(CliError::usage(
            "limit options (--conn-rate, --src-conn-rate, ...) go with -A or -E only",
        )),
    }
}

fn rate_opt(out: &mut String, name: &str, r: &Option<RateLimit>) {
    if let Some(r) = r {
        let _ = write!(out, " --{name} {}", fmt_units(r.rate));
        if r.burst != 0 {
            let _ = write!(out, ",{}", fmt_units(r.burst));
        }
    }
}

/// The options that set `l` again, for `-S` (with a leading space each).
pub fn save_opts(l: &Limits) -> String {
    let mut out = String::new();
    for (set, p) in [(&l.service, ""), (&l.source, "src-")] {
        rate_opt(&mut out, &format!("{p}conn-rate"), &set.conn_rate);
        rate_opt(&mut out, &format!("{p}pkt-rate"), &set.pkt_rate);
        rate_opt(&mut out, &format!("{p}bit-rate"), &set.bit_rate);
        if let Some(n) = set.max_conns {
            let _ = write!(out, " --{p}max-conns {n}");
        }
    }
    match (l.src_prefix_v4, l.src_prefix_v6) {
        (None, None) => {}
        (p4, None) => {
            let _ = write!(out, " --src-prefix {}", p4.unwrap_or(32));
        }
        (p4, Some(p6)) => {
            let _ = write!(out, " --src-prefix {},{p6}", p4.unwrap_or(32));
        }
    }
    out
}

/// Adds the limit options to the `-A` lines of `-S` output `text`.
pub fn add_to_save(
    text: &str,
    limits: &[LimitInfo],
    rule: impl Fn(&ServiceKey) -> String,
) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(line);
        if let Some(l) = limits
            .iter()
            .filter(|l| !l.limits.is_empty())
            .find(|l| line.starts_with(&format!("-A {} ", rule(&l.key))))
        {
            out.push_str(&save_opts(&l.limits));
        }
        out.push('\n');
    }
    out
}

fn rate_part(parts: &mut Vec<String>, name: &str, r: &Option<RateLimit>, refused: u64) {
    if let Some(r) = r {
        let burst = if r.burst == 0 { r.rate } else { r.burst };
        parts.push(format!(
            "{name} {}/s burst {}, refused {refused}",
            fmt_units(r.rate),
            fmt_units(burst)
        ));
    }
}

fn set_parts(set: &LimitSet, refused: [u64; 4]) -> Vec<String> {
    let mut parts = Vec::new();
    rate_part(&mut parts, "conn-rate", &set.conn_rate, refused[0]);
    rate_part(&mut parts, "pkt-rate", &set.pkt_rate, refused[1]);
    rate_part(&mut parts, "bit-rate", &set.bit_rate, refused[2]);
    if let Some(n) = set.max_conns {
        parts.push(format!("max-conns {n}, refused {}", refused[3]));
    }
    parts
}

/// The lines `-L --rate` shows under a limited service: each limit with
/// what it refused since the service was made or zeroed.
pub fn rate_lines(out: &mut String, info: &LimitInfo) {
    let l = &info.limits;
    let d = &info.drops;
    let svc = set_parts(
        &l.service,
        [d.conn_rate, d.pkt_rate, d.bit_rate, d.max_conns],
    );
    if !svc.is_empty() {
        let _ = writeln!(out, "  limit service: {}", svc.join("; "));
    }
    let src = set_parts(
        &l.source,
        [
            d.src_conn_rate,
            d.src_pkt_rate,
            d.src_bit_rate,
            d.src_max_conns,
        ],
    );
    if !src.is_empty() {
        let _ = writeln!(
            out,
            "  limit per source /{},/{}: {}",
            l.src_prefix_v4.unwrap_or(32),
            l.src_prefix_v6.unwrap_or(128),
            src.join("; ")
        );
    }
}

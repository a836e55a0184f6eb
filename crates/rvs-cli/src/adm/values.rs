//! The values inside ipvsadm options: numbers, `host[:port]`, DPVS matches.

use std::net::IpAddr;

use crate::client::CliError;

/// ipvsadm's `string_to_number`: decimal digits only, within `[min, max]`.
pub(super) fn number(s: &str, min: u32, max: u32) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = s.parse().ok()?;
    (min as u64..=max as u64).contains(&n).then_some(n as u32)
}

/// The value of option `name`: `inline` (`--opt=VALUE`, `-oVALUE`) when
/// given, else the next argument, `args[*i]` (and `*i` moves past it).
pub(super) fn option_value<'a>(
    args: &[&'a str],
    i: &mut usize,
    name: &str,
    inline: Option<&'a str>,
) -> Result<&'a str, CliError> {
    if let Some(v) = inline {
        return Ok(v);
    }
    let v = args
        .get(*i)
        .ok_or_else(|| CliError::usage(format!("{name}: missing argument")))?;
    *i += 1;
    Ok(v)
}

pub(super) enum HostPortError {
    Addr,
    Port(String),
}

impl HostPortError {
    pub(super) fn into_cli(self, what: &str, arg: &str) -> CliError {
        match self {
            HostPortError::Addr => {
                CliError::usage(format!("illegal {what} address[:port] specified: {arg}"))
            }
            HostPortError::Port(p) => {
                CliError::usage(format!("Illegal port number `{p}' in {what} address {arg}"))
            }
        }
    }
}

/// `host[:port]` as ipvsadm reads it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]:80`. Names are not resolved: rvs never does.
pub(super) fn parse_host_port(s: &str) -> Result<(IpAddr, Option<u16>), HostPortError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or(HostPortError::Addr)?;
        let h: std::net::Ipv6Addr = h.parse().map_err(|_| HostPortError::Addr)?;
        match after {
            "" => (IpAddr::V6(h), None),
            _ => match after.strip_prefix(':') {
                Some(p) => (IpAddr::V6(h), Some(p)),
                None => return Err(HostPortError::Addr),
            },
        }
    } else if let Ok(a) = s.parse::<std::net::Ipv6Addr>() {
        (IpAddr::V6(a), None)
    } else {
        let (h, p) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        let h: std::net::Ipv4Addr = h.parse().map_err(|_| HostPortError::Addr)?;
        (IpAddr::V4(h), p)
    };
    let port = match port {
        None => None,
        Some(p) => {
            Some(number(p, 0, 65535).ok_or_else(|| HostPortError::Port(p.to_string()))? as u16)
        }
    };
    Ok((host, port))
}

/// DPVS's match syntax: `proto=..,src-range=..,dst-range=..,iif=..,oif=..`
/// (and `af=ipv4|ipv6`), with a range or an af required.
pub(super) fn validate_match(m: &str) -> Result<(), String> {
    // -S writes the match as one word, so it must stay one word to restore.
    if m.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
        return Err("blanks and quotes are not allowed".to_string());
    }
    let mut ranged = false;
    for part in m.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}' is not key=value"))?;
        match k {
            "proto" => {
                if !matches!(v, "tcp" | "udp" | "sctp" | "icmp" | "icmpv6") {
                    return Err(format!("unknown proto `{v}'"));
                }
            }
            "af" => {
                if !matches!(v, "ipv4" | "ipv6") {
                    return Err(format!("unknown af `{v}'"));
                }
                ranged = true;
            }
            "src-range" | "dst-range" => {
                validate_range(v).map_err(|_| format!("bad {k} `{v}'"))?;
                ranged = true;
            }
            "iif" | "oif" => {
                if v.is_empty() || v.len() > 15 {
                    return Err(format!("bad {k} `{v}'"));
                }
            }
            _ => return Err(format!("unknown key `{k}'")),
        }
    }
    if !ranged {
        return Err("a src-range, dst-range or af is needed".to_string());
    }
    Ok(())
}

/// `IP1[-IP2][:PORT1[-PORT2]]`, IPv6 in brackets when a port follows.
fn validate_range(v: &str) -> Result<(), ()> {
    let (ips, ports) = if let Some(rest) = v.strip_prefix('[') {
        let (ips, after) = rest.split_once(']').ok_or(())?;
        (ips, after.strip_prefix(':'))
    } else if v.matches(':').count() > 1 {
        (v, None)
    } else {
        match v.split_once(':') {
            Some((i, p)) => (i, Some(p)),
            None => (v, None),
        }
    };
    for ip in ips.split('-') {
        ip.parse::<IpAddr>().map_err(|_| ())?;
    }
    if let Some(p) = ports {
        for port in p.split('-') {
            number(port, 0, 65535).ok_or(())?;
        }
    }
    Ok(())
}

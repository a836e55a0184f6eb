//! dpip's command line: global flags, then `OBJECT COMMAND ARGS`, where ARGS
//! are keyword/value pairs in any order plus one bare address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvs_api::{Request, RouteSpec, Scope};

use super::{usage, Family, IpCommand};
use crate::client::CliError;

const ADDR_HELP: &str = "Usage:
    rvsip addr show [ dev DEVICE ]
    rvsip addr { add | del } IFADDR[/PLEN] dev DEVICE [ sapool ]
    rvsip addr help
";

const ROUTE_HELP: &str = "Usage:
    rvsip route show [ dev DEVICE ]
    rvsip route { add | del } { PREFIX[/PLEN] | default } [ via ADDR ] dev DEVICE
                [ scope { host | link | global | kni_host } ] [ src ADDR ]
                [ mtu MTU ] [ metric NUM ]
    rvsip route help
";

const NEIGH_HELP: &str = "Usage:
    rvsip neigh show [ dev DEVICE ]
    rvsip neigh { add | del } ADDR lladdr LLADDR dev DEVICE
    rvsip neigh help
";

const LINK_HELP: &str = "Usage:
    rvsip [ -s ] link show [ DEVICE ]
    rvsip link help
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Obj {
    Addr,
    Route,
    Neigh,
    Link,
}

impl Obj {
    fn name(self) -> &'static str {
        match self {
            Obj::Addr => "addr",
            Obj::Route => "route",
            Obj::Neigh => "neigh",
            Obj::Link => "link",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Obj::Addr => ADDR_HELP,
            Obj::Route => ROUTE_HELP,
            Obj::Neigh => NEIGH_HELP,
            Obj::Link => LINK_HELP,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Del,
    Show,
}

/// The words after the command, consumed left to right.
struct Words<'a> {
    w: &'a [&'a str],
    i: usize,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let w = self.w.get(self.i).copied();
        if w.is_some() {
            self.i += 1;
        }
        w
    }

    fn value(&mut self, kw: &str) -> Result<&'a str, CliError> {
        self.next()
            .ok_or_else(|| CliError::usage(format!("missing argument for \"{kw}\"")))
    }
}

fn parse_ip(s: &str) -> Result<IpAddr, CliError> {
    s.parse()
        .map_err(|_| CliError::usage(format!("invalid IP address \"{s}\"")))
}

fn max_plen(a: &IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

/// `ADDR[/PLEN]`; without a length the host length of the family.
fn parse_prefix(s: &str) -> Result<(IpAddr, u8), CliError> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr = parse_ip(a)?;
    let plen = match l {
        None => max_plen(&addr),
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max_plen(&addr) && l.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(CliError::usage(format!(
                    "invalid prefix length \"{l}\" in \"{s}\""
                )))
            }
        },
    };
    Ok((addr, plen))
}

fn parse_num<T: std::str::FromStr>(kw: &str, s: &str) -> Result<T, CliError> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CliError::usage(format!("invalid {kw} \"{s}\"")));
    }
    s.parse()
        .map_err(|_| CliError::usage(format!("invalid {kw} \"{s}\"")))
}

/// `aa:bb:cc:dd:ee:ff` (one or two hex digits per octet), normalised to
/// lower-case two-digit octets.
fn parse_mac(s: &str) -> Result<String, CliError> {
    let bad = || CliError::usage(format!("invalid link layer addr \"{s}\""));
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut octets = Vec::with_capacity(6);
    for p in parts {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        octets.push(u8::from_str_radix(p, 16).map_err(|_| bad())?);
    }
    Ok(octets
        .iter()
        .map(|o| format!("{o:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

fn parse_scope(s: &str) -> Result<Scope, CliError> {
    match s {
        "host" => Ok(Scope::Host),
        "link" => Ok(Scope::Link),
        "global" => Ok(Scope::Global),
        "kni_host" => Ok(Scope::KniHost),
        _ => Err(CliError::usage(format!(
            "invalid scope \"{s}\" (host, link, global or kni_host)"
        ))),
    }
}

fn extra(w: &str) -> CliError {
    CliError::usage(format!("unexpected argument \"{w}\""))
}

/// `[dev] DEV` or nothing, for the `show` commands.
fn show_dev(words: &mut Words<'_>, bare_ok: bool) -> Result<Option<String>, CliError> {
    let mut dev = None;
    while let Some(w) = words.next() {
        match w {
            "dev" if dev.is_none() => dev = Some(words.value("dev")?.to_string()),
            _ if bare_ok && dev.is_none() => dev = Some(w.to_string()),
            _ => return Err(extra(w)),
        }
    }
    Ok(dev)
}

/// Refuses `a` (the address or prefix of an add/del) of another family
/// than the `-4`/`-6` given.
fn check_family(family: Option<Family>, a: &IpAddr, plen: u8) -> Result<(), CliError> {
    match family {
        Some(f) if !f.holds(a) => Err(CliError::usage(format!(
            "address family mismatch: {a}/{plen} with {}",
            if f == Family::V6 { "-6" } else { "-4" }
        ))),
        _ => Ok(()),
    }
}

fn addr_cmd(
    cmd: Cmd,
    words: &mut Words<'_>,
    family: Option<Family>,
) -> Result<IpCommand, CliError> {
    if cmd == Cmd::Show {
        return Ok(IpCommand::ShowAddrs {
            dev: show_dev(words, true)?,
            family,
        });
    }
    let mut addr = None;
    let mut dev = None;
    let mut sapool = false;
    while let Some(w) = words.next() {
        match w {
            "dev" => dev = Some(words.value("dev")?.to_string()),
            "sapool" => sapool = true,
            "to" | "local" => addr = Some(parse_prefix(words.value(w)?)?),
            _ if addr.is_none() => addr = Some(parse_prefix(w)?),
            _ => return Err(extra(w)),
        }
    }
    let (addr, plen) = addr.ok_or_else(|| CliError::usage("missing address"))?;
    check_family(family, &addr, plen)?;
    let dev = dev.ok_or_else(|| CliError::usage("missing device"))?;
    Ok(IpCommand::Apply(match cmd {
        Cmd::Add => Request::AddAddr {
            addr,
            plen,
            dev,
            sapool,
        },
        _ => Request::DelAddr { addr, dev },
    }))
}

fn route_cmd(
    cmd: Cmd,
    words: &mut Words<'_>,
    family: Option<Family>,
) -> Result<IpCommand, CliError> {
    if cmd == Cmd::Show {
        return Ok(IpCommand::ShowRoutes {
            dev: show_dev(words, false)?,
            family,
        });
    }
    let mut prefix: Option<Option<(IpAddr, u8)>> = None; // Some(None) = default
    let (mut via, mut src, mut dev, mut scope, mut mtu) = (None, None, None, None, None);
    let mut metric = 0u32;
    while let Some(w) = words.next() {
        match w {
            "via" | "gw" => via = Some(parse_ip(words.value(w)?)?),
            "src" => src = Some(parse_ip(words.value(w)?)?),
            "dev" | "oif" => dev = Some(words.value(w)?.to_string()),
            "scope" => scope = Some(parse_scope(words.value(w)?)?),
            "mtu" => {
                let m: u16 = parse_num("mtu", words.value(w)?)?;
                if m == 0 {
                    return Err(CliError::usage("invalid mtu \"0\""));
                }
                mtu = Some(m);
            }
            "metric" => metric = parse_num("metric", words.value(w)?)?,
            "to" => prefix = Some(Some(parse_prefix(words.value(w)?)?)),
            "default" if prefix.is_none() => prefix = Some(None),
            _ if prefix.is_none() => prefix = Some(Some(parse_prefix(w)?)),
            _ => return Err(extra(w)),
        }
    }
    let prefix = prefix.ok_or_else(|| CliError::usage("missing route prefix"))?;
    let (prefix, plen) = match prefix {
        Some(p) => p,
        // `default` takes its family from `-4`/`-6`, else from the gateway
        // or source, IPv4 otherwise.
        None => match (family, via.or(src)) {
            (Some(Family::V6), _) | (None, Some(IpAddr::V6(_))) => {
                (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
            }
            _ => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        },
    };
    check_family(family, &prefix, plen)?;
    for (kw, a) in [("via", via), ("src", src)] {
        if let Some(a) = a {
            if a.is_ipv4() != prefix.is_ipv4() {
                return Err(CliError::usage(format!(
                    "address family mismatch: {kw} {a} for {prefix}/{plen}"
                )));
            }
        }
    }
    if cmd == Cmd::Del {
        return Ok(IpCommand::Apply(Request::DelRoute { prefix, plen }));
    }
    let dev = dev.ok_or_else(|| CliError::usage("missing device"))?;
    Ok(IpCommand::Apply(Request::AddRoute {
        route: RouteSpec {
            prefix,
            plen,
            via,
            dev,
            scope,
            src,
            mtu,
            metric,
        },
    }))
}

fn neigh_cmd(cmd: Cmd, words: &mut Words<'_>) -> Result<IpCommand, CliError> {
    if cmd == Cmd::Show {
        return Ok(IpCommand::ShowNeigh {
            dev: show_dev(words, false)?,
        });
    }
    let (mut addr, mut mac, mut dev) = (None, None, None);
    while let Some(w) = words.next() {
        match w {
            "dev" => dev = Some(words.value(w)?.to_string()),
            "lladdr" => mac = Some(parse_mac(words.value(w)?)?),
            _ if addr.is_none() => addr = Some(parse_ip(w)?),
            _ => return Err(extra(w)),
        }
    }
    let addr = addr.ok_or_else(|| CliError::usage("missing ip address"))?;
    let dev = dev.ok_or_else(|| CliError::usage("missing device"))?;
    if cmd == Cmd::Del {
        return Ok(IpCommand::Apply(Request::DelNeigh { addr, dev }));
    }
    let mac = mac.ok_or_else(|| CliError::usage("missing lladdr"))?;
    if mac == "00:00:00:00:00:00" {
        return Err(CliError::usage("invalid MAC address 00:00:00:00:00:00"));
    }
    Ok(IpCommand::Apply(Request::AddNeigh { addr, mac, dev }))
}

/// Parses an `rvsip` command line (without the program name).
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<IpCommand, CliError> {
    let args: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
    if let Some(r) = super::ipset::parse_ipset(&args) {
        return r;
    }
    let mut stats = false;
    let mut family = None;
    let mut i = 0;
    while let Some(a) = args.get(i).filter(|a| a.starts_with('-')) {
        i += 1;
        match *a {
            "--stats" => stats = true,
            "--verbose" => {}
            "--help" => return Ok(IpCommand::Help(usage())),
            "--version" => return Ok(IpCommand::Version),
            _ if !a.starts_with("--") && a.len() > 1 => {
                for c in a[1..].chars() {
                    match c {
                        's' => stats = true,
                        '4' => family = Some(Family::V4),
                        '6' => family = Some(Family::V6),
                        // Accepted for dpip compatibility; rvsip shows everything it has anyway.
                        'v' => {}
                        'h' => return Ok(IpCommand::Help(usage())),
                        'V' => return Ok(IpCommand::Version),
                        _ => {
                            return Err(CliError::usage(format!(
                                "invalid option -- '{c}'\nTry \"rvsip help\"."
                            )))
                        }
                    }
                }
            }
            _ => {
                return Err(CliError::usage(format!(
                    "invalid option \"{a}\"\nTry \"rvsip help\"."
                )))
            }
        }
    }
    if args.get(i) == Some(&"vlan") {
        let rest = args.get(i + 2..).unwrap_or(&[]);
        return super::vlan::parse_vlan(args.get(i + 1).copied(), rest);
    }
    let obj = match args.get(i) {
        None => return Err(CliError::usage(usage().trim_end().to_string())),
        Some(&"help") => return Ok(IpCommand::Help(usage())),
        Some(&("addr" | "address")) => Obj::Addr,
        Some(&"route") => Obj::Route,
        Some(&("neigh" | "neighbor" | "neighbour")) => Obj::Neigh,
        Some(&"link") => Obj::Link,
        Some(o) => {
            return Err(CliError::usage(format!(
                "Object \"{o}\" is unknown, try \"rvsip help\"."
            )))
        }
    };
    i += 1;
    // dpip permutes its options: `route -6 add ...` as well as `-6 route add ...`.
    while let Some(f) = args.get(i).and_then(|a| match *a {
        "-4" => Some(Family::V4),
        "-6" => Some(Family::V6),
        _ => None,
    }) {
        family = Some(f);
        i += 1;
    }
    let cmd = match args.get(i).copied() {
        // Like dpip and ip, an object alone shows it.
        None | Some("show" | "list" | "ls") => Cmd::Show,
        Some("help") => return Ok(IpCommand::Help(obj.help().to_string())),
        Some("add") if obj != Obj::Link => Cmd::Add,
        Some("del" | "delete") if obj != Obj::Link => Cmd::Del,
        Some(c) => {
            return Err(CliError::usage(format!(
                "unknown command \"{c}\" for {}, try \"rvsip {} help\"",
                obj.name(),
                obj.name()
            )))
        }
    };
    let rest = args.get(i + 1..).unwrap_or(&[]);
    let mut words = Words { w: rest, i: 0 };
    match obj {
        Obj::Addr => addr_cmd(cmd, &mut words, family),
        Obj::Route => route_cmd(cmd, &mut words, family),
        Obj::Neigh => neigh_cmd(cmd, &mut words),
        Obj::Link => Ok(IpCommand::ShowLinks {
            dev: show_dev(&mut words, true)?,
            stats,
        }),
    }
}

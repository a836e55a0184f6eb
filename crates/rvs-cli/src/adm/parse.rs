//! ipvsadm's getopt-style command line: combined short flags (`-lnc`),
//! attached or separate arguments (`-t10.0.0.1:80`, `-t 10.0.0.1:80`), long
//! options with `=` or a separate value, and options in any order around the
//! command. Validity of option/command combinations follows ipvsadm's table,
//! with its messages, so scripts see the same errors.

use std::net::IpAddr;

use rvs_api::{DestSpec, Forward, Proto, ProxyProtocol, Request, ServiceKey, ServiceSpec};

use super::values::{number, parse_host_port, validate_match};
use super::{AdmCommand, ListOpts, ListView};
use crate::client::CliError;

/// ipvsadm's default scheduler.
const DEFAULT_SCHED: &str = "wlc";
/// ipvsadm's default persistence timeout, seconds.
const DEFAULT_PERSISTENCE: u32 = 300;
/// ipvsadm's upper bound for a persistence timeout (31 days).
const MAX_TIMEOUT: u32 = 86400 * 31;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    AddService,
    EditService,
    DelService,
    Flush,
    List,
    AddServer,
    DelServer,
    EditServer,
    Restore,
    Save,
    Zero,
    AddLaddr,
    DelLaddr,
    GetLaddr,
}

/// Names as ipvsadm prints them in its messages, indexed by `Cmd as usize`.
const CMD_NAMES: [&str; 14] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "restore",
    "save",
    "zero",
    "add-laddr",
    "del-laddr",
    "get-laddr",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Stats,
    Rate,
    Exact,
    NoSort,
    LocalAddress,
    Ifname,
    SchedFlags,
}

/// Names as ipvsadm prints them, indexed by `Opt as usize`; the order is
/// ipvsadm's, which decides which of two conflicting options is named first.
const OPT_NAMES: [&str; 17] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "stats",
    "rate",
    "exact",
    "nosort",
    "local-address",
    "ifname",
    "sched-flags",
];

/// ipvsadm's table of legal combinations, one row per command, one column per
/// option in [`OPT_NAMES`] order: `+` compulsory, `x` illegal, `1` at most one
/// of the `1` options, `.` optional.
const TABLE: [&[u8; 17]; 14] = [
    b"xx+..xxxxxxxxxxx.", // add-service
    b"xx+..xxxxxxxxxxx.", // edit-service
    b"xx+xxxxxxxxxxxxxx", // delete-service
    b"xxxxxxxxxxxxxxxxx", // flush
    b".11xxxxxxx....xxx", // list
    b"xx+xx+....xxxxxxx", // add-server
    b"xx+xx+xxxxxxxxxxx", // delete-server
    b"xx+xx+....xxxxxxx", // edit-server
    b"xxxxxxxxxxxxxxxxx", // restore
    b".xxxxxxxxxxxxxxxx", // save
    b"xx.xxxxxxxxxxxxxx", // zero
    b"xx+xxxxxxxxxxx++x", // add-laddr
    b"xx+xxxxxxxxxxx++x", // del-laddr
    b".x.xxxxxxxxxxxxxx", // get-laddr
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    /// popt's optional argument: taken from the next word unless it looks like an option.
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Cmd(Cmd),
    Help,
    Version,
    Tcp,
    Udp,
    Match,
    Sched,
    Persist,
    Server,
    Fwd(Forward),
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    Stats,
    Rate,
    Exact,
    NoSort,
    Sort,
    Laddr,
    Ifname,
    SchedFlags,
    Synproxy,
    ProxyProtocol,
}

struct Spec {
    long: &'static str,
    short: Option<char>,
    arg: Arg,
    act: Act,
}

const fn spec(long: &'static str, short: Option<char>, arg: Arg, act: Act) -> Spec {
    Spec {
        long,
        short,
        arg,
        act,
    }
}

const SPECS: &[Spec] = &[
    spec(
        "add-service",
        Some('A'),
        Arg::None,
        Act::Cmd(Cmd::AddService),
    ),
    spec(
        "edit-service",
        Some('E'),
        Arg::None,
        Act::Cmd(Cmd::EditService),
    ),
    spec(
        "delete-service",
        Some('D'),
        Arg::None,
        Act::Cmd(Cmd::DelService),
    ),
    spec("clear", Some('C'), Arg::None, Act::Cmd(Cmd::Flush)),
    spec("list", Some('L'), Arg::None, Act::Cmd(Cmd::List)),
    spec("list", Some('l'), Arg::None, Act::Cmd(Cmd::List)),
    spec("zero", Some('Z'), Arg::None, Act::Cmd(Cmd::Zero)),
    spec("add-server", Some('a'), Arg::None, Act::Cmd(Cmd::AddServer)),
    spec(
        "edit-server",
        Some('e'),
        Arg::None,
        Act::Cmd(Cmd::EditServer),
    ),
    spec(
        "delete-server",
        Some('d'),
        Arg::None,
        Act::Cmd(Cmd::DelServer),
    ),
    spec("restore", Some('R'), Arg::None, Act::Cmd(Cmd::Restore)),
    spec("save", Some('S'), Arg::None, Act::Cmd(Cmd::Save)),
    spec("add-laddr", Some('P'), Arg::None, Act::Cmd(Cmd::AddLaddr)),
    spec("del-laddr", Some('Q'), Arg::None, Act::Cmd(Cmd::DelLaddr)),
    spec("get-laddr", Some('G'), Arg::None, Act::Cmd(Cmd::GetLaddr)),
    spec("help", Some('h'), Arg::None, Act::Help),
    spec("version", Some('v'), Arg::None, Act::Version),
    spec("tcp-service", Some('t'), Arg::Required, Act::Tcp),
    spec("udp-service", Some('u'), Arg::Required, Act::Udp),
    spec("match", Some('H'), Arg::Required, Act::Match),
    spec("scheduler", Some('s'), Arg::Required, Act::Sched),
    // ipvsadm's `-b`; in DPVS's ipvsadm and here `-b` is --fullnat.
    spec("sched-flags", None, Arg::Required, Act::SchedFlags),
    spec("persistent", Some('p'), Arg::Optional, Act::Persist),
    spec("real-server", Some('r'), Arg::Required, Act::Server),
    spec("masquerading", Some('m'), Arg::None, Act::Fwd(Forward::Nat)),
    spec("ipip", Some('i'), Arg::None, Act::Fwd(Forward::Tunnel)),
    spec("gatewaying", Some('g'), Arg::None, Act::Fwd(Forward::Dr)),
    spec("fullnat", Some('b'), Arg::None, Act::Fwd(Forward::Fnat)),
    spec("snat", Some('J'), Arg::None, Act::Fwd(Forward::Snat)),
    spec("weight", Some('w'), Arg::Required, Act::Weight),
    spec("u-threshold", Some('x'), Arg::Required, Act::UThreshold),
    spec("l-threshold", Some('y'), Arg::Required, Act::LThreshold),
    spec("numeric", Some('n'), Arg::None, Act::Numeric),
    spec("connection", Some('c'), Arg::None, Act::Connection),
    spec("stats", None, Arg::None, Act::Stats),
    spec("rate", None, Arg::None, Act::Rate),
    spec("exact", Some('X'), Arg::None, Act::Exact),
    spec("nosort", None, Arg::None, Act::NoSort),
    spec("sort", None, Arg::None, Act::Sort),
    spec("laddr", Some('z'), Arg::Required, Act::Laddr),
    spec("ifname", Some('F'), Arg::Required, Act::Ifname),
    // DPVS's ipvsadm: the SYN proxy of a TCP service, on -A and -E.
    spec("synproxy", Some('j'), Arg::Required, Act::Synproxy),
    spec("proxy-protocol", None, Arg::Required, Act::ProxyProtocol),
];

/// Everything collected from the command line before the combination check.
struct State {
    cmd: Option<Cmd>,
    help: bool,
    version: bool,
    opts: u32,
    key: Option<ServiceKey>,
    sched: Option<String>,
    sched_flags: Vec<String>,
    persistence: Option<u32>,
    server: Option<(IpAddr, Option<u16>)>,
    forward: Forward,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    stats: bool,
    rate: bool,
    exact: bool,
    nosort: bool,
    connection: bool,
    laddr: Option<IpAddr>,
    ifname: Option<String>,
    /// `-j enable|disable`; checked outside ipvsadm's table (DPVS's option).
    synproxy: Option<bool>,
    proxy_protocol: Option<ProxyProtocol>,
}

impl State {
    fn new() -> State {
        State {
            cmd: None,
            help: false,
            version: false,
            opts: 0,
            key: None,
            sched: None,
            sched_flags: Vec::new(),
            persistence: None,
            server: None,
            // ipvsadm's defaults: direct routing, weight 1.
            forward: Forward::Dr,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            stats: false,
            rate: false,
            exact: false,
            nosort: false,
            connection: false,
            laddr: None,
            ifname: None,
            synproxy: None,
            proxy_protocol: None,
        }
    }

    fn set_command(&mut self, c: Cmd) -> Result<(), CliError> {
        if self.cmd.is_some() {
            return Err(CliError::usage("Two or more commands specified"));
        }
        self.cmd = Some(c);
        Ok(())
    }

    fn set_option(&mut self, o: Opt) -> Result<(), CliError> {
        let bit = 1u32 << (o as u32);
        if self.opts & bit != 0 {
            return Err(CliError::usage(format!(
                "multiple '{}' options specified",
                OPT_NAMES[o as usize]
            )));
        }
        self.opts |= bit;
        Ok(())
    }

    fn apply(&mut self, act: Act, value: Option<&str>) -> Result<(), CliError> {
        let v = value.unwrap_or("");
        match act {
            Act::Cmd(c) => self.set_command(c)?,
            Act::Help => self.help = true,
            Act::Version => self.version = true,
            Act::Tcp | Act::Udp => {
                self.set_option(Opt::Service)?;
                let proto = if act == Act::Tcp {
                    Proto::Tcp
                } else {
                    Proto::Udp
                };
                let (vip, port) =
                    parse_host_port(v).map_err(|e| e.into_cli("virtual server", v))?;
                self.key = Some(ServiceKey::Vs {
                    proto,
                    vip,
                    port: port.unwrap_or(0),
                });
            }
            Act::Match => {
                self.set_option(Opt::Service)?;
                validate_match(v)
                    .map_err(|why| CliError::usage(format!("illegal match specified: {why}")))?;
                self.key = Some(ServiceKey::Match(v.to_string()));
            }
            Act::Sched => {
                self.set_option(Opt::Scheduler)?;
                // IP_VS_SCHEDNAME_MAXLEN is 16 with the NUL; which names exist is rvsd's call.
                if v.is_empty()
                    || v.len() > 15
                    || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(CliError::usage(format!(
                        "illegal scheduler name `{v}' specified"
                    )));
                }
                self.sched = Some(v.to_string());
            }
            Act::SchedFlags => {
                self.set_option(Opt::SchedFlags)?;
                // Which flags a scheduler takes is rvsd's call.
                for f in v.split(',') {
                    if f.is_empty() || !f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                        return Err(CliError::usage(format!(
                            "invalid sched flag '{f}' in `{v}'"
                        )));
                    }
                    self.sched_flags.push(f.to_string());
                }
            }
            Act::Persist => {
                self.set_option(Opt::Persistent)?;
                let t = match value {
                    None => DEFAULT_PERSISTENCE,
                    Some(s) => number(s, 1, MAX_TIMEOUT).ok_or_else(|| {
                        CliError::usage(format!("invalid timeout value `{s}' specified"))
                    })?,
                };
                self.persistence = Some(t);
            }
            Act::Server => {
                self.set_option(Opt::Server)?;
                self.server = Some(parse_host_port(v).map_err(|e| e.into_cli("real server", v))?);
            }
            Act::Fwd(f) => {
                self.set_option(Opt::Forward)?;
                self.forward = f;
            }
            Act::Weight => {
                self.set_option(Opt::Weight)?;
                self.weight = number(v, 0, 65535)
                    .ok_or_else(|| CliError::usage("illegal weight specified"))?;
            }
            Act::UThreshold => {
                self.set_option(Opt::UThreshold)?;
                self.u_threshold = number(v, 0, i32::MAX as u32)
                    .ok_or_else(|| CliError::usage("illegal u_threshold specified"))?;
            }
            Act::LThreshold => {
                self.set_option(Opt::LThreshold)?;
                self.l_threshold = number(v, 0, i32::MAX as u32)
                    .ok_or_else(|| CliError::usage("illegal l_threshold specified"))?;
            }
            Act::Numeric => self.set_option(Opt::Numeric)?,
            Act::Connection => {
                self.set_option(Opt::Connection)?;
                self.connection = true;
            }
            Act::Stats => {
                self.set_option(Opt::Stats)?;
                self.stats = true;
            }
            Act::Rate => {
                self.set_option(Opt::Rate)?;
                self.rate = true;
            }
            Act::Exact => {
                self.set_option(Opt::Exact)?;
                self.exact = true;
            }
            Act::NoSort => {
                self.set_option(Opt::NoSort)?;
                self.nosort = true;
            }
            Act::Sort => {}
            Act::Laddr => {
                self.set_option(Opt::LocalAddress)?;
                match parse_host_port(v) {
                    Ok((a, None)) => self.laddr = Some(a),
                    _ => return Err(CliError::usage(format!("illegal local address: {v}"))),
                }
            }
            Act::Ifname => {
                self.set_option(Opt::Ifname)?;
                if v.is_empty()
                    || v.len() > 15
                    || v.contains(|c: char| c.is_whitespace() || c == '/')
                {
                    return Err(CliError::usage(format!(
                        "illegal interface name `{v}' specified"
                    )));
                }
                self.ifname = Some(v.to_string());
            }
            Act::Synproxy => {
                if self.synproxy.is_some() {
                    return Err(CliError::usage("multiple 'synproxy' options specified"));
                }
                self.synproxy = Some(match v {
                    "enable" => true,
                    "disable" => false,
                    _ => {
                        return Err(CliError::usage(format!(
                            "synproxy switch must be enable or disable, not `{v}'"
                        )))
                    }
                });
            }
            Act::ProxyProtocol => {
                if self.proxy_protocol.is_some() {
                    return Err(CliError::usage(
                        "multiple 'proxy-protocol' options specified",
                    ));
                }
                self.proxy_protocol = Some(match v {
                    "v1" => ProxyProtocol::V1,
                    "v2" => ProxyProtocol::V2,
                    "disable" => ProxyProtocol::Disable,
                    _ => {
                        return Err(CliError::usage(format!(
                            "proxy-protocol must be v1, v2 or disable, not `{v}'"
                        )))
                    }
                });
            }
        }
        Ok(())
    }
}

fn lookup_long(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.long == name)
}

fn lookup_short(c: char) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.short == Some(c))
}

fn try_help() -> &'static str {
    "Try `rvsadm -h' or 'rvsadm --help' for more information."
}

/// Parses an `rvsadm` command line (without the program name).
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<AdmCommand, CliError> {
    let args: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
    if let Some(r) = super::daemon::parse_daemon(&args) {
        return r;
    }
    if let Some(r) = super::acl::parse_acl(&args) {
        return r;
    }
    if let Some(r) = super::capture::parse_capture(&args) {
        return r;
    }
    let (args, limits) = super::limits::extract(&args)?;
    if limits.is_some() {
        return super::limits::attach(parse_args(&args)?, limits);
    }
    // ipvsadm with no argument lists the table.
    if args.is_empty() {
        return Ok(AdmCommand::List(ListOpts {
            key: None,
            view: ListView::Table,
            exact: false,
            sort: true,
        }));
    }
    let mut st = State::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        i += 1;
        if a == "--" {
            if let Some(extra) = args.get(i) {
                return Err(CliError::usage(format!("unexpected argument {extra}")));
            }
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let spec = lookup_long(name).ok_or_else(|| {
                CliError::usage(format!("--{name}: unknown option\n{}", try_help()))
            })?;
            let value = match spec.arg {
                Arg::None => {
                    if inline.is_some() {
                        return Err(CliError::usage(format!(
                            "--{name}: option does not take an argument"
                        )));
                    }
                    None
                }
                Arg::Required => match inline {
                    Some(v) => Some(v),
                    None => {
                        let v = args.get(i).ok_or_else(|| {
                            CliError::usage(format!("--{name}: missing argument"))
                        })?;
                        i += 1;
                        Some(*v)
                    }
                },
                Arg::Optional => match inline {
                    Some(v) => Some(v),
                    None => match args.get(i) {
                        Some(v) if !v.starts_with('-') => {
                            i += 1;
                            Some(*v)
                        }
                        _ => None,
                    },
                },
            };
            st.apply(spec.act, value)?;
        } else if a.len() > 1 && a.starts_with('-') {
            let body = &a[1..];
            let chars = body.char_indices();
            for (pos, c) in chars {
                let spec = lookup_short(c).ok_or_else(|| {
                    CliError::usage(format!("-{c}: unknown option\n{}", try_help()))
                })?;
                let rest = &body[pos + c.len_utf8()..];
                let value = match spec.arg {
                    Arg::None => None,
                    Arg::Required => {
                        let v = if !rest.is_empty() {
                            rest
                        } else {
                            let v = args.get(i).ok_or_else(|| {
                                CliError::usage(format!("-{c}: missing argument"))
                            })?;
                            i += 1;
                            v
                        };
                        st.apply(spec.act, Some(v))?;
                        break;
                    }
                    Arg::Optional => {
                        let v = if !rest.is_empty() {
                            Some(rest)
                        } else {
                            match args.get(i) {
                                Some(v) if !v.starts_with('-') => {
                                    i += 1;
                                    Some(*v)
                                }
                                _ => None,
                            }
                        };
                        st.apply(spec.act, v)?;
                        break;
                    }
                };
                st.apply(spec.act, value)?;
            }
        } else {
            return Err(CliError::usage(format!("unexpected argument {a}")));
        }
    }
    build(st)
}

fn check_combination(cmd: Cmd, opts: u32) -> Result<(), CliError> {
    let row = TABLE[cmd as usize];
    let cname = CMD_NAMES[cmd as usize];
    let mut first_exclusive: Option<usize> = None;
    for (j, &rule) in row.iter().enumerate() {
        let given = opts & (1 << j) != 0;
        match (given, rule) {
            (false, b'+') => {
                return Err(CliError::usage(format!(
                    "You need to supply the '{}' option for the '{cname}' command",
                    OPT_NAMES[j]
                )))
            }
            (true, b'x') => {
                return Err(CliError::usage(format!(
                    "Illegal '{}' option with the '{cname}' command",
                    OPT_NAMES[j]
                )))
            }
            (true, b'1') => match first_exclusive {
                None => first_exclusive = Some(j),
                Some(last) => {
                    return Err(CliError::usage(format!(
                        "The option '{}' conflicts with the '{}' option in the '{cname}' command",
                        OPT_NAMES[j], OPT_NAMES[last]
                    )))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

fn build(st: State) -> Result<AdmCommand, CliError> {
    if st.help {
        return Ok(AdmCommand::Help);
    }
    if st.version {
        return Ok(AdmCommand::Version);
    }
    let cmd = st
        .cmd
        .ok_or_else(|| CliError::usage(format!("No command specified\n{}", try_help())))?;
    check_combination(cmd, st.opts)?;
    if st.synproxy.is_some() && !matches!(cmd, Cmd::AddService | Cmd::EditService) {
        return Err(CliError::usage(format!(
            "Illegal 'synproxy' option with the '{}' command",
            CMD_NAMES[cmd as usize]
        )));
    }
    if st.proxy_protocol.is_some() && !matches!(cmd, Cmd::AddService | Cmd::EditService) {
        return Err(CliError::usage(format!(
            "Illegal 'proxy-protocol' option with the '{}' command",
            CMD_NAMES[cmd as usize]
        )));
    }
    // The table guarantees a key where it is compulsory; these are for the type system.
    let need_key = || {
        st.key
            .clone()
            .ok_or_else(|| CliError::usage("missing service address"))
    };
    let out = match cmd {
        Cmd::AddService | Cmd::EditService => {
            let key = need_key()?;
            if let ServiceKey::Vs { port: 0, .. } = key {
                if st.persistence.is_none() {
                    return Err(CliError::usage(
                        "Zero port specified for non-persistent service",
                    ));
                }
            }
            let spec = ServiceSpec {
                key,
                sched: st
                    .sched
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SCHED.to_string()),
                persistence: st.persistence,
                sched_flags: st.sched_flags.clone(),
                synproxy: st.synproxy,
                proxy_protocol: st.proxy_protocol,
            };
            AdmCommand::Apply(if cmd == Cmd::AddService {
                Request::AddService { spec }
            } else {
                Request::EditService { spec }
            })
        }
        Cmd::DelService => AdmCommand::Apply(Request::DelService { key: need_key()? }),
        Cmd::Flush => AdmCommand::Apply(Request::Clear),
        Cmd::Zero => AdmCommand::Apply(Request::Zero {
            key: st.key.clone(),
        }),
        Cmd::AddServer | Cmd::EditServer | Cmd::DelServer => {
            let key = need_key()?;
            let (addr, port) = st
                .server
                .ok_or_else(|| CliError::usage("missing real server address"))?;
            let svc_port = match key {
                ServiceKey::Vs { port, .. } => port,
                ServiceKey::Match(_) => 0,
            };
            let mut port = port.unwrap_or(svc_port);
            // ipvsadm: DR and tunnel cannot change the port, so the service's is used.
            if cmd != Cmd::DelServer
                && matches!(key, ServiceKey::Vs { .. })
                && matches!(st.forward, Forward::Dr | Forward::Tunnel)
            {
                port = svc_port;
            }
            if cmd == Cmd::DelServer {
                AdmCommand::Apply(Request::DelDest { key, addr, port })
            } else {
                let dest = DestSpec {
                    addr,
                    port,
                    weight: st.weight,
                    forward: st.forward,
                    u_threshold: st.u_threshold,
                    l_threshold: st.l_threshold,
                };
                AdmCommand::Apply(if cmd == Cmd::AddServer {
                    Request::AddDest { key, dest }
                } else {
                    Request::EditDest { key, dest }
                })
            }
        }
        Cmd::AddLaddr | Cmd::DelLaddr => {
            let key = need_key()?;
            let addr = st
                .laddr
                .ok_or_else(|| CliError::usage("missing local address"))?;
            let dev = st
                .ifname
                .clone()
                .ok_or_else(|| CliError::usage("missing interface name"))?;
            AdmCommand::Apply(if cmd == Cmd::AddLaddr {
                Request::AddLaddr { key, addr, dev }
            } else {
                Request::DelLaddr { key, addr, dev }
            })
        }
        Cmd::GetLaddr => AdmCommand::GetLaddr(st.key.clone()),
        Cmd::Save => AdmCommand::Save,
        Cmd::Restore => AdmCommand::Restore,
        Cmd::List => {
            if st.connection && (st.stats || st.rate) {
                return Err(CliError::usage("options conflicts in the list command"));
            }
            // As in ipvsadm, --stats wins over --rate when both are given.
            let view = if st.connection {
                ListView::Conns
            } else if st.stats {
                ListView::Stats
            } else if st.rate {
                ListView::Rate
            } else {
                ListView::Table
            };
            AdmCommand::List(ListOpts {
                key: st.key.clone(),
                view,
                exact: st.exact,
                sort: !st.nosort,
            })
        }
    };
    Ok(out)
}

//! `rvsadm`: ipvsadm's command line (with the DPVS additions) turned into
//! control-API requests, and the replies turned into ipvsadm's output.
//!
//! [`parse_args`] and [`parse_restore`] are pure; the `format_*` functions
//! are pure; [`execute`] runs a parsed command against a [`Transport`].

mod acl;
pub mod capture;
mod daemon;
mod format;
mod limits;
mod parse;
mod restore;
mod values;

#[cfg(test)]
mod tests_acl;
#[cfg(test)]
mod tests_format;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_parse;

use std::io::Read;

use rvs_api::{ConnCursor, Reply, Request, ServiceKey};

use crate::client::{expect_ok, unexpected, CliError, Transport};

pub use acl::{format_acl, format_acl_save};
pub use daemon::format_daemons;
pub use format::{
    format_conn_lines, format_conns, format_laddrs, format_list, format_save, large_num,
};
pub use parse::parse_args;
pub use restore::{parse_restore, split_line};

/// Connections asked for per request by `-L -c`, which fetches pages until
/// the listing is complete: no reply grows with the table.
pub const CONN_PAGE: usize = rvs_api::CONN_PAGE_MAX;

/// Which columns `-L` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListView {
    /// Forward, weight and connection counts (plain `-L`).
    Table,
    /// `--stats`: cumulative counters.
    Stats,
    /// `--rate`: per-second rates.
    Rate,
    /// `-c`: the connection entries.
    Conns,
}

/// Options of `-L`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOpts {
    /// Only this service (`-t/-u/-H`), else all.
    pub key: Option<ServiceKey>,
    /// Which columns.
    pub view: ListView,
    /// `--exact`: no K/M/G abbreviation.
    pub exact: bool,
    /// Sorted by address like ipvsadm (off with `--nosort`).
    pub sort: bool,
}

/// A parsed `rvsadm` command line.
#[derive(Debug, Clone, PartialEq)]
pub enum AdmCommand {
    /// A change whose reply must be `Ok` (`-A -E -D -C -Z -a -e -d --add-laddr --del-laddr`).
    Apply(Request),
    /// `-L/-l`.
    List(ListOpts),
    /// `-S`: the configuration as commands.
    Save,
    /// `-R`: commands in `-S` format from stdin.
    Restore,
    /// `-G`: local addresses of one service or all.
    GetLaddr(Option<ServiceKey>),
    /// `-L --daemon [--stats]`: the sync daemons (and their counters).
    ListDaemon {
        /// Also the counters.
        stats: bool,
    },
    /// `--get-blklst`/`--get-whtlst [-t|-u service] [--stats]`.
    GetAcl {
        /// Which list.
        kind: rvs_api::AclKind,
        /// One service's rules, or all (global ones too).
        key: Option<ServiceKey>,
        /// With the counters.
        stats: bool,
    },
    /// `-h`.
    Help,
    /// `-v`.
    Version,
    /// Changes sent in order, each of which must be answered `Ok`
    /// (`-A`/`-E` with limit options: the service, then its limits).
    ApplyAll(Vec<Request>),
    /// `--capture ... -w FILE|-`: packets to pcap (run by [`capture::run`]).
    Capture {
        /// What to capture.
        spec: rvs_api::CaptureSpec,
        /// The pcap file, `-` for stdout.
        out: String,
    },
}

/// The text of `rvsadm -h`.
pub fn usage() -> String {
    let p = "rvsadm";
    format!(
        "{ver}\
Usage:
  {p} -A|E -t|u service-address|-H match [-s scheduler] [-p [timeout]] [-j enable|disable]
  {p} -D -t|u service-address|-H match
  {p} -C
  {p} -R
  {p} -S [-n]
  {p} -a|e -t|u service-address|-H match -r server-address [options]
  {p} -d -t|u service-address|-H match -r server-address
  {p} -L|l [options]
  {p} -Z [-t|u service-address|-H match]
  {p} --add-laddr|--del-laddr -t|u service-address -z local-address -F ifname
  {p} --start-daemon master|backup --mcast-interface IF [--syncid N]
  {p} --stop-daemon master|backup
  {p} -L --daemon [--stats]
  {p} -G [-t|u service-address]
  {p} --add-blklst|--del-blklst [-t|u service-address] -k ip[/plen]|ipset:NAME
  {p} --add-whtlst|--del-whtlst [-t|u service-address] -2 ip[/plen]|ipset:NAME
  {p} --get-blklst|--get-whtlst [-t|u service-address] [--stats]
  {p} --capture [-t|u service-address] [--proto P] [--src|--dst|--host ADDR[/LEN][:PORT]]
         [--direction in|out] [--drop REASON|any] [--sample N|--first N]
         [-c COUNT] [--duration SECONDS] [--snaplen BYTES] -w FILE|-
  {p} -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --add-laddr       -P        add local address
  --del-laddr       -Q        del local address
  --get-laddr       -G        get local address
  --add-blklst      -U        add blacklist address or ipset
  --del-blklst      -V        del blacklist address or ipset
  --get-blklst      -B        get blacklist address or ipset
  --add-whtlst      -O        add whitelist address or ipset
  --del-whtlst      -Y        del whitelist address or ipset
  --get-whtlst      -W        get whitelist address or ipset
  --help            -h        display this help message
  --version         -v        display the version

Options:
  --tcp-service  -t service-address   service-address is host[:port]
  --udp-service  -u service-address   service-address is host[:port]
  --match        -H MATCH             select service by MATCH 'proto,src-range,dst-range,iif,oif'
  --scheduler    -s scheduler         one of rr|wrr|wlc|lc|sh|conhash|fo|mh,
                                      the default scheduler is wlc.
  --persistent   -p [timeout]         persistent service (default 300 s)
  --synproxy     -j enable|disable    TCP syn proxy (SYN cookies; FullNat and Masq servers)
  --proxy-protocol v1|v2|disable      client address to FullNat TCP servers in a PROXY protocol header
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --fullnat      -b                   fullnat mode
  --snat         -J                   SNAT mode
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --laddr        -z local-ip          local IP
  --ifname       -F ifname            nic interface for laddrs
  --blklst       -k blacklist-ip      blacklist ip[/plen] or ipset (\"ipset:NAME\");
                                      without a service: every service
  --whtlst       -2 whitelist-ip      whitelist ip[/plen] or ipset (\"ipset:NAME\"):
                                      a service with one accepts only its sources
  --connection   -c                   output of current IPVS connections
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact        -X                   expand numbers (display exact values)
  --nosort                            disable sorting output of service/server entries
  --numeric      -n                   numeric output of addresses and ports

{limits}
rvsd is reached at $RVS_SOCKET, default {sock}.
",
        ver = version(),
        limits = limits::USAGE,
        sock = rvs_api::DEFAULT_SOCKET,
    )
}

/// The text of `rvsadm -v`.
pub fn version() -> String {
    format!(
        "rvsadm v{} (rvs control protocol v{})\n",
        env!("CARGO_PKG_VERSION"),
        rvs_api::VERSION
    )
}

/// Runs `cmd` against the daemon; returns what to print on stdout.
/// `stdin` is read only by [`AdmCommand::Restore`].
pub fn execute(
    cmd: &AdmCommand,
    t: &mut dyn Transport,
    stdin: &mut dyn Read,
) -> Result<String, CliError> {
    match cmd {
        AdmCommand::Help => Ok(usage()),
        AdmCommand::Capture { .. } => Err(CliError::failure(
            "rvsadm --capture streams from the control socket: run it with capture::run",
        )),
        AdmCommand::Version => Ok(version()),
        AdmCommand::Apply(req) => {
            expect_ok(t.call(req)?)?;
            Ok(String::new())
        }
        AdmCommand::ApplyAll(reqs) => {
            for req in reqs {
                expect_ok(t.call(req)?)?;
            }
            Ok(String::new())
        }
        AdmCommand::List(opts) => list(opts, t),
        AdmCommand::ListDaemon { stats } => match t.call(&Request::ListDaemon)? {
            Reply::Daemons(l) => Ok(format_daemons(&l, *stats)),
            other => Err(unexpected(other, "list sync daemons")),
        },
        AdmCommand::Save => {
            let services = services(t, None)?;
            let laddrs = laddrs(t, None)?;
            let text = format_save(&services, &laddrs);
            let text = limits::add_to_save(&text, &list_limits(t)?, format::service_rule);
            Ok(text + &acl::save(t)?)
        }
        AdmCommand::GetAcl { kind, key, stats } => {
            let l = acl::fetch(t, *kind, key.clone())?;
            Ok(format_acl(&l, *kind, *stats))
        }
        AdmCommand::Restore => {
            let mut text = String::new();
            stdin.read_to_string(&mut text).map_err(|e| {
                CliError::failure(format!("rvsadm: cannot read the rules from stdin: {e}"))
            })?;
            for req in parse_restore(&text)? {
                expect_ok(t.call(&req)?)?;
            }
            Ok(String::new())
        }
        AdmCommand::GetLaddr(key) => {
            let groups = laddrs(t, key.clone())?;
            Ok(format_laddrs(&groups, key.is_some()))
        }
    }
}

fn services(
    t: &mut dyn Transport,
    key: Option<ServiceKey>,
) -> Result<Vec<rvs_api::ServiceInfo>, CliError> {
    match t.call(&Request::ListServices { key })? {
        Reply::Services(v) => Ok(v),
        other => Err(unexpected(other, "list services")),
    }
}

fn laddrs(
    t: &mut dyn Transport,
    key: Option<ServiceKey>,
) -> Result<Vec<rvs_api::LaddrGroup>, CliError> {
    match t.call(&Request::ListLaddrs { key })? {
        Reply::Laddrs(v) => Ok(v),
        other => Err(unexpected(other, "list local addresses")),
    }
}

fn list(opts: &ListOpts, t: &mut dyn Transport) -> Result<String, CliError> {
    if opts.view == ListView::Conns {
        return list_conns(opts.key.as_ref(), t);
    }
    // ipvsadm prints the version banner only when listing the whole table.
    let status = if opts.key.is_none() {
        match t.call(&Request::Status)? {
            Reply::Status(s) => Some(s),
            other => return Err(unexpected(other, "status")),
        }
    } else {
        None
    };
    let services = services(t, opts.key.clone())?;
    if opts.view == ListView::Rate {
        let limits = match t.call(&Request::ListLimits {
            key: opts.key.clone(),
        })? {
            Reply::Limits(v) => v,
            other => return Err(unexpected(other, "list limits")),
        };
        return Ok(format::format_list_limits(
            status.as_ref(),
            &services,
            opts,
            &limits,
        ));
    }
    Ok(format_list(status.as_ref(), &services, opts))
}

fn list_limits(t: &mut dyn Transport) -> Result<Vec<rvs_api::LimitInfo>, CliError> {
    match t.call(&Request::ListLimits { key: None })? {
        Reply::Limits(v) => Ok(v),
        other => Err(unexpected(other, "list limits")),
    }
}

/// `-L -c`: every page from the start until rvsd says the listing is complete.
fn list_conns(key: Option<&ServiceKey>, t: &mut dyn Transport) -> Result<String, CliError> {
    let mut out = format_conns(&[]);
    let mut cursor = ConnCursor::default();
    loop {
        let req = Request::ListConnPage {
            key: key.cloned(),
            cursor,
            limit: CONN_PAGE,
        };
        let page = match t.call(&req)? {
            Reply::ConnPage(p) => p,
            other => return Err(unexpected(other, "list connections")),
        };
        out.push_str(&format_conn_lines(&page.conns));
        match page.next {
            None => return Ok(out),
            Some(next) if next == cursor && page.conns.is_empty() => {
                return Err(CliError::failure(format!(
                    "rvsadm: the connection listing does not advance past worker {} slot {}",
                    next.worker, next.slot
                )));
            }
            Some(next) => cursor = next,
        }
    }
}

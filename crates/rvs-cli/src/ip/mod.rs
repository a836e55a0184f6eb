//! `rvsip`: dpip's command line (`rvsip [-s] [-v] [-4|-6] OBJECT CMD ...`) turned into
//! control-API requests, and the replies turned into dpip's output.
//!
//! [`parse_args`] and the `format_*` functions are pure; [`execute`] runs a
//! parsed command against a [`Transport`].

mod bond;
mod format;
mod ipset;
mod parse;
mod vlan;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ipset;

use rvs_api::{Reply, Request};

use crate::client::{expect_ok, unexpected, CliError, Transport};

pub use format::{format_addrs, format_links, format_neigh, format_routes, scope_name};
pub use ipset::{format_ipsets, parse_restore as parse_ipset_restore, IpsetCmd};
pub use parse::parse_args;
pub use vlan::format_vlans;

/// A parsed `rvsip` command line.
#[derive(Debug, Clone, PartialEq)]
pub enum IpCommand {
    /// A change whose reply must be `Ok` (`addr|route|neigh add|del`).
    Apply(Request),
    /// `addr show [dev DEV]`.
    ShowAddrs {
        /// Only this device.
        dev: Option<String>,
        /// Only this family (`-4`, `-6`; filtered here).
        family: Option<Family>,
    },
    /// `route show [dev DEV]`.
    ShowRoutes {
        /// Only routes through this device (filtered here: the API lists all).
        dev: Option<String>,
        /// Only this family (`-4`, `-6`, as dpip's `route -6 show`).
        family: Option<Family>,
    },
    /// `neigh show [dev DEV]`.
    ShowNeigh {
        /// Only this device.
        dev: Option<String>,
    },
    /// `link show [DEV]`, with counters under `-s`.
    ShowLinks {
        /// Only this device.
        dev: Option<String>,
        /// `-s`: counters and drop reasons.
        stats: bool,
    },
    /// `vlan show [NAME | link DEV [proto P] [id ID]]`.
    ShowVlans {
        /// Which devices.
        sel: rvs_api::VlanSel,
    },
    /// `ipset ...` (DPVS's `dpip ipset`).
    Ipset(IpsetCmd),
    /// `help` (of the tool or of an object): the text to print.
    Help(String),
    /// `-V`.
    Version,
}

/// An address family chosen on the command line: `-4` or `-6` (dpip's
/// `route -6 add ...`), before or right after the object word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `-4`: IPv4.
    V4,
    /// `-6`: IPv6.
    V6,
}

impl Family {
    /// Whether `a` is of this family.
    pub fn holds(self, a: &std::net::IpAddr) -> bool {
        a.is_ipv6() == (self == Family::V6)
    }

    /// Whether `a` passes the optional filter `f`.
    fn keeps(f: Option<Family>, a: &std::net::IpAddr) -> bool {
        f.is_none_or(|f| f.holds(a))
    }
}

/// The text of `rvsip help`.
pub fn usage() -> String {
    "Usage:
    rvsip [OPTIONS] OBJECT { COMMAND | help }
OBJECTS:
    { link | addr | route | neigh | ipset | vlan }
OPTIONS:
    -v, --verbose
    -h, --help
    -V, --version
    -s, --stats
    -4, -6  IPv4 or IPv6 only (show), or the family of `default` (route add)
"
    .to_string()
}

/// The text of `rvsip -V`.
pub fn version() -> String {
    format!(
        "rvsip v{} (rvs control protocol v{})\n",
        env!("CARGO_PKG_VERSION"),
        rvs_api::VERSION
    )
}

/// Runs `cmd` against the daemon; returns what to print on stdout.
pub fn execute(cmd: &IpCommand, t: &mut dyn Transport) -> Result<String, CliError> {
    match cmd {
        IpCommand::Help(text) => Ok(text.clone()),
        IpCommand::Version => Ok(version()),
        IpCommand::Apply(req) => {
            expect_ok(t.call(req)?)?;
            Ok(String::new())
        }
        IpCommand::ShowAddrs { dev, family } => {
            match t.call(&Request::ListAddrs { dev: dev.clone() })? {
                Reply::Addrs(mut v) => {
                    v.retain(|a| Family::keeps(*family, &a.addr));
                    Ok(format_addrs(&v))
                }
                other => Err(unexpected(other, "addr show")),
            }
        }
        IpCommand::ShowRoutes { dev, family } => match t.call(&Request::ListRoutes)? {
            Reply::Routes(mut v) => {
                if let Some(d) = dev {
                    v.retain(|r| &r.route.dev == d);
                }
                v.retain(|r| Family::keeps(*family, &r.route.prefix));
                Ok(format_routes(&v))
            }
            other => Err(unexpected(other, "route show")),
        },
        IpCommand::ShowNeigh { dev } => match t.call(&Request::ListNeigh { dev: dev.clone() })? {
            Reply::Neigh(v) => Ok(format_neigh(&v)),
            other => Err(unexpected(other, "neigh show")),
        },
        IpCommand::ShowVlans { sel } => match t.call(&Request::ListVlans { sel: sel.clone() })? {
            Reply::Vlans(v) => Ok(format_vlans(&v)),
            other => Err(unexpected(other, "vlan show")),
        },
        IpCommand::Ipset(c) => ipset::execute(c, t, &mut std::io::stdin().lock()),
        IpCommand::ShowLinks { dev, stats } => {
            match t.call(&Request::ListLinks { dev: dev.clone() })? {
                Reply::Links(v) => Ok(format_links(&v, *stats)),
                other => Err(unexpected(other, "link show")),
            }
        }
    }
}

//! What the virtual servers ask of rvsd, in the control API's terms.

use std::collections::HashMap;
use std::net::IpAddr;

use rvs_api::{DestSpec, Proto, ServiceKey, ServiceSpec};

use super::lvs_types::*;
use super::types::Config;
use super::values::range_addrs;
use super::{ConfError, Loc};

/// One service rvsd should have, as configured (every real server with its
/// configured weight: health checks adjust weights later; the sorry server
/// is not among the dests, it is only added when the quorum is lost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedService {
    /// The service (`-A`).
    pub spec: ServiceSpec,
    /// Its real servers (`-a`), in configuration order.
    pub dests: Vec<DestSpec>,
    /// Its local addresses (`--add-laddr`): the `laddr_group_name` group's
    /// addresses with their device.
    pub laddrs: Vec<(IpAddr, String)>,
    /// Index of the virtual server it comes from in
    /// [`Config::virtual_servers`] (a group gives several services).
    pub vs: usize,
}

/// Every service of `cfg`: groups and address ranges expanded, `lb_kind`
/// mapped to the forwarding method and `lb_algo` to the scheduler. A
/// service defined twice is an error naming both places.
pub fn wanted_services(cfg: &Config) -> Result<Vec<WantedService>, ConfError> {
    let mut out = Vec::new();
    let mut seen: HashMap<ServiceKey, Loc> = HashMap::new();
    for (i, vs) in cfg.virtual_servers.iter().enumerate() {
        let laddrs = match &vs.laddr_group_name {
            Some(name) => cfg
                .laddr_group(name)
                .ok_or_else(|| undefined(vs, "laddr_group_name", "local_address_group", name))?
                .addrs
                .clone(),
            None => Vec::new(),
        };
        let dests: Vec<DestSpec> = vs.real_servers.iter().map(|rs| dest(vs, rs)).collect();
        for key in keys(cfg, vs)? {
            if let Some(prev) = seen.insert(key.clone(), vs.loc.clone()) {
                return Err(ConfError::new(
                    &vs.loc,
                    "virtual_server",
                    format!("service {key} is already defined at {prev}"),
                ));
            }
            out.push(WantedService {
                spec: ServiceSpec {
                    key,
                    sched: vs.lb_algo.clone(),
                    persistence: vs.persistence_timeout,
                    sched_flags: vs.sched_flags.clone(),
                    // DPVS's `syn_proxy`: the file says whether it is on.
                    synproxy: Some(vs.syn_proxy),
                    proxy_protocol: None,
                },
                dests: dests.clone(),
                laddrs: laddrs.clone(),
                vs: i,
            });
        }
    }
    Ok(out)
}

fn undefined(vs: &VirtualServer, keyword: &str, what: &str, name: &str) -> ConfError {
    ConfError::new(&vs.loc, keyword, format!("no {what} named '{name}'"))
}

/// The real server as a control API dest.
fn dest(vs: &VirtualServer, rs: &RealServer) -> DestSpec {
    DestSpec {
        addr: rs.addr,
        port: rs.port,
        weight: rs.weight,
        forward: rs.lb_kind.unwrap_or(vs.lb_kind).forward(),
        u_threshold: rs.uthreshold,
        l_threshold: rs.lthreshold,
    }
}

/// The service keys a virtual server stands for.
fn keys(cfg: &Config, vs: &VirtualServer) -> Result<Vec<ServiceKey>, ConfError> {
    let proto = match vs.protocol {
        Protocol::Udp => Proto::Udp,
        _ => Proto::Tcp,
    };
    Ok(match &vs.addr {
        VsAddr::Ip { addr, port } => vec![ServiceKey::Vs {
            proto,
            vip: *addr,
            port: *port,
        }],
        VsAddr::Group(name) => {
            let g = cfg
                .virtual_server_group(name)
                .ok_or_else(|| undefined(vs, "virtual_server", "virtual_server_group", name))?;
            let mut keys = Vec::new();
            for e in &g.entries {
                for vip in range_addrs(e.first, e.last) {
                    keys.push(ServiceKey::Vs {
                        proto,
                        vip,
                        port: e.port,
                    });
                }
            }
            keys
        }
        VsAddr::Match(m) => vec![ServiceKey::Match(match_string(vs.protocol, m))],
    })
}

/// DPVS's match syntax: `proto=tcp,src-range=...,dst-range=...,iif=...,oif=...`.
fn match_string(p: Protocol, m: &MatchSpec) -> String {
    let proto = match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Icmp => "icmp",
    };
    let mut s = format!("proto={proto}");
    let parts = [
        ("src-range", &m.src_range),
        ("dst-range", &m.dst_range),
        ("iif", &m.iif),
        ("oif", &m.oif),
    ];
    for (k, v) in parts {
        if let Some(v) = v {
            s.push_str(&format!(",{k}={v}"));
        }
    }
    s
}

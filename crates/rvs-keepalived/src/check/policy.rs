//! Health to wanted services, as keepalived's IPVS wrapper does it:
//! - a DOWN real server gets weight 0 with `inhibit_on_failure` (rvsd keeps
//!   its connections, as a quiescent LVS dest) and is left out otherwise;
//! - an UP one has its configured weight, or the one `misc_dynamic` set;
//! - while a virtual server with a `sorry_server` has lost its quorum (by
//!   default: all its real servers are down), the sorry server (weight 1)
//!   is its only live server: the UP real servers are left out, the DOWN
//!   ones stay at weight 0 with `inhibit_on_failure`; once the quorum is
//!   back, the sorry server is removed (weight 0 with
//!   `sorry_server_inhibit`).

use rvs_api::DestSpec;

use super::health::HealthState;
use crate::conf::{wanted_services, ConfError, Config, SorryServer, VirtualServer, WantedService};

/// The services rvsd should have for `cfg` in the health `h`.
pub fn wanted(cfg: &Config, h: &HealthState) -> Result<Vec<WantedService>, ConfError> {
    let mut out = wanted_services(cfg)?;
    for w in &mut out {
        let vs = &cfg.virtual_servers[w.vs];
        w.dests = dests(vs, w.vs, &w.dests, h);
    }
    Ok(out)
}

/// `configured` is the virtual server's real servers in order, as
/// [`wanted_services`] made them.
fn dests(vs: &VirtualServer, i: usize, configured: &[DestSpec], h: &HealthState) -> Vec<DestSpec> {
    let sorry_on = vs.sorry_server.is_some() && !h.quorum_up(i);
    let mut out = Vec::new();
    for (j, (rs, d)) in vs.real_servers.iter().zip(configured).enumerate() {
        if h.alive(i, j) {
            if !sorry_on {
                let weight = h.dynamic_weight(i, j).unwrap_or(d.weight);
                out.push(DestSpec {
                    weight,
                    ..d.clone()
                });
            }
        } else if rs.inhibit_on_failure {
            out.push(DestSpec {
                weight: 0,
                ..d.clone()
            });
        }
    }
    if let Some(s) = &vs.sorry_server {
        if sorry_on {
            out.push(sorry(vs, s, 1));
        } else if s.inhibit {
            out.push(sorry(vs, s, 0));
        }
    }
    out
}

fn sorry(vs: &VirtualServer, s: &SorryServer, weight: u32) -> DestSpec {
    DestSpec {
        addr: s.addr,
        port: s.port,
        weight,
        forward: s.lb_kind.unwrap_or(vs.lb_kind).forward(),
        u_threshold: 0,
        l_threshold: 0,
    }
}

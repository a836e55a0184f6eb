//! The reconciler: turns rvsd's virtual servers into the wanted ones with
//! the fewest control-API requests, so that a reload or a health change
//! never deletes and re-adds what did not change (which would drop its
//! connections).
//!
//! - [`plan`] is pure: wanted services (from [`crate::conf::wanted_services`]
//!   with the health policy of [`crate::check`] applied) and rvsd's current
//!   state ([`Current`], from `ListServices` and `ListLaddrs`) in, the list of
//!   requests out.
//! - [`apply`] sends them through a [`Transport`] (the control socket, or a
//!   fake in tests) and reports every failure with the request it was.
//! - [`Reconciler`] keeps the record of the services rvs-keepalived owns and
//!   does fetch, plan and apply in one call.
//!
//! # What is compared
//! A service is matched by its key (a `match` key in rvsd's canonical
//! spelling); a changed scheduler, scheduler flags or persistence is one
//! `EditService`. A real server is matched by address and port; any change
//! of weight, forwarding method or thresholds is one `EditDest`. Local
//! addresses are matched by address and device.
//!
//! # Ownership: which services may be deleted
//! rvs-keepalived deletes a service rvsd has and the file does not only if
//! it **owns** it: a service is owned once it has been in the wanted set of
//! a reconciliation of this process (whether rvs-keepalived created it or
//! found it already there and adopted it). So a virtual server removed from
//! the file is deleted on reload, as keepalived does, while services added
//! with `rvsadm` that the file never named are left alone. The record lives
//! as long as the process: after a restart, a service that was in the old
//! file but is not in the new one is no longer known and stays (delete it
//! with `rvsadm -D`). Inside an owned service, rvsd's real servers and
//! local addresses are made exactly the wanted ones.

mod apply;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use rvs_api::{DestSpec, LaddrGroup, Request, ServiceInfo, ServiceKey, ServiceSpec};

use crate::conf::WantedService;

pub use apply::{apply, describe, fetch_current, socket_transport, ApplyReport, Failure};
pub use rvs_cli::client::{CliError, SocketTransport, Transport};

/// rvsd's virtual servers as listed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    /// `ListServices`: services with their real servers.
    pub services: Vec<ServiceInfo>,
    /// `ListLaddrs`: local addresses per service.
    pub laddrs: Vec<LaddrGroup>,
}

/// The services rvs-keepalived owns (see the module documentation), by
/// canonical key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owned(HashSet<ServiceKey>);

impl Owned {
    /// Nothing owned (a process that just started).
    pub fn new() -> Owned {
        Owned::default()
    }

    /// Whether the service `key` is owned.
    pub fn contains(&self, key: &ServiceKey) -> bool {
        self.0.contains(&canonical_key(key))
    }

    /// Records `key` as owned.
    pub fn insert(&mut self, key: &ServiceKey) {
        self.0.insert(canonical_key(key));
    }

    /// Forgets `key` (it was deleted).
    pub fn remove(&mut self, key: &ServiceKey) {
        self.0.remove(&canonical_key(key));
    }

    /// Number of owned services.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is owned.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The owned keys (in no particular order).
    pub fn keys(&self) -> impl Iterator<Item = &ServiceKey> {
        self.0.iter()
    }
}

/// The key as rvsd spells it in its listings: a `match` key is parsed and
/// printed back the way rvsd does (address ranges and ports normalised);
/// a `VIP:port` key is already canonical.
pub fn canonical_key(key: &ServiceKey) -> ServiceKey {
    match key {
        ServiceKey::Vs { .. } => key.clone(),
        ServiceKey::Match(s) => match rvs_core::service::Match::parse(s, |_| Some(0)) {
            Ok(m) => ServiceKey::Match(m.to_string()),
            // rvsd will refuse it with its own message; compare as written.
            Err(_) => key.clone(),
        },
    }
}

/// The requests that turn `current` into `wanted`, in the order to send
/// them: first the deletion of owned services no longer wanted, then for
/// each wanted service in order either its creation (service, real
/// servers, local addresses) or its changes (`EditService`, local
/// addresses deleted then added, real servers deleted, edited, added).
/// Nothing unchanged is touched; `owned` decides which unwanted services
/// are deleted.
pub fn plan(wanted: &[WantedService], current: &Current, owned: &Owned) -> Vec<Request> {
    let wanted_keys: HashSet<ServiceKey> =
        wanted.iter().map(|w| canonical_key(&w.spec.key)).collect();
    let mut out = Vec::new();
    for s in &current.services {
        let key = canonical_key(&s.spec.key);
        if !wanted_keys.contains(&key) && owned.contains(&key) {
            out.push(Request::DelService {
                key: s.spec.key.clone(),
            });
        }
    }
    let by_key: HashMap<ServiceKey, &ServiceInfo> = current
        .services
        .iter()
        .map(|s| (canonical_key(&s.spec.key), s))
        .collect();
    let laddrs_by_key: HashMap<ServiceKey, &LaddrGroup> = current
        .laddrs
        .iter()
        .map(|g| (canonical_key(&g.key), g))
        .collect();
    for w in wanted {
        let key = canonical_key(&w.spec.key);
        match by_key.get(&key) {
            None => create(w, &mut out),
            Some(cur) => {
                let laddrs = laddrs_by_key.get(&key).copied();
                update(w, cur, laddrs, &mut out);
            }
        }
    }
    out
}

/// A new service with its real servers and local addresses.
fn create(w: &WantedService, out: &mut Vec<Request>) {
    out.push(Request::AddService {
        spec: w.spec.clone(),
    });
    for d in unique_dests(&w.dests) {
        out.push(Request::AddDest {
            key: w.spec.key.clone(),
            dest: d.clone(),
        });
    }
    for (addr, dev) in unique_laddrs(&w.laddrs) {
        out.push(Request::AddLaddr {
            key: w.spec.key.clone(),
            addr,
            dev,
        });
    }
}

/// The changes of a service rvsd already has (requests name it by rvsd's key).
fn update(
    w: &WantedService,
    cur: &ServiceInfo,
    laddrs: Option<&LaddrGroup>,
    out: &mut Vec<Request>,
) {
    let key = &cur.spec.key;
    if !same_service(&w.spec, &cur.spec) {
        out.push(Request::EditService {
            spec: ServiceSpec {
                key: key.clone(),
                ..w.spec.clone()
            },
        });
    }
    let have: Vec<(IpAddr, String)> = laddrs
        .map(|g| g.laddrs.iter().map(|l| (l.addr, l.dev.clone())).collect())
        .unwrap_or_default();
    let want = unique_laddrs(&w.laddrs);
    for (addr, dev) in have.iter().filter(|l| !want.contains(l)) {
        out.push(Request::DelLaddr {
            key: key.clone(),
            addr: *addr,
            dev: dev.clone(),
        });
    }
    for (addr, dev) in want.into_iter().filter(|l| !have.contains(l)) {
        out.push(Request::AddLaddr {
            key: key.clone(),
            addr,
            dev,
        });
    }
    update_dests(w, cur, out);
}

fn update_dests(w: &WantedService, cur: &ServiceInfo, out: &mut Vec<Request>) {
    let key = &cur.spec.key;
    let want = unique_dests(&w.dests);
    let have: HashMap<(IpAddr, u16), &DestSpec> = cur
        .dests
        .iter()
        .map(|d| ((d.spec.addr, d.spec.port), &d.spec))
        .collect();
    let wanted_ids: HashSet<(IpAddr, u16)> = want.iter().map(|d| (d.addr, d.port)).collect();
    for d in &cur.dests {
        if !wanted_ids.contains(&(d.spec.addr, d.spec.port)) {
            out.push(Request::DelDest {
                key: key.clone(),
                addr: d.spec.addr,
                port: d.spec.port,
            });
        }
    }
    let mut adds = Vec::new();
    for d in want {
        match have.get(&(d.addr, d.port)) {
            Some(h) if *h == d => {}
            Some(_) => out.push(Request::EditDest {
                key: key.clone(),
                dest: d.clone(),
            }),
            None => adds.push(Request::AddDest {
                key: key.clone(),
                dest: d.clone(),
            }),
        }
    }
    out.extend(adds);
}

/// Whether rvsd's service already has the wanted settings (scheduler names
/// compared as rvsd normalises them, flags as a set, the SYN proxy as on or
/// off: rvsd lists "off" as absent).
fn same_service(want: &ServiceSpec, have: &ServiceSpec) -> bool {
    sched_name(&want.sched) == sched_name(&have.sched)
        && want.persistence == have.persistence
        && flag_set(&want.sched_flags) == flag_set(&have.sched_flags)
        && want.synproxy.unwrap_or(false) == have.synproxy.unwrap_or(false)
}

fn sched_name(s: &str) -> String {
    match s.parse::<rvs_core::sched::SchedKind>() {
        Ok(k) => k.name().to_string(),
        Err(_) => s.to_ascii_lowercase(),
    }
}

fn flag_set(f: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = f.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The dests, a real server named twice counted once (the first wins).
fn unique_dests(d: &[DestSpec]) -> Vec<&DestSpec> {
    let mut seen = HashSet::new();
    d.iter().filter(|d| seen.insert((d.addr, d.port))).collect()
}

fn unique_laddrs(l: &[(IpAddr, String)]) -> Vec<(IpAddr, String)> {
    let mut out: Vec<(IpAddr, String)> = Vec::new();
    for x in l {
        if !out.contains(x) {
            out.push(x.clone());
        }
    }
    out
}

/// The record of owned services, and fetch + plan + apply in one call.
#[derive(Debug, Clone, Default)]
pub struct Reconciler {
    owned: Owned,
}

impl Reconciler {
    /// A reconciler that owns nothing yet.
    pub fn new() -> Reconciler {
        Reconciler::default()
    }

    /// The services owned so far.
    pub fn owned(&self) -> &Owned {
        &self.owned
    }

    /// Reads rvsd's state, sends what makes it `wanted`, and updates the
    /// record: every wanted service that exists afterwards is owned, every
    /// service deleted is forgotten. An error only when rvsd's state
    /// cannot be read; failures of single requests are in the report.
    pub fn reconcile(
        &mut self,
        t: &mut dyn Transport,
        wanted: &[WantedService],
    ) -> Result<ApplyReport, CliError> {
        let current = fetch_current(t)?;
        let reqs = plan(wanted, &current, &self.owned);
        let report = apply(t, &reqs);
        let failed_adds: HashSet<ServiceKey> = report
            .failures
            .iter()
            .filter_map(|f| match &f.request {
                Request::AddService { spec } => Some(canonical_key(&spec.key)),
                _ => None,
            })
            .collect();
        for w in wanted {
            if !failed_adds.contains(&canonical_key(&w.spec.key)) {
                self.owned.insert(&w.spec.key);
            }
        }
        for r in &reqs {
            if let Request::DelService { key } = r {
                if !report.failures.iter().any(|f| &f.request == r) {
                    self.owned.remove(key);
                }
            }
        }
        Ok(report)
    }
}

//! Sending a plan to rvsd and reading its state, through the control-API
//! client of the operator tools ([`rvs_cli::client`]).

use std::collections::HashSet;
use std::fmt;

use rvs_api::{Reply, Request, ServiceKey};
use rvs_cli::client::{expect_ok, unexpected, CliError, SocketTransport, Transport};

use super::{canonical_key, Current};

/// The transport to rvsd's control socket: `RVS_SOCKET`, or the default
/// path, as `rvsadm` finds it.
pub fn socket_transport() -> SocketTransport {
    SocketTransport::from_env("rvs-keepalived")
}

/// rvsd's services and local addresses (`ListServices`, `ListLaddrs`).
pub fn fetch_current(t: &mut dyn Transport) -> Result<Current, CliError> {
    let services = match t.call(&Request::ListServices { key: None })? {
        Reply::Services(s) => s,
        other => return Err(unexpected(other, "the service list")),
    };
    let laddrs = match t.call(&Request::ListLaddrs { key: None })? {
        Reply::Laddrs(l) => l,
        other => return Err(unexpected(other, "the local address list")),
    };
    Ok(Current { services, laddrs })
}

/// A request rvsd did not carry out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The request.
    pub request: Request,
    /// rvsd's message, or why it was not sent.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {}: {}", describe(&self.request), self.message)
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplyReport {
    /// Requests rvsd carried out.
    pub done: usize,
    /// Requests that failed or were skipped, in order.
    pub failures: Vec<Failure>,
}

impl ApplyReport {
    /// Whether every request was carried out.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Sends `reqs` in order. A failure does not stop the others, except that
/// once a service could not be added, the requests for its real servers
/// and local addresses are skipped (reported as failures too, saying so).
pub fn apply(t: &mut dyn Transport, reqs: &[Request]) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut not_added: HashSet<ServiceKey> = HashSet::new();
    for r in reqs {
        if let Some(k) = service_of(r) {
            if not_added.contains(&canonical_key(k)) {
                report.failures.push(Failure {
                    request: r.clone(),
                    message: format!("skipped: service {k} could not be added"),
                });
                continue;
            }
        }
        match t.call(r).and_then(expect_ok) {
            Ok(()) => report.done += 1,
            Err(e) => {
                if let Request::AddService { spec } = r {
                    not_added.insert(canonical_key(&spec.key));
                }
                report.failures.push(Failure {
                    request: r.clone(),
                    message: e.message,
                });
            }
        }
    }
    report
}

/// The service a dest or laddr request is about.
fn service_of(r: &Request) -> Option<&ServiceKey> {
    match r {
        Request::AddDest { key, .. }
        | Request::EditDest { key, .. }
        | Request::DelDest { key, .. }
        | Request::AddLaddr { key, .. }
        | Request::DelLaddr { key, .. } => Some(key),
        _ => None,
    }
}

/// A request in words, for logs: "add real server 10.0.0.2:80 (weight
/// 100) to TCP 10.0.0.100:80".
pub fn describe(r: &Request) -> String {
    let ep = |a: &std::net::IpAddr, p: u16| match a {
        std::net::IpAddr::V4(a) => format!("{a}:{p}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{p}"),
    };
    match r {
        Request::AddService { spec } => format!(
            "add service {} (scheduler {}{})",
            spec.key,
            spec.sched,
            persistence(spec.persistence)
        ),
        Request::EditService { spec } => format!(
            "edit service {} (scheduler {}{})",
            spec.key,
            spec.sched,
            persistence(spec.persistence)
        ),
        Request::DelService { key } => format!("delete service {key}"),
        Request::AddDest { key, dest } => format!(
            "add real server {} (weight {}) to {key}",
            ep(&dest.addr, dest.port),
            dest.weight
        ),
        Request::EditDest { key, dest } => format!(
            "set real server {} of {key} to weight {}",
            ep(&dest.addr, dest.port),
            dest.weight
        ),
        Request::DelDest { key, addr, port } => {
            format!("delete real server {} from {key}", ep(addr, *port))
        }
        Request::AddLaddr { key, addr, dev } => {
            format!("add local address {addr} on {dev} to {key}")
        }
        Request::DelLaddr { key, addr, dev } => {
            format!("delete local address {addr} on {dev} from {key}")
        }
        other => format!("{other:?}"),
    }
}

fn persistence(p: Option<u32>) -> String {
    match p {
        Some(s) => format!(", persistent {s}s"),
        None => String::new(),
    }
}

//! Virtual services, their real servers (dests) and local addresses.
//!
//! These are the immutable configuration objects that sit inside a
//! [`crate::snapshot::Snapshot`]. The control plane builds new ones on every
//! change; counters live behind an `Arc` so that an edited dest or service keeps
//! its statistics across snapshots.

use std::fmt;
use std::sync::Arc;

use crate::addr::{proto, Addr, PortId};
use crate::conn::{FwdMode, Tuple};
use crate::sched::{SchedKind, SchedTable};
use crate::stats::PerWorker;

/// A real server of a service.
#[derive(Debug)]
pub struct Dest {
    /// Stable identity across snapshots (the worker keys its state by it).
    pub id: u32,
    /// Real server address (RIP; for SNAT the WAN address).
    pub addr: Addr,
    /// Real server port (0 for SNAT).
    pub port: u16,
    /// Scheduling weight; 0 = quiescent (existing connections stay, no new ones).
    pub weight: u32,
    /// How packets reach it.
    pub mode: FwdMode,
    /// Upper connection threshold (0 = none): above it the dest takes no new connections.
    pub u_threshold: u32,
    /// Lower threshold (0 = three quarters of the upper): below it an overloaded dest takes connections again.
    pub l_threshold: u32,
    /// Counters, shared by every snapshot's copy of this dest.
    pub stats: Arc<PerWorker>,
}

/// A local address (LIP) used by FNAT, on a port.
#[derive(Debug, Clone)]
pub struct Laddr {
    /// The address.
    pub addr: Addr,
    /// The port (device) it lives on.
    pub port: PortId,
    /// Counters (connections through this address), shared across snapshots.
    pub stats: Arc<PerWorker>,
}

/// An inclusive address range and port range of a SNAT match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First address.
    pub lo: Addr,
    /// Last address.
    pub hi: Addr,
    /// First port.
    pub port_lo: u16,
    /// Last port.
    pub port_hi: u16,
}

impl Range {
    fn contains(&self, a: &Addr, port: u16) -> bool {
        let any_addr = self.lo.is_unspecified() && self.hi.is_unspecified();
        let addr_ok = any_addr || (a.is_v4() == self.lo.is_v4() && *a >= self.lo && *a <= self.hi);
        addr_ok && port >= self.port_lo && port <= self.port_hi
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = |f: &mut fmt::Formatter<'_>, a: &Addr| {
            if a.is_v4() {
                write!(f, "{a}")
            } else {
                write!(f, "[{a}]")
            }
        };
        one(f, &self.lo)?;
        if self.hi != self.lo {
            f.write_str("-")?;
            one(f, &self.hi)?;
        }
        if (self.port_lo, self.port_hi) != (0, u16::MAX) {
            write!(f, ":{}", self.port_lo)?;
            if self.port_hi != self.port_lo {
                write!(f, "-{}", self.port_hi)?;
            }
        }
        Ok(())
    }
}

/// A SNAT "match" service key (`ipvsadm -H`): which packets the service takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// IP protocol (TCP, UDP or ICMP).
    pub proto: u8,
    /// Source range, if any.
    pub src: Option<Range>,
    /// Destination range, if any.
    pub dst: Option<Range>,
    /// Input port name and index, if any.
    pub iif: Option<(String, PortId)>,
    /// Output port name and index, if any.
    pub oif: Option<(String, PortId)>,
}

/// Why a match string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchError(pub String);

impl fmt::Display for MatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MatchError {}

fn parse_addr(s: &str) -> Result<Addr, MatchError> {
    let t = s.trim_start_matches('[').trim_end_matches(']');
    t.parse::<Addr>()
        .map_err(|_| MatchError(format!("invalid address '{s}' in match")))
}

fn parse_range(s: &str) -> Result<Range, MatchError> {
    // IP[-IP][:PORT[-PORT]]; IPv6 in brackets.
    let (addrs, ports) = match s.rfind(':') {
        Some(i) if s[..i].ends_with(']') || !s[..i].contains(':') => (&s[..i], Some(&s[i + 1..])),
        _ => (s, None),
    };
    let (lo, hi) = match addrs.split_once('-') {
        Some((a, b)) => (parse_addr(a)?, parse_addr(b)?),
        None => {
            let a = parse_addr(addrs)?;
            (a, a)
        }
    };
    if lo.is_v4() != hi.is_v4() || hi < lo {
        return Err(MatchError(format!("invalid address range '{addrs}'")));
    }
    let (port_lo, port_hi) = match ports {
        None => (0, u16::MAX),
        Some(p) => {
            let bad = || MatchError(format!("invalid port range '{p}' in '{s}'"));
            let (a, b) = p.split_once('-').unwrap_or((p, p));
            let a: u16 = a.parse().map_err(|_| bad())?;
            let b: u16 = b.parse().map_err(|_| bad())?;
            if b < a {
                return Err(bad());
            }
            (a, b)
        }
    };
    Ok(Range {
        lo,
        hi,
        port_lo,
        port_hi,
    })
}

impl Match {
    /// Parses the DPVS match syntax, e.g.
    /// `proto=tcp,src-range=192.168.100.0-192.168.100.254,dst-range=0.0.0.0:1-1024,oif=dpdk1`.
    /// `port_index` resolves a device name to its port.
    pub fn parse(
        s: &str,
        port_index: impl Fn(&str) -> Option<PortId>,
    ) -> Result<Match, MatchError> {
        let mut m = Match {
            proto: 0,
            src: None,
            dst: None,
            iif: None,
            oif: None,
        };
        for kv in s.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| MatchError(format!("expected key=value in match, got '{kv}'")))?;
            let port = |v: &str| {
                port_index(v)
                    .map(|i| (v.to_string(), i))
                    .ok_or_else(|| MatchError(format!("unknown device '{v}' in match")))
            };
            match k {
                "proto" => {
                    m.proto = match v {
                        "tcp" => proto::TCP,
                        "udp" => proto::UDP,
                        "icmp" => proto::ICMP,
                        "icmpv6" => proto::ICMPV6,
                        _ => {
                            return Err(MatchError(format!(
                                "unknown proto '{v}' in match (tcp, udp, icmp, icmpv6)"
                            )))
                        }
                    }
                }
                "src-range" => m.src = Some(parse_range(v)?),
                "dst-range" => m.dst = Some(parse_range(v)?),
                "iif" => m.iif = Some(port(v)?),
                "oif" => m.oif = Some(port(v)?),
                _ => {
                    return Err(MatchError(format!(
                        "unknown match key '{k}' (proto, src-range, dst-range, iif, oif)"
                    )))
                }
            }
        }
        if m.proto == 0 {
            return Err(MatchError("match needs proto=tcp|udp|icmp".into()));
        }
        Ok(m)
    }

    /// Whether a packet matches. `oif` is the port the packet would leave by, if routed.
    #[inline]
    pub fn matches(&self, t: &Tuple, iif: PortId, oif: Option<PortId>) -> bool {
        self.proto == t.proto
            && self
                .src
                .as_ref()
                .is_none_or(|r| r.contains(&t.src, t.sport))
            && self
                .dst
                .as_ref()
                .is_none_or(|r| r.contains(&t.dst, t.dport))
            && self.iif.as_ref().is_none_or(|(_, p)| *p == iif)
            && self.oif.as_ref().is_none_or(|(_, p)| Some(*p) == oif)
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.proto {
            proto::TCP => "tcp",
            proto::UDP => "udp",
            proto::ICMP => "icmp",
            _ => "icmpv6",
        };
        write!(f, "proto={p}")?;
        if let Some(r) = &self.src {
            write!(f, ",src-range={r}")?;
        }
        if let Some(r) = &self.dst {
            write!(f, ",dst-range={r}")?;
        }
        if let Some((n, _)) = &self.iif {
            write!(f, ",iif={n}")?;
        }
        if let Some((n, _)) = &self.oif {
            write!(f, ",oif={n}")?;
        }
        Ok(())
    }
}

/// What a service listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceKey {
    /// `-t/-u VIP:port`.
    Vs {
        /// TCP or UDP.
        proto: u8,
        /// Virtual address.
        vip: Addr,
        /// Virtual port.
        vport: u16,
    },
    /// `-H match` (SNAT).
    Match(Match),
}

/// A virtual service with its scheduler, dests and local addresses.
#[derive(Debug)]
pub struct Service {
    /// Stable identity across snapshots.
    pub id: u32,
    /// What it listens on.
    pub key: ServiceKey,
    /// The scheduler's prebuilt tables (rebuilt when dests change).
    pub sched: Arc<SchedTable>,
    /// Persistence timeout in ms (`-p`, 0 = none).
    pub persistence_ms: u32,
    /// Real servers, in the order they were added.
    pub dests: Vec<Arc<Dest>>,
    /// FNAT local addresses.
    pub laddrs: Vec<Laddr>,
    /// Counters, shared across snapshots.
    pub stats: Arc<PerWorker>,
    /// SYN proxy (`-j enable`): rvs answers the client's handshake itself
    /// with a SYN cookie and reaches a real server only for a valid one
    /// (TCP FNAT and NAT; see `crate::synproxy`).
    pub synproxy: bool,
    /// PROXY protocol header toward the real servers (`--proxy-protocol`;
    /// FNAT TCP, see `crate::wire::proxy_proto`).
    pub proxy_protocol: crate::wire::proxy_proto::Version,
}

impl Service {
    /// The scheduler of this service.
    pub fn sched_kind(&self) -> SchedKind {
        self.sched.kind()
    }

    /// The IP protocol the service serves.
    pub fn proto(&self) -> u8 {
        match &self.key {
            ServiceKey::Vs { proto, .. } => *proto,
            ServiceKey::Match(m) => m.proto,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(n: &str) -> Option<PortId> {
        match n {
            "dpdk0" => Some(0),
            "dpdk1" => Some(1),
            _ => None,
        }
    }

    #[test]
    fn parses_tutorial_match() {
        let m = Match::parse(
            "proto=tcp,src-range=192.168.100.0-192.168.100.254,dst-range=0.0.0.0:1-1024,oif=dpdk1",
            ports,
        )
        .unwrap();
        assert_eq!(m.proto, proto::TCP);
        assert_eq!(m.oif, Some(("dpdk1".into(), 1)));
        let src: Addr = "192.168.100.7".parse().unwrap();
        let dst: Addr = "8.8.8.8".parse().unwrap();
        assert!(m.matches(&Tuple::new(proto::TCP, src, 40000, dst, 80), 0, Some(1)));
        assert!(
            !m.matches(&Tuple::new(proto::TCP, src, 40000, dst, 8080), 0, Some(1)),
            "dport outside 1-1024"
        );
        assert!(
            !m.matches(&Tuple::new(proto::TCP, src, 40000, dst, 80), 0, Some(0)),
            "wrong oif"
        );
        assert!(
            !m.matches(&Tuple::new(proto::UDP, src, 40000, dst, 80), 0, Some(1)),
            "wrong proto"
        );
        let outside: Addr = "192.168.101.7".parse().unwrap();
        assert!(!m.matches(&Tuple::new(proto::TCP, outside, 40000, dst, 80), 0, Some(1)));
        assert_eq!(
            m.to_string(),
            "proto=tcp,src-range=192.168.100.0-192.168.100.254,dst-range=0.0.0.0:1-1024,oif=dpdk1"
        );
    }

    #[test]
    fn rejects_bad_match_with_a_reason() {
        let e = Match::parse("proto=sctp", ports).unwrap_err();
        assert!(e.0.contains("sctp"), "{e}");
        let e = Match::parse("proto=tcp,oif=eth9", ports).unwrap_err();
        assert!(e.0.contains("eth9"), "{e}");
        let e = Match::parse("proto=tcp,src-range=10.0.0.9-10.0.0.1", ports).unwrap_err();
        assert!(e.0.contains("range"), "{e}");
        let e = Match::parse("proto=tcp,colour=red", ports).unwrap_err();
        assert!(e.0.contains("colour"), "{e}");
        assert!(Match::parse("src-range=10.0.0.1", ports).is_err());
    }
}

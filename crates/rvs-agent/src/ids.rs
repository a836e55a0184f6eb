//! Identifiers in paths, as dpvs-agent writes them: a service is
//! `VIP-PORT-PROTO` (`10.0.0.100-80-tcp`, `2001:db8::1-53-udp`) or
//! `match:SPEC` for a SNAT match service; a real server is `IP-PORT`.

use std::net::IpAddr;

use rvs_api::{Proto, ServiceKey};

use crate::error::AgentError;

/// Parses a service identifier from path parameter `field`.
pub fn service(field: &str, s: &str) -> Result<ServiceKey, AgentError> {
    if let Some(m) = s.strip_prefix("match:") {
        if m.is_empty() {
            return Err(AgentError::invalid(field, "empty match service"));
        }
        return Ok(ServiceKey::Match(m.to_string()));
    }
    let bad = |why: String| {
        AgentError::invalid(
            field,
            format!("bad service {s:?}: {why} (expected VIP-PORT-PROTO, e.g. 10.0.0.100-80-tcp, or match:SPEC)"),
        )
    };
    let mut it = s.rsplitn(3, '-');
    let (proto, port, vip) = match (it.next(), it.next(), it.next()) {
        (Some(pr), Some(po), Some(v)) => (pr, po, v),
        _ => return Err(bad("not three parts".into())),
    };
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => return Err(bad(format!("protocol {other:?} is not tcp or udp"))),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| bad(format!("port {port:?} is not 0-65535")))?;
    let vip: IpAddr = vip
        .parse()
        .map_err(|_| bad(format!("{vip:?} is not an IP address")))?;
    Ok(ServiceKey::Vs { proto, vip, port })
}

/// Parses an address from path parameter `field`.
pub fn addr(field: &str, s: &str) -> Result<IpAddr, AgentError> {
    s.parse()
        .map_err(|_| AgentError::invalid(field, format!("{s:?} is not an IP address")))
}

/// Parses a real server `IP-PORT` from path parameter `field`.
pub fn dest(field: &str, s: &str) -> Result<(IpAddr, u16), AgentError> {
    let bad = || {
        AgentError::invalid(
            field,
            format!("bad real server {s:?} (expected IP-PORT, e.g. 192.168.100.2-80)"),
        )
    };
    let (a, p) = s.rsplit_once('-').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, p.parse().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_and_dests_parse_and_errors_name_the_field() {
        assert_eq!(
            service("service", "2001:db8::1-53-udp").unwrap(),
            ServiceKey::Vs {
                proto: Proto::Udp,
                vip: "2001:db8::1".parse().unwrap(),
                port: 53
            }
        );
        assert_eq!(
            service("service", "match:proto=tcp,oif=dpdk1").unwrap(),
            ServiceKey::Match("proto=tcp,oif=dpdk1".into())
        );
        let e = service("service", "10.0.0.1-80-sctp").unwrap_err();
        assert_eq!(e.body.field.as_deref(), Some("service"));
        assert!(e.body.message.contains("\"sctp\""), "{}", e.body.message);
        assert!(service("service", "10.0.0.1-99999-tcp").is_err());
        assert!(service("service", "10.0.0.300-80-tcp").is_err());
        assert_eq!(
            dest("dest", "192.168.100.2-8080").unwrap(),
            ("192.168.100.2".parse().unwrap(), 8080)
        );
        assert!(dest("dest", "192.168.100.2").is_err());
    }
}

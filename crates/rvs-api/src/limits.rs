//! Rate and connection limits of a service (`rvsadm -A/-E --conn-rate ...`,
//! [`crate::Request::SetLimits`], listed by [`crate::Request::ListLimits`]).

use serde::{Deserialize, Serialize};

use crate::ServiceKey;

/// The largest rate or burst of connections, packets or bytes rvsd takes
/// (2^38, about 2.7e11); bit rates may be 8 times larger.
pub const LIMIT_MAX: u64 = 1 << 38;

/// A rate limit: `rate` per second, with bursts of up to `burst` (0: one
/// second of `rate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RateLimit {
    /// Per second (at least 1).
    pub rate: u64,
    /// Largest burst; 0 = `rate`.
    #[serde(default)]
    pub burst: u64,
}

/// Limits on a service as a whole, or on each of its sources; `None` = no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitSet {
    /// New connections per second (`--conn-rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn_rate: Option<RateLimit>,
    /// Packets per second from clients (`--pkt-rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkt_rate: Option<RateLimit>,
    /// Bits per second from clients, IP headers included (`--bit-rate`);
    /// its burst is in bits too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit_rate: Option<RateLimit>,
    /// Concurrent connections (`--max-conns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_conns: Option<u32>,
}

impl LimitSet {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == LimitSet::default()
    }
}

/// All limits of a service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Limits {
    /// On the service as a whole (all clients together).
    #[serde(default)]
    pub service: LimitSet,
    /// On each source (`--src-...`).
    #[serde(default)]
    pub source: LimitSet,
    /// Prefix length grouping IPv4 sources for `source` (`--src-prefix`);
    /// `None` = 32, each address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_prefix_v4: Option<u8>,
    /// Prefix length grouping IPv6 sources; `None` = 128, each address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_prefix_v6: Option<u8>,
}

fn check_rate(what: &str, r: &Option<RateLimit>, max: u64) -> Result<(), String> {
    let Some(r) = r else { return Ok(()) };
    if r.rate == 0 {
        return Err(format!("{what}: a rate of 0 is no limit; leave it out"));
    }
    if r.rate > max {
        return Err(format!(
            "{what}: rate {} is above the largest, {max}",
            r.rate
        ));
    }
    if r.burst > max {
        return Err(format!(
            "{what}: burst {} is above the largest, {max}",
            r.burst
        ));
    }
    Ok(())
}

impl LimitSet {
    fn check(&self, prefix: &str) -> Result<(), String> {
        check_rate(&format!("{prefix}conn-rate"), &self.conn_rate, LIMIT_MAX)?;
        check_rate(&format!("{prefix}pkt-rate"), &self.pkt_rate, LIMIT_MAX)?;
        check_rate(&format!("{prefix}bit-rate"), &self.bit_rate, LIMIT_MAX * 8)?;
        if self.max_conns == Some(0) {
            return Err(format!("{prefix}max-conns: 0 is no limit; leave it out"));
        }
        Ok(())
    }
}

impl Limits {
    /// Whether no limit is set (prefix lengths alone limit nothing).
    pub fn is_empty(&self) -> bool {
        self.service.is_empty() && self.source.is_empty()
    }

    /// Checks every value, naming the first that is wrong.
    pub fn check(&self) -> Result<(), String> {
        self.service.check("")?;
        self.source.check("src-")?;
        if let Some(p) = self.src_prefix_v4.filter(|p| *p == 0 || *p > 32) {
            return Err(format!(
                "src-prefix: IPv4 prefix length {p} is not within 1-32"
            ));
        }
        if let Some(p) = self.src_prefix_v6.filter(|p| *p == 0 || *p > 128) {
            return Err(format!(
                "src-prefix: IPv6 prefix length {p} is not within 1-128"
            ));
        }
        Ok(())
    }
}

/// Packets (or connection attempts) refused by each limit of a service,
/// since it was created or zeroed (`-Z`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitDropStats {
    /// By the service's `conn-rate`.
    pub conn_rate: u64,
    /// By the service's `pkt-rate`.
    pub pkt_rate: u64,
    /// By the service's `bit-rate`.
    pub bit_rate: u64,
    /// By the service's `max-conns`.
    pub max_conns: u64,
    /// By a source's `conn-rate`.
    pub src_conn_rate: u64,
    /// By a source's `pkt-rate`.
    pub src_pkt_rate: u64,
    /// By a source's `bit-rate`.
    pub src_bit_rate: u64,
    /// By a source's `max-conns`.
    pub src_max_conns: u64,
}

/// A service's limits as listed ([`crate::Request::ListLimits`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitInfo {
    /// The service.
    pub key: ServiceKey,
    /// Its limits (empty when it has none).
    pub limits: Limits,
    /// What they refused.
    pub drops: LimitDropStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_wrong_value() {
        let mut l = Limits::default();
        assert!(l.check().is_ok() && l.is_empty());
        l.source.conn_rate = Some(RateLimit { rate: 0, burst: 0 });
        assert!(l.check().unwrap_err().contains("src-conn-rate"));
        l.source.conn_rate = Some(RateLimit { rate: 5, burst: 10 });
        l.service.max_conns = Some(0);
        assert!(l.check().unwrap_err().contains("max-conns"));
        l.service.max_conns = Some(100);
        l.service.bit_rate = Some(RateLimit {
            rate: LIMIT_MAX * 8 + 1,
            burst: 0,
        });
        assert!(l.check().unwrap_err().contains("bit-rate"));
        l.service.bit_rate = None;
        l.src_prefix_v4 = Some(33);
        assert!(l.check().unwrap_err().contains("33"));
        l.src_prefix_v4 = Some(24);
        l.src_prefix_v6 = Some(64);
        assert_eq!(l.check(), Ok(()));
        assert!(!l.is_empty());
    }

    #[test]
    fn round_trips_and_old_requests_decode() {
        let req = crate::Request::SetLimits {
            key: ServiceKey::Vs {
                proto: crate::Proto::Tcp,
                vip: "10.0.0.100".parse().unwrap(),
                port: 80,
            },
            limits: Limits {
                source: LimitSet {
                    conn_rate: Some(RateLimit { rate: 5, burst: 10 }),
                    ..LimitSet::default()
                },
                src_prefix_v4: Some(24),
                ..Limits::default()
            },
        };
        let line = crate::encode_request(&req);
        assert_eq!(crate::decode_request(line.trim()).unwrap(), req);
        // Absent sets and fields are no limits.
        let bare = r#"{"v":1,"req":{"op":"set_limits","key":{"vs":{"proto":"tcp","vip":"10.0.0.100","port":80}},"limits":{"service":{"max_conns":9}}}}"#;
        match crate::decode_request(bare).unwrap() {
            crate::Request::SetLimits { limits, .. } => {
                assert_eq!(limits.service.max_conns, Some(9));
                assert!(limits.source.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
}

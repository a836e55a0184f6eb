//! The text of set entries, as `dpip ipset` takes them: addresses, prefixes
//! and ranges (`10.0.0.1`, `10.0.0.0/24`, `10.0.0.1-10.0.0.9`), and for
//! `hash:ip,port` an address part, a comma and `[tcp:|udp:]PORT[-PORT]`.
//! Parsing is pure and names what was wrong.

use std::fmt;
use std::str::FromStr;

use super::{AclError, AclErrorKind};
use crate::addr::{proto, Addr};

/// Most members one entry may expand to (an address range of `hash:ip`, a
/// port range of `hash:ip,port`), as DPVS's dpip allows.
pub const EXPAND_MAX: u64 = 65_536;

/// The kinds of set (DPVS's names).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SetKind {
    /// `hash:ip`: host addresses.
    HashIp,
    /// `hash:net`: prefixes, longest match first, with `nomatch` exceptions.
    HashNet,
    /// `hash:ip,port`: a host address with a protocol and port.
    HashIpPort,
}

impl SetKind {
    /// The DPVS name.
    pub fn name(&self) -> &'static str {
        match self {
            SetKind::HashIp => "hash:ip",
            SetKind::HashNet => "hash:net",
            SetKind::HashIpPort => "hash:ip,port",
        }
    }
}

impl fmt::Display for SetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SetKind {
    type Err = AclError;
    fn from_str(s: &str) -> Result<SetKind, AclError> {
        match s {
            "hash:ip" => Ok(SetKind::HashIp),
            "hash:net" => Ok(SetKind::HashNet),
            "hash:ip,port" => Ok(SetKind::HashIpPort),
            _ => Err(AclError::invalid(format!(
                "unsupported ipset type '{s}' (rvs has hash:ip, hash:net and hash:ip,port)"
            ))),
        }
    }
}

/// One member of a set.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Member {
    /// A prefix (`hash:net`) or a host (`hash:ip`, the family's full length).
    Net {
        /// Network address (host bits clear).
        addr: Addr,
        /// Prefix length.
        plen: u8,
    },
    /// A host with a protocol and port (`hash:ip,port`).
    IpPort {
        /// Host address.
        addr: Addr,
        /// TCP, UDP, or 0 for an entry given without a protocol ("unspec"),
        /// which matches both.
        proto: u8,
        /// Port.
        port: u16,
    },
}

impl Member {
    /// The member as `dpip ipset list` prints it for a set of `kind`.
    pub fn display(&self, kind: SetKind) -> String {
        match (self, kind) {
            (Member::Net { addr, .. }, SetKind::HashIp) => addr.to_string(),
            (Member::Net { addr, plen }, _) => format!("{addr}/{plen}"),
            (Member::IpPort { addr, proto, port }, _) => {
                format!("{addr},{}:{port}", proto_name(*proto))
            }
        }
    }
}

/// `tcp`, `udp` or `unspec`.
pub fn proto_name(p: u8) -> &'static str {
    match p {
        proto::TCP => "tcp",
        proto::UDP => "udp",
        _ => "unspec",
    }
}

/// The width of `a`'s family.
pub fn width(a: &Addr) -> u8 {
    if a.is_v4() {
        32
    } else {
        128
    }
}

/// `a` as an integer of its family (the low 32 bits for IPv4).
fn num(a: &Addr) -> u128 {
    if a.is_v4() {
        u128::from(a.v4_u32())
    } else {
        a.as_u128()
    }
}

/// The address of family `v4` with integer value `n`.
fn from_num(n: u128, v4: bool) -> Addr {
    if v4 {
        Addr::from_v4_bytes((n as u32).to_be_bytes())
    } else {
        Addr::from_u128(n)
    }
}

/// The host mask of a `plen` prefix in a `w`-bit family (the bits past `plen`).
fn host_mask(w: u8, plen: u8) -> u128 {
    let host = u32::from(w.saturating_sub(plen));
    let all = if w == 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    };
    all & !(u128::MAX.checked_shl(host).unwrap_or(0))
}

/// `a` with the bits past `plen` cleared.
pub fn network(a: &Addr, plen: u8) -> Addr {
    let w = width(a);
    from_num(num(a) & !host_mask(w, plen), a.is_v4())
}

fn parse_addr(s: &str, v6: bool) -> Result<Addr, AclError> {
    let a: Addr = s
        .parse()
        .map_err(|_| AclError::invalid(format!("invalid IP address '{s}'")))?;
    if a.is_v4() == v6 {
        let (is, set) = if v6 {
            ("IPv4", "inet6")
        } else {
            ("IPv6", "inet")
        };
        return Err(AclError::invalid(format!(
            "address {a} is {is} but the set's family is {set}"
        )));
    }
    Ok(a)
}

/// `ADDR`, `ADDR/PLEN` or `ADDR-ADDR`: the first and last address, and the
/// prefix length when a prefix was given.
fn parse_span(s: &str, v6: bool) -> Result<(Addr, Addr, Option<u8>), AclError> {
    if let Some((a, l)) = s.split_once('/') {
        let a = parse_addr(a, v6)?;
        let w = width(&a);
        let plen = match l.parse::<u8>() {
            Ok(p) if p <= w && l.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => {
                return Err(AclError::invalid(format!(
                    "invalid prefix length '{l}' in '{s}' (0 to {w})"
                )))
            }
        };
        let lo = num(&a) & !host_mask(w, plen);
        let hi = lo | host_mask(w, plen);
        return Ok((from_num(lo, !v6), from_num(hi, !v6), Some(plen)));
    }
    if let Some((a, b)) = s.split_once('-') {
        let (lo, hi) = (parse_addr(a, v6)?, parse_addr(b, v6)?);
        if hi < lo {
            return Err(AclError::invalid(format!(
                "invalid range '{s}': {hi} comes before {lo}"
            )));
        }
        return Ok((lo, hi, None));
    }
    let a = parse_addr(s, v6)?;
    Ok((a, a, None))
}

/// The hosts of `lo..=hi`, refused past [`EXPAND_MAX`].
fn hosts(lo: &Addr, hi: &Addr, what: &str) -> Result<Vec<Addr>, AclError> {
    let (l, h) = (num(lo), num(hi));
    let n = h - l;
    if n >= u128::from(EXPAND_MAX) {
        return Err(AclError::invalid(format!(
            "'{what}' has more than {EXPAND_MAX} addresses; use a hash:net set for networks"
        )));
    }
    Ok((l..=h).map(|x| from_num(x, lo.is_v4())).collect())
}

/// The last address of the `2^k`-address block starting at aligned `l`.
fn block_last(l: u128, k: u32) -> u128 {
    if k >= 128 {
        u128::MAX
    } else {
        l | ((1u128 << k) - 1)
    }
}

/// The fewest prefixes covering exactly `lo..=hi`.
fn cidrs(lo: &Addr, hi: &Addr) -> Vec<(Addr, u8)> {
    let w = u32::from(width(lo));
    let v4 = lo.is_v4();
    let (mut l, h) = (num(lo), num(hi));
    let mut out = Vec::new();
    loop {
        // The largest aligned block starting at l that ends by h.
        let mut k = if l == 0 { w } else { l.trailing_zeros().min(w) };
        while k > 0 && block_last(l, k) > h {
            k -= 1;
        }
        out.push((from_num(l, v4), (w - k) as u8));
        let last = block_last(l, k);
        if last >= h {
            return out;
        }
        l = last + 1;
    }
}

/// `[tcp:|udp:|unspec:]PORT[-PORT]`.
fn parse_ports(s: &str) -> Result<(u8, u16, u16), AclError> {
    let (p, ports) = match s.split_once(':') {
        Some(("tcp", r)) => (proto::TCP, r),
        Some(("udp", r)) => (proto::UDP, r),
        Some(("unspec", r)) => (0, r),
        Some((other, _)) => {
            return Err(AclError::invalid(format!(
                "unsupported protocol '{other}' in '{s}' (tcp or udp: rvs checks lists on TCP and UDP connections)"
            )))
        }
        None => (0, s),
    };
    let port = |x: &str| {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AclError::invalid(format!("invalid port '{x}' in '{s}'")));
        }
        x.parse::<u16>()
            .map_err(|_| AclError::invalid(format!("invalid port '{x}' in '{s}' (0 to 65535)")))
    };
    let (a, b) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let a = port(ports)?;
            (a, a)
        }
    };
    if b < a {
        return Err(AclError::invalid(format!(
            "invalid port range '{ports}' in '{s}'"
        )));
    }
    Ok((p, a, b))
}

/// The members one entry of a `kind` set of family `v6` adds or deletes.
pub fn parse_entry(kind: SetKind, v6: bool, s: &str) -> Result<Vec<Member>, AclError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(AclError::invalid("empty ipset entry"));
    }
    match kind {
        SetKind::HashNet => {
            if s.contains(',') {
                return Err(AclError::invalid(format!(
                    "'{s}': a hash:net entry is one address, prefix or range"
                )));
            }
            let (lo, hi, plen) = parse_span(s, v6)?;
            if plen == Some(0) {
                return Err(AclError::invalid(format!(
                    "'{s}': a hash:net entry needs a prefix length of 1 or more"
                )));
            }
            Ok(cidrs(&lo, &hi)
                .into_iter()
                .map(|(addr, plen)| Member::Net { addr, plen })
                .collect())
        }
        SetKind::HashIp => {
            if s.contains(',') {
                return Err(AclError::invalid(format!(
                    "'{s}': a hash:ip entry is one address, prefix or range"
                )));
            }
            let (lo, hi, _) = parse_span(s, v6)?;
            let w = width(&lo);
            Ok(hosts(&lo, &hi, s)?
                .into_iter()
                .map(|addr| Member::Net { addr, plen: w })
                .collect())
        }
        SetKind::HashIpPort => {
            let (a, p) = match s.split_once(',') {
                Some((a, p)) => (a, Some(p)),
                None => (s, None),
            };
            let (lo, hi, _) = parse_span(a, v6)?;
            let addrs = hosts(&lo, &hi, s)?;
            let (proto, p0, p1) = match p {
                Some(p) => parse_ports(p)?,
                None => (0, 0, 0),
            };
            let n = addrs.len() as u64 * (u64::from(p1 - p0) + 1);
            if n > EXPAND_MAX {
                return Err(AclError::invalid(format!(
                    "'{s}' expands to {n} entries, more than {EXPAND_MAX}"
                )));
            }
            Ok(addrs
                .iter()
                .flat_map(|addr| {
                    (p0..=p1).map(move |port| Member::IpPort {
                        addr: *addr,
                        proto,
                        port,
                    })
                })
                .collect())
        }
    }
}

/// What `dpip ipset test` looks up: one address (a prefix length is
/// ignored, as dpip does), with a protocol and port for `hash:ip,port`.
pub fn parse_probe(kind: SetKind, v6: bool, s: &str) -> Result<Member, AclError> {
    let s = s.trim();
    let (a, p) = match s.split_once(',') {
        Some((a, p)) if kind == SetKind::HashIpPort => (a, Some(p)),
        Some(_) => {
            return Err(AclError::invalid(format!(
                "'{s}': a {kind} test takes one address"
            )))
        }
        None => (s, None),
    };
    let a = a.split_once('/').map_or(a, |(a, _)| a);
    let addr = parse_addr(a, v6)?;
    match p {
        None if kind == SetKind::HashIpPort => Ok(Member::IpPort {
            addr,
            proto: 0,
            port: 0,
        }),
        None => Ok(Member::Net {
            addr,
            plen: width(&addr),
        }),
        Some(p) => match parse_ports(p)? {
            (proto, port, last) if port == last => Ok(Member::IpPort { addr, proto, port }),
            _ => Err(AclError::invalid(format!(
                "'{s}': a test takes one port, not a range"
            ))),
        },
    }
}

impl AclError {
    /// An invalid-value error with `msg`.
    pub fn invalid(msg: impl Into<String>) -> AclError {
        AclError {
            kind: AclErrorKind::Invalid,
            message: msg.into(),
        }
    }
}

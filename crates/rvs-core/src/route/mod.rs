//! Longest-prefix-match routing table for IPv4 and IPv6 (`dpip route`).
//!
//! The control plane builds a [`RouteTable`] and publishes it inside an
//! immutable configuration snapshot; workers only call [`RouteTable::lookup`].
//! Each address family keeps one hash map per prefix length and a descending
//! list of the lengths in use, so a lookup costs one masked hash probe per
//! distinct length actually configured (typically a handful: /32 host routes,
//! a few on-link /24s, the default) and never allocates.
//!
//! IPv4 and IPv6 live in separate tables on purpose: IPv4 addresses are
//! IPv4-mapped `Addr`s, so in a single 128-bit space an IPv6 `::/0` would
//! swallow every IPv4 destination.

use std::fmt;
use std::str::FromStr;

use crate::addr::{Addr, PortId};
use crate::prefix::{PrefixKey, PrefixMap};

/// Route scope, as dpip shows it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A local address of rvs itself: deliver to the local stack.
    Host,
    /// An on-link network: the destination is its own next hop.
    Link,
    /// Reached through a gateway.
    Global,
    /// Hand the packet to the kernel through the KNI/tap device.
    KniHost,
}

impl Scope {
    /// The name dpip uses for this scope.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Host => "host",
            Scope::Link => "link",
            Scope::Global => "global",
            Scope::KniHost => "kni_host",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a scope name that is not one of dpip's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseScopeError(pub String);

impl fmt::Display for ParseScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid route scope '{}' (expected host, link, global or kni_host)",
            self.0
        )
    }
}

impl std::error::Error for ParseScopeError {}

impl FromStr for Scope {
    type Err = ParseScopeError;
    fn from_str(s: &str) -> Result<Scope, ParseScopeError> {
        match s {
            "host" => Ok(Scope::Host),
            "link" => Ok(Scope::Link),
            "global" => Ok(Scope::Global),
            "kni_host" => Ok(Scope::KniHost),
            _ => Err(ParseScopeError(s.to_string())),
        }
    }
}

/// One route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Network address; host bits must be zero.
    pub prefix: Addr,
    /// Prefix length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub plen: u8,
    /// Next hop for `Global` routes; `None` means the destination is on-link.
    pub gateway: Option<Addr>,
    /// Outgoing port.
    pub port: PortId,
    /// Scope.
    pub scope: Scope,
    /// Preferred source address for traffic rvs originates on this route.
    pub src: Option<Addr>,
    /// Path MTU (0: the port's MTU).
    pub mtu: u16,
    /// Metric, shown by dpip; the longest prefix wins regardless.
    pub metric: u32,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.prefix, self.plen)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(src) = self.src {
            write!(f, " src {src}")?;
        }
        write!(
            f,
            " port {} scope {} mtu {} metric {}",
            self.port, self.scope, self.mtu, self.metric
        )
    }
}

/// Why a route could not be added or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// A route with the same prefix and length is already present.
    Exists,
    /// No route with that prefix and length.
    NotFound,
    /// The prefix is malformed; the message says how.
    BadPrefix(String),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Exists => f.write_str("route already exists"),
            RouteError::NotFound => f.write_str("no such route"),
            RouteError::BadPrefix(m) => write!(f, "bad route prefix: {m}"),
        }
    }
}

impl std::error::Error for RouteError {}

/// The routes of one address family.
#[derive(Clone, Debug)]
struct Family<K: PrefixKey> {
    map: PrefixMap<K, Route>,
}

impl<K: PrefixKey> Family<K> {
    fn new() -> Self {
        Family {
            map: PrefixMap::new(),
        }
    }

    fn insert(&mut self, key: K, r: Route) -> Result<(), RouteError> {
        let plen = r.plen;
        if self.map.get(key, plen).is_some() {
            return Err(RouteError::Exists);
        }
        self.map
            .insert(key, plen, r)
            .map(|_| ())
            .map_err(|_| RouteError::BadPrefix(format!("prefix length {plen} out of range")))
    }

    fn remove(&mut self, key: K, plen: u8) -> Result<Route, RouteError> {
        self.map.remove(key, plen).ok_or(RouteError::NotFound)
    }

    fn get(&self, key: K, plen: u8) -> Option<&Route> {
        self.map.get(key, plen)
    }

    #[inline]
    fn lookup(&self, dst: K) -> Option<&Route> {
        self.map.lookup(dst)
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Longest-prefix-match routing table for both address families.
#[derive(Clone, Debug)]
pub struct RouteTable {
    v4: Family<u32>,
    v6: Family<u128>,
}

impl Default for RouteTable {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks a prefix the way `dpip route add` would and says precisely what is wrong.
fn check_prefix(prefix: &Addr, plen: u8) -> Result<(), RouteError> {
    if prefix.is_v4() {
        if plen > 32 {
            return Err(RouteError::BadPrefix(format!(
                "{prefix}/{plen}: IPv4 prefix length must be 0..=32"
            )));
        }
        let net = prefix.v4_u32().masked(plen);
        if net != prefix.v4_u32() {
            let fixed = Addr::from_v4_bytes(net.to_be_bytes());
            return Err(RouteError::BadPrefix(format!(
                "{prefix}/{plen} has host bits set (network is {fixed}/{plen})"
            )));
        }
    } else {
        if plen > 128 {
            return Err(RouteError::BadPrefix(format!(
                "{prefix}/{plen}: IPv6 prefix length must be 0..=128"
            )));
        }
        let net = prefix.as_u128().masked(plen);
        if net != prefix.as_u128() {
            let fixed = Addr::from_u128(net);
            return Err(RouteError::BadPrefix(format!(
                "{prefix}/{plen} has host bits set (network is {fixed}/{plen})"
            )));
        }
    }
    Ok(())
}

fn family_name(a: &Addr) -> &'static str {
    if a.is_v4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        RouteTable {
            v4: Family::new(),
            v6: Family::new(),
        }
    }

    /// Adds a route. The prefix must have no host bits set, and the gateway
    /// and source (if any) must be of the prefix's address family.
    pub fn add(&mut self, r: Route) -> Result<(), RouteError> {
        check_prefix(&r.prefix, r.plen)?;
        for (what, a) in [("gateway", r.gateway), ("source", r.src)] {
            if let Some(a) = a {
                if a.is_v4() != r.prefix.is_v4() {
                    return Err(RouteError::BadPrefix(format!(
                        "{what} {a} is {} but prefix {}/{} is {}",
                        family_name(&a),
                        r.prefix,
                        r.plen,
                        family_name(&r.prefix)
                    )));
                }
            }
        }
        if r.prefix.is_v4() {
            self.v4.insert(r.prefix.v4_u32(), r)
        } else {
            self.v6.insert(r.prefix.as_u128(), r)
        }
    }

    /// Removes the route for exactly `prefix`/`plen` and returns it.
    pub fn del(&mut self, prefix: &Addr, plen: u8) -> Result<Route, RouteError> {
        check_prefix(prefix, plen)?;
        if prefix.is_v4() {
            self.v4.remove(prefix.v4_u32(), plen)
        } else {
            self.v6.remove(prefix.as_u128(), plen)
        }
    }

    /// The route for exactly `prefix`/`plen` (no longest-prefix matching).
    pub fn get(&self, prefix: &Addr, plen: u8) -> Option<&Route> {
        if prefix.is_v4() {
            self.v4.get(prefix.v4_u32(), plen)
        } else {
            self.v6.get(prefix.as_u128(), plen)
        }
    }

    /// Longest-prefix match for `dst`, within `dst`'s own address family.
    /// Allocation-free; one hash probe per distinct prefix length in use.
    #[inline]
    pub fn lookup(&self, dst: &Addr) -> Option<&Route> {
        if dst.is_v4() {
            self.v4.lookup(dst.v4_u32())
        } else {
            self.v6.lookup(dst.as_u128())
        }
    }

    /// All routes, IPv4 first, each family longest prefix first and then by
    /// address (the order `dpip route show` uses). Collects and sorts, so it
    /// is for the control plane, not the data path.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        let mut v4: Vec<&Route> = self.v4.map.maps().iter().flat_map(|m| m.values()).collect();
        let mut v6: Vec<&Route> = self.v6.map.maps().iter().flat_map(|m| m.values()).collect();
        let order = |a: &&Route, b: &&Route| b.plen.cmp(&a.plen).then(a.prefix.cmp(&b.prefix));
        v4.sort_unstable_by(order);
        v6.sort_unstable_by(order);
        v4.into_iter().chain(v6)
    }

    /// Number of routes (both families).
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the table has no route.
    pub fn is_empty(&self) -> bool {
        self.v4.map.is_empty() && self.v6.map.is_empty()
    }
}

#[cfg(test)]
mod tests;

//! Address types shared by every module of the data path.
//!
//! The data path keeps every address in one 16-byte form so that IPv4 and IPv6
//! share the connection table, the routing table and the schedulers. An IPv4
//! address is stored IPv4-mapped (`::ffff:a.b.c.d`), as the kernel does for
//! dual-stack sockets; the form is `[u8; 16]` (alignment 1) so that it packs
//! tightly inside connection entries.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 address in the data path's 16-byte form.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Addr(pub [u8; 16]);

const V4_MAPPED_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

impl Addr {
    /// The unspecified address `::` (also used for "no address").
    pub const UNSPECIFIED: Addr = Addr([0; 16]);

    /// An IPv4 address from its four octets.
    pub const fn v4(a: u8, b: u8, c: u8, d: u8) -> Addr {
        Addr([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d])
    }

    /// An IPv4 address from its network-order bytes.
    pub const fn from_v4_bytes(b: [u8; 4]) -> Addr {
        Addr::v4(b[0], b[1], b[2], b[3])
    }

    /// An IPv6 address from its network-order bytes.
    pub const fn from_v6_bytes(b: [u8; 16]) -> Addr {
        Addr(b)
    }

    /// Whether this is an IPv4 (IPv4-mapped) address.
    #[inline]
    pub fn is_v4(&self) -> bool {
        self.0[..12] == V4_MAPPED_PREFIX
    }

    /// Whether this is the unspecified address (`::` or `0.0.0.0`).
    pub fn is_unspecified(&self) -> bool {
        self.0 == [0; 16] || (self.is_v4() && self.0[12..] == [0; 4])
    }

    /// The four IPv4 octets (the low 32 bits; meaningful when [`Addr::is_v4`]).
    #[inline]
    pub fn v4_bytes(&self) -> [u8; 4] {
        [self.0[12], self.0[13], self.0[14], self.0[15]]
    }

    /// The IPv4 address as a host-order integer (meaningful when [`Addr::is_v4`]).
    #[inline]
    pub fn v4_u32(&self) -> u32 {
        u32::from_be_bytes(self.v4_bytes())
    }

    /// The address as a host-order 128-bit integer (IPv4-mapped for IPv4).
    #[inline]
    pub fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// The address from a host-order 128-bit integer.
    #[inline]
    pub fn from_u128(v: u128) -> Addr {
        Addr(v.to_be_bytes())
    }

    /// The bytes as they appear on the wire: 4 for IPv4, 16 for IPv6.
    #[inline]
    pub fn wire_bytes(&self) -> &[u8] {
        if self.is_v4() {
            &self.0[12..]
        } else {
            &self.0[..]
        }
    }

    /// Converts to the standard library's address type.
    pub fn to_ip(&self) -> IpAddr {
        if self.is_v4() {
            IpAddr::V4(Ipv4Addr::from(self.v4_bytes()))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.0))
        }
    }

    /// The next address (wrapping), used to walk address ranges.
    pub fn next(&self) -> Addr {
        if self.is_v4() {
            Addr::from_v4_bytes(self.v4_u32().wrapping_add(1).to_be_bytes())
        } else {
            Addr::from_u128(self.as_u128().wrapping_add(1))
        }
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Addr {
        match ip {
            IpAddr::V4(v4) => Addr::from_v4_bytes(v4.octets()),
            IpAddr::V6(v6) => Addr(v6.octets()),
        }
    }
}

impl From<Ipv4Addr> for Addr {
    fn from(ip: Ipv4Addr) -> Addr {
        Addr::from_v4_bytes(ip.octets())
    }
}

impl From<Ipv6Addr> for Addr {
    fn from(ip: Ipv6Addr) -> Addr {
        Addr(ip.octets())
    }
}

impl From<Addr> for IpAddr {
    fn from(a: Addr) -> IpAddr {
        a.to_ip()
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_ip(), f)
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_ip(), f)
    }
}

impl FromStr for Addr {
    type Err = std::net::AddrParseError;
    fn from_str(s: &str) -> Result<Addr, Self::Err> {
        s.parse::<IpAddr>().map(Addr::from)
    }
}

/// A 48-bit Ethernet (MAC) address.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    /// The all-zero address.
    pub const ZERO: Mac = Mac([0; 6]);

    /// Whether the group (multicast/broadcast) bit is set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error for a MAC address that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacParseError(pub String);

impl fmt::Display for MacParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid MAC address '{}' (expected aa:bb:cc:dd:ee:ff)",
            self.0
        )
    }
}

impl std::error::Error for MacParseError {}

impl FromStr for Mac {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Mac, MacParseError> {
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(':') {
            if n == 6 || part.is_empty() || part.len() > 2 {
                return Err(MacParseError(s.to_string()));
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| MacParseError(s.to_string()))?;
            n += 1;
        }
        if n != 6 {
            return Err(MacParseError(s.to_string()));
        }
        Ok(Mac(out))
    }
}

/// Index of a port (a taken-over network device such as `dpdk0`) in the data path.
pub type PortId = u16;

/// IP protocol numbers used by the data path.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IPv4-in-IP encapsulation (TUNNEL mode).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6-in-IP encapsulation.
    pub const IPV6: u8 = 41;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_round_trip_and_display() {
        let a: Addr = "10.0.0.100".parse().unwrap();
        assert!(a.is_v4());
        assert_eq!(a, Addr::v4(10, 0, 0, 100));
        assert_eq!(a.to_string(), "10.0.0.100");
        assert_eq!(a.wire_bytes(), &[10, 0, 0, 100]);
        assert_eq!(a.next().to_string(), "10.0.0.101");
    }

    #[test]
    fn v6_round_trip() {
        let a: Addr = "2001:db8::1".parse().unwrap();
        assert!(!a.is_v4());
        assert_eq!(a.to_string(), "2001:db8::1");
        assert_eq!(a.wire_bytes().len(), 16);
    }

    #[test]
    fn mac_parse() {
        let m: Mac = "02:00:00:aa:bb:0c".parse().unwrap();
        assert_eq!(m.0, [2, 0, 0, 0xaa, 0xbb, 0x0c]);
        assert_eq!(m.to_string(), "02:00:00:aa:bb:0c");
        assert!("02:00:00:aa:bb".parse::<Mac>().is_err());
        assert!("zz:00:00:aa:bb:cc".parse::<Mac>().is_err());
    }
}

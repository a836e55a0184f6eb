//! VRRP advertisements: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798), a checked
//! view for decoding and a representation for encoding.
//!
//! This module covers the VRRP message only (what follows the IPv4 header,
//! or the IPv6 header): the IP header is the socket's. An advertisement is
//! sent with IP protocol [`PROTOCOL`] (112), TTL / hop limit [`TTL`] (255),
//! to [`MCAST_V4`] / [`MCAST_V6`] or to unicast peers; an IPv6 one from a
//! link-local source.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! v2: |  Auth Type    |  Adver Int (s) |          Checksum          |
//! v3: |(rsvd) |   Max Adver Int (cs)   |          Checksum          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            IPv4 (4 bytes) or IPv6 (16 bytes) addresses         |
//! |                              ...                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! v2 only: |        Authentication Data (8 bytes)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Checksums: a VRRPv2 checksum covers the VRRP message alone. A VRRPv3
//! checksum also covers the IPv4 or IPv6 pseudo-header (RFC 5798 5.2.8), as
//! keepalived computes it by default; some routers (and keepalived's
//! `v3_checksum_as_v2`) leave the pseudo-header out for IPv4
//! ([`ChecksumMode::V3NoPseudoHeader`]), and keepalived up to 1.3.6 put the
//! multicast group instead of the unicast destination in it
//! ([`ChecksumMode::V3MulticastPseudoDst`], its `old_unicast_checksum`).
//!
//! Nothing here panics on any input: lengths are checked once by
//! [`Advert::new_checked`] and every getter reads through `get`.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// The IPv4 multicast group of VRRP (224.0.0.18).
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group of VRRP (ff02::12).
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The TTL / hop limit every advertisement is sent with, and the one a
/// multicast advertisement must arrive with.
pub const TTL: u8 = 255;
/// Length of the fixed VRRP header.
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data (after the addresses).
pub const AUTH_LEN: usize = 8;
/// The only packet type: ADVERTISEMENT.
pub const TYPE_ADVERT: u8 = 1;
/// VRRPv2 authentication type 0: none.
pub const AUTH_TYPE_NONE: u8 = 0;
/// VRRPv2 authentication type 1: simple text password (keepalived's `PASS`).
pub const AUTH_TYPE_PASS: u8 = 1;
/// The largest VRRPv3 Max Adver Int (12 bits), in centiseconds.
pub const MAX_V3_INTERVAL_CS: u16 = 0x0fff;

/// The protocol version.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// VRRPv2 (RFC 3768): IPv4 only, intervals in seconds, optional password.
    V2,
    /// VRRPv3 (RFC 5798): IPv4 and IPv6, intervals in centiseconds.
    V3,
}

impl Version {
    /// The number in the version nibble.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// The address family of an advertisement (which IP carries it).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Over IPv4: 4-byte addresses.
    V4,
    /// Over IPv6: 16-byte addresses.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Bytes per address in the advertisement.
    pub fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    /// The VRRP multicast group of the family.
    pub fn multicast_group(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(MCAST_V4),
            Family::V6 => IpAddr::V6(MCAST_V6),
        }
    }
}

/// VRRPv2 authentication (none for VRRPv3).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Type 0.
    None,
    /// Type 1, simple text password: 8 bytes, zero-padded (see [`Auth::pass`]).
    Pass([u8; AUTH_LEN]),
}

impl Auth {
    /// The password `auth_pass` configures, as keepalived sends it: its first
    /// 8 bytes, zero-padded. Returns whether it was truncated, so that the
    /// configuration can warn as keepalived does.
    pub fn pass(password: &str) -> (Auth, bool) {
        let mut data = [0u8; AUTH_LEN];
        let bytes = password.as_bytes();
        let n = bytes.len().min(AUTH_LEN);
        data[..n].copy_from_slice(&bytes[..n]);
        (Auth::Pass(data), bytes.len() > AUTH_LEN)
    }

    /// The authentication type number.
    pub fn type_number(&self) -> u8 {
        match self {
            Auth::None => AUTH_TYPE_NONE,
            Auth::Pass(_) => AUTH_TYPE_PASS,
        }
    }

    /// The 8 bytes of authentication data sent (zeros without a password).
    pub fn data(&self) -> [u8; AUTH_LEN] {
        match self {
            Auth::None => [0; AUTH_LEN],
            Auth::Pass(d) => *d,
        }
    }
}

/// How the VRRPv3 checksum of an IPv4 advertisement is computed. VRRPv2 and
/// IPv6 ignore it (v2: never a pseudo-header; IPv6: always the real one).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChecksumMode {
    /// RFC 5798 5.2.8 with the IPv4 pseudo-header (keepalived's default).
    #[default]
    Rfc,
    /// Without a pseudo-header, as VRRPv2 (keepalived's `v3_checksum_as_v2`,
    /// some Cisco and Juniper releases).
    V3NoPseudoHeader,
    /// The pseudo-header with the multicast group as destination even for
    /// unicast (keepalived up to 1.3.6; its `old_unicast_checksum`).
    V3MulticastPseudoDst,
}

/// Why an advertisement was rejected. Each variant names a drop reason
/// ([`PacketError::reason`]) under which it is counted.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PacketError {
    /// The message is shorter than the fixed header, or its length is not
    /// the one its address count (and version) implies.
    Length {
        /// Bytes received.
        len: usize,
        /// Bytes the header says the message has.
        expected: usize,
    },
    /// The version nibble is neither 2 nor 3, or 2 over IPv6.
    BadVersion {
        /// The version nibble received.
        version: u8,
    },
    /// A valid version, but not the one the instance runs.
    VersionMismatch {
        /// Version received.
        got: u8,
        /// Version configured.
        expected: u8,
    },
    /// The type nibble is not 1 (ADVERTISEMENT).
    BadType {
        /// The type nibble received.
        kind: u8,
    },
    /// The checksum does not verify.
    BadChecksum {
        /// The checksum field received.
        found: u16,
        /// The checksum the message should carry.
        computed: u16,
    },
    /// The address count differs from the number of virtual addresses
    /// configured (RFC 5798 7.1: counted and logged, the advert is still used).
    AddressCountMismatch {
        /// Count received.
        got: u8,
        /// Count configured.
        expected: u8,
    },
    /// VRRPv2: the authentication type differs from the configured one.
    AuthTypeMismatch {
        /// Type received.
        got: u8,
        /// Type configured.
        expected: u8,
    },
    /// VRRPv2: the password differs from the configured one.
    AuthMismatch,
    /// An advertisement interval of 0, which no timer can use.
    ZeroInterval,
    /// VRRPv2: the advertisement interval differs from the configured one
    /// (RFC 3768 7.1: discarded).
    IntervalMismatch {
        /// Interval received, in centiseconds.
        got_cs: u16,
        /// Interval configured, in centiseconds.
        expected_cs: u16,
    },
    /// The IP TTL / hop limit is not 255.
    BadTtl {
        /// TTL received.
        ttl: u8,
    },
    /// An address does not belong to the advertisement's family (a caller
    /// error when encoding, or source and destination of mixed families).
    FamilyMismatch,
    /// Encoding: a field is out of range for the version (interval, count,
    /// password on VRRPv3).
    FieldRange {
        /// Which field.
        field: &'static str,
    },
    /// Encoding: the output buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
    },
}

impl PacketError {
    /// A short stable name for counters (`drop reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            PacketError::Length { .. } => "length",
            PacketError::BadVersion { .. } => "bad_version",
            PacketError::VersionMismatch { .. } => "version_mismatch",
            PacketError::BadType { .. } => "bad_type",
            PacketError::BadChecksum { .. } => "bad_checksum",
            PacketError::AddressCountMismatch { .. } => "address_count_mismatch",
            PacketError::AuthTypeMismatch { .. } => "auth_type_mismatch",
            PacketError::AuthMismatch => "auth_mismatch",
            PacketError::ZeroInterval => "zero_interval",
            PacketError::IntervalMismatch { .. } => "interval_mismatch",
            PacketError::BadTtl { .. } => "bad_ttl",
            PacketError::FamilyMismatch => "family_mismatch",
            PacketError::FieldRange { .. } => "field_range",
            PacketError::BufferTooSmall { .. } => "buffer_too_small",
        }
    }
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Length { len, expected } => {
                write!(f, "VRRP message of {len} bytes, header implies {expected}")
            }
            PacketError::BadVersion { version } => {
                write!(f, "bad VRRP version {version} for this address family")
            }
            PacketError::VersionMismatch { got, expected } => {
                write!(f, "VRRP version {got} received, instance runs {expected}")
            }
            PacketError::BadType { kind } => write!(f, "bad VRRP type {kind} (expected 1)"),
            PacketError::BadChecksum { found, computed } => {
                write!(
                    f,
                    "bad VRRP checksum {found:#06x} (computed {computed:#06x})"
                )
            }
            PacketError::AddressCountMismatch { got, expected } => {
                write!(f, "{got} addresses advertised, {expected} configured")
            }
            PacketError::AuthTypeMismatch { got, expected } => {
                write!(
                    f,
                    "authentication type {got} received, {expected} configured"
                )
            }
            PacketError::AuthMismatch => f.write_str("authentication password mismatch"),
            PacketError::ZeroInterval => f.write_str("advert interval 0"),
            PacketError::IntervalMismatch {
                got_cs,
                expected_cs,
            } => write!(
                f,
                "advert interval {} s received, {} s configured",
                got_cs / 100,
                expected_cs / 100
            ),
            PacketError::BadTtl { ttl } => write!(f, "IP TTL {ttl}, VRRP requires 255"),
            PacketError::FamilyMismatch => f.write_str("address family mismatch"),
            PacketError::FieldRange { field } => write!(f, "{field} out of range"),
            PacketError::BufferTooSmall { need } => write!(f, "buffer too small ({need} needed)"),
        }
    }
}

impl std::error::Error for PacketError {}

/// The IP-level facts a receiver knows about an advertisement.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IpMeta {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address (a multicast group or our unicast address).
    pub dst: IpAddr,
    /// The TTL / hop limit received, if the socket reports it.
    pub ttl: Option<u8>,
}

/// What an instance requires of an advertisement (see [`Advert::check`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    /// The configured version.
    pub version: Version,
    /// VRRPv2: the configured authentication.
    pub auth: Auth,
    /// VRRPv2: the configured interval in centiseconds (must match).
    pub interval_cs: u16,
    /// Whether the TTL must be 255 (keepalived skips this for unicast,
    /// whose TTL `unicast_ttl` may lower).
    pub check_ttl: bool,
}

/// A checked view of a VRRP message (the IP payload).
#[derive(Copy, Clone, Debug)]
pub struct Advert<T: AsRef<[u8]>> {
    buf: T,
    family: Family,
}

#[inline]
fn rd8(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

#[inline]
fn rd16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([rd8(b, i), rd8(b, i + 1)])
}

/// The message length a header implies.
fn implied_len(version: u8, count: u8, family: Family) -> usize {
    let auth = if version == 2 { AUTH_LEN } else { 0 };
    HEADER_LEN + count as usize * family.addr_len() + auth
}

impl<T: AsRef<[u8]>> Advert<T> {
    /// Validates length, version (2 or 3; 2 only over IPv4), type and the
    /// length the address count implies. The buffer must be exactly the VRRP
    /// message (the IP payload by the IP length, without Ethernet padding).
    pub fn new_checked(buf: T, family: Family) -> Result<Self, PacketError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(PacketError::Length {
                len: b.len(),
                expected: HEADER_LEN,
            });
        }
        let version = rd8(b, 0) >> 4;
        if !(version == 3 || version == 2 && family == Family::V4) {
            return Err(PacketError::BadVersion { version });
        }
        let kind = rd8(b, 0) & 0x0f;
        if kind != TYPE_ADVERT {
            return Err(PacketError::BadType { kind });
        }
        let expected = implied_len(version, rd8(b, 3), family);
        if b.len() != expected {
            return Err(PacketError::Length {
                len: b.len(),
                expected,
            });
        }
        Ok(Advert { buf, family })
    }

    /// The bytes of the message.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// The family given to [`Advert::new_checked`].
    pub fn family(&self) -> Family {
        self.family
    }

    /// The version.
    pub fn version(&self) -> Version {
        if rd8(self.as_bytes(), 0) >> 4 == 2 {
            Version::V2
        } else {
            Version::V3
        }
    }

    /// Virtual router id.
    pub fn vrid(&self) -> u8 {
        rd8(self.as_bytes(), 1)
    }

    /// Priority (0: the master is stopping; 255: the address owner).
    pub fn priority(&self) -> u8 {
        rd8(self.as_bytes(), 2)
    }

    /// Count of addresses.
    pub fn address_count(&self) -> u8 {
        rd8(self.as_bytes(), 3)
    }

    /// VRRPv2 authentication type (0 for VRRPv3).
    pub fn auth_type(&self) -> u8 {
        match self.version() {
            Version::V2 => rd8(self.as_bytes(), 4),
            Version::V3 => 0,
        }
    }

    /// VRRPv2 authentication data (zeros for VRRPv3).
    pub fn auth_data(&self) -> [u8; AUTH_LEN] {
        let mut d = [0u8; AUTH_LEN];
        if self.version() == Version::V2 {
            let b = self.as_bytes();
            let start = b.len().saturating_sub(AUTH_LEN);
            for (i, x) in d.iter_mut().enumerate() {
                *x = rd8(b, start + i);
            }
        }
        d
    }

    /// The advertisement interval in centiseconds (VRRPv2 seconds × 100;
    /// VRRPv3 the 12-bit Max Adver Int).
    pub fn interval_cs(&self) -> u16 {
        let b = self.as_bytes();
        match self.version() {
            Version::V2 => rd8(b, 5) as u16 * 100,
            Version::V3 => rd16(b, 4) & MAX_V3_INTERVAL_CS,
        }
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        rd16(self.as_bytes(), 6)
    }

    /// The advertised addresses.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let b = self.as_bytes();
        let family = self.family;
        let n = family.addr_len();
        (0..self.address_count() as usize).map(move |i| {
            let mut a = [0u8; 16];
            for (j, x) in a.iter_mut().take(n).enumerate() {
                *x = rd8(b, HEADER_LEN + i * n + j);
            }
            match family {
                Family::V4 => IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
                Family::V6 => IpAddr::V6(Ipv6Addr::from(a)),
            }
        })
    }

    /// Verifies the checksum for an advertisement from `src` to `dst`.
    pub fn verify_checksum(
        &self,
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<(), PacketError> {
        let b = self.as_bytes();
        let pseudo = pseudo_sum(self.version(), self.family, src, dst, mode, b.len())?;
        if fold(pseudo + sum(b)) == 0xffff {
            return Ok(());
        }
        // Take the stored checksum out of the sum: add its complement.
        let without = sum(b) + (!self.checksum()) as u32;
        Err(PacketError::BadChecksum {
            found: self.checksum(),
            computed: !fold(pseudo + without),
        })
    }

    /// The instance-level checks of RFC 5798 7.1 / RFC 3768 7.1, in
    /// keepalived's order: TTL, version, a nonzero interval, authentication,
    /// VRRPv2 interval.
    pub fn check(&self, ttl: Option<u8>, expect: &Expect) -> Result<(), PacketError> {
        if let Some(ttl) = ttl.filter(|&t| expect.check_ttl && t != TTL) {
            return Err(PacketError::BadTtl { ttl });
        }
        if self.version() != expect.version {
            return Err(PacketError::VersionMismatch {
                got: self.version().number(),
                expected: expect.version.number(),
            });
        }
        if self.interval_cs() == 0 {
            return Err(PacketError::ZeroInterval);
        }
        if self.version() == Version::V2 {
            if self.auth_type() != expect.auth.type_number() {
                return Err(PacketError::AuthTypeMismatch {
                    got: self.auth_type(),
                    expected: expect.auth.type_number(),
                });
            }
            if matches!(expect.auth, Auth::Pass(_)) && self.auth_data() != expect.auth.data() {
                return Err(PacketError::AuthMismatch);
            }
            if self.interval_cs() != expect.interval_cs {
                return Err(PacketError::IntervalMismatch {
                    got_cs: self.interval_cs(),
                    expected_cs: expect.interval_cs,
                });
            }
        }
        Ok(())
    }

    /// Whether the address count is the configured one (RFC 5798 7.1 says
    /// to log a mismatch and still process the advertisement).
    pub fn check_address_count(&self, expected: u8) -> Result<(), PacketError> {
        if self.address_count() == expected {
            Ok(())
        } else {
            Err(PacketError::AddressCountMismatch {
                got: self.address_count(),
                expected,
            })
        }
    }
}

/// The fields of an advertisement, for building one (and for tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdvertRepr {
    /// Version.
    pub version: Version,
    /// Virtual router id (1..=255).
    pub vrid: u8,
    /// Priority (0 = stopping, 255 = address owner).
    pub priority: u8,
    /// Advertisement interval in centiseconds (VRRPv2: a multiple of 100).
    pub interval_cs: u16,
    /// VRRPv2 authentication (must be [`Auth::None`] for VRRPv3).
    pub auth: Auth,
    /// The virtual addresses, all of the family of the IP header.
    pub addresses: Vec<IpAddr>,
}

impl AdvertRepr {
    /// The fields of a checked advertisement.
    pub fn parse<T: AsRef<[u8]>>(advert: &Advert<T>) -> AdvertRepr {
        let auth = match advert.auth_type() {
            AUTH_TYPE_PASS => Auth::Pass(advert.auth_data()),
            _ => Auth::None,
        };
        AdvertRepr {
            version: advert.version(),
            vrid: advert.vrid(),
            priority: advert.priority(),
            interval_cs: advert.interval_cs(),
            auth,
            addresses: advert.addresses().collect(),
        }
    }

    /// The length of the encoded message for `family`.
    pub fn buffer_len(&self, family: Family) -> usize {
        let v = self.version.number();
        let count = self.addresses.len().min(255) as u8;
        implied_len(v, count, family)
    }

    fn validate(&self, family: Family) -> Result<(), PacketError> {
        if self.addresses.len() > 255 {
            return Err(PacketError::FieldRange {
                field: "address count",
            });
        }
        if self.addresses.iter().any(|a| Family::of(*a) != family) {
            return Err(PacketError::FamilyMismatch);
        }
        match self.version {
            Version::V2 => {
                if family == Family::V6 {
                    return Err(PacketError::BadVersion { version: 2 });
                }
                if !self.interval_cs.is_multiple_of(100) || self.interval_cs / 100 > 255 {
                    return Err(PacketError::FieldRange {
                        field: "VRRPv2 advert interval (whole seconds, 1-255)",
                    });
                }
            }
            Version::V3 => {
                if self.interval_cs > MAX_V3_INTERVAL_CS {
                    return Err(PacketError::FieldRange {
                        field: "VRRPv3 advert interval (at most 4095 cs)",
                    });
                }
                if self.auth != Auth::None {
                    return Err(PacketError::FieldRange {
                        field: "authentication (VRRPv3 has none)",
                    });
                }
            }
        }
        Ok(())
    }

    /// Encodes the advertisement sent from `src` to `dst` (which enter the
    /// VRRPv3 checksum) into `buf`, returning the length written.
    pub fn emit(
        &self,
        buf: &mut [u8],
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<usize, PacketError> {
        let family = Family::of(src);
        self.validate(family)?;
        let len = self.buffer_len(family);
        let out = buf
            .get_mut(..len)
            .ok_or(PacketError::BufferTooSmall { need: len })?;
        out.fill(0);
        out[0] = (self.version.number() << 4) | TYPE_ADVERT;
        out[1] = self.vrid;
        out[2] = self.priority;
        out[3] = self.addresses.len() as u8;
        match self.version {
            Version::V2 => {
                out[4] = self.auth.type_number();
                out[5] = (self.interval_cs / 100) as u8;
                out[len - AUTH_LEN..].copy_from_slice(&self.auth.data());
            }
            Version::V3 => out[4..6].copy_from_slice(&self.interval_cs.to_be_bytes()),
        }
        let n = family.addr_len();
        for (chunk, addr) in out[HEADER_LEN..].chunks_exact_mut(n).zip(&self.addresses) {
            match addr {
                IpAddr::V4(a) => chunk.copy_from_slice(&a.octets()),
                IpAddr::V6(a) => chunk.copy_from_slice(&a.octets()),
            }
        }
        let pseudo = pseudo_sum(self.version, family, src, dst, mode, len)?;
        let csum = !fold(pseudo + sum(out));
        out[6..8].copy_from_slice(&csum.to_be_bytes());
        Ok(len)
    }

    /// [`AdvertRepr::emit`] into a new vector.
    pub fn to_bytes(
        &self,
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<Vec<u8>, PacketError> {
        let mut v = vec![0u8; self.buffer_len(Family::of(src))];
        let n = self.emit(&mut v, src, dst, mode)?;
        v.truncate(n);
        Ok(v)
    }
}

/// The VRID of a message, for handing it to its instance before any other
/// check (`None` if shorter than 2 bytes).
pub fn peek_vrid(buf: &[u8]) -> Option<u8> {
    buf.get(1).copied()
}

/// The partial sum of the pseudo-header the checksum covers (0 if none).
fn pseudo_sum(
    version: Version,
    family: Family,
    src: IpAddr,
    dst: IpAddr,
    mode: ChecksumMode,
    len: usize,
) -> Result<u32, PacketError> {
    if Family::of(src) != family || Family::of(dst) != family {
        return Err(PacketError::FamilyMismatch);
    }
    if version == Version::V2 {
        return Ok(0);
    }
    let proto = PROTOCOL as u32;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let d = match mode {
                ChecksumMode::Rfc => d,
                ChecksumMode::V3NoPseudoHeader => return Ok(0),
                ChecksumMode::V3MulticastPseudoDst => MCAST_V4,
            };
            Ok(sum(&s.octets()) + sum(&d.octets()) + proto + len as u32)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            Ok(sum(&s.octets()) + sum(&d.octets()) + proto + len as u32)
        }
        _ => Err(PacketError::FamilyMismatch),
    }
}

/// The one's-complement sum of big-endian 16-bit words (RFC 1071), folded to
/// at most 17 bits so that a few sums can be added without overflow.
fn sum(data: &[u8]) -> u32 {
    let mut acc: u32 = 0;
    let mut pairs = data.chunks_exact(2);
    for p in &mut pairs {
        acc += u16::from_be_bytes([p[0], p[1]]) as u32;
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if let [b] = pairs.remainder() {
        acc += (*b as u32) << 8;
    }
    (acc & 0xffff) + (acc >> 16)
}

/// Folds a partial sum to 16 bits (not complemented).
fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

//! Advertisements byte by byte. The expected bytes are written from the RFC
//! layouts; their checksums were computed by hand (RFC 1071 over the words
//! shown, plus the pseudo-header where VRRPv3 has one).

use std::net::IpAddr;

use crate::vrrp::packet::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn v4_repr(version: Version, auth: Auth, interval_cs: u16) -> AdvertRepr {
    AdvertRepr {
        version,
        vrid: 51,
        priority: 100,
        interval_cs,
        auth,
        addresses: vec![ip("192.168.100.254")],
    }
}

/// VRRPv2, no authentication, VRID 51, priority 100, advert_int 1 s,
/// one address 192.168.100.254. Words: 2133 6401 0001 c0a8 64fe → sum aadc,
/// checksum !aadc = 5523.
const V2_NONE: [u8; 20] = [
    0x21, 0x33, 0x64, 0x01, // version 2, type 1, vrid 51, prio 100, count 1
    0x00, 0x01, 0x55, 0x23, // auth type 0, interval 1 s, checksum
    192, 168, 100, 254, // the address
    0, 0, 0, 0, 0, 0, 0, 0, // authentication data: zeros
];

/// The same with `auth_type PASS`, `auth_pass secret` (zero-padded to 8).
const V2_PASS: [u8; 20] = [
    0x21, 0x33, 0x64, 0x01, 0x01, 0x01, 0x17, 0xd7, 192, 168, 100, 254, b's', b'e', b'c', b'r',
    b'e', b't', 0, 0,
];

/// VRRPv3 over IPv4 from 192.168.100.1 to 224.0.0.18, interval 100 cs,
/// checksum with the pseudo-header (c0a8 6401 e000 0012 0070 000c).
const V3_V4_MCAST: [u8; 12] = [
    0x31, 0x33, 0x64, 0x01, 0x00, 0x64, 0x3f, 0x87, 192, 168, 100, 254,
];

/// VRRPv3 over IPv6 from fe80::1 to ff02::12, VRID 1, priority 200,
/// interval 10 cs (advert_int 0.1), one address 2001:db8::100.
const V3_V6: [u8; 24] = [
    0x31, 0x01, 0xc8, 0x01, 0x00, 0x0a, 0xda, 0x1a, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0x01, 0x00,
];

const SRC4: &str = "192.168.100.1";
const MC4: &str = "224.0.0.18";

#[test]
fn v2_without_auth_encodes_byte_exact() {
    let r = v4_repr(Version::V2, Auth::None, 100);
    let bytes = r.to_bytes(ip(SRC4), ip(MC4), ChecksumMode::Rfc).unwrap();
    assert_eq!(bytes, V2_NONE);
}

#[test]
fn v2_with_password_encodes_byte_exact_and_pads_like_keepalived() {
    let (auth, truncated) = Auth::pass("secret");
    assert!(!truncated);
    let r = v4_repr(Version::V2, auth, 100);
    let bytes = r.to_bytes(ip(SRC4), ip(MC4), ChecksumMode::Rfc).unwrap();
    assert_eq!(bytes, V2_PASS);
    // keepalived keeps the first 8 characters of a longer password.
    let (long, truncated) = Auth::pass("0123456789");
    assert!(truncated);
    assert_eq!(long, Auth::Pass(*b"01234567"));
}

#[test]
fn v2_decodes_fields() {
    let a = Advert::new_checked(&V2_PASS[..], Family::V4).unwrap();
    assert_eq!(a.version(), Version::V2);
    assert_eq!((a.vrid(), a.priority(), a.address_count()), (51, 100, 1));
    assert_eq!(a.auth_type(), AUTH_TYPE_PASS);
    assert_eq!(&a.auth_data(), b"secret\0\0");
    assert_eq!(a.interval_cs(), 100);
    assert_eq!(a.checksum(), 0x17d7);
    assert_eq!(a.addresses().collect::<Vec<_>>(), [ip("192.168.100.254")]);
    // VRRPv2 has no pseudo-header: any source and destination verify.
    a.verify_checksum(ip("10.0.0.1"), ip("10.0.0.2"), ChecksumMode::Rfc)
        .unwrap();
}

#[test]
fn v3_ipv4_checksum_includes_the_pseudo_header() {
    let r = v4_repr(Version::V3, Auth::None, 100);
    let bytes = r.to_bytes(ip(SRC4), ip(MC4), ChecksumMode::Rfc).unwrap();
    assert_eq!(bytes, V3_V4_MCAST);
    let a = Advert::new_checked(&bytes[..], Family::V4).unwrap();
    a.verify_checksum(ip(SRC4), ip(MC4), ChecksumMode::Rfc)
        .unwrap();
    // Another source changes the pseudo-header, so the checksum fails.
    let e = a
        .verify_checksum(ip("192.168.100.9"), ip(MC4), ChecksumMode::Rfc)
        .unwrap_err();
    assert_eq!(
        e,
        PacketError::BadChecksum {
            found: 0x3f87,
            computed: 0x3f7f
        }
    );
}

#[test]
fn v3_ipv4_checksum_as_v2_leaves_the_pseudo_header_out() {
    let r = v4_repr(Version::V3, Auth::None, 100);
    let mode = ChecksumMode::V3NoPseudoHeader;
    let bytes = r.to_bytes(ip(SRC4), ip(MC4), mode).unwrap();
    assert_eq!(&bytes[6..8], &[0x44, 0xc0]);
    let a = Advert::new_checked(&bytes[..], Family::V4).unwrap();
    a.verify_checksum(ip("10.9.9.9"), ip(MC4), mode).unwrap();
    assert!(a
        .verify_checksum(ip(SRC4), ip(MC4), ChecksumMode::Rfc)
        .is_err());
}

#[test]
fn v3_unicast_checksum_uses_the_real_destination_or_the_old_group() {
    let r = v4_repr(Version::V3, Auth::None, 100);
    let peer = ip("192.168.100.2");
    let bytes = r.to_bytes(ip(SRC4), peer, ChecksumMode::Rfc).unwrap();
    assert_eq!(&bytes[6..8], &[0xfa, 0xee]);
    // keepalived <= 1.3.6 put 224.0.0.18 in the pseudo-header even for
    // unicast: that is the multicast checksum.
    let old = r
        .to_bytes(ip(SRC4), peer, ChecksumMode::V3MulticastPseudoDst)
        .unwrap();
    assert_eq!(old, V3_V4_MCAST);
}

#[test]
fn v3_ipv6_encodes_byte_exact() {
    let r = AdvertRepr {
        version: Version::V3,
        vrid: 1,
        priority: 200,
        interval_cs: 10,
        auth: Auth::None,
        addresses: vec![ip("2001:db8::100")],
    };
    let (src, dst) = (ip("fe80::1"), IpAddr::V6(MCAST_V6));
    let bytes = r.to_bytes(src, dst, ChecksumMode::Rfc).unwrap();
    assert_eq!(bytes, V3_V6);
    let a = Advert::new_checked(&bytes[..], Family::V6).unwrap();
    a.verify_checksum(src, dst, ChecksumMode::Rfc).unwrap();
    assert_eq!(AdvertRepr::parse(&a), r);
}

#[test]
fn round_trips_keep_every_field() {
    let cases = [
        (v4_repr(Version::V2, Auth::pass("pw").0, 25500), SRC4, MC4),
        (
            v4_repr(Version::V3, Auth::None, 4095),
            SRC4,
            "192.168.100.7",
        ),
        (
            AdvertRepr {
                addresses: vec![],
                ..v4_repr(Version::V3, Auth::None, 1)
            },
            SRC4,
            MC4,
        ),
    ];
    for (r, src, dst) in cases {
        let bytes = r.to_bytes(ip(src), ip(dst), ChecksumMode::Rfc).unwrap();
        let a = Advert::new_checked(&bytes[..], Family::V4).unwrap();
        a.verify_checksum(ip(src), ip(dst), ChecksumMode::Rfc)
            .unwrap();
        assert_eq!(AdvertRepr::parse(&a), r);
    }
}

#[test]
fn decoder_names_each_error() {
    let v4 = Family::V4;
    let err = |b: &[u8], f| Advert::new_checked(b, f).unwrap_err();
    assert_eq!(
        err(&V2_NONE[..7], v4),
        PacketError::Length {
            len: 7,
            expected: 8
        }
    );
    assert_eq!(
        err(&V2_NONE[..19], v4),
        PacketError::Length {
            len: 19,
            expected: 20
        }
    );
    let mut b = V2_NONE;
    b[3] = 2; // two addresses announced, one present
    assert_eq!(
        err(&b, v4),
        PacketError::Length {
            len: 20,
            expected: 24
        }
    );
    let mut b = V2_NONE;
    b[0] = 0x41;
    assert_eq!(err(&b, v4), PacketError::BadVersion { version: 4 });
    // VRRPv2 does not exist over IPv6.
    let b6 = [0x21, 1, 100, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(err(&b6, Family::V6), PacketError::BadVersion { version: 2 });
    let mut b = V2_NONE;
    b[0] = 0x22;
    assert_eq!(err(&b, v4), PacketError::BadType { kind: 2 });
    let mut b = V2_NONE;
    b[13] = 1; // a flipped bit in the authentication data
    let a = Advert::new_checked(&b[..], v4).unwrap();
    let e = a.verify_checksum(ip(SRC4), ip(MC4), ChecksumMode::Rfc);
    assert_eq!(
        e,
        Err(PacketError::BadChecksum {
            found: 0x5523,
            computed: 0x5522
        })
    );
    assert_eq!(e.unwrap_err().reason(), "bad_checksum");
}

fn expect(version: Version, auth: Auth) -> Expect {
    Expect {
        version,
        auth,
        interval_cs: 100,
        check_ttl: true,
    }
}

#[test]
fn instance_checks_name_each_mismatch() {
    let none = Advert::new_checked(&V2_NONE[..], Family::V4).unwrap();
    let pass = Advert::new_checked(&V2_PASS[..], Family::V4).unwrap();
    let (secret, _) = Auth::pass("secret");
    let (other, _) = Auth::pass("other");
    pass.check(Some(255), &expect(Version::V2, secret)).unwrap();
    assert_eq!(
        pass.check(Some(255), &expect(Version::V2, other)),
        Err(PacketError::AuthMismatch)
    );
    assert_eq!(
        none.check(Some(255), &expect(Version::V2, secret)),
        Err(PacketError::AuthTypeMismatch {
            got: 0,
            expected: 1
        })
    );
    assert_eq!(
        none.check(Some(64), &expect(Version::V2, Auth::None)),
        Err(PacketError::BadTtl { ttl: 64 })
    );
    // No TTL from the socket, or a unicast instance: not checked.
    none.check(None, &expect(Version::V2, Auth::None)).unwrap();
    let unicast = Expect {
        check_ttl: false,
        ..expect(Version::V2, Auth::None)
    };
    none.check(Some(64), &unicast).unwrap();
    assert_eq!(
        none.check(Some(255), &expect(Version::V3, Auth::None)),
        Err(PacketError::VersionMismatch {
            got: 2,
            expected: 3
        })
    );
    let slow = Expect {
        interval_cs: 300,
        ..expect(Version::V2, Auth::None)
    };
    assert_eq!(
        none.check(Some(255), &slow),
        Err(PacketError::IntervalMismatch {
            got_cs: 100,
            expected_cs: 300
        })
    );
    assert_eq!(
        none.check_address_count(2),
        Err(PacketError::AddressCountMismatch {
            got: 1,
            expected: 2
        })
    );
    none.check_address_count(1).unwrap();
    let mut zero = V3_V4_MCAST;
    zero[5] = 0;
    let z = Advert::new_checked(&zero[..], Family::V4).unwrap();
    assert_eq!(
        z.check(None, &expect(Version::V3, Auth::None)),
        Err(PacketError::ZeroInterval)
    );
}

#[test]
fn v3_interval_uses_12_bits_and_ignores_reserved_bits() {
    let mut b = V3_V4_MCAST;
    b[4] = 0xf0; // reserved bits set, interval 0x064
    let a = Advert::new_checked(&b[..], Family::V4).unwrap();
    assert_eq!(a.interval_cs(), 100);
}

#[test]
fn encoder_refuses_what_the_version_cannot_carry() {
    let src = ip(SRC4);
    let fract = v4_repr(Version::V2, Auth::None, 150);
    assert!(matches!(
        fract.to_bytes(src, ip(MC4), ChecksumMode::Rfc),
        Err(PacketError::FieldRange { .. })
    ));
    let slow = v4_repr(Version::V3, Auth::None, 4096);
    assert!(slow.to_bytes(src, ip(MC4), ChecksumMode::Rfc).is_err());
    let v3pass = v4_repr(Version::V3, Auth::pass("x").0, 100);
    assert!(v3pass.to_bytes(src, ip(MC4), ChecksumMode::Rfc).is_err());
    let r = v4_repr(Version::V3, Auth::None, 100);
    assert_eq!(
        r.to_bytes(ip("fe80::1"), ip("ff02::12"), ChecksumMode::Rfc),
        Err(PacketError::FamilyMismatch)
    );
    let mut small = [0u8; 11];
    assert_eq!(
        r.emit(&mut small, src, ip(MC4), ChecksumMode::Rfc),
        Err(PacketError::BufferTooSmall { need: 12 })
    );
    assert_eq!(peek_vrid(&V2_NONE), Some(51));
    assert_eq!(peek_vrid(&[0x21]), None);
}

/// xorshift64*: a deterministic PRNG for the fuzz-style loops.
pub(super) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Random bytes, and valid adverts with random corruption, never panic any
/// decoder or check, and whatever decodes re-encodes to the same bytes
/// (its fields read back the same).
#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let seeds: [&[u8]; 4] = [&V2_NONE, &V2_PASS, &V3_V4_MCAST, &V3_V6];
    let ex = expect(Version::V3, Auth::None);
    let mut decoded = 0u32;
    for i in 0..200_000u32 {
        let mut buf = if i % 2 == 0 {
            let len = (rng.next() % 64) as usize;
            (0..len).map(|_| rng.next() as u8).collect::<Vec<_>>()
        } else {
            let mut b = seeds[(rng.next() % 4) as usize].to_vec();
            let flips = 1 + rng.next() % 3;
            for _ in 0..flips {
                let at = (rng.next() as usize) % b.len();
                b[at] = rng.next() as u8;
            }
            b.truncate((rng.next() as usize) % (b.len() + 1));
            b
        };
        // Now and then make version, type and count consistent with the
        // length (over IPv4), so that the decoders get past those checks.
        if i % 3 == 0 && buf.len() >= 16 {
            let v2 = rng.next().is_multiple_of(2);
            buf[0] = if v2 { 0x21 } else { 0x31 };
            let count = (buf.len() - if v2 { 16 } else { 8 }) / 4;
            buf[3] = count as u8;
            buf.truncate(if v2 { 16 } else { 8 } + 4 * count);
        }
        for family in [Family::V4, Family::V6] {
            let (src, dst) = match family {
                Family::V4 => (ip(SRC4), ip(MC4)),
                Family::V6 => (ip("fe80::1"), ip("ff02::12")),
            };
            let Ok(a) = Advert::new_checked(&buf[..], family) else {
                continue;
            };
            decoded += 1;
            let _ = (a.vrid(), a.priority(), a.auth_data(), a.interval_cs());
            let _ = a.addresses().count();
            let _ = a.verify_checksum(src, dst, ChecksumMode::Rfc);
            let _ = a.check(Some(rng.next() as u8), &ex);
            let r = AdvertRepr::parse(&a);
            if let Ok(again) = r.to_bytes(src, dst, ChecksumMode::Rfc) {
                let b = Advert::new_checked(&again[..], family).unwrap();
                assert_eq!(AdvertRepr::parse(&b), r, "round trip of {buf:02x?}");
                b.verify_checksum(src, dst, ChecksumMode::Rfc).unwrap();
            }
        }
    }
    // The loop is only worth something if many inputs got past the checks.
    assert!(decoded > 10_000, "only {decoded} inputs decoded");
}

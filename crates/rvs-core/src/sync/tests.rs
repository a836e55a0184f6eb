//! Tests of the sync message format: byte-exact encoding, round trips,
//! batching, every decode error, and random inputs.

use super::*;
use crate::addr::{proto, Addr};
use crate::conn::{flags, FwdMode, Tuple};
use crate::lab::Rng;

const CIP: Addr = Addr::v4(10, 0, 0, 48);
const VIP: Addr = Addr::v4(10, 0, 0, 100);
const RIP: Addr = Addr::v4(192, 168, 100, 2);
const LIP: Addr = Addr::v4(192, 168, 100, 200);

fn v6(s: &str) -> Addr {
    s.parse().unwrap()
}

fn fnat_v4() -> SyncConn {
    SyncConn {
        proto: proto::TCP,
        mode: FwdMode::Fnat,
        state: 3,
        flags: flags::TOA_SENT,
        cip: CIP,
        cport: 37177,
        vip: VIP,
        vport: 80,
        rip: RIP,
        rport: 80,
        lip: LIP,
        lport: 1025,
        timeout_ms: 899_000,
        svc: SvcRef::Vs {
            proto: proto::TCP,
            vip: VIP,
            vport: 80,
        },
        dest: RIP,
        dest_port: 80,
        sp_seq: 0,
        sp_ts: 0,
    }
}

fn fnat_v6() -> SyncConn {
    SyncConn {
        proto: proto::UDP,
        cip: v6("2001:db8::48"),
        vip: v6("2001:db8::100"),
        vport: 53,
        rip: v6("fd00::2"),
        rport: 5353,
        lip: v6("fd00::200"),
        svc: SvcRef::Vs {
            proto: proto::UDP,
            vip: v6("2001:db8::100"),
            vport: 53,
        },
        dest: v6("fd00::2"),
        dest_port: 5353,
        sp_seq: 0,
        sp_ts: 0,
        flags: 0,
        state: 0,
        ..fnat_v4()
    }
}

fn dr_template() -> SyncConn {
    SyncConn {
        proto: 255,
        mode: FwdMode::Dr,
        state: 0,
        flags: flags::TEMPLATE | flags::NO_OUT_TUPLE,
        cport: u16::from(proto::TCP),
        lip: Addr::UNSPECIFIED,
        lport: 0,
        dest_port: 0,
        sp_seq: 0,
        sp_ts: 0,
        timeout_ms: 300_000,
        ..fnat_v4()
    }
}

fn snat() -> SyncConn {
    SyncConn {
        mode: FwdMode::Snat,
        cip: Addr::v4(192, 168, 100, 7),
        vip: Addr::v4(8, 8, 8, 8),
        vport: 443,
        rip: Addr::v4(8, 8, 8, 8),
        rport: 443,
        lip: Addr::v4(10, 0, 0, 1),
        lport: 2000,
        svc: SvcRef::Snat { proto: proto::TCP },
        dest: Addr::v4(10, 0, 0, 1),
        dest_port: 0,
        sp_seq: 0,
        sp_ts: 0,
        flags: 0,
        ..fnat_v4()
    }
}

fn hdr() -> Header {
    Header {
        sync_id: 7,
        node: 1,
        seq: 42,
    }
}

fn decode_all(buf: &[u8]) -> (Header, Vec<Record>) {
    let m = Message::parse(buf).unwrap_or_else(|e| panic!("{e}"));
    (m.header(), m.records().collect())
}

#[test]
fn one_message_is_byte_exact() {
    let remove = Tuple::new(proto::TCP, CIP, 37177, VIP, 80);
    let mut buf = [0u8; 256];
    let (len, n) = encode(
        &mut buf,
        hdr(),
        &[Record::Create(fnat_v4()), Record::Remove(remove)],
    )
    .unwrap();
    #[rustfmt::skip]
    let want: &[u8] = &[
        // header: magic, version 1, reserved, length 28 + 52 + 20 = 100
        b'R', b'V', b'S', b'Y', 1, 0, 0, 100,
        0, 0, 0, 7, // sync id
        0, 0, 0, 1, // node
        0, 0, 0, 0, 0, 0, 0, 42, // seq
        0, 2, 0, 0, // 2 records, reserved
        // Create, IPv4/IPv4, 52 bytes
        1, 0, 0, 52,
        6, 0, 3, 1, // TCP, FNAT, state 3, virtual service
        0, 4, 0, 80, // flags TOA_SENT, service port 80
        0x00, 0x0d, 0xb7, 0xb8, // 899000 ms = 0x000db7b8
        0x91, 0x39, 0, 80, 0, 80, 0x04, 0x01, // cport 37177, vport, rport, lport 1025
        0, 80, 6, 0, // dest port, service proto TCP, reserved
        10, 0, 0, 48, 10, 0, 0, 100, 10, 0, 0, 100, // cip, vip, service vip
        192, 168, 100, 2, 192, 168, 100, 200, 192, 168, 100, 2, // rip, lip, dest
        // Remove, IPv4, 20 bytes
        3, 0, 0, 20,
        6, 0, 0x91, 0x39, 0, 80, 0, 0,
        10, 0, 0, 48, 10, 0, 0, 100,
    ];
    assert_eq!((len, n), (want.len(), 2));
    assert_eq!(&buf[..len], want);
    let (h, recs) = decode_all(want);
    assert_eq!(h, hdr());
    assert_eq!(recs, [Record::Create(fnat_v4()), Record::Remove(remove)]);
}

#[test]
fn every_record_kind_round_trips_v4_and_v6() {
    let recs = [
        Record::Create(fnat_v4()),
        Record::Update(fnat_v6()),
        Record::Create(dr_template()),
        Record::Update(snat()),
        Record::Remove(Tuple::new(
            proto::UDP,
            v6("2001:db8::48"),
            1,
            v6("2001:db8::100"),
            53,
        )),
        Record::Resync { from_seq: u64::MAX },
    ];
    let mut buf = [0u8; 1500];
    let (len, n) = encode(&mut buf, hdr(), &recs).unwrap();
    assert_eq!(n, recs.len());
    let (h, got) = decode_all(&buf[..len]);
    assert_eq!(h, hdr());
    assert_eq!(got, recs);
    assert_eq!(Message::parse(&buf[..len]).unwrap().version(), 1);
}

#[test]
fn encoder_batches_to_the_buffer_size() {
    // UDP payload on a 1500-byte MTU: 1500 - 20 (IPv4) - 8 (UDP).
    let mut buf = [0u8; 1472];
    let recs = vec![Record::Create(fnat_v4()); 100];
    let (len, n) = encode(&mut buf, hdr(), &recs).unwrap();
    // 28-byte header + 52 bytes per IPv4 record: 27 records, 1432 bytes.
    assert_eq!((len, n), (28 + 27 * 52, 27));
    assert_eq!(Message::parse(&buf[..len]).unwrap().len(), 27);
    let recs6 = vec![Record::Create(fnat_v6()); 100];
    let (len, n) = encode(&mut buf, hdr(), &recs6).unwrap();
    assert_eq!((len, n), (28 + 11 * 124, 11));
    // Push says Full and leaves the message intact.
    let mut e = Encoder::new(&mut buf[..100], hdr()).unwrap();
    assert_eq!(e.push(&Record::Create(fnat_v4())), Ok(()));
    assert_eq!(e.push(&Record::Create(fnat_v4())), Err(EncodeError::Full));
    assert_eq!(e.count(), 1);
    let len = e.finish();
    assert_eq!(len, 80);
    assert_eq!(decode_all(&buf[..len]).1, [Record::Create(fnat_v4())]);
    // Too small for anything.
    assert_eq!(
        encode(&mut [0u8; 40], hdr(), &recs).unwrap_err(),
        EncodeError::BufferTooSmall
    );
    assert!(Encoder::new(&mut [0u8; 27], hdr()).is_err());
    // Nothing to send: a bare header (a keep-alive).
    assert_eq!(encode(&mut buf, hdr(), &[]).unwrap(), (28, 0));
}

#[test]
fn mixed_families_on_one_side_are_refused() {
    let c = SyncConn {
        vip: v6("2001:db8::100"),
        ..fnat_v4()
    };
    let mut buf = [0u8; 256];
    assert_eq!(
        encode(&mut buf, hdr(), &[Record::Create(c)]).unwrap_err(),
        EncodeError::MixedFamily
    );
    // IPv6 clients to an IPv4 real server is fine on the wire (two sides).
    let c = SyncConn {
        cip: v6("2001:db8::48"),
        vip: v6("2001:db8::100"),
        svc: SvcRef::Vs {
            proto: proto::TCP,
            vip: v6("2001:db8::100"),
            vport: 80,
        },
        ..fnat_v4()
    };
    let (len, _) = encode(&mut buf, hdr(), &[Record::Create(c)]).unwrap();
    assert_eq!(buf[29], 1, "in side IPv6, out side IPv4");
    assert_eq!(decode_all(&buf[..len]).1, [Record::Create(c)]);
}

fn valid() -> Vec<u8> {
    let mut buf = [0u8; 256];
    let (len, _) = encode(&mut buf, hdr(), &[Record::Create(fnat_v4())]).unwrap();
    buf[..len].to_vec()
}

#[test]
fn every_decode_error_is_named() {
    use DecodeError::*;
    let ok = valid();
    let err = |b: &[u8]| Message::parse(b).unwrap_err();
    assert_eq!(
        err(&ok[..10]),
        Truncated {
            what: "header",
            need: 28,
            have: 10
        }
    );
    let mut b = ok.clone();
    b[0] = b'X';
    assert_eq!(err(&b), BadMagic(*b"XVSY"));
    let mut b = ok.clone();
    b[4] = 5;
    assert_eq!(err(&b), UnsupportedVersion(5));
    assert_eq!(
        err(&b).to_string(),
        "sync message version 5 not supported (this rvs reads versions [1, 2, 3])"
    );
    b[4] = 4;
    assert_eq!(
        err(&b),
        LocalOnly,
        "hand-over records never from the network"
    );
    let mut b = ok.clone();
    b[5] = 1;
    assert_eq!(err(&b), Reserved { offset: 5 });
    assert_eq!(
        err(&ok[..60]),
        Truncated {
            what: "message",
            need: 80,
            have: 60
        }
    );
    let mut b = ok.clone();
    b.push(0);
    assert_eq!(
        err(&b),
        LengthMismatch {
            header: 80,
            actual: 81
        }
    );
    let mut b = ok.clone();
    b[28] = 9;
    assert_eq!(err(&b), BadRecordType { index: 0, ty: 9 });
    let mut b = ok.clone();
    b[31] = 51;
    assert_eq!(
        err(&b),
        RecordLength {
            index: 0,
            ty: 1,
            expected: 52,
            found: 51
        }
    );
    let mut b = ok.clone();
    b[29] = 1; // says IPv6 in side: length no longer matches
    assert_eq!(
        err(&b),
        RecordLength {
            index: 0,
            ty: 1,
            expected: 88,
            found: 52
        }
    );
    let mut b = ok.clone();
    b[29] = 4;
    assert_eq!(err(&b), BadFamily { index: 0, bits: 4 });
    let mut b = ok.clone();
    b[33] = 5;
    assert_eq!(
        err(&b),
        BadField {
            index: 0,
            field: "forwarding mode",
            value: 5
        }
    );
    let mut b = ok.clone();
    b[35] = 3;
    assert_eq!(
        err(&b),
        BadField {
            index: 0,
            field: "service kind",
            value: 3
        }
    );
    let mut b = ok.clone();
    b[36] = 0x80;
    assert!(matches!(err(&b), BadField { field: "flags", .. }));
    // Two records announced, one present.
    let mut b = ok.clone();
    b[25] = 2;
    assert!(matches!(
        err(&b),
        Truncated {
            what: "record header",
            ..
        }
    ));
    // No record announced, 52 bytes present.
    let mut b = ok.clone();
    b[25] = 0;
    assert_eq!(
        err(&b),
        TrailingBytes {
            records: 0,
            extra: 52
        }
    );
    for e in [err(&b), err(&ok[..3])] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn ipv6_fields_must_hold_ipv6_addresses() {
    let mut buf = [0u8; 256];
    let t = Tuple::new(proto::TCP, v6("2001:db8::1"), 1, v6("2001:db8::2"), 2);
    let (len, _) = encode(&mut buf, hdr(), &[Record::Remove(t)]).unwrap();
    let mut b = buf[..len].to_vec();
    // cip becomes ::ffff:1.2.3.4 and vip ::: the side has no IPv6 address.
    let cip = 28 + 12;
    b[cip..cip + 16].copy_from_slice(&Addr::v4(1, 2, 3, 4).0);
    b[cip + 16..cip + 32].fill(0);
    assert_eq!(
        Message::parse(&b).unwrap_err(),
        DecodeError::BadFamily { index: 0, bits: 1 }
    );
}

/// What the fuzz target checks: no panic, and whatever decodes re-encodes to
/// the same bytes.
fn check_reencodes(data: &[u8]) -> bool {
    let Ok(m) = Message::parse(data) else {
        return false;
    };
    let recs: Vec<Record> = m.records().collect();
    assert_eq!(recs.len(), m.len());
    let mut out = vec![0u8; data.len()];
    let (len, n) = encode(&mut out, m.header(), &recs).unwrap();
    assert_eq!(n, recs.len());
    assert_eq!(&out[..len], data);
    true
}

#[test]
fn random_and_mutated_inputs_never_panic_and_reencode_exactly() {
    let mut rng = Rng(0x5eed_1234_5678_9abc);
    let mut buf = [0u8; 1500];
    let (len, _) = encode(
        &mut buf,
        hdr(),
        &[
            Record::Create(fnat_v4()),
            Record::Update(fnat_v6()),
            Record::Create(dr_template()),
            Record::Update(snat()),
            Record::Remove(Tuple::new(proto::TCP, CIP, 1, VIP, 80)),
            Record::Resync { from_seq: 9 },
        ],
    )
    .unwrap();
    let seed = buf[..len].to_vec();
    let mut decoded = 0;
    for _ in 0..20_000 {
        let mut b = seed.clone();
        for _ in 0..1 + rng.index(4) {
            let i = rng.index(b.len());
            b[i] = rng.next() as u8;
        }
        if rng.index(4) == 0 {
            b.truncate(rng.index(b.len() + 1));
        }
        decoded += usize::from(check_reencodes(&b));
        let n = rng.index(200);
        let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        check_reencodes(&junk);
    }
    // Mutating addresses, ports, state or timeout keeps a message valid: the
    // re-encoding check ran on many real messages, not only on errors.
    assert!(decoded > 2_000, "only {decoded} mutated messages decoded");
}

/// A SYN proxy connection: its flags and shifts.
fn synproxy_v4() -> SyncConn {
    SyncConn {
        flags: flags::SYNPROXY | (8 << flags::SP_WSCALE_SHIFT),
        sp_seq: 0xdead_beef,
        sp_ts: 0xffff_fff0,
        ..fnat_v4()
    }
}

#[test]
fn synproxy_connections_travel_in_version_2_and_the_rest_in_version_1() {
    let mut buf = [0u8; 512];
    // Without a SYN proxy connection: version 1, as before.
    let (len, _) = encode(&mut buf, hdr(), &[Record::Create(fnat_v4())]).unwrap();
    assert_eq!(buf[4], 1);
    assert_eq!(Message::parse(&buf[..len]).unwrap().version(), 1);
    // With one: version 2, its record 8 bytes longer, the shifts last.
    let recs = [
        Record::Create(fnat_v4()),
        Record::Update(synproxy_v4()),
        Record::Create(synproxy_v4()),
    ];
    let (len, n) = encode(&mut buf, hdr(), &recs).unwrap();
    assert_eq!(n, 3);
    assert_eq!(buf[4], 2);
    let plain = 4 + 24 + 6 * 4;
    assert_eq!(len, 28 + plain + 2 * (plain + 8));
    let rec = &buf[28 + plain..28 + 2 * plain + 8];
    assert_eq!(u16::from_be_bytes([rec[2], rec[3]]) as usize, plain + 8);
    assert_eq!(u16::from_be_bytes([rec[8], rec[9]]), 0x0100 | 8 << 9);
    assert_eq!(
        &rec[plain..],
        &[0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xf0]
    );
    assert_eq!(decode_all(&buf[..len]).1, recs);
    // IPv6 too.
    let c6 = SyncConn {
        flags: flags::SYNPROXY,
        sp_seq: 1,
        sp_ts: 2,
        ..fnat_v6()
    };
    let (len, _) = encode(&mut buf, hdr(), &[Record::Create(c6)]).unwrap();
    assert_eq!(decode_all(&buf[..len]).1, [Record::Create(c6)]);
}

#[test]
fn synproxy_flags_need_version_2_and_each_other() {
    let mut buf = [0u8; 256];
    let (len, _) = encode(&mut buf, hdr(), &[Record::Create(synproxy_v4())]).unwrap();
    let ok = buf[..len].to_vec();
    // The same bytes announced as version 1: a flag version 1 does not have
    // (and a length that does not fit).
    let mut b = ok.clone();
    b[4] = 1;
    assert!(matches!(
        Message::parse(&b),
        Err(DecodeError::RecordLength { .. }) | Err(DecodeError::BadField { field: "flags", .. })
    ));
    // Version 2 without a SYN proxy connection: version 1 is its encoding.
    let (len, _) = encode(&mut buf, hdr(), &[Record::Create(fnat_v4())]).unwrap();
    let mut b = buf[..len].to_vec();
    b[4] = 2;
    assert_eq!(
        Message::parse(&b).unwrap_err(),
        DecodeError::NeedlessVersion {
            version: 2,
            needed: 1
        }
    );
    assert!(Message::parse(&b)
        .unwrap_err()
        .to_string()
        .contains("must be version 1"));
    // The window bits without the SYN proxy flag.
    let c = SyncConn {
        flags: 3 << flags::SP_WSCALE_SHIFT,
        ..fnat_v4()
    };
    let (len, _) = encode(&mut buf, hdr(), &[Record::Create(c)]).unwrap();
    let m = Message::parse(&buf[..len]).unwrap();
    let Some(Record::Create(got)) = m.records().next() else {
        panic!("one record");
    };
    assert_eq!(got.flags, 0, "not written without the SYN proxy flag");
    let mut b = buf[..len].to_vec();
    b[28 + 8..28 + 10].copy_from_slice(&(3u16 << 9).to_be_bytes());
    assert_eq!(
        Message::parse(&b).unwrap_err(),
        DecodeError::BadField {
            index: 0,
            field: "flags",
            value: 3 << 9
        }
    );
}

/// A PROXY protocol (v1) connection: its flag and the client's first
/// sequence number.
fn proxy_v4() -> SyncConn {
    SyncConn {
        flags: flags::TOA_SENT | flags::PROXY_V1,
        sp_ts: 0xffff_fff1,
        ..fnat_v4()
    }
}

#[test]
fn proxy_connections_travel_in_version_3() {
    let mut buf = [0u8; 512];
    let both = SyncConn {
        flags: flags::SYNPROXY | flags::PROXY_V2,
        sp_seq: 0xdead_beef,
        sp_ts: 0x0102_0304,
        ..fnat_v4()
    };
    let recs = [
        Record::Create(fnat_v4()),
        Record::Update(proxy_v4()),
        Record::Create(synproxy_v4()),
        Record::Create(both),
    ];
    let (len, n) = encode(&mut buf, hdr(), &recs).unwrap();
    assert_eq!((n, buf[4]), (4, 3));
    let plain = 4 + 24 + 6 * 4;
    assert_eq!(len, 28 + plain + (plain + 4) + 2 * (plain + 8));
    // PROXY alone: 4 more bytes, the first sequence number.
    let rec = &buf[28 + plain..28 + 2 * plain + 4];
    assert_eq!(u16::from_be_bytes([rec[2], rec[3]]) as usize, plain + 4);
    assert_eq!(u16::from_be_bytes([rec[8], rec[9]]), 0x2000 | 0x0004);
    assert_eq!(&rec[plain..], &[0xff, 0xff, 0xff, 0xf1]);
    // With the SYN proxy: its 8 bytes, the second field the first sequence number.
    let rec = &buf[len - (plain + 8)..len];
    assert_eq!(u16::from_be_bytes([rec[8], rec[9]]), 0x4000 | 0x0100);
    assert_eq!(&rec[plain..], &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
    assert_eq!(decode_all(&buf[..len]).1, recs);
    // IPv6 too.
    let c6 = SyncConn {
        flags: flags::PROXY_V2,
        sp_ts: 7,
        ..fnat_v6()
    };
    let (len, _) = encode(&mut buf, hdr(), &[Record::Create(c6)]).unwrap();
    assert_eq!(buf[4], 3);
    assert_eq!(decode_all(&buf[..len]).1, [Record::Create(c6)]);
}

#[test]
fn proxy_flags_need_version_3_and_only_one_of_them() {
    let mut buf = [0u8; 256];
    let (len, _) = encode(&mut buf, hdr(), &[Record::Create(proxy_v4())]).unwrap();
    let ok = buf[..len].to_vec();
    // Announced as version 2 (or 1): flags these versions do not have.
    for v in [1, 2] {
        let mut b = ok.clone();
        b[4] = v;
        assert!(
            matches!(
                Message::parse(&b),
                Err(DecodeError::RecordLength { .. } | DecodeError::BadField { field: "flags", .. })
            ),
            "version {v}"
        );
    }
    // Version 3 without a PROXY connection: 2 (SYN proxy) or 1 is its encoding.
    for (c, needed) in [(synproxy_v4(), 2), (fnat_v4(), 1)] {
        let (len, _) = encode(&mut buf, hdr(), &[Record::Create(c)]).unwrap();
        let mut b = buf[..len].to_vec();
        b[4] = 3;
        let e = Message::parse(&b).unwrap_err();
        assert_eq!(e, DecodeError::NeedlessVersion { version: 3, needed });
        assert!(e.to_string().contains(&format!("must be version {needed}")));
    }
    // Both PROXY flags at once.
    let mut b = ok.clone();
    b[28 + 8..28 + 10].copy_from_slice(&0x6004u16.to_be_bytes());
    assert_eq!(
        Message::parse(&b).unwrap_err(),
        DecodeError::BadField {
            index: 0,
            field: "flags",
            value: 0x6004
        }
    );
    // A peer of versions 1 and 2 refuses version 3 by name; this one reads it.
    assert!(SUPPORTED_VERSIONS.contains(&VERSION_PROXY));
}

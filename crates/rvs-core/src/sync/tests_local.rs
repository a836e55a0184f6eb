//! Tests of the version 4 hand-over records: layout, random round trips,
//! refusal from the network, decode errors and mutated inputs.

use super::*;
use crate::addr::{proto, Addr, Mac};
use crate::conn::{flags, local_flags, FwdMode, Tuple};
use crate::lab::Rng;

fn hdr() -> Header {
    Header {
        sync_id: 7,
        node: 1,
        seq: 42,
    }
}

fn proxy_conn() -> LocalConn {
    LocalConn {
        conn: SyncConn {
            proto: proto::TCP,
            mode: FwdMode::Fnat,
            state: 3,
            flags: flags::PROXY_V2 | flags::LIMIT_COUNTED | flags::TOA_SENT,
            cip: Addr::v4(10, 0, 0, 48),
            cport: 37177,
            vip: Addr::v4(10, 0, 0, 100),
            vport: 80,
            rip: Addr::v4(192, 168, 100, 2),
            rport: 80,
            lip: Addr::v4(192, 168, 100, 200),
            lport: 1025,
            timeout_ms: 899_000,
            svc: SvcRef::Vs {
                proto: proto::TCP,
                vip: Addr::v4(10, 0, 0, 100),
                vport: 80,
            },
            dest: Addr::v4(192, 168, 100, 2),
            dest_port: 80,
            sp_seq: 0,
            sp_ts: 0x1122_3344,
        },
        local_flags: local_flags::FAST_IN,
        in_port: 1,
        out_port: 0,
        in_mac: Mac([2, 0, 0, 0, 0, 0x48]),
        flow: None,
    }
}

fn roundtrip(recs: &[LocalRecord]) -> Vec<LocalRecord> {
    let mut out = Vec::new();
    let mut rest = recs;
    let mut seq = 0;
    while !rest.is_empty() {
        let mut buf = vec![0u8; 1500];
        let h = Header { seq, ..hdr() };
        let (len, n) = encode_local(&mut buf, h, rest).unwrap();
        let m = LocalMessage::parse(&buf[..len], Source::Local).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.header(), h);
        assert_eq!(m.len(), n);
        out.extend(m.records());
        rest = &rest[n..];
        seq += 1;
    }
    out
}

#[test]
fn an_ipv4_connection_is_72_bytes_with_every_flag_and_96_with_flow_counters() {
    let mut c = proxy_conn();
    c.conn.flags = u16::MAX;
    let mut buf = [0u8; 256];
    let (len, n) = encode_local(&mut buf, hdr(), &[LocalRecord::Conn(c)]).unwrap();
    assert_eq!((len, n), (HEADER_LEN + 72, 1));
    assert_eq!(buf[4], VERSION_LOCAL);
    assert_eq!(&buf[28..32], &[5, 0, 0, 72], "type 5, IPv4 sides, 72 bytes");
    assert_eq!(&buf[36..38], &[0xff, 0xff], "all 16 flags");
    let x = 28 + 28 + 24;
    assert_eq!(&buf[x + 4..x + 8], &[0x11, 0x22, 0x33, 0x44], "sp_ts");
    assert_eq!(&buf[x + 8..x + 12], &[0, 1, 0, 0], "in port, out port");
    assert_eq!(&buf[x + 12..x + 18], &[2, 0, 0, 0, 0, 0x48], "in MAC");
    assert_eq!(buf[x + 18], local_flags::FAST_IN);
    c.flow = Some(FlowState {
        age_ms: 5,
        packets: 6,
        bytes: 7,
    });
    let (len, _) = encode_local(&mut buf, hdr(), &[LocalRecord::Conn(c)]).unwrap();
    assert_eq!(len, HEADER_LEN + 96);
    let m = LocalMessage::parse(&buf[..len], Source::Local).unwrap();
    assert_eq!(m.records().collect::<Vec<_>>(), vec![LocalRecord::Conn(c)]);
}

#[test]
fn hand_over_messages_are_refused_from_the_network() {
    let mut buf = [0u8; 256];
    let (len, _) = encode_local(&mut buf, hdr(), &[LocalRecord::Conn(proxy_conn())]).unwrap();
    let e = LocalMessage::parse(&buf[..len], Source::Network).unwrap_err();
    assert_eq!(e, DecodeError::LocalOnly);
    let e = Message::parse(&buf[..len]).unwrap_err();
    assert_eq!(e, DecodeError::LocalOnly, "the network decoder refuses it");
    assert!(e.to_string().contains("only on a local stream"), "{e}");
    // And a network message is not a hand-over one.
    let (len, _) = encode(&mut buf, hdr(), &[Record::Create(proxy_conn().conn)]).unwrap();
    let e = LocalMessage::parse(&buf[..len], Source::Local).unwrap_err();
    assert_eq!(e, DecodeError::UnsupportedVersion(3));
}

fn addr(rng: &mut Rng, v6: bool) -> Addr {
    match (rng.index(5), v6) {
        (0, _) => Addr::UNSPECIFIED,
        (_, false) => Addr::from_v4_bytes(rng.u32().to_be_bytes()),
        (_, true) => Addr::from_u128(u128::from(rng.next()) << 64 | 0xfd00 << 112 | 1),
    }
}

fn random_conn(rng: &mut Rng) -> LocalConn {
    let (in6, out6) = (rng.bool(), rng.bool());
    let modes = [
        FwdMode::Fnat,
        FwdMode::Dr,
        FwdMode::Tunnel,
        FwdMode::Nat,
        FwdMode::Snat,
    ];
    let vip = addr(rng, in6);
    let svc = match rng.bool() {
        true => SvcRef::Vs {
            proto: rng.next() as u8,
            vip,
            vport: rng.next() as u16,
        },
        false => SvcRef::Snat {
            proto: rng.next() as u8,
        },
    };
    let flow = rng.bool().then(|| FlowState {
        age_ms: rng.next(),
        packets: rng.next(),
        bytes: rng.next(),
    });
    LocalConn {
        conn: SyncConn {
            proto: rng.next() as u8,
            mode: modes[rng.index(modes.len())],
            state: rng.next() as u8,
            flags: rng.next() as u16,
            cip: addr(rng, in6),
            cport: rng.next() as u16,
            vip,
            vport: rng.next() as u16,
            rip: addr(rng, out6),
            rport: rng.next() as u16,
            lip: addr(rng, out6),
            lport: rng.next() as u16,
            timeout_ms: rng.u32(),
            svc,
            dest: addr(rng, out6),
            dest_port: rng.next() as u16,
            sp_seq: rng.u32(),
            sp_ts: rng.u32(),
        },
        local_flags: rng.next() as u8,
        in_port: rng.next() as u16,
        out_port: rng.next() as u16,
        in_mac: Mac(rng.next().to_be_bytes()[..6].try_into().unwrap()),
        flow,
    }
}

fn random_record(rng: &mut Rng) -> LocalRecord {
    match rng.index(4) {
        0 => {
            let v6 = rng.bool();
            let t = Tuple::new(
                rng.next() as u8,
                addr(rng, v6),
                rng.next() as u16,
                addr(rng, v6),
                rng.next() as u16,
            );
            LocalRecord::Remove(t)
        }
        1 => {
            let (is_static, v6) = (rng.bool(), rng.bool());
            LocalRecord::Neigh(NeighRecord {
                addr: addr(rng, v6),
                mac: Mac([2, 0, 0, 0, rng.next() as u8, 1]),
                port: rng.next() as u16,
                is_static,
                age_ms: if is_static { 0 } else { rng.next() },
            })
        }
        _ => LocalRecord::Conn(random_conn(rng)),
    }
}

#[test]
fn random_records_round_trip_through_messages() {
    let mut rng = Rng(0x10ca_1000_0000_0001);
    for _ in 0..300 {
        let n = 1 + rng.index(60);
        let recs: Vec<LocalRecord> = (0..n).map(|_| random_record(&mut rng)).collect();
        assert_eq!(roundtrip(&recs), recs);
    }
}

/// Whatever decodes re-encodes to the same bytes (one encoding per message).
fn check_reencodes(b: &[u8]) -> bool {
    let Ok(m) = LocalMessage::parse(b, Source::Local) else {
        return false;
    };
    let recs: Vec<LocalRecord> = m.records().collect();
    assert_eq!(recs.len(), m.len());
    let mut out = vec![0u8; b.len()];
    let (len, n) = encode_local(&mut out, m.header(), &recs).unwrap();
    assert_eq!(n, recs.len());
    assert_eq!(&out[..len], b);
    true
}

#[test]
fn mutated_messages_are_refused_or_reencode_identically() {
    let mut rng = Rng(0x10ca_1000_0000_0002);
    let recs: Vec<LocalRecord> = (0..12).map(|_| random_record(&mut rng)).collect();
    let mut buf = vec![0u8; 4096];
    let (len, n) = encode_local(&mut buf, hdr(), &recs).unwrap();
    assert_eq!(n, recs.len());
    let seed = buf[..len].to_vec();
    assert!(check_reencodes(&seed));
    let mut decoded = 0;
    for _ in 0..20_000 {
        let mut b = seed.clone();
        for _ in 0..1 + rng.index(3) {
            let i = rng.index(b.len());
            b[i] = rng.next() as u8;
        }
        if rng.index(4) == 0 {
            b.truncate(rng.index(b.len() + 1));
        }
        decoded += usize::from(check_reencodes(&b));
    }
    assert!(
        decoded > 100,
        "mutations of fields that allow any value decode"
    );
}

#[test]
fn bad_fields_are_named() {
    let n = LocalRecord::Neigh(NeighRecord {
        addr: Addr::v4(192, 168, 100, 2),
        mac: Mac([2, 0, 0, 0, 0, 2]),
        port: 0,
        is_static: false,
        age_ms: 10,
    });
    let mut buf = [0u8; 256];
    let (len, _) = encode_local(&mut buf, hdr(), &[n, LocalRecord::Conn(proxy_conn())]).unwrap();
    let mut b = buf[..len].to_vec();
    b[28 + 6] = 3;
    let e = LocalMessage::parse(&b, Source::Local).unwrap_err();
    assert_eq!(
        e,
        DecodeError::BadField {
            index: 0,
            field: "neighbour kind",
            value: 3
        }
    );
    let mut b = buf[..len].to_vec();
    b[28 + 28 + 27] = 2;
    let e = LocalMessage::parse(&b, Source::Local).unwrap_err();
    assert_eq!(
        e,
        DecodeError::BadField {
            index: 1,
            field: "options",
            value: 2
        }
    );
    let mut b = buf[..len].to_vec();
    b[28 + 28 + 1] = 4;
    let e = LocalMessage::parse(&b, Source::Local).unwrap_err();
    assert_eq!(e, DecodeError::BadFamily { index: 1, bits: 4 });
}

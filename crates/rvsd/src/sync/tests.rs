//! Tests of the pure parts of the sync stream: packing and numbering,
//! sequence gaps and resync requests, and which worker gets a record.

use rvs_core::addr::{proto, Addr};
use rvs_core::conn::{flags, FwdMode, Tuple};
use rvs_core::sync::{Header, Message, Record, SvcRef, SyncConn};

use super::stream::{route, Packer, Streams, Target, Verdict, RESYNC_INTERVAL_MS};

fn conn(lport: u16) -> SyncConn {
    let vip = Addr::v4(10, 0, 0, 100);
    let rip = Addr::v4(192, 168, 100, 2);
    SyncConn {
        proto: proto::TCP,
        mode: FwdMode::Fnat,
        state: 3,
        flags: 0,
        cip: Addr::v4(10, 0, 0, 48),
        cport: 40000,
        vip,
        vport: 80,
        rip,
        rport: 80,
        lip: Addr::v4(192, 168, 100, 200),
        lport,
        timeout_ms: 90_000,
        svc: SvcRef::Vs {
            proto: proto::TCP,
            vip,
            vport: 80,
        },
        dest: rip,
        dest_port: 80,
    }
}

fn hdr(node: u32, seq: u64) -> Header {
    Header {
        sync_id: 1,
        node,
        seq,
    }
}

#[test]
fn packer_fills_messages_up_to_the_buffer_and_numbers_them() {
    let recs: Vec<Record> = (0..100).map(|i| Record::Create(conn(1024 + i))).collect();
    let mut p = Packer::new(1, 7);
    let mut buf = [0u8; 1472];
    let mut msgs = Vec::new();
    let done = p.pack(&recs, &mut buf, |m| msgs.push(m.to_vec()));
    assert_eq!(done.records, 100);
    assert_eq!(done.refused, 0);
    // 52-byte IPv4 records: 27 per 1472-byte message.
    assert_eq!(done.msgs, 4);
    assert_eq!(msgs.len(), 4);
    let mut got = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        assert!(m.len() <= 1472);
        let msg = Message::parse(m).unwrap();
        assert_eq!(msg.header(), hdr(7, i as u64 + 1));
        got.extend(msg.records());
    }
    assert_eq!(got, recs);
    // The next call continues the numbering.
    p.pack(&recs[..1], &mut buf, |m| msgs.push(m.to_vec()));
    assert_eq!(Message::parse(&msgs[4]).unwrap().header().seq, 5);
}

#[test]
fn packer_skips_a_record_it_cannot_encode_and_sends_the_rest() {
    let mut bad = conn(1025);
    bad.rip = "fd00::2".parse().unwrap(); // IPv6 beside an IPv4 local address
    let recs = [
        Record::Create(conn(1024)),
        Record::Create(bad),
        Record::Create(conn(1026)),
    ];
    let mut p = Packer::new(1, 7);
    let mut buf = [0u8; 1472];
    let mut n = 0;
    let done = p.pack(&recs, &mut buf, |m| n += Message::parse(m).unwrap().len());
    assert_eq!((done.msgs, done.records, done.refused), (1, 2, 1));
    assert_eq!(n, 2);
}

#[test]
fn streams_detect_gaps_and_ask_for_a_resync() {
    let mut s = Streams::new(1, 1);
    let ok = Verdict::Accept {
        gap: false,
        resync: None,
    };
    // A stream heard from its start.
    assert_eq!(s.on_header(&hdr(2, 1), 0), ok);
    assert_eq!(s.on_header(&hdr(2, 2), 0), ok);
    // Messages 3 and 4 lost.
    assert_eq!(
        s.on_header(&hdr(2, 5), 10),
        Verdict::Accept {
            gap: true,
            resync: Some(3)
        }
    );
    assert_eq!(s.on_header(&hdr(2, 6), 11), ok);
    // Another gap soon after: counted, but no second request yet.
    assert_eq!(
        s.on_header(&hdr(2, 9), 12),
        Verdict::Accept {
            gap: true,
            resync: None
        }
    );
    assert_eq!(
        s.on_header(&hdr(2, 11), 12 + RESYNC_INTERVAL_MS),
        Verdict::Accept {
            gap: true,
            resync: Some(10)
        }
    );
    // Our own messages and other sync ids are ignored.
    assert_eq!(s.on_header(&hdr(1, 1), 0), Verdict::Own);
    let mut other = hdr(2, 12);
    other.sync_id = 2;
    assert_eq!(s.on_header(&other, 0), Verdict::OtherSyncId);
}

#[test]
fn a_stream_joined_late_or_restarted_asks_for_a_full_dump() {
    let mut s = Streams::new(1, 1);
    // Joined at message 40: everything before is unknown here.
    assert_eq!(
        s.on_header(&hdr(3, 40), 0),
        Verdict::Accept {
            gap: false,
            resync: Some(1)
        }
    );
    // The sender restarted: it starts at 1 again, nothing missed.
    assert_eq!(
        s.on_header(&hdr(3, 1), 1000),
        Verdict::Accept {
            gap: false,
            resync: None
        }
    );
    assert_eq!(
        s.on_header(&hdr(3, 2), 1000),
        Verdict::Accept {
            gap: false,
            resync: None
        }
    );
}

#[test]
fn records_go_to_the_worker_that_owns_them() {
    // FNAT: by local port, as the port pools split them.
    assert_eq!(route(&Record::Create(conn(1025)), 4), Target::One(1));
    assert_eq!(route(&Record::Update(conn(1030)), 4), Target::One(2));
    // NAT (no local port of ours): by the client's key, as the steering.
    let mut nat = conn(0);
    nat.mode = FwdMode::Nat;
    let key = u32::from_be_bytes([10, 0, 0, 48]) ^ 40000;
    assert_eq!(
        route(&Record::Create(nat), 4),
        Target::One((key % 4) as u16)
    );
    // A persistence template of an FNAT service has no local port.
    let mut tpl = conn(1025);
    tpl.flags = flags::TEMPLATE;
    tpl.cport = 0;
    let key = u32::from_be_bytes([10, 0, 0, 48]);
    assert_eq!(
        route(&Record::Create(tpl), 3),
        Target::One((key % 3) as u16)
    );
    assert_eq!(route(&Record::Remove(Tuple::default()), 4), Target::All);
    assert_eq!(route(&Record::Resync { from_seq: 1 }, 4), Target::Sender);
    assert_eq!(route(&Record::Create(conn(1025)), 0), Target::One(0));
}

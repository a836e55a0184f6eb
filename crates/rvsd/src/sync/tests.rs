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
        sp_seq: 0,
        sp_ts: 0,
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

mod worker_side {
    //! The worker's share of sync per loop iteration is bounded: a full
    //! dump walks at most `SWEEP_SLOTS` slots per step, the receiver applies
    //! at most `APPLY_MAX` records per step, and failures are counted by name.

    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::mpsc;
    use std::sync::Arc;

    use rvs_core::lab;
    use rvs_core::pipeline::{Worker, WorkerConf};
    use rvs_core::sync::{Record, SvcRef};

    use super::conn;
    use crate::sync::worker::{
        WorkerSync, APPLY_MAX, BATCHES, BATCH_CAPACITY, DRAIN_MAX, INSTALL_ERRORS, SWEEP_SLOTS,
    };
    use crate::sync::SyncShared;
    use rvs_api::ConnOrigin;

    struct Rig {
        w: Worker,
        ws: WorkerSync,
        shared: Arc<SyncShared>,
        batches: mpsc::Receiver<(u16, Vec<Record>)>,
        inbox: mpsc::SyncSender<Vec<Record>>,
    }

    fn rig(capacity: usize) -> Rig {
        let conf = WorkerConf {
            conn_capacity: capacity,
            ..WorkerConf::default()
        };
        let w = Worker::new(conf, Arc::new(lab::tutorial_fnat(1)), 0);
        let shared = Arc::new(SyncShared::new(60_000));
        let (out, batches) = mpsc::channel();
        let (empty_tx, empties) = mpsc::channel();
        for _ in 0..BATCHES {
            empty_tx.send(Vec::with_capacity(BATCH_CAPACITY)).unwrap();
        }
        let (inbox, inbox_rx) = mpsc::sync_channel(4);
        let ws = WorkerSync::new(0, shared.clone(), out, empties, inbox_rx);
        Rig {
            w,
            ws,
            shared,
            batches,
            inbox,
        }
    }

    fn fnat(i: u16) -> rvs_core::sync::SyncConn {
        let mut c = conn(2000 + i);
        c.cport = 10_000 + i;
        c.lip = lab::LIP;
        c.rip = lab::rs_ip(0);
        c.dest = lab::rs_ip(0);
        c.vip = lab::VIP;
        c.svc = SvcRef::Vs {
            proto: c.proto,
            vip: lab::VIP,
            vport: 80,
        };
        c
    }

    #[test]
    fn the_receiver_applies_a_bounded_number_per_step_and_counts_failures() {
        let mut r = rig(4096);
        let mut v: Vec<Record> = (0..300).map(|i| Record::Create(fnat(i))).collect();
        let mut stray = fnat(400);
        stray.svc = SvcRef::Vs {
            proto: stray.proto,
            vip: lab::VIP,
            vport: 81,
        };
        v.push(Record::Create(stray));
        r.inbox.send(v).unwrap();
        assert!(r.ws.step(&mut r.w, 1));
        assert_eq!(r.w.conns().len(), APPLY_MAX);
        r.ws.step(&mut r.w, 2);
        assert_eq!(r.w.conns().len(), 300);
        assert_eq!(
            r.shared.c.install[0].load(Relaxed),
            1,
            "{}",
            INSTALL_ERRORS[0]
        );
        // A removal takes the connection and its local port away.
        r.inbox
            .send(vec![Record::Remove(fnat(7).in_tuple())])
            .unwrap();
        r.ws.step(&mut r.w, 3);
        assert_eq!(r.w.conns().len(), 299);
    }

    #[test]
    fn a_full_dump_walks_a_bounded_number_of_slots_per_step() {
        let mut r = rig(1024);
        for i in 0..300 {
            r.w.install_synced(&fnat(i), 0).unwrap();
        }
        r.shared.master_on.store(true, Relaxed);
        // Master on: logging, but no sweep before the refresh period.
        r.ws.step(&mut r.w, 10);
        assert!(r.batches.try_recv().is_err());
        // A peer asks for a full dump.
        r.shared.dump_gen.fetch_add(1, Relaxed);
        let mut got = 0;
        let mut steps = 0;
        while r.ws.step(&mut r.w, 20) {
            steps += 1;
            while let Ok((w, b)) = r.batches.try_recv() {
                assert_eq!(w, 0);
                assert!(b.len() <= DRAIN_MAX + SWEEP_SLOTS as usize);
                got += b.len();
            }
            assert!(steps < 100, "the dump does not end");
        }
        assert_eq!(got, 300);
        // 1024 slots, SWEEP_SLOTS per step.
        assert_eq!(steps, 1024 / SWEEP_SLOTS as usize);
    }

    #[test]
    fn with_both_roles_peers_connections_are_installed_and_never_sent_back() {
        let mut r = rig(1024);
        r.shared.master_on.store(true, Relaxed);
        r.shared.backup_on.store(true, Relaxed);
        // One through the peer's own local address (ECMP: each node has
        // its own), one through an address both have.
        let mut theirs = fnat(1);
        theirs.lip = rvs_core::addr::Addr::v4(192, 168, 100, 201);
        r.inbox
            .send(vec![Record::Create(theirs), Record::Create(fnat(2))])
            .unwrap();
        r.ws.step(&mut r.w, 1);
        assert_eq!(r.w.conns().len(), 2);
        assert_eq!(r.shared.c.installed.load(Relaxed), 2);
        assert_eq!(r.shared.c.installed_foreign.load(Relaxed), 1);
        let origins: Vec<_> = (0..2)
            .filter_map(|i| r.w.conns().try_get(rvs_core::conn::ConnId(i)))
            .map(|c| crate::control::conns::conn_info(0, c, 1).origin)
            .collect();
        assert_eq!(origins, [ConnOrigin::Foreign, ConnOrigin::Synced]);
        let stats = r.shared.stats(1);
        assert_eq!((stats.installed, stats.installed_foreign), (2, 1));
        // A full dump (a peer asked) sends neither back.
        r.shared.dump_gen.fetch_add(1, Relaxed);
        let mut steps = 0;
        while r.ws.step(&mut r.w, 2) {
            steps += 1;
            assert!(steps < 100);
        }
        let sent: usize = r.batches.try_iter().map(|(_, b)| b.len()).sum();
        assert_eq!(sent, 0, "nothing echoed to the peers");
        // Master only again (a backup that took over): it reports the
        // synced one, never the foreign one (its local address is a peer's).
        r.shared.backup_on.store(false, Relaxed);
        r.shared.dump_gen.fetch_add(1, Relaxed);
        while r.ws.step(&mut r.w, 3) {}
        let sent: usize = r.batches.try_iter().map(|(_, b)| b.len()).sum();
        assert_eq!(sent, 1);
    }
}

#[test]
fn a_hand_over_message_from_the_network_is_counted_as_local_only() {
    use super::stream::{decode_error_index, DECODE_ERRORS};
    use rvs_core::sync::{encode_local, LocalConn, LocalRecord};
    let l = LocalConn {
        conn: conn(1025),
        local_flags: 0,
        in_port: 1,
        out_port: 0,
        in_mac: rvs_core::addr::Mac::ZERO,
        flow: None,
    };
    let mut buf = [0u8; 256];
    let (len, _) = encode_local(&mut buf, Header::default(), &[LocalRecord::Conn(l)]).unwrap();
    let e = Message::parse(&buf[..len]).unwrap_err();
    assert_eq!(DECODE_ERRORS[decode_error_index(&e)], "local_only");
}

/// A hot upgrade's successor goes on with this node's sync stream (RUNTIME
/// frame): the same node id, the next sequence number (the HA backup sees
/// no new sender and no gap, so asks for no full dump), and the daemons as
/// they ran, also one started at run time (`rvsadm --start-daemon`). Opens
/// a master on `lo`: needs root.
#[test]
fn a_successor_goes_on_with_the_node_s_stream_and_its_daemons() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    use super::net::{run, Links, SyncState};
    use super::{SyncCtl, SyncShared};

    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let spec = rvs_api::SyncDaemonSpec {
        role: rvs_api::SyncRole::Master,
        mcast_interface: "lo".into(),
        syncid: 1,
        group: None,
        port: None,
        ttl: None,
        peers: vec![peer.local_addr().unwrap()],
    };
    let old = SyncCtl::new(Arc::new(SyncShared::new(1000)), 77);
    old.start(&spec)
        .expect("a master sync daemon on lo (the test needs root)");
    // What its sync thread published after its last message.
    old.shared.next_seq.store(42, Relaxed);
    let st: SyncState = serde_json::from_slice(&serde_json::to_vec(&old.state()).unwrap()).unwrap();
    let new = Arc::new(SyncCtl::new(Arc::new(SyncShared::new(1000)), 5));
    new.adopt(&st).expect("adopt");
    assert_eq!(new.node(), 77);
    assert_eq!(new.list().daemons, old.list().daemons);
    let (wtx, wrx) = mpsc::channel();
    let (etx, _erx) = mpsc::channel();
    let links = Links {
        from_workers: wrx,
        empties: vec![etx],
        inboxes: Vec::new(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (c, s) = (new.clone(), stop.clone());
    let thread = std::thread::spawn(move || run(c, links, s, Instant::now()));
    wtx.send((0, vec![Record::Create(conn(1024))])).unwrap();
    let mut buf = [0u8; 2048];
    let got = peer.recv(&mut buf);
    stop.store(true, Relaxed);
    thread.join().unwrap();
    let n = got.expect("the successor's master sent the record");
    let h = Message::parse(&buf[..n]).unwrap().header();
    assert_eq!((h.node, h.seq), (77, 42), "{h:?}");
}

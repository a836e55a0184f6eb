//! Connection sync between two nodes: connections created on node 1's
//! worker are exported, carried through the wire format, installed on a
//! fresh worker of node 2 with the same configuration, and node 2 then
//! forwards their packets exactly as node 1 does.

use super::util::*;
use crate::addr::{proto, Addr};
use crate::conn::tcp::TcpState;
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::{SyncError, Verdict, Worker};
use crate::sched::SchedKind;
use crate::service::ServiceKey;
use crate::stats::DropReason;
use crate::sync::{encode, owner_worker, Header, Message, Record, SvcRef, SyncConn};
use crate::wire::tcp::flags::*;

pub(super) const REQ: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
pub(super) const RESP: &[u8] = b"HTTP/1.1 200 OK\r\n\r\n";

/// Sends records through the wire format as the daemon would: messages of
/// at most one 1500-byte-MTU UDP payload, numbered, then decoded.
pub(super) fn ship(recs: &[Record]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut rest = recs;
    let mut seq = 0;
    while !rest.is_empty() {
        let mut buf = [0u8; 1472];
        let h = Header {
            sync_id: 1,
            node: 1,
            seq,
        };
        let (len, n) = encode(&mut buf, h, rest).unwrap();
        let m = Message::parse(&buf[..len]).unwrap();
        assert_eq!(m.header(), h);
        out.extend(m.records());
        rest = &rest[n..];
        seq += 1;
    }
    assert_eq!(out, recs);
    out
}

/// Installs every Create/Update on `w` and applies every Remove.
pub(super) fn apply(w: &mut Worker, recs: &[Record], now: u64) {
    for r in recs {
        match r {
            Record::Create(c) | Record::Update(c) => {
                w.install_synced(c, now)
                    .unwrap_or_else(|e| panic!("{e}: {c:?}"));
            }
            Record::Remove(t) => {
                w.remove_synced(t);
            }
            Record::Resync { .. } => panic!("no resync expected"),
        }
    }
}

pub(super) fn drain(w: &mut Worker, now: u64) -> Vec<Record> {
    let mut v = Vec::new();
    w.drain_sync(now, usize::MAX, |r| v.push(r));
    v
}

/// The RS index a frame toward the LAN goes to.
pub(super) fn rs_of(out: &[u8]) -> u8 {
    let d = v4_src_dst(out).1;
    (0..2).find(|&i| lab::rs_ip(i) == d).expect("sent to a RS")
}

/// SYN, SYN-ACK, ACK through `w`: (rs index, lport).
pub(super) fn handshake(w: &mut Worker, cport: u16, now: u64) -> (u8, u16) {
    let out = run_tx(w, &from_client(cport, 80, SYN).to_vec(), WAN, LAN, now);
    let (rs, lport) = (rs_of(&out), be16(&out, 34));
    let sa = from_rs(rs, 80, LIP, lport, SYN | ACK).to_vec();
    run_tx(w, &sa, LAN, WAN, now + 1);
    run_tx(w, &from_client(cport, 80, ACK).to_vec(), WAN, LAN, now + 2);
    (rs, lport)
}

#[test]
fn fnat_connections_continue_on_node_2_exactly_as_on_node_1() {
    let mut a = worker(lab::tutorial_fnat(1));
    a.enable_sync_log(64);
    let mut b = worker(lab::tutorial_fnat(1));
    resolve_client(&mut a, CIP, 0);
    resolve_client(&mut b, CIP, 0);
    let conns = [handshake(&mut a, 37177, 1), handshake(&mut a, 37178, 1)];
    assert_ne!(conns[0].0, conns[1].0, "rr spread them over both RS");

    // Without sync, node 2 knows nothing of them.
    let data0 = FrameSpec {
        payload: REQ,
        ..from_client(37177, 80, ACK | PSH)
    }
    .to_vec();
    let mut c = worker(lab::tutorial_fnat(1));
    let (v, _) = run(&mut c, &data0, WAN, 10);
    assert_eq!(v, Verdict::Drop(DropReason::NoConn));

    let recs = ship(&drain(&mut a, 10));
    let creates = recs
        .iter()
        .filter(|r| matches!(r, Record::Create(_)))
        .count();
    assert_eq!(creates, 2);
    apply(&mut b, &recs, 10);
    assert_eq!(b.conns().len(), 2);
    assert_eq!(
        b.pool_usage(&LIP).map(|u| u.0),
        Some(2),
        "both lports taken"
    );
    let bsvc = b.snapshot().services[0].clone();
    for i in 0..2 {
        let ds = bsvc.dests[i].stats.sum();
        assert_eq!((ds.active, ds.inactive), (1, 0), "ESTABLISHED on node 2");
    }

    for (k, (rs, lport)) in conns.into_iter().enumerate() {
        let cport = 37177 + k as u16;
        let data = FrameSpec {
            payload: REQ,
            ..from_client(cport, 80, ACK | PSH)
        }
        .to_vec();
        let out_b = run_tx(&mut b, &data, WAN, LAN, 20);
        let out_a = run_tx(&mut a, &data, WAN, LAN, 20);
        assert_eq!(out_b, out_a, "node 2 forwards the client's data as node 1");
        assert_eq!(v4_src_dst(&out_b), (LIP, lab::rs_ip(rs)));
        assert_eq!(be16(&out_b, 34), lport, "same local port");
        assert_eq!(tcp_payload(&out_b), REQ);

        let reply = FrameSpec {
            payload: RESP,
            ..from_rs(rs, 80, LIP, lport, ACK | PSH)
        }
        .to_vec();
        let back_b = run_tx(&mut b, &reply, LAN, WAN, 21);
        let back_a = run_tx(&mut a, &reply, LAN, WAN, 21);
        assert_eq!(back_b, back_a, "node 2 forwards the RS's reply as node 1");
        assert_eq!(v4_src_dst(&back_b), (VIP, CIP));
        assert_eq!(be16(&back_b, 36), cport);
    }
    assert_eq!(b.conns().len(), 2, "no new connection on node 2");
    assert_eq!(bsvc.stats.sum().conns, 0, "nothing scheduled on node 2");
    assert_eq!(b.drops().nonzero(), Vec::new());
}

#[test]
fn a_synced_connection_lands_only_on_the_worker_owning_its_lport() {
    let mut a = worker_with(1, 4096, lab::tutorial_fnat(2));
    a.enable_sync_log(16);
    resolve_client(&mut a, CIP, 0);
    let (_, lport) = handshake(&mut a, 40000, 1);
    assert_eq!(owner_worker(lport, 2), 1);
    let recs = ship(&drain(&mut a, 5));
    let Some(Record::Create(sc)) = recs.first().copied() else {
        panic!("first record is the creation: {recs:?}");
    };
    let mut b0 = worker_with(0, 4096, lab::tutorial_fnat(2));
    let mut b1 = worker_with(1, 4096, lab::tutorial_fnat(2));
    let e = b0.install_synced(&sc, 5).unwrap_err();
    assert_eq!(
        e,
        SyncError::PortNotOwned {
            port: lport,
            worker: 0,
            workers: 2
        }
    );
    assert!(e.to_string().contains("same number of workers"), "{e}");
    assert_eq!(b0.conns().len(), 0);

    let id = b1.install_synced(&sc, 5).unwrap();
    // The same record again (a resend, a full dump): an update, not a second conn.
    assert_eq!(b1.install_synced(&sc, 6), Ok(id));
    assert_eq!(b1.conns().len(), 1);
    assert_eq!(b1.pool_usage(&LIP).map(|u| u.0), Some(1));

    // Another client with the same local port would collide at the RS.
    let other = SyncConn { cport: 40001, ..sc };
    assert_eq!(
        b1.install_synced(&other, 6),
        Err(SyncError::PortInUse(lport))
    );
    // Configuration differences are named.
    let bad = SyncConn {
        vport: 81,
        svc: SvcRef::Vs {
            proto: proto::TCP,
            vip: VIP,
            vport: 81,
        },
        ..other
    };
    assert_eq!(b1.install_synced(&bad, 6), Err(SyncError::ServiceNotFound));
    let bad = SyncConn {
        dest: Addr::v4(192, 168, 100, 99),
        ..other
    };
    assert_eq!(b1.install_synced(&bad, 6), Err(SyncError::DestNotFound));
    let bad = SyncConn {
        mode: FwdMode::Nat,
        ..other
    };
    assert_eq!(b1.install_synced(&bad, 6), Err(SyncError::ModeMismatch));
    let bad = SyncConn {
        lip: Addr::v4(192, 168, 100, 201),
        ..other
    };
    assert_eq!(
        b1.install_synced(&bad, 6),
        Err(SyncError::LocalAddrNotFound)
    );
    assert_eq!(b1.conns().len(), 1);
    assert_eq!(b1.pool_usage(&LIP).map(|u| u.0), Some(1), "no port leaked");
}

#[test]
fn state_changes_and_removals_follow_the_master() {
    let mut a = worker(lab::tutorial_fnat(1));
    a.enable_sync_log(64);
    let mut b = worker(lab::tutorial_fnat(1));
    b.enable_sync_log(64);
    resolve_client(&mut a, CIP, 0);
    let out = run_tx(&mut a, &from_client(5000, 80, SYN).to_vec(), WAN, LAN, 1);
    let (rs, lport) = (rs_of(&out), be16(&out, 34));
    let recs = ship(&drain(&mut a, 1));
    let syn_recv = TcpState::SynRecv as u8;
    assert!(
        matches!(recs.as_slice(), [Record::Create(c)] if c.state == syn_recv),
        "one record per new connection: {recs:?}"
    );
    apply(&mut b, &recs, 1);
    let bsvc = b.snapshot().services[0].clone();
    let ds = bsvc.dests[rs as usize].stats.sum();
    assert_eq!((ds.active, ds.inactive), (0, 1), "SYN_RECV: inactive");

    // Handshake completes on node 1: node 2's copy becomes ESTABLISHED.
    let sa = from_rs(rs, 80, LIP, lport, SYN | ACK).to_vec();
    run_tx(&mut a, &sa, LAN, WAN, 2);
    run_tx(&mut a, &from_client(5000, 80, ACK).to_vec(), WAN, LAN, 3);
    let recs = ship(&drain(&mut a, 3));
    assert!(
        recs.iter().all(|r| matches!(r, Record::Update(_))),
        "{recs:?}"
    );
    apply(&mut b, &recs, 3);
    let ds = bsvc.dests[rs as usize].stats.sum();
    assert_eq!((ds.active, ds.inactive), (1, 0));
    assert_eq!(b.conns().len(), 1);

    // The connection expires on node 1: node 2 removes it and frees the port.
    a.tick(10_000_000);
    assert_eq!(a.conns().len(), 0);
    let recs = ship(&drain(&mut a, 10_000_000));
    assert!(matches!(recs.as_slice(), [Record::Remove(_)]), "{recs:?}");
    apply(&mut b, &recs, 10);
    assert_eq!(b.conns().len(), 0);
    assert_eq!(b.pool_usage(&LIP).map(|u| u.0), Some(0));
    let ds = bsvc.dests[rs as usize].stats.sum();
    assert_eq!((ds.active, ds.inactive), (0, 0));
    // What node 2 installed or removed on a peer's word is not sent back.
    assert_eq!(drain(&mut b, 10), Vec::new());
    // A late packet of the removed connection is not forwarded by node 2.
    let (v, _) = run(&mut b, &from_client(5000, 80, ACK).to_vec(), WAN, 11);
    assert_eq!(v, Verdict::Drop(DropReason::NoConn));
}

#[test]
fn sync_log_is_off_by_default_bounded_and_a_full_dump_covers_the_table() {
    let mut w = worker(lab::tutorial_fnat(1));
    resolve_client(&mut w, CIP, 0);
    run_tx(&mut w, &from_client(1, 80, SYN).to_vec(), WAN, LAN, 1);
    assert_eq!(w.drain_sync(1, usize::MAX, |_| panic!("sync is off")), 0);
    assert_eq!(w.sync_lost(), 0);

    // Each SYN logs its creation (in state SYN_RECV, one record): 3 events,
    // 2 kept.
    w.enable_sync_log(2);
    for cport in 2..5 {
        run_tx(&mut w, &from_client(cport, 80, SYN).to_vec(), WAN, LAN, 2);
    }
    assert_eq!(w.sync_lost(), 1);
    assert_eq!(w.drain_sync(2, 1, |_| {}), 1, "bounded per call");
    assert_eq!(w.drain_sync(2, 10, |_| {}), 1);

    // The full dump, a few slots at a time, finds all 4 connections.
    let mut dump = Vec::new();
    let mut at = Some(0);
    let mut calls = 0;
    while let Some(start) = at {
        at = w.export_range(start, 1000, 2, |r| dump.push(r));
        calls += 1;
    }
    assert_eq!(calls, 5, "4096 slots, 1000 per call");
    assert_eq!(dump.len(), 4);
    let mut b = worker(lab::tutorial_fnat(1));
    apply(&mut b, &ship(&dump), 2);
    assert_eq!(b.conns().len(), 4);
}

#[test]
fn persistence_templates_are_synced_and_keep_clients_on_their_rs() {
    let snap = || {
        let svc = lab::service(
            1,
            ServiceKey::Vs {
                proto: proto::TCP,
                vip: VIP,
                vport: 80,
            },
            SchedKind::Rr,
            &[
                DestSpec::new(lab::rs_ip(0), 80, FwdMode::Fnat),
                DestSpec::new(lab::rs_ip(1), 80, FwdMode::Fnat),
            ],
            &[(LIP, LAN)],
            60_000,
            1,
        );
        lab::snapshot(1, vec![svc], 2)
    };
    let other = Addr::v4(10, 0, 0, 49);
    let mut a = worker(snap());
    a.enable_sync_log(64);
    resolve_client(&mut a, CIP, 0);
    // Another client takes RS 0, so CIP's template on node 1 says RS 1.
    let syn = FrameSpec::tcp(other, 1000, VIP, 80, SYN).to_vec();
    assert_eq!(rs_of(&run_tx(&mut a, &syn, WAN, LAN, 1)), 0);
    let syn = from_client(1000, 80, SYN).to_vec();
    assert_eq!(rs_of(&run_tx(&mut a, &syn, WAN, LAN, 1)), 1);
    let recs = ship(&drain(&mut a, 1));
    let templates = recs
        .iter()
        .filter(|r| matches!(r, Record::Create(c) if c.proto == 255))
        .count();
    assert_eq!(templates, 2);

    let mut b = worker(snap());
    resolve_client(&mut b, CIP, 0);
    apply(&mut b, &recs, 1);
    assert_eq!(b.conns().len(), 4, "2 conns, 2 templates");
    assert_eq!(
        b.conn_count(),
        2,
        "the published count leaves synced templates out"
    );
    // A new connection of CIP on node 2 follows the synced template (a
    // fresh rr would have picked RS 0).
    let syn = from_client(1001, 80, SYN).to_vec();
    assert_eq!(rs_of(&run_tx(&mut b, &syn, WAN, LAN, 2)), 1);
}

#[test]
fn ipv6_fnat_connection_continues_on_node_2() {
    let mut a = worker(v6_lab());
    a.enable_sync_log(16);
    let mut b = worker(v6_lab());
    let tcp = |flags, payload| FrameSpec {
        payload,
        ..FrameSpec::tcp(v6::cip(), 4000, v6::vip(), 80, flags)
    };
    let out = run_tx(&mut a, &tcp(SYN, &[]).to_vec(), WAN, LAN, 1);
    let lport = be16(&out, V6_L4);
    assert_eq!(v6_src_dst(&out), (v6::lip(), v6::rip()));
    apply(&mut b, &ship(&drain(&mut a, 1)), 1);
    let data = tcp(ACK | PSH, REQ).to_vec();
    let out_b = run_tx(&mut b, &data, WAN, LAN, 2);
    let out_a = run_tx(&mut a, &data, WAN, LAN, 2);
    assert_eq!(out_b, out_a);
    assert_eq!(be16(&out_b, V6_L4), lport);
    let reply = FrameSpec {
        src_mac: v6::RS_MAC,
        dst_mac: lab::LAN_MAC,
        payload: RESP,
        ..FrameSpec::tcp(v6::rip(), 8080, v6::lip(), lport, ACK | PSH)
    }
    .to_vec();
    let back_b = run_tx(&mut b, &reply, LAN, WAN, 3);
    let back_a = run_tx(&mut a, &reply, LAN, WAN, 3);
    assert_eq!(back_b, back_a);
    assert_eq!(v6_src_dst(&back_b), (v6::vip(), v6::cip()));
    assert_eq!(b.snapshot().services[0].stats.sum().conns, 0);
}

#[test]
fn snat_connection_continues_on_node_2() {
    use super::modes::{from_host, from_internet, snat_lab, HOST, REMOTE};
    let mut a = worker(snat_lab());
    a.enable_sync_log(16);
    let mut b = worker(snat_lab());
    let syn = from_host(FrameSpec::tcp(HOST, 40000, REMOTE, 80, SYN)).to_vec();
    let out = run_tx(&mut a, &syn, LAN, WAN, 0);
    let pport = be16(&out, 34);
    let recs = ship(&drain(&mut a, 0));
    assert!(
        matches!(recs.first(), Some(Record::Create(c)) if c.svc == SvcRef::Snat { proto: proto::TCP }),
        "{recs:?}"
    );
    apply(&mut b, &recs, 0);
    assert_eq!(b.pool_usage(&lab::WAN_IP).map(|u| u.0), Some(1));
    let reply = from_internet(FrameSpec::tcp(REMOTE, 80, lab::WAN_IP, pport, SYN | ACK)).to_vec();
    let back_b = run_tx(&mut b, &reply, WAN, LAN, 1);
    let back_a = run_tx(&mut a, &reply, WAN, LAN, 1);
    assert_eq!(
        back_b, back_a,
        "the remote's reply reaches the host via node 2"
    );
    let ack = from_host(FrameSpec::tcp(HOST, 40000, REMOTE, 80, ACK)).to_vec();
    let out_b = run_tx(&mut b, &ack, LAN, WAN, 2);
    let out_a = run_tx(&mut a, &ack, LAN, WAN, 2);
    assert_eq!(out_b, out_a);
    assert_eq!(be16(&out_b, 34), pport);
    assert_eq!(b.conns().len(), 1);
}

#[test]
fn dr_and_nat_connections_continue_on_node_2() {
    for mode in [FwdMode::Dr, FwdMode::Nat] {
        let snap = || {
            let dests = [
                DestSpec::new(lab::rs_ip(0), 8080, mode),
                DestSpec::new(lab::rs_ip(1), 8080, mode),
            ];
            lab::snapshot(1, vec![vs(3, proto::TCP, 80, SchedKind::Rr, &dests, 0)], 2)
        };
        let mut a = worker(snap());
        a.enable_sync_log(16);
        let mut b = worker(snap());
        resolve_client(&mut a, CIP, 0);
        resolve_client(&mut b, CIP, 0);
        for cport in [41000, 41001] {
            run_tx(&mut a, &from_client(cport, 80, SYN).to_vec(), WAN, LAN, 1);
        }
        apply(&mut b, &ship(&drain(&mut a, 1)), 1);
        assert_eq!(b.conns().len(), 2, "{mode:?}");
        // The second connection went to RS 1 on node 1; a fresh rr on node 2
        // would pick RS 0.
        let data = FrameSpec {
            payload: REQ,
            ..from_client(41001, 80, ACK | PSH)
        }
        .to_vec();
        let out_b = run_tx(&mut b, &data, WAN, LAN, 2);
        let out_a = run_tx(&mut a, &data, WAN, LAN, 2);
        assert_eq!(out_b, out_a, "{mode:?}");
        assert_eq!(&out_b[0..6], &lab::rs_mac(1).0, "{mode:?}: to RS 1");
        if mode == FwdMode::Nat {
            let reply = FrameSpec {
                payload: RESP,
                ..from_rs(1, 8080, CIP, 41001, ACK | PSH)
            }
            .to_vec();
            let back_b = run_tx(&mut b, &reply, LAN, WAN, 3);
            let back_a = run_tx(&mut a, &reply, LAN, WAN, 3);
            assert_eq!(back_b, back_a);
            assert_eq!(v4_src_dst(&back_b), (VIP, CIP));
        }
        assert_eq!(b.conns().len(), 2, "{mode:?}: nothing new on node 2");
        assert_eq!(b.snapshot().services[0].stats.sum().conns, 0);
    }
}

//! Connection sync between active peers (ECMP nodes, role `both`): each
//! node reports only its own connections, and an FNAT connection of a
//! peer's local address is installed as a foreign connection that forwards
//! the client's packets with the owner's local address and port.

use super::sync::{apply, drain, handshake, rs_of, ship, REQ};
use super::util::*;
use crate::addr::{proto, Addr};
use crate::conn::{flags, Dir, FwdMode, Tuple};
use crate::lab::{self, DestSpec, FrameSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::{SyncError, Verdict, Worker};
use crate::sched::SchedKind;
use crate::service::ServiceKey;
use crate::snapshot::{IfAddr, Snapshot};
use crate::stats::DropReason;
use crate::sync::{owner_worker, Record};
use crate::wire::tcp::flags::*;

/// Node B's own local address (node A has [`LIP`]).
const LIP_B: Addr = Addr::v4(192, 168, 100, 201);

/// The tutorial's FNAT service on a node whose local address is `lip`.
fn node(workers: u16, lip: Addr) -> Snapshot {
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
        &[(lip, LAN)],
        0,
        usize::from(workers),
    );
    let addrs = lab::addrs()
        .into_iter()
        .map(|a| match a.addr == LIP {
            true => IfAddr { addr: lip, ..a },
            false => a,
        })
        .collect();
    let base = lab::snapshot(workers, vec![svc.clone()], 2);
    Snapshot::new(
        1,
        workers,
        lab::ports(),
        addrs,
        lab::routes(),
        vec![svc],
        base.static_neigh.clone(),
        base.timeouts,
        base.conf.clone(),
    )
}

fn active(snap: Snapshot) -> Worker {
    let mut w = worker(snap);
    w.enable_sync_log(64);
    w.set_sync_active(true);
    w
}

fn full_dump(w: &Worker, now: u64) -> Vec<Record> {
    let mut v = Vec::new();
    let mut at = Some(0);
    while let Some(s) = at {
        at = w.export_range(s, 1 << 16, now, |r| v.push(r));
    }
    v
}

fn data(cport: u16) -> Vec<u8> {
    FrameSpec {
        payload: REQ,
        ..from_client(cport, 80, ACK | PSH)
    }
    .to_vec()
}

#[test]
fn a_peers_fnat_connection_is_foreign_and_keeps_the_owners_local_address() {
    let mut a = active(node(1, LIP));
    let mut b = active(node(1, LIP_B));
    resolve_client(&mut a, CIP, 0);
    resolve_client(&mut b, CIP, 0);
    let (rs, lport) = handshake(&mut a, 37177, 1);
    apply(&mut b, &ship(&drain(&mut a, 3)), 3);

    assert_eq!(b.conns().len(), 1);
    let (id, _) = b.conns().lookup(&in_tuple(37177)).expect("installed");
    let c = *b.conns().get(id);
    assert_eq!(
        c.flags & (flags::SYNCED | flags::FOREIGN),
        flags::SYNCED | flags::FOREIGN
    );
    assert_eq!(c.laddr, u32::MAX, "no local address slot of node B");
    assert_eq!(b.pool_usage(&LIP_B).map(|u| u.0), Some(0), "no port taken");
    assert_eq!(
        b.pool_usage(&LIP),
        None,
        "node B has no pool for node A's address"
    );

    // The flow moves to node B (ECMP rehash): its packets reach the same RS
    // from node A's local address and port, so the RS answers to node A.
    let out_b = run_tx(&mut b, &data(37177), WAN, LAN, 10);
    let out_a = run_tx(&mut a, &data(37177), WAN, LAN, 10);
    assert_eq!(out_b, out_a, "node B forwards the client's data as node A");
    assert_eq!(v4_src_dst(&out_b), (LIP, lab::rs_ip(rs)));
    assert_eq!(be16(&out_b, 34), lport);
    assert_eq!(
        b.snapshot().services[0].stats.sum().conns,
        0,
        "nothing scheduled on B"
    );

    // It goes away on node B without freeing anything there.
    b.tick(100_000_000);
    assert_eq!(b.conns().len(), 0);
    assert_eq!(b.pool_usage(&LIP_B).map(|u| (u.0, u.2)), Some((0, 0)));
    assert_eq!(b.drops().nonzero(), Vec::new());
}

fn in_tuple(cport: u16) -> Tuple {
    Tuple::new(proto::TCP, CIP, cport, VIP, 80)
}

#[test]
fn active_peers_never_report_what_they_installed_from_a_peer() {
    let mut a = active(node(1, LIP));
    let mut b = active(node(1, LIP_B));
    resolve_client(&mut a, CIP, 0);
    resolve_client(&mut b, CIP, 0);
    handshake(&mut a, 40000, 1);
    // Node B's own connection, from its own local address.
    let out = run_tx(&mut b, &from_client(40001, 80, SYN).to_vec(), WAN, LAN, 1);
    assert_eq!(v4_src_dst(&out).0, LIP_B);
    let from_b = ship(&drain(&mut b, 2));
    assert_eq!(
        from_b.len(),
        1,
        "node B reports its own creation: {from_b:?}"
    );

    apply(&mut b, &ship(&drain(&mut a, 3)), 3);
    apply(&mut a, &from_b, 3);
    assert_eq!((a.conns().len(), b.conns().len()), (2, 2));
    // No echo: neither the installation, nor a full dump, nor a state change
    // or removal seen on a synced connection goes back to its owner.
    assert_eq!(drain(&mut b, 4), Vec::new());
    let dump = full_dump(&b, 4);
    assert!(
        matches!(dump.as_slice(), [Record::Create(c)] if c.lip == LIP_B),
        "node B's dump holds its own connection only: {dump:?}"
    );
    let fin = from_client(40000, 80, FIN | ACK).to_vec();
    run_tx(&mut b, &fin, WAN, LAN, 5);
    assert_eq!(
        drain(&mut b, 5),
        Vec::new(),
        "a local state change is not reported"
    );
    let rst = from_client(40000, 80, RST).to_vec();
    run_tx(&mut b, &rst, WAN, LAN, 6);
    b.tick(1_000_000);
    assert!(
        b.conns().lookup(&in_tuple(40000)).is_none(),
        "gone on node B"
    );
    assert!(
        drain(&mut b, 1_000_000)
            .iter()
            .all(|r| !matches!(r, Record::Remove(t) if t.sport == 40000)),
        "nor its removal"
    );
    assert!(
        a.conns().lookup(&in_tuple(40000)).is_some(),
        "the owner keeps it"
    );

    // The owner's next refresh installs it again on node B.
    apply(&mut b, &ship(&full_dump(&a, 10)), 10);
    assert!(b.conns().lookup(&in_tuple(40000)).is_some());
}

#[test]
fn a_peers_record_does_not_change_or_remove_an_own_connection() {
    let mut a = active(node(1, LIP));
    resolve_client(&mut a, CIP, 0);
    handshake(&mut a, 41000, 1);
    let Some(Record::Create(mine)) = full_dump(&a, 2).first().copied() else {
        panic!("a dump of one connection");
    };
    // A peer claiming it (e.g. an older peer echoing it back).
    let claimed = crate::sync::SyncConn {
        state: crate::conn::tcp::TcpState::Close as u8,
        timeout_ms: 1,
        ..mine
    };
    assert_eq!(a.install_synced(&claimed, 2), Err(SyncError::Owned));
    assert!(!a.remove_synced(&in_tuple(41000)));
    let (id, dir) = a.conns().lookup(&in_tuple(41000)).expect("still there");
    assert_eq!(dir, Dir::In);
    assert_eq!(a.conns().get(id).state, mine.state);
    assert!(SyncError::Owned
        .to_string()
        .contains("this node created it"));
}

#[test]
fn foreign_connections_land_on_the_worker_their_clients_are_steered_to() {
    // Node A, worker 1 of 2, created the connection: its lport is odd.
    let mut a1 = crate::pipeline::tests::util::worker_with(1, 4096, node(2, LIP));
    a1.enable_sync_log(16);
    a1.set_sync_active(true);
    resolve_client(&mut a1, CIP, 0);
    let (_, lport) = handshake(&mut a1, 42001, 1);
    assert_eq!(owner_worker(lport, 2), 1);
    let recs = ship(&drain(&mut a1, 3));
    let Some(Record::Create(sc)) = recs.first().copied() else {
        panic!("{recs:?}");
    };
    let mut b0 = worker_with(0, 4096, node(2, LIP_B));
    b0.set_sync_active(true);
    assert_eq!(
        b0.install_synced(&sc, 3),
        Err(SyncError::PortNotOwned {
            port: lport,
            worker: 0,
            workers: 2
        })
    );
    let mut b1 = worker_with(1, 4096, node(2, LIP_B));
    b1.set_sync_active(true);
    b1.install_synced(&sc, 3).expect("worker 1 takes it");
    assert_eq!(b1.conns().len(), 1);
}

#[test]
fn master_and_backup_keep_their_behaviour() {
    // Without active peers, a local address this node lacks is refused, and
    // a backup that became master reports the connections it installed.
    let mut a = worker(node(1, LIP));
    a.enable_sync_log(64);
    resolve_client(&mut a, CIP, 0);
    let out = run_tx(&mut a, &from_client(43000, 80, SYN).to_vec(), WAN, LAN, 1);
    let rs = rs_of(&out);
    let recs = ship(&drain(&mut a, 1));
    let mut b = worker(node(1, LIP_B));
    let Some(Record::Create(sc)) = recs.first().copied() else {
        panic!("{recs:?}");
    };
    assert_eq!(b.install_synced(&sc, 1), Err(SyncError::LocalAddrNotFound));
    let mut backup = worker(node(1, LIP));
    backup.enable_sync_log(64);
    apply(&mut backup, &recs, 1);
    let dump = full_dump(&backup, 2);
    assert!(
        matches!(dump.as_slice(), [Record::Create(c)] if c.rip == lab::rs_ip(rs)),
        "{dump:?}"
    );
    let (v, _) = run(&mut b, &data(43000), WAN, 3);
    assert_eq!(v, Verdict::Drop(DropReason::NoConn));
}

#[test]
fn a_flow_moved_to_a_peer_outlives_its_owners_copy() {
    // The owner (A) no longer sees the flow once the switch moved it to B
    // (one-way traffic here; NAT and DR flows behave the same): A expires
    // its copy and reports the removal, which must not cut the flow on B.
    let mut a = active(node(1, LIP));
    let mut b = active(node(1, LIP_B));
    resolve_client(&mut a, CIP, 0);
    resolve_client(&mut b, CIP, 0);
    handshake(&mut a, 42000, 1);
    apply(&mut b, &ship(&drain(&mut a, 3)), 3);
    let mut removed = false;
    for t in (10..=400_000u64).step_by(40_000) {
        b.tick(t);
        a.tick(t);
        let recs = drain(&mut a, t);
        removed |= recs
            .iter()
            .any(|r| matches!(r, Record::Remove(x) if x.sport == 42000));
        apply(&mut b, &ship(&recs), t);
        let (v, _) = run(&mut b, &data(42000), WAN, t);
        assert_eq!(
            v,
            Verdict::Transmit(LAN),
            "node B forwards the moved flow at {t} ms: {:?}",
            b.drops().nonzero()
        );
    }
    assert!(removed, "the owner expired its copy and said so");
    assert!(a.conns().lookup(&in_tuple(42000)).is_none());
}

#[test]
fn a_foreign_connection_is_never_reported_even_after_leaving_active_mode() {
    let mut a = active(node(1, LIP));
    let mut b = active(node(1, LIP_B));
    resolve_client(&mut a, CIP, 0);
    resolve_client(&mut b, CIP, 0);
    handshake(&mut a, 43000, 1);
    apply(&mut b, &ship(&drain(&mut a, 3)), 3);
    assert_eq!(b.conns().len(), 1);
    // `--stop-daemon backup` on node B: master only, no longer active.
    b.set_sync_active(false);
    assert_eq!(
        full_dump(&b, 4),
        Vec::new(),
        "node A's address is not node B's to report"
    );
    let fin = from_client(43000, 80, FIN | ACK).to_vec();
    run_tx(&mut b, &fin, WAN, LAN, 5);
    assert_eq!(drain(&mut b, 5), Vec::new());
}

//! Hand-over of SNAT and SYN proxy connections, limit counts, timers, the
//! log of changes made during the sweep, and flow-log counters.

use super::handover::{assert_same, both, hand_over, ship};
use super::modes::{from_host, from_internet, snat_lab, HOST, REMOTE};
use super::synproxy::{client, handshake, opts, rs, sp_lab, Offer};
use super::util::*;
use crate::addr::{proto, Addr};
use crate::conn::{FwdMode, Tuple};
use crate::lab::{self, FrameSpec, LAN, LIP, VIP, WAN};
use crate::limit::{LimitDrops, LimitSet, ServiceLimits};
use crate::pipeline::{FlowEvent, Worker};
use crate::stats::DropReason;
use crate::sync::{LocalRecord, Record};
use crate::wire::tcp::flags::*;
use std::sync::Arc;

#[test]
fn snat_connections_move_with_their_wan_ports() {
    let mut old = worker(snat_lab());
    let syn = from_host(FrameSpec::tcp(HOST, 40000, REMOTE, 80, SYN)).to_vec();
    let pport = be16(&run_tx(&mut old, &syn, LAN, WAN, 0), 34);
    let sa = from_internet(FrameSpec::tcp(REMOTE, 80, lab::WAN_IP, pport, SYN | ACK));
    run_tx(&mut old, &sa.to_vec(), WAN, LAN, 1);
    let echo = from_host(FrameSpec::echo(HOST, REMOTE, 77)).to_vec();
    run_tx(&mut old, &echo, LAN, WAN, 1);
    let mut new = worker(snat_lab());
    hand_over(&old, &mut new, 500);
    assert_same(&old, &new, &[lab::WAN_IP]);
    assert_eq!(new.pool_usage(&lab::WAN_IP).unwrap().0, 2, "TCP and echo");
    let ack = from_host(FrameSpec::tcp(HOST, 40000, REMOTE, 80, ACK)).to_vec();
    let out = both(&mut old, &mut new, &ack, LAN, 600);
    assert_eq!(be16(&out, 34), pport);
    let data = FrameSpec {
        payload: b"hello",
        ..from_internet(FrameSpec::tcp(REMOTE, 80, lab::WAN_IP, pport, ACK | PSH))
    };
    both(&mut old, &mut new, &data.to_vec(), WAN, 600);
    both(&mut old, &mut new, &echo, LAN, 600);
    assert_same(&old, &new, &[lab::WAN_IP]);
}

#[test]
fn syn_proxy_connections_keep_their_shifts() {
    let o = Offer {
        ws: Some(7),
        sack: true,
        ts: true,
    };
    let mut old = worker(sp_lab(FwdMode::Fnat));
    resolve_client(&mut old, CIP, 0);
    let h = handshake(&mut old, 0xffff_ff00, 5000, o, Some(5));
    let mut new = worker(sp_lab(FwdMode::Fnat));
    hand_over(&old, &mut new, 35);
    assert_same(&old, &new, &[LIP]);
    let (ours, _, rts) = h.ts.unwrap();
    let get = client(
        ACK | PSH,
        opts(None, false, Some((7_020, ours + 5)), None),
        b"GET /",
        h.cisn.wrapping_add(1),
        h.cookie.wrapping_add(1),
    );
    both(&mut old, &mut new, &get, WAN, 40);
    let reply = rs(
        ACK | PSH,
        opts(None, false, Some((rts + 9, 7_020)), None),
        b"200 OK",
        h.lport,
        h.risn.wrapping_add(1),
        h.cisn.wrapping_add(6),
        1000,
    );
    let r = both(&mut old, &mut new, &reply, LAN, 50);
    assert_eq!(tcp_payload(&r), b"200 OK");
    assert_same(&old, &new, &[LIP]);
}

fn limited(service: u32, source: u32) -> crate::snapshot::Snapshot {
    let set = |max_conns| LimitSet {
        max_conns,
        ..LimitSet::default()
    };
    lab::tutorial_fnat(1).with_limits(vec![(
        1,
        Arc::new(ServiceLimits {
            service: set(service),
            source: set(source),
            src_plen_v4: 32,
            src_plen_v6: 128,
            drops: Arc::new(LimitDrops::new(1)),
        }),
    )])
}

fn syn_ok(w: &mut Worker, src: Addr, sport: u16) -> bool {
    let f = FrameSpec::tcp(src, sport, VIP, 80, SYN).to_vec();
    matches!(
        run(w, &f, WAN, 10).0,
        crate::pipeline::Verdict::Transmit(LAN)
    )
}

#[test]
fn concurrent_connection_limits_count_the_moved_connections() {
    // 3 connections per service, 2 per source; two from CIP move.
    let mut old = worker(limited(3, 2));
    assert!(syn_ok(&mut old, CIP, 1) && syn_ok(&mut old, CIP, 2));
    let mut new = worker(limited(3, 2));
    hand_over(&old, &mut new, 5);
    let other = Addr::v4(10, 0, 7, 9);
    assert!(
        !syn_ok(&mut new, CIP, 3),
        "the source's 2 are the moved ones"
    );
    assert_eq!(drops(&new, DropReason::LimitSrcConns), 1);
    assert!(syn_ok(&mut new, other, 1), "the service's third");
    assert!(!syn_ok(&mut new, other, 2), "the service's 3 are full");
    assert_eq!(drops(&new, DropReason::LimitConns), 1);
    // A moved connection that goes is counted back.
    assert!(new.remove_local(&Tuple::new(proto::TCP, CIP, 1, VIP, 80)));
    assert!(syn_ok(&mut new, CIP, 4));
}

#[test]
fn a_moved_connection_expires_no_earlier_than_on_the_old() {
    let snap = || lab::tutorial_fnat(1);
    let est = u64::from(snap().timeouts.established_ms);
    assert_eq!(est, 90_000);
    let mut old = worker(snap());
    resolve_client(&mut old, CIP, 0);
    establish(&mut old, 1000, 0);
    establish(&mut old, 1001, 0);
    // Sent 30 s after their last packets: 60 s left of 90.
    let mut recs = Vec::new();
    old.export_local(0, u32::MAX, 30_000, |l| recs.push(l));
    assert!(recs.iter().all(|l| l.conn.timeout_ms == 60_000), "{recs:?}");
    let mut new = worker(snap());
    for l in &recs {
        new.install_local(l, 30_000).unwrap();
    }
    // The old forwards one more packet of the first connection (a refresh:
    // no log event), then the new one starts.
    let data = FrameSpec {
        payload: b"x",
        ..from_client(1000, 80, ACK | PSH)
    };
    run_tx(&mut old, &data.to_vec(), WAN, LAN, 50_000);
    new.start_imported(55_000);
    let live = |w: &Worker, cport| {
        w.conns()
            .lookup(&Tuple::new(proto::TCP, CIP, cport, VIP, 80))
            .is_some()
    };
    let (mut t, mut old_gone) = (30_000, [0u64; 2]);
    while t < 55_000 + est + 1_000 {
        t += 250;
        old.tick(t);
        new.tick(t);
        for (i, cport) in [1000, 1001].into_iter().enumerate() {
            assert!(!live(&old, cport) || live(&new, cport), "{cport} at {t}");
            if !live(&old, cport) && old_gone[i] == 0 {
                old_gone[i] = t;
            }
        }
    }
    assert!(
        old_gone[0] >= 140_000 && old_gone[1] >= 90_000,
        "{old_gone:?}"
    );
    assert!(
        !live(&new, 1000) && !live(&new, 1001),
        "both gone in the end"
    );
}

#[test]
fn changes_during_the_sweep_come_through_the_log() {
    let mut old = worker(lab::tutorial_fnat(1));
    resolve_client(&mut old, CIP, 0);
    for cport in 1000..1010 {
        establish(&mut old, cport, 1);
    }
    old.enable_sync_log(64);
    let mut recs = Vec::new();
    let mut at = old.export_local(0, 4, 2, |l| recs.push(LocalRecord::Conn(l)));
    // Meanwhile: a new connection, one reset (and expired 3 s later), one
    // half-closed.
    establish(&mut old, 2000, 3);
    run_tx(&mut old, &from_client(1001, 80, RST).to_vec(), WAN, LAN, 3);
    run_tx(
        &mut old,
        &from_client(1008, 80, FIN | ACK).to_vec(),
        WAN,
        LAN,
        3,
    );
    old.tick(5_000);
    while let Some(s) = at {
        at = old.export_local(s, 4, 5_000, |l| recs.push(LocalRecord::Conn(l)));
    }
    let mut peers = Vec::new();
    old.drain_local(5_000, usize::MAX, |l, p| {
        recs.push(l);
        peers.push(p);
    });
    assert!(matches!(peers[0], Some(Record::Create(_))), "{peers:?}");
    assert!(peers.iter().any(|p| matches!(p, Some(Record::Remove(_)))));
    let mut new = worker(lab::tutorial_fnat(1));
    for r in ship(&recs) {
        match r {
            LocalRecord::Conn(l) => drop(new.install_local(&l, 5_000).unwrap()),
            LocalRecord::Remove(t) => drop(new.remove_local(&t)),
            LocalRecord::Neigh(_) => unreachable!(),
        }
    }
    assert_eq!(old.conn_count(), 10, "ten, one gone, one new");
    assert_eq!(new.conn_count(), 10, "{:?}", super::handover::listing(&old));
    // The counters go at the freeze.
    new.add_counters(&old.export_counters());
    assert_same(&old, &new, &[LIP]);
}

#[test]
fn flow_log_counters_continue_on_the_new_worker() {
    let mut old = worker(lab::tutorial_fnat(1));
    old.enable_flow_log(16);
    resolve_client(&mut old, CIP, 0);
    establish(&mut old, 1000, 1_000);
    let mut new = worker(lab::tutorial_fnat(1));
    new.enable_flow_log(16);
    hand_over(&old, &mut new, 4_000);
    run_tx(
        &mut new,
        &from_client(1000, 80, RST).to_vec(),
        WAN,
        LAN,
        5_000,
    );
    new.tick(16_000);
    let mut ends = Vec::new();
    new.drain_flow_log(|r| ends.push(*r));
    assert_eq!(ends.len(), 1, "only the end: {ends:?}");
    let e = ends[0];
    assert!(matches!(e.event, FlowEvent::End(_)));
    assert_eq!(e.counts.packets, 4, "three on the old, the RST on the new");
    assert_eq!(e.counts.created_ms, 1_000, "made 3 s before the hand-over");
}

#[test]
fn neighbours_move_with_their_age_and_incomplete_ones_stay_behind() {
    use crate::neigh::NeighState;
    // Real server 2 has no static neighbour entry: a SYN to it waits.
    let snap = || {
        let d = [lab::DestSpec::new(lab::rs_ip(2), 80, FwdMode::Fnat)];
        lab::snapshot(
            1,
            vec![vs(1, proto::TCP, 80, crate::sched::SchedKind::Rr, &d, 0)],
            2,
        )
    };
    let mut old = worker(snap());
    resolve_client(&mut old, CIP, 1_000);
    // The SYN waits; its frame's place carries the ARP request.
    run(&mut old, &from_client(1000, 80, SYN).to_vec(), WAN, 2_000);
    let rs2 = old.neigh().get(&lab::rs_ip(2)).expect("an entry");
    assert_eq!(rs2.state, NeighState::Incomplete);
    let mut recs = Vec::new();
    old.export_neigh(61_000, |n| recs.push(LocalRecord::Neigh(n)));
    let mut new = worker(snap());
    for r in ship(&recs) {
        let LocalRecord::Neigh(n) = r else {
            unreachable!()
        };
        new.install_neigh(&n, 90_000).unwrap();
    }
    let c = new.neigh().get(&CIP).expect("the client moved");
    assert_eq!((c.mac, c.state), (lab::CLIENT_MAC, NeighState::Reachable));
    assert_eq!(c.updated_ms, 90_000 - 60_000, "learned 60 s before");
    let seen = |w: &Worker| {
        let mut v: Vec<String> = w
            .neigh()
            .iter()
            .filter(|e| e.state != NeighState::Incomplete)
            .map(|e| format!("{} {} {} {}", e.addr, e.mac, e.port, e.state))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        seen(&new),
        seen(&old),
        "the client and the static RS 0 and 1"
    );
    assert_eq!(seen(&new).len(), 3);
    assert!(
        new.neigh().get(&lab::rs_ip(2)).is_none(),
        "incomplete: left behind"
    );
}

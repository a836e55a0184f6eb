//! A full connection table, two workers sharing the port space, and a
//! configuration change under live connections.

use std::sync::Arc;

use super::oracle::assert_checksums;
use super::util::*;
use crate::addr::proto;
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, LAN, LIP, WAN};
use crate::pipeline::Verdict;
use crate::sched::SchedKind;
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

#[test]
fn full_conn_table_drops_new_conns_only() {
    let mut w = worker_with(0, 4, lab::tutorial_fnat(1));
    resolve_client(&mut w, CIP, 0);
    let mut conns = Vec::new();
    for sport in 1..=4u16 {
        let out = run_tx(&mut w, &from_client(sport, 80, SYN).to_vec(), WAN, LAN, 0);
        let rs = if v4_src_dst(&out).1 == lab::rs_ip(0) {
            0
        } else {
            1
        };
        conns.push((sport, rs, be16(&out, 34)));
    }
    let (v, _) = run(&mut w, &from_client(5, 80, SYN).to_vec(), WAN, 1);
    assert_eq!(v, Verdict::Drop(DropReason::ConnTableFull));
    assert_eq!(drops(&w, DropReason::ConnTableFull), 1);
    assert_eq!(w.conns().len(), 4);
    assert_eq!(
        w.pool_usage(&LIP).map(|u| u.0),
        Some(4),
        "the port went back"
    );
    for (sport, rs, lport) in conns {
        let out = run_tx(
            &mut w,
            &from_rs(rs, 80, LIP, lport, SYN | ACK).to_vec(),
            LAN,
            WAN,
            2,
        );
        assert_checksums(&out);
        assert_eq!(be16(&out, 36), sport);
        let out = run_tx(&mut w, &from_client(sport, 80, ACK).to_vec(), WAN, LAN, 3);
        assert_checksums(&out);
        assert_eq!(be16(&out, 34), lport);
    }
    assert_eq!(w.drops().total(), 1);
}

#[test]
fn two_workers_split_lip_ports_by_parity() {
    let snap = lab::tutorial_fnat(2);
    let svc = snap.services[0].clone();
    let mut w0 = worker_with(0, 1024, lab::tutorial_fnat(2));
    let mut w1 = worker_with(1, 1024, lab::tutorial_fnat(2));
    // Share the service objects so counters add up across workers.
    let snap = Arc::new(snap);
    w0.set_snapshot(snap.clone(), 0);
    w1.set_snapshot(snap, 0);
    for sport in 100..130u16 {
        let f = from_client(sport, 80, SYN).to_vec();
        let out = run_tx(&mut w0, &f, WAN, LAN, 0);
        assert_eq!(be16(&out, 34) % 2, 0, "worker 0 uses even ports");
        let out = run_tx(&mut w1, &f, WAN, LAN, 0);
        assert_eq!(be16(&out, 34) % 2, 1, "worker 1 uses odd ports");
    }
    assert_eq!(w0.pool_usage(&LIP).map(|u| u.0 + u.1), Some(32256));
    assert_eq!(w1.pool_usage(&LIP).map(|u| u.0 + u.1), Some(32256));
    let st = svc.stats.sum();
    assert_eq!((st.conns, st.inpkts), (60, 60));
    assert_eq!(svc.stats.worker(1).read().conns, 30);
}

#[test]
fn removed_dest_keeps_its_conns_until_they_end() {
    let dests = [
        DestSpec::new(lab::rs_ip(0), 80, FwdMode::Fnat),
        DestSpec::new(lab::rs_ip(1), 80, FwdMode::Fnat),
    ];
    let old = vs(1, proto::TCP, 80, SchedKind::Rr, &dests, 0);
    let mut w = worker(lab_snapshot(1, vec![old.clone()]));
    resolve_client(&mut w, CIP, 0);
    let mut flows = Vec::new();
    for sport in [1000u16, 1001] {
        let out = run_tx(&mut w, &from_client(sport, 80, SYN).to_vec(), WAN, LAN, 0);
        let rs = if v4_src_dst(&out).1 == lab::rs_ip(0) {
            0
        } else {
            1
        };
        flows.push((sport, rs, be16(&out, 34)));
    }
    assert_ne!(flows[0].1, flows[1].1);
    let (sport, gone, lport) = flows[0];
    let kept = flows[1].1;

    // ipvsadm -d: the dest of the first conn leaves the service.
    let svc = reconfigure(&old, &[(old.dests[kept as usize].clone(), 1)]);
    w.set_snapshot(Arc::new(lab_snapshot(2, vec![svc.clone()])), 1);
    assert!(Arc::ptr_eq(&svc.stats, &old.stats));

    let out = run_tx(
        &mut w,
        &from_rs(gone, 80, LIP, lport, SYN | ACK).to_vec(),
        LAN,
        WAN,
        2,
    );
    assert_eq!(be16(&out, 36), sport);
    let out = run_tx(&mut w, &from_client(sport, 80, ACK).to_vec(), WAN, LAN, 3);
    assert_eq!(
        v4_src_dst(&out).1,
        lab::rs_ip(gone),
        "existing conn keeps its RS"
    );
    assert_eq!(old.dests[gone as usize].stats.sum().active, 1);

    for p in 2000..2006u16 {
        let out = run_tx(&mut w, &from_client(p, 80, SYN).to_vec(), WAN, LAN, 4);
        assert_eq!(
            v4_src_dst(&out).1,
            lab::rs_ip(kept),
            "new conns avoid the removed dest"
        );
    }
    // Counters continue across the snapshots: 2 + 1 + 6 client packets.
    let st = w.snapshot().services[0].stats.sum();
    assert_eq!((st.conns, st.inpkts, st.outpkts), (8, 9, 1));

    // The conn ends (client RST in ESTABLISHED, CLOSE lasts 3 s).
    let out = run_tx(
        &mut w,
        &from_client(sport, 80, RST | ACK).to_vec(),
        WAN,
        LAN,
        5,
    );
    assert_eq!(v4_src_dst(&out).1, lab::rs_ip(gone));
    w.tick(5 + 3_000 + 100);
    assert_eq!(w.conns().len(), 7);
    assert_eq!(old.dests[gone as usize].stats.sum().active, 0);
    let (v, _) = run(
        &mut w,
        &from_rs(gone, 80, LIP, lport, ACK).to_vec(),
        LAN,
        4_000,
    );
    assert!(
        !matches!(v, Verdict::Transmit(_)),
        "no conn to translate: {v:?}"
    );
}

//! Schedulers, persistence and thresholds as seen through the pipeline: which
//! real server a new connection's SYN is sent to.

use std::sync::Arc;

use super::util::*;
use crate::addr::{proto, Addr};
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::sched::SchedKind;
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

/// Sends a SYN from `cip:sport` to VIP:80; the index of the RS it went to.
fn syn(w: &mut Worker, cip: Addr, sport: u16, now: u64) -> Result<u8, Verdict> {
    let f = FrameSpec::tcp(cip, sport, lab::VIP, 80, SYN).to_vec();
    let (v, out) = run(w, &f, WAN, now);
    if v != Verdict::Transmit(LAN) {
        return Err(v);
    }
    let (_, d) = v4_src_dst(&out);
    Ok((0..4).find(|&i| lab::rs_ip(i) == d).expect("sent to a RS"))
}

fn syn_ok(w: &mut Worker, cip: Addr, sport: u16, now: u64) -> u8 {
    syn(w, cip, sport, now).unwrap_or_else(|v| panic!("{v:?}, drops {:?}", w.drops().nonzero()))
}

fn counts(picks: &[u8], n: usize) -> Vec<usize> {
    (0..n as u8)
        .map(|i| picks.iter().filter(|&&p| p == i).count())
        .collect()
}

#[test]
fn rr_cycles_through_the_dests() {
    let mut w = worker(fnat_weighted(SchedKind::Rr, &[1, 1, 1]));
    resolve_client(&mut w, CIP, 0);
    let picks: Vec<u8> = (0..9).map(|i| syn_ok(&mut w, CIP, 2000 + i, 0)).collect();
    assert_eq!(counts(&picks[..3], 3), vec![1, 1, 1], "{picks:?}");
    for i in 3..9 {
        assert_eq!(picks[i], picks[i - 3], "{picks:?}");
    }
}

#[test]
fn wrr_three_to_one() {
    let mut w = worker(fnat_weighted(SchedKind::Wrr, &[3, 1]));
    let picks: Vec<u8> = (0..400).map(|i| syn_ok(&mut w, CIP, 2000 + i, 0)).collect();
    assert_eq!(counts(&picks, 2), vec![300, 100]);
}

#[test]
fn lc_and_wlc_prefer_fewer_connections() {
    for kind in [SchedKind::Lc, SchedKind::Wlc] {
        let mut w = worker(fnat_weighted(kind, &[1, 1]));
        resolve_client(&mut w, CIP, 0);
        let svc = w.snapshot().services[0].clone();
        // An established conn weighs as much as 256 inactive ones (LVS overhead).
        let a = establish(&mut w, 1, 0).0;
        assert_eq!(a, 0, "{kind:?}: the first dest on ties");
        assert_eq!(svc.dests[0].stats.sum().active, 1);
        let picks: Vec<u8> = (2..8).map(|p| syn_ok(&mut w, CIP, p, 0)).collect();
        assert_eq!(picks, vec![1; 6], "{kind:?}");
    }
    // wlc divides by the weight: 1:3 over 8 inactive conns gives 2:6.
    let mut w = worker(fnat_weighted(SchedKind::Wlc, &[1, 3]));
    let picks: Vec<u8> = (0..8).map(|p| syn_ok(&mut w, CIP, 3000 + p, 0)).collect();
    assert_eq!(counts(&picks, 2), vec![2, 6], "{picks:?}");
}

#[test]
fn hashing_schedulers_keep_a_client_on_one_dest() {
    for kind in [SchedKind::Sh, SchedKind::Mh, SchedKind::Conhash] {
        let mut w = worker(fnat_weighted(kind, &[1, 1, 1]));
        let mut used = [false; 3];
        for c in 0..24u8 {
            let cip = Addr::v4(10, 0, 1, 10 + c);
            let first = syn_ok(&mut w, cip, 10000, 0);
            for sport in 10001..10006 {
                assert_eq!(syn_ok(&mut w, cip, sport, 0), first, "{kind:?} {cip}");
            }
            used[first as usize] = true;
        }
        assert!(
            used.iter().filter(|&&u| u).count() >= 2,
            "{kind:?} spreads clients: {used:?}"
        );
    }
}

#[test]
fn fo_picks_the_highest_weight() {
    let mut w = worker(fnat_weighted(SchedKind::Fo, &[1, 5, 3]));
    let picks: Vec<u8> = (0..10).map(|p| syn_ok(&mut w, CIP, 4000 + p, 0)).collect();
    assert_eq!(picks, vec![1; 10]);
}

#[test]
fn quiescent_dest_keeps_its_conns_and_takes_no_new_ones() {
    let mut w = worker(fnat_weighted(SchedKind::Rr, &[1, 1]));
    resolve_client(&mut w, CIP, 0);
    let old = w.snapshot().services[0].clone();
    let x = establish(&mut w, 5000, 0).0;
    let y = 1 - x;
    // ipvsadm -e ... -w 0 on X.
    let d = |i: u8, wt| (old.dests[i as usize].clone(), wt);
    let svc = reconfigure(
        &old,
        &[
            d(0, if x == 0 { 0 } else { 1 }),
            d(1, if x == 1 { 0 } else { 1 }),
        ],
    );
    w.set_snapshot(Arc::new(lab_snapshot(2, vec![svc])), 1);
    let data = FrameSpec {
        payload: b"more",
        ..from_client(5000, 80, ACK | PSH)
    }
    .to_vec();
    let out = run_tx(&mut w, &data, WAN, LAN, 2);
    assert_eq!(v4_src_dst(&out).1, lab::rs_ip(x), "existing conn stays");
    let picks: Vec<u8> = (0..6).map(|p| syn_ok(&mut w, CIP, 6000 + p, 3)).collect();
    assert_eq!(picks, vec![y; 6]);

    // All quiescent: nobody takes new conns.
    let svc = reconfigure(&old, &[d(0, 0), d(1, 0)]);
    w.set_snapshot(Arc::new(lab_snapshot(3, vec![svc])), 4);
    assert_eq!(
        syn(&mut w, CIP, 7000, 5),
        Err(Verdict::Drop(DropReason::NoDest))
    );
    assert_eq!(drops(&w, DropReason::NoDest), 1);
    let out = run_tx(&mut w, &data, WAN, LAN, 6);
    assert_eq!(
        v4_src_dst(&out).1,
        lab::rs_ip(x),
        "existing conn still stays"
    );
}

#[test]
fn persistence_sends_a_client_back_to_its_dest() {
    let dests = [
        DestSpec::new(lab::rs_ip(0), 80, FwdMode::Fnat),
        DestSpec::new(lab::rs_ip(1), 80, FwdMode::Fnat),
    ];
    let svc = vs(7, proto::TCP, 80, SchedKind::Rr, &dests, 300_000);
    let mut w = worker(lab::snapshot(1, vec![svc], 2));
    let a = Addr::v4(10, 0, 2, 1);
    let b = Addr::v4(10, 0, 2, 2);
    let ra = syn_ok(&mut w, a, 1000, 0);
    let rb = syn_ok(&mut w, b, 1000, 0);
    assert_ne!(ra, rb, "rr between different clients");
    for sport in 1001..1010 {
        assert_eq!(syn_ok(&mut w, a, sport, sport as u64), ra);
        assert_eq!(syn_ok(&mut w, b, sport, sport as u64), rb);
    }
}

#[test]
fn upper_threshold_stops_new_conns_until_below_lower() {
    let dests = [
        DestSpec {
            u_threshold: 4,
            ..DestSpec::new(lab::rs_ip(0), 80, FwdMode::Fnat)
        },
        DestSpec::new(lab::rs_ip(1), 80, FwdMode::Fnat),
    ];
    let svc = vs(8, proto::TCP, 80, SchedKind::Rr, &dests, 0);
    let mut w = worker(lab::snapshot(1, vec![svc], 2));
    // One SYN a second; the conns stay in SYN_RECV (30 s) until they expire.
    let mut on_rs0 = Vec::new();
    let mut picks = Vec::new();
    for (k, sport) in (1000..1020).enumerate() {
        let now = k as u64 * 1000;
        let rs = syn_ok(&mut w, CIP, sport, now);
        if rs == 0 {
            on_rs0.push(now);
        }
        picks.push(rs);
    }
    assert_eq!(counts(&picks, 2), vec![4, 16], "{picks:?}");
    let timeout = w.snapshot().timeouts.syn_recv_ms as u64;
    // RS0's oldest conn expires: 3 is not below the lower threshold (3/4 of
    // 4), so RS0 stays overloaded.
    let t1 = on_rs0[0] + timeout + 100;
    w.tick(t1);
    assert!(w.conns().iter().all(|(_, c)| c.expires_ms() > t1));
    let picks: Vec<u8> = (2000..2004).map(|p| syn_ok(&mut w, CIP, p, t1)).collect();
    assert_eq!(picks, vec![1; 4]);
    // At 2 it takes conns again, up to the threshold.
    let t2 = on_rs0[1] + timeout + 100;
    w.tick(t2);
    let picks: Vec<u8> = (3000..3006).map(|p| syn_ok(&mut w, CIP, p, t2)).collect();
    assert_eq!(counts(&picks, 2), vec![2, 4], "{picks:?}");
}

#[test]
fn the_largest_threshold_ipvsadm_accepts_does_not_overflow() {
    // `-x 2147483647`: the lower threshold's default (3/4 of the upper) was
    // computed in u32 and overflowed above about 1.4e9.
    let dests = [DestSpec {
        u_threshold: i32::MAX as u32,
        ..DestSpec::new(lab::rs_ip(0), 80, FwdMode::Fnat)
    }];
    let svc = vs(9, proto::TCP, 80, SchedKind::Rr, &dests, 0);
    let mut w = worker(lab::snapshot(1, vec![svc], 1));
    for sport in 1000..1010 {
        assert_eq!(syn_ok(&mut w, CIP, sport, 0), 0);
    }
    assert_eq!(w.conns().len(), 10);
}

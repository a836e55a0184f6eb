//! What the control plane reads of a worker: the published connection count
//! (no walk) and the bounded, resumable walk behind `rvsadm -lnc`.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;

use super::util::*;
use crate::addr::{proto, Addr};
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::sched::SchedKind;
use crate::wire::tcp::flags::*;

fn syn(w: &mut Worker, cip: Addr, sport: u16, now: u64) {
    let f = FrameSpec::tcp(cip, sport, lab::VIP, 80, SYN).to_vec();
    let (v, _) = run(w, &f, WAN, now);
    assert_eq!(v, Verdict::Transmit(LAN), "{:?}", w.drops().nonzero());
}

fn persistent_worker() -> Worker {
    let dests = [
        DestSpec::new(lab::rs_ip(0), 80, FwdMode::Fnat),
        DestSpec::new(lab::rs_ip(1), 80, FwdMode::Fnat),
    ];
    let svc = vs(7, proto::TCP, 80, SchedKind::Rr, &dests, 300_000);
    worker(lab::snapshot(1, vec![svc], 2))
}

#[test]
fn published_count_follows_conns_without_templates() {
    let mut w = persistent_worker();
    let gauge = w.gauges().clone();
    assert_eq!(gauge.conns.load(Relaxed), 0);
    // Two clients, three conns each: six conns and two persistence templates.
    for c in 1..=2u8 {
        for sport in 1000..1003 {
            syn(&mut w, Addr::v4(10, 0, 2, c), sport, 0);
        }
    }
    assert_eq!(
        w.conns().len(),
        8,
        "six conns and two templates in the table"
    );
    assert_eq!(w.conn_count(), 6);
    assert_eq!(gauge.conns.load(Relaxed), 6, "published after the packets");
    // SYN_RECV conns expire after 30 s, the templates (300 s) stay.
    w.tick(31_000);
    assert_eq!(w.conns().len(), 2);
    assert_eq!(gauge.conns.load(Relaxed), 0, "published after the tick");
    w.tick(301_000);
    assert_eq!(w.conns().len(), 0);
    assert_eq!(gauge.conns.load(Relaxed), 0);
}

#[test]
fn scan_resumes_and_visits_each_conn_once() {
    let mut w = persistent_worker();
    // Slots in use, free and reused: 60 conns expire, 20 new ones take
    // some of their slots.
    for sport in 1..=60u16 {
        syn(&mut w, CIP, sport, 0);
    }
    for sport in 101..=160u16 {
        syn(&mut w, Addr::v4(10, 0, 3, 1), sport, 20_000);
    }
    w.tick(31_000);
    for sport in 201..=220u16 {
        syn(&mut w, CIP, sport, 31_000);
    }
    assert_eq!(w.conn_count(), 80);
    assert!(w.conns().slots() > 82, "free slots to skip");
    let mut seen = Vec::new();
    let mut cursor = Some(0);
    let mut steps = 0;
    while let Some(start) = cursor {
        let mut in_step = 0;
        cursor = w.scan_conns(start, 7, |_, c| {
            in_step += 1;
            seen.push(c.cport);
            true
        });
        assert!(in_step <= 7, "a step looks at no more than 7 slots");
        steps += 1;
    }
    assert!(steps >= w.conns().slots() / 7, "{steps} steps");
    let unique: BTreeSet<u16> = seen.iter().copied().collect();
    assert_eq!(seen.len(), 80, "each conn once, templates left out");
    assert_eq!(unique.len(), 80);
    // Stopping early: the walk resumes right after the last conn taken.
    let mut first = Vec::new();
    let next = w.scan_conns(0, usize::MAX, |_, c| {
        first.push(c.cport);
        first.len() < 5
    });
    let mut rest = Vec::new();
    assert_eq!(
        w.scan_conns(next.expect("more to come"), usize::MAX, |_, c| {
            rest.push(c.cport);
            true
        }),
        None,
        "the end of the table"
    );
    assert_eq!(first.len() + rest.len(), 80);
    assert!(first.iter().all(|p| !rest.contains(p)));
}

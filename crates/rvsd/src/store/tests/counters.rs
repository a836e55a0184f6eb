//! Counters, ids, zeroing and rates across changes.

use std::sync::Arc;

use rvs_api::{Forward, Request, ServiceSpec};
use rvs_core::stats::bump;

use super::*;

fn vs() -> ServiceKey {
    tcp("10.0.0.100", 80)
}

fn fnat_store() -> Store {
    let mut s = store();
    run(&mut s, &fnat_two_arm());
    s
}

#[test]
fn edit_dest_keeps_counters_and_id() {
    let mut s = fnat_store();
    let snap = s.snapshot();
    let d = snap.services[0].dests[0].clone();
    // Two workers write their own blocks; the listing sums them.
    bump(&d.stats.worker(0).inpkts, 5);
    bump(&d.stats.worker(1).inpkts, 2);
    bump(&d.stats.worker(1).conns, 3);
    bump(&d.stats.worker(0).active, 4);
    run(
        &mut s,
        &[Request::EditDest {
            key: vs(),
            dest: dest("192.168.100.2", 80, 5, Forward::Fnat),
        }],
    );
    let l = s.list_services(Some(&vs())).unwrap();
    let e = &l[0].dests[0];
    assert_eq!(e.spec.weight, 5);
    assert_eq!((e.stats.inpkts, e.stats.conns, e.active), (7, 3, 4));
    assert_eq!(
        l[0].dests[1].stats.inpkts, 0,
        "the other dest has its own counters"
    );
    let after = s.snapshot();
    let d2 = &after.services[0].dests[0];
    assert_eq!((d2.id, d2.weight), (d.id, 5));
    assert!(Arc::ptr_eq(&d.stats, &d2.stats));
    assert_eq!(after.services[0].sched.dest_count(), 2);
}

#[test]
fn ids_are_stable_and_never_reused() {
    let mut s = fnat_store();
    let snap = s.snapshot();
    let (sid, d0, d1) = (
        snap.services[0].id,
        snap.services[0].dests[0].id,
        snap.services[0].dests[1].id,
    );
    assert_ne!(d0, d1);
    run(
        &mut s,
        &[
            Request::DelDest {
                key: vs(),
                addr: ip("192.168.100.2"),
                port: 80,
            },
            dest_add(&vs(), dest("192.168.100.2", 80, 1, Forward::Fnat)),
            Request::EditDest {
                key: vs(),
                dest: dest("192.168.100.3", 80, 3, Forward::Fnat),
            },
            Request::EditService {
                spec: ServiceSpec {
                    key: vs(),
                    sched: "wrr".into(),
                    persistence: Some(300),
                    sched_flags: Vec::new(),
                    synproxy: None,
                    proxy_protocol: None,
                },
            },
        ],
    );
    let snap = s.snapshot();
    let svc = &snap.services[0];
    assert_eq!(svc.id, sid, "edit keeps the service id");
    // Order is the order added: .3 now comes first.
    assert_eq!(svc.dests[0].id, d1, "edit keeps the dest id");
    assert_eq!(svc.dests[0].weight, 3);
    let readded = svc.dests[1].id;
    assert!(
        readded != d0 && readded != d1,
        "a re-added dest gets a fresh id"
    );
    // A new service never takes an old service's id either.
    run(
        &mut s,
        &[
            Request::DelService { key: vs() },
            svc_add(&vs(), "rr"),
            dest_add(&vs(), dest("192.168.100.2", 80, 1, Forward::Fnat)),
        ],
    );
    let snap = s.snapshot();
    assert_ne!(snap.services[0].id, sid);
    assert!(![d0, d1, readded].contains(&snap.services[0].dests[0].id));
}

#[test]
fn edit_service_keeps_dests_laddrs_and_counters() {
    let mut s = fnat_store();
    let before = s.snapshot();
    bump(&before.services[0].stats.worker(0).conns, 9);
    run(
        &mut s,
        &[Request::EditService {
            spec: ServiceSpec {
                key: vs(),
                sched: "WLC".into(),
                persistence: Some(60),
                sched_flags: Vec::new(),
                synproxy: None,
                proxy_protocol: None,
            },
        }],
    );
    assert_eq!(
        ipvsadm_ln(&s),
        [
            "TCP 10.0.0.100:80 wlc",
            "-> 192.168.100.2:80 FullNat 1 0 0",
            "-> 192.168.100.3:80 FullNat 1 0 0",
        ]
    );
    let l = s.list_services(None).unwrap();
    assert_eq!((l[0].stats.conns, l[0].spec.persistence), (9, Some(60)));
    let after = s.snapshot();
    let (a, b) = (&before.services[0], &after.services[0]);
    assert_eq!(b.persistence_ms, 60_000);
    assert_eq!(b.sched_kind(), rvs_core::sched::SchedKind::Wlc);
    assert!(Arc::ptr_eq(&a.stats, &b.stats));
    assert!(Arc::ptr_eq(&a.dests[0].stats, &b.dests[0].stats));
    assert!(Arc::ptr_eq(&a.laddrs[0].stats, &b.laddrs[0].stats));
}

#[test]
fn zero_one_service_or_all() {
    let mut s = fnat_store();
    let other = tcp("10.0.0.100", 443);
    run(
        &mut s,
        &[
            svc_add(&other, "rr"),
            dest_add(&other, dest("192.168.100.2", 443, 1, Forward::Fnat)),
        ],
    );
    let snap = s.snapshot();
    for svc in &snap.services {
        bump(&svc.stats.worker(0).inpkts, 10);
        bump(&svc.dests[0].stats.worker(1).inbytes, 1000);
        bump(&svc.dests[0].stats.worker(1).inactive, 2);
    }
    let g = s.generation();
    run(&mut s, &[Request::Zero { key: Some(vs()) }]);
    assert_eq!(s.generation(), g + 1);
    let l = s.list_services(None).unwrap();
    assert_eq!((l[0].stats.inpkts, l[0].dests[0].stats.inbytes), (0, 0));
    assert_eq!(l[0].dests[0].inactive, 2, "gauges survive -Z");
    assert_eq!(
        (l[1].stats.inpkts, l[1].dests[0].stats.inbytes),
        (10, 1000),
        "other service untouched"
    );
    run(&mut s, &[Request::Zero { key: None }]);
    let l = s.list_services(None).unwrap();
    assert_eq!((l[1].stats.inpkts, l[1].dests[0].stats.inbytes), (0, 0));
}

#[test]
fn rates_are_per_second_over_a_sliding_window() {
    let mut s = fnat_store();
    let snap = s.snapshot();
    let svc = &snap.services[0];
    let d = &svc.dests[1];
    s.sample_rates(1_000);
    let l = s.list_services(None).unwrap();
    assert_eq!(
        l[0].rates,
        rvs_api::Rates::default(),
        "one sample gives no rate"
    );
    bump(&svc.stats.worker(0).conns, 10);
    bump(&svc.stats.worker(1).inpkts, 100);
    bump(&d.stats.worker(0).outbytes, 3000);
    s.sample_rates(3_000);
    let l = s.list_services(None).unwrap();
    assert_eq!(
        (l[0].rates.cps, l[0].rates.inpps, l[0].rates.outpps),
        (5, 50, 0)
    );
    assert_eq!(l[0].dests[1].rates.outbps, 1500);
    assert_eq!(l[0].dests[0].rates.outbps, 0);
    // A clock that did not advance changes nothing.
    bump(&svc.stats.worker(0).conns, 10);
    s.sample_rates(3_000);
    assert_eq!(s.list_services(None).unwrap()[0].rates.cps, 5);
    // Next second: 10 more connections, 20 over the 3 s of the window
    // (the last second alone would say 10).
    s.sample_rates(4_000);
    assert_eq!(s.list_services(None).unwrap()[0].rates.cps, 6);
    // Zeroing starts the rates over instead of computing a negative delta.
    run(&mut s, &[Request::Zero { key: None }]);
    s.sample_rates(5_000);
    assert_eq!(
        s.list_services(None).unwrap()[0].rates,
        rvs_api::Rates::default()
    );
}

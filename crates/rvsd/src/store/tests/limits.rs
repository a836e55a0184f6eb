//! Rate and connection limits: set, listed, checked, kept by `-E`, gone
//! with the service, in the snapshot, zeroed by `-Z`.

use rvs_api::{ErrorKind, LimitSet, Limits, RateLimit, Request};
use rvs_core::limit::LimitKind;

use super::*;

fn src_conn_rate(rate: u64, burst: u64) -> Limits {
    Limits {
        source: LimitSet {
            conn_rate: Some(RateLimit { rate, burst }),
            max_conns: Some(10),
            ..LimitSet::default()
        },
        service: LimitSet {
            bit_rate: Some(RateLimit {
                rate: 8_000_000,
                burst: 0,
            }),
            ..LimitSet::default()
        },
        src_prefix_v4: Some(24),
        ..Limits::default()
    }
}

fn set(key: &ServiceKey, limits: Limits) -> Request {
    Request::SetLimits {
        key: key.clone(),
        limits,
    }
}

#[test]
fn limits_reach_the_snapshot_in_units_of_the_pipeline() {
    let mut s = store();
    let k = tcp("10.0.0.100", 80);
    run(&mut s, &[svc_add(&k, "rr"), set(&k, src_conn_rate(5, 10))]);
    let l = s.list_limits(Some(&k)).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].limits, src_conn_rate(5, 10));
    let snap = s.snapshot();
    let id = snap.services[0].id;
    let c = snap.limits_of(id).expect("limits in the snapshot");
    assert_eq!(c.source.conn_rate.per_sec, 5);
    assert_eq!(c.source.conn_rate.burst, 10);
    assert_eq!(c.source.max_conns, 10);
    assert_eq!(c.service.byte_rate.per_sec, 1_000_000, "bits to bytes");
    assert_eq!(c.src_plen_v4, 24);
    assert_eq!(c.src_plen_v6, 128);
    assert!(snap.has_source_limits());
}

#[test]
fn edit_service_keeps_limits_and_empty_limits_remove_them() {
    let mut s = store();
    let k = tcp("10.0.0.100", 80);
    run(&mut s, &[svc_add(&k, "rr"), set(&k, src_conn_rate(5, 10))]);
    let mut spec = match svc_add(&k, "wrr") {
        Request::AddService { spec } => spec,
        _ => unreachable!(),
    };
    spec.persistence = Some(60);
    run(&mut s, &[Request::EditService { spec }]);
    assert_eq!(s.list_limits(None).unwrap()[0].limits, src_conn_rate(5, 10));
    run(&mut s, &[set(&k, Limits::default())]);
    assert!(s.list_limits(None).unwrap()[0].limits.is_empty());
    assert!(s
        .snapshot()
        .limits_of(s.snapshot().services[0].id)
        .is_none());
}

#[test]
fn a_deleted_service_takes_its_limits_along() {
    let mut s = store();
    let k = tcp("10.0.0.100", 80);
    run(&mut s, &[svc_add(&k, "rr"), set(&k, src_conn_rate(5, 10))]);
    run(
        &mut s,
        &[Request::DelService { key: k.clone() }, svc_add(&k, "rr")],
    );
    let l = s.list_limits(Some(&k)).unwrap();
    assert!(
        l[0].limits.is_empty(),
        "a new service with the same key has none"
    );
    assert!(!s.snapshot().has_source_limits());
}

#[test]
fn bad_limits_are_refused_whole_and_named() {
    let mut s = store();
    let k = tcp("10.0.0.100", 80);
    run(&mut s, &[svc_add(&k, "rr"), set(&k, src_conn_rate(5, 10))]);
    let g = s.generation();
    let mut bad = src_conn_rate(7, 7);
    bad.src_prefix_v4 = Some(40);
    let e = s.apply(&set(&k, bad)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(
        e.message.contains("10.0.0.100:80") && e.message.contains("40"),
        "{e}"
    );
    assert_eq!(s.generation(), g, "nothing changed");
    assert_eq!(s.list_limits(None).unwrap()[0].limits, src_conn_rate(5, 10));
    let e = s
        .apply(&set(&tcp("10.0.0.101", 80), src_conn_rate(1, 1)))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("10.0.0.101:80"), "{e}");
    let e = s.list_limits(Some(&tcp("10.0.0.101", 80))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[test]
fn zero_clears_the_refusal_counters_and_a_change_keeps_them() {
    let mut s = store();
    let k = tcp("10.0.0.100", 80);
    run(&mut s, &[svc_add(&k, "rr"), set(&k, src_conn_rate(5, 10))]);
    let snap = s.snapshot();
    let drops = snap.limits_of(snap.services[0].id).unwrap().drops.clone();
    drops.count(1, LimitKind::SrcConnRate);
    drops.count(0, LimitKind::SrcConnRate);
    assert_eq!(s.list_limits(None).unwrap()[0].drops.src_conn_rate, 2);
    run(&mut s, &[set(&k, src_conn_rate(6, 10))]);
    assert_eq!(s.list_limits(None).unwrap()[0].drops.src_conn_rate, 2);
    run(&mut s, &[Request::Zero { key: None }]);
    assert_eq!(s.list_limits(None).unwrap()[0].drops.src_conn_rate, 0);
}

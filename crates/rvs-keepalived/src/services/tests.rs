use std::net::IpAddr;

use rvs_api::{DestSpec, Forward, Request, ServiceKey};

use super::*;
use crate::check::Status;
use crate::conf::parse_str;
use crate::reconcile::tests::FakeRvsd;

/// The tutorial's file with a checker that always succeeds (so that the
/// checker threads send nothing: the tests send the events).
fn conf() -> Config {
    let t = include_str!("../../testdata/tutorial-master.conf");
    let check =
        "TCP_CHECK { # health check\nnb_sock_retry 2\nconnect_timeout 3\nconnect_port 80\n}";
    assert_eq!(t.matches(check).count(), 2);
    let t = t.replace(check, "MISC_CHECK {\nmisc_path \"/bin/true\"\n}");
    parse_str(&t, "keepalived.conf").expect("parses").config
}

fn key() -> ServiceKey {
    ServiceKey::Vs {
        proto: rvs_api::Proto::Tcp,
        vip: "192.168.100.254".parse().unwrap(),
        port: 80,
    }
}

fn dest(addr: &str, weight: u32) -> DestSpec {
    DestSpec {
        addr: addr.parse::<IpAddr>().unwrap(),
        port: 80,
        weight,
        forward: Forward::Fnat,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn ev(rs: usize, status: Status) -> CheckEvent {
    CheckEvent {
        vs: 0,
        rs,
        checker: 0,
        status,
        detail: String::new(),
    }
}

/// A worker whose virtual servers are in rvsd (the requests so far cleared).
fn applied() -> Worker<FakeRvsd> {
    let mut w = Worker::new(conf(), FakeRvsd::default());
    w.reconcile();
    assert!(!w.dirty);
    w.rvsd.inner.sent.clear();
    w
}

#[test]
fn start_retries_until_rvsd_answers_then_applies_the_tutorial() {
    let rvsd = FakeRvsd {
        down: true,
        ..FakeRvsd::default()
    };
    let mut w = Worker::new(conf(), rvsd);
    assert!(w.due(Instant::now()));
    w.reconcile();
    assert!(w.unreachable && w.dirty);
    let at = w.retry_at.expect("a retry is planned");
    assert!(!w.due(Instant::now()), "not before the backoff");
    assert!(w.due(at));
    w.rvsd.inner.down = false;
    w.reconcile();
    assert!(!w.unreachable && !w.dirty);
    let k = key();
    let lip = |a: &str| Request::AddLaddr {
        key: k.clone(),
        addr: a.parse().unwrap(),
        dev: "dpdk0".into(),
    };
    assert_eq!(
        w.rvsd.inner.sent,
        vec![
            Request::AddService {
                spec: rvs_api::ServiceSpec {
                    key: k.clone(),
                    sched: "rr".into(),
                    persistence: None,
                    sched_flags: vec![],
                    synproxy: Some(false),
                    proxy_protocol: None,
                }
            },
            Request::AddDest {
                key: k.clone(),
                dest: dest("192.168.100.2", 100)
            },
            Request::AddDest {
                key: k.clone(),
                dest: dest("192.168.100.3", 100)
            },
            lip("192.168.100.200"),
            lip("192.168.100.201"),
        ]
    );
    assert_eq!(w.rvsd.changes, 5);
}

#[test]
fn a_failed_checker_is_one_weight_edit_and_back() {
    let mut w = applied();
    w.event(&ev(0, Status::Down));
    assert!(w.due(Instant::now()));
    w.reconcile();
    let edit = |weight| Request::EditDest {
        key: key(),
        dest: dest("192.168.100.2", weight),
    };
    assert_eq!(w.rvsd.inner.sent, vec![edit(0)], "inhibit_on_failure");
    w.event(&ev(0, Status::Up));
    w.reconcile();
    assert_eq!(w.rvsd.inner.sent, vec![edit(0), edit(100)]);
}

#[test]
fn a_refused_request_is_tried_again_after_the_backoff_or_at_the_next_event() {
    let mut w = applied();
    let edit = Request::EditDest {
        key: key(),
        dest: dest("192.168.100.2", 0),
    };
    w.rvsd.inner.refuse = vec![(edit.clone(), "busy".into())];
    w.event(&ev(0, Status::Down));
    w.reconcile();
    assert!(w.dirty);
    assert_eq!(
        w.last_failures,
        vec![format!("cannot {}: busy", describe(&edit))]
    );
    let at = w.retry_at.expect("retry planned");
    assert!(w.due(at));
    w.rvsd.inner.refuse.clear();
    // The other real server fails too: tried at once.
    w.event(&ev(1, Status::Down));
    assert!(w.due(Instant::now()));
    w.reconcile();
    assert!(!w.dirty);
    assert_eq!(w.rvsd.inner.sent.len(), 3, "{:?}", w.rvsd.inner.sent);
}

#[test]
fn a_reload_with_the_same_file_sends_nothing_and_keeps_the_health() {
    let mut w = applied();
    w.event(&ev(1, Status::Down));
    w.reconcile();
    assert_eq!(w.rvsd.inner.sent.len(), 1);
    w.reload(conf());
    assert!(!w.health.alive(0, 1), "health carried over");
    w.reconcile();
    assert_eq!(w.rvsd.inner.sent.len(), 1, "{:?}", w.rvsd.inner.sent);
    assert_eq!(
        w.rvsd.inner.state.services[0].dests[1].spec.weight, 0,
        "still inhibited"
    );
}

#[test]
fn stop_removes_the_virtual_servers_unless_told_to_keep_them() {
    let mut w = applied();
    w.stop(false);
    assert!(w.rvsd.inner.sent.is_empty());
    assert_eq!(w.rvsd.inner.state.services.len(), 1);
    let mut w = applied();
    w.stop(true);
    assert_eq!(w.rvsd.inner.sent, vec![Request::DelService { key: key() }]);
    assert!(w.rvsd.inner.state.services.is_empty());
}

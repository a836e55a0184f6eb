//! `-j enable|disable` (SYN proxy): kept in the listing, built into the
//! snapshot, and refused where the proxy cannot work, naming why.

use rvs_api::{ErrorKind, Request, ServiceKey, ServiceSpec};

use super::*;

fn spec(key: ServiceKey, synproxy: Option<bool>) -> ServiceSpec {
    ServiceSpec {
        key,
        sched: "rr".into(),
        persistence: None,
        sched_flags: Vec::new(),
        synproxy,
        proxy_protocol: None,
    }
}

fn on(s: &Store) -> (bool, Option<bool>) {
    (
        s.snapshot().services[0].synproxy,
        s.list_services(None).unwrap()[0].spec.synproxy,
    )
}

#[test]
fn enabled_listed_kept_by_edits_and_disabled() {
    let mut s = store();
    let key = tcp("10.0.0.100", 80);
    s.apply(&Request::AddService {
        spec: spec(key.clone(), Some(true)),
    })
    .unwrap();
    run(
        &mut s,
        &[dest_add(&key, dest("192.168.100.2", 80, 1, Forward::Fnat))],
    );
    run(
        &mut s,
        &[dest_add(&key, dest("192.168.100.3", 80, 1, Forward::Nat))],
    );
    assert_eq!(on(&s), (true, Some(true)));
    // -E without -j keeps it (nothing configured is lost).
    s.apply(&Request::EditService {
        spec: ServiceSpec {
            sched: "wrr".into(),
            ..spec(key.clone(), None)
        },
    })
    .unwrap();
    assert_eq!(on(&s), (true, Some(true)));
    s.apply(&Request::EditService {
        spec: spec(key.clone(), Some(false)),
    })
    .unwrap();
    assert_eq!(on(&s), (false, None));
    // Off is the default.
    let other = tcp("10.0.0.100", 81);
    run(&mut s, &[svc_add(&other, "rr")]);
    assert!(!s.snapshot().services[1].synproxy);
}

#[test]
fn refused_where_it_cannot_work() {
    let mut s = store();
    let udp = ServiceKey::Vs {
        proto: Proto::Udp,
        vip: ip("10.0.0.100"),
        port: 53,
    };
    let e = s
        .apply(&Request::AddService {
            spec: spec(udp, Some(true)),
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("needs a TCP virtual service"), "{e}");
    assert!(s.list_services(None).unwrap().is_empty(), "nothing added");

    // DR replies bypass rvs: not on a SYN proxy service...
    let key = tcp("10.0.0.100", 80);
    s.apply(&Request::AddService {
        spec: spec(key.clone(), Some(true)),
    })
    .unwrap();
    let e = s
        .apply(&dest_add(&key, dest("192.168.100.2", 80, 1, Forward::Dr)))
        .unwrap_err();
    assert!(
        e.message.contains("192.168.100.2:80 uses Route forwarding")
            && e.message.contains("FullNat (-b) or Masq (-m)"),
        "{e}"
    );
    assert!(s.list_services(None).unwrap()[0].dests.is_empty());
    // ... and no SYN proxy on a service that has one.
    let plain = tcp("10.0.0.100", 81);
    run(
        &mut s,
        &[
            svc_add(&plain, "rr"),
            dest_add(&plain, dest("192.168.100.2", 81, 1, Forward::Tunnel)),
        ],
    );
    let e = s
        .apply(&Request::EditService {
            spec: spec(plain.clone(), Some(true)),
        })
        .unwrap_err();
    assert!(e.message.contains("uses Tunnel forwarding"), "{e}");
    assert!(!s.snapshot().services[1].synproxy, "left as it was");
}

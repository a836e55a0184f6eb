//! `--sched-flags`: checked against the scheduler, listed in canonical form,
//! and built into the table the workers schedule with.

use rvs_api::{ErrorKind, Request, ServiceSpec};

use super::*;

fn flagged(sched: &str, flags: &[&str]) -> ServiceSpec {
    ServiceSpec {
        key: tcp("10.0.0.100", 80),
        sched: sched.into(),
        persistence: None,
        sched_flags: flags.iter().map(|f| f.to_string()).collect(),
        synproxy: None,
        proxy_protocol: None,
    }
}

#[test]
fn flags_reach_the_scheduler_table_and_the_listing() {
    let mut s = store();
    let spec = flagged("mh", &["mh-port", "mh-fallback", "mh-port"]);
    s.apply(&Request::AddService { spec }).unwrap();
    let snap = s.snapshot();
    let o = snap.services[0].sched.opts();
    assert!(o.mh_port && o.mh_fallback && !o.sh_port && !o.sh_fallback);
    let listed = s.list_services(None).unwrap();
    assert_eq!(listed[0].spec.sched_flags, ["mh-fallback", "mh-port"]);

    // -E without flags clears them, as ipvsadm's edit does.
    s.apply(&Request::EditService {
        spec: flagged("mh", &[]),
    })
    .unwrap();
    assert_eq!(s.snapshot().services[0].sched.opts(), Default::default());
    assert!(s.list_services(None).unwrap()[0]
        .spec
        .sched_flags
        .is_empty());
}

#[test]
fn a_flag_of_another_scheduler_is_refused() {
    let mut s = store();
    let e = s
        .apply(&Request::AddService {
            spec: flagged("sh", &["mh-port"]),
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(
        e.message.contains("'mh-port'") && e.message.contains("sh-fallback, sh-port"),
        "{e}"
    );
    let e = s
        .apply(&Request::AddService {
            spec: flagged("rr", &["sh-port"]),
        })
        .unwrap_err();
    assert!(e.message.contains("scheduler rr"), "{e}");
    assert!(s.list_services(None).unwrap().is_empty());
}

use std::net::IpAddr;

use rvs_api::DestSpec;

use super::{cfg, vs};
use crate::check::{wanted, CheckEvent, HealthState, Notify, Status};
use crate::conf::Config;
use crate::reconcile::{plan, Current, Owned};

const TUTORIAL: &str = include_str!("../../../testdata/tutorial-master.conf");

fn ev(vs: usize, rs: usize, status: Status) -> CheckEvent {
    CheckEvent {
        vs,
        rs,
        checker: 0,
        status,
        detail: String::new(),
    }
}

/// (address, port, weight) of the wanted dests of the first service.
fn dests(c: &Config, h: &HealthState) -> Vec<(String, u16, u32)> {
    let w = wanted(c, h).unwrap();
    w[0].dests
        .iter()
        .map(|d: &DestSpec| (d.addr.to_string(), d.port, d.weight))
        .collect()
}

fn d(a: &str, p: u16, w: u32) -> (String, u16, u32) {
    (a.to_string(), p, w)
}

fn scripts(n: &[Notify]) -> Vec<&str> {
    n.iter().map(|n| n.script.as_str()).collect()
}

#[test]
fn inhibit_on_failure_sets_weight_zero_and_back() {
    let c = cfg(TUTORIAL);
    let (mut h, _) = HealthState::new(&c);
    assert_eq!(
        dests(&c, &h),
        [d("192.168.100.2", 80, 100), d("192.168.100.3", 80, 100)]
    );
    h.event(&c, &ev(0, 0, Status::Down));
    assert_eq!(
        dests(&c, &h),
        [d("192.168.100.2", 80, 0), d("192.168.100.3", 80, 100)]
    );
    h.event(&c, &ev(0, 0, Status::Up));
    assert_eq!(
        dests(&c, &h),
        [d("192.168.100.2", 80, 100), d("192.168.100.3", 80, 100)]
    );
}

#[test]
fn a_down_real_server_costs_one_edit_dest_through_the_reconciler() {
    let c = cfg(TUTORIAL);
    let (mut h, _) = HealthState::new(&c);
    let before = wanted(&c, &h).unwrap();
    // rvsd as the reconciler left it.
    let mut cur = Current::default();
    for r in plan(&before, &Current::default(), &Owned::new()) {
        match r {
            rvs_api::Request::AddService { spec } => cur.services.push(rvs_api::ServiceInfo {
                spec,
                dests: vec![],
                stats: Default::default(),
                rates: Default::default(),
            }),
            rvs_api::Request::AddDest { dest, .. } => {
                cur.services[0].dests.push(rvs_api::DestInfo {
                    spec: dest,
                    active: 0,
                    inactive: 0,
                    stats: Default::default(),
                    rates: Default::default(),
                })
            }
            _ => {}
        }
    }
    cur.laddrs = vec![rvs_api::LaddrGroup {
        key: before[0].spec.key.clone(),
        laddrs: before[0]
            .laddrs
            .iter()
            .map(|(addr, dev)| rvs_api::LaddrInfo {
                addr: *addr,
                dev: dev.clone(),
                conflicts: 0,
                conns: 0,
                standby: false,
            })
            .collect(),
    }];
    assert_eq!(plan(&before, &cur, &Owned::new()), vec![]);
    h.event(&c, &ev(0, 1, Status::Down));
    let reqs = plan(&wanted(&c, &h).unwrap(), &cur, &Owned::new());
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    match &reqs[0] {
        rvs_api::Request::EditDest { dest, .. } => {
            assert_eq!(dest.addr, "192.168.100.3".parse::<IpAddr>().unwrap());
            assert_eq!(dest.weight, 0);
        }
        other => panic!("expected EditDest, got {other:?}"),
    }
}

const TWO: &str = " real_server 10.0.0.1 80 {\n weight 2\n notify_up \"/bin/up 1\"\n notify_down \"/bin/down 1\"\n TCP_CHECK {\n }\n }\n real_server 10.0.0.2 80 {\n weight 3\n TCP_CHECK {\n }\n }";

#[test]
fn without_inhibit_a_down_server_is_removed_and_notified() {
    let c = vs(TWO);
    let (mut h, _) = HealthState::new(&c);
    let n = h.event(&c, &ev(0, 0, Status::Down));
    assert_eq!(scripts(&n), ["/bin/down 1"]);
    assert_eq!(
        n[0].reason,
        "real server 10.0.0.1:80 of virtual server 0 is down"
    );
    assert_eq!(dests(&c, &h), [d("10.0.0.2", 80, 3)]);
    assert_eq!(
        scripts(&h.event(&c, &ev(0, 0, Status::Down))),
        Vec::<&str>::new()
    );
    assert_eq!(scripts(&h.event(&c, &ev(0, 0, Status::Up))), ["/bin/up 1"]);
    assert_eq!(dests(&c, &h), [d("10.0.0.1", 80, 2), d("10.0.0.2", 80, 3)]);
}

#[test]
fn sorry_server_takes_over_when_all_are_down() {
    let c = vs(&format!(" sorry_server 10.9.0.1 8080\n{TWO}"));
    let (mut h, _) = HealthState::new(&c);
    h.event(&c, &ev(0, 0, Status::Down));
    assert_eq!(dests(&c, &h), [d("10.0.0.2", 80, 3)]);
    h.event(&c, &ev(0, 1, Status::Down));
    assert_eq!(dests(&c, &h), [d("10.9.0.1", 8080, 1)]);
    h.event(&c, &ev(0, 1, Status::Up));
    assert_eq!(dests(&c, &h), [d("10.0.0.2", 80, 3)]);
    // sorry_server_inhibit: kept at weight 0 when not needed.
    let c = vs(&format!(
        " sorry_server 10.9.0.1 8080\n sorry_server_inhibit\n{TWO}"
    ));
    let (h, _) = HealthState::new(&c);
    assert_eq!(
        dests(&c, &h),
        [
            d("10.0.0.1", 80, 2),
            d("10.0.0.2", 80, 3),
            d("10.9.0.1", 8080, 0)
        ]
    );
}

#[test]
fn quorum_with_hysteresis_runs_quorum_scripts_on_the_edges() {
    let c = vs(&format!(
        " quorum 4\n hysteresis 1\n quorum_up /bin/qup\n quorum_down /bin/qdown\n{TWO}"
    ));
    let (mut h, n) = HealthState::new(&c);
    assert!(n.is_empty());
    // 10.0.0.2 alone weighs 3 = quorum - hysteresis: still held.
    assert!(h
        .event(&c, &ev(0, 0, Status::Down))
        .iter()
        .all(|n| n.script != "/bin/qdown"));
    assert!(h.quorum_up(0));
    // 0 < 3: lost.
    assert_eq!(
        scripts(&h.event(&c, &ev(0, 1, Status::Down))),
        ["/bin/qdown"]
    );
    assert!(!h.quorum_up(0));
    // 3 < quorum + hysteresis = 5: not gained yet.
    assert_eq!(
        scripts(&h.event(&c, &ev(0, 1, Status::Up))),
        Vec::<&str>::new()
    );
    assert!(!h.quorum_up(0));
    // 5: gained.
    let n = h.event(&c, &ev(0, 0, Status::Up));
    assert_eq!(scripts(&n), ["/bin/up 1", "/bin/qup"]);
    assert!(
        n[1].reason.contains("gained its quorum: live weight 5"),
        "{}",
        n[1].reason
    );
}

#[test]
fn alpha_starts_down_until_the_first_success() {
    let c = vs(&format!(
        " alpha\n sorry_server 10.9.0.1 80\n quorum_down /bin/qdown\n{TWO}"
    ));
    let (mut h, n) = HealthState::new(&c);
    assert_eq!(scripts(&n), ["/bin/qdown"]);
    assert!(!h.alive(0, 0) && !h.alive(0, 1));
    assert_eq!(dests(&c, &h), [d("10.9.0.1", 80, 1)]);
    h.event(&c, &ev(0, 1, Status::Up));
    assert_eq!(dests(&c, &h), [d("10.0.0.2", 80, 3)]);
}

#[test]
fn omega_runs_down_scripts_on_shutdown() {
    let c = vs(&format!(" omega\n quorum_down /bin/qdown\n{TWO}"));
    let (h, _) = HealthState::new(&c);
    assert_eq!(scripts(&h.shutdown(&c)), ["/bin/down 1", "/bin/qdown"]);
    let c = vs(&format!(" quorum_down /bin/qdown\n{TWO}"));
    assert!(HealthState::new(&c).0.shutdown(&c).is_empty());
}

#[test]
fn misc_dynamic_weight_sets_the_dest_weight() {
    let c = vs(" real_server 10.0.0.1 80 {\n weight 5\n MISC_CHECK {\n misc_path /bin/true\n misc_dynamic\n }\n }");
    let (mut h, _) = HealthState::new(&c);
    h.event(&c, &ev(0, 0, Status::Weight(42)));
    assert_eq!(dests(&c, &h), [d("10.0.0.1", 80, 42)]);
}

#[test]
fn a_real_server_is_up_only_when_all_its_checkers_are() {
    let c = vs(
        " real_server 10.0.0.1 80 {\n TCP_CHECK {\n }\n MISC_CHECK {\n misc_path /bin/true\n }\n }",
    );
    let (mut h, _) = HealthState::new(&c);
    h.event(
        &c,
        &CheckEvent {
            checker: 1,
            ..ev(0, 0, Status::Down)
        },
    );
    assert!(!h.alive(0, 0));
    h.event(&c, &ev(0, 0, Status::Up));
    assert!(!h.alive(0, 0), "the MISC_CHECK is still down");
    h.event(
        &c,
        &CheckEvent {
            checker: 1,
            ..ev(0, 0, Status::Up)
        },
    );
    assert!(h.alive(0, 0));
    // Events for indices that no longer exist are ignored.
    assert!(h.event(&c, &ev(3, 0, Status::Down)).is_empty());
}

#[test]
fn reload_keeps_the_health_of_real_servers_still_configured() {
    let old = vs(TWO);
    let (mut h, _) = HealthState::new(&old);
    h.event(&old, &ev(0, 1, Status::Down));
    // The new file adds a real server in front and keeps 10.0.0.2.
    let new = vs(&format!(
        " real_server 10.0.0.3 80 {{\n TCP_CHECK {{\n }}\n }}\n{TWO}"
    ));
    let (h2, _) = HealthState::reloaded(&new, &old, &h);
    assert!(h2.alive(0, 0) && h2.alive(0, 1));
    assert!(!h2.alive(0, 2), "10.0.0.2 was down and is still");
    assert!(!h2.checker_up(0, 2, 0));
}

#[test]
fn reload_evaluates_quorum_from_the_old_state_with_its_scripts() {
    let old = vs(&format!(" quorum_down /bin/qdown\n{TWO}"));
    let (mut h, _) = HealthState::new(&old);
    h.event(&old, &ev(0, 0, Status::Down));
    assert!(h
        .event(&old, &ev(0, 1, Status::Down))
        .iter()
        .any(|n| n.script == "/bin/qdown"));
    // Same file: the quorum stays lost, no script runs again.
    let (h2, n) = HealthState::reloaded(&old, &old, &h);
    assert!(n.is_empty(), "{n:?}");
    assert!(!h2.quorum_up(0));
    // A new virtual server whose servers start down (alpha) loses its
    // quorum at once, and says so.
    let text = format!(
        "virtual_server 10.0.0.100 80 {{\n quorum_down /bin/qdown\n{TWO}\n}}\nvirtual_server 10.0.0.101 80 {{\n alpha\n quorum_down /bin/qdown2\n real_server 10.0.0.5 80 {{\n TCP_CHECK {{\n }}\n }}\n}}\n"
    );
    let new = cfg(&text);
    let (h3, n) = HealthState::reloaded(&new, &old, &h);
    assert_eq!(scripts(&n), ["/bin/qdown2"]);
    assert!(!h3.quorum_up(0) && !h3.quorum_up(1));
}

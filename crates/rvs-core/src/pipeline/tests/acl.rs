//! Allow and deny lists on crafted frames: a denied SYN is dropped before
//! scheduling (no connection, no local port), counted by reason and by rule;
//! established connections are not cut by a later list; whitelists admit
//! only their sources; sets match as `dpip ipset` defines them.

use std::sync::Arc;

use super::util::*;
use crate::acl::{parse_entry, Hits, IpSet, Lists, RuleList, SetKind, SetOpts, Target};
use crate::addr::{proto, Addr};
use crate::lab::{self, FrameSpec, LAN, LIP, WAN};
use crate::pipeline::Verdict;
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

/// A second client on the tutorial's client network.
const C2: Addr = Addr::v4(10, 0, 0, 49);

fn hits() -> Arc<Hits> {
    Arc::new(Hits::new(1))
}

/// Lists with one counter per rule; returns them and the rule counters.
fn lists(deny: Vec<Target>, allow: Vec<Target>) -> (Arc<Lists>, Vec<Arc<Hits>>) {
    let mut counters = Vec::new();
    let mut rules = |ts: Vec<Target>| {
        RuleList::new(ts.into_iter().map(|t| {
            let h = hits();
            counters.push(h.clone());
            (t, h)
        }))
    };
    let l = Lists {
        deny: rules(deny),
        allow: rules(allow),
        rejected: hits(),
    };
    (Arc::new(l), counters)
}

/// The tutorial's FNAT service (id 1) with `per_svc` lists and `global` ones.
fn snap(global: Option<Arc<Lists>>, per_svc: Option<Arc<Lists>>) -> Snapshot {
    let per: Vec<(u32, Arc<Lists>)> = per_svc.into_iter().map(|l| (1, l)).collect();
    lab::tutorial_fnat(1).with_acl(global, &per)
}

fn syn_from(src: Addr, sport: u16) -> Vec<u8> {
    FrameSpec::tcp(src, sport, lab::VIP, 80, SYN).to_vec()
}

fn host(a: Addr) -> Target {
    Target::Net(a, 32)
}

fn ipset(kind: SetKind, entries: &[&str]) -> Arc<IpSet> {
    let mut s = IpSet::new("s", kind, SetOpts::default(), hits()).unwrap();
    for e in entries {
        s.add(&parse_entry(kind, false, e).unwrap(), false, None, false)
            .unwrap();
    }
    s.finish();
    Arc::new(s)
}

#[test]
fn blacklisted_syn_is_dropped_before_scheduling() {
    let (l, rule) = lists(vec![host(CIP)], vec![]);
    let mut w = worker(snap(None, Some(l)));
    let (v, _) = run(&mut w, &syn_from(CIP, 4000), WAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::AclDeny));
    assert_eq!(drops(&w, DropReason::AclDeny), 1);
    assert_eq!(rule[0].sum(), 1, "counted on the rule");
    assert_eq!(w.conns().len(), 0, "no connection");
    assert_eq!(
        w.pool_usage(&LIP).map(|u| u.0),
        Some(0),
        "no local port taken"
    );
    // Another client is served.
    let out = run_tx(&mut w, &syn_from(C2, 4000), WAN, LAN, 0);
    assert_eq!(v4_src_dst(&out).0, LIP);
    assert_eq!(w.conns().len(), 1);
    assert_eq!(w.drops().total(), 1);
}

#[test]
fn a_list_added_later_leaves_established_connections_alone() {
    let mut w = worker(snap(None, None));
    let out = run_tx(&mut w, &syn_from(CIP, 4000), WAN, LAN, 0);
    let lport = be16(&out, 34);
    let rs = if v4_src_dst(&out).1 == lab::rs_ip(0) {
        0
    } else {
        1
    };
    let (l, _) = lists(vec![host(CIP)], vec![]);
    w.set_snapshot(Arc::new(snap(None, Some(l))), 1);
    // The reply and the client's next segments still pass.
    run_tx(
        &mut w,
        &from_rs(rs, 80, LIP, lport, SYN | ACK).to_vec(),
        LAN,
        WAN,
        2,
    );
    let ack = FrameSpec::tcp(CIP, 4000, lab::VIP, 80, ACK).to_vec();
    run_tx(&mut w, &ack, WAN, LAN, 3);
    // A new connection from the same client is refused.
    let (v, _) = run(&mut w, &syn_from(CIP, 4001), WAN, 4);
    assert_eq!(v, Verdict::Drop(DropReason::AclDeny));
}

#[test]
fn whitelist_admits_only_listed_sources() {
    let (l, rule) = lists(vec![], vec![Target::Net(Addr::v4(10, 0, 0, 48), 31)]);
    let mut w = worker(snap(None, Some(l.clone())));
    run_tx(&mut w, &syn_from(CIP, 4000), WAN, LAN, 0);
    run_tx(&mut w, &syn_from(C2, 4000), WAN, LAN, 0);
    let other = Addr::v4(10, 0, 0, 50);
    let (v, _) = run(&mut w, &syn_from(other, 4000), WAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::AclNotAllowed));
    assert_eq!(drops(&w, DropReason::AclNotAllowed), 1);
    assert_eq!(l.rejected.sum(), 1, "counted on the service's whitelist");
    assert_eq!(rule[0].sum(), 2, "the prefix admitted two connections");
}

#[test]
fn deny_wins_over_allow_and_global_lists_cover_every_service() {
    // Global blacklist: a hash:net set; the service whitelists the whole /16.
    let set = ipset(SetKind::HashNet, &["10.0.0.0/24", "10.0.0.49/32"]);
    let mut nm = (*set).clone();
    nm.add(
        &parse_entry(SetKind::HashNet, false, "10.0.0.49").unwrap(),
        true,
        None,
        true,
    )
    .unwrap();
    nm.finish();
    let (g, _) = lists(vec![Target::Set(Arc::new(nm))], vec![]);
    let (own, _) = lists(vec![], vec![Target::Net(Addr::v4(10, 0, 0, 0), 16)]);
    let mut w = worker(snap(Some(g), Some(own)));
    let (v, _) = run(&mut w, &syn_from(CIP, 4000), WAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::AclDeny), "deny wins");
    // 10.0.0.49 is a nomatch exception of the set: not denied, and allowed.
    run_tx(&mut w, &syn_from(C2, 4000), WAN, LAN, 0);
    let (v, _) = run(&mut w, &syn_from(Addr::v4(10, 1, 0, 1), 4000), WAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::AclNotAllowed));
}

#[test]
fn hash_ip_port_set_matches_the_client_and_the_service_port() {
    let set = ipset(
        SetKind::HashIpPort,
        &["10.0.0.48,tcp:80", "10.0.0.49,tcp:8080"],
    );
    let (l, _) = lists(vec![Target::Set(set.clone())], vec![]);
    let mut w = worker(snap(Some(l), None));
    let (v, _) = run(&mut w, &syn_from(CIP, 4000), WAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::AclDeny));
    assert_eq!(set.hits().sum(), 1, "counted on the set");
    // 10.0.0.49 is listed for port 8080 only.
    run_tx(&mut w, &syn_from(C2, 4000), WAN, LAN, 0);
}

#[test]
fn udp_flows_are_checked_too() {
    let mut snap0 = lab::tutorial_fnat(1);
    let udp = lab::service(
        2,
        crate::service::ServiceKey::Vs {
            proto: proto::UDP,
            vip: lab::VIP,
            vport: 53,
        },
        crate::sched::SchedKind::Rr,
        &[lab::DestSpec::new(
            lab::rs_ip(0),
            53,
            crate::conn::FwdMode::Fnat,
        )],
        &[(LIP, LAN)],
        0,
        1,
    );
    snap0 = lab::snapshot(1, vec![snap0.services[0].clone(), udp], 2);
    let (l, _) = lists(vec![host(CIP)], vec![]);
    let mut w = worker(snap0.with_acl(None, &[(2, l)]));
    let q = FrameSpec::udp(CIP, 5000, lab::VIP, 53, b"q").to_vec();
    let (v, _) = run(&mut w, &q, WAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::AclDeny));
    // The list is the UDP service's: TCP port 80 still serves the client.
    run_tx(&mut w, &syn_from(CIP, 4000), WAN, LAN, 0);
}

#[test]
fn a_denied_client_gets_no_syn_proxy_cookie() {
    let snap = super::synproxy::sp_lab(crate::conn::FwdMode::Fnat);
    let (l, rule) = lists(vec![host(CIP)], vec![]);
    let mut w = worker(snap.with_acl(Some(l), &[]));
    let (v, _) = run(&mut w, &syn_from(CIP, 4000), WAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::AclDeny), "no SYN-ACK");
    assert_eq!(rule[0].sum(), 1);
    // Another client gets its SYN-ACK back out of the port it came in by.
    let out = run_tx(&mut w, &syn_from(C2, 4000), WAN, WAN, 0);
    assert_eq!(out[47] & (SYN | ACK), SYN | ACK);
}

use super::*;
use crate::wire::mld::{message, ReportPacket, ALL_MLDV2_ROUTERS, ALL_NODES};

const MAC: Mac = Mac([2, 0, 0, 0, 0, 0x10]);

fn a(s: &str) -> Addr {
    s.parse().unwrap()
}

fn vip_group() -> Addr {
    a("ff02::1:ff00:100")
}

/// The records of each Report due at `now`, checksums verified.
fn tick(l: &mut Listener, now: u64) -> Vec<Vec<(u8, Addr)>> {
    let src = a("fe80::10");
    let mut out = Vec::new();
    let n = l.tick(now, MAC, &src, &mut |f| {
        assert_eq!(&f[..6], &[0x33, 0x33, 0, 0, 0, 0x16]);
        assert_eq!(f[21], 1, "hop limit 1");
        let r = ReportPacket::new_checked(message(f)).unwrap();
        assert!(r.verify_checksum(&src, &ALL_MLDV2_ROUTERS));
        out.push(r.records().collect());
    });
    assert_eq!(n, out.len());
    out
}

/// Runs the listener until nothing is due; every Report's records with
/// the time it left.
fn drain(l: &mut Listener) -> Vec<(u64, Vec<(u8, Addr)>)> {
    let mut out = Vec::new();
    while let Some(t) = l.next_due() {
        for r in tick(l, t) {
            out.push((t, r));
        }
    }
    out
}

#[test]
fn a_join_is_reported_twice_a_second_apart_at_most() {
    let mut l = Listener::new(7);
    l.set_groups([ALL_NODES, vip_group()], 100);
    assert_eq!(l.groups(), &[vip_group()], "all-nodes is never reported");
    let sent = drain(&mut l);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].0, 100, "the first at once");
    assert!(sent[1].0 > 100 && sent[1].0 <= 1100, "{sent:?}");
    for (_, r) in &sent {
        assert_eq!(r, &vec![(record::CHANGE_TO_EXCLUDE, vip_group())]);
    }
    assert_eq!(l.reports(), 2);
}

#[test]
fn a_leave_is_reported_with_change_to_include() {
    let mut l = Listener::new(7);
    l.set_groups([vip_group()], 0);
    drain(&mut l);
    l.set_groups([ALL_NODES], 5000);
    let sent = drain(&mut l);
    assert_eq!(sent.len(), 2);
    for (_, r) in &sent {
        assert_eq!(r, &vec![(record::CHANGE_TO_INCLUDE, vip_group())]);
    }
    // Nothing left to answer a query with.
    l.query(Addr::UNSPECIFIED, 1000, 2, 9000);
    assert!(drain(&mut l).is_empty());
}

#[test]
fn a_leave_replaces_a_pending_join() {
    let mut l = Listener::new(3);
    l.set_groups([vip_group()], 0);
    assert_eq!(tick(&mut l, 0).len(), 1);
    l.set_groups([], 1);
    let sent = drain(&mut l);
    assert!(sent
        .iter()
        .all(|(_, r)| r == &vec![(record::CHANGE_TO_INCLUDE, vip_group())]));
    assert_eq!(sent.len(), 2);
}

#[test]
fn general_query_answered_within_the_maximum_response_delay() {
    for seed in 1..50 {
        let mut l = Listener::new(seed);
        let other = a("ff02::1:ff00:200");
        l.set_groups([vip_group(), other, ALL_NODES], 0);
        drain(&mut l);
        l.query(Addr::UNSPECIFIED, 10_000, 2, 20_000);
        let due = l.next_due().unwrap();
        assert!((20_000..=30_000).contains(&due));
        if due > 20_000 {
            assert!(tick(&mut l, due - 1).is_empty(), "not before its time");
        }
        // A second query with a later draw does not put the answer off.
        l.query(Addr::UNSPECIFIED, 10_000, 2, 20_001);
        assert!(l.next_due().unwrap() <= due);
        let sent = drain(&mut l);
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].1,
            vec![
                (record::MODE_IS_EXCLUDE, vip_group()),
                (record::MODE_IS_EXCLUDE, other)
            ]
        );
    }
}

#[test]
fn group_specific_query_only_for_a_group_listened_to() {
    let mut l = Listener::new(9);
    l.set_groups([vip_group(), a("ff02::1:ff00:200")], 0);
    drain(&mut l);
    l.query(a("ff02::1:ff00:300"), 1000, 0, 5000);
    assert!(l.next_due().is_none());
    l.query(vip_group(), 1000, 0, 5000);
    let sent = drain(&mut l);
    assert_eq!(sent.len(), 1);
    assert!((5000..=6000).contains(&sent[0].0));
    assert_eq!(sent[0].1, vec![(record::MODE_IS_EXCLUDE, vip_group())]);
}

#[test]
fn all_nodes_alone_is_never_reported() {
    let mut l = Listener::new(1);
    l.set_groups([ALL_NODES, a("ff01::1")], 0);
    l.query(Addr::UNSPECIFIED, 0, 0, 10);
    l.query(ALL_NODES, 0, 0, 10);
    assert!(drain(&mut l).is_empty());
    assert_eq!(l.reports(), 0);
}

#[test]
fn the_queriers_robustness_is_adopted() {
    let mut l = Listener::new(5);
    l.query(Addr::UNSPECIFIED, 100, 3, 0);
    drain(&mut l);
    l.set_groups([vip_group()], 1000);
    assert_eq!(drain(&mut l).len(), 3);
}

#[test]
fn many_groups_take_several_reports() {
    let mut l = Listener::new(5);
    let groups: Vec<Addr> = (0..100u8)
        .map(|i| {
            let mut g = vip_group();
            g.0[15] = i;
            g
        })
        .collect();
    l.set_groups(groups.iter().copied(), 0);
    let first = tick(&mut l, 0);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].len(), crate::wire::mld::MAX_RECORDS);
    assert_eq!(first[0].len() + first[1].len(), 100);
}

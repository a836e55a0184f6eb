//! Sets, entries and lists: what `dpip ipset` and `ipvsadm --add-blklst`
//! users check, including DPVS's own ipset test script cases.

use std::sync::Arc;

use super::entry::{parse_entry, parse_probe, Member, SetKind};
use super::net::NetTable;
use super::set::{IpSet, SetOpts};
use super::{Acl, AclErrorKind, Hits, Lists, RuleList, Subject, Target};
use crate::addr::{proto, Addr};
use crate::stats::DropReason;

fn a(s: &str) -> Addr {
    s.parse().expect("test address")
}

fn set(kind: &str, v6: bool) -> IpSet {
    let opts = SetOpts {
        v6,
        comment: true,
        ..SetOpts::default()
    };
    IpSet::new("foo", kind.parse().unwrap(), opts, Arc::new(Hits::new(2))).unwrap()
}

fn add(s: &mut IpSet, e: &str, nomatch: bool) {
    let m = parse_entry(s.kind(), s.opts().v6, e).unwrap();
    s.add(&m, nomatch, None, false).unwrap();
    s.finish();
}

fn del(s: &mut IpSet, e: &str) {
    let m = parse_entry(s.kind(), s.opts().v6, e).unwrap();
    s.del(&m, false).unwrap();
    s.finish();
}

fn test(s: &IpSet, e: &str) -> bool {
    s.test(&parse_probe(s.kind(), s.opts().v6, e).unwrap())
}

#[test]
fn hash_net_longest_prefix_with_nomatch_as_dpvs_script() {
    // DPVS test/ipset/dpip.sh, hash:net.
    let mut s = set("hash:net", false);
    add(&mut s, "192.168.0.0/24", false);
    add(&mut s, "10.1.0.0/16", false);
    add(&mut s, "192.168.0.100/30", true);
    assert!(test(&s, "10.1.100.100"));
    assert!(test(&s, "192.168.0.104"));
    assert!(!test(&s, "192.168.0.102"));
    add(&mut s, "10.1.1.1", true);
    assert!(!test(&s, "10.1.1.1"));
    del(&mut s, "10.1.1.1");
    assert!(test(&s, "10.1.1.1"));
    let mut s6 = set("hash:net", true);
    add(&mut s6, "2001::/64", false);
    assert!(test(&s6, "2001::4:3:2:1"));
    assert!(!test(&s6, "2001:1::4:3:2:1"));
    add(&mut s6, "2001::/120", true);
    assert!(!test(&s6, "2001::1"));
}

#[test]
fn ipv4_range_becomes_prefixes_as_dpvs_lists_them() {
    let mut s = set("hash:net", false);
    add(&mut s, "192.168.1.123/24", false);
    add(&mut s, "192.168.1.200-192.168.1.255", true);
    let mut listed: Vec<String> = s
        .members()
        .map(|(m, nm, _)| {
            format!(
                "{}{}",
                m.display(SetKind::HashNet),
                if nm { " nomatch" } else { "" }
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "192.168.1.0/24",
            "192.168.1.200/29 nomatch",
            "192.168.1.208/28 nomatch",
            "192.168.1.224/27 nomatch"
        ]
    );
    assert!(test(&s, "192.168.1.168"));
    assert!(!test(&s, "192.168.1.211"));
    // A whole family and odd edges decompose exactly.
    let m = parse_entry(SetKind::HashNet, false, "0.0.0.1-255.255.255.254").unwrap();
    assert_eq!(m.len(), 62);
    let m = parse_entry(
        SetKind::HashNet,
        true,
        "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    )
    .unwrap();
    assert_eq!(
        m,
        [Member::Net {
            addr: a("::"),
            plen: 0
        }]
    );
}

#[test]
fn hash_ip_expands_ranges_and_refuses_huge_ones() {
    let mut s = set("hash:ip", false);
    add(&mut s, "10.100.100.100", false);
    add(&mut s, "192.168.1.0-192.168.1.9", false);
    add(&mut s, "192.168.2.0/30", false);
    assert_eq!(s.len(), 15);
    assert!(test(&s, "192.168.1.6"));
    assert!(test(&s, "192.168.2.1"));
    assert!(!test(&s, "192.168.2.4"));
    let e = parse_entry(SetKind::HashIp, false, "10.0.0.0/8").unwrap_err();
    assert!(
        e.message.contains("65536") && e.message.contains("hash:net"),
        "{e}"
    );
    let mut s6 = set("hash:ip", true);
    add(&mut s6, "::", false);
    assert!(test(&s6, "::"));
    assert!(!test(&s6, "::1"));
}

#[test]
fn hash_ip_port_matches_client_and_service_port() {
    let mut s = set("hash:ip,port", false);
    add(&mut s, "192.168.1.0/30,tcp:80-82", false);
    add(&mut s, "172.27.1.3-172.27.1.5", false);
    add(&mut s, "172.27.20.20,443", false);
    assert_eq!(s.len(), 12 + 3 + 1);
    assert!(test(&s, "192.168.1.1,tcp:81"));
    assert!(!test(&s, "192.168.1.1,udp:81"));
    assert!(test(&s, "172.27.1.5"), "no port = unspec:0");
    // Without a protocol an entry matches TCP and UDP alike.
    assert!(s.matches(&a("172.27.20.20"), proto::TCP, 443));
    assert!(s.matches(&a("172.27.20.20"), proto::UDP, 443));
    assert!(!s.matches(&a("172.27.20.20"), proto::TCP, 80));
    assert!(s.matches(&a("192.168.1.2"), proto::TCP, 82));
    assert!(!s.matches(&a("192.168.1.2"), proto::UDP, 82));
    let listed: Vec<String> = s
        .members()
        .filter(|(m, _, _)| matches!(m, Member::IpPort { port: 443, .. }))
        .map(|(m, _, _)| m.display(SetKind::HashIpPort))
        .collect();
    assert_eq!(listed, ["172.27.20.20,unspec:443"]);
}

#[test]
fn entry_errors_name_what_was_wrong() {
    let bad = |k: SetKind, v6: bool, e: &str, want: &str| {
        let err = parse_entry(k, v6, e).unwrap_err();
        assert_eq!(err.kind, AclErrorKind::Invalid);
        assert!(err.message.contains(want), "{e}: {err}");
    };
    bad(
        SetKind::HashNet,
        false,
        "10.0.0.300",
        "invalid IP address '10.0.0.300'",
    );
    bad(SetKind::HashNet, false, "10.0.0.0/33", "prefix length '33'");
    bad(SetKind::HashNet, false, "10.0.0.0/0", "1 or more");
    bad(
        SetKind::HashNet,
        false,
        "2001::1",
        "IPv6 but the set's family is inet",
    );
    bad(
        SetKind::HashNet,
        true,
        "10.0.0.1",
        "IPv4 but the set's family is inet6",
    );
    bad(SetKind::HashNet, false, "10.0.0.9-10.0.0.1", "comes before");
    bad(
        SetKind::HashNet,
        false,
        "10.0.0.1,tcp:80",
        "one address, prefix or range",
    );
    bad(
        SetKind::HashIpPort,
        false,
        "10.0.0.1,sctp:80",
        "unsupported protocol 'sctp'",
    );
    bad(
        SetKind::HashIpPort,
        false,
        "10.0.0.1,tcp:70000",
        "invalid port '70000'",
    );
    bad(
        SetKind::HashIpPort,
        false,
        "10.0.0.1,tcp:90-80",
        "invalid port range",
    );
    bad(
        SetKind::HashIpPort,
        false,
        "10.0.0.0/24,0-1000",
        "expands to 256256",
    );
    bad(SetKind::HashIp, false, "", "empty");
    assert!("hash:mac"
        .parse::<SetKind>()
        .unwrap_err()
        .message
        .contains("hash:ip, hash:net"));
}

#[test]
fn set_changes_are_checked_before_anything_changes() {
    let mut s = set("hash:ip", false);
    add(&mut s, "10.0.0.1", false);
    let m = parse_entry(SetKind::HashIp, false, "10.0.0.0-10.0.0.3").unwrap();
    let e = s.add(&m, false, None, false).unwrap_err();
    assert_eq!(e.kind, AclErrorKind::Exists);
    assert!(
        e.message.contains("10.0.0.1 is already in ipset foo"),
        "{e}"
    );
    assert_eq!(s.len(), 1, "nothing added");
    assert_eq!(
        s.add(&m, false, None, true).unwrap(),
        3,
        "-F adds the others"
    );
    let e = s
        .del(
            &parse_entry(SetKind::HashIp, false, "10.0.0.9").unwrap(),
            false,
        )
        .unwrap_err();
    assert_eq!(e.kind, AclErrorKind::NotFound);
    let e = s.add(&m, true, None, true).unwrap_err();
    assert!(e.message.contains("nomatch is for hash:net"), "{e}");
    let mut small = IpSet::new(
        "small",
        SetKind::HashIp,
        SetOpts {
            maxelem: 2,
            ..SetOpts::default()
        },
        Arc::new(Hits::new(1)),
    )
    .unwrap();
    let e = small.add(&m, false, None, false).unwrap_err();
    assert_eq!(e.kind, AclErrorKind::Full);
    assert!(e.message.contains("maxelem 2"), "{e}");
    let e = small.add(&m[..1], false, Some("x"), false).unwrap_err();
    assert!(e.message.contains("without comment support"), "{e}");
    assert!(IpSet::new(
        "bad name",
        SetKind::HashIp,
        SetOpts::default(),
        Arc::new(Hits::new(1))
    )
    .is_err());
}

#[test]
fn net_table_index_agrees_with_plain_probing() {
    // Dense (short prefixes cover everything) and sparse (long prefixes
    // only, most addresses far from any entry).
    net_table_agrees(&[1, 8, 12, 16, 17, 20, 24, 28, 31, 32], true);
    net_table_agrees(&[20, 23, 24, 25, 28, 32], false);
}

/// A table past the index threshold answers as the plain probe does:
/// nested prefixes of `lens`, the ends of the address space (with `edges`,
/// /0 too), and every prefix's first and last address and their neighbours.
fn net_table_agrees(lens: &[u8], edges: bool) {
    let mut big = NetTable::new();
    let mut small = NetTable::new();
    let mut x = 0x1234_5678u32;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut nets = vec![
        (0, 32),
        (u32::MAX, 32),
        (0x0a0a_0a00, 24),
        (0x0a0a_0a0a, 32),
    ];
    if edges {
        nets.extend([
            (0u32, 0u8),
            (0xffff_0000, 16),
            (0x0a00_0000, 8),
            (0x0a0a_0000, 16),
        ]);
    }
    for i in 0..5000usize {
        nets.push((next(), lens[i % lens.len()]));
    }
    let mut probes = Vec::new();
    for (i, (n, plen)) in nets.iter().enumerate() {
        let addr = super::entry::network(&Addr::from_v4_bytes(n.to_be_bytes()), *plen);
        big.insert(&addr, *plen, i as u32);
        small.insert(&addr, *plen, i as u32);
        let lo = addr.v4_u32();
        let hi = lo | !u32::MAX.checked_shl(u32::from(32 - plen)).unwrap_or(0);
        probes.extend([lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)]);
    }
    big.reindex();
    assert!(
        big.heap_bytes() > small.heap_bytes(),
        "the big one has its index"
    );
    probes.extend((0..200_000).map(|_| next()));
    for q in probes {
        let q = Addr::from_v4_bytes(q.to_be_bytes());
        // `small` was never reindexed: it probes every length.
        assert_eq!(big.lookup(&q), small.lookup(&q), "{q}");
    }
    if !edges {
        return;
    }
    let probe = Addr::v4(1, 2, 3, 4);
    big.insert(&probe, 32, 7);
    big.reindex();
    assert_eq!(big.lookup(&probe), Some(7));
    big.remove(&Addr::v4(0, 0, 0, 0), 0);
    big.reindex();
    small.remove(&Addr::v4(0, 0, 0, 0), 0);
    let q = Addr::v4(203, 0, 113, 1);
    assert_eq!(big.lookup(&q), small.lookup(&q));
}

fn hits() -> Arc<Hits> {
    Arc::new(Hits::new(2))
}

fn lists(deny: Vec<Target>, allow: Vec<Target>) -> Arc<Lists> {
    Arc::new(Lists {
        deny: RuleList::new(deny.into_iter().map(|t| (t, hits()))),
        allow: RuleList::new(allow.into_iter().map(|t| (t, hits()))),
        rejected: hits(),
    })
}

#[test]
fn deny_wins_and_whitelist_admits_only_listed_sources() {
    let mut s = set("hash:net", false);
    add(&mut s, "10.1.0.0/16", false);
    let s = Arc::new(s);
    let host = |x: &str| Target::Net(a(x), 32);
    // Service 7: whitelist 10.1/16 (by set) and 10.2.0.5; blacklist 10.1.2.3.
    let svc = lists(
        vec![host("10.1.2.3")],
        vec![Target::Set(s.clone()), host("10.2.0.5")],
    );
    let acl = Acl::new(None, &[(7, svc.clone())], &[3, 7]);
    let chk = |svc: usize, src: &str| acl.check(svc, &a(src), proto::TCP, 80, 0);
    assert_eq!(chk(1, "10.1.9.9"), Ok(()));
    assert_eq!(chk(1, "10.9.9.9"), Err(DropReason::AclNotAllowed));
    assert_eq!(chk(1, "10.2.0.5"), Ok(()));
    assert_eq!(chk(1, "10.1.2.3"), Err(DropReason::AclDeny), "deny wins");
    assert_eq!(chk(0, "10.9.9.9"), Ok(()), "service 3 has no list");
    assert_eq!(svc.rejected.sum(), 1);
    assert_eq!(s.hits().sum(), 1, "the set admitted 10.1.9.9");

    // A global blacklist applies to every service; a global whitelist too,
    // joined with a service's own.
    let global = lists(
        vec![Target::Net(a("192.0.2.0"), 24)],
        vec![host("10.3.0.1")],
    );
    let acl = Acl::new(Some(global.clone()), &[(7, svc)], &[3, 7]);
    let chk = |svc: usize, src: &str| acl.check(svc, &a(src), proto::TCP, 80, 1);
    assert_eq!(chk(0, "192.0.2.77"), Err(DropReason::AclDeny));
    assert_eq!(chk(0, "10.9.9.9"), Err(DropReason::AclNotAllowed));
    assert_eq!(chk(0, "10.3.0.1"), Ok(()));
    assert_eq!(chk(1, "10.3.0.1"), Ok(()), "globally allowed");
    assert_eq!(chk(1, "10.1.0.1"), Ok(()));
    assert_eq!(global.rejected.sum(), 1);
    assert!(Acl::new(None, &[], &[1]).is_empty());
}

#[test]
fn an_empty_set_in_a_whitelist_admits_nobody() {
    // DPVS: once attached to a service, an empty ipset whitelist denies all.
    let s = Arc::new(set("hash:ip", false));
    let acl = Acl::new(None, &[(1, lists(vec![], vec![Target::Set(s)]))], &[1]);
    assert_eq!(
        acl.check(0, &a("10.0.0.1"), proto::UDP, 53, 0),
        Err(DropReason::AclNotAllowed)
    );
}

#[test]
fn subjects_parse_and_print_as_listed() {
    for (s, shown) in [
        ("10.0.0.1", "10.0.0.1"),
        ("10.0.0.77/24", "10.0.0.0/24"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:db8::1/64", "2001:db8::/64"),
        ("ipset:bad_guys", "ipset:bad_guys"),
    ] {
        assert_eq!(Subject::parse(s).unwrap().to_string(), shown);
    }
    for (s, want) in [
        ("10.0.0", "expected IP, IP/PLEN or ipset:NAME"),
        ("10.0.0.1/40", "prefix length '40'"),
        ("ipset:", "invalid ipset name"),
        ("ipset:a b", "invalid ipset name"),
    ] {
        let e = Subject::parse(s).unwrap_err();
        assert!(e.message.contains(want), "{s}: {e}");
    }
}

#[test]
fn large_and_small_deny_sets_deny_every_member_and_only_them() {
    // The snapshot-wide /24 prefilter must cover every kind of rule.
    let mut big = set("hash:net", false);
    let mut x = 0x2545_f491u32;
    let mut members = Vec::new();
    for _ in 0..3000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let addr = Addr::from_v4_bytes(x.to_be_bytes());
        let m = super::entry::network(&addr, 28);
        if big
            .add(&[Member::Net { addr: m, plen: 28 }], false, None, true)
            .unwrap()
            == 1
        {
            members.push(m);
        }
    }
    big.finish();
    let mut ports = set("hash:ip,port", false);
    add(&mut ports, "203.0.113.9,tcp:80", false);
    add(&mut ports, "10.1.2.3,tcp:80", false);
    let (big, ports) = (Arc::new(big), Arc::new(ports));
    let deny = vec![
        Target::Set(big.clone()),
        Target::Set(ports),
        Target::Net(a("198.51.100.0"), 24),
        Target::Net(a("10.0.0.0"), 8),
        Target::Net(a("2001:db8::"), 32),
    ];
    let acl = Acl::new(Some(lists(deny, vec![])), &[], &[1]);
    let chk = |src: Addr| acl.check(0, &src, proto::TCP, 80, 0);
    for m in &members {
        assert_eq!(chk(*m), Err(DropReason::AclDeny), "{m}");
        assert_eq!(
            chk(Addr::from_u128(m.as_u128() + 15)),
            Err(DropReason::AclDeny)
        );
    }
    assert_eq!(chk(a("203.0.113.9")), Err(DropReason::AclDeny));
    assert_eq!(chk(a("198.51.100.200")), Err(DropReason::AclDeny));
    assert_eq!(
        chk(a("10.200.0.1")),
        Err(DropReason::AclDeny),
        "nested in 10/8"
    );
    assert_eq!(chk(a("2001:db8::5")), Err(DropReason::AclDeny));
    assert_eq!(acl.check(0, &a("203.0.113.9"), proto::TCP, 81, 0), Ok(()));
    let mut passed = 0;
    for i in 0..100_000u32 {
        let q = Addr::from_v4_bytes(i.wrapping_mul(2_654_435_761).to_be_bytes());
        if !big.matches(&q, proto::TCP, 80) && chk(q).is_ok() {
            passed += 1;
        }
    }
    assert!(passed > 90_000, "{passed}");
}

#[test]
fn a_single_large_set_is_its_own_deny_index_nomatch_included() {
    // The snapshot's deny index is then the set's own: its nomatch
    // exceptions must pass, its members be refused.
    let mut big = set("hash:net", false);
    let nets: Vec<Member> = (0..2000u32)
        .map(|i| Member::Net {
            addr: Addr::v4(10, (i >> 8) as u8, (i & 255) as u8, 0),
            plen: 24,
        })
        .collect();
    big.add(&nets, false, None, false).unwrap();
    add(&mut big, "10.0.5.7", true);
    let big = Arc::new(big);
    let acl = Acl::new(
        Some(lists(vec![Target::Set(big.clone())], vec![])),
        &[],
        &[1],
    );
    let chk = |src: &str| acl.check(0, &a(src), proto::TCP, 80, 0);
    assert_eq!(chk("10.0.5.8"), Err(DropReason::AclDeny));
    assert_eq!(chk("10.7.207.1"), Err(DropReason::AclDeny));
    assert_eq!(chk("10.0.5.7"), Ok(()), "nomatch exception");
    assert_eq!(chk("10.7.208.1"), Ok(()));
    assert_eq!(chk("11.0.0.1"), Ok(()));
    // With an address rule beside it (here in a service's list), the index
    // is the union.
    let own = lists(vec![Target::Net(a("192.0.2.1"), 32)], vec![]);
    let g = lists(vec![Target::Set(big)], vec![]);
    let acl = Acl::new(Some(g), &[(1, own)], &[1]);
    assert_eq!(
        acl.check(0, &a("192.0.2.1"), proto::TCP, 80, 0),
        Err(DropReason::AclDeny)
    );
    assert_eq!(
        acl.check(0, &a("10.0.0.1"), proto::TCP, 80, 0),
        Err(DropReason::AclDeny)
    );
}

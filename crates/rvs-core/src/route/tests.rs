use super::*;
use std::collections::HashSet;

use crate::lab::Rng;

fn a(s: &str) -> Addr {
    s.parse().unwrap()
}

fn route(prefix: &str, plen: u8, port: PortId) -> Route {
    Route {
        prefix: a(prefix),
        plen,
        gateway: None,
        port,
        scope: Scope::Link,
        src: None,
        mtu: 1500,
        metric: 0,
    }
}

fn port_of(t: &RouteTable, dst: &str) -> Option<PortId> {
    t.lookup(&a(dst)).map(|r| r.port)
}

#[test]
fn lpm_picks_the_longest_prefix() {
    let mut t = RouteTable::new();
    t.add(route("10.0.0.0", 8, 1)).unwrap();
    t.add(route("10.1.2.3", 32, 4)).unwrap();
    t.add(route("10.1.0.0", 16, 2)).unwrap();
    t.add(route("10.1.2.0", 24, 3)).unwrap();
    assert_eq!(port_of(&t, "10.9.9.9"), Some(1));
    assert_eq!(port_of(&t, "10.1.9.9"), Some(2));
    assert_eq!(port_of(&t, "10.1.2.4"), Some(3));
    assert_eq!(port_of(&t, "10.1.2.3"), Some(4));
    assert_eq!(port_of(&t, "11.1.2.3"), None);
    // 10.1.2.0/24 must not cover 10.1.3.0.
    assert_eq!(port_of(&t, "10.1.3.0"), Some(2));
    assert_eq!(t.len(), 4);
    assert!(!t.is_empty());
}

#[test]
fn odd_prefix_lengths_mask_the_right_bits() {
    let mut t = RouteTable::new();
    // 192.168.4.0/22 covers 192.168.4.0 .. 192.168.7.255.
    t.add(route("192.168.4.0", 22, 7)).unwrap();
    assert_eq!(port_of(&t, "192.168.3.255"), None);
    assert_eq!(port_of(&t, "192.168.4.0"), Some(7));
    assert_eq!(port_of(&t, "192.168.7.255"), Some(7));
    assert_eq!(port_of(&t, "192.168.8.0"), None);
    // 2001:db8::/33: the 33rd bit is the top bit of the third 16-bit group.
    t.add(route("2001:db8::", 33, 8)).unwrap();
    assert_eq!(port_of(&t, "2001:db8:7fff::1"), Some(8));
    assert_eq!(port_of(&t, "2001:db8:8000::1"), None);
}

#[test]
fn default_routes_per_family() {
    let mut t = RouteTable::new();
    assert!(t.is_empty());
    assert_eq!(port_of(&t, "1.2.3.4"), None);
    t.add(route("0.0.0.0", 0, 1)).unwrap();
    assert_eq!(port_of(&t, "1.2.3.4"), Some(1));
    assert_eq!(port_of(&t, "255.255.255.255"), Some(1));
    assert_eq!(port_of(&t, "0.0.0.0"), Some(1));
    assert_eq!(port_of(&t, "2001:db8::1"), None);
    // The IPv6 default is a different route from the IPv4 one.
    t.add(route("::", 0, 2)).unwrap();
    assert_eq!(port_of(&t, "2001:db8::1"), Some(2));
    assert_eq!(port_of(&t, "1.2.3.4"), Some(1));
    assert_eq!(t.len(), 2);
    assert_eq!(t.del(&a("0.0.0.0"), 0).unwrap().port, 1);
    assert_eq!(port_of(&t, "1.2.3.4"), None);
    assert_eq!(port_of(&t, "2001:db8::1"), Some(2));
}

#[test]
fn v4_never_matches_v6_and_back() {
    let mut t = RouteTable::new();
    t.add(route("::", 0, 6)).unwrap();
    // IPv4 destinations are stored as ::ffff:a.b.c.d, which ::/0 would cover in
    // a shared 128-bit space.
    assert_eq!(port_of(&t, "10.0.0.1"), None);
    assert_eq!(port_of(&t, "0.0.0.0"), None);
    let mut t = RouteTable::new();
    t.add(route("0.0.0.0", 0, 4)).unwrap();
    t.add(route("10.0.0.0", 8, 5)).unwrap();
    // An IPv6 address whose low 32 bits look like 10.0.0.1 (v4-compatible form).
    assert_eq!(port_of(&t, "::10.0.0.1"), None);
    assert_eq!(port_of(&t, "::"), None);
    assert_eq!(port_of(&t, "64:ff9b::10.0.0.1"), None);
}

#[test]
fn duplicate_add_is_exists_and_missing_del_is_not_found() {
    let mut t = RouteTable::new();
    t.add(route("10.0.0.0", 24, 1)).unwrap();
    assert_eq!(t.add(route("10.0.0.0", 24, 2)), Err(RouteError::Exists));
    // The original survives the rejected duplicate.
    assert_eq!(port_of(&t, "10.0.0.9"), Some(1));
    // Same address, other length: a different route.
    t.add(route("10.0.0.0", 16, 3)).unwrap();
    assert_eq!(t.del(&a("10.0.1.0"), 24), Err(RouteError::NotFound));
    assert_eq!(t.del(&a("10.0.0.0"), 25), Err(RouteError::NotFound));
    assert_eq!(t.del(&a("2001:db8::"), 32), Err(RouteError::NotFound));
    let removed = t.del(&a("10.0.0.0"), 24).unwrap();
    assert_eq!(removed, route("10.0.0.0", 24, 1));
    assert_eq!(t.del(&a("10.0.0.0"), 24), Err(RouteError::NotFound));
    assert_eq!(port_of(&t, "10.0.0.9"), Some(3));
    assert_eq!(t.get(&a("10.0.0.0"), 16).map(|r| r.port), Some(3));
    assert_eq!(t.get(&a("10.0.0.0"), 24), None);
    assert_eq!(RouteError::Exists.to_string(), "route already exists");
    assert_eq!(RouteError::NotFound.to_string(), "no such route");
}

fn bad_message(r: Result<(), RouteError>) -> String {
    match r {
        Err(RouteError::BadPrefix(m)) => m,
        other => panic!("expected BadPrefix, got {other:?}"),
    }
}

#[test]
fn bad_prefixes_are_rejected_with_a_message() {
    let mut t = RouteTable::new();
    let m = bad_message(t.add(route("10.0.0.0", 33, 1)));
    assert!(m.contains("0..=32"), "{m}");
    let m = bad_message(t.add(route("2001:db8::", 129, 1)));
    assert!(m.contains("0..=128"), "{m}");
    let m = bad_message(t.add(route("10.1.2.3", 24, 1)));
    assert!(m.contains("host bits"), "{m}");
    assert!(m.contains("10.1.2.0/24"), "{m}");
    let m = bad_message(t.add(route("2001:db8::1", 64, 1)));
    assert!(m.contains("2001:db8::/64"), "{m}");
    let mut r = route("10.0.0.0", 8, 1);
    r.gateway = Some(a("fe80::1"));
    let m = bad_message(t.add(r));
    assert!(m.contains("gateway fe80::1 is IPv6"), "{m}");
    let mut r = route("2001:db8::", 32, 1);
    r.src = Some(a("10.0.0.1"));
    let m = bad_message(t.add(r));
    assert!(m.contains("source 10.0.0.1 is IPv4"), "{m}");
    assert!(t.is_empty());
    let e = RouteError::BadPrefix("x".into()).to_string();
    assert_eq!(e, "bad route prefix: x");
    // del validates too, rather than silently not finding a malformed prefix.
    assert!(matches!(
        t.del(&a("10.0.0.1"), 8),
        Err(RouteError::BadPrefix(_))
    ));
}

#[test]
fn iter_is_longest_first_then_by_address_v4_before_v6() {
    let mut t = RouteTable::new();
    for (p, l) in [
        ("::", 0),
        ("10.0.0.0", 8),
        ("0.0.0.0", 0),
        ("10.2.0.0", 16),
        ("2001:db8::", 32),
        ("10.1.0.0", 16),
        ("10.1.2.3", 32),
    ] {
        t.add(route(p, l, 0)).unwrap();
    }
    let got: Vec<String> = t
        .iter()
        .map(|r| format!("{}/{}", r.prefix, r.plen))
        .collect();
    let want = [
        "10.1.2.3/32",
        "10.1.0.0/16",
        "10.2.0.0/16",
        "10.0.0.0/8",
        "0.0.0.0/0",
        "2001:db8::/32",
        "::/0",
    ];
    assert_eq!(got, want);
}

#[test]
fn scope_names_round_trip() {
    for (s, name) in [
        (Scope::Host, "host"),
        (Scope::Link, "link"),
        (Scope::Global, "global"),
        (Scope::KniHost, "kni_host"),
    ] {
        assert_eq!(s.to_string(), name);
        assert_eq!(name.parse::<Scope>(), Ok(s));
    }
    let e = "universe".parse::<Scope>().unwrap_err();
    assert!(e.to_string().contains("universe"));
}

#[test]
fn route_display_reads_like_dpip() {
    let mut r = route("0.0.0.0", 0, 1);
    r.gateway = Some(a("192.168.0.1"));
    r.scope = Scope::Global;
    assert_eq!(
        r.to_string(),
        "0.0.0.0/0 via 192.168.0.1 port 1 scope global mtu 1500 metric 0"
    );
}

/// Mask written independently of the implementation's `masked`.
fn mask32(plen: u8) -> u32 {
    if plen == 0 {
        0
    } else {
        !0u32 << (32 - u32::from(plen))
    }
}

#[test]
fn random_v4_table_agrees_with_linear_scan() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut t = RouteTable::new();
    // (network, plen, id): the reference is a plain list.
    let mut reference: Vec<(u32, u8, u16)> = Vec::new();
    let mut seen = HashSet::new();
    // Few first octets, so prefixes nest deeply and lengths compete.
    // Lengths 8..=32 keep random destinations outside those octets unrouted.
    let firsts = [10u32, 172, 192, 100];
    while reference.len() < 10_000 {
        let plen = 8 + rng.below(25) as u8;
        let raw = (firsts[rng.below(4) as usize] << 24) | (rng.next() as u32 & 0x00ff_ffff);
        let net = raw & mask32(plen);
        let id = reference.len() as u16;
        let res = t.add(route(&std::net::Ipv4Addr::from(net).to_string(), plen, id));
        if seen.insert((net, plen)) {
            assert_eq!(res, Ok(()));
            reference.push((net, plen, id));
        } else {
            assert_eq!(res, Err(RouteError::Exists));
        }
    }
    assert_eq!(t.len(), 10_000);
    // Longest first, so the scan can stop at the first hit.
    reference.sort_by_key(|r| std::cmp::Reverse(r.1));
    let mut hits = 0;
    for i in 0..100_000u32 {
        let dst = if i % 2 == 0 {
            rng.next() as u32
        } else {
            // Half the destinations sit inside a configured prefix.
            let (net, plen, _) = reference[rng.below(10_000) as usize];
            net | (rng.next() as u32 & !mask32(plen))
        };
        let want = reference
            .iter()
            .find(|&&(net, plen, _)| dst & mask32(plen) == net)
            .map(|&(_, _, id)| id);
        let got = t
            .lookup(&Addr::from_v4_bytes(dst.to_be_bytes()))
            .map(|r| r.port);
        assert_eq!(got, want, "dst {}", std::net::Ipv4Addr::from(dst));
        hits += usize::from(want.is_some());
    }
    // Both outcomes must have been exercised for the comparison to mean much.
    assert!(hits > 50_000 && hits < 100_000, "hits {hits}");
}

fn mask128(plen: u8) -> u128 {
    if plen == 0 {
        0
    } else {
        !0u128 << (128 - u32::from(plen))
    }
}

#[test]
fn random_v6_table_agrees_with_linear_scan() {
    let mut rng = Rng(0x0dd_ba11_cafe);
    let mut t = RouteTable::new();
    let mut reference: Vec<(u128, u8, u16)> = Vec::new();
    let mut seen = HashSet::new();
    while reference.len() < 2_000 {
        let plen = rng.below(129) as u8;
        let raw = (0x2001_0db8u128 << 96)
            | (u128::from(rng.below(4)) << 94)
            | ((u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 34);
        let net = raw & mask128(plen);
        let id = reference.len() as u16;
        let mut r = route("::", 0, id);
        r.prefix = Addr::from_u128(net);
        r.plen = plen;
        let res = t.add(r);
        if seen.insert((net, plen)) {
            assert_eq!(res, Ok(()));
            reference.push((net, plen, id));
        } else {
            assert_eq!(res, Err(RouteError::Exists));
        }
    }
    reference.sort_by_key(|r| std::cmp::Reverse(r.1));
    for i in 0..20_000u32 {
        let dst = if i % 2 == 0 {
            (0x2001_0db8u128 << 96) | (u128::from(rng.next()) << 32)
        } else {
            let (net, plen, _) = reference[rng.below(2_000) as usize];
            net | ((u128::from(rng.next()) << 64 | u128::from(rng.next())) & !mask128(plen))
        };
        let want = reference
            .iter()
            .find(|&&(net, plen, _)| dst & mask128(plen) == net)
            .map(|&(_, _, id)| id);
        let got = t.lookup(&Addr::from_u128(dst)).map(|r| r.port);
        assert_eq!(got, want, "dst {}", Addr::from_u128(dst));
    }
}

/// Rough per-lookup cost; run with
/// `cargo test -p rvs-core --release route::tests::lookup_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn lookup_speed() {
    let mut rng = Rng(42);
    let mut t = RouteTable::new();
    for plen in [32u8, 24, 16, 8] {
        for _ in 0..2_000 {
            let net = (rng.next() as u32) & mask32(plen);
            let _ = t.add(route(&std::net::Ipv4Addr::from(net).to_string(), plen, 1));
        }
    }
    t.add(route("0.0.0.0", 0, 0)).unwrap();
    let dsts: Vec<Addr> = (0..1_000_000)
        .map(|_| Addr::from_v4_bytes((rng.next() as u32).to_be_bytes()))
        .collect();
    let start = std::time::Instant::now();
    let mut sum = 0u64;
    for d in &dsts {
        sum += u64::from(t.lookup(d).map_or(0, |r| r.port));
    }
    let ns = start.elapsed().as_nanos() as f64 / dsts.len() as f64;
    println!("{ns:.1} ns/lookup over 5 lengths (sum {sum})");
}

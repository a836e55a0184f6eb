//! `Store::to_requests` and `Store::fingerprint`: a store rebuilt from the
//! requests on a fresh store has the same fingerprint and lists the same,
//! every planned request is accepted, and the fingerprint tells any single
//! change (see `fingerprint.rs`).

use rvs_api::{
    AclKind, AclRule, Family, IpsetEntry, IpsetSpec, LimitSet, Limits, ProxyProtocol, RateLimit,
    Request, ServiceKey, ServiceSpec,
};

use super::*;

pub(super) fn spec(key: &ServiceKey, sched: &str) -> ServiceSpec {
    ServiceSpec {
        key: key.clone(),
        sched: sched.into(),
        persistence: None,
        sched_flags: Vec::new(),
        synproxy: None,
        proxy_protocol: None,
    }
}

pub(super) fn udp(vip: &str, port: u16) -> ServiceKey {
    ServiceKey::Vs {
        proto: Proto::Udp,
        vip: ip(vip),
        port,
    }
}

pub(super) fn snat() -> ServiceKey {
    ServiceKey::Match("proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1".into())
}

pub(super) fn acl(kind: AclKind, key: Option<&ServiceKey>, subject: &str) -> Request {
    Request::AddAcl {
        rule: AclRule {
            kind,
            key: key.cloned(),
            subject: subject.into(),
        },
    }
}

pub(super) fn set_create(name: &str, kind: &str, family: Family, comment: bool) -> Request {
    Request::IpsetCreate {
        spec: IpsetSpec {
            name: name.into(),
            kind: kind.into(),
            family,
            hashsize: Some(256),
            maxelem: Some(1000),
            comment,
        },
    }
}

pub(super) fn entry(e: &str, nomatch: bool, comment: Option<&str>) -> IpsetEntry {
    IpsetEntry {
        entry: e.into(),
        nomatch,
        comment: comment.map(str::to_string),
    }
}

pub(super) fn set_add(name: &str, entries: Vec<IpsetEntry>) -> Request {
    Request::IpsetAdd {
        name: name.into(),
        entries,
        force: false,
    }
}

pub(super) fn neigh(a: &str, mac: &str, dev: &str) -> Request {
    Request::AddNeigh {
        addr: ip(a),
        mac: mac.into(),
        dev: dev.into(),
    }
}

pub(super) fn limits() -> Limits {
    Limits {
        service: LimitSet {
            conn_rate: Some(RateLimit {
                rate: 1000,
                burst: 50,
            }),
            bit_rate: Some(RateLimit {
                rate: 8_000_000,
                burst: 0,
            }),
            ..LimitSet::default()
        },
        source: LimitSet {
            max_conns: Some(10),
            pkt_rate: Some(RateLimit {
                rate: 100,
                burst: 0,
            }),
            ..LimitSet::default()
        },
        src_prefix_v4: Some(24),
        src_prefix_v6: Some(64),
    }
}

/// A configuration touching every kind of state, with a history that makes
/// the order matter: local addresses re-added in another order (the plan
/// needs its holder service), an on-link route handed to another address,
/// an automatic route deleted, a static route made before the address whose
/// automatic route it blocks, and a gateway whose on-link route went.
pub(super) fn rich() -> Vec<Request> {
    let web = tcp("10.0.0.100", 80);
    let tls = tcp("10.0.0.100", 443);
    let dns = udp("10.0.0.101", 53);
    let v6 = tcp("2001:db8::100", 80);
    let mut persistent = spec(&tls, "sh");
    persistent.persistence = Some(300);
    persistent.sched_flags = vec!["sh-port".into(), "sh-fallback".into()];
    persistent.proxy_protocol = Some(ProxyProtocol::V2);
    let mut sp = spec(&web, "wrr");
    sp.synproxy = Some(true);
    let mut thresholds = dest("192.168.100.5", 443, 3, Forward::Fnat);
    thresholds.u_threshold = 100;
    thresholds.l_threshold = 10;
    vec![
        set_create("bad", "hash:net", Family::Inet, true),
        set_add(
            "bad",
            vec![
                entry("198.51.100.0/24", false, Some("a \"quoted\" comment")),
                entry("198.51.100.128/25", true, None),
                entry("203.0.113.1-203.0.113.6", false, None),
            ],
        ),
        set_create("all", "hash:net", Family::Inet, false),
        set_add("all", vec![entry("0.0.0.0-255.255.255.255", false, None)]),
        set_create("ports", "hash:ip,port", Family::Inet, false),
        set_add("ports", vec![entry("10.1.1.1,tcp:80-81", false, None)]),
        set_add("ports", vec![entry("10.1.1.2,udp:53", false, None)]),
        set_add("ports", vec![entry("10.1.1.3,7", false, None)]),
        set_create("good6", "hash:ip", Family::Inet6, false),
        set_add("good6", vec![entry("2001:db8::1-2001:db8::3", false, None)]),
        // A static route first: the address's on-link route is skipped.
        route_add("10.0.0.0", 16, None, "dpdk1", None),
        addr_add("10.0.0.100", 32, "dpdk1", false),
        addr_add("192.168.100.1", 24, "dpdk0", true),
        addr_add("192.168.100.9", 24, "dpdk0", false),
        addr_add("2001:db8::100", 64, "dpdk1", false),
        addr_add("172.16.0.1", 24, "dpdk1", false),
        route_add("0.0.0.0", 0, Some("172.16.0.254"), "dpdk1", None),
        route_add("192.168.200.0", 24, Some("192.168.100.254"), "dpdk0", None),
        route_add("10.0.0.5", 32, None, "dpdk1", Some(Scope::KniHost)),
        Request::AddRoute {
            route: RouteSpec {
                prefix: ip("10.8.0.0"),
                plen: 16,
                via: None,
                dev: "dpdk0".into(),
                scope: None,
                src: Some(ip("192.168.100.1")),
                mtu: Some(1400),
                metric: 7,
            },
        },
        // The default route's on-link route goes: its gateway is lent one.
        Request::DelRoute {
            prefix: ip("172.16.0.0"),
            plen: 24,
        },
        // The on-link route of 192.168.100.0/24 passes to .9.
        Request::DelAddr {
            addr: ip("192.168.100.1"),
            dev: "dpdk0".into(),
        },
        addr_add("192.168.100.1", 24, "dpdk0", true),
        // A deleted automatic host route stays deleted.
        Request::DelRoute {
            prefix: ip("192.168.100.9"),
            plen: 32,
        },
        Request::AddService { spec: sp },
        Request::AddService { spec: persistent },
        svc_add(&dns, "lc"),
        svc_add(&v6, "wlc"),
        svc_add(&snat(), "rr"),
        dest_add(&web, dest("192.168.100.2", 80, 2, Forward::Fnat)),
        dest_add(&web, dest("192.168.100.3", 8080, 1, Forward::Nat)),
        dest_add(&tls, thresholds),
        dest_add(&tls, dest("192.168.100.6", 443, 0, Forward::Dr)),
        dest_add(&dns, dest("192.168.100.7", 53, 1, Forward::Tunnel)),
        dest_add(&v6, dest("2001:db8:1::2", 80, 1, Forward::Fnat)),
        dest_add(&snat(), dest("10.0.0.100", 0, 1, Forward::Snat)),
        Request::EditDest {
            key: web.clone(),
            dest: dest("192.168.100.2", 80, 5, Forward::Fnat),
        },
        // .201 is created by tls, then web takes it after .200 and tls lets it
        // go: the address comes before .200, web lists it after (a holder).
        laddr_add(&tls, "192.168.100.201", "dpdk0"),
        laddr_add(&web, "192.168.100.200", "dpdk0"),
        laddr_add(&web, "192.168.100.201", "dpdk0"),
        laddr_add(&tls, "192.168.100.1", "dpdk0"),
        laddr_add(&v6, "2001:db8:1::200", "dpdk0"),
        Request::DelLaddr {
            key: tls.clone(),
            addr: ip("192.168.100.201"),
            dev: "dpdk0".into(),
        },
        neigh("192.168.100.2", "52:54:00:00:00:02", "dpdk0"),
        neigh("2001:db8::7", "52:54:00:00:00:07", "dpdk1"),
        Request::SetAddrStandby {
            addrs: vec![ip("192.168.100.200"), ip("10.9.9.9")],
            standby: true,
        },
        Request::SetLimits {
            key: web.clone(),
            limits: limits(),
        },
        acl(AclKind::Blklst, None, "ipset:bad"),
        acl(AclKind::Blklst, None, "203.0.113.99"),
        acl(AclKind::Whtlst, Some(&web), "10.0.0.0/8"),
        acl(AclKind::Whtlst, Some(&web), "ipset:all"),
        acl(AclKind::Blklst, Some(&tls), "ipset:ports"),
        acl(AclKind::Whtlst, Some(&v6), "ipset:good6"),
        addr_add("10.0.0.103", 32, "dpdk1", false),
    ]
}

/// Everything the tools list, counters included (zero on both sides), but
/// a set's memory size (its tables' capacity depends on its history).
pub(super) fn listings(s: &Store) -> String {
    let sets = s.ipset_list(None, true).map(|mut v| {
        v.iter_mut().for_each(|i| i.size = 0);
        v
    });
    format!(
        "{}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        fingerprint(s).split_once('\n').map_or("", |(_, rest)| rest),
        s.list_limits(None),
        s.list_acl(AclKind::Blklst, None),
        s.list_acl(AclKind::Whtlst, None),
        sets,
        s.snapshot().services.len()
    )
}

/// Applies `s.to_requests()` to a fresh store, every request accepted.
#[track_caller]
pub(super) fn rebuilt(s: &Store) -> Store {
    let mut fresh = store();
    for r in s.to_requests() {
        if let Err(e) = fresh.apply(&r) {
            panic!("to_requests produced a request the store refuses: {r:?}: {e}");
        }
    }
    fresh
}

#[track_caller]
pub(super) fn assert_same(a: &Store, b: &Store) {
    assert_eq!(a.canonical(), b.canonical());
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(listings(a), listings(b));
}

#[test]
fn the_requests_rebuild_the_same_store() {
    let mut s = store();
    run(&mut s, &rich());
    let b = rebuilt(&s);
    assert_same(&s, &b);
    // The history's traces are all there, through the listings.
    let routes = route_show(&s);
    assert!(
        !routes
            .iter()
            .any(|r| r.starts_with("inet 192.168.100.9/32")),
        "{routes:?}"
    );
    assert!(routes
        .iter()
        .any(|r| r.starts_with("inet 0.0.0.0/0 via 172.16.0.254")));
    assert!(!routes.iter().any(|r| r.starts_with("inet 172.16.0.0/24")));
    let g = ipvsadm_g(&b);
    let web = g.iter().position(|l| l == "10.0.0.100:80 2").expect("web");
    assert_eq!(
        g[web + 1..web + 3],
        ["192.168.100.200 0 0", "192.168.100.201 0 0"]
    );
    let a = addr_show(&b);
    let at = |x: &str| a.iter().position(|l| l.starts_with(x)).expect(x);
    assert!(
        at("inet 192.168.100.201/32") < at("inet 192.168.100.200/32"),
        "{a:?}"
    );
    // And the requests stay what they are after one more round.
    assert_eq!(b.to_requests(), s.to_requests());
}

#[test]
fn the_plan_uses_a_holder_placeholders_and_a_lent_gateway_only_when_needed() {
    let mut s = store();
    run(&mut s, &rich());
    let reqs = s.to_requests();
    let holder =
        |r: &Request| matches!(r, Request::AddService { spec } if spec.key == tcp("192.0.2.1", 1));
    assert_eq!(reqs.iter().filter(|r| holder(r)).count(), 1, "{reqs:#?}");
    assert!(reqs.iter().any(|r| matches!(r,
        Request::DelRoute { prefix, plen: 24 } if *prefix == ip("172.16.0.0"))));
    // The tutorial's script needs none of them: it comes back as it went in.
    let mut t = store();
    run(&mut t, &fnat_two_arm());
    let plain = t.to_requests();
    assert!(!plain
        .iter()
        .any(|r| holder(r) || matches!(r, Request::DelRoute { .. })));
    assert_eq!(plain.len(), fnat_two_arm().len());
    assert_same(&t, &rebuilt(&t));
}

#[test]
fn an_empty_store_is_no_requests() {
    let s = store();
    assert!(s.to_requests().is_empty());
    assert_eq!(s.fingerprint(), store().fingerprint());
}

#[test]
fn requests_survive_json() {
    let mut s = store();
    run(&mut s, &rich());
    for r in s.to_requests() {
        let line = rvs_api::encode_request(&r);
        assert_eq!(rvs_api::decode_request(line.trim()).unwrap(), r);
    }
}

#[test]
fn a_large_ipset_goes_in_batches() {
    let mut s = store();
    let entries: Vec<IpsetEntry> = (0..5000u32)
        .map(|i| {
            entry(
                &std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string(),
                false,
                None,
            )
        })
        .collect();
    let mut create = set_create("big", "hash:ip", Family::Inet, false);
    if let Request::IpsetCreate { spec } = &mut create {
        spec.maxelem = None;
    }
    run(&mut s, &[create, set_add("big", entries)]);
    let reqs = s.to_requests();
    assert_eq!(reqs.len(), 3, "create and two batches");
    assert_same(&s, &rebuilt(&s));
}

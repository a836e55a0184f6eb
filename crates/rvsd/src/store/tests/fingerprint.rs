//! The fingerprint tells every single change of configuration, ignores
//! counters and the order of changes where order is not state, and random
//! histories come back whole through `to_requests`.

use rvs_api::{AclKind, AclRule, Family, Limits, ProxyProtocol, Request, ServiceKey};

use super::save::{acl, entry, neigh, rebuilt, rich, set_add, set_create, spec};
use super::*;

/// Which kind of configuration a request changes (`None`: it changes none:
/// a read, counters, or state the store does not hold). No wildcard: a new
/// request must be classified, and a new kind of configuration must be
/// added to [`KINDS`] and get a case in `every_single_change_changes_the_fingerprint`.
fn kind(r: &Request) -> Option<&'static str> {
    match r {
        Request::AddService { .. } => Some("add service"),
        Request::EditService { .. } => Some("edit service"),
        Request::DelService { .. } => Some("del service"),
        Request::Clear => Some("clear"),
        Request::AddDest { .. } => Some("add dest"),
        Request::EditDest { .. } => Some("edit dest"),
        Request::DelDest { .. } => Some("del dest"),
        Request::AddLaddr { .. } => Some("add laddr"),
        Request::DelLaddr { .. } => Some("del laddr"),
        Request::AddAddr { .. } => Some("add addr"),
        Request::DelAddr { .. } => Some("del addr"),
        Request::SetAddrStandby { .. } => Some("standby"),
        Request::AddRoute { .. } => Some("add route"),
        Request::DelRoute { .. } => Some("del route"),
        Request::AddNeigh { .. } => Some("add neigh"),
        Request::DelNeigh { .. } => Some("del neigh"),
        Request::SetLimits { .. } => Some("limits"),
        Request::AddAcl { .. } => Some("add acl"),
        Request::DelAcl { .. } => Some("del acl"),
        Request::IpsetCreate { .. } => Some("ipset create"),
        Request::IpsetDestroy { .. } => Some("ipset destroy"),
        Request::IpsetAdd { .. } => Some("ipset add"),
        Request::IpsetDel { .. } => Some("ipset del"),
        Request::IpsetFlush { .. } => Some("ipset flush"),
        Request::AddVlan { .. } => Some("add vlan"),
        Request::DelVlan { .. } => Some("del vlan"),
        // Counters only.
        Request::Zero { .. } => None,
        // Held by the control plane and its sync daemons, not the store.
        Request::StartDaemon { .. } | Request::StopDaemon { .. } | Request::Reload => None,
        Request::Status
        | Request::ListServices { .. }
        | Request::ListLaddrs { .. }
        | Request::ListConns { .. }
        | Request::ListConnPage { .. }
        | Request::ListAddrs { .. }
        | Request::ListRoutes
        | Request::ListNeigh { .. }
        | Request::ListLinks { .. }
        | Request::ListDaemon
        | Request::ListLimits { .. }
        | Request::ListAcl { .. }
        | Request::IpsetList { .. }
        | Request::IpsetTest { .. }
        | Request::Capture { .. }
        | Request::Takeover { .. }
        | Request::ListVlans { .. } => None,
    }
}

/// Every kind of configuration [`kind`] names.
const KINDS: [&str; 26] = [
    "add service",
    "edit service",
    "del service",
    "clear",
    "add dest",
    "edit dest",
    "del dest",
    "add laddr",
    "del laddr",
    "add addr",
    "del addr",
    "standby",
    "add route",
    "del route",
    "add neigh",
    "del neigh",
    "limits",
    "add acl",
    "del acl",
    "ipset create",
    "ipset destroy",
    "ipset add",
    "ipset del",
    "ipset flush",
    "add vlan",
    "del vlan",
];

fn web() -> ServiceKey {
    tcp("10.0.0.100", 80)
}

fn tls() -> ServiceKey {
    tcp("10.0.0.100", 443)
}

fn edit(f: impl FnOnce(&mut rvs_api::ServiceSpec)) -> Request {
    let mut s = spec(&web(), "wrr");
    s.synproxy = Some(true);
    f(&mut s);
    Request::EditService { spec: s }
}

fn del_laddr(key: ServiceKey, a: &str) -> Request {
    Request::DelLaddr {
        key,
        addr: ip(a),
        dev: "dpdk0".into(),
    }
}

fn del_acl(kind: AclKind, key: Option<ServiceKey>, subject: &str) -> Request {
    Request::DelAcl {
        rule: AclRule {
            kind,
            key,
            subject: subject.into(),
        },
    }
}

fn del_route(prefix: &str, plen: u8) -> Request {
    Request::DelRoute {
        prefix: ip(prefix),
        plen,
    }
}

/// Single changes on top of [`rich`], each by a request of some kind.
fn changes() -> Vec<(&'static str, Vec<Request>)> {
    let d2 = dest("192.168.100.2", 80, 5, Forward::Fnat);
    let mut lim = super::save::limits();
    lim.src_prefix_v6 = Some(56);
    vec![
        ("a service", vec![svc_add(&tcp("10.0.0.100", 8080), "rr")]),
        ("the scheduler", vec![edit(|s| s.sched = "rr".into())]),
        ("persistence", vec![edit(|s| s.persistence = Some(60))]),
        ("synproxy off", vec![edit(|s| s.synproxy = Some(false))]),
        (
            "proxy protocol",
            vec![edit(|s| s.proxy_protocol = Some(ProxyProtocol::V1))],
        ),
        ("sched flags", {
            let mut s = spec(&tls(), "sh");
            s.persistence = Some(300);
            s.sched_flags = vec!["sh-port".into()];
            vec![Request::EditService { spec: s }]
        }),
        ("service gone", vec![Request::DelService { key: tls() }]),
        ("everything gone", vec![Request::Clear]),
        (
            "a dest",
            vec![dest_add(
                &web(),
                dest("192.168.100.4", 80, 1, Forward::Fnat),
            )],
        ),
        (
            "a weight",
            vec![Request::EditDest {
                key: web(),
                dest: dest("192.168.100.2", 80, 6, Forward::Fnat),
            }],
        ),
        (
            "a forwarding",
            vec![Request::EditDest {
                key: web(),
                dest: dest("192.168.100.2", 80, 5, Forward::Nat),
            }],
        ),
        (
            "a threshold",
            vec![Request::EditDest {
                key: web(),
                dest: DestSpec {
                    u_threshold: 9,
                    ..d2.clone()
                },
            }],
        ),
        (
            "a dest gone",
            vec![Request::DelDest {
                key: web(),
                addr: ip("192.168.100.3"),
                port: 8080,
            }],
        ),
        (
            "dest order",
            vec![
                Request::DelDest {
                    key: web(),
                    addr: d2.addr,
                    port: 80,
                },
                dest_add(&web(), d2.clone()),
            ],
        ),
        (
            "a laddr",
            vec![laddr_add(&tls(), "192.168.100.202", "dpdk0")],
        ),
        ("a laddr gone", vec![del_laddr(web(), "192.168.100.201")]),
        (
            "laddr order",
            vec![
                del_laddr(web(), "192.168.100.200"),
                laddr_add(&web(), "192.168.100.200", "dpdk0"),
            ],
        ),
        (
            "an address",
            vec![addr_add("10.0.0.102", 32, "dpdk1", false)],
        ),
        (
            "an address gone",
            vec![Request::DelAddr {
                addr: ip("2001:db8::100"),
                dev: "dpdk1".into(),
            }],
        ),
        (
            "a route",
            vec![route_add(
                "10.7.0.0",
                16,
                Some("192.168.100.254"),
                "dpdk0",
                None,
            )],
        ),
        ("a route gone", vec![del_route("10.8.0.0", 16)]),
        ("an auto route gone", vec![del_route("10.0.0.100", 32)]),
        (
            "a route's mtu",
            vec![
                del_route("10.0.0.0", 16),
                Request::AddRoute {
                    route: RouteSpec {
                        mtu: Some(1400),
                        ..route_spec("10.0.0.0", 16)
                    },
                },
            ],
        ),
        (
            "a neighbour",
            vec![neigh("192.168.100.3", "52:54:00:00:00:03", "dpdk0")],
        ),
        (
            "a neighbour gone",
            vec![Request::DelNeigh {
                addr: ip("192.168.100.2"),
                dev: "dpdk0".into(),
            }],
        ),
        (
            "standby",
            vec![Request::SetAddrStandby {
                addrs: vec![ip("192.168.100.201")],
                standby: true,
            }],
        ),
        (
            "active",
            vec![Request::SetAddrStandby {
                addrs: vec![ip("10.9.9.9")],
                standby: false,
            }],
        ),
        (
            "limits",
            vec![Request::SetLimits {
                key: web(),
                limits: lim,
            }],
        ),
        (
            "limits gone",
            vec![Request::SetLimits {
                key: web(),
                limits: Limits::default(),
            }],
        ),
        ("a rule", vec![acl(AclKind::Whtlst, None, "10.1.0.0/16")]),
        (
            "a rule gone",
            vec![del_acl(AclKind::Blklst, None, "203.0.113.99")],
        ),
        (
            "rule order",
            vec![
                del_acl(AclKind::Whtlst, Some(web()), "10.0.0.0/8"),
                acl(AclKind::Whtlst, Some(&web()), "10.0.0.0/8"),
            ],
        ),
        (
            "a set",
            vec![set_create("new", "hash:ip", Family::Inet, false)],
        ),
        (
            "a set gone",
            vec![
                del_acl(AclKind::Blklst, Some(tls()), "ipset:ports"),
                Request::IpsetDestroy {
                    name: "ports".into(),
                },
            ],
        ),
        (
            "a member",
            vec![set_add("bad", vec![entry("192.0.2.0/24", false, None)])],
        ),
        (
            "a member gone",
            vec![Request::IpsetDel {
                name: "ports".into(),
                entries: vec!["10.1.1.3,7".into()],
                force: false,
            }],
        ),
        (
            "a comment",
            vec![Request::IpsetAdd {
                name: "bad".into(),
                entries: vec![entry("198.51.100.0/24", false, Some("other"))],
                force: true,
            }],
        ),
        (
            "nomatch",
            vec![Request::IpsetAdd {
                name: "bad".into(),
                entries: vec![entry("198.51.100.128/25", false, None)],
                force: true,
            }],
        ),
        (
            "a set flushed",
            vec![Request::IpsetFlush {
                name: Some("good6".into()),
            }],
        ),
        (
            "a VLAN device",
            vec![Request::AddVlan {
                spec: rvs_api::VlanSpec {
                    name: None,
                    link: "dpdk0".into(),
                    proto: rvs_api::VlanProto::Dot1q,
                    id: 7,
                },
            }],
        ),
        (
            "a VLAN device gone, its slot free",
            vec![
                Request::AddVlan {
                    spec: rvs_api::VlanSpec {
                        name: None,
                        link: "dpdk0".into(),
                        proto: rvs_api::VlanProto::Dot1q,
                        id: 7,
                    },
                },
                Request::AddVlan {
                    spec: rvs_api::VlanSpec {
                        name: None,
                        link: "dpdk1".into(),
                        proto: rvs_api::VlanProto::Dot1ad,
                        id: 8,
                    },
                },
                Request::DelVlan {
                    sel: rvs_api::VlanSel {
                        name: Some("dpdk0.7".into()),
                        ..Default::default()
                    },
                },
            ],
        ),
    ]
}

fn route_spec(prefix: &str, plen: u8) -> RouteSpec {
    RouteSpec {
        prefix: ip(prefix),
        plen,
        via: None,
        dev: "dpdk1".into(),
        scope: None,
        src: None,
        mtu: None,
        metric: 0,
    }
}

#[test]
fn every_single_change_changes_the_fingerprint() {
    let mut base = store();
    run(&mut base, &rich());
    let before = base.fingerprint();
    let mut seen: Vec<&str> = rich().iter().filter_map(kind).collect();
    for (what, reqs) in changes() {
        let mut s = store();
        run(&mut s, &rich());
        run(&mut s, &reqs);
        seen.extend(reqs.iter().filter_map(kind));
        assert_ne!(
            s.fingerprint(),
            before,
            "{what}: {reqs:?} left the fingerprint"
        );
        assert_ne!(s.canonical(), base.canonical(), "{what}");
        // And the changed store comes back whole too (the listings are
        // compared by the tests of `save.rs`).
        let b = rebuilt(&s);
        assert_eq!(s.canonical(), b.canonical(), "{what}");
        assert_eq!(s.fingerprint(), b.fingerprint(), "{what}");
    }
    for k in KINDS {
        assert!(seen.contains(&k), "no case changes configuration by '{k}'");
    }
    // A pool on an address alone, the address at the same place in the order.
    let readd = |sapool| {
        let mut s = store();
        run(&mut s, &rich());
        run(
            &mut s,
            &[
                Request::DelAddr {
                    addr: ip("10.0.0.103"),
                    dev: "dpdk1".into(),
                },
                addr_add("10.0.0.103", 32, "dpdk1", sapool),
            ],
        );
        s
    };
    assert_ne!(
        readd(false).fingerprint(),
        readd(true).fingerprint(),
        "sapool alone"
    );
}

#[test]
fn counters_and_change_order_are_not_configuration() {
    let mut a = store();
    run(&mut a, &rich());
    let fp = a.fingerprint();
    a.apply(&Request::Zero { key: None }).unwrap();
    a.sample_rates(1000);
    assert_eq!(a.fingerprint(), fp, "counters are not configuration");
    // Routes, standby marks and set members in another order: the same state.
    let mut b = store();
    let first = [
        route_add("10.7.0.0", 16, None, "dpdk0", None),
        route_add("10.6.0.0", 16, None, "dpdk0", None),
        Request::SetAddrStandby {
            addrs: vec![ip("10.1.0.1"), ip("10.1.0.2")],
            standby: true,
        },
        set_create("s", "hash:ip", Family::Inet, false),
        set_add(
            "s",
            vec![
                entry("10.2.0.1", false, None),
                entry("10.2.0.2", false, None),
            ],
        ),
    ];
    run(&mut b, &first);
    let mut c = store();
    run(
        &mut c,
        &[
            set_create("s", "hash:ip", Family::Inet, false),
            set_add("s", vec![entry("10.2.0.2", false, None)]),
            set_add("s", vec![entry("10.2.0.1", false, None)]),
            Request::SetAddrStandby {
                addrs: vec![ip("10.1.0.2")],
                standby: true,
            },
            Request::SetAddrStandby {
                addrs: vec![ip("10.1.0.1")],
                standby: true,
            },
            route_add("10.6.0.0", 16, None, "dpdk0", None),
            route_add("10.7.0.0", 16, None, "dpdk0", None),
        ],
    );
    assert_eq!(b.fingerprint(), c.fingerprint());
    // A configuration file's settings are not the API's state either.
    let mut d = store();
    run(&mut d, &first);
    d.set_timeouts(rvs_core::conn::tcp::Timeouts::default());
    assert_eq!(d.fingerprint(), b.fingerprint());
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }
}

/// One request of a small universe where everything collides: addresses
/// of a few networks, local addresses, routes with gateways, lists, sets.
fn random_request(g: &mut Rng) -> Request {
    const ADDRS: [&str; 8] = [
        "10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.1.2", "10.5.0.1", "10.5.0.2", "10.0.0.9",
        "10.6.0.1",
    ];
    const PLENS: [u8; 4] = [24, 32, 16, 23];
    const NETS: [(&str, u8); 6] = [
        ("10.0.0.0", 24),
        ("10.0.1.0", 24),
        ("10.0.0.1", 32),
        ("10.0.0.0", 16),
        ("0.0.0.0", 0),
        ("10.9.0.0", 16),
    ];
    const GWS: [Option<&str>; 4] = [
        None,
        Some("10.0.0.254"),
        Some("10.0.1.254"),
        Some("10.5.0.9"),
    ];
    const DEVS: [&str; 2] = ["dpdk0", "dpdk1"];
    let keys = [
        tcp("10.9.0.1", 80),
        tcp("10.9.0.2", 80),
        tcp("10.9.0.1", 443),
    ];
    let key = g.pick(&keys).clone();
    let a = *g.pick(&ADDRS);
    let dev = *g.pick(&DEVS);
    let (net, plen) = *g.pick(&NETS);
    match g.next() % 16 {
        0 | 1 => addr_add(a, *g.pick(&PLENS), dev, g.next().is_multiple_of(2)),
        2 => Request::DelAddr {
            addr: ip(a),
            dev: dev.into(),
        },
        3 | 4 => laddr_add(&key, a, dev),
        5 => Request::DelLaddr {
            key,
            addr: ip(a),
            dev: dev.into(),
        },
        6 => route_add(net, plen, *g.pick(&GWS), dev, None),
        7 => del_route(net, plen),
        8 => {
            let sched: &&str = g.pick(&["rr", "wlc"]);
            svc_add(&key, sched)
        }
        9 => Request::DelService { key },
        10 => dest_add(&key, dest(a, 80, (g.next() % 4) as u32, Forward::Fnat)),
        11 => {
            let mac: &&str = g.pick(&["52:54:00:00:00:01", "52:54:00:00:00:02"]);
            neigh(a, mac, dev)
        }
        12 => Request::SetAddrStandby {
            addrs: vec![ip(a)],
            standby: g.next().is_multiple_of(2),
        },
        13 => {
            let subjects = ["10.0.0.0/8", a, "ipset:s"];
            let subject: &&str = g.pick(&subjects);
            acl(
                *g.pick(&[AclKind::Blklst, AclKind::Whtlst]),
                *g.pick(&[None, Some(&key)]),
                subject,
            )
        }
        14 => match g.next() % 3 {
            0 => set_create("s", "hash:net", Family::Inet, false),
            1 => set_add(
                "s",
                vec![entry(&format!("{net}/{}", plen.max(1)), false, None)],
            ),
            _ => Request::IpsetDestroy { name: "s".into() },
        },
        _ => match g.next() % 8 {
            0 => Request::Clear,
            _ => del_acl(AclKind::Blklst, None, "10.0.0.0/8"),
        },
    }
}

#[test]
fn random_histories_come_back_whole() {
    let mut accepted = 0;
    for seed in 1..=300u64 {
        let mut g = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut s = store();
        for step in 0..60 {
            let r = random_request(&mut g);
            if s.apply(&r).is_ok() {
                accepted += 1;
            }
            if step % 20 == 19 {
                let b = rebuilt(&s);
                assert_eq!(s.canonical(), b.canonical(), "seed {seed} step {step}");
                assert_eq!(s.fingerprint(), b.fingerprint(), "seed {seed} step {step}");
            }
        }
    }
    assert!(
        accepted > 300 * 60 / 4,
        "too few accepted requests ({accepted}) to test anything"
    );
}

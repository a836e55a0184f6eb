//! What follows from changes: addresses brought by local addresses, routes
//! brought by addresses, clearing, steering inputs and timeouts.

use rvs_api::{Forward, Request};
use rvs_core::addr::Addr;
use rvs_core::conn::tcp::Timeouts;

use super::*;

fn a(s: &str) -> Addr {
    s.parse().expect("test address")
}

fn del_laddr(key: &ServiceKey, addr: &str, dev: &str) -> Request {
    Request::DelLaddr {
        key: key.clone(),
        addr: ip(addr),
        dev: dev.into(),
    }
}

#[test]
fn a_local_address_is_an_interface_address_until_its_last_service_lets_go() {
    let mut s = store();
    run(&mut s, &fnat_two_arm());
    let vs = tcp("10.0.0.100", 80);
    let other = tcp("10.0.0.100", 443);
    run(
        &mut s,
        &[
            svc_add(&other, "rr"),
            laddr_add(&other, "192.168.100.200", "dpdk0"),
        ],
    );
    run(&mut s, &[del_laddr(&vs, "192.168.100.200", "dpdk0")]);
    assert!(addr_show(&s).contains(&"inet 192.168.100.200/32 scope global dpdk0".to_string()));
    assert_eq!(
        ipvsadm_g(&s),
        ["10.0.0.100:80 0", "10.0.0.100:443 1", "192.168.100.200 0 0"]
    );
    run(&mut s, &[Request::DelService { key: other }]);
    assert_eq!(addr_show(&s), ["inet 10.0.0.100/32 scope global dpdk1"]);
    assert!(
        !route_show(&s).iter().any(|l| l.contains("192.168.100.200")),
        "its host route went with it"
    );
    let snap = s.snapshot();
    assert!(snap.if_addr(&a("192.168.100.200")).is_none());
    assert!(snap.pool_addrs().is_empty());
}

#[test]
fn an_explicit_address_outlives_its_use_as_local_address() {
    let mut s = store();
    let vs = tcp("10.0.0.100", 80);
    run(
        &mut s,
        &[
            addr_add("192.168.100.200", 24, "dpdk0", false),
            svc_add(&vs, "rr"),
            laddr_add(&vs, "192.168.100.200", "dpdk0"),
        ],
    );
    let l = s.list_addrs(None, |_| Some((1, 2, 3))).unwrap();
    assert_eq!(
        (l.len(), l[0].plen, l[0].sapool),
        (1, 24, Some((1, 2, 3))),
        "a LIP has a pool"
    );
    run(&mut s, &[del_laddr(&vs, "192.168.100.200", "dpdk0")]);
    let l = s.list_addrs(None, |_| Some((1, 2, 3))).unwrap();
    assert_eq!((l.len(), l[0].plen, l[0].sapool), (1, 24, None));
    assert_eq!(s.list_routes().len(), 2);
}

#[test]
fn del_addr_removes_the_routes_it_brought() {
    let mut s = store();
    run(
        &mut s,
        &[
            addr_add("192.168.100.1", 24, "dpdk0", false),
            addr_add("192.168.100.2", 24, "dpdk0", false),
            route_add("10.0.0.0", 16, None, "dpdk1", None),
        ],
    );
    let origins: Vec<(String, String)> = s
        .list_routes()
        .into_iter()
        .map(|r| (format!("{}/{}", r.route.prefix, r.route.plen), r.origin))
        .collect();
    let want = [
        ("192.168.100.1/32", "auto"),
        ("192.168.100.2/32", "auto"),
        ("192.168.100.0/24", "auto"),
        ("10.0.0.0/16", "static"),
    ];
    assert_eq!(origins, want.map(|(p, o)| (p.to_string(), o.to_string())));
    // The network stays while another address of it remains.
    run(
        &mut s,
        &[Request::DelAddr {
            addr: ip("192.168.100.1"),
            dev: "dpdk0".into(),
        }],
    );
    let routes: Vec<String> = s
        .list_routes()
        .iter()
        .map(|r| format!("{}/{}", r.route.prefix, r.route.plen))
        .collect();
    assert_eq!(
        routes,
        ["192.168.100.2/32", "192.168.100.0/24", "10.0.0.0/16"]
    );
    run(
        &mut s,
        &[Request::DelAddr {
            addr: ip("192.168.100.2"),
            dev: "dpdk0".into(),
        }],
    );
    assert_eq!(route_show(&s).len(), 1, "only the static route is left");
    assert!(s.snapshot().routes.lookup(&a("192.168.100.9")).is_none());
    // A deleted auto route is not resurrected by deleting its address.
    run(
        &mut s,
        &[
            addr_add("192.168.100.1", 24, "dpdk0", false),
            Request::DelRoute {
                prefix: ip("192.168.100.0"),
                plen: 24,
            },
            route_add("192.168.100.0", 24, None, "dpdk0", None),
            Request::DelAddr {
                addr: ip("192.168.100.1"),
                dev: "dpdk0".into(),
            },
        ],
    );
    let l = s.list_routes();
    assert_eq!(l.len(), 2, "{l:?}");
    assert!(l.iter().all(|r| r.origin == "static"));
}

#[test]
fn ipv6_addresses_get_host_and_network_routes() {
    let mut s = store();
    run(&mut s, &[addr_add("2001:db8::1", 64, "dpdk1", false)]);
    let l = s.list_routes();
    let got: Vec<(String, rvs_api::Scope)> = l
        .iter()
        .map(|r| (format!("{}/{}", r.route.prefix, r.route.plen), r.scope))
        .collect();
    assert_eq!(
        got,
        [
            ("2001:db8::1/128".to_string(), rvs_api::Scope::Host),
            ("2001:db8::/64".to_string(), rvs_api::Scope::Link),
        ]
    );
    let snap = s.snapshot();
    assert_eq!(
        snap.routes.lookup(&a("2001:db8::9")).map(|r| r.port),
        Some(1)
    );
}

#[test]
fn clear_removes_services_but_not_addresses_or_routes() {
    let mut s = store();
    run(&mut s, &fnat_two_arm());
    run(&mut s, &[Request::Clear]);
    assert!(s.list_services(None).unwrap().is_empty());
    assert_eq!(
        addr_show(&s),
        ["inet 10.0.0.100/32 scope global dpdk1"],
        "the LIP went with its service"
    );
    assert_eq!(route_show(&s).len(), 3);
    assert!(s.snapshot().services.is_empty());
    // Clearing nothing is fine, as with ipvsadm -C.
    run(&mut s, &[Request::Clear]);
}

#[test]
fn steering_lists_pool_and_nat_addresses() {
    let mut s = store();
    run(&mut s, &fnat_two_arm());
    let nat = tcp("10.0.0.100", 8080);
    let v6 = tcp("2001:db8::100", 80);
    run(
        &mut s,
        &[
            addr_add("10.0.0.1", 16, "dpdk1", true),
            svc_add(&nat, "wrr"),
            dest_add(&nat, dest("192.168.100.5", 8080, 1, Forward::Nat)),
            dest_add(&nat, dest("192.168.100.6", 8080, 1, Forward::Nat)),
            svc_add(&v6, "rr"),
            dest_add(&v6, dest("2001:db8:1::5", 80, 1, Forward::Nat)),
            laddr_add(&v6, "2001:db8:1::200", "dpdk0"),
        ],
    );
    let (pools, rs) = s.steering();
    // IPv6 too: without its local address, return traffic to an IPv6 LIP
    // reaches a worker by the client-side hash, not the one owning the port.
    assert_eq!(
        pools,
        [a("192.168.100.200"), a("10.0.0.1"), a("2001:db8:1::200")]
    );
    assert_eq!(
        rs,
        [a("192.168.100.5"), a("192.168.100.6"), a("2001:db8:1::5")]
    );
}

#[test]
fn timeouts_reach_the_snapshot() {
    let mut s = store();
    let g = s.generation();
    let t = Timeouts {
        established_ms: 5_000,
        ..Timeouts::default()
    };
    s.set_timeouts(t);
    assert_eq!(s.generation(), g + 1);
    let snap = s.snapshot();
    assert_eq!(snap.timeouts.established_ms, 5_000);
    assert_eq!(snap.generation, g + 1);
    assert_eq!(s.ports()[1].name, "dpdk1");
    assert_eq!(snap.ports[1].name, "dpdk1");
    assert_eq!(snap.workers, 2);
}

#[test]
fn pipeline_switches_reach_the_snapshot() {
    let mut s = store();
    assert!(s.snapshot().conf.toa, "TOA is on by default");
    let g = s.generation();
    s.set_pipeline_conf(rvs_core::snapshot::PipelineConf {
        toa: false,
        verify_l4_checksum: false,
        ..Default::default()
    });
    let snap = s.snapshot();
    assert_eq!(snap.generation, g + 1, "a reload is a new snapshot");
    assert!(!snap.conf.toa);
    assert!(!snap.conf.verify_l4_checksum);
}

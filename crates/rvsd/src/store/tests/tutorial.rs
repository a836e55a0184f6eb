//! The DPVS tutorial's sections, applied in its order, against its printed output.

use std::sync::Arc;

use rvs_api::{ErrorKind, Forward, Request, Scope};
use rvs_core::addr::{Addr, Mac};
use rvs_core::lab::FrameSpec;
use rvs_core::pipeline::{Packet, Verdict, Worker, WorkerConf};
use rvs_core::route::Scope as CoreScope;
use rvs_core::service::ServiceKey as CoreKey;
use rvs_core::wire::tcp::flags::SYN;

use super::*;

fn a(s: &str) -> Addr {
    s.parse().expect("test address")
}

#[test]
fn fnat_two_arm_matches_the_tutorial_output() {
    let mut s = store();
    run(&mut s, &fnat_two_arm());
    assert_eq!(s.generation(), 7, "one generation per command");

    assert_eq!(
        ipvsadm_ln(&s),
        [
            "TCP 10.0.0.100:80 rr",
            "-> 192.168.100.2:80 FullNat 1 0 0",
            "-> 192.168.100.3:80 FullNat 1 0 0",
        ]
    );
    assert_eq!(ipvsadm_g(&s), ["10.0.0.100:80 1", "192.168.100.200 0 0"]);
    let g = s.list_laddrs(None, |_| (0, SA_FREE, 0)).unwrap();
    assert_eq!(g[0].laddrs[0].dev, "dpdk0");
    assert_eq!(
        addr_show(&s),
        [
            "inet 10.0.0.100/32 scope global dpdk1",
            "inet 192.168.100.200/32 scope global dpdk0",
            "sa_used 0 sa_free 1032176 sa_miss 0",
        ]
    );
    let tutorial = [
        "inet 10.0.0.100/32 via 0.0.0.0 src 0.0.0.0 dev dpdk1 mtu 1500 tos 0 scope host metric 0 proto auto",
        "inet 192.168.100.200/32 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope host metric 0 proto auto",
        "inet 192.168.100.0/24 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope link metric 0 proto auto",
        "inet 10.0.0.0/16 via 0.0.0.0 src 0.0.0.0 dev dpdk1 mtu 1500 tos 0 scope link metric 0 proto auto",
    ];
    let want: Vec<&str> = tutorial
        .iter()
        .map(|l| l.trim_end_matches(" proto auto"))
        .collect();
    assert_eq!(route_show(&s), want);
    // The host routes come from addresses; the networks were added by hand.
    let origins: Vec<String> = s.list_routes().into_iter().map(|r| r.origin).collect();
    assert_eq!(origins, ["auto", "auto", "static", "static"]);

    let snap = s.snapshot();
    assert_eq!(snap.generation, 7);
    assert_eq!(snap.services.len(), 1);
    let svc = &snap.services[0];
    assert_eq!(
        svc.key,
        CoreKey::Vs {
            proto: rvs_core::addr::proto::TCP,
            vip: a("10.0.0.100"),
            vport: 80
        }
    );
    assert_eq!(svc.dests.len(), 2);
    assert_eq!(svc.dests[1].addr, a("192.168.100.3"));
    assert_eq!(svc.laddrs.len(), 1);
    assert_eq!(
        (svc.laddrs[0].addr, svc.laddrs[0].port),
        (a("192.168.100.200"), 0)
    );
    let r = snap.routes.lookup(&a("192.168.100.3")).expect("LAN route");
    assert_eq!((r.port, r.scope), (0, CoreScope::Link));
    let r = snap.routes.lookup(&a("10.0.0.48")).expect("WAN route");
    assert_eq!((r.port, r.scope), (1, CoreScope::Link));
    let r = snap.routes.lookup(&a("10.0.0.100")).expect("host route");
    assert_eq!((r.port, r.scope), (1, CoreScope::Host));
    assert!(snap.pool_addrs().contains(&a("192.168.100.200")));
    assert!(snap
        .if_addr(&a("192.168.100.200"))
        .is_some_and(|i| i.sapool));
    assert!(
        snap.owns(&a("10.0.0.100"), 1),
        "VIP answered on the WAN port"
    );
    assert_eq!(s.steering(), (vec![a("192.168.100.200")], vec![]));
}

#[test]
fn fnat_snapshot_forwards_a_syn_through_the_pipeline() {
    let mut s = store();
    run(&mut s, &fnat_two_arm());
    let rs = [
        ("192.168.100.2", Mac([2, 0, 0, 0, 1, 2])),
        ("192.168.100.3", Mac([2, 0, 0, 0, 1, 3])),
    ];
    for (ip_, mac) in rs {
        run(
            &mut s,
            &[Request::AddNeigh {
                addr: ip(ip_),
                mac: mac.to_string(),
                dev: "dpdk0".into(),
            }],
        );
    }
    let conf = WorkerConf {
        conn_capacity: 1024,
        ..Default::default()
    };
    let mut w = Worker::new(conf, Arc::new(s.snapshot()), 0);
    let mut syn = FrameSpec::tcp(a("10.0.0.48"), 37177, a("10.0.0.100"), 80, SYN);
    syn.dst_mac = ports()[1].mac;
    let frame = syn.to_vec();
    let mut buf = vec![0u8; 2048];
    buf[64..64 + frame.len()].copy_from_slice(&frame);
    let mut p = Packet {
        buf: &mut buf,
        head: 64,
        len: frame.len(),
        port: 1,
        csum_ok: false,
    };
    let v = w.process(&mut p, 0);
    assert_eq!(v, Verdict::Transmit(0), "drops: {:?}", w.drops().nonzero());
    let out = p.frame().to_vec();
    assert_eq!(&out[26..30], &[192, 168, 100, 200], "source is the LIP");
    let rs_ip = [out[30], out[31], out[32], out[33]];
    let (_, mac) = rs
        .iter()
        .find(|(i, _)| a(i).v4_bytes() == rs_ip)
        .expect("sent to a real server");
    assert_eq!(&out[0..6], &mac.0, "to the static neighbour's MAC");
    let l = s.list_services(None).unwrap();
    assert_eq!((l[0].stats.conns, l[0].stats.inpkts), (1, 1));
    let d = l[0]
        .dests
        .iter()
        .find(|d| d.spec.addr == ip(&Addr::from_v4_bytes(rs_ip).to_string()))
        .unwrap();
    assert_eq!((d.stats.conns, d.inactive), (1, 1));
}

#[test]
fn snat_section() {
    let mut s = store();
    let m0 =
        ServiceKey::Match("proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1".into());
    let m1 =
        ServiceKey::Match("proto=icmp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1".into());
    run(
        &mut s,
        &[
            addr_add("123.1.2.3", 24, "dpdk1", true),
            addr_add("192.168.100.1", 24, "dpdk0", false),
            route_add("0.0.0.0", 0, Some("123.1.2.1"), "dpdk1", None),
            svc_add(&m0, "rr"),
            dest_add(&m0, dest("123.1.2.3", 0, 100, Forward::Snat)),
            svc_add(&m1, "rr"),
            dest_add(&m1, dest("123.1.2.3", 0, 100, Forward::Snat)),
        ],
    );
    assert_eq!(
        ipvsadm_ln(&s),
        [
            "MATCH proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1 rr",
            "-> 123.1.2.3:0 SNAT 100 0 0",
            "MATCH proto=icmp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1 rr",
            "-> 123.1.2.3:0 SNAT 100 0 0",
        ]
    );
    assert_eq!(
        addr_show(&s),
        [
            "inet 123.1.2.3/24 scope global dpdk1",
            "sa_used 0 sa_free 1032176 sa_miss 0",
            "inet 192.168.100.1/24 scope global dpdk0",
        ]
    );
    assert_eq!(
        route_show(&s),
        [
            "inet 123.1.2.3/32 via 0.0.0.0 src 0.0.0.0 dev dpdk1 mtu 1500 tos 0 scope host metric 0",
            "inet 192.168.100.1/32 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope host metric 0",
            "inet 123.1.2.0/24 via 0.0.0.0 src 0.0.0.0 dev dpdk1 mtu 1500 tos 0 scope link metric 0",
            "inet 192.168.100.0/24 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope link metric 0",
            "inet 0.0.0.0/0 via 123.1.2.1 src 0.0.0.0 dev dpdk1 mtu 1500 tos 0 scope global metric 0",
        ]
    );
    let snap = s.snapshot();
    assert!(snap.pool_addrs().contains(&a("123.1.2.3")));
    assert_eq!(snap.match_services(), &[0, 1]);
    let r = snap.routes.lookup(&a("8.8.8.8")).expect("default route");
    assert_eq!(
        (r.port, r.gateway, r.scope),
        (1, Some(a("123.1.2.1")), CoreScope::Global)
    );
    assert_eq!(s.steering(), (vec![a("123.1.2.3")], vec![]));
    // Another spelling of the same match names the same service.
    let again =
        ServiceKey::Match("oif=dpdk1,src-range=192.168.100.0-192.168.100.254,proto=tcp".into());
    let e = s.apply(&svc_add(&again, "rr")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Exists);
    assert_eq!(s.list_services(Some(&again)).unwrap().len(), 1);
}

#[test]
fn dr_one_arm_section() {
    let mut s = store();
    let vs = tcp("192.168.100.254", 80);
    run(
        &mut s,
        &[
            addr_add("192.168.100.1", 24, "dpdk0", false),
            addr_add("192.168.100.254", 32, "dpdk0", false),
            svc_add(&vs, "rr"),
            dest_add(&vs, dest("192.168.100.2", 80, 1, Forward::Dr)),
            dest_add(&vs, dest("192.168.100.3", 80, 1, Forward::Dr)),
        ],
    );
    // "route for LAN network, just a hint": the address made it already.
    let e = s
        .apply(&route_add("192.168.100.0", 24, None, "dpdk0", None))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Exists);
    assert!(e.message.contains("192.168.100.0/24"), "{e}");
    assert_eq!(
        ipvsadm_ln(&s),
        [
            "TCP 192.168.100.254:80 rr",
            "-> 192.168.100.2:80 Route 1 0 0",
            "-> 192.168.100.3:80 Route 1 0 0",
        ]
    );
    assert_eq!(
        route_show(&s),
        [
            "inet 192.168.100.1/32 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope host metric 0",
            "inet 192.168.100.254/32 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope host metric 0",
            "inet 192.168.100.0/24 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope link metric 0",
        ]
    );
    let snap = s.snapshot();
    assert!(snap.owns(&a("192.168.100.254"), 0));
    let r = snap.routes.lookup(&a("192.168.100.2")).unwrap();
    assert_eq!((r.port, r.scope, r.gateway), (0, CoreScope::Link, None));
    assert!(snap.pool_addrs().is_empty(), "DR needs no pool");
}

#[test]
fn keepalived_section() {
    let mut s = store();
    let vs = tcp("192.168.100.254", 80);
    // What keepalived configures, then the manual dpip commands.
    run(
        &mut s,
        &[
            svc_add(&vs, "rr"),
            laddr_add(&vs, "192.168.100.200", "dpdk0"),
            laddr_add(&vs, "192.168.100.201", "dpdk0"),
            dest_add(&vs, dest("192.168.100.2", 80, 100, Forward::Fnat)),
            dest_add(&vs, dest("192.168.100.3", 80, 100, Forward::Fnat)),
            addr_add("192.168.100.254", 32, "dpdk0", false),
            route_add("192.168.100.0", 24, None, "dpdk0", None),
        ],
    );
    assert_eq!(
        ipvsadm_ln(&s),
        [
            "TCP 192.168.100.254:80 rr",
            "-> 192.168.100.2:80 FullNat 100 0 0",
            "-> 192.168.100.3:80 FullNat 100 0 0",
        ]
    );
    assert_eq!(
        ipvsadm_g(&s),
        [
            "192.168.100.254:80 2",
            "192.168.100.200 0 0",
            "192.168.100.201 0 0"
        ]
    );
    // The tutorial lists newest first; the store lists in the order added.
    let mut shown = addr_show(&s);
    shown.sort();
    assert_eq!(
        shown,
        [
            "inet 192.168.100.200/32 scope global dpdk0",
            "inet 192.168.100.201/32 scope global dpdk0",
            "inet 192.168.100.254/32 scope global dpdk0",
            "sa_used 0 sa_free 1032176 sa_miss 0",
            "sa_used 0 sa_free 1032176 sa_miss 0",
        ]
    );
    let l = s
        .list_addrs(Some("dpdk0"), |_| Some((0, SA_FREE, 0)))
        .unwrap();
    let vip = l.iter().find(|x| x.addr == ip("192.168.100.254")).unwrap();
    assert_eq!(vip.sapool, None, "the VIP has no pool");
    // The tutorial's three routes, in its order; the store also keeps the
    // VIP's host route (dpip derives one for every address).
    let shown = route_show(&s);
    let want = [
        "inet 192.168.100.200/32 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope host metric 0",
        "inet 192.168.100.201/32 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope host metric 0",
        "inet 192.168.100.0/24 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope link metric 0",
    ];
    let pos: Vec<usize> = want
        .iter()
        .map(|w| shown.iter().position(|l| l == w).expect(w))
        .collect();
    assert!(pos.windows(2).all(|p| p[0] < p[1]), "{shown:?}");
    assert_eq!(shown.len(), 4);
    let snap = s.snapshot();
    assert_eq!(snap.services[0].laddrs.len(), 2);
    assert_eq!(
        s.steering().0,
        vec![a("192.168.100.200"), a("192.168.100.201")]
    );
}

#[test]
fn ospf_section_kni_host_route() {
    let mut s = store();
    let vs = tcp("123.1.2.3", 80);
    run(
        &mut s,
        &[
            route_add("192.168.100.0", 24, None, "dpdk0", None),
            svc_add(&vs, "rr"),
            dest_add(&vs, dest("192.168.100.2", 80, 1, Forward::Fnat)),
            dest_add(&vs, dest("192.168.100.3", 80, 1, Forward::Fnat)),
            laddr_add(&vs, "192.168.100.200", "dpdk0"),
            laddr_add(&vs, "192.168.100.201", "dpdk0"),
            route_add("172.10.0.2", 32, None, "dpdk1", Some(Scope::KniHost)),
        ],
    );
    let r = s
        .list_routes()
        .into_iter()
        .find(|r| r.route.prefix == ip("172.10.0.2"))
        .unwrap();
    assert_eq!(
        (r.scope, r.route.dev.as_str(), r.origin.as_str()),
        (Scope::KniHost, "dpdk1", "static")
    );
    let snap = s.snapshot();
    let r = snap.routes.lookup(&a("172.10.0.2")).unwrap();
    assert_eq!((r.port, r.scope), (1, CoreScope::KniHost));
}

#[test]
fn standby_local_address_is_configured_listed_and_not_owned() {
    let mut s = store();
    // Marked before it exists (rvs-keepalived may run before its services
    // are applied): the mark waits for the address.
    let lip = ip("192.168.100.200");
    s.apply(&Request::SetAddrStandby {
        addrs: vec![lip],
        standby: true,
    })
    .unwrap();
    run(&mut s, &fnat_two_arm());
    let snap = s.snapshot();
    assert!(
        snap.pool_addrs().contains(&a("192.168.100.200")),
        "pool kept"
    );
    assert_eq!(snap.services[0].laddrs.len(), 1, "still a local address");
    assert!(
        !snap.owns(&a("192.168.100.200"), 0),
        "standby: no ARP answer"
    );
    assert!(snap.owns(&a("10.0.0.100"), 1), "the VIP is not touched");
    let g = s.list_laddrs(None, |_| (0, SA_FREE, 0)).unwrap();
    assert!(g[0].laddrs[0].standby, "-G shows it standby");
    let addrs = s.list_addrs(None, |_| None).unwrap();
    let lip_info = addrs.iter().find(|i| i.addr == lip).unwrap();
    assert!(lip_info.standby, "addr show shows it standby");
    assert!(
        !addrs
            .iter()
            .find(|i| i.addr == ip("10.0.0.100"))
            .unwrap()
            .standby
    );

    s.apply(&Request::SetAddrStandby {
        addrs: vec![lip],
        standby: false,
    })
    .unwrap();
    assert!(s.snapshot().owns(&a("192.168.100.200"), 0), "active again");
    assert!(!s.list_laddrs(None, |_| (0, SA_FREE, 0)).unwrap()[0].laddrs[0].standby);
}

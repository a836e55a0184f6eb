//! Every refused request: its kind, a message naming what was wrong, and a
//! store left exactly as it was.

use rvs_api::{ErrorKind, Forward, Request, ServiceSpec};

use super::*;

/// The FNAT tutorial setup plus a SNAT match service.
fn base() -> Store {
    let mut s = store();
    run(&mut s, &fnat_two_arm());
    let m = snat_key();
    run(
        &mut s,
        &[
            addr_add("123.1.2.3", 24, "dpdk1", true),
            svc_add(&m, "rr"),
            dest_add(&m, dest("123.1.2.3", 0, 100, Forward::Snat)),
            Request::AddNeigh {
                addr: ip("192.168.100.2"),
                mac: "02:00:00:00:01:02".into(),
                dev: "dpdk0".into(),
            },
        ],
    );
    s
}

fn snat_key() -> ServiceKey {
    ServiceKey::Match("proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1".into())
}

#[track_caller]
fn refused(s: &mut Store, req: Request, kind: ErrorKind, names: &[&str]) {
    refused_seen_by(fingerprint, s, req, kind, names);
}

fn vs() -> ServiceKey {
    tcp("10.0.0.100", 80)
}

#[test]
fn service_errors() {
    let mut s = base();
    use ErrorKind::*;
    refused(
        &mut s,
        svc_add(&vs(), "wrr"),
        Exists,
        &["Service already exists", "TCP 10.0.0.100:80"],
    );
    let edit = |key: ServiceKey, sched: &str, persistence| Request::EditService {
        spec: ServiceSpec {
            key,
            sched: sched.into(),
            persistence,
            sched_flags: Vec::new(),
            synproxy: None,
            proxy_protocol: None,
        },
    };
    refused(
        &mut s,
        edit(tcp("10.0.0.101", 80), "rr", None),
        NotFound,
        &["No such service", "10.0.0.101:80"],
    );
    let udp = ServiceKey::Vs {
        proto: rvs_api::Proto::Udp,
        vip: ip("10.0.0.100"),
        port: 80,
    };
    refused(
        &mut s,
        Request::DelService { key: udp },
        NotFound,
        &["No such service", "UDP 10.0.0.100:80"],
    );
    let all = [
        "fastest", "rr", "wrr", "wlc", "lc", "sh", "conhash", "fo", "mh",
    ];
    refused(
        &mut s,
        svc_add(&tcp("10.0.0.100", 81), "fastest"),
        Invalid,
        &all,
    );
    refused(&mut s, edit(vs(), "fastest", None), Invalid, &all);
    refused(
        &mut s,
        edit(vs(), "rr", Some(0)),
        Invalid,
        &["persistence", "10.0.0.100:80"],
    );
    refused(
        &mut s,
        svc_add(&tcp("10.0.0.100", 0), "rr"),
        Invalid,
        &["zero port", "10.0.0.100:0"],
    );
    refused(
        &mut s,
        svc_add(&ServiceKey::Match("proto=sctp".into()), "rr"),
        Invalid,
        &["sctp"],
    );
    refused(
        &mut s,
        svc_add(&ServiceKey::Match("proto=tcp,oif=dpdk9".into()), "rr"),
        Invalid,
        &["dpdk9"],
    );
    refused(
        &mut s,
        Request::Zero {
            key: Some(tcp("10.0.0.1", 80)),
        },
        NotFound,
        &["No such service", "10.0.0.1:80"],
    );
}

#[test]
fn dest_errors() {
    let mut s = base();
    use ErrorKind::*;
    let fnat = |a: &str, port| dest(a, port, 1, Forward::Fnat);
    refused(
        &mut s,
        dest_add(&tcp("10.0.0.101", 80), fnat("192.168.100.9", 80)),
        NotFound,
        &["Service not defined", "10.0.0.101:80"],
    );
    refused(
        &mut s,
        dest_add(&vs(), fnat("192.168.100.2", 80)),
        Exists,
        &["Destination already exists", "192.168.100.2:80"],
    );
    let edit = |key: ServiceKey, d| Request::EditDest { key, dest: d };
    refused(
        &mut s,
        edit(vs(), fnat("192.168.100.9", 80)),
        NotFound,
        &["No such destination", "192.168.100.9:80"],
    );
    refused(
        &mut s,
        edit(tcp("10.0.0.101", 80), fnat("192.168.100.2", 80)),
        NotFound,
        &["Service not defined"],
    );
    let del = Request::DelDest {
        key: vs(),
        addr: ip("192.168.100.9"),
        port: 80,
    };
    refused(
        &mut s,
        del,
        NotFound,
        &["No such destination", "192.168.100.9:80"],
    );
    // Only FullNat translates between the families (NAT64/NAT46).
    for fwd in [Forward::Nat, Forward::Dr, Forward::Tunnel] {
        refused(
            &mut s,
            dest_add(&vs(), dest("2001:db8::2", 80, 1, fwd)),
            Invalid,
            &["[2001:db8::2]:80", "IPv6", "IPv4", "only FullNat (-b)"],
        );
    }
    refused(
        &mut s,
        edit(vs(), fnat("192.168.100.2", 0)),
        NotFound,
        &["192.168.100.2:0"],
    );
    refused(
        &mut s,
        dest_add(&vs(), fnat("192.168.100.9", 0)),
        Invalid,
        &["zero port", "192.168.100.9:0"],
    );
    refused(
        &mut s,
        dest_add(&vs(), dest("192.168.100.9", 0, 1, Forward::Snat)),
        Invalid,
        &["SNAT", "(-H)", "192.168.100.9", "TCP 10.0.0.100:80"],
    );
    refused(
        &mut s,
        dest_add(&snat_key(), fnat("123.1.2.4", 0)),
        Invalid,
        &["FullNat", "(-J)", "proto=tcp", "123.1.2.4"],
    );
    refused(
        &mut s,
        dest_add(&snat_key(), dest("123.1.2.4", 80, 1, Forward::Snat)),
        Invalid,
        &["123.1.2.4:80", "port part must be 0"],
    );
    refused(
        &mut s,
        dest_add(&vs(), dest("192.168.100.9", 80, 70000, Forward::Fnat)),
        Invalid,
        &["weight 70000", "192.168.100.9:80"],
    );
    refused(
        &mut s,
        dest_add(&vs(), dest("192.168.100.9", 8080, 1, Forward::Dr)),
        Invalid,
        &["192.168.100.9:8080", "80"],
    );
    let mut th = fnat("192.168.100.9", 80);
    (th.u_threshold, th.l_threshold) = (10, 20);
    refused(
        &mut s,
        dest_add(&vs(), th),
        Invalid,
        &["threshold", "192.168.100.9:80"],
    );
    // Editing into an invalid state is refused too, and the old dest stays.
    refused(
        &mut s,
        edit(vs(), dest("192.168.100.2", 80, 1, Forward::Snat)),
        Invalid,
        &["192.168.100.2"],
    );

    // Thresholds beyond ipvsadm's range (INT_MAX) are refused.
    let mut th = fnat("192.168.100.9", 80);
    th.u_threshold = 3_000_000_000;
    refused(
        &mut s,
        dest_add(&vs(), th),
        Invalid,
        &[
            "upper threshold 3000000000",
            "192.168.100.9:80",
            "2147483647",
        ],
    );
    // A SNAT dest is the address sources become: its family is the match's.
    refused(
        &mut s,
        dest_add(&snat_key(), dest("2001:db8::3", 0, 1, Forward::Snat)),
        Invalid,
        &["2001:db8::3", "IPv6", "takes IPv4 addresses only"],
    );
    let any = ServiceKey::Match("proto=udp".into());
    run(
        &mut s,
        &[
            svc_add(&any, "rr"),
            dest_add(&any, dest("123.1.2.3", 0, 1, Forward::Snat)),
        ],
    );
    refused(
        &mut s,
        dest_add(&any, dest("2001:db8::3", 0, 1, Forward::Snat)),
        Invalid,
        &["2001:db8::3", "already has IPv4 destination 123.1.2.3"],
    );

    // Weight 0 is quiescent, not an error.
    run(
        &mut s,
        &[dest_add(&vs(), dest("192.168.100.4", 80, 0, Forward::Fnat))],
    );
    assert_eq!(ipvsadm_ln(&s)[3], "-> 192.168.100.4:80 FullNat 0 0 0");
}

#[test]
fn laddr_errors() {
    let mut s = base();
    use ErrorKind::*;
    refused(
        &mut s,
        laddr_add(&tcp("10.0.0.101", 80), "192.168.100.201", "dpdk0"),
        NotFound,
        &["Service not defined", "10.0.0.101:80"],
    );
    let e = s
        .apply(&laddr_add(&vs(), "192.168.100.201", "dpdk9"))
        .unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (NotFound, "no such device dpdk9")
    );
    refused(
        &mut s,
        laddr_add(&vs(), "192.168.100.201", "dpdk9"),
        NotFound,
        &["dpdk9"],
    );
    refused(
        &mut s,
        laddr_add(&vs(), "192.168.100.200", "dpdk0"),
        Exists,
        &["192.168.100.200", "10.0.0.100:80"],
    );
    refused(
        &mut s,
        laddr_add(&vs(), "10.0.0.100", "dpdk0"),
        Invalid,
        &["10.0.0.100", "dpdk1"],
    );
    refused(
        &mut s,
        laddr_add(&snat_key(), "192.168.100.201", "dpdk0"),
        Invalid,
        &["proto=tcp", "local address"],
    );
    let del = |a: &str, dev: &str| Request::DelLaddr {
        key: vs(),
        addr: ip(a),
        dev: dev.into(),
    };
    refused(
        &mut s,
        del("192.168.100.201", "dpdk0"),
        NotFound,
        &["192.168.100.201", "dpdk0"],
    );
    refused(
        &mut s,
        del("192.168.100.200", "dpdk1"),
        NotFound,
        &["192.168.100.200", "dpdk1"],
    );
}

#[test]
fn addr_errors() {
    let mut s = base();
    use ErrorKind::*;
    refused(
        &mut s,
        addr_add("10.0.0.1", 16, "dpdk9", false),
        NotFound,
        &["no such device dpdk9"],
    );
    refused(
        &mut s,
        addr_add("10.0.0.100", 32, "dpdk1", false),
        Exists,
        &["10.0.0.100", "dpdk1"],
    );
    refused(
        &mut s,
        addr_add("192.168.100.200", 24, "dpdk0", false),
        Exists,
        &["192.168.100.200"],
    );
    refused(
        &mut s,
        addr_add("10.0.0.1", 33, "dpdk1", false),
        Invalid,
        &["33", "10.0.0.1"],
    );
    refused(
        &mut s,
        addr_add("2001:db8::1", 129, "dpdk1", false),
        Invalid,
        &["129", "2001:db8::1"],
    );
    refused(
        &mut s,
        addr_add("0.0.0.0", 8, "dpdk1", false),
        Invalid,
        &["0.0.0.0"],
    );
    let del = |a: &str, dev: &str| Request::DelAddr {
        addr: ip(a),
        dev: dev.into(),
    };
    refused(
        &mut s,
        del("10.0.0.9", "dpdk1"),
        NotFound,
        &["10.0.0.9", "dpdk1"],
    );
    refused(
        &mut s,
        del("10.0.0.100", "dpdk0"),
        NotFound,
        &["10.0.0.100", "dpdk0"],
    );
    refused(&mut s, del("10.0.0.100", "dpdk9"), NotFound, &["dpdk9"]);
    refused(
        &mut s,
        del("192.168.100.200", "dpdk0"),
        Invalid,
        &["192.168.100.200", "--del-laddr", "10.0.0.100:80"],
    );
}

#[test]
fn route_errors() {
    let mut s = base();
    use ErrorKind::*;
    refused(
        &mut s,
        route_add("10.1.0.0", 16, None, "dpdk9", None),
        NotFound,
        &["no such device dpdk9"],
    );
    refused(
        &mut s,
        route_add("10.1.0.0", 16, Some("2001:db8::1"), "dpdk1", None),
        Invalid,
        &["2001:db8::1", "10.1.0.0/16"],
    );
    refused(
        &mut s,
        route_add(
            "172.10.0.0",
            30,
            None,
            "dpdk1",
            Some(rvs_api::Scope::KniHost),
        ),
        Invalid,
        &["the prefix length of kni_host must be 32", "172.10.0.0/30"],
    );
    refused(
        &mut s,
        route_add("10.0.0.0", 16, None, "dpdk1", None),
        Exists,
        &["10.0.0.0/16"],
    );
    refused(
        &mut s,
        route_add("10.0.0.100", 32, None, "dpdk1", None),
        Exists,
        &["10.0.0.100/32"],
    );
    refused(
        &mut s,
        route_add("10.0.0.1", 16, None, "dpdk1", None),
        Invalid,
        &["10.0.0.1/16", "host bits"],
    );
    refused(
        &mut s,
        route_add("10.1.0.0", 33, None, "dpdk1", None),
        Invalid,
        &["10.1.0.0/33"],
    );
    let mut big = route_add("10.1.0.0", 16, None, "dpdk1", None);
    if let Request::AddRoute { route } = &mut big {
        route.mtu = Some(9000);
    }
    refused(&mut s, big, Invalid, &["mtu 9000", "dpdk1"]);
    let del = |p: &str, plen| Request::DelRoute {
        prefix: ip(p),
        plen,
    };
    refused(
        &mut s,
        del("10.1.0.0", 16),
        NotFound,
        &["no such route 10.1.0.0/16"],
    );
    refused(
        &mut s,
        del("10.0.0.1", 16),
        Invalid,
        &["10.0.0.1/16", "host bits"],
    );
    refused(&mut s, del("10.0.0.0", 40), Invalid, &["40", "10.0.0.0"]);
    // A gateway must be on an on-link network of the device (Linux:
    // "Nexthop has invalid gateway"), else nothing could resolve it.
    refused(
        &mut s,
        route_add("10.9.0.0", 16, Some("172.16.0.1"), "dpdk1", None),
        Invalid,
        &["gateway 172.16.0.1", "dpdk1"],
    );
    run(
        &mut s,
        &[route_add("10.9.0.0", 16, Some("10.0.0.254"), "dpdk1", None)],
    );
    let r = s
        .list_routes()
        .into_iter()
        .find(|r| r.route.prefix == ip("10.9.0.0"))
        .unwrap();
    assert_eq!(
        r.scope,
        rvs_api::Scope::Global,
        "a route with a gateway defaults to global"
    );
}

#[test]
fn neigh_errors() {
    let mut s = base();
    use ErrorKind::*;
    let add = |a: &str, mac: &str, dev: &str| Request::AddNeigh {
        addr: ip(a),
        mac: mac.into(),
        dev: dev.into(),
    };
    refused(
        &mut s,
        add("192.168.100.3", "zz:00:00:00:00:01", "dpdk0"),
        Invalid,
        &["zz:00:00:00:00:01", "192.168.100.3"],
    );
    refused(
        &mut s,
        add("192.168.100.3", "02:00:00:00:01", "dpdk0"),
        Invalid,
        &["02:00:00:00:01"],
    );
    refused(
        &mut s,
        add("192.168.100.3", "ff:ff:ff:ff:ff:ff", "dpdk0"),
        Invalid,
        &["ff:ff:ff:ff:ff:ff"],
    );
    refused(
        &mut s,
        add("192.168.100.3", "02:00:00:00:01:03", "dpdk9"),
        NotFound,
        &["no such device dpdk9"],
    );
    refused(
        &mut s,
        add("192.168.100.2", "02:00:00:00:01:09", "dpdk0"),
        Exists,
        &["192.168.100.2", "dpdk0"],
    );
    let del = |a: &str, dev: &str| Request::DelNeigh {
        addr: ip(a),
        dev: dev.into(),
    };
    refused(
        &mut s,
        del("192.168.100.3", "dpdk0"),
        NotFound,
        &["192.168.100.3", "dpdk0"],
    );
    refused(
        &mut s,
        del("192.168.100.2", "dpdk1"),
        NotFound,
        &["192.168.100.2", "dpdk1"],
    );
    let n = s.static_neigh(Some("dpdk0"));
    assert_eq!(n.len(), 1);
    assert_eq!(
        (n[0].mac.as_str(), n[0].state.as_str()),
        ("02:00:00:00:01:02", "static")
    );
    assert!(s.static_neigh(Some("dpdk1")).is_empty());
}

#[test]
fn reads_are_not_changes_and_unknown_targets_are_named() {
    let mut s = base();
    use ErrorKind::*;
    refused(&mut s, Request::ListRoutes, Invalid, &["route show"]);
    refused(&mut s, Request::Status, Invalid, &["status"]);
    refused(&mut s, Request::Reload, Invalid, &["reload"]);
    let e = s.list_services(Some(&tcp("10.0.0.1", 80))).unwrap_err();
    assert_eq!(e.kind, NotFound);
    assert!(e.message.contains("10.0.0.1:80"), "{e}");
    let e = s
        .list_laddrs(Some(&tcp("10.0.0.1", 80)), |_| (0, 0, 0))
        .unwrap_err();
    assert_eq!(e.kind, NotFound);
    let e = s.list_addrs(Some("dpdk9"), |_| None).unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (NotFound, "no such device dpdk9")
    );
    let e = s
        .list_services(Some(&ServiceKey::Match("proto=gre".into())))
        .unwrap_err();
    assert_eq!(e.kind, Invalid);
    assert!(e.message.contains("gre"), "{e}");
}

//! Every dpip command line of the DPVS tutorial, the other commands, usage
//! errors, and dpip's output shapes written out by hand.

use std::net::IpAddr;

use rvs_api::{AddrInfo, LinkInfo, LinkStats, NeighInfo, Request, RouteInfo, RouteSpec, Scope};

use super::{
    format_addrs, format_links, format_neigh, format_routes, parse_args, Family, IpCommand,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn p(s: &str) -> Result<IpCommand, crate::client::CliError> {
    parse_args(&s.split_whitespace().collect::<Vec<_>>())
}

fn req(s: &str) -> Request {
    match p(s) {
        Ok(IpCommand::Apply(r)) => r,
        other => panic!("{s}: {other:?}"),
    }
}

fn usage_err(s: &str) -> String {
    let e = p(s).expect_err(s);
    assert_eq!(e.code, 2, "{s}: {e:?}");
    e.message
}

fn route(prefix: &str, plen: u8, dev: &str) -> RouteSpec {
    RouteSpec {
        prefix: ip(prefix),
        plen,
        via: None,
        dev: dev.into(),
        scope: None,
        src: None,
        mtu: None,
        metric: 0,
    }
}

#[test]
fn tutorial_dpip_commands() {
    let add = |a: &str, plen, dev: &str, sapool| Request::AddAddr {
        addr: ip(a),
        plen,
        dev: dev.into(),
        sapool,
    };
    assert_eq!(
        req("addr add 10.0.0.100/32 dev dpdk1"),
        add("10.0.0.100", 32, "dpdk1", false)
    );
    assert_eq!(
        req("addr add 10.0.0.100/16 dev dpdk1"),
        add("10.0.0.100", 16, "dpdk1", false)
    );
    assert_eq!(
        req("addr add 192.168.100.254/32 dev dpdk0"),
        add("192.168.100.254", 32, "dpdk0", false)
    );
    assert_eq!(
        req("addr add 192.168.100.1/24 dev dpdk0"),
        add("192.168.100.1", 24, "dpdk0", false)
    );
    assert_eq!(
        req("addr add 123.1.2.3/24 dev dpdk1 sapool"),
        add("123.1.2.3", 24, "dpdk1", true)
    );
    assert_eq!(
        req("route add 10.0.0.0/16 dev dpdk1"),
        Request::AddRoute {
            route: route("10.0.0.0", 16, "dpdk1")
        }
    );
    assert_eq!(
        req("route add 192.168.100.0/24 dev dpdk0"),
        Request::AddRoute {
            route: route("192.168.100.0", 24, "dpdk0")
        }
    );
    assert_eq!(
        req("route add 172.10.0.2/32 dev dpdk1 scope kni_host"),
        Request::AddRoute {
            route: RouteSpec {
                scope: Some(Scope::KniHost),
                ..route("172.10.0.2", 32, "dpdk1")
            }
        }
    );
    assert_eq!(
        req("route add default via 123.1.2.1 dev dpdk1"),
        Request::AddRoute {
            route: RouteSpec {
                via: Some(ip("123.1.2.1")),
                ..route("0.0.0.0", 0, "dpdk1")
            }
        }
    );
    assert_eq!(
        p("addr show"),
        Ok(IpCommand::ShowAddrs {
            dev: None,
            family: None
        })
    );
    assert_eq!(
        p("route show"),
        Ok(IpCommand::ShowRoutes {
            dev: None,
            family: None
        })
    );
}

#[test]
fn other_commands() {
    assert_eq!(
        req("addr add 2001:db8::1 dev dpdk0"),
        Request::AddAddr {
            addr: ip("2001:db8::1"),
            plen: 128,
            dev: "dpdk0".into(),
            sapool: false
        }
    );
    assert_eq!(
        req("addr del 10.0.0.100/32 dev dpdk1"),
        Request::DelAddr {
            addr: ip("10.0.0.100"),
            dev: "dpdk1".into()
        }
    );
    assert_eq!(
        p("addr show dev dpdk0"),
        Ok(IpCommand::ShowAddrs {
            dev: Some("dpdk0".into()),
            family: None
        })
    );
    assert_eq!(
        p("addr"),
        Ok(IpCommand::ShowAddrs {
            dev: None,
            family: None
        })
    );
    assert_eq!(
        req("route add 10.1.0.0/16 via 10.0.0.1 dev dpdk1 src 10.0.0.100 mtu 1400 metric 5 scope global"),
        Request::AddRoute {
            route: RouteSpec {
                via: Some(ip("10.0.0.1")),
                src: Some(ip("10.0.0.100")),
                mtu: Some(1400),
                metric: 5,
                scope: Some(Scope::Global),
                ..route("10.1.0.0", 16, "dpdk1")
            }
        }
    );
    assert_eq!(
        req("route add default via 2001:db8::ff dev dpdk1"),
        Request::AddRoute {
            route: RouteSpec {
                via: Some(ip("2001:db8::ff")),
                ..route("::", 0, "dpdk1")
            }
        }
    );
    assert_eq!(
        req("route del 10.0.0.0/16 dev dpdk1"),
        Request::DelRoute {
            prefix: ip("10.0.0.0"),
            plen: 16
        }
    );
    assert_eq!(
        req("route del default"),
        Request::DelRoute {
            prefix: ip("0.0.0.0"),
            plen: 0
        }
    );
    assert_eq!(
        p("route show dev dpdk0"),
        Ok(IpCommand::ShowRoutes {
            dev: Some("dpdk0".into()),
            family: None
        })
    );
    assert_eq!(
        req("neigh add 192.168.100.2 lladdr 52:54:0:AB:cd:1 dev dpdk0"),
        Request::AddNeigh {
            addr: ip("192.168.100.2"),
            mac: "52:54:00:ab:cd:01".into(),
            dev: "dpdk0".into()
        }
    );
    assert_eq!(
        req("neigh del 192.168.100.2 dev dpdk0"),
        Request::DelNeigh {
            addr: ip("192.168.100.2"),
            dev: "dpdk0".into()
        }
    );
    assert_eq!(
        p("neigh show dev dpdk0"),
        Ok(IpCommand::ShowNeigh {
            dev: Some("dpdk0".into())
        })
    );
    assert_eq!(
        p("link show"),
        Ok(IpCommand::ShowLinks {
            dev: None,
            stats: false
        })
    );
    assert_eq!(
        p("-s link show dpdk0"),
        Ok(IpCommand::ShowLinks {
            dev: Some("dpdk0".into()),
            stats: true
        })
    );
    assert_eq!(
        p("-s -v link show dev dpdk1"),
        Ok(IpCommand::ShowLinks {
            dev: Some("dpdk1".into()),
            stats: true
        })
    );
    assert!(matches!(p("route help"), Ok(IpCommand::Help(t)) if t.contains("kni_host")));
    assert!(matches!(p("help"), Ok(IpCommand::Help(t)) if t.contains("OBJECT")));
    assert_eq!(p("-V"), Ok(IpCommand::Version));
}

#[test]
fn usage_errors() {
    assert_eq!(
        usage_err("tunnel add ipip1 mode ipip"),
        "Object \"tunnel\" is unknown, try \"rvsip help\"."
    );
    assert_eq!(
        usage_err("addr flush"),
        "unknown command \"flush\" for addr, try \"rvsip addr help\""
    );
    assert_eq!(
        usage_err("link set dpdk0 up"),
        "unknown command \"set\" for link, try \"rvsip link help\""
    );
    assert_eq!(usage_err("addr add 10.0.0.100/32"), "missing device");
    assert_eq!(usage_err("addr add dev dpdk0"), "missing address");
    assert_eq!(
        usage_err("addr add 10.0.0.100/33 dev dpdk0"),
        "invalid prefix length \"33\" in \"10.0.0.100/33\""
    );
    assert_eq!(
        usage_err("addr add 10.0.0.300 dev dpdk0"),
        "invalid IP address \"10.0.0.300\""
    );
    assert_eq!(
        usage_err("addr add 10.0.0.1 dev"),
        "missing argument for \"dev\""
    );
    assert_eq!(
        usage_err("addr add 10.0.0.1 10.0.0.2 dev dpdk0"),
        "unexpected argument \"10.0.0.2\""
    );
    assert_eq!(usage_err("route add 10.0.0.0/16"), "missing device");
    assert_eq!(usage_err("route add dev dpdk0"), "missing route prefix");
    assert_eq!(
        usage_err("route add 10.0.0.0/8 dev dpdk0 scope universe"),
        "invalid scope \"universe\" (host, link, global or kni_host)"
    );
    assert_eq!(
        usage_err("route add 10.0.0.0/8 dev dpdk0 mtu big"),
        "invalid mtu \"big\""
    );
    assert_eq!(
        usage_err("route add 10.0.0.0/8 via 2001:db8::1 dev dpdk0"),
        "address family mismatch: via 2001:db8::1 for 10.0.0.0/8"
    );
    assert_eq!(
        usage_err("neigh add 192.168.100.2 lladdr 52:54:00:ab:cd dev dpdk0"),
        "invalid link layer addr \"52:54:00:ab:cd\""
    );
    assert_eq!(
        usage_err("neigh add 192.168.100.2 lladdr 52:54:00:ab:cd:zz dev dpdk0"),
        "invalid link layer addr \"52:54:00:ab:cd:zz\""
    );
    assert_eq!(
        usage_err("neigh add 192.168.100.2 dev dpdk0"),
        "missing lladdr"
    );
    assert_eq!(
        usage_err("neigh add lladdr 52:54:00:ab:cd:ef dev dpdk0"),
        "missing ip address"
    );
    assert_eq!(
        usage_err("-x addr show"),
        "invalid option -- 'x'\nTry \"rvsip help\"."
    );
    assert!(usage_err("").starts_with("Usage:"));
}

#[test]
fn addr_show_like_the_tutorial() {
    let a = |addr: &str, dev: &str, sapool| AddrInfo {
        addr: ip(addr),
        plen: 32,
        dev: dev.into(),
        scope: Scope::Global,
        sapool,
        standby: false,
    };
    let got = format_addrs(&[
        a("10.0.0.100", "dpdk1", None),
        a("192.168.100.200", "dpdk0", Some((0, 1032176, 0))),
    ]);
    let want = "inet 10.0.0.100/32 scope global dpdk1
     valid_lft forever preferred_lft forever
inet 192.168.100.200/32 scope global dpdk0
     valid_lft forever preferred_lft forever sa_used 0 sa_free 1032176 sa_miss 0
";
    assert_eq!(got, want);
    let v6 = AddrInfo {
        addr: ip("2001:db8::1"),
        plen: 64,
        dev: "dpdk0".into(),
        scope: Scope::Global,
        sapool: None,
        standby: true,
    };
    assert_eq!(
        format_addrs(&[v6]),
        "inet6 2001:db8::1/64 scope global dpdk0 standby\n     valid_lft forever preferred_lft forever\n"
    );
}

#[test]
fn route_show_like_the_tutorial() {
    let r = |prefix: &str, plen, dev: &str, scope| RouteInfo {
        route: route(prefix, plen, dev),
        scope,
        mtu: 1500,
        origin: "auto".into(),
    };
    let got = format_routes(&[
        r("10.0.0.100", 32, "dpdk1", Scope::Host),
        r("192.168.100.200", 32, "dpdk0", Scope::Host),
        r("192.168.100.0", 24, "dpdk0", Scope::Link),
        r("10.0.0.0", 16, "dpdk1", Scope::Link),
    ]);
    let want = "inet 10.0.0.100/32 via 0.0.0.0 src 0.0.0.0 dev dpdk1 mtu 1500 tos 0 scope host metric 0 proto auto
inet 192.168.100.200/32 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope host metric 0 proto auto
inet 192.168.100.0/24 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope link metric 0 proto auto
inet 10.0.0.0/16 via 0.0.0.0 src 0.0.0.0 dev dpdk1 mtu 1500 tos 0 scope link metric 0 proto auto
";
    assert_eq!(got, want);
    let gw = RouteInfo {
        route: RouteSpec {
            via: Some(ip("2001:db8::ff")),
            metric: 7,
            ..route("::", 0, "dpdk1")
        },
        scope: Scope::Global,
        mtu: 9000,
        origin: "static".into(),
    };
    assert_eq!(
        format_routes(&[gw]),
        "inet6 ::/0 via 2001:db8::ff src :: dev dpdk1 mtu 9000 tos 0 scope global metric 7 proto static\n"
    );
}

#[test]
fn neigh_show_like_dpip() {
    let n = NeighInfo {
        addr: ip("192.168.100.2"),
        mac: "52:54:00:ab:cd:ef".into(),
        dev: "dpdk0".into(),
        state: "reachable".into(),
    };
    assert_eq!(
        format_neigh(&[n]),
        format!(
            "ip: 192.168.100.2{}mac: 52:54:00:ab:cd:ef   state: REACHABLE     dev: dpdk0\n",
            " ".repeat(36)
        )
    );
}

#[test]
fn link_show_with_and_without_stats() {
    let l = LinkInfo {
        index: 0,
        name: "dpdk0".into(),
        iface: "eth1".into(),
        backend: "af_xdp (native, copy)".into(),
        mac: "02:00:00:00:00:10".into(),
        mtu: 1500,
        up: true,
        kni: Some("dpdk0.kni".into()),
        stats: LinkStats {
            rx_packets: 10,
            rx_bytes: 1200,
            rx_dropped: 1,
            tx_packets: 8,
            tx_bytes: 960,
            tx_dropped: 0,
            kni_packets: 2,
            drops: vec![("no_route".into(), 3), ("bad_checksum".into(), 1)],
            ..LinkStats::default()
        },
        bond: None,
        slave_of: None,
    };
    let basic = "1: dpdk0: mtu 1500 backend af_xdp (native, copy) iface eth1\n    UP kni dpdk0.kni\n    addr 02:00:00:00:00:10\n";
    assert_eq!(format_links(std::slice::from_ref(&l), false), basic);
    let stats = "    ipackets            opackets            ibytes              obytes
    10                  8                   1200                960
    idropped            odropped            kni-packets
    1                   0                   2
    drops:
        no_route: 3
        bad_checksum: 1
";
    assert_eq!(
        format_links(std::slice::from_ref(&l), true),
        format!("{basic}{stats}")
    );
    let down = LinkInfo {
        index: 1,
        name: "dpdk1".into(),
        up: false,
        kni: None,
        stats: LinkStats::default(),
        ..l
    };
    assert_eq!(
        format_links(&[down], true),
        "2: dpdk1: mtu 1500 backend af_xdp (native, copy) iface eth1\n    DOWN\n    addr 02:00:00:00:00:10\n\
         \x20   ipackets            opackets            ibytes              obytes\n\
         \x20   0                   0                   0                   0\n\
         \x20   idropped            odropped            kni-packets\n\
         \x20   0                   0                   0\n"
    );
}

#[test]
fn link_show_stats_has_a_row_per_worker() {
    let w = |rx: u64, drops: Vec<(String, u64)>| LinkStats {
        rx_packets: rx,
        rx_bytes: rx * 100,
        tx_packets: rx,
        tx_bytes: rx * 100,
        rx_full_bursts: rx / 10,
        drops,
        ..LinkStats::default()
    };
    let workers = vec![w(30, vec![("no_route".into(), 2)]), w(12, Vec::new())];
    let l = LinkInfo {
        index: 0,
        name: "dpdk0".into(),
        iface: "eth1".into(),
        backend: "af_packet".into(),
        mac: "02:00:00:00:00:10".into(),
        mtu: 1500,
        up: true,
        kni: None,
        stats: LinkStats {
            rx_packets: 42,
            tx_packets: 42,
            rx_bytes: 4200,
            tx_bytes: 4200,
            rx_full_bursts: 4,
            drops: vec![("no_route".into(), 2)],
            workers,
            ..LinkStats::default()
        },
        bond: None,
        slave_of: None,
    };
    let out = format_links(&[l], true);
    let tail: Vec<&str> = out.lines().skip(9).collect();
    assert_eq!(
        tail,
        [
            "    worker    ipackets            opackets            ibytes              obytes",
            "    0         30                  30                  3000                3000",
            "    1         12                  12                  1200                1200",
            "    worker    idropped            odropped            kni-packets         full-bursts",
            "    0         0                   0                   0                   3",
            "    1         0                   0                   0                   1",
            "    worker 0 drops: no_route: 2",
        ],
        "{out}"
    );
}

/// A port whose XDP fast path forwarded frames shows their count in its own
/// row, after the receive/transmit counters (which do not include them).
#[test]
fn link_show_stats_has_the_fast_path_row_when_it_forwarded() {
    let l = LinkInfo {
        index: 0,
        name: "dpdk0".into(),
        iface: "eth1".into(),
        backend: "af_xdp".into(),
        mac: "02:00:00:00:00:10".into(),
        mtu: 1500,
        up: true,
        kni: None,
        stats: LinkStats {
            rx_packets: 10,
            fast_packets: 5000,
            ..LinkStats::default()
        },
        bond: None,
        slave_of: None,
    };
    let out = format_links(&[l], true);
    assert!(
        out.ends_with("    fast-packets\n    5000\n"),
        "the fast path's row: {out}"
    );
}

#[test]
fn family_options_as_the_tutorials_ipv6_section() {
    // DPVS's tutorial: `dpip route -6 add 2001::/64 dev dpdk1`, `dpip route -6 show`.
    assert_eq!(
        req("route -6 add 2001::/64 dev dpdk1"),
        Request::AddRoute {
            route: route("2001::", 64, "dpdk1")
        }
    );
    assert_eq!(
        p("route -6 show"),
        Ok(IpCommand::ShowRoutes {
            dev: None,
            family: Some(Family::V6)
        })
    );
    assert_eq!(
        p("-4 addr show dev dpdk0"),
        Ok(IpCommand::ShowAddrs {
            dev: Some("dpdk0".into()),
            family: Some(Family::V4)
        })
    );
    // `default` takes its family from -6.
    assert_eq!(
        req("-6 route add default dev dpdk1"),
        Request::AddRoute {
            route: route("::", 0, "dpdk1")
        }
    );
    assert!(usage_err("route -6 add 10.0.0.0/16 dev dpdk1")
        .contains("address family mismatch: 10.0.0.0/16 with -6"));
    assert!(usage_err("-4 addr add 2001:db8::1/64 dev dpdk1").contains("2001:db8::1/64 with -4"));
}

//! Multicast groups per port: IPv6 interface addresses on their port (a
//! VLAN device's on its parent), VIPs and local addresses on every port.

use rvs_api::{Request, VlanProto, VlanSpec};

use super::*;

fn groups(s: &Store, port: usize) -> Vec<String> {
    s.multicast_groups()[port]
        .iter()
        .map(|g| rvs_io::mcast::Show(g).to_string())
        .collect()
}

#[test]
fn ipv6_addresses_add_their_solicited_node_groups() {
    let mut s = store();
    s.apply(&addr_add("192.168.100.1", 24, "dpdk0", false))
        .unwrap();
    assert!(groups(&s, 0).is_empty(), "no IPv6: no group");

    s.apply(&addr_add("2001:db8::1:2", 64, "dpdk1", false))
        .unwrap();
    assert!(groups(&s, 0).is_empty());
    assert_eq!(groups(&s, 1), ["33:33:00:00:00:01", "33:33:ff:01:00:02"]);

    s.apply(&svc_add(&tcp("2001:db8::100", 80), "rr")).unwrap();
    for p in 0..2 {
        assert!(groups(&s, p).contains(&"33:33:ff:00:01:00".to_string()));
    }

    s.apply(&Request::AddVlan {
        spec: VlanSpec {
            name: Some("dpdk0.100".into()),
            link: "dpdk0".into(),
            proto: VlanProto::Dot1q,
            id: 100,
        },
    })
    .unwrap();
    s.apply(&addr_add("fd00::7", 64, "dpdk0.100", false))
        .unwrap();
    assert!(groups(&s, 0).contains(&"33:33:ff:00:00:07".to_string()));
    assert!(!groups(&s, 1).contains(&"33:33:ff:00:00:07".to_string()));

    s.apply(&Request::DelAddr {
        addr: ip("fd00::7"),
        dev: "dpdk0.100".into(),
    })
    .unwrap();
    assert!(!groups(&s, 0).contains(&"33:33:ff:00:00:07".to_string()));
}

/// The MLD listeners: the same groups as IPv6 addresses, the port's MAC,
/// and a link-local source when the port has one.
#[test]
fn mld_ports_name_the_groups_and_the_report_source() {
    let mut s = store();
    assert!(s.mld_ports().iter().all(|p| p.groups.is_empty()));
    s.apply(&svc_add(&tcp("2001:db8::100", 80), "rr")).unwrap();
    let p = s.mld_ports();
    let want: Vec<std::net::Ipv6Addr> = vec![
        "ff02::1".parse().unwrap(),
        "ff02::1:ff00:100".parse().unwrap(),
    ];
    assert_eq!(p[1].groups.iter().copied().collect::<Vec<_>>(), want);
    assert_eq!(p[1].link_local, None);
    assert_eq!(p[1].name, "dpdk1");
    s.apply(&addr_add("fe80::5", 64, "dpdk1", false)).unwrap();
    let p = s.mld_ports();
    assert_eq!(p[1].link_local, Some("fe80::5".parse().unwrap()));
    assert_eq!(p[0].link_local, None);
    assert!(p[1].groups.contains(&"ff02::1:ff00:5".parse().unwrap()));
}

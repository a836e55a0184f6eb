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

//! Bonds in the store: a bond is a port (after the taken-over ones, before
//! the VLAN slots); its slaves take no configuration.

use rvs_api::{ErrorKind, VlanProto, VlanSpec};

use super::*;

/// dpdk0, dpdk1 (slaves of bond0), bond0.
fn bonded() -> Store {
    let mut p = ports();
    for d in &mut p {
        d.slave_of = Some(2);
        d.kni = false;
    }
    p.push(PortDef {
        name: "bond0".into(),
        iface: String::new(),
        mac: p[0].mac,
        mtu: 1500,
        kni: true,
        slave_of: None,
    });
    Store::new(p, 2, Timeouts::default(), PipelineConf::default())
}

#[test]
fn a_slave_takes_no_configuration_of_its_own() {
    let mut s = bonded();
    let refused = |s: &mut Store, r: Request| {
        let e = s.apply(&r).expect_err("refused");
        assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
        assert!(
            e.message.contains("dpdk1 is a slave of bond0"),
            "{}",
            e.message
        );
    };
    refused(&mut s, addr_add("10.0.0.7", 32, "dpdk1", false));
    refused(&mut s, route_add("10.0.0.0", 16, None, "dpdk1", None));
    refused(
        &mut s,
        Request::AddVlan {
            spec: VlanSpec {
                name: None,
                link: "dpdk1".into(),
                proto: VlanProto::Dot1q,
                id: 9,
            },
        },
    );
    // The bond takes them.
    s.apply(&addr_add("10.0.0.100", 32, "bond0", false))
        .expect("addr on the bond");
    s.apply(&route_add("10.0.0.0", 16, None, "bond0", None))
        .expect("route");
    // The tutorial's VLAN on a bond; its port index follows the bond's.
    s.apply(&Request::AddVlan {
        spec: VlanSpec {
            name: None,
            link: "bond0".into(),
            proto: VlanProto::Dot1q,
            id: 103,
        },
    })
    .expect("VLAN on the bond");
    let snap = s.snapshot();
    let names: Vec<&str> = snap.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["dpdk0", "dpdk1", "bond0", "bond0.103"]);
    assert_eq!(snap.ports[3].vlan.map(|v| v.parent), Some(2));
}

#[test]
fn a_bond_s_ipv6_groups_are_joined_on_its_slaves() {
    let mut s = bonded();
    s.apply(&addr_add("2001:db8::100", 128, "bond0", false))
        .expect("addr on the bond");
    let g = s.multicast_groups();
    let want = rvs_io::mcast::solicited_node(&"2001:db8::100".parse().unwrap());
    assert!(g[0].contains(&want) && g[1].contains(&want), "{g:?}");
}

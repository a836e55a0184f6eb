//! VLAN devices in the store: the tutorial's lines, refusals, deletion
//! refused while in use, slots and the snapshot.

use rvs_api::{ErrorKind, Request, VlanProto, VlanSel, VlanSpec};

use super::*;

fn vlan_add(name: Option<&str>, link: &str, id: u16) -> Request {
    Request::AddVlan {
        spec: VlanSpec {
            name: name.map(String::from),
            link: link.into(),
            proto: VlanProto::Dot1q,
            id,
        },
    }
}

fn by_name(n: &str) -> VlanSel {
    VlanSel {
        name: Some(n.into()),
        ..Default::default()
    }
}

fn shown(s: &Store) -> Vec<String> {
    s.list_vlans(&VlanSel::default())
        .expect("list")
        .iter()
        .map(|v| {
            format!(
                "{} {} {} {}",
                v.name.as_deref().unwrap_or(""),
                v.link,
                v.proto.name(),
                v.id
            )
        })
        .collect()
}

#[test]
fn the_tutorials_vlan_lines() {
    let mut s = store();
    run(
        &mut s,
        &[
            vlan_add(Some("dpdk0.100"), "dpdk0", 100),
            vlan_add(None, "dpdk0", 101),
            vlan_add(None, "dpdk1", 102),
        ],
    );
    assert_eq!(
        shown(&s),
        [
            "dpdk0.100 dpdk0 802.1q 100",
            "dpdk0.101 dpdk0 802.1q 101",
            "dpdk1.102 dpdk1 802.1q 102"
        ]
    );
    // No bond devices: the unknown link is named.
    let e = s.apply(&vlan_add(None, "bond1", 103)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("no such device bond1 (link)"), "{e}");
    // `show link dpdk0 id 101`.
    let v = s
        .list_vlans(&VlanSel {
            link: Some("dpdk0".into()),
            id: Some(101),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].name.as_deref(), Some("dpdk0.101"));
}

#[test]
fn refusals_name_what_was_wrong() {
    let mut s = store();
    run(&mut s, &[vlan_add(Some("dpdk0.100"), "dpdk0", 100)]);
    let msg = |s: &mut Store, r: Request| s.apply(&r).unwrap_err().message;
    assert!(msg(&mut s, vlan_add(None, "dpdk0.100", 5))
        .contains("dpdk0.100 is a VLAN device, and VLAN devices do not stack"));
    assert!(msg(&mut s, vlan_add(Some("x"), "dpdk0", 100))
        .contains("dpdk0.100 is already VLAN 100 (802.1q) on dpdk0"));
    assert!(
        msg(&mut s, vlan_add(Some("dpdk1"), "dpdk0", 7)).contains("device dpdk1 already exists")
    );
    assert!(msg(&mut s, vlan_add(None, "dpdk0", 4095)).contains("invalid VLAN ID 4095"));
    assert!(msg(&mut s, vlan_add(Some("a-very-long-name"), "dpdk0", 8)).contains("kni device name"));
    let g = s.generation();
    assert!(s
        .apply(&Request::DelVlan {
            sel: by_name("dpdk0.7")
        })
        .is_err());
    assert_eq!(s.generation(), g, "nothing changed");
}

#[test]
fn a_vlan_device_is_a_port_and_is_not_deleted_while_used() {
    let mut s = store();
    let key = tcp("10.0.0.100", 80);
    run(
        &mut s,
        &[
            vlan_add(Some("dpdk1.100"), "dpdk1", 100),
            addr_add("10.0.0.100", 32, "dpdk1.100", false),
            route_add("10.0.0.0", 16, None, "dpdk1.100", None),
            svc_add(&key, "rr"),
            laddr_add(&key, "10.0.0.200", "dpdk1.100"),
        ],
    );
    let snap = s.snapshot();
    assert_eq!(snap.ports.len(), 3);
    let p = &snap.ports[2];
    assert_eq!(p.name, "dpdk1.100");
    assert_eq!(p.mac, snap.ports[1].mac);
    assert_eq!(
        p.vlan,
        Some(rvs_core::snapshot::Vlan {
            parent: 1,
            tpid: 0x8100,
            vid: 100
        })
    );
    assert!(snap.addrs.iter().any(|a| a.port == 2));
    let e = s
        .apply(&Request::DelVlan {
            sel: by_name("dpdk1.100"),
        })
        .unwrap_err();
    for what in [
        "address 10.0.0.100/32",
        "route 10.0.0.0/16",
        "local address 10.0.0.200 of TCP 10.0.0.100:80",
    ] {
        assert!(e.message.contains(what), "{what} missing in: {e}");
    }
    run(
        &mut s,
        &[
            Request::DelService { key: key.clone() },
            Request::DelRoute {
                prefix: ip("10.0.0.0"),
                plen: 16,
            },
            Request::DelAddr {
                addr: ip("10.0.0.100"),
                dev: "dpdk1.100".into(),
            },
            Request::DelVlan {
                sel: VlanSel {
                    link: Some("dpdk1".into()),
                    id: Some(100),
                    ..Default::default()
                },
            },
        ],
    );
    assert!(shown(&s).is_empty());
    assert_eq!(s.snapshot().ports.len(), 2);
}

#[test]
fn port_indexes_stay_put_and_freed_slots_are_reused() {
    let mut s = store();
    run(
        &mut s,
        &[
            vlan_add(None, "dpdk0", 10),
            vlan_add(None, "dpdk0", 11),
            Request::DelVlan {
                sel: by_name("dpdk0.10"),
            },
        ],
    );
    let snap = s.snapshot();
    assert_eq!(snap.ports[3].name, "dpdk0.11", "index 3 kept");
    assert_eq!(snap.ports[2].vlan, None, "a free slot");
    run(&mut s, &[vlan_add(None, "dpdk1", 12)]);
    assert_eq!(s.snapshot().ports[2].name, "dpdk1.12");
}

#[test]
fn to_requests_rebuilds_the_vlan_devices_in_their_slots() {
    let mut s = store();
    let key = tcp("10.0.0.100", 80);
    run(
        &mut s,
        &[
            vlan_add(None, "dpdk0", 10),
            vlan_add(Some("wan100"), "dpdk1", 100),
            vlan_add(None, "dpdk0", 11),
            vlan_add(None, "dpdk0", 12),
            Request::DelVlan {
                sel: by_name("dpdk0.10"),
            },
            Request::DelVlan {
                sel: by_name("dpdk0.11"),
            },
            addr_add("10.0.0.100", 32, "wan100", false),
            svc_add(&key, "rr"),
            laddr_add(&key, "192.168.100.200", "dpdk0.12"),
        ],
    );
    let b = super::save::rebuilt(&s);
    super::save::assert_same(&s, &b);
    assert!(
        s.canonical().contains("vlan 1 \"wan100\" link=\"dpdk1\""),
        "{}",
        s.canonical()
    );
    let (sa, sb) = (s.snapshot(), b.snapshot());
    let names =
        |p: &[rvs_core::snapshot::PortConf]| -> Vec<(String, Option<rvs_core::snapshot::Vlan>)> {
            p.iter().map(|p| (p.name.clone(), p.vlan)).collect()
        };
    assert_eq!(names(&sa.ports), names(&sb.ports), "same port indexes");
    assert_eq!(sb.ports[3].name, "wan100");
    assert_eq!(sb.ports[5].name, "dpdk0.12");
    assert!(
        b.list_vlans(&VlanSel::default()).unwrap().len() == 2,
        "no placeholder left"
    );
    // A VLAN device changes the fingerprint.
    let mut c = store();
    run(&mut c, &[vlan_add(None, "dpdk0", 10)]);
    assert_ne!(c.fingerprint(), store().fingerprint());
}

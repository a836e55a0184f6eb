//! Multicast memberships: `ip maddr` shows the groups a [`Membership`]
//! holds, a second holder keeps a group the first one leaves (a hot
//! upgrade), and closing the socket leaves every group.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{veth_pair, Netns};
use rvs_io::mcast::{solicited_node, Membership, ALL_NODES, SLOW_PROTOCOLS};

/// The link-layer groups `ip maddr` lists on `dev`.
fn maddrs(ns: &Netns, dev: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-n", &ns.name, "maddr", "show", "dev", dev])
        .output()
        .expect("run ip maddr");
    assert!(out.status.success(), "ip maddr show dev {dev}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("link"))
        .filter_map(|m| m.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn groups_follow_the_wanted_set_and_vanish_with_the_socket() {
    let ns = Netns::new();
    veth_pair(&ns, "mc0", "mc1");
    let sol = solicited_node(&"2001:db8::12:3456".parse().unwrap());
    assert_eq!(sol, [0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
    ns.run(|| {
        let mut m = Membership::open("mc0").expect("membership socket");
        let want: BTreeSet<_> = [ALL_NODES, sol, SLOW_PROTOCOLS].into();
        m.set(&want).expect("join");
        let shown = maddrs(&ns, "mc0");
        for g in [
            "33:33:00:00:00:01",
            "33:33:ff:12:34:56",
            "01:80:c2:00:00:02",
        ] {
            assert!(shown.iter().any(|s| s == g), "{g} not in {shown:?}");
        }
        assert!(maddrs(&ns, "mc1").iter().all(|s| s != "33:33:ff:12:34:56"));

        // A successor holds the same group; the first one leaves it.
        let mut next = Membership::open("mc0").expect("second membership socket");
        next.set(&[sol].into()).expect("join again");
        m.set(&[ALL_NODES].into()).expect("leave two");
        let shown = maddrs(&ns, "mc0");
        assert!(shown.iter().any(|s| s == "33:33:ff:12:34:56"), "{shown:?}");
        assert!(shown.iter().all(|s| s != "01:80:c2:00:00:02"), "{shown:?}");
        assert_eq!(m.joined(), &[ALL_NODES].into());

        drop(m);
        drop(next);
        let shown = maddrs(&ns, "mc0");
        for g in ["33:33:ff:12:34:56", "01:80:c2:00:00:02"] {
            assert!(shown.iter().all(|s| s != g), "{g} still in {shown:?}");
        }
    });
}

#[test]
fn an_unknown_interface_is_named() {
    let ns = Netns::new();
    let e = ns.run(|| Membership::open("nosuch0").unwrap_err());
    assert!(e.to_string().contains("nosuch0"), "{e}");
}

//! Configuration values the state machine refuses, with the keyword named.

use std::net::IpAddr;

use crate::vrrp::packet::{Auth, Version};
use crate::vrrp::{Instance, InstanceConf, Tracked, VirtualAddress};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn base() -> InstanceConf {
    let mut c = InstanceConf::new("VI_1", 51, "dpdk0.kni", ip("192.168.100.1"));
    c.virtual_addresses = vec![VirtualAddress::host(ip("192.168.100.254"))];
    c
}

/// The keyword of the error `f` makes of the base configuration.
fn field(f: impl FnOnce(&mut InstanceConf)) -> &'static str {
    let mut c = base();
    f(&mut c);
    Instance::new(c).unwrap_err().field
}

#[test]
fn keepalived_defaults_are_valid() {
    let c = base();
    assert_eq!(
        (c.priority, c.interval_cs, c.version),
        (100, 100, Version::V2)
    );
    assert!(c.preempt);
    assert_eq!((c.garp.master_delay_ms, c.garp.master_repeat), (5000, 5));
    Instance::new(c).unwrap();
}

#[test]
fn invalid_values_name_their_keyword() {
    assert_eq!(field(|c| c.vrid = 0), "virtual_router_id");
    assert_eq!(field(|c| c.priority = 0), "priority");
    assert_eq!(field(|c| c.interval_cs = 150), "advert_int");
    assert_eq!(field(|c| c.interval_cs = 0), "advert_int");
    assert_eq!(
        field(|c| {
            c.version = Version::V3;
            c.interval_cs = 4096;
        }),
        "advert_int"
    );
    assert_eq!(
        field(|c| {
            c.version = Version::V3;
            c.auth = Auth::pass("x").0;
        }),
        "authentication"
    );
    assert_eq!(
        field(|c| c.track_scripts = vec![Tracked::new("chk").weight(254)]),
        "weight"
    );
    assert_eq!(
        field(|c| {
            c.priority = 255;
            c.track_interfaces = vec![Tracked::new("eth1").weight(10)];
        }),
        "weight"
    );
    assert_eq!(
        field(|c| c
            .virtual_addresses
            .push(VirtualAddress::host(ip("2001:db8::1")))),
        "virtual_ipaddress"
    );
    assert_eq!(
        field(|c| c.unicast_peers = vec![ip("fe80::2")]),
        "unicast_peer"
    );
    assert_eq!(field(|c| c.src = ip("fe80::1")), "vrrp_version");
    let e = field(|c| {
        c.version = Version::V3;
        c.src = ip("2001:db8::1");
        c.virtual_addresses = vec![VirtualAddress::host(ip("2001:db8::100"))];
    });
    assert_eq!(e, "unicast_src_ip");
}

#[test]
fn errors_read_as_sentences() {
    let mut c = base();
    c.interval_cs = 150;
    let e = Instance::new(c).unwrap_err();
    assert_eq!(
        e.to_string(),
        "advert_int: 1.50 s: VRRPv2 needs whole seconds 1-255"
    );
}

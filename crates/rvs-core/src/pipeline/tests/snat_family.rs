//! A SNAT match without an address range takes both families, but its WAN
//! address has one: a packet of the other family is refused, never rewritten
//! with an address of the wrong size.

use super::util::*;
use crate::addr::{Addr, Mac};
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, WAN};
use crate::pipeline::Verdict;
use crate::route::{Route, Scope};
use crate::sched::SchedKind;
use crate::service::{Match, ServiceKey};
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

const HOST6: Addr = Addr([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]);
const REMOTE6: Addr = Addr([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]);
const REMOTE6_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x66]);

#[test]
fn snat_with_an_ipv4_wan_address_refuses_ipv6_packets() {
    let m = Match::parse("proto=tcp", |_| None).unwrap();
    let svc = lab::service(
        10,
        ServiceKey::Match(m),
        SchedKind::Rr,
        &[DestSpec::new(lab::WAN_IP, 0, FwdMode::Snat)],
        &[],
        0,
        1,
    );
    let mut snap = lab::snapshot(1, vec![svc], 0);
    // An IPv6 path out of WAN with a known neighbour: nothing else would stop
    // the packet from being transmitted.
    snap.routes
        .add(Route {
            prefix: Addr([0; 16]),
            plen: 0,
            gateway: None,
            port: WAN,
            scope: Scope::Link,
            src: None,
            mtu: 1500,
            metric: 0,
        })
        .unwrap();
    snap.static_neigh.push((REMOTE6, REMOTE6_MAC, WAN));
    let mut w = worker(snap);
    let syn = FrameSpec {
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::tcp(HOST6, 40000, REMOTE6, 80, SYN)
    }
    .to_vec();
    let (v, _) = run(&mut w, &syn, LAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::Invalid));
    assert_eq!(drops(&w, DropReason::Invalid), 1);
    assert_eq!(
        w.conns().len(),
        0,
        "no connection for a packet it cannot translate"
    );
    assert_eq!(
        w.pool_usage(&lab::WAN_IP).map(|u| u.0),
        Some(0),
        "no port held"
    );
}

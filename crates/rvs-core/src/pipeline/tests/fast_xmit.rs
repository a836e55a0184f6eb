//! Fast xmit: replies go back to the port and MAC a connection's client-side
//! packets came from, without a route lookup (the OSPF/BGP ECMP model, where
//! rvs has no route to the clients and each flow's replies must go back
//! through the router that delivered it).

use super::oracle::assert_checksums;
use super::util::*;
use crate::addr::{proto, Addr, Mac};
use crate::conn::tcp::Timeouts;
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, LIP, VIP, WAN, WAN_MAC};
use crate::pipeline::{Verdict, Worker};
use crate::route::{Route, RouteTable, Scope};
use crate::sched::SchedKind;
use crate::snapshot::{PipelineConf, Snapshot};
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

/// Two upstream routers on the WAN port.
const R1: Mac = Mac([0x02, 0, 0, 0, 0x0a, 0x01]);
const R2: Mac = Mac([0x02, 0, 0, 0, 0x0a, 0x02]);
/// Clients behind them, with no route of rvs leading to them.
const C1: Addr = Addr::v4(172, 16, 0, 1);
const C2: Addr = Addr::v4(172, 16, 0, 2);

/// The tutorial's FNAT service with only the LAN route (the OSPF section:
/// the default route is the kernel's, on the kni device), plus `extra` routes.
fn ospf_lab(fast_xmit: bool, extra: &[Route], neigh: &[(Addr, Mac)]) -> Worker {
    let svc = vs(
        1,
        proto::TCP,
        80,
        SchedKind::Rr,
        &[DestSpec::new(lab::rs_ip(0), 80, FwdMode::Fnat)],
        0,
    );
    let mut routes = RouteTable::new();
    routes
        .add(link_route(Addr::v4(192, 168, 100, 0), 24, LAN))
        .expect("LAN route");
    for r in extra {
        routes.add(r.clone()).expect("extra route");
    }
    let mut static_neigh = vec![(lab::rs_ip(0), lab::rs_mac(0), LAN)];
    static_neigh.extend(neigh.iter().map(|&(a, m)| (a, m, WAN)));
    let snap = Snapshot::new(
        1,
        1,
        lab::ports(),
        lab::addrs(),
        routes,
        vec![svc],
        static_neigh,
        Timeouts::default(),
        PipelineConf {
            fast_xmit,
            ..PipelineConf::default()
        },
    );
    worker(snap)
}

/// A client's SYN through router `via`; returns the local port it got.
fn syn(w: &mut Worker, via: Mac, cip: Addr, cport: u16, now: u64) -> u16 {
    let f = FrameSpec {
        src_mac: via,
        ..FrameSpec::tcp(cip, cport, VIP, 80, SYN)
    }
    .to_vec();
    let out = run_tx(w, &f, WAN, LAN, now);
    assert_eq!(v4_src_dst(&out), (LIP, lab::rs_ip(0)));
    be16(&out, 34)
}

/// The RS's answer to `lport`, as the pipeline leaves it.
fn answer(w: &mut Worker, lport: u16, flags: u8, now: u64) -> (Verdict, Vec<u8>) {
    run(w, &from_rs(0, 80, LIP, lport, flags).to_vec(), LAN, now)
}

#[test]
fn each_flow_is_answered_through_the_router_that_delivered_it() {
    let mut w = ospf_lab(true, &[], &[]);
    let l1 = syn(&mut w, R1, C1, 40001, 0);
    let l2 = syn(&mut w, R2, C2, 40002, 0);
    for (lport, router, cip, cport) in [(l1, R1, C1, 40001), (l2, R2, C2, 40002)] {
        let (v, out) = answer(&mut w, lport, SYN | ACK, 1);
        assert_eq!(
            v,
            Verdict::Transmit(WAN),
            "drops: {:?}",
            w.drops().nonzero()
        );
        assert_checksums(&out);
        assert_eq!(&out[0..6], &router.0, "to the router the flow came from");
        assert_eq!(&out[6..12], &WAN_MAC.0, "from the port it came in by");
        assert_eq!(v4_src_dst(&out), (VIP, cip));
        assert_eq!(be16(&out, 36), cport);
    }
    assert_eq!(drops(&w, DropReason::NoRoute), 0);
}

#[test]
fn a_packet_from_elsewhere_does_not_move_the_replies() {
    // The previous hop is learned from the first packet, as DPVS does: a
    // frame with the client's addresses and ports from another MAC (spoofed,
    // or the flow through another router) does not redirect the replies.
    let mut w = ospf_lab(true, &[], &[]);
    let lport = syn(&mut w, R1, C1, 40001, 0);
    let (_, out) = answer(&mut w, lport, SYN | ACK, 1);
    assert_eq!(&out[0..6], &R1.0);
    let ack = FrameSpec {
        src_mac: R2,
        ..FrameSpec::tcp(C1, 40001, VIP, 80, ACK)
    }
    .to_vec();
    run_tx(&mut w, &ack, WAN, LAN, 2);
    let (v, out) = answer(&mut w, lport, ACK, 3);
    assert_eq!(v, Verdict::Transmit(WAN));
    assert_eq!(&out[0..6], &R1.0, "still to the router of the first packet");
}

#[test]
fn with_fast_xmit_off_the_route_table_decides() {
    // No route to the clients: dropped as no_route, as DPVS with fast_xmit_close.
    let mut w = ospf_lab(false, &[], &[]);
    let lport = syn(&mut w, R1, C1, 40001, 0);
    let (v, _) = answer(&mut w, lport, SYN | ACK, 1);
    assert_eq!(v, Verdict::Drop(DropReason::NoRoute));
    assert_eq!(drops(&w, DropReason::NoRoute), 1);

    // With a default route via R2, the replies go to R2 whichever router
    // delivered the flow.
    let gw = Addr::v4(10, 0, 0, 254);
    let default = Route {
        prefix: Addr::v4(0, 0, 0, 0),
        plen: 0,
        gateway: Some(gw),
        port: WAN,
        scope: Scope::Global,
        src: None,
        mtu: 1500,
        metric: 0,
    };
    let mut w = ospf_lab(false, &[default], &[(gw, R2)]);
    let lport = syn(&mut w, R1, C1, 40001, 0);
    let (v, out) = answer(&mut w, lport, SYN | ACK, 1);
    assert_eq!(v, Verdict::Transmit(WAN));
    assert_eq!(&out[0..6], &R2.0, "the route's gateway");
}

#[test]
fn icmp_errors_toward_the_client_follow_the_flow_too() {
    let svc = vs(
        4,
        proto::UDP,
        53,
        SchedKind::Rr,
        &[DestSpec::new(lab::rs_ip(0), 5353, FwdMode::Fnat)],
        0,
    );
    let mut routes = RouteTable::new();
    routes
        .add(link_route(Addr::v4(192, 168, 100, 0), 24, LAN))
        .expect("LAN route");
    let snap = Snapshot::new(
        1,
        1,
        lab::ports(),
        lab::addrs(),
        routes,
        vec![svc],
        vec![(lab::rs_ip(0), lab::rs_mac(0), LAN)],
        Timeouts::default(),
        PipelineConf::default(),
    );
    let mut w = worker(snap);
    let query = FrameSpec {
        src_mac: R1,
        ..FrameSpec::udp(C1, 5000, VIP, 53, b"query")
    }
    .to_vec();
    let fwd = run_tx(&mut w, &query, WAN, LAN, 0);
    // A router between rvs and the RS: time exceeded quoting LIP:lport -> RIP:5353.
    let err = ipv4_frame(
        lab::LAN_MAC,
        lab::rs_mac(0),
        lab::rs_ip(0),
        LIP,
        proto::ICMP,
        64,
        &icmp_msg(11, 0, [0; 4], &fwd[14..42]),
    );
    let out = run_tx(&mut w, &err, LAN, WAN, 1);
    assert_checksums(&out);
    assert_eq!(&out[0..6], &R1.0);
    assert_eq!(v4_src_dst(&out), (VIP, C1));
}

#[test]
fn a_synced_connection_uses_the_routes_until_its_client_is_seen() {
    let mut master = ospf_lab(true, &[], &[]);
    let lport = syn(&mut master, R1, C1, 40001, 0);
    let id = master
        .conns()
        .lookup(&crate::conn::Tuple::new(proto::TCP, C1, 40001, VIP, 80));
    let sc = master
        .export_conn(id.expect("conn").0, 1)
        .expect("exported");
    // The backup (the same configuration) installs it: no previous hop yet.
    let mut backup = ospf_lab(true, &[], &[]);
    backup.install_synced(&sc, 1).expect("installed");
    let (v, _) = answer(&mut backup, lport, SYN | ACK, 2);
    assert_eq!(v, Verdict::Drop(DropReason::NoRoute));
    // The client's next segment reaches the backup: from then on its
    // replies go back through that router.
    let ack = FrameSpec {
        src_mac: R2,
        ..FrameSpec::tcp(C1, 40001, VIP, 80, ACK)
    }
    .to_vec();
    run_tx(&mut backup, &ack, WAN, LAN, 3);
    let (v, out) = answer(&mut backup, lport, ACK, 4);
    assert_eq!(v, Verdict::Transmit(WAN));
    assert_eq!(&out[0..6], &R2.0);
}

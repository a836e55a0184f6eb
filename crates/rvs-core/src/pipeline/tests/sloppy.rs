//! `[pipeline] sloppy_tcp` (IPVS's `net.ipv4.vs.sloppy_tcp`): a TCP packet
//! other than a SYN of an unknown flow starts a DR or TUNNEL connection, so
//! that a flow an ECMP switch moves to another node keeps its real server
//! there (with `mh`, every node picks the same one).

use super::util::*;
use crate::addr::{proto, Addr};
use crate::conn::tcp::TcpState;
use crate::conn::{FwdMode, Tuple};
use crate::lab::{self, DestSpec, FrameSpec, LAN, VIP, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::sched::SchedKind;
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

/// A TCP service over real servers `rs` (in this order; real server `i`
/// has weight `i + 1`) in `mode`.
fn node(mode: FwdMode, sched: SchedKind, rs: &[u8], sloppy: bool) -> Snapshot {
    let dests: Vec<DestSpec> = rs
        .iter()
        .map(|&i| DestSpec {
            weight: u32::from(i) + 1,
            ..DestSpec::new(lab::rs_ip(i), 80, mode)
        })
        .collect();
    let mut snap = lab::snapshot(1, vec![vs(3, proto::TCP, 80, sched, &dests, 0)], 7);
    snap.conf.sloppy_tcp = sloppy;
    snap
}

/// Seven real servers (the lab has their MACs).
const RS: [u8; 7] = [0, 1, 2, 3, 4, 5, 6];

fn ack(cport: u16) -> Vec<u8> {
    FrameSpec {
        payload: b"GET / HTTP/1.1\r\n\r\n",
        ..from_client(cport, 80, ACK | PSH)
    }
    .to_vec()
}

fn state(w: &Worker, cport: u16) -> Option<u8> {
    let t = Tuple::new(proto::TCP, CIP, cport, VIP, 80);
    w.conns().lookup(&t).map(|(id, _)| w.conns().get(id).state)
}

#[test]
fn without_sloppy_tcp_a_non_syn_packet_of_an_unknown_flow_is_dropped() {
    let mut w = worker(node(FwdMode::Dr, SchedKind::Mh, &RS, false));
    let (v, _) = run(&mut w, &ack(40000), WAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoConn));
    assert_eq!(drops(&w, DropReason::NoConn), 1);
    assert_eq!(w.conns().len(), 0);
}

#[test]
fn with_sloppy_tcp_a_dr_or_tunnel_flow_starts_mid_stream_established() {
    for mode in [FwdMode::Dr, FwdMode::Tunnel] {
        let mut w = worker(node(mode, SchedKind::Mh, &RS, true));
        let out = run_tx(&mut w, &ack(40000), WAN, LAN, 0);
        let rs = (0..7)
            .find(|&i| out[0..6] == lab::rs_mac(i).0)
            .expect("to a RS");
        assert_eq!(
            state(&w, 40000),
            Some(TcpState::Established as u8),
            "{mode:?}"
        );
        let ds = w.snapshot().services[0].dests[usize::from(rs)].stats.sum();
        assert_eq!((ds.active, ds.inactive), (1, 0), "{mode:?}: counted active");
        // The flow goes on to the same real server, then closes.
        let again = run_tx(&mut w, &ack(40000), WAN, LAN, 1);
        assert_eq!(&again[0..6], &lab::rs_mac(rs).0);
        run_tx(
            &mut w,
            &from_client(40000, 80, FIN | ACK).to_vec(),
            WAN,
            LAN,
            2,
        );
        assert_eq!(state(&w, 40000), Some(TcpState::FinWait as u8));
        // A RST never starts a flow.
        let (v, _) = run(&mut w, &from_client(40001, 80, RST).to_vec(), WAN, 3);
        assert_eq!(v, Verdict::Drop(DropReason::NoConn), "{mode:?}");
        assert_eq!(w.conns().len(), 1);
    }
}

#[test]
fn sloppy_tcp_never_starts_fnat_or_nat_flows() {
    for mode in [FwdMode::Fnat, FwdMode::Nat] {
        let mut w = worker(node(mode, SchedKind::Rr, &[0, 1], true));
        let (v, _) = run(&mut w, &ack(40000), WAN, 0);
        assert_eq!(v, Verdict::Drop(DropReason::NoConn), "{mode:?}");
        assert_eq!(w.conns().len(), 0);
        assert_eq!(
            w.pool_usage(&lab::LIP).map(|u| u.0),
            Some(0),
            "no port taken"
        );
        // SYNs still work.
        run_tx(&mut w, &from_client(40001, 80, SYN).to_vec(), WAN, LAN, 1);
    }
}

#[test]
fn a_dr_flow_moved_to_another_node_keeps_its_real_server() {
    // Node A saw the SYN; the ECMP switch then moves the flow to node B,
    // whose operator added the same real servers in another order.
    let mut a = worker(node(FwdMode::Dr, SchedKind::Mh, &RS, true));
    let mut b = worker(node(
        FwdMode::Dr,
        SchedKind::Mh,
        &[4, 6, 0, 2, 5, 1, 3],
        true,
    ));
    for i in 0..1000u16 {
        let cip = Addr::v4(10, 0, 1 + (i / 250) as u8, (i % 250) as u8 + 1);
        let syn = FrameSpec::tcp(cip, 40000 + i, VIP, 80, SYN).to_vec();
        let mid = FrameSpec::tcp(cip, 40000 + i, VIP, 80, ACK).to_vec();
        let on_a = run_tx(&mut a, &syn, WAN, LAN, 0);
        let on_b = run_tx(&mut b, &mid, WAN, LAN, 1);
        assert_eq!(&on_b[0..6], &on_a[0..6], "client {cip:?}");
    }
    assert_eq!(b.conns().len(), 1000);
    assert_eq!(b.drops().nonzero(), Vec::new());
}

#[test]
fn a_stray_ack_to_an_fnat_service_touches_neither_persistence_nor_the_scheduler() {
    // A persistent (100 s) FNAT service: a client's SYN at 0 makes its
    // template; a stray ACK of an unknown flow at 90 s must not refresh it.
    let svc = vs(
        3,
        proto::TCP,
        80,
        SchedKind::Rr,
        &[
            DestSpec::new(lab::rs_ip(0), 80, FwdMode::Fnat),
            DestSpec::new(lab::rs_ip(1), 80, FwdMode::Fnat),
        ],
        100_000,
    );
    let mut snap = lab::snapshot(1, vec![svc], 2);
    snap.conf.sloppy_tcp = true;
    let mut w = worker(snap);
    resolve_client(&mut w, CIP, 0);
    run_tx(&mut w, &from_client(40000, 80, SYN).to_vec(), WAN, LAN, 0);
    let (v, _) = run(&mut w, &ack(40001), WAN, 90_000);
    assert_eq!(v, Verdict::Drop(DropReason::NoConn));
    w.tick(150_000);
    assert_eq!(
        w.conns().len(),
        0,
        "the template expired at 100 s, untouched by the ACK"
    );
}

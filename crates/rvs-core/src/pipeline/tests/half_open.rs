//! Local ports under a SYN flood (no SYN proxy): half-open connections give
//! their ports up to new flows, oldest first, and time out fast while the
//! pool runs low, so that a flood cannot lock the service out.

use super::util::*;
use crate::addr::{proto, Addr};
use crate::conn::Tuple;
use crate::lab::{self, FrameSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

/// The tutorial's FNAT service with 16 local ports (1024..=1039).
fn small_pool() -> Worker {
    let mut snap = lab::tutorial_fnat(1);
    snap.conf.min_lport = 1024;
    snap.conf.max_lport = 1039;
    let mut w = worker(snap);
    resolve_client(&mut w, CIP, 0);
    w
}

/// A spoofed SYN from source `i`; the verdict.
fn spoofed(w: &mut Worker, i: u16, now: u64) -> Verdict {
    let src = Addr::v4(172, 16, (i >> 8) as u8, i as u8);
    run(
        w,
        &FrameSpec::tcp(src, 40000, VIP, 80, SYN).to_vec(),
        WAN,
        now,
    )
    .0
}

fn spoofed_conn(w: &Worker, i: u16) -> bool {
    let src = Addr::v4(172, 16, (i >> 8) as u8, i as u8);
    w.conns()
        .lookup(&Tuple::new(proto::TCP, src, 40000, VIP, 80))
        .is_some()
}

#[test]
fn a_new_flow_takes_the_port_of_the_oldest_half_open_connection() {
    let mut w = small_pool();
    for i in 0..16 {
        assert!(matches!(
            spoofed(&mut w, i, i as u64),
            Verdict::Transmit(LAN)
        ));
    }
    assert_eq!(w.pool_usage(&LIP).map(|u| (u.0, u.1)), Some((16, 0)));
    // The pool is empty: a real client's SYN still gets through, on the
    // port of the oldest half-open connection, which is gone.
    let out = run_tx(&mut w, &from_client(5000, 80, SYN).to_vec(), WAN, LAN, 20);
    assert_eq!(v4_src_dst(&out).0, LIP);
    assert_eq!(be16(&out, 34), 1024, "the first port handed out, reused");
    assert!(
        !spoofed_conn(&w, 0),
        "the oldest half-open connection was removed"
    );
    assert!(spoofed_conn(&w, 1));
    assert_eq!(drops(&w, DropReason::SynRecvRecycled), 1);
    assert_eq!(drops(&w, DropReason::NoLocalPort), 0);
    assert_eq!(w.pool_usage(&LIP).map(|u| u.0), Some(16));
    // The flood goes on; every new SYN recycles the next oldest.
    for i in 16..40 {
        assert!(matches!(spoofed(&mut w, i, 21), Verdict::Transmit(LAN)));
    }
    assert_eq!(drops(&w, DropReason::SynRecvRecycled), 25);
    assert_eq!(w.conns().len(), 16);
}

#[test]
fn established_connections_keep_their_ports() {
    let mut w = small_pool();
    // A real connection, established, on the first port.
    let out = run_tx(&mut w, &from_client(5000, 80, SYN).to_vec(), WAN, LAN, 0);
    let (rs, lport) = (
        if v4_src_dst(&out).1 == lab::rs_ip(0) {
            0
        } else {
            1
        },
        be16(&out, 34),
    );
    run_tx(
        &mut w,
        &from_rs(rs, 80, LIP, lport, SYN | ACK).to_vec(),
        LAN,
        WAN,
        1,
    );
    run_tx(&mut w, &from_client(5000, 80, ACK).to_vec(), WAN, LAN, 2);
    for i in 0..15 {
        assert!(matches!(spoofed(&mut w, i, 3), Verdict::Transmit(LAN)));
    }
    // Full: the flood recycles its own half-open connections, never the
    // established one, which still forwards.
    for i in 15..30 {
        assert!(matches!(spoofed(&mut w, i, 4), Verdict::Transmit(LAN)));
    }
    assert_eq!(drops(&w, DropReason::SynRecvRecycled), 15);
    let out = run_tx(
        &mut w,
        &from_client(5000, 80, ACK | PSH).to_vec(),
        WAN,
        LAN,
        5,
    );
    assert_eq!(be16(&out, 34), lport);
}

#[test]
fn with_the_pool_low_half_open_connections_time_out_in_two_seconds() {
    let mut w = small_pool();
    // 14 of 16 ports taken: 2 free is not below 16 / 8 = 2 yet ...
    for i in 0..14 {
        spoofed(&mut w, i, 0);
    }
    // ... the 15th leaves 1 free: from here on SYN_RECV lasts 2 s.
    spoofed(&mut w, 14, 0);
    spoofed(&mut w, 15, 0);
    w.tick(2_100);
    assert!(
        spoofed_conn(&w, 0),
        "taken before the pressure: the configured 30 s"
    );
    assert!(!spoofed_conn(&w, 14) && !spoofed_conn(&w, 15));
    assert_eq!(
        w.pool_usage(&LIP).map(|u| u.1),
        Some(2),
        "their ports are free"
    );
    // After the flood, the rest go within the configured timeout and the
    // service has its whole pool back.
    w.tick(30_200);
    assert_eq!(w.conns().len(), 0);
    assert_eq!(w.pool_usage(&LIP).map(|u| u.1), Some(16));
}

#[test]
fn worker_memory_counts_each_port_of_a_pool_and_its_half_open_ring() {
    let with_ports = |max: u16| {
        let mut snap = lab::tutorial_fnat(1);
        snap.conf.min_lport = 1024;
        snap.conf.max_lport = max;
        worker(snap).memory()
    };
    let (small, big) = (with_ports(1039), with_ports(1024 + 4096 - 1));
    // 4,080 more ports on each of the lab's two pooled addresses (LIP and
    // WAN_IP): a u16 in the free ring and one in the position index (plus
    // a bit) each, and an 8-byte half-open entry each.
    let more = 2 * (4096 - 16);
    assert!(
        big.port_pools - small.port_pools >= more * 4,
        "port pools: {small:?} -> {big:?}"
    );
    assert!(
        big.port_pools - small.port_pools < more * 5,
        "port pools: {small:?} -> {big:?}"
    );
    assert_eq!(big.half_open - small.half_open, more * 8);
    assert_eq!(big.src_limits, 0, "no per-source limit, no table");
}

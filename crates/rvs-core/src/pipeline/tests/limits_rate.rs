//! Rate and connection limits on crafted packets: per-source and
//! per-service connection rates, packet and bit rates on established
//! flows, concurrent-connection limits, the split among workers, live
//! changes, and a full connection table.

use std::sync::Arc;

use super::oracle::assert_checksums;
use super::util::*;
use crate::addr::Addr;
use crate::lab::{self, FrameSpec, LAN, LIP, WAN};
use crate::limit::{LimitDrops, LimitKind, LimitSet, Rate, ServiceLimits};
use crate::pipeline::{Verdict, Worker};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

/// The tutorial's FNAT service (id 1) with `service` and per-source
/// limits, sources grouped by `/plen`.
fn limited(workers: u16, service: LimitSet, source: LimitSet, plen: u8) -> Snapshot {
    lab::tutorial_fnat(workers).with_limits(vec![(
        1,
        Arc::new(ServiceLimits {
            service,
            source,
            src_plen_v4: plen,
            src_plen_v6: 128,
            drops: Arc::new(LimitDrops::new(usize::from(workers))),
        }),
    )])
}

fn drops_of(w: &Worker, k: LimitKind) -> u64 {
    w.snapshot().limits_of(1).map_or(0, |l| l.drops.get(k))
}

fn conn_rate(per_sec: u64, burst: u64) -> LimitSet {
    LimitSet {
        conn_rate: Rate::new(per_sec, burst),
        ..LimitSet::default()
    }
}

/// A SYN from `src:sport` to the VIP; true when it was forwarded to a real server.
fn syn(w: &mut Worker, src: Addr, sport: u16, now: u64) -> bool {
    let f = FrameSpec::tcp(src, sport, lab::VIP, 80, SYN).to_vec();
    match run(w, &f, WAN, now).0 {
        Verdict::Transmit(p) => {
            assert_eq!(p, LAN);
            true
        }
        _ => false,
    }
}

fn syns(w: &mut Worker, src: Addr, first_port: u16, n: u16, now: u64) -> u16 {
    (0..n).filter(|i| syn(w, src, first_port + i, now)).count() as u16
}

const A: Addr = CIP;
const B: Addr = Addr::v4(10, 0, 7, 9);

#[test]
fn per_source_conn_rate_lets_a_burst_through_partly() {
    // 1 new connection per second per source, bursts of 3.
    let mut w = worker(limited(1, LimitSet::default(), conn_rate(1, 3), 32));
    assert_eq!(syns(&mut w, A, 1000, 10, 0), 3, "the burst, no more");
    assert_eq!(drops(&w, DropReason::LimitSrcConnRate), 7);
    assert_eq!(drops_of(&w, LimitKind::SrcConnRate), 7);
    // Another source is not affected.
    assert_eq!(syns(&mut w, B, 1000, 3, 0), 3);
    // Refused SYNs took no local port and made no connection.
    assert_eq!(w.conns().len(), 6);
    assert_eq!(w.pool_usage(&LIP).map(|u| u.0), Some(6));
    // The bucket refills at the rate: one more after a second, not two.
    assert_eq!(syns(&mut w, A, 2000, 1, 999), 0);
    assert_eq!(syns(&mut w, A, 2000, 5, 1000), 1);
    assert_eq!(drops(&w, DropReason::LimitSrcConnRate), 7 + 1 + 4);
    assert_eq!(w.drops().total(), 12, "{:?}", w.drops().nonzero());
}

#[test]
fn a_source_prefix_shares_its_limit() {
    let mut w = worker(limited(1, LimitSet::default(), conn_rate(1, 2), 24));
    assert_eq!(syns(&mut w, Addr::v4(10, 0, 7, 1), 1000, 1, 0), 1);
    assert_eq!(
        syns(&mut w, Addr::v4(10, 0, 7, 2), 1000, 5, 0),
        1,
        "same /24"
    );
    assert_eq!(
        syns(&mut w, Addr::v4(10, 0, 8, 2), 1000, 5, 0),
        2,
        "another /24"
    );
}

#[test]
fn per_service_conn_rate_holds_across_sources() {
    let mut w = worker(limited(1, conn_rate(5, 5), LimitSet::default(), 32));
    let made = (0..10u8)
        .filter(|i| syn(&mut w, Addr::v4(10, 0, 9, *i), 1000, 0))
        .count();
    assert_eq!(made, 5);
    assert_eq!(drops(&w, DropReason::LimitConnRate), 5);
    // 5 per second: one more every 200 ms.
    assert!(!syn(&mut w, Addr::v4(10, 0, 9, 50), 1000, 199));
    assert!(syn(&mut w, Addr::v4(10, 0, 9, 51), 1000, 200));
    assert_eq!(drops_of(&w, LimitKind::ConnRate), 6);
}

#[test]
fn two_workers_each_enforce_their_share() {
    // 4 per second with bursts of 4 for the service: 2 and 2.
    let mut w0 = worker_with(0, 64, limited(2, conn_rate(4, 4), LimitSet::default(), 32));
    let mut w1 = worker_with(1, 64, limited(2, conn_rate(4, 4), LimitSet::default(), 32));
    let mut made = 0;
    for i in 0..20u16 {
        let w = if i % 2 == 0 { &mut w0 } else { &mut w1 };
        made += u16::from(syn(w, Addr::v4(10, 0, 9, i as u8), 1000, 0));
    }
    assert_eq!(made, 4, "the workers' shares add up to the burst");
    // Over 10 s of offered overload on both: 4 + 40.
    for t in 1..=100u64 {
        for (k, w) in [&mut w0, &mut w1].into_iter().enumerate() {
            for j in 0..3u16 {
                let port = 2000 + (t as u16) * 8 + (k as u16) * 4 + j;
                made += u16::from(syn(w, A, port, t * 100));
            }
        }
    }
    assert_eq!(made, 4 + 40);
}

/// A data segment each way on the established connection `A:sport`, to
/// and from real server `rs` through local port `lport`: both forwarded.
fn exchange(w: &mut Worker, sport: u16, (rs, lport): (u8, u16), now: u64) {
    let data = from_client(sport, 80, ACK | PSH).to_vec();
    run_tx(w, &data, WAN, LAN, now);
    let reply = from_rs(rs, 80, LIP, lport, ACK | PSH).to_vec();
    run_tx(w, &reply, LAN, WAN, now);
}

#[test]
fn a_packet_rate_polices_client_packets_of_established_flows() {
    // 100 packets per second, bursts of 10; replies are not limited.
    let svc = LimitSet {
        pkt_rate: Rate::new(100, 10),
        ..LimitSet::default()
    };
    let mut w = worker(limited(1, svc, LimitSet::default(), 32));
    resolve_client(&mut w, CIP, 0);
    let (rs, lport) = establish(&mut w, 5000, 0); // 2 client packets
    let data = FrameSpec {
        payload: b"GET / HTTP/1.0\r\n\r\n",
        ..from_client(5000, 80, ACK | PSH)
    }
    .to_vec();
    let mut passed = 0;
    for _ in 0..20 {
        if let (Verdict::Transmit(LAN), out) = run(&mut w, &data, WAN, 1) {
            assert_checksums(&out);
            passed += 1;
        }
    }
    assert_eq!(passed, 8, "10 of burst, 2 taken by the handshake");
    assert_eq!(drops(&w, DropReason::LimitPktRate), 12);
    // The real server's answers are not limited.
    for _ in 0..20 {
        run_tx(
            &mut w,
            &from_rs(rs, 80, LIP, lport, ACK | PSH).to_vec(),
            LAN,
            WAN,
            1,
        );
    }
    // 100 per second: one every 10 ms (0.1 token was left at 1 ms).
    assert!(matches!(run(&mut w, &data, WAN, 9).0, Verdict::Drop(_)));
    assert_eq!(run(&mut w, &data, WAN, 10).0, Verdict::Transmit(LAN));
    assert!(matches!(run(&mut w, &data, WAN, 10).0, Verdict::Drop(_)));
    assert_eq!(drops_of(&w, LimitKind::PktRate), 14);
}

#[test]
fn a_per_source_bit_rate_limits_one_source_only() {
    // 80 kbit/s per source (10,000 bytes/s), bursts of 3,000 bytes.
    let src = LimitSet {
        byte_rate: Rate::new(10_000, 3_000),
        ..LimitSet::default()
    };
    let mut w = worker(limited(1, LimitSet::default(), src, 32));
    let payload = [0x55u8; 960]; // 1,000 bytes of IP with the headers
    let seg = |src: Addr, sport: u16, flags: u8| {
        FrameSpec {
            payload: &payload,
            ..FrameSpec::tcp(src, sport, lab::VIP, 80, flags)
        }
        .to_vec()
    };
    assert!(syn(&mut w, A, 6000, 0)); // 40 bytes
    assert!(syn(&mut w, B, 6000, 0));
    let mut a_passed = 0;
    let mut b_passed = 0;
    for _ in 0..5 {
        a_passed += u32::from(run(&mut w, &seg(A, 6000, ACK), WAN, 0).0 == Verdict::Transmit(LAN));
    }
    b_passed += u32::from(run(&mut w, &seg(B, 6000, ACK), WAN, 0).0 == Verdict::Transmit(LAN));
    // 3,000 - 40 bytes left after the SYN: two segments of 1,000, then
    // 960 left, less than a segment: the others are refused.
    assert_eq!(a_passed, 2);
    assert_eq!(b_passed, 1, "another source has its own bucket");
    assert_eq!(drops(&w, DropReason::LimitSrcBitRate), 3);
    assert_eq!(drops_of(&w, LimitKind::SrcByteRate), 3);
    // 10,000 bytes per second: 4 ms bring the 40 bytes missing.
    let late = |w: &mut Worker, t| run(w, &seg(A, 6000, ACK), WAN, t).0;
    assert_eq!(late(&mut w, 3), Verdict::Drop(DropReason::LimitSrcBitRate));
    assert_eq!(late(&mut w, 4), Verdict::Transmit(LAN));
}

#[test]
fn concurrent_connection_limits_per_service_and_source() {
    let svc = LimitSet {
        max_conns: 3,
        ..LimitSet::default()
    };
    let src = LimitSet {
        max_conns: 2,
        ..LimitSet::default()
    };
    let mut w = worker(limited(1, svc, src, 32));
    resolve_client(&mut w, CIP, 0);
    let (rs, lport) = establish(&mut w, 7000, 0);
    establish(&mut w, 7001, 0);
    assert!(!syn(&mut w, A, 7002, 0), "a third from A");
    assert_eq!(drops(&w, DropReason::LimitSrcConns), 1);
    assert!(syn(&mut w, B, 7000, 0));
    assert!(!syn(&mut w, B, 7001, 0), "a fourth for the service");
    assert_eq!(drops(&w, DropReason::LimitConns), 1);
    // Established connections keep flowing while new ones are refused.
    exchange(&mut w, 7000, (rs, lport), 1);
    // A's first connection ends (RST): once it is gone, A may open one.
    run_tx(&mut w, &from_client(7000, 80, RST).to_vec(), WAN, LAN, 2);
    w.tick(60_000);
    assert_eq!(
        w.conns().len(),
        1,
        "A's second (B's half-open one timed out too)"
    );
    assert!(syn(&mut w, A, 7003, 60_000));
    assert!(!syn(&mut w, A, 7004, 60_000), "two again");
}

#[test]
fn limits_change_live_and_counts_survive_a_new_snapshot() {
    let svc = LimitSet {
        max_conns: 1,
        ..LimitSet::default()
    };
    let mut w = worker(limited(1, svc, LimitSet::default(), 32));
    assert!(syn(&mut w, A, 8000, 0));
    assert!(!syn(&mut w, A, 8001, 0));
    // The same limit in a new snapshot: the connection is still counted.
    w.set_snapshot(Arc::new(limited(1, svc, LimitSet::default(), 32)), 1);
    assert!(!syn(&mut w, A, 8002, 1));
    // Limits removed: new connections pass.
    w.set_snapshot(Arc::new(lab::tutorial_fnat(1)), 2);
    assert_eq!(syns(&mut w, A, 8100, 5, 2), 5);
    // Back: the service holds 6 connections, over its limit of 1.
    w.set_snapshot(Arc::new(limited(1, svc, LimitSet::default(), 32)), 3);
    assert!(!syn(&mut w, B, 8003, 3));
    assert_eq!(drops(&w, DropReason::LimitConns), 3);
}

#[test]
fn a_service_without_limits_is_not_touched() {
    // Another service (id 2 does not exist) has limits: the tutorial's is free.
    let snap = lab::tutorial_fnat(1).with_limits(vec![(
        2,
        Arc::new(ServiceLimits {
            service: conn_rate(1, 1),
            source: conn_rate(1, 1),
            src_plen_v4: 32,
            src_plen_v6: 128,
            drops: Arc::new(LimitDrops::new(1)),
        }),
    )]);
    let mut w = worker(snap);
    assert_eq!(syns(&mut w, A, 9000, 50, 0), 50);
    assert_eq!(w.drops().total(), 0);
}

#[test]
fn a_full_table_refuses_new_flows_and_keeps_established_ones() {
    // Room for 8 connections; one established, then a flood of spoofed SYNs.
    let mut w = worker_with(0, 8, lab::tutorial_fnat(1));
    resolve_client(&mut w, CIP, 0);
    let (rs, lport) = establish(&mut w, 10_000, 0);
    let flood = (0..100u16)
        .filter(|i| syn(&mut w, Addr::v4(10, 0, 200, *i as u8), 1024 + i, 1))
        .count();
    assert_eq!(flood, 7, "the table fills");
    assert_eq!(drops(&w, DropReason::ConnTableFull), 93);
    assert_eq!(
        w.pool_usage(&LIP).map(|u| u.0),
        Some(8),
        "refused SYNs hold no port"
    );
    // The established connection is unharmed, both ways.
    for t in 2..5 {
        exchange(&mut w, 10_000, (rs, lport), t);
    }
    // A new client is refused until the half-open ones time out (30 s).
    assert!(!syn(&mut w, B, 10_001, 10));
    assert_eq!(drops(&w, DropReason::ConnTableFull), 94);
    w.tick(31_000);
    assert!(syn(&mut w, B, 10_001, 31_000));
    run_tx(
        &mut w,
        &from_client(10_000, 80, ACK).to_vec(),
        WAN,
        LAN,
        31_000,
    );
}

/// A worker over the tutorial's service with a per-source limit of 10 new
/// connections per second (bursts of 5) and a source table of 64 slots.
fn small_table_worker(conns: usize) -> Worker {
    let mut snap = limited(1, LimitSet::default(), conn_rate(10, 5), 32);
    snap.conf.limit_sources = 64;
    worker_with(0, conns, snap)
}

/// Flood source `n`: a distinct address in 10.1.0.0/16 (routed on the WAN).
fn flood_src(n: u32) -> Addr {
    Addr::v4(10, 1, (n >> 8) as u8, n as u8)
}

/// For `ms` milliseconds, source A sends a SYN every millisecond and
/// `per_ms` new sources ([`flood_src`]) one each: (A's SYNs forwarded, the
/// new sources' SYNs forwarded).
fn flood(w: &mut Worker, ms: u64, per_ms: u32) -> (u32, u32) {
    let (mut a, mut new) = (0, 0);
    let mut n = 0u32;
    for t in 0..ms {
        a += u32::from(syn(w, A, 1024 + t as u16, t));
        for _ in 0..per_ms {
            new += u32::from(syn(w, flood_src(n), 1024, t));
            n += 1;
        }
    }
    (a, new)
}

#[test]
fn a_source_at_its_limit_stays_limited_under_a_flood_of_new_sources() {
    // For a second, source A sends a SYN every millisecond while 3 new
    // sources a millisecond (3,000 in all, 47 times the table) arrive: A is
    // seen more often than its set fills, so it keeps its bucket: the burst
    // and 10 per second, no more.
    let mut w = small_table_worker(8192);
    let (a, new) = flood(&mut w, 1000, 3);
    assert_eq!(new, 3000, "every new source has its burst");
    assert_eq!(a, 5 + 9, "5 at once, then one every 100 ms until 999 ms");
    assert_eq!(drops(&w, DropReason::LimitSrcConnRate), 1000 - 14);
}

#[test]
fn a_flood_larger_than_the_table_between_two_packets_lets_a_source_escape() {
    // The documented limit of the bounded table: with 200 new sources a
    // millisecond (three times the table) between two of A's SYNs, A's
    // entry is evicted every time and it comes back with a full bucket.
    // Against this, the service-wide limits are the defence.
    let mut w = small_table_worker(16384);
    let (a, _) = flood(&mut w, 50, 200);
    assert!(a > 40, "A got {a} of 50 through: evicted between its SYNs");
}

//! The fast path's bookkeeping (`PipelineConf::fast_path`): which FNAT
//! directions are offered to the I/O layer and when they are withdrawn.

use std::collections::HashSet;

use super::util::*;
use crate::addr::{proto, Mac};
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::{FastEvent, FastKey, Worker};
use crate::sched::SchedKind;
use crate::snapshot::Snapshot;
use crate::wire::tcp::flags::*;

fn on(mut s: Snapshot) -> Snapshot {
    s.conf.fast_path = true;
    s
}

fn events(w: &mut Worker) -> Vec<FastEvent> {
    let mut v = Vec::new();
    w.take_fast(|e| v.push(*e));
    v
}

fn key(port: u16, p: u8, s: crate::addr::Addr, sp: u16, d: crate::addr::Addr, dp: u16) -> FastKey {
    FastKey {
        port,
        proto: p,
        src: s.v4_bytes(),
        dst: d.v4_bytes(),
        sport: sp,
        dport: dp,
    }
}

/// The client's and the RS's data segments of an established connection
/// (the TCP data segment also carrying TOA).
fn data(w: &mut Worker, rs: u8, lport: u16, now: u64) {
    let c = FrameSpec {
        payload: b"GET /",
        ..from_client(40000, 80, ACK | PSH)
    };
    run_tx(w, &c.to_vec(), WAN, LAN, now);
    let r = FrameSpec {
        payload: b"200 OK",
        ..from_rs(rs, 80, LIP, lport, ACK | PSH)
    };
    run_tx(w, &r.to_vec(), LAN, WAN, now);
}

/// An FNAT TCP connection is offered direction by direction once it is
/// ESTABLISHED with its TOA sent (not during the handshake), with the
/// translation and MACs its frames left with; once only; and withdrawn
/// when a FIN reaches the worker.
#[test]
fn fnat_tcp_directions_are_offered_once_established_and_withdrawn_on_fin() {
    let mut w = worker(on(lab::tutorial_fnat(1)));
    resolve_client(&mut w, CIP, 0);
    let (rs, lport) = establish(&mut w, 40000, 0);
    assert_eq!(events(&mut w), vec![], "nothing during the handshake");
    data(&mut w, rs, lport, 1);
    let rip = lab::rs_ip(rs);
    let k_in = key(WAN, proto::TCP, CIP, 40000, VIP, 80);
    let k_out = key(LAN, proto::TCP, rip, 80, LIP, lport);
    assert_eq!(
        events(&mut w),
        vec![
            FastEvent::Add {
                key: k_in,
                new: key(LAN, proto::TCP, LIP, lport, rip, 80),
                dmac: lab::rs_mac(rs),
                smac: lab::LAN_MAC,
            },
            FastEvent::Add {
                key: k_out,
                new: key(WAN, proto::TCP, VIP, 80, CIP, 40000),
                dmac: lab::CLIENT_MAC,
                smac: lab::WAN_MAC,
            },
        ]
    );
    data(&mut w, rs, lport, 2);
    assert_eq!(events(&mut w), vec![], "offered once");
    run_tx(
        &mut w,
        &from_client(40000, 80, FIN | ACK).to_vec(),
        WAN,
        LAN,
        3,
    );
    assert_eq!(
        events(&mut w),
        vec![FastEvent::Remove(k_in), FastEvent::Remove(k_out)]
    );
}

/// A due connection with offered directions stays while the I/O layer says
/// they carried packets (asked for each), and goes, withdrawn, when not.
#[test]
fn expiry_keeps_connections_whose_fast_directions_moved() {
    let mut w = worker(on(lab::tutorial_fnat(1)));
    resolve_client(&mut w, CIP, 0);
    let (rs, lport) = establish(&mut w, 40000, 0);
    data(&mut w, rs, lport, 1);
    assert_eq!(events(&mut w).len(), 2);
    let mut asked = HashSet::new();
    let t = w.snapshot().timeouts.established_ms as u64;
    let mut now = 1;
    for _ in 0..3 {
        now += t + 1000;
        w.tick_fast(
            now,
            Some(&mut |k: &FastKey| {
                asked.insert(*k);
                true
            }),
        );
        assert_eq!(w.conns().len(), 1, "alive outside the worker: kept");
    }
    assert_eq!(asked.len(), 2, "both directions asked");
    assert_eq!(events(&mut w), vec![]);
    now += t + 1000;
    w.tick_fast(now, Some(&mut |_: &FastKey| false));
    assert_eq!(w.conns().len(), 0, "idle: gone");
    let ev = events(&mut w);
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|e| matches!(e, FastEvent::Remove(_))));
}

/// UDP FNAT directions are offered on their first packet; nothing is
/// offered with the fast path off (the default).
#[test]
fn fnat_udp_is_offered_and_nothing_is_without_the_option() {
    let dests = [DestSpec::new(lab::rs_ip(0), 53, FwdMode::Fnat)];
    for fast in [true, false] {
        let svc = vs(2, proto::UDP, 53, SchedKind::Rr, &dests, 0);
        let s = lab::snapshot(1, vec![svc], 2);
        let mut w = worker(if fast { on(s) } else { s });
        resolve_client(&mut w, CIP, 0);
        let out = run_tx(
            &mut w,
            &FrameSpec::udp(CIP, 20000, VIP, 53, b"q").to_vec(),
            WAN,
            LAN,
            1,
        );
        let lport = be16(&out, 34);
        let r = FrameSpec {
            src_mac: lab::rs_mac(0),
            dst_mac: lab::LAN_MAC,
            ..FrameSpec::udp(lab::rs_ip(0), 53, LIP, lport, b"a")
        };
        run_tx(&mut w, &r.to_vec(), LAN, WAN, 2);
        let ev = events(&mut w);
        if !fast {
            assert_eq!(ev, vec![]);
            continue;
        }
        let keys: Vec<(FastKey, Mac)> = ev
            .iter()
            .map(|e| match e {
                FastEvent::Add { key, dmac, .. } => (*key, *dmac),
                e => panic!("unexpected {e:?}"),
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                (key(WAN, proto::UDP, CIP, 20000, VIP, 53), lab::rs_mac(0)),
                (
                    key(LAN, proto::UDP, lab::rs_ip(0), 53, LIP, lport),
                    lab::CLIENT_MAC
                ),
            ]
        );
    }
}

/// Packets the I/O layer forwarded for an offered direction, once counted,
/// show in the service's and the destination's counters of that direction
/// (in for the client's, out for the RS's) and in the flow log's end
/// record; a direction without a connection counts nothing.
#[test]
fn fast_counts_go_to_the_service_dest_and_flow_log_in_their_direction() {
    let mut w = worker(on(lab::tutorial_fnat(1)));
    w.enable_flow_log(16);
    resolve_client(&mut w, CIP, 0);
    let (rs, lport) = establish(&mut w, 40000, 0);
    data(&mut w, rs, lport, 1);
    assert_eq!(events(&mut w).len(), 2);
    let svc = w.snapshot().services[0].clone();
    let (st0, ds0) = (svc.stats.sum(), svc.dests[rs as usize].stats.sum());
    let k_in = key(WAN, proto::TCP, CIP, 40000, VIP, 80);
    let k_out = key(LAN, proto::TCP, lab::rs_ip(rs), 80, LIP, lport);
    assert!(w.fast_counted(&k_in, 10, 1_000));
    assert!(w.fast_counted(&k_out, 20, 30_000));
    assert!(w.fast_counted(&k_in, 1, 52), "deltas add up");
    let stray = key(WAN, proto::TCP, CIP, 40001, VIP, 80);
    assert!(!w.fast_counted(&stray, 5, 500), "no such connection");
    for (now, was) in [
        (svc.stats.sum(), st0),
        (svc.dests[rs as usize].stats.sum(), ds0),
    ] {
        assert_eq!(now.inpkts - was.inpkts, 11);
        assert_eq!(now.inbytes - was.inbytes, 1_052);
        assert_eq!(now.outpkts - was.outpkts, 20);
        assert_eq!(now.outbytes - was.outbytes, 30_000);
        assert_eq!(now.conns, was.conns);
    }
    let mut recs = Vec::new();
    w.drain_flow_log(|r| recs.push(*r));
    let worker_pkts = 3 + 2; // the handshake's and the data segments
    let t = w.snapshot().timeouts.established_ms as u64;
    w.tick_fast(t + 10_000, Some(&mut |_: &FastKey| false));
    assert_eq!(w.conns().len(), 0, "expired");
    w.drain_flow_log(|r| recs.push(*r));
    let end = recs.last().expect("an end record");
    assert!(matches!(end.event, crate::pipeline::FlowEvent::End(_)));
    assert_eq!(end.counts.packets, worker_pkts + 31);
}

/// A service whose packets are policed (a packet or byte rate, on the
/// service or on each source) keeps its connections on the workers: the
/// XDP program does not police.
#[test]
fn services_with_packet_or_byte_rates_are_not_offered() {
    use crate::limit::{LimitDrops, LimitSet, Rate, ServiceLimits};
    use std::sync::Arc;
    let rate = Rate::new(1_000_000, 1_000_000);
    let sets = [
        (
            LimitSet {
                pkt_rate: rate,
                ..Default::default()
            },
            LimitSet::default(),
        ),
        (
            LimitSet::default(),
            LimitSet {
                byte_rate: rate,
                ..Default::default()
            },
        ),
    ];
    for (service, source) in sets {
        let snap = lab::tutorial_fnat(1).with_limits(vec![(
            1,
            Arc::new(ServiceLimits {
                service,
                source,
                src_plen_v4: 32,
                src_plen_v6: 128,
                drops: Arc::new(LimitDrops::new(1)),
            }),
        )]);
        let mut w = worker(on(snap));
        resolve_client(&mut w, CIP, 0);
        let (rs, lport) = establish(&mut w, 40000, 0);
        data(&mut w, rs, lport, 1);
        assert_eq!(
            events(&mut w),
            vec![],
            "{service:?} {source:?}: nothing offered"
        );
    }
}

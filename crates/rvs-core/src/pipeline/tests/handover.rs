//! A worker's whole state handed over to a fresh worker with the same
//! configuration (issue 14's PRECOPY: [`Worker::export_local`] and
//! [`Worker::install_local`] through the version 4 wire format): what an
//! operator checks is the same on both (the connection listing, local port
//! ownership, dest gauges, counters), the next packets of every moved
//! connection leave the new worker byte for byte as they leave the old, and
//! no moved connection expires earlier than on the old.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::synproxy::seg;
use super::util::*;
use crate::addr::{proto, Addr, PortId};
use crate::conn::tcp::TcpState;
use crate::conn::{flags, local_flags, Conn, FwdMode};
use crate::lab::{self, DestSpec, FrameSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::sched::SchedKind;
use crate::snapshot::Snapshot;
use crate::sync::{encode_local, Header, LocalMessage, LocalRecord, Source};
use crate::wire::proxy_proto::Version;
use crate::wire::tcp::flags::*;

/// Sends records through the hand-over wire format, in messages of at most
/// 64 KiB, and decodes them as a local stream.
pub(super) fn ship(recs: &[LocalRecord]) -> Vec<LocalRecord> {
    let (mut out, mut rest, mut seq) = (Vec::new(), recs, 0);
    let mut buf = vec![0u8; 65535];
    while !rest.is_empty() {
        let h = Header {
            sync_id: 0,
            node: 1,
            seq,
        };
        let (len, n) = encode_local(&mut buf, h, rest).unwrap();
        let m = LocalMessage::parse(&buf[..len], Source::Local).unwrap();
        out.extend(m.records());
        (rest, seq) = (&rest[n..], seq + 1);
    }
    assert_eq!(out, recs);
    out
}

/// The whole hand-over of `old` to `new` at `now`: the table swept 7 slots
/// at a time, the neighbours, the counters; then the workers start.
pub(super) fn hand_over(old: &Worker, new: &mut Worker, now: u64) {
    let mut recs = Vec::new();
    let mut at = Some(0);
    while let Some(s) = at {
        at = old.export_local(s, 7, now, |l| recs.push(LocalRecord::Conn(l)));
    }
    old.export_neigh(now, |n| recs.push(LocalRecord::Neigh(n)));
    for r in ship(&recs) {
        match r {
            LocalRecord::Conn(l) => {
                new.install_local(&l, now)
                    .unwrap_or_else(|e| panic!("{e}: {l:?}"));
            }
            LocalRecord::Neigh(n) => new.install_neigh(&n, now).unwrap(),
            LocalRecord::Remove(t) => assert!(new.remove_local(&t)),
        }
    }
    new.add_counters(&old.export_counters());
    new.start_imported(now);
}

fn origin(c: &Conn) -> &'static str {
    match (c.flags & flags::FOREIGN != 0, c.flags & flags::SYNCED != 0) {
        (true, _) => "foreign",
        (_, true) => "synced",
        _ => "local",
    }
}

/// What `rvsadm -lnc` shows of each connection (rvsd's `conn_info`, less
/// the time left), sorted; then every template.
pub(super) fn listing(w: &Worker) -> Vec<String> {
    let mut v = Vec::new();
    let mut at = Some(0);
    while let Some(s) = at {
        at = w.scan_conns(s, 5, |_, c| {
            let state = match c.proto {
                proto::TCP => TcpState::from_u8(c.state).map_or("NONE", |s| s.name()),
                _ => "-",
            };
            let local = matches!(c.mode, FwdMode::Fnat | FwdMode::Snat).then_some((c.lip, c.lport));
            v.push(format!(
                "{} {state} {}:{} -> {}:{} via {local:?} -> {}:{} {}",
                c.proto,
                c.cip,
                c.cport,
                c.vip,
                c.vport,
                c.rip,
                c.rport,
                origin(c)
            ));
            true
        });
    }
    for (_, t) in w.conns().iter().filter(|(_, c)| c.is_template()) {
        v.push(format!(
            "template {:?} -> {}:{}",
            t.in_tuple(),
            t.rip,
            t.rport
        ));
    }
    v.sort();
    v
}

/// Everything else a connection holds that the next packets depend on.
fn details(w: &Worker) -> Vec<String> {
    let mut v: Vec<String> = w
        .conns()
        .iter()
        .map(|(_, c)| {
            format!(
                "{:?} {:?} flags {:#06x} fast {} ports {}/{} mac {} sp {}/{}",
                c.in_tuple(),
                c.mode,
                c.flags,
                c.local_flags & (local_flags::FAST_IN | local_flags::FAST_OUT),
                c.in_port,
                c.out_port,
                c.in_mac,
                c.sp_seq,
                c.sp_ts
            )
        })
        .collect();
    v.sort();
    v
}

/// Each dest's (active, inactive) and each service's and dest's counters.
fn gauges_and_counters(w: &Worker) -> Vec<String> {
    let mut v = Vec::new();
    for s in &w.snapshot().services {
        v.push(format!("{:?} {:?}", s.key, s.stats.sum()));
        for d in &s.dests {
            v.push(format!("  {}:{} {:?}", d.addr, d.port, d.stats.sum()));
        }
    }
    v
}

/// Asserts that the operator sees the same on both workers.
pub(super) fn assert_same(old: &Worker, new: &Worker, pools: &[Addr]) {
    assert_eq!(listing(new), listing(old), "the connection listing");
    assert_eq!(
        details(new),
        details(old),
        "flags, ports, previous hops, shifts"
    );
    assert_eq!(gauges_and_counters(new), gauges_and_counters(old));
    assert_eq!(new.conn_count(), old.conn_count());
    for a in pools {
        let (u_old, f_old, _) = old.pool_usage(a).unwrap();
        let (u_new, f_new, _) = new.pool_usage(a).unwrap();
        assert_eq!((u_new, f_new), (u_old, f_old), "pool of {a}: used, free");
    }
}

/// Every moved connection expires on `new` no earlier than on `old`, and
/// at most one refresh timeout later than `now`.
fn assert_expiry_not_earlier(old: &Worker, new: &Worker, now: u64) {
    for (_, c) in old.conns().iter() {
        let (id, _) = new.conns().lookup(&c.in_tuple()).expect("moved");
        let n = new.conns().get(id).expires_ms();
        assert!(
            n >= c.expires_ms(),
            "{:?}: {n} < {}",
            c.in_tuple(),
            c.expires_ms()
        );
        assert!(n <= c.expires_ms().max(now + 900_000), "{:?}", c.in_tuple());
    }
}

/// Runs `f` on both workers: the same verdict and the same bytes.
pub(super) fn both(
    old: &mut Worker,
    new: &mut Worker,
    f: &[u8],
    port: PortId,
    now: u64,
) -> Vec<u8> {
    let (v_old, out_old) = run(old, f, port, now);
    let (v_new, out_new) = run(new, f, port, now);
    assert!(
        matches!(v_old, Verdict::Transmit(_)),
        "{v_old:?}: {:?}",
        old.drops().nonzero()
    );
    assert_eq!(
        v_new,
        v_old,
        "verdict; drops on new: {:?}",
        new.drops().nonzero()
    );
    assert_eq!(out_new, out_old, "bytes");
    out_old
}

const RS_PORT: u16 = 8080;

/// One VIP with a service per forwarding mode; FNAT TCP with persistence,
/// FNAT UDP, FNAT TCP with the PROXY protocol.
fn modes_lab() -> Snapshot {
    let two = |mode, port| {
        [
            DestSpec::new(lab::rs_ip(0), port, mode),
            DestSpec::new(lab::rs_ip(1), port, mode),
        ]
    };
    let mut pp = vs(6, proto::TCP, 85, SchedKind::Rr, &two(FwdMode::Fnat, 80), 0);
    Arc::get_mut(&mut pp).unwrap().proxy_protocol = Version::V1;
    let services = vec![
        vs(
            1,
            proto::TCP,
            80,
            SchedKind::Rr,
            &two(FwdMode::Fnat, 80),
            300_000,
        ),
        vs(2, proto::UDP, 53, SchedKind::Rr, &two(FwdMode::Fnat, 53), 0),
        vs(3, proto::TCP, 82, SchedKind::Rr, &two(FwdMode::Dr, 0), 0),
        vs(
            4,
            proto::TCP,
            83,
            SchedKind::Rr,
            &two(FwdMode::Nat, RS_PORT),
            0,
        ),
        vs(
            5,
            proto::TCP,
            84,
            SchedKind::Rr,
            &two(FwdMode::Tunnel, 0),
            0,
        ),
        pp,
    ];
    lab::snapshot(1, services, 2)
}

/// The RS index and source port of a frame rvs sent to a real server.
fn to_rs(out: &[u8]) -> (u8, u16) {
    let d = v4_src_dst(out).1;
    let rs = (0..2).find(|&i| lab::rs_ip(i) == d).expect("to a RS");
    (rs, be16(out, 34))
}

fn data<'a>(cport: u16, vport: u16, payload: &'a [u8]) -> FrameSpec<'a> {
    FrameSpec {
        payload,
        ..from_client(cport, vport, ACK | PSH)
    }
}

#[test]
fn every_mode_and_state_moves_and_continues_byte_for_byte() {
    let mut old = worker(modes_lab());
    old.enable_flow_log(64);
    resolve_client(&mut old, CIP, 0);
    let tx = |w: &mut Worker, f: FrameSpec, from, to, now| run_tx(w, &f.to_vec(), from, to, now);
    // FNAT TCP: established, SYN_RECV, FIN_WAIT (client closed first).
    let est = establish(&mut old, 1000, 1);
    let half = to_rs(&tx(&mut old, from_client(1001, 80, SYN), WAN, LAN, 2));
    let fin = establish(&mut old, 1002, 3);
    tx(&mut old, from_client(1002, 80, FIN | ACK), WAN, LAN, 4);
    // FNAT UDP, answered.
    let q = FrameSpec::udp(CIP, 2000, VIP, 53, b"query");
    let udp = to_rs(&tx(&mut old, q, WAN, LAN, 5));
    let a = FrameSpec {
        src_mac: lab::rs_mac(udp.0),
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::udp(lab::rs_ip(udp.0), 53, LIP, udp.1, b"answer")
    };
    tx(&mut old, a, LAN, WAN, 6);
    // DR, NAT and TUNNEL: SYN then ACK (NAT: the RS's SYN-ACK between).
    for vport in [82, 83, 84] {
        tx(&mut old, from_client(3000 + vport, vport, SYN), WAN, LAN, 7);
        if vport == 83 {
            // rr: the first NAT connection went to RS 0.
            let sa = from_rs(0, RS_PORT, CIP, 3083, SYN | ACK);
            tx(&mut old, sa, LAN, WAN, 7);
        }
        tx(&mut old, from_client(3000 + vport, vport, ACK), WAN, LAN, 8);
    }
    // PROXY protocol: handshake done, no data yet (the header is due).
    let syn = run_tx(
        &mut old,
        &seg(from_client(6000, 85, SYN), 100, 0, 502),
        WAN,
        LAN,
        9,
    );
    let pp = to_rs(&syn);
    let sa = seg(from_rs(pp.0, 80, LIP, pp.1, SYN | ACK), 5000, 101, 65535);
    run_tx(&mut old, &sa, LAN, WAN, 9);
    run_tx(
        &mut old,
        &seg(from_client(6000, 85, ACK), 101, 5001, 502),
        WAN,
        LAN,
        9,
    );
    assert_eq!(old.conns().len(), 9, "eight connections and a template");

    // The hand-over, 1 s later; the new worker learns the client's MAC from it.
    let mut new = worker(modes_lab());
    new.enable_flow_log(64);
    hand_over(&old, &mut new, 1_000);
    assert_same(&old, &new, &[LIP]);
    assert_expiry_not_earlier(&old, &new, 1_000);
    let moved: Vec<u16> = old
        .conns()
        .iter()
        .filter(|(_, c)| c.mode == FwdMode::Fnat && !c.is_template())
        .map(|(_, c)| c.lport)
        .collect();

    // The next packets of every connection, both ways where the LB sees both.
    let t = 2_000;
    both(
        &mut old,
        &mut new,
        &data(1000, 80, b"GET /").to_vec(),
        WAN,
        t,
    );
    let r = FrameSpec {
        payload: b"200",
        ..from_rs(est.0, 80, LIP, est.1, ACK | PSH)
    };
    both(&mut old, &mut new, &r.to_vec(), LAN, t);
    both(
        &mut old,
        &mut new,
        &from_rs(half.0, 80, LIP, half.1, SYN | ACK).to_vec(),
        LAN,
        t,
    );
    both(
        &mut old,
        &mut new,
        &from_rs(fin.0, 80, LIP, fin.1, FIN | ACK).to_vec(),
        LAN,
        t,
    );
    both(
        &mut old,
        &mut new,
        &from_client(1002, 80, ACK).to_vec(),
        WAN,
        t,
    );
    both(
        &mut old,
        &mut new,
        &FrameSpec::udp(CIP, 2000, VIP, 53, b"again").to_vec(),
        WAN,
        t,
    );
    both(&mut old, &mut new, &a.to_vec(), LAN, t);
    for vport in [82, 83, 84] {
        both(
            &mut old,
            &mut new,
            &data(3000 + vport, vport, b"data").to_vec(),
            WAN,
            t,
        );
    }
    let nat = FrameSpec {
        payload: b"ok",
        ..from_rs(0, RS_PORT, CIP, 3083, ACK | PSH)
    };
    both(&mut old, &mut new, &nat.to_vec(), LAN, t);
    let first = both(
        &mut old,
        &mut new,
        &seg(data(6000, 85, b"GET /"), 101, 5001, 502),
        WAN,
        t,
    );
    let p = String::from_utf8_lossy(tcp_payload(&first)).to_string();
    assert!(
        p.starts_with("PROXY TCP4 "),
        "the header on the new too: {p:?}"
    );
    let ack = seg(from_rs(pp.0, 80, LIP, pp.1, ACK), 5001, 101 + 5 + 42, 65535);
    both(&mut old, &mut new, &ack, LAN, t);
    assert_same(&old, &new, &[LIP]);

    // New connections: the template sends the client to the same RS; no
    // local port is a moved connection's (a fresh pool would hand those
    // out first).
    let out = run_tx(&mut new, &from_client(1003, 80, SYN).to_vec(), WAN, LAN, t);
    assert_eq!(to_rs(&out).0, est.0, "persistence");
    let mut fresh = BTreeSet::from([to_rs(&out).1]);
    for cport in 7000..7200 {
        let out = run_tx(&mut new, &from_client(cport, 85, SYN).to_vec(), WAN, LAN, t);
        fresh.insert(to_rs(&out).1);
    }
    assert_eq!(fresh.len(), 201);
    let taken: Vec<&u16> = fresh.iter().filter(|p| moved.contains(p)).collect();
    assert!(
        taken.is_empty(),
        "ports of moved connections handed out: {taken:?}"
    );
    let moved_ports = old.pool_usage(&LIP).unwrap().0;
    assert_eq!(moved_ports, 5, "FNAT TCP x3, UDP, PROXY");
    assert_eq!(new.pool_usage(&LIP).unwrap().0, moved_ports + 201);
}

//! PROXY protocol connections through connection sync: a peer that installs
//! one (encoded and decoded as version 3) keeps inserting the header's room
//! into the client's sequence numbers and taking it out of the real
//! server's acknowledgements, alone and composed with the SYN proxy.

use std::sync::Arc;

use super::proxy_proto::{blocks, open, pp_lab, sack, sp_handshake, v2_header, SP_RISN, V1};
use super::synproxy::{client, rs, sp_lab, tx, CPORT};
use super::util::*;
use crate::addr::proto;
use crate::conn::{flags, FwdMode, Tuple};
use crate::lab::{self, LAN, LIP, VIP, WAN};
use crate::pipeline::Worker;
use crate::sync::{encode, Header, Message, Record, SyncConn, VERSION_PROXY};
use crate::wire::proxy_proto::Version;
use crate::wire::tcp::flags::*;

/// The connection of `w` as a peer receives it: exported, encoded (in
/// version 3), decoded.
fn over_the_wire(w: &Worker, now: u64) -> SyncConn {
    let t = Tuple::new(proto::TCP, CIP, CPORT, VIP, 80);
    let id = w.conns().lookup(&t).expect("the connection").0;
    let c = w.export_conn(id, now).unwrap();
    let mut buf = [0u8; 256];
    let (len, _) = encode(&mut buf, Header::default(), &[Record::Update(c)]).unwrap();
    assert_eq!(buf[4], VERSION_PROXY, "a PROXY connection needs version 3");
    match Message::parse(&buf[..len]).unwrap().records().next() {
        Some(Record::Update(s)) => s,
        r => panic!("{r:?}"),
    }
}

/// A worker of `snap` that installed `s`, as a backup does.
fn peer_with(snap: crate::snapshot::Snapshot, s: &SyncConn, now: u64) -> Worker {
    let mut peer = worker(snap);
    resolve_client(&mut peer, CIP, 0);
    peer.install_synced(s, now).unwrap();
    peer
}

/// Worker A opens a connection and sends its first data (the header goes
/// in front); A's connection is synced to worker B, which takes over: the
/// client's next segments and the real server's acknowledgements are
/// shifted on B as they were on A.
fn failover(v: Version, hdr: &[u8]) {
    let mut a = worker(pp_lab(v, true));
    resolve_client(&mut a, CIP, 0);
    let n = hdr.len() as u32;
    let (isn, risn) = (0xffff_fff0u32, 5000u32);
    let (lport, _) = open(&mut a, isn, risn);
    let s = isn.wrapping_add(1);
    let get = client(ACK | PSH, vec![], b"GET /", s, risn + 1);
    let d = tx(&mut a, &get, WAN, LAN, lab::rs_mac(0), 3);
    assert_eq!((d.seq, d.payload.len()), (s, hdr.len() + 5));
    let sc = over_the_wire(&a, 4);
    let pp = if v == Version::V1 {
        flags::PROXY_V1
    } else {
        flags::PROXY_V2
    };
    assert_eq!((sc.flags & pp, sc.sp_ts), (pp, s), "{v:?}: version and S");
    let mut b = peer_with(pp_lab(v, true), &sc, 4);
    // The client's next segment: the same shifted sequence number on B.
    let more = client(ACK | PSH, vec![], b"?a=1", s.wrapping_add(5), risn + 1);
    let m = tx(&mut b, &more, WAN, LAN, lab::rs_mac(0), 5);
    assert_eq!((m.src, m.sport, m.dst), (LIP, lport, lab::rs_ip(0)));
    assert_eq!(
        (m.seq, &m.payload[..]),
        (s.wrapping_add(5 + n), &b"?a=1"[..]),
        "{v:?}: shifted by the header on the peer"
    );
    // A retransmission of the first segment gets the same header there.
    let again = tx(&mut b, &get, WAN, LAN, lab::rs_mac(0), 6);
    assert_eq!((again.seq, &again.payload), (s, &d.payload));
    // The real server's acknowledgement and SACK edges come back shifted.
    let sk = sack(&[(s.wrapping_add(n + 20), s.wrapping_add(n + 30))]);
    let ok = rs(
        ACK | PSH,
        sk,
        b"200",
        lport,
        risn + 1,
        s.wrapping_add(n + 9),
        1000,
    );
    let r = tx(&mut b, &ok, LAN, WAN, lab::CLIENT_MAC, 7);
    assert_eq!((r.src, r.dst, r.dport), (VIP, CIP, CPORT));
    assert_eq!(
        (r.seq, r.ack, &r.payload[..]),
        (risn + 1, s.wrapping_add(9), &b"200"[..]),
        "{v:?}: the acknowledgement in the client's space on the peer"
    );
    assert_eq!(
        blocks(&r.opts),
        vec![s.wrapping_add(20), s.wrapping_add(30)]
    );
}

#[test]
fn a_synced_proxy_v1_connection_keeps_its_shifts_on_the_peer() {
    failover(Version::V1, V1);
}

#[test]
fn a_synced_proxy_v2_connection_keeps_its_shifts_on_the_peer() {
    failover(Version::V2, &v2_header());
}

/// A connection through the SYN proxy with the PROXY protocol: both shifts
/// (the SYN proxy's on the real server's numbers, the PROXY protocol's on
/// the client's) travel in one version 3 record and compose on the peer.
#[test]
fn a_synced_syn_proxy_and_proxy_connection_keeps_both_shifts_on_the_peer() {
    let lab_v2 = || {
        let mut snap = sp_lab(FwdMode::Fnat);
        Arc::get_mut(&mut snap.services[0]).unwrap().proxy_protocol = Version::V2;
        snap
    };
    let mut w = worker(lab_v2());
    resolve_client(&mut w, CIP, 0);
    let hdr = v2_header();
    let n = hdr.len() as u32;
    let (a, s) = sp_handshake(&mut w, vec![2, 4, 5, 0xb4]);
    let (cookie, risn) = (a.seq, SP_RISN);
    let get = client(ACK | PSH, vec![], b"GET /", 101, cookie + 1);
    let d = tx(&mut w, &get, WAN, LAN, lab::rs_mac(0), 3);
    assert_eq!(d.payload, [&hdr[..], b"GET /"].concat());
    let sc = over_the_wire(&w, 4);
    assert_eq!(
        sc.flags & (flags::SYNPROXY | flags::PROXY_V2),
        flags::SYNPROXY | flags::PROXY_V2
    );
    let mut peer = peer_with(lab_v2(), &sc, 4);
    // The client's next data: its sequence number shifted by the header,
    // its acknowledgement into the real server's space.
    let more = client(ACK | PSH, vec![], b"?a=1", 106, cookie + 1);
    let m = tx(&mut peer, &more, WAN, LAN, lab::rs_mac(0), 5);
    assert_eq!(
        (m.seq, m.ack, &m.payload[..]),
        (106 + n, risn + 1, &b"?a=1"[..])
    );
    // The reply: its sequence number in the cookie's space, its
    // acknowledgement in the client's.
    let ok = rs(ACK | PSH, vec![], b"200", s.sport, risn + 1, 110 + n, 1000);
    let r = tx(&mut peer, &ok, LAN, WAN, lab::CLIENT_MAC, 6);
    assert_eq!(
        (r.seq, r.ack, &r.payload[..]),
        (cookie + 1, 110, &b"200"[..])
    );
}

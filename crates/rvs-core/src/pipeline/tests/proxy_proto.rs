//! PROXY protocol (`--proxy-protocol v1|v2`) on FNAT TCP: the header in the
//! first segment toward the real server (again on a retransmission), the
//! client's sequence numbers shifted after it and the real server's
//! acknowledgements and SACK blocks shifted back, with TOA on or off and
//! through the SYN proxy.

use std::sync::Arc;

use super::synproxy::{client, rs, sp_lab, tx, Out, CPORT};
use super::util::*;
use crate::conn::FwdMode;
use crate::lab::{self, LAN, LIP, VIP, WAN};
use crate::pipeline::Worker;
use crate::snapshot::Snapshot;
use crate::wire::proxy_proto::{Version, V2_SIGNATURE};
use crate::wire::tcp::flags::*;

/// The tutorial's FNAT service (two real servers) with the PROXY protocol.
pub(super) fn pp_lab(v: Version, toa: bool) -> Snapshot {
    let mut snap = lab::tutorial_fnat(1);
    Arc::get_mut(&mut snap.services[0]).unwrap().proxy_protocol = v;
    snap.conf.toa = toa;
    snap
}

pub(super) const V1: &[u8] = b"PROXY TCP4 10.0.0.48 10.0.0.100 40000 80\r\n";

pub(super) fn v2_header() -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12, 10, 0, 0, 48, 10, 0, 0, 100]);
    h.extend_from_slice(&CPORT.to_be_bytes());
    h.extend_from_slice(&80u16.to_be_bytes());
    h
}

/// A SACK option (two NOPs first) with these blocks.
pub(super) fn sack(blocks: &[(u32, u32)]) -> Vec<u8> {
    let mut o = vec![1, 1, 5, 2 + 8 * blocks.len() as u8];
    for (l, r) in blocks {
        o.extend_from_slice(&l.to_be_bytes());
        o.extend_from_slice(&r.to_be_bytes());
    }
    o
}

/// The SACK blocks of an option list.
pub(super) fn blocks(opts: &[u8]) -> Vec<u32> {
    let at = opts
        .windows(2)
        .position(|w| w[0] == 5)
        .expect("a SACK option");
    let n = opts[at + 1] as usize;
    opts[at + 2..at + n]
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// SYN at `isn`, the real server's SYN-ACK (MSS 1460), the client's ACK:
/// the local port and the MSS the client was given.
pub(super) fn open(w: &mut Worker, isn: u32, risn: u32) -> (u16, Vec<u8>) {
    let s = tx(
        w,
        &client(SYN, vec![2, 4, 5, 0xb4], &[], isn, 0),
        WAN,
        LAN,
        lab::rs_mac(0),
        0,
    );
    assert_eq!((s.seq, s.payload.len()), (isn, 0), "the SYN is untouched");
    let lport = s.sport;
    let sa = rs(
        SYN | ACK,
        vec![2, 4, 5, 0xb4],
        &[],
        lport,
        risn,
        isn + 1,
        65535,
    );
    let a = tx(w, &sa, LAN, WAN, lab::CLIENT_MAC, 1);
    assert_eq!(a.ack, isn + 1, "the SYN-ACK acknowledges the SYN");
    let ack = client(ACK, vec![], &[], isn + 1, risn + 1);
    let r = tx(w, &ack, WAN, LAN, lab::rs_mac(0), 2);
    assert_eq!(
        (r.seq, r.payload.len()),
        (isn + 1, 0),
        "no header before data"
    );
    (lport, a.opts)
}

/// The real server's ISN in [`sp_handshake`].
pub(super) const SP_RISN: u32 = 0x7000_0000;

/// The SYN proxy's handshake for a client ISN of 100 with SYN options
/// `opts`: rvs's SYN-ACK to the client, then (after the client's ACK) the
/// SYN rvs sends the real server, which answers with ISN [`SP_RISN`] and
/// MSS 1460. Gives the SYN-ACK to the client and the SYN to the server.
pub(super) fn sp_handshake(w: &mut Worker, opts: Vec<u8>) -> (Out, Out) {
    let syn = client(SYN, opts, &[], 100, 0);
    let a = tx(w, &syn, WAN, WAN, lab::CLIENT_MAC, 0);
    let ack = client(ACK, vec![], &[], 101, a.seq + 1);
    let s = tx(w, &ack, WAN, LAN, lab::rs_mac(0), 1);
    let sa = rs(
        SYN | ACK,
        vec![2, 4, 5, 0xb4],
        &[],
        s.sport,
        SP_RISN,
        101,
        65535,
    );
    tx(w, &sa, LAN, LAN, lab::rs_mac(0), 2);
    (a, s)
}

/// The whole life of a connection with header `hdr` (TOA on or off).
fn lifecycle(v: Version, toa: bool, hdr: &[u8]) {
    lifecycle_on(worker(pp_lab(v, toa)), toa, hdr);
}

/// [`lifecycle`] on `w` (a [`pp_lab`] worker); gives the worker back.
fn lifecycle_on(mut w: Worker, toa: bool, hdr: &[u8]) -> Worker {
    resolve_client(&mut w, CIP, 0);
    let n = hdr.len() as u32;
    let (isn, risn) = (0xffff_fff0u32, 5000u32); // the client's numbers wrap
    let (lport, mss) = open(&mut w, isn, risn);
    let room = n as u16 + if toa { 8 } else { 0 };
    let want_mss = 1460 - room;
    assert_eq!(
        mss,
        [&[2u8, 4][..], &want_mss.to_be_bytes()].concat(),
        "MSS leaves room"
    );
    let s = isn.wrapping_add(1);
    // The first data segment: the header in front, the sequence number as sent.
    let get = client(ACK | PSH, vec![], b"GET /", s, risn + 1);
    let d = tx(&mut w, &get, WAN, LAN, lab::rs_mac(0), 3);
    assert_eq!((d.src, d.sport, d.dst), (LIP, lport, lab::rs_ip(0)));
    assert_eq!(d.payload, [hdr, b"GET /"].concat());
    assert_eq!((d.seq, d.ack), (s, risn + 1));
    // Its retransmission gets the same header again, at the same place.
    let again = tx(&mut w, &get, WAN, LAN, lab::rs_mac(0), 4);
    assert_eq!((again.seq, &again.payload), (s, &d.payload));
    // Later segments are shifted by the header's length, pure ACKs too.
    let more = client(ACK | PSH, vec![], b"?a=1", s.wrapping_add(5), risn + 1);
    let m = tx(&mut w, &more, WAN, LAN, lab::rs_mac(0), 5);
    assert_eq!(
        (m.seq, &m.payload[..]),
        (s.wrapping_add(5 + n), &b"?a=1"[..])
    );
    // The real server's acknowledgements come back in the client's space.
    let ok = rs(
        ACK | PSH,
        vec![],
        b"200",
        lport,
        risn + 1,
        s.wrapping_add(n + 9),
        1000,
    );
    let r = tx(&mut w, &ok, LAN, WAN, lab::CLIENT_MAC, 6);
    assert_eq!((r.src, r.dst, r.dport), (VIP, CIP, CPORT));
    assert_eq!(
        (r.seq, r.ack, &r.payload[..]),
        (risn + 1, s.wrapping_add(9), &b"200"[..])
    );
    // One inside the header acknowledges none of the client's data.
    let part = rs(ACK, vec![], &[], lport, risn + 4, s.wrapping_add(3), 1000);
    assert_eq!(tx(&mut w, &part, LAN, WAN, lab::CLIENT_MAC, 7).ack, s);
    // SACK edges past the header are shifted back too.
    let sk = sack(&[(s.wrapping_add(n + 20), s.wrapping_add(n + 30))]);
    let f = rs(ACK, sk, &[], lport, risn + 4, s.wrapping_add(n + 9), 1000);
    let r = tx(&mut w, &f, LAN, WAN, lab::CLIENT_MAC, 8);
    assert_eq!(
        blocks(&r.opts),
        vec![s.wrapping_add(20), s.wrapping_add(30)]
    );
    // The client's FIN and the real server's ACK of it.
    let fin = client(FIN | ACK, vec![], &[], s.wrapping_add(9), risn + 4);
    assert_eq!(
        tx(&mut w, &fin, WAN, LAN, lab::rs_mac(0), 9).seq,
        s.wrapping_add(n + 9)
    );
    let fa = rs(
        ACK,
        vec![],
        &[],
        lport,
        risn + 4,
        s.wrapping_add(n + 10),
        1000,
    );
    assert_eq!(
        tx(&mut w, &fa, LAN, WAN, lab::CLIENT_MAC, 10).ack,
        s.wrapping_add(10)
    );
    w
}

/// With the XDP fast path on, a PROXY protocol connection is never offered
/// to it (its sequence numbers are shifted for its whole life, which the XDP
/// program does not do), and the fast path's bookkeeping leaves the
/// connection's PROXY state alone: the shifts hold to the end.
#[test]
fn the_fast_path_leaves_proxy_protocol_connections_to_the_workers() {
    for (v, hdr) in [(Version::V1, V1.to_vec()), (Version::V2, v2_header())] {
        let mut snap = pp_lab(v, true);
        snap.conf.fast_path = true;
        let mut w = lifecycle_on(worker(snap), true, &hdr);
        let mut offered = Vec::new();
        w.take_fast(|e| offered.push(*e));
        assert_eq!(offered, vec![], "{v:?}: nothing offered to the fast path");
    }
}

#[test]
fn v1_header_and_shifts_with_toa() {
    lifecycle(Version::V1, true, V1);
}

#[test]
fn v1_header_and_shifts_without_toa() {
    lifecycle(Version::V1, false, V1);
}

#[test]
fn v2_header_and_shifts_with_and_without_toa() {
    lifecycle(Version::V2, false, &v2_header());
    lifecycle(Version::V2, true, &v2_header());
}

#[test]
fn a_service_without_the_option_leaves_the_stream_alone() {
    let mut w = worker(pp_lab(Version::Off, false));
    resolve_client(&mut w, CIP, 0);
    let (lport, _) = open(&mut w, 100, 900);
    let d = tx(
        &mut w,
        &client(ACK, vec![], b"GET /", 101, 901),
        WAN,
        LAN,
        lab::rs_mac(0),
        3,
    );
    assert_eq!((d.seq, &d.payload[..]), (101, &b"GET /"[..]));
    let r = tx(
        &mut w,
        &rs(ACK, vec![], &[], lport, 901, 106, 100),
        LAN,
        WAN,
        lab::CLIENT_MAC,
        4,
    );
    assert_eq!(r.ack, 106);
}

#[test]
fn a_client_that_only_closes_sends_the_header_with_its_fin() {
    let mut w = worker(pp_lab(Version::V1, false));
    resolve_client(&mut w, CIP, 0);
    let (lport, _) = open(&mut w, 100, 900);
    let d = tx(
        &mut w,
        &client(FIN | ACK, vec![], &[], 101, 901),
        WAN,
        LAN,
        lab::rs_mac(0),
        3,
    );
    assert_eq!((d.seq, &d.payload[..]), (101, V1));
    let n = V1.len() as u32;
    let r = tx(
        &mut w,
        &rs(ACK, vec![], &[], lport, 901, 102 + n, 100),
        LAN,
        WAN,
        lab::CLIENT_MAC,
        4,
    );
    assert_eq!(r.ack, 102, "the FIN acknowledged in the client's space");
}

#[test]
fn through_the_syn_proxy_both_shifts_compose() {
    let mut snap = sp_lab(FwdMode::Fnat);
    Arc::get_mut(&mut snap.services[0]).unwrap().proxy_protocol = Version::V2;
    let mut w = worker(snap);
    resolve_client(&mut w, CIP, 0);
    let hdr = v2_header();
    let n = hdr.len() as u32;
    // The client offers timestamps: rvs answers without them (the PROXY
    // protocol's offset takes their place), with room for TOA and the header.
    let ts = [1, 1, 8, 10, 0, 0, 0x1b, 0x58, 0, 0, 0, 0];
    let (a, s) = sp_handshake(&mut w, [&[2, 4, 5, 0xb4][..], &ts[..]].concat());
    let mss = 1460 - 8 - n as u16;
    assert_eq!(
        a.opts,
        [&[2u8, 4][..], &mss.to_be_bytes()].concat(),
        "no timestamps"
    );
    let cookie = a.seq;
    assert_eq!((s.flags, s.seq), (SYN, 100));
    let risn = SP_RISN;
    // Data: the header in front, the acknowledgement in the server's space.
    let get = client(ACK | PSH, vec![], b"GET /", 101, cookie + 1);
    let d = tx(&mut w, &get, WAN, LAN, lab::rs_mac(0), 3);
    assert_eq!(d.payload, [&hdr[..], b"GET /"].concat());
    assert_eq!((d.seq, d.ack), (101, risn + 1));
    // The reply: its sequence number in the cookie's space, its
    // acknowledgement in the client's.
    let ok = rs(ACK | PSH, vec![], b"200", s.sport, risn + 1, 106 + n, 1000);
    let r = tx(&mut w, &ok, LAN, WAN, lab::CLIENT_MAC, 4);
    assert_eq!(
        (r.seq, r.ack, &r.payload[..]),
        (cookie + 1, 106, &b"200"[..])
    );
}

//! SYN proxy connections through connection sync: a peer that installs
//! one (encoded and decoded as version 2) keeps shifting its packets, and
//! one synced while waiting for the real server finishes its handshake.

use super::synproxy::*;
use super::util::*;
use crate::addr::proto;
use crate::conn::tcp::TcpState;
use crate::conn::FwdMode;
use crate::lab::{self, LAN, VIP, WAN};
use crate::pipeline::Worker;
use crate::wire::tcp::flags::*;

/// The connection's id in `w`.
fn conn_id(w: &Worker) -> crate::conn::ConnId {
    let t = crate::conn::Tuple::new(proto::TCP, CIP, CPORT, VIP, 80);
    w.conns().lookup(&t).expect("the connection").0
}

/// The connection as a peer receives it: exported, encoded, decoded.
fn over_the_wire(w: &Worker, now: u64) -> crate::sync::SyncConn {
    use crate::sync::{encode, Header, Message, Record};
    let c = w.export_conn(conn_id(w), now).unwrap();
    let mut buf = [0u8; 256];
    let (len, _) = encode(&mut buf, Header::default(), &[Record::Update(c)]).unwrap();
    assert_eq!(buf[4], 2, "a SYN proxy connection needs version 2");
    match Message::parse(&buf[..len]).unwrap().records().next() {
        Some(Record::Update(s)) => s,
        r => panic!("{r:?}"),
    }
}

#[test]
fn a_synced_synproxy_connection_keeps_shifting_on_the_peer() {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    resolve_client(&mut w, CIP, 0);
    let o = Offer {
        ts: true,
        sack: true,
        ws: Some(7),
    };
    let h = handshake(&mut w, 0xffff_fff0, 0x10, o, Some(9));
    let s = over_the_wire(&w, 35);
    let mut peer = worker(sp_lab(FwdMode::Fnat));
    resolve_client(&mut peer, CIP, 0);
    peer.install_synced(&s, 35).unwrap();
    // The peer takes over the flow: the same shifts, window rescaling too.
    exchange(&mut peer, &h, o, Some(9));
}

#[test]
fn a_connection_synced_while_waiting_finishes_its_handshake_on_the_peer() {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    resolve_client(&mut w, CIP, 0);
    let o = Offer {
        ts: true,
        sack: false,
        ws: None,
    };
    let (cookie, ours) = syn(&mut w, 500, o, 10);
    let ack = client(
        ACK,
        opts(None, false, Some((7_010, ours.unwrap())), None),
        &[],
        501,
        cookie.wrapping_add(1),
    );
    let syn_out = tx(&mut w, &ack, WAN, LAN, lab::rs_mac(0), 20);
    let s = over_the_wire(&w, 21);
    assert_eq!(s.state, TcpState::SynSent as u8);
    let mut peer = worker(sp_lab(FwdMode::Fnat));
    resolve_client(&mut peer, CIP, 0);
    peer.install_synced(&s, 21).unwrap();
    // The real server's SYN-ACK reaches the peer, which kept no client
    // segment: it writes the handshake's ACK itself.
    let sa = rs(
        SYN | ACK,
        opts(Some(1460), false, Some((40, 7_010)), None),
        &[],
        syn_out.sport,
        3000,
        501,
        65535,
    );
    let a = tx(&mut peer, &sa, LAN, LAN, lab::rs_mac(0), 30);
    assert_eq!(
        (a.flags, a.seq, a.ack, a.ts()),
        (ACK, 501, 3001, Some((7_010, 40)))
    );
    assert!(a.has_toa());
    assert!(a.payload.is_empty());
    let h = Hs {
        cisn: 500,
        cookie,
        risn: 3000,
        ts: Some((ours.unwrap(), 7_010, 40)),
        lport: syn_out.sport,
    };
    exchange(&mut peer, &h, o, None);
}

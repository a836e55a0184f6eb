//! The SYN proxy's retransmission timer: a real server that does not
//! answer gets the SYN again from the worker's tick, 1, 2 and 4 s apart,
//! with no client segment needed; then the connection goes, counted.

use super::synproxy::*;
use super::util::*;
use crate::conn::tcp::TcpState;
use crate::conn::FwdMode;
use crate::lab::{self, LAN, LIP, WAN};
use crate::pipeline::Worker;
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

/// Ticks `w` at `now` and returns the frames its outbox got, read.
fn tick(w: &mut Worker, now: u64) -> Vec<(u16, Vec<u8>)> {
    w.tick(now);
    let mut out = vec![];
    w.outbox().drain(|port, f| out.push((port, f.to_vec())));
    out
}

/// A client's ACK with data, after the SYN: the first SYN to the real
/// server goes at 20 ms. Returns its local port.
fn waiting(w: &mut Worker) -> u16 {
    resolve_client(w, CIP, 0);
    let (cookie, _) = syn(w, 100, Offer::default(), 10);
    let ack = client(ACK | PSH, vec![], b"GET /", 101, cookie.wrapping_add(1));
    let first = tx(w, &ack, WAN, LAN, lab::rs_mac(0), 20);
    assert_eq!((first.flags, first.seq), (SYN, 100));
    first.sport
}

/// Asserts that `frames` is the SYN to the real server, once.
fn assert_syn(frames: &[(u16, Vec<u8>)], lport: u16, at: u64) {
    assert_eq!(frames.len(), 1, "one SYN at {at} ms");
    let (port, f) = &frames[0];
    assert_eq!(*port, LAN);
    assert_eq!(&f[0..6], &lab::rs_mac(0).0, "to the real server's MAC");
    // IPv4 without options: TCP at 34.
    assert_eq!((be16(f, 34), be16(f, 36)), (lport, 80), "{at} ms");
    assert_eq!((be32(f, 38), f[47]), (100, SYN), "{at} ms");
    super::oracle::assert_checksums(f);
}

#[test]
fn an_unanswered_syn_goes_again_on_the_timer_then_the_connection_goes() {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    let lport = waiting(&mut w);
    let mut sent_at = 20;
    for (n, gap) in [1_000, 2_000, 4_000].into_iter().enumerate() {
        assert!(
            tick(&mut w, sent_at + gap - 1).is_empty(),
            "try {n}: not yet"
        );
        let due = sent_at + gap;
        assert_syn(&tick(&mut w, due), lport, due);
        assert_eq!(conn_state(&w), TcpState::SynSent, "still waiting");
        sent_at = due;
    }
    // 8 s after the third: given up, counted, its local port back.
    assert!(tick(&mut w, sent_at + 7_999).is_empty());
    assert_eq!(w.conns().len(), 1);
    assert!(tick(&mut w, sent_at + 8_000).is_empty());
    assert_eq!(w.conns().len(), 0);
    assert_eq!(drops(&w, DropReason::SynproxyRsTimeout), 1);
    assert_eq!(w.pool_usage(&LIP).unwrap().0, 0, "local port released");
}

#[test]
fn an_answer_after_a_timer_resend_stops_the_timer() {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    let lport = waiting(&mut w);
    assert_syn(&tick(&mut w, 1_020), lport, 1_020);
    let sa = rs(SYN | ACK, vec![], &[], lport, 5, 101, 65535);
    let d = tx(&mut w, &sa, LAN, LAN, lab::rs_mac(0), 1_100);
    assert_eq!((d.ack, &d.payload[..]), (6, &b"GET /"[..]), "the kept data");
    assert_eq!(conn_state(&w), TcpState::Established);
    for t in [3_020, 7_020, 20_000] {
        assert!(tick(&mut w, t).is_empty(), "nothing more at {t} ms");
    }
    assert_eq!(drops(&w, DropReason::SynproxyRsTimeout), 0);
}

//! SYN cookies across ECMP nodes: with the same key (`[synproxy] key`) and
//! the wall clock, a node checks the cookies another node made, whatever
//! the two processes' uptimes; with another key it does not.

use std::sync::Arc;

use super::synproxy::*;
use super::util::*;
use crate::conn::FwdMode;
use crate::lab::{LAN, WAN};
use crate::pipeline::{Verdict, Worker, WorkerConf};
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

/// Wall-clock time (ms since 1970) of the tests' instant 0.
const WALL: u64 = 1_796_000_000_123;

/// A node started `up_ms` before the tests' instant 0, with cookie key `key`.
fn node(key: Option<[u64; 2]>, up_ms: u64) -> Worker {
    let mut snap = sp_lab(FwdMode::Fnat);
    snap.conf.synproxy_key = key;
    let conf = WorkerConf {
        conn_capacity: 1024,
        neigh_capacity: 256,
        pending_frames: 16,
        wall_clock_ms: WALL - up_ms,
        ..WorkerConf::default()
    };
    let mut w = Worker::new(conf, Arc::new(snap), up_ms);
    resolve_client(&mut w, CIP, up_ms);
    w
}

/// The cookie node `a` (up `a_up` ms) gives at wall time `WALL + t_syn`,
/// returned to node `b` (up `b_up` ms) at `WALL + t_ack`: what `b` does.
fn cross(a: &mut Worker, a_up: u64, b: &mut Worker, b_up: u64, t_syn: u64, t_ack: u64) -> Verdict {
    let (cookie, _) = syn(a, 100, Offer::default(), a_up + t_syn);
    let ack = client(ACK, vec![], &[], 101, cookie.wrapping_add(1));
    run(b, &ack, WAN, b_up + t_ack).0
}

const KEY: [u64; 2] = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];

#[test]
fn nodes_with_the_same_key_check_each_other_s_cookies() {
    // Node A up for 10 s, node B for 3 days: their own clocks are far apart.
    let (a_up, b_up) = (10_000, 3 * 86_400_000);
    let mut a = node(Some(KEY), a_up);
    let mut b = node(Some(KEY), b_up);
    assert_eq!(
        cross(&mut a, a_up, &mut b, b_up, 0, 500),
        Verdict::Transmit(LAN),
        "B sends the real server the SYN"
    );
    assert_eq!(b.conns().len(), 1);
    assert_eq!(conn_state(&b), crate::conn::tcp::TcpState::SynSent);
    // And the other way, a minute and a half later (the next epoch).
    let mut a = node(Some(KEY), a_up);
    let mut b = node(Some(KEY), b_up);
    assert_eq!(
        cross(&mut b, b_up, &mut a, a_up, 1_000, 91_000),
        Verdict::Transmit(LAN)
    );
    // Epochs still rotate: past two epochs the cookie is refused.
    let (mut a, mut b2) = (node(Some(KEY), a_up), node(Some(KEY), b_up));
    assert_eq!(
        cross(&mut a, a_up, &mut b2, b_up, 0, 200_000),
        Verdict::Drop(DropReason::SynproxyBadAck)
    );
    assert!(b2.conns().is_empty());
}

#[test]
fn nodes_with_other_keys_refuse_each_other_s_cookies() {
    let mut other = KEY;
    other[1] ^= 1;
    for (ka, kb) in [
        (Some(KEY), Some(other)),
        (Some(KEY), None),
        (None, Some(KEY)),
    ] {
        let mut a = node(ka, 0);
        let mut b = node(kb, 0);
        assert_eq!(
            cross(&mut a, 0, &mut b, 0, 0, 500),
            Verdict::Drop(DropReason::SynproxyBadAck),
            "{ka:?} vs {kb:?}"
        );
        assert_eq!(drops(&b, DropReason::SynproxyBadAck), 1);
        assert!(b.conns().is_empty());
        // Each node still checks its own.
        let (cookie, _) = syn(&mut b, 100, Offer::default(), 0);
        let ack = client(ACK, vec![], &[], 101, cookie.wrapping_add(1));
        assert_eq!(run(&mut b, &ack, WAN, 500).0, Verdict::Transmit(LAN));
    }
}

#[test]
fn a_reload_with_a_new_key_takes_effect() {
    let mut a = node(Some(KEY), 0);
    let mut snap = sp_lab(FwdMode::Fnat);
    let mut other = KEY;
    other[0] ^= 1 << 40;
    snap.conf.synproxy_key = Some(other);
    let mut b = node(Some(KEY), 0);
    b.set_snapshot(Arc::new(snap), 0);
    assert_eq!(
        cross(&mut a, 0, &mut b, 0, 0, 500),
        Verdict::Drop(DropReason::SynproxyBadAck)
    );
}

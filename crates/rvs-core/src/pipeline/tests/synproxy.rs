//! SYN proxy (`-j enable`) on crafted packets: the handshake rvs answers
//! itself, the one it replays to the real server, and the sequence and
//! timestamp shifts for the life of the connection, for every option
//! combination, across sequence wrap-around, in FNAT (IPv4 and IPv6) and
//! NAT.

use std::sync::Arc;

use super::oracle::{assert_checksums, rfc1071};
use super::util::*;
use crate::addr::{proto, Addr, Mac};
use crate::conn::tcp::TcpState;
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::sched::SchedKind;
use crate::service::ServiceKey;
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;
use crate::wire::tcp::{TcpOption, TcpOptions};

pub(super) const CPORT: u16 = 40000;

/// The tutorial's FNAT service (one real server) with the SYN proxy on.
pub(super) fn sp_lab(mode: FwdMode) -> Snapshot {
    let mut svc = lab::service(
        1,
        ServiceKey::Vs {
            proto: proto::TCP,
            vip: VIP,
            vport: 80,
        },
        SchedKind::Rr,
        &[DestSpec::new(lab::rs_ip(0), 80, mode)],
        &[(LIP, LAN)],
        0,
        1,
    );
    Arc::get_mut(&mut svc).unwrap().synproxy = true;
    lab::snapshot(1, vec![svc], 1)
}

/// The options a client offers on its SYN.
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct Offer {
    pub ws: Option<u8>,
    pub sack: bool,
    pub ts: bool,
}

/// TCP options laid out as Linux does.
pub(super) fn opts(
    mss: Option<u16>,
    sack: bool,
    ts: Option<(u32, u32)>,
    ws: Option<u8>,
) -> Vec<u8> {
    let mut o = vec![];
    if let Some(m) = mss {
        o.extend_from_slice(&[2, 4]);
        o.extend_from_slice(&m.to_be_bytes());
    }
    match (sack, ts) {
        (s, Some((v, e))) => {
            o.extend_from_slice(if s { &[4, 2] } else { &[1, 1] });
            o.extend_from_slice(&[8, 10]);
            o.extend_from_slice(&v.to_be_bytes());
            o.extend_from_slice(&e.to_be_bytes());
        }
        (true, None) => o.extend_from_slice(&[1, 1, 4, 2]),
        _ => {}
    }
    if let Some(w) = ws {
        o.extend_from_slice(&[1, 3, 3, w]);
    }
    o
}

/// A SACK option (two NOPs first) with these blocks.
fn sack_opt(blocks: &[(u32, u32)]) -> Vec<u8> {
    let mut o = vec![1, 1, 5, 2 + 8 * blocks.len() as u8];
    for (l, r) in blocks {
        o.extend_from_slice(&l.to_be_bytes());
        o.extend_from_slice(&r.to_be_bytes());
    }
    o
}

/// A TCP frame with chosen sequence, acknowledgment and window numbers
/// (the transport checksum by the oracle).
pub(super) fn seg(spec: FrameSpec, seq: u32, ack: u32, window: u16) -> Vec<u8> {
    let mut f = spec.to_vec();
    let v6 = !spec.src.is_v4();
    let l4 = if v6 { V6_L4 } else { v4_l4(&f) };
    f[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
    f[l4 + 8..l4 + 12].copy_from_slice(&ack.to_be_bytes());
    f[l4 + 14..l4 + 16].copy_from_slice(&window.to_be_bytes());
    f[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
    let len = (f.len() - l4) as u32;
    let pseudo: Vec<u8> = if v6 {
        [
            &spec.src.0[..],
            &spec.dst.0[..],
            &len.to_be_bytes(),
            &[0, 0, 0, 6],
        ]
        .concat()
    } else {
        let l = (len as u16).to_be_bytes();
        [
            &spec.src.v4_bytes()[..],
            &spec.dst.v4_bytes()[..],
            &[0, 6, l[0], l[1]],
        ]
        .concat()
    };
    let c = rfc1071(&[&pseudo, &f[l4..]]);
    f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    f
}

/// What a test reads from a TCP frame rvs sent.
#[derive(Debug)]
pub(super) struct Out {
    pub src: Addr,
    pub dst: Addr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub opts: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Out {
    fn read(f: &[u8]) -> Out {
        assert_checksums(f);
        let v6 = f[12..14] == [0x86, 0xdd];
        let (l4, (src, dst), end) = if v6 {
            (V6_L4, v6_src_dst(f), V6_L4 + be16(f, 18) as usize)
        } else {
            (v4_l4(f), v4_src_dst(f), 14 + be16(f, 16) as usize)
        };
        let hl = (f[l4 + 12] >> 4) as usize * 4;
        Out {
            src,
            dst,
            sport: be16(f, l4),
            dport: be16(f, l4 + 2),
            seq: be32(f, l4 + 4),
            ack: be32(f, l4 + 8),
            flags: f[l4 + 13],
            window: be16(f, l4 + 14),
            opts: f[l4 + 20..l4 + hl].to_vec(),
            payload: f[l4 + hl..end].to_vec(),
        }
    }

    fn options(&self) -> Vec<TcpOption<'_>> {
        TcpOptions::new(&self.opts).collect()
    }

    pub fn ts(&self) -> Option<(u32, u32)> {
        self.options().into_iter().find_map(|o| match o {
            TcpOption::Timestamps(v, e) => Some((v, e)),
            _ => None,
        })
    }

    pub fn has_toa(&self) -> bool {
        self.options()
            .iter()
            .any(|o| matches!(o, TcpOption::Toa { port: CPORT, addr } if *addr == CIP))
    }
}

/// Runs a frame that must leave on `port` to `mac`; returns what it carries.
pub(super) fn tx(w: &mut Worker, f: &[u8], from: u16, to: u16, mac: Mac, now: u64) -> Out {
    let out = run_tx(w, f, from, to, now);
    assert_eq!(&out[0..6], &mac.0, "destination MAC");
    Out::read(&out)
}

pub(super) fn client(flags: u8, o: Vec<u8>, payload: &[u8], seq: u32, ack: u32) -> Vec<u8> {
    seg(
        FrameSpec {
            tcp_opts: &o,
            payload,
            ..from_client(CPORT, 80, flags)
        },
        seq,
        ack,
        502,
    )
}

pub(super) fn rs(
    flags: u8,
    o: Vec<u8>,
    payload: &[u8],
    lport: u16,
    seq: u32,
    ack: u32,
    win: u16,
) -> Vec<u8> {
    seg(
        FrameSpec {
            tcp_opts: &o,
            payload,
            ..from_rs(0, 80, LIP, lport, flags)
        },
        seq,
        ack,
        win,
    )
}

/// A connection through the proxy, after the handshakes.
#[derive(Debug)]
pub(super) struct Hs {
    /// The client's ISN.
    pub cisn: u32,
    /// rvs's ISN (the cookie).
    pub cookie: u32,
    /// The real server's ISN.
    pub risn: u32,
    /// rvs's TSval in its SYN-ACK, the client's in its ACK, the real
    /// server's in its SYN-ACK.
    pub ts: Option<(u32, u32, u32)>,
    pub lport: u16,
}

/// The client's SYN and rvs's SYN-ACK: (cookie, rvs's TSval).
pub(super) fn syn(w: &mut Worker, cisn: u32, o: Offer, now: u64) -> (u32, Option<u32>) {
    let ts = o.ts.then_some((7_000, 0));
    let f = client(SYN, opts(Some(1460), o.sack, ts, o.ws), &[], cisn, 0);
    let conns = w.conns().len();
    let a = tx(w, &f, WAN, WAN, lab::CLIENT_MAC, now);
    assert_eq!((a.src, a.sport, a.dst, a.dport), (VIP, 80, CIP, CPORT));
    assert_eq!(a.flags, SYN | ACK);
    assert_eq!(a.ack, cisn.wrapping_add(1));
    assert!(a.payload.is_empty());
    // MSS: 1500 less 40 of headers and 8 for TOA. SACK, window scale (7)
    // and timestamps only when the client sent timestamps.
    let mut want = vec![TcpOption::Mss(1452)];
    let our_ts = a.ts().map(|(v, e)| {
        assert_eq!(e, 7_000, "echoes the client's TSval");
        v
    });
    if o.ts {
        if o.sack {
            want.push(TcpOption::SackPermitted);
        }
        want.push(TcpOption::Timestamps(our_ts.unwrap(), 7_000));
        if o.ws.is_some() {
            want.push(TcpOption::WindowScale(7));
        }
    }
    assert_eq!(a.options(), want, "{o:?}");
    assert_eq!(w.conns().len(), conns, "no connection for a SYN");
    (a.seq, our_ts)
}

/// The whole handshake with every check; the connection is ESTABLISHED.
pub(super) fn handshake(w: &mut Worker, cisn: u32, risn: u32, o: Offer, rs_ws: Option<u8>) -> Hs {
    let (cookie, our_ts) = syn(w, cisn, o, 10);
    let pool = w.pool_usage(&LIP).unwrap().0;
    // The client's ACK: the SYN to the real server, with the client's ISN
    // and the options the cookie kept.
    let cts = our_ts.map(|t| (7_010, t));
    let ack = client(
        ACK,
        opts(None, false, cts, None),
        &[],
        cisn.wrapping_add(1),
        cookie.wrapping_add(1),
    );
    let s = tx(w, &ack, WAN, LAN, lab::rs_mac(0), 20);
    assert_eq!((s.src, s.dst, s.dport), (LIP, lab::rs_ip(0), 80));
    assert_eq!((s.flags, s.seq, s.ack), (SYN, cisn, 0));
    assert!(s.payload.is_empty());
    let mut want = vec![TcpOption::Mss(1452)];
    if o.ts {
        if o.sack {
            want.push(TcpOption::SackPermitted);
        }
        want.push(TcpOption::Timestamps(7_010, 0));
        if let Some(ws) = o.ws {
            want.push(TcpOption::WindowScale(ws));
        }
    }
    assert_eq!(s.options(), want, "{o:?}");
    assert!(!s.has_toa(), "no TOA on a SYN");
    let lport = s.sport;
    assert_eq!(w.pool_usage(&LIP).unwrap().0, pool + 1);
    assert_eq!(conn_state(w), TcpState::SynSent);
    // The real server's SYN-ACK: the client's ACK goes to it, shifted.
    let rts = our_ts.map(|_| (900_000, 7_010));
    let o2 = opts(
        Some(1460),
        o.sack && o.ts,
        rts,
        rs_ws.filter(|_| o.ws.is_some() && o.ts),
    );
    let sa = rs(SYN | ACK, o2, &[], lport, risn, cisn.wrapping_add(1), 65535);
    let a = tx(w, &sa, LAN, LAN, lab::rs_mac(0), 30);
    assert_eq!(
        (a.src, a.sport, a.dst, a.dport),
        (LIP, lport, lab::rs_ip(0), 80)
    );
    assert_eq!(a.flags, ACK);
    assert_eq!((a.seq, a.ack), (cisn.wrapping_add(1), risn.wrapping_add(1)));
    assert_eq!(a.window, 502, "the client's own ACK");
    assert!(a.has_toa(), "TOA on the handshake's ACK");
    assert_eq!(
        a.ts(),
        our_ts.map(|_| (7_010, 900_000)),
        "TSecr in the server's space"
    );
    assert_eq!(conn_state(w), TcpState::Established);
    Hs {
        cisn,
        cookie,
        risn,
        ts: our_ts.map(|t| (t, 7_010, 900_000)),
        lport,
    }
}

pub(super) fn conn_state(w: &Worker) -> TcpState {
    let mut st = None;
    w.scan_conns(0, usize::MAX, |_, c| {
        st = TcpState::from_u8(c.state);
        true
    });
    st.expect("a connection")
}

/// Data both ways on an established proxied connection, checking the shifts.
pub(super) fn exchange(w: &mut Worker, h: &Hs, o: Offer, rs_ws: Option<u8>) {
    let ts_in = h.ts.map(|(ours, _, _)| (7_020, ours + 5));
    let get = client(
        ACK | PSH,
        opts(None, false, ts_in, None),
        b"GET /",
        h.cisn.wrapping_add(1),
        h.cookie.wrapping_add(1),
    );
    let d = tx(w, &get, WAN, LAN, lab::rs_mac(0), 40);
    assert_eq!(d.payload, b"GET /");
    assert_eq!(
        (d.seq, d.ack),
        (h.cisn.wrapping_add(1), h.risn.wrapping_add(1))
    );
    assert!(d.has_toa(), "TOA on the first data");
    if let Some((_, _, rts)) = h.ts {
        assert_eq!(d.ts(), Some((7_020, rts + 5)));
    }
    let ts_out = h.ts.map(|(_, _, rts)| (rts + 9, 7_020));
    let reply = rs(
        ACK | PSH,
        opts(None, false, ts_out, None),
        b"200 OK",
        h.lport,
        h.risn.wrapping_add(1),
        h.cisn.wrapping_add(6),
        1000,
    );
    let r = tx(w, &reply, LAN, WAN, lab::CLIENT_MAC, 50);
    assert_eq!((r.src, r.sport, r.dst, r.dport), (VIP, 80, CIP, CPORT));
    assert_eq!(r.payload, b"200 OK");
    assert_eq!(
        (r.seq, r.ack),
        (h.cookie.wrapping_add(1), h.cisn.wrapping_add(6))
    );
    if let Some((ours, _, _)) = h.ts {
        assert_eq!(
            r.ts(),
            Some((ours + 9, 7_020)),
            "TSval in the client's space"
        );
    }
    // With window scaling on, the real server scales its window by its
    // own shift (none: 0) and the client reads it with the 7 rvs gave it.
    let scaling = o.ts && o.ws.is_some();
    let want = match rs_ws.unwrap_or(0) {
        s if scaling && s != 7 => ((1000u32 << s) >> 7).min(65535) as u16,
        _ => 1000,
    };
    assert_eq!(r.window, want);
}

#[test]
fn handshake_and_data_with_every_option_combination() {
    let combos = [
        Offer::default(),
        Offer {
            ws: Some(9),
            ..Offer::default()
        },
        Offer {
            sack: true,
            ..Offer::default()
        },
        Offer {
            ts: true,
            ..Offer::default()
        },
        Offer {
            ts: true,
            sack: true,
            ..Offer::default()
        },
        Offer {
            ts: true,
            ws: Some(2),
            ..Offer::default()
        },
        Offer {
            ts: true,
            sack: true,
            ws: Some(14),
        },
    ];
    for (i, o) in combos.into_iter().enumerate() {
        for rs_ws in [Some(7), Some(9), Some(0), None] {
            let mut w = worker(sp_lab(FwdMode::Fnat));
            resolve_client(&mut w, CIP, 0);
            let h = handshake(&mut w, 1000 + i as u32, 0x5000_0000, o, rs_ws);
            exchange(&mut w, &h, o, rs_ws);
            assert_eq!(w.drops().total(), 0, "{:?}", w.drops().nonzero());
        }
    }
}

#[test]
fn sequence_numbers_wrap_around_both_ways() {
    for (cisn, risn) in [(u32::MAX, u32::MAX), (u32::MAX - 2, 0), (0, u32::MAX - 3)] {
        let mut w = worker(sp_lab(FwdMode::Fnat));
        resolve_client(&mut w, CIP, 0);
        let o = Offer {
            ts: true,
            sack: true,
            ws: Some(7),
        };
        let h = handshake(&mut w, cisn, risn, o, Some(7));
        exchange(&mut w, &h, o, Some(7));
    }
}

#[test]
fn data_on_the_ack_reaches_the_real_server_after_its_syn_ack() {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    resolve_client(&mut w, CIP, 0);
    let (cookie, _) = syn(&mut w, 100, Offer::default(), 10);
    let ack = client(ACK | PSH, vec![], b"hello", 101, cookie.wrapping_add(1));
    let s = tx(&mut w, &ack, WAN, LAN, lab::rs_mac(0), 20);
    assert_eq!((s.flags, s.seq), (SYN, 100));
    assert!(s.payload.is_empty(), "a SYN without the data");
    let sa = rs(
        SYN | ACK,
        opts(Some(1460), false, None, None),
        &[],
        s.sport,
        9000,
        101,
        65535,
    );
    let d = tx(&mut w, &sa, LAN, LAN, lab::rs_mac(0), 30);
    assert_eq!(d.flags, ACK | PSH);
    assert_eq!((d.seq, d.ack), (101, 9001));
    assert_eq!(d.payload, b"hello");
    assert!(d.has_toa());
}

#[test]
fn client_segments_while_waiting_keep_the_first_data() {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    resolve_client(&mut w, CIP, 0);
    let (cookie, _) = syn(&mut w, 100, Offer::default(), 10);
    let ack = client(ACK, vec![], &[], 101, cookie.wrapping_add(1));
    let s = tx(&mut w, &ack, WAN, LAN, lab::rs_mac(0), 20);
    // The request comes before the real server's SYN-ACK: kept.
    let get = client(ACK | PSH, vec![], b"GET /", 101, cookie.wrapping_add(1));
    assert_eq!(run(&mut w, &get, WAN, 21).0, Verdict::Consumed);
    // A second segment cannot be kept too: dropped, counted.
    let more = client(ACK | PSH, vec![], b"more", 106, cookie.wrapping_add(1));
    assert_eq!(
        run(&mut w, &more, WAN, 22).0,
        Verdict::Drop(DropReason::SynproxyWait)
    );
    assert_eq!(drops(&w, DropReason::SynproxyWait), 1);
    let sa = rs(
        SYN | ACK,
        opts(Some(1460), false, None, None),
        &[],
        s.sport,
        7,
        101,
        65535,
    );
    let d = tx(&mut w, &sa, LAN, LAN, lab::rs_mac(0), 30);
    assert_eq!((d.seq, d.ack, &d.payload[..]), (101, 8, &b"GET /"[..]));
    assert!(d.has_toa());
}

#[test]
fn the_syn_goes_again_when_the_client_talks_a_second_later() {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    resolve_client(&mut w, CIP, 0);
    let (cookie, _) = syn(&mut w, 100, Offer::default(), 10);
    let ack = client(ACK | PSH, vec![], b"GET /", 101, cookie.wrapping_add(1));
    let first = tx(&mut w, &ack, WAN, LAN, lab::rs_mac(0), 20);
    // Within the second: waits (the data is kept already).
    assert_eq!(
        run(&mut w, &ack, WAN, 500).0,
        Verdict::Drop(DropReason::SynproxyWait)
    );
    // After it: the same SYN again.
    let again = tx(&mut w, &ack, WAN, LAN, lab::rs_mac(0), 1_100);
    assert_eq!(
        (again.flags, again.seq, again.sport),
        (SYN, 100, first.sport)
    );
    let sa = rs(SYN | ACK, vec![], &[], first.sport, 5, 101, 65535);
    let d = tx(&mut w, &sa, LAN, LAN, lab::rs_mac(0), 1_200);
    assert_eq!((d.ack, &d.payload[..]), (6, &b"GET /"[..]));
}

#[test]
fn client_sack_blocks_are_shifted_and_the_server_s_are_not() {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    resolve_client(&mut w, CIP, 0);
    let o = Offer {
        ts: true,
        sack: true,
        ws: None,
    };
    let h = handshake(&mut w, 100, 0xffff_ff00, o, None);
    let delta = h.risn.wrapping_sub(h.cookie);
    // The client acknowledges the server's data with SACK blocks, in the
    // sequence space it knows (the cookie's).
    let (l, r) = (h.cookie.wrapping_add(1001), h.cookie.wrapping_add(2001));
    let f = client(
        ACK,
        sack_opt(&[(l, r), (r.wrapping_add(100), r.wrapping_add(300))]),
        &[],
        101,
        h.cookie.wrapping_add(1),
    );
    let d = tx(&mut w, &f, WAN, LAN, lab::rs_mac(0), 40);
    let blocks: Vec<_> = d
        .options()
        .into_iter()
        .filter_map(|o| match o {
            TcpOption::Sack(b) => Some(b.to_vec()),
            _ => None,
        })
        .collect();
    let mut want = vec![];
    for e in [l, r, r.wrapping_add(100), r.wrapping_add(300)] {
        want.extend_from_slice(&e.wrapping_add(delta).to_be_bytes());
    }
    assert_eq!(blocks, vec![want]);
    assert_eq!(d.ack, h.risn.wrapping_add(1));
    // The server's SACK blocks are about the client's data: untouched.
    let f = rs(
        ACK,
        sack_opt(&[(500, 600)]),
        &[],
        h.lport,
        h.risn.wrapping_add(1),
        101,
        100,
    );
    let r = tx(&mut w, &f, LAN, WAN, lab::CLIENT_MAC, 50);
    assert!(r
        .options()
        .contains(&TcpOption::Sack(&[0, 0, 1, 0xf4, 0, 0, 2, 0x58])));
    assert_eq!(r.seq, h.cookie.wrapping_add(1));
}

#[test]
fn an_invalid_ack_is_counted_and_dropped() {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    resolve_client(&mut w, CIP, 0);
    let mut rng = Rng(42);
    for i in 0..500u32 {
        let f = client(ACK, vec![], b"x", rng.next() as u32, rng.next() as u32);
        let (v, _) = run(&mut w, &f, WAN, u64::from(i));
        assert_eq!(v, Verdict::Drop(DropReason::SynproxyBadAck));
    }
    // A real cookie, returned too late (its secret is retired).
    let (cookie, _) = syn(&mut w, 100, Offer::default(), 1_000);
    let late = client(ACK, vec![], &[], 101, cookie.wrapping_add(1));
    assert_eq!(
        run(&mut w, &late, WAN, 1_000 + 128_000).0,
        Verdict::Drop(DropReason::SynproxyBadAck)
    );
    assert_eq!(drops(&w, DropReason::SynproxyBadAck), 501);
    assert_eq!(w.conns().len(), 0);
    assert_eq!(w.pool_usage(&LIP).unwrap().0, 0, "no local port taken");
}

#[test]
fn a_syn_flood_takes_no_connection_and_no_port() {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    let mut rng = Rng(7);
    for i in 0..2_000 {
        let src = Addr::v4(
            10,
            0,
            (rng.next() % 250) as u8,
            (rng.next() % 250) as u8 + 1,
        );
        let f = seg(
            FrameSpec {
                src_mac: Mac([2, 0, 0, 0, 1, 1]),
                ..FrameSpec::tcp(src, rng.next() as u16, VIP, 80, SYN)
            },
            rng.next() as u32,
            0,
            1000,
        );
        let (v, out) = run(&mut w, &f, WAN, i);
        assert_eq!(v, Verdict::Transmit(WAN));
        let a = Out::read(&out);
        assert_eq!((a.dst, a.flags), (src, SYN | ACK));
        assert_eq!(
            &out[0..6],
            &[2, 0, 0, 0, 1, 1],
            "back to the MAC it came from"
        );
    }
    assert_eq!(w.conns().len(), 0);
    assert_eq!(w.pool_usage(&LIP).unwrap().0, 0);
    assert_eq!(w.drops().total(), 0);
}

#[test]
fn a_real_server_s_rst_reaches_the_client_in_its_sequence_space() {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    resolve_client(&mut w, CIP, 0);
    let (cookie, _) = syn(&mut w, 100, Offer::default(), 10);
    let ack = client(ACK, vec![], &[], 101, cookie.wrapping_add(1));
    let s = tx(&mut w, &ack, WAN, LAN, lab::rs_mac(0), 20);
    let rst = rs(RST | ACK, vec![], &[], s.sport, 0, 101, 0);
    let r = tx(&mut w, &rst, LAN, WAN, lab::CLIENT_MAC, 30);
    assert_eq!(
        (r.flags, r.seq, r.ack),
        (RST | ACK, cookie.wrapping_add(1), 101)
    );
    assert_eq!(conn_state(&w), TcpState::Close);
}

#[test]
fn no_syn_ack_without_a_usable_real_server() {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    let svc = w.snapshot().services[0].clone();
    let d = svc.dests[0].clone();
    let snap = lab::snapshot(
        1,
        vec![{
            let mut s = reconfigure(&svc, &[(d, 0)]);
            Arc::get_mut(&mut s).unwrap().synproxy = true;
            s
        }],
        1,
    );
    w.set_snapshot(Arc::new(snap), 0);
    let f = client(SYN, vec![], &[], 1, 0);
    assert_eq!(run(&mut w, &f, WAN, 1).0, Verdict::Drop(DropReason::NoDest));
}

#[test]
fn nat_mode_is_proxied_too() {
    let mut w = worker(sp_lab(FwdMode::Nat));
    resolve_client(&mut w, CIP, 0);
    let (cookie, our_ts) = syn(
        &mut w,
        100,
        Offer {
            ts: true,
            sack: true,
            ws: Some(7),
        },
        10,
    );
    let cts = (7_010, our_ts.unwrap());
    let ack = client(
        ACK,
        opts(None, false, Some(cts), None),
        &[],
        101,
        cookie.wrapping_add(1),
    );
    let s = tx(&mut w, &ack, WAN, LAN, lab::rs_mac(0), 20);
    assert_eq!(
        (s.src, s.sport, s.dst, s.flags, s.seq),
        (CIP, CPORT, lab::rs_ip(0), SYN, 100)
    );
    let sa = seg(
        FrameSpec {
            tcp_opts: &opts(Some(1460), true, Some((5, 7_010)), Some(7)),
            ..from_rs(0, 80, CIP, CPORT, SYN | ACK)
        },
        777,
        101,
        65535,
    );
    let a = tx(&mut w, &sa, LAN, LAN, lab::rs_mac(0), 30);
    assert_eq!((a.src, a.flags, a.seq, a.ack), (CIP, ACK, 101, 778));
    assert!(!a.has_toa(), "no TOA in NAT");
    let reply = seg(
        FrameSpec {
            tcp_opts: &opts(None, false, Some((6, 7_010)), None),
            payload: b"hi",
            ..from_rs(0, 80, CIP, CPORT, ACK)
        },
        778,
        101,
        10,
    );
    let r = tx(&mut w, &reply, LAN, WAN, lab::CLIENT_MAC, 40);
    assert_eq!(
        (r.src, r.seq, r.ts()),
        (
            VIP,
            cookie.wrapping_add(1),
            Some((our_ts.unwrap() + 1, 7_010))
        )
    );
}

#[test]
fn ipv6_handshake_through_the_proxy() {
    let snap = v6_lab();
    let svc = snap.services[0].clone();
    let mut svc = lab::service(
        6,
        svc.key.clone(),
        SchedKind::Rr,
        &[DestSpec::new(v6::rip(), 8080, FwdMode::Fnat)],
        &[(v6::lip(), LAN)],
        0,
        1,
    );
    Arc::get_mut(&mut svc).unwrap().synproxy = true;
    let snap = Snapshot::new(
        1,
        1,
        snap.ports.clone(),
        snap.addrs.clone(),
        snap.routes.clone(),
        vec![svc],
        snap.static_neigh.clone(),
        Default::default(),
        Default::default(),
    );
    let mut w = worker(snap);
    let c6 = |flags, o: Vec<u8>, payload: &[u8], seq, ack| {
        seg(
            FrameSpec {
                tcp_opts: &o,
                payload,
                ..FrameSpec::tcp(v6::cip(), CPORT, v6::vip(), 80, flags)
            },
            seq,
            ack,
            700,
        )
    };
    let f = c6(
        SYN,
        opts(Some(1440), true, Some((3, 0)), Some(8)),
        &[],
        0xffff_fff0,
        0,
    );
    let a = tx(&mut w, &f, WAN, WAN, lab::CLIENT_MAC, 10);
    assert_eq!((a.src, a.dst, a.flags), (v6::vip(), v6::cip(), SYN | ACK));
    // 1500 less 60 of headers and 20 for the IPv6 TOA.
    assert_eq!(a.options()[0], TcpOption::Mss(1420));
    let (ours, _) = a.ts().unwrap();
    let ack = c6(
        ACK,
        opts(None, false, Some((4, ours)), None),
        b"q",
        0xffff_fff1,
        a.seq.wrapping_add(1),
    );
    let s = tx(&mut w, &ack, WAN, LAN, v6::RS_MAC, 20);
    assert_eq!(
        (s.src, s.dst, s.dport, s.flags, s.seq),
        (v6::lip(), v6::rip(), 8080, SYN, 0xffff_fff0)
    );
    // The IPv6 table's 1440, less the TOA's 20.
    assert_eq!(s.options()[0], TcpOption::Mss(1420));
    let sa = seg(
        FrameSpec {
            src_mac: v6::RS_MAC,
            dst_mac: lab::LAN_MAC,
            tcp_opts: &opts(Some(1440), true, Some((50, 4)), Some(8)),
            ..FrameSpec::tcp(v6::rip(), 8080, v6::lip(), s.sport, SYN | ACK)
        },
        1,
        0xffff_fff1,
        65535,
    );
    let d = tx(&mut w, &sa, LAN, LAN, v6::RS_MAC, 30);
    assert_eq!(
        (d.flags, d.seq, d.ack, &d.payload[..]),
        (ACK, 0xffff_fff1, 2, &b"q"[..])
    );
    assert_eq!(d.ts(), Some((4, 50)));
}

//! ICMP errors rvs sends itself: time exceeded for a forwarded packet whose
//! TTL runs out, "fragmentation needed" for TUNNEL and DR packets that do
//! not fit the way to the real server (their replies bypass rvs: without
//! the error the connection hangs), none for a packet without DF, the rate
//! limit, and the ICMPv6 twins.

use std::sync::atomic::Ordering::Relaxed;

use super::oracle::{assert_checksums, rfc1071};
use super::util::*;
use crate::addr::{proto, Addr};
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::sched::SchedKind;
use crate::snapshot::{PortConf, Snapshot};
use crate::stats::DropReason;
use crate::wire::checksum;
use crate::wire::tcp::flags::*;

fn one_dest(mode: FwdMode, lan_mtu: u16) -> Snapshot {
    let svc = vs(
        3,
        proto::TCP,
        80,
        SchedKind::Rr,
        &[DestSpec::new(lab::rs_ip(1), 80, mode)],
        0,
    );
    let base = lab::snapshot(1, vec![svc], 2);
    let ports = base
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| PortConf {
            mtu: if i == LAN as usize { lan_mtu } else { p.mtu },
            ..p.clone()
        })
        .collect();
    Snapshot::new(
        1,
        1,
        ports,
        base.addrs.clone(),
        lab::routes(),
        base.services.clone(),
        base.static_neigh.clone(),
        Default::default(),
        Default::default(),
    )
}

fn sent(w: &Worker) -> (u64, u64) {
    let g = w.gauges();
    (g.icmp_sent.load(Relaxed), g.icmp_rate_limited.load(Relaxed))
}

/// A client segment of `len` bytes of IP, with DF as given.
fn big_syn(len: usize, df: bool) -> Vec<u8> {
    let payload = vec![0x5a; len - 40];
    let mut f = FrameSpec {
        payload: &payload,
        ..from_client(41000, 80, SYN)
    }
    .to_vec();
    f[20] = if df { 0x40 } else { 0 };
    fix_ip_csum(&mut f);
    f
}

/// Checks an IPv4 ICMP error in `out` from `src` to the client about
/// `orig`, and returns (type, code, next-hop MTU).
fn v4_error(out: &[u8], src: Addr, orig: &[u8]) -> (u8, u8, u16) {
    assert_checksums(out);
    assert_eq!(&out[0..6], &lab::CLIENT_MAC.0, "back to the client's MAC");
    assert_eq!(&out[6..12], &lab::WAN_MAC.0);
    assert_eq!(&out[12..14], &[0x08, 0x00]);
    assert_eq!(v4_src_dst(out), (src, CIP));
    assert_eq!(out[23], proto::ICMP);
    let total = be16(out, 16) as usize;
    assert_eq!(out.len(), 14 + total);
    assert!(total <= 576, "{total} bytes: at most 576");
    let icmp = &out[34..];
    assert_eq!(rfc1071(&[icmp]), 0, "ICMP checksum");
    let quote = &icmp[8..];
    assert_eq!(quote.len(), (orig.len() - 14).min(576 - 28));
    // The quote is the packet as received, but for the decremented TTL.
    let mut want = orig[14..14 + quote.len()].to_vec();
    want[8] = quote[8];
    want[10..12].copy_from_slice(&quote[10..12]);
    assert_eq!(quote, &want[..]);
    assert_eq!(&icmp[4..6], &[0, 0], "unused");
    (icmp[0], icmp[1], be16(icmp, 6))
}

#[test]
fn ttl_running_out_answers_time_exceeded_from_the_vip() {
    let mut w = worker(lab::tutorial_fnat(1));
    resolve_client(&mut w, CIP, 0);
    let f = FrameSpec {
        ttl: 1,
        ..from_client(1235, 80, SYN)
    }
    .to_vec();
    let out = run_tx(&mut w, &f, WAN, WAN, 0);
    assert_eq!(v4_error(&out, lab::VIP, &f), (11, 0, 0));
    assert_eq!(out[14 + 28 + 8], 1, "the quote keeps TTL 1");
    assert_eq!(drops(&w, DropReason::TtlExpired), 1);
    assert_eq!(sent(&w), (1, 0));
}

#[test]
fn tunnel_packet_too_big_for_the_encapsulation_gets_frag_needed() {
    let mut w = worker(one_dest(FwdMode::Tunnel, 1500));
    resolve_client(&mut w, CIP, 0);
    // 1480 bytes of IP fit; with the 20-byte outer header 1500 do not.
    let fits = big_syn(1480, true);
    run_tx(&mut w, &fits, WAN, LAN, 0);
    let f = big_syn(1481, true);
    let out = run_tx(&mut w, &f, WAN, WAN, 0);
    assert_eq!(v4_error(&out, lab::VIP, &f), (3, 4, 1480));
    assert_eq!(drops(&w, DropReason::TooBig), 1);
    assert_eq!(sent(&w), (1, 0));

    // Without DF the sender is not told (rvs does not fragment).
    let (v, _) = run(&mut w, &big_syn(1481, false), WAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::TooBig));
    assert_eq!(sent(&w), (1, 0));
}

#[test]
fn dr_packet_over_the_lan_mtu_gets_frag_needed() {
    let mut w = worker(one_dest(FwdMode::Dr, 1400));
    resolve_client(&mut w, CIP, 0);
    run_tx(&mut w, &big_syn(1400, true), WAN, LAN, 0);
    let f = big_syn(1500, true);
    let out = run_tx(&mut w, &f, WAN, WAN, 0);
    assert_eq!(v4_error(&out, lab::VIP, &f), (3, 4, 1400));
}

#[test]
fn errors_are_rate_limited_and_never_about_errors() {
    let mut w = worker(lab::tutorial_fnat(1));
    resolve_client(&mut w, CIP, 0);
    let mut transmitted = 0;
    for i in 0..200u16 {
        let f = FrameSpec {
            ttl: 1,
            ..from_client(2000 + i, 80, SYN)
        }
        .to_vec();
        if let (Verdict::Transmit(WAN), _) = run(&mut w, &f, WAN, 5) {
            transmitted += 1;
        }
    }
    assert_eq!(drops(&w, DropReason::TtlExpired), 200);
    let (ok, limited) = sent(&w);
    assert_eq!(ok, transmitted);
    assert_eq!(ok + limited, 200);
    assert!((50..=60).contains(&ok), "a burst of about 50, sent {ok}");
    // A second later the bucket has refilled.
    let f = FrameSpec {
        ttl: 1,
        ..from_client(3000, 80, SYN)
    }
    .to_vec();
    run_tx(&mut w, &f, WAN, WAN, 1005);
    assert_eq!(sent(&w).0, ok + 1);

    // An ICMP error whose TTL runs out is dropped without an answer.
    let inner = FrameSpec::tcp(lab::VIP, 80, CIP, 40000, SYN | ACK).to_vec();
    let msg = icmp_msg(3, 3, [0; 4], &inner[14..42]);
    let f = ipv4_frame(
        lab::WAN_MAC,
        lab::CLIENT_MAC,
        CIP,
        lab::VIP,
        proto::ICMP,
        1,
        &msg,
    );
    let (v, _) = run(&mut w, &f, WAN, 1006);
    assert!(!matches!(v, Verdict::Transmit(_)), "{v:?}");
    assert_eq!(sent(&w).0, ok + 1);
}

#[test]
fn hop_limit_running_out_answers_icmpv6_time_exceeded() {
    let mut w = worker(v6_lab());
    let f = FrameSpec {
        ttl: 1,
        ..FrameSpec::tcp(v6::cip(), 40000, v6::vip(), 80, SYN)
    }
    .to_vec();
    let out = run_tx(&mut w, &f, WAN, WAN, 0);
    assert_eq!(&out[0..6], &lab::CLIENT_MAC.0);
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    assert_eq!(v6_src_dst(&out), (v6::vip(), v6::cip()));
    assert_eq!(out[20], proto::ICMPV6);
    let plen = be16(&out, 18) as usize;
    assert_eq!(out.len(), V6_L4 + plen);
    let icmp = &out[V6_L4..];
    assert_eq!((icmp[0], icmp[1]), (3, 0), "time exceeded, hop limit");
    assert!(checksum::verify_l4(
        &v6::vip(),
        &v6::cip(),
        proto::ICMPV6,
        icmp
    ));
    assert_eq!(&icmp[8..8 + 7], &f[14..21], "quote starts with the header");
    assert_eq!(icmp.len() - 8, f.len() - 14);
    assert_eq!(sent(&w), (1, 0));
}

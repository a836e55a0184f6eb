//! One parser per header: the pipeline reads headers through the `wire` views,
//! so a frame the views reject is dropped under the reason the view gives, and
//! the rewrites keep the checksums right wherever the fields sit.
//!
//! Each test here pins a place where the pipeline's own offset reading once
//! disagreed with the views.

use super::oracle::{assert_checksums, rfc1071};
use super::util::*;
use crate::addr::proto;
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, VIP, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::sched::SchedKind;
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;
use crate::wire::{TcpPacket, UdpPacket, WireError};

/// Runs `f` on `port`: it must be dropped for `r`, counted once.
fn assert_dropped_on(w: &mut Worker, f: &[u8], port: u16, r: DropReason) {
    let before = drops(w, r);
    let (v, _) = run(w, f, port, 0);
    assert_eq!(v, Verdict::Drop(r), "all drops: {:?}", w.drops().nonzero());
    assert_eq!(drops(w, r), before + 1, "{r:?} counted");
}

/// Recomputes the TCP checksum of an Ethernet/IPv4 frame with the oracle.
fn fix_tcp_csum(f: &mut [u8]) {
    let l4 = v4_l4(f);
    let end = 14 + be16(f, 16) as usize;
    f[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
    let len = ((end - l4) as u16).to_be_bytes();
    let c = rfc1071(&[&f[26..34], &[0, proto::TCP, len[0], len[1]], &f[l4..end]]);
    f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn tcp_data_offset_past_the_end_is_truncated_as_the_view_says() {
    let mut w = worker(lab::tutorial_fnat(1));
    // A 20-byte SYN whose data offset claims a 60-byte header.
    let mut f = from_client(1234, 80, SYN).to_vec();
    f[34 + 12] = 0xf0;
    fix_tcp_csum(&mut f);
    assert_eq!(
        TcpPacket::new_checked(&f[34..]).err(),
        Some(WireError::Truncated)
    );
    assert_dropped_on(&mut w, &f, WAN, DropReason::Truncated);

    // A data offset below 5 is a bad header length: malformed in both.
    let mut f = from_client(1235, 80, SYN).to_vec();
    f[34 + 12] = 0x40;
    fix_tcp_csum(&mut f);
    assert_eq!(
        TcpPacket::new_checked(&f[34..]).err(),
        Some(WireError::BadHeaderLen)
    );
    assert_dropped_on(&mut w, &f, WAN, DropReason::Malformed);
}

#[test]
fn udp_length_past_the_end_is_truncated_as_the_view_says() {
    let mut w = worker(lab::tutorial_fnat(1));
    let mut f = FrameSpec::udp(CIP, 5000, VIP, 53, b"query").to_vec();
    // Length 100 in a 13-byte datagram; no checksum (legal over IPv4).
    f[38..40].copy_from_slice(&100u16.to_be_bytes());
    f[40..42].copy_from_slice(&[0, 0]);
    assert_eq!(
        UdpPacket::new_checked(&f[34..]).err(),
        Some(WireError::Truncated)
    );
    assert_dropped_on(&mut w, &f, WAN, DropReason::Truncated);

    // A length below the header is a bad length: malformed in both.
    f[38..40].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(
        UdpPacket::new_checked(&f[34..]).err(),
        Some(WireError::BadLength)
    );
    assert_dropped_on(&mut w, &f, WAN, DropReason::Malformed);
}

#[test]
fn udp6_zero_checksum_is_refused() {
    // RFC 8200 §8.1: a zero UDP checksum over IPv6 is discarded, even when
    // the datagram's sum happens to verify with a zero in the field.
    let mut w = worker(v6_lab());
    let mut f = FrameSpec::udp(v6::cip(), 5000, v6::vip(), 53, &[0, 0]).to_vec();
    let c = be16(&f, V6_L4 + 6);
    // The payload word that makes the computed checksum 0 (sent as 0xffff).
    f[V6_L4 + 8..V6_L4 + 10].copy_from_slice(&c.to_be_bytes());
    f[V6_L4 + 6..V6_L4 + 8].copy_from_slice(&0xffffu16.to_be_bytes());
    assert_checksums(&f);
    f[V6_L4 + 6..V6_L4 + 8].copy_from_slice(&[0, 0]);
    assert_dropped_on(&mut w, &f, WAN, DropReason::BadChecksum);
}

/// A UDP FNAT service on VIP:2560 and the reply VIP:2560 -> CIP:48 it sent
/// to the client. With an inner IHL of 4 the quoted destination address
/// (10.0.0.48) would read as the ports 2560 -> 48: the client's own tuple.
fn udp_conn_and_reply() -> (Worker, Vec<u8>) {
    let svc = vs(
        4,
        proto::UDP,
        0x0a00,
        SchedKind::Rr,
        &[DestSpec::new(lab::rs_ip(0), 5353, FwdMode::Fnat)],
        0,
    );
    let mut w = worker(lab::snapshot(1, vec![svc], 1));
    resolve_client(&mut w, CIP, 0);
    let query = FrameSpec::udp(CIP, 48, VIP, 0x0a00, b"query").to_vec();
    let fwd = run_tx(&mut w, &query, WAN, LAN, 0);
    let answer = FrameSpec {
        src_mac: lab::rs_mac(0),
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::udp(lab::rs_ip(0), 5353, lab::LIP, be16(&fwd, 34), b"answer")
    }
    .to_vec();
    let back = run_tx(&mut w, &answer, LAN, WAN, 1);
    assert_eq!(v4_src_dst(&back), (VIP, CIP));
    (w, back)
}

/// Fragmentation needed from a router on the client's side quoting `quote`.
fn frag_needed(quote: &[u8]) -> Vec<u8> {
    ipv4_frame(
        lab::WAN_MAC,
        lab::CLIENT_MAC,
        CIP,
        VIP,
        proto::ICMP,
        64,
        &icmp_msg(3, 4, [0, 0, 0x05, 0x78], quote),
    )
}

#[test]
fn icmp_error_quoting_an_inner_ihl_below_5_is_dropped() {
    let (mut w, back) = udp_conn_and_reply();
    let good = back[14..42].to_vec();
    // The well-formed quote is translated toward the real server.
    let out = run_tx(&mut w, &frag_needed(&good), WAN, LAN, 2);
    assert_checksums(&out);

    let mut bad = good.clone();
    bad[0] = 0x44;
    assert_dropped_on(&mut w, &frag_needed(&bad), WAN, DropReason::Malformed);
}

#[test]
fn icmp_error_quoting_a_total_length_below_the_header_is_dropped() {
    let (mut w, back) = udp_conn_and_reply();
    let mut bad = back[14..42].to_vec();
    bad[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert_dropped_on(&mut w, &frag_needed(&bad), WAN, DropReason::Malformed);
}

/// A neighbour solicitation from the IPv6 client for the VIP with `icmp` as
/// its ICMPv6 message (checksum filled in here).
fn ns_frame(mut icmp: Vec<u8>) -> Vec<u8> {
    let t = v6::vip().0;
    let mut mc = [0u8; 16];
    mc[0] = 0xff;
    mc[1] = 0x02;
    mc[11] = 1;
    mc[12] = 0xff;
    mc[13..].copy_from_slice(&t[13..]);
    let len = (icmp.len() as u16).to_be_bytes();
    let src = v6::cip().0;
    let c = rfc1071(&[&src, &mc, &[0, 0, len[0], len[1], 0, 0, 0, 58], &icmp]);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![0x33, 0x33, 0xff, t[13], t[14], t[15]];
    f.extend_from_slice(&lab::CLIENT_MAC.0);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, len[0], len[1], 58, 255]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&mc);
    f.extend_from_slice(&icmp);
    f
}

/// The NS for the VIP up to its target address (24 bytes).
fn ns_head() -> Vec<u8> {
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&v6::vip().0);
    icmp
}

#[test]
fn neighbour_solicitation_cut_before_its_target_is_truncated() {
    let mut w = worker(v6_lab());
    let mut icmp = ns_head();
    icmp.truncate(16);
    assert_dropped_on(&mut w, &ns_frame(icmp), WAN, DropReason::Truncated);
}

#[test]
fn neighbour_solicitation_with_a_zero_length_option_is_dropped() {
    let mut w = worker(v6_lab());
    // Source link-layer address option, then an option of length 0
    // (RFC 4861 §7.1.1: discard).
    let mut icmp = ns_head();
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&lab::CLIENT_MAC.0);
    let good = ns_frame(icmp.clone());
    let (v, _) = run(&mut w, &good, WAN, 0);
    assert_eq!(v, Verdict::Transmit(WAN), "well-formed NS answered");
    icmp.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
    assert_dropped_on(&mut w, &ns_frame(icmp), WAN, DropReason::Malformed);
}

#[test]
fn mss_clamp_keeps_the_checksum_at_an_odd_offset() {
    let mut w = worker(lab::tutorial_fnat(1));
    // NOP, then MSS 1460 at an odd offset of the segment, NOP, NOP, EOL.
    let syn = FrameSpec {
        tcp_opts: &[1, 2, 4, 0x05, 0xb4, 1, 1, 0],
        ..from_client(37177, 80, SYN)
    }
    .to_vec();
    let out = run_tx(&mut w, &syn, WAN, LAN, 0);
    assert_eq!(tcp_opts(&out), &[1, 2, 4, 0x05, 0xac, 1, 1, 0]);
    assert_checksums(&out);
}

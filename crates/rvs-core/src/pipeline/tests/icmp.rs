//! ICMP errors about FNAT connections, translated both ways.

use super::oracle::{assert_checksums, rfc1071};
use super::util::*;
use crate::addr::proto;
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, LIP, VIP, WAN};
use crate::sched::SchedKind;

/// `ip` (an IPv4 packet) with another TTL and its header checksum redone.
fn with_ttl(ip: &[u8], ttl: u8) -> Vec<u8> {
    let mut v = ip.to_vec();
    v[8] = ttl;
    v[10..12].copy_from_slice(&[0, 0]);
    let c = rfc1071(&[&v[..20]]);
    v[10..12].copy_from_slice(&c.to_be_bytes());
    v
}

#[test]
fn icmp_errors_are_translated_both_ways() {
    let svc = vs(
        4,
        proto::UDP,
        53,
        SchedKind::Rr,
        &[DestSpec::new(lab::rs_ip(0), 5353, FwdMode::Fnat)],
        0,
    );
    let mut w = worker(lab::snapshot(1, vec![svc], 1));
    resolve_client(&mut w, CIP, 0);
    let query = FrameSpec::udp(CIP, 5000, VIP, 53, b"query").to_vec();
    let fwd = run_tx(&mut w, &query, WAN, LAN, 0);
    let lport = be16(&fwd, 34);
    assert_eq!(v4_src_dst(&fwd), (LIP, lab::rs_ip(0)));

    // The RS has nothing on 5353: port unreachable quoting LIP:lport -> RIP:5353.
    let err = ipv4_frame(
        lab::LAN_MAC,
        lab::rs_mac(0),
        lab::rs_ip(0),
        LIP,
        proto::ICMP,
        64,
        &icmp_msg(3, 3, [0; 4], &fwd[14..]),
    );
    assert_checksums(&err);
    let out = run_tx(&mut w, &err, LAN, WAN, 1);
    assert_checksums(&out);
    assert_eq!(&out[0..6], &lab::CLIENT_MAC.0);
    assert_eq!(&out[6..12], &lab::WAN_MAC.0);
    assert_eq!(v4_src_dst(&out), (VIP, CIP));
    assert_eq!(out[22], 63);
    assert_eq!((out[34], out[35]), (3, 3));
    // The quote is the client's own datagram as rvs forwarded it: CIP:5000 ->
    // VIP:53, TTL 63, valid header and UDP checksums.
    let inner = &out[42..];
    assert_eq!(inner, &with_ttl(&query[14..], 63)[..]);
    assert_eq!(rfc1071(&[&inner[..20]]), 0);
    assert_eq!((be16(inner, 20), be16(inner, 22)), (5000, 53));

    // The answer to the client, and a router on the client's side that finds
    // it too big: frag needed (MTU 1400) quoting VIP:53 -> CIP:5000.
    let answer = FrameSpec {
        src_mac: lab::rs_mac(0),
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::udp(lab::rs_ip(0), 5353, LIP, lport, b"answer")
    }
    .to_vec();
    let back = run_tx(&mut w, &answer, LAN, WAN, 2);
    assert_eq!(v4_src_dst(&back), (VIP, CIP));
    let err = ipv4_frame(
        lab::WAN_MAC,
        lab::CLIENT_MAC,
        CIP,
        VIP,
        proto::ICMP,
        64,
        &icmp_msg(3, 4, [0, 0, 0x05, 0x78], &back[14..42]),
    );
    let out = run_tx(&mut w, &err, WAN, LAN, 3);
    assert_checksums(&out);
    assert_eq!(&out[0..6], &lab::rs_mac(0).0);
    assert_eq!(&out[6..12], &lab::LAN_MAC.0);
    assert_eq!(v4_src_dst(&out), (LIP, lab::rs_ip(0)));
    assert_eq!((out[34], out[35]), (3, 4));
    assert_eq!(&out[38..42], &[0, 0, 0x05, 0x78], "next-hop MTU kept");
    // The quote is what the RS sent: RIP:5353 -> LIP:lport.
    let inner = &out[42..];
    assert_eq!(inner, &with_ttl(&answer[14..42], 63)[..]);
    assert_eq!(rfc1071(&[&inner[..20]]), 0);
}

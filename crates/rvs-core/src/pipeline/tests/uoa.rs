//! UOA on FNAT UDP (`[pipeline] uoa_mode = "opp" | "ipo"`): the client's
//! address and port in the first `uoa_max_trail` datagrams toward the real
//! server, none after the real server answered, none when the datagram
//! would exceed the MTU (counted), none when off; checksums valid.

use std::sync::atomic::Ordering::Relaxed;

use super::oracle::assert_checksums;
use super::util::*;
use crate::addr::proto;
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::Worker;
use crate::sched::SchedKind;
use crate::wire::uoa::{decode, Mode};

/// One FNAT UDP service (port 53, one real server) with UOA in `mode`.
fn uoa_worker(mode: Mode, trail: u8) -> Worker {
    let dests = [DestSpec::new(lab::rs_ip(0), 53, FwdMode::Fnat)];
    let svc = vs(2, proto::UDP, 53, SchedKind::Rr, &dests, 0);
    let mut snap = lab::snapshot(1, vec![svc], 1);
    snap.conf.uoa_mode = mode;
    snap.conf.uoa_max_trail = trail;
    let mut w = worker(snap);
    resolve_client(&mut w, CIP, 0);
    w
}

fn datagram(cport: u16, payload: &[u8]) -> Vec<u8> {
    FrameSpec::udp(CIP, cport, VIP, 53, payload).to_vec()
}

/// The frame without its `opp` header (12 bytes after a 20-byte IPv4
/// header): the datagram the real server's decoder hands on.
fn strip_opp(out: &[u8]) -> Vec<u8> {
    let mut f = [&out[..34], &out[46..]].concat();
    f[23] = proto::UDP;
    let total = be16(out, 16) - 12;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ip_csum(&mut f);
    f
}

fn sent(w: &Worker) -> (u64, u64) {
    let g = w.gauges();
    (g.uoa_sent.load(Relaxed), g.uoa_too_big.load(Relaxed))
}

#[test]
fn opp_in_the_first_datagrams_exact_bytes() {
    let mut w = uoa_worker(Mode::Opp, 3);
    let q = b"query";
    for i in 0..4u64 {
        let out = run_tx(&mut w, &datagram(40000, q), WAN, LAN, 1 + i);
        if i == 3 {
            assert_eq!(out.len(), 14 + 20 + 8 + q.len(), "the 4th goes plain");
            assert_eq!(out[23], proto::UDP);
            assert_checksums(&out);
            continue;
        }
        assert_eq!(out.len(), 14 + 20 + 12 + 8 + q.len());
        assert_eq!(out[23], 248, "IP protocol: the option protocol");
        assert_eq!(
            be16(&out, 16) as usize,
            20 + 12 + 8 + q.len(),
            "IP total length"
        );
        assert_eq!(
            &out[34..46],
            &[0x10, 17, 0, 12, 0x1f, 8, 0x9c, 0x40, 10, 0, 0, 48],
            "opp header: v4, UDP, 12 bytes, UOA option 10.0.0.48:40000"
        );
        assert_eq!(v4_src_dst(&out), (LIP, lab::rs_ip(0)));
        assert_eq!(
            be16(&out, 48),
            53,
            "UDP destination: the real server's port"
        );
        assert_eq!(&out[54..], q);
        let d = decode(&out[14..]).expect("UOA found");
        assert_eq!(
            (d.client, d.proto, d.l4, d.mode),
            ((CIP, 40000), 17, 32, Mode::Opp)
        );
        // IP header checksum valid, UDP checksum valid once the header is removed.
        assert_checksums(&strip_opp(&out));
        let mut fixed = out.clone();
        fix_ip_csum(&mut fixed);
        assert_eq!(out[24..26], fixed[24..26], "IPv4 header checksum");
    }
    assert_eq!(sent(&w), (3, 0));
}

#[test]
fn ipo_option_exact_bytes() {
    let mut w = uoa_worker(Mode::Ipo, 2);
    let q = b"hello";
    let out = run_tx(&mut w, &datagram(40002, q), WAN, LAN, 1);
    assert_eq!(out[14], 0x47, "IHL 7: 8 bytes of options");
    assert_eq!(out[23], proto::UDP);
    assert_eq!(be16(&out, 16) as usize, 28 + 8 + q.len());
    assert_eq!(&out[34..42], &[0x1f, 8, 0x9c, 0x42, 10, 0, 0, 48]);
    assert_eq!(&out[50..], q);
    assert_checksums(&out);
    let d = decode(&out[14..]).expect("UOA found");
    assert_eq!((d.client, d.l4, d.mode), ((CIP, 40002), 28, Mode::Ipo));
    assert_eq!(sent(&w), (1, 0));
}

#[test]
fn a_reply_from_the_real_server_stops_uoa() {
    let mut w = uoa_worker(Mode::Opp, 3);
    let out = run_tx(&mut w, &datagram(40003, b"q1"), WAN, LAN, 1);
    assert_eq!(out[23], 248);
    let lport = be16(&out, 46);
    let r = FrameSpec {
        src_mac: lab::rs_mac(0),
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::udp(lab::rs_ip(0), 53, LIP, lport, b"answer")
    }
    .to_vec();
    let back = run_tx(&mut w, &r, LAN, WAN, 2);
    assert_eq!(v4_src_dst(&back), (VIP, CIP));
    let out = run_tx(&mut w, &datagram(40003, b"q2"), WAN, LAN, 3);
    assert_eq!(out[23], proto::UDP, "no UOA once the real server answered");
    assert_eq!(decode(&out[14..]), None);
    assert_eq!(sent(&w), (1, 0));
}

#[test]
fn too_big_goes_without_uoa_and_is_counted() {
    let mut w = uoa_worker(Mode::Opp, 3);
    let big = vec![7u8; 1500 - 28];
    let out = run_tx(&mut w, &datagram(40004, &big), WAN, LAN, 1);
    assert_eq!(out.len(), 14 + 1500, "forwarded as it was, not dropped");
    assert_eq!(out[23], proto::UDP);
    assert_checksums(&out);
    assert_eq!(sent(&w), (0, 1));
    // A later small datagram still carries it.
    let out = run_tx(&mut w, &datagram(40004, b"s"), WAN, LAN, 2);
    assert_eq!(out[23], 248);
    assert_eq!(sent(&w), (1, 1));
}

#[test]
fn off_by_default() {
    let dests = [DestSpec::new(lab::rs_ip(0), 53, FwdMode::Fnat)];
    let svc = vs(2, proto::UDP, 53, SchedKind::Rr, &dests, 0);
    let mut w = worker(lab::snapshot(1, vec![svc], 1));
    resolve_client(&mut w, CIP, 0);
    let out = run_tx(&mut w, &datagram(40005, b"q"), WAN, LAN, 1);
    assert_eq!((out[23], out.len()), (proto::UDP, 14 + 28 + 1));
    assert_eq!(sent(&w), (0, 0));
}

#[test]
fn opp_for_an_ipv6_client_exact_bytes() {
    let mut snap = v6_lab_proto(proto::UDP);
    snap.conf.uoa_mode = Mode::Opp;
    let mut w = worker(snap);
    let q = b"query6";
    let f = FrameSpec::udp(v6::cip(), 40006, v6::vip(), 80, q).to_vec();
    let out = run_tx(&mut w, &f, WAN, LAN, 1);
    assert_eq!(out[20], 248, "next header: the option protocol");
    assert_eq!(be16(&out, 18) as usize, 24 + 8 + q.len(), "payload length");
    let mut want = vec![0x20, 17, 0, 24, 0x1f, 20, 0x9c, 0x46];
    want.extend_from_slice(v6::cip().wire_bytes());
    assert_eq!(&out[V6_L4..V6_L4 + 24], &want[..]);
    assert_eq!(v6_src_dst(&out), (v6::lip(), v6::rip()));
    assert_eq!(&out[V6_L4 + 32..], q);
    let d = decode(&out[14..]).expect("UOA found");
    assert_eq!((d.client, d.l4), ((v6::cip(), 40006), 64));
    // Without the header, the UDP checksum (mandatory in IPv6) is valid.
    let mut plain = [&out[..V6_L4], &out[V6_L4 + 24..]].concat();
    plain[20] = proto::UDP;
    plain[18..20].copy_from_slice(&((8 + q.len()) as u16).to_be_bytes());
    assert_checksums(&plain);
    // ipo is IPv4 only: an IPv6 datagram goes plain.
    let mut snap = v6_lab_proto(proto::UDP);
    snap.conf.uoa_mode = Mode::Ipo;
    let mut w = worker(snap);
    let out = run_tx(&mut w, &f, WAN, LAN, 1);
    assert_eq!((out[20], out.len()), (proto::UDP, V6_L4 + 8 + q.len()));
}

/// The XDP fast path (which would forward without UOA) is not offered the
/// client's direction while its datagrams still carry UOA.
#[test]
fn fast_path_waits_for_uoa_to_end() {
    use crate::pipeline::FastEvent;
    let dests = [DestSpec::new(lab::rs_ip(0), 53, FwdMode::Fnat)];
    let svc = vs(2, proto::UDP, 53, SchedKind::Rr, &dests, 0);
    let mut snap = lab::snapshot(1, vec![svc], 1);
    snap.conf.fast_path = true;
    snap.conf.uoa_mode = Mode::Opp;
    let mut w = worker(snap);
    resolve_client(&mut w, CIP, 0);
    let adds = |w: &mut Worker| {
        let mut v = Vec::new();
        w.take_fast(|e| {
            if let FastEvent::Add { key, .. } = e {
                v.push(key.port);
            }
        });
        v
    };
    let out = run_tx(&mut w, &datagram(40007, b"q"), WAN, LAN, 1);
    assert_eq!(out[23], 248);
    assert_eq!(
        adds(&mut w),
        Vec::<u16>::new(),
        "nothing offered while UOA is sent"
    );
    let lport = be16(&out, 46);
    let r = FrameSpec {
        src_mac: lab::rs_mac(0),
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::udp(lab::rs_ip(0), 53, LIP, lport, b"a")
    };
    run_tx(&mut w, &r.to_vec(), LAN, WAN, 2);
    assert_eq!(adds(&mut w), vec![LAN], "the reply direction");
    let out = run_tx(&mut w, &datagram(40007, b"q"), WAN, LAN, 3);
    assert_eq!(out[23], proto::UDP);
    assert_eq!(adds(&mut w), vec![WAN], "the client's, UOA done");
}

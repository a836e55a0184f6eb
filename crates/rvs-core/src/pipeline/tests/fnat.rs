//! FNAT (`-b`): TCP lifecycle with TOA, IPv4 options, UDP, IPv6.

use std::collections::HashSet;

use super::oracle::assert_checksums;
use super::util::*;
use crate::addr::proto;
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::sched::SchedKind;
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

/// The RS index (0 or 1) a frame leaving on the LAN is addressed to.
fn rs_index(out: &[u8]) -> u8 {
    let (_, d) = v4_src_dst(out);
    let i = (0..2).find(|&i| lab::rs_ip(i) == d).expect("sent to a RS");
    assert_eq!(&out[0..6], &lab::rs_mac(i).0, "RS MAC");
    assert_eq!(&out[6..12], &lab::LAN_MAC.0, "from the LAN port");
    i
}

/// Checks a frame rvs sends to the client: VIP:vport -> CIP:cport from the WAN port.
fn assert_to_client(out: &[u8], vport: u16, cport: u16) {
    assert_checksums(out);
    assert_eq!(&out[0..6], &lab::CLIENT_MAC.0);
    assert_eq!(&out[6..12], &lab::WAN_MAC.0);
    assert_eq!(v4_src_dst(out), (VIP, CIP));
    let l4 = v4_l4(out);
    assert_eq!((be16(out, l4), be16(out, l4 + 2)), (vport, cport));
}

#[test]
fn fnat_tcp_full_lifecycle() {
    let mut w = worker(lab::tutorial_fnat(1));
    let svc = w.snapshot().services[0].clone();
    resolve_client(&mut w, CIP, 0);
    // 1024..=65535, all owned by the only worker.
    assert_eq!(w.pool_usage(&LIP), Some((0, 64512, 0)));
    let mut in_bytes = 0u64;
    let mut client = |w: &mut Worker, spec: FrameSpec, now| {
        let f = spec.to_vec();
        in_bytes += (f.len() - 14) as u64;
        let out = run_tx(w, &f, WAN, LAN, now);
        assert_checksums(&out);
        assert_eq!(v4_src_dst(&out).0, LIP);
        assert_eq!(out[22], 63, "TTL decremented");
        out
    };

    // SYN: to a RS from LIP:lport; no TOA yet, the MSS leaves room for it.
    let syn = FrameSpec {
        tcp_opts: &[2, 4, 0x05, 0xb4],
        ..from_client(37177, 80, SYN)
    };
    let out = client(&mut w, syn, 0);
    let rs = rs_index(&out);
    let lport = be16(&out, 34);
    assert!(lport >= 1024);
    assert_eq!(be16(&out, 36), 80);
    assert_eq!(be32(&out, 38), 0x1000_0000, "sequence number untouched");
    assert_eq!(tcp_opts(&out), &[2, 4, 0x05, 0xac]);
    assert_eq!(w.pool_usage(&LIP).map(|u| (u.0, u.1)), Some((1, 64511)));
    let ds = svc.dests[rs as usize].stats.sum();
    assert_eq!((ds.conns, ds.active, ds.inactive), (1, 0, 1));
    assert_eq!(w.conns().len(), 1);

    // SYN-ACK from the RS back to the client.
    let out = run_tx(
        &mut w,
        &from_rs(rs, 80, LIP, lport, SYN | ACK).to_vec(),
        LAN,
        WAN,
        1,
    );
    assert_to_client(&out, 80, 37177);
    assert_eq!(out[22], 63);

    // The handshake's ACK carries TOA: kind 254, len 8, port 37177, 10.0.0.48.
    let out = client(&mut w, from_client(37177, 80, ACK), 2);
    assert_eq!(tcp_opts(&out), &[254, 8, 0x91, 0x39, 10, 0, 0, 48]);
    assert_eq!(be16(&out, 16), 20 + 28, "IP total length grew by 8");
    let ds = svc.dests[rs as usize].stats.sum();
    assert_eq!((ds.active, ds.inactive), (1, 0), "ESTABLISHED");

    // The first data segment carries TOA too, in front of the intact payload.
    let req = b"GET / HTTP/1.0\r\n\r\n";
    let data = FrameSpec {
        payload: req,
        ..from_client(37177, 80, ACK | PSH)
    };
    let out = client(&mut w, data, 3);
    assert_eq!(tcp_opts(&out), &[254, 8, 0x91, 0x39, 10, 0, 0, 48]);
    assert_eq!(tcp_payload(&out), req);
    // Later segments do not.
    let out = client(&mut w, data, 4);
    assert_eq!(tcp_hlen(&out), 20, "no TOA after the first data segment");
    assert_eq!(tcp_payload(&out), req);
    assert_eq!(be16(&out, 16) as usize, 40 + req.len());

    // Response data from the RS.
    let resp = b"HTTP/1.0 200 OK\r\n\r\n";
    let f = FrameSpec {
        payload: resp,
        ..from_rs(rs, 80, LIP, lport, ACK | PSH)
    }
    .to_vec();
    let out = run_tx(&mut w, &f, LAN, WAN, 5);
    assert_to_client(&out, 80, 37177);
    assert_eq!(tcp_payload(&out), resp);

    // Close: client FIN, RS ACK, RS FIN, client ACK.
    let out = client(&mut w, from_client(37177, 80, FIN | ACK), 6);
    assert_eq!(out[v4_l4(&out) + 13], FIN | ACK);
    let ds = svc.dests[rs as usize].stats.sum();
    assert_eq!((ds.active, ds.inactive), (0, 1), "no longer ESTABLISHED");
    let out = run_tx(
        &mut w,
        &from_rs(rs, 80, LIP, lport, ACK).to_vec(),
        LAN,
        WAN,
        7,
    );
    assert_to_client(&out, 80, 37177);
    let out = run_tx(
        &mut w,
        &from_rs(rs, 80, LIP, lport, FIN | ACK).to_vec(),
        LAN,
        WAN,
        8,
    );
    assert_to_client(&out, 80, 37177);
    let out = client(&mut w, from_client(37177, 80, ACK), 9);
    assert_eq!(tcp_hlen(&out), 20);

    let st = svc.stats.sum();
    assert_eq!((st.conns, st.inpkts, st.outpkts), (1, 6, 4));
    assert_eq!(st.inbytes, in_bytes);
    assert_eq!(
        st.outbytes,
        (3 * 40 + 40 + resp.len()) as u64,
        "SYN-ACK, data, ACK, FIN"
    );
    let ds = svc.dests[rs as usize].stats.sum();
    assert_eq!((ds.inpkts, ds.outpkts), (6, 4));

    // TIME_WAIT lasts 7 s from the last packet.
    w.tick(9 + 6_000);
    assert_eq!(w.conns().len(), 1, "not expired early");
    w.tick(9 + 7_000 + 100);
    assert_eq!(w.conns().len(), 0, "expired");
    assert_eq!(w.pool_usage(&LIP).map(|u| (u.0, u.1)), Some((0, 64512)));
    let ds = svc.dests[rs as usize].stats.sum();
    assert_eq!((ds.active, ds.inactive, ds.conns), (0, 0, 1));
    // A late segment has no conn any more.
    let (v, _) = run(&mut w, &from_client(37177, 80, ACK).to_vec(), WAN, 8_000);
    assert_eq!(v, Verdict::Drop(DropReason::NoConn));
}

/// Inserts a 4-byte IPv4 option (router alert) into a frame built without options.
fn with_ip_option(f: &[u8]) -> Vec<u8> {
    let mut g = f[..34].to_vec();
    g.extend_from_slice(&[0x94, 0x04, 0, 0]);
    g.extend_from_slice(&f[34..]);
    g[14] = 0x46;
    let total = be16(&g, 16) + 4;
    g[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ip_csum(&mut g);
    g
}

#[test]
fn fnat_with_ipv4_options() {
    let mut w = worker(lab::tutorial_fnat(1));
    resolve_client(&mut w, CIP, 0);
    let syn = with_ip_option(
        &FrameSpec {
            tcp_opts: &[2, 4, 0x05, 0xb4],
            ..from_client(40001, 80, SYN)
        }
        .to_vec(),
    );
    assert_checksums(&syn);
    let out = run_tx(&mut w, &syn, WAN, LAN, 0);
    assert_checksums(&out);
    let rs = rs_index(&out);
    assert_eq!(v4_src_dst(&out).0, LIP);
    let l4 = v4_l4(&out);
    let lport = be16(&out, l4);
    assert_eq!(be16(&out, l4 + 2), 80);
    assert_eq!(tcp_opts(&out), &[2, 4, 0x05, 0xac]);
    assert_eq!(out[14], 0x46);
    assert_eq!(&out[34..38], &[0x94, 0x04, 0, 0], "option kept as it was");

    let out = run_tx(
        &mut w,
        &from_rs(rs, 80, LIP, lport, SYN | ACK).to_vec(),
        LAN,
        WAN,
        1,
    );
    assert_to_client(&out, 80, 40001);

    // TOA goes after the TCP header, whatever the IP header length.
    let payload = b"hello";
    let ack = with_ip_option(
        &FrameSpec {
            payload,
            ..from_client(40001, 80, ACK | PSH)
        }
        .to_vec(),
    );
    let out = run_tx(&mut w, &ack, WAN, LAN, 2);
    assert_checksums(&out);
    assert_eq!(tcp_opts(&out), &[254, 8, 0x9c, 0x41, 10, 0, 0, 48]);
    assert_eq!(tcp_payload(&out), payload);
    assert_eq!(
        be16(&out, 16) as usize,
        v4_l4(&out) - 14 + 28 + payload.len()
    );
}

#[test]
fn fnat_udp_ports_replies_and_zero_checksum() {
    let dests = [
        DestSpec::new(lab::rs_ip(0), 53, FwdMode::Fnat),
        DestSpec::new(lab::rs_ip(1), 53, FwdMode::Fnat),
    ];
    let svc = vs(2, proto::UDP, 53, SchedKind::Rr, &dests, 0);
    let mut w = worker(lab::snapshot(1, vec![svc], 2));
    resolve_client(&mut w, CIP, 0);
    let q = b"\x12\x34query";
    let mut seen = HashSet::new();
    let mut flows = Vec::new();
    for cport in 20000..20040u16 {
        let f = FrameSpec::udp(CIP, cport, VIP, 53, q).to_vec();
        let out = run_tx(&mut w, &f, WAN, LAN, 1);
        assert_checksums(&out);
        let rs = rs_index(&out);
        assert_eq!(v4_src_dst(&out).0, LIP);
        let lport = be16(&out, 34);
        assert_eq!(be16(&out, 36), 53);
        assert_eq!(be16(&out, 38) as usize, 8 + q.len(), "UDP length");
        assert_eq!(&out[42..], q);
        assert!(seen.insert(lport), "LIP port {lport} handed out twice");
        flows.push((cport, rs, lport));
    }
    assert_eq!(w.pool_usage(&LIP).map(|u| u.0), Some(40));
    // Replies in another order still reach the right client port.
    for &(cport, rs, lport) in flows.iter().rev() {
        let r = FrameSpec {
            src_mac: lab::rs_mac(rs),
            dst_mac: lab::LAN_MAC,
            ..FrameSpec::udp(lab::rs_ip(rs), 53, LIP, lport, b"answer")
        }
        .to_vec();
        let out = run_tx(&mut w, &r, LAN, WAN, 2);
        assert_to_client(&out, 53, cport);
        assert_eq!(&out[42..], b"answer");
    }

    // A datagram without checksum keeps having none, both ways.
    let mut f = FrameSpec::udp(CIP, 30000, VIP, 53, q).to_vec();
    f[40..42].copy_from_slice(&[0, 0]);
    let out = run_tx(&mut w, &f, WAN, LAN, 3);
    assert_checksums(&out);
    assert_eq!(&out[40..42], &[0, 0]);
    let rs = rs_index(&out);
    let lport = be16(&out, 34);
    let mut r = FrameSpec {
        src_mac: lab::rs_mac(rs),
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::udp(lab::rs_ip(rs), 53, LIP, lport, b"answer")
    }
    .to_vec();
    r[40..42].copy_from_slice(&[0, 0]);
    let out = run_tx(&mut w, &r, LAN, WAN, 4);
    assert_to_client(&out, 53, 30000);
    assert_eq!(&out[40..42], &[0, 0]);
}

#[test]
fn fnat_ipv6_translation_and_toa() {
    let mut w = worker(v6_lab());
    let cport = 40000u16;
    let syn = FrameSpec {
        tcp_opts: &[2, 4, 0x05, 0xa0],
        ..FrameSpec::tcp(v6::cip(), cport, v6::vip(), 80, SYN)
    }
    .to_vec();
    let out = run_tx(&mut w, &syn, WAN, LAN, 0);
    assert_checksums(&out);
    assert_eq!(&out[0..6], &v6::RS_MAC.0);
    assert_eq!(&out[6..12], &lab::LAN_MAC.0);
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    assert_eq!(v6_src_dst(&out), (v6::lip(), v6::rip()));
    assert_eq!(out[21], 63, "hop limit decremented");
    let lport = be16(&out, V6_L4);
    assert_eq!(be16(&out, V6_L4 + 2), 8080);
    // 1440 - 20 (room for the IPv6 TOA).
    assert_eq!(&out[V6_L4 + 20..V6_L4 + 24], &[2, 4, 0x05, 0x8c]);

    let synack = FrameSpec {
        src_mac: v6::RS_MAC,
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::tcp(v6::rip(), 8080, v6::lip(), lport, SYN | ACK)
    }
    .to_vec();
    let out = run_tx(&mut w, &synack, LAN, WAN, 1);
    assert_checksums(&out);
    assert_eq!(&out[0..6], &lab::CLIENT_MAC.0);
    assert_eq!(v6_src_dst(&out), (v6::vip(), v6::cip()));
    assert_eq!((be16(&out, V6_L4), be16(&out, V6_L4 + 2)), (80, cport));

    let ack = FrameSpec::tcp(v6::cip(), cport, v6::vip(), 80, ACK).to_vec();
    let out = run_tx(&mut w, &ack, WAN, LAN, 2);
    assert_checksums(&out);
    assert_eq!(be16(&out, 18), 40, "payload length: TCP header of 40");
    assert_eq!(out[V6_L4 + 12] >> 4, 10);
    let mut toa = vec![254, 20, 0x9c, 0x40];
    toa.extend_from_slice(&v6::cip().0);
    assert_eq!(&out[V6_L4 + 20..V6_L4 + 40], &toa[..]);
}

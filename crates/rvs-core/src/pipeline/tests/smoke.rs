use std::sync::Arc;

use super::oracle::*;
use crate::lab::{self, FrameSpec};
use crate::pipeline::{Packet, Verdict, Worker, WorkerConf};
use crate::wire::tcp::flags::*;

fn run(w: &mut Worker, frame: &[u8], port: u16, now: u64) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; 2048];
    let head = 64;
    buf[head..head + frame.len()].copy_from_slice(frame);
    let mut p = Packet {
        buf: &mut buf,
        head,
        len: frame.len(),
        port,
        csum_ok: false,
    };
    let v = w.process(&mut p, now);
    let out = p.buf[p.head..p.head + p.len].to_vec();
    (v, out)
}

#[test]
fn fnat_two_arm_handshake() {
    let snap = Arc::new(lab::tutorial_fnat(1));
    let mut w = Worker::new(
        WorkerConf {
            conn_capacity: 1024,
            ..Default::default()
        },
        snap,
        0,
    );
    let cip = crate::addr::Addr::v4(10, 0, 0, 48);
    // The client resolves the VIP first; rvs answers and learns the client.
    let mut arp = vec![0u8; 60];
    crate::wire::ethernet::write_header(
        &mut arp,
        crate::addr::Mac::BROADCAST,
        lab::CLIENT_MAC,
        0x0806,
    );
    crate::wire::arp::write_arp(
        &mut arp[14..],
        1,
        lab::CLIENT_MAC,
        cip,
        crate::addr::Mac::ZERO,
        lab::VIP,
    );
    let (v, out) = run(&mut w, &arp, lab::WAN, 0);
    assert_eq!(v, Verdict::Transmit(lab::WAN));
    assert_eq!(&out[0..6], &lab::CLIENT_MAC.0);
    assert_eq!(&out[20..22], &[0, 2], "ARP reply");
    assert_eq!(
        &out[22..28],
        &lab::WAN_MAC.0,
        "sender MAC is the WAN port's"
    );
    assert_eq!(&out[28..32], &[10, 0, 0, 100]);
    let syn = FrameSpec {
        tcp_opts: &[2, 4, 0x05, 0xb4],
        ..FrameSpec::tcp(cip, 37177, lab::VIP, 80, SYN)
    }
    .to_vec();
    let (v, out) = run(&mut w, &syn, lab::WAN, 0);
    assert_eq!(
        v,
        Verdict::Transmit(lab::LAN),
        "drops: {:?}",
        w.drops().nonzero()
    );
    assert_checksums(&out);
    assert_eq!(&out[0..6], &lab::rs_mac(0).0);
    assert_eq!(&out[6..12], &lab::LAN_MAC.0);
    assert_eq!(
        v4_addrs(&out),
        ("192.168.100.200".into(), "192.168.100.2".into())
    );
    let (lport, rport) = v4_ports(&out);
    assert_eq!(rport, 80);
    assert_eq!(out[22], 63, "TTL decremented");
    // MSS lowered by the TOA length.
    assert_eq!(&out[54..58], &[2, 4, 0x05, 0xac]);

    // SYN-ACK back from the RS.
    let synack = FrameSpec {
        src_mac: lab::rs_mac(0),
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::tcp(lab::rs_ip(0), 80, lab::LIP, lport, SYN | ACK)
    }
    .to_vec();
    let (v, out) = run(&mut w, &synack, lab::LAN, 1);
    assert_eq!(
        v,
        Verdict::Transmit(lab::WAN),
        "drops: {:?}",
        w.drops().nonzero()
    );
    assert_checksums(&out);
    assert_eq!(v4_addrs(&out), ("10.0.0.100".into(), "10.0.0.48".into()));
    assert_eq!(v4_ports(&out), (80, 37177));

    // ACK from the client carries TOA.
    let ack = FrameSpec::tcp(cip, 37177, lab::VIP, 80, ACK).to_vec();
    let (v, out) = run(&mut w, &ack, lab::WAN, 2);
    assert_eq!(v, Verdict::Transmit(lab::LAN));
    assert_checksums(&out);
    assert_eq!(out[46] >> 4, 7, "TCP header grew to 28 bytes");
    assert_eq!(&out[54..62], &[254, 8, 0x91, 0x39, 10, 0, 0, 48]);

    // A second client goes to the other RS (rr).
    let syn2 = FrameSpec::tcp(cip, 40000, lab::VIP, 80, SYN).to_vec();
    let (v, out) = run(&mut w, &syn2, lab::WAN, 3);
    assert_eq!(v, Verdict::Transmit(lab::LAN));
    assert_eq!(v4_addrs(&out).1, "192.168.100.3");
}

#[test]
fn a_burst_carries_a_syn_and_the_next_segment_of_its_flow() {
    let snap = Arc::new(lab::tutorial_fnat(1));
    let mut w = Worker::new(
        WorkerConf {
            conn_capacity: 64,
            ..Default::default()
        },
        snap,
        0,
    );
    let cip = crate::addr::Addr::v4(10, 0, 0, 48);
    let syn = FrameSpec::tcp(cip, 40001, lab::VIP, 80, SYN).to_vec();
    let ack = FrameSpec::tcp(cip, 40001, lab::VIP, 80, ACK).to_vec();
    let mut b1 = vec![0u8; 2048];
    let mut b2 = vec![0u8; 2048];
    b1[64..64 + syn.len()].copy_from_slice(&syn);
    b2[64..64 + ack.len()].copy_from_slice(&ack);
    let mut pkts = [
        Packet {
            buf: &mut b1,
            head: 64,
            len: syn.len(),
            port: lab::WAN,
            csum_ok: false,
        },
        Packet {
            buf: &mut b2,
            head: 64,
            len: ack.len(),
            port: lab::WAN,
            csum_ok: false,
        },
    ];
    let mut v = [Verdict::Consumed; 2];
    w.process_burst(&mut pkts, &mut v, 0);
    // The ACK was looked up before the SYN created its conn; it must still
    // find it (not be dropped as no_conn).
    assert_eq!(
        v,
        [Verdict::Transmit(lab::LAN), Verdict::Transmit(lab::LAN)],
        "drops: {:?}",
        w.drops().nonzero()
    );
    assert_eq!(v4_addrs(pkts[1].frame()).0, "192.168.100.200");
}

//! NAT64 (IPv6 VIP, IPv4 real server) and NAT46 (IPv4 VIP, IPv6 real
//! server) in FNAT through `Worker::process`: handshakes with TOA and the
//! PROXY protocol, MSS clamps, ICMP errors across families, sync, refusals.

use std::sync::Arc;

use super::oracle::assert_checksums;
use super::sync::{apply, drain, ship};
use super::util::*;
use crate::addr::{proto, Addr};
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::sched::SchedKind;
use crate::service::ServiceKey;
use crate::snapshot::{IfAddr, Snapshot};
use crate::stats::DropReason;
use crate::wire::proxy_proto::Version;
use crate::wire::tcp::flags::*;

const CPORT: u16 = 40000;
const RS4: Addr = Addr::v4(192, 168, 100, 2);

/// Both families on both arms: a service `vip:80` (TCP) with one FNAT dest
/// `rip:80` and the local address `lip` on LAN.
fn lab(vip: Addr, rip: Addr, lip: Addr, mode: FwdMode) -> Snapshot {
    let svc = lab::service(
        7,
        ServiceKey::Vs {
            proto: proto::TCP,
            vip,
            vport: 80,
        },
        SchedKind::Rr,
        &[DestSpec::new(rip, 80, mode)],
        &[(lip, LAN)],
        0,
        1,
    );
    let mut routes = lab::routes();
    routes
        .add(link_route(v6::a("2001:db8::"), 64, WAN))
        .unwrap();
    routes.add(link_route(v6::a("fd00::"), 64, LAN)).unwrap();
    let mut addrs = lab::addrs();
    for (addr, port) in [(v6::vip(), WAN), (v6::lan_ip(), LAN), (v6::lip(), LAN)] {
        addrs.push(IfAddr {
            addr,
            plen: if addr == v6::lan_ip() { 64 } else { 128 },
            port,
            sapool: addr == v6::lip(),
        });
    }
    Snapshot::new(
        1,
        1,
        lab::ports(),
        addrs,
        routes,
        vec![svc],
        vec![
            (RS4, lab::rs_mac(0), LAN),
            (v6::rip(), v6::RS_MAC, LAN),
            (v6::cip(), lab::CLIENT_MAC, WAN),
            (CIP, lab::CLIENT_MAC, WAN),
        ],
        Default::default(),
        Default::default(),
    )
}

fn nat64() -> Snapshot {
    lab(v6::vip(), RS4, LIP, FwdMode::Fnat)
}

fn nat46() -> Snapshot {
    lab(VIP, v6::rip(), v6::lip(), FwdMode::Fnat)
}

/// A segment of the IPv6 client; after the SYN (ISN 0x10000000) at the
/// next sequence number.
fn client6<'a>(flags: u8, opts: &'a [u8], payload: &'a [u8]) -> Vec<u8> {
    let mut f = FrameSpec {
        tcp_opts: opts,
        payload,
        ..FrameSpec::tcp(v6::cip(), CPORT, v6::vip(), 80, flags)
    }
    .to_vec();
    if flags & SYN == 0 {
        f[V6_L4 + 4..V6_L4 + 8].copy_from_slice(&0x1000_0001u32.to_be_bytes());
        f[V6_L4 + 16..V6_L4 + 18].copy_from_slice(&[0, 0]);
        let c = crate::wire::checksum::l4_checksum(&v6::cip(), &v6::vip(), proto::TCP, &f[V6_L4..]);
        f[V6_L4 + 16..V6_L4 + 18].copy_from_slice(&c.to_be_bytes());
    }
    f
}

fn rs4<'a>(lport: u16, flags: u8, opts: &'a [u8], payload: &'a [u8]) -> Vec<u8> {
    FrameSpec {
        src_mac: lab::rs_mac(0),
        dst_mac: lab::LAN_MAC,
        tcp_opts: opts,
        payload,
        ..FrameSpec::tcp(RS4, 80, LIP, lport, flags)
    }
    .to_vec()
}

/// The MSS option value of a frame whose TCP header starts at `l4`.
fn mss(f: &[u8], l4: usize) -> u16 {
    assert_eq!(&f[l4 + 20..l4 + 22], &[2, 4], "MSS first");
    be16(f, l4 + 22)
}

/// NAT64 SYN (MSS 1440), SYN-ACK (MSS 1460, given to the client as
/// `want_mss`): the lport.
fn nat64_open(w: &mut Worker, want_mss: u16) -> u16 {
    let out = run_tx(w, &client6(SYN, &[2, 4, 0x05, 0xa0], b""), WAN, LAN, 0);
    assert_checksums(&out);
    assert_eq!(&out[0..6], &lab::rs_mac(0).0);
    assert_eq!(&out[12..14], &[0x08, 0x00], "IPv4 toward the RS");
    assert_eq!(v4_src_dst(&out), (LIP, RS4));
    assert_eq!(out[22], 63, "TTL = hop limit - 1");
    assert_eq!(be16(&out, 16) as usize, out.len() - 14);
    let lport = be16(&out, 34);
    assert_eq!(be16(&out, 36), 80);
    let sa = rs4(lport, SYN | ACK, &[2, 4, 0x05, 0xb4], b"");
    let back = run_tx(w, &sa, LAN, WAN, 1);
    assert_checksums(&back);
    assert_eq!(&back[12..14], &[0x86, 0xdd], "IPv6 toward the client");
    assert_eq!(v6_src_dst(&back), (v6::vip(), v6::cip()));
    assert_eq!((be16(&back, V6_L4), be16(&back, V6_L4 + 2)), (80, CPORT));
    assert_eq!(mss(&back, V6_L4), want_mss);
    lport
}

#[test]
fn nat64_handshake_and_data_with_toa() {
    let mut w = worker(nat64());
    let out = run_tx(&mut w, &client6(SYN, &[2, 4, 0x05, 0xa0], b""), WAN, LAN, 0);
    assert_eq!(
        mss(&out, 34),
        1440 - 20,
        "room for the 20-byte IPv6 TOA only"
    );
    let mut w = worker(nat64());
    // NAT64: the client's segments shrink, no clamp.
    let lport = nat64_open(&mut w, 1460);
    let out = run_tx(&mut w, &client6(ACK, &[], b""), WAN, LAN, 2);
    assert_checksums(&out);
    // TOA kind 254, length 20: the client's IPv6 port and address.
    let mut toa = vec![254, 20, 0x9c, 0x40];
    toa.extend_from_slice(&v6::cip().0);
    assert_eq!(tcp_opts(&out), &toa[..]);
    let out = run_tx(&mut w, &client6(ACK | PSH, &[], b"GET /"), WAN, LAN, 3);
    assert_checksums(&out);
    assert_eq!(tcp_payload(&out), b"GET /");
    let back = run_tx(&mut w, &rs4(lport, ACK | PSH, &[], b"200 OK"), LAN, WAN, 4);
    assert_checksums(&back);
    assert_eq!(&back[V6_L4 + 20..], b"200 OK");
    assert_eq!(be16(&back, 18) as usize, 20 + 6, "payload length");
    assert_eq!(w.conns().len(), 1);
}

#[test]
fn nat64_with_proxy_protocol_v1_carries_the_ipv6_client() {
    let mut snap = nat64();
    Arc::get_mut(&mut snap.services[0]).unwrap().proxy_protocol = Version::V1;
    snap.conf.toa = false;
    let mut w = worker(snap);
    // Room for the 48-byte PROXY line (the existing clamp).
    let lport = nat64_open(&mut w, 1460 - 48);
    run_tx(&mut w, &client6(ACK, &[], b""), WAN, LAN, 2);
    let out = run_tx(&mut w, &client6(ACK | PSH, &[], b"GET /"), WAN, LAN, 3);
    assert_checksums(&out);
    assert_eq!(
        tcp_payload(&out),
        b"PROXY TCP6 2001:db8::48 2001:db8::100 40000 80\r\nGET /"
    );
    // The RS acknowledges header and request; the client sees its own bytes.
    let seq = be32(&out, 38);
    let ack_no = seq.wrapping_add(tcp_payload(&out).len() as u32);
    let mut a = rs4(lport, ACK, &[], b"");
    a[42..46].copy_from_slice(&ack_no.to_be_bytes());
    a[50..52].copy_from_slice(&[0, 0]);
    let c = crate::wire::checksum::l4_checksum(&RS4, &LIP, proto::TCP, &a[34..]);
    a[50..52].copy_from_slice(&c.to_be_bytes());
    let back = run_tx(&mut w, &a, LAN, WAN, 4);
    assert_checksums(&back);
    assert_eq!(be32(&back, V6_L4 + 8), 0x1000_0001u32 + 5);
}

#[test]
fn nat46_handshake_with_toa_and_mss_clamped_both_ways() {
    let mut w = worker(nat46());
    let syn = FrameSpec {
        tcp_opts: &[2, 4, 0x05, 0xb4],
        ..from_client(CPORT, 80, SYN)
    }
    .to_vec();
    let out = run_tx(&mut w, &syn, WAN, LAN, 0);
    assert_checksums(&out);
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    assert_eq!(&out[0..6], &v6::RS_MAC.0);
    assert_eq!(v6_src_dst(&out), (v6::lip(), v6::rip()));
    assert_eq!(out[21], 63);
    assert_eq!(
        mss(&out, V6_L4),
        1460 - 20 - 8,
        "the IPv6 header, the IPv4 TOA"
    );
    let lport = be16(&out, V6_L4);
    let sa = FrameSpec {
        src_mac: v6::RS_MAC,
        dst_mac: lab::LAN_MAC,
        tcp_opts: &[2, 4, 0x05, 0xa0],
        ..FrameSpec::tcp(v6::rip(), 80, v6::lip(), lport, SYN | ACK)
    }
    .to_vec();
    let back = run_tx(&mut w, &sa, LAN, WAN, 1);
    assert_checksums(&back);
    assert_eq!(&back[12..14], &[0x08, 0x00]);
    assert_eq!(v4_src_dst(&back), (VIP, CIP));
    assert_eq!((be16(&back, 34), be16(&back, 36)), (80, CPORT));
    assert_eq!(
        mss(&back, 34),
        1440 - 20,
        "the client's segments grow by 20"
    );
    let out = run_tx(&mut w, &from_client(CPORT, 80, ACK).to_vec(), WAN, LAN, 2);
    assert_checksums(&out);
    let mut toa = vec![254, 8, 0x9c, 0x40];
    toa.extend_from_slice(&CIP.v4_bytes());
    assert_eq!(&out[V6_L4 + 20..V6_L4 + 28], &toa[..]);
}

#[test]
fn nat46_oversize_after_growth_gets_fragmentation_needed_or_is_dropped_without_df() {
    let mut w = worker(nat46());
    let syn = from_client(CPORT, 80, SYN).to_vec();
    run_tx(&mut w, &syn, WAN, LAN, 0);
    let payload = vec![0u8; 1500 - 20 - 20];
    let seg = FrameSpec {
        payload: &payload,
        ..from_client(CPORT, 80, ACK | PSH)
    }
    .to_vec();
    // DF (FrameSpec sets it): the client is told 1480 fits.
    let out = run_tx(&mut w, &seg, WAN, WAN, 1);
    assert_checksums(&out);
    assert_eq!(v4_src_dst(&out), (VIP, CIP));
    assert_eq!(out[23], proto::ICMP);
    assert_eq!(&out[34..36], &[3, 4], "fragmentation needed");
    assert_eq!(be16(&out, 40), 1480);
    assert_eq!(drops(&w, DropReason::TooBig), 1);
    // Without DF: dropped, counted.
    let mut seg = seg;
    seg[20] = 0;
    fix_ip_csum(&mut seg);
    let (v, _) = run(&mut w, &seg, WAN, 2);
    assert_eq!(v, Verdict::Drop(DropReason::XlateTooBig));
    assert_eq!(drops(&w, DropReason::XlateTooBig), 1);
}

#[test]
fn nat64_oversize_for_the_ipv4_side_gets_packet_too_big() {
    let mut snap = nat64();
    snap.ports[LAN as usize].mtu = 1400;
    let mut w = worker(snap);
    run_tx(&mut w, &client6(SYN, &[], b""), WAN, LAN, 0);
    let payload = vec![0u8; 1500 - 40 - 20];
    // 1480 bytes once IPv4: over 1400; the client learns 1420.
    let out = run_tx(&mut w, &client6(ACK | PSH, &[], &payload), WAN, WAN, 1);
    assert_checksums(&out);
    assert_eq!(v6_src_dst(&out), (v6::vip(), v6::cip()));
    assert_eq!(out[20], 58);
    assert_eq!(&out[V6_L4..V6_L4 + 2], &[2, 0], "packet too big");
    assert_eq!(be32(&out, V6_L4 + 4), 1420);
    assert!(out.len() <= 14 + 1280);
    // 1400 once IPv4: fits.
    let payload = vec![0u8; 1400 - 20 - 20];
    let out = run_tx(&mut w, &client6(ACK | PSH, &[], &payload), WAN, LAN, 2);
    assert_eq!(be16(&out, 16), 1400);
}

/// An ICMP error from the RS's side quoting `quoted` (IPv4, as rvs sent it).
fn icmp4_from_rs(ty: u8, code: u8, rest: [u8; 4], quoted: &[u8]) -> Vec<u8> {
    let m = icmp_msg(ty, code, rest, quoted);
    ipv4_frame(lab::LAN_MAC, lab::rs_mac(0), RS4, LIP, proto::ICMP, 64, &m)
}

#[test]
fn nat64_icmp_errors_cross_families_both_ways() {
    let mut w = worker(nat64());
    let out = run_tx(&mut w, &client6(SYN, &[2, 4, 0x05, 0xa0], b""), WAN, LAN, 0);
    let lport = be16(&out, 34);
    // The RS's side says 1400 is too big: the client learns 1420.
    let err = icmp4_from_rs(3, 4, [0, 0, 0x05, 0x78], &out[14..]);
    let back = run_tx(&mut w, &err, LAN, WAN, 1);
    assert_checksums(&back);
    assert_eq!(&back[12..14], &[0x86, 0xdd]);
    assert_eq!(v6_src_dst(&back), (v6::vip(), v6::cip()));
    assert_eq!(back[20], 58, "ICMPv6");
    assert_eq!(&back[V6_L4..V6_L4 + 2], &[2, 0], "Packet Too Big");
    assert_eq!(be32(&back, V6_L4 + 4), 1420);
    // The quote: the client's own SYN as it sent it.
    let q = &back[V6_L4 + 8..];
    assert_eq!(q[0] >> 4, 6);
    assert_eq!(q[6], proto::TCP);
    assert_eq!(&q[8..24], &v6::cip().0);
    assert_eq!(&q[24..40], &v6::vip().0);
    assert_eq!((be16(q, 40), be16(q, 42)), (CPORT, 80));
    assert_eq!(be16(&back, 18) as usize, back.len() - 54);

    // The client's side says 1400 (IPv6) is too big about a packet rvs sent
    // it: the RS gets Fragmentation Needed with 1380.
    let sa = run_tx(&mut w, &rs4(lport, SYN | ACK, &[], b""), LAN, WAN, 2);
    let mut m = vec![2, 0, 0, 0, 0, 0, 0x05, 0x78];
    m.extend_from_slice(&sa[14..]);
    let mut e6 = sa[..54].to_vec();
    e6[0..6].copy_from_slice(&lab::WAN_MAC.0);
    e6[6..12].copy_from_slice(&lab::CLIENT_MAC.0);
    e6[18..20].copy_from_slice(&(m.len() as u16).to_be_bytes());
    e6[20] = 58;
    e6[21] = 64;
    e6[22..38].copy_from_slice(&v6::cip().0);
    e6[38..54].copy_from_slice(&v6::vip().0);
    let c = crate::wire::checksum::l4_checksum(&v6::cip(), &v6::vip(), 58, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    e6.extend_from_slice(&m);
    let out = run_tx(&mut w, &e6, WAN, LAN, 3);
    assert_checksums(&out);
    assert_eq!(v4_src_dst(&out), (LIP, RS4));
    assert_eq!(out[23], proto::ICMP);
    assert_eq!(&out[34..36], &[3, 4]);
    assert_eq!(be16(&out, 40), 1380);
    let q = &out[42..];
    assert_eq!((q[0], q[9]), (0x45, proto::TCP));
    assert_eq!(v4_src_dst(&out[42 - 14..]), (RS4, LIP));
    assert_eq!((be16(q, 20), be16(q, 22)), (80, lport));

    // No counterpart: 3/14 (host precedence violation).
    let err = icmp4_from_rs(3, 14, [0; 4], &sa_quote(lport));
    let (v, _) = run(&mut w, &err, LAN, 4);
    assert_eq!(v, Verdict::Drop(DropReason::IcmpXlateUnmapped));
}

/// A quote of a packet rvs sent the RS (LIP:lport → RS4:80).
fn sa_quote(lport: u16) -> Vec<u8> {
    FrameSpec::tcp(LIP, lport, RS4, 80, SYN).to_vec()[14..].to_vec()
}

#[test]
fn a_nat64_connection_continues_on_node_2_with_both_families() {
    let mut a = worker(nat64());
    a.enable_sync_log(16);
    let mut b = worker(nat64());
    let out = run_tx(&mut a, &client6(SYN, &[], b""), WAN, LAN, 1);
    let lport = be16(&out, 34);
    apply(&mut b, &ship(&drain(&mut a, 1)), 1);
    let c = *b.conns().iter().next().expect("the synced conn").1;
    assert_eq!(
        (c.cip, c.vip, c.lip, c.rip),
        (v6::cip(), v6::vip(), LIP, RS4)
    );
    let data = client6(ACK | PSH, &[], b"GET /");
    let out_b = run_tx(&mut b, &data, WAN, LAN, 2);
    assert_checksums(&out_b);
    assert_eq!(v4_src_dst(&out_b), (LIP, RS4));
    assert_eq!((be16(&out_b, 34), be16(&out_b, 36)), (lport, 80));
    let back = run_tx(&mut b, &rs4(lport, ACK | PSH, &[], b"200"), LAN, WAN, 3);
    assert_checksums(&back);
    assert_eq!(v6_src_dst(&back), (v6::vip(), v6::cip()));
    assert_eq!(&back[V6_L4 + 20..], b"200");
}

#[test]
fn other_modes_still_refuse_a_dest_of_the_other_family() {
    for mode in [FwdMode::Nat, FwdMode::Dr, FwdMode::Tunnel] {
        let mut w = worker(lab(v6::vip(), RS4, LIP, mode));
        let (v, _) = run(&mut w, &client6(SYN, &[], b""), WAN, 0);
        assert_eq!(v, Verdict::Drop(DropReason::Invalid), "{mode:?}");
    }
}

#[test]
fn nat64_without_a_local_address_of_the_rs_family_is_no_laddr_port() {
    let mut w = worker(lab(v6::vip(), RS4, v6::lip(), FwdMode::Fnat));
    let (v, _) = run(&mut w, &client6(SYN, &[], b""), WAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoLocalPort));
}

#[test]
fn a_nat64_connection_moves_in_a_hand_over_with_both_families() {
    let mut old = worker(nat64());
    let lport = nat64_open(&mut old, 1460);
    let mut new = worker(nat64());
    super::handover::hand_over(&old, &mut new, 2);
    let c = *new.conns().iter().next().expect("the moved conn").1;
    assert_eq!(
        (c.cip, c.vip, c.lip, c.rip),
        (v6::cip(), v6::vip(), LIP, RS4)
    );
    let out = run_tx(&mut new, &client6(ACK | PSH, &[], b"GET /"), WAN, LAN, 3);
    assert_checksums(&out);
    assert_eq!(v4_src_dst(&out), (LIP, RS4));
    assert_eq!((be16(&out, 34), be16(&out, 36)), (lport, 80));
    let back = run_tx(&mut new, &rs4(lport, ACK | PSH, &[], b"200"), LAN, WAN, 4);
    assert_checksums(&back);
    assert_eq!(v6_src_dst(&back), (v6::vip(), v6::cip()));
    assert_eq!(&back[V6_L4 + 20..], b"200");
}

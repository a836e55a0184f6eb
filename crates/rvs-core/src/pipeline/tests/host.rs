//! rvs as a host: ARP, ping, IPv6 neighbour discovery, next-hop resolution,
//! and the exception path to the kernel.

use super::oracle::{assert_checksums, rfc1071};
use super::util::*;
use crate::addr::{proto, Addr, Mac};
use crate::lab::{self, FrameSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::{Learned, Verdict};
use crate::route::Scope;
use crate::snapshot::Snapshot;
use crate::wire::tcp::flags::*;

#[test]
fn arp_answered_for_owned_addresses_on_their_port_only() {
    let mut w = worker(lab::tutorial_fnat(1));
    let rs = lab::rs_ip(0);
    let rs_mac = lab::rs_mac(0);
    let cases = [
        (WAN, lab::CLIENT_MAC, CIP, VIP, lab::WAN_MAC),
        (WAN, lab::CLIENT_MAC, CIP, lab::WAN_IP, lab::WAN_MAC),
        (LAN, rs_mac, rs, lab::LAN_IP, lab::LAN_MAC),
        (LAN, rs_mac, rs, LIP, lab::LAN_MAC),
    ];
    for (port, sha, spa, tpa, our_mac) in cases {
        let req = arp_frame(1, Mac::BROADCAST, sha, spa, Mac::ZERO, tpa);
        let (v, out) = run(&mut w, &req, port, 0);
        assert_eq!(v, Verdict::Transmit(port), "ARP for {tpa}");
        let want = arp_frame(2, sha, our_mac, tpa, sha, spa);
        assert_eq!(&out[..42], &want[..42], "reply for {tpa}");
    }
    // The LIP lives on the LAN: asked on the WAN, rvs stays silent.
    let req = arp_frame(1, Mac::BROADCAST, lab::CLIENT_MAC, CIP, Mac::ZERO, LIP);
    let (v, out) = run(&mut w, &req, WAN, 0);
    assert_ne!(v, Verdict::Transmit(WAN));
    assert_eq!(out, req, "left as it was");
    // Nor for somebody else's address.
    let other = Addr::v4(10, 0, 0, 77);
    let req = arp_frame(1, Mac::BROADCAST, lab::CLIENT_MAC, CIP, Mac::ZERO, other);
    let (v, _) = run(&mut w, &req, WAN, 0);
    assert!(!matches!(v, Verdict::Transmit(_)), "{v:?}");
}

#[test]
fn arp_not_answered_for_a_standby_local_address() {
    let mut w = worker(lab::tutorial_fnat(1).with_standby(vec![LIP]));
    let rs = lab::rs_ip(0);
    let req = arp_frame(1, Mac::BROADCAST, lab::rs_mac(0), rs, Mac::ZERO, LIP);
    let (v, _) = run(&mut w, &req, LAN, 0);
    assert!(
        !matches!(v, Verdict::Transmit(_)),
        "standby LIP answered: {v:?}"
    );
    // The other addresses of the port are still answered.
    let req = arp_frame(
        1,
        Mac::BROADCAST,
        lab::rs_mac(0),
        rs,
        Mac::ZERO,
        lab::LAN_IP,
    );
    let (v, _) = run(&mut w, &req, LAN, 0);
    assert_eq!(v, Verdict::Transmit(LAN));
    // Active again: answered.
    let mut w = worker(lab::tutorial_fnat(1).with_standby(vec![]));
    let req = arp_frame(1, Mac::BROADCAST, lab::rs_mac(0), rs, Mac::ZERO, LIP);
    assert_eq!(run(&mut w, &req, LAN, 0).0, Verdict::Transmit(LAN));
}

#[test]
fn ping_to_vip_is_answered() {
    let mut w = worker(lab::tutorial_fnat(1));
    let req = FrameSpec {
        payload: b"abcdefgh",
        ..FrameSpec::echo(CIP, VIP, 0x0777)
    }
    .to_vec();
    let (v, out) = run(&mut w, &req, WAN, 0);
    assert_eq!(v, Verdict::Transmit(WAN));
    assert_checksums(&out);
    assert_eq!(&out[0..6], &lab::CLIENT_MAC.0);
    assert_eq!(&out[6..12], &lab::WAN_MAC.0);
    assert_eq!(v4_src_dst(&out), (VIP, CIP));
    assert_eq!(out[23], proto::ICMP);
    assert_eq!(&out[34..36], &[0, 0], "echo reply, code 0");
    assert_eq!(&out[38..42], &[0x07, 0x77, 0, 1], "identifier and sequence");
    assert_eq!(&out[42..], b"abcdefgh");
}

#[test]
fn ping6_to_vip_is_answered() {
    let mut w = worker(v6_lab());
    let req = FrameSpec {
        payload: b"abcdefgh",
        ..FrameSpec::echo(v6::cip(), v6::vip(), 0x0777)
    }
    .to_vec();
    let (v, out) = run(&mut w, &req, WAN, 0);
    assert_eq!(v, Verdict::Transmit(WAN));
    assert_checksums(&out);
    assert_eq!(&out[0..6], &lab::CLIENT_MAC.0);
    assert_eq!(v6_src_dst(&out), (v6::vip(), v6::cip()));
    assert_eq!(&out[V6_L4..V6_L4 + 2], &[129, 0], "echo reply, code 0");
    assert_eq!(&out[V6_L4 + 4..V6_L4 + 8], &[0x07, 0x77, 0, 1]);
    assert_eq!(&out[V6_L4 + 8..], b"abcdefgh");
}

/// A neighbour solicitation from the IPv6 client for `target`, written out.
pub(super) fn ns(target: Addr) -> Vec<u8> {
    let t = target.0;
    let mut mc = [0u8; 16];
    mc[0] = 0xff;
    mc[1] = 0x02;
    mc[11] = 1;
    mc[12] = 0xff;
    mc[13..].copy_from_slice(&t[13..]);
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&t);
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&lab::CLIENT_MAC.0);
    let src = v6::cip().0;
    let c = rfc1071(&[&src, &mc, &[0, 0, 0, 32, 0, 0, 0, 58], &icmp]);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![0x33, 0x33, 0xff, t[13], t[14], t[15]];
    f.extend_from_slice(&lab::CLIENT_MAC.0);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 32, 58, 255]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&mc);
    f.extend_from_slice(&icmp);
    f
}

#[test]
fn ipv6_ns_answered_with_na() {
    let mut w = worker(v6_lab());
    let (v, out) = run(&mut w, &ns(v6::vip()), WAN, 0);
    assert_eq!(v, Verdict::Transmit(WAN));
    assert_checksums(&out);
    assert_eq!(out.len(), 86);
    assert_eq!(&out[0..6], &lab::CLIENT_MAC.0);
    assert_eq!(&out[6..12], &lab::WAN_MAC.0);
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    assert_eq!(
        &out[18..22],
        &[0, 32, 58, 255],
        "length, ICMPv6, hop limit 255"
    );
    assert_eq!(v6_src_dst(&out), (v6::vip(), v6::cip()));
    assert_eq!((out[54], out[55]), (136, 0), "neighbour advertisement");
    assert_eq!(out[58], 0x60, "solicited, override, not a router");
    assert_eq!(&out[62..78], &v6::vip().0);
    assert_eq!(&out[78..80], &[2, 1], "target link-layer address option");
    assert_eq!(&out[80..86], &lab::WAN_MAC.0);
    // Asked on the wrong port (the VIP is on the WAN), no answer.
    let (v, _) = run(&mut w, &ns(v6::vip()), LAN, 0);
    assert!(!matches!(v, Verdict::Transmit(_)), "{v:?}");
}

#[test]
fn unknown_next_hop_is_resolved_and_queued_frames_released() {
    // The route table decides (with fast xmit the reply would go straight
    // back to the client's MAC, with nothing to resolve).
    let mut snap = lab::tutorial_fnat(1);
    snap.conf.fast_xmit = false;
    let mut w = worker(snap);
    let syn = from_client(45000, 80, SYN).to_vec();
    let fwd = run_tx(&mut w, &syn, WAN, LAN, 0);
    let rs = if v4_src_dst(&fwd).1 == lab::rs_ip(0) {
        0
    } else {
        1
    };
    let lport = be16(&fwd, 34);

    // The SYN-ACK goes to a client whose MAC rvs does not know: it asks.
    let synack = from_rs(rs, 80, LIP, lport, SYN | ACK).to_vec();
    let (v, arp) = run(&mut w, &synack, LAN, 1);
    assert_eq!(v, Verdict::Transmit(WAN));
    assert_eq!(arp.len(), 60);
    assert_eq!(&arp[0..6], &Mac::BROADCAST.0);
    assert_eq!(&arp[6..12], &lab::WAN_MAC.0);
    assert_eq!(&arp[12..22], &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    assert_eq!(&arp[22..28], &lab::WAN_MAC.0);
    let spa = Addr::v4(arp[28], arp[29], arp[30], arp[31]);
    assert!(
        spa == VIP || spa == lab::WAN_IP,
        "asks from a WAN address, not {spa}"
    );
    assert_eq!(&arp[32..38], &[0; 6]);
    assert_eq!(&arp[38..42], &CIP.v4_bytes());

    // A retransmission waits too, without a second request.
    let (v, _) = run(&mut w, &synack, LAN, 2);
    assert_eq!(v, Verdict::Consumed);
    assert!(w.outbox().is_empty());

    let reply = arp_frame(2, lab::WAN_MAC, lab::CLIENT_MAC, CIP, lab::WAN_MAC, spa);
    let (v, _) = run(&mut w, &reply, WAN, 3);
    assert_eq!(v, Verdict::Consumed);
    let mut frames = Vec::new();
    w.outbox().drain(|p, f| frames.push((p, f.to_vec())));
    assert_eq!(frames.len(), 2);
    for (p, f) in &frames {
        assert_eq!(*p, WAN);
        assert_checksums(f);
        assert_eq!(&f[0..6], &lab::CLIENT_MAC.0, "learned MAC");
        assert_eq!(&f[6..12], &lab::WAN_MAC.0);
        assert_eq!(v4_src_dst(f), (VIP, CIP));
        assert_eq!((be16(f, 34), be16(f, 36)), (80, 45000));
    }
    assert!(w.outbox().is_empty());
    let mut learned = Vec::new();
    w.take_learned(|l| learned.push(l));
    assert!(
        learned.contains(&Learned {
            addr: CIP,
            mac: lab::CLIENT_MAC,
            port: WAN
        }),
        "{learned:?}"
    );
    // From now on frames to the client go out at once.
    let out = run_tx(&mut w, &synack, LAN, WAN, 4);
    assert_eq!(&out[0..6], &lab::CLIENT_MAC.0);
}

#[test]
fn exception_path_to_the_kernel() {
    let mut routes = lab::routes();
    routes
        .add(crate::route::Route {
            scope: Scope::KniHost,
            ..link_route(Addr::v4(10, 0, 0, 2), 32, WAN)
        })
        .unwrap();
    let base = lab::tutorial_fnat(1);
    let snap = Snapshot::new(
        2,
        1,
        lab::ports(),
        lab::addrs(),
        routes,
        base.services.clone(),
        base.static_neigh.clone(),
        Default::default(),
        Default::default(),
    );
    let mut w = worker(snap);

    // ssh to rvs's own LAN address.
    let admin = Addr::v4(192, 168, 100, 50);
    let ssh = FrameSpec {
        src_mac: Mac([2, 0, 0, 0, 9, 9]),
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::tcp(admin, 50000, lab::LAN_IP, 22, SYN)
    }
    .to_vec();
    let (v, out) = run(&mut w, &ssh, LAN, 0);
    assert_eq!(v, Verdict::ToKernel(LAN));
    assert_eq!(out, ssh, "unchanged");

    // A kni_host route.
    let f = FrameSpec::tcp(CIP, 50000, Addr::v4(10, 0, 0, 2), 179, SYN).to_vec();
    let (v, out) = run(&mut w, &f, WAN, 0);
    assert_eq!(v, Verdict::ToKernel(WAN));
    assert_eq!(out, f);

    // OSPF hello to 224.0.0.5.
    let ospf = ipv4_frame(
        Mac([0x01, 0, 0x5e, 0, 0, 5]),
        lab::rs_mac(0),
        lab::rs_ip(0),
        Addr::v4(224, 0, 0, 5),
        89,
        1,
        &[2, 1, 0, 44, 192, 168, 100, 2, 0, 0, 0, 0],
    );
    let (v, out) = run(&mut w, &ospf, LAN, 0);
    assert_eq!(v, Verdict::ToKernel(LAN));
    assert_eq!(out, ospf);
    assert_eq!(w.drops().total(), 0);

    // No route to the destination: an address of the kernel's (on dpdk1.kni).
    let kaddr = Addr::v4(172, 10, 0, 2);
    let f = FrameSpec::tcp(CIP, 50001, kaddr, 8080, SYN).to_vec();
    let (v, out) = run(&mut w, &f, WAN, 0);
    assert_eq!(v, Verdict::ToKernel(WAN));
    assert_eq!(out, f);
    let ping = FrameSpec::echo(CIP, kaddr, 7).to_vec();
    let (v, _) = run(&mut w, &ping, WAN, 0);
    assert_eq!(v, Verdict::ToKernel(WAN));
    // Covered by a route of rvs (not kni_host): not the kernel's.
    let f = FrameSpec::tcp(CIP, 50002, Addr::v4(10, 0, 0, 3), 8080, SYN).to_vec();
    let (v, _) = run(&mut w, &f, WAN, 0);
    assert!(matches!(v, Verdict::Drop(_)), "{v:?}");
}

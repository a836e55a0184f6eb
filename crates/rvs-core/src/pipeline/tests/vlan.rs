//! VLAN devices: tags stripped on receive, added on transmit (verdicts and
//! the outbox alike), unknown VIDs, the fast path left out.

use super::util::*;
use crate::addr::{proto, Addr, Mac, PortId};
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::Verdict;
use crate::sched::SchedKind;
use crate::service::ServiceKey;
use crate::snapshot::{PortConf, Snapshot, Vlan};
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

/// `dpdk1.100`: VLAN 100 on the WAN port.
const WAN100: PortId = 2;
/// `dpdk0.10`: VLAN 10 on the LAN port.
const LAN10: PortId = 3;

/// `frame` with an 802.1Q tag for `vid` after its MACs.
fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

fn vlan_port(name: &str, parent: PortId, mac: Mac, vid: u16) -> PortConf {
    PortConf {
        name: name.into(),
        mac,
        mtu: 1500,
        kni: true,
        vlan: Some(Vlan {
            parent,
            tpid: 0x8100,
            vid,
        }),
    }
}

/// The tutorial's FNAT lab with the client side (VIP, WAN address, its
/// route) on `dpdk1.100` and, when `rs_on_vlan`, the real servers' side
/// (LAN address, LIP, route) on `dpdk0.10` without static neighbours.
fn vlan_lab(rs_on_vlan: bool, fast_path: bool) -> Snapshot {
    let rs_port = if rs_on_vlan { LAN10 } else { LAN };
    let mut ports = lab::ports();
    ports.push(vlan_port("dpdk1.100", WAN, lab::WAN_MAC, 100));
    ports.push(vlan_port("dpdk0.10", LAN, lab::LAN_MAC, 10));
    let mut addrs = lab::addrs();
    for a in &mut addrs {
        a.port = if a.port == WAN { WAN100 } else { rs_port };
    }
    let mut routes = crate::route::RouteTable::new();
    let _ = routes.add(link_route(Addr::v4(10, 0, 0, 0), 16, WAN100));
    let _ = routes.add(link_route(Addr::v4(192, 168, 100, 0), 24, rs_port));
    let svc = lab::service(
        1,
        ServiceKey::Vs {
            proto: proto::TCP,
            vip: VIP,
            vport: 80,
        },
        SchedKind::Rr,
        &[DestSpec::new(lab::rs_ip(0), 80, FwdMode::Fnat)],
        &[(LIP, rs_port)],
        0,
        1,
    );
    let neigh = match rs_on_vlan {
        true => Vec::new(),
        false => vec![(lab::rs_ip(0), lab::rs_mac(0), LAN)],
    };
    let conf = crate::snapshot::PipelineConf {
        fast_path,
        ..Default::default()
    };
    Snapshot::new(
        1,
        1,
        ports,
        addrs,
        routes,
        vec![svc],
        neigh,
        Default::default(),
        conf,
    )
}

#[test]
fn fnat_through_a_vlan_device_strips_and_adds_the_tag() {
    let mut w = worker(vlan_lab(false, false));
    let syn = from_client(40000, 80, SYN).to_vec();
    let out = run_tx(&mut w, &tagged(&syn, 100), WAN, LAN, 0);
    // Untagged toward the real server, rewritten as FNAT does.
    assert_eq!(&out[12..14], &[0x08, 0x00], "no tag on the LAN");
    assert_eq!(v4_src_dst(&out), (LIP, lab::rs_ip(0)));
    let lport = be16(&out, 34);
    // The answer goes back out of the WAN port tagged 100, to the client.
    let sa = from_rs(0, 80, LIP, lport, SYN | ACK).to_vec();
    let back = run_tx(&mut w, &sa, LAN, WAN, 0);
    assert_eq!(&back[0..6], &lab::CLIENT_MAC.0);
    assert_eq!(&back[6..12], &lab::WAN_MAC.0);
    assert_eq!(&back[12..18], &[0x81, 0x00, 0x00, 100, 0x08, 0x00]);
    assert_eq!(back.len(), sa.len() + 4);
    assert_eq!(
        v4_src_dst(&back[4..]),
        (VIP, CIP),
        "the IP packet behind the tag"
    );
}

#[test]
fn arp_on_a_vlan_device_is_answered_tagged() {
    let mut w = worker(vlan_lab(false, false));
    let req = arp_frame(1, Mac::BROADCAST, lab::CLIENT_MAC, CIP, Mac::ZERO, VIP);
    let (v, out) = run(&mut w, &tagged(&req, 100), WAN, 0);
    assert_eq!(v, Verdict::Transmit(WAN));
    let want = arp_frame(2, lab::CLIENT_MAC, lab::WAN_MAC, VIP, lab::CLIENT_MAC, CIP);
    assert_eq!(&out[..46], &tagged(&want, 100)[..46]);
    // The neighbour was learned on the VLAN device.
    assert!(w.neigh().iter().any(|e| e.addr == CIP && e.port == WAN100));
    // Untagged, the VIP is not on the WAN port itself: no answer.
    let (v, _) = run(&mut w, &req, WAN, 0);
    assert_ne!(v, Verdict::Transmit(WAN));
}

#[test]
fn unknown_vid_is_dropped_where_vlans_exist_and_left_to_the_kernel_elsewhere() {
    let mut w = worker(vlan_lab(false, false));
    let syn = from_client(40001, 80, SYN).to_vec();
    let (v, _) = run(&mut w, &tagged(&syn, 200), WAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::VlanUnknown));
    assert_eq!(drops(&w, DropReason::VlanUnknown), 1);
    // Without VLAN devices, a tagged frame goes to the kernel as before.
    let mut plain = worker(lab::tutorial_fnat(1));
    let (v, out) = run(&mut plain, &tagged(&syn, 100), WAN, 0);
    assert_eq!(v, Verdict::ToKernel(WAN));
    assert_eq!(out, tagged(&syn, 100), "unchanged");
    // A second tag on a VLAN device's frame is that device's kernel's.
    let (v, out) = run(&mut w, &tagged(&tagged(&syn, 7), 100), WAN, 0);
    assert_eq!(v, Verdict::ToKernel(WAN100));
    assert_eq!(out, tagged(&syn, 7), "outer tag stripped only");
}

#[test]
fn frames_waiting_for_a_neighbour_leave_tagged_from_the_outbox() {
    let mut w = worker(vlan_lab(true, false));
    let syn = from_client(40002, 80, SYN).to_vec();
    // No MAC for the real server: an ARP request, tagged 10, on the LAN.
    let (v, out) = run(&mut w, &tagged(&syn, 100), WAN, 0);
    assert_eq!(v, Verdict::Transmit(LAN), "{:?}", w.drops().nonzero());
    assert_eq!(&out[0..6], &Mac::BROADCAST.0);
    assert_eq!(&out[12..18], &[0x81, 0x00, 0x00, 10, 0x08, 0x06]);
    w.learn_neigh(lab::rs_ip(0), lab::rs_mac(0), LAN10, 1);
    let mut sent = Vec::new();
    w.drain_outbox(|p, f| sent.push((p, f.to_vec())));
    assert_eq!(sent.len(), 1);
    let (p, f) = &sent[0];
    assert_eq!(*p, LAN);
    assert_eq!(&f[0..6], &lab::rs_mac(0).0);
    assert_eq!(&f[12..18], &[0x81, 0x00, 0x00, 10, 0x08, 0x00]);
    assert_eq!(v4_src_dst(&f[4..]), (LIP, lab::rs_ip(0)));
    assert!(w.outbox().is_empty());
}

#[test]
fn burst_processing_tags_like_single_frames() {
    use crate::pipeline::Packet;
    let mut w = worker(vlan_lab(false, false));
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|i| tagged(&from_client(41000 + i, 80, SYN).to_vec(), 100))
        .collect();
    let mut bufs: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut b = vec![0u8; HEADROOM];
            b.extend_from_slice(f);
            b.resize(2048, 0);
            b
        })
        .collect();
    let mut pkts: Vec<Packet<'_>> = bufs
        .iter_mut()
        .zip(&frames)
        .map(|(b, f)| Packet {
            buf: b,
            head: HEADROOM,
            len: f.len(),
            port: WAN,
            csum_ok: false,
        })
        .collect();
    let mut v = [Verdict::Consumed; 3];
    w.process_burst(&mut pkts, &mut v, 0);
    assert_eq!(v, [Verdict::Transmit(LAN); 3]);
    for p in &pkts {
        assert_eq!(&p.frame()[12..14], &[0x08, 0x00]);
    }
}

/// Runs an FNAT handshake and a data segment each way; `tag`: the client
/// side's VID, or none. Returns how many fast-path events the worker made.
fn fast_events(mut w: crate::pipeline::Worker, tag: Option<u16>) -> usize {
    use crate::lab::FrameSpec;
    let (cport, out_port) = match tag {
        Some(_) => (WAN, WAN),
        None => (WAN, WAN),
    };
    let wrap = |f: Vec<u8>| match tag {
        Some(v) => tagged(&f, v),
        None => f,
    };
    if tag.is_none() {
        resolve_client(&mut w, CIP, 0);
    }
    let syn = from_client(40003, 80, SYN).to_vec();
    let out = run_tx(&mut w, &wrap(syn), cport, LAN, 0);
    let lport = be16(&out, 34);
    let sa = from_rs(0, 80, LIP, lport, SYN | ACK).to_vec();
    run_tx(&mut w, &sa, LAN, out_port, 0);
    let c = FrameSpec {
        payload: b"GET /",
        ..from_client(40003, 80, ACK | PSH)
    };
    run_tx(&mut w, &wrap(c.to_vec()), cport, LAN, 0);
    let r = FrameSpec {
        payload: b"200 OK",
        ..from_rs(0, 80, LIP, lport, ACK | PSH)
    };
    run_tx(&mut w, &r.to_vec(), LAN, out_port, 0);
    let mut n = 0;
    w.take_fast(|_| n += 1);
    n
}

#[test]
fn flows_of_vlan_devices_are_not_offered_to_the_fast_path() {
    assert_eq!(fast_events(worker(vlan_lab(false, true)), Some(100)), 0);
    // The same exchange untagged is offered (both directions).
    let mut plain = lab::tutorial_fnat(1);
    plain.conf.fast_path = true;
    assert_eq!(fast_events(worker(plain), None), 2);
}

//! NAT (`-m`), DR (`-g`), TUNNEL (`-i`) and SNAT (`-H ... -J`).

use super::oracle::{assert_checksums, rfc1071};
use super::util::*;
use crate::addr::{proto, Addr, Mac};
use crate::conn::tcp::TcpState;
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, VIP, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::route::{Route, Scope};
use crate::sched::SchedKind;
use crate::service::{Match, ServiceKey};
use crate::snapshot::{IfAddr, Snapshot};
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

fn one_dest(mode: FwdMode, rs: u8, port: u16) -> Snapshot {
    let svc = vs(
        3,
        proto::TCP,
        80,
        SchedKind::Rr,
        &[DestSpec::new(lab::rs_ip(rs), port, mode)],
        0,
    );
    lab::snapshot(1, vec![svc], 2)
}

#[test]
fn nat_rewrites_destination_then_source_of_replies() {
    let mut w = worker(one_dest(FwdMode::Nat, 0, 8080));
    resolve_client(&mut w, CIP, 0);
    let syn = from_client(41000, 80, SYN).to_vec();
    let out = run_tx(&mut w, &syn, WAN, LAN, 0);
    assert_checksums(&out);
    assert_eq!(&out[0..6], &lab::rs_mac(0).0);
    assert_eq!(&out[6..12], &lab::LAN_MAC.0);
    assert_eq!(v4_src_dst(&out), (CIP, lab::rs_ip(0)), "source untouched");
    assert_eq!((be16(&out, 34), be16(&out, 36)), (41000, 8080));
    assert_eq!(out[22], 63);

    let reply = from_rs(0, 8080, CIP, 41000, SYN | ACK).to_vec();
    let out = run_tx(&mut w, &reply, LAN, WAN, 1);
    assert_checksums(&out);
    assert_eq!(&out[0..6], &lab::CLIENT_MAC.0);
    assert_eq!(&out[6..12], &lab::WAN_MAC.0);
    assert_eq!(v4_src_dst(&out), (VIP, CIP));
    assert_eq!((be16(&out, 34), be16(&out, 36)), (80, 41000));

    // No TOA in NAT: the RS sees the client's address anyway.
    let out = run_tx(&mut w, &from_client(41000, 80, ACK).to_vec(), WAN, LAN, 2);
    assert_checksums(&out);
    assert_eq!(tcp_hlen(&out), 20);
}

#[test]
fn dr_changes_only_macs_and_ttl() {
    let mut w = worker(one_dest(FwdMode::Dr, 1, 80));
    let syn = FrameSpec {
        tcp_opts: &[2, 4, 0x05, 0xb4],
        payload: b"x",
        ..from_client(41000, 80, SYN)
    }
    .to_vec();
    let out = run_tx(&mut w, &syn, WAN, LAN, 0);
    assert_checksums(&out);
    assert_eq!(out.len(), syn.len());
    assert_eq!(&out[0..6], &lab::rs_mac(1).0, "to the RS's MAC");
    assert_eq!(&out[6..12], &lab::LAN_MAC.0, "from the LAN port");
    let mut want = syn.clone();
    want[0..12].copy_from_slice(&out[0..12]);
    want[22] = 63;
    fix_ip_csum(&mut want);
    assert_eq!(out, want, "IP packet untouched but TTL; MSS not clamped");

    // The RS answers the client directly: rvs has no out tuple for it.
    let reply = FrameSpec {
        src_mac: lab::rs_mac(1),
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::tcp(VIP, 80, CIP, 41000, ACK)
    }
    .to_vec();
    let (v, _) = run(&mut w, &reply, LAN, 1);
    assert_eq!(v, Verdict::Drop(DropReason::NoConn));
    assert_eq!(w.conns().len(), 1);
    // The client's next segments keep going to the same RS.
    let out = run_tx(&mut w, &from_client(41000, 80, ACK).to_vec(), WAN, LAN, 2);
    assert_eq!(&out[0..6], &lab::rs_mac(1).0);
    assert_eq!(v4_src_dst(&out), (CIP, VIP));
    // Only the client's half is seen: its FIN moves the conn to FIN_WAIT
    // (LVS's input-only state table), as `ipvsadm -lnc` shows.
    let state = |w: &Worker| {
        let (_, c) = w.conns().iter().next().expect("the conn");
        TcpState::from_u8(c.state).map(TcpState::name)
    };
    assert_eq!(state(&w), Some("ESTABLISHED"));
    run_tx(
        &mut w,
        &from_client(41000, 80, FIN | ACK).to_vec(),
        WAN,
        LAN,
        3,
    );
    assert_eq!(state(&w), Some("FIN_WAIT"));
}

#[test]
fn tunnel_wraps_in_ipip_from_lan_address() {
    let mut w = worker(one_dest(FwdMode::Tunnel, 1, 80));
    let syn = FrameSpec {
        payload: b"tunnelled",
        ..from_client(41000, 80, SYN)
    }
    .to_vec();
    let out = run_tx(&mut w, &syn, WAN, LAN, 0);
    assert_checksums(&out);
    assert_eq!(&out[0..6], &lab::rs_mac(1).0);
    assert_eq!(&out[6..12], &lab::LAN_MAC.0);
    assert_eq!(&out[12..14], &[0x08, 0x00]);
    assert_eq!(out[14], 0x45);
    assert_eq!(out[23], 4, "IPIP");
    assert_eq!(v4_src_dst(&out), (lab::LAN_IP, lab::rs_ip(1)));
    assert_eq!(be16(&out, 16) as usize, 20 + syn.len() - 14);
    assert_ne!(out[22], 0);
    assert_eq!(rfc1071(&[&out[14..34]]), 0, "outer header checksum");
    // The inner packet: the client's, TTL decremented.
    let mut inner = syn[14..].to_vec();
    inner[8] = 63;
    inner[10..12].copy_from_slice(&[0, 0]);
    let c = rfc1071(&[&inner[..20]]);
    inner[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(&out[34..], &inner[..]);
}

const GW: Addr = Addr::v4(10, 0, 0, 254);
const GW_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0xfe]);
pub(super) const HOST: Addr = Addr::v4(192, 168, 100, 7);
const HOST_MAC: Mac = Mac([0x02, 0, 0, 0, 2, 7]);
pub(super) const REMOTE: Addr = Addr::v4(93, 184, 216, 34);

/// The tutorial's SNAT: WAN_IP with sapool, default route via a gateway,
/// TCP and ICMP matches for the LAN hosts.
pub(super) fn snat_lab() -> Snapshot {
    let port_index = |n: &str| match n {
        "dpdk0" => Some(LAN),
        "dpdk1" => Some(WAN),
        _ => None,
    };
    let dest = DestSpec {
        weight: 100,
        ..DestSpec::new(lab::WAN_IP, 0, FwdMode::Snat)
    };
    let svc = |id, m: &str| {
        let m = Match::parse(m, port_index).unwrap();
        lab::service(
            id,
            ServiceKey::Match(m),
            SchedKind::Rr,
            std::slice::from_ref(&dest),
            &[],
            0,
            1,
        )
    };
    let mut routes = lab::routes();
    routes
        .add(Route {
            prefix: Addr::v4(0, 0, 0, 0),
            plen: 0,
            gateway: Some(GW),
            port: WAN,
            scope: Scope::Global,
            src: None,
            mtu: 1500,
            metric: 0,
        })
        .unwrap();
    let addrs = vec![
        IfAddr {
            addr: lab::WAN_IP,
            plen: 16,
            port: WAN,
            sapool: true,
        },
        IfAddr {
            addr: lab::LAN_IP,
            plen: 24,
            port: LAN,
            sapool: false,
        },
    ];
    Snapshot::new(
        1,
        1,
        lab::ports(),
        addrs,
        routes,
        vec![
            svc(
                10,
                "proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1",
            ),
            svc(
                11,
                "proto=icmp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1",
            ),
        ],
        vec![(GW, GW_MAC, WAN), (HOST, HOST_MAC, LAN)],
        Default::default(),
        Default::default(),
    )
}

pub(super) fn from_host<'a>(spec: FrameSpec<'a>) -> FrameSpec<'a> {
    FrameSpec {
        src_mac: HOST_MAC,
        dst_mac: lab::LAN_MAC,
        ..spec
    }
}

pub(super) fn from_internet<'a>(spec: FrameSpec<'a>) -> FrameSpec<'a> {
    FrameSpec {
        src_mac: GW_MAC,
        dst_mac: lab::WAN_MAC,
        ..spec
    }
}

fn assert_out_wan(out: &[u8]) {
    assert_checksums(out);
    assert_eq!(&out[0..6], &GW_MAC.0, "via the gateway");
    assert_eq!(&out[6..12], &lab::WAN_MAC.0);
    assert_eq!(v4_src_dst(out).0, lab::WAN_IP);
}

fn assert_out_lan(out: &[u8], src: Addr) {
    assert_checksums(out);
    assert_eq!(&out[0..6], &HOST_MAC.0);
    assert_eq!(&out[6..12], &lab::LAN_MAC.0);
    assert_eq!(v4_src_dst(out), (src, HOST));
}

#[test]
fn snat_tcp_goes_out_from_wan_ip_and_back() {
    let mut w = worker(snat_lab());
    let syn = from_host(FrameSpec::tcp(HOST, 40000, REMOTE, 80, SYN)).to_vec();
    let out = run_tx(&mut w, &syn, LAN, WAN, 0);
    assert_out_wan(&out);
    assert_eq!(v4_src_dst(&out).1, REMOTE);
    let pport = be16(&out, 34);
    assert!(pport >= 1024, "a pool port, not {pport}");
    assert_eq!(be16(&out, 36), 80);
    assert_eq!(w.pool_usage(&lab::WAN_IP).map(|u| u.0), Some(1));

    let reply = from_internet(FrameSpec::tcp(REMOTE, 80, lab::WAN_IP, pport, SYN | ACK)).to_vec();
    let out = run_tx(&mut w, &reply, WAN, LAN, 1);
    assert_out_lan(&out, REMOTE);
    assert_eq!((be16(&out, 34), be16(&out, 36)), (80, 40000));

    // A reply to another pool port belongs to nobody.
    let stray = from_internet(FrameSpec::tcp(REMOTE, 80, lab::WAN_IP, pport ^ 2, ACK)).to_vec();
    let (v, _) = run(&mut w, &stray, WAN, 2);
    assert!(
        matches!(v, Verdict::Drop(_) | Verdict::ToKernel(WAN)),
        "{v:?}"
    );
}

#[test]
fn snat_icmp_echo_identifier_translated_and_restored() {
    let mut w = worker(snat_lab());
    let dns = Addr::v4(8, 8, 8, 8);
    let req = from_host(FrameSpec {
        payload: b"ping",
        ..FrameSpec::echo(HOST, dns, 0x1234)
    })
    .to_vec();
    let out = run_tx(&mut w, &req, LAN, WAN, 0);
    assert_out_wan(&out);
    assert_eq!(v4_src_dst(&out).1, dns);
    assert_eq!(out[34], 8, "still an echo request");
    let id = be16(&out, 38);
    assert_ne!(id, 0x1234, "identifier translated to a pool port");
    assert!(id >= 1024);
    assert_eq!(&out[42..], b"ping");
    assert_eq!(w.pool_usage(&lab::WAN_IP).map(|u| u.0), Some(1));

    let reply = from_internet(FrameSpec {
        dport: 0,
        payload: b"ping",
        ..FrameSpec::echo(dns, lab::WAN_IP, id)
    })
    .to_vec();
    let out = run_tx(&mut w, &reply, WAN, LAN, 1);
    assert_out_lan(&out, dns);
    assert_eq!(out[34], 0, "echo reply");
    assert_eq!(be16(&out, 38), 0x1234, "identifier restored");
    assert_eq!(&out[42..], b"ping");
}

#[test]
fn snat_outside_the_match_is_dropped() {
    let mut w = worker(snat_lab());
    let outsider = Addr::v4(192, 168, 100, 255);
    let syn = from_host(FrameSpec::tcp(outsider, 40000, REMOTE, 80, SYN)).to_vec();
    let (v, _) = run(&mut w, &syn, LAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoService));
    assert_eq!(drops(&w, DropReason::NoService), 1);
    // UDP has no match service at all.
    let udp = from_host(FrameSpec::udp(HOST, 40000, REMOTE, 53, b"q")).to_vec();
    let (v, _) = run(&mut w, &udp, LAN, 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoService));
    assert_eq!(w.conns().len(), 0);
}

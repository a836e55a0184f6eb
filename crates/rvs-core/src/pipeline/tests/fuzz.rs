//! Property test: mutated frames through a worker with every mode configured.
//! Nothing may panic, and whatever rvs transmits from a frame whose checksums
//! were valid has valid checksums too.

use std::sync::Arc;

use super::oracle::{check_checksums, rfc1071};
use super::util::*;
use crate::addr::{proto, Addr, Mac, PortId};
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::route::{Route, RouteTable, Scope};
use crate::sched::SchedKind;
use crate::service::{Match, Service, ServiceKey};
use crate::snapshot::{IfAddr, Snapshot};
use crate::wire::tcp::flags::*;

const HOST: Addr = Addr::v4(192, 168, 100, 120);
const HOST_MAC: Mac = Mac([2, 0, 0, 0, 2, 120]);
const REMOTE: Addr = Addr::v4(10, 0, 5, 5);

fn services(all: bool) -> Vec<Arc<Service>> {
    let d = |i, port, mode| DestSpec::new(lab::rs_ip(i), port, mode);
    let mut v = vec![
        vs(
            1,
            proto::TCP,
            80,
            SchedKind::Rr,
            &[d(0, 80, FwdMode::Fnat), d(1, 80, FwdMode::Fnat)],
            0,
        ),
        vs(
            2,
            proto::UDP,
            53,
            SchedKind::Wrr,
            &[d(0, 53, FwdMode::Fnat)],
            0,
        ),
        vs(
            5,
            proto::TCP,
            83,
            SchedKind::Sh,
            &[d(1, 83, FwdMode::Tunnel)],
            0,
        ),
    ];
    if all {
        v.push(vs(
            3,
            proto::TCP,
            81,
            SchedKind::Wlc,
            &[d(2, 8080, FwdMode::Nat)],
            60_000,
        ));
        v.push(vs(
            4,
            proto::TCP,
            82,
            SchedKind::Mh,
            &[d(3, 82, FwdMode::Dr)],
            0,
        ));
        let mut sp = vs(
            7,
            proto::TCP,
            85,
            SchedKind::Rr,
            &[d(0, 85, FwdMode::Fnat)],
            0,
        );
        Arc::get_mut(&mut sp).expect("new").synproxy = true;
        v.push(sp);
    }
    let ports = |n: &str| match n {
        "dpdk0" => Some(LAN),
        "dpdk1" => Some(WAN),
        _ => None,
    };
    for (id, m) in [
        (
            8,
            "proto=tcp,src-range=192.168.100.100-192.168.100.150,oif=dpdk1",
        ),
        (
            9,
            "proto=icmp,src-range=192.168.100.100-192.168.100.150,oif=dpdk1",
        ),
    ] {
        v.push(lab::service(
            id,
            ServiceKey::Match(Match::parse(m, ports).unwrap()),
            SchedKind::Rr,
            &[DestSpec::new(lab::WAN_IP, 0, FwdMode::Snat)],
            &[],
            0,
            1,
        ));
    }
    v.push(lab::service(
        6,
        ServiceKey::Vs {
            proto: proto::TCP,
            vip: v6::vip(),
            vport: 80,
        },
        SchedKind::Lc,
        &[DestSpec::new(v6::rip(), 8080, FwdMode::Fnat)],
        &[(v6::lip(), LAN)],
        0,
        1,
    ));
    v
}

/// The two-arm lab in both families with FNAT (TCP, UDP, IPv6), NAT, DR,
/// TUNNEL and SNAT (TCP, ICMP) services.
fn all_modes(generation: u64, all: bool) -> Snapshot {
    let mut routes: RouteTable = lab::routes();
    routes
        .add(link_route(v6::a("2001:db8::"), 64, WAN))
        .unwrap();
    routes.add(link_route(v6::a("fd00::"), 64, LAN)).unwrap();
    routes
        .add(Route {
            scope: Scope::KniHost,
            ..link_route(Addr::v4(10, 0, 0, 2), 32, WAN)
        })
        .unwrap();
    let mut addrs = lab::addrs();
    addrs.push(IfAddr {
        addr: v6::vip(),
        plen: 128,
        port: WAN,
        sapool: false,
    });
    let mut neigh: Vec<_> = (0..4)
        .map(|i| (lab::rs_ip(i), lab::rs_mac(i), LAN))
        .collect();
    neigh.push((v6::rip(), v6::RS_MAC, LAN));
    neigh.push((REMOTE, lab::CLIENT_MAC, WAN));
    neigh.push((HOST, HOST_MAC, LAN));
    neigh.push((v6::cip(), lab::CLIENT_MAC, WAN));
    Snapshot::new(
        generation,
        1,
        lab::ports(),
        addrs,
        routes,
        services(all),
        neigh,
        Default::default(),
        Default::default(),
    )
}

/// The SYN proxy service (TCP 85): a SYN with every option, the ACK with
/// its cookie (and timestamps), the real server's SYN-ACK, data both ways,
/// and an ACK with a wrong cookie.
fn synproxy_seeds(w: &mut Worker, s: &mut Vec<(Vec<u8>, PortId)>) {
    let opts = [
        2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let syn = FrameSpec {
        tcp_opts: &opts,
        ..from_client(5555, 85, SYN)
    }
    .to_vec();
    let synack = run_tx(w, &syn, WAN, WAN, 0);
    s.push((syn, WAN));
    let l4 = v4_l4(&synack);
    let cookie = be32(&synack, l4 + 4);
    // MSS (4), SACK-permitted (2), then the timestamps' kind and length.
    let tsval = be32(&synack, l4 + 20 + 8);
    // seq (the SYN's + 1), ack, and the echo of rvs's TSval; checksums fixed.
    let with = |mut f: Vec<u8>, seq: u32, ack: u32, tsecr: Option<u32>| {
        let l4 = v4_l4(&f);
        f[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        f[l4 + 8..l4 + 12].copy_from_slice(&ack.to_be_bytes());
        if let Some(e) = tsecr {
            f[l4 + 28..l4 + 32].copy_from_slice(&e.to_be_bytes());
        }
        fix_checksums(&mut f);
        f
    };
    let ts = [1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 0];
    let ack = FrameSpec {
        tcp_opts: &ts,
        payload: b"GET /",
        ..from_client(5555, 85, ACK | PSH)
    };
    let ack = with(
        ack.to_vec(),
        0x1000_0001,
        cookie.wrapping_add(1),
        Some(tsval),
    );
    let to_rs = run_tx(w, &ack, WAN, LAN, 0);
    s.push((ack.clone(), WAN));
    let lport = be16(&to_rs, 34);
    let rs_synack = FrameSpec {
        tcp_opts: &opts,
        ..from_rs(0, 85, LIP, lport, SYN | ACK)
    };
    let rs_synack = with(rs_synack.to_vec(), 0x1000_0000, 0x1000_0001, None);
    run_tx(w, &rs_synack, LAN, LAN, 0);
    s.push((rs_synack, LAN));
    let reply = FrameSpec {
        tcp_opts: &ts,
        payload: b"200 OK",
        ..from_rs(0, 85, LIP, lport, ACK | PSH)
    };
    s.push((with(reply.to_vec(), 0x1000_0001, 0x1000_0006, Some(2)), LAN));
    s.push((ack, WAN));
    let bad = with(from_client(6666, 85, ACK).to_vec(), 5, 0xdead_beef, None);
    s.push((bad, WAN));
}

/// Recomputes the IPv4 header and transport checksums where the headers
/// allow it, so that mutated frames get past checksum verification.
fn fix_checksums(f: &mut [u8]) {
    if f.len() >= 54 && f[12..14] == [0x86, 0xdd] {
        fix_v6_checksum(f);
        return;
    }
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return;
    }
    let ihl = (f[14] & 0xf) as usize * 4;
    if ihl < 20 || f.len() < 14 + ihl {
        return;
    }
    fix_ip_csum(f);
    let total = be16(f, 16) as usize;
    if total < ihl || f.len() < 14 + total {
        return;
    }
    let (l4, end) = (14 + ihl, 14 + total);
    let off = match f[23] {
        proto::TCP if end - l4 >= 20 => 16,
        proto::UDP if end - l4 >= 8 => 6,
        proto::ICMP if end - l4 >= 8 => 2,
        _ => return,
    };
    f[l4 + off] = 0;
    f[l4 + off + 1] = 0;
    let c = if f[23] == proto::ICMP {
        rfc1071(&[&f[l4..end]])
    } else {
        let mut ph = f[26..34].to_vec();
        ph.extend_from_slice(&[0, f[23]]);
        ph.extend_from_slice(&((end - l4) as u16).to_be_bytes());
        let c = rfc1071(&[&ph, &f[l4..end]]);
        if c == 0 && f[23] == proto::UDP {
            0xffff
        } else {
            c
        }
    };
    f[l4 + off..l4 + off + 2].copy_from_slice(&c.to_be_bytes());
}

/// The transport checksum of an IPv6 frame without extension headers.
fn fix_v6_checksum(f: &mut [u8]) {
    let end = 54 + be16(f, 18) as usize;
    let nh = f[20];
    let off = match nh {
        proto::TCP => 16,
        proto::UDP => 6,
        proto::ICMPV6 => 2,
        _ => return,
    };
    if end > f.len() || end < 54 + off + 2 {
        return;
    }
    f[54 + off] = 0;
    f[55 + off] = 0;
    let mut ph = f[22..54].to_vec();
    ph.extend_from_slice(&((end - 54) as u32).to_be_bytes());
    ph.extend_from_slice(&[0, 0, 0, nh]);
    let c = rfc1071(&[&ph, &f[54..end]]);
    let c = if c == 0 && nh == proto::UDP {
        0xffff
    } else {
        c
    };
    f[54 + off..56 + off].copy_from_slice(&c.to_be_bytes());
}

/// Valid frames of every kind the lab sees, with the port they arrive on.
/// Runs the openings of a few flows so that replies find their conns.
fn seeds(w: &mut Worker) -> Vec<(Vec<u8>, PortId)> {
    let mut s: Vec<(Vec<u8>, PortId)> = Vec::new();
    resolve_client(w, CIP, 0);
    let syn80 = FrameSpec {
        tcp_opts: &[2, 4, 5, 0xb4, 1, 3, 3, 7],
        ..from_client(1111, 80, SYN)
    }
    .to_vec();
    let fwd = run_tx(w, &syn80, WAN, LAN, 0);
    let rs = if v4_src_dst(&fwd).1 == lab::rs_ip(0) {
        0
    } else {
        1
    };
    let lport = be16(&fwd, 34);
    s.push((syn80, WAN));
    s.push((from_rs(rs, 80, LIP, lport, SYN | ACK).to_vec(), LAN));
    s.push((from_client(1111, 80, ACK).to_vec(), WAN));
    let data = FrameSpec {
        payload: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ..from_client(1111, 80, ACK | PSH)
    };
    s.push((data.to_vec(), WAN));
    let resp = FrameSpec {
        payload: b"HTTP/1.1 200 OK\r\n\r\n",
        ..from_rs(rs, 80, LIP, lport, ACK | PSH | FIN)
    };
    s.push((resp.to_vec(), LAN));

    let q = FrameSpec::udp(CIP, 5353, VIP, 53, b"\x00\x01query").to_vec();
    let fwd = run_tx(w, &q, WAN, LAN, 0);
    let ulport = be16(&fwd, 34);
    s.push((q, WAN));
    let answer = FrameSpec {
        src_mac: lab::rs_mac(0),
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::udp(lab::rs_ip(0), 53, LIP, ulport, b"answer")
    }
    .to_vec();
    let back = run_tx(w, &answer, LAN, WAN, 0);
    s.push((answer, LAN));
    s.push((
        ipv4_frame(
            lab::LAN_MAC,
            lab::rs_mac(0),
            lab::rs_ip(0),
            LIP,
            proto::ICMP,
            64,
            &icmp_msg(3, 3, [0; 4], &fwd[14..]),
        ),
        LAN,
    ));
    s.push((
        ipv4_frame(
            lab::WAN_MAC,
            lab::CLIENT_MAC,
            CIP,
            VIP,
            proto::ICMP,
            64,
            &icmp_msg(3, 4, [0, 0, 5, 0x78], &back[14..42]),
        ),
        WAN,
    ));

    synproxy_seeds(w, &mut s);

    let nat = from_client(2222, 81, SYN).to_vec();
    run_tx(w, &nat, WAN, LAN, 0);
    s.push((nat, WAN));
    s.push((from_rs(2, 8080, CIP, 2222, SYN | ACK).to_vec(), LAN));
    s.push((from_client(3333, 82, SYN).to_vec(), WAN));
    s.push((
        FrameSpec {
            payload: b"in a tunnel",
            ..from_client(4444, 83, SYN)
        }
        .to_vec(),
        WAN,
    ));

    let host = |spec: FrameSpec| {
        FrameSpec {
            src_mac: HOST_MAC,
            dst_mac: lab::LAN_MAC,
            ..spec
        }
        .to_vec()
    };
    let snat = host(FrameSpec::tcp(HOST, 40000, REMOTE, 80, SYN));
    let out = run_tx(w, &snat, LAN, WAN, 0);
    s.push((snat, LAN));
    let from_remote = |spec: FrameSpec| {
        FrameSpec {
            src_mac: lab::CLIENT_MAC,
            dst_mac: lab::WAN_MAC,
            ..spec
        }
        .to_vec()
    };
    s.push((
        from_remote(FrameSpec::tcp(
            REMOTE,
            80,
            lab::WAN_IP,
            be16(&out, 34),
            SYN | ACK,
        )),
        WAN,
    ));
    let ping = host(FrameSpec::echo(HOST, REMOTE, 0x4242));
    let out = run_tx(w, &ping, LAN, WAN, 0);
    s.push((ping, LAN));
    s.push((
        from_remote(FrameSpec {
            dport: 0,
            ..FrameSpec::echo(REMOTE, lab::WAN_IP, be16(&out, 38))
        }),
        WAN,
    ));
    s.push((FrameSpec::echo(CIP, VIP, 7).to_vec(), WAN));

    s.push((
        arp_frame(1, Mac::BROADCAST, lab::CLIENT_MAC, CIP, Mac::ZERO, VIP),
        WAN,
    ));
    s.push((
        arp_frame(
            2,
            lab::LAN_MAC,
            lab::rs_mac(0),
            lab::rs_ip(0),
            lab::LAN_MAC,
            LIP,
        ),
        LAN,
    ));

    let syn6 = FrameSpec {
        tcp_opts: &[2, 4, 5, 0xa0],
        ..FrameSpec::tcp(v6::cip(), 6000, v6::vip(), 80, SYN)
    }
    .to_vec();
    let out = run_tx(w, &syn6, WAN, LAN, 0);
    s.push((syn6, WAN));
    // The RS's ICMPv6 port unreachable about it.
    let mut err6 = lab::LAN_MAC.0.to_vec();
    err6.extend_from_slice(&v6::RS_MAC.0);
    err6.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    err6.extend_from_slice(&((8 + out.len() - 14) as u16).to_be_bytes());
    err6.extend_from_slice(&[proto::ICMPV6, 64]);
    err6.extend_from_slice(&v6::rip().0);
    err6.extend_from_slice(&v6::lip().0);
    err6.extend_from_slice(&[1, 4, 0, 0, 0, 0, 0, 0]);
    err6.extend_from_slice(&out[14..]);
    fix_v6_checksum(&mut err6);
    s.push((err6, LAN));
    let synack6 = FrameSpec {
        src_mac: v6::RS_MAC,
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::tcp(v6::rip(), 8080, v6::lip(), be16(&out, V6_L4), SYN | ACK)
    };
    s.push((synack6.to_vec(), LAN));
    s.push((
        FrameSpec::tcp(v6::cip(), 6000, v6::vip(), 80, ACK).to_vec(),
        WAN,
    ));
    s.push((super::host::ns(v6::vip()), WAN));
    s.push((
        FrameSpec::udp(v6::cip(), 6000, v6::vip(), 53, b"v6").to_vec(),
        WAN,
    ));
    s.push((FrameSpec::echo(v6::cip(), v6::vip(), 9).to_vec(), WAN));

    // IPv4 options, a kni_host destination, OSPF.
    let mut opt = from_client(5555, 80, SYN).to_vec();
    opt.splice(34..34, [0x94, 4, 0, 0]);
    opt[14] = 0x46;
    let total = be16(&opt, 16) + 4;
    opt[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ip_csum(&mut opt);
    s.push((opt, WAN));
    s.push((
        FrameSpec::tcp(CIP, 1, Addr::v4(10, 0, 0, 2), 179, SYN).to_vec(),
        WAN,
    ));
    s.push((
        ipv4_frame(
            Mac([1, 0, 0x5e, 0, 0, 5]),
            lab::rs_mac(0),
            lab::rs_ip(0),
            Addr::v4(224, 0, 0, 5),
            89,
            1,
            &[2, 1, 0, 44],
        ),
        LAN,
    ));
    for (f, _) in &s {
        assert!(check_checksums(f).is_ok(), "seeds are valid");
    }
    s
}

/// Mutates a copy of `seed` in one of several ways.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut f = seed.to_vec();
    let flip = |rng: &mut Rng, f: &mut Vec<u8>| {
        if f.is_empty() {
            return;
        }
        for _ in 0..1 + rng.index(4) {
            // Headers are where the interesting bugs are.
            let span = if rng.index(3) > 0 {
                f.len().min(64)
            } else {
                f.len()
            };
            let i = rng.index(span);
            f[i] ^= 1 + rng.index(255) as u8;
        }
    };
    match rng.index(8) {
        0 => {}
        1 | 2 => flip(rng, &mut f),
        3 | 4 => {
            // Header fields changed but checksums made right: the deep paths.
            flip(rng, &mut f);
            fix_checksums(&mut f);
        }
        5 => f.truncate(rng.index(f.len() + 1)),
        6 => {
            flip(rng, &mut f);
            f.truncate(rng.index(f.len() + 1));
        }
        _ => {
            for _ in 0..rng.index(40) {
                f.push(rng.next() as u8);
            }
            if rng.index(2) == 0 {
                flip(rng, &mut f);
            }
            fix_checksums(&mut f);
        }
    }
    f
}

#[test]
fn mutated_frames_never_panic_and_transmit_valid_checksums() {
    let mut w = worker_with(0, 512, all_modes(1, true));
    let seeds = seeds(&mut w);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut now = 1u64;
    let (mut checked, mut transmitted) = (0, 0);
    for i in 0..20_000u32 {
        let (seed, seed_port) = &seeds[rng.index(seeds.len())];
        let f = mutate(&mut rng, seed);
        let port = if rng.index(50) == 0 {
            rng.index(4) as PortId
        } else {
            *seed_port
        };
        let head = [0, 4, 64][rng.index(3)];
        let buf_len = head + f.len() + rng.index(96);
        let (v, out) = run_in(&mut w, &f, port, now, head, buf_len);
        if let Verdict::Transmit(_) = v {
            transmitted += 1;
            if check_checksums(&f).is_ok() {
                checked += 1;
                if let Err(e) = check_checksums(&out) {
                    panic!("frame {i}: {e}\n in: {f:02x?}\nout: {out:02x?}");
                }
            }
        }
        w.outbox().drain(|_, _| {});
        w.take_learned(|_| {});
        now += rng.index(3) as u64;
        if i % 64 == 0 {
            w.tick(now);
        }
        if i % 5000 == 4999 {
            // Services come and go under live conns.
            let all = i % 10000 != 4999;
            w.set_snapshot(Arc::new(all_modes(2 + i as u64, all)), now);
        }
    }
    assert!(
        transmitted > 3000,
        "the run exercised forwarding: {transmitted}"
    );
    assert!(checked > 2000, "valid inputs were checked: {checked}");
}

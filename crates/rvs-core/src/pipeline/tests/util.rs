//! Shared helpers of the pipeline tests: workers over lab snapshots, running a
//! frame with headroom, hand-built frames and plain header readers.
//!
//! Frames come from [`FrameSpec`] or are written byte by byte here; expected
//! values in the tests are written out by hand and checksums are checked by
//! the independent [`super::oracle`].

use std::sync::Arc;

use super::oracle::rfc1071;
use crate::addr::{proto, Addr, Mac, PortId};
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec};
use crate::pipeline::{Packet, Verdict, Worker, WorkerConf};
use crate::route::{Route, RouteTable, Scope};
use crate::sched::{DestKey, SchedKind, SchedTable};
use crate::service::{Dest, Service, ServiceKey};
use crate::snapshot::{IfAddr, Snapshot};
use crate::stats::DropReason;

/// The tutorial's client.
pub const CIP: Addr = Addr::v4(10, 0, 0, 48);
/// Headroom the tests give the pipeline (room for TOA and tunnel headers).
pub const HEADROOM: usize = 64;

/// A worker with small tables (fast to build) over `snap`.
pub fn worker(snap: Snapshot) -> Worker {
    worker_with(0, 4096, snap)
}

/// A worker with id `id` and a connection table of `conns` over `snap`.
pub fn worker_with(id: u16, conns: usize, snap: Snapshot) -> Worker {
    Worker::new(
        WorkerConf {
            id,
            conn_capacity: conns,
            neigh_capacity: 256,
            pending_frames: 16,
            frame_size: 2048,
            expire_budget: 4096,
            hash_seed: None,
            ..WorkerConf::default()
        },
        Arc::new(snap),
        0,
    )
}

/// Runs one frame received on `port` with [`HEADROOM`] bytes before it;
/// returns the verdict and the frame as the pipeline left it.
pub fn run(w: &mut Worker, frame: &[u8], port: PortId, now: u64) -> (Verdict, Vec<u8>) {
    run_in(w, frame, port, now, HEADROOM, 2048)
}

/// As [`run`] with a chosen headroom and buffer size.
pub fn run_in(
    w: &mut Worker,
    frame: &[u8],
    port: PortId,
    now: u64,
    head: usize,
    buf_len: usize,
) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; buf_len.max(head + frame.len())];
    buf[head..head + frame.len()].copy_from_slice(frame);
    let mut p = Packet {
        buf: &mut buf,
        head,
        len: frame.len(),
        port,
        csum_ok: false,
    };
    let v = w.process(&mut p, now);
    let out = p.frame().to_vec();
    (v, out)
}

/// Runs a frame that must be transmitted on `port`; shows the drops otherwise.
pub fn run_tx(
    w: &mut Worker,
    frame: &[u8],
    in_port: PortId,
    out_port: PortId,
    now: u64,
) -> Vec<u8> {
    let (v, out) = run(w, frame, in_port, now);
    assert_eq!(
        v,
        Verdict::Transmit(out_port),
        "drops: {:?}",
        w.drops().nonzero()
    );
    out
}

/// How many packets the worker dropped for `r`.
pub fn drops(w: &Worker, r: DropReason) -> u64 {
    w.drops().get(r)
}

/// An ARP frame written byte by byte (padded to 60 bytes).
pub fn arp_frame(op: u16, dst_mac: Mac, sha: Mac, spa: Addr, tha: Mac, tpa: Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst_mac.0);
    f.extend_from_slice(&sha.0);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha.0);
    f.extend_from_slice(&spa.v4_bytes());
    f.extend_from_slice(&tha.0);
    f.extend_from_slice(&tpa.v4_bytes());
    f.resize(60, 0);
    f
}

/// The client asks for the VIP's MAC; rvs answers from the WAN port and
/// thereby learns the client.
pub fn resolve_client(w: &mut Worker, cip: Addr, now: u64) {
    let req = arp_frame(1, Mac::BROADCAST, lab::CLIENT_MAC, cip, Mac::ZERO, lab::VIP);
    let (v, out) = run(w, &req, lab::WAN, now);
    assert_eq!(v, Verdict::Transmit(lab::WAN));
    assert_eq!(&out[20..22], &[0, 2], "ARP reply");
}

/// A TCP segment from the tutorial client to the VIP.
pub fn from_client<'a>(sport: u16, vport: u16, flags: u8) -> FrameSpec<'a> {
    FrameSpec::tcp(CIP, sport, lab::VIP, vport, flags)
}

/// A TCP segment from real server `i` to `dst:dport` on the LAN.
pub fn from_rs<'a>(i: u8, sport: u16, dst: Addr, dport: u16, flags: u8) -> FrameSpec<'a> {
    FrameSpec {
        src_mac: lab::rs_mac(i),
        dst_mac: lab::LAN_MAC,
        ..FrameSpec::tcp(lab::rs_ip(i), sport, dst, dport, flags)
    }
}

/// Opens the connection `CIP:sport` to the VIP's port 80 with a full
/// handshake (SYN, SYN-ACK, ACK at `now`; it becomes active): the real
/// server it went to and its local port.
pub fn establish(w: &mut Worker, sport: u16, now: u64) -> (u8, u16) {
    use crate::wire::tcp::flags::{ACK, SYN};
    let out = run_tx(
        w,
        &from_client(sport, 80, SYN).to_vec(),
        lab::WAN,
        lab::LAN,
        now,
    );
    let rs = (0..4)
        .find(|&i| lab::rs_ip(i) == v4_src_dst(&out).1)
        .expect("a RS");
    let lport = be16(&out, 34);
    let sa = from_rs(rs, 80, lab::LIP, lport, SYN | ACK).to_vec();
    run_tx(w, &sa, lab::LAN, lab::WAN, now);
    run_tx(
        w,
        &from_client(sport, 80, ACK).to_vec(),
        lab::WAN,
        lab::LAN,
        now,
    );
    (rs, lport)
}

/// Reads a big-endian u16.
pub fn be16(f: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([f[off], f[off + 1]])
}

/// Reads a big-endian u32.
pub fn be32(f: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([f[off], f[off + 1], f[off + 2], f[off + 3]])
}

/// Offset of the transport header of an Ethernet/IPv4 frame.
pub fn v4_l4(f: &[u8]) -> usize {
    14 + (f[14] & 0xf) as usize * 4
}

/// Source and destination IPv4 addresses.
pub fn v4_src_dst(f: &[u8]) -> (Addr, Addr) {
    (
        Addr::v4(f[26], f[27], f[28], f[29]),
        Addr::v4(f[30], f[31], f[32], f[33]),
    )
}

/// TCP header length of an IPv4 frame.
pub fn tcp_hlen(f: &[u8]) -> usize {
    (f[v4_l4(f) + 12] >> 4) as usize * 4
}

/// TCP options of an IPv4 frame.
pub fn tcp_opts(f: &[u8]) -> &[u8] {
    let l4 = v4_l4(f);
    &f[l4 + 20..l4 + tcp_hlen(f)]
}

/// Transport payload of an IPv4 TCP frame.
pub fn tcp_payload(f: &[u8]) -> &[u8] {
    let end = 14 + be16(f, 16) as usize;
    &f[v4_l4(f) + tcp_hlen(f)..end]
}

/// Recomputes the IPv4 header checksum with the oracle.
pub fn fix_ip_csum(f: &mut [u8]) {
    let ihl = (f[14] & 0xf) as usize * 4;
    f[24] = 0;
    f[25] = 0;
    let c = rfc1071(&[&f[14..14 + ihl]]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// A plain Ethernet/IPv4 frame around `l4` (no transport checksum work).
pub fn ipv4_frame(
    dst_mac: Mac,
    src_mac: Mac,
    src: Addr,
    dst: Addr,
    proto_: u8,
    ttl: u8,
    l4: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac.0);
    f.extend_from_slice(&src_mac.0);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
    f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0x12, 0x34, 0x40, 0, ttl, proto_, 0, 0]);
    f.extend_from_slice(&src.v4_bytes());
    f.extend_from_slice(&dst.v4_bytes());
    f.extend_from_slice(l4);
    fix_ip_csum(&mut f);
    f
}

/// An ICMP message (type, code, 4 bytes of rest, body) with its checksum.
pub fn icmp_msg(ty: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    let c = rfc1071(&[&m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// A route without gateway.
pub fn link_route(prefix: Addr, plen: u8, port: PortId) -> Route {
    Route {
        prefix,
        plen,
        gateway: None,
        port,
        scope: Scope::Link,
        src: None,
        mtu: 1500,
        metric: 0,
    }
}

/// A TCP (or UDP) service on the lab's VIP with `dests` and the LIP.
pub fn vs(
    id: u32,
    proto_: u8,
    vport: u16,
    sched: SchedKind,
    dests: &[DestSpec],
    persistence_ms: u32,
) -> Arc<Service> {
    lab::service(
        id,
        ServiceKey::Vs {
            proto: proto_,
            vip: lab::VIP,
            vport,
        },
        sched,
        dests,
        &[(lab::LIP, lab::LAN)],
        persistence_ms,
        1,
    )
}

/// A FNAT TCP service on VIP:80 over real servers 0..n with these weights.
pub fn fnat_weighted(sched: SchedKind, weights: &[u32]) -> Snapshot {
    let dests: Vec<DestSpec> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| DestSpec {
            weight: w,
            ..DestSpec::new(lab::rs_ip(i as u8), 80, FwdMode::Fnat)
        })
        .collect();
    let svc = vs(1, proto::TCP, 80, sched, &dests, 0);
    lab::snapshot(1, vec![svc], weights.len() as u8)
}

/// The same service with another dest list; dests keep their ids (and so
/// their worker state and counters) when `old` has them.
pub fn reconfigure(old: &Service, dests: &[(Arc<Dest>, u32)]) -> Arc<Service> {
    let dests: Vec<Arc<Dest>> = dests
        .iter()
        .map(|(d, w)| {
            Arc::new(Dest {
                id: d.id,
                addr: d.addr,
                port: d.port,
                weight: *w,
                mode: d.mode,
                u_threshold: d.u_threshold,
                l_threshold: d.l_threshold,
                stats: d.stats.clone(),
            })
        })
        .collect();
    let keys: Vec<DestKey> = dests
        .iter()
        .map(|d| DestKey {
            addr: d.addr,
            port: d.port,
            weight: d.weight,
        })
        .collect();
    Arc::new(Service {
        id: old.id,
        key: old.key.clone(),
        sched: Arc::new(SchedTable::build(old.sched_kind(), &keys)),
        persistence_ms: old.persistence_ms,
        dests,
        laddrs: old.laddrs.clone(),
        stats: old.stats.clone(),
        synproxy: old.synproxy,
        proxy_protocol: old.proxy_protocol,
    })
}

/// The two-arm lab at configuration `generation` with `services` and
/// static neighbours for real servers 0..4.
pub fn lab_snapshot(generation: u64, services: Vec<Arc<Service>>) -> Snapshot {
    let neigh = (0..4)
        .map(|i| (lab::rs_ip(i), lab::rs_mac(i), lab::LAN))
        .collect();
    Snapshot::new(
        generation,
        1,
        lab::ports(),
        lab::addrs(),
        lab::routes(),
        services,
        neigh,
        Default::default(),
        Default::default(),
    )
}

/// IPv6 addresses of the IPv6 lab.
pub mod v6 {
    use crate::addr::{Addr, Mac};

    /// Parses an address literal of the tests.
    pub fn a(s: &str) -> Addr {
        s.parse().expect("test address")
    }
    /// The IPv6 VIP (on WAN).
    pub fn vip() -> Addr {
        a("2001:db8::100")
    }
    /// The client.
    pub fn cip() -> Addr {
        a("2001:db8::48")
    }
    /// rvs's LAN address.
    pub fn lan_ip() -> Addr {
        a("fd00::1")
    }
    /// The IPv6 LIP.
    pub fn lip() -> Addr {
        a("fd00::200")
    }
    /// Real server 0.
    pub fn rip() -> Addr {
        a("fd00::2")
    }
    /// MAC of real server 0.
    pub const RS_MAC: Mac = Mac([0x02, 0, 0, 0, 6, 2]);
}

/// The two-arm lab in IPv6: VIP 2001:db8::100 (WAN), LIP fd00::200 and
/// rvs fd00::1 (LAN), one FNAT RS fd00::2, TCP port 80, static neighbours
/// for the RS and the client.
pub fn v6_lab() -> Snapshot {
    v6_lab_proto(proto::TCP)
}

/// [`v6_lab`] with a service of IP protocol `l4` (TCP or UDP) on port 80.
pub fn v6_lab_proto(l4: u8) -> Snapshot {
    let svc = lab::service(
        6,
        ServiceKey::Vs {
            proto: l4,
            vip: v6::vip(),
            vport: 80,
        },
        SchedKind::Rr,
        &[DestSpec::new(v6::rip(), 8080, FwdMode::Fnat)],
        &[(v6::lip(), lab::LAN)],
        0,
        1,
    );
    let mut routes = RouteTable::new();
    routes
        .add(link_route(v6::a("2001:db8::"), 64, lab::WAN))
        .unwrap();
    routes
        .add(link_route(v6::a("fd00::"), 64, lab::LAN))
        .unwrap();
    let mut addrs = lab::addrs();
    addrs.push(IfAddr {
        addr: v6::vip(),
        plen: 128,
        port: lab::WAN,
        sapool: false,
    });
    addrs.push(IfAddr {
        addr: v6::lan_ip(),
        plen: 64,
        port: lab::LAN,
        sapool: false,
    });
    Snapshot::new(
        1,
        1,
        lab::ports(),
        addrs,
        routes,
        vec![svc],
        vec![
            (v6::rip(), v6::RS_MAC, lab::LAN),
            (v6::cip(), lab::CLIENT_MAC, lab::WAN),
        ],
        Default::default(),
        Default::default(),
    )
}

/// Offsets of an Ethernet/IPv6 frame without extension headers.
pub const V6_L4: usize = 54;

/// Source and destination of an IPv6 frame.
pub fn v6_src_dst(f: &[u8]) -> (Addr, Addr) {
    let mut s = [0u8; 16];
    let mut d = [0u8; 16];
    s.copy_from_slice(&f[22..38]);
    d.copy_from_slice(&f[38..54]);
    (Addr(s), Addr(d))
}

pub use crate::lab::Rng;

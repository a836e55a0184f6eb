//! The DPVS tutorial's topologies as snapshots, and a frame builder, for tests,
//! benchmarks and fuzzing. Nothing here runs in the data path.
//!
//! Two-arm: clients on `dpdk1` (WAN, 10.0.0.0/16, VIP 10.0.0.100), real servers
//! on `dpdk0` (LAN, 192.168.100.0/24, rvs 192.168.100.1, LIP 192.168.100.200).

use std::sync::Arc;

use crate::addr::{proto, Addr, Mac, PortId};
use crate::conn::tcp::Timeouts;
use crate::conn::FwdMode;
use crate::route::{Route, RouteTable, Scope};
use crate::sched::{DestKey, SchedKind, SchedTable};
use crate::service::{Dest, Laddr, Service, ServiceKey};
use crate::snapshot::{IfAddr, PipelineConf, PortConf, Snapshot};
use crate::stats::PerWorker;
use crate::wire::checksum;

/// LAN port (real servers).
pub const LAN: PortId = 0;
/// WAN port (clients).
pub const WAN: PortId = 1;
/// MAC of rvs's LAN port.
pub const LAN_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x10]);
/// MAC of rvs's WAN port.
pub const WAN_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x11]);
/// MAC of the WAN gateway / client.
pub const CLIENT_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x48]);
/// The VIP.
pub const VIP: Addr = Addr::v4(10, 0, 0, 100);
/// rvs's LAN address.
pub const LAN_IP: Addr = Addr::v4(192, 168, 100, 1);
/// rvs's WAN address.
pub const WAN_IP: Addr = Addr::v4(10, 0, 0, 1);
/// The FNAT local address.
pub const LIP: Addr = Addr::v4(192, 168, 100, 200);

/// MAC of real server `i` (192.168.100.(2+i)).
pub fn rs_mac(i: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 1, 2 + i])
}

/// Address of real server `i`.
pub fn rs_ip(i: u8) -> Addr {
    Addr::v4(192, 168, 100, 2 + i)
}

/// A dest for [`service`].
#[derive(Debug, Clone)]
pub struct DestSpec {
    /// Address.
    pub addr: Addr,
    /// Port.
    pub port: u16,
    /// Weight.
    pub weight: u32,
    /// Mode.
    pub mode: FwdMode,
    /// Upper threshold.
    pub u_threshold: u32,
}

impl DestSpec {
    /// A dest with weight 1 and no threshold.
    pub fn new(addr: Addr, port: u16, mode: FwdMode) -> DestSpec {
        DestSpec {
            addr,
            port,
            weight: 1,
            mode,
            u_threshold: 0,
        }
    }
}

/// Builds a service with fresh counters; ids are taken from `id` and `id * 1000 + i` for dests.
pub fn service(
    id: u32,
    key: ServiceKey,
    sched: SchedKind,
    dests: &[DestSpec],
    laddrs: &[(Addr, PortId)],
    persistence_ms: u32,
    workers: usize,
) -> Arc<Service> {
    let keys: Vec<DestKey> = dests
        .iter()
        .map(|d| DestKey {
            addr: d.addr,
            port: d.port,
            weight: d.weight,
        })
        .collect();
    Arc::new(Service {
        id,
        key,
        sched: Arc::new(SchedTable::build(sched, &keys)),
        persistence_ms,
        dests: dests
            .iter()
            .enumerate()
            .map(|(i, d)| {
                Arc::new(Dest {
                    id: id * 1000 + i as u32,
                    addr: d.addr,
                    port: d.port,
                    weight: d.weight,
                    mode: d.mode,
                    u_threshold: d.u_threshold,
                    l_threshold: 0,
                    stats: Arc::new(PerWorker::new(workers)),
                })
            })
            .collect(),
        laddrs: laddrs
            .iter()
            .map(|(a, p)| Laddr {
                addr: *a,
                port: *p,
                stats: Arc::new(PerWorker::new(workers)),
            })
            .collect(),
        stats: Arc::new(PerWorker::new(workers)),
        synproxy: false,
        proxy_protocol: Default::default(),
    })
}

/// The two ports of the two-arm lab.
pub fn ports() -> Vec<PortConf> {
    vec![
        PortConf {
            name: "dpdk0".into(),
            mac: LAN_MAC,
            mtu: 1500,
            kni: true,
            vlan: None,
        },
        PortConf {
            name: "dpdk1".into(),
            mac: WAN_MAC,
            mtu: 1500,
            kni: true,
            vlan: None,
        },
    ]
}

/// Routes of the two-arm lab: 10.0.0.0/16 on WAN, 192.168.100.0/24 on LAN.
pub fn routes() -> RouteTable {
    let mut r = RouteTable::new();
    let link = |prefix: Addr, plen, port| Route {
        prefix,
        plen,
        gateway: None,
        port,
        scope: Scope::Link,
        src: None,
        mtu: 1500,
        metric: 0,
    };
    let _ = r.add(link(Addr::v4(10, 0, 0, 0), 16, WAN));
    let _ = r.add(link(Addr::v4(192, 168, 100, 0), 24, LAN));
    r
}

/// Interface addresses of the two-arm lab.
pub fn addrs() -> Vec<IfAddr> {
    vec![
        IfAddr {
            addr: VIP,
            plen: 32,
            port: WAN,
            sapool: false,
        },
        IfAddr {
            addr: WAN_IP,
            plen: 16,
            port: WAN,
            sapool: true,
        },
        IfAddr {
            addr: LAN_IP,
            plen: 24,
            port: LAN,
            sapool: false,
        },
        IfAddr {
            addr: LIP,
            plen: 32,
            port: LAN,
            sapool: true,
        },
    ]
}

/// A snapshot of the two-arm lab with `services`; real servers' MACs are static neighbours.
pub fn snapshot(workers: u16, services: Vec<Arc<Service>>, rs_count: u8) -> Snapshot {
    let neigh = (0..rs_count).map(|i| (rs_ip(i), rs_mac(i), LAN)).collect();
    Snapshot::new(
        1,
        workers,
        ports(),
        addrs(),
        routes(),
        services,
        neigh,
        Timeouts::default(),
        PipelineConf::default(),
    )
}

/// The tutorial's FNAT example: TCP 10.0.0.100:80 rr over two RS, LIP 192.168.100.200.
pub fn tutorial_fnat(workers: u16) -> Snapshot {
    let svc = service(
        1,
        ServiceKey::Vs {
            proto: proto::TCP,
            vip: VIP,
            vport: 80,
        },
        SchedKind::Rr,
        &[
            DestSpec::new(rs_ip(0), 80, FwdMode::Fnat),
            DestSpec::new(rs_ip(1), 80, FwdMode::Fnat),
        ],
        &[(LIP, LAN)],
        0,
        workers as usize,
    );
    snapshot(workers, vec![svc], 2)
}

/// Fields of a frame to build.
#[derive(Debug, Clone, Copy)]
pub struct FrameSpec<'a> {
    /// Ethernet source.
    pub src_mac: Mac,
    /// Ethernet destination.
    pub dst_mac: Mac,
    /// IP source.
    pub src: Addr,
    /// IP destination.
    pub dst: Addr,
    /// Transport protocol.
    pub proto: u8,
    /// Source port (ICMP: echo identifier).
    pub sport: u16,
    /// Destination port (ICMP: type << 8 | code).
    pub dport: u16,
    /// TCP flags.
    pub flags: u8,
    /// TCP options (length a multiple of 4).
    pub tcp_opts: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
    /// TTL / hop limit.
    pub ttl: u8,
}

impl<'a> FrameSpec<'a> {
    /// A TCP segment from client-ish defaults.
    pub fn tcp(src: Addr, sport: u16, dst: Addr, dport: u16, flags: u8) -> FrameSpec<'a> {
        FrameSpec {
            src_mac: CLIENT_MAC,
            dst_mac: WAN_MAC,
            src,
            dst,
            proto: proto::TCP,
            sport,
            dport,
            flags,
            tcp_opts: &[],
            payload: &[],
            ttl: 64,
        }
    }

    /// A UDP datagram.
    pub fn udp(src: Addr, sport: u16, dst: Addr, dport: u16, payload: &'a [u8]) -> FrameSpec<'a> {
        FrameSpec {
            proto: proto::UDP,
            payload,
            ..FrameSpec::tcp(src, sport, dst, dport, 0)
        }
    }

    /// An ICMP echo request with identifier `id`.
    pub fn echo(src: Addr, dst: Addr, id: u16) -> FrameSpec<'a> {
        let proto_ = if src.is_v4() {
            proto::ICMP
        } else {
            proto::ICMPV6
        };
        let ty = if src.is_v4() { 8 } else { 128 };
        FrameSpec {
            proto: proto_,
            dport: ty << 8,
            ..FrameSpec::tcp(src, id, dst, 0, 0)
        }
    }

    /// Builds the frame with valid checksums into `out`, returning its length.
    pub fn build(&self, out: &mut [u8]) -> usize {
        let v6 = !self.src.is_v4();
        let l3 = 14;
        let iph = if v6 { 40 } else { 20 };
        let l4 = l3 + iph;
        let l4h = match self.proto {
            proto::TCP => 20 + self.tcp_opts.len(),
            _ => 8,
        };
        let seg_len = l4h + self.payload.len();
        let total = l4 + seg_len;
        let f = &mut out[..total];
        f.fill(0);
        f[0..6].copy_from_slice(&self.dst_mac.0);
        f[6..12].copy_from_slice(&self.src_mac.0);
        f[12..14].copy_from_slice(&(if v6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
        if v6 {
            f[l3] = 0x60;
            f[l3 + 4..l3 + 6].copy_from_slice(&(seg_len as u16).to_be_bytes());
            f[l3 + 6] = self.proto;
            f[l3 + 7] = self.ttl;
            f[l3 + 8..l3 + 24].copy_from_slice(&self.src.0);
            f[l3 + 24..l3 + 40].copy_from_slice(&self.dst.0);
        } else {
            let h = &mut f[l3..l3 + 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&((20 + seg_len) as u16).to_be_bytes());
            h[6] = 0x40;
            h[8] = self.ttl;
            h[9] = self.proto;
            h[12..16].copy_from_slice(&self.src.v4_bytes());
            h[16..20].copy_from_slice(&self.dst.v4_bytes());
            let c = checksum::finish(checksum::sum(h));
            h[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let s = &mut f[l4..];
        match self.proto {
            proto::TCP => {
                s[0..2].copy_from_slice(&self.sport.to_be_bytes());
                s[2..4].copy_from_slice(&self.dport.to_be_bytes());
                s[4..8].copy_from_slice(&0x1000_0000u32.to_be_bytes());
                s[12] = ((l4h / 4) as u8) << 4;
                s[13] = self.flags;
                s[14..16].copy_from_slice(&64240u16.to_be_bytes());
                s[20..l4h].copy_from_slice(self.tcp_opts);
                s[l4h..].copy_from_slice(self.payload);
                let c = checksum::l4_checksum(&self.src, &self.dst, proto::TCP, s);
                s[16..18].copy_from_slice(&c.to_be_bytes());
            }
            proto::UDP => {
                s[0..2].copy_from_slice(&self.sport.to_be_bytes());
                s[2..4].copy_from_slice(&self.dport.to_be_bytes());
                s[4..6].copy_from_slice(&(seg_len as u16).to_be_bytes());
                s[8..].copy_from_slice(self.payload);
                let c =
                    checksum::udp_fix(checksum::l4_checksum(&self.src, &self.dst, proto::UDP, s));
                s[6..8].copy_from_slice(&c.to_be_bytes());
            }
            _ => {
                s[0..2].copy_from_slice(&self.dport.to_be_bytes());
                s[4..6].copy_from_slice(&self.sport.to_be_bytes());
                s[6..8].copy_from_slice(&1u16.to_be_bytes());
                s[8..].copy_from_slice(self.payload);
                let c = if v6 {
                    checksum::l4_checksum(&self.src, &self.dst, proto::ICMPV6, s)
                } else {
                    checksum::finish(checksum::sum(s))
                };
                s[2..4].copy_from_slice(&c.to_be_bytes());
            }
        }
        total
    }

    /// Builds the frame into a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; 14 + 40 + 60 + self.payload.len()];
        let n = self.build(&mut v);
        v.truncate(n);
        v
    }
}

/// xorshift64*: a small deterministic generator for tests, fuzzing seeds
/// and benchmarks (reproducible inputs without a dependency; not for keys).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The high 32 bits of [`Rng::next`].
    pub fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An index below `n` (`n > 0`).
    pub fn index(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A coin toss.
    pub fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

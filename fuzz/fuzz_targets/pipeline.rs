//! Whole frames through a worker configured with every forwarding mode.
//!
//! Each input is a sequence of records run against a fresh worker (so a crash
//! reproduces from its input alone). A record is either a raw frame or a
//! structured one built with valid checksums (so the fuzzer reaches connection
//! handling past checksum verification) and then optionally corrupted. Besides
//! "never panics", it checks that a transmitted frame stays inside its buffer
//! and that a structured frame with valid checksums comes out with valid ones.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rvs_core::addr::{proto, Addr};
use rvs_core::conn::FwdMode;
use rvs_core::lab::{self, DestSpec, FrameSpec};
use rvs_core::pipeline::{Packet, Verdict, Worker, WorkerConf};
use rvs_core::sched::SchedKind;
use rvs_core::service::{Match, ServiceKey};
use rvs_core::wire::checksum;

fn snapshot() -> rvs_core::snapshot::Snapshot {
    let rs = |mode| [DestSpec::new(lab::rs_ip(0), 80, mode), DestSpec::new(lab::rs_ip(1), 8080, mode)];
    let lip = [(lab::LIP, lab::LAN)];
    let vs = |p, port| ServiceKey::Vs { proto: p, vip: lab::VIP, vport: port };
    let ports = |d: &str| match d {
        "dpdk0" => Some(0),
        "dpdk1" => Some(1),
        _ => None,
    };
    let wan = [DestSpec::new(lab::WAN_IP, 0, FwdMode::Snat)];
    let services = vec![
        lab::service(1, vs(proto::TCP, 80), SchedKind::Rr, &rs(FwdMode::Fnat), &lip, 0, 1),
        lab::service(2, vs(proto::UDP, 53), SchedKind::Wrr, &rs(FwdMode::Fnat), &lip, 0, 1),
        lab::service(3, vs(proto::TCP, 81), SchedKind::Mh, &rs(FwdMode::Dr), &[], 0, 1),
        lab::service(4, vs(proto::TCP, 82), SchedKind::Sh, &rs(FwdMode::Tunnel), &[], 0, 1),
        lab::service(5, vs(proto::TCP, 83), SchedKind::Wlc, &rs(FwdMode::Nat), &[], 0, 1),
        lab::service(6, vs(proto::TCP, 84), SchedKind::Conhash, &rs(FwdMode::Fnat), &lip, 5_000, 1),
        {
            let mut s = lab::service(9, vs(proto::TCP, 85), SchedKind::Rr, &rs(FwdMode::Fnat), &lip, 0, 1);
            Arc::get_mut(&mut s).expect("new service").synproxy = true;
            s
        },
        lab::service(
            7,
            ServiceKey::Match(Match::parse("proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1", ports).unwrap()),
            SchedKind::Rr,
            &wan,
            &[],
            0,
            1,
        ),
        lab::service(
            8,
            ServiceKey::Match(Match::parse("proto=icmp,src-range=192.168.100.0-192.168.100.254", ports).unwrap()),
            SchedKind::Rr,
            &wan,
            &[],
            0,
            1,
        ),
    ];
    // A narrow local port range: pools are built per worker, and 64 ports
    // exercise exhaustion too.
    let conf = rvs_core::snapshot::PipelineConf { min_lport: 1024, max_lport: 1087, ..Default::default() };
    let neigh = (0..2).map(|i| (lab::rs_ip(i), lab::rs_mac(i), lab::LAN)).collect();
    rvs_core::snapshot::Snapshot::new(
        1,
        1,
        lab::ports(),
        lab::addrs(),
        lab::routes(),
        services,
        neigh,
        Default::default(),
        conf,
    )
}

const HEAD: usize = 64;
const BUF: usize = 2048;

fn structured(r: &[u8], out: &mut [u8]) -> (usize, u16) {
    let payload = [0x5au8; 64];
    let proto_ = [proto::TCP, proto::UDP, proto::ICMP][r[1] as usize % 3];
    let sport = u16::from_be_bytes([r[3], r[4]]);
    let dport = [80u16, 53, 81, 82, 83, 84, 85, u16::from(r[2])][r[2] as usize % 8];
    let plen = r[6] as usize % 65;
    let client = Addr::v4(10, 0, 0, 2 + r[7] % 8);
    let (mut spec, port) = match r[0] % 4 {
        0 => (FrameSpec::tcp(client, sport, lab::VIP, dport, r[5]), lab::WAN),
        1 => {
            // From a real server to the local address (return traffic), or to a NAT client.
            let dst = if r[7] & 0x80 != 0 { client } else { lab::LIP };
            let s = FrameSpec::tcp(lab::rs_ip(r[7] % 2), dport, dst, sport, r[5]);
            (FrameSpec { src_mac: lab::rs_mac(r[7] % 2), dst_mac: lab::LAN_MAC, ..s }, lab::LAN)
        }
        2 => {
            // A LAN host going out through SNAT.
            let host = Addr::v4(192, 168, 100, 50 + r[7] % 4);
            let s = FrameSpec::tcp(host, sport, Addr::v4(10, 0, 9, 9), dport, r[5]);
            (FrameSpec { src_mac: lab::rs_mac(0), dst_mac: lab::LAN_MAC, ..s }, lab::LAN)
        }
        _ => (FrameSpec::tcp(Addr::v4(10, 0, 9, 9), dport, lab::WAN_IP, sport, r[5]), lab::WAN),
    };
    spec.proto = proto_;
    if proto_ == proto::ICMP {
        spec = FrameSpec { dport: if r[5] & 1 == 0 { 8 << 8 } else { (3 << 8) | 3 }, ..spec };
    }
    spec.payload = &payload[..plen];
    spec.ttl = if r[5] & 0x40 != 0 { 1 } else { 64 };
    (spec.build(out), port)
}

fn checksums_ok(f: &[u8]) -> bool {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return true;
    }
    let ihl = (f[14] & 0xf) as usize * 4;
    let total = u16::from_be_bytes([f[16], f[17]]) as usize;
    if 14 + total > f.len() || ihl < 20 || ihl > total {
        return false;
    }
    if checksum::fold(checksum::sum(&f[14..14 + ihl])) != 0xffff {
        return false;
    }
    let src = Addr::from_v4_bytes([f[26], f[27], f[28], f[29]]);
    let dst = Addr::from_v4_bytes([f[30], f[31], f[32], f[33]]);
    let seg = &f[14 + ihl..14 + total];
    match f[23] {
        proto::TCP | proto::UDP => checksum::verify_l4(&src, &dst, f[23], seg),
        proto::ICMP => checksum::fold(checksum::sum(seg)) == 0xffff,
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    // Built once: a Maglev table per run would dominate the run time.
    static SNAP: OnceLock<Arc<rvs_core::snapshot::Snapshot>> = OnceLock::new();
    let snap = SNAP.get_or_init(|| Arc::new(snapshot())).clone();
    let conf = WorkerConf { conn_capacity: 16, neigh_capacity: 16, pending_frames: 4, hash_seed: Some(1), ..WorkerConf::default() };
    let mut w = Worker::new(conf, snap, 0);
    let mut buf = vec![0u8; BUF];
    let mut now = 0u64;
    let mut rest = data;
    while let Some((&tag, tail)) = rest.split_first() {
        let (len, port, valid) = if tag & 1 == 1 {
            let Some(r) = tail.get(..10) else { break };
            rest = &tail[10..];
            let (n, port) = structured(r, &mut buf[HEAD..]);
            // Optional corruption of one byte.
            if r[8] != 0 {
                let i = HEAD + r[8] as usize % n;
                buf[i] ^= r[9] | 1;
            }
            (n, port, r[8] == 0)
        } else {
            let n = (tag >> 1) as usize + tail.first().map_or(0, |b| *b as usize);
            let Some(frame) = tail.get(1..1 + n.min(tail.len().saturating_sub(1))) else { break };
            rest = &tail[1 + frame.len()..];
            buf[HEAD..HEAD + frame.len()].copy_from_slice(frame);
            (frame.len(), u16::from(tag >> 7), false)
        };
        let mut p = Packet { buf: &mut buf, head: HEAD, len, port, csum_ok: tag & 2 != 0 };
        let v = w.process(&mut p, now);
        if let Verdict::Transmit(_) = v {
            assert!(p.head + p.len <= BUF, "transmitted frame outside its buffer");
            if valid && tag & 2 == 0 {
                assert!(checksums_ok(p.frame()), "valid frame came out with a bad checksum: {:02x?}", p.frame());
            }
        }
        w.outbox().drain(|_, f| assert!(f.len() <= BUF));
        now += u64::from(tag >> 4) * 700;
        w.tick(now);
    }
});

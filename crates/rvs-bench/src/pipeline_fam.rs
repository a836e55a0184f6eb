//! `rvs-bench pipeline --families`: the hot path of the address families
//! and of a bond's egress, side by side in one process. Cases:
//!
//! - `fnat4`: IPv4 VIP, IPv4 local addresses and real servers (the main
//!   benchmark's `fnat_in`/`fnat_out` on fewer connections);
//! - `fnat6`: the same in IPv6 (IPv6 VIP, LIPs and real servers);
//! - `nat64`: an IPv6 VIP with IPv4 LIPs and real servers (RFC 7915
//!   translation each way);
//! - `fnat4_bond`: `fnat4`, each forwarded frame then given a slave the way
//!   rvsd's `bond::Egress` does for a mode-4 bond port (one relaxed load of
//!   the distributing mask, the layer3+4 transmit hash, modulo the two
//!   slaves), and each received burst scanned for Slow Protocols frames as
//!   `Egress::rx` does on a slave.
//!
//! Every case has its own worker with the same number of established
//! connections; they take turns in rounds (the order rotates every round),
//! so a noisy machine slows all of them alike and the ratios to `fnat4`
//! survive it. Reported: ns per packet by the clock and on the CPU (the
//! scheduler's account: time other tasks took the core left out), min /
//! median / max over the rounds, and the on-CPU ratio to `fnat4` turn by turn,
//! per direction (`in`: client to real server, `out`: back).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use rvs_core::addr::{proto, Addr, Mac};
use rvs_core::bond::{xmit_hash, XmitHash};
use rvs_core::conn::tcp::Timeouts;
use rvs_core::conn::FwdMode;
use rvs_core::lab::{self, DestSpec, FrameSpec};
use rvs_core::pipeline::{Packet, Verdict, Worker, WorkerConf};
use rvs_core::route::{Route, Scope};
use rvs_core::sched::SchedKind;
use rvs_core::service::ServiceKey;
use rvs_core::snapshot::{IfAddr, PipelineConf, Snapshot};
use rvs_core::wire::tcp::flags::{ACK, PSH, SYN};

use crate::pipeline::{BUF, BURST, HEAD};
use crate::pipeline_drive::thread_run_ns;

/// Room per stored frame (an IPv6 TCP frame with payload is 84 bytes).
const STRIDE: usize = 128;
const PAYLOAD: [u8; 10] = *b"0123456789";
const RS: u8 = 8;
const GW4: Addr = Addr::v4(10, 0, 0, 254);
const GW_MAC: Mac = lab::CLIENT_MAC;
/// Ethertype of the Slow Protocols (LACP), what a slave's receive filter looks for.
const SLOW_PROTOCOLS: u16 = 0x8809;

fn a6(s: &str) -> Addr {
    s.parse().expect("bench address")
}

/// Frames of one direction, `STRIDE` bytes apart.
struct Set {
    data: Vec<u8>,
    lens: Vec<u16>,
    port: u16,
}

impl Set {
    fn new(port: u16, cap: usize) -> Set {
        Set {
            data: Vec::with_capacity(cap * STRIDE),
            lens: Vec::with_capacity(cap),
            port,
        }
    }
    fn push(&mut self, f: &[u8]) {
        let mut slot = [0u8; STRIDE];
        slot[..f.len()].copy_from_slice(f);
        self.data.extend_from_slice(&slot);
        self.lens.push(f.len() as u16);
    }
}

/// The three families' cases.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fam {
    Fnat4,
    Fnat6,
    Nat64,
}

impl Fam {
    fn vip(self) -> Addr {
        match self {
            Fam::Fnat4 => lab::VIP,
            _ => a6("2001:db8::100"),
        }
    }
    fn client(self, i: usize) -> (Addr, u16) {
        let (c, p) = crate::pipeline::client(i);
        match self {
            Fam::Fnat4 => (c, p),
            _ => {
                let mut b = a6("2001:db8:ffff::").0;
                b[12..16].copy_from_slice(&c.0[12..16]);
                (Addr(b), p)
            }
        }
    }
    fn rs(self, i: u8) -> (Addr, Mac) {
        match self {
            Fam::Fnat6 => {
                let mut b = a6("fd00::10").0;
                b[15] += i;
                (Addr(b), lab::rs_mac(i))
            }
            _ => (lab::rs_ip(i), lab::rs_mac(i)),
        }
    }
    fn lips(self, n: usize) -> Vec<Addr> {
        (0..n / 60_000 + 2)
            .map(|k| match self {
                Fam::Fnat6 => {
                    let mut b = a6("fd00::1:0").0;
                    b[15] = k as u8 + 1;
                    Addr(b)
                }
                _ => Addr::v4(192, 168, 101, k as u8 + 1),
            })
            .collect()
    }
}

fn link(prefix: Addr, plen: u8, gateway: Option<Addr>, port: u16) -> Route {
    Route {
        prefix,
        plen,
        gateway,
        port,
        scope: if gateway.is_some() {
            Scope::Global
        } else {
            Scope::Link
        },
        src: None,
        mtu: 1500,
        metric: 0,
    }
}

fn snapshot(fam: Fam, n: usize) -> Snapshot {
    let mut routes = lab::routes();
    let gw6 = a6("2001:db8::fe");
    let _ = routes.add(link(Addr::v4(0, 0, 0, 0), 0, Some(GW4), lab::WAN));
    let _ = routes.add(link(Addr::v4(192, 168, 96, 0), 20, None, lab::LAN));
    let _ = routes.add(link(a6("2001:db8::"), 64, None, lab::WAN));
    let _ = routes.add(link(a6("::"), 0, Some(gw6), lab::WAN));
    let _ = routes.add(link(a6("fd00::"), 64, None, lab::LAN));
    let dests: Vec<DestSpec> = (0..RS)
        .map(|i| DestSpec::new(fam.rs(i).0, 80, FwdMode::Fnat))
        .collect();
    let lips: Vec<_> = fam.lips(n).into_iter().map(|a| (a, lab::LAN)).collect();
    let svc = lab::service(
        1,
        ServiceKey::Vs {
            proto: proto::TCP,
            vip: fam.vip(),
            vport: 80,
        },
        SchedKind::Rr,
        &dests,
        &lips,
        0,
        1,
    );
    let mut addrs = lab::addrs();
    addrs.push(IfAddr {
        addr: a6("2001:db8::100"),
        plen: 128,
        port: lab::WAN,
        sapool: false,
    });
    let mut neigh: Vec<_> = (0..RS)
        .map(|i| {
            let (a, m) = fam.rs(i);
            (a, m, lab::LAN)
        })
        .collect();
    neigh.push((GW4, GW_MAC, lab::WAN));
    neigh.push((gw6, GW_MAC, lab::WAN));
    Snapshot::new(
        1,
        1,
        lab::ports(),
        addrs,
        routes,
        vec![svc],
        neigh,
        Timeouts::default(),
        PipelineConf::default(),
    )
}

/// Source and destination (address, port) of a TCP frame of either family.
fn tuple(f: &[u8]) -> (Addr, u16, Addr, u16) {
    let port = |o: usize| u16::from_be_bytes([f[o], f[o + 1]]);
    if f[12..14] == [0x86, 0xdd] {
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s.copy_from_slice(&f[22..38]);
        d.copy_from_slice(&f[38..54]);
        (Addr(s), port(54), Addr(d), port(56))
    } else {
        let ip = |o: usize| Addr::from_v4_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]]);
        let l4 = 14 + (f[14] & 0xf) as usize * 4;
        (ip(26), port(l4), ip(30), port(l4 + 2))
    }
}

/// One case: a worker with `n` connections and both directions' frames.
struct Lane {
    name: &'static str,
    w: Worker,
    ins: Set,
    outs: Set,
    bond: bool,
    next: [usize; 2],
    /// Wall-clock ns per packet, by direction and turn.
    ns: [Vec<f64>; 2],
    /// On-CPU ns per packet (time other tasks took the core left out).
    cpu: [Vec<f64>; 2],
}

fn build(name: &'static str, fam: Fam, n: usize, bond: bool) -> Result<Lane, String> {
    let conf = WorkerConf {
        conn_capacity: n,
        table_mem: crate::pipeline::table_mem(),
        prefetch: crate::pipeline::prefetch(),
        hash_seed: Some(11),
        ..WorkerConf::default()
    };
    let mut w = Worker::new(conf, Arc::new(snapshot(fam, n)), 0);
    let mut ins = Set::new(lab::WAN, n);
    let mut outs = Set::new(lab::LAN, n);
    let mut buf = vec![0u8; BUF];
    for i in 0..n {
        let (c, cp) = fam.client(i);
        let syn = FrameSpec::tcp(c, cp, fam.vip(), 80, SYN).to_vec();
        buf[HEAD..HEAD + syn.len()].copy_from_slice(&syn);
        let mut p = Packet {
            buf: &mut buf,
            head: HEAD,
            len: syn.len(),
            port: lab::WAN,
            csum_ok: false,
        };
        if !matches!(w.process(&mut p, 1), Verdict::Transmit(_)) {
            return Err(format!(
                "{name}: SYN {i} did not make a connection (drops: {:?})",
                w.drops().nonzero()
            ));
        }
        let (ls, lp, rd, rp) = tuple(p.frame());
        let data = FrameSpec {
            payload: &PAYLOAD,
            ..FrameSpec::tcp(c, cp, fam.vip(), 80, ACK | PSH)
        };
        ins.push(&data.to_vec());
        let back = FrameSpec {
            payload: &PAYLOAD,
            src_mac: lab::rs_mac(0),
            dst_mac: lab::LAN_MAC,
            ..FrameSpec::tcp(rd, rp, ls, lp, ACK | PSH)
        };
        outs.push(&back.to_vec());
    }
    Ok(Lane {
        name,
        w,
        ins,
        outs,
        bond,
        next: [0, 0],
        ns: [Vec::new(), Vec::new()],
        cpu: [Vec::new(), Vec::new()],
    })
}

/// What a mode-4 bond's egress and slave receive filter do per frame.
struct BondSim {
    distributing: AtomicU32,
    collecting: AtomicU32,
}

/// Forwards `packets` frames of direction `dir` (0 in, 1 out); ns per
/// packet by the clock and on the CPU.
fn chunk(
    lane: &mut Lane,
    dir: usize,
    packets: usize,
    store: &mut [u8],
    bond: &BondSim,
) -> Result<(f64, f64), String> {
    let mut verdicts = [Verdict::Consumed; BURST];
    let set = if dir == 0 { &lane.ins } else { &lane.outs };
    let n = set.lens.len();
    let mut idx = lane.next[dir];
    let mut slaves = 0usize;
    let run0 = thread_run_ns();
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < packets {
        let m = BURST.min(packets - sent);
        let mut chunks = store.chunks_mut(BUF);
        let mut pkts: [Packet<'_>; BURST] = std::array::from_fn(|_| Packet {
            buf: chunks.next().unwrap_or_default(),
            head: HEAD,
            len: 0,
            port: set.port,
            csum_ok: false,
        });
        for p in pkts.iter_mut().take(m) {
            let len = usize::from(set.lens[idx]);
            p.buf[HEAD..HEAD + len].copy_from_slice(&set.data[idx * STRIDE..idx * STRIDE + len]);
            p.len = len;
            idx = if idx + 1 == n { 0 } else { idx + 1 };
        }
        let mut keep = m;
        if lane.bond {
            // Egress::rx on a mode-4 slave: the ethertype of every frame,
            // then the collecting mask.
            keep = pkts[..m]
                .iter()
                .filter(|p| {
                    let f = p.frame();
                    u16::from_be_bytes([f[12], f[13]]) != SLOW_PROTOCOLS
                })
                .count();
            if bond.collecting.load(Relaxed) & 1 == 0 {
                keep = 0;
            }
        }
        lane.w
            .process_burst(&mut pkts[..keep], &mut verdicts[..keep], 2);
        for (p, v) in pkts.iter().zip(verdicts[..keep].iter()) {
            if !matches!(v, Verdict::Transmit(_)) {
                return Err(format!("{}: a frame got {v:?}", lane.name));
            }
            if lane.bond {
                // Egress::slave_for: the mask, the hash, the slot.
                let mask = bond.distributing.load(Relaxed);
                let k =
                    xmit_hash(p.frame(), XmitHash::Layer34) as usize % mask.count_ones() as usize;
                slaves += k;
            }
        }
        sent += m;
    }
    let secs = t0.elapsed().as_secs_f64();
    let ran = match (run0, thread_run_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9,
        _ => secs,
    };
    std::hint::black_box(slaves);
    lane.next[dir] = idx;
    Ok((secs * 1e9 / packets as f64, ran * 1e9 / packets as f64))
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    (s[0], s[s.len() / 2], s[s.len() - 1])
}

/// Runs the cases with `n` connections each, `rounds` turns of `packets`
/// packets per case and direction; returns the figures to print.
pub fn run(n: usize, rounds: usize, packets: usize) -> Result<Vec<(String, String)>, String> {
    let mut lanes = vec![
        build("fnat4", Fam::Fnat4, n, false)?,
        build("fnat4_bond", Fam::Fnat4, n, true)?,
        build("fnat6", Fam::Fnat6, n, false)?,
        build("nat64", Fam::Nat64, n, false)?,
    ];
    let bond = BondSim {
        distributing: AtomicU32::new(0b11),
        collecting: AtomicU32::new(0b11),
    };
    let mut store = vec![0u8; BURST * BUF];
    // Warm-up: every connection's first data segment (TOA) once.
    for l in lanes.iter_mut() {
        chunk(l, 0, n, &mut store, &bond)?;
        chunk(l, 1, n, &mut store, &bond)?;
    }
    let k = lanes.len();
    for r in 0..rounds {
        for j in 0..k {
            let l = &mut lanes[(r + j) % k];
            for dir in 0..2 {
                let (ns, cpu) = chunk(l, dir, packets, &mut store, &bond)?;
                l.ns[dir].push(ns);
                l.cpu[dir].push(cpu);
            }
        }
    }
    let mut out = Vec::new();
    let base = lanes[0].cpu.clone();
    let mmm = |v: &[f64], p: usize| {
        let (lo, med, hi) = stats(v);
        format!("\"{lo:.p$} / {med:.p$} / {hi:.p$}\"")
    };
    for l in &lanes {
        for (dir, d) in ["in", "out"].iter().enumerate() {
            out.push((format!("{}_{d}_ns", l.name), mmm(&l.ns[dir], 1)));
            out.push((format!("{}_{d}_ns_on_cpu", l.name), mmm(&l.cpu[dir], 1)));
            // On-CPU ratio to fnat4 turn by turn (the same round), then
            // min / median / max of those.
            let ratios: Vec<f64> = l.cpu[dir]
                .iter()
                .zip(base[dir].iter())
                .map(|(x, b)| x / b)
                .collect();
            out.push((format!("{}_{d}_over_fnat4", l.name), mmm(&ratios, 3)));
        }
    }
    out.push(("conns".into(), n.to_string()));
    out.push(("rounds".into(), rounds.to_string()));
    out.push(("packets_per_turn".into(), packets.to_string()));
    Ok(out)
}

//! `rvs-bench pipeline --ab-table`: the conn table's memory (`fnat_in` with
//! 1,000,000 connections on the heap and on transparent huge pages, against
//! 1,000 in cache) and expiry's prefetch (`fnat_churn_cps` with and without),
//! compared side by side in one process. Every variant has its own worker;
//! they take turns (the order rotates every round), so a noisy neighbour
//! slows all of them alike and the ratios survive it.

use rvs_core::conn::FwdMode;
use rvs_core::pipeline::{Packet, Verdict, Worker};
use rvs_io::mem::{HugeMode, HUGE_PAGES};
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::pipeline::{setup, Frames, SyncBench, BUF, BURST, HEAD, NO_PREFETCH};

/// One contender: a name, the tables' memory and whether misses are prefetched.
struct Variant {
    name: &'static str,
    mode: HugeMode,
    prefetch: bool,
    conns: usize,
}

const VARIANTS: [Variant; 3] = [
    Variant {
        name: "heap",
        mode: HugeMode::Off,
        prefetch: true,
        conns: 0,
    },
    Variant {
        name: "thp",
        mode: HugeMode::Transparent,
        prefetch: true,
        conns: 0,
    },
    Variant {
        name: "in_cache_1k",
        mode: HugeMode::Transparent,
        prefetch: true,
        conns: 1000,
    },
];

/// A variant's worker, its frames and where in them it goes on.
struct Lane {
    w: Worker,
    ins: Frames,
    next: usize,
    ns: Vec<f64>,
}

/// Forwards `packets` frames from `lane.next` on; returns ns per packet.
fn chunk(lane: &mut Lane, packets: usize, store: &mut [u8]) -> Result<f64, String> {
    let mut verdicts = [Verdict::Consumed; BURST];
    let n = lane.ins.len();
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < packets {
        let m = BURST.min(packets - sent);
        let mut bufs = store.chunks_mut(BUF);
        let mut pkts: [Packet<'_>; BURST] = std::array::from_fn(|_| Packet {
            buf: bufs.next().unwrap_or_default(),
            head: HEAD,
            len: 0,
            port: lane.ins.port,
            csum_ok: false,
        });
        for p in pkts.iter_mut().take(m) {
            let f = lane.ins.frame(lane.next);
            p.buf[HEAD..HEAD + f.len()].copy_from_slice(f);
            p.len = f.len();
            lane.next = (lane.next + 1) % n;
        }
        lane.w.process_burst(&mut pkts[..m], &mut verdicts[..m], 10);
        if let Some(v) = verdicts[..m]
            .iter()
            .find(|v| !matches!(v, Verdict::Transmit(_)))
        {
            return Err(format!("ab-table: a data frame got {v:?}"));
        }
        sent += m;
    }
    Ok(t0.elapsed().as_secs_f64() * 1e9 / packets as f64)
}

fn lane(v: &Variant, n: usize) -> Result<Lane, String> {
    HUGE_PAGES.set_mode(v.mode);
    NO_PREFETCH.store(!v.prefetch, Ordering::Relaxed);
    let conns = if v.conns == 0 { n } else { v.conns };
    let (w, _, ins, _) = setup(FwdMode::Fnat, conns, SyncBench::Off, false, &None)?;
    let mut l = Lane {
        w,
        ins,
        next: 0,
        ns: Vec::new(),
    };
    let mut store = vec![0u8; BURST * BUF];
    // The first data segment of each connection carries TOA: not measured.
    chunk(&mut l, conns, &mut store)?;
    Ok(l)
}

fn stats(ns: &mut [f64]) -> (f64, f64, f64) {
    ns.sort_by(f64::total_cmp);
    (ns[0], ns[ns.len() / 2], ns[ns.len() - 1])
}

/// Runs the comparison: `rounds` turns of `packets` frames per variant.
pub(crate) fn run(
    n: usize,
    rounds: usize,
    packets: usize,
) -> Result<Vec<(String, String)>, String> {
    let mut lanes = VARIANTS
        .iter()
        .map(|v| lane(v, n))
        .collect::<Result<Vec<_>, _>>()?;
    HUGE_PAGES.set_mode(HugeMode::Auto);
    NO_PREFETCH.store(false, Ordering::Relaxed);
    let mut store = vec![0u8; BURST * BUF];
    for r in 0..rounds.max(1) {
        for i in 0..lanes.len() {
            let k = (i + r) % lanes.len();
            let ns = chunk(&mut lanes[k], packets, &mut store)?;
            lanes[k].ns.push(ns);
        }
    }
    let mut out = Vec::new();
    let mut medians = Vec::new();
    for (v, l) in VARIANTS.iter().zip(lanes.iter_mut()) {
        let (lo, med, hi) = stats(&mut l.ns);
        medians.push(med);
        out.push((format!("ab_{}_ns_per_pkt", v.name), format!("{med:.1}")));
        out.push((
            format!("ab_{}_ns_min_max", v.name),
            format!("\"{lo:.1}-{hi:.1}\""),
        ));
        out.push((format!("ab_{}_mpps", v.name), format!("{:.2}", 1e3 / med)));
    }
    let cache = medians[medians.len() - 1];
    for (v, m) in VARIANTS.iter().zip(&medians).take(VARIANTS.len() - 1) {
        out.push((
            format!("ab_{}_over_1k", v.name),
            format!("{:.2}", cache / m),
        ));
    }
    out.extend(churn(n, rounds)?);
    out.push(("ab_conns".into(), n.to_string()));
    out.push(("ab_rounds".into(), rounds.to_string()));
    out.push(("ab_packets_per_turn".into(), packets.to_string()));
    Ok(out)
}

/// `fnat_churn_cps` with and without prefetch (huge pages both), taking turns.
fn churn(n: usize, rounds: usize) -> Result<Vec<(String, String)>, String> {
    let turn = 65_536;
    let measured = turn * rounds.max(1);
    let mut lanes = Vec::new();
    for pf in [false, true] {
        HUGE_PAGES.set_mode(HugeMode::Transparent);
        NO_PREFETCH.store(!pf, Ordering::Relaxed);
        lanes.push((
            pf,
            crate::pipeline_churn::Lane::new(n, measured),
            Vec::new(),
        ));
    }
    HUGE_PAGES.set_mode(HugeMode::Auto);
    NO_PREFETCH.store(false, Ordering::Relaxed);
    for r in 0..rounds.max(1) {
        for i in 0..lanes.len() {
            let (_, lane, cps) = &mut lanes[(i + r) % 2];
            let t0 = Instant::now();
            let (made, refused) = lane.step(turn);
            if refused > 0 {
                return Err(format!(
                    "ab-table churn: {refused} SYNs refused in steady state"
                ));
            }
            cps.push(made as f64 / t0.elapsed().as_secs_f64());
        }
    }
    let mut out = Vec::new();
    for (pf, _, cps) in &mut lanes {
        let (lo, med, hi) = stats(cps);
        let name = if *pf { "thp_prefetch" } else { "thp_loads" };
        out.push((format!("ab_churn_{name}_cps"), format!("{med:.0}")));
        out.push((
            format!("ab_churn_{name}_min_max"),
            format!("\"{lo:.0}-{hi:.0}\""),
        ));
    }
    Ok(out)
}

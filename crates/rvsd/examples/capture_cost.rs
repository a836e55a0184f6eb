//! What `rvsadm --capture` costs a worker: ns per packet of the real
//! pipeline (`Worker::process_burst`, FNAT, established connections) in
//! bursts of 32, with the capture off (the loop's one branch per burst),
//! on with a filter that matches nothing (every received frame is still
//! copied and parsed), and on with one that matches everything (both frames
//! of every packet go into the ring; the slots are recycled in the same
//! loop, so the control thread's own work is not counted). The three run
//! interleaved, `--rounds` times.
//!
//! `cargo run --release -p rvsd --example capture_cost -- [ROUNDS] [PACKETS] [CPU]`

use std::sync::Arc;
use std::time::Instant;

use rvs_api::{CaptureSpec, Proto};
use rvs_core::addr::Addr;
use rvs_core::lab::{self, FrameSpec};
use rvs_core::pipeline::{Packet, Verdict, Worker, WorkerConf};
use rvs_core::wire::tcp::flags::{ACK, SYN};
use rvsd::capture::{ring, DrainSide, Filter, WorkerCapture, RING_SLOTS};

const BURST: usize = 32;
const FLOWS: usize = 4096;
const HEAD: usize = 128;
const BUF: usize = 2048;

fn frames(flags: u8) -> Vec<Vec<u8>> {
    (0..FLOWS)
        .map(|i| {
            let cip = Addr::v4(10, 1, (i >> 8) as u8, i as u8);
            FrameSpec::tcp(cip, 10_000 + i as u16, lab::VIP, 80, flags).to_vec()
        })
        .collect()
}

/// Runs `packets` packets of `data`; returns ns per packet.
fn run(
    w: &mut Worker,
    data: &[Vec<u8>],
    packets: usize,
    cap: &mut Option<(WorkerCapture, DrainSide)>,
) -> f64 {
    let mut store = vec![0u8; BURST * BUF];
    let mut verdicts = [Verdict::Consumed; BURST];
    let t0 = Instant::now();
    let mut done = 0;
    let mut sent = 0;
    while done < packets {
        let mut chunks = store.chunks_mut(BUF);
        let mut pkts: [Packet<'_>; BURST] = std::array::from_fn(|k| {
            let buf = chunks.next().unwrap_or_default();
            let f = &data[(done + k) % data.len()];
            buf[HEAD..HEAD + f.len()].copy_from_slice(f);
            Packet {
                buf,
                head: HEAD,
                len: f.len(),
                port: lab::WAN,
                csum_ok: false,
            }
        });
        if let Some((c, _)) = cap.as_mut() {
            c.before(&pkts);
        }
        w.process_burst(&mut pkts, &mut verdicts, 1);
        if let Some((c, d)) = cap.as_mut() {
            c.after(&pkts, &verdicts, 1);
            while let Ok(s) = d.full.try_recv() {
                let _ = d.free.try_send(s);
            }
        }
        sent += verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Transmit(_)))
            .count();
        done += BURST;
    }
    let ns = t0.elapsed().as_nanos() as f64 / done as f64;
    assert_eq!(
        sent,
        done,
        "every packet is forwarded (drops: {:?})",
        w.drops().nonzero()
    );
    ns
}

fn capture(vip_port: u16) -> Option<(WorkerCapture, DrainSide)> {
    let spec = CaptureSpec {
        service: Some((Proto::Tcp, lab::VIP.to_ip(), vip_port)),
        ..CaptureSpec::default()
    };
    Some(ring(Filter::new(&spec).ok()?, &spec, RING_SLOTS))
}

fn stats(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "min {:.1}  median {:.1}  max {:.1}",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1]
    )
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = args.first().copied().unwrap_or(7);
    let packets = args.get(1).copied().unwrap_or(2_000_000);
    if let Some(cpu) = args.get(2) {
        let _ = rvs_io::iface::pin_thread(*cpu);
    }
    let conf = WorkerConf {
        conn_capacity: 1 << 16,
        ..Default::default()
    };
    let mut w = Worker::new(conf, Arc::new(lab::tutorial_fnat(1)), 0);
    // Resolve the real servers, then open the connections.
    for rs in 0..2 {
        w.learn_neigh(lab::rs_ip(rs), lab::rs_mac(rs), lab::LAN, 0);
    }
    run(&mut w, &frames(SYN), FLOWS, &mut None);
    let data = frames(ACK);
    let names = ["off", "on, no match", "on, every packet"];
    let mut res: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for _ in 0..rounds {
        for (m, r) in res.iter_mut().enumerate() {
            let mut cap = match m {
                0 => None,
                1 => capture(81),
                _ => capture(80),
            };
            r.push(run(&mut w, &data, packets, &mut cap));
        }
    }
    println!("capture_cost: {rounds} rounds x {packets} packets, ns/packet (bursts of {BURST}, {FLOWS} flows)");
    for (n, r) in names.iter().zip(res.iter_mut()) {
        println!("  {n:<18} {}", stats(r));
    }
}

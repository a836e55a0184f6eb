//! Driving frames through a worker: one burst at a time from a set of
//! frames that goes round, with or without the transmit copy, and the
//! in-memory L2 forwarding reference.

use std::time::Instant;

use rvs_core::pipeline::{Packet, Verdict, Worker};

use crate::pipeline::{Frames, BUF, BURST, FRAME, HEAD};
use crate::pipeline_tx::TxRing;

/// A receive buffer and verdicts for one burst, reused burst after burst.
pub(crate) struct BurstBufs {
    store: Vec<u8>,
    verdicts: [Verdict; BURST],
}

impl BurstBufs {
    pub(crate) fn new() -> BurstBufs {
        BurstBufs {
            store: vec![0u8; BURST * BUF],
            verdicts: [Verdict::Consumed; BURST],
        }
    }
}

/// Runs one burst of `m` frames from `frames`, from frame `*idx` on (wrapping
/// round), through `w` at clock `now`; with `tx`, each forwarded frame is then
/// copied into the ring as rvsd does. Returns (forwarded, first other verdict).
#[allow(clippy::too_many_arguments)]
pub(crate) fn burst(
    w: &mut Worker,
    frames: &Frames,
    idx: &mut usize,
    m: usize,
    bufs: &mut BurstBufs,
    now: u64,
    tx: Option<&mut TxRing>,
) -> (usize, Option<Verdict>) {
    let n = frames.len();
    let mut chunks = bufs.store.chunks_mut(BUF);
    let mut pkts: [Packet<'_>; BURST] = std::array::from_fn(|_| Packet {
        buf: chunks.next().unwrap_or_default(),
        head: HEAD,
        len: 0,
        port: frames.port,
        csum_ok: false,
    });
    for p in pkts.iter_mut().take(m) {
        let i = *idx;
        let len = frames.lens[i] as usize;
        p.buf[HEAD..HEAD + len].copy_from_slice(&frames.data[i * FRAME..i * FRAME + len]);
        p.len = len;
        *idx = if i + 1 == n { 0 } else { i + 1 };
    }
    let verdicts = &mut bufs.verdicts[..m];
    w.process_burst(&mut pkts[..m], verdicts, now);
    let (mut fwd, mut bad) = (0, None);
    match tx {
        Some(tx) => {
            for (p, v) in pkts.iter().zip(verdicts.iter()) {
                if matches!(v, Verdict::Transmit(_)) && tx.send(p.frame()) {
                    fwd += 1;
                } else if bad.is_none() {
                    bad = Some(*v);
                }
            }
        }
        None => {
            for v in verdicts.iter() {
                if matches!(v, Verdict::Transmit(_)) {
                    fwd += 1;
                } else if bad.is_none() {
                    bad = Some(*v);
                }
            }
        }
    }
    (fwd, bad)
}

/// Runs frames through a worker in bursts until `packets` have been sent,
/// from frame `*idx` on; returns (seconds, forwarded, first non-forward verdict).
fn drive_from(
    w: &mut Worker,
    frames: &Frames,
    idx: &mut usize,
    packets: usize,
    now0: u64,
    mut tx: Option<&mut TxRing>,
) -> (f64, usize, Option<Verdict>) {
    let mut bufs = BurstBufs::new();
    let (mut sent, mut fwd, mut bad) = (0usize, 0usize, None);
    let t0 = Instant::now();
    while sent < packets {
        let m = BURST.min(packets - sent);
        let now = now0 + t0.elapsed().as_millis() as u64;
        let (f, b) = burst(w, frames, idx, m, &mut bufs, now, tx.as_deref_mut());
        fwd += f;
        bad = bad.or(b);
        sent += m;
    }
    (t0.elapsed().as_secs_f64(), fwd, bad)
}

/// [`drive_from`] from the first frame, no transmit copy.
pub(crate) fn drive(
    w: &mut Worker,
    frames: &Frames,
    packets: usize,
    now0: u64,
) -> (f64, usize, Option<Verdict>) {
    drive_from(w, frames, &mut 0, packets, now0, None)
}

/// Nanoseconds the calling thread has run on a CPU (the scheduler's
/// account in `/proc/thread-self/schedstat`: time taken by other tasks on
/// its core is not in it).
pub(crate) fn thread_run_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// What [`drive_ab`] measured: index 0 in place, 1 with the transmit copy.
pub(crate) struct Ab {
    /// Wall-clock seconds.
    pub secs: [f64; 2],
    /// Seconds the thread ran (other tasks on the core left out).
    pub on_cpu: [f64; 2],
    /// Frames forwarded.
    pub fwd: [usize; 2],
    /// The first verdict other than a transmit.
    pub bad: Option<Verdict>,
}

/// `frames` through `w` in place and with the transmit copy, in `rounds`
/// alternating parts of `packets / rounds` each (so that drift of the
/// machine falls on both alike).
pub(crate) fn drive_ab(
    w: &mut Worker,
    frames: &Frames,
    packets: usize,
    now0: u64,
    rounds: usize,
) -> Ab {
    let mut tx = TxRing::new();
    let part = (packets / rounds).max(BURST);
    let mut ab = Ab {
        secs: [0.0; 2],
        on_cpu: [0.0; 2],
        fwd: [0; 2],
        bad: None,
    };
    let mut idx = [0usize; 2];
    for r in 0..rounds {
        for (k, ring) in [None, Some(&mut tx)].into_iter().enumerate() {
            let run0 = thread_run_ns();
            let (secs, fwd, b) = drive_from(w, frames, &mut idx[k], part, now0 + r as u64, ring);
            let ran = match (run0, thread_run_ns()) {
                (Some(a), Some(b)) => (b - a) as f64 / 1e9,
                _ => secs,
            };
            ab.secs[k] += secs;
            ab.on_cpu[k] += ran;
            ab.fwd[k] += fwd;
            ab.bad = ab.bad.or(b);
        }
    }
    ab
}

/// The reference: read each frame into the receive buffer and swap its MACs.
pub(crate) fn l2fwd(frames: &Frames, packets: usize) -> f64 {
    let mut store = vec![0u8; BURST * BUF];
    let n = frames.len();
    let mut idx = 0usize;
    let mut sent = 0usize;
    let mut check = 0u64;
    let t0 = Instant::now();
    while sent < packets {
        let m = BURST.min(packets - sent);
        for b in store.chunks_mut(BUF).take(m) {
            let len = frames.lens[idx] as usize;
            let f = &mut b[HEAD..HEAD + len];
            f.copy_from_slice(&frames.data[idx * FRAME..idx * FRAME + len]);
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&f[0..6]);
            f.copy_within(6..12, 0);
            f[6..12].copy_from_slice(&mac);
            check = check.wrapping_add(f[0] as u64);
            idx += 1;
            if idx == n {
                idx = 0;
            }
        }
        sent += m;
    }
    let s = t0.elapsed().as_secs_f64();
    std::hint::black_box(check);
    s
}

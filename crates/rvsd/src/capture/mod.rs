//! Packet capture for `rvsadm --capture`.
//!
//! The control thread serving the request compiles the filter and hands each
//! worker its side of a capture ([`WorkerCapture`]) over the worker's query
//! channel, which the worker reads once per loop iteration anyway. A worker
//! without a capture pays one branch per burst on a local `Option`; nothing
//! per packet and no shared load. With one, it copies each received frame
//! (at most `snaplen` bytes) before the pipeline rewrites it in place, and
//! after the verdicts puts the frames of the matching packets into slots
//! taken from a bounded set allocated when the capture started: a slot is
//! taken with `try_recv` and handed over with `try_send`, never waiting;
//! when every slot is in flight the frame is counted as lost. The control
//! thread ([`stream`]) drains the slots, writes one reply line per frame and
//! gives the slots back; `rvsadm` turns the lines into pcap.

pub mod filter;
mod stream;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use rvs_api::CaptureDir;
use rvs_core::pipeline::{Packet, Verdict};

pub use filter::{Filter, Sampler, Tuple};
pub use stream::{stream, CaptureCtl};

/// Slots in flight per worker (each `snaplen` bytes).
pub const RING_SLOTS: usize = 1024;

/// Held matching packets remembered at most (see [`WorkerCapture::sent`]).
const HELD_MAX: u32 = 64;

/// One captured frame on its way to the control thread.
#[derive(Debug)]
pub struct Slot {
    /// Worker clock (µs since the daemon's epoch).
    pub now_us: u64,
    /// Received or transmitted.
    pub dir: CaptureDir,
    /// Length on the wire.
    pub orig_len: u32,
    /// The first `snaplen` bytes (capacity `snaplen`, never grown).
    pub data: Vec<u8>,
}

impl Slot {
    /// An empty slot for frames of up to `snaplen` bytes.
    pub fn new(snaplen: usize) -> Box<Slot> {
        Box::new(Slot {
            now_us: 0,
            dir: CaptureDir::In,
            orig_len: 0,
            data: Vec::with_capacity(snaplen),
        })
    }

    fn fill(&mut self, now_us: u64, dir: CaptureDir, frame: &[u8], snaplen: usize) {
        self.now_us = now_us;
        self.dir = dir;
        self.orig_len = frame.len() as u32;
        self.data.clear();
        self.data
            .extend_from_slice(&frame[..frame.len().min(snaplen)]);
    }
}

/// The worker's side of a running capture.
pub struct WorkerCapture {
    /// The address criteria.
    pub filter: Filter,
    sampler: Sampler,
    dir: Option<CaptureDir>,
    snaplen: usize,
    out: Out,
    /// Matching packets the pipeline held for neighbour resolution whose
    /// transmitted frame has not left yet (see [`WorkerCapture::sent`]).
    held: u32,
    /// Copies of the received frames of the current burst, with their lengths.
    rx_copy: Vec<(Vec<u8>, usize)>,
}

/// What the control thread keeps of one worker's capture.
pub struct DrainSide {
    /// Filled slots.
    pub full: Receiver<Box<Slot>>,
    /// Where emptied slots go back.
    pub free: SyncSender<Box<Slot>>,
    /// Frames this worker could not queue.
    pub lost: Arc<AtomicU64>,
}

/// Both sides of one worker's capture ring, `slots` slots of `snaplen` bytes.
pub fn ring(
    filter: Filter,
    spec: &rvs_api::CaptureSpec,
    slots: usize,
) -> (WorkerCapture, DrainSide) {
    let snaplen = spec.snaplen as usize;
    let (free_tx, free_rx) = std::sync::mpsc::sync_channel(slots);
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel(slots);
    for _ in 0..slots {
        let _ = free_tx.try_send(Slot::new(snaplen));
    }
    let lost = Arc::new(AtomicU64::new(0));
    let w = WorkerCapture {
        filter,
        sampler: Sampler::new(spec.mode),
        dir: spec.direction,
        snaplen,
        held: 0,
        out: Out {
            free: free_rx,
            full: full_tx,
            lost: lost.clone(),
            snaplen,
        },
        rx_copy: (0..rvs_io::BURST)
            .map(|_| (Vec::with_capacity(snaplen), 0))
            .collect(),
    };
    let d = DrainSide {
        full: full_rx,
        free: free_tx,
        lost,
    };
    (w, d)
}

impl WorkerCapture {
    /// Keeps a copy of each received frame (the pipeline rewrites in place).
    pub fn before(&mut self, burst: &[Packet<'_>]) {
        for (p, (copy, len)) in burst.iter().zip(self.rx_copy.iter_mut()) {
            let f = p.frame();
            copy.clear();
            copy.extend_from_slice(&f[..f.len().min(self.snaplen)]);
            *len = f.len();
        }
    }

    /// Queues a frame sent outside a burst's verdicts (one the pipeline
    /// held until its next hop's address was resolved) when it matches, or
    /// when a matching packet was held: frames released together are told
    /// apart only by the filter, so when held matching and non-matching
    /// packets leave at once, the count of held matches decides (a mix-up
    /// is possible then). `false` when the control thread is gone.
    pub fn sent(&mut self, frame: &[u8], now_us: u64) -> bool {
        if self.dir == Some(CaptureDir::In) || !self.filter.drop_ok(None) {
            return true;
        }
        let t = Tuple::of(frame);
        let hit = !self.filter.has_addr() || t.as_ref().is_some_and(|t| self.filter.matches(t));
        // Not matching, it may be the frame of a packet that matched when it
        // came in (e.g. LIP to RS for a VIP filter).
        if (hit && !self.sampler.take(t.as_ref())) || (!hit && self.held == 0) {
            return true;
        }
        self.held = self.held.saturating_sub(1);
        self.out.queue(now_us, CaptureDir::Out, frame, frame.len())
    }

    /// Queues the frames of the burst's matching packets; `false` when the
    /// control thread is gone (the capture is over).
    pub fn after(&mut self, burst: &[Packet<'_>], verdicts: &[Verdict], now_us: u64) -> bool {
        for (i, (p, v)) in burst.iter().zip(verdicts).enumerate() {
            let Some((copy, len)) = self.rx_copy.get(i) else {
                break;
            };
            let dropped = match v {
                Verdict::Drop(r) => Some(*r),
                _ => None,
            };
            if !self.filter.drop_ok(dropped) {
                continue;
            }
            let tx = matches!(v, Verdict::Transmit(_)).then(|| p.frame());
            let rx_t = Tuple::of(copy);
            let tx_t = tx.and_then(Tuple::of);
            let hit = !self.filter.has_addr()
                || rx_t.as_ref().is_some_and(|t| self.filter.matches(t))
                || tx_t.as_ref().is_some_and(|t| self.filter.matches(t));
            if !hit || !self.sampler.take(rx_t.as_ref()) {
                continue;
            }
            // Held for neighbour resolution: nothing sent, or the pipeline
            // turned the buffer into the ARP request / solicitation.
            if rx_t.is_some() && (*v == Verdict::Consumed || (tx.is_some() && tx_t.is_none())) {
                self.held = (self.held + 1).min(HELD_MAX);
            }
            if self.dir != Some(CaptureDir::Out)
                && !self.out.queue(now_us, CaptureDir::In, copy, *len)
            {
                return false;
            }
            if let (Some(f), true) = (tx, self.dir != Some(CaptureDir::In)) {
                if !self.out.queue(now_us, CaptureDir::Out, f, f.len()) {
                    return false;
                }
            }
        }
        true
    }
}

/// Where a worker's captured frames go.
struct Out {
    free: Receiver<Box<Slot>>,
    full: SyncSender<Box<Slot>>,
    lost: Arc<AtomicU64>,
    snaplen: usize,
}

impl Out {
    /// Puts one frame in a free slot, or counts it lost; `false` when the
    /// control thread is gone.
    fn queue(&mut self, now_us: u64, dir: CaptureDir, frame: &[u8], orig_len: usize) -> bool {
        let Ok(mut slot) = self.free.try_recv() else {
            self.lost.fetch_add(1, Relaxed);
            return true;
        };
        slot.fill(now_us, dir, frame, self.snaplen);
        slot.orig_len = orig_len as u32;
        match self.full.try_send(slot) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.lost.fetch_add(1, Relaxed);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

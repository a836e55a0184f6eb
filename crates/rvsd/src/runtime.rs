//! Worker threads: each owns one queue per port (AF_PACKET rings or an
//! AF_XDP socket, share nothing), a pipeline `Worker` and its counters, and
//! loops rx burst → pipeline → tx, with timers, configuration updates,
//! neighbour sharing and control-plane queries between bursts. Worker 0 also
//! moves what the kernel sends on the `<port>.kni` devices out of the ports.
//!
//! The loop is the same for both backends: `rvs_io`'s [`RxQ`] and [`TxQ`]
//! are enums over the two queue kinds (a match per burst or per frame, no
//! allocation, no dynamic dispatch).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use rvs_api::NeighInfo;
use rvs_core::pipeline::{Learned, Verdict, Worker};
use rvs_core::snapshot::{Snapshot, Vlan};
use rvs_core::stats::{bump, DropReason};
use rvs_io::{RxQ, Tap, TxQ, BURST};

use crate::capture::WorkerCapture;
use crate::config::Idle;
use crate::control::{ConnScans, Query};

/// Bursts taken from one port per round before the transmit kick.
const ROUND_BURSTS: usize = 8;

/// While the ports keep the worker busy, the kni taps are read at most once
/// per this many microseconds (their frames wait at most this long).
pub const TAP_POLL_US: u64 = 200;

/// Idle rounds between two reads of the taps while the worker spins.
pub const TAP_EVERY: u32 = 8;

/// When the worker reads the kni taps. Reading an empty tap is a syscall
/// that finds nothing; done on every loop round it took a third of the
/// worker's time, under a 50k/s SYN flood on af_packet and in an HTTP
/// `Connection: close` run on af_xdp alike (perf, cpu-clock), CPU the load
/// balancer's core shares with the kernel's receive work. So the taps are
/// read: right after a wake-up from poll(2) (which watches them too); while
/// they deliver frames; on the first idle round after traffic and every
/// [`TAP_EVERY`]th one after it; and otherwise once every [`TAP_POLL_US`].
#[derive(Debug, Default)]
pub struct TapPacer {
    last_us: Option<u64>,
    more: bool,
}

impl TapPacer {
    /// Whether to read the taps this round, at `now_us`; `idle_rounds`:
    /// rounds in a row that found no work; `woke`: the worker just returned
    /// from poll(2).
    pub fn due(&mut self, now_us: u64, idle_rounds: u32, woke: bool) -> bool {
        let due = woke
            || self.more
            || idle_rounds % TAP_EVERY == 1
            || self
                .last_us
                .is_none_or(|t| now_us.saturating_sub(t) >= TAP_POLL_US);
        if due {
            self.last_us = Some(now_us);
        }
        due
    }

    /// Tells how many frames the read found: any, and the next round reads again.
    pub fn read(&mut self, frames: usize) {
        self.more = frames > 0;
    }
}

/// Counters of one port on one worker (single writer: that worker).
#[derive(Default, Debug)]
pub struct PortCounters {
    /// Frames received.
    pub rx_packets: AtomicU64,
    /// Bytes received.
    pub rx_bytes: AtomicU64,
    /// Frames dropped by the kernel before rvs saw them.
    pub rx_dropped: AtomicU64,
    /// Frames sent.
    pub tx_packets: AtomicU64,
    /// Bytes sent.
    pub tx_bytes: AtomicU64,
    /// Frames that found the tx ring full.
    pub tx_dropped: AtomicU64,
    /// Frames handed to the kernel.
    pub kni_packets: AtomicU64,
    /// Receive bursts that came back full: the ring held at least a burst.
    pub rx_full_bursts: AtomicU64,
    /// Frames received that the XDP fast path forwarded itself (not in
    /// `rx_packets`/`tx_packets`; read every
    /// [`crate::fastpath::COUNT_EVERY_MS`]).
    pub fast_packets: AtomicU64,
}

/// An exception-path device: the `<port>.kni` TAP, and for a VLAN device
/// the tag its frames get on their way out of the parent port.
pub struct KniDev {
    /// The TAP device.
    pub tap: Mutex<Tap>,
    /// The VLAN device's tag and parent port, `None` for a taken-over port.
    pub vlan: Option<Vlan>,
}

impl KniDev {
    /// The exception path of a taken-over port.
    pub fn plain(tap: Tap) -> Arc<KniDev> {
        Arc::new(KniDev {
            tap: Mutex::new(tap),
            vlan: None,
        })
    }
}

/// The exception-path devices, by port (None where the port has none); the
/// control plane swaps in a new list when VLAN devices come and go.
pub type Taps = Arc<ArcSwap<Vec<Option<Arc<KniDev>>>>>;

/// Everything a worker thread runs with.
pub struct WorkerCtx {
    /// The pipeline.
    pub worker: Worker,
    /// The published configuration.
    pub snap: Arc<ArcSwap<Snapshot>>,
    /// Receive queues, by port.
    pub rx: Vec<RxQ>,
    /// Transmit queues, by port.
    pub tx: Vec<TxQ>,
    /// Per-port counters of this worker.
    pub counters: Arc<Vec<PortCounters>>,
    /// Exception path.
    pub taps: Taps,
    /// Whether this worker moves kernel frames from the taps to the ports.
    pub kni_reader: bool,
    /// Control-plane questions.
    pub queries: Receiver<Query>,
    /// Neighbours learned by other workers.
    pub neigh_in: Receiver<Learned>,
    /// Neighbours this worker learned, for the others.
    pub neigh_out: Sender<(u16, Learned)>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Idle strategy.
    pub idle: Idle,
    /// CPU to pin to.
    pub cpu: Option<usize>,
    /// The clock all workers share.
    pub epoch: Instant,
    /// Connection sync (sender and receiver side).
    pub sync: Option<crate::sync::WorkerSync>,
    /// Flow-log records go here (none: flow logs are off).
    pub flow: Option<crate::flowlog::FlowSink>,
    /// The XDP fast path's maps, when `fast_path = "xdp"`.
    pub fast: Option<crate::fastpath::FastGlue>,
    /// The way out of each port (a bond: one of its slaves).
    pub egress: crate::bond::Egress,
    /// Set (CLOCK_MONOTONIC ns) at the first frame read (a hand-over's
    /// successor measures its gap), then dropped.
    pub first_rx: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// MLD: the Queries heard go out, worker 0's Reports to send come in.
    pub mld: crate::daemon::mld::WorkerMld,
}

/// Takes the control plane's questions and does this iteration's share of
/// the connection listings: O(1) work per call whatever the table size
/// (listings walk at most [`crate::control::conns::SLOTS_PER_ROUND`] slots).
/// A capture starts or stops here too (`capture`: the running one). A
/// request to park is returned, for the loop to carry out; a pre-copy
/// request goes to `precopy`.
pub fn serve_queries(
    worker: &Worker,
    rx: &[RxQ],
    queries: &Receiver<Query>,
    scans: &mut ConnScans,
    capture: &mut Option<Box<WorkerCapture>>,
    precopy: &mut Option<crate::handover::precopy::PrecopyReq>,
    now: u64,
) -> Option<crate::handover::park::Park> {
    let mut park = None;
    while let Ok(q) = queries.try_recv() {
        match q {
            Query::Capture(c) => *capture = Some(c),
            Query::CaptureStop => *capture = None,
            Query::ExportRx { reply } => {
                let _ = reply.send(crate::handover::park::export_rx(rx));
            }
            Query::Park(p) => park = Some(p),
            Query::Precopy(r) => *precopy = Some(r),
            q => answer(worker, q, scans),
        }
    }
    scans.step(worker, now);
    park
}

fn answer(worker: &Worker, q: Query, scans: &mut ConnScans) {
    match q {
        Query::Capture(_)
        | Query::CaptureStop
        | Query::ExportRx { .. }
        | Query::Park(_)
        | Query::Precopy(_) => {}
        Query::Conns { scan, reply } => scans.push(scan, reply),
        Query::Pools { reply } => {
            let snap = worker.snapshot().clone();
            let v = snap
                .pool_addrs()
                .iter()
                .filter_map(|a| {
                    worker
                        .pool_usage(a)
                        .map(|(u, f, m)| (*a, u as u64, f as u64, m))
                })
                .collect();
            let _ = reply.send(v);
        }
        Query::Neigh { reply } => {
            let snap = worker.snapshot().clone();
            let v = worker
                .neigh()
                .iter()
                .filter(|e| e.state != rvs_core::neigh::NeighState::Incomplete)
                .map(|e| NeighInfo {
                    addr: e.addr.to_ip(),
                    mac: e.mac.to_string(),
                    dev: snap
                        .ports
                        .get(e.port as usize)
                        .map_or_else(|| e.port.to_string(), |p| p.name.clone()),
                    state: format!("{:?}", e.state).to_lowercase(),
                })
                .collect();
            let _ = reply.send(v);
        }
    }
}

/// Sends `frame` on the transmit queue of taken-over port `port`.
#[inline]
pub(crate) fn send_on(tx: &mut [TxQ], counters: &[PortCounters], port: usize, frame: &[u8]) {
    let (Some(t), Some(c)) = (tx.get_mut(port), counters.get(port)) else {
        return;
    };
    if t.send(frame) {
        bump(&c.tx_packets, 1);
        bump(&c.tx_bytes, frame.len() as u64);
    } else {
        bump(&c.tx_dropped, 1);
    }
}

/// Worker 0: sends the MLD Reports `rvs-mld` queued, each on its port.
fn send_mld(
    mld: &crate::daemon::mld::WorkerMld,
    eg: &mut crate::bond::Egress,
    tx: &mut [TxQ],
    counters: &[PortCounters],
) -> usize {
    let Some(out) = &mld.out else { return 0 };
    let mut n = 0;
    while let Ok((port, f)) = out.try_recv() {
        eg.send(tx, counters, usize::from(port), &f);
        n += 1;
    }
    n
}

/// Moves frames the kernel sent on the taps out of their ports; those of a
/// VLAN device's go out of its parent with its tag.
fn pump_taps(
    taps: &Taps,
    eg: &mut crate::bond::Egress,
    tx: &mut [TxQ],
    counters: &[PortCounters],
    buf: &mut [u8],
) -> usize {
    use rvs_core::wire::ethernet::{push_tag, TAG_LEN};
    let mut n = 0;
    for (port, t) in taps.load().iter().enumerate() {
        let Some(t) = t else { continue };
        let Ok(mut tap) = t.tap.lock() else { continue };
        for _ in 0..BURST {
            // Room for a tag before the frame.
            match tap.read(&mut buf[TAG_LEN..]) {
                Ok(len) if len > 0 => {
                    n += 1;
                    let Some(v) = t.vlan else {
                        eg.send(tx, counters, port, &buf[TAG_LEN..TAG_LEN + len]);
                        continue;
                    };
                    if let Some((h, l)) = push_tag(buf, TAG_LEN, len, v.tpid, v.vid) {
                        eg.send(tx, counters, v.parent as usize, &buf[h..h + l]);
                    }
                }
                _ => break,
            }
        }
    }
    n
}

/// The descriptors a worker waits on: its queues, and the taps when it
/// reads them.
fn wait_fds(rx: &[RxQ], taps: &[Option<Arc<KniDev>>], kni_reader: bool) -> Vec<RawFd> {
    let mut fds: Vec<RawFd> = rx.iter().map(|q| q.fd()).collect();
    if kni_reader {
        fds.extend(
            taps.iter()
                .flatten()
                .filter_map(|t| t.tap.lock().ok().map(|t| t.fd())),
        );
    }
    fds
}

/// The taken-over port whose counters a frame of port `port` counts in.
fn t_port(taps: &[Option<Arc<KniDev>>], port: usize) -> usize {
    match taps.get(port) {
        Some(Some(t)) => t.vlan.map_or(port, |v| v.parent as usize),
        _ => port,
    }
}

/// The worker loop; returns when `stop` is set.
pub fn run(mut ctx: WorkerCtx) {
    if let Some(cpu) = ctx.cpu {
        if let Err(e) = rvs_io::iface::pin_thread(cpu) {
            tracing::warn!("worker {}: cannot pin to CPU {cpu}: {e}", ctx.worker.id());
        }
    }
    let mut verdicts = [Verdict::Consumed; BURST];
    let mut gen = ctx.snap.load().generation;
    let mut taps_seen = ctx.taps.load_full();
    let mut fds = wait_fds(&ctx.rx, &taps_seen, ctx.kni_reader);
    let mut kbuf = vec![0u8; 65536];
    let mut idle_rounds = 0u32;
    let mut woke = false;
    let mut last_tick = 0u64;
    let mut tap_pacer = TapPacer::default();
    let WorkerCtx {
        worker,
        rx,
        tx,
        counters,
        taps,
        snap,
        kni_reader,
        queries,
        neigh_in,
        neigh_out,
        stop,
        idle,
        epoch,
        sync,
        flow,
        fast,
        egress,
        first_rx,
        mld,
        ..
    } = &mut ctx;
    // The workers' clock's 0 on CLOCK_MONOTONIC (a hand-over's gap).
    let epoch_ns = rvs_io::clock::monotonic_ns().saturating_sub(epoch.elapsed().as_nanos() as u64);
    let mut last_rx_us = 0u64;
    let mut pre_req = None;
    let mut precopy: Option<crate::handover::precopy::WorkerPrecopy> = None;
    let mut snap_checked = u64::MAX;
    let mut scans = ConnScans::default();
    let mut capture: Option<Box<WorkerCapture>> = None;
    while !stop.load(Relaxed) {
        let now_us = epoch.elapsed().as_micros() as u64;
        let now = now_us / 1000;
        // A new configuration takes effect within a millisecond; looking
        // once per millisecond keeps the shared pointer off the per-burst path.
        if now != snap_checked {
            snap_checked = now;
            let cur = snap.load();
            if cur.generation != gen {
                gen = cur.generation;
                worker.set_snapshot(Arc::clone(&cur), now);
            }
            // A VLAN device came or went: its kni device too.
            if !std::ptr::eq(&**taps.load(), &*taps_seen) {
                taps_seen = taps.load_full();
                fds = wait_fds(rx, &taps_seen, *kni_reader);
            }
        }
        let mut busy = 0usize;
        for (port, ring) in rx.iter_mut().enumerate() {
            // Under load, take up to ROUND_BURSTS bursts before the transmit
            // kick: every syscall may run the kernel's pending receive work
            // (softirq) on its way out, so fewer kicks per packet leave the
            // worker more of its core when a flood arrives.
            for _ in 0..ROUND_BURSTS {
                let mut burst = ring.burst(BURST);
                let n = burst.len();
                if n == 0 {
                    break;
                }
                busy += n;
                let pc = &counters[port];
                bump(&pc.rx_packets, n as u64);
                bump(&pc.rx_bytes, burst.iter().map(|p| p.len as u64).sum());
                // A bond slave's LACPDUs (mode 4) are not the pipeline's.
                let m = egress.rx(port, &mut burst);
                let burst = &mut burst[..m];
                // Capture: one branch per burst when off.
                if let Some(c) = capture.as_mut() {
                    c.before(burst);
                }
                worker.process_burst(burst, &mut verdicts[..m], now);
                if let Some(c) = capture.as_mut() {
                    if !c.after(burst, &verdicts[..m], now_us) {
                        capture = None;
                    }
                }
                for (p, v) in burst.iter().zip(verdicts[..m].iter()) {
                    match *v {
                        Verdict::Transmit(out) => {
                            egress.send(tx, counters, out as usize, p.frame())
                        }
                        Verdict::ToKernel(kp) => {
                            if let Some(Some(t)) = taps_seen.get(kp as usize) {
                                if let Ok(mut t) = t.tap.lock() {
                                    // A VLAN device's count goes to its parent.
                                    let cp = t_port(&taps_seen, kp as usize);
                                    if t.write(p.frame()).is_ok() {
                                        if let Some(c) = counters.get(cp) {
                                            bump(&c.kni_packets, 1);
                                        }
                                    }
                                }
                            }
                        }
                        Verdict::Drop(_) | Verdict::Consumed => {}
                    }
                }
                if n < BURST {
                    break;
                }
                bump(&pc.rx_full_bursts, 1);
            }
        }
        if busy > 0 {
            last_rx_us = now_us;
            if let Some(f) = first_rx.take() {
                f.store(epoch_ns + now_us * 1000, Relaxed);
            }
        }
        if *kni_reader && tap_pacer.due(now_us, idle_rounds, woke) {
            let n = pump_taps(taps, egress, tx, counters, &mut kbuf)
                + egress.drain_ctl(tx, counters)
                + send_mld(mld, egress, tx, counters);
            tap_pacer.read(n);
            busy += n;
        }
        woke = false;
        // Frames released by neighbour resolution.
        if !worker.outbox().is_empty() {
            let mut cap_on = capture.is_some();
            worker.drain_outbox(|port, frame| {
                if let Some(c) = capture.as_mut() {
                    cap_on = c.sent(frame, now_us);
                }
                egress.send(tx, counters, port as usize, frame)
            });
            if !cap_on {
                capture = None;
            }
        }
        for t in tx.iter_mut() {
            t.flush();
        }
        if let Some(f) = fast.as_mut() {
            f.apply(worker, counters);
        }
        let id = worker.id();
        let out = &neigh_out;
        worker.take_learned(|l| {
            let _ = out.send((id, l));
        });
        worker.take_mld_queries(|q| {
            let _ = mld.heard.try_send(crate::daemon::mld::Event::Heard(q));
        });
        while let Ok(l) = neigh_in.try_recv() {
            worker.learn_neigh(l.addr, l.mac, l.port, now);
        }
        let park = serve_queries(
            worker,
            rx,
            queries,
            &mut scans,
            &mut capture,
            &mut pre_req,
            now,
        );
        let pre_busy = crate::handover::precopy::step(
            &mut precopy,
            pre_req.take(),
            worker,
            sync.as_mut(),
            now,
            counters,
        );
        if let Some(p) = park {
            if let Some(pc) = precopy.take() {
                let last = (last_rx_us > 0).then(|| epoch_ns + last_rx_us * 1000);
                pc.finish(worker, sync.as_mut(), now, last.unwrap_or(0));
            }
            if !crate::handover::park::park(worker, now, p, rx, tx, stop, counters) {
                return;
            }
        }
        if let Some(f) = flow.as_ref() {
            f.drain(worker);
        }
        // Sync: a bounded share per iteration; a sweep in progress keeps the
        // loop turning like a listing.
        let sync_busy = sync.as_mut().is_some_and(|s| s.step(worker, now));
        if now >= last_tick + 10 {
            last_tick = now;
            match fast.as_mut() {
                Some(f) => f.tick(worker, counters, now),
                None => worker.tick(now),
            }
            for (i, r) in rx.iter_mut().enumerate() {
                let d = r.kernel_drops();
                counters[i].rx_dropped.store(d, Relaxed);
                let h = r.take_handoff_drops();
                if h > 0 {
                    worker.drops().add(DropReason::HandoffFull, h);
                }
            }
        }
        // A listing in progress keeps the loop turning, a bounded step each time.
        if busy == 0 && scans.is_idle() && !sync_busy && !pre_busy {
            idle_rounds += 1;
            if *idle == Idle::Adaptive && idle_rounds > 32 {
                for r in rx.iter_mut() {
                    r.release();
                }
                let _ = rvs_io::wait_any(&fds, 5);
                woke = true;
            }
        } else {
            idle_rounds = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{TapPacer, TAP_EVERY, TAP_POLL_US};

    #[test]
    fn busy_worker_reads_empty_taps_once_per_interval() {
        let mut p = TapPacer::default();
        // A busy worker loops every microsecond for 10 ms; the taps stay empty.
        let reads = (0..10_000u64)
            .filter(|&us| {
                let due = p.due(us, 0, false);
                if due {
                    p.read(0);
                }
                due
            })
            .count() as u64;
        assert_eq!(reads, 10_000 / TAP_POLL_US);
    }

    #[test]
    fn taps_are_read_right_after_traffic_then_every_eighth_idle_round() {
        let mut p = TapPacer::default();
        assert!(p.due(0, 0, false));
        p.read(0);
        // Spinning idle within the same microsecond: rounds 1, 9, 17.
        let due: Vec<u32> = (1..20).filter(|&r| p.due(1, r, false)).collect();
        assert_eq!(due, vec![1, 1 + TAP_EVERY, 1 + 2 * TAP_EVERY]);
    }

    #[test]
    fn taps_are_read_after_a_wake_up_and_while_they_deliver() {
        let mut p = TapPacer::default();
        assert!(p.due(0, 0, false));
        p.read(0);
        assert!(
            !p.due(1, 0, false),
            "busy, nothing from the kernel: not yet"
        );
        assert!(p.due(2, 40, true), "after poll(2) returned");
        p.read(3);
        assert!(p.due(3, 0, false), "the kernel sent frames: read again");
        p.read(0);
        assert!(!p.due(4, 0, false));
        assert!(
            p.due(4 + TAP_POLL_US, 0, false),
            "once per interval under load"
        );
    }
}

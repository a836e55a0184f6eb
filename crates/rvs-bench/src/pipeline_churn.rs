//! `fnat_churn_cps`: new FNAT connections per second in a steady state, not
//! into an empty table. The table is held at half its capacity: each new
//! connection (a SYN of a fresh client) stays in SYN_RECV until its timeout
//! expires it, the clock the worker sees advances so that as many expire
//! as are made, and `tick()` runs every 10 ms of that clock as in the
//! daemon. So slots, index entries and local ports are reused, and the
//! expiry's cost is in the figure.

use std::time::Instant;

use rvs_core::conn::tcp::Timeouts;
use rvs_core::conn::FwdMode;
use rvs_core::lab::FrameSpec;
use rvs_core::pipeline::{Packet, Verdict, Worker, WorkerConf};
use rvs_core::wire::tcp::flags::SYN;

use crate::pipeline::{client, snapshot, Frames, BUF, BURST, HEAD, VIP_PORT};

/// What a churn run measured.
pub(crate) struct Churn {
    /// New connections per second once the table is in its steady state.
    pub cps: f64,
    /// Connections in the table at the end (the steady occupancy).
    pub live: usize,
    /// SYNs that made no connection during the measured part.
    pub refused: usize,
}

/// One churning worker: its SYNs (fresh clients, made before timing), where
/// it is in them, and its clock.
pub(crate) struct Lane {
    w: Worker,
    syns: Frames,
    total: usize,
    base: usize,
    ms_per_conn: f64,
    next_tick: u64,
    store: Vec<u8>,
}

impl Lane {
    /// A worker with a table of `n` connections, filled to its steady state
    /// (`n / 2` live), with SYNs for `measured` more.
    pub(crate) fn new(n: usize, measured: usize) -> Lane {
        let n = n.max(64);
        let snap = std::sync::Arc::new(snapshot(FwdMode::Fnat, n));
        let conf = WorkerConf {
            conn_capacity: n,
            table_mem: crate::pipeline::table_mem(),
            prefetch: crate::pipeline::prefetch(),
            ..WorkerConf::default()
        };
        let live = n / 2;
        let total = live + measured;
        let mut syns = Frames::new(rvs_core::lab::WAN, total);
        for i in 0..total {
            let (c, p) = client(i);
            syns.push(&FrameSpec::tcp(c, p, rvs_core::lab::VIP, VIP_PORT, SYN));
        }
        let mut lane = Lane {
            w: Worker::new(conf, snap, 0),
            syns,
            total,
            base: 0,
            // The clock: `syn_recv_ms` passes while `live` connections are made.
            ms_per_conn: f64::from(Timeouts::default().syn_recv_ms) / live as f64,
            next_tick: 10,
            store: vec![0u8; BURST * BUF],
        };
        lane.step(live);
        lane
    }

    /// Offers the next `syns` SYNs (fewer at the end); returns (made, refused).
    pub(crate) fn step(&mut self, syns: usize) -> (usize, usize) {
        let end = (self.base + syns).min(self.total);
        let mut verdicts = [Verdict::Consumed; BURST];
        let (mut made, mut refused) = (0, 0);
        while self.base < end {
            let m = BURST.min(end - self.base);
            let now = 1 + (self.base as f64 * self.ms_per_conn) as u64;
            while self.next_tick <= now {
                self.w.tick(self.next_tick);
                self.next_tick += 10;
            }
            let mut chunks = self.store.chunks_mut(BUF);
            let mut pkts: [Packet<'_>; BURST] = std::array::from_fn(|_| Packet {
                buf: chunks.next().unwrap_or_default(),
                head: HEAD,
                len: 0,
                port: self.syns.port,
                csum_ok: false,
            });
            for (k, p) in pkts.iter_mut().take(m).enumerate() {
                let f = self.syns.frame(self.base + k);
                p.buf[HEAD..HEAD + f.len()].copy_from_slice(f);
                p.len = f.len();
            }
            self.w
                .process_burst(&mut pkts[..m], &mut verdicts[..m], now);
            for v in &verdicts[..m] {
                match v {
                    Verdict::Transmit(_) => made += 1,
                    _ => refused += 1,
                }
            }
            self.base += m;
        }
        (made, refused)
    }

    /// Live connections.
    pub(crate) fn live(&self) -> usize {
        self.w.conns().len()
    }
}

/// Churns a table of `n` connections: `n / 2` to fill it, then `2 n` measured.
pub(crate) fn run(n: usize) -> Churn {
    let mut lane = Lane::new(n, 2 * n.max(64));
    let t0 = Instant::now();
    let (made, refused) = lane.step(usize::MAX);
    let secs = t0.elapsed().as_secs_f64();
    Churn {
        cps: made as f64 / secs,
        live: lane.live(),
        refused,
    }
}

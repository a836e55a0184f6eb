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

/// Churns a table of `n` connections: `n / 2` to fill it, then `2 n` measured.
pub(crate) fn run(n: usize) -> Churn {
    let n = n.max(64);
    let snap = std::sync::Arc::new(snapshot(FwdMode::Fnat, n));
    let conf = WorkerConf {
        conn_capacity: n,
        table_mem: crate::pipeline::table_mem(),
        prefetch: crate::pipeline::prefetch(),
        ..WorkerConf::default()
    };
    let mut w = Worker::new(conf, snap, 0);
    let live = n / 2;
    let total = live + 2 * n;
    // The clock: `syn_recv_ms` passes while `live` connections are made.
    let ms_per_conn = f64::from(Timeouts::default().syn_recv_ms) / live as f64;
    let mut syns = Frames::new(rvs_core::lab::WAN, total);
    for i in 0..total {
        let (c, p) = client(i);
        syns.push(&FrameSpec::tcp(c, p, rvs_core::lab::VIP, VIP_PORT, SYN));
    }
    let mut store = vec![0u8; BURST * BUF];
    let mut verdicts = [Verdict::Consumed; BURST];
    let (mut made, mut refused, mut next_tick) = (0usize, 0usize, 10u64);
    let mut t0 = Instant::now();
    let mut base = 0;
    while base < total {
        if base >= live && base - live < BURST {
            // Steady state reached: time from here.
            t0 = Instant::now();
            (made, refused) = (0, 0);
        }
        let m = BURST.min(total - base);
        let now = 1 + (base as f64 * ms_per_conn) as u64;
        while next_tick <= now {
            w.tick(next_tick);
            next_tick += 10;
        }
        let mut chunks = store.chunks_mut(BUF);
        let mut pkts: [Packet<'_>; BURST] = std::array::from_fn(|_| Packet {
            buf: chunks.next().unwrap_or_default(),
            head: HEAD,
            len: 0,
            port: syns.port,
            csum_ok: false,
        });
        for (k, p) in pkts.iter_mut().take(m).enumerate() {
            let f = syns.frame(base + k);
            p.buf[HEAD..HEAD + f.len()].copy_from_slice(f);
            p.len = f.len();
        }
        w.process_burst(&mut pkts[..m], &mut verdicts[..m], now);
        for v in &verdicts[..m] {
            match v {
                Verdict::Transmit(_) => made += 1,
                _ => refused += 1,
            }
        }
        base += m;
    }
    let secs = t0.elapsed().as_secs_f64();
    Churn {
        cps: made as f64 / secs,
        live: w.conns().len(),
        refused,
    }
}

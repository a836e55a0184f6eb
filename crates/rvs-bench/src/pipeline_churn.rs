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

/// A worker churning connections: a SYN of a fresh client per connection,
/// the worker's clock advanced per SYN so that `syn_recv_ms` passes while
/// half the table is made, `tick()` every 10 ms of that clock.
pub(crate) struct Churner {
    w: Worker,
    syns: Frames,
    /// SYNs sent so far (they set the clock); the frames go round.
    sent: usize,
    live: usize,
    ms_per_conn: f64,
    next_tick: u64,
    store: Vec<u8>,
    verdicts: [Verdict; BURST],
}

impl Churner {
    /// A table of `n` connections (at least 64) and SYNs of `live + 2 n`
    /// distinct clients, where `live = n / 2`; nothing sent yet.
    pub(crate) fn new(n: usize) -> Churner {
        let n = n.max(64);
        let snap = std::sync::Arc::new(snapshot(FwdMode::Fnat, n));
        let conf = WorkerConf {
            conn_capacity: n,
            table_mem: crate::pipeline::table_mem(),
            prefetch: crate::pipeline::prefetch(),
            ..WorkerConf::default()
        };
        let live = n / 2;
        let total = live + 2 * n;
        let mut syns = Frames::new(rvs_core::lab::WAN, total);
        for i in 0..total {
            let (c, p) = client(i);
            syns.push(&FrameSpec::tcp(c, p, rvs_core::lab::VIP, VIP_PORT, SYN));
        }
        Churner {
            w: Worker::new(conf, snap, 0),
            syns,
            sent: 0,
            live,
            // The clock: `syn_recv_ms` passes while `live` connections are made.
            ms_per_conn: f64::from(Timeouts::default().syn_recv_ms) / live as f64,
            next_tick: 10,
            store: vec![0u8; BURST * BUF],
            verdicts: [Verdict::Consumed; BURST],
        }
    }

    /// Sends the first `live` SYNs: the table reaches its steady occupancy.
    pub(crate) fn fill(&mut self) {
        while self.sent < self.live {
            self.step(BURST.min(self.live - self.sent));
        }
    }

    /// Sends `m` (at most [`BURST`]) SYNs; returns (made, refused).
    pub(crate) fn step(&mut self, m: usize) -> (usize, usize) {
        let now = 1 + (self.sent as f64 * self.ms_per_conn) as u64;
        while self.next_tick <= now {
            self.w.tick(self.next_tick);
            self.next_tick += 10;
        }
        let total = self.syns.len();
        let mut chunks = self.store.chunks_mut(BUF);
        let mut pkts: [Packet<'_>; BURST] = std::array::from_fn(|_| Packet {
            buf: chunks.next().unwrap_or_default(),
            head: HEAD,
            len: 0,
            port: self.syns.port,
            csum_ok: false,
        });
        for (k, p) in pkts.iter_mut().take(m).enumerate() {
            let f = self.syns.frame((self.sent + k) % total);
            p.buf[HEAD..HEAD + f.len()].copy_from_slice(f);
            p.len = f.len();
        }
        let verdicts = &mut self.verdicts[..m];
        self.w.process_burst(&mut pkts[..m], verdicts, now);
        let made = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Transmit(_)))
            .count();
        self.sent += m;
        (made, m - made)
    }

    /// Why SYNs were not forwarded: the worker's drop reasons with counts.
    pub(crate) fn drops(&self) -> Vec<(&'static str, u64)> {
        self.w.drops().nonzero()
    }

    /// Connections in the table.
    pub(crate) fn live(&self) -> usize {
        self.w.conns().len()
    }
}

/// Churns a table of `n` connections: `n / 2` to fill it, then `2 n` measured.
pub(crate) fn run(n: usize) -> Churn {
    let mut c = Churner::new(n);
    c.fill();
    let measured = 2 * n.max(64);
    let (mut made, mut refused, mut sent) = (0usize, 0usize, 0usize);
    let t0 = Instant::now();
    while sent < measured {
        let m = BURST.min(measured - sent);
        let (a, r) = c.step(m);
        made += a;
        refused += r;
        sent += m;
    }
    let secs = t0.elapsed().as_secs_f64();
    Churn {
        cps: made as f64 / secs,
        live: c.live(),
        refused,
    }
}

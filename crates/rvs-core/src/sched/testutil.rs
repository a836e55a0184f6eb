//! Helpers shared by the scheduler tests.

use super::{schedule, DestKey, DestSet, FlowKey, SchedKind, SchedState, SchedTable};
use crate::addr::Addr;

/// A hand-made dest list: one vector per attribute, all of the same length
/// except `addrs`, which only matters for building tables.
pub(super) struct TestDests {
    pub w: Vec<u32>,
    pub act: Vec<u32>,
    pub inact: Vec<u32>,
    pub avail: Vec<bool>,
    pub addrs: Vec<Addr>,
}

/// The address of the `i`-th test dest: 10.1.(i / 256).(i % 256).
pub(super) fn addr_of(i: usize) -> Addr {
    Addr::v4(10, 1, (i / 256) as u8, (i % 256) as u8)
}

impl TestDests {
    /// Idle, available dests with these weights.
    pub fn weights(w: &[u32]) -> TestDests {
        TestDests {
            w: w.to_vec(),
            act: vec![0; w.len()],
            inact: vec![0; w.len()],
            avail: vec![true; w.len()],
            addrs: (0..w.len()).map(addr_of).collect(),
        }
    }

    /// The keys to build a table from (port 80 for all).
    pub fn keys(&self) -> Vec<DestKey> {
        self.addrs
            .iter()
            .zip(&self.w)
            .map(|(&addr, &weight)| DestKey {
                addr,
                port: 80,
                weight,
            })
            .collect()
    }
}

impl DestSet for TestDests {
    fn len(&self) -> usize {
        self.w.len()
    }
    fn weight(&self, i: usize) -> u32 {
        self.w[i]
    }
    fn active(&self, i: usize) -> u32 {
        self.act[i]
    }
    fn inactive(&self, i: usize) -> u32 {
        self.inact[i]
    }
    fn available(&self, i: usize) -> bool {
        self.avail[i]
    }
}

/// xorshift64*: a test-only source of pseudo-random client addresses,
/// unrelated to the schedulers' hash.
pub(super) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        // Seed 0 would stay 0.
        let mut x = self.0 | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A flow from the IPv4 client given by the low 32 bits of `src`.
pub(super) fn flow(src: u64) -> FlowKey {
    flow_port(src, 40000)
}

/// A flow from the IPv4 client given by the low 32 bits of `src` and a port.
pub(super) fn flow_port(src: u64, sport: u16) -> FlowKey {
    FlowKey {
        src: Addr::from_v4_bytes((src as u32).to_be_bytes()),
        sport,
        dst: Addr::v4(192, 0, 2, 1),
        dport: 80,
    }
}

/// `n` decisions for a flow that never changes.
pub(super) fn run<D: DestSet>(
    t: &SchedTable,
    st: &mut SchedState,
    d: &D,
    n: usize,
) -> Vec<Option<usize>> {
    (0..n).map(|_| schedule(t, st, d, &flow(1))).collect()
}

/// One decision with a fresh table and state.
pub(super) fn pick(kind: SchedKind, d: &TestDests) -> Option<usize> {
    let t = SchedTable::build(kind, &d.keys());
    schedule(&t, &mut SchedState::default(), d, &flow(1))
}

/// Asserts that each dest's share of `counts` is within `tol` (absolute)
/// of `expected`.
pub(super) fn share_check(counts: &[usize], expected: &[f64], tol: f64) {
    let total: usize = counts.iter().sum();
    assert!(total > 0);
    for (i, (&c, &e)) in counts.iter().zip(expected).enumerate() {
        let share = c as f64 / total as f64;
        assert!(
            (share - e).abs() <= tol,
            "dest {i}: share {share:.4}, expected {e:.4} ± {tol} (counts {counts:?})"
        );
    }
}

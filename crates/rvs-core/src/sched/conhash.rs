//! conhash: consistent hashing of the source address on a ring (DPVS
//! `dp_vs_conhash`).
//!
//! Each dest owns `REPLICAS_PER_WEIGHT * weight` points whose positions
//! depend only on its own address, port and replica number, so adding or
//! removing a dest moves exactly the flows that land on its arcs.

use super::hash::{hash_addr_port, SEED_RING_POINT, SEED_RING_SRC};
use super::{scan_from, usable, Addr, DestKey, DestSet, MAX_HASHED_DESTS};

/// Virtual nodes per unit of weight (DPVS uses 160 as libconhash does).
pub const REPLICAS_PER_WEIGHT: u64 = 160;

/// Bound on the ring's size (about 1.3 MB); beyond it every dest's share of
/// points is scaled down, which keeps proportions but gives up consistency
/// for such extreme configurations.
pub const MAX_RING_POINTS: u64 = 1 << 17;

/// The ring: sorted point positions and, in parallel, the dest owning each.
#[derive(Clone)]
pub(super) struct Ring {
    points: Box<[u64]>,
    dests: Box<[u16]>,
}

/// Builds the ring; quiescent dests own no points.
pub(super) fn build(dests: &[DestKey]) -> Ring {
    let live = dests
        .iter()
        .take(MAX_HASHED_DESTS)
        .enumerate()
        .filter(|(_, d)| d.weight > 0);
    let total: u64 = live
        .clone()
        .map(|(_, d)| REPLICAS_PER_WEIGHT * u64::from(d.weight))
        .sum();
    let mut pairs: Vec<(u64, u16)> = Vec::with_capacity(total.min(MAX_RING_POINTS * 2) as usize);
    for (i, d) in live {
        let Ok(idx) = u16::try_from(i) else { break };
        let mut n = REPLICAS_PER_WEIGHT * u64::from(d.weight);
        if total > MAX_RING_POINTS {
            n = (n * MAX_RING_POINTS / total).max(1);
        }
        for r in 0..n {
            pairs.push((
                hash_addr_port(&d.addr, d.port, SEED_RING_POINT.wrapping_add(r)),
                idx,
            ));
        }
    }
    pairs.sort_unstable();
    Ring {
        points: pairs.iter().map(|p| p.0).collect(),
        dests: pairs.iter().map(|p| p.1).collect(),
    }
}

impl Ring {
    /// Heap bytes used.
    pub(super) fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.points) + std::mem::size_of_val(&*self.dests)
    }

    /// Number of points on the ring.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.points.len()
    }

    /// The owner of the first point at or clockwise after the source's hash,
    /// walking on past unusable owners.
    pub(super) fn lookup<D: DestSet>(&self, dests: &D, src: &Addr) -> Option<usize> {
        let h = hash_addr_port(src, 0, SEED_RING_SRC);
        let start = self.points.partition_point(|&p| p < h);
        let len = self.dests.len();
        let mut prev = usize::MAX;
        for k in 0..len {
            let mut j = start + k;
            if j >= len {
                j -= len;
            }
            let d = usize::from(self.dests[j]);
            // Consecutive points of the same owner need no second look.
            if d != prev {
                if usable(dests, d) {
                    return Some(d);
                }
                prev = d;
            }
        }
        scan_from(dests, h)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{addr_of, flow, share_check, Rng, TestDests};
    use super::super::{schedule, FlowKey, SchedKind, SchedState, SchedTable, TableData};
    use super::*;

    fn map(t: &SchedTable, d: &TestDests, flows: &[FlowKey]) -> Vec<usize> {
        let mut st = SchedState::default();
        flows
            .iter()
            .map(|f| schedule(t, &mut st, d, f).unwrap())
            .collect()
    }

    fn flows(seed: u64, n: usize) -> Vec<FlowKey> {
        let mut rng = Rng(seed);
        (0..n).map(|_| flow(rng.next())).collect()
    }

    #[test]
    fn ring_has_160_points_per_weight_and_is_sorted() {
        let d = TestDests::weights(&[1, 0, 3]);
        let r = build(&d.keys());
        assert_eq!(r.len(), 160 * 4);
        assert!(r.points.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(r.dests.iter().filter(|&&x| x == 0).count(), 160);
        assert_eq!(r.dests.iter().filter(|&&x| x == 2).count(), 480);
        assert!(!r.dests.contains(&1));
    }

    #[test]
    fn oversized_ring_is_capped() {
        let d = TestDests::weights(&[1_000_000, 1]);
        let r = build(&d.keys());
        assert!(r.len() as u64 <= MAX_RING_POINTS + 1);
        assert_eq!(r.dests.iter().filter(|&&x| x == 1).count(), 1);
    }

    #[test]
    fn same_source_same_dest_and_shares() {
        let d = TestDests::weights(&[1, 2, 3]);
        let t = SchedTable::build(SchedKind::Conhash, &d.keys());
        let fl = flows(3, 10_000);
        let a = map(&t, &d, &fl);
        let t2 = SchedTable::build(SchedKind::Conhash, &d.keys());
        assert_eq!(map(&t2, &d, &fl), a);
        let mut counts = [0usize; 3];
        for &x in &a {
            counts[x] += 1;
        }
        share_check(&counts, &[1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0], 0.02);
    }

    #[test]
    fn adding_a_dest_only_moves_flows_to_it() {
        let d10 = TestDests::weights(&[1; 10]);
        let d11 = TestDests::weights(&[1; 11]);
        let fl = flows(9, 10_000);
        let a = map(
            &SchedTable::build(SchedKind::Conhash, &d10.keys()),
            &d10,
            &fl,
        );
        let b = map(
            &SchedTable::build(SchedKind::Conhash, &d11.keys()),
            &d11,
            &fl,
        );
        let mut to_new = 0;
        for (&x, &y) in a.iter().zip(&b) {
            if x != y {
                assert_eq!(y, 10, "a flow moved between two old dests");
                to_new += 1;
            }
        }
        let frac = to_new as f64 / fl.len() as f64;
        assert!((frac - 1.0 / 11.0).abs() < 0.03, "new dest got {frac}");
    }

    #[test]
    fn removing_a_dest_only_moves_its_flows() {
        let d10 = TestDests::weights(&[1; 10]);
        // Remove dest 3: dests 4.. shift down by one index, so compare addresses.
        let mut d9 = TestDests::weights(&[1; 9]);
        d9.addrs = (0..10).filter(|&i| i != 3).map(addr_of).collect();
        let fl = flows(10, 10_000);
        let a = map(
            &SchedTable::build(SchedKind::Conhash, &d10.keys()),
            &d10,
            &fl,
        );
        let b = map(&SchedTable::build(SchedKind::Conhash, &d9.keys()), &d9, &fl);
        let mut moved = 0;
        for (&x, &y) in a.iter().zip(&b) {
            if d10.addrs[x] != d9.addrs[y] {
                assert_eq!(x, 3, "a flow of a surviving dest moved");
                moved += 1;
            } else {
                assert_ne!(x, 3);
            }
        }
        assert!(moved > 0);
    }

    /// The first usable owner at or after the source's hash, found by a
    /// plain linear walk of the ring.
    fn reference_walk(ring: &Ring, d: &TestDests, f: &FlowKey) -> Option<usize> {
        let h = hash_addr_port(&f.src, 0, SEED_RING_SRC);
        let n = ring.points.len();
        let first = (0..n).find(|&k| ring.points[k] >= h).unwrap_or(0);
        (0..n)
            .map(|k| usize::from(ring.dests[(first + k) % n]))
            .find(|&o| d.w[o] > 0 && d.avail[o])
    }

    #[test]
    fn unusable_owner_walks_clockwise() {
        let mut d = TestDests::weights(&[1, 1, 1, 1]);
        let t = SchedTable::build(SchedKind::Conhash, &d.keys());
        let fl = flows(12, 3000);
        let before = map(&t, &d, &fl);
        d.avail[1] = false;
        d.w[2] = 0;
        let after = map(&t, &d, &fl);
        let ring = match &t.data {
            TableData::Ring(r) => r,
            _ => unreachable!("conhash table"),
        };
        let mut rerouted = 0;
        for ((&x, &y), f) in before.iter().zip(&after).zip(&fl) {
            assert_eq!(Some(y), reference_walk(ring, &d, f));
            assert!(y == 0 || y == 3);
            if x == 0 || x == 3 {
                assert_eq!(x, y);
            } else {
                rerouted += 1;
            }
        }
        assert!(rerouted > 0);
        d.avail = vec![false; 4];
        let mut st = SchedState::default();
        assert_eq!(schedule(&t, &mut st, &d, &fl[0]), None);
    }
}

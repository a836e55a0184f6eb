//! sh: source hashing over a 256-bucket table (`ip_vs_sh.c`).

use super::hash::{self, hash_addr_port, SEED_SH};
use super::{scan_from, usable, Addr, DestKey, DestSet, MAX_HASHED_DESTS, NO_DEST};

/// Number of buckets, as the kernel's `IP_VS_SH_TAB_BITS = 8`.
pub(super) const BUCKETS: usize = 256;

/// Fills the buckets by walking the dests in order, giving each `weight`
/// consecutive buckets, and starting over until all buckets are filled, as
/// `ip_vs_sh_reassign` does.
///
/// Two departures from the kernel, both to keep the shares proportional:
/// weights are divided by their gcd and, when they still add up to more than
/// 256, scaled down (keeping at least one bucket each), since otherwise the
/// first heavy dest would swallow the whole table; and quiescent dests get
/// no bucket instead of one that always falls back.
pub(super) fn build(dests: &[DestKey]) -> Box<[u16; BUCKETS]> {
    let mut buckets = Box::new([NO_DEST; BUCKETS]);
    // (index, turns)
    let mut turns: Vec<(u16, u64)> = dests
        .iter()
        .take(MAX_HASHED_DESTS)
        .enumerate()
        .filter(|(_, d)| d.weight > 0)
        .filter_map(|(i, d)| Some((u16::try_from(i).ok()?, u64::from(d.weight))))
        .collect();
    if turns.is_empty() {
        return buckets;
    }
    let g = turns.iter().fold(0u32, |g, &(_, w)| {
        hash::gcd(g, u32::try_from(w).unwrap_or(u32::MAX))
    });
    let g = u64::from(g.max(1));
    let sum: u64 = turns.iter().map(|&(_, w)| w / g).sum();
    for t in turns.iter_mut() {
        let w = t.1 / g;
        t.1 = if sum > BUCKETS as u64 {
            (w * BUCKETS as u64 / sum).max(1)
        } else {
            w
        };
    }
    let mut p = 0usize;
    let mut count = 0u64;
    for b in buckets.iter_mut() {
        let Some(&(idx, w)) = turns.get(p) else { break };
        *b = idx;
        count += 1;
        if count >= w {
            count = 0;
            p = if p + 1 == turns.len() { 0 } else { p + 1 };
        }
    }
    buckets
}

/// The dest in the source's bucket. If it is unusable: `None` without
/// `fallback`; with it (IPVS `sh-fallback`), the next buckets, then a scan
/// of the dests when the table holds nothing usable.
pub(super) fn lookup<D: DestSet>(
    buckets: &[u16; BUCKETS],
    dests: &D,
    src: &Addr,
    port: u16,
    fallback: bool,
) -> Option<usize> {
    let h = hash_addr_port(src, port, SEED_SH);
    let start = (h >> 56) as usize;
    if !fallback {
        let d = buckets[start];
        return (d != NO_DEST && usable(dests, usize::from(d))).then_some(usize::from(d));
    }
    for k in 0..BUCKETS {
        let d = buckets[(start + k) % BUCKETS];
        if d != NO_DEST && usable(dests, usize::from(d)) {
            return Some(usize::from(d));
        }
    }
    scan_from(dests, h)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{flow, flow_port, share_check, Rng, TestDests};
    use super::super::{schedule, SchedKind, SchedOpts, SchedState, SchedTable};
    use super::*;

    fn bucket_counts(b: &[u16; BUCKETS], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &d in b.iter() {
            c[usize::from(d)] += 1;
        }
        c
    }

    #[test]
    fn buckets_follow_weights() {
        let d = TestDests::weights(&[3, 2, 1]);
        let b = build(&d.keys());
        // Cycle A A A B B C; 256 = 42 * 6 + 4, the last 4 being A A A B.
        assert_eq!(&b[..8], &[0, 0, 0, 1, 1, 2, 0, 0]);
        assert_eq!(bucket_counts(&b, 3), vec![42 * 3 + 3, 42 * 2 + 1, 42]);
        // Weights 30:20:10 have gcd 10 and give the same table.
        let d10 = TestDests::weights(&[30, 20, 10]);
        assert_eq!(build(&d10.keys()), b);
    }

    #[test]
    fn heavy_weights_are_scaled_not_swallowing() {
        let d = TestDests::weights(&[1000, 1, 3000]);
        let c = bucket_counts(&build(&d.keys()), 3);
        // Scaled to floor(1000*256/4001) = 63, 1 (floor 0 raised to 1) and
        // floor(3000*256/4001) = 191: a 255-bucket cycle plus one more A.
        assert_eq!(c, vec![64, 1, 191]);
    }

    #[test]
    fn zero_weight_dests_get_no_bucket_and_empty_is_none() {
        let d = TestDests::weights(&[0, 2, 0]);
        let b = build(&d.keys());
        assert!(b.iter().all(|&x| x == 1));
        let z = TestDests::weights(&[0, 0]);
        let t = SchedTable::build(SchedKind::Sh, &z.keys());
        assert!(t.memory_bytes() >= 512);
        let mut st = SchedState::default();
        assert_eq!(schedule(&t, &mut st, &z, &flow(7)), None);
    }

    #[test]
    fn same_source_same_dest_and_shares() {
        let d = TestDests::weights(&[1, 2, 3]);
        let t = SchedTable::build(SchedKind::Sh, &d.keys());
        let t2 = SchedTable::build(SchedKind::Sh, &d.keys());
        let mut st = SchedState::default();
        let mut other = SchedState::default();
        let mut rng = Rng(11);
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            let f = flow(rng.next());
            let a = schedule(&t, &mut st, &d, &f).unwrap();
            // Stable across calls, workers and rebuilds; the port is ignored.
            assert_eq!(schedule(&t, &mut st, &d, &f), Some(a));
            assert_eq!(schedule(&t2, &mut other, &d, &f), Some(a));
            let mut f2 = f;
            f2.sport = f.sport.wrapping_add(1);
            assert_eq!(schedule(&t, &mut st, &d, &f2), Some(a));
            counts[a] += 1;
        }
        // Cycle A B B C C C: 42 full cycles plus A B B C.
        share_check(&counts, &[43.0 / 256.0, 86.0 / 256.0, 127.0 / 256.0], 0.02);
    }

    #[test]
    fn without_the_fallback_flag_an_unusable_dests_flows_are_refused() {
        let mut d = TestDests::weights(&[1, 1, 1, 1]);
        let t = SchedTable::build(SchedKind::Sh, &d.keys());
        let mut st = SchedState::default();
        let mut rng = Rng(6);
        let flows: Vec<_> = (0..2000).map(|_| flow(rng.next())).collect();
        let before: Vec<_> = flows
            .iter()
            .map(|f| schedule(&t, &mut st, &d, f).unwrap())
            .collect();
        d.avail[2] = false;
        for (f, &b) in flows.iter().zip(&before) {
            let a = schedule(&t, &mut st, &d, f);
            assert_eq!(a, (b != 2).then_some(b));
        }
    }

    #[test]
    fn fallback_moves_only_the_unusable_dests_flows() {
        let mut d = TestDests::weights(&[1, 1, 1, 1]);
        let opts = SchedOpts {
            sh_fallback: true,
            ..SchedOpts::default()
        };
        let t = SchedTable::build_with(SchedKind::Sh, &d.keys(), opts);
        let mut st = SchedState::default();
        let mut rng = Rng(5);
        let flows: Vec<_> = (0..2000).map(|_| flow(rng.next())).collect();
        let before: Vec<_> = flows
            .iter()
            .map(|f| schedule(&t, &mut st, &d, f).unwrap())
            .collect();
        d.avail[2] = false;
        for (f, &b) in flows.iter().zip(&before) {
            let a = schedule(&t, &mut st, &d, f).unwrap();
            if b == 2 {
                // Cycle 0 1 2 3: the next bucket after a 2 is a 3.
                assert_eq!(a, 3);
            } else {
                assert_eq!(a, b);
            }
        }
        d.avail = vec![false; 4];
        assert_eq!(schedule(&t, &mut st, &d, &flows[0]), None);
    }

    #[test]
    fn sh_port_option_spreads_one_source() {
        let d = TestDests::weights(&[1, 1, 1, 1]);
        let opts = SchedOpts {
            sh_port: true,
            ..SchedOpts::default()
        };
        let t = SchedTable::build_with(SchedKind::Sh, &d.keys(), opts);
        let mut st = SchedState::default();
        let mut seen = [false; 4];
        for p in 0..200u16 {
            let a = schedule(&t, &mut st, &d, &flow_port(42, 1000 + p)).unwrap();
            assert_eq!(schedule(&t, &mut st, &d, &flow_port(42, 1000 + p)), Some(a));
            seen[a] = true;
        }
        assert_eq!(seen, [true; 4]);
    }
}

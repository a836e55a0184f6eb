use super::super::testutil::{addr_of, flow, flow_port, share_check, Rng, TestDests};
use super::super::{schedule, FlowKey, SchedKind, SchedOpts, SchedState, SchedTable};
use super::*;

fn prime_by_trial(n: usize) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| n.checked_rem(d) != Some(0))
}

fn counts(t: &[u16], n: usize) -> Vec<usize> {
    let mut c = vec![0; n];
    for &d in t {
        c[usize::from(d)] += 1;
    }
    c
}

fn random_flows(seed: u64, n: usize) -> Vec<FlowKey> {
    let mut rng = Rng(seed);
    (0..n).map(|_| flow(rng.next())).collect()
}

#[test]
fn table_size_is_prime_and_at_least_65537() {
    let d = TestDests::weights(&[1, 1]);
    let t = SchedTable::build(SchedKind::Mh, &d.keys());
    assert_eq!(t.mh_table_size(), Some(65537));
    for req in [0, 1, 1000, 65537, 65538, 100_000, 1 << 20, usize::MAX] {
        let m = table_size(req);
        assert!(m >= 65537 && prime_by_trial(m), "{req} -> {m}");
        assert!(m >= req.min(MH_MAX_TABLE_SIZE));
        assert!(m < MH_MAX_TABLE_SIZE + 100);
    }
    // 100000 = 2^5 * 5^5; 100001 = 11 * 9091; 100002 even; 100003 is prime.
    assert_eq!(table_size(100_000), 100_003);
    let opts = SchedOpts {
        mh_table_size: 100_000,
        ..SchedOpts::default()
    };
    let t = SchedTable::build_with(SchedKind::Mh, &d.keys(), opts);
    assert_eq!(t.mh_table_size(), Some(100_003));
}

/// Straight from the paper's pseudo-code (Fig. 4), with explicit
/// permutation positions `(offset + j * skip) mod M` and `next[i]` counters.
fn reference_population(keys: &[super::DestKey], m: usize) -> Vec<u16> {
    let offset: Vec<usize> = keys
        .iter()
        .map(|d| hash::reduce(hash_addr_port(&d.addr, d.port, SEED_MH_OFFSET), m))
        .collect();
    let skip: Vec<usize> = keys
        .iter()
        .map(|d| hash::reduce(hash_addr_port(&d.addr, d.port, SEED_MH_SKIP), m - 1) + 1)
        .collect();
    let perm = |i: usize, j: usize| (offset[i] + j * skip[i]) % m;
    let mut next = vec![0usize; keys.len()];
    let mut entry = vec![u16::MAX; m];
    let mut n = 0;
    loop {
        for (i, next_i) in next.iter_mut().enumerate() {
            let mut c = perm(i, *next_i);
            while entry[c] != u16::MAX {
                *next_i += 1;
                c = perm(i, *next_i);
            }
            entry[c] = i as u16;
            *next_i += 1;
            n += 1;
            if n == m {
                return entry;
            }
        }
    }
}

#[test]
fn equal_weights_match_the_papers_algorithm() {
    let d = TestDests::weights(&[7, 7, 7, 7, 7]);
    let t = build(&d.keys(), 0);
    assert_eq!(&*t, &reference_population(&d.keys(), 65537)[..]);
    // Shares differ by at most one slot per dest... up to the last round.
    for c in counts(&t, 5) {
        assert!(c.abs_diff(65537 / 5) <= 1, "{c}");
    }
}

#[test]
fn weighted_population_is_proportional() {
    let d = TestDests::weights(&[1, 2, 3, 0]);
    let t = build(&d.keys(), 0);
    assert!(t.iter().all(|&x| x != NO_DEST));
    let c = counts(&t, 4);
    assert_eq!(c[3], 0);
    // Turns 1, 2, 3 per round: shares 1/6, 2/6, 3/6 to within a round.
    for (i, w) in [1usize, 2, 3].into_iter().enumerate() {
        assert!(c[i].abs_diff(65537 * w / 6) <= 3, "{c:?}");
    }
    // Huge weights are shifted down but keep their ratio.
    let d = TestDests::weights(&[100_000, 300_000]);
    let c = counts(&build(&d.keys(), 0), 2);
    assert!(c[0].abs_diff(65537 / 4) < 100, "{c:?}");
}

#[test]
fn same_source_same_dest_and_shares() {
    let d = TestDests::weights(&[1, 2, 3]);
    let t = SchedTable::build(SchedKind::Mh, &d.keys());
    let t2 = SchedTable::build(SchedKind::Mh, &d.keys());
    let mut st = SchedState::default();
    let mut counts = [0usize; 3];
    for f in random_flows(21, 10_000) {
        let a = schedule(&t, &mut st, &d, &f).unwrap();
        assert_eq!(schedule(&t, &mut st, &d, &f), Some(a));
        assert_eq!(schedule(&t2, &mut SchedState::default(), &d, &f), Some(a));
        // Without mh-port the source port does not matter.
        let mut f2 = f;
        f2.sport ^= 0x5555;
        assert_eq!(schedule(&t, &mut st, &d, &f2), Some(a));
        counts[a] += 1;
    }
    share_check(&counts, &[1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0], 0.02);
}

#[test]
fn mh_port_spreads_one_source() {
    let d = TestDests::weights(&[1, 1, 1, 1]);
    let opts = SchedOpts {
        mh_port: true,
        ..SchedOpts::default()
    };
    let t = SchedTable::build_with(SchedKind::Mh, &d.keys(), opts);
    let mut st = SchedState::default();
    let mut c = [0usize; 4];
    for p in 0..4000u16 {
        let a = schedule(&t, &mut st, &d, &flow_port(77, 1024 + p)).unwrap();
        assert_eq!(schedule(&t, &mut st, &d, &flow_port(77, 1024 + p)), Some(a));
        c[a] += 1;
    }
    share_check(&c, &[0.25; 4], 0.03);
}

#[test]
fn adding_a_dest_moves_little_but_its_share() {
    let d10 = TestDests::weights(&[1; 10]);
    let d11 = TestDests::weights(&[1; 11]);
    let a = build(&d10.keys(), 0);
    let b = build(&d11.keys(), 0);
    let m = a.len() as f64;
    let to_new = b.iter().filter(|&&x| x == 10).count() as f64;
    let among_old = a
        .iter()
        .zip(b.iter())
        .filter(|&(&x, &y)| y != 10 && x != y)
        .count() as f64;
    assert!(
        (to_new / m - 1.0 / 11.0).abs() < 0.005,
        "new dest share {}",
        to_new / m
    );
    assert!(
        among_old / m < 0.05,
        "moved among old dests: {}",
        among_old / m
    );
}

#[test]
fn removing_a_dest_moves_little_but_its_share() {
    let d10 = TestDests::weights(&[1; 10]);
    // Drop dest 3; the others keep their addresses but shift index.
    let mut d9 = TestDests::weights(&[1; 9]);
    d9.addrs = (0..10).filter(|&i| i != 3).map(addr_of).collect();
    let a = build(&d10.keys(), 0);
    let b = build(&d9.keys(), 0);
    let m = a.len() as f64;
    let mut removed = 0usize;
    let mut others_changed = 0usize;
    for (&x, &y) in a.iter().zip(b.iter()) {
        let before = d10.addrs[usize::from(x)];
        let after = d9.addrs[usize::from(y)];
        if x == 3 {
            removed += 1;
        } else if before != after {
            others_changed += 1;
        }
    }
    assert!((removed as f64 / m - 0.1).abs() < 0.005);
    assert!(
        (others_changed as f64 / m) < 0.05,
        "surviving dests' slots changed: {}",
        others_changed as f64 / m
    );
}

#[test]
fn without_the_fallback_flag_an_unusable_dests_flows_are_refused() {
    let mut d = TestDests::weights(&[1, 1, 1, 1, 1]);
    let t = SchedTable::build(SchedKind::Mh, &d.keys());
    let flows = random_flows(34, 3000);
    let mut st = SchedState::default();
    let before: Vec<usize> = flows
        .iter()
        .map(|f| schedule(&t, &mut st, &d, f).unwrap())
        .collect();
    d.w[2] = 0;
    for (f, &b) in flows.iter().zip(&before) {
        assert_eq!(schedule(&t, &mut st, &d, f), (b != 2).then_some(b));
    }
}

#[test]
fn unusable_dest_falls_back_without_moving_others() {
    let mut d = TestDests::weights(&[1, 1, 1, 1, 1]);
    let opts = SchedOpts {
        mh_fallback: true,
        ..SchedOpts::default()
    };
    let t = SchedTable::build_with(SchedKind::Mh, &d.keys(), opts);
    let flows = random_flows(33, 5000);
    let mut st = SchedState::default();
    let before: Vec<usize> = flows
        .iter()
        .map(|f| schedule(&t, &mut st, &d, f).unwrap())
        .collect();
    d.avail[2] = false;
    let mut spread = [0usize; 5];
    for (f, &b) in flows.iter().zip(&before) {
        let a = schedule(&t, &mut st, &d, f).unwrap();
        assert_ne!(a, 2);
        if b == 2 {
            spread[a] += 1;
        } else {
            assert_eq!(a, b);
        }
    }
    // The orphaned flows spread over the four others (rehashing, not a
    // single neighbour); each gets about a quarter of them.
    let orphans: usize = spread.iter().sum();
    assert!(orphans > 500);
    for (i, &s) in spread.iter().enumerate() {
        if i != 2 {
            assert!(s * 8 > orphans, "{spread:?}");
        }
    }
    // Quiesced (weight 0 in the DestSet) behaves the same as unavailable.
    d.avail[2] = true;
    d.w[2] = 0;
    for (f, &b) in flows.iter().zip(&before).take(500) {
        let a = schedule(&t, &mut st, &d, f).unwrap();
        assert!(if b == 2 { a != 2 } else { a == b });
    }
    // Only one dest left: every flow ends up there, if need be via the scan.
    d.avail = vec![false, false, false, false, true];
    d.w[2] = 1;
    for f in flows.iter().take(500) {
        assert_eq!(schedule(&t, &mut st, &d, f), Some(4));
    }
}

/// The same dests in another order (and so other indexes).
fn permuted(d: &TestDests, order: &[usize]) -> TestDests {
    TestDests {
        w: order.iter().map(|&i| d.w[i]).collect(),
        act: order.iter().map(|&i| d.act[i]).collect(),
        inact: order.iter().map(|&i| d.inact[i]).collect(),
        avail: order.iter().map(|&i| d.avail[i]).collect(),
        addrs: order.iter().map(|&i| d.addrs[i]).collect(),
    }
}

#[test]
fn nodes_that_added_the_dests_in_other_orders_pick_the_same_dest() {
    // ECMP nodes behind one switch: a flow the switch moves from one node to
    // another must meet the same real server there (as Maglev and Katran),
    // whatever order each node's operator added the real servers in.
    let d = TestDests::weights(&[3, 1, 4, 1, 5, 9, 2]);
    for order in [[6, 5, 4, 3, 2, 1, 0], [3, 0, 6, 1, 5, 2, 4]] {
        let e = permuted(&d, &order);
        for opts in [
            SchedOpts::default(),
            SchedOpts {
                mh_port: true,
                ..SchedOpts::default()
            },
        ] {
            let t = SchedTable::build_with(SchedKind::Mh, &d.keys(), opts);
            let u = SchedTable::build_with(SchedKind::Mh, &e.keys(), opts);
            let (mut s, mut s2) = (SchedState::default(), SchedState::default());
            for f in random_flows(99, 10_000) {
                let a = schedule(&t, &mut s, &d, &f).unwrap();
                let b = schedule(&u, &mut s2, &e, &f).unwrap();
                assert_eq!(d.addrs[a], e.addrs[b], "order {order:?}, {opts:?}");
            }
        }
    }
}

//! Hash flooding: tuples crafted offline against a known seed must not pile
//! into one probe run of a table keyed with a fresh seed.

use super::*;
use crate::addr::{proto, Addr};

/// The seed every table used before tables were seeded at random.
const OLD_FIXED_SEED: u64 = 0x2545_f491_4f6c_dd1d;
const CAPACITY: usize = 1000;
const VIP: Addr = Addr::v4(10, 0, 0, 100);

/// A spoofed SYN's tuple: source address and port from `i`.
fn spoofed(i: u32) -> Tuple {
    let b = i.to_be_bytes();
    Tuple::new(
        proto::TCP,
        Addr::v4(100, b[1], b[2], b[3]),
        1024 + (i >> 24) as u16,
        VIP,
        80,
    )
}

/// What an attacker who knows the seed computes offline: `n` tuples whose
/// home is bucket 0 of a table of [`CAPACITY`].
fn colliding_set(seed: u64, n: usize) -> Vec<Tuple> {
    let t = ConnTable::with_seed(CAPACITY, 0, seed);
    (0u32..)
        .map(spoofed)
        .filter(|k| t.home_of(k) == 0)
        .take(n)
        .collect()
}

fn fill(t: &mut ConnTable, keys: &[Tuple]) {
    for k in keys {
        t.insert(Conn::new_in_only(FwdMode::Dr, k), 60_000, 0)
            .expect("room for every key");
    }
}

fn longest_probe(t: &ConnTable, keys: &[Tuple]) -> usize {
    keys.iter().map(|k| t.probe_len(k)).max().unwrap_or(0)
}

#[test]
fn tuples_crafted_for_the_old_fixed_seed_spread_under_a_fresh_one() {
    let keys = colliding_set(OLD_FIXED_SEED, 300);

    // The attack as it worked: 300 entries in one home bucket of 10 ways
    // spill over 30 buckets, and every lookup homed there walks them all.
    let mut fixed = ConnTable::with_seed(CAPACITY, 0, OLD_FIXED_SEED);
    fill(&mut fixed, &keys);
    let attacked = longest_probe(&fixed, &keys);
    assert!(attacked >= 25, "the crafted set should collide: {attacked}");

    // ConnTable::new (what every worker uses): the same set spreads.
    let mut t = ConnTable::new(CAPACITY, 0);
    fill(&mut t, &keys);
    let probe = longest_probe(&t, &keys);
    println!("longest probe: fixed seed {attacked} buckets, fresh seed {probe}");
    assert!(
        probe <= 2,
        "a fresh seed must spread the set: {probe} buckets"
    );
    for k in &keys {
        assert!(t.lookup(k).is_some());
    }
}

#[test]
fn every_table_gets_its_own_seed() {
    // Sets crafted against one table's seed say nothing about another's.
    let a = fresh_seed();
    let b = fresh_seed();
    assert_ne!(a, b);
    let keys = colliding_set(a, 100);
    let mut other = ConnTable::with_seed(CAPACITY, 0, b);
    fill(&mut other, &keys);
    assert!(longest_probe(&other, &keys) <= 2);
}

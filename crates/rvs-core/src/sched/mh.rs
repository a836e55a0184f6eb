//! mh: Maglev hashing (Eisenbud et al., NSDI'16) with weights as in
//! `ip_vs_mh.c`.
//!
//! Each dest walks its own permutation of the table slots, fixed by two
//! hashes of its address and port (`offset`, `skip`); the dests take turns
//! claiming their next free slot until the table is full. Because a dest's
//! preferences do not depend on the others, a dest change mostly moves only
//! the slots that dest gains or loses.
//!
//! The table depends only on the set of dests (address, port, weight), not
//! on the order they were added in: the dests take their turns in address
//! order. Several nodes behind one ECMP switch therefore send a flow to the
//! same real server, as Maglev and Katran do, and a flow the switch moves
//! to another node meets the same real server there (DR, TUNNEL). With
//! `mh-fallback`, a flow whose dest is unusable tries a few other slots
//! (also the same on every node) before a scan of the dest list, which
//! does follow the list's order.

use super::hash::{self, hash_addr_port, SEED_MH_LOOKUP, SEED_MH_OFFSET, SEED_MH_SKIP};
use super::{scan_from, usable, Addr, DestKey, DestSet, MAX_HASHED_DESTS, NO_DEST};

/// Default lookup table size: the prime 65537, large against any realistic
/// dest count (the paper wants M >> 100 N for even shares).
pub const MH_DEFAULT_TABLE_SIZE: usize = 65537;

/// Largest lookup table size that may be asked for (about 8 MiB of `u16`s).
pub const MH_MAX_TABLE_SIZE: usize = 1 << 22;

/// How many extra seeds are tried when the source's slot points at an
/// unusable dest, before falling back to a scan of the dests.
const REHASHES: u64 = 8;

/// Turns are scaled down so that the largest takes at most this many bits,
/// as the kernel's `ip_vs_mh_shift_weight` does: huge weights would
/// otherwise make the population coarse without making it fairer.
const TURN_BITS: u32 = 8;

/// The table size used for a requested size: a prime within
/// `MH_DEFAULT_TABLE_SIZE..=MH_MAX_TABLE_SIZE` (0 means the default).
pub(super) fn table_size(requested: usize) -> usize {
    let want = requested.clamp(MH_DEFAULT_TABLE_SIZE, MH_MAX_TABLE_SIZE) as u64;
    let p = hash::next_prime(want);
    // The next prime after 2^22 is 2^22 + 15, a few slots over the bound.
    usize::try_from(p).unwrap_or(MH_DEFAULT_TABLE_SIZE)
}

/// Builds the lookup table; quiescent dests get no slot and an all-quiescent
/// service gets a table of `NO_DEST`.
pub(super) fn build(dests: &[DestKey], requested_size: usize) -> Box<[u16]> {
    let m = table_size(requested_size);
    let mut table = vec![NO_DEST; m].into_boxed_slice();

    struct Walker {
        idx: u16,
        pos: usize,
        skip: usize,
        turns: u32,
    }
    let mut live: Vec<(u16, &DestKey)> = dests
        .iter()
        .take(MAX_HASHED_DESTS)
        .enumerate()
        .filter(|(_, d)| d.weight > 0)
        .filter_map(|(i, d)| Some((u16::try_from(i).ok()?, d)))
        .collect();
    // The dests take turns in address order, not in the order they were
    // added: every node with the same dests builds the same table.
    live.sort_by_key(|(_, d)| (d.addr, d.port));
    if live.is_empty() {
        return table;
    }
    let g = live
        .iter()
        .fold(0, |g, (_, d)| hash::gcd(g, d.weight))
        .max(1);
    let max_turns = live.iter().map(|(_, d)| d.weight / g).max().unwrap_or(1);
    let shift = (u32::BITS - max_turns.leading_zeros()).saturating_sub(TURN_BITS);
    let mut walkers: Vec<Walker> = live
        .iter()
        .map(|&(idx, d)| Walker {
            idx,
            pos: hash::reduce(hash_addr_port(&d.addr, d.port, SEED_MH_OFFSET), m),
            skip: hash::reduce(hash_addr_port(&d.addr, d.port, SEED_MH_SKIP), m - 1) + 1,
            turns: ((d.weight / g) >> shift).max(1),
        })
        .collect();

    let mut filled = 0usize;
    // Terminates: m is prime and 0 < skip < m, so each walk visits every
    // slot, and every turn fills one slot.
    while filled < m {
        for w in walkers.iter_mut() {
            for _ in 0..w.turns {
                while table[w.pos] != NO_DEST {
                    w.pos += w.skip;
                    if w.pos >= m {
                        w.pos -= m;
                    }
                }
                table[w.pos] = w.idx;
                filled += 1;
                if filled == m {
                    return table;
                }
            }
        }
    }
    table
}

/// The dest in the source's slot. If it is unusable: `None` without
/// `fallback` (IPVS without `mh-fallback`); with it, the slots of a few other
/// seeds (so fallback flows spread by weight rather than pile onto a
/// neighbour), then a scan of the dests.
pub(super) fn lookup<D: DestSet>(
    table: &[u16],
    dests: &D,
    src: &Addr,
    port: u16,
    fallback: bool,
) -> Option<usize> {
    let m = table.len();
    let h = hash_addr_port(src, port, SEED_MH_LOOKUP);
    let first = match m {
        0 => usize::from(NO_DEST),
        _ => usize::from(table[hash::reduce(h, m)]),
    };
    if first != usize::from(NO_DEST) && usable(dests, first) {
        return Some(first);
    }
    if !fallback {
        return None;
    }
    if first == usize::from(NO_DEST) {
        // Nothing was live when the table was built.
        return scan_from(dests, h);
    }
    for seed in 1..=REHASHES {
        let d =
            usize::from(table[hash::reduce(hash_addr_port(src, port, SEED_MH_LOOKUP + seed), m)]);
        if usable(dests, d) {
            return Some(d);
        }
    }
    scan_from(dests, h)
}

#[cfg(test)]
mod tests;

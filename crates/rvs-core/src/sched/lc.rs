//! lc, wlc and fo (`ip_vs_lc.c`, `ip_vs_wlc.c`, `ip_vs_fo.c`): a linear scan
//! of the dests, as in the kernel.

use super::{usable, DestSet};

/// The kernel's `ip_vs_dest_conn_overhead`: an active connection costs as
/// much as 256 inactive ones (which are mostly TIME_WAIT and cheap).
#[inline]
fn overhead<D: DestSet>(dests: &D, i: usize) -> u64 {
    (u64::from(dests.active(i)) << 8) + u64::from(dests.inactive(i))
}

/// Least connection: the least overhead; the first one on ties.
pub(super) fn lc<D: DestSet>(dests: &D) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for i in 0..dests.len() {
        if !usable(dests, i) {
            continue;
        }
        let oh = overhead(dests, i);
        match best {
            Some((_, b)) if b <= oh => {}
            _ => best = Some((i, oh)),
        }
    }
    best.map(|(i, _)| i)
}

/// Weighted least connection: the least `overhead / weight`, compared as
/// `oh_a * w_b < oh_b * w_a` to avoid a division; the first one on ties.
pub(super) fn wlc<D: DestSet>(dests: &D) -> Option<usize> {
    // (index, overhead, weight); u128 because overhead (< 2^41) times a
    // 32-bit weight does not fit in 64 bits.
    let mut best: Option<(usize, u128, u128)> = None;
    for i in 0..dests.len() {
        if !usable(dests, i) {
            continue;
        }
        let oh = u128::from(overhead(dests, i));
        let w = u128::from(dests.weight(i));
        match best {
            Some((_, boh, bw)) if boh * w <= oh * bw => {}
            _ => best = Some((i, oh, w)),
        }
    }
    best.map(|(i, _, _)| i)
}

/// Weighted failover: the usable dest with the highest weight; the first on ties.
pub(super) fn fo<D: DestSet>(dests: &D) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for i in 0..dests.len() {
        if !usable(dests, i) {
            continue;
        }
        let w = dests.weight(i);
        match best {
            Some((_, bw)) if bw >= w => {}
            _ => best = Some((i, w)),
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{pick, TestDests};
    use super::super::SchedKind;

    #[test]
    fn lc_picks_least_overhead() {
        let mut d = TestDests::weights(&[1, 1, 1]);
        // Overheads: 2*256+0 = 512, 1*256+300 = 556, 0*256+511 = 511.
        d.act = vec![2, 1, 0];
        d.inact = vec![0, 300, 511];
        assert_eq!(pick(SchedKind::Lc, &d), Some(2));
        // 512 inactive now costs more than dest 0's two active.
        d.inact[2] = 513;
        assert_eq!(pick(SchedKind::Lc, &d), Some(0));
        // lc ignores weight except for quiescence.
        d.w = vec![1, 100, 0];
        assert_eq!(pick(SchedKind::Lc, &d), Some(0));
        d.avail[0] = false;
        assert_eq!(pick(SchedKind::Lc, &d), Some(1));
    }

    #[test]
    fn lc_ties_go_to_first_and_none_when_nothing_usable() {
        let mut d = TestDests::weights(&[1, 1, 1]);
        d.act = vec![1, 0, 0];
        assert_eq!(pick(SchedKind::Lc, &d), Some(1));
        d.avail = vec![false, true, false];
        d.w[1] = 0;
        assert_eq!(pick(SchedKind::Lc, &d), None);
        assert_eq!(pick(SchedKind::Lc, &TestDests::weights(&[])), None);
    }

    #[test]
    fn wlc_picks_least_overhead_per_weight() {
        let mut d = TestDests::weights(&[1, 3, 2]);
        // Overheads 256, 512, 512 → per weight 256, 170.7, 256.
        d.act = vec![1, 2, 2];
        assert_eq!(pick(SchedKind::Wlc, &d), Some(1));
        // Dest 1 at 1024/3 = 341.3 now loses to 0 and 2 (256 each; 0 first).
        d.act[1] = 4;
        assert_eq!(pick(SchedKind::Wlc, &d), Some(0));
        // Dest 0 at 257: dest 2 at 256 wins.
        d.inact[0] = 1;
        assert_eq!(pick(SchedKind::Wlc, &d), Some(2));
        // A quiescent dest with no connections is still never chosen.
        d.w[0] = 0;
        d.act[0] = 0;
        d.inact[0] = 0;
        assert_eq!(pick(SchedKind::Wlc, &d), Some(2));
        d.avail[2] = false;
        assert_eq!(pick(SchedKind::Wlc, &d), Some(1));
        d.avail[1] = false;
        assert_eq!(pick(SchedKind::Wlc, &d), None);
    }

    #[test]
    fn wlc_huge_values_do_not_overflow() {
        let mut d = TestDests::weights(&[u32::MAX, u32::MAX]);
        d.act = vec![u32::MAX, u32::MAX - 1];
        d.inact = vec![u32::MAX, u32::MAX];
        assert_eq!(pick(SchedKind::Wlc, &d), Some(1));
        d.w[0] = 1;
        // Dest 0: ~2^40 per unit weight; dest 1: ~2^8. Dest 1 wins.
        d.act[1] = u32::MAX;
        assert_eq!(pick(SchedKind::Wlc, &d), Some(1));
    }

    #[test]
    fn fo_picks_highest_weight_first_on_ties() {
        let mut d = TestDests::weights(&[2, 5, 5, 1]);
        d.act = vec![0, 100, 0, 0];
        assert_eq!(pick(SchedKind::Fo, &d), Some(1));
        d.avail[1] = false;
        assert_eq!(pick(SchedKind::Fo, &d), Some(2));
        d.w[2] = 0;
        assert_eq!(pick(SchedKind::Fo, &d), Some(0));
        d.avail = vec![false; 4];
        assert_eq!(pick(SchedKind::Fo, &d), None);
    }
}

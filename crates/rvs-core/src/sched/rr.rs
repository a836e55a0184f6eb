//! rr and wrr (`ip_vs_rr.c`, `ip_vs_wrr.c`).

use super::{usable, DestSet};

/// Round robin: the first usable dest at or after the cursor.
pub(super) fn rr<D: DestSet>(next: &mut usize, dests: &D) -> Option<usize> {
    let n = dests.len();
    if n == 0 {
        return None;
    }
    // The cursor may be stale after the dest list shrank; restart at the head.
    let start = if *next < n { *next } else { 0 };
    let i = (start..n).chain(0..start).find(|&i| usable(dests, i))?;
    *next = if i + 1 == n { 0 } else { i + 1 };
    Some(i)
}

/// Where this worker is in the wrr sequence of one table.
#[derive(Clone, Debug, Default)]
pub(super) struct WrrState {
    /// The table the position belongs to (0: none yet).
    table_id: u64,
    /// The dest count the position belongs to.
    n: usize,
    /// Last dest picked (`n - 1` before the first pick, so the next step wraps).
    last: usize,
    /// Current weight; 0 before the first pick.
    cw: u32,
}

/// Interleaved weighted round robin as in LVS:
///
/// ```text
/// loop { i = (i + 1) mod n; if i == 0 { cw -= gcd; if cw <= 0 { cw = max } }
///        if weight(i) >= cw { return i } }
/// ```
///
/// The classic loop spins through every weight level when few dests are
/// usable (and forever when none is). Here a full round without a pick
/// proves that every usable weight is below `cw`, so the levels in between,
/// which would also pick nothing, are skipped in one step: the sequence of
/// picks is unchanged and a decision costs at most about three rounds.
pub(super) fn wrr<D: DestSet>(
    st: &mut WrrState,
    table_id: u64,
    max_weight: u32,
    gcd: u32,
    dests: &D,
) -> Option<usize> {
    let n = dests.len();
    if n == 0 || max_weight == 0 || gcd == 0 {
        return None;
    }
    if st.table_id != table_id || st.n != n || st.last >= n {
        *st = WrrState {
            table_id,
            n,
            last: n - 1,
            cw: 0,
        };
    }
    let mut i = st.last;
    let mut cw = st.cw;
    // Whether the round being scanned started within this call (so that a
    // miss by the end of it means a whole round missed).
    let mut whole_round = false;
    // Highest usable weight below `cw` seen in the current round.
    let mut round_max = 0u32;
    loop {
        i += 1;
        if i >= n {
            i = 0;
            if whole_round {
                cw = level_at_or_below(round_max, max_weight, gcd)?;
            } else {
                cw = if cw > gcd { cw - gcd } else { max_weight };
            }
            whole_round = true;
            round_max = 0;
        }
        if usable(dests, i) {
            let w = dests.weight(i);
            if w >= cw {
                st.last = i;
                st.cw = cw;
                return Some(i);
            }
            round_max = round_max.max(w);
        }
    }
}

/// The highest weight level `max - k * gcd` (k >= 0) that is positive and
/// `<= w`, or `None` when there is none (in particular when `w == 0`).
fn level_at_or_below(w: u32, max_weight: u32, gcd: u32) -> Option<u32> {
    if w == 0 {
        return None;
    }
    if w >= max_weight {
        return Some(max_weight);
    }
    let (w, mw, g) = (u64::from(w), u64::from(max_weight), u64::from(gcd));
    let k = (mw - w).div_ceil(g);
    let drop = k * g;
    if drop >= mw {
        None
    } else {
        u32::try_from(mw - drop).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{flow, run, TestDests};
    use super::super::{SchedKind, SchedState, SchedTable};
    use super::*;

    #[test]
    fn rr_cycles_and_skips() {
        let mut d = TestDests::weights(&[1, 1, 0, 1]);
        d.avail[3] = false;
        let t = SchedTable::build(SchedKind::Rr, &d.keys());
        let mut st = SchedState::default();
        let picks = run(&t, &mut st, &d, 6);
        assert_eq!(
            picks,
            vec![Some(0), Some(1), Some(0), Some(1), Some(0), Some(1)]
        );
        d.avail[3] = true;
        // Cursor is after dest 1: 2 is quiescent, so 3, then wrap to 0.
        assert_eq!(run(&t, &mut st, &d, 3), vec![Some(3), Some(0), Some(1)]);
    }

    #[test]
    fn rr_none_and_shrinking_list() {
        let d = TestDests::weights(&[0, 0]);
        let t = SchedTable::build(SchedKind::Rr, &d.keys());
        let mut st = SchedState::default();
        assert_eq!(super::super::schedule(&t, &mut st, &d, &flow(1)), None);
        let empty = TestDests::weights(&[]);
        assert_eq!(super::super::schedule(&t, &mut st, &empty, &flow(1)), None);

        let big = TestDests::weights(&[1, 1, 1, 1, 1]);
        let t = SchedTable::build(SchedKind::Rr, &big.keys());
        assert_eq!(
            run(&t, &mut st, &big, 4),
            vec![Some(0), Some(1), Some(2), Some(3)]
        );
        // Cursor is now 4, past the end of a 2-dest list: restart safely.
        let small = TestDests::weights(&[1, 1]);
        assert_eq!(run(&t, &mut st, &small, 3), vec![Some(0), Some(1), Some(0)]);
    }

    fn counts(picks: &[Option<usize>], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for p in picks {
            c[p.expect("a dest")] += 1;
        }
        c
    }

    #[test]
    fn wrr_exact_sequence_and_counts() {
        let d = TestDests::weights(&[3, 2, 1]);
        let t = SchedTable::build(SchedKind::Wrr, &d.keys());
        let mut st = SchedState::default();
        // Levels 3, 2, 1: {A}, {A, B}, {A, B, C}.
        let first = run(&t, &mut st, &d, 6);
        assert_eq!(
            first,
            vec![Some(0), Some(0), Some(1), Some(0), Some(1), Some(2)]
        );
        let more = run(&t, &mut st, &d, 600);
        assert_eq!(counts(&more, 3), vec![300, 200, 100]);
    }

    #[test]
    fn wrr_gcd_and_zero_weight() {
        // gcd 2, max 4: levels 4 and 2, so A A C per cycle; B is quiescent.
        let d = TestDests::weights(&[4, 0, 2]);
        let t = SchedTable::build(SchedKind::Wrr, &d.keys());
        let mut st = SchedState::default();
        assert_eq!(run(&t, &mut st, &d, 3), vec![Some(0), Some(0), Some(2)]);
        assert_eq!(counts(&run(&t, &mut st, &d, 300), 3), vec![200, 0, 100]);
    }

    #[test]
    fn wrr_all_zero_or_empty_is_none() {
        let d = TestDests::weights(&[0, 0, 0]);
        let t = SchedTable::build(SchedKind::Wrr, &d.keys());
        let mut st = SchedState::default();
        assert_eq!(run(&t, &mut st, &d, 2), vec![None, None]);
        let e = TestDests::weights(&[]);
        let t = SchedTable::build(SchedKind::Wrr, &e.keys());
        assert_eq!(run(&t, &mut st, &e, 1), vec![None]);
    }

    #[test]
    fn wrr_skips_unavailable_and_all_unavailable_is_none() {
        let mut d = TestDests::weights(&[3, 2, 1]);
        d.avail[0] = false;
        let t = SchedTable::build(SchedKind::Wrr, &d.keys());
        let mut st = SchedState::default();
        // Level 3 picks nobody, level 2 picks B, level 1 picks B and C.
        assert_eq!(run(&t, &mut st, &d, 3), vec![Some(1), Some(1), Some(2)]);
        assert_eq!(counts(&run(&t, &mut st, &d, 300), 3), vec![0, 200, 100]);
        d.avail = vec![false; 3];
        assert_eq!(run(&t, &mut st, &d, 2), vec![None, None]);
        // Quiesced through the DestSet without a rebuild.
        let mut q = TestDests::weights(&[3, 2, 1]);
        q.w = vec![0, 0, 0];
        assert_eq!(run(&t, &mut st, &q, 1), vec![None]);
    }

    /// Counts how many dests a decision looks at.
    struct Counting<'a> {
        inner: &'a TestDests,
        looks: std::cell::Cell<usize>,
    }

    impl DestSet for Counting<'_> {
        fn len(&self) -> usize {
            self.inner.len()
        }
        fn weight(&self, i: usize) -> u32 {
            self.inner.weight(i)
        }
        fn active(&self, i: usize) -> u32 {
            self.inner.active(i)
        }
        fn inactive(&self, i: usize) -> u32 {
            self.inner.inactive(i)
        }
        fn available(&self, i: usize) -> bool {
            self.looks.set(self.looks.get() + 1);
            self.inner.available(i)
        }
    }

    #[test]
    fn wrr_large_weight_spread_is_cheap_and_exact() {
        // gcd 1 and max 100000: the classic loop would walk 100000 levels to
        // reach the small dest when the big one is down.
        let mut d = TestDests::weights(&[100_000, 1, 1]);
        let t = SchedTable::build(SchedKind::Wrr, &d.keys());
        let mut st = SchedState::default();
        d.avail[0] = false;
        let c = Counting {
            inner: &d,
            looks: std::cell::Cell::new(0),
        };
        let picks: Vec<_> = (0..4)
            .map(|_| super::super::schedule(&t, &mut st, &c, &flow(1)))
            .collect();
        assert_eq!(picks, vec![Some(1), Some(2), Some(1), Some(2)]);
        // At most about three rounds of three dests per decision.
        assert!(c.looks.get() <= 4 * 10, "looked at {} dests", c.looks.get());
        // All down: None after a bounded number of looks as well.
        d.avail = vec![false; 3];
        let c = Counting {
            inner: &d,
            looks: std::cell::Cell::new(0),
        };
        assert_eq!(super::super::schedule(&t, &mut st, &c, &flow(1)), None);
        assert!(c.looks.get() <= 10, "looked at {} dests", c.looks.get());
    }

    #[test]
    fn wrr_copes_with_dest_list_changes() {
        let d5 = TestDests::weights(&[5, 4, 3, 2, 1]);
        let t5 = SchedTable::build(SchedKind::Wrr, &d5.keys());
        let mut st = SchedState::default();
        run(&t5, &mut st, &d5, 7);
        // New table with fewer dests: the state restarts from the top.
        let d2 = TestDests::weights(&[1, 2]);
        let t2 = SchedTable::build(SchedKind::Wrr, &d2.keys());
        assert_eq!(run(&t2, &mut st, &d2, 3), vec![Some(1), Some(0), Some(1)]);
        // Same table but the DestSet shrank (pipeline out of step): still in bounds.
        let d1 = TestDests::weights(&[1]);
        assert_eq!(run(&t2, &mut st, &d1, 2), vec![Some(0), Some(0)]);
    }

    #[test]
    fn levels() {
        assert_eq!(level_at_or_below(0, 10, 1), None);
        assert_eq!(level_at_or_below(7, 10, 1), Some(7));
        assert_eq!(level_at_or_below(7, 10, 2), Some(6));
        assert_eq!(level_at_or_below(12, 10, 2), Some(10));
        // Levels of (max 10, gcd 4) are 10, 6, 2: nothing at or below 1.
        assert_eq!(level_at_or_below(1, 10, 4), None);
        assert_eq!(level_at_or_below(5, 10, 4), Some(2));
    }
}

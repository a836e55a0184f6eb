//! Tests of the module's shared surface: names, parsing, tables, dispatch.

use super::testutil::{flow, TestDests};
use super::*;

#[test]
fn names_round_trip() {
    let names: Vec<&str> = SchedKind::all().iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        ["rr", "wrr", "wlc", "lc", "sh", "conhash", "fo", "mh"]
    );
    for k in SchedKind::all() {
        assert_eq!(k.to_string(), k.name());
        assert_eq!(k.name().parse::<SchedKind>(), Ok(*k));
    }
    assert_eq!("WLC".parse::<SchedKind>(), Ok(SchedKind::Wlc));
}

#[test]
fn bad_name_error_lists_valid_ones() {
    let e = "lblc".parse::<SchedKind>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown scheduler 'lblc' (valid: rr, wrr, wlc, lc, sh, conhash, fo, mh)"
    );
    assert!("".parse::<SchedKind>().is_err());
    assert!("rr ".parse::<SchedKind>().is_err());
}

#[test]
fn tables_know_their_kind_and_size() {
    let d = TestDests::weights(&[1, 2, 3]);
    for &k in SchedKind::all() {
        let t = SchedTable::build(k, &d.keys());
        assert_eq!(t.kind(), k);
        assert_eq!(t.dest_count(), 3);
        assert!(t.memory_bytes() >= std::mem::size_of::<SchedTable>());
        assert_eq!(t.mh_table_size().is_some(), k == SchedKind::Mh);
        // Every kind picks one of the three idle dests.
        let got = schedule(&t, &mut SchedState::default(), &d, &flow(99));
        assert!(matches!(got, Some(0..=2)), "{k}: {got:?}");
        assert!(format!("{t:?}").len() < 200);
    }
    let mh = SchedTable::build(SchedKind::Mh, &d.keys());
    assert!(mh.memory_bytes() >= 65537 * 2);
    let sh = SchedTable::build(SchedKind::Sh, &d.keys());
    assert!(sh.memory_bytes() >= 256 * 2);
    let ch = SchedTable::build(SchedKind::Conhash, &d.keys());
    assert!(ch.memory_bytes() >= 160 * 6 * (8 + 2));
}

#[test]
fn every_kind_handles_empty_and_all_quiescent() {
    let empty = TestDests::weights(&[]);
    let zero = TestDests::weights(&[0, 0, 0]);
    let mut down = TestDests::weights(&[1, 2, 3]);
    down.avail = vec![false; 3];
    for &k in SchedKind::all() {
        for d in [&empty, &zero, &down] {
            let t = SchedTable::build(k, &d.keys());
            let mut st = SchedState::default();
            assert_eq!(schedule(&t, &mut st, d, &flow(5)), None, "{k}");
        }
    }
}

#[test]
fn stale_table_against_a_shorter_dest_set_stays_in_bounds() {
    // A table built for 5 dests used with a DestSet of 2 (the pipeline's
    // snapshot lagging behind): never an out-of-range index.
    let d5 = TestDests::weights(&[1, 1, 1, 1, 1]);
    let d2 = TestDests::weights(&[1, 1]);
    let all_flags = SchedOpts {
        sh_fallback: true,
        mh_fallback: true,
        ..SchedOpts::default()
    };
    for &k in SchedKind::all() {
        let t = SchedTable::build_with(k, &d5.keys(), all_flags);
        let mut st = SchedState::default();
        for s in 0..200 {
            let got = schedule(&t, &mut st, &d2, &flow(s));
            assert!(matches!(got, Some(0..=1)), "{k}: {got:?}");
        }
    }
}

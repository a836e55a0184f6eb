//! The pre-copy of a hand-over while the old worker forwards
//! ([`Precopy`]): the successor installs each step's records as they come,
//! while the old worker's connections are made, change state, go and come
//! back; after the tail drained at the freeze, the successor has the same
//! table.

use super::handover::{assert_same, listing, ship};
use super::util::*;
use crate::lab::{self, LAN, LIP, WAN};
use crate::pipeline::{Precopy, PrecopyEvent, Resweep, Worker};
use crate::sync::LocalRecord;
use crate::wire::tcp::flags::*;

/// Applies one step's events on `new`, in order, through the wire format.
fn apply(new: &mut Worker, evs: Vec<PrecopyEvent>, now: u64) -> (usize, usize) {
    let (mut restarts, mut done) = (0, 0);
    let mut recs = Vec::new();
    let flush = |new: &mut Worker, recs: &mut Vec<LocalRecord>| {
        for r in ship(recs) {
            match r {
                LocalRecord::Conn(l) => {
                    new.install_local(&l, now)
                        .unwrap_or_else(|e| panic!("{e}: {l:?}"));
                }
                // A removal of a connection not sent yet removes nothing.
                LocalRecord::Remove(t) => drop(new.remove_local(&t)),
                LocalRecord::Neigh(n) => new.install_neigh(&n, now).unwrap(),
            }
        }
        recs.clear();
    };
    for e in evs {
        match e {
            PrecopyEvent::Record(r, _) => recs.push(r),
            PrecopyEvent::SweepDone => done += 1,
            PrecopyEvent::Restart => {
                flush(new, &mut recs);
                new.remove_all_local();
                restarts += 1;
            }
        }
    }
    flush(new, &mut recs);
    (restarts, done)
}

fn step(pc: &mut Precopy, old: &mut Worker, new: &mut Worker, now: u64) -> (usize, usize) {
    let mut evs = Vec::new();
    pc.step(old, now, |e| evs.push(e));
    apply(new, evs, now)
}

fn reset(old: &mut Worker, cport: u16, now: u64) {
    run_tx(old, &from_client(cport, 80, RST).to_vec(), WAN, LAN, now);
}

#[test]
fn sweep_and_tail_give_the_successor_the_final_table() {
    let mut old = worker(lab::tutorial_fnat(1));
    resolve_client(&mut old, CIP, 0);
    for cport in 1000..1040 {
        establish(&mut old, cport, 1);
    }
    let mut new = worker(lab::tutorial_fnat(1));
    // 4096 slots, 64 a step: 64 steps of sweep.
    let mut pc = Precopy::start(&mut old, 256, 64, 8);
    let mut t = 10;
    let mut done = 0;
    for i in 0..80u16 {
        t += 100;
        match i {
            // New connections while the sweep runs, before and after
            // their slots are swept.
            3 | 40 => {
                for c in 0..5 {
                    establish(&mut old, 3000 + i * 10 + c, t);
                }
            }
            // Resets: removed at the next expiry pass.
            5 => (1000..1010).for_each(|c| reset(&mut old, c, t)),
            // State changes (half-closed) of swept and unswept ones.
            20 => (1010..1020).for_each(|c| {
                run_tx(
                    &mut old,
                    &from_client(c, 80, FIN | ACK).to_vec(),
                    WAN,
                    LAN,
                    t,
                );
            }),
            // Removed, then made again with the same tuple.
            30 => (1020..1025).for_each(|c| reset(&mut old, c, t)),
            45 => (1020..1025).for_each(|c| {
                establish(&mut old, c, t);
            }),
            _ => {}
        }
        if i % 10 == 9 {
            // Expiry passes remove the reset connections.
            t += 3_000;
            old.tick(t);
        }
        done += step(&mut pc, &mut old, &mut new, t).1;
    }
    assert_eq!(done, 1, "one sweep, not restarted");
    assert!(pc.swept());
    // After the sweep: more changes, left to the tail.
    establish(&mut old, 5000, t);
    reset(&mut old, 1030, t);
    old.tick(t + 3_000);
    let mut tail = Vec::new();
    assert!(!pc.finish(&mut old, t + 3_000, |e| tail.push(e)));
    apply(&mut new, tail, t + 3_000);
    pc.stop(&mut old, false);
    assert!(!old.sync_logging(), "the pre-copy turned its log off");
    // 40 + 10 made - 10 reset - 1 reset, the half-closed ones expired.
    assert!(
        (30..=40).contains(&old.conn_count()),
        "{}",
        old.conn_count()
    );
    new.add_counters(&old.export_counters());
    assert_same(&old, &new, &[LIP]);
}

#[test]
fn lost_events_restart_the_sweep_on_an_emptied_successor() {
    let mut old = worker(lab::tutorial_fnat(1));
    resolve_client(&mut old, CIP, 0);
    for cport in 1000..1020 {
        establish(&mut old, cport, 1);
    }
    let mut new = worker(lab::tutorial_fnat(1));
    // A log of 4 events: the 10 resets below overflow it.
    let mut pc = Precopy::start(&mut old, 4, 4096, 4);
    assert_eq!(step(&mut pc, &mut old, &mut new, 10), (0, 1));
    assert_eq!(new.conn_count(), 20);
    (1000..1010).for_each(|c| reset(&mut old, c, 20));
    old.tick(5_000);
    assert_eq!(old.conn_count(), 10);
    // The successor still has some of the ten gone: the restart empties it.
    assert_eq!(step(&mut pc, &mut old, &mut new, 5_000), (1, 1));
    assert_eq!(pc.restarts(), 1);
    let mut tail = Vec::new();
    assert!(!pc.finish(&mut old, 5_000, |e| tail.push(e)));
    apply(&mut new, tail, 5_000);
    assert_eq!(listing(&new), listing(&old));
    assert_eq!(new.conn_count(), 10);
    new.add_counters(&old.export_counters());
    assert_same(&old, &new, &[LIP]);
}

/// Events lost after the sweep was done restart it; the freeze may come
/// before the new sweep reached the end of the table (the hand-over
/// asks for it once the first sweep is done): the tail then carries the
/// rest of the table, or the successor would start without the
/// connections not swept again yet.
#[test]
fn a_freeze_during_a_repeated_sweep_gives_the_successor_the_whole_table() {
    let mut old = worker(lab::tutorial_fnat(1));
    resolve_client(&mut old, CIP, 0);
    for cport in 1000..1040 {
        establish(&mut old, cport, 1);
    }
    let mut new = worker(lab::tutorial_fnat(1));
    // A log of 4 events, a sweep of 4 slots a step (the 40 connections
    // take the first slots).
    let mut pc = Precopy::start(&mut old, 4, 4, 4);
    let mut t = 10;
    while !pc.swept() {
        t += 1;
        step(&mut pc, &mut old, &mut new, t);
    }
    assert_eq!(new.conn_count(), 40);
    (1000..1010).for_each(|c| reset(&mut old, c, t));
    old.tick(5_000);
    assert_eq!(step(&mut pc, &mut old, &mut new, 5_000).0, 1, "restarted");
    assert!(!pc.swept(), "the new sweep goes on");
    let mut tail = Vec::new();
    assert!(!pc.finish(&mut old, 5_000, |e| tail.push(e)));
    apply(&mut new, tail, 5_000);
    assert_eq!(listing(&new), listing(&old));
    assert_eq!(new.conn_count(), 30);
}

/// Applies one step's events on `new` through `rs` (the successor's side).
fn apply_kept(
    new: &mut Worker,
    rs: &mut Resweep,
    evs: Vec<PrecopyEvent>,
    now: u64,
) -> Vec<LocalRecord> {
    let mut recs = Vec::new();
    let mut all = Vec::new();
    let flush = |new: &mut Worker,
                 rs: &mut Resweep,
                 recs: &mut Vec<LocalRecord>,
                 all: &mut Vec<LocalRecord>| {
        for r in ship(recs) {
            assert!(rs.install(new, &r, now), "refused: {r:?}");
            all.push(r);
        }
        recs.clear();
    };
    for e in evs {
        match e {
            PrecopyEvent::Record(r, _) => recs.push(r),
            PrecopyEvent::SweepDone => {
                flush(new, rs, &mut recs, &mut all);
                rs.done(new);
            }
            PrecopyEvent::Restart => {
                flush(new, rs, &mut recs, &mut all);
                rs.restart();
            }
        }
    }
    flush(new, rs, &mut recs, &mut all);
    all
}

/// A successor (a warm standby) keeps its table while a sweep repeated
/// after lost events runs: promoted meanwhile, it has every connection;
/// once the sweep is done, those removed while events were lost are gone.
#[test]
fn a_repeated_sweep_keeps_the_successor_s_table_until_it_is_done() {
    let mut old = worker(lab::tutorial_fnat(1));
    resolve_client(&mut old, CIP, 0);
    for cport in 1000..1040 {
        establish(&mut old, cport, 1);
    }
    let mut new = worker(lab::tutorial_fnat(1));
    let mut rs = Resweep::default();
    let mut pc = Precopy::start(&mut old, 4, 4, 4);
    let mut t = 10;
    let mut sent = Vec::new();
    while !pc.swept() {
        t += 1;
        let mut evs = Vec::new();
        pc.step(&mut old, t, |e| evs.push(e));
        sent.extend(apply_kept(&mut new, &mut rs, evs, t));
    }
    assert_eq!(new.conn_count(), 40);
    (1000..1010).for_each(|c| reset(&mut old, c, t));
    old.tick(5_000);
    let mut steps = 0;
    while rs.repeating() || steps == 0 {
        let mut evs = Vec::new();
        pc.step(&mut old, 5_000, |e| evs.push(e));
        apply_kept(&mut new, &mut rs, evs, 5_000);
        steps += 1;
        if rs.repeating() {
            // Every connection the old worker has is still here.
            assert!(
                new.conn_count() >= 30,
                "{} at step {steps}",
                new.conn_count()
            );
        }
    }
    assert_eq!(pc.restarts(), 1);
    assert!(steps > 2, "the repeated sweep took steps");
    assert_eq!(listing(&new), listing(&old));
    assert_eq!(new.conn_count(), 30);
    // A record refused for a port an entry not sent again holds: those
    // entries go first. (A connection of client port 1005, gone on the
    // old worker, comes back from 1105 on its local port.)
    let LocalRecord::Conn(gone) = sent
        .iter()
        .find(|r| matches!(r, LocalRecord::Conn(l) if l.conn.cport == 1005))
        .copied()
        .expect("sent by the first sweep")
    else {
        unreachable!()
    };
    assert!(rs.install(&mut new, &LocalRecord::Conn(gone), 5_000));
    rs.restart();
    let mut back = gone;
    back.conn.cport = 1105;
    assert!(rs.install(&mut new, &LocalRecord::Conn(back), 5_000));
    assert!(!rs.repeating(), "ended by the conflict");
    assert_eq!(new.conn_count(), 1, "the unsent 30 and the stale one went");
}

#[test]
fn a_pre_copy_leaves_an_ha_log_on() {
    let mut old = worker(lab::tutorial_fnat(1));
    old.enable_sync_log(64);
    let pc = Precopy::start(&mut old, 4, 64, 4);
    pc.stop(&mut old, false);
    assert!(old.sync_logging());
}

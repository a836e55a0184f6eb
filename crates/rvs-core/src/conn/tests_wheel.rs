//! Tests of expiry through the timer wheel.

use super::*;
use crate::addr::{proto, Addr};

fn conn(i: u16) -> Conn {
    Conn::new(
        FwdMode::Fnat,
        &Tuple::new(
            proto::UDP,
            Addr::v4(192, 0, 2, 1),
            i,
            Addr::v4(10, 0, 0, 1),
            53,
        ),
        &Tuple::new(
            proto::UDP,
            Addr::v4(10, 0, 2, 1),
            53,
            Addr::v4(10, 0, 1, 1),
            i,
        ),
    )
}

/// Calls `expire` every `step` ms from `from` to `to` (inclusive) and returns the
/// clock value of each call that removed something, once per removed conn.
fn run(t: &mut ConnTable, from: u64, to: u64, step: u64) -> Vec<u64> {
    let mut at = Vec::new();
    let mut now = from;
    while now <= to {
        let n = t.expire(now, usize::MAX, |_, _| Expiry::Remove);
        at.extend(std::iter::repeat_n(now, n));
        now += step;
    }
    at
}

#[test]
fn conn_expires_at_its_time_within_one_tick() {
    for (start, timeout) in [(0u64, 1000u32), (5, 777), (100_000, 3), (12_345, 0)] {
        let mut t = ConnTable::new(4, start);
        let id = t.insert(conn(1), timeout, start).expect("insert");
        let due = start + u64::from(timeout);
        let at = run(&mut t, start, due + 3 * WHEEL_TICK_MS, 1);
        assert_eq!(at.len(), 1, "start {start} timeout {timeout}");
        assert!(
            at[0] >= due && at[0] <= due + WHEEL_TICK_MS,
            "due {due}, removed at {}",
            at[0]
        );
        assert!(!t.contains(id));
        assert!(t.is_empty());
    }
}

#[test]
fn callback_sees_the_conn_and_removal_follows() {
    let mut t = ConnTable::new(4, 0);
    let id = t.insert(conn(7), 100, 0).expect("insert");
    let mut seen = Vec::new();
    let n = t.expire(1000, 10, |cid, c| {
        seen.push((cid, c.cport));
        Expiry::Remove
    });
    assert_eq!(n, 1);
    assert_eq!(seen, vec![(id, 7)]);
    assert_eq!(t.lookup(&conn(7).in_tuple()), None);
    assert_eq!(t.lookup(&conn(7).out_tuple()), None);
}

#[test]
fn refresh_postpones_expiry() {
    let mut t = ConnTable::new(4, 0);
    let id = t.insert(conn(1), 1000, 0).expect("insert");
    assert!(run(&mut t, 0, 500, 10).is_empty());
    t.refresh(id, 1000, 500);
    assert_eq!(t.get(id).expires_ms(), 1500);
    let at = run(&mut t, 510, 2000, 1);
    assert_eq!(at.len(), 1);
    assert!(
        (1500..=1500 + WHEEL_TICK_MS).contains(&at[0]),
        "removed at {}",
        at[0]
    );
}

#[test]
fn many_refreshes_keep_conn_alive_until_idle() {
    let mut t = ConnTable::new(4, 0);
    let id = t.insert(conn(1), 300, 0).expect("insert");
    // A packet every 100 ms for 10 s, expire polled every 10 ms.
    let mut now = 0;
    while now < 10_000 {
        if now % 100 == 0 {
            t.refresh(id, 300, now);
        }
        assert_eq!(t.expire(now, 100, |_, _| Expiry::Remove), 0, "at {now}");
        now += 10;
    }
    // Last refresh at 9900: due at 10200.
    let at = run(&mut t, now, 11_000, 1);
    assert_eq!(at.len(), 1);
    assert!(
        (10_200..=10_200 + WHEEL_TICK_MS).contains(&at[0]),
        "removed at {}",
        at[0]
    );
}

#[test]
fn shortened_timeout_expires_early() {
    // ESTABLISHED (90 s) -> FIN_WAIT (7 s)-like change: the shorter time must win.
    let mut t = ConnTable::new(4, 0);
    let id = t.insert(conn(1), 90_000, 0).expect("insert");
    assert!(run(&mut t, 0, 100, 10).is_empty());
    t.refresh(id, 500, 100);
    let at = run(&mut t, 100, 2000, 1);
    assert_eq!(at.len(), 1);
    assert!(
        (600..=600 + WHEEL_TICK_MS).contains(&at[0]),
        "removed at {}",
        at[0]
    );
}

#[test]
fn extend_keeps_the_conn() {
    let mut t = ConnTable::new(4, 0);
    let id = t.insert(conn(1), 1000, 0).expect("insert");
    let mut calls = Vec::new();
    let mut now = 0;
    while now <= 5000 {
        t.expire(now, 10, |_, _| {
            calls.push(now);
            if calls.len() == 1 {
                Expiry::Extend(2000)
            } else {
                Expiry::Remove
            }
        });
        now += 1;
    }
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!((1000..=1000 + WHEEL_TICK_MS).contains(&calls[0]));
    let due2 = calls[0] + 2000;
    assert!(
        (due2..=due2 + WHEEL_TICK_MS).contains(&calls[1]),
        "{calls:?}"
    );
    assert!(!t.contains(id));
}

#[test]
fn budget_is_respected() {
    let mut t = ConnTable::new(200, 0);
    for i in 0..100 {
        t.insert(conn(i), 1000, 0).expect("insert");
    }
    let mut handled = 0;
    let n = t.expire(5000, 30, |_, _| {
        handled += 1;
        Expiry::Remove
    });
    assert_eq!((n, handled), (30, 30));
    assert_eq!(t.len(), 70);
    // Extend counts against the budget too, and removes nothing.
    let mut handled = 0;
    let n = t.expire(5000, 20, |_, _| {
        handled += 1;
        Expiry::Extend(60_000)
    });
    assert_eq!((n, handled), (0, 20));
    assert_eq!(t.len(), 70);
    assert_eq!(t.expire(5000, 0, |_, _| Expiry::Remove), 0);
    assert_eq!(t.expire(5000, 1000, |_, _| Expiry::Remove), 50);
    assert_eq!(t.len(), 20);
    // The extended ones come due 60 s later.
    assert_eq!(t.expire(64_000, 1000, |_, _| Expiry::Remove), 0);
    assert_eq!(
        t.expire(65_000 + WHEEL_TICK_MS, 1000, |_, _| Expiry::Remove),
        20
    );
    assert!(t.is_empty());
}

#[test]
fn removing_the_conn_expire_would_resume_at_is_safe() {
    let mut t = ConnTable::new(16, 0);
    let ids: Vec<ConnId> = (0..10)
        .map(|i| t.insert(conn(i), 100, 0).expect("insert"))
        .collect();
    let mut first = Vec::new();
    assert_eq!(
        t.expire(1000, 3, |id, _| {
            first.push(id);
            Expiry::Remove
        }),
        3
    );
    // Remove every remaining conn but two by hand, including the resume point.
    let rest: Vec<ConnId> = ids
        .iter()
        .copied()
        .filter(|id| !first.contains(id))
        .collect();
    for id in &rest[..5] {
        t.remove(*id);
    }
    let mut second = Vec::new();
    assert_eq!(
        t.expire(1000, 100, |id, _| {
            second.push(id);
            Expiry::Remove
        }),
        2
    );
    second.sort_by_key(|id| id.0);
    assert_eq!(second, rest[5..].to_vec());
    assert!(t.is_empty());
}

#[test]
fn timeouts_longer_than_a_revolution() {
    let revolution = WHEEL_SLOTS as u64 * WHEEL_TICK_MS;
    let timeout = (3 * revolution + revolution / 2 + 7) as u32;
    let mut t = ConnTable::new(4, 0);
    t.insert(conn(1), timeout, 0).expect("insert");
    let due = u64::from(timeout);
    assert!(run(&mut t, 0, due - 200, 100).is_empty());
    let at = run(&mut t, due - 199, due + 2 * WHEEL_TICK_MS, 1);
    assert_eq!(at.len(), 1);
    assert!(
        (due..=due + WHEEL_TICK_MS).contains(&at[0]),
        "due {due}, at {}",
        at[0]
    );
}

#[test]
fn maximal_timeout_and_clock_jumps() {
    let start = 1_000_000;
    let mut t = ConnTable::new(4, start);
    let long = t.insert(conn(1), u32::MAX, start).expect("insert");
    let short = t.insert(conn(2), 10_000, start).expect("insert");
    let due = start + u64::from(u32::MAX);
    // Big jumps: each scans the wheel once and must not expire the long conn early.
    let mut now = start;
    let mut removed = Vec::new();
    while now < due - 1000 {
        t.expire(now, 100, |id, _| {
            removed.push(id);
            Expiry::Remove
        });
        now += 987_654_321;
        now = now.min(due - 1000);
    }
    t.expire(due - 1000, 100, |id, _| {
        removed.push(id);
        Expiry::Remove
    });
    assert_eq!(removed, vec![short]);
    assert!(t.contains(long));
    let at = run(&mut t, due - 999, due + 2 * WHEEL_TICK_MS, 1);
    assert_eq!(at.len(), 1);
    assert!(
        (due..=due + WHEEL_TICK_MS).contains(&at[0]),
        "due {due}, at {}",
        at[0]
    );
}

#[test]
fn expired_slots_are_reused_without_limit() {
    // Churn several times the capacity through the table via expiry alone.
    let mut t = ConnTable::new(64, 0);
    let mut now = 0;
    let mut next_port = 0u16;
    for _round in 0..10 {
        while t.len() < 64 {
            t.insert(conn(next_port), 50, now)
                .expect("room after expiry");
            next_port = next_port.wrapping_add(1);
        }
        assert_eq!(t.insert(conn(next_port), 50, now), Err(InsertError::Full));
        now += 50 + WHEEL_TICK_MS;
        assert_eq!(t.expire(now, usize::MAX, |_, _| Expiry::Remove), 64);
    }
}

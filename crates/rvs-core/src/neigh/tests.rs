use super::*;

fn ip(last: u8) -> Addr {
    Addr::v4(192, 168, 1, last)
}

fn mac(last: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 0, last])
}

fn ok_queue(solicit: bool) -> QueueResult {
    QueueResult::Queued { solicit }
}

#[test]
fn learn_then_lookup() {
    let mut t = NeighTable::new(8, 4, 64);
    assert!(t.is_empty());
    assert_eq!(t.lookup(&ip(1)), None);
    assert!(t.learn(ip(1), mac(1), 3, 100));
    assert_eq!(t.lookup(&ip(1)), Some((mac(1), 3)));
    // Refresh with the same MAC: not a change.
    assert!(!t.learn(ip(1), mac(1), 3, 200));
    // A new MAC is reported.
    assert!(t.learn(ip(1), mac(9), 3, 300));
    assert_eq!(t.lookup(&ip(1)), Some((mac(9), 3)));
    let v6: Addr = "fe80::1".parse().unwrap();
    assert!(t.learn(v6, mac(6), 0, 300));
    assert_eq!(t.lookup(&v6), Some((mac(6), 0)));
    // The IPv4-mapped form of an address is not confused with its v6 cousin.
    assert_eq!(t.lookup(&"::192.168.1.1".parse().unwrap()), None);
    assert_eq!(t.len(), 2);
    let e = t.get(&ip(1)).unwrap();
    assert_eq!(
        (e.state, e.updated_ms, e.port),
        (NeighState::Reachable, 300, 3)
    );
}

#[test]
fn queue_learn_drain_delivers_frames_in_order() {
    let mut t = NeighTable::new(8, 8, 16);
    let frames: [&[u8]; 3] = [&[0xaa; 16], &[1, 2, 3], &[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]];
    assert_eq!(t.queue(ip(5), 1, frames[0], 0), ok_queue(true));
    // Another address interleaved: must not leak into ip(5)'s drain.
    assert_eq!(t.queue(ip(6), 2, &[0x66; 4], 1), ok_queue(true));
    assert_eq!(t.queue(ip(5), 1, frames[1], 2), ok_queue(false));
    assert_eq!(t.queue(ip(5), 0, frames[2], 3), ok_queue(false));
    assert_eq!(t.pending(), 4);
    // Unresolved: no forwarding yet.
    assert_eq!(t.lookup(&ip(5)), None);
    assert_eq!(t.get(&ip(5)).unwrap().state, NeighState::Incomplete);
    assert!(t.learn(ip(5), mac(5), 1, 10));
    let mut got: Vec<(PortId, Vec<u8>)> = Vec::new();
    t.drain(&ip(5), |port, bytes| {
        // Mutable so the caller can patch the destination MAC in place.
        bytes[0] ^= 0xff;
        got.push((port, bytes.to_vec()));
    });
    let want: Vec<(PortId, Vec<u8>)> = vec![
        (1, [vec![0x55], vec![0xaa; 15]].concat()),
        (1, vec![0xfe, 2, 3]),
        (0, vec![0xf6, 8, 7, 6, 5, 4, 3, 2, 1, 0]),
    ];
    assert_eq!(got, want);
    assert_eq!(t.pending(), 1);
    // Drained frames are gone.
    let mut again = 0;
    t.drain(&ip(5), |_, _| again += 1);
    assert_eq!(again, 0);
    let mut other = Vec::new();
    t.drain(&ip(6), |p, b| other.push((p, b.to_vec())));
    assert_eq!(other, vec![(2, vec![0x66; 4])]);
    assert_eq!(t.pending(), 0);
}

#[test]
fn full_queue_and_oversized_frames_are_dropped() {
    let mut t = NeighTable::new(8, 2, 8);
    assert_eq!(t.queue(ip(1), 0, &[1; 8], 0), ok_queue(true));
    assert_eq!(t.queue(ip(1), 0, &[2; 8], 0), ok_queue(false));
    assert_eq!(t.queue(ip(1), 0, &[3; 8], 0), QueueResult::Dropped);
    // A new address gets no entry when its frame cannot be kept.
    assert_eq!(t.queue(ip(2), 0, &[4; 1], 0), QueueResult::Dropped);
    assert!(t.get(&ip(2)).is_none());
    let mut t2 = NeighTable::new(8, 2, 8);
    assert_eq!(t2.queue(ip(1), 0, &[0; 9], 0), QueueResult::Dropped);
    // Draining frees the storage for reuse.
    t.learn(ip(1), mac(1), 0, 1);
    let mut n = 0;
    t.drain(&ip(1), |_, b| {
        n += 1;
        assert_eq!(b, &[n as u8; 8]);
    });
    assert_eq!(n, 2);
    assert_eq!(t.queue(ip(2), 0, &[4; 1], 5), ok_queue(true));
}

#[test]
fn solicit_only_for_the_first_frame_and_after_one_second() {
    let mut t = NeighTable::new(8, 16, 8);
    assert_eq!(t.queue(ip(1), 0, &[0], 1_000), ok_queue(true));
    assert_eq!(t.queue(ip(1), 0, &[0], 1_500), ok_queue(false));
    assert_eq!(t.queue(ip(1), 0, &[0], 1_999), ok_queue(false));
    assert_eq!(t.queue(ip(1), 0, &[0], 2_000), ok_queue(true));
    // The interval restarts from the last solicitation, not the first frame.
    assert_eq!(t.queue(ip(1), 0, &[0], 2_999), ok_queue(false));
    assert_eq!(t.queue(ip(1), 0, &[0], 3_000), ok_queue(true));
    // A second address has its own timer.
    assert_eq!(t.queue(ip(2), 0, &[0], 3_001), ok_queue(true));
    // A resolved address needs no solicitation.
    t.learn(ip(3), mac(3), 0, 3_000);
    assert_eq!(t.queue(ip(3), 0, &[0], 9_000), ok_queue(false));
    // A clock going backwards does not trigger a storm.
    assert_eq!(t.queue(ip(1), 0, &[0], 10), ok_queue(false));
}

#[test]
fn aging_removes_learned_and_pending_but_keeps_static() {
    let mut t = NeighTable::new(8, 8, 8);
    t.add_static(ip(1), mac(1), 0).unwrap();
    assert!(t.learn(ip(2), mac(2), 0, 0));
    assert!(t.learn(ip(3), mac(3), 0, 50_000));
    assert_eq!(t.queue(ip(4), 0, &[4], 55_000), ok_queue(true));
    assert_eq!(t.queue(ip(4), 0, &[5], 58_000), ok_queue(true));

    // max age 60 s: ip(2) is 50 s old -> stale but kept; ip(3) 0 s -> reachable.
    t.age(50_000, 60_000, 3_000);
    assert_eq!(t.get(&ip(2)).unwrap().state, NeighState::Stale);
    assert_eq!(t.lookup(&ip(2)), Some((mac(2), 0)));
    assert_eq!(t.get(&ip(3)).unwrap().state, NeighState::Reachable);

    // At 60_001 ip(2) is past 60 s; ip(4)'s first frame is 5 s old, its second 2 s.
    t.age(60_001, 60_000, 3_000);
    assert_eq!(t.lookup(&ip(2)), None);
    assert!(t.get(&ip(2)).is_none());
    assert_eq!(t.lookup(&ip(1)), Some((mac(1), 0)));
    assert!(t.get(&ip(3)).is_some());
    assert_eq!(t.pending(), 1);
    assert_eq!(t.get(&ip(4)).unwrap().state, NeighState::Incomplete);

    // Once its last frame expires the incomplete entry goes too.
    t.age(61_001, 60_000, 3_000);
    assert_eq!(t.pending(), 0);
    assert!(t.get(&ip(4)).is_none());

    // A refresh resets the clock and the state.
    t.age(100_000, 60_000, 3_000);
    assert_eq!(t.get(&ip(3)).unwrap().state, NeighState::Stale);
    assert!(!t.learn(ip(3), mac(3), 0, 100_000));
    assert_eq!(t.get(&ip(3)).unwrap().state, NeighState::Reachable);
    t.age(120_000, 60_000, 3_000);
    assert_eq!(t.get(&ip(3)).unwrap().state, NeighState::Reachable);

    // Far in the future only the static entry is left.
    t.age(1_000_000_000, 60_000, 3_000);
    let left: Vec<Addr> = t.iter().map(|e| e.addr).collect();
    assert_eq!(left, vec![ip(1)]);
    assert_eq!(t.len(), 1);
}

#[test]
fn full_table_evicts_the_oldest_learned_entry() {
    let mut t = NeighTable::new(3, 4, 8);
    t.add_static(ip(1), mac(1), 0).unwrap();
    assert!(t.learn(ip(2), mac(2), 0, 10));
    assert!(t.learn(ip(3), mac(3), 0, 20));
    // Refreshing ip(2) makes ip(3) the oldest learned entry.
    t.learn(ip(2), mac(2), 0, 30);
    assert!(t.learn(ip(4), mac(4), 0, 40));
    assert_eq!(t.len(), 3);
    assert_eq!(t.lookup(&ip(3)), None);
    assert!(t.lookup(&ip(1)).is_some());
    assert!(t.lookup(&ip(2)).is_some());
    assert!(t.lookup(&ip(4)).is_some());
    // Next victim: ip(2) (30) before ip(4) (40); never the static ip(1).
    assert!(t.learn(ip(5), mac(5), 0, 50));
    assert!(t.get(&ip(2)).is_none());
    assert!(t.learn(ip(6), mac(6), 0, 60));
    assert!(t.get(&ip(4)).is_none());
    let mut addrs: Vec<Addr> = t.iter().map(|e| e.addr).collect();
    addrs.sort();
    assert_eq!(addrs, vec![ip(1), ip(5), ip(6)]);
}

#[test]
fn static_entries_fill_the_table_then_report_full() {
    let mut t = NeighTable::new(2, 2, 8);
    t.add_static(ip(1), mac(1), 0).unwrap();
    assert!(t.learn(ip(2), mac(2), 0, 0));
    // A static add may push out a learned entry...
    t.add_static(ip(3), mac(3), 0).unwrap();
    assert!(t.get(&ip(2)).is_none());
    // ...but never another static one.
    assert_eq!(t.add_static(ip(4), mac(4), 0), Err(NeighError::Full));
    assert!(!t.learn(ip(4), mac(4), 0, 0));
    assert_eq!(t.queue(ip(4), 0, &[1], 0), QueueResult::Dropped);
    assert_eq!(t.pending(), 0);
    // Re-adding an existing static entry updates it in place.
    t.add_static(ip(3), mac(7), 1).unwrap();
    assert_eq!(t.lookup(&ip(3)), Some((mac(7), 1)));
    // Learning does not override the operator.
    assert!(!t.learn(ip(3), mac(8), 0, 5));
    assert_eq!(t.lookup(&ip(3)), Some((mac(7), 1)));
    assert_eq!(
        NeighError::Full.to_string(),
        "neighbour table full of static entries"
    );
}

#[test]
fn learned_entry_becomes_static_and_stops_aging() {
    let mut t = NeighTable::new(2, 2, 8);
    assert!(t.learn(ip(1), mac(1), 0, 0));
    t.add_static(ip(1), mac(1), 0).unwrap();
    assert!(t.learn(ip(2), mac(2), 0, 0));
    // ip(1) is no longer an eviction candidate: ip(2) goes instead.
    assert!(t.learn(ip(3), mac(3), 0, 1));
    assert!(t.get(&ip(2)).is_none());
    t.age(1_000_000, 1_000, 1_000);
    assert_eq!(t.get(&ip(1)).unwrap().state, NeighState::Static);
    assert!(t.get(&ip(3)).is_none());
}

#[test]
fn del_removes_entry_and_its_pending_frames() {
    let mut t = NeighTable::new(4, 2, 8);
    assert_eq!(t.del(&ip(1)), Err(NeighError::NotFound));
    t.add_static(ip(1), mac(1), 0).unwrap();
    t.del(&ip(1)).unwrap();
    assert_eq!(t.lookup(&ip(1)), None);
    assert_eq!(t.queue(ip(2), 0, &[1], 0), ok_queue(true));
    assert_eq!(t.queue(ip(2), 0, &[2], 0), ok_queue(false));
    t.del(&ip(2)).unwrap();
    assert_eq!(t.pending(), 0);
    assert!(t.is_empty());
    // The storage is usable again, and a recreated entry solicits afresh.
    assert_eq!(t.queue(ip(2), 0, &[3], 1), ok_queue(true));
    assert_eq!(NeighError::NotFound.to_string(), "no such neighbour");
}

#[test]
fn eviction_of_an_incomplete_entry_frees_its_frames() {
    let mut t = NeighTable::new(1, 2, 8);
    assert_eq!(t.queue(ip(1), 0, &[1], 0), ok_queue(true));
    assert_eq!(t.pending(), 1);
    assert!(t.learn(ip(2), mac(2), 0, 1));
    assert!(t.get(&ip(1)).is_none());
    assert_eq!(t.pending(), 0);
    let mut n = 0;
    t.drain(&ip(2), |_, _| n += 1);
    assert_eq!(n, 0);
}

#[test]
fn degenerate_sizes_do_not_panic() {
    let mut t = NeighTable::new(0, 0, 0);
    assert!(!t.learn(ip(1), mac(1), 0, 0));
    assert_eq!(t.add_static(ip(1), mac(1), 0), Err(NeighError::Full));
    assert_eq!(t.queue(ip(1), 0, &[], 0), QueueResult::Dropped);
    t.age(u64::MAX, 0, 0);
    t.drain(&ip(1), |_, _| unreachable!());
    assert_eq!(t.len(), 0);
    // Zero-length frames are legal when there is room.
    let mut t = NeighTable::new(1, 1, 0);
    assert_eq!(t.queue(ip(1), 0, &[], 0), ok_queue(true));
    let mut lens = Vec::new();
    t.drain(&ip(1), |_, b| lens.push(b.len()));
    assert_eq!(lens, vec![0]);
    // Absurd sizes are refused up front instead of overflowing.
    let t = NeighTable::new(1, usize::MAX, usize::MAX);
    assert_eq!(t.pending(), 0);
    assert!(t.memory_bytes() > 0);
}

#[test]
fn churn_keeps_the_table_consistent() {
    // Random learn/del/queue/age against a simple model of which addresses exist.
    let mut t = NeighTable::new(32, 16, 4);
    let mut x = 0x9e37_79b9u64;
    for now in 0..20_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let a = Addr::v4(10, 0, (x >> 8) as u8 % 2, (x >> 16) as u8 % 64);
        match x % 5 {
            0 | 1 => {
                t.learn(a, mac((x >> 24) as u8), 0, now);
                assert!(t.lookup(&a).is_some());
            }
            2 => {
                let existed = t.get(&a).is_some();
                assert_eq!(t.del(&a).is_ok(), existed);
                assert!(t.get(&a).is_none());
            }
            3 => {
                let _ = t.queue(a, 0, &[1, 2], now);
            }
            _ => t.age(now, 5_000, 100),
        }
        assert!(t.len() <= 32);
        assert_eq!(t.iter().count(), t.len());
        assert!(t.pending() <= 16);
        for e in t.iter() {
            assert_eq!(t.get(&e.addr), Some(e));
        }
    }
}

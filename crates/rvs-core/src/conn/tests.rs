//! Tests of the conn table: index, slab, wheel, batch lookup, memory budget.

use super::*;
use crate::addr::{proto, Addr};

const CIP: Addr = Addr::v4(192, 0, 2, 10);
const VIP: Addr = Addr::v4(10, 0, 0, 100);
const LIP: Addr = Addr::v4(10, 0, 1, 1);
const RIP: Addr = Addr::v4(10, 0, 2, 20);

/// FNAT conn number `i`: only ports vary, so every conn shares its four addresses.
fn fnat(i: u32) -> Conn {
    let cport = (i & 0xffff) as u16;
    let hi = (i >> 16) as u16;
    Conn::new(
        FwdMode::Fnat,
        &Tuple::new(proto::TCP, CIP, cport, VIP, 80 + hi),
        &Tuple::new(proto::TCP, RIP, 8080 + hi, LIP, cport),
    )
}

fn in_t(i: u32) -> Tuple {
    let hi = (i >> 16) as u16;
    Tuple::new(proto::TCP, CIP, (i & 0xffff) as u16, VIP, 80 + hi)
}

fn out_t(i: u32) -> Tuple {
    let hi = (i >> 16) as u16;
    Tuple::new(proto::TCP, RIP, 8080 + hi, LIP, (i & 0xffff) as u16)
}

#[test]
fn insert_and_lookup_from_both_directions() {
    let mut t = ConnTable::new(16, 0);
    let mut c = fnat(1234);
    c.service = 7;
    c.dest = 3;
    let id = t.insert(c, 1000, 0).expect("insert");
    assert_eq!(t.len(), 1);
    assert_eq!(t.lookup(&in_t(1234)), Some((id, Dir::In)));
    assert_eq!(t.lookup(&out_t(1234)), Some((id, Dir::Out)));
    let got = t.get(id);
    assert_eq!((got.cip, got.vip, got.rip, got.lip), (CIP, VIP, RIP, LIP));
    assert_eq!(
        (got.cport, got.vport, got.rport, got.lport),
        (1234, 80, 8080, 1234)
    );
    assert_eq!((got.service, got.dest, got.laddr), (7, 3, u32::MAX));
    // The reverse of the in tuple, another proto, another port: all misses.
    assert_eq!(t.lookup(&Tuple::new(proto::TCP, VIP, 80, CIP, 1234)), None);
    assert_eq!(
        t.lookup(&Tuple {
            proto: proto::UDP,
            ..in_t(1234)
        }),
        None
    );
    assert_eq!(t.lookup(&in_t(1235)), None);
    assert_eq!(
        t.lookup(&Tuple {
            src: Addr::v4(192, 0, 2, 11),
            ..in_t(1234)
        }),
        None
    );
}

#[test]
fn dr_conn_matches_in_tuple_only() {
    let mut t = ConnTable::new(16, 0);
    let mut c = Conn::new_in_only(FwdMode::Dr, &in_t(5));
    c.rip = RIP;
    c.rport = 80;
    assert_ne!(c.flags & flags::NO_OUT_TUPLE, 0);
    let id = t.insert(c, 1000, 0).expect("insert");
    assert_eq!(t.lookup(&in_t(5)), Some((id, Dir::In)));
    // The RS's reply tuple is not indexed.
    assert_eq!(
        t.lookup(&Tuple::new(proto::TCP, RIP, 80, Addr::UNSPECIFIED, 0)),
        None
    );
    assert_eq!(t.lookup(&Tuple::new(proto::TCP, RIP, 80, CIP, 5)), None);
    // Two DR conns with the same (empty) out fields do not clash.
    let mut c2 = Conn::new_in_only(FwdMode::Dr, &in_t(6));
    c2.rip = RIP;
    c2.rport = 80;
    let id2 = t.insert(c2, 1000, 0).expect("second DR conn");
    assert_eq!(t.lookup(&in_t(6)), Some((id2, Dir::In)));
    t.remove(id);
    assert_eq!(t.lookup(&in_t(5)), None);
    assert_eq!(t.lookup(&in_t(6)), Some((id2, Dir::In)));
}

#[test]
fn remove_unindexes_both_tuples_and_returns_conn() {
    let mut t = ConnTable::new(16, 0);
    let id = t.insert(fnat(9), 1000, 0).expect("insert");
    let other = t.insert(fnat(10), 1000, 0).expect("insert");
    let c = t.remove(id);
    assert_eq!((c.cport, c.lport), (9, 9));
    assert_eq!(t.lookup(&in_t(9)), None);
    assert_eq!(t.lookup(&out_t(9)), None);
    assert!(!t.contains(id));
    assert!(t.try_get(id).is_none());
    assert_eq!(t.len(), 1);
    assert_eq!(t.lookup(&out_t(10)), Some((other, Dir::Out)));
    // The conn can come back.
    let id3 = t.insert(fnat(9), 1000, 0).expect("re-insert");
    assert_eq!(t.lookup(&out_t(9)), Some((id3, Dir::Out)));
}

#[test]
fn full_table_errors_and_recovers() {
    let mut t = ConnTable::new(4, 0);
    let ids: Vec<ConnId> = (0..4)
        .map(|i| t.insert(fnat(i), 1000, 0).expect("fits"))
        .collect();
    assert_eq!(t.insert(fnat(4), 1000, 0), Err(InsertError::Full));
    assert_eq!(t.insert(fnat(5), 1000, 0), Err(InsertError::Full));
    assert_eq!(t.lookup(&in_t(4)), None);
    assert_eq!(t.len(), 4);
    t.remove(ids[2]);
    let id = t.insert(fnat(4), 1000, 0).expect("room again");
    assert_eq!(t.lookup(&in_t(4)), Some((id, Dir::In)));
    assert_eq!(InsertError::Full.to_string(), "connection table full");

    let mut z = ConnTable::new(0, 0);
    assert_eq!(z.insert(fnat(0), 1000, 0), Err(InsertError::Full));
    assert_eq!(z.lookup(&in_t(0)), None);
    assert_eq!(z.expire(1_000_000, 10, |_, _| Expiry::Remove), 0);
}

#[test]
fn duplicate_is_refused_and_changes_nothing() {
    let mut t = ConnTable::new(16, 0);
    let id = t.insert(fnat(1), 1000, 0).expect("insert");
    // Same in tuple, new out tuple.
    let mut dup_in = fnat(1);
    dup_in.lport = 999;
    assert_eq!(t.insert(dup_in, 1000, 0), Err(InsertError::Exists));
    assert_eq!(
        t.lookup(&Tuple {
            dport: 999,
            ..out_t(1)
        }),
        None
    );
    // New in tuple, same out tuple.
    let mut dup_out = fnat(1);
    dup_out.cport = 2;
    assert_eq!(t.insert(dup_out, 1000, 0), Err(InsertError::Exists));
    assert_eq!(
        t.lookup(&Tuple {
            sport: 2,
            ..in_t(1)
        }),
        None
    );
    // A conn whose two tuples are equal could not tell its sides apart.
    let same = Tuple::new(proto::UDP, CIP, 53, VIP, 53);
    assert_eq!(
        t.insert(Conn::new(FwdMode::Nat, &same, &same), 1000, 0),
        Err(InsertError::Exists)
    );
    assert_eq!(t.lookup(&same), None);
    assert_eq!(t.len(), 1);
    assert_eq!(t.iter().count(), 1);
    assert_eq!(t.lookup(&in_t(1)), Some((id, Dir::In)));
    assert_eq!(t.lookup(&out_t(1)), Some((id, Dir::Out)));
    // A template (in tuple only) may not shadow a conn's out tuple either.
    let mut tpl = Conn::new_in_only(FwdMode::Fnat, &out_t(1));
    tpl.flags |= flags::TEMPLATE;
    assert_eq!(t.insert(tpl, 1000, 0), Err(InsertError::Exists));
    assert_eq!(InsertError::Exists.to_string(), "connection already exists");
}

#[test]
fn fill_100k_colliding_keys_then_remove_half() {
    const N: u32 = 100_000;
    let mut t = ConnTable::new(N as usize, 0);
    let ids: Vec<ConnId> = (0..N)
        .map(|i| t.insert(fnat(i), 60_000, 0).expect("fits"))
        .collect();
    assert_eq!(t.len(), N as usize);
    assert_eq!(t.insert(fnat(N), 60_000, 0), Err(InsertError::Full));
    for i in 0..N {
        assert_eq!(
            t.lookup(&in_t(i)),
            Some((ids[i as usize], Dir::In)),
            "in {i}"
        );
        assert_eq!(
            t.lookup(&out_t(i)),
            Some((ids[i as usize], Dir::Out)),
            "out {i}"
        );
    }
    for i in (0..N).step_by(2) {
        let c = t.remove(ids[i as usize]);
        assert_eq!(c.in_tuple(), in_t(i));
    }
    assert_eq!(t.len(), (N / 2) as usize);
    for i in 0..N {
        let want_in = (!i.is_multiple_of(2)).then_some((ids[i as usize], Dir::In));
        let want_out = (!i.is_multiple_of(2)).then_some((ids[i as usize], Dir::Out));
        assert_eq!(t.lookup(&in_t(i)), want_in, "in {i}");
        assert_eq!(t.lookup(&out_t(i)), want_out, "out {i}");
    }
    // Refill the freed half with new keys: all three generations coexist correctly.
    for i in N..N + N / 2 {
        t.insert(fnat(i), 60_000, 0).expect("refill");
    }
    assert_eq!(t.insert(fnat(3 * N), 60_000, 0), Err(InsertError::Full));
    for i in (1..N).step_by(2).chain(N..N + N / 2) {
        let (id, dir) = t.lookup(&out_t(i)).expect("present");
        assert_eq!(dir, Dir::Out);
        assert_eq!(t.get(id).in_tuple(), in_t(i));
    }
}

#[test]
fn ipv6_and_mixed_protocols_coexist() {
    let mut t = ConnTable::new(8, 0);
    let c6: Addr = "2001:db8::1".parse().expect("v6");
    let v6: Addr = "2001:db8::100".parse().expect("v6");
    let tcp = Tuple::new(proto::TCP, c6, 1000, v6, 443);
    let udp = Tuple {
        proto: proto::UDP,
        ..tcp
    };
    let icmp = Tuple::new(proto::ICMPV6, c6, 77, v6, 77);
    let a = t
        .insert(Conn::new_in_only(FwdMode::Dr, &tcp), 1000, 0)
        .expect("tcp");
    let b = t
        .insert(Conn::new_in_only(FwdMode::Dr, &udp), 1000, 0)
        .expect("udp");
    let c = t
        .insert(Conn::new_in_only(FwdMode::Dr, &icmp), 1000, 0)
        .expect("icmp");
    assert_eq!(t.lookup(&tcp), Some((a, Dir::In)));
    assert_eq!(t.lookup(&udp), Some((b, Dir::In)));
    assert_eq!(t.lookup(&icmp), Some((c, Dir::In)));
}

#[test]
fn lookup_batch_equals_lookup() {
    const N: u32 = 2000;
    let mut t = ConnTable::new(N as usize, 0);
    let mut live = Vec::new();
    for i in 0..N {
        let id = t.insert(fnat(i), 60_000, 0).expect("insert");
        live.push(id);
    }
    for i in (0..N).step_by(3) {
        t.remove(live[i as usize]);
    }
    // Hits both ways, removed conns, never-inserted keys, near misses (other proto,
    // swapped direction): 100 keys, so several chunks of 32.
    let mut keys = Vec::new();
    let mut want = Vec::new();
    for k in 0..100u32 {
        let i = (k * 37) % (N + 200);
        let (key, expect) = match k % 5 {
            0 => (
                in_t(i),
                (i < N && !i.is_multiple_of(3)).then(|| (live[i as usize], Dir::In)),
            ),
            1 => (
                out_t(i),
                (i < N && !i.is_multiple_of(3)).then(|| (live[i as usize], Dir::Out)),
            ),
            2 => (
                Tuple {
                    proto: proto::UDP,
                    ..in_t(i)
                },
                None,
            ),
            3 => (
                Tuple::new(proto::TCP, VIP, 80, CIP, (i & 0xffff) as u16),
                None,
            ),
            _ => (
                Tuple {
                    sport: 7,
                    ..out_t(i)
                },
                None,
            ),
        };
        keys.push(key);
        want.push(expect);
    }
    assert!(want.iter().filter(|w| w.is_some()).count() > 20);
    let mut out = vec![Some((ConnId(u32::MAX), Dir::Out)); keys.len()];
    t.lookup_batch(&keys, &mut out);
    for (k, key) in keys.iter().enumerate() {
        assert_eq!(out[k], t.lookup(key), "key {k}");
        assert_eq!(out[k], want[k], "key {k}");
    }
    // A shorter output slice is filled as far as it goes, without a panic.
    let mut short = [None; 3];
    t.lookup_batch(&keys, &mut short);
    assert_eq!(short[..], want[..3]);
}

#[test]
fn conn_layout_and_memory_budget() {
    let size = std::mem::size_of::<Conn>();
    println!("size_of::<Conn>() = {size}");
    assert_eq!(size, 128);
    // Each key within one cache line.
    let line = |o: usize| o / 64;
    assert_eq!(
        line(std::mem::offset_of!(Conn, cip)),
        line(std::mem::offset_of!(Conn, proto))
    );
    assert_eq!(line(std::mem::offset_of!(Conn, vip) + 15), 0);
    assert_eq!(line(std::mem::offset_of!(Conn, cport)), 0);
    assert_eq!(line(std::mem::offset_of!(Conn, vport)), 0);
    for o in [
        std::mem::offset_of!(Conn, rip),
        std::mem::offset_of!(Conn, lip) + 15,
        std::mem::offset_of!(Conn, rport),
        std::mem::offset_of!(Conn, lport),
        std::mem::offset_of!(Conn, oproto),
        // The SYN proxy's shifts, read with the out key.
        std::mem::offset_of!(Conn, sp_seq),
        std::mem::offset_of!(Conn, sp_ts) + 3,
    ] {
        assert_eq!(line(o), 1);
    }
    assert_eq!(std::mem::align_of::<Conn>(), 64);

    let t = ConnTable::new(1_000_000, 0);
    let per_conn = t.memory_bytes() as f64 / t.capacity() as f64;
    println!(
        "memory_bytes = {}, bytes per conn = {per_conn:.1}",
        t.memory_bytes()
    );
    // Budget: 128-byte conn + 0.4 × 64-byte bucket + wheel heads.
    assert!(t.memory_bytes() / t.capacity() <= 160);
    assert!(t.memory_bytes() >= 1_000_000 * (size + 25));
}

#[test]
fn iter_lists_live_conns() {
    let mut t = ConnTable::new(8, 0);
    let a = t.insert(fnat(1), 1000, 0).expect("a");
    let b = t.insert(fnat(2), 1000, 0).expect("b");
    let c = t.insert(fnat(3), 1000, 0).expect("c");
    t.remove(b);
    let listed: Vec<(ConnId, u16)> = t.iter().map(|(id, c)| (id, c.cport)).collect();
    assert_eq!(listed, vec![(a, 1), (c, 3)]);
}

#[test]
#[should_panic(expected = "stale or invalid ConnId")]
fn get_on_removed_id_panics() {
    let mut t = ConnTable::new(8, 0);
    let a = t.insert(fnat(1), 1000, 0).expect("a");
    t.remove(a);
    let _ = t.get(a);
}

#[test]
fn get_mut_updates_non_key_fields() {
    let mut t = ConnTable::new(8, 0);
    let a = t.insert(fnat(1), 1000, 0).expect("a");
    t.get_mut(a).state = tcp::TcpState::Established as u8;
    t.get_mut(a).flags |= flags::TOA_SENT;
    assert_eq!(t.get(a).state, 1);
    assert_ne!(t.get(a).flags & flags::TOA_SENT, 0);
    assert_eq!(t.lookup(&out_t(1)), Some((a, Dir::Out)));
}

#[test]
fn remove_cleans_up_after_a_mutated_key() {
    // Changing a key field is a documented misuse; the index must still not keep a
    // dangling entry that a later conn in the same slot could be confused with.
    let mut t = ConnTable::new(8, 0);
    let a = t.insert(fnat(1), 1000, 0).expect("a");
    t.get_mut(a).cport = 4242;
    t.get_mut(a).rport = 4242;
    t.remove(a);
    let b = t.insert(fnat(2), 1000, 0).expect("b");
    assert_eq!(a, b, "slot reused");
    assert_eq!(t.lookup(&in_t(1)), None);
    assert_eq!(t.lookup(&out_t(1)), None);
    assert_eq!(t.lookup(&in_t(2)), Some((b, Dir::In)));
    t.remove(b);
    assert!(t.is_empty());
    // With both conns gone the index is empty: a full refill works.
    for i in 0..8 {
        t.insert(fnat(100 + i), 1000, 0).expect("refill");
    }
}

//! Properties of SYN cookies, over many random flows, sequence numbers,
//! options and clocks (a fixed-seed generator: failures reproduce).

use super::*;
use crate::addr::{proto, Addr};
use crate::conn::Tuple;
use crate::lab::Rng;

const KEY: [u64; 2] = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];

fn flow(r: &mut Rng) -> Tuple {
    let (src, dst) = if r.bool() {
        let a = r.u32().to_be_bytes();
        let b = r.u32().to_be_bytes();
        (Addr::from_v4_bytes(a), Addr::from_v4_bytes(b))
    } else {
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        a[..8].copy_from_slice(&r.next().to_be_bytes());
        a[8..].copy_from_slice(&r.next().to_be_bytes());
        b[..8].copy_from_slice(&r.next().to_be_bytes());
        b[8..].copy_from_slice(&r.next().to_be_bytes());
        a[0] = 0x20;
        b[0] = 0x20;
        (Addr(a), Addr(b))
    };
    Tuple::new(proto::TCP, src, r.u32() as u16, dst, r.u32() as u16)
}

fn syn_options(r: &mut Rng) -> SynOptions {
    SynOptions {
        mss: r.bool().then(|| r.u32() as u16),
        wscale: r.bool().then(|| r.below(16) as u8),
        sack: r.bool(),
        tsval: r.bool().then(|| r.u32()),
        ecn: r.bool(),
    }
}

/// A clock anywhere in the first ~34 years, so that epochs of every parity
/// and wrap-arounds of the 32-bit ms timestamp come up.
fn clock(r: &mut Rng) -> u64 {
    r.below(1 << 40) + 2 * EPOCH_MS
}

/// A random SYN (of sequence number `seq`, else a random one), the cookie
/// `jar` makes for it, and the client's ACK that returns it.
struct Case {
    t: Tuple,
    seq: u32,
    o: SynOptions,
    now: u64,
    c: Cookie,
    /// The ACK's sequence number, acknowledgment and TSecr.
    s: u32,
    a: u32,
    tsecr: Option<u32>,
}

fn case(r: &mut Rng, jar: &mut CookieJar, seq: Option<u32>) -> Case {
    let t = flow(r);
    let seq = seq.unwrap_or_else(|| r.u32());
    let o = syn_options(r);
    let now = clock(r);
    let c = jar.make(&t, seq, &o, now);
    Case {
        t,
        seq,
        o,
        now,
        c,
        s: seq.wrapping_add(1),
        a: c.isn.wrapping_add(1),
        tsecr: c.tsval,
    }
}

/// A fixed IPv4 flow.
fn v4_flow() -> Tuple {
    Tuple::new(
        proto::TCP,
        Addr::v4(10, 0, 0, 1),
        1,
        Addr::v4(10, 0, 0, 2),
        80,
    )
}

#[test]
fn a_cookie_checks_within_its_lifetime_and_gives_the_options_back() {
    let mut r = Rng(1);
    let mut jar = CookieJar::new(KEY);
    for _ in 0..20_000 {
        let Case {
            t,
            seq,
            o,
            now,
            c,
            s,
            a,
            tsecr,
        } = case(&mut r, &mut jar, None);
        // Anywhere in the rest of its epoch and the whole next one.
        let left = EPOCH_MS - now % EPOCH_MS + EPOCH_MS;
        let later = now + r.below(left);
        let got = jar.check(&t, s, a, tsecr, later);
        assert_eq!(
            got,
            Some(c.opts),
            "flow {t:?} seq {seq} {o:?} made {now} checked {later}"
        );
        let table = if t.src.is_v4() { &MSS_V4 } else { &MSS_V6 };
        let want_mss = table
            .iter()
            .rev()
            .find(|&&m| m <= o.mss.unwrap_or(table[0]))
            .copied()
            .unwrap_or(table[0]);
        assert_eq!(c.opts.mss, want_mss, "{o:?}");
        assert_eq!(c.opts.timestamps, o.tsval.is_some());
        if o.tsval.is_some() {
            assert_eq!(c.opts.wscale, o.wscale.map(|w| w.min(WSCALE_MAX)));
            assert_eq!((c.opts.sack, c.opts.ecn), (o.sack, o.ecn));
            let ts = c.tsval.unwrap();
            assert!(
                ts <= now as u32 || (now as u32) < 64,
                "TSval {ts} ahead of {now}"
            );
        } else {
            // Nowhere to keep them without timestamps (as Linux).
            assert_eq!((c.opts.wscale, c.opts.sack, c.tsval), (None, false, None));
        }
    }
}

#[test]
fn a_cookie_fails_once_its_secret_is_retired() {
    let mut r = Rng(2);
    let mut jar = CookieJar::new(KEY);
    for _ in 0..20_000 {
        let Case {
            t,
            now,
            s,
            a,
            tsecr,
            ..
        } = case(&mut r, &mut jar, None);
        // From the start of the epoch after next, at any later time.
        let retired = (now / EPOCH_MS + 2) * EPOCH_MS;
        let later = retired + r.below(1 << 36);
        assert_eq!(
            jar.check(&t, s, a, tsecr, later),
            None,
            "made {now} checked {later}"
        );
        // And 128 s after it was made, always.
        assert_eq!(jar.check(&t, s, a, tsecr, now + 2 * EPOCH_MS), None);
    }
}

#[test]
fn the_last_ms_of_the_next_epoch_still_checks_and_the_first_after_does_not() {
    let mut jar = CookieJar::new(KEY);
    let mut r = Rng(3);
    for e in [2u64, 3, 1000, 1001] {
        let t = flow(&mut r);
        let now = e * EPOCH_MS + 17;
        let c = jar.make(&t, 7, &SynOptions::default(), now);
        let end = (e + 2) * EPOCH_MS;
        assert!(jar
            .check(&t, 8, c.isn.wrapping_add(1), None, end - 1)
            .is_some());
        assert!(jar.check(&t, 8, c.isn.wrapping_add(1), None, end).is_none());
        // A check from the epoch before it was made (the clock is per
        // process and monotonic: only a forged cookie looks like that).
        assert!(jar
            .check(&t, 8, c.isn.wrapping_add(1), None, now - EPOCH_MS)
            .is_none());
    }
}

#[test]
fn any_bit_flip_fails() {
    let mut r = Rng(4);
    let mut jar = CookieJar::new(KEY);
    for _ in 0..2_000 {
        let Case {
            t,
            seq,
            now,
            c,
            s,
            a,
            tsecr,
            ..
        } = case(&mut r, &mut jar, None);
        assert!(jar.check(&t, s, a, tsecr, now).is_some());
        for bit in 0..32 {
            let cookie = c.isn ^ (1 << bit);
            assert_eq!(
                jar.check(&t, s, cookie.wrapping_add(1), tsecr, now),
                None,
                "cookie bit {bit} flipped"
            );
            let isn = seq ^ (1 << bit);
            assert_eq!(
                jar.check(&t, isn.wrapping_add(1), a, tsecr, now),
                None,
                "client ISN bit {bit} flipped"
            );
        }
        if let Some(ts) = tsecr {
            for bit in 0..6 {
                assert_eq!(
                    jar.check(&t, s, a, Some(ts ^ (1 << bit)), now),
                    None,
                    "TSecr option bit {bit} flipped"
                );
            }
            // Timestamps dropped from the ACK, or added to one without.
            assert_eq!(jar.check(&t, s, a, None, now), None);
        } else {
            assert_eq!(jar.check(&t, s, a, Some(r.u32()), now), None);
        }
        for bit in 0..128 {
            let mut u = t;
            u.src = Addr::from_u128(t.src.as_u128() ^ (1 << bit));
            assert_eq!(jar.check(&u, s, a, tsecr, now), None, "source bit {bit}");
            let mut u = t;
            u.dst = Addr::from_u128(t.dst.as_u128() ^ (1 << bit));
            assert_eq!(
                jar.check(&u, s, a, tsecr, now),
                None,
                "destination bit {bit}"
            );
        }
        for bit in 0..16 {
            let mut u = t;
            u.sport ^= 1 << bit;
            assert_eq!(jar.check(&u, s, a, tsecr, now), None, "sport bit {bit}");
            let mut u = t;
            u.dport ^= 1 << bit;
            assert_eq!(jar.check(&u, s, a, tsecr, now), None, "dport bit {bit}");
        }
    }
}

#[test]
fn another_master_key_fails() {
    let mut r = Rng(5);
    let mut ours = CookieJar::new(KEY);
    let mut theirs = CookieJar::new([KEY[0], KEY[1] ^ 1]);
    for _ in 0..10_000 {
        let k = case(&mut r, &mut theirs, None);
        assert_eq!(ours.check(&k.t, k.s, k.a, k.tsecr, k.now), None);
    }
}

#[test]
fn client_sequence_numbers_wrap_around() {
    let mut r = Rng(6);
    let mut jar = CookieJar::new(KEY);
    // The client's ISN at the top of the space: its ACK's sequence number
    // wraps to 0 (or 1, 2...).
    for seq in [u32::MAX, u32::MAX - 1, 0, 1] {
        for _ in 0..2_000 {
            let k = case(&mut r, &mut jar, Some(seq));
            let later = k.now + 1;
            assert_eq!(jar.check(&k.t, k.s, k.a, k.tsecr, later), Some(k.c.opts));
            // The ACK of the SYN-ACK before it (seq unchanged) is not it.
            assert_eq!(jar.check(&k.t, seq, k.a, k.tsecr, later), None);
        }
    }
}

#[test]
fn mss_follows_linux_tables() {
    let mut jar = CookieJar::new(KEY);
    let v4 = v4_flow();
    let v6 = Tuple::new(
        proto::TCP,
        "2001:db8::1".parse().unwrap(),
        1,
        "2001:db8::2".parse().unwrap(),
        80,
    );
    let mss = |jar: &mut CookieJar, t: &Tuple, m: Option<u16>| {
        let o = SynOptions {
            mss: m,
            ..SynOptions::default()
        };
        let c = jar.make(t, 1, &o, 3 * EPOCH_MS);
        let back = jar.check(t, 2, c.isn.wrapping_add(1), None, 3 * EPOCH_MS);
        assert_eq!(back.map(|n| n.mss), Some(c.opts.mss));
        c.opts.mss
    };
    assert_eq!(mss(&mut jar, &v4, Some(1460)), 1460);
    assert_eq!(mss(&mut jar, &v4, Some(9000)), 1460);
    assert_eq!(mss(&mut jar, &v4, Some(1459)), 1440);
    assert_eq!(mss(&mut jar, &v4, Some(1300)), 1300);
    assert_eq!(mss(&mut jar, &v4, Some(1000)), 536);
    assert_eq!(mss(&mut jar, &v4, None), 536);
    assert_eq!(mss(&mut jar, &v6, Some(1440)), 1440);
    assert_eq!(mss(&mut jar, &v6, Some(8960)), 8940);
    assert_eq!(mss(&mut jar, &v6, Some(1419)), 1220);
    assert_eq!(mss(&mut jar, &v6, None), 1220);
}

#[test]
fn timestamp_bits_are_linux_s() {
    let mut jar = CookieJar::new(KEY);
    let t = v4_flow();
    let now = 1_000_000 + 40; // 1_000_000 is a multiple of 64
    let o = SynOptions {
        mss: Some(1460),
        wscale: Some(7),
        sack: true,
        tsval: Some(99),
        ecn: false,
    };
    let c = jar.make(&t, 1, &o, now);
    // wscale 7, SACK (bit 4); the clock rounded down to 64 ms: 23 <= 40.
    assert_eq!(c.tsval, Some(1_000_000 | 7 | 16));
    let o = SynOptions {
        wscale: None,
        sack: false,
        ecn: true,
        ..o
    };
    let c = jar.make(&t, 1, &o, now);
    // No window scale is 15; ECN is bit 5; 15 | 32 = 47 > 40 = now % 64:
    // one step of 64 back so that it is not ahead of the clock.
    assert_eq!(c.tsval, Some((1_000_000 - 64) | 15 | 32));
    assert_eq!(c.opts.wscale, None);
    // A SYN offering a shift above 14 is taken as 14 (RFC 7323).
    let o = SynOptions {
        wscale: Some(15),
        ..o
    };
    assert_eq!(jar.make(&t, 1, &o, now).opts.wscale, Some(14));
}

#[test]
fn secrets_rotate_every_epoch() {
    let mut jar = CookieJar::new(KEY);
    let t = v4_flow();
    let o = SynOptions::default();
    let isns: Vec<u32> = (10..20)
        .map(|e| jar.make(&t, 1, &o, e * EPOCH_MS).isn)
        .collect();
    // Same flow, same SYN: a different cookie in every epoch.
    let mut sorted = isns.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), isns.len(), "{isns:x?}");
    // Within one epoch the cookie is the same (a retransmitted SYN gets the
    // same answer).
    assert_eq!(jar.make(&t, 1, &o, 12 * EPOCH_MS + 63_999).isn, isns[2]);
}

//! [`owner`]: the steering rules of the module doc computed in Rust, for
//! backends where no kernel program steers (DPDK's `net_af_packet` and
//! `net_af_xdp` vdevs spread frames over queues by their own hash): a
//! worker that receives a frame another worker owns hands it over.
//!
//! It is a twin of [`build_cbpf`](super::build_cbpf), kept equal to it by
//! a differential test against the cBPF interpreter (`steer/tests.rs`,
//! every existing case and random frames): the same loads, the same
//! "a load past the end returns worker 0", the same keys.

use super::Steering;

/// ICMPv4 error types (as the cBPF program's `ICMP4_ERRORS`).
const ICMP4_ERRORS: [u8; 5] = [3, 4, 5, 11, 12];

/// The network header, read as the cBPF program reads it: big-endian,
/// `None` past the end (the program's "return 0").
struct Net<'a>(&'a [u8]);

impl Net<'_> {
    fn b(&self, off: usize) -> Option<u32> {
        self.0.get(off).map(|&v| v as u32)
    }

    fn h(&self, off: usize) -> Option<u32> {
        let s = self.0.get(off..off.checked_add(2)?)?;
        Some(u16::from_be_bytes([s[0], s[1]]) as u32)
    }

    fn w(&self, off: usize) -> Option<u32> {
        let s = self.0.get(off..off.checked_add(4)?)?;
        Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn w4(&self, off: usize) -> Option<[u32; 4]> {
        Some([
            self.w(off)?,
            self.w(off + 4)?,
            self.w(off + 8)?,
            self.w(off + 12)?,
        ])
    }
}

/// The packet whose connection decides: the frame's own fields or, for an
/// ICMP error, those of the reply to the packet it quotes.
struct Key {
    src: [u32; 4],
    dst: [u32; 4],
    sport: u32,
    dport: u32,
    proto: u32,
}

/// The worker (`0..workers`) that owns the connection of the Ethernet
/// `frame` under `s`, as the cBPF program would return it for the same
/// frame (one 802.1Q/802.1ad tag is looked through, as the kernel strips
/// the outer tag before the program runs).
pub fn owner(frame: &[u8], s: &Steering) -> u16 {
    let w = s.workers.max(1) as u32;
    let ether = |o: usize| {
        frame
            .get(o..o + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let (mut ty, mut off) = (ether(12), 14);
    if matches!(ty, Some(0x8100 | 0x88a8)) {
        (ty, off) = (ether(16), 18);
    }
    let Some(net) = frame.get(off..) else {
        return 0;
    };
    let net = Net(net);
    let r = match ty {
        Some(0x0800) => v4(&net).map(|k| rules4(&k, s, w)),
        Some(0x86dd) => v6(&net).map(|k| rules6(&k, s, w)),
        _ => None,
    };
    r.unwrap_or(0) as u16
}

/// IPv4 fields (the program's `v4_fields`), `None` for worker 0.
fn v4(n: &Net) -> Option<Key> {
    let mut src = n.w(12)?;
    let mut dst = n.w(16)?;
    let mut proto = n.b(9)?;
    if n.h(6)? & 0x1fff != 0 {
        return None;
    }
    let x = 4 * (n.b(0)? & 0xf) as usize;
    let (sport, dport);
    if proto == 6 || proto == 17 {
        (sport, dport) = (n.h(x)?, n.h(x + 2)?);
    } else if proto == 1 {
        let t = n.b(x)? as u8;
        if t == 0 {
            let id = n.h(x + 4)?;
            (sport, dport) = (id, id);
        } else if ICMP4_ERRORS.contains(&t) {
            // The quote at x + 8, reversed.
            if n.b(x + 8)? & 0xf0 != 0x40 || n.h(x + 8 + 6)? & 0x1fff != 0 {
                return None;
            }
            dst = n.w(x + 8 + 12)?;
            src = n.w(x + 8 + 16)?;
            proto = n.b(x + 8 + 9)?;
            let ihl = ((n.b(x + 8)? & 0xf) << 2) as usize;
            if ihl < 20 {
                return None;
            }
            let t4 = ihl + x + 8;
            if proto == 6 || proto == 17 {
                (dport, sport) = (n.h(t4)?, n.h(t4 + 2)?);
            } else if proto == 1 && n.b(t4)? == 8 {
                let id = n.h(t4 + 4)?;
                (sport, dport) = (id, id);
            } else {
                return None;
            }
        } else {
            return None;
        }
    } else {
        return None;
    }
    Some(Key {
        src: [0, 0, 0, src],
        dst: [0, 0, 0, dst],
        sport,
        dport,
        proto,
    })
}

/// IPv6 fields (the program's `v6_fields`), `None` for worker 0.
fn v6(n: &Net) -> Option<Key> {
    let mut proto = n.b(6)?;
    let (sport, dport, src, dst);
    if proto == 6 || proto == 17 {
        (sport, dport) = (n.h(40)?, n.h(42)?);
        (src, dst) = (n.w4(8)?, n.w4(24)?);
    } else if proto == 58 {
        let t = n.b(40)?;
        if (1..=4).contains(&t) {
            if n.b(48)? & 0xf0 != 0x60 {
                return None;
            }
            proto = n.b(48 + 6)?;
            if proto == 6 || proto == 17 {
                (dport, sport) = (n.h(88)?, n.h(90)?);
            } else if proto == 58 && n.b(88)? == 128 {
                let id = n.h(92)?;
                (sport, dport) = (id, id);
            } else {
                return None;
            }
            (dst, src) = (n.w4(48 + 8)?, n.w4(48 + 24)?);
        } else if t == 129 {
            let id = n.h(44)?;
            (sport, dport) = (id, id);
            (src, dst) = (n.w4(8)?, n.w4(24)?);
        } else {
            return None;
        }
    } else {
        return None;
    }
    Some(Key {
        src,
        dst,
        sport,
        dport,
        proto,
    })
}

/// The IPv4 rules (`v4_rules`): keys on the low word.
fn rules4(k: &Key, s: &Steering, w: u32) -> u32 {
    let is = |list: &[[u8; 4]], a: u32| list.iter().any(|p| u32::from_be_bytes(*p) == a);
    if is(&s.pool_v4, k.dst[3]) {
        return k.dport % w;
    }
    if k.proto == 1 {
        return 0;
    }
    if is(&s.rs_v4, k.src[3]) {
        return (k.dport ^ k.dst[3]) % w;
    }
    (k.sport ^ k.src[3]) % w
}

/// The IPv6 rules (`v6_rules`): membership on all 128 bits, keys on the
/// low word.
fn rules6(k: &Key, s: &Steering, w: u32) -> u32 {
    let words = |a: &[u8; 16]| {
        let mut o = [0u32; 4];
        for (i, c) in a.chunks_exact(4).enumerate() {
            o[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        o
    };
    let is = |list: &[[u8; 16]], a: [u32; 4]| list.iter().any(|p| words(p) == a);
    if is(&s.pool_v6, k.dst) {
        return k.dport % w;
    }
    if k.proto == 58 {
        return 0;
    }
    if is(&s.rs_v6, k.src) {
        return (k.dport ^ k.dst[3]) % w;
    }
    (k.sport ^ k.src[3]) % w
}

//! SYN cookies: the sequence number (and, with timestamps, the TSval) of a
//! SYN-ACK that lets the ACK coming back prove the client saw it, and carry
//! the options the client's SYN offered, with no state kept in between.
//!
//! # Encoding
//! The cookie is the ISN of rvs's SYN-ACK (`ack - 1` of the client's ACK):
//!
//! | bits | what |
//! |-----:|------|
//! | 0..2 | index of the MSS in [`MSS_V4`] / [`MSS_V6`] (Linux's tables) |
//! | 2    | parity of the secret's epoch |
//! | 3..32 | 29 bits of SipHash-2-4 under the epoch's secret |
//!
//! The hash covers the flow (addresses and ports, IPv4 and IPv6 alike in
//! their 16-byte form), the client's ISN, the MSS index, the parity and the
//! option bits carried in the timestamp: flipping any bit of the cookie, the
//! client's ISN or those option bits makes the check fail (but for a chance
//! of 2^-29).
//!
//! When the client's SYN has timestamps, its window scale, SACK-permitted
//! and ECN go in the low 6 bits of rvs's TSval, as Linux does
//! (`net/ipv4/syncookies.c`): bits 0..4 the client's window scale (15: none),
//! bit 4 SACK permitted, bit 5 ECN; the rest of the TSval is the clock in
//! ms, rounded down to a multiple of 64 and never ahead of it. The client's
//! ACK echoes it in TSecr. Without timestamps there is nowhere to keep them:
//! the connection goes on without window scaling and SACK, as with Linux's
//! syncookies.
//!
//! # Secrets
//! Time is cut into epochs of [`EPOCH_MS`] (64 s). Each epoch has its own
//! 128-bit secret, derived from the jar's master key and the epoch number
//! with SipHash, so every worker holding the same master key agrees on it
//! without talking to the others. A cookie is accepted in the epoch it was
//! made in and in the next one: it lives at least 64 s and less than 128 s.
//! The two secrets in use are cached and rotated when the clock enters a
//! new epoch.

use super::siphash::siphash24;
use crate::conn::Tuple;
use crate::wire::tcp::TcpOption;

/// Length of a secret's epoch, ms.
pub const EPOCH_MS: u64 = 64_000;
/// MSS values an IPv4 cookie can carry (Linux's table).
pub const MSS_V4: [u16; 4] = [536, 1300, 1440, 1460];
/// MSS values an IPv6 cookie can carry (Linux's table: 1280, 1480, 1500 and
/// 9000 byte MTUs less 60).
pub const MSS_V6: [u16; 4] = [1220, 1420, 1440, 8940];
/// The largest window scale (RFC 7323); larger offers are taken as 14.
pub const WSCALE_MAX: u8 = 14;

/// Option bits kept in the TSval.
const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
const TS_WSCALE_MASK: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;
const TS_ECN: u32 = 1 << 5;
/// Marks "the client sent timestamps" in the hashed option byte.
const TS_PRESENT: u8 = 0x80;

/// Cookie bit fields.
const MSS_IDX_MASK: u32 = 0x3;
const PARITY_BIT: u32 = 1 << 2;
const MAC_MASK: u32 = !0x7;

/// The options of a client's SYN that a cookie remembers.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SynOptions {
    /// MSS option (none: 536 for IPv4, 1220 for IPv6 are assumed).
    pub mss: Option<u16>,
    /// Window scale shift offered.
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack: bool,
    /// The client's TSval, if it sent timestamps.
    pub tsval: Option<u32>,
    /// The client asked for ECN (ECE and CWR on the SYN).
    pub ecn: bool,
}

impl SynOptions {
    /// Collects the options a cookie keeps from a SYN's option list; `ecn`
    /// is whether the SYN carried ECE and CWR.
    pub fn from_options<'a>(opts: impl Iterator<Item = TcpOption<'a>>, ecn: bool) -> SynOptions {
        let mut o = SynOptions {
            ecn,
            ..SynOptions::default()
        };
        for opt in opts {
            match opt {
                TcpOption::Mss(m) => o.mss = Some(m),
                TcpOption::WindowScale(s) => o.wscale = Some(s.min(WSCALE_MAX)),
                TcpOption::SackPermitted => o.sack = true,
                TcpOption::Timestamps(v, _) => o.tsval = Some(v),
                _ => {}
            }
        }
        o
    }
}

/// The options a connection goes on with, as a valid cookie gives them back.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// MSS (from the cookie's table).
    pub mss: u16,
    /// The client's window scale shift, if window scaling is on.
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack: bool,
    /// Timestamps on.
    pub timestamps: bool,
    /// ECN requested.
    pub ecn: bool,
}

/// What to put in the SYN-ACK: its ISN (the cookie) and, when the client
/// sent timestamps, rvs's TSval; plus the options it stands for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Cookie {
    /// The SYN-ACK's sequence number.
    pub isn: u32,
    /// The SYN-ACK's TSval (with the options in its low bits).
    pub tsval: Option<u32>,
    /// What the cookie carries.
    pub opts: Negotiated,
}

/// The MSS table of the flow's family.
fn mss_table(t: &Tuple) -> &'static [u16; 4] {
    if t.src.is_v4() {
        &MSS_V4
    } else {
        &MSS_V6
    }
}

/// Index of the largest table entry not above `mss` (0 if all are).
fn mss_index(table: &[u16; 4], mss: u16) -> u32 {
    table.iter().rposition(|&m| m <= mss).unwrap_or(0) as u32
}

/// The timestamp option bits for `o` (Linux's layout).
fn ts_options(o: &SynOptions) -> u32 {
    let ws = o
        .wscale
        .map_or(TS_WSCALE_MASK, |s| u32::from(s.min(WSCALE_MAX)));
    ws | if o.sack { TS_SACK } else { 0 } | if o.ecn { TS_ECN } else { 0 }
}

/// The options a cookie stands for, from its MSS index and TSecr bits.
fn negotiated(mss: u16, ts: Option<u32>) -> Option<Negotiated> {
    let Some(bits) = ts else {
        return Some(Negotiated {
            mss,
            wscale: None,
            sack: false,
            timestamps: false,
            ecn: false,
        });
    };
    let ws = bits & TS_WSCALE_MASK;
    let wscale = match ws {
        TS_WSCALE_MASK => None,
        s if s <= u32::from(WSCALE_MAX) => Some(s as u8),
        _ => return None,
    };
    Some(Negotiated {
        mss,
        wscale,
        sack: bits & TS_SACK != 0,
        timestamps: true,
        ecn: bits & TS_ECN != 0,
    })
}

/// Makes and checks cookies for one worker (every worker of a process uses
/// the same master key; see the module doc).
#[derive(Clone, Debug)]
pub struct CookieJar {
    master: [u64; 2],
    /// The newest epoch whose secret is cached in `keys[0]`; `keys[1]` is
    /// the one before.
    epoch: u64,
    keys: [[u64; 2]; 2],
}

impl CookieJar {
    /// A jar whose epoch secrets derive from `master`.
    pub fn new(master: [u64; 2]) -> CookieJar {
        CookieJar {
            master,
            epoch: 0,
            keys: [derive(master, 0), [0; 2]],
        }
    }

    /// The secret of epoch `e`, rotating the cache when `e` is newer.
    fn key(&mut self, e: u64) -> [u64; 2] {
        if e == self.epoch {
            return self.keys[0];
        }
        if e + 1 == self.epoch {
            return self.keys[1];
        }
        if e == self.epoch + 1 {
            self.keys[1] = self.keys[0];
        } else if e > self.epoch {
            self.keys[1] = derive(self.master, e - 1);
        } else {
            // Older than the cache (a clock going back): not cached.
            return derive(self.master, e);
        }
        self.keys[0] = derive(self.master, e);
        self.epoch = e;
        self.keys[0]
    }

    /// The cookie for a SYN of flow `t` (as the client sent it) with
    /// sequence number `seq` and options `o`, at `now_ms`.
    pub fn make(&mut self, t: &Tuple, seq: u32, o: &SynOptions, now_ms: u64) -> Cookie {
        let table = mss_table(t);
        let idx = mss_index(table, o.mss.unwrap_or(table[0]));
        let e = now_ms / EPOCH_MS;
        let low = idx | if e & 1 == 1 { PARITY_BIT } else { 0 };
        let ts_bits = o.tsval.map(|_| ts_options(o));
        let mac = mac(self.key(e), t, seq, low, ts_bits);
        let tsval = ts_bits.map(|bits| {
            let now = now_ms as u32;
            let ts = (now & !TS_MASK) | bits;
            if ts > now {
                ts.wrapping_sub(1 << TS_BITS)
            } else {
                ts
            }
        });
        let opts = negotiated(table[idx as usize], ts_bits).unwrap_or(Negotiated {
            mss: table[idx as usize],
            wscale: None,
            sack: false,
            timestamps: false,
            ecn: false,
        });
        Cookie {
            isn: (mac & MAC_MASK) | low,
            tsval,
            opts,
        }
    }

    /// Checks the ACK of flow `t` (as the client sent it) with sequence
    /// number `seq`, acknowledgment number `ack` and, if it has timestamps,
    /// TSecr `tsecr`, at `now_ms`: the options the cookie carries, or `None`
    /// when it is not a cookie of this jar, or an expired one.
    pub fn check(
        &mut self,
        t: &Tuple,
        seq: u32,
        ack: u32,
        tsecr: Option<u32>,
        now_ms: u64,
    ) -> Option<Negotiated> {
        let cookie = ack.wrapping_sub(1);
        let client_isn = seq.wrapping_sub(1);
        let low = cookie & !MAC_MASK;
        let now_e = now_ms / EPOCH_MS;
        let odd = low & PARITY_BIT != 0;
        let e = if (now_e & 1 == 1) == odd {
            now_e
        } else {
            now_e.checked_sub(1)?
        };
        let ts_bits = tsecr.map(|v| v & TS_MASK);
        let mac = mac(self.key(e), t, client_isn, low, ts_bits);
        if (mac ^ cookie) & MAC_MASK != 0 {
            return None;
        }
        negotiated(mss_table(t)[(low & MSS_IDX_MASK) as usize], ts_bits)
    }
}

/// The secret of epoch `e` under `master`.
fn derive(master: [u64; 2], e: u64) -> [u64; 2] {
    let mut m = [0u8; 9];
    m[..8].copy_from_slice(&e.to_le_bytes());
    let k0 = siphash24(master, &m);
    m[8] = 1;
    [k0, siphash24(master, &m)]
}

/// The keyed hash a cookie's upper bits come from.
fn mac(key: [u64; 2], t: &Tuple, client_isn: u32, low: u32, ts_bits: Option<u32>) -> u32 {
    let mut m = [0u8; 42];
    m[0..16].copy_from_slice(&t.src.0);
    m[16..32].copy_from_slice(&t.dst.0);
    m[32..34].copy_from_slice(&t.sport.to_be_bytes());
    m[34..36].copy_from_slice(&t.dport.to_be_bytes());
    m[36..40].copy_from_slice(&client_isn.to_be_bytes());
    m[40] = low as u8;
    m[41] = ts_bits.map_or(0, |b| TS_PRESENT | b as u8);
    siphash24(key, &m) as u32
}

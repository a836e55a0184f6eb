//! Per-worker connection table: slab, two-direction hash index, lazy timer wheel,
//! and the LVS TCP state machine ([`tcp`]).
//!
//! Each worker owns one [`ConnTable`] (share-nothing: no locks, no atomics). All
//! memory is allocated once by [`ConnTable::new`]; inserting, looking up, refreshing
//! and expiring never allocate, and a full table is reported as
//! [`InsertError::Full`], never a panic.
//!
//! # Storage
//! Conns live in one preallocated `Vec<Conn>` slab. A [`Conn`] is exactly 128 bytes
//! and cache-line aligned, laid out so that the whole *in* key (cip, vip, ports,
//! proto) sits in its first cache line and the whole *out* key (rip, lip, ports, a
//! private copy of proto) in its second: confirming a hash hit costs one cache miss
//! whichever direction the packet came from. Free slots are chained through the
//! timer-wheel `next` link, so the free list costs no memory of its own.
//!
//! # Hash index
//! Open addressing at bucket granularity. A bucket is one 64-byte cache line holding
//! 10 entries (a 16-bit signature and a 32-bit slot value each) and an overflow
//! counter. An entry goes to its home bucket, or to the next bucket with a free
//! entry (linear probing, wrapping); every bucket it passes over has its overflow
//! counter incremented, so a lookup stops at the first bucket whose counter is zero
//! and a removal decrements the counters on its path: no tombstones. The slot value
//! is `conn index << 1 | direction`, so the index answers both "which conn" and
//! "which side". Signature 0 marks an empty entry.
//!
//! The bucket count is `ceil(0.4 * capacity)`, i.e. 4 entries of room per conn for
//! the 2 tuples a conn indexes (≤ 50 % entry load at full capacity), which keeps
//! overflow into the next bucket to about 1 % of entries. The count is *not* rounded
//! to a power of two: the home bucket is picked with a multiply-shift range
//! reduction (`(h >> 32) * buckets >> 32`), which is as cheap as a mask and keeps
//! the index at 25.6 bytes per conn for any capacity (power-of-two rounding would
//! cost up to 51 bytes per conn, e.g. at 10 M conns, and break the 160-byte budget).
//! With the 128-byte conn that is ~154 bytes per conn in total.
//!
//! The hash folds the two 16-byte addresses as 64-bit words through two
//! independent 64×64→128 folded multiplies and mixes ports and proto in with a
//! third (the wyhash construction). [`ConnTable::new`] keys it with a random
//! seed per table ([`fresh_seed`]), so nobody can compute offline a set
//! of tuples that share a probe run (hash flooding by spoofed SYNs);
//! [`ConnTable::with_seed`] fixes the seed for reproducible tests and benchmarks.
//!
//! [`ConnTable::lookup_batch`] overlaps the cache misses of up to 32 independent
//! lookups without prefetch intrinsics (the crate forbids `unsafe`): a first pass
//! hashes every key and reads every home bucket into a per-key signature-match
//! mask, a second pass reads the first candidate conn's key line of each key, and
//! only then are the keys compared, when the lines are already in cache.
//!
//! # Timer wheel
//! 4096 slots of [`WHEEL_TICK_MS`] (32 ms), one revolution ≈ 131 s. A conn is filed
//! (doubly linked through `prev`/`next` in the conn itself) in the slot of the tick
//! at or after its expiry. Timers are lazy: [`ConnTable::refresh`] only stores the
//! new expiry; when the conn's slot comes up and it is not yet due (it was refreshed,
//! or its expiry is more than one revolution away) it is re-filed for its current
//! expiry. Shortening an expiry (a state change to a shorter timeout) re-files it at
//! once (O(1) list surgery), so expiry is never later than one tick after it is due
//! as long as [`ConnTable::expire`] is called often enough, for any timeout up to
//! 2^32 ms. When the clock jumps by more than a revolution, `expire` scans each slot
//! once instead of every elapsed tick.
//!
//! # Ids
//! A [`ConnId`] is the slab index, stable while the conn lives. Methods taking an id
//! panic on an id that is out of range or names a free slot: ids only come from this
//! table, so such an id is a pipeline bug, never packet input. [`ConnTable::try_get`]
//! and [`ConnTable::contains`] check without panicking.

use crate::addr::{Addr, Mac, PortId};
use std::fmt;

mod index;
pub mod mem;
mod table;
pub mod tcp;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_flood;
#[cfg(test)]
mod tests_wheel;

pub use table::{fresh_seed, ConnTable, MAX_CAPACITY, WHEEL_SLOTS, WHEEL_TICK_MS};

/// Forwarding mode of a connection.
#[repr(u8)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum FwdMode {
    /// Full NAT: both addresses rewritten, the RS answers to a local address.
    #[default]
    Fnat,
    /// Direct routing: only the MAC is rewritten; replies bypass the LB.
    Dr,
    /// IP-in-IP tunnel to the RS; replies bypass the LB.
    Tunnel,
    /// Destination NAT: the RS routes replies back through the LB.
    Nat,
    /// Source NAT for outbound traffic from inside hosts.
    Snat,
}

/// Which side a packet came from, relative to the conn.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client -> LB: matches the conn's in tuple.
    In,
    /// RS or remote -> LB: matches the conn's out tuple.
    Out,
}

/// Lookup key. For ICMP echo the pipeline puts the echo identifier in both ports.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Tuple {
    /// IP protocol number (see [`crate::addr::proto`]).
    pub proto: u8,
    /// Source address of the packet.
    pub src: Addr,
    /// Destination address of the packet.
    pub dst: Addr,
    /// Source port (or ICMP echo identifier).
    pub sport: u16,
    /// Destination port (or ICMP echo identifier).
    pub dport: u16,
}

impl Tuple {
    /// A tuple from its parts, in packet order.
    pub const fn new(proto: u8, src: Addr, sport: u16, dst: Addr, dport: u16) -> Tuple {
        Tuple {
            proto,
            src,
            dst,
            sport,
            dport,
        }
    }
}

/// Bits of [`Conn::flags`]. Bits 0..8 belong to the table and the core modes;
/// bits 8..16 are left to the pipeline.
pub mod flags {
    /// A persistence template, not a real connection (only its in tuple is indexed;
    /// set [`NO_OUT_TUPLE`] too).
    pub const TEMPLATE: u16 = 1 << 0;
    /// Only the in tuple is indexed (DR, TUNNEL, templates): replies bypass the LB.
    pub const NO_OUT_TUPLE: u16 = 1 << 1;
    /// The TCP option carrying the client address (TOA) was already inserted.
    pub const TOA_SENT: u16 = 1 << 2;
    /// A template with live conns referring to it: not to be expired yet.
    pub const HAS_CONNS: u16 = 1 << 3;
    /// The conn counts as inactive for its dest (LVS `IP_VS_CONN_F_INACTIVE`).
    pub const INACTIVE: u16 = 1 << 4;
    /// Installed from a peer's sync stream, not created here (see
    /// [`crate::pipeline::Worker::install_synced`]).
    pub const SYNCED: u16 = 1 << 5;
    /// A synced FNAT conn whose local address is a peer's (active-active
    /// sync): no local port of this node, packets from the client leave with
    /// the owner's local address and port as their source.
    pub const FOREIGN: u16 = 1 << 6;
    /// A synced conn (active-active sync) that carried a packet on this
    /// node: the flow runs through here now, so its owner's removal and
    /// shorter timers no longer apply here.
    pub const LOCAL_SEEN: u16 = 1 << 7;
    /// First bit free for the pipeline's own use.
    pub const PIPELINE_FIRST: u16 = 1 << 8;
    /// A SYN proxy connection (the pipeline's; carried by sync): rvs
    /// answered the client's handshake itself and opened the connection to
    /// the real server afterwards, so their sequence numbers differ by
    /// [`Conn::sp_seq`] (and their timestamps by [`Conn::sp_ts`]). Waiting
    /// for the real server's SYN-ACK while the state is SYN_SENT.
    pub const SYNPROXY: u16 = 1 << 8;
    /// SYN proxy window scaling, bits 9..13 (the pipeline's, carried by
    /// sync): 0 when the real server's windows go to the client as they
    /// are; `s + 1` when they are scaled by `s` and must be rescaled to the
    /// shift rvs gave the client. While waiting for the SYN-ACK: 15 when the
    /// client offered window scaling, else 0.
    pub const SP_WSCALE: u16 = 0xf << 9;
    /// Position of [`SP_WSCALE`]'s lowest bit.
    pub const SP_WSCALE_SHIFT: u32 = 9;
    /// PROXY protocol version 1 toward the real server (the pipeline's,
    /// carried by sync; [`Conn::sp_ts`] holds the client's first sequence
    /// number then).
    pub const PROXY_V1: u16 = 1 << 13;
    /// PROXY protocol version 2 toward the real server (as [`PROXY_V1`]).
    pub const PROXY_V2: u16 = 1 << 14;
    /// Counted by its service's limits ([`crate::limit`]) when it was made:
    /// its removal is counted back (connections from sync are not counted).
    pub const LIMIT_COUNTED: u16 = 1 << 15;
}

/// [`Conn`]'s slot is live.
const SLOT_USED: u8 = 1 << 0;
/// [`Conn`]'s out tuple is indexed (it had no [`flags::NO_OUT_TUPLE`] when inserted).
const SLOT_HAS_OUT: u8 = 1 << 1;

/// Bits of [`Conn::local_flags`]: the pipeline's, for this node only (sync
/// never carries them), kept apart from [`flags`], whose 16 bits are all taken.
pub mod local_flags {
    /// The in direction (client to VIP) is forwarded by the XDP fast path.
    pub const FAST_IN: u8 = 1 << 0;
    /// The out direction (real server to local address) is forwarded by the
    /// XDP fast path.
    pub const FAST_OUT: u8 = 1 << 1;
    /// Installed from a hand-over ([`crate::pipeline::Worker::install_local`]):
    /// until its state's timeout has passed after
    /// [`crate::pipeline::Worker::start_imported`], it does not expire
    /// (the old process may have refreshed it after sending it).
    pub const IMPORTED: u8 = 1 << 2;
}

/// One connection.
///
/// In tuple: `(proto, cip:cport -> vip:vport)`. Out tuple: `(proto, rip:rport -> lip:lport)`.
/// FNAT: lip is the local address. NAT: lip = cip, lport = cport. SNAT: vip/vport =
/// remote dst, rip/rport = remote dst, lip/lport = WAN address/port. DR/TUNNEL and
/// persistence templates: only the in tuple is indexed ([`flags::NO_OUT_TUPLE`]).
///
/// The key fields (`cip`, `vip`, `lip`, `rip`, the four ports, `proto`) and the
/// [`flags::NO_OUT_TUPLE`] bit are read-only once the conn is inserted: the index
/// is built from them. To change a key, remove the conn and insert it again.
///
/// The layout is fixed (`repr(C)`, 128 bytes, 64-byte aligned): the in key is in
/// the first cache line and the out key in the second, see the module doc.
#[repr(C, align(64))]
#[derive(Copy, Clone, Debug)]
pub struct Conn {
    // ---- cache line 0: in key + per-packet fields ----
    /// Client address (source of in packets).
    pub cip: Addr,
    /// Virtual address (destination of in packets).
    pub vip: Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Forwarding mode.
    pub mode: FwdMode,
    /// Protocol state: a [`tcp::TcpState`] as `u8` for TCP, the pipeline's state for others.
    pub state: u8,
    /// The store's bits: [`SLOT_USED`], [`SLOT_HAS_OUT`].
    store_bits: u8,
    /// Bits from [`flags`].
    pub flags: u16,
    /// Port the in side was seen on, cached for the pipeline.
    pub in_port: PortId,
    /// Worker-local service slot.
    pub service: u32,
    /// Worker-local dest (real server) slot.
    pub dest: u32,
    /// Worker-local local-address slot, `u32::MAX` if none.
    pub laddr: u32,
    expires: u64,
    // ---- cache line 1: out key + timer links + the in side's previous hop + SYN proxy shifts ----
    /// Real-server address (source of out packets).
    pub rip: Addr,
    /// Local address (destination of out packets).
    pub lip: Addr,
    /// Real-server port.
    pub rport: u16,
    /// Local port.
    pub lport: u16,
    /// Port the out side was seen on, cached for the pipeline.
    pub out_port: PortId,
    oproto: u8,
    /// The pipeline's bits that stay on this node and are never synced
    /// (see [`local_flags`]).
    pub local_flags: u8,
    next: u32,
    prev: u32,
    wslot: u16,
    /// The previous hop of the in side: the source MAC of the first packet
    /// from the client (fast xmit sends the replies back to it, out of
    /// `in_port`); all zero when not known (a connection from sync that saw
    /// no packet of its client yet).
    pub in_mac: Mac,
    /// SYN proxy ([`flags::SYNPROXY`]): while rvs waits for the real
    /// server's SYN-ACK, the ISN rvs gave the client (the cookie); then the
    /// real server's ISN less the cookie (modulo 2^32), the shift between
    /// the real server's sequence numbers and the client's view. 0 otherwise.
    pub sp_seq: u32,
    /// SYN proxy with timestamps: while waiting, the TSval rvs gave the
    /// client; then rvs's TSval less the real server's, the shift between
    /// the real server's timestamps and the client's view. With the PROXY
    /// protocol ([`flags::PROXY_V1`], [`flags::PROXY_V2`]; no timestamp
    /// shift then): the client's sequence number of its first byte. 0
    /// otherwise.
    pub sp_ts: u32,
}

impl Conn {
    fn used(&self) -> bool {
        self.store_bits & SLOT_USED != 0
    }

    fn has_out(&self) -> bool {
        self.store_bits & SLOT_HAS_OUT != 0
    }

    /// A conn with every field zero or unset (`laddr` = `u32::MAX`).
    pub const EMPTY: Conn = Conn {
        cip: Addr::UNSPECIFIED,
        vip: Addr::UNSPECIFIED,
        cport: 0,
        vport: 0,
        proto: 0,
        mode: FwdMode::Fnat,
        state: 0,
        store_bits: 0,
        flags: 0,
        in_port: 0,
        service: 0,
        dest: 0,
        laddr: u32::MAX,
        expires: 0,
        rip: Addr::UNSPECIFIED,
        lip: Addr::UNSPECIFIED,
        rport: 0,
        lport: 0,
        out_port: 0,
        oproto: 0,
        local_flags: 0,
        next: 0,
        prev: 0,
        wslot: 0,
        in_mac: Mac([0; 6]),
        sp_seq: 0,
        sp_ts: 0,
    };

    /// A conn from its in tuple (client -> VIP) and out tuple (RS -> local address).
    /// The protocol is taken from the in tuple.
    pub fn new(mode: FwdMode, in_t: &Tuple, out_t: &Tuple) -> Conn {
        Conn {
            cip: in_t.src,
            vip: in_t.dst,
            cport: in_t.sport,
            vport: in_t.dport,
            proto: in_t.proto,
            mode,
            rip: out_t.src,
            lip: out_t.dst,
            rport: out_t.sport,
            lport: out_t.dport,
            ..Conn::EMPTY
        }
    }

    /// A conn indexed by its in tuple only ([`flags::NO_OUT_TUPLE`] set): DR, TUNNEL,
    /// persistence templates. The RS address and port are left for the caller.
    pub fn new_in_only(mode: FwdMode, in_t: &Tuple) -> Conn {
        let mut c = Conn::new(mode, in_t, &Tuple::default());
        c.flags = flags::NO_OUT_TUPLE;
        c
    }

    /// The key of packets from the client: `(proto, cip:cport -> vip:vport)`.
    #[inline]
    pub fn in_tuple(&self) -> Tuple {
        Tuple::new(self.proto, self.cip, self.cport, self.vip, self.vport)
    }

    /// The key of packets from the RS: `(proto, rip:rport -> lip:lport)`.
    #[inline]
    pub fn out_tuple(&self) -> Tuple {
        Tuple::new(self.proto, self.rip, self.rport, self.lip, self.lport)
    }

    /// The absolute expiry time in the table's clock (milliseconds).
    #[inline]
    pub fn expires_ms(&self) -> u64 {
        self.expires
    }

    /// Whether this conn is a persistence template.
    #[inline]
    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }
}

impl Default for Conn {
    fn default() -> Conn {
        Conn::EMPTY
    }
}

/// Handle to a conn slot (its index in the slab); stable while the conn lives.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(pub u32);

/// Why [`ConnTable::insert`] refused a conn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// The table holds `capacity` conns already.
    Full,
    /// The in or out tuple is already indexed (or the two tuples are equal).
    Exists,
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InsertError::Full => f.write_str("connection table full"),
            InsertError::Exists => f.write_str("connection already exists"),
        }
    }
}

impl std::error::Error for InsertError {}

/// What [`ConnTable::expire`] does with a due conn, as decided by its callback.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Remove the conn (after the callback returns).
    Remove,
    /// Keep it for this many more milliseconds from now.
    Extend(u32),
}

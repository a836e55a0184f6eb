//! Rate and connection limits per service and per source.
//!
//! What can be limited, for a service (all its clients together) and for
//! each source of it (an address, or the prefix it belongs to):
//!
//! - new connections per second (`conn_rate`), checked when the first packet
//!   of a flow would create a connection, before anything is allocated;
//! - packets and bytes per second from clients (`pkt_rate`, `byte_rate`),
//!   checked on every packet in the client-to-service direction (replies
//!   are not limited); a packet that would create a connection is checked
//!   before the connection is made;
//! - concurrent connections (`max_conns`).
//!
//! A refused packet is dropped and counted under its limit's
//! [`DropReason`] and in the service's
//! [`LimitDrops`]. Connections already made are never cut by a limit
//! except a packet or byte rate, which polices every packet.
//!
//! **Workers.** Workers share nothing, so each enforces its share of every
//! limit: a rate of R per second with bursts of B is R/W per second and B/W
//! on each of W workers (exact in fixed point, see [`bucket`]), so that the
//! workers' shares add up to the configured limit; a concurrent-connection
//! limit N is N/W per worker, the remainder given one each to the first
//! workers ([`bucket::share_count`]). Traffic spread unevenly over the
//! workers meets its limit a little early on the busier worker, never late.
//! A share never blocks everything: a worker whose burst share is below one
//! connection or one packet still lets one through when its bucket is full,
//! and every worker may hold at least one connection of a source (so with
//! fewer connections allowed than workers, the sum is the worker count).
//!
//! **Sources.** Per-source state lives in a bounded table per worker,
//! preallocated when the first per-source limit is configured
//! ([`src::SrcTable`]); a flood of random sources reuses its slots and never
//! grows memory. See its documentation for the eviction trade-off.

pub mod bucket;
pub mod src;
mod svc;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub use svc::{ConnTicket, SvcLimit};

/// A worker's limit state that is not per service: the source table, and
/// whether any service polices packets (so that the packets of other
/// services pay one test).
#[derive(Debug, Default)]
pub struct WorkerLimits {
    /// Per-source state.
    pub sources: src::SrcTable,
    /// Whether some service has a packet or bit rate (its own or per source).
    pub per_packet: bool,
}

use crate::stats::{bump, DropReason};

/// A rate limit: `per_sec` units (connections, packets or bytes) per
/// second, bursts of up to `burst` units (0: one second of `per_sec`).
/// `per_sec == 0` is no limit.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Rate {
    /// Units per second; 0 = no limit.
    pub per_sec: u64,
    /// Largest burst in units; 0 = `per_sec`.
    pub burst: u64,
}

impl Rate {
    /// A limit of `per_sec` per second with bursts of `burst`.
    pub const fn new(per_sec: u64, burst: u64) -> Rate {
        Rate { per_sec, burst }
    }

    /// Whether this limits anything.
    pub fn is_set(&self) -> bool {
        self.per_sec > 0
    }
}

/// The limits of a service as a whole, or of each of its sources.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitSet {
    /// New connections per second.
    pub conn_rate: Rate,
    /// Packets per second from clients.
    pub pkt_rate: Rate,
    /// Bytes (IP length) per second from clients.
    pub byte_rate: Rate,
    /// Concurrent connections; 0 = no limit.
    pub max_conns: u32,
}

impl LimitSet {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.conn_rate.is_set() || self.per_packet() || self.max_conns > 0
    }

    /// Whether every packet must be checked (a packet or byte rate).
    pub fn per_packet(&self) -> bool {
        self.pkt_rate.is_set() || self.byte_rate.is_set()
    }
}

/// A service's limits, in a [`crate::snapshot::Snapshot`].
#[derive(Debug, Default)]
pub struct ServiceLimits {
    /// Limits on the service as a whole.
    pub service: LimitSet,
    /// Limits on each source.
    pub source: LimitSet,
    /// Prefix length that groups IPv4 sources (32: each address).
    pub src_plen_v4: u8,
    /// Prefix length that groups IPv6 sources (128: each address).
    pub src_plen_v6: u8,
    /// Refusals per limit, shared by every snapshot's copy.
    pub drops: Arc<LimitDrops>,
}

/// Which limit refused a packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LimitKind {
    /// The service's new-connection rate.
    ConnRate,
    /// The service's packet rate.
    PktRate,
    /// The service's byte (bit) rate.
    ByteRate,
    /// The service's concurrent connections.
    Conns,
    /// A source's new-connection rate.
    SrcConnRate,
    /// A source's packet rate.
    SrcPktRate,
    /// A source's byte (bit) rate.
    SrcByteRate,
    /// A source's concurrent connections.
    SrcConns,
}

impl LimitKind {
    /// Every kind, in counter order.
    pub const ALL: [LimitKind; 8] = [
        LimitKind::ConnRate,
        LimitKind::PktRate,
        LimitKind::ByteRate,
        LimitKind::Conns,
        LimitKind::SrcConnRate,
        LimitKind::SrcPktRate,
        LimitKind::SrcByteRate,
        LimitKind::SrcConns,
    ];

    /// The drop reason packets refused by this limit are counted under.
    pub fn reason(self) -> DropReason {
        match self {
            LimitKind::ConnRate => DropReason::LimitConnRate,
            LimitKind::PktRate => DropReason::LimitPktRate,
            LimitKind::ByteRate => DropReason::LimitBitRate,
            LimitKind::Conns => DropReason::LimitConns,
            LimitKind::SrcConnRate => DropReason::LimitSrcConnRate,
            LimitKind::SrcPktRate => DropReason::LimitSrcPktRate,
            LimitKind::SrcByteRate => DropReason::LimitSrcBitRate,
            LimitKind::SrcConns => DropReason::LimitSrcConns,
        }
    }
}

/// One worker's refusal counters of a service, one per [`LimitKind`].
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct LimitDropBlock {
    counts: [AtomicU64; 8],
}

/// Refusals of a service per limit: a block per worker, written by that
/// worker only, summed by readers.
#[derive(Debug)]
pub struct LimitDrops {
    blocks: Box<[LimitDropBlock]>,
}

impl Default for LimitDrops {
    fn default() -> Self {
        LimitDrops::new(1)
    }
}

impl LimitDrops {
    /// Counters for `workers` workers (at least one).
    pub fn new(workers: usize) -> LimitDrops {
        LimitDrops {
            blocks: (0..workers.max(1))
                .map(|_| LimitDropBlock::default())
                .collect(),
        }
    }

    /// Counts one refusal by worker `w` (out-of-range workers share the last block).
    #[inline]
    pub fn count(&self, w: usize, k: LimitKind) {
        let last = self.blocks.len() - 1;
        bump(&self.blocks[w.min(last)].counts[k as usize], 1);
    }

    /// Refusals by `k`, summed over the workers.
    pub fn get(&self, k: LimitKind) -> u64 {
        self.blocks
            .iter()
            .map(|b| b.counts[k as usize].load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    /// Zeroes every counter (`rvsadm -Z`).
    pub fn zero(&self) {
        for b in self.blocks.iter() {
            for c in &b.counts {
                c.store(0, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

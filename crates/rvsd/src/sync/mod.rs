//! Connection sync in rvsd: the sender and the receiver of the stream whose
//! format is [`rvs_core::sync`], over a kernel UDP socket run by one sync
//! thread (never by the workers).
//!
//! # Sender (role master)
//! Each worker logs its connection events ([`rvs_core::pipeline::Worker::enable_sync_log`])
//! and, once per loop iteration, drains at most [`worker::DRAIN_MAX`] of
//! them plus at most [`worker::SWEEP_SLOTS`] table slots of the running
//! sweep into a batch it hands to the sync thread (a channel per direction,
//! [`worker::BATCHES`] batches recycled between them, so the worker never
//! allocates and never waits). The sync thread packs the records into
//! messages as large as the interface's MTU allows, numbered per stream
//! ([`stream::Packer`]), and sends them to the multicast group (or the
//! unicast peers).
//!
//! Packets refresh a connection's timer on the master only, so every
//! worker sweeps its whole table once per `refresh` (default: a third of
//! the shorter of the TCP established and UDP timeouts) and re-sends every
//! connection: the backup's timers never run out while the master's
//! connection lives. A full dump is the same sweep started at once: on a
//! backup's Resync request, and when a worker's sync log overflowed.
//!
//! # Receiver (role backup)
//! The sync thread receives, decodes (a bad message is counted by reason,
//! never a panic), follows each sender's sequence numbers
//! ([`stream::Streams`]: a gap is counted and answered with a Resync request
//! to the sender, as is the first message of a stream joined late), and
//! routes each record to the worker that owns its connection on this node
//! ([`stream::route`]); the worker installs or removes at most
//! [`worker::APPLY_MAX`] records per loop iteration. Messages from this
//! node (its node id) are ignored. Both nodes need the same services, local
//! addresses and number of workers.
//!
//! # Active peers (role both)
//! With both daemons running, every node sends and receives: ECMP nodes
//! behind one switch, each with its own local addresses. The workers then
//! report only the connections they created (never one installed from a
//! peer, which would echo it back), and install a peer's FNAT connection
//! whose local address is not theirs as a foreign connection; see
//! [`rvs_core::pipeline::Worker::set_sync_active`]. The peers need the same
//! services and number of workers; their local addresses differ.

pub mod net;
pub mod stream;
#[cfg(test)]
mod tests;
pub mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

pub use net::SyncCtl;
pub use worker::WorkerSync;

/// Sync counters (since rvsd started).
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages sent.
    pub sent_msgs: AtomicU64,
    /// Records sent.
    pub sent_records: AtomicU64,
    /// Datagrams the kernel refused.
    pub send_errors: AtomicU64,
    /// Events lost in full worker sync logs.
    pub lost_events: AtomicU64,
    /// Full dumps started.
    pub dumps: AtomicU64,
    /// Messages accepted.
    pub recv_msgs: AtomicU64,
    /// Records received.
    pub recv_records: AtomicU64,
    /// Messages of another sync id.
    pub other_syncid: AtomicU64,
    /// Sequence gaps.
    pub gaps: AtomicU64,
    /// Resync requests sent.
    pub resyncs_sent: AtomicU64,
    /// Records a worker's full channel could not take.
    pub dropped_records: AtomicU64,
    /// Undecodable messages, by [`stream::DECODE_ERRORS`].
    pub decode: [AtomicU64; 12],
    /// Install failures, by [`worker::INSTALL_ERRORS`].
    pub install: [AtomicU64; 10],
    /// Connections installed from a peer (new here, not updates).
    pub installed: AtomicU64,
    /// Of those, foreign connections (FNAT through a peer's local address).
    pub installed_foreign: AtomicU64,
}

/// What the sync thread, the workers and the control plane share.
#[derive(Debug, Default)]
pub struct SyncShared {
    /// A master daemon runs: workers log, sweep and send.
    pub master_on: AtomicBool,
    /// A backup daemon runs. With `master_on` too (role `both`), the peers
    /// are active: workers report only their own connections and install a
    /// peer's FNAT connections of its local addresses as foreign ones
    /// ([`rvs_core::pipeline::Worker::set_sync_active`]).
    pub backup_on: AtomicBool,
    /// Bumped to make every worker start a full dump.
    pub dump_gen: AtomicU64,
    /// Period of the refresh sweep, ms.
    pub refresh_ms: AtomicU64,
    /// Counters.
    pub c: Counters,
    /// The master's next sequence number, published by the sync thread
    /// after each send (a hot upgrade carries it).
    pub next_seq: AtomicU64,
    /// A predecessor's next sequence number, taken by the sync thread's
    /// master (0: none): its stream goes on without a gap.
    pub seq_base: AtomicU64,
}

impl SyncShared {
    /// Shared state with a refresh period of `refresh_ms`.
    pub fn new(refresh_ms: u64) -> SyncShared {
        let s = SyncShared::default();
        s.refresh_ms.store(refresh_ms.max(1000), Relaxed);
        s
    }

    /// The counters for `-L --daemon --stats`.
    pub fn stats(&self, node_id: u32) -> rvs_api::SyncStatsInfo {
        let c = &self.c;
        let g = |a: &AtomicU64| a.load(Relaxed);
        let named = |names: &[&str], v: &[AtomicU64]| {
            names
                .iter()
                .zip(v)
                .map(|(n, a)| (n.to_string(), g(a)))
                .collect()
        };
        rvs_api::SyncStatsInfo {
            node_id,
            sent_msgs: g(&c.sent_msgs),
            sent_records: g(&c.sent_records),
            send_errors: g(&c.send_errors),
            lost_events: g(&c.lost_events),
            dumps: g(&c.dumps),
            recv_msgs: g(&c.recv_msgs),
            recv_records: g(&c.recv_records),
            other_syncid: g(&c.other_syncid),
            gaps: g(&c.gaps),
            resyncs_sent: g(&c.resyncs_sent),
            dropped_records: g(&c.dropped_records),
            decode_errors: named(&stream::DECODE_ERRORS, &c.decode),
            install_errors: named(&worker::INSTALL_ERRORS, &c.install),
            installed: g(&c.installed),
            installed_foreign: g(&c.installed_foreign),
        }
    }
}

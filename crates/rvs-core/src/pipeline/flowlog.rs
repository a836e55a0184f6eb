//! Flow logs: a record when a connection is made and when it ends, with its
//! packets, bytes and duration. Off unless [`Worker::enable_flow_log`] was
//! called (then a counter slot per table slot and a bounded record buffer
//! are allocated once); the I/O layer drains the records between bursts
//! ([`Worker::drain_flow_log`]). Nothing here allocates per packet: a full
//! buffer counts the record as lost.
//!
//! [`Worker::enable_flow_log`]: super::Worker::enable_flow_log
//! [`Worker::drain_flow_log`]: super::Worker::drain_flow_log

use crate::addr::Addr;
use crate::conn::{tcp::TcpState, Conn, ConnId};

/// Why a connection ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Its timer ran out (in its last protocol state).
    Timeout,
    /// Removed before its time (a reset, a new SYN on the tuple, a failed
    /// SYN-proxy handshake, a sync peer's removal).
    Removed,
}

impl EndReason {
    /// The name in the log line.
    pub fn name(&self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Removed => "removed",
        }
    }
}

/// Creation or end.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FlowEvent {
    /// The connection was made.
    New,
    /// The connection ended.
    End(EndReason),
}

/// Counters of one live connection.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowCounts {
    /// Worker clock (ms) when it was made.
    pub created_ms: u64,
    /// Packets, both directions.
    pub packets: u64,
    /// IP bytes (headers included), both directions.
    pub bytes: u64,
    /// The log saw the connection made (only those get an end record).
    pub live: bool,
}

/// One flow-log record.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    /// What happened.
    pub event: FlowEvent,
    /// Worker clock (ms) when it happened.
    pub at_ms: u64,
    /// IP protocol.
    pub proto: u8,
    /// Client address and port.
    pub client: (Addr, u16),
    /// Virtual address and port.
    pub vip: (Addr, u16),
    /// Local address and port (FNAT/SNAT; the client's for NAT/DR).
    pub laddr: (Addr, u16),
    /// Real server address and port.
    pub rs: (Addr, u16),
    /// The protocol state at the end (a TCP state name, or "-").
    pub state: &'static str,
    /// Counters (zero at creation; bytes are IP bytes, as ipvsadm counts).
    pub counts: FlowCounts,
}

/// A worker's flow log.
#[derive(Debug)]
pub struct FlowLog {
    counts: Vec<FlowCounts>,
    records: Vec<FlowRecord>,
    cap: usize,
    lost: u64,
    /// The worker clock (ms) of the current burst or tick.
    pub(super) now_ms: u64,
}

impl FlowLog {
    /// A log for a table of `slots` connections holding up to `cap` records
    /// between two drains.
    pub fn new(slots: usize, cap: usize) -> FlowLog {
        FlowLog {
            counts: vec![FlowCounts::default(); slots],
            records: Vec::with_capacity(cap),
            cap,
            lost: 0,
            now_ms: 0,
        }
    }

    /// Records lost because the buffer was full.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    fn push(&mut self, event: FlowEvent, c: &Conn, counts: FlowCounts, at_ms: u64) {
        if self.records.len() >= self.cap {
            self.lost += 1;
            return;
        }
        let state = match (c.proto, event) {
            (crate::addr::proto::TCP, FlowEvent::End(_)) => {
                TcpState::from_u8(c.state).map_or("-", |t| t.name())
            }
            _ => "-",
        };
        self.records.push(FlowRecord {
            event,
            at_ms,
            proto: c.proto,
            client: (c.cip, c.cport),
            vip: (c.vip, c.vport),
            laddr: (c.lip, c.lport),
            rs: (c.rip, c.rport),
            state,
            counts,
        });
    }

    /// A connection was made (its first packet is counted as it is forwarded).
    pub(super) fn created(&mut self, id: ConnId, c: &Conn, now_ms: u64) {
        let counts = FlowCounts {
            created_ms: now_ms,
            packets: 0,
            bytes: 0,
            live: true,
        };
        if let Some(s) = self.counts.get_mut(id.0 as usize) {
            *s = counts;
        }
        self.push(FlowEvent::New, c, counts, now_ms);
    }

    /// A packet of `len` bytes went through connection `id`.
    #[inline]
    pub(super) fn count(&mut self, id: ConnId, len: usize) {
        if let Some(s) = self.counts.get_mut(id.0 as usize) {
            s.packets += 1;
            s.bytes += len as u64;
        }
    }

    /// `packets` packets of `bytes` bytes in all went through connection
    /// `id` outside the worker (the fast path).
    pub(super) fn count_many(&mut self, id: ConnId, packets: u64, bytes: u64) {
        if let Some(s) = self.counts.get_mut(id.0 as usize) {
            s.packets += packets;
            s.bytes += bytes;
        }
    }

    /// The counters of connection `id` (default when the log did not see
    /// it made).
    pub(super) fn counts(&self, id: ConnId) -> FlowCounts {
        self.counts.get(id.0 as usize).copied().unwrap_or_default()
    }

    /// Connection `id` arrived with these counters (a hand-over): no
    /// record now; its end is recorded if `counts.live`.
    pub(super) fn adopt(&mut self, id: ConnId, counts: FlowCounts) {
        if let Some(s) = self.counts.get_mut(id.0 as usize) {
            *s = counts;
        }
    }

    /// Connection `id` ended (only one this log saw made is recorded).
    pub(super) fn ended(&mut self, id: ConnId, c: &Conn, reason: EndReason) {
        let now_ms = self.now_ms;
        let Some(s) = self.counts.get_mut(id.0 as usize) else {
            return;
        };
        if !s.live {
            return;
        }
        let counts = std::mem::take(s);
        self.push(FlowEvent::End(reason), c, counts, now_ms);
    }

    /// Hands every buffered record to `f`, oldest first, and empties the buffer.
    pub fn drain(&mut self, mut f: impl FnMut(&FlowRecord)) {
        for r in &self.records {
            f(r);
        }
        self.records.clear();
    }
}

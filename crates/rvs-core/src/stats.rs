//! Counters the workers write and the control plane reads, without locks.
//!
//! Each worker owns one cache-line-padded block per counted object and is the only
//! writer of it, so an increment is a relaxed load and store (no locked
//! read-modify-write, no cache-line ping-pong). Readers sum the blocks of all
//! workers at any time; a sum may be a few packets stale, never torn.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Adds `n` to a counter that only the calling worker writes.
#[inline(always)]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Traffic counters of a service, a dest or a local address, as `ipvsadm --stats` shows them.
#[derive(Default, Debug)]
#[repr(align(64))]
pub struct Counters {
    /// Connections created.
    pub conns: AtomicU64,
    /// Packets client -> LB (the "in" direction).
    pub inpkts: AtomicU64,
    /// Packets RS/remote -> LB (the "out" direction).
    pub outpkts: AtomicU64,
    /// Bytes in the in direction (IP length).
    pub inbytes: AtomicU64,
    /// Bytes in the out direction (IP length).
    pub outbytes: AtomicU64,
    /// Current active connections (ESTABLISHED) owned by this worker (a gauge).
    pub active: AtomicU64,
    /// Current inactive connections owned by this worker (a gauge).
    pub inactive: AtomicU64,
}

/// A plain-number copy of [`Counters`], summed over workers.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterValues {
    /// Connections created.
    pub conns: u64,
    /// Packets in.
    pub inpkts: u64,
    /// Packets out.
    pub outpkts: u64,
    /// Bytes in.
    pub inbytes: u64,
    /// Bytes out.
    pub outbytes: u64,
    /// Active connections now.
    pub active: u64,
    /// Inactive connections now.
    pub inactive: u64,
}

impl Counters {
    /// A snapshot of this block.
    pub fn read(&self) -> CounterValues {
        CounterValues {
            conns: self.conns.load(Relaxed),
            inpkts: self.inpkts.load(Relaxed),
            outpkts: self.outpkts.load(Relaxed),
            inbytes: self.inbytes.load(Relaxed),
            outbytes: self.outbytes.load(Relaxed),
            active: self.active.load(Relaxed),
            inactive: self.inactive.load(Relaxed),
        }
    }

    /// Resets the cumulative counters (`ipvsadm -Z`); gauges are kept.
    pub fn zero(&self) {
        for c in [
            &self.conns,
            &self.inpkts,
            &self.outpkts,
            &self.inbytes,
            &self.outbytes,
        ] {
            c.store(0, Relaxed);
        }
    }
}

impl std::ops::AddAssign for CounterValues {
    fn add_assign(&mut self, o: CounterValues) {
        self.conns += o.conns;
        self.inpkts += o.inpkts;
        self.outpkts += o.outpkts;
        self.inbytes += o.inbytes;
        self.outbytes += o.outbytes;
        self.active += o.active;
        self.inactive += o.inactive;
    }
}

/// One [`Counters`] block per worker.
#[derive(Debug)]
pub struct PerWorker {
    blocks: Box<[Counters]>,
}

impl PerWorker {
    /// Blocks for `workers` workers (at least one).
    pub fn new(workers: usize) -> PerWorker {
        PerWorker {
            blocks: (0..workers.max(1)).map(|_| Counters::default()).collect(),
        }
    }

    /// The block worker `w` writes. Out-of-range workers share the last block,
    /// which keeps a misconfigured worker count from panicking.
    #[inline(always)]
    pub fn worker(&self, w: usize) -> &Counters {
        let last = self.blocks.len() - 1;
        &self.blocks[w.min(last)]
    }

    /// The sum over all workers.
    pub fn sum(&self) -> CounterValues {
        let mut v = CounterValues::default();
        for b in self.blocks.iter() {
            v += b.read();
        }
        v
    }

    /// Zeroes the cumulative counters of every worker.
    pub fn zero(&self) {
        for b in self.blocks.iter() {
            b.zero();
        }
    }
}

/// Gauges a worker publishes for the control plane, which reads them at any
/// time instead of asking the worker to walk its tables (single writer: that
/// worker, once per burst and per timer tick).
#[derive(Default, Debug)]
#[repr(align(64))]
pub struct WorkerGauges {
    /// Live connections in the worker's table (persistence templates not counted).
    pub conns: AtomicU64,
    /// The worker's clock (ms) at its last [`crate::pipeline::Worker::tick`]:
    /// a watchdog sees a worker that stopped making progress.
    pub heartbeat_ms: AtomicU64,
    /// Datagrams that carried UOA (a counter; see `[pipeline] uoa_mode`).
    pub uoa_sent: AtomicU64,
    /// Datagrams that went without UOA because it would have exceeded the
    /// MTU (a counter; they are forwarded, not dropped).
    pub uoa_too_big: AtomicU64,
    /// ICMP/ICMPv6 errors rvs sent (too big, time exceeded; a counter).
    pub icmp_sent: AtomicU64,
    /// Errors not sent for the rate limit (their packets are dropped and
    /// counted under their reason either way; a counter).
    pub icmp_rate_limited: AtomicU64,
}

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $name:ident = $text:literal,)*) => {
        /// Why a packet was dropped. Every packet the pipeline cannot handle is
        /// counted under one of these (see `rvsip link show -s` and the drop stats).
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $($(#[$doc])* $name,)* }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            /// The stable name used in counters and logs.
            pub fn name(&self) -> &'static str {
                match self { $(DropReason::$name => $text,)* }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than its headers say, or shorter than a header.
    Truncated = "truncated",
    /// A header field is invalid (version, header length, total length...).
    Malformed = "malformed",
    /// IPv4 header checksum or TCP/UDP/ICMP checksum is wrong.
    BadChecksum = "bad_checksum",
    /// An IP fragment: rvs does not reassemble.
    Fragment = "fragment",
    /// TTL or hop limit would reach zero when forwarded.
    TtlExpired = "ttl_expired",
    /// An ethertype or IP protocol rvs does not handle, on a port without a kernel path.
    UnknownProto = "unknown_proto",
    /// Not for any service, connection or local address.
    NoService = "no_service",
    /// A TCP packet other than SYN with no connection.
    NoConn = "no_conn",
    /// No dest could take a new connection (all weight 0, overloaded, or none).
    NoDest = "no_dest",
    /// No local address / port left for FNAT or SNAT.
    NoLocalPort = "no_laddr_port",
    /// The connection table is full.
    ConnTableFull = "conn_table_full",
    /// No route to the destination.
    NoRoute = "no_route",
    /// The next hop's MAC is unknown and the pending queue is full.
    NeighPendingFull = "neigh_pending_full",
    /// The frame would exceed the port's MTU after rewriting.
    TooBig = "too_big",
    /// A frame from the wrong side of a connection or otherwise not allowed.
    Invalid = "invalid",
    /// Layer 2 frame not addressed to this port (another host's unicast MAC).
    OtherHost = "other_host",
    /// An ICMP error that does not belong to any connection.
    IcmpNoConn = "icmp_no_conn",
    /// The out port index is not configured.
    BadPort = "bad_port",
    /// Not a packet: a half-open connection removed to free its local port
    /// for a new flow (the pool was empty; see the pipeline's `half_open`).
    SynRecvRecycled = "syn_recv_recycled",
    /// An ACK to a SYN proxy service, with no connection, whose
    /// acknowledgment is not a valid SYN cookie (forged, or expired).
    SynproxyBadAck = "synproxy_bad_ack",
    /// A client segment of a SYN proxy connection that arrived while rvs
    /// was waiting for the real server and could not be kept (the client
    /// sends it again).
    SynproxyWait = "synproxy_wait",
    /// A service's new-connection rate limit (`--conn-rate`).
    LimitConnRate = "limit_conn_rate",
    /// A service's packet rate limit (`--pkt-rate`).
    LimitPktRate = "limit_pkt_rate",
    /// A service's bit rate limit (`--bit-rate`).
    LimitBitRate = "limit_bit_rate",
    /// A service's concurrent-connection limit (`--max-conns`).
    LimitConns = "limit_conns",
    /// A source's new-connection rate limit (`--src-conn-rate`).
    LimitSrcConnRate = "limit_src_conn_rate",
    /// A source's packet rate limit (`--src-pkt-rate`).
    LimitSrcPktRate = "limit_src_pkt_rate",
    /// A source's bit rate limit (`--src-bit-rate`).
    LimitSrcBitRate = "limit_src_bit_rate",
    /// A source's concurrent-connection limit (`--src-max-conns`).
    LimitSrcConns = "limit_src_conns",
    /// A new connection from a source a deny list (blacklist) matches.
    AclDeny = "acl_deny",
    /// A new connection from a source no rule of the service's allow list
    /// (whitelist) matches.
    AclNotAllowed = "acl_not_allowed",
    /// Not a packet: a SYN proxy connection given up after the real server
    /// answered none of the SYNs rvs sent it (the first and its timer
    /// retransmissions).
    SynproxyRsTimeout = "synproxy_rs_timeout",
    /// A packet to a VIP that matches no service, beyond `[pipeline]
    /// kni_vip_rate` (it would have gone to the kernel).
    KniVipRate = "kni_vip_rate",
    /// A VLAN-tagged frame on a port that has VLAN devices, none of them
    /// with its tag (DPVS drops these too).
    VlanUnknown = "vlan_unknown",
    /// A frame for a VLAN device whose buffer had no room for the tag.
    VlanNoRoom = "vlan_no_room",
    /// A NAT64/NAT46 packet that RFC 7915 does not translate: an IPv6
    /// Routing header with segments left, an IPv4 source route option.
    XlateRefused = "xlate_refused",
    /// An IPv4 packet without DF of a NAT46/NAT64 conn, over the egress MTU
    /// once translated to IPv6 (rvs does not fragment; with DF the sender
    /// gets Fragmentation Needed and the drop counts as `too_big`), or a
    /// packet with no room in its buffer for the longer header.
    XlateTooBig = "xlate_too_big",
    /// An ICMP/ICMPv6 error about a NAT64/NAT46 conn whose type or code has
    /// no counterpart in the other family (RFC 7915 §4.2, §5.2).
    IcmpXlateUnmapped = "icmp_xlate_unmapped",
    /// A frame received by a worker that does not own its connection,
    /// whose owner's hand-off ring was full (DPDK backend): freed.
    HandoffFull = "handoff_full",
}

/// Drop counters of one worker, one per [`DropReason`].
#[derive(Debug)]
pub struct DropCounters {
    counts: Box<[AtomicU64]>,
}

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters {
            counts: DropReason::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl DropCounters {
    /// Counts one drop (single writer).
    #[inline]
    pub fn count(&self, r: DropReason) {
        if let Some(c) = self.counts.get(r as usize) {
            bump(c, 1);
        }
    }

    /// Adds `n` drops for `r` (bases handed over from a predecessor).
    pub fn add(&self, r: DropReason, n: u64) {
        if let Some(c) = self.counts.get(r as usize) {
            bump(c, n);
        }
    }

    /// The number of drops for `r`.
    pub fn get(&self, r: DropReason) -> u64 {
        self.counts.get(r as usize).map_or(0, |c| c.load(Relaxed))
    }

    /// All non-zero counts with their names.
    pub fn nonzero(&self) -> Vec<(&'static str, u64)> {
        DropReason::ALL
            .iter()
            .map(|r| (r.name(), self.get(*r)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Sum of all drops.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_worker_sums_and_zero() {
        let p = PerWorker::new(2);
        bump(&p.worker(0).inpkts, 3);
        bump(&p.worker(1).inpkts, 4);
        bump(&p.worker(1).active, 2);
        assert_eq!(p.sum().inpkts, 7);
        p.zero();
        assert_eq!(p.sum().inpkts, 0);
        assert_eq!(p.sum().active, 2, "zero keeps gauges");
    }

    #[test]
    fn drop_reasons_have_unique_names() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
        let d = DropCounters::default();
        d.count(DropReason::NoRoute);
        assert_eq!(d.get(DropReason::NoRoute), 1);
        assert_eq!(d.nonzero(), vec![("no_route", 1)]);
    }
}

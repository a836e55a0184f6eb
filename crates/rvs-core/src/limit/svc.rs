//! One service's limits on one worker: its share of each limit, the
//! service-wide buckets, and the checks the pipeline makes.

use std::sync::Arc;

use crate::addr::Addr;
use crate::prefix::PrefixKey;

use super::bucket::{share_count, Bucket, BucketConf};
use super::src::{SrcEntry, SrcKey, SrcTable};
use super::{LimitKind, LimitSet, ServiceLimits};

/// One worker's share of a [`LimitSet`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Shares {
    conn: BucketConf,
    pkt: BucketConf,
    byte: BucketConf,
    max_conns: u32,
}

impl Shares {
    fn of(l: &LimitSet, worker: u16, workers: u16) -> Shares {
        Shares {
            conn: BucketConf::share(l.conn_rate.per_sec, l.conn_rate.burst, workers),
            pkt: BucketConf::share(l.pkt_rate.per_sec, l.pkt_rate.burst, workers),
            byte: BucketConf::share(l.byte_rate.per_sec, l.byte_rate.burst, workers),
            max_conns: share_count(l.max_conns, worker, workers),
        }
    }

    fn per_packet(&self) -> bool {
        self.pkt.is_limited() || self.byte.is_limited()
    }

    fn any(&self) -> bool {
        self.conn.is_limited() || self.per_packet() || self.max_conns > 0
    }

    /// The first of this set's packet and byte limits that refuses `bytes`.
    fn packet_refused(
        &self,
        pkt: &Bucket,
        byte: &Bucket,
        bytes: u64,
        kinds: &Kinds,
    ) -> Option<LimitKind> {
        if !pkt.allows(&self.pkt, 1) {
            return Some(kinds.pkt_rate);
        }
        if !byte.allows(&self.byte, bytes) {
            return Some(kinds.byte_rate);
        }
        None
    }

    /// The first of this set's limits that refuses a new connection whose
    /// first packet has `bytes`, with `conns` connections and the buckets
    /// `conn`, `pkt` and `byte` of the service or source it counts for.
    fn conn_refused(
        &self,
        conns: u32,
        [conn, pkt, byte]: [&Bucket; 3],
        bytes: u64,
        kinds: &Kinds,
    ) -> Option<LimitKind> {
        if self.max_conns > 0 && conns >= self.max_conns {
            return Some(kinds.conns);
        }
        if !conn.allows(&self.conn, 1) {
            return Some(kinds.conn_rate);
        }
        self.packet_refused(pkt, byte, bytes, kinds)
    }
}

/// What each limit of a [`Shares`] counts a refusal as: the service's
/// limits or the per-source ones.
struct Kinds {
    conns: LimitKind,
    conn_rate: LimitKind,
    pkt_rate: LimitKind,
    byte_rate: LimitKind,
}

/// Refusals by the service-wide limits.
const SVC_KINDS: Kinds = Kinds {
    conns: LimitKind::Conns,
    conn_rate: LimitKind::ConnRate,
    pkt_rate: LimitKind::PktRate,
    byte_rate: LimitKind::ByteRate,
};

/// Refusals by the per-source limits.
const SRC_KINDS: Kinds = Kinds {
    conns: LimitKind::SrcConns,
    conn_rate: LimitKind::SrcConnRate,
    pkt_rate: LimitKind::SrcPktRate,
    byte_rate: LimitKind::SrcByteRate,
};

/// What [`SvcLimit::admit_conn`] let through, to be committed once the
/// connection exists ([`SvcLimit::created`]).
#[derive(Copy, Clone, Debug)]
pub struct ConnTicket {
    src: Option<(usize, SrcKey)>,
}

/// A service's limits and their state on one worker. The default limits
/// nothing.
#[derive(Debug, Default)]
pub struct SvcLimit {
    conf: Option<Arc<ServiceLimits>>,
    svc_id: u32,
    svc: Shares,
    src: Shares,
    plen_v4: u8,
    plen_v6: u8,
    last_ms: u64,
    conn: Bucket,
    pkt: Bucket,
    byte: Bucket,
    conns: u32,
    per_packet: bool,
    per_conn: bool,
}

/// `a` with the bits past the family's prefix length cleared.
fn masked(a: &Addr, plen_v4: u8, plen_v6: u8) -> Addr {
    if a.is_v4() {
        Addr::from_v4_bytes(a.v4_u32().masked(plen_v4).to_be_bytes())
    } else {
        Addr::from_u128(a.as_u128().masked(plen_v6))
    }
}

impl SvcLimit {
    /// Applies the limits of service `svc_id` (`None`: none) as worker
    /// `worker` of `workers` enforces them. Buckets of a newly limited
    /// service start full; a changed limit keeps the tokens it had, up to
    /// its new burst. The connection count is kept.
    pub fn configure(
        &mut self,
        conf: Option<&Arc<ServiceLimits>>,
        svc_id: u32,
        worker: u16,
        workers: u16,
        now_ms: u64,
    ) {
        let same = match (&self.conf, conf) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same && self.svc_id == svc_id {
            return;
        }
        let was_limited = self.conf.is_some();
        self.refill(now_ms);
        self.svc_id = svc_id;
        self.conf = conf.cloned();
        let (svc, src, p4, p6) = match conf {
            Some(c) => (
                Shares::of(&c.service, worker, workers),
                Shares::of(&c.source, worker, workers),
                c.src_plen_v4,
                c.src_plen_v6,
            ),
            None => (Shares::default(), Shares::default(), 32, 128),
        };
        self.svc = svc;
        self.src = src;
        self.plen_v4 = p4;
        self.plen_v6 = p6;
        if was_limited {
            self.conn.clamp(&svc.conn);
            self.pkt.clamp(&svc.pkt);
            self.byte.clamp(&svc.byte);
        } else {
            self.conn = Bucket::full(&svc.conn);
            self.pkt = Bucket::full(&svc.pkt);
            self.byte = Bucket::full(&svc.byte);
        }
        self.per_packet = svc.per_packet() || src.per_packet();
        self.per_conn = svc.any() || src.any();
    }

    /// The limits applied, if any.
    pub fn conf(&self) -> Option<&Arc<ServiceLimits>> {
        self.conf.as_ref()
    }

    /// Whether every packet from clients must go through [`SvcLimit::admit_packet`].
    #[inline]
    pub fn per_packet(&self) -> bool {
        self.per_packet
    }

    /// Whether any limit is set.
    #[inline]
    pub fn limited(&self) -> bool {
        self.per_conn
    }

    /// Whether a per-source limit needs the source table.
    pub fn uses_sources(&self) -> bool {
        self.src.any()
    }

    /// Connections of this service made on this worker and still alive.
    pub fn conns(&self) -> u32 {
        self.conns
    }

    fn refill(&mut self, now_ms: u64) {
        let dt = now_ms.saturating_sub(self.last_ms);
        if dt > 0 {
            self.conn.refill(&self.svc.conn, dt);
            self.pkt.refill(&self.svc.pkt, dt);
            self.byte.refill(&self.svc.byte, dt);
        }
        self.last_ms = self.last_ms.max(now_ms);
    }

    fn src_key(&self, cip: &Addr) -> SrcKey {
        SrcKey {
            svc: self.svc_id,
            addr: masked(cip, self.plen_v4, self.plen_v6),
        }
    }

    /// The source's slot, made (full buckets) if new, refilled to `now_ms`.
    fn source(&self, table: &mut SrcTable, key: &SrcKey, now_ms: u64) -> Option<usize> {
        let src = &self.src;
        let i = table.find_or_insert(key, now_ms, || SrcEntry {
            last_ms: now_ms,
            conn: Bucket::full(&src.conn),
            pkt: Bucket::full(&src.pkt),
            byte: Bucket::full(&src.byte),
            ..SrcEntry::default()
        })?;
        let e = table.entry_mut(i);
        let dt = now_ms.saturating_sub(e.last_ms);
        if dt > 0 {
            e.conn.refill(&src.conn, dt);
            e.pkt.refill(&src.pkt, dt);
            e.byte.refill(&src.byte, dt);
            e.last_ms = now_ms;
        }
        Some(i)
    }

    /// Checks a packet of `bytes` from `cip` that would create a connection
    /// against every limit (the service's first, then its source's), taking
    /// nothing: [`SvcLimit::created`] takes the connection's tokens once it
    /// exists, and the packet's are taken when it is forwarded.
    pub fn admit_conn(
        &mut self,
        table: &mut SrcTable,
        cip: &Addr,
        bytes: u64,
        now_ms: u64,
    ) -> Result<ConnTicket, LimitKind> {
        self.refill(now_ms);
        let buckets = [&self.conn, &self.pkt, &self.byte];
        if let Some(k) = self
            .svc
            .conn_refused(self.conns, buckets, bytes, &SVC_KINDS)
        {
            return Err(k);
        }
        if !self.src.any() {
            return Ok(ConnTicket { src: None });
        }
        let key = self.src_key(cip);
        let Some(i) = self.source(table, &key, now_ms) else {
            return Ok(ConnTicket { src: None });
        };
        let e = table.entry_mut(i);
        let buckets = [&e.conn, &e.pkt, &e.byte];
        if let Some(k) = self.src.conn_refused(e.conns, buckets, bytes, &SRC_KINDS) {
            return Err(k);
        }
        Ok(ConnTicket {
            src: Some((i, key)),
        })
    }

    /// A connection of this service was made (`ticket`: what
    /// [`SvcLimit::admit_conn`] let through, if the service is limited):
    /// counts it and takes its new-connection tokens.
    pub fn created(&mut self, table: &mut SrcTable, ticket: Option<ConnTicket>) {
        self.conns = self.conns.saturating_add(1);
        let Some(t) = ticket else { return };
        self.conn.take(&self.svc.conn, 1);
        if let Some((i, key)) = t.src {
            let e = table.entry_mut(i);
            if e.key == key {
                e.conn.take(&self.src.conn, 1);
                e.conns = e.conns.saturating_add(1);
                table.set_busy(i, true);
            }
        }
    }

    /// Counts a connection from `cip` that exists already (handed over
    /// from a predecessor, where [`SvcLimit::created`] counted it): in the
    /// service's and its source's connection counts, taking no tokens
    /// (buckets start full). [`SvcLimit::released`] counts it back.
    pub fn adopt(&mut self, table: &mut SrcTable, cip: &Addr, now_ms: u64) {
        self.conns = self.conns.saturating_add(1);
        if !self.src.any() {
            return;
        }
        let key = self.src_key(cip);
        if let Some(i) = self.source(table, &key, now_ms) {
            let e = table.entry_mut(i);
            e.conns = e.conns.saturating_add(1);
            table.set_busy(i, true);
        }
    }

    /// A connection from `cip` counted by [`SvcLimit::created`] is gone.
    pub fn released(&mut self, table: &mut SrcTable, cip: &Addr) {
        self.conns = self.conns.saturating_sub(1);
        if !self.src.any() {
            return;
        }
        let key = self.src_key(cip);
        if let Some(i) = table.lookup(&key) {
            let e = table.entry_mut(i);
            e.conns = e.conns.saturating_sub(1);
            if e.conns == 0 {
                table.set_busy(i, false);
            }
        }
    }

    /// Checks a packet of `bytes` from `cip` of an existing connection
    /// against the packet and byte rates (the service's, then its
    /// source's) and takes its tokens if it passes.
    pub fn admit_packet(
        &mut self,
        table: &mut SrcTable,
        cip: &Addr,
        bytes: u64,
        now_ms: u64,
    ) -> Result<(), LimitKind> {
        self.refill(now_ms);
        if let Some(k) = self
            .svc
            .packet_refused(&self.pkt, &self.byte, bytes, &SVC_KINDS)
        {
            return Err(k);
        }
        if self.src.per_packet() {
            let key = self.src_key(cip);
            if let Some(i) = self.source(table, &key, now_ms) {
                let src = &self.src;
                let e = table.entry_mut(i);
                if let Some(k) = src.packet_refused(&e.pkt, &e.byte, bytes, &SRC_KINDS) {
                    return Err(k);
                }
                e.pkt.take(&src.pkt, 1);
                e.byte.take(&src.byte, bytes);
            }
        }
        self.pkt.take(&self.svc.pkt, 1);
        self.byte.take(&self.svc.byte, bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::Rate;

    fn limits(service: LimitSet, source: LimitSet, p4: u8) -> Arc<ServiceLimits> {
        Arc::new(ServiceLimits {
            service,
            source,
            src_plen_v4: p4,
            src_plen_v6: 128,
            ..ServiceLimits::default()
        })
    }

    fn ip(s: &str) -> Addr {
        s.parse().unwrap()
    }

    /// Offers `n` new connections from `cip` at `now`; returns how many were made.
    fn connect(l: &mut SvcLimit, t: &mut SrcTable, cip: &str, n: u32, now: u64) -> u32 {
        let mut made = 0;
        for _ in 0..n {
            if let Ok(tk) = l.admit_conn(t, &ip(cip), 60, now) {
                l.created(t, Some(tk));
                made += 1;
            }
        }
        made
    }

    #[test]
    fn a_source_prefix_shares_one_bucket() {
        let src = LimitSet {
            conn_rate: Rate::new(1, 3),
            ..LimitSet::default()
        };
        let mut l = SvcLimit::default();
        l.configure(Some(&limits(LimitSet::default(), src, 24)), 7, 0, 1, 0);
        let mut t = SrcTable::new(64, 1);
        assert_eq!(connect(&mut l, &mut t, "10.0.0.1", 2, 0), 2);
        assert_eq!(connect(&mut l, &mut t, "10.0.0.2", 5, 0), 1, "same /24");
        assert_eq!(connect(&mut l, &mut t, "10.0.1.2", 5, 0), 3, "another /24");
        assert_eq!(
            l.admit_conn(&mut t, &ip("10.0.0.9"), 60, 0).unwrap_err(),
            LimitKind::SrcConnRate
        );
        assert_eq!(
            connect(&mut l, &mut t, "10.0.0.9", 5, 1000),
            1,
            "one a second"
        );
        assert_eq!(l.conns(), 7);
    }

    #[test]
    fn connection_counts_follow_creation_and_release() {
        let svc = LimitSet {
            max_conns: 3,
            ..LimitSet::default()
        };
        let src = LimitSet {
            max_conns: 2,
            ..LimitSet::default()
        };
        let mut l = SvcLimit::default();
        l.configure(Some(&limits(svc, src, 32)), 1, 0, 1, 0);
        let mut t = SrcTable::new(64, 1);
        assert_eq!(connect(&mut l, &mut t, "10.0.0.1", 5, 0), 2, "per source");
        assert_eq!(connect(&mut l, &mut t, "10.0.0.2", 5, 0), 1, "per service");
        assert_eq!(
            l.admit_conn(&mut t, &ip("10.0.0.3"), 60, 0).unwrap_err(),
            LimitKind::Conns
        );
        l.released(&mut t, &ip("10.0.0.1"));
        assert_eq!(
            l.admit_conn(&mut t, &ip("10.0.0.2"), 60, 1).map(|_| ()),
            Ok(()),
            "room again"
        );
        assert_eq!(connect(&mut l, &mut t, "10.0.0.1", 5, 1), 1);
    }

    #[test]
    fn packet_rates_police_and_refill() {
        let svc = LimitSet {
            pkt_rate: Rate::new(1000, 10),
            ..LimitSet::default()
        };
        let src = LimitSet {
            byte_rate: Rate::new(10_000, 3_000),
            ..LimitSet::default()
        };
        let mut l = SvcLimit::default();
        l.configure(Some(&limits(svc, src, 32)), 1, 0, 1, 0);
        assert!(l.per_packet());
        let mut t = SrcTable::new(64, 1);
        let a = ip("10.0.0.1");
        let b = ip("10.0.0.2");
        // Source a: 3,000 bytes of burst, three 1,000-byte packets; the
        // fourth is refused for its bytes.
        for _ in 0..3 {
            assert_eq!(l.admit_packet(&mut t, &a, 1000, 0), Ok(()));
        }
        assert_eq!(
            l.admit_packet(&mut t, &a, 1000, 0),
            Err(LimitKind::SrcByteRate)
        );
        // Source b is not affected by a's bytes, only by the service's packets.
        for _ in 0..7 {
            assert_eq!(l.admit_packet(&mut t, &b, 100, 0), Ok(()));
        }
        assert_eq!(l.admit_packet(&mut t, &b, 100, 0), Err(LimitKind::PktRate));
        // 1 ms later: one more packet for the service.
        assert_eq!(l.admit_packet(&mut t, &b, 100, 1), Ok(()));
        assert_eq!(l.admit_packet(&mut t, &b, 100, 1), Err(LimitKind::PktRate));
    }

    #[test]
    fn unlimited_services_count_connections_only() {
        let mut l = SvcLimit::default();
        l.configure(None, 1, 0, 1, 0);
        assert!(!l.limited() && !l.per_packet());
        let mut t = SrcTable::default();
        l.created(&mut t, None);
        assert_eq!(l.conns(), 1);
        l.released(&mut t, &ip("10.0.0.1"));
        assert_eq!(l.conns(), 0);
    }

    #[test]
    fn a_changed_limit_keeps_its_tokens_up_to_the_new_burst() {
        let svc = |burst| LimitSet {
            conn_rate: Rate::new(1, burst),
            ..LimitSet::default()
        };
        let mut l = SvcLimit::default();
        let mut t = SrcTable::default();
        l.configure(Some(&limits(svc(10), LimitSet::default(), 32)), 1, 0, 1, 0);
        assert_eq!(connect(&mut l, &mut t, "10.0.0.1", 8, 0), 8);
        // Another snapshot with the same limit value but a new Arc: 2 left.
        l.configure(Some(&limits(svc(10), LimitSet::default(), 32)), 1, 0, 1, 0);
        assert_eq!(connect(&mut l, &mut t, "10.0.0.1", 8, 0), 2);
        l.configure(
            Some(&limits(svc(1), LimitSet::default(), 32)),
            1,
            0,
            1,
            5000,
        );
        assert_eq!(
            connect(&mut l, &mut t, "10.0.0.1", 8, 5000),
            1,
            "the new burst"
        );
        l.configure(None, 1, 0, 1, 5000);
        assert_eq!(connect(&mut l, &mut t, "10.0.0.1", 8, 5000), 8, "no limit");
    }

    #[test]
    fn masks_by_family() {
        assert_eq!(masked(&ip("10.1.2.3"), 24, 64), ip("10.1.2.0"));
        assert_eq!(masked(&ip("10.1.2.3"), 0, 64), ip("0.0.0.0"));
        assert_eq!(masked(&ip("10.1.2.3"), 32, 64), ip("10.1.2.3"));
        assert_eq!(
            masked(&ip("2001:db8:1:2:3::9"), 24, 64),
            ip("2001:db8:1:2::")
        );
        assert_eq!(masked(&ip("2001:db8::9"), 24, 128), ip("2001:db8::9"));
    }
}

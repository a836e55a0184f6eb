//! Rate and connection limits of services ([`Request::SetLimits`],
//! [`Request::ListLimits`]): kept apart from the services' settings, so that
//! `-E` without limit options leaves them as they are, and handed to the
//! workers in the snapshot ([`Snapshot::with_limits`]).
//!
//! [`Request::SetLimits`]: rvs_api::Request::SetLimits
//! [`Request::ListLimits`]: rvs_api::Request::ListLimits
//! [`Snapshot::with_limits`]: rvs_core::snapshot::Snapshot::with_limits

use std::sync::Arc;

use rvs_api::{ApiError, LimitDropStats, LimitInfo, LimitSet, Limits, RateLimit, ServiceKey};
use rvs_core::limit::{self, LimitDrops, LimitKind, Rate, ServiceLimits};

use super::{invalid, Store};

/// A service's limits as configured, and the form the workers get.
#[derive(Debug)]
pub(super) struct LimitEntry {
    pub(super) limits: Limits,
    pub(super) core: Arc<ServiceLimits>,
}

fn rate(r: Option<RateLimit>, per_unit: u64) -> Rate {
    match r {
        None => Rate::default(),
        // Bits to bytes, rounded up so that no limit becomes 0.
        Some(r) => Rate::new(r.rate.div_ceil(per_unit), r.burst.div_ceil(per_unit)),
    }
}

fn core_set(s: &LimitSet) -> limit::LimitSet {
    limit::LimitSet {
        conn_rate: rate(s.conn_rate, 1),
        pkt_rate: rate(s.pkt_rate, 1),
        byte_rate: rate(s.bit_rate, 8),
        max_conns: s.max_conns.unwrap_or(0),
    }
}

fn drop_stats(d: &LimitDrops) -> LimitDropStats {
    LimitDropStats {
        conn_rate: d.get(LimitKind::ConnRate),
        pkt_rate: d.get(LimitKind::PktRate),
        bit_rate: d.get(LimitKind::ByteRate),
        max_conns: d.get(LimitKind::Conns),
        src_conn_rate: d.get(LimitKind::SrcConnRate),
        src_pkt_rate: d.get(LimitKind::SrcPktRate),
        src_bit_rate: d.get(LimitKind::SrcByteRate),
        src_max_conns: d.get(LimitKind::SrcConns),
    }
}

impl Store {
    /// Replaces the limits of the service `key` (empty: none). Checked
    /// whole before anything changes. Refusal counters are kept across
    /// changes.
    pub(super) fn set_limits(&mut self, key: &ServiceKey, limits: &Limits) -> Result<(), ApiError> {
        let i = self.svc_index(key, "No such service")?;
        limits
            .check()
            .map_err(|e| invalid(format!("invalid limit for {key}: {e}")))?;
        let id = self.services[i].id;
        // Entries of deleted services go (ids are never reused).
        let live: std::collections::HashSet<u32> = self.services.iter().map(|s| s.id).collect();
        self.limits.retain(|id, _| live.contains(id));
        if limits.is_empty() {
            self.limits.remove(&id);
            return Ok(());
        }
        let workers = usize::from(self.workers);
        let drops = self.limits.get(&id).map_or_else(
            || Arc::new(LimitDrops::new(workers)),
            |e| e.core.drops.clone(),
        );
        let core = ServiceLimits {
            service: core_set(&limits.service),
            source: core_set(&limits.source),
            src_plen_v4: limits.src_prefix_v4.unwrap_or(32),
            src_plen_v6: limits.src_prefix_v6.unwrap_or(128),
            drops,
        };
        self.limits.insert(
            id,
            LimitEntry {
                limits: *limits,
                core: Arc::new(core),
            },
        );
        Ok(())
    }

    /// The limits of one service or all, in configuration order, with
    /// their refusal counters (services without limits listed empty).
    pub fn list_limits(&self, key: Option<&ServiceKey>) -> Result<Vec<LimitInfo>, ApiError> {
        let range = match key {
            Some(k) => {
                let i = self.svc_index(k, "No such service")?;
                i..i + 1
            }
            None => 0..self.services.len(),
        };
        Ok(self.services[range]
            .iter()
            .map(|s| {
                let e = self.limits.get(&s.id);
                LimitInfo {
                    key: s.spec.key.clone(),
                    limits: e.map(|e| e.limits).unwrap_or_default(),
                    drops: e.map(|e| drop_stats(&e.core.drops)).unwrap_or_default(),
                }
            })
            .collect())
    }

    /// The limits for a snapshot, by service id.
    pub(super) fn core_limits(&self) -> Vec<(u32, Arc<ServiceLimits>)> {
        self.services
            .iter()
            .filter_map(|s| self.limits.get(&s.id).map(|e| (s.id, e.core.clone())))
            .collect()
    }

    /// Zeroes the refusal counters of the service with id `id` (`-Z`).
    pub(super) fn zero_limit_drops(&self, id: u32) {
        if let Some(e) = self.limits.get(&id) {
            e.core.drops.zero();
        }
    }
}

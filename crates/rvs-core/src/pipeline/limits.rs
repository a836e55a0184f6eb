//! The pipeline's side of rate and connection limits ([`crate::limit`]):
//! keeping each service's limit state in step with the snapshot, checking a
//! new connection before anything is allocated for it, policing the
//! packets of existing connections, and counting refusals.

use super::parse::Parsed;
use super::State;
use crate::conn::{flags, Conn};
use crate::limit::src::{SrcTable, WAYS};
use crate::limit::{ConnTicket, LimitKind};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;

impl State {
    /// Applies the snapshot's limits to every service slot, and allocates
    /// the source table when a per-source limit first appears (or its size
    /// changed). Runs with each new snapshot, never per packet.
    pub(super) fn sync_limits(&mut self, snap: &Snapshot, now_ms: u64) {
        let (worker, workers) = (self.id, snap.workers);
        let mut per_packet = false;
        for (_, ss) in self.slots.svcs.iter_mut() {
            let conf = match ss.live {
                true => snap.limits_of(ss.svc.id),
                // A removed service's remaining connections are not limited.
                false => None,
            };
            ss.limit.configure(conf, ss.svc.id, worker, workers, now_ms);
            per_packet |= ss.limit.per_packet();
        }
        self.limits.per_packet = per_packet;
        // At least one set; at most 2^26 slots (4.5 GiB) per worker.
        let want = snap.conf.limit_sources.clamp(WAYS, 1 << 26);
        if snap.has_source_limits() && self.limits.sources.capacity() < want {
            let seed = self
                .conf
                .hash_seed
                .map_or_else(crate::conn::fresh_seed, |s| s ^ 0x5eed_1e11);
            self.limits.sources = SrcTable::new(want, seed);
        }
    }

    /// Counts a refusal by limit `k` of the service in slot `svc_slot`.
    fn limit_refused(&self, svc_slot: u32, k: LimitKind) -> DropReason {
        if let Some(c) = self.slots.svcs.get(svc_slot).and_then(|s| s.limit.conf()) {
            c.drops.count(self.id as usize, k);
        }
        k.reason()
    }

    /// Checks the first packet of a flow to the service in `svc_slot`
    /// against its limits. `Ok(None)`: the service has none.
    pub(super) fn limit_admit(
        &mut self,
        svc_slot: u32,
        p: &Parsed,
        now_ms: u64,
    ) -> Result<Option<ConnTicket>, DropReason> {
        let State { slots, limits, .. } = self;
        let src_limits = &mut limits.sources;
        let Some(ss) = slots.svcs.get_mut(svc_slot) else {
            return Ok(None);
        };
        if !ss.limit.limited() {
            return Ok(None);
        }
        match ss
            .limit
            .admit_conn(src_limits, &p.src, p.ip_len as u64, now_ms)
        {
            Ok(t) => Ok(Some(t)),
            Err(k) => Err(self.limit_refused(svc_slot, k)),
        }
    }

    /// The connection admitted with `ticket` exists (inserted with
    /// [`flags::LIMIT_COUNTED`]): counts it and takes its tokens.
    pub(super) fn limit_created(&mut self, svc_slot: u32, ticket: Option<ConnTicket>) {
        let State { slots, limits, .. } = self;
        let src_limits = &mut limits.sources;
        if let Some(ss) = slots.svcs.get_mut(svc_slot) {
            ss.limit.created(src_limits, ticket);
        }
    }

    /// A connection leaves the table: counts it back if it was counted.
    pub(super) fn limit_released(&mut self, c: &Conn) {
        if c.flags & flags::LIMIT_COUNTED == 0 {
            return;
        }
        let State { slots, limits, .. } = self;
        let src_limits = &mut limits.sources;
        if let Some(ss) = slots.svcs.get_mut(c.service) {
            ss.limit.released(src_limits, &c.cip);
        }
    }

    /// Polices a client packet of connection `c` against its service's
    /// packet and bit rates: one test when no service has any.
    #[inline(always)]
    pub(super) fn limit_police(
        &mut self,
        c: &Conn,
        p: &Parsed,
        now_ms: u64,
    ) -> Result<(), DropReason> {
        match self.limits.per_packet {
            false => Ok(()),
            true => self.limit_packet(c, p, now_ms),
        }
    }

    /// [`State::limit_police`] for a worker where some service polices packets.
    #[inline(never)]
    fn limit_packet(&mut self, c: &Conn, p: &Parsed, now_ms: u64) -> Result<(), DropReason> {
        let State { slots, limits, .. } = self;
        let src_limits = &mut limits.sources;
        let Some(ss) = slots
            .svcs
            .get_mut(c.service)
            .filter(|s| s.limit.per_packet())
        else {
            return Ok(());
        };
        ss.limit
            .admit_packet(src_limits, &c.cip, p.ip_len as u64, now_ms)
            .map_err(|k| self.limit_refused(c.service, k))
    }
}

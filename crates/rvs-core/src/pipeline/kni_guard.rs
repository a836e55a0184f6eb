//! The exception path's guard for VIPs: packets to a VIP that match no
//! service (a flood to its other ports, say) go to the kernel at most at
//! [`crate::snapshot::PipelineConf::kni_vip_rate`] packets per second, this
//! worker's share of it; the rest are dropped as `kni_vip_rate`. Each such
//! packet costs the worker a write to the kni device and the kernel's own
//! processing (and usually an answer), so without the guard a flood of them
//! takes the worker's core from the traffic it forwards.

use crate::limit::bucket::{BucketConf, EventGate};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;

/// One worker's bucket for VIP packets to the kernel.
#[derive(Debug, Default)]
pub(super) struct KniGuard(EventGate);

impl KniGuard {
    /// Takes the rate of a new snapshot (the bucket keeps its fill).
    pub(super) fn configure(&mut self, snap: &Snapshot, now_ms: u64) {
        let conf = BucketConf::share(u64::from(snap.conf.kni_vip_rate), 0, snap.workers);
        self.0.configure(conf, now_ms);
    }

    /// Whether one more VIP packet may go to the kernel now.
    pub(super) fn admit(&mut self, now_ms: u64) -> Result<(), DropReason> {
        match self.0.admit(now_ms) {
            true => Ok(()),
            false => Err(DropReason::KniVipRate),
        }
    }
}

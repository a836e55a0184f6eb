//! Mode 4: a bond's LACP machines as `rvs-bond` drives them (the machines
//! themselves are rvs-core's, sans-IO).

use std::sync::mpsc::SyncSender;

use super::{Bond, CtlFrame};

/// One mode 4 bond's LACP.
pub struct LacpRun {
    slaves: Vec<u16>,
}

impl LacpRun {
    /// The machines of `b`'s slaves at `now` (ms).
    pub fn new(b: &Bond, _now: u64) -> LacpRun {
        LacpRun {
            slaves: b.slaves.clone(),
        }
    }

    /// A Slow Protocols frame from slave (port index) `slave`.
    pub fn receive(&mut self, slave: u16, _frame: &[u8], _now: u64) {
        let _ = self.slaves.iter().position(|&s| s == slave);
    }

    /// The slaves' carriers (bit k: the k-th slave).
    pub fn link(&mut self, _up: u32, _now: u64) {}

    /// Runs the timers; LACPDUs to send go to `out`.
    pub fn tick(&mut self, _now: u64, _out: &SyncSender<CtlFrame>) {}

    /// (collecting, distributing).
    pub fn masks(&self) -> (u32, u32) {
        (0, 0)
    }

    /// Publishes the slaves' rows for `rvsip link show`.
    pub fn publish(&self, b: &Bond, up: u32) {
        if let Ok(mut s) = b.shared.slaves.lock() {
            for (k, st) in s.iter_mut().enumerate().take(32) {
                st.up = up & (1 << k) != 0;
            }
        }
    }
}

//! Bonding devices in the data plane (modes 0 and 4): the bond port model
//! ([`plan`]), the per-worker egress choosing a slave ([`Egress`]), the
//! `rvs-bond` thread watching carriers and running LACP ([`monitor`]) and the
//! bonds' lines in `rvsip link show` ([`links`]).
//!
//! A slave keeps its own port index, queues and counters; its queues stamp
//! the bond's index on what they receive, so the pipeline only ever sees
//! the bond. The workers read which slaves carry traffic from one
//! [`BondShared`] per bond: one relaxed atomic load per frame sent.

mod egress;
mod lacp;
pub mod links;
pub mod monitor;
mod plan;

pub use egress::Egress;
pub use plan::{plan, set_macs};

use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use crate::config::BondSection;

/// Longest Slow Protocols frame handed between a worker and `rvs-bond`
/// (a LACPDU is 124 bytes with its Ethernet header).
pub const CTL_FRAME: usize = 128;

/// A Slow Protocols frame and the slave (port index) it came in on or goes out of.
#[derive(Clone, Copy)]
pub struct CtlFrame {
    /// The slave's port index.
    pub slave: u16,
    /// Bytes used in `buf`.
    pub len: u8,
    /// The frame.
    pub buf: [u8; CTL_FRAME],
}

/// Frames waiting between the workers and `rvs-bond`, each way.
pub const CTL_QUEUE: usize = 64;

/// What a bond's slaves may do now, published by `rvs-bond`, read by the
/// workers; and the bond's drop counters.
#[derive(Debug, Default)]
pub struct BondShared {
    /// Slaves (bit k: the k-th slave) whose received frames are taken.
    pub collecting: AtomicU32,
    /// Slaves frames are sent on.
    pub distributing: AtomicU32,
    /// Frames dropped: no slave could send them.
    pub no_slave: AtomicU64,
    /// Frames dropped: received on a slave not collecting (mode 4).
    pub not_collecting: AtomicU64,
    /// Per slave, for `rvsip link show`.
    pub slaves: Mutex<Vec<SlaveState>>,
}

/// One slave as `rvsip link show` reports it.
#[derive(Debug, Clone, Default)]
pub struct SlaveState {
    /// Carrier.
    pub up: bool,
    /// LACP state (mode 4), already formatted for the API.
    pub lacp: Option<rvs_api::SlaveLacpInfo>,
}

/// A bond as the daemon runs it.
#[derive(Debug)]
pub struct Bond {
    /// Its port index.
    pub port: u16,
    /// Its configuration.
    pub conf: BondSection,
    /// The slaves' port indexes, in configuration order (bit k of the masks).
    pub slaves: Vec<u16>,
    /// The slaves' names (`dpdk0`).
    pub names: Vec<String>,
    /// The slaves' kernel interfaces.
    pub ifaces: Vec<String>,
    /// The slaves' own MACs (LACPDUs leave with them as source).
    pub macs: Vec<[u8; 6]>,
    /// The bond's MAC (its primary's).
    pub mac: [u8; 6],
    /// What the workers read.
    pub shared: Arc<BondShared>,
}

/// Every bond, and the channels between the workers and `rvs-bond`.
pub struct Bonds {
    /// Taken-over ports (bonds' indexes start here).
    pub phys: usize,
    /// The bonds, by `port - phys`.
    pub list: Vec<Arc<Bond>>,
    /// Slow Protocols frames in, to `rvs-bond` (a clone per worker).
    pub ctl_in: SyncSender<CtlFrame>,
    /// Frames out, for worker 0 (taken once).
    pub ctl_out: Mutex<Option<Receiver<CtlFrame>>>,
    /// The ends `rvs-bond` keeps (taken when it starts).
    pub thread_ends: Mutex<Option<(Receiver<CtlFrame>, SyncSender<CtlFrame>)>>,
}

impl Bonds {
    /// No bond.
    pub fn none(phys: usize) -> Bonds {
        Bonds::new(phys, Vec::new())
    }

    /// `list` over `phys` taken-over ports, with the channels.
    pub fn new(phys: usize, list: Vec<Arc<Bond>>) -> Bonds {
        let (in_tx, in_rx) = std::sync::mpsc::sync_channel(CTL_QUEUE);
        let (out_tx, out_rx) = std::sync::mpsc::sync_channel(CTL_QUEUE);
        Bonds {
            phys,
            list,
            ctl_in: in_tx,
            ctl_out: Mutex::new(Some(out_rx)),
            thread_ends: Mutex::new(Some((in_rx, out_tx))),
        }
    }

    /// The bond with port index `port`.
    pub fn get(&self, port: usize) -> Option<&Arc<Bond>> {
        self.list.get(port.checked_sub(self.phys)?)
    }
}

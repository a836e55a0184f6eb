//! A worker's part in a hand-over: it gives duplicates of its receive
//! sockets ([`Query::ExportRx`](crate::control::Query::ExportRx)), and on
//! [`Park`] it stops between two iterations: transmit rings flushed,
//! receive rings frozen (every consumed slot given back, the position
//! reported), then it waits to be told whether to go on as it was
//! ([`Resume::Thaw`]), from the rings as a successor left them
//! ([`Resume::Recover`]), or to end without touching the rings again
//! ([`Resume::Exit`]).
//!
//! Its neighbours go with the report, and its connection table too unless
//! a pre-copy sent it while it forwarded ([`super::precopy`]; then only the
//! log's tail goes, just before it parks).

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use rvs_core::pipeline::Worker;
use rvs_core::sync::LocalRecord;
use rvs_io::af_packet::handover::{RxCursor, RxGeometry};
use rvs_io::{RxQ, TxQ};

/// What a parked worker does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Go on reading where it froze (the successor never started).
    Thaw,
    /// Go on from the rings as a successor left them (it started, then
    /// failed or died).
    Recover,
    /// Leave the loop; the successor owns the rings.
    Exit,
}

/// Asks a worker to park.
#[derive(Debug)]
pub struct Park {
    /// Where it reports that it parked.
    pub parked: Sender<Parked>,
    /// What it does next.
    pub resume: Receiver<Resume>,
    /// Its connections went by a pre-copy ([`super::precopy`]): only its
    /// neighbours go with the report.
    pub precopied: bool,
}

/// A parked worker's report.
#[derive(Debug, Clone)]
pub struct Parked {
    /// Which worker.
    pub worker: u16,
    /// Per port: where the next reader of its receive ring starts (`None`:
    /// not an AF_PACKET ring).
    pub cursors: Vec<Option<RxCursor>>,
    /// Its connections, templates and neighbours, as hand-over messages.
    pub tables: Vec<Vec<u8>>,
    /// Its final counters, the successor's bases.
    pub counters: super::counters::CountersFrame,
}

/// Slots of the table looked at per sweep step.
const SWEEP: u32 = 65536;

/// The worker's whole table and its neighbours as hand-over messages.
pub fn export_tables(worker: &Worker, now: u64) -> Vec<Vec<u8>> {
    let mut recs = Vec::new();
    let mut at = Some(0);
    while let Some(start) = at {
        at = worker.export_local(start, SWEEP, now, |l| recs.push(LocalRecord::Conn(l)));
    }
    worker.export_neigh(now, |n| recs.push(LocalRecord::Neigh(n)));
    super::precopy::encode(&recs)
}

/// One receive socket of a worker, for a successor: its shape and a
/// duplicate of the socket (`None`: the port's queue is not AF_PACKET).
pub type ExportedRx = Option<(RxGeometry, OwnedFd)>;

/// Duplicates of the worker's AF_PACKET receive sockets, by port.
pub fn export_rx(rx: &[RxQ]) -> std::io::Result<Vec<ExportedRx>> {
    rx.iter()
        .map(|q| match q {
            RxQ::Packet(r) => {
                let fd = std::os::fd::AsFd::as_fd(r).try_clone_to_owned()?;
                Ok(Some((r.geometry(), fd)))
            }
            _ => Ok(None),
        })
        .collect()
}

/// Parks the worker `id` on `p`. Returns whether the loop goes on (false:
/// [`Resume::Exit`], or `stop` was set while parked).
pub fn park(
    worker: &Worker,
    now: u64,
    p: Park,
    rx: &mut [RxQ],
    tx: &mut [TxQ],
    stop: &AtomicBool,
    ports: &[crate::runtime::PortCounters],
) -> bool {
    super::xdp::park_queues(rx, tx);
    for t in tx.iter_mut() {
        t.flush();
    }
    let cursors = rx
        .iter_mut()
        .map(|q| match q {
            RxQ::Packet(r) => Some(r.freeze()),
            _ => None,
        })
        .collect();
    let report = Parked {
        worker: worker.id(),
        cursors,
        tables: match p.precopied {
            true => super::precopy::neigh_tables(worker, now),
            false => export_tables(worker, now),
        },
        counters: super::counters::export(worker, ports),
    };
    if p.parked.send(report).is_err() {
        // Nobody waits for the report: the session is gone before it
        // could tell anything; the rings were not given to anyone.
        return true;
    }
    loop {
        match p.resume.recv_timeout(Duration::from_millis(100)) {
            Ok(Resume::Thaw) => return true,
            Ok(Resume::Recover) | Err(RecvTimeoutError::Disconnected) => {
                // A session that vanished without a word may have let a
                // successor start: reading from the rings as they are is
                // right in every case.
                for q in rx.iter_mut() {
                    if let RxQ::Packet(r) = q {
                        r.recover();
                    }
                }
                super::xdp::resync_queues(rx, tx);
                return true;
            }
            Ok(Resume::Exit) => return false,
            Err(RecvTimeoutError::Timeout) => {
                if stop.load(Relaxed) {
                    return false;
                }
            }
        }
    }
}

//! The `rvs-mld` thread: MLDv2 Reports (RFC 3810) for the groups each port
//! listens to ([`Store::mld_ports`]), so that a switch doing MLD snooping
//! forwards the neighbour solicitations for rvs's IPv6 addresses to it.
//! Membership on the NIC itself is [`super::mcast`]'s.
//!
//! One rvs-core [`Listener`] per port (a bond's on the bond: its Reports
//! leave through one slave, as its other frames). The control thread sends
//! the wanted groups after every change; the workers send the Queries their
//! pipeline heard ([`MldHeard`]); the Reports due go to worker 0, which
//! sends them on the port's transmit queue as it sends kernel frames.
//! Known limits: a VLAN device's groups are reported untagged on the port
//! under it (its Queries are not answered), and version 1 queriers get
//! version 2 Reports.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rvs_core::addr::Addr;
use rvs_core::mld::Listener;
use rvs_core::pipeline::MldHeard;

use crate::store::{MldPort, Store};

/// What the thread is told.
pub enum Event {
    /// The groups of every port, by port index, after a change.
    Ports(Vec<MldPort>),
    /// A Query a worker heard.
    Heard(MldHeard),
}

/// A Report frame for worker 0 to send, and its port.
pub type OutFrame = (u16, Vec<u8>);

/// Events and frames waiting, each way.
const QUEUE: usize = 256;
/// The longest the thread sleeps with nothing due.
const IDLE: Duration = Duration::from_millis(200);

/// The channels between the control thread, the workers and `rvs-mld`.
pub struct MldLinks {
    /// Events in (a clone per worker and for the control thread).
    pub events: SyncSender<Event>,
    /// Frames out, for worker 0 (taken once).
    out: Mutex<Option<Receiver<OutFrame>>>,
    /// The ends the thread keeps (taken when it starts).
    ends: Mutex<Option<(Receiver<Event>, SyncSender<OutFrame>)>>,
}

impl MldLinks {
    /// The channels, no thread yet.
    pub fn new() -> MldLinks {
        let (ev_tx, ev_rx) = sync_channel(QUEUE);
        let (out_tx, out_rx) = sync_channel(QUEUE);
        MldLinks {
            events: ev_tx,
            out: Mutex::new(Some(out_rx)),
            ends: Mutex::new(Some((ev_rx, out_tx))),
        }
    }

    /// A worker's ends: queries in, and for worker 0 (`first`) the frames out.
    pub fn worker(&self, first: bool) -> WorkerMld {
        WorkerMld {
            heard: self.events.clone(),
            out: match (first, self.out.lock()) {
                (true, Ok(mut o)) => o.take(),
                _ => None,
            },
        }
    }

    /// Tells the thread the groups `store` wants now (never blocks: a full
    /// queue drops the event, the next change sends the whole set again).
    pub fn sync(&self, store: &Store) {
        let _ = self.events.try_send(Event::Ports(store.mld_ports()));
    }
}

/// What a worker holds of MLD.
pub struct WorkerMld {
    /// Where the Queries its pipeline heard go.
    pub heard: SyncSender<Event>,
    /// Worker 0: the Reports to send.
    pub out: Option<Receiver<OutFrame>>,
}

/// Reports sent, by port name, for the metrics (`rvs_mld_reports_sent_total`).
static REPORTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// The Reports sent so far, by port name.
pub fn reports_sent() -> Vec<(String, u64)> {
    match REPORTS.lock() {
        Ok(r) => r.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Starts `rvs-mld`; it stops when `stop` is set.
pub fn start(links: &MldLinks, stop: &Arc<AtomicBool>, epoch: Instant) -> std::io::Result<()> {
    let Some((events, out)) = links.ends.lock().ok().and_then(|mut e| e.take()) else {
        return Ok(());
    };
    let stop = stop.clone();
    std::thread::Builder::new()
        .name("rvs-mld".into())
        .spawn(move || run(&events, &out, &stop, epoch))?;
    Ok(())
}

fn run(events: &Receiver<Event>, out: &SyncSender<OutFrame>, stop: &AtomicBool, epoch: Instant) {
    let seed = epoch.elapsed().as_nanos() as u64 ^ u64::from(std::process::id()) << 32;
    let mut ports: Vec<(MldPort, Listener)> = Vec::new();
    let mut wait = IDLE;
    while !stop.load(Relaxed) {
        let first = match events.recv_timeout(wait) {
            Ok(e) => Some(e),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let now = epoch.elapsed().as_millis() as u64;
        for e in first
            .into_iter()
            .chain(std::iter::from_fn(|| events.try_recv().ok()))
        {
            match e {
                Event::Ports(v) => apply(&mut ports, v, seed, now),
                Event::Heard(q) => {
                    if let Some((_, l)) = ports.get_mut(usize::from(q.port)) {
                        l.query(q.group, q.max_resp_ms, q.qrv, now);
                    }
                }
            }
        }
        for (i, (p, l)) in ports.iter_mut().enumerate() {
            let src = p.link_local.map_or(Addr::UNSPECIFIED, Addr::from);
            let n = l.tick(now, p.mac, &src, &mut |f| {
                // Full: worker 0 is stalled; a lost Report is what
                // robustness and the next Query are for.
                let _ = out.try_send((i as u16, f.to_vec()));
            });
            if n > 0 {
                if let Ok(mut r) = REPORTS.lock() {
                    *r.entry(p.name.clone()).or_default() += n as u64;
                }
            }
        }
        let due = ports.iter().filter_map(|(_, l)| l.next_due()).min();
        wait = due.map_or(IDLE, |d| {
            Duration::from_millis(d.saturating_sub(now)).min(IDLE)
        });
    }
}

/// The wanted groups `v` into the listeners (one per port, made when
/// first needed).
fn apply(ports: &mut Vec<(MldPort, Listener)>, v: Vec<MldPort>, seed: u64, now: u64) {
    for (i, p) in v.into_iter().enumerate() {
        let groups: Vec<Addr> = p.groups.iter().map(|g| Addr::from(*g)).collect();
        match ports.get_mut(i) {
            Some((old, l)) => {
                l.set_groups(groups, now);
                *old = p;
            }
            None => {
                let mut l = Listener::new(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                l.set_groups(groups, now);
                ports.push((p, l));
            }
        }
    }
}

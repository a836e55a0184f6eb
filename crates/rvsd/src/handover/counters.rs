//! Counters across a hot upgrade (`docs/design/hot-upgrade.md`, step 6
//! "COUNTERS (bases)"): each parked worker's final counters go in a
//! COUNTERS frame, and the new rvsd's worker of the same index adds them
//! to its own before it forwards, so that `rvsadm -ln --stats`, `rvsip
//! link show` and the metrics go on from where the old rvsd stopped
//! instead of falling back to zero.
//!
//! A warm standby gets them every second instead (COUNTERS version
//! [`super::precopy::COUNTERS_EVERY`]) and keeps the latest of each worker
//! ([`keep_latest`]), its bases when it is promoted.
//!
//! What goes, per worker: drops by reason, each service's, dest's and
//! local address's counters ([`Worker::export_counters`], the gauges
//! rebuilt from the connections instead), the UDP option of origin
//! counts, and each port's counters ([`PortCounters`]). Services are named
//! by their key's text: both processes built the same configuration
//! (STORE and its fingerprint), and one that does not match is skipped.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rvs_core::pipeline::{CounterBases, SvcCounters, Worker};
use rvs_core::snapshot::Snapshot;
use rvs_core::stats::{bump, CounterValues, DropReason};
use serde::{Deserialize, Serialize};

use crate::runtime::PortCounters;

/// Connections, packets in and out, bytes in and out.
type Values = [u64; 5];

/// A service's counters on one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SvcWire {
    /// Its key, as text.
    pub key: String,
    /// Its own counters.
    pub values: Values,
    /// Each dest's, by address and port.
    pub dests: Vec<(IpAddr, u16, Values)>,
    /// Each local address's connections.
    pub laddrs: Vec<(IpAddr, u64)>,
}

/// The COUNTERS frame: one worker's final counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersFrame {
    /// The worker.
    pub worker: u16,
    /// Drops by reason name (non-zero ones).
    pub drops: Vec<(String, u64)>,
    /// Services' counters.
    pub services: Vec<SvcWire>,
    /// UDP option of origin: sent, too big.
    pub uoa: (u64, u64),
    /// Each port's counters, in [`port_fields`] order.
    pub ports: Vec<Vec<u64>>,
}

fn values(v: &CounterValues) -> Values {
    [v.conns, v.inpkts, v.outpkts, v.inbytes, v.outbytes]
}

fn counter_values(v: &Values) -> CounterValues {
    CounterValues {
        conns: v[0],
        inpkts: v[1],
        outpkts: v[2],
        inbytes: v[3],
        outbytes: v[4],
        active: 0,
        inactive: 0,
    }
}

/// A port's counters, in a fixed order.
fn port_fields(c: &PortCounters) -> [&AtomicU64; 9] {
    [
        &c.rx_packets,
        &c.rx_bytes,
        &c.rx_dropped,
        &c.tx_packets,
        &c.tx_bytes,
        &c.tx_dropped,
        &c.kni_packets,
        &c.rx_full_bursts,
        &c.fast_packets,
    ]
}

/// A parked worker's counters (called on the worker's thread).
pub fn export(worker: &Worker, ports: &[PortCounters]) -> CountersFrame {
    let b = worker.export_counters();
    CountersFrame {
        worker: worker.id(),
        drops: b
            .drops
            .iter()
            .map(|(r, n)| (r.name().to_string(), *n))
            .collect(),
        services: b
            .services
            .iter()
            .map(|s| SvcWire {
                key: format!("{:?}", s.key),
                values: values(&s.values),
                dests: s
                    .dests
                    .iter()
                    .map(|(a, p, v)| (IpAddr::from(*a), *p, values(v)))
                    .collect(),
                laddrs: s
                    .laddrs
                    .iter()
                    .map(|(a, n)| (IpAddr::from(*a), *n))
                    .collect(),
            })
            .collect(),
        uoa: b.uoa,
        ports: ports
            .iter()
            .map(|c| port_fields(c).iter().map(|a| a.load(Relaxed)).collect())
            .collect(),
    }
}

/// The bases of `f` for a worker running `snap` (services by key text;
/// those it does not have are left out, as are unknown drop reasons).
pub fn bases(f: &CountersFrame, snap: &Snapshot) -> CounterBases {
    let drops = f
        .drops
        .iter()
        .filter_map(|(name, n)| {
            DropReason::ALL
                .iter()
                .find(|r| r.name() == name)
                .map(|r| (*r, *n))
        })
        .collect();
    let services = f
        .services
        .iter()
        .filter_map(|w| {
            let s = snap
                .services
                .iter()
                .find(|s| format!("{:?}", s.key) == w.key)?;
            Some(SvcCounters {
                key: s.key.clone(),
                values: counter_values(&w.values),
                dests: w
                    .dests
                    .iter()
                    .map(|(a, p, v)| ((*a).into(), *p, counter_values(v)))
                    .collect(),
                laddrs: w.laddrs.iter().map(|(a, n)| ((*a).into(), *n)).collect(),
            })
        })
        .collect();
    CounterBases {
        drops,
        services,
        uoa: f.uoa,
    }
}

/// A warm standby keeps `f` as its active's latest counters of that
/// worker (replacing the earlier ones), for its promotion.
pub fn keep_latest(latest: &mut [Option<CountersFrame>], f: CountersFrame) -> Result<(), String> {
    let w = f.worker;
    let slot = latest
        .get_mut(usize::from(w))
        .ok_or_else(|| format!("counters of worker {w}, which is not configured here"))?;
    *slot = Some(f);
    Ok(())
}

/// Adds `f`'s port counters to a worker's own (on that worker's thread,
/// before it forwards).
pub fn add_ports(f: &CountersFrame, ports: &[PortCounters]) {
    for (c, v) in ports.iter().zip(&f.ports) {
        for (a, n) in port_fields(c).into_iter().zip(v) {
            bump(a, *n);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rvs_core::addr::Addr;
    use rvs_core::conn::FwdMode;
    use rvs_core::lab::{self, DestSpec, FrameSpec};
    use rvs_core::pipeline::{Packet, WorkerConf};
    use rvs_core::sched::SchedKind;
    use rvs_core::service::ServiceKey as CoreKey;

    use super::*;

    /// One TCP FNAT service on the lab VIP over two real servers.
    fn snapshot() -> Arc<Snapshot> {
        let svc = lab::service(
            1,
            CoreKey::Vs {
                proto: rvs_core::addr::proto::TCP,
                vip: lab::VIP,
                vport: 80,
            },
            SchedKind::Rr,
            &[
                DestSpec::new(lab::rs_ip(0), 80, FwdMode::Fnat),
                DestSpec::new(lab::rs_ip(1), 80, FwdMode::Fnat),
            ],
            &[(lab::LIP, lab::LAN)],
            0,
            1,
        );
        Arc::new(lab::snapshot(1, vec![svc], 2))
    }

    fn worker(snap: &Arc<Snapshot>) -> Worker {
        let conf = WorkerConf {
            conn_capacity: 1024,
            ..WorkerConf::default()
        };
        Worker::new(conf, snap.clone(), 0)
    }

    /// A standby's bases at its promotion are the active's latest report
    /// of each worker, not its first nor their sum.
    #[test]
    fn a_standby_keeps_the_latest_counters_of_each_worker() {
        let report = |worker, rx| CountersFrame {
            worker,
            ports: vec![vec![rx, 0, 0, 0, 0, 0, 0, 0, 0]],
            ..CountersFrame::default()
        };
        let mut latest = vec![None, None];
        for (w, rx) in [(0, 10), (1, 7), (0, 25)] {
            keep_latest(&mut latest, report(w, rx)).expect("a worker of ours");
        }
        let rx = |w: usize| latest[w].as_ref().map(|f| f.ports[0][0]);
        assert_eq!((rx(0), rx(1)), (Some(25), Some(7)));
        let e = keep_latest(&mut latest, report(2, 1)).unwrap_err();
        assert!(e.contains("worker 2, which is not configured here"), "{e}");
    }

    /// A worker's counters after traffic go through JSON to the worker of
    /// the same index of another process with the same configuration, and
    /// come out there as they were (services, dests, ports, drops).
    #[test]
    fn a_worker_s_counters_reach_its_successor_as_bases() {
        let (snap_a, snap_b) = (snapshot(), snapshot());
        let mut a = worker(&snap_a);
        let mut buf = vec![0u8; 2048];
        for i in 0..5u16 {
            let f = FrameSpec::tcp(Addr::v4(10, 1, 0, 1), 1000 + i, lab::VIP, 80, 0x02).to_vec();
            buf[64..64 + f.len()].copy_from_slice(&f);
            let mut p = Packet {
                buf: &mut buf,
                head: 64,
                len: f.len(),
                port: lab::WAN,
                csum_ok: false,
            };
            a.process(&mut p, 0);
        }
        let ports: Vec<PortCounters> = (0..2).map(|_| PortCounters::default()).collect();
        ports[1].rx_packets.store(12, Relaxed);
        ports[0].tx_bytes.store(3000, Relaxed);
        let f = export(&a, &ports);
        let f: CountersFrame = serde_json::from_slice(&serde_json::to_vec(&f).unwrap()).unwrap();
        let mut b = worker(&snap_b);
        b.add_counters(&bases(&f, &snap_b));
        let theirs = &snap_a.services[0];
        let ours = &snap_b.services[0];
        assert_eq!(theirs.stats.sum().inpkts, 5);
        // The gauges (active, inactive) come from the connections instead.
        assert_eq!(values(&ours.stats.sum()), values(&theirs.stats.sum()));
        for (d, e) in ours.dests.iter().zip(&theirs.dests) {
            assert_eq!(values(&d.stats.sum()), values(&e.stats.sum()));
        }
        let mine: Vec<PortCounters> = (0..2).map(|_| PortCounters::default()).collect();
        add_ports(&f, &mine);
        assert_eq!(mine[1].rx_packets.load(Relaxed), 12);
        assert_eq!(mine[0].tx_bytes.load(Relaxed), 3000);
    }
}

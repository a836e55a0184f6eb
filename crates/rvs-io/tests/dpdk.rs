//! The DPDK backend's smoke test (feature `dpdk`; root): EAL with
//! `--no-huge --no-shconf --no-pci`, a `net_af_packet` vdev with two queue
//! pairs on one end of a veth pair, a peer on the other end. The peer sends
//! 1,000 UDP frames from many source ports; each worker echoes back what it
//! receives, and must only ever see the frames it owns (the af_packet PMD's
//! own hash spreads them, the hand-off rings put them right); every echo
//! comes back, and once the queues are gone every mbuf is back in the pool.
//!
//! `cargo test -p rvs-io --features dpdk --test dpdk`

#![cfg(feature = "dpdk")]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{udp_frame, veth_pair, Netns};
use rvs_io::dpdk::{DpdkConf, DpdkPort, DpdkRx, DpdkRxStats, DpdkTx};
use rvs_io::steer::flow::SteerPath;
use rvs_io::steer::{owner, Steering};
use rvs_io::{AfPacketConf, AfPacketQueue};

const N: usize = 1000;
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0xaa, 1];
const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0xbb, 1];

/// A worker: echoes (MACs swapped) every frame from the peer, checking it
/// owns it, until `stop`.
fn worker(
    w: u16,
    mut rx: DpdkRx,
    mut tx: DpdkTx,
    s: &Steering,
    stop: &AtomicBool,
) -> (usize, DpdkRxStats) {
    let mut got = 0;
    let mut wrong = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut b = rx.burst(32);
        for p in b.iter_mut() {
            let f = &mut p.buf[p.head..p.head + p.len];
            if f[6..12] != PEER_MAC {
                continue;
            }
            if owner(f, s) != w {
                wrong += 1;
            }
            got += 1;
            f[6..12].copy_from_slice(&LB_MAC);
            f[0..6].copy_from_slice(&PEER_MAC);
            let frame = &p.buf[p.head..p.head + p.len];
            assert!(tx.send(frame), "worker {w}: no mbuf for the echo");
        }
        tx.flush();
        std::thread::sleep(Duration::from_micros(50));
    }
    assert_eq!(wrong, 0, "worker {w} got frames another worker owns");
    (got, rx.stats())
}

#[test]
fn af_packet_vdev_echoes_1000_frames_and_returns_every_mbuf() {
    echo_1000("net_af_packet");
}

/// The same over `net_af_xdp`: on a veth (no combined channel) one device
/// queue, so worker 0 receives everything and hands worker 1 its frames,
/// and both transmit on the one queue.
#[test]
fn af_xdp_vdev_echoes_1000_frames_and_returns_every_mbuf() {
    echo_1000("net_af_xdp");
}

/// The EAL options of these tests and `dev`.
fn conf(dev: &str) -> DpdkConf {
    DpdkConf {
        eal: [
            "--no-huge",
            "-m",
            "256",
            "--no-pci",
            "--no-shconf",
            "--no-telemetry",
        ]
        .map(String::from)
        .to_vec(),
        dev: dev.into(),
        mbufs: 0,
    }
}

fn echo_1000(dev: &str) {
    let ns = Netns::new();
    veth_pair(&ns, "d0", "p0");
    let s = Steering {
        workers: 2,
        ..Steering::default()
    };
    ns.run(|| {
        let conf = conf(dev);
        let (port, queues) = DpdkPort::open("d0", &conf, 0, 2).expect("open the vdev on d0");
        assert!(port.backend().contains(dev), "{}", port.backend());
        port.set_steering(&s);
        // Neither vdev has rte_flow: the probe falls back to the hand-off
        // ring, and the backend name says so and why.
        let path = port.steer_path();
        assert!(matches!(path, SteerPath::HandOff { .. }), "{path}");
        let why = match dev {
            // Two queue pairs: the device itself refuses the probe rule.
            "net_af_packet" => "no rte_flow: rte_flow_validate: ",
            // A veth has one queue: rules could not reach worker 1.
            _ => "no rte_flow: 1 device queue(s) for 2 workers",
        };
        let shown = port.backend();
        assert!(
            shown.contains(&format!("steering hand-off ({why}")),
            "{shown}"
        );
        // net_af_xdp keeps its fill ring stocked from the pool.
        let stocked = port.mbufs_in_use();
        if dev == "net_af_packet" {
            assert_eq!(stocked, 0, "the af_packet PMD holds no mbuf");
        }
        let mut peer = AfPacketQueue::open("p0", &AfPacketConf::default()).expect("peer socket");
        let stop = AtomicBool::new(false);
        let (echoes, per_worker) = std::thread::scope(|sc| {
            let workers: Vec<_> = queues
                .into_iter()
                .enumerate()
                .map(|(w, (rx, tx))| {
                    let (s, stop) = (&s, &stop);
                    let ns = &ns;
                    sc.spawn(move || {
                        ns.enter();
                        worker(w as u16, rx, tx, s, stop)
                    })
                })
                .collect();
            let mut echoes = 0;
            let mut sent = 0;
            let deadline = Instant::now() + Duration::from_secs(20);
            while echoes < N && Instant::now() < deadline {
                while sent < N && sent < echoes + 64 {
                    let f = udp_frame(
                        LB_MAC,
                        PEER_MAC,
                        [10, 0, 0, 1],
                        [10, 0, 0, 2],
                        1024 + sent as u16,
                        9,
                        b"rvs dpdk smoke",
                    );
                    assert!(peer.tx(&f));
                    sent += 1;
                }
                peer.flush();
                let b = peer.rx_burst(32);
                echoes += b
                    .iter()
                    .filter(|p| p.frame()[6..12] == LB_MAC && p.frame()[0..6] == PEER_MAC)
                    .count();
                peer.release();
                std::thread::sleep(Duration::from_micros(200));
            }
            stop.store(true, Ordering::Relaxed);
            let per: Vec<_> = workers.into_iter().map(|h| h.join().unwrap()).collect();
            (echoes, per)
        });
        assert_eq!(
            echoes, N,
            "echoes back at the peer; workers: {per_worker:?}"
        );
        let seen: usize = per_worker.iter().map(|(n, _)| n).sum();
        assert_eq!(seen, N, "frames the workers echoed: {per_worker:?}");
        assert!(
            per_worker.iter().all(|(n, _)| *n > 0),
            "both workers own frames: {per_worker:?}"
        );
        let handed: u64 = per_worker.iter().map(|(_, s)| s.handed_out).sum();
        let full: u64 = per_worker.iter().map(|(_, s)| s.handoff_full).sum();
        assert_eq!(full, 0, "{per_worker:?}");
        eprintln!("hand-offs: {handed} of {N}; {per_worker:?}");
        let left = port.mbufs_in_use() - stocked;
        if dev == "net_af_packet" {
            assert_eq!(left, 0, "mbufs not returned to the pool");
        } else {
            // net_af_xdp frees a sent mbuf when it reaps the completion
            // ring, on its next transmit: the last bursts may still be out.
            assert!(left <= 64, "{left} mbufs not returned to the pool");
        }
    });
}

/// A worker that does not keep up: worker 1 owns every frame (UDP to a
/// pool address, odd destination ports) and never polls, so worker 0
/// hands it frames until the ring (1024 entries) is full; the rest are
/// freed and counted as `handoff_full` (what rvsd reports under the drop
/// reason of that name), none is lost uncounted, nothing panics, and once
/// worker 1 drains its ring every mbuf is back in the pool.
#[test]
fn a_full_hand_off_ring_is_counted_and_frees_the_frames() {
    let ns = Netns::new();
    veth_pair(&ns, "d0", "p0");
    let lip = [10, 0, 0, 1];
    let s = Steering {
        workers: 2,
        pool_v4: vec![lip],
        ..Steering::default()
    };
    ns.run(|| {
        let (port, queues) =
            DpdkPort::open("d0", &conf("net_af_packet"), 0, 2).expect("open the vdev on d0");
        port.set_steering(&s);
        let mut q = queues.into_iter();
        let (mut rx0, _tx0) = q.next().unwrap();
        let (mut rx1, _tx1) = q.next().unwrap();
        let mut peer = AfPacketQueue::open("p0", &AfPacketConf::default()).expect("peer socket");
        let mut to_w0 = 0u64;
        for i in 0..6000u16 {
            // Source ports spread the frames over both device queues; the
            // odd destination port makes worker 1 their owner.
            let f = udp_frame(
                LB_MAC,
                PEER_MAC,
                [10, 0, 0, 2],
                lip,
                1024 + i,
                2 * i + 1,
                b"x",
            );
            assert_eq!(owner(&f, &s), 1);
            assert!(peer.tx(&f));
            if i % 32 == 31 {
                peer.flush();
                std::thread::sleep(Duration::from_micros(300));
                loop {
                    let kept = rx0.burst(32).len();
                    assert_eq!(kept, 0, "worker 0 kept a frame worker 1 owns");
                    let got = rx0.stats().packets;
                    if got == to_w0 {
                        break;
                    }
                    to_w0 = got;
                }
            }
        }
        let st = rx0.stats();
        assert!(
            st.packets > 1100,
            "too few frames reached queue 0 to fill the ring: {st:?}"
        );
        assert_eq!(st.handed_out, st.packets, "{st:?}");
        assert!(st.handoff_full > 0, "the ring never filled: {st:?}");
        assert_eq!(rx0.take_handoff_full(), st.handoff_full);
        assert_eq!(rx0.take_handoff_full(), 0, "counted once");
        // Worker 1 drains what fit in its ring (and its own queue).
        while !rx1.burst(32).is_empty() {}
        let handed_in = rx1.stats().handed_in;
        eprintln!("worker 0: {st:?}; worker 1 took {handed_in} from its ring");
        assert_eq!(handed_in, st.handed_out - st.handoff_full, "{st:?}");
        assert!(
            handed_in >= 1000,
            "the ring holds ~1024 frames: {handed_in}"
        );
        rx0.release();
        rx1.release();
        assert_eq!(port.mbufs_in_use(), 0, "mbufs not returned to the pool");
    });
}

//! AF_XDP on a multi-queue device (a veth pair with four queues each way):
//! every RX queue served, each frame steered to the owning worker's socket
//! on the queue it arrived on; queues the device lacks refused, queues left
//! out reported.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{udp_frame, Netns};
use rvs_io::{wait_any, Steering, XdpConf, XdpPort, BURST};

const QUEUES: &str = "4";

/// A veth pair `m0`/`m1` with four RX and TX queues on each side, up.
fn mq_pair(ns: &Netns) {
    mq_pair_tx(ns, QUEUES);
}

/// A veth pair `m0`/`m1`, four RX queues each, four TX queues on `m0` and
/// `m1_tx` on `m1`, up.
fn mq_pair_tx(ns: &Netns, m1_tx: &str) {
    let q = QUEUES;
    ns.ip(&[
        "link",
        "add",
        "m0",
        "numrxqueues",
        q,
        "numtxqueues",
        q,
        "type",
        "veth",
        "peer",
        "m1",
        "numrxqueues",
        q,
        "numtxqueues",
        m1_tx,
    ]);
    ns.ip(&["link", "set", "m0", "up"]);
    ns.ip(&["link", "set", "m1", "up"]);
}

fn conf(workers: u16) -> XdpConf {
    XdpConf {
        workers,
        frames: 2048,
        fill_size: 1024,
        comp_size: 512,
        rx_size: 512,
        tx_size: 512,
        ..XdpConf::default()
    }
}

/// Datagrams to a pool address from many source ports leave `m0` on
/// several TX queues (the kernel hashes each flow to one), so they arrive
/// on several RX queues of `m1`: every one reaches rvs, each at the worker
/// the pool rule names (`dport % 2`), and more than one queue delivered.
#[test]
fn every_queue_is_served_and_frames_reach_the_owning_worker() {
    let ns = Netns::new();
    mq_pair(&ns);
    let m1 = ns.run(|| rvs_io::iface::mac_of("m1").expect("mac of m1"));
    let mac = m1
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    ns.ip(&["addr", "add", "10.6.0.1/24", "dev", "m0"]);
    ns.ip(&[
        "neigh",
        "add",
        "10.6.0.100",
        "lladdr",
        &mac,
        "dev",
        "m0",
        "nud",
        "permanent",
    ]);
    ns.run(|| {
        let mut port = XdpPort::open("m1", &conf(2)).expect("open m1 with two workers");
        assert_eq!(port.served_queues(), 0..4);
        assert_eq!(port.device_queues(), 4);
        assert_eq!(port.unserved(), None);
        assert!(
            port.backend().contains("queues 0-3 of 4"),
            "{}",
            port.backend()
        );
        port.set_steering(&Steering {
            workers: 2,
            pool_v4: vec![[10, 6, 0, 100]],
            ..Steering::default()
        })
        .expect("steering");
        let mut qs = port.take_queues();
        let n = 64u16;
        for i in 0..n {
            let s = UdpSocket::bind("10.6.0.1:0").expect("bind");
            s.send_to(b"which queue?", ("10.6.0.100", 3000 + i))
                .expect("send");
        }
        let mut got: [Vec<u16>; 2] = [Vec::new(), Vec::new()];
        let deadline = Instant::now() + Duration::from_secs(3);
        while got[0].len() + got[1].len() < n as usize && Instant::now() < deadline {
            let mut any = 0;
            for (w, q) in qs.iter_mut().enumerate() {
                let b = q.rx.burst(BURST);
                any += b.len();
                for p in b.iter() {
                    let f = p.frame();
                    if f.len() >= 38 && f[12..14] == [8, 0] && f[23] == 17 {
                        got[w].push(u16::from_be_bytes([f[36], f[37]]));
                    }
                }
            }
            if any == 0 {
                for q in qs.iter_mut() {
                    q.rx.release();
                }
                wait_any(&[qs[0].fd(), qs[1].fd()], 10).unwrap();
            }
        }
        let per_queue: Vec<Vec<(u32, u64)>> = qs.iter().map(|q| q.rx.queue_packets()).collect();
        println!("frames by worker and queue: {per_queue:?}");
        assert_eq!(got[0].len() + got[1].len(), n as usize, "{got:?}");
        assert!(got[0].iter().all(|p| p % 2 == 0), "{got:?}");
        assert!(got[1].iter().all(|p| p % 2 == 1), "{got:?}");
        let mut by_queue = [0u64; 4];
        for w in &per_queue {
            assert_eq!(w.iter().map(|(q, _)| *q).collect::<Vec<_>>(), [0, 1, 2, 3]);
            for (q, k) in w {
                by_queue[*q as usize] += k;
            }
        }
        assert!(
            by_queue.iter().filter(|k| **k > 0).count() > 1,
            "the flows must have arrived on several queues: {by_queue:?}"
        );
        assert!(
            by_queue[1..].iter().sum::<u64>() > 0,
            "frames on queues other than 0 must reach rvs: {by_queue:?}"
        );
        // Each worker transmits on its home queue, from that queue's pool.
        for (w, q) in qs.iter_mut().enumerate() {
            assert_eq!(q.tx.queue(), w as u32, "worker {w}'s home queue");
            let f = vec![0u8; 60];
            assert!(q.tx.send(&f));
            q.tx.flush();
        }
    });
}

/// Asking for more queues than the device has fails, naming the device and
/// its queue count; serving fewer works and says which queues no worker
/// serves.
#[test]
fn missing_queues_are_refused_and_unserved_ones_reported() {
    let ns = Netns::new();
    mq_pair(&ns);
    ns.run(|| {
        let e = XdpPort::open(
            "m1",
            &XdpConf {
                queues: Some(8),
                ..conf(2)
            },
        )
        .err()
        .expect("8 queues on a 4-queue device must be refused")
        .to_string();
        assert!(e.contains("m1 has 4 RX queue(s) (0-3)"), "{e}");
        let port = XdpPort::open(
            "m1",
            &XdpConf {
                queues: Some(1),
                ..conf(2)
            },
        )
        .expect("one queue of four");
        assert_eq!(port.served_queues(), 0..1);
        assert!(
            port.backend().contains("queue 0 of 4"),
            "{}",
            port.backend()
        );
        let w = port.unserved().expect("queues 1-3 are unserved");
        assert!(w.starts_with("m1 has 4 RX queues"), "{w}");
        assert!(w.contains("no worker serves queue(s) 1-3"), "{w}");
    });
}

/// A device with four RX queues and one TX queue: every RX queue served,
/// and both workers transmit on queue 0, the only one there is for TX.
#[test]
fn more_rx_than_tx_queues() {
    let ns = Netns::new();
    mq_pair_tx(&ns, "1");
    ns.ip(&["addr", "add", "10.7.0.1/24", "dev", "m0"]);
    ns.run(|| {
        let mut port = XdpPort::open("m1", &conf(2)).expect("open m1");
        assert_eq!(port.served_queues(), 0..4);
        let mut qs = port.take_queues();
        let (m0, m1) = (
            rvs_io::iface::mac_of("m0").unwrap(),
            rvs_io::iface::mac_of("m1").unwrap(),
        );
        let sock = UdpSocket::bind("10.7.0.1:7000").expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        for (w, q) in qs.iter_mut().enumerate() {
            assert_eq!(q.rx.queue_packets().len(), 4);
            assert_eq!(q.tx.queue(), 0, "worker {w} must transmit on queue 0");
            let f = udp_frame(
                m0,
                m1,
                [10, 7, 0, 2],
                [10, 7, 0, 1],
                5000 + w as u16,
                7000,
                b"hi",
            );
            assert!(q.tx.send(&f));
            q.tx.flush();
        }
        let mut from = Vec::new();
        let mut buf = [0u8; 64];
        for _ in 0..2 {
            let (_, a) = sock.recv_from(&mut buf).expect("a frame from each worker");
            from.push(a.port());
        }
        from.sort_unstable();
        assert_eq!(from, [5000, 5001]);
    });
}

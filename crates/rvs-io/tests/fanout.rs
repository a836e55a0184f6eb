//! Fanout steering with the generated classic-BPF program, in the kernel.

mod common;

use std::time::{Duration, Instant};

use common::{udp_frame, veth_pair, Netns};
use rvs_io::iface::mac_of;
use rvs_io::steer::{build_cbpf, set_fanout_program};
use rvs_io::{AfPacketConf, AfPacketQueue, Steering, BURST};

const POOL: [u8; 4] = [10, 8, 0, 100];
const CLIENT: [u8; 4] = [10, 8, 0, 1];

fn conf(fanout: Option<u16>) -> AfPacketConf {
    AfPacketConf {
        block_size: 256 << 10,
        block_count: 4,
        tx_frames: 128,
        fanout,
        ..AfPacketConf::default()
    }
}

/// The UDP (source, destination) ports of our frames each queue receives until
/// `want` arrived in all (or 3 s passed).
fn collect(qs: &mut [AfPacketQueue], src: [u8; 6], want: usize) -> Vec<Vec<(u16, u16)>> {
    let mut got = vec![Vec::new(); qs.len()];
    let deadline = Instant::now() + Duration::from_secs(3);
    while got.iter().map(Vec::len).sum::<usize>() < want && Instant::now() < deadline {
        let mut n = 0;
        for (i, q) in qs.iter_mut().enumerate() {
            let b = q.rx_burst(BURST);
            n += b.len();
            for p in b.iter() {
                let f = p.frame();
                if f.len() >= 38 && f[6..12] == src {
                    got[i].push((
                        u16::from_be_bytes([f[34], f[35]]),
                        u16::from_be_bytes([f[36], f[37]]),
                    ));
                }
            }
        }
        if n == 0 {
            for q in qs.iter_mut() {
                q.release();
            }
            let fds: Vec<_> = qs.iter().map(|q| q.fd()).collect();
            rvs_io::wait_any(&fds, 10).unwrap();
        }
    }
    got
}

/// Two queues in one group on f1: frames to a pool address land on queue
/// `dport % 2`; after the program is replaced without the pool, the same
/// frames follow the `(saddr ^ sport) % 2` rule instead.
#[test]
fn fanout_steers_pool_ports_to_their_worker_and_program_can_be_replaced() {
    let ns = Netns::new();
    veth_pair(&ns, "f0", "f1");
    ns.run(|| {
        let group = Some(0x5a17);
        let mut qs = vec![
            AfPacketQueue::open("f1", &conf(group)).expect("join as worker 0"),
            AfPacketQueue::open("f1", &conf(group)).expect("join as worker 1"),
        ];
        let mut s = Steering {
            workers: 2,
            pool_v4: vec![POOL],
            rs_v4: vec![[192, 168, 0, 10]],
            ..Steering::default()
        };
        qs[0].set_steering(&s).expect("kernel accepts the program");
        let mut tx = AfPacketQueue::open("f0", &conf(None)).expect("open f0");
        let (m0, m1) = (mac_of("f0").unwrap(), mac_of("f1").unwrap());
        let send = |tx: &mut AfPacketQueue, sport: u16| {
            for dport in 2000..2016u16 {
                assert!(tx.tx(&udp_frame(m1, m0, CLIENT, POOL, sport, dport, b"steer")));
            }
            tx.flush();
        };

        send(&mut tx, 7);
        let got = collect(&mut qs, m0, 16);
        let even: Vec<(u16, u16)> = (2000..2016)
            .filter(|p| p % 2 == 0)
            .map(|p| (7, p))
            .collect();
        let odd: Vec<(u16, u16)> = (2000..2016)
            .filter(|p| p % 2 == 1)
            .map(|p| (7, p))
            .collect();
        assert_eq!(got, vec![even, odd]);

        // Without pool addresses the client's key decides: CLIENT ^ 7 is
        // 0x0a080006, even, so worker 0 gets all; with sport 8, worker 1.
        s.pool_v4.clear();
        set_fanout_program(qs[1].fd(), &s).expect("replace from another member");
        send(&mut tx, 7);
        send(&mut tx, 8);
        let got = collect(&mut qs, m0, 32);
        let from = |sport: u16| (2000..2016).map(|p| (sport, p)).collect::<Vec<_>>();
        assert_eq!(got, vec![from(7), from(8)]);
        assert_eq!(
            qs[0].stats().rx.kernel_drops + qs[1].stats().rx.kernel_drops,
            0
        );
    });
}

/// The kernel's checker takes the largest programs we build and we refuse
/// those it would not.
#[test]
fn kernel_accepts_large_programs() {
    let ns = Netns::new();
    veth_pair(&ns, "g0", "g1");
    ns.run(|| {
        let q = AfPacketQueue::open("g1", &conf(Some(77))).expect("join");
        let mut s = Steering {
            workers: 5,
            pool_v4: (0..1000u32)
                .map(|i| (0x0a00_0000 + i).to_be_bytes())
                .collect(),
            rs_v4: (0..860u32)
                .map(|i| (0xc0a8_0000 + i).to_be_bytes())
                .collect(),
            pool_v6: vec![[0x20; 16]; 8],
            rs_v6: vec![[0x30; 16]; 8],
        };
        let len = build_cbpf(&s).len();
        assert!((4000..=4096).contains(&len), "{len} instructions");
        q.set_steering(&s).expect("about 4080 instructions");
        s.rs_v4
            .extend((0..200u32).map(|i| (0xac10_0000 + i).to_be_bytes()));
        let e = q.set_steering(&s).expect_err("over 4096 instructions");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        // Not in a group: the kernel refuses a program.
        let lone = AfPacketQueue::open("g0", &conf(None)).unwrap();
        assert!(lone.set_steering(&Steering::default()).is_err());
    });
}

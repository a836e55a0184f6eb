//! The egress's choice of slave and the mode 4 receive filter, without I/O.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use rvs_core::pipeline::Packet;

use super::Egress;
use crate::bond::{Bond, BondShared, Bonds};
use crate::config::BondSection;

/// Ports 0..3 taken over; bond (port 3) of ports 1 and 2, mode `mode`.
fn bonds(mode: u8) -> Bonds {
    let conf: BondSection = toml::from_str(&format!(
        "name = \"bond0\"\nmode = {mode}\nslaves = [\"dpdk1\", \"dpdk2\"]\n"
    ))
    .expect("bond section");
    let b = Bond {
        port: 3,
        conf,
        slaves: vec![1, 2],
        names: vec!["dpdk1".into(), "dpdk2".into()],
        ifaces: vec!["lan1".into(), "lan2".into()],
        macs: vec![[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]],
        mac: [2, 0, 0, 0, 0, 1],
        shared: Arc::new(BondShared::default()),
    };
    Bonds::new(3, vec![Arc::new(b)])
}

/// A TCP/IPv4 frame from source port `sport`, or a LACPDU-typed frame.
fn frame(sport: u16, slow: bool) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[12..14].copy_from_slice(&(if slow { 0x8809u16 } else { 0x0800 }).to_be_bytes());
    f[14] = 0x45;
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 0, 48]);
    f[30..34].copy_from_slice(&[10, 0, 0, 100]);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    f
}

#[test]
fn mode0_alternates_over_the_distributing_slaves_and_counts_when_none() {
    let bs = bonds(0);
    let sh = bs.list[0].shared.clone();
    sh.distributing.store(0b11, Relaxed);
    let mut e = Egress::new(&bs, true);
    let f = frame(1000, false);
    let picks: Vec<_> = (0..4).map(|_| e.slave_for(3, &f)).collect();
    assert_eq!(picks, [Some(2), Some(1), Some(2), Some(1)]);
    // dpdk1 (bit 0) leaves: everything on dpdk2 from the next frame on.
    sh.distributing.store(0b10, Relaxed);
    assert_eq!(e.slave_for(3, &f), Some(2));
    assert_eq!(e.slave_for(3, &f), Some(2));
    sh.distributing.store(0, Relaxed);
    assert_eq!(e.slave_for(3, &f), None);
    assert_eq!(sh.no_slave.load(Relaxed), 1);
}

#[test]
fn mode4_keeps_a_flow_on_one_slave_and_spreads_flows() {
    let bs = bonds(4);
    bs.list[0].shared.distributing.store(0b11, Relaxed);
    let mut e = Egress::new(&bs, false);
    let mut used = [0usize; 3];
    for sport in 1000..1064 {
        let f = frame(sport, false);
        let s = e.slave_for(3, &f).expect("a slave");
        assert_eq!(e.slave_for(3, &f), Some(s), "a flow stays on its slave");
        used[s] += 1;
    }
    assert!(used[1] > 0 && used[2] > 0, "both slaves used: {used:?}");
}

#[test]
fn mode4_rx_hands_lacpdus_over_in_order_and_drops_on_a_slave_not_collecting() {
    let bs = bonds(4);
    let sh = bs.list[0].shared.clone();
    let (ctl_in, _) = bs.thread_ends.lock().unwrap().take().unwrap();
    let mut e = Egress::new(&bs, true);
    let mut bufs: Vec<Vec<u8>> = [(1, false), (2, true), (3, false), (4, false)]
        .iter()
        .map(|&(p, slow)| frame(p, slow))
        .collect();
    fn packets(bufs: &mut [Vec<u8>]) -> Vec<Packet<'_>> {
        bufs.iter_mut()
            .map(|b| {
                let len = b.len();
                Packet {
                    buf: b,
                    head: 0,
                    len,
                    port: 3,
                    csum_ok: false,
                }
            })
            .collect()
    }
    let sport = |p: &Packet<'_>| u16::from_be_bytes([p.buf[34], p.buf[35]]);
    // dpdk2 (port 2, bit 1) collecting: the LACPDU goes to rvs-bond, the
    // others stay in order.
    sh.collecting.store(0b10, Relaxed);
    let mut burst = packets(&mut bufs);
    let keep = e.rx(2, &mut burst);
    assert_eq!(keep, 3);
    let order: Vec<u16> = burst[..keep].iter().map(sport).collect();
    assert_eq!(order, [1, 3, 4]);
    let got = ctl_in.try_recv().expect("the LACPDU handed over");
    assert_eq!((got.slave, got.len), (2, 60));
    // dpdk1 (bit 0) not collecting: only its LACPDU is taken.
    let mut burst = packets(&mut bufs);
    assert_eq!(e.rx(1, &mut burst), 0);
    assert_eq!(sh.not_collecting.load(Relaxed), 3);
    assert_eq!(ctl_in.try_recv().map(|c| c.slave).ok(), Some(1));
    // A port of no bond: untouched.
    let mut burst = packets(&mut bufs);
    assert_eq!(e.rx(0, &mut burst), 4);
}

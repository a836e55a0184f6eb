//! `[pipeline] kni_vip_rate`: packets to a VIP that match no service go to
//! the kernel at the configured rate at most; other exception traffic is
//! not limited.

use super::util::*;
use crate::addr::Addr;
use crate::lab::{self, FrameSpec, LAN, VIP, WAN};
use crate::pipeline::Verdict;
use crate::stats::DropReason;
use crate::wire::tcp::flags::SYN;

/// UDP from a different source each time to the VIP's port 5353 (no service).
fn to_vip(i: u32) -> Vec<u8> {
    let src = Addr::v4(11, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    FrameSpec::udp(src, 4000, VIP, 5353, b"flood").to_vec()
}

/// Sends `n` VIP packets at `now_ms`: how many went to the kernel.
fn send(w: &mut crate::pipeline::Worker, from: u32, n: u32, now_ms: u64) -> u32 {
    let mut kernel = 0;
    for i in from..from + n {
        match run(w, &to_vip(i), WAN, now_ms).0 {
            Verdict::ToKernel(WAN) => kernel += 1,
            Verdict::Drop(DropReason::KniVipRate) => {}
            v => panic!("packet {i}: {v:?}"),
        }
    }
    kernel
}

#[test]
fn a_flood_to_a_vip_s_other_ports_reaches_the_kernel_at_the_configured_rate() {
    // The default: 1,000 per second, bursts of one second.
    let mut w = worker(lab::tutorial_fnat(1));
    assert_eq!(send(&mut w, 0, 1500, 0), 1000, "the burst");
    assert_eq!(w.drops().get(DropReason::KniVipRate), 500);
    assert_eq!(send(&mut w, 1500, 600, 500), 500, "half a second's worth");
    assert_eq!(w.drops().get(DropReason::KniVipRate), 600);
    // Host traffic to rvs's own LAN address is not a VIP's: not limited.
    for i in 0..2000u16 {
        let admin = Addr::v4(192, 168, 100, 50);
        let f = FrameSpec {
            src_mac: crate::addr::Mac([2, 0, 0, 0, 9, 9]),
            dst_mac: lab::LAN_MAC,
            ..FrameSpec::tcp(admin, 10000 + i, lab::LAN_IP, 22, SYN)
        }
        .to_vec();
        assert_eq!(run(&mut w, &f, LAN, 500).0, Verdict::ToKernel(LAN));
    }
    // The service itself is not limited either.
    let f = FrameSpec::tcp(CIP, 40000, VIP, 80, SYN).to_vec();
    assert!(matches!(run(&mut w, &f, WAN, 500).0, Verdict::Transmit(_)));
}

#[test]
fn the_rate_is_shared_by_the_workers_and_zero_is_no_limit() {
    let mut snap = lab::tutorial_fnat(2);
    snap.conf.kni_vip_rate = 300;
    let mut w = worker(snap);
    assert_eq!(
        send(&mut w, 0, 400, 0),
        150,
        "half of 300 on each of 2 workers"
    );
    let mut snap = lab::tutorial_fnat(1);
    snap.conf.kni_vip_rate = 0;
    let mut w = worker(snap);
    assert_eq!(send(&mut w, 0, 5000, 0), 5000);
    assert_eq!(w.drops().get(DropReason::KniVipRate), 0);
}

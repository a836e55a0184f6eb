//! Expiry keeps pace with new connections: a churn of short connections far
//! above what a fixed budget per tick removes never finds the table full.

use super::util::*;
use crate::addr::{proto, Addr};
use crate::conn::FwdMode;
use crate::lab::{self, DestSpec, FrameSpec, LAN, LIP, VIP, WAN};
use crate::pipeline::{Packet, Verdict};
use crate::sched::SchedKind;
use crate::service::ServiceKey;
use crate::stats::DropReason;

const LIP2: Addr = Addr::v4(192, 168, 100, 201);

/// 2,000,000 one-datagram UDP flows, 1,000 new ones per simulated ms
/// (1,000,000 per second: more than twice what 4,096 removals per 10 ms tick
/// managed), each living 20 ms, through a 100,000-entry table; the worker
/// ticks every 10 ms, as rvsd's loop does at most.
#[test]
fn two_million_short_conns_never_fill_a_100k_table() {
    const FLOWS: u32 = 2_000_000;
    const PER_MS: u32 = 1_000;
    let svc = lab::service(
        1,
        ServiceKey::Vs {
            proto: proto::UDP,
            vip: VIP,
            vport: 53,
        },
        SchedKind::Rr,
        &[
            DestSpec::new(lab::rs_ip(0), 53, FwdMode::Fnat),
            DestSpec::new(lab::rs_ip(1), 53, FwdMode::Fnat),
        ],
        &[(LIP, LAN), (LIP2, LAN)],
        0,
        1,
    );
    let mut snap = lab::snapshot(1, vec![svc], 2);
    snap.timeouts.udp_ms = 20;
    let mut w = worker_with(0, 100_000, snap);
    let mut buf = vec![0u8; 2048];
    let mut most_live = 0;
    for i in 0..FLOWS {
        let now = u64::from(i / PER_MS);
        if i % (PER_MS * 10) == 0 {
            w.tick(now);
        }
        let b = i.to_be_bytes();
        let cip = Addr::v4(10, b[1], b[2], b[3]);
        let len = FrameSpec::udp(cip, 1024 + (i >> 24) as u16, VIP, 53, b"q").build(&mut buf[64..]);
        let mut p = Packet {
            buf: &mut buf,
            head: 64,
            len,
            port: WAN,
            csum_ok: true,
        };
        let v = w.process(&mut p, now);
        assert_eq!(
            v,
            Verdict::Transmit(LAN),
            "flow {i} at {now} ms with {} live: drops {:?}",
            w.conns().len(),
            w.drops().nonzero()
        );
        most_live = most_live.max(w.conns().len());
    }
    println!("most live connections: {most_live}");
    assert_eq!(w.drops().get(DropReason::ConnTableFull), 0);
    assert_eq!(w.drops().get(DropReason::NoLocalPort), 0);
    // 20 ms of life + 32 ms wheel granularity + 10 ms between ticks.
    assert!(most_live < 70_000, "dead connections piled up: {most_live}");
}

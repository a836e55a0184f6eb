//! Malformed and unwanted frames: each dropped under its reason, never a panic.

use super::util::*;
use crate::addr::Mac;
use crate::lab::{self, FrameSpec, WAN};
use crate::pipeline::{Verdict, Worker};
use crate::snapshot::{PortConf, Snapshot};
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

/// The tutorial's FNAT lab on ports without a kernel path.
fn no_kni() -> Snapshot {
    let base = lab::tutorial_fnat(1);
    let ports = lab::ports()
        .into_iter()
        .map(|p| PortConf { kni: false, ..p })
        .collect();
    Snapshot::new(
        1,
        1,
        ports,
        lab::addrs(),
        lab::routes(),
        base.services.clone(),
        base.static_neigh.clone(),
        Default::default(),
        Default::default(),
    )
}

/// Runs `f` on the WAN port; it must be dropped for `r`, counted once.
fn assert_dropped(w: &mut Worker, f: &[u8], r: DropReason) {
    let before = drops(w, r);
    let (v, _) = run(w, f, WAN, 0);
    assert_eq!(v, Verdict::Drop(r), "all drops: {:?}", w.drops().nonzero());
    assert_eq!(drops(w, r), before + 1, "{r:?} counted");
}

fn syn() -> Vec<u8> {
    from_client(1234, 80, SYN).to_vec()
}

#[test]
fn each_bad_frame_counted_under_its_reason() {
    let mut w = worker(no_kni());
    let good = syn();

    assert_dropped(&mut w, &good[..10], DropReason::Truncated);
    assert_dropped(&mut w, &good[..24], DropReason::Truncated);

    let mut f = good.clone();
    f[16..18].copy_from_slice(&200u16.to_be_bytes());
    fix_ip_csum(&mut f);
    assert_dropped(&mut w, &f, DropReason::Truncated);

    let mut f = good.clone();
    f[24] ^= 0x40;
    assert_dropped(&mut w, &f, DropReason::BadChecksum);

    let mut f = good.clone();
    f[50] ^= 0x01;
    assert_dropped(&mut w, &f, DropReason::BadChecksum);

    let mut f = good.clone();
    f[20] |= 0x20;
    fix_ip_csum(&mut f);
    assert_dropped(&mut w, &f, DropReason::Fragment);

    // Counted, not forwarded: rvs answers with time exceeded (see icmp_gen).
    let f = FrameSpec {
        ttl: 1,
        ..from_client(1235, 80, SYN)
    }
    .to_vec();
    let (v, _) = run(&mut w, &f, WAN, 0);
    assert_ne!(v, Verdict::Transmit(lab::LAN), "TTL 1 forwarded");
    assert_eq!(drops(&w, DropReason::TtlExpired), 1);

    assert_dropped(
        &mut w,
        &from_client(1236, 80, ACK).to_vec(),
        DropReason::NoConn,
    );

    let mut f = good.clone();
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    assert_dropped(&mut w, &f, DropReason::UnknownProto);

    let mut f = good.clone();
    f[0..6].copy_from_slice(&Mac([2, 0, 0, 0, 0, 0x99]).0);
    assert_dropped(&mut w, &f, DropReason::OtherHost);

    assert_eq!(w.drops().total(), 10);
}

//! Cursors within one process: the old reader's freeze in the middle of a
//! V3 block, the adopter resuming there, and the old reader recovering from
//! the ring after its successor died (the thaw path of a failed hot
//! upgrade). The two-process cases are in `af_packet_handover.rs`.

mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{udp_frame, veth_pair, Netns};
use rvs_io::af_packet::handover;
use rvs_io::af_packet::PacketManifest;
use rvs_io::iface::{if_index, mac_of};
use rvs_io::{AfPacketConf, AfPacketQueue, RxRingKind, TxRing, BURST};

const CLIENT: [u8; 4] = [10, 8, 0, 1];
const DST: [u8; 4] = [10, 8, 0, 2];
const DPORT: u16 = 9999;

fn queue_conf(kind: RxRingKind, fanout: Option<u16>) -> AfPacketConf {
    AfPacketConf {
        rx_ring: kind,
        block_size: 128 << 10,
        block_count: 16,
        tx_frames: 64,
        fanout,
        ..AfPacketConf::default()
    }
}

/// (source port, sequence number) of a frame of our numbered stream.
fn stream_seq(f: &[u8]) -> Option<(u16, u64)> {
    if f.len() < 50 || f[12..14] != [8, 0] || f[23] != 17 || f[36..38] != DPORT.to_be_bytes() {
        return None;
    }
    let sport = u16::from_be_bytes([f[34], f[35]]);
    Some((sport, u64::from_le_bytes(f[42..50].try_into().unwrap())))
}

/// A freeze in the middle of a V3 block reports the frames of it already
/// read, and the adopter resumes right after them (and a V2 freeze after
/// the last slot read): the exact cursor of a hot upgrade, in one process.
/// Then the adopter dies holding a burst and the old reader, which kept its
/// ring, recovers: nothing new is lost, what the adopter held is read again.
#[test]
fn freeze_mid_block_resumes_after_the_frames_read_and_recover_after_a_failed_successor() {
    let ns = Netns::new();
    veth_pair(&ns, "hb0", "hb1");
    ns.run(|| {
        let mut tx = TxRing::open(if_index("hb0").unwrap(), 2048, 128).unwrap();
        let (src, dst) = (mac_of("hb0").unwrap(), mac_of("hb1").unwrap());
        for kind in [RxRingKind::V3, RxRingKind::V2] {
            // A retire timer long enough that the 40 frames share a block.
            let conf = AfPacketConf {
                retire_ms: 100,
                ..queue_conf(kind, None)
            };
            let q = AfPacketQueue::open("hb1", &conf).unwrap();
            let AfPacketQueue { rx: mut old, .. } = q;
            let send = |tx: &mut TxRing, seqs: std::ops::Range<u64>| {
                for seq in seqs {
                    let f = udp_frame(dst, src, CLIENT, DST, 7, DPORT, &seq.to_le_bytes());
                    assert!(tx.send(&f));
                }
                tx.flush();
            };
            let m = PacketManifest::of("hb1", &[&old]).unwrap();
            let passed = old.as_fd().try_clone_to_owned().unwrap();
            // One flush: the 40 frames land in one V3 block.
            send(&mut tx, 0..40);
            std::thread::sleep(Duration::from_millis(250));
            let first: Vec<u64> = {
                let b = old.burst(10);
                b.iter()
                    .filter_map(|p| stream_seq(p.frame()))
                    .map(|x| x.1)
                    .collect()
            };
            assert_eq!(
                first,
                (0..10).collect::<Vec<_>>(),
                "{kind:?}: the old reader's burst"
            );
            let c = old.freeze();
            if kind == RxRingKind::V3 {
                // 10, unless the timer cut the 40 frames into two blocks.
                assert!(c.skip > 0, "V3: frames of the open block were read: {c:?}");
            }
            let a = handover::adopt(&m, vec![passed]).unwrap().remove(0);
            let mut new = a.start(c).unwrap();
            let mut rest = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(3);
            while rest.len() < 30 && Instant::now() < deadline {
                let b = new.burst(BURST);
                rest.extend(b.iter().filter_map(|p| stream_seq(p.frame())).map(|x| x.1));
            }
            assert_eq!(
                rest,
                (10..40).collect::<Vec<_>>(),
                "{kind:?}: the new reader"
            );

            // The new reader dies after it started (holding its last burst):
            // the old one, which kept its ring, recovers from the ring.
            drop(new);
            send(&mut tx, 40..50);
            std::thread::sleep(Duration::from_millis(250));
            let c = old.recover();
            let mut again = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(3);
            while !again.contains(&49) && Instant::now() < deadline {
                let b = old.burst(BURST);
                again.extend(b.iter().filter_map(|p| stream_seq(p.frame())).map(|x| x.1));
            }
            let (dups, new_ones): (Vec<u64>, Vec<u64>) = again.iter().partition(|&&s| s < 40);
            assert_eq!(
                new_ones,
                (40..50).collect::<Vec<_>>(),
                "{kind:?}: recovered at {c:?}"
            );
            let bound = if kind == RxRingKind::V2 { BURST } else { 40 };
            assert!(
                !dups.is_empty() && dups.len() <= bound,
                "{kind:?}: read again what the dead reader held: {dups:?}"
            );
        }
    });
}

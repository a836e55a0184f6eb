//! Capture filters, sampling and the per-worker ring, on the real pipeline.

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use rvs_api::{CaptureDir, CaptureMode, CaptureSpec, Endpoint, Proto};
use rvs_core::addr::{proto, Addr};
use rvs_core::lab::{self, FrameSpec};
use rvs_core::pipeline::{Packet, Verdict, Worker, WorkerConf};
use rvs_core::wire::tcp::flags::SYN;

use super::{ring, DrainSide, Filter, Sampler, Tuple};

const CIP: Addr = Addr::v4(10, 0, 0, 48);

fn worker() -> Worker {
    let conf = WorkerConf {
        conn_capacity: 1024,
        ..Default::default()
    };
    Worker::new(conf, Arc::new(lab::tutorial_fnat(1)), 0)
}

fn syn(sport: u16, dport: u16) -> Vec<u8> {
    FrameSpec::tcp(CIP, sport, lab::VIP, dport, SYN).to_vec()
}

fn vip_spec() -> CaptureSpec {
    CaptureSpec {
        service: Some((Proto::Tcp, lab::VIP.to_ip(), 80)),
        ..CaptureSpec::default()
    }
}

/// A captured frame: its direction and tuple.
type Got = (CaptureDir, Option<Tuple>);

/// Runs `frames` through the pipeline as one burst with capture `spec`;
/// returns the verdicts and the captured frames (direction, tuple).
fn capture(
    spec: &CaptureSpec,
    frames: &[Vec<u8>],
    slots: usize,
) -> (Vec<Verdict>, Vec<Got>, DrainSide) {
    let mut w = worker();
    let (mut wc, d) = ring(Filter::new(spec).unwrap(), spec, slots);
    let mut bufs: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut b = vec![0u8; 2048];
            b[64..64 + f.len()].copy_from_slice(f);
            b
        })
        .collect();
    let mut burst: Vec<Packet<'_>> = bufs
        .iter_mut()
        .zip(frames)
        .map(|(b, f)| Packet {
            buf: b,
            head: 64,
            len: f.len(),
            port: lab::WAN,
            csum_ok: false,
        })
        .collect();
    let mut verdicts = vec![Verdict::Consumed; burst.len()];
    wc.before(&burst);
    w.process_burst(&mut burst, &mut verdicts, 0);
    assert!(wc.after(&burst, &verdicts, 7));
    let mut got = Vec::new();
    while let Ok(s) = d.full.try_recv() {
        got.push((s.dir, Tuple::of(&s.data)));
    }
    (verdicts, got, d)
}

#[test]
fn a_forwarded_syn_gives_its_received_and_its_transmitted_frame() {
    let (v, got, d) = capture(&vip_spec(), &[syn(40000, 80), syn(40001, 81)], 8);
    assert_eq!(v[0], Verdict::Transmit(lab::LAN));
    assert_eq!(got.len(), 2, "port 81 does not match: {got:?}");
    let (dir, t) = (got[0].0, got[0].1.unwrap());
    assert_eq!(
        (dir, t.src, t.dst, t.dport),
        (CaptureDir::In, CIP, lab::VIP, 80)
    );
    let (dir, t) = (got[1].0, got[1].1.unwrap());
    assert_eq!(
        (dir, t.src, t.proto),
        (CaptureDir::Out, lab::LIP, proto::TCP)
    );
    assert!(
        t.dst == lab::rs_ip(0) || t.dst == lab::rs_ip(1),
        "to a real server: {t:?}"
    );
    assert_eq!(d.lost.load(Relaxed), 0);
}

#[test]
fn direction_keeps_only_one_of_the_two_frames() {
    let spec = CaptureSpec {
        direction: Some(CaptureDir::Out),
        ..vip_spec()
    };
    let (_, got, _) = capture(&spec, &[syn(40000, 80)], 8);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, CaptureDir::Out);
    assert_eq!(got[0].1.unwrap().src, lab::LIP);
}

#[test]
fn the_transmitted_frame_alone_can_match() {
    // A prefix holding the real servers only: the received frame (client to
    // VIP) does not match, the transmitted one does; both are written.
    let spec = CaptureSpec {
        dst: Some(Endpoint {
            addr: lab::rs_ip(0).to_ip(),
            len: 24,
            port: Some(80),
        }),
        ..CaptureSpec::default()
    };
    let (_, got, _) = capture(&spec, &[syn(40000, 80)], 8);
    assert_eq!(got.len(), 2, "{got:?}");
}

#[test]
fn drop_filter_takes_only_that_reason() {
    let spec = CaptureSpec {
        drop: Some("truncated".into()),
        ..CaptureSpec::default()
    };
    // An IPv4 header that claims more bytes than the frame holds.
    let mut short = syn(40001, 80);
    short.truncate(50);
    let (v, got, _) = capture(&spec, &[syn(40000, 80), short], 8);
    assert!(matches!(v[1], Verdict::Drop(_)), "{v:?}");
    assert_eq!(got.len(), 1, "only the truncated frame: {got:?}");
    assert_eq!(
        (got[0].0, got[0].1),
        (CaptureDir::In, None),
        "it has no tuple"
    );
    let spec = CaptureSpec {
        drop: Some("any".into()),
        ..CaptureSpec::default()
    };
    let (_, got, d) = capture(&spec, &[syn(40000, 80)], 8);
    assert_eq!((got.len(), d.lost.load(Relaxed)), (0, 0), "nothing dropped");
    let bad = CaptureSpec {
        drop: Some("nope".into()),
        ..CaptureSpec::default()
    };
    let e = Filter::new(&bad).unwrap_err();
    assert!(e.message.contains("unknown drop reason \"nope\""), "{e}");
}

#[test]
fn a_full_ring_counts_losses_and_never_waits() {
    let frames: Vec<Vec<u8>> = (0..4).map(|i| syn(40000 + i, 80)).collect();
    let (_, got, d) = capture(&vip_spec(), &frames, 3);
    assert_eq!(got.len(), 3, "three slots");
    assert_eq!(d.lost.load(Relaxed), 5, "eight frames, three slots");
}

#[test]
fn a_gone_reader_ends_the_capture_on_the_worker() {
    let spec = vip_spec();
    let (mut wc, d) = ring(Filter::new(&spec).unwrap(), &spec, 4);
    drop(d);
    let mut w = worker();
    let f = syn(40000, 80);
    let mut b = vec![0u8; 2048];
    b[..f.len()].copy_from_slice(&f);
    let mut burst = [Packet {
        buf: &mut b,
        head: 0,
        len: f.len(),
        port: lab::WAN,
        csum_ok: false,
    }];
    let mut v = [Verdict::Consumed];
    wc.before(&burst);
    w.process_burst(&mut burst, &mut v, 0);
    assert!(!wc.after(&burst, &v, 0));
}

fn tuple(src: Addr, sport: u16, dst: Addr, dport: u16) -> Tuple {
    Tuple {
        proto: proto::TCP,
        src,
        sport,
        dst,
        dport,
    }
}

#[test]
fn prefixes_ports_and_hosts_match_as_written() {
    let ep = |a: &str, len, port| Endpoint {
        addr: a.parse::<IpAddr>().unwrap(),
        len,
        port,
    };
    let t = tuple(CIP, 40000, lab::VIP, 80);
    let f = |spec: CaptureSpec| Filter::new(&spec).unwrap().matches(&t);
    let d = CaptureSpec::default;
    assert!(f(d()));
    assert!(f(CaptureSpec {
        src: Some(ep("10.0.0.0", 24, None)),
        ..d()
    }));
    assert!(!f(CaptureSpec {
        src: Some(ep("10.0.1.0", 24, None)),
        ..d()
    }));
    assert!(f(CaptureSpec {
        dst: Some(ep("10.0.0.100", 32, Some(80))),
        ..d()
    }));
    assert!(!f(CaptureSpec {
        dst: Some(ep("10.0.0.100", 32, Some(81))),
        ..d()
    }));
    assert!(f(CaptureSpec {
        host: Some(ep("10.0.0.48", 32, Some(40000))),
        ..d()
    }));
    assert!(f(CaptureSpec {
        proto: Some(proto::TCP),
        ..d()
    }));
    assert!(!f(CaptureSpec {
        proto: Some(proto::UDP),
        ..d()
    }));
    assert!(!f(CaptureSpec {
        src: Some(ep("2001:db8::", 32, None)),
        ..d()
    }));
    // A reply from the VIP matches the service too.
    let back = tuple(lab::VIP, 80, CIP, 40000);
    assert!(Filter::new(&vip_spec()).unwrap().matches(&back));
    assert!(Filter::new(&CaptureSpec {
        src: Some(ep("10.0.0.0", 33, None)),
        ..d()
    })
    .is_err());
}

#[test]
fn one_in_n_and_first_n_per_flow() {
    let mut s = Sampler::new(CaptureMode::OneIn(3));
    let taken: Vec<bool> = (0..7).map(|_| s.take(None)).collect();
    assert_eq!(taken, [true, false, false, true, false, false, true]);
    let mut s = Sampler::new(CaptureMode::FirstPerFlow(2));
    let a = tuple(CIP, 1, lab::VIP, 80);
    let a_back = tuple(lab::VIP, 80, CIP, 1);
    let b = tuple(CIP, 2, lab::VIP, 80);
    assert!(s.take(Some(&a)));
    assert!(s.take(Some(&a_back)), "both ways are one flow");
    assert!(!s.take(Some(&a)));
    assert!(s.take(Some(&b)));
}

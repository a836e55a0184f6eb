//! The XDP fast path (af_xdp/fast.rs), run by the kernel on crafted frames
//! (BPF_PROG_TEST_RUN, no device): a frame of an installed flow comes out
//! rewritten byte for byte as the worker would have written it, with valid
//! checksums, and is sent back out (XDP_TX on the in port, XDP_REDIRECT
//! elsewhere); SYN/FIN/RST, misses, TTL 1 and fragments go to the steering
//! program untouched, steered as without the fast path.

mod common;

use common::{csum, require_root};
use rvs_io::af_xdp::{fast_test_run, steer_test_run, FastFlow};
use rvs_io::Steering;

const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;
const MAC_IN_D: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_IN_S: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// What a test frame holds.
#[derive(Clone, Copy)]
struct Spec {
    proto: u8,
    dmac: [u8; 6],
    smac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    ttl: u8,
    tcp_flags: u8,
    /// UDP: send checksum 0 (none).
    no_udp_csum: bool,
    frag: u16,
}

fn spec(proto: u8, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Spec {
    Spec {
        proto,
        dmac: MAC_IN_D,
        smac: MAC_IN_S,
        src,
        dst,
        sport,
        dport,
        ttl: 64,
        tcp_flags: 0x10,
        no_udp_csum: false,
        frag: 0x4000,
    }
}

/// The one's-complement sum of the pseudo-header and `l4`, folded.
fn l4_sum(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> u16 {
    let mut b = Vec::new();
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.extend_from_slice(&[0, proto]);
    b.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    b.extend_from_slice(l4);
    !csum(&b)
}

/// A frame with every checksum computed from scratch.
fn frame(s: &Spec, payload: &[u8]) -> Vec<u8> {
    let mut l4 = Vec::new();
    l4.extend_from_slice(&s.sport.to_be_bytes());
    l4.extend_from_slice(&s.dport.to_be_bytes());
    if s.proto == 6 {
        l4.extend_from_slice(&[0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78, 0x50, s.tcp_flags]);
        l4.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    } else {
        l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
    }
    l4.extend_from_slice(payload);
    let co = if s.proto == 6 { 16 } else { 6 };
    if !(s.proto == 17 && s.no_udp_csum) {
        let mut c = csum(&{
            let mut b = Vec::new();
            b.extend_from_slice(&s.src);
            b.extend_from_slice(&s.dst);
            b.extend_from_slice(&[0, s.proto]);
            b.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            b.extend_from_slice(&l4);
            b
        });
        if c == 0 && s.proto == 17 {
            c = 0xffff;
        }
        l4[co..co + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1]);
    ip.extend_from_slice(&s.frag.to_be_bytes());
    ip.extend_from_slice(&[s.ttl, s.proto, 0, 0]);
    ip.extend_from_slice(&s.src);
    ip.extend_from_slice(&s.dst);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&s.dmac);
    f.extend_from_slice(&s.smac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

/// Asserts, by recomputing, that `f`'s IP and L4 checksums are valid.
fn assert_checksums(f: &[u8], what: &str) {
    assert_eq!(csum(&f[14..34]), 0, "{what}: IP header checksum invalid");
    let proto = f[23];
    let (src, dst) = (f[26..30].try_into().unwrap(), f[30..34].try_into().unwrap());
    if proto == 17 && f[40..42] == [0, 0] {
        return;
    }
    assert_eq!(
        l4_sum(src, dst, proto, &f[34..]),
        0xffff,
        "{what}: L4 checksum invalid"
    );
}

/// What the worker's FNAT would make of a frame of `s` through `f`.
fn expected(s: &Spec, f: &FastFlow, payload: &[u8]) -> Vec<u8> {
    frame(
        &Spec {
            dmac: f.dmac,
            smac: f.smac,
            src: f.new_saddr,
            dst: f.new_daddr,
            sport: f.new_sport,
            dport: f.new_dport,
            ttl: s.ttl - 1,
            ..*s
        },
        payload,
    )
}

fn flow(s: &Spec, new: ([u8; 4], [u8; 4], u16, u16), ifindex: u32) -> FastFlow {
    FastFlow {
        proto: s.proto,
        saddr: s.src,
        daddr: s.dst,
        sport: s.sport,
        dport: s.dport,
        new_saddr: new.0,
        new_daddr: new.1,
        new_sport: new.2,
        new_dport: new.3,
        dmac: [2, 0, 0, 0, 0xaa, 1],
        smac: [2, 0, 0, 0, 0xbb, 2],
        ifindex,
    }
}

fn steering() -> Steering {
    Steering {
        workers: 2,
        pool_v4: vec![[10, 0, 1, 1]],
        rs_v4: vec![],
        ..Steering::default()
    }
}

/// A TCP data segment and UDP datagrams (with and without a checksum) of
/// installed flows come out as FNAT would write them, checksums valid,
/// counted in their entry; XDP_TX when the out port is the in port
/// (BPF_PROG_TEST_RUN's frames arrive on lo, ifindex 1), else a redirect.
#[test]
fn fast_path_rewrites_installed_flows_byte_exactly() {
    require_root();
    let tcp = spec(6, [192, 0, 2, 7], [10, 0, 0, 100], 40000, 80);
    let udp = spec(17, [192, 0, 2, 8], [10, 0, 0, 100], 5353, 53);
    let udp0 = Spec {
        no_udp_csum: true,
        sport: 5354,
        ..udp
    };
    let f_tcp = flow(&tcp, ([10, 0, 1, 1], [192, 168, 1, 5], 1025, 8080), 1);
    let f_udp = flow(&udp, ([10, 0, 1, 1], [192, 168, 1, 6], 2000, 53), 7);
    let f_udp0 = flow(&udp0, ([10, 0, 1, 1], [192, 168, 1, 6], 2001, 53), 7);
    let payload = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let frames = vec![
        frame(&tcp, payload),
        frame(&udp, payload),
        frame(&udp, b"odd"),
        frame(&udp0, payload),
    ];
    let flows = [f_tcp, f_udp, f_udp0];
    let (out, counts) = fast_test_run(2, &steering(), &flows, &frames).expect("run fast path");
    assert_eq!(out[0].0, XDP_TX, "TCP to the in port: XDP_TX");
    assert_eq!(out[0].1, expected(&tcp, &f_tcp, payload));
    assert_eq!(out[1].0, XDP_REDIRECT, "UDP to another port: redirect");
    assert_eq!(out[1].1, expected(&udp, &f_udp, payload));
    assert_eq!(out[2].1, expected(&udp, &f_udp, b"odd"));
    assert_eq!(out[3].1, expected(&udp0, &f_udp0, payload));
    assert_eq!(&out[3].1[40..42], &[0, 0], "UDP checksum 0 stays 0");
    for (i, (_, f)) in out.iter().enumerate() {
        assert_checksums(f, &format!("frame {i}"));
    }
    let c: Vec<(u64, u64)> = counts
        .iter()
        .map(|c| c.map(|c| (c.packets, c.bytes)).expect("entry present"))
        .collect();
    let len = |i: usize| frames[i].len() as u64;
    assert_eq!(c[0], (1, len(0)));
    assert_eq!(c[1], (2, len(1) + len(2)));
    assert_eq!(c[2], (1, len(3)));
}

/// Many flows with varied addresses and ports: the precomputed deltas give
/// the checksums a full recomputation gives (carries included).
#[test]
fn fast_path_checksum_deltas_match_a_full_recomputation() {
    require_root();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut specs = Vec::new();
    let mut flows = Vec::new();
    for i in 0..48 {
        let r = next().to_be_bytes();
        let q = next().to_be_bytes();
        let proto = if i % 2 == 0 { 6 } else { 17 };
        let s = Spec {
            ttl: 2 + (r[7] % 250),
            ..spec(
                proto,
                [r[0], r[1], r[2], r[3]],
                [r[4], r[5], r[6], 1],
                u16::from_be_bytes([q[0], q[1]]),
                u16::from_be_bytes([q[2], q[3]]),
            )
        };
        let n = next().to_be_bytes();
        let new = (
            [n[0], n[1], n[2], n[3]],
            [n[4], n[5], n[6], n[7]],
            u16::from_be_bytes([q[4], q[5]]),
            u16::from_be_bytes([q[6], q[7]]),
        );
        flows.push(flow(&s, new, 1));
        specs.push(s);
    }
    let payload = |i: usize| vec![i as u8; i * 3];
    let frames: Vec<Vec<u8>> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| frame(s, &payload(i)))
        .collect();
    let (out, _) = fast_test_run(2, &steering(), &flows, &frames).expect("run fast path");
    for (i, ((ret, f), s)) in out.iter().zip(&specs).enumerate() {
        assert_eq!(*ret, XDP_TX, "flow {i}");
        assert_eq!(*f, expected(s, &flows[i], &payload(i)), "flow {i}");
        assert_checksums(f, &format!("flow {i}"));
    }
}

/// `f` as a local sender with TX checksum offload hands it over
/// (CHECKSUM_PARTIAL): its L4 checksum field holds the folded pseudo-header
/// sum.
fn partial(mut f: Vec<u8>) -> Vec<u8> {
    let (src, dst): ([u8; 4], [u8; 4]) =
        (f[26..30].try_into().unwrap(), f[30..34].try_into().unwrap());
    let proto = f[23];
    let at = if proto == 6 { 50 } else { 40 };
    let len = f.len() - 34;
    let mut b = Vec::new();
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.extend_from_slice(&[0, proto]);
    b.extend_from_slice(&(len as u16).to_be_bytes());
    let folded = !csum(&b);
    f[at..at + 2].copy_from_slice(&folded.to_be_bytes());
    f
}

/// SYN, FIN and RST of an installed TCP flow, a frame of no installed flow,
/// TTL 1, a fragment and segments with a partial checksum are not touched by the fast path: they come out as
/// they went in, steered to the worker the plain program picks, and the
/// entry's counters do not move.
#[test]
fn fast_path_leaves_control_segments_and_misses_to_the_workers() {
    require_root();
    let tcp = spec(6, [192, 0, 2, 7], [10, 0, 1, 1], 40000, 80);
    let udp = spec(17, [192, 0, 2, 8], [10, 0, 1, 1], 5353, 53);
    let f_tcp = flow(&tcp, ([10, 0, 1, 1], [192, 168, 1, 5], 1025, 8080), 1);
    let f_udp = flow(&udp, ([10, 0, 1, 1], [192, 168, 1, 6], 2000, 53), 1);
    let mut frames = Vec::new();
    for flags in [0x02, 0x12, 0x11, 0x04, 0x14] {
        frames.push(frame(
            &Spec {
                tcp_flags: flags,
                ..tcp
            },
            b"x",
        ));
    }
    frames.push(frame(
        &Spec {
            sport: 40001,
            ..tcp
        },
        b"miss",
    ));
    frames.push(frame(&Spec { dport: 54, ..udp }, b"miss"));
    frames.push(frame(&Spec { ttl: 1, ..udp }, b"ttl"));
    frames.push(frame(
        &Spec {
            frag: 0x2000,
            ..udp
        },
        b"frag",
    ));
    frames.push(partial(frame(&tcp, b"partial")));
    frames.push(partial(frame(&udp, b"partial")));
    let plain = steer_test_run(2, &steering(), &frames).expect("run plain steering");
    let (out, counts) =
        fast_test_run(2, &steering(), &[f_tcp, f_udp], &frames).expect("run fast path");
    for (i, ((ret, f), want)) in out.iter().zip(&plain).enumerate() {
        assert_eq!(f, &frames[i], "frame {i} left untouched");
        assert_eq!(ret, want, "frame {i} steered as without the fast path");
    }
    for c in counts {
        assert_eq!(c.expect("entry present").packets, 0);
    }
}

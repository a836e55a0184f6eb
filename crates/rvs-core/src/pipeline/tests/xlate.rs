//! NAT64/NAT46 header translation (RFC 7915), on exact bytes: the expected
//! frame is built whole by `FrameSpec` in the other family (its checksums
//! computed from scratch), with the fields the RFC decides written out here.

use super::oracle::{assert_checksums, rfc1071};
use super::util::*;
use crate::addr::{proto, Addr};
use crate::lab::{self, FrameSpec};
use crate::pipeline::parse::{parse_ip, Parsed};
use crate::pipeline::xlate::{to_v4, to_v6};
use crate::pipeline::xlate_icmp::{map_4to6, map_6to4, ErrHead};
use crate::stats::DropReason;
use crate::wire::tcp::flags::*;

const C6: &str = "2001:db8::48";
const V6: &str = "2001:db8::100";
const LIP4: Addr = lab::LIP;
const RIP4: Addr = Addr::v4(192, 168, 100, 2);

fn parsed(f: &[u8]) -> Parsed {
    parse_ip(f, 14, f[12] == 0x86, true).expect("a valid frame")
}

/// Runs `to_v4` (`v4: true`) or `to_v6` on `frame` with `head` bytes of
/// headroom: the result, the new frame.
fn xlate(
    frame: &[u8],
    head: usize,
    src: Addr,
    dst: Addr,
    ident: u16,
) -> (Result<(), DropReason>, Vec<u8>, Parsed) {
    let mut buf = vec![0u8; head + frame.len() + 64];
    buf[head..head + frame.len()].copy_from_slice(frame);
    let (mut h, mut len) = (head, frame.len());
    let mut p = parsed(frame);
    let r = if src.is_v4() {
        to_v4(&mut buf, &mut h, &mut len, &mut p, &src, &dst, ident)
    } else {
        to_v6(&mut buf, &mut h, &mut len, &mut p, &src, &dst)
    };
    (r, buf[h..h + len].to_vec(), p)
}

/// `f` (IPv4) with identification `id`, DF as given, header checksum redone.
fn with_id(mut f: Vec<u8>, id: u16, df: bool) -> Vec<u8> {
    f[18..20].copy_from_slice(&id.to_be_bytes());
    f[20] = if df { 0x40 } else { 0 };
    f[21] = 0;
    fix_ip_csum(&mut f);
    f
}

#[test]
fn tcp_6to4_exact_bytes_and_tos_ttl_carried() {
    let opts = [2, 4, 0x05, 0xa0];
    let mut f6 = FrameSpec {
        tcp_opts: &opts,
        payload: b"GET / HTTP/1.0\r\n\r\n",
        ttl: 63,
        ..FrameSpec::tcp(v6::a(C6), 40000, v6::a(V6), 80, SYN | ACK)
    }
    .to_vec();
    // Traffic class 0xb8 (EF): carried to the TOS byte.
    f6[14] = 0x6b;
    f6[15] = 0x80;
    let (r, out, p) = xlate(&f6, 64, LIP4, RIP4, 0x1234);
    assert_eq!(r, Ok(()));
    let mut want = FrameSpec {
        tcp_opts: &opts,
        payload: b"GET / HTTP/1.0\r\n\r\n",
        ttl: 63,
        ..FrameSpec::tcp(LIP4, 40000, RIP4, 80, SYN | ACK)
    }
    .to_vec();
    want[15] = 0xb8;
    assert_eq!(out, with_id(want, 0x1234, false), "small: DF clear, an ID");
    assert_checksums(&out);
    assert_eq!(
        (p.v6, p.l4, p.ip_len, p.src, p.dst),
        (false, 34, out.len() - 14, LIP4, RIP4)
    );
}

#[test]
fn udp_4to6_exact_bytes_and_udp_checksum_0_computed() {
    let f4 = FrameSpec::udp(RIP4, 53, LIP4, 40001, b"answer").to_vec();
    let want = FrameSpec::udp(v6::a(V6), 53, v6::a(C6), 40001, b"answer").to_vec();
    let (r, out, p) = xlate(&f4, 64, v6::a(V6), v6::a(C6), 0);
    assert_eq!(r, Ok(()));
    assert_eq!(out, want);
    assert!(p.v6 && p.l4 == 54 && p.ip_len == out.len() - 14);

    // No checksum in IPv4: IPv6 requires one, computed whole.
    let mut f4 = f4;
    f4[40..42].copy_from_slice(&[0, 0]);
    let (r, out, _) = xlate(&f4, 64, v6::a(V6), v6::a(C6), 0);
    assert_eq!(r, Ok(()));
    assert_eq!(out, want);
    assert_checksums(&out);
}

#[test]
fn tcp_4to6_exact_bytes_without_headroom_and_with_options_dropped() {
    let f4 = FrameSpec {
        payload: b"HTTP/1.0 200 OK\r\n",
        ..FrameSpec::tcp(RIP4, 80, LIP4, 40000, ACK | PSH)
    }
    .to_vec();
    let want = FrameSpec {
        payload: b"HTTP/1.0 200 OK\r\n",
        ..FrameSpec::tcp(v6::a(V6), 80, v6::a(C6), 40000, ACK | PSH)
    }
    .to_vec();
    // No headroom at all: the payload moves toward the tail instead.
    let (r, out, _) = xlate(&f4, 0, v6::a(V6), v6::a(C6), 0);
    assert_eq!((r, &out), (Ok(()), &want));

    // Router alert (4 bytes) and a record route of 23 + EOL (24 bytes):
    // 28 bytes of options, more than the 20 the header grows by.
    for opts in [
        &[0x94, 4, 0, 0][..],
        &{
            let mut o = vec![0x94, 4, 0, 0, 7, 23, 4];
            o.resize(28, 0);
            o
        }[..],
    ] {
        let mut g = f4[..34].to_vec();
        g[14] = 0x45 + (opts.len() / 4) as u8;
        g.extend_from_slice(opts);
        g.extend_from_slice(&f4[34..]);
        let tl = (g.len() - 14) as u16;
        g[16..18].copy_from_slice(&tl.to_be_bytes());
        fix_ip_csum(&mut g);
        let (r, out, _) = xlate(&g, 64, v6::a(V6), v6::a(C6), 0);
        assert_eq!((r, &out), (Ok(()), &want), "options {opts:?}");
    }
}

#[test]
fn source_routes_and_routing_headers_with_segments_left_are_refused() {
    let f4 = FrameSpec::udp(RIP4, 53, LIP4, 40001, b"x").to_vec();
    let mut g = f4[..34].to_vec();
    g[14] = 0x47;
    g.extend_from_slice(&[0x83, 7, 4, 1, 2, 3, 4, 0]); // LSRR
    g.extend_from_slice(&f4[34..]);
    let tl = (g.len() - 14) as u16;
    g[16..18].copy_from_slice(&tl.to_be_bytes());
    fix_ip_csum(&mut g);
    let (r, _, _) = xlate(&g, 64, v6::a(V6), v6::a(C6), 0);
    assert_eq!(r, Err(DropReason::XlateRefused));

    for (sl, ok) in [(0u8, true), (1, false)] {
        let f6 = FrameSpec::udp(v6::a(C6), 5000, v6::a(V6), 53, b"ask").to_vec();
        let mut g = f6[..54].to_vec();
        g[20] = 43; // next header: routing
        g.extend_from_slice(&[17, 0, 0, sl, 0, 0, 0, 0]);
        g.extend_from_slice(&f6[54..]);
        let pl = (g.len() - 54) as u16;
        g[18..20].copy_from_slice(&pl.to_be_bytes());
        let (r, out, _) = xlate(&g, 64, LIP4, RIP4, 7);
        if ok {
            let want = FrameSpec::udp(LIP4, 5000, RIP4, 53, b"ask").to_vec();
            assert_eq!((r, out), (Ok(()), with_id(want, 7, false)), "skipped");
        } else {
            assert_eq!(r, Err(DropReason::XlateRefused));
        }
    }
}

#[test]
fn df_and_identification_follow_the_1260_byte_rule() {
    // IPv4 total = 20 + 8 + payload.
    for (payload, df) in [(1232usize, false), (1233, true)] {
        let data = vec![0x5a; payload];
        let f6 = FrameSpec::udp(v6::a(C6), 5000, v6::a(V6), 53, &data).to_vec();
        let (r, out, _) = xlate(&f6, 64, LIP4, RIP4, 0x4242);
        assert_eq!(r, Ok(()));
        assert_eq!(be16(&out, 16) as usize, 28 + payload);
        let want = FrameSpec::udp(LIP4, 5000, RIP4, 53, &data).to_vec();
        let id = if df { 0 } else { 0x4242 };
        assert_eq!(out, with_id(want, id, df), "total {}", 28 + payload);
    }
}

#[test]
fn round_trip_6to4to6_restores_the_frame() {
    let f6 = FrameSpec {
        payload: b"data",
        ..FrameSpec::tcp(v6::a(C6), 1234, v6::a(V6), 80, ACK)
    }
    .to_vec();
    let (_, f4, _) = xlate(&f6, 64, LIP4, RIP4, 1);
    let (r, back, _) = xlate(&f4, 64, v6::a(C6), v6::a(V6), 0);
    assert_eq!((r, back), (Ok(()), f6));
}

fn h(ty: u8, code: u8, rest: [u8; 4]) -> ErrHead {
    ErrHead { ty, code, rest }
}

#[test]
fn icmpv4_to_icmpv6_table_rows() {
    let z = [0; 4];
    let rows: &[(ErrHead, Option<ErrHead>)] = &[
        (h(3, 0, z), Some(h(1, 0, z))),
        (h(3, 1, z), Some(h(1, 0, z))),
        (h(3, 2, z), Some(h(4, 1, [0, 0, 0, 6]))),
        (h(3, 3, z), Some(h(1, 4, z))),
        // 1300 + 20; never below 1280.
        (
            h(3, 4, [0, 0, 0x05, 0x14]),
            Some(h(2, 0, 1320u32.to_be_bytes())),
        ),
        (
            h(3, 4, [0, 0, 0x02, 0x40]),
            Some(h(2, 0, 1280u32.to_be_bytes())),
        ),
        // No MTU given: the plateau below the quoted 1500 is 1492.
        (h(3, 4, z), Some(h(2, 0, 1512u32.to_be_bytes()))),
        (h(3, 5, z), Some(h(1, 0, z))),
        (h(3, 6, z), Some(h(1, 0, z))),
        (h(3, 7, z), Some(h(1, 0, z))),
        (h(3, 8, z), Some(h(1, 0, z))),
        (h(3, 9, z), Some(h(1, 1, z))),
        (h(3, 10, z), Some(h(1, 1, z))),
        (h(3, 11, z), Some(h(1, 0, z))),
        (h(3, 12, z), Some(h(1, 0, z))),
        (h(3, 13, z), Some(h(1, 1, z))),
        (h(3, 14, z), None),
        (h(3, 15, z), Some(h(1, 1, z))),
        (h(11, 0, z), Some(h(3, 0, z))),
        (h(11, 1, z), Some(h(3, 1, z))),
        // Pointer map (Figure 3): TTL 8 → hop limit 7, source 12 → 8.
        (h(12, 0, [8, 0, 0, 0]), Some(h(4, 0, [0, 0, 0, 7]))),
        (h(12, 2, [13, 0, 0, 0]), Some(h(4, 0, [0, 0, 0, 8]))),
        (h(12, 0, [4, 0, 0, 0]), None),
        (h(12, 1, z), None),
        (h(4, 0, z), None),
        (h(5, 0, z), None),
    ];
    for (from, to) in rows {
        assert_eq!(map_4to6(*from, 1500), *to, "{from:?}");
    }
}

#[test]
fn icmpv6_to_icmpv4_table_rows() {
    let z = [0; 4];
    let rows: &[(ErrHead, Option<ErrHead>)] = &[
        (h(1, 0, z), Some(h(3, 1, z))),
        (h(1, 1, z), Some(h(3, 10, z))),
        (h(1, 2, z), Some(h(3, 1, z))),
        (h(1, 3, z), Some(h(3, 1, z))),
        (h(1, 4, z), Some(h(3, 3, z))),
        (h(1, 5, z), None),
        (
            h(2, 0, 1500u32.to_be_bytes()),
            Some(h(3, 4, 1480u32.to_be_bytes())),
        ),
        (
            h(2, 0, 40u32.to_be_bytes()),
            Some(h(3, 4, 68u32.to_be_bytes())),
        ),
        (h(3, 0, z), Some(h(11, 0, z))),
        (h(3, 1, z), Some(h(11, 1, z))),
        // Pointer map (Figure 6): next header 6 → protocol 9, dst 30 → 16.
        (h(4, 0, [0, 0, 0, 6]), Some(h(12, 0, [9, 0, 0, 0]))),
        (h(4, 0, [0, 0, 0, 30]), Some(h(12, 0, [16, 0, 0, 0]))),
        (h(4, 0, [0, 0, 0, 2]), None),
        (h(4, 1, z), Some(h(3, 2, z))),
        (h(4, 2, z), None),
    ];
    for (from, to) in rows {
        assert_eq!(map_6to4(*from), *to, "{from:?}");
    }
}

#[test]
fn the_oracle_agrees_on_a_translated_header_checksum() {
    let f6 = FrameSpec::udp(v6::a(C6), 5000, v6::a(V6), 53, b"ask").to_vec();
    let (_, out, _) = xlate(&f6, 64, LIP4, RIP4, 9);
    assert_eq!(rfc1071(&[&out[14..34]]), 0);
    assert_eq!(out[23], proto::UDP);
}

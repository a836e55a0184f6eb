use super::*;
use crate::wire::checksum::tests::{ref_sum, XorShift};

const SRC: Addr = Addr::v4(192, 168, 1, 10);
const DST: Addr = Addr::v4(10, 0, 0, 100);

/// A Linux-style SYN 192.168.1.10:54321 -> 10.0.0.100:80, seq 0x1a2b3c4d,
/// window 64240, options MSS 1460, SACK_PERM, TS(0x00a1b2c3, 0), NOP, WS 7.
/// Checksum field left zero.
fn syn() -> Vec<u8> {
    vec![
        0xd4, 0x31, 0x00, 0x50, // ports
        0x1a, 0x2b, 0x3c, 0x4d, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xa0, 0x02, 0xfa, 0xf0, // doff 10, SYN, window
        0x00, 0x00, 0x00, 0x00, // checksum, urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, // SACK permitted
        0x08, 0x0a, 0x00, 0xa1, 0xb2, 0xc3, 0x00, 0x00, 0x00, 0x00, // TS
        0x01, // NOP
        0x03, 0x03, 0x07, // WS 7
    ]
}

/// Checksum computed independently: pseudo-header bytes written out, then the
/// reference word-by-word sum.
fn ref_csum(src: &Addr, dst: &Addr, seg: &[u8]) -> u16 {
    let mut v = Vec::new();
    v.extend_from_slice(src.wire_bytes());
    v.extend_from_slice(dst.wire_bytes());
    if src.is_v4() {
        v.extend_from_slice(&[0, 6]);
        v.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    } else {
        v.extend_from_slice(&(seg.len() as u32).to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 6]);
    }
    let mut s = seg.to_vec();
    s[16] = 0;
    s[17] = 0;
    v.extend_from_slice(&s);
    !ref_sum(&v)
}

#[test]
fn parses_syn() {
    let mut v = syn();
    let c = ref_csum(&SRC, &DST, &v);
    v[16..18].copy_from_slice(&c.to_be_bytes());
    let t = TcpPacket::new_checked(&v[..]).unwrap();
    assert_eq!((t.src_port(), t.dst_port()), (54321, 80));
    assert_eq!(t.seq(), 0x1a2b3c4d);
    assert_eq!(t.ack(), 0);
    assert_eq!(t.header_len(), 40);
    assert_eq!(t.flags(), flags::SYN);
    assert!(t.has_flags(flags::SYN));
    assert!(!t.has_flags(flags::SYN | flags::ACK));
    assert_eq!(t.window(), 64240);
    assert_eq!(t.urgent(), 0);
    assert_eq!(t.options().len(), 20);
    assert!(t.payload().is_empty());
    assert_eq!(t.mss(), Some(1460));
    assert!(!t.has_malformed_options());
    let opts: Vec<_> = t.option_iter().collect();
    assert_eq!(
        opts,
        [
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamps(0x00a1b2c3, 0),
            TcpOption::WindowScale(7),
        ]
    );
    assert!(t.verify_checksum(&SRC, &DST));
    assert!(!t.verify_checksum(&SRC, &Addr::v4(10, 0, 0, 101)));
}

#[test]
fn fill_checksum_matches_reference_v4_and_v6() {
    let mut v = syn();
    v.extend_from_slice(b"hello");
    let mut t = TcpPacket::new_checked(&mut v[..]).unwrap();
    t.fill_checksum(&SRC, &DST);
    let c = t.checksum();
    assert_eq!(c, ref_csum(&SRC, &DST, &v));
    let s6: Addr = "2001:db8::10".parse().unwrap();
    let d6: Addr = "2001:db8:ffff::1".parse().unwrap();
    let mut t = TcpPacket::new_checked(&mut v[..]).unwrap();
    t.fill_checksum(&s6, &d6);
    assert!(t.verify_checksum(&s6, &d6));
    assert_eq!(t.payload(), b"hello");
    assert_eq!(t.checksum(), ref_csum(&s6, &d6, &v));
}

#[test]
fn malformed_headers() {
    let v = syn();
    assert_eq!(
        TcpPacket::new_checked(&v[..19]).unwrap_err(),
        WireError::Truncated
    );
    // Data offset 10 but only 39 bytes.
    assert_eq!(
        TcpPacket::new_checked(&v[..39]).unwrap_err(),
        WireError::Truncated
    );
    let mut b = v.clone();
    b[12] = 0x40;
    assert_eq!(
        TcpPacket::new_checked(&b[..]).unwrap_err(),
        WireError::BadHeaderLen
    );
}

#[test]
fn malformed_options_end_iteration() {
    let cases: [(&[u8], usize); 6] = [
        (&[0x02], 0),                         // length byte missing
        (&[0x02, 0x01, 0, 0], 0),             // length below 2
        (&[0x04, 0x02, 0x02, 0x04, 0x05], 1), // MSS runs past the end
        (&[0x01, 0x01, 0x08, 0x0a, 0, 0], 0), // TS runs past the end
        (&[0x04, 0x02, 0xfe, 0x00], 1),       // length 0
        (&[0x04, 0x02, 0x02], 1),             // length missing after a good option
    ];
    for (bytes, good) in cases {
        let mut it = TcpOptions::new(bytes);
        assert_eq!(it.by_ref().count(), good, "{bytes:?}");
        assert!(it.is_malformed(), "{bytes:?}");
        assert_eq!(it.next(), None);
    }
    // EOL ends the list cleanly even with garbage after it.
    let mut it = TcpOptions::new(&[0x03, 0x03, 0x02, 0x00, 0x02]);
    assert_eq!(it.next(), Some(TcpOption::WindowScale(2)));
    assert_eq!(it.next(), None);
    assert!(!it.is_malformed());
    // Known kinds with a wrong length are Unknown, not errors.
    let v: Vec<_> = TcpOptions::new(&[0x02, 0x03, 0x05, 0x05, 0x02, 0xfe, 0x03, 0x09]).collect();
    assert_eq!(
        v,
        [
            TcpOption::Unknown {
                kind: 2,
                data: &[5]
            },
            TcpOption::Unknown { kind: 5, data: &[] },
            TcpOption::Unknown {
                kind: 254,
                data: &[9]
            },
        ]
    );
    // The packet-level helper sees the same thing.
    let mut s = syn();
    s[20] = 0x02;
    s[21] = 0x30;
    let t = TcpPacket::new_checked(&s[..]).unwrap();
    assert!(t.has_malformed_options());
    assert_eq!(t.mss(), None);
}

#[test]
fn sack_and_toa_options() {
    let mut o = vec![0x01, 0x01, 0x05, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2];
    // TOA v4: port 40000 (0x9c40), 203.0.113.9.
    o.extend_from_slice(&[0xfe, 0x08, 0x9c, 0x40, 203, 0, 113, 9]);
    // TOA v6: port 443, 2001:db8::9.
    o.extend_from_slice(&[0xfe, 0x14, 0x01, 0xbb]);
    o.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    let v: Vec<_> = TcpOptions::new(&o).collect();
    assert_eq!(
        v,
        [
            TcpOption::Sack(&[0, 0, 0, 1, 0, 0, 0, 2]),
            TcpOption::Toa {
                port: 40000,
                addr: Addr::v4(203, 0, 113, 9)
            },
            TcpOption::Toa {
                port: 443,
                addr: "2001:db8::9".parse().unwrap()
            },
        ]
    );

    let mut out = [0u8; 24];
    let a4 = Addr::v4(203, 0, 113, 9);
    assert_eq!(toa_len(&a4), 8);
    assert_eq!(write_toa(&mut out, 40000, &a4), 8);
    assert_eq!(&out[..8], &o[12..20]);
    let a6: Addr = "2001:db8::9".parse().unwrap();
    assert_eq!(toa_len(&a6), 20);
    assert_eq!(write_toa(&mut out, 443, &a6), 20);
    assert_eq!(&out[..20], &o[20..40]);
    assert_eq!(write_toa(&mut out[..19], 443, &a6), 0);
}

#[test]
fn set_mss_aligned_and_misaligned() {
    // Aligned: MSS data at offset 22.
    let mut v = syn();
    v.extend_from_slice(b"xyz");
    let c = ref_csum(&SRC, &DST, &v);
    v[16..18].copy_from_slice(&c.to_be_bytes());
    let mut t = TcpPacket::new_checked(&mut v[..]).unwrap();
    assert!(t.set_mss(1400));
    assert_eq!(t.mss(), Some(1400));
    assert!(t.verify_checksum(&SRC, &DST));
    assert_eq!(&v[22..24], &[0x05, 0x78]);
    assert_eq!(u16::from_be_bytes([v[16], v[17]]), ref_csum(&SRC, &DST, &v));

    // Misaligned: NOP first, so the MSS value sits at odd offset 23.
    let mut v = vec![
        0x00, 0x50, 0xd4, 0x31, 0, 0, 0, 1, 0, 0, 0, 2, 0x70, 0x12, 0xff, 0xff, 0, 0, 0, 0, 0x01,
        0x02, 0x04, 0x05, 0xb4, 0x00, 0x00, 0x00, 0xaa,
    ];
    let c = ref_csum(&DST, &SRC, &v);
    v[16..18].copy_from_slice(&c.to_be_bytes());
    let mut t = TcpPacket::new_checked(&mut v[..]).unwrap();
    assert_eq!(t.mss(), Some(1460));
    assert!(t.set_mss(1234));
    assert_eq!(t.mss(), Some(1234));
    assert_eq!(&v[23..25], &[0x04, 0xd2]);
    assert_eq!(u16::from_be_bytes([v[16], v[17]]), ref_csum(&DST, &SRC, &v));

    // No MSS option: nothing changes.
    let mut v = syn();
    v[20..24].copy_from_slice(&[1, 1, 1, 1]);
    let before = v.clone();
    let mut t = TcpPacket::new_checked(&mut v[..]).unwrap();
    assert!(!t.set_mss(1));
    assert_eq!(v, before);
}

#[test]
fn incremental_rewrites_match_full() {
    let mut rng = XorShift(0xfeed);
    for i in 0..1000 {
        let mut v = syn();
        let plen = (rng.next() % 9) as usize;
        for _ in 0..plen {
            v.push(rng.next() as u8);
        }
        rng.fill(&mut v[..12]);
        let c = ref_csum(&SRC, &DST, &v);
        v[16..18].copy_from_slice(&c.to_be_bytes());
        let mut t = TcpPacket::new_checked(&mut v[..]).unwrap();
        let x = rng.next();
        let x = match i % 5 {
            0 => 0,
            1 => u64::MAX,
            _ => x,
        };
        match rng.next() % 5 {
            0 => t.rewrite_src_port(x as u16),
            1 => t.rewrite_dst_port(x as u16),
            2 => t.rewrite_seq(x as u32),
            3 => t.rewrite_ack(x as u32),
            _ => assert!(t.set_mss(x as u16)),
        }
        let c = t.checksum();
        assert_eq!(c, ref_csum(&SRC, &DST, &v), "iteration {i}");
    }
}

#[test]
fn setters() {
    let mut v = syn();
    let mut t = TcpPacket::new_checked(&mut v[..]).unwrap();
    t.set_src_port(1);
    t.set_dst_port(2);
    t.set_seq(3);
    t.set_ack(4);
    t.set_flags(flags::SYN | flags::ACK);
    t.set_window(5);
    t.set_checksum(6);
    t.set_header_len(24);
    t.options_mut()[0] = 0x01;
    assert_eq!(
        &v[..24],
        &[
            0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0x60, 0x12, 0, 5, 0, 6, 0, 0, 0x01, 0x04, 0x05,
            0xb4
        ]
    );
    let mut t = TcpPacket::new_checked(&mut v[..]).unwrap();
    assert_eq!(t.payload_mut().len(), 16);
}

#[test]
fn header_len_rewrite_keeps_the_checksum() {
    let mut v = syn();
    let c = ref_csum(&SRC, &DST, &v);
    v[16..18].copy_from_slice(&c.to_be_bytes());
    // Shrink to 36 bytes (drop the trailing NOP/WS bytes from the header).
    let mut t = TcpPacket::new_checked(&mut v[..]).unwrap();
    t.rewrite_header_len(36);
    assert_eq!(t.header_len(), 36);
    assert_eq!(t.flags(), flags::SYN, "flags kept");
    let c = t.checksum();
    assert_eq!(c, ref_csum(&SRC, &DST, &v));
    // An unchecked view over too little reads zeros and writes nothing.
    let short = [0u8; 3];
    let t = TcpPacket::new_unchecked(&short[..]);
    assert_eq!((t.header_len(), t.checksum(), t.mss()), (0, 0, None));
}

#[test]
fn syn_proxy_rewrites_keep_the_checksum() {
    // An ACK with timestamps at an odd offset (one NOP) and two SACK blocks
    // after them (SACK at an odd offset too).
    let mut v = vec![
        0xd4, 0x31, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, // ports, seq, ack
        0xd0, 0x10, 0x01, 0xf5, 0, 0, 0, 0, // doff 13, ACK, window 501
        0x01, 0x08, 0x0a, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xfe, // NOP, TS(5, 0xfffffffe)
        0x05, 0x12, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0x10, // SACK [0xfffffff0, 0x10)
        0, 0, 0, 0x20, 0, 0, 0, 0x30, // [0x20, 0x30)
        0x00, 0x00, 0x00, // EOL, padding
    ];
    v.extend_from_slice(b"data");
    let mut t = TcpPacket::new_checked(&mut v[..]).unwrap();
    t.fill_checksum(&SRC, &DST);
    assert_eq!(t.wscale(), None);
    assert_eq!(t.timestamps(), Some((5, 0xffff_fffe)));
    assert!(t.set_timestamps(0xffff_ffff, 3));
    t.shift_sack(0x20);
    t.rewrite_window(0xffff);
    assert_eq!(t.timestamps(), Some((0xffff_ffff, 3)));
    let sack: Vec<_> = t
        .option_iter()
        .filter(|o| matches!(o, TcpOption::Sack(_)))
        .collect();
    assert_eq!(
        sack,
        [TcpOption::Sack(&[
            0, 0, 0, 0x10, 0, 0, 0, 0x30, 0, 0, 0, 0x40, 0, 0, 0, 0x50
        ])]
    );
    assert_eq!(t.window(), 0xffff);
    assert_eq!(
        t.checksum(),
        ref_csum(&SRC, &DST, &{
            let mut c = t.as_bytes().to_vec();
            c[16] = 0;
            c[17] = 0;
            c
        })
    );
    // Nothing to rewrite: nothing changes.
    let mut s = syn();
    let mut t = TcpPacket::new_checked(&mut s[..]).unwrap();
    t.fill_checksum(&SRC, &DST);
    let before = t.as_bytes().to_vec();
    t.shift_sack(7);
    assert_eq!(t.as_bytes(), &before[..]);
    assert_eq!(t.wscale(), Some(7));
}

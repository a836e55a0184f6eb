use super::*;

/// RFC 1071 written out the plain way, independent of rvs_core's version.
fn ref_sum(chunks: &[&[u8]]) -> u16 {
    let mut all = Vec::new();
    for c in chunks {
        all.extend_from_slice(c);
    }
    if all.len() % 2 == 1 {
        all.push(0);
    }
    let mut s: u64 = 0;
    for p in all.chunks(2) {
        s += ((p[0] as u64) << 8) | p[1] as u64;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn pseudo(src: &[u8], dst: &[u8], proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(src);
    p.extend_from_slice(dst);
    if src.len() == 4 {
        p.extend_from_slice(&[0, proto]);
        p.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        p.extend_from_slice(&(len as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, proto]);
    }
    p
}

/// Whether the L4 segment verifies against the IP addresses in `f`.
fn l4_ok(f: &[u8], v6: bool, l4: usize, proto: u8) -> bool {
    let seg = &f[l4..];
    let (s, d) = if v6 {
        (&f[22..38], &f[38..54])
    } else {
        (&f[26..30], &f[30..34])
    };
    ref_sum(&[&pseudo(s, d, proto, seg.len()), seg]) == 0xffff
}

const SRC4: [u8; 4] = [10, 0, 0, 1];
const DST4: [u8; 4] = [10, 0, 0, 2];
const SRC6: [u8; 16] = [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn eth(ty: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ty.to_be_bytes());
    f
}

fn ipv4(f: &mut Vec<u8>, proto: u8, id: u16, l4_len: usize) {
    let tot = (20 + l4_len) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&tot.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&SRC4);
    h.extend_from_slice(&DST4);
    let c = !ref_sum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&h);
}

fn ipv6(f: &mut Vec<u8>, proto: u8, l4_len: usize) {
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(l4_len as u16).to_be_bytes());
    f.extend_from_slice(&[proto, 64]);
    f.extend_from_slice(&SRC6);
    f.extend_from_slice(&DST6);
}

/// TCP header with a 12-byte option block (doff 8), checksum 0.
fn tcp(seq: u32, flags: u8) -> Vec<u8> {
    let mut t = vec![0x30, 0x39, 0x00, 0x50];
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0x80, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
    t
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// A frame as a TSO sender leaves it: headers for the whole payload and
/// the pseudo-header sum (folded, not complemented) in the L4 field.
fn partial_frame(
    v6: bool,
    proto: u8,
    seq: u32,
    flags: u8,
    id: u16,
    pay: usize,
) -> (Vec<u8>, usize) {
    let mut l4 = if proto == 6 {
        tcp(seq, flags)
    } else {
        vec![0x30, 0x39, 0, 53, 0, 0, 0, 0]
    };
    l4.extend_from_slice(&payload(pay));
    if proto == 17 {
        let l = l4.len() as u16;
        l4[4..6].copy_from_slice(&l.to_be_bytes());
    }
    let mut f = eth(if v6 { 0x86dd } else { 0x0800 });
    if v6 {
        ipv6(&mut f, proto, l4.len());
    } else {
        ipv4(&mut f, proto, id, l4.len());
    }
    let l4off = f.len();
    let (s, d): (&[u8], &[u8]) = if v6 { (&SRC6, &DST6) } else { (&SRC4, &DST4) };
    let ps = ref_sum(&[&pseudo(s, d, proto, l4.len())]);
    let at = if proto == 6 { 16 } else { 6 };
    l4[at..at + 2].copy_from_slice(&ps.to_be_bytes());
    f.extend_from_slice(&l4);
    (f, l4off)
}

fn vnet(gso_type: u8, gso: u16, start: usize, off: u16) -> VnetHdr {
    VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type,
        gso_size: gso,
        csum_start: start as u16,
        csum_offset: off,
    }
}

#[test]
fn vnet_header_layout() {
    let mut b = [0u8; VNET_HDR_LEN];
    b[0] = 1;
    b[1] = 0x81;
    b[2..4].copy_from_slice(&66u16.to_ne_bytes());
    b[4..6].copy_from_slice(&1448u16.to_ne_bytes());
    b[6..8].copy_from_slice(&34u16.to_ne_bytes());
    b[8..10].copy_from_slice(&16u16.to_ne_bytes());
    let v = VnetHdr::parse(&b);
    assert_eq!(v, vnet(0x81, 1448, 34, 16));
    assert!(v.is_gso());
    assert!(!VnetHdr::default().is_gso());
}

#[test]
fn completes_partial_checksums_v4_tcp_and_v6_udp() {
    for (v6, proto) in [(false, 6u8), (true, 17), (false, 17), (true, 6)] {
        let (mut f, l4) = partial_frame(v6, proto, 1000, 0x18, 7, 333);
        assert!(
            !l4_ok(&f, v6, l4, proto),
            "the partial sum alone must not verify"
        );
        let off = if proto == 6 { 16 } else { 6 };
        let mut g = f.clone();
        assert!(complete_csum(&mut f, &vnet(0, 0, l4, off)));
        assert!(l4_ok(&f, v6, l4, proto), "v6={v6} proto={proto}");
        // Without a vnet header the field is found by parsing.
        assert!(complete_csum(&mut g, &VnetHdr::default()));
        assert_eq!(f, g);
    }
}

#[test]
fn ethernet_padding_is_not_summed() {
    let (mut f, l4) = partial_frame(false, 17, 0, 0, 1, 3);
    f.extend_from_slice(&[0xaa; 9]);
    assert!(complete_csum(&mut f, &vnet(0, 0, l4, 6)));
    let end = f.len() - 9;
    assert!(l4_ok(&f[..end], false, l4, 17));
}

#[test]
fn completion_refuses_what_it_cannot_locate() {
    let (f, l4) = partial_frame(false, 6, 0, 0, 1, 10);
    let mut g = f.clone();
    assert!(!complete_csum(&mut g, &vnet(0, 0, f.len(), 16)));
    assert_eq!(f, g);
    let mut arp = eth(0x0806);
    arp.extend_from_slice(&[0; 28]);
    let a = arp.clone();
    assert!(!complete_csum(&mut arp, &VnetHdr::default()));
    assert_eq!(arp, a);
    let _ = l4;
}

fn segments(f: &[u8], v: &VnetHdr) -> Vec<Vec<u8>> {
    let mut g = Gso::plan(f, v, 1600).expect("plan");
    let mut out = Vec::new();
    let mut buf = [0u8; 1600];
    while let Some(n) = g.next_segment(f, &mut buf) {
        out.push(buf[..n].to_vec());
    }
    assert!(g.done());
    out
}

#[test]
fn tcp_v4_super_frame_is_cut_like_the_kernel_does() {
    // ACK|PSH|FIN|CWR over 2500 bytes, sequence and IP id both wrapping.
    let seq0 = 0xffff_fc00u32;
    let (f, l4) = partial_frame(false, 6, seq0, 0x10 | 0x08 | 0x01 | 0x80, 0xfffe, 2500);
    let segs = segments(&f, &vnet(GSO_TCPV4, 1000, l4, 16));
    assert_eq!(segs.len(), 3);
    let pay = payload(2500);
    let hdr = l4 + 32;
    let mut got = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let n = [1000, 1000, 500][i];
        assert_eq!(s.len(), hdr + n);
        assert_eq!(&s[..12], &f[..12]);
        assert_eq!(u16::from_be_bytes([s[16], s[17]]) as usize, 20 + 32 + n);
        assert_eq!(u16::from_be_bytes([s[18], s[19]]), [0xfffe, 0xffff, 0][i]);
        assert_eq!(ref_sum(&[&s[14..34]]), 0xffff, "ip checksum of segment {i}");
        let seq = u32::from_be_bytes([s[38], s[39], s[40], s[41]]);
        assert_eq!(seq, [0xffff_fc00, 0xffff_ffe8, 0x3d0][i]);
        assert_eq!(s[47], [0x10 | 0x80, 0x10, 0x10 | 0x08 | 0x01][i]);
        assert_eq!(&s[54..66], &f[54..66], "options copied");
        assert!(l4_ok(s, false, l4, 6), "tcp checksum of segment {i}");
        got.extend_from_slice(&s[hdr..]);
    }
    assert_eq!(got, pay);
}

#[test]
fn tcp_v6_super_frame() {
    let (f, l4) = partial_frame(true, 6, 5, 0x18, 0, 3000);
    let segs = segments(&f, &vnet(GSO_TCPV6, 1440, l4, 16));
    assert_eq!(segs.len(), 3);
    for (i, s) in segs.iter().enumerate() {
        let n = [1440, 1440, 120][i];
        assert_eq!(u16::from_be_bytes([s[18], s[19]]) as usize, 32 + n);
        let seq = u32::from_be_bytes([s[58], s[59], s[60], s[61]]);
        assert_eq!(seq, 5 + 1440 * i as u32);
        assert_eq!(s[67], if i == 2 { 0x18 } else { 0x10 });
        assert!(l4_ok(s, true, l4, 6));
    }
}

#[test]
fn udp_gso_super_frame() {
    let (f, l4) = partial_frame(false, 17, 0, 0, 100, 2100);
    let segs = segments(&f, &vnet(GSO_UDP_L4, 1000, l4, 6));
    assert_eq!(segs.len(), 3);
    for (i, s) in segs.iter().enumerate() {
        let n = [1000, 1000, 100][i];
        assert_eq!(u16::from_be_bytes([s[38], s[39]]) as usize, 8 + n);
        assert_eq!(u16::from_be_bytes([s[18], s[19]]), 100 + i as u16);
        assert!(l4_ok(s, false, l4, 17));
    }
}

#[test]
fn plan_rejects_what_it_cannot_segment() {
    let (f, l4) = partial_frame(false, 6, 0, 0x10, 0, 3000);
    assert_eq!(
        Gso::plan(&f, &vnet(GSO_TCPV4, 0, l4, 16), 1600),
        Err(GsoError::Bad)
    );
    assert_eq!(
        Gso::plan(&f, &vnet(GSO_TCPV4, 1560, l4, 16), 1600),
        Err(GsoError::TooBig)
    );
    assert_eq!(
        Gso::plan(&f, &vnet(GSO_UDP_L4, 1000, l4, 16), 1600),
        Err(GsoError::Bad)
    );
    assert_eq!(
        Gso::plan(&f, &vnet(3, 1000, l4, 16), 1600),
        Err(GsoError::Bad)
    );
    let g = Gso::plan(&f, &vnet(GSO_TCPV4, 1000, l4, 16), 1600).unwrap();
    assert_eq!(g.remaining(), 3);
    // A slot too small for a segment is refused, not overrun.
    let mut g2 = g;
    assert_eq!(g2.next_segment(&f, &mut [0u8; 100]), None);
}

#[test]
fn hostile_frames_never_panic() {
    let (f, l4) = partial_frame(false, 6, 1, 0x19, 1, 1500);
    let (f6, _) = partial_frame(true, 17, 1, 0, 1, 700);
    let mut rng = 0x1234_5678u32;
    let mut buf = [0u8; 2048];
    for base in [&f, &f6] {
        for cut in 0..base.len().min(200) {
            for v in [
                vnet(GSO_TCPV4, 500, l4, 16),
                vnet(GSO_UDP_L4, 300, 40000, 9),
                VnetHdr::default(),
            ] {
                let mut g = base[..cut].to_vec();
                let _ = complete_csum(&mut g, &v);
                if let Ok(mut p) = Gso::plan(&g, &v, 1600) {
                    while p.next_segment(&g, &mut buf).is_some() {}
                }
            }
        }
        for _ in 0..2000 {
            let mut g = base.clone();
            for _ in 0..4 {
                rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let i = (rng >> 8) as usize % 80;
                g[i] = (rng >> 20) as u8;
            }
            let v = vnet(
                GSO_TCPV4 | ((rng & 1) as u8 * 3),
                (rng >> 4) as u16 % 1700,
                (rng >> 9) as usize % 120,
                16,
            );
            let _ = complete_csum(&mut g, &v);
            if let Ok(mut p) = Gso::plan(&g, &v, 1600) {
                let mut k = 0;
                while p.next_segment(&g, &mut buf).is_some() {
                    k += 1;
                    assert!(k <= 2000);
                }
            }
        }
    }
}

#[test]
fn big_tcp_super_frames_are_refused_not_misread() {
    // IPv4 BIG TCP: total length 0 (the real length is past 64 KiB). It is
    // refused as malformed rather than cut by a guessed length.
    let (mut f, l4) = partial_frame(false, 6, 1, 0x10, 7, 3000);
    f[16] = 0;
    f[17] = 0;
    assert!(matches!(
        Gso::plan(&f, &vnet(GSO_TCPV4, 1000, l4, 16), 1600),
        Err(GsoError::Bad)
    ));
}

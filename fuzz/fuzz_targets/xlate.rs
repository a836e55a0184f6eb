//! NAT64/NAT46 header translation (`rvs_core::pipeline::translate_family`)
//! over arbitrary frames: it never panics, and a frame translated to the
//! other family and back has its addresses, ports and transport bytes
//! again, with a transport checksum that still verifies when it did.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_core::addr::{proto, Addr};
use rvs_core::pipeline::translate_family;
use rvs_core::wire::checksum;

const HEAD: usize = 64;

/// (v6, src, dst, l4 offset, IP end) of an Ethernet/IP frame.
fn ip(f: &[u8]) -> Option<(bool, Addr, Addr, usize, usize, u8)> {
    match f.get(12..14)? {
        [0x08, 0x00] => {
            let h = f.get(14..34)?;
            let ihl = (h[0] & 0xf) as usize * 4;
            let tl = u16::from_be_bytes([h[2], h[3]]) as usize;
            let s = Addr::v4(h[12], h[13], h[14], h[15]);
            let d = Addr::v4(h[16], h[17], h[18], h[19]);
            Some((false, s, d, 14 + ihl, 14 + tl, h[9]))
        }
        [0x86, 0xdd] => {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(f.get(22..38)?);
            d.copy_from_slice(f.get(38..54)?);
            let pl = u16::from_be_bytes([f[18], f[19]]) as usize;
            Some((true, Addr(s), Addr(d), 54, 54 + pl, f[20]))
        }
        _ => None,
    }
}

fn l4_ok(src: &Addr, dst: &Addr, pr: u8, seg: &[u8]) -> bool {
    checksum::verify_l4(src, dst, pr, seg)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 36 {
        return;
    }
    // The first 32 bytes choose the addresses of the other family.
    let (k, frame) = data.split_at(32);
    let mut a = [0u8; 16];
    a.copy_from_slice(&k[..16]);
    let mut b = [0u8; 16];
    b.copy_from_slice(&k[16..]);
    let mut buf = vec![0u8; HEAD + frame.len() + 64];
    buf[HEAD..HEAD + frame.len()].copy_from_slice(frame);
    let (mut head, mut len) = (HEAD, frame.len());
    let Some((v6, src, dst, _, _, _)) = ip(frame) else {
        return;
    };
    let (na, nb) = if v6 {
        (
            Addr::v4(a[0], a[1], a[2], a[3]),
            Addr::v4(b[0], b[1], b[2], b[3]),
        )
    } else {
        (Addr(a), Addr(b))
    };
    // IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are IPv4 to rvs.
    if !v6 && (na.is_v4() || nb.is_v4()) || v6 && (src.is_v4() || dst.is_v4()) {
        return;
    }
    if translate_family(&mut buf, &mut head, &mut len, &na, &nb).is_err() {
        return;
    }
    let once = buf[head..head + len].to_vec();
    let (v6b, s1, d1, l4a, enda, pr) = ip(&once).expect("a translated frame parses");
    assert_eq!((v6b, s1, d1), (!v6, na, nb));
    let seg1 = once[l4a..enda].to_vec();
    let tcp_udp = matches!(pr, proto::TCP | proto::UDP);
    let verified = tcp_udp && l4_ok(&na, &nb, pr, &seg1);
    let back = translate_family(&mut buf, &mut head, &mut len, &src, &dst);
    if !tcp_udp {
        // Only TCP and UDP are translated by the pipeline (ICMP errors have
        // their own path): another protocol need not survive the way back
        // (an empty ICMP body does not parse as ICMP).
        return;
    }
    back.expect("TCP/UDP translates back");
    let twice = &buf[head..head + len];
    let (v6c, s2, d2, l4b, endb, pr2) = ip(twice).expect("parses back");
    assert_eq!((v6c, s2, d2), (v6, src, dst));
    let seg2 = &twice[l4b..endb];
    if tcp_udp && pr2 == pr {
        // Ports and payload survive; the checksum may differ only where
        // IPv4's "no UDP checksum" had to be computed for IPv6.
        assert_eq!(seg1.get(..4), seg2.get(..4), "ports");
        assert_eq!(seg1.len(), seg2.len());
        if verified {
            assert!(l4_ok(&src, &dst, pr, seg2), "checksum after the round trip");
        }
    }
});

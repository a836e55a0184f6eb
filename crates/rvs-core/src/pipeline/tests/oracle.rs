//! A deliberately plain checksum and header reader, independent of `wire`.

/// RFC 1071 checksum over `data`, as a straightforward byte loop.
pub fn rfc1071(chunks: &[&[u8]]) -> u16 {
    let mut all = Vec::new();
    for c in chunks {
        all.extend_from_slice(c);
    }
    if all.len() % 2 == 1 {
        all.push(0);
    }
    let mut s: u64 = 0;
    for w in all.chunks(2) {
        s += ((w[0] as u64) << 8) | w[1] as u64;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Checks every checksum of an Ethernet/IPv4 or IPv6 frame; panics with a
/// message naming the bad one.
pub fn assert_checksums(f: &[u8]) {
    let et = u16::from_be_bytes([f[12], f[13]]);
    match et {
        0x0800 => {
            let ihl = (f[14] & 0xf) as usize * 4;
            let ip = &f[14..14 + ihl];
            assert_eq!(rfc1071(&[ip]), 0, "IPv4 header checksum");
            let total = u16::from_be_bytes([f[16], f[17]]) as usize;
            let proto = f[23];
            let seg = &f[14 + ihl..14 + total];
            match proto {
                6 | 17 => {
                    if proto == 17 && seg[6] == 0 && seg[7] == 0 {
                        return;
                    }
                    let mut ph = Vec::new();
                    ph.extend_from_slice(&f[26..34]);
                    ph.push(0);
                    ph.push(proto);
                    ph.extend_from_slice(&(seg.len() as u16).to_be_bytes());
                    assert_eq!(
                        rfc1071(&[&ph, seg]),
                        0,
                        "IPv4 {} checksum",
                        if proto == 6 { "TCP" } else { "UDP" }
                    );
                }
                1 => assert_eq!(rfc1071(&[seg]), 0, "ICMP checksum"),
                4 => {
                    assert_checksums(&[&f[..12], &[0x08, 0x00], &f[14 + ihl..14 + total]].concat())
                }
                _ => {}
            }
        }
        0x86dd => {
            let plen = u16::from_be_bytes([f[18], f[19]]) as usize;
            let proto = f[20];
            let seg = &f[54..54 + plen];
            let mut ph = Vec::new();
            ph.extend_from_slice(&f[22..54]);
            ph.extend_from_slice(&(plen as u32).to_be_bytes());
            ph.extend_from_slice(&[0, 0, 0, proto]);
            if matches!(proto, 6 | 17 | 58) {
                assert_eq!(rfc1071(&[&ph, seg]), 0, "IPv6 L4 checksum (proto {proto})");
            }
        }
        _ => {}
    }
}

/// IPv4 source and destination of a frame, as dotted strings.
pub fn v4_addrs(f: &[u8]) -> (String, String) {
    let a = |o: usize| format!("{}.{}.{}.{}", f[o], f[o + 1], f[o + 2], f[o + 3]);
    (a(26), a(30))
}

/// Transport ports of an IPv4 frame without options.
pub fn v4_ports(f: &[u8]) -> (u16, u16) {
    let l4 = 14 + (f[14] & 0xf) as usize * 4;
    (
        u16::from_be_bytes([f[l4], f[l4 + 1]]),
        u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]),
    )
}

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
    if let Err(e) = check_checksums(f) {
        panic!("{e}");
    }
}

/// Checks every checksum of an Ethernet/IPv4 or IPv6 frame (IPIP: the inner
/// packet too). `Err` names the bad checksum, or says the frame is too short
/// for what its headers claim. Never panics, so it can judge fuzzed frames.
pub fn check_checksums(f: &[u8]) -> Result<(), String> {
    let get = |a: usize, b: usize| {
        f.get(a..b)
            .ok_or_else(|| format!("frame of {} bytes cut before {b}", f.len()))
    };
    let et = u16::from_be_bytes([
        *f.get(12).ok_or("no ethertype")?,
        *f.get(13).ok_or("no ethertype")?,
    ]);
    match et {
        0x0800 => {
            let ihl = (get(14, 15)?[0] & 0xf) as usize * 4;
            let ip = get(14, 14 + ihl)?;
            if ihl < 20 {
                return Err(format!("IPv4 header length {ihl}"));
            }
            if rfc1071(&[ip]) != 0 {
                return Err("IPv4 header checksum".into());
            }
            let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            let proto = ip[9];
            if total < ihl {
                return Err(format!("IPv4 total length {total}"));
            }
            let seg = get(14 + ihl, 14 + total)?;
            match proto {
                6 | 17 => {
                    if seg.len() < 8 || (proto == 6 && seg.len() < 20) {
                        return Err("transport header cut".into());
                    }
                    if proto == 17 && seg[6] == 0 && seg[7] == 0 {
                        return Ok(());
                    }
                    let mut ph = Vec::new();
                    ph.extend_from_slice(&ip[12..20]);
                    ph.push(0);
                    ph.push(proto);
                    ph.extend_from_slice(&(seg.len() as u16).to_be_bytes());
                    if rfc1071(&[&ph, seg]) != 0 {
                        return Err(format!(
                            "IPv4 {} checksum",
                            if proto == 6 { "TCP" } else { "UDP" }
                        ));
                    }
                }
                1 if rfc1071(&[seg]) != 0 => return Err("ICMP checksum".into()),
                4 => check_checksums(&[&f[..12], &[0x08, 0x00], seg].concat())
                    .map_err(|e| format!("inner: {e}"))?,
                _ => {}
            }
        }
        0x86dd => {
            let h = get(14, 54)?;
            let plen = u16::from_be_bytes([h[4], h[5]]) as usize;
            let proto = h[6];
            let seg = get(54, 54 + plen)?;
            let mut ph = Vec::new();
            ph.extend_from_slice(&h[8..40]);
            ph.extend_from_slice(&(plen as u32).to_be_bytes());
            ph.extend_from_slice(&[0, 0, 0, proto]);
            if matches!(proto, 6 | 17 | 58) && rfc1071(&[&ph, seg]) != 0 {
                return Err(format!("IPv6 L4 checksum (proto {proto})"));
            }
        }
        _ => {}
    }
    Ok(())
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

//! The PROXY protocol header (HAProxy's `proxy-protocol.txt`, versions 1
//! and 2) that FNAT puts in front of a TCP stream toward a real server:
//! the client's address and port and the virtual address and port.
//!
//! Version 1 is one text line, `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`
//! (`TCP6` for IPv6), at most 104 bytes; version 2 is binary: a 12-byte
//! signature, version and command (`0x21`: v2, PROXY), family and transport
//! (`0x11` TCP over IPv4, `0x21` TCP over IPv6), the length of the
//! addresses, then source and destination address and port (28 bytes for
//! IPv4, 52 for IPv6). Writing needs no allocation; [`parse`] reads both
//! forms back (tests, fuzzing and the real servers' side of the tools).

use crate::addr::Addr;
use std::io::Write;

/// The version 2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest header written (version 1, IPv6: 104 bytes).
pub const MAX_LEN: usize = 108;
/// Version 2 length for IPv4 addresses.
pub const V2_LEN_V4: usize = 16 + 12;
/// Version 2 length for IPv6 addresses.
pub const V2_LEN_V6: usize = 16 + 36;

/// Which PROXY protocol header a service sends its real servers.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Version {
    /// None (the default).
    #[default]
    Off,
    /// Version 1 (text).
    V1,
    /// Version 2 (binary).
    V2,
}

/// Writes the header of `version` for a TCP stream from `src:sport` to
/// `dst:dport` (same family) into `out` and returns its length; 0 for
/// [`Version::Off`] or when `out` is shorter than [`MAX_LEN`].
pub fn write(
    out: &mut [u8],
    version: Version,
    src: &Addr,
    sport: u16,
    dst: &Addr,
    dport: u16,
) -> usize {
    if out.len() < MAX_LEN {
        return 0;
    }
    match version {
        Version::Off => 0,
        Version::V1 => {
            let fam = if src.is_v4() { "TCP4" } else { "TCP6" };
            let mut w = &mut out[..MAX_LEN];
            let room = w.len();
            // Fits: the longest line is 104 bytes.
            match write!(w, "PROXY {fam} {src} {dst} {sport} {dport}\r\n") {
                Ok(()) => room - w.len(),
                Err(_) => 0,
            }
        }
        Version::V2 => {
            out[..12].copy_from_slice(&V2_SIGNATURE);
            out[12] = 0x21;
            let (fam, alen) = if src.is_v4() { (0x11, 4) } else { (0x21, 16) };
            out[13] = fam;
            out[14..16].copy_from_slice(&(2 * alen as u16 + 4).to_be_bytes());
            let (s, d) = (&src.0[16 - alen..], &dst.0[16 - alen..]);
            out[16..16 + alen].copy_from_slice(s);
            out[16 + alen..16 + 2 * alen].copy_from_slice(d);
            let at = 16 + 2 * alen;
            out[at..at + 2].copy_from_slice(&sport.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&dport.to_be_bytes());
            at + 4
        }
    }
}

/// The length [`write`] gives for these arguments.
pub fn len(version: Version, src: &Addr, sport: u16, dst: &Addr, dport: u16) -> usize {
    match version {
        Version::Off => 0,
        Version::V2 if src.is_v4() => V2_LEN_V4,
        Version::V2 => V2_LEN_V6,
        Version::V1 => {
            let mut b = [0u8; MAX_LEN];
            write(&mut b, version, src, sport, dst, dport)
        }
    }
}

/// A header read back by [`parse`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Which form it had.
    pub version: Version,
    /// The client's address.
    pub src: Addr,
    /// The client's port.
    pub sport: u16,
    /// The address the client connected to.
    pub dst: Addr,
    /// The port the client connected to.
    pub dport: u16,
    /// Header bytes (the stream's own data starts after them).
    pub len: usize,
}

/// Reads a version 1 or 2 header (TCP over IPv4 or IPv6) at the start of
/// `b`; `None` when there is none or it is malformed or truncated.
pub fn parse(b: &[u8]) -> Option<Header> {
    if b.starts_with(&V2_SIGNATURE) {
        parse_v2(b)
    } else if b.starts_with(b"PROXY ") {
        parse_v1(b)
    } else {
        None
    }
}

fn parse_v2(b: &[u8]) -> Option<Header> {
    let alen = match (*b.get(12)?, *b.get(13)?) {
        (0x21, 0x11) => 4,
        (0x21, 0x21) => 16,
        _ => return None,
    };
    let n = usize::from(u16::from_be_bytes([*b.get(14)?, *b.get(15)?]));
    let body = b.get(16..16 + n)?;
    if n < 2 * alen + 4 {
        return None;
    }
    let addr = |s: &[u8]| {
        let mut a = Addr::UNSPECIFIED;
        if alen == 4 {
            a.0[10] = 0xff;
            a.0[11] = 0xff;
        }
        a.0[16 - alen..].copy_from_slice(s);
        a
    };
    let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
    Some(Header {
        version: Version::V2,
        src: addr(&body[..alen]),
        dst: addr(&body[alen..2 * alen]),
        sport: port(2 * alen),
        dport: port(2 * alen + 2),
        len: 16 + n,
    })
}

fn parse_v1(b: &[u8]) -> Option<Header> {
    let end = b.iter().take(107).position(|&c| c == b'\n')?;
    let line = std::str::from_utf8(b.get(..end)?)
        .ok()?
        .strip_suffix('\r')?;
    let mut f = line.split(' ');
    let (_, fam) = (f.next()?, f.next()?);
    let ip = |s: &str| s.parse::<std::net::IpAddr>().ok().map(Addr::from);
    let (src, dst) = (ip(f.next()?)?, ip(f.next()?)?);
    let (sport, dport) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?);
    let v4 = match fam {
        "TCP4" => true,
        "TCP6" => false,
        _ => return None,
    };
    if f.next().is_some() || src.is_v4() != v4 || dst.is_v4() != v4 {
        return None;
    }
    Some(Header {
        version: Version::V1,
        src,
        sport,
        dst,
        dport,
        len: end + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Addr {
        Addr::from(s.parse::<std::net::IpAddr>().unwrap())
    }

    #[test]
    fn v1_is_the_text_line_of_the_spec() {
        let mut b = [0u8; MAX_LEN];
        let n = write(
            &mut b,
            Version::V1,
            &a("10.0.0.1"),
            40000,
            &a("10.0.0.100"),
            80,
        );
        assert_eq!(&b[..n], b"PROXY TCP4 10.0.0.1 10.0.0.100 40000 80\r\n");
        assert_eq!(
            n,
            len(Version::V1, &a("10.0.0.1"), 40000, &a("10.0.0.100"), 80)
        );
        let n = write(
            &mut b,
            Version::V1,
            &a("2001:db8::1"),
            1,
            &a("2001:db8::2"),
            443,
        );
        assert_eq!(&b[..n], b"PROXY TCP6 2001:db8::1 2001:db8::2 1 443\r\n");
    }

    #[test]
    fn the_longest_v1_line_fits() {
        let mut b = [0u8; MAX_LEN];
        let big = a("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
        let n = write(&mut b, Version::V1, &big, 65535, &big, 65535);
        assert_eq!(n, 104);
        assert_eq!(parse(&b[..n]).unwrap().src, big);
    }

    #[test]
    fn v2_is_binary_tcp_over_ipv4() {
        let mut b = [0u8; MAX_LEN];
        let n = write(
            &mut b,
            Version::V2,
            &a("10.0.0.1"),
            40000,
            &a("10.0.0.100"),
            80,
        );
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x11, 0, 12, 10, 0, 0, 1, 10, 0, 0, 100]);
        want.extend_from_slice(&40000u16.to_be_bytes());
        want.extend_from_slice(&80u16.to_be_bytes());
        assert_eq!(&b[..n], &want[..]);
        assert_eq!(n, V2_LEN_V4);
        let n = write(
            &mut b,
            Version::V2,
            &a("2001:db8::1"),
            1,
            &a("2001:db8::2"),
            2,
        );
        assert_eq!((n, b[13], b[15]), (V2_LEN_V6, 0x21, 36));
    }

    #[test]
    fn parse_reads_back_what_write_wrote_and_refuses_garbage() {
        let mut b = [0u8; MAX_LEN];
        for v in [Version::V1, Version::V2] {
            for (s, d) in [("10.0.0.1", "10.0.0.100"), ("2001:db8::1", "2001:db8::2")] {
                let n = write(&mut b, v, &a(s), 1234, &a(d), 80);
                let h = parse(&b[..n]).unwrap();
                assert_eq!((h.version, h.src, h.sport), (v, a(s), 1234));
                assert_eq!((h.dst, h.dport, h.len), (a(d), 80, n));
                assert!(parse(&b[..n - 1]).is_none(), "{v:?} truncated");
            }
        }
        assert!(parse(b"GET / HTTP/1.1\r\n").is_none());
        assert!(parse(b"PROXY TCP4 10.0.0.1 2001:db8::1 1 2\r\n").is_none());
        assert!(parse(b"PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n").is_none());
    }
}

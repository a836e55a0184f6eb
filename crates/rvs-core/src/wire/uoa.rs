//! UOA ("UDP option of address"), the client's address and port that an
//! FNAT load balancer hands to UDP real servers, in DPVS's two encodings
//! (its `uoa_mode`):
//!
//! - `ipo`: an IPv4 option right after the IP header's other options
//!   (IPv4 only):
//!
//!   ```text
//!   +--------+--------+--------+--------+
//!   |  0x1f  | len=8  |  client port    |
//!   +--------+--------+--------+--------+
//!   |          client IPv4 address      |
//!   +--------+--------+--------+--------+
//!   ```
//!
//! - `opp` ("option protocol"): a private IP protocol (248) whose header
//!   sits between the IP header and the UDP header; the IP protocol (or
//!   IPv6 next header) becomes 248 and the header names the real one:
//!
//!   ```text
//!   +--------+--------+--------+--------+
//!   | ver|0  |  proto |  length (4 + n) |   ver: 1 IPv4 client, 2 IPv6 client
//!   +--------+--------+--------+--------+
//!   |  UOA option as above, n = 8 (IPv4 client) or 20 (IPv6)  ...
//!   ```
//!
//! The UDP header and its checksum are those of the plain datagram (the
//! option protocol header is not covered by it), so that a real server's
//! decoder that removes the header hands on a valid UDP datagram. DPVS's
//! kernel module (`kmod/uoa`) reads either encoding; [`decode`] is the same
//! reading for tools (see `rvs-uoa-decode`).

use crate::addr::Addr;

/// The IP option type of UOA (DPVS's `IPOPT_UOA`: number 31, class 0, not copied).
pub const IPOPT_UOA: u8 = 0x1f;
/// The private IP protocol number of the option protocol (DPVS's `IPPROTO_OPT`).
pub const IPPROTO_OPT: u8 = 248;
/// Option protocol header version for an IPv4 client address.
pub const OPP_V4: u8 = 1;
/// Option protocol header version for an IPv6 client address.
pub const OPP_V6: u8 = 2;
/// Length of the option protocol header without its options.
pub const OPP_HEADER_LEN: usize = 4;
/// Longest UOA encoding (option protocol with an IPv6 address).
pub const MAX_LEN: usize = OPP_HEADER_LEN + 20;

/// How UOA is carried (DPVS's `uoa_mode`), or not at all.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// No UOA (rvs's default: a real server without a decoder would drop
    /// `opp` datagrams).
    #[default]
    Off,
    /// As an IPv4 option (`ipo`); IPv4 clients and real servers only.
    Ipo,
    /// As the private option protocol 248 (`opp`).
    Opp,
}

/// Length of the UOA IP option for client `cip` (8 for IPv4, 20 for IPv6).
#[inline]
pub fn option_len(cip: &Addr) -> usize {
    4 + cip.wire_bytes().len()
}

/// Bytes `mode` inserts for client `cip` (0 for [`Mode::Off`]).
#[inline]
pub fn len(mode: Mode, cip: &Addr) -> usize {
    match mode {
        Mode::Off => 0,
        Mode::Ipo => option_len(cip),
        Mode::Opp => OPP_HEADER_LEN + option_len(cip),
    }
}

/// Writes the UOA IP option (client `cip`:`cport`) to the front of `out`;
/// returns its length. `out` must hold [`option_len`] bytes.
pub fn write_option(out: &mut [u8], cip: &Addr, cport: u16) -> usize {
    let a = cip.wire_bytes();
    let n = 4 + a.len();
    out[0] = IPOPT_UOA;
    out[1] = n as u8;
    out[2..4].copy_from_slice(&cport.to_be_bytes());
    out[4..n].copy_from_slice(a);
    n
}

/// Writes the option protocol header wrapping transport `inner` (e.g. UDP)
/// with the UOA option of `cip`:`cport`; returns its length. `out` must hold
/// [`len`]`(Mode::Opp, cip)` bytes.
pub fn write_opp(out: &mut [u8], inner: u8, cip: &Addr, cport: u16) -> usize {
    let n = OPP_HEADER_LEN + write_option(&mut out[OPP_HEADER_LEN..], cip, cport);
    out[0] = if cip.is_v4() { OPP_V4 } else { OPP_V6 } << 4;
    out[1] = inner;
    out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
    n
}

/// Reads a UOA option from an IP options area or an option protocol
/// header's options: the client address and port.
pub fn find_option(opts: &[u8]) -> Option<(Addr, u16)> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return None,
            1 => i += 1,
            kind => {
                let n = *opts.get(i + 1)? as usize;
                let o = opts.get(i..i + n.max(2))?;
                if kind == IPOPT_UOA && (n == 8 || n == 20) {
                    let port = u16::from_be_bytes([o[2], o[3]]);
                    let a = if n == 8 {
                        Addr::from_v4_bytes(o[4..8].try_into().ok()?)
                    } else {
                        Addr::from_v6_bytes(o[4..20].try_into().ok()?)
                    };
                    return Some((a, port));
                }
                i += n.max(2);
            }
        }
    }
    None
}

/// What [`decode`] found in an IP packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The client's address and port carried by UOA.
    pub client: (Addr, u16),
    /// The transport protocol of the payload (17 for UDP).
    pub proto: u8,
    /// Offset of the transport header (e.g. UDP) in the packet.
    pub l4: usize,
    /// The encoding found.
    pub mode: Mode,
}

/// Finds UOA in the IP packet `ip` (starting at its IPv4 or IPv6 header):
/// an `ipo` option or an `opp` header. None when it carries neither.
pub fn decode(ip: &[u8]) -> Option<Decoded> {
    let (hlen, proto) = match ip.first()? >> 4 {
        4 => (usize::from(ip[0] & 0x0f) * 4, *ip.get(9)?),
        6 => (40, *ip.get(6)?),
        _ => return None,
    };
    if proto == IPPROTO_OPT {
        let h = ip.get(hlen..hlen + OPP_HEADER_LEN)?;
        let n = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let opts = ip.get(hlen + OPP_HEADER_LEN..hlen + n)?;
        return find_option(opts).map(|client| Decoded {
            client,
            proto: h[1],
            l4: hlen + n,
            mode: Mode::Opp,
        });
    }
    if ip[0] >> 4 != 4 || hlen <= 20 {
        return None;
    }
    find_option(ip.get(20..hlen)?).map(|client| Decoded {
        client,
        proto,
        l4: hlen,
        mode: Mode::Ipo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_dpvs_layout() {
        let c4 = Addr::v4(10, 0, 0, 1);
        let mut b = [0u8; MAX_LEN];
        assert_eq!(write_option(&mut b, &c4, 40000), 8);
        assert_eq!(&b[..8], &[0x1f, 8, 0x9c, 0x40, 10, 0, 0, 1]);
        assert_eq!(write_opp(&mut b, 17, &c4, 40000), 12);
        assert_eq!(
            &b[..12],
            &[0x10, 17, 0, 12, 0x1f, 8, 0x9c, 0x40, 10, 0, 0, 1]
        );
        let c6: Addr = "2001:db8::7".parse().unwrap();
        assert_eq!(len(Mode::Opp, &c6), 24);
        assert_eq!(write_opp(&mut b, 17, &c6, 53), 24);
        assert_eq!(&b[..6], &[0x20, 17, 0, 24, 0x1f, 20]);
        assert_eq!(find_option(&b[4..24]), Some((c6, 53)));
    }

    #[test]
    fn find_option_skips_others_and_stops_at_end() {
        let c = Addr::v4(192, 0, 2, 9);
        let opts = [1, 7, 4, 4, 0, 0x1f, 8, 0, 80, 192, 0, 2, 9];
        assert_eq!(find_option(&opts), Some((c, 80)));
        assert_eq!(find_option(&[0, 0x1f, 8, 0, 80, 192, 0, 2, 9]), None);
        assert_eq!(find_option(&[0x1f, 8, 0]), None, "truncated");
    }
}

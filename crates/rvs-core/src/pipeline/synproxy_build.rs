//! The TCP segments the SYN proxy writes itself: its SYN-ACK to the client,
//! and the SYN and the ACK of its handshake with the real server. Each is a
//! whole frame (Ethernet, IPv4 or IPv6, TCP with options, no payload)
//! written over the buffer of the packet that caused it.

use crate::addr::{proto, Addr, Mac};
use crate::wire::ethernet;
use crate::wire::tcp::{self, opt, TcpPacket};
use crate::wire::IpHeader;

/// Hop limit of what the SYN proxy sends.
const TTL: u8 = 64;
/// Longest option list written: MSS (4), SACK-permitted and timestamps
/// (12), window scale (4).
const MAX_OPTIONS: usize = 20;

/// A segment to write.
#[derive(Copy, Clone, Debug)]
pub(super) struct Seg {
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// TCP flags.
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// MSS option.
    pub mss: Option<u16>,
    /// SACK-permitted option.
    pub sack: bool,
    /// Timestamps option: (TSval, TSecr).
    pub ts: Option<(u32, u32)>,
    /// Window scale option.
    pub wscale: Option<u8>,
}

impl Seg {
    /// A segment without options.
    pub fn new(src: Addr, sport: u16, dst: Addr, dport: u16) -> Seg {
        Seg {
            src,
            dst,
            sport,
            dport,
            seq: 0,
            ack: 0,
            flags: 0,
            window: 0,
            mss: None,
            sack: false,
            ts: None,
            wscale: None,
        }
    }
}

/// Writes `s`'s options as Linux lays them out (4-byte aligned, NOP
/// padded); returns their length.
fn options(s: &Seg, out: &mut [u8; MAX_OPTIONS]) -> usize {
    let mut n = 0;
    let mut put = |b: &[u8]| {
        out[n..n + b.len()].copy_from_slice(b);
        n += b.len();
    };
    if let Some(m) = s.mss {
        let [a, b] = m.to_be_bytes();
        put(&[opt::MSS, 4, a, b]);
    }
    match (s.sack, s.ts) {
        (sack, Some((v, e))) => {
            put(&if sack {
                [opt::SACK_PERM, 2]
            } else {
                [opt::NOP, opt::NOP]
            });
            put(&[opt::TIMESTAMPS, 10]);
            put(&v.to_be_bytes());
            put(&e.to_be_bytes());
        }
        (true, None) => put(&[opt::NOP, opt::NOP, opt::SACK_PERM, 2]),
        (false, None) => {}
    }
    if let Some(w) = s.wscale {
        put(&[opt::NOP, opt::WSCALE, 3, w]);
    }
    n
}

/// Writes the frame of `s` from `dmac` to `smac` at the start of `buf`
/// (IPv4 or IPv6 as `s.dst` is); returns its length, or `None` when `buf`
/// is too short.
pub(super) fn write_frame(buf: &mut [u8], dmac: Mac, smac: Mac, s: &Seg) -> Option<usize> {
    let mut o = [0u8; MAX_OPTIONS];
    let olen = options(s, &mut o);
    let tcp_len = tcp::HEADER_LEN + olen;
    let h = IpHeader {
        src: &s.src,
        dst: &s.dst,
        proto: proto::TCP,
        ttl: TTL,
        tos: 0,
        payload_len: tcp_len as u16,
        ident: 0,
        df: true,
    };
    let l3 = ethernet::HEADER_LEN;
    let l4 = l3 + h.len();
    let f = buf.get_mut(..l4 + tcp_len)?;
    ethernet::write_header(f, dmac, smac, h.ethertype());
    h.write(&mut f[l3..l4]);
    let seg = &mut f[l4..];
    seg.fill(0);
    let mut t = TcpPacket::new_unchecked(seg);
    t.set_src_port(s.sport);
    t.set_dst_port(s.dport);
    t.set_seq(s.seq);
    t.set_ack(s.ack);
    t.set_header_len(tcp_len);
    t.set_flags(s.flags);
    t.set_window(s.window);
    t.options_mut().copy_from_slice(&o[..olen]);
    t.fill_checksum(&s.src, &s.dst);
    Some(l4 + tcp_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::TcpOption;

    #[test]
    fn writes_every_option_combination_checksummed() {
        let (a, b) = (Addr::v4(10, 0, 0, 1), Addr::v4(10, 0, 0, 2));
        let (c, d): (Addr, Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        for (src, dst) in [(a, b), (c, d)] {
            for bits in 0..16u8 {
                let s = Seg {
                    seq: 0xffff_fff0,
                    ack: 7,
                    flags: 0x12,
                    window: 512,
                    mss: (bits & 1 != 0).then_some(1460),
                    sack: bits & 2 != 0,
                    ts: (bits & 4 != 0).then_some((1, 2)),
                    wscale: (bits & 8 != 0).then_some(7),
                    ..Seg::new(src, 80, dst, 4000)
                };
                let mut buf = [0u8; 128];
                let n = write_frame(&mut buf, Mac::ZERO, Mac::ZERO, &s).unwrap();
                let l4 = 14 + if src.is_v4() { 20 } else { 40 };
                let t = TcpPacket::new_checked(&buf[l4..n]).unwrap();
                assert!(t.verify_checksum(&src, &dst), "bits {bits}");
                assert_eq!(t.header_len() % 4, 0);
                assert!(!t.has_malformed_options());
                let got: Vec<_> = t.option_iter().collect();
                let mut want = vec![];
                if s.mss.is_some() {
                    want.push(TcpOption::Mss(1460));
                }
                if s.sack {
                    want.push(TcpOption::SackPermitted);
                }
                if s.ts.is_some() {
                    want.push(TcpOption::Timestamps(1, 2));
                }
                if s.wscale.is_some() {
                    want.push(TcpOption::WindowScale(7));
                }
                assert_eq!(got, want, "bits {bits}");
                assert_eq!((t.seq(), t.ack(), t.window()), (0xffff_fff0, 7, 512));
            }
        }
        let s = Seg::new(a, 1, b, 2);
        assert_eq!(write_frame(&mut [0u8; 40], Mac::ZERO, Mac::ZERO, &s), None);
    }
}

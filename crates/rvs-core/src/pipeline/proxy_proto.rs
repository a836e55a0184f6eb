//! PROXY protocol for FNAT TCP services (`--proxy-protocol v1|v2`, as
//! DPVS's ipvsadm): the real server reads the client's address and port
//! from a header ([`crate::wire::proxy_proto`]) in front of the stream.
//!
//! A connection of such a service records the version in its flags
//! ([`flags::PROXY_V1`], [`flags::PROXY_V2`]) and `S`, the client's sequence number of its first
//! byte (its ISN + 1), in [`Conn::sp_ts`] (a SYN proxy service with the
//! PROXY protocol does not negotiate timestamps, so the field is free).
//! The header of `n` bytes takes the stream positions `S..S + n` toward the
//! real server, so:
//!
//! - client to real server: a segment at `S` carrying data or a FIN gets
//!   the header in front of its payload, its sequence number unchanged
//!   (a retransmission of the first segment gets it again, identically);
//!   a segment after `S` has its sequence number raised by `n`;
//! - real server to client: an acknowledgement number or SACK edge after
//!   `S + n` is lowered by `n`, one inside the header becomes `S`; the
//!   SYN-ACK's MSS is lowered by `n` (and TOA's room when TOA is on) so
//!   that the first segment still fits.
//!
//! DPVS sends the header on its own when it does not fit; rvs makes room
//! with the MSS instead, and drops (as `too_big`) a first segment that still
//! would not fit. A client that never sends data gets no header until its
//! FIN.

use super::parse::Parsed;
use super::rewrite::{clamp_mss, open_gap, split, toa_len};
use super::{Packet, State};
use crate::addr::proto;
use crate::conn::{flags, Conn, ConnId, Dir, FwdMode};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::proxy_proto::{self, Version, MAX_LEN};
use crate::wire::tcp::{field as tcp_field, flags as tcpf, TcpPacket};
use crate::wire::{checksum, sub_mut};

use flags::{PROXY_V1 as PP_V1, PROXY_V2 as PP_V2};
/// Both PROXY protocol flags.
pub(crate) const PP_MASK: u16 = PP_V1 | PP_V2;

/// The PROXY protocol version of connection `c`.
#[inline]
pub(crate) fn version(c: &Conn) -> Version {
    match c.flags & PP_MASK {
        PP_V1 => Version::V1,
        PP_V2 => Version::V2,
        _ => Version::Off,
    }
}

/// The length of `c`'s header (0 without one).
#[inline]
pub(crate) fn header_len(c: &Conn) -> u32 {
    proxy_proto::len(version(c), &c.cip, c.cport, &c.vip, c.vport) as u32
}

/// A number of the real server's space (past the header's `n` bytes from
/// `s`) in the client's: lowered by `n` after the header, `s` inside it.
#[inline]
fn to_client(a: u32, s: u32, n: u32) -> u32 {
    match after(a, s) {
        d if d > n as i32 => a.wrapping_sub(n),
        d if d > 0 => s,
        _ => a,
    }
}

/// `seq - base` as a signed distance in sequence space.
#[inline]
fn after(seq: u32, base: u32) -> i32 {
    seq.wrapping_sub(base) as i32
}

impl State {
    /// Marks the new connection `id` of service `svc_index` for the PROXY
    /// protocol when the service asks for it (FNAT TCP only); `first` is the
    /// client's sequence number of its first byte.
    pub(super) fn pp_start(&mut self, snap: &Snapshot, svc_index: usize, id: ConnId, first: u32) {
        let v = snap.services.get(svc_index).map(|s| s.proxy_protocol);
        let c = self.conns.get_mut(id);
        if c.mode != FwdMode::Fnat || c.proto != proto::TCP {
            return;
        }
        let bit = match v {
            Some(Version::V1) => PP_V1,
            Some(Version::V2) => PP_V2,
            _ => return,
        };
        c.flags |= bit;
        c.sp_ts = first;
    }

    /// Client to real server (already translated): inserts the header into
    /// the first segment, shifts the sequence number of later ones. Err when
    /// the first segment with the header would not fit the route's MTU or
    /// the buffer.
    pub(super) fn pp_in(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        c: &Conn,
    ) -> Result<(), DropReason> {
        let n = header_len(c);
        let f = &mut pkt.buf[pkt.head..pkt.head + pkt.len];
        let (_, seg) = split(f, p);
        let mut t = TcpPacket::new_unchecked(seg);
        let d = after(t.seq(), c.sp_ts);
        if d > 0 {
            let s = t.seq().wrapping_add(n);
            t.rewrite_seq(s);
            return Ok(());
        }
        let first = p.payload_len() > 0 || p.tcp_flags & tcpf::FIN != 0;
        if d < 0 || !first || p.tcp_flags & (tcpf::SYN | tcpf::RST) != 0 {
            return Ok(());
        }
        let mtu = snap
            .routes
            .lookup(&c.rip)
            .and_then(|r| snap.ports.get(r.port as usize))
            .map_or(1500, |pc| pc.mtu as usize);
        if insert(pkt, p, c, mtu) {
            Ok(())
        } else {
            Err(DropReason::TooBig)
        }
    }
}

/// Inserts `c`'s header at the start of the TCP payload of `pkt` (parsed as
/// `p`, already translated) and recomputes the checksum. False, the frame
/// unchanged, when it would not fit `mtu` or the buffer.
fn insert(pkt: &mut Packet<'_>, p: &mut Parsed, c: &Conn, mtu: usize) -> bool {
    let mut hdr = [0u8; MAX_LEN];
    let n = proxy_proto::write(&mut hdr, version(c), &c.cip, c.cport, &c.vip, c.vport);
    let at = p.l4 + p.tcp_hlen;
    if n == 0 || p.ip_len + n > mtu || !open_gap(pkt.buf, &mut pkt.head, &mut pkt.len, at, n) {
        return false;
    }
    let f = sub_mut(pkt.buf, pkt.head, pkt.head + pkt.len);
    sub_mut(f, at, at + n).copy_from_slice(&hdr[..n]);
    let new_len = p.ip_len + n;
    let ip = sub_mut(f, p.l3, p.l4);
    if p.v6 {
        Ipv6Packet::new_unchecked(ip).set_payload_len((new_len - ipv6::HEADER_LEN) as u16);
    } else {
        Ipv4Packet::new_unchecked(ip).rewrite_total_len(new_len as u16);
    }
    p.ip_len = new_len;
    // The payload moved by n bytes, maybe odd: a full checksum, once per connection.
    let mut t = TcpPacket::new_unchecked(sub_mut(f, p.l4, p.l3 + p.ip_len));
    t.set_checksum(0);
    let sum = checksum::l4_checksum(&p.src, &p.dst, proto::TCP, t.as_bytes());
    t.set_checksum(sum);
    true
}

/// Real server to client: lowers the acknowledgement number and the SACK
/// edges past the header by its length, and the SYN-ACK's MSS so that the
/// client's first segment fits with the header.
pub(super) fn pp_out(f: &mut [u8], p: &Parsed, c: &Conn, toa: bool) {
    let n = header_len(c);
    if p.tcp_flags & tcpf::SYN != 0 {
        let toa = if toa { toa_len(&c.cip) as u32 } else { 0 };
        clamp_mss(f, p, (n + toa) as u16);
    }
    if p.tcp_flags & tcpf::ACK == 0 {
        return;
    }
    let s = c.sp_ts;
    let map = |a: u32| to_client(a, s, n);
    let (_, seg) = split(f, p);
    let mut t = TcpPacket::new_unchecked(seg);
    let a = map(t.ack());
    if a != t.ack() {
        t.rewrite_ack(a);
    }
    t.map_sack(map);
}

/// Shifts the TCP segment `seg` quoted in an ICMP error about PROXY
/// protocol connection `c` into the client's sequence space when the error
/// goes to the client (`Dir::Out`: the real server's side quotes a segment
/// rvs sent it, its sequence number raised past the header). The quoted TCP
/// checksum follows when quoted; the caller recomputes the ICMP checksum.
/// An error going to the real server quotes a segment whose sequence
/// number is the real server's own: nothing to do.
pub(super) fn pp_shift_quote(seg: &mut [u8], c: &Conn, dir: Dir) {
    if c.flags & PP_MASK == 0 || dir != Dir::Out || seg.len() < tcp_field::SEQ_NUM.end {
        return;
    }
    let mut t = TcpPacket::new_unchecked(seg);
    let (old, new) = (t.seq(), to_client(t.seq(), c.sp_ts, header_len(c)));
    if old == new {
        return;
    }
    t.set_seq(new);
    if t.as_bytes().len() >= tcp_field::CHECKSUM.end {
        let sum = checksum::update32(t.checksum(), old, new);
        t.set_checksum(sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Addr;

    #[test]
    fn version_and_length_follow_the_flags() {
        let mut c = Conn::EMPTY;
        c.cip = Addr::from(std::net::IpAddr::from([10, 0, 0, 1]));
        c.vip = Addr::from(std::net::IpAddr::from([10, 0, 0, 100]));
        c.cport = 40000;
        c.vport = 80;
        assert_eq!((version(&c), header_len(&c)), (Version::Off, 0));
        c.flags = PP_V1;
        let line = "PROXY TCP4 10.0.0.1 10.0.0.100 40000 80\r\n";
        assert_eq!(header_len(&c), line.len() as u32);
        c.flags = PP_V2 | flags::TOA_SENT;
        assert_eq!((version(&c), header_len(&c)), (Version::V2, 28));
    }
}

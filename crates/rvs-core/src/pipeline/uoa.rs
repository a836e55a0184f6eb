//! UOA for FNAT UDP (DPVS's `uoa_mode` and `uoa_max_trail`, here
//! `[pipeline] uoa_mode` and `uoa_max_trail` of rvsd's configuration): the
//! client's address and port ([`crate::wire::uoa`]) ride in the first
//! datagrams from the client toward the real server, until
//! `uoa_max_trail` of them carried it or the real server answered (it
//! knows the client then), as DPVS does.
//!
//! A UDP connection keeps the count of datagrams sent with UOA in
//! [`Conn::sp_ts`] (TCP only otherwise), [`DONE`] once the real server
//! answered. A datagram that would exceed the route's MTU with UOA goes
//! without it and is counted ([`crate::stats::WorkerGauges::uoa_too_big`];
//! DPVS sends a separate empty datagram with the option instead); so are
//! the datagrams that carried it ([`crate::stats::WorkerGauges::uoa_sent`]).

use super::parse::Parsed;
use super::rewrite::open_gap;
use super::{Packet, State};
use crate::addr::Addr;
use crate::conn::{Conn, ConnId, ConnTable};
use crate::snapshot::Snapshot;
use crate::stats::bump;
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::sub_mut;
use crate::wire::uoa::{self, Mode, MAX_LEN};

/// The longest IPv4 header (IHL 15).
const IPV4_MAX_HEADER_LEN: usize = 60;

/// [`Conn::sp_ts`] of a UDP connection whose real server answered: no more UOA.
pub(crate) const DONE: u32 = u32::MAX;

/// Whether connection `c` (FNAT UDP) still sends UOA.
#[inline]
pub(crate) fn pending(snap: &Snapshot, c: &Conn) -> bool {
    snap.conf.uoa_mode != Mode::Off && c.sp_ts < u32::from(snap.conf.uoa_max_trail)
}

impl State {
    /// Client to real server (already translated): inserts UOA when
    /// connection `c` still sends it.
    pub(super) fn uoa_in(
        &mut self,
        snap: &Snapshot,
        pkt: &mut Packet<'_>,
        p: &mut Parsed,
        id: ConnId,
        c: &Conn,
    ) {
        if !pending(snap, c) {
            return;
        }
        let mode = snap.conf.uoa_mode;
        if mode == Mode::Ipo && (p.v6 || !c.cip.is_v4()) {
            return; // IPv4 only, as in DPVS
        }
        let mtu = snap
            .routes
            .lookup(&c.rip)
            .and_then(|r| snap.ports.get(r.port as usize))
            .map_or(1500, |pc| pc.mtu as usize);
        let g = &self.gauges;
        match insert(pkt, p, mode, &c.cip, c.cport, mtu) {
            Ok(()) => {
                bump(&g.uoa_sent, 1);
                self.conns.get_mut(id).sp_ts = c.sp_ts + 1;
            }
            Err(Skip::TooBig) => bump(&g.uoa_too_big, 1),
            Err(Skip::NoRoom) => {}
        }
    }
}

/// Real server to client: it answered, so it has the client's address.
#[inline]
pub(super) fn uoa_out(conns: &mut ConnTable, id: ConnId, c: &Conn) {
    if c.sp_ts != DONE {
        conns.get_mut(id).sp_ts = DONE;
    }
}

/// Why [`insert`] left a datagram without UOA.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    /// It would exceed the MTU.
    TooBig,
    /// No room in the IPv4 header's options, IPv6 extension headers
    /// (`opp` needs the UDP header right after the fixed header), or the buffer.
    NoRoom,
}

/// Inserts UOA of `cip`:`cport` in `mode` into the UDP datagram `pkt`
/// (parsed as `p`, translated). The UDP checksum stays valid as it is (the
/// pseudo-header does not change); the IPv4 header checksum is updated.
pub(crate) fn insert(
    pkt: &mut Packet<'_>,
    p: &mut Parsed,
    mode: Mode,
    cip: &Addr,
    cport: u16,
    mtu: usize,
) -> Result<(), Skip> {
    let n = uoa::len(mode, cip);
    let ihl = p.l4 - p.l3;
    let room = match mode {
        Mode::Off => false,
        Mode::Ipo => !p.v6 && ihl + n <= IPV4_MAX_HEADER_LEN,
        Mode::Opp => !p.v6 || ihl == ipv6::HEADER_LEN,
    };
    if !room {
        return Err(Skip::NoRoom);
    }
    if p.ip_len + n > mtu {
        return Err(Skip::TooBig);
    }
    let mut hdr = [0u8; MAX_LEN];
    match mode {
        Mode::Ipo => uoa::write_option(&mut hdr, cip, cport),
        _ => uoa::write_opp(&mut hdr, p.proto, cip, cport),
    };
    if !open_gap(pkt.buf, &mut pkt.head, &mut pkt.len, p.l4, n) {
        return Err(Skip::NoRoom);
    }
    let f = sub_mut(pkt.buf, pkt.head, pkt.head + pkt.len);
    sub_mut(f, p.l4, p.l4 + n).copy_from_slice(&hdr[..n]);
    let new_len = p.ip_len + n;
    let ip = sub_mut(f, p.l3, p.l4 + n);
    if p.v6 {
        let mut h = Ipv6Packet::new_unchecked(ip);
        h.set_payload_len((new_len - ipv6::HEADER_LEN) as u16);
        h.set_next_header(uoa::IPPROTO_OPT);
    } else {
        if mode == Mode::Ipo {
            ip[0] = 0x40 | ((ihl + n) / 4) as u8;
        } else {
            ip[9] = uoa::IPPROTO_OPT;
        }
        let mut h = Ipv4Packet::new_unchecked(ip);
        h.set_total_len(new_len as u16);
        h.fill_checksum();
    }
    p.l4 += n;
    p.ip_len = new_len;
    Ok(())
}

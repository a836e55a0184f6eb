//! Multicast Listener Discovery version 2 (RFC 3810): a view of a Query
//! (version 1's 24 bytes or version 2's 28 and more) and of a version 2
//! Report, and builders of whole Report and Query frames (Ethernet, IPv6
//! with hop limit 1 and a Hop-by-Hop header carrying the Router Alert
//! option, ICMPv6 with its checksum).

use super::checksum;
use super::{ethernet, ipv6, rd16, rd8, rd_arr, sub, sub_mut, WireError};
use crate::addr::{proto, Addr, Mac};

/// ICMPv6 type of a Multicast Listener Query (both versions).
pub const QUERY: u8 = 130;
/// ICMPv6 type of a version 1 Multicast Listener Report.
pub const REPORT_V1: u8 = 131;
/// ICMPv6 type of a version 1 Multicast Listener Done.
pub const DONE_V1: u8 = 132;
/// ICMPv6 type of a version 2 Multicast Listener Report.
pub const REPORT_V2: u8 = 143;

/// Length of a version 1 Query (and the shortest Query).
pub const QUERY_V1_LEN: usize = 24;
/// Length of a version 2 Query without sources.
pub const QUERY_V2_LEN: usize = 28;
/// Length of a version 2 Report's header (before its records).
pub const REPORT_HEADER_LEN: usize = 8;
/// Length of a Multicast Address Record without sources or auxiliary data.
pub const RECORD_LEN: usize = 20;
/// Length of the Hop-by-Hop header rvs writes (Router Alert, PadN).
pub const HBH_LEN: usize = 8;
/// Next header value of the Hop-by-Hop Options header.
const HOP_BY_HOP: u8 = 0;
/// Hop limit of every MLD message (RFC 3810 section 5).
pub const HOP_LIMIT: u8 = 1;
/// Offset of the ICMPv6 message in a frame [`write_report`] writes.
pub const MSG_OFF: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + HBH_LEN;
/// Records [`write_report`] puts in one frame at most (a 1500-byte MTU
/// holds 72; rvs's ports listen to few groups).
pub const MAX_RECORDS: usize = 64;
/// Length of the longest frame [`write_report`] writes.
pub const MAX_REPORT_FRAME: usize = MSG_OFF + REPORT_HEADER_LEN + MAX_RECORDS * RECORD_LEN;

/// `ff02::16`, where version 2 Reports go (all MLDv2-capable routers).
pub const ALL_MLDV2_ROUTERS: Addr = Addr([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16]);
/// `ff02::1`, the all-nodes group (never reported, RFC 3810 section 6).
pub const ALL_NODES: Addr = Addr([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/// Multicast Address Record types (RFC 3810 section 5.2.12).
pub mod record {
    /// Current state: INCLUDE (of the record's sources).
    pub const MODE_IS_INCLUDE: u8 = 1;
    /// Current state: EXCLUDE (no source: listening to all).
    pub const MODE_IS_EXCLUDE: u8 = 2;
    /// State change to INCLUDE (no source: leaving the group).
    pub const CHANGE_TO_INCLUDE: u8 = 3;
    /// State change to EXCLUDE (no source: joining the group).
    pub const CHANGE_TO_EXCLUDE: u8 = 4;
    /// New sources allowed.
    pub const ALLOW_NEW_SOURCES: u8 = 5;
    /// Old sources blocked.
    pub const BLOCK_OLD_SOURCES: u8 = 6;
}

/// The link-layer group an IPv6 multicast address maps to (RFC 2464
/// section 7): `33:33` and its low 32 bits.
pub fn group_mac(a: &Addr) -> Mac {
    Mac([0x33, 0x33, a.0[12], a.0[13], a.0[14], a.0[15]])
}

/// Whether `a` is an IPv6 multicast address MLD reports: scope 2 (link)
/// or wider, not the all-nodes group (RFC 3810 section 6).
pub fn reportable(a: &Addr) -> bool {
    a.0[0] == 0xff && a.0[1] & 0x0f >= 2 && *a != ALL_NODES
}

/// A view of a Multicast Listener Query (the ICMPv6 message).
#[derive(Debug, Clone)]
pub struct QueryPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> QueryPacket<T> {
    /// Checks the type (130), the length (24 for version 1, 28 and the
    /// sources for version 2: `Truncated`; anything between: `BadLength`).
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < QUERY_V1_LEN {
            return Err(WireError::Truncated);
        }
        if rd8(b, 0) != QUERY {
            return Err(WireError::Unsupported);
        }
        if b.len() > QUERY_V1_LEN {
            if b.len() < QUERY_V2_LEN {
                return Err(WireError::BadLength);
            }
            let n = usize::from(rd16(b, 26));
            if b.len() < QUERY_V2_LEN + 16 * n {
                return Err(WireError::Truncated);
            }
        }
        Ok(QueryPacket { buf })
    }

    /// Version 2 (longer than 24 bytes), else version 1.
    pub fn is_v2(&self) -> bool {
        self.buf.as_ref().len() >= QUERY_V2_LEN
    }

    /// The Maximum Response Code as stored.
    pub fn max_resp_code(&self) -> u16 {
        rd16(self.buf.as_ref(), 4)
    }

    /// The Maximum Response Delay in milliseconds: the code itself below
    /// 32768, else its floating-point form (RFC 3810 section 5.1.3); a
    /// version 1 Query's code is always milliseconds.
    pub fn max_resp_ms(&self) -> u32 {
        let c = self.max_resp_code();
        if c < 0x8000 || !self.is_v2() {
            return u32::from(c);
        }
        let exp = u32::from((c >> 12) & 7);
        let mant = u32::from(c & 0x0fff);
        (mant | 0x1000) << (exp + 3)
    }

    /// The queried group: unspecified for a General Query.
    pub fn group(&self) -> Addr {
        Addr(rd_arr(self.buf.as_ref(), 8))
    }

    /// The Querier's Robustness Variable (version 2; 0: not given).
    pub fn qrv(&self) -> u8 {
        rd8(self.buf.as_ref(), 24) & 7
    }

    /// Number of sources of a version 2 Query (0 for version 1).
    pub fn sources(&self) -> u16 {
        rd16(self.buf.as_ref(), 26)
    }

    /// Whether the checksum verifies between `src` and `dst`.
    pub fn verify_checksum(&self, src: &Addr, dst: &Addr) -> bool {
        checksum::verify_l4(src, dst, proto::ICMPV6, self.buf.as_ref())
    }
}

/// A view of a version 2 Report (the ICMPv6 message).
#[derive(Debug, Clone)]
pub struct ReportPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> ReportPacket<T> {
    /// Checks the type (143) and that every record, its sources and its
    /// auxiliary data lie inside the message (`Truncated`).
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < REPORT_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if rd8(b, 0) != REPORT_V2 {
            return Err(WireError::Unsupported);
        }
        let mut off = REPORT_HEADER_LEN;
        for _ in 0..rd16(b, 6) {
            off = record_end(b, off).ok_or(WireError::Truncated)?;
        }
        Ok(ReportPacket { buf })
    }

    /// Number of records.
    pub fn count(&self) -> u16 {
        rd16(self.buf.as_ref(), 6)
    }

    /// The records as (type, group), in order.
    pub fn records(&self) -> impl Iterator<Item = (u8, Addr)> + '_ {
        let b = self.buf.as_ref();
        let mut off = REPORT_HEADER_LEN;
        (0..self.count()).map_while(move |_| {
            let r = (rd8(b, off), Addr(rd_arr(b, off + 4)));
            off = record_end(b, off)?;
            Some(r)
        })
    }

    /// Whether the checksum verifies between `src` and `dst`.
    pub fn verify_checksum(&self, src: &Addr, dst: &Addr) -> bool {
        checksum::verify_l4(src, dst, proto::ICMPV6, self.buf.as_ref())
    }
}

/// Where the record at `off` ends, if inside `b`.
fn record_end(b: &[u8], off: usize) -> Option<usize> {
    let aux = usize::from(rd8(b, off + 1)) * 4;
    let n = usize::from(rd16(b, off + 2));
    let end = off + RECORD_LEN + 16 * n + aux;
    (end <= b.len()).then_some(end)
}

/// Writes the Ethernet, IPv6 and Hop-by-Hop headers of an MLD frame whose
/// ICMPv6 message is `msg_len` bytes; returns [`MSG_OFF`].
fn write_headers(f: &mut [u8], src_mac: Mac, src: &Addr, dst: &Addr, msg_len: usize) -> usize {
    let l3 = ethernet::write_header(f, group_mac(dst), src_mac, ethernet::ethertype::IPV6);
    ipv6::write_header(
        sub_mut(f, l3, l3 + ipv6::HEADER_LEN),
        src,
        dst,
        HOP_BY_HOP,
        HOP_LIMIT,
        (HBH_LEN + msg_len) as u16,
    );
    // Next header ICMPv6, length 0 (8 bytes); Router Alert (type 5, length
    // 2, value 0: MLD, RFC 2711); PadN of 0 bytes.
    let h = l3 + ipv6::HEADER_LEN;
    sub_mut(f, h, h + HBH_LEN).copy_from_slice(&[proto::ICMPV6, 0, 5, 2, 0, 0, 1, 0]);
    MSG_OFF
}

/// Fills the checksum of the ICMPv6 message at [`MSG_OFF`] of a frame.
fn fill_checksum(f: &mut [u8], src: &Addr, dst: &Addr, len: usize) {
    let m = sub_mut(f, MSG_OFF, MSG_OFF + len);
    let c = checksum::l4_checksum(src, dst, proto::ICMPV6, m);
    if let Some(x) = m.get_mut(2..4) {
        x.copy_from_slice(&c.to_be_bytes());
    }
}

/// Writes a whole version 2 Report frame from `src_mac`/`src` (a
/// link-local address, or `::` when the port has none) to `ff02::16`, one
/// record without sources per (type, group) of `records` (at most
/// [`MAX_RECORDS`]); returns its length, 0 when `buf` is too short or
/// there are too many records.
pub fn write_report(buf: &mut [u8], src_mac: Mac, src: &Addr, records: &[(u8, Addr)]) -> usize {
    let len = REPORT_HEADER_LEN + records.len() * RECORD_LEN;
    if records.len() > MAX_RECORDS || buf.len() < MSG_OFF + len {
        return 0;
    }
    let dst = ALL_MLDV2_ROUTERS;
    let off = write_headers(buf, src_mac, src, &dst, len);
    let m = sub_mut(buf, off, off + len);
    m[..8].copy_from_slice(&[REPORT_V2, 0, 0, 0, 0, 0, 0, 0]);
    m[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
    for (r, (t, g)) in m[REPORT_HEADER_LEN..]
        .chunks_exact_mut(RECORD_LEN)
        .zip(records)
    {
        r[..4].copy_from_slice(&[*t, 0, 0, 0]);
        r[4..].copy_from_slice(&g.0);
    }
    fill_checksum(buf, src, &dst, len);
    MSG_OFF + len
}

/// Writes a whole version 2 Query frame without sources from
/// `src_mac`/`src` about `group` (unspecified: a General Query, to
/// `ff02::1`; else to the group), with Maximum Response Code `code` and
/// robustness `qrv`; returns its length, 0 when `buf` is too short. A
/// querier's message: rvs sends none, tests and labs do.
pub fn write_query(
    buf: &mut [u8],
    src_mac: Mac,
    src: &Addr,
    group: &Addr,
    code: u16,
    qrv: u8,
) -> usize {
    if buf.len() < MSG_OFF + QUERY_V2_LEN {
        return 0;
    }
    let dst = if group.is_unspecified() {
        ALL_NODES
    } else {
        *group
    };
    let off = write_headers(buf, src_mac, src, &dst, QUERY_V2_LEN);
    let m = sub_mut(buf, off, off + QUERY_V2_LEN);
    m.fill(0);
    m[0] = QUERY;
    m[4..6].copy_from_slice(&code.to_be_bytes());
    m[8..24].copy_from_slice(&group.0);
    // S = 0, QRV, QQIC 125 s.
    m[24] = qrv & 7;
    m[25] = 125;
    fill_checksum(buf, src, &dst, QUERY_V2_LEN);
    MSG_OFF + QUERY_V2_LEN
}

/// The ICMPv6 message of a frame [`write_report`] or [`write_query`] wrote.
pub fn message(frame: &[u8]) -> &[u8] {
    sub(frame, MSG_OFF, frame.len())
}

#[cfg(test)]
#[path = "mld_tests.rs"]
mod tests;

//! Version 4: the hand-over records that move a worker's whole state to a
//! successor process on the same host (hot upgrade, warm standby; see
//! `docs/design/hot-upgrade.md`), never to a peer.
//!
//! Versions 1 to 3 carry what an HA peer needs and drop what only the
//! process that owns the connection has (most connection flags, the fast
//! path's bits, the ports and previous hop the connection was seen on, the
//! flow log's counters). A successor needs all of it, so a version 4
//! message carries [`LocalRecord`]s: a whole connection
//! ([`LocalRecord::Conn`], type 5), a removal (type 3, as in version 1),
//! or a neighbour ([`LocalRecord::Neigh`], type 6). It is accepted only
//! when the caller says its bytes come from a local stream
//! ([`Source::Local`], [`LocalMessage::parse`]); [`super::Message::parse`]
//! (the network's decoder) refuses it with [`DecodeError::LocalOnly`].
//! Versions 1 to 3 are unchanged: HA peers keep working.
//!
//! # Format (all integers big-endian)
//! The header is version 1's ([`HEADER_LEN`] bytes, magic `"RVSY"`) with
//! version [`VERSION_LOCAL`]. Records have version 1's 4-byte record header
//! (type, family bits, length).
//!
//! Type 5, a connection: the 24 bytes of a version 1 Create record, except
//! that the flags field holds **all 16** connection flags and the byte at
//! offset 27 holds options (bit 0: flow counters follow); then the six
//! addresses as in version 1; then 20 bytes:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 4 | `sp_seq` |
//! | 4  | 4 | `sp_ts` |
//! | 8  | 2 | in port |
//! | 10 | 2 | out port |
//! | 12 | 6 | in MAC (the client side's previous hop) |
//! | 18 | 1 | local flags (fast path) |
//! | 19 | 1 | reserved, 0 |
//!
//! and with option bit 0, 24 bytes of flow-log counters: age in ms (u64),
//! packets (u64), bytes (u64). The timeout field is the time left, in ms:
//! each process has its own clock.
//!
//! Type 6, a neighbour: port (u16), kind (u8: 1 learned, 2 static),
//! reserved (u8), MAC (6), reserved (u16), age in ms (u64), then the
//! address (4 bytes, or 16 with family bit 0).

use super::encode::{fill, put_header, side_v6, Batch, EncodeError, Put};
use super::msg::{
    be16, be32, be64, mode_of, read_side, record_bytes, record_header, split_header, DecodeError,
    Header, SvcRef, SyncConn, CONN_FIXED, FAM_IN6, FAM_OUT6, HEADER_LEN, REC_HDR, REMOVE_FIXED,
    SVC_SNAT, SVC_VS, TY_REMOVE,
};
use crate::addr::{Addr, Mac, PortId};
use crate::conn::Tuple;

/// The version of a hand-over message.
pub const VERSION_LOCAL: u8 = 4;
const TY_LOCAL: u8 = 5;
const TY_NEIGH: u8 = 6;
const LOCAL_EXT: usize = 20;
const FLOW_EXT: usize = 24;
const OPT_FLOW: u8 = 1;
const NEIGH_FIXED: usize = REC_HDR + 20;
const NEIGH_LEARNED: u8 = 1;
const NEIGH_STATIC: u8 = 2;

/// Where the bytes being decoded come from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A peer, over the network: hand-over records are refused.
    Network,
    /// A local stream of this host's rvsd (takeover, standby).
    Local,
}

/// A connection's flow-log counters, relative to the sender's clock.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowState {
    /// Time since the connection was made, ms.
    pub age_ms: u64,
    /// Packets so far, both directions.
    pub packets: u64,
    /// IP bytes so far, both directions.
    pub bytes: u64,
}

/// Everything a successor process needs of one connection (or persistence
/// template).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LocalConn {
    /// Keys, service and dest by identity, state, time left (ms) and
    /// shifts, with **all** connection flags ([`crate::conn::flags`]).
    pub conn: SyncConn,
    /// The fast path's bits ([`crate::conn::local_flags`]).
    pub local_flags: u8,
    /// Port the in side was seen on.
    pub in_port: PortId,
    /// Port the out side was seen on.
    pub out_port: PortId,
    /// The client side's previous hop ([`Mac::ZERO`]: not known).
    pub in_mac: Mac,
    /// Flow-log counters, when the sender keeps a flow log.
    pub flow: Option<FlowState>,
}

/// A neighbour entry handed over.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NeighRecord {
    /// The neighbour's address.
    pub addr: Addr,
    /// Its MAC.
    pub mac: Mac,
    /// The port it is reached through.
    pub port: PortId,
    /// Configured (never aged) rather than learned.
    pub is_static: bool,
    /// Time since it was learned or confirmed, ms (0 for a static one).
    pub age_ms: u64,
}

/// One record of a hand-over message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LocalRecord {
    /// A connection or template, whole.
    Conn(LocalConn),
    /// A connection went away: its in tuple.
    Remove(Tuple),
    /// A neighbour.
    Neigh(NeighRecord),
}

fn aw(v6: bool) -> usize {
    if v6 {
        16
    } else {
        4
    }
}

fn svc_parts(s: &SvcRef) -> (u8, u8, Addr, u16) {
    match *s {
        SvcRef::Vs { proto, vip, vport } => (SVC_VS, proto, vip, vport),
        SvcRef::Snat { proto } => (SVC_SNAT, proto, Addr::UNSPECIFIED, 0),
    }
}

/// Length and family bits of a record.
fn shape(r: &LocalRecord) -> Result<(usize, u8), EncodeError> {
    Ok(match r {
        LocalRecord::Conn(l) => {
            let c = &l.conn;
            let (_, _, saddr, _) = svc_parts(&c.svc);
            let in6 = side_v6(&[c.cip, c.vip, saddr])?;
            let out6 = side_v6(&[c.rip, c.lip, c.dest])?;
            let flow = if l.flow.is_some() { FLOW_EXT } else { 0 };
            let bits = (u8::from(in6) * FAM_IN6) | (u8::from(out6) * FAM_OUT6);
            let len = CONN_FIXED + 3 * aw(in6) + 3 * aw(out6) + LOCAL_EXT + flow;
            (len, bits)
        }
        LocalRecord::Remove(t) => {
            let in6 = side_v6(&[t.src, t.dst])?;
            (REMOVE_FIXED + 2 * aw(in6), u8::from(in6) * FAM_IN6)
        }
        LocalRecord::Neigh(n) => {
            let v6 = side_v6(&[n.addr])?;
            (NEIGH_FIXED + aw(v6), u8::from(v6) * FAM_IN6)
        }
    })
}

fn put_conn(p: &mut Put<'_>, l: &LocalConn, in6: bool, out6: bool) {
    let c = &l.conn;
    let (kind, sproto, saddr, sport) = svc_parts(&c.svc);
    for v in [c.proto, c.mode as u8, c.state, kind] {
        p.u8(v);
    }
    p.u16(c.flags);
    p.u16(sport);
    p.u32(c.timeout_ms);
    for v in [c.cport, c.vport, c.rport, c.lport, c.dest_port] {
        p.u16(v);
    }
    p.u8(sproto);
    p.u8(if l.flow.is_some() { OPT_FLOW } else { 0 });
    for a in [c.cip, c.vip, saddr] {
        p.addr(&a, in6);
    }
    for a in [c.rip, c.lip, c.dest] {
        p.addr(&a, out6);
    }
    p.u32(c.sp_seq);
    p.u32(c.sp_ts);
    p.u16(l.in_port);
    p.u16(l.out_port);
    p.bytes(&l.in_mac.0);
    p.u8(l.local_flags);
    p.u8(0);
    if let Some(f) = l.flow {
        for v in [f.age_ms, f.packets, f.bytes] {
            p.u64(v);
        }
    }
}

/// Writes one hand-over message into a caller's buffer, record by record,
/// without allocating (as [`super::Encoder`], in version [`VERSION_LOCAL`]).
#[derive(Debug)]
pub struct LocalEncoder<'b> {
    buf: &'b mut [u8],
    cap: usize,
    len: usize,
    count: u16,
    header: Header,
}

impl<'b> LocalEncoder<'b> {
    /// Starts a message in `buf`; its capacity is `buf.len()` (at most 65535).
    pub fn new(buf: &'b mut [u8], header: Header) -> Result<LocalEncoder<'b>, EncodeError> {
        let cap = buf.len().min(usize::from(u16::MAX));
        if cap < HEADER_LEN {
            return Err(EncodeError::BufferTooSmall);
        }
        Ok(LocalEncoder {
            buf,
            cap,
            len: HEADER_LEN,
            count: 0,
            header,
        })
    }

    /// Appends a record. [`EncodeError::Full`]: it does not fit; the message
    /// is unchanged (finish it and put the record in the next one).
    pub fn push(&mut self, r: &LocalRecord) -> Result<(), EncodeError> {
        let (n, bits) = shape(r)?;
        if self.count == u16::MAX {
            return Err(EncodeError::TooManyRecords);
        }
        if self.len + n > self.cap {
            return Err(EncodeError::Full);
        }
        let mut p = Put {
            b: &mut self.buf[self.len..self.len + n],
            at: 0,
        };
        let ty = match r {
            LocalRecord::Conn(_) => TY_LOCAL,
            LocalRecord::Remove(_) => TY_REMOVE,
            LocalRecord::Neigh(_) => TY_NEIGH,
        };
        p.u8(ty);
        p.u8(bits);
        p.u16(n as u16);
        let in6 = bits & FAM_IN6 != 0;
        match r {
            LocalRecord::Conn(l) => put_conn(&mut p, l, in6, bits & FAM_OUT6 != 0),
            LocalRecord::Remove(t) => {
                p.u8(t.proto);
                p.u8(0);
                p.u16(t.sport);
                p.u16(t.dport);
                p.u16(0);
                p.addr(&t.src, in6);
                p.addr(&t.dst, in6);
            }
            LocalRecord::Neigh(nr) => {
                p.u16(nr.port);
                p.u8(if nr.is_static {
                    NEIGH_STATIC
                } else {
                    NEIGH_LEARNED
                });
                p.u8(0);
                p.bytes(&nr.mac.0);
                p.u16(0);
                p.u64(nr.age_ms);
                p.addr(&nr.addr, in6);
            }
        }
        self.len += n;
        self.count += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// Writes the header and returns the message's length: send `buf[..len]`.
    pub fn finish(self) -> usize {
        put_header(self.buf, VERSION_LOCAL, self.len, self.count, &self.header);
        self.len
    }
}

impl Batch for LocalEncoder<'_> {
    type Rec = LocalRecord;
    fn add(&mut self, r: &LocalRecord) -> Result<(), EncodeError> {
        self.push(r)
    }
    fn len(&self) -> usize {
        self.count()
    }
    fn done(self) -> usize {
        self.finish()
    }
}

/// Writes as many of `records` as fit into one hand-over message in `buf`:
/// the message length and how many records it holds. Refuses a buffer that
/// cannot hold even the first record.
pub fn encode_local(
    buf: &mut [u8],
    header: Header,
    records: &[LocalRecord],
) -> Result<(usize, usize), EncodeError> {
    fill(LocalEncoder::new(buf, header)?, records)
}

/// A checked hand-over message: header and every record validated by
/// [`LocalMessage::parse`].
#[derive(Copy, Clone, Debug)]
pub struct LocalMessage<'a> {
    header: Header,
    count: u16,
    body: &'a [u8],
}

impl<'a> LocalMessage<'a> {
    /// Checks a whole hand-over message (version [`VERSION_LOCAL`]) that
    /// came from `source`: refused ([`DecodeError::LocalOnly`]) unless it is
    /// [`Source::Local`].
    pub fn parse(buf: &'a [u8], source: Source) -> Result<LocalMessage<'a>, DecodeError> {
        if source != Source::Local {
            return Err(DecodeError::LocalOnly);
        }
        let (header, count) = split_header(buf, |v| match v {
            VERSION_LOCAL => Ok(()),
            _ => Err(DecodeError::UnsupportedVersion(v)),
        })?;
        let msg = LocalMessage {
            header,
            count,
            body: &buf[HEADER_LEN..],
        };
        let mut at = 0;
        for index in 0..msg.count {
            at += decode(&msg.body[at..], index)?.1;
        }
        if at != msg.body.len() {
            return Err(DecodeError::TrailingBytes {
                records: msg.count,
                extra: msg.body.len() - at,
            });
        }
        Ok(msg)
    }

    /// The header (sync id, node, sequence number).
    pub fn header(&self) -> Header {
        self.header
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether the message carries no record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The records, in order.
    pub fn records(&self) -> LocalRecords<'a> {
        LocalRecords {
            body: self.body,
            index: 0,
            count: self.count,
        }
    }
}

/// Iterator over the records of a checked [`LocalMessage`].
#[derive(Clone, Debug)]
pub struct LocalRecords<'a> {
    body: &'a [u8],
    index: u16,
    count: u16,
}

impl Iterator for LocalRecords<'_> {
    type Item = LocalRecord;

    fn next(&mut self) -> Option<LocalRecord> {
        if self.index >= self.count {
            return None;
        }
        // Checked by `LocalMessage::parse`: cannot fail here.
        let (r, n) = decode(self.body, self.index).ok()?;
        self.body = self.body.get(n..)?;
        self.index += 1;
        Some(r)
    }
}

/// Decodes the record at the start of `b`: the record and its length.
fn decode(b: &[u8], index: u16) -> Result<(LocalRecord, usize), DecodeError> {
    let (ty, bits, len) = record_header(b)?;
    let (in6, out6) = (bits & FAM_IN6 != 0, bits & FAM_OUT6 != 0);
    let flow = match b.get(27) {
        Some(o) if ty == TY_LOCAL && o & OPT_FLOW != 0 => FLOW_EXT,
        _ => 0,
    };
    let (expected, allowed) = match ty {
        TY_LOCAL => (
            CONN_FIXED + 3 * aw(in6) + 3 * aw(out6) + LOCAL_EXT + flow,
            FAM_IN6 | FAM_OUT6,
        ),
        TY_REMOVE => (REMOVE_FIXED + 2 * aw(in6), FAM_IN6),
        TY_NEIGH => (NEIGH_FIXED + aw(in6), FAM_IN6),
        _ => return Err(DecodeError::BadRecordType { index, ty }),
    };
    let r = record_bytes(b, index, (ty, bits, len), expected, allowed)?;
    let field = |field, value: u32| DecodeError::BadField {
        index,
        field,
        value,
    };
    let rec = match ty {
        TY_REMOVE => {
            if r[5] != 0 || be16(r, 10) != 0 {
                return Err(field("reserved", u32::from(r[5]) | u32::from(be16(r, 10))));
            }
            let [cip, vip] = read_side::<2>(&r[REMOVE_FIXED..], in6, index, bits)?;
            LocalRecord::Remove(Tuple::new(r[4], cip, be16(r, 6), vip, be16(r, 8)))
        }
        TY_NEIGH => {
            let is_static = match r[6] {
                NEIGH_LEARNED => false,
                NEIGH_STATIC => true,
                k => return Err(field("neighbour kind", u32::from(k))),
            };
            if r[7] != 0 || be16(r, 14) != 0 {
                return Err(field("reserved", u32::from(r[7]) | u32::from(be16(r, 14))));
            }
            let [addr] = read_side::<1>(&r[NEIGH_FIXED..], in6, index, bits)?;
            LocalRecord::Neigh(NeighRecord {
                addr,
                mac: mac_at(r, 8),
                port: be16(r, 4),
                is_static,
                age_ms: be64(r, 16),
            })
        }
        _ => LocalRecord::Conn(decode_conn(r, in6, out6, index, bits)?),
    };
    Ok((rec, len))
}

fn mac_at(r: &[u8], at: usize) -> Mac {
    let mut m = [0u8; 6];
    if let Some(s) = r.get(at..at + 6) {
        m.copy_from_slice(s);
    }
    Mac(m)
}

fn decode_conn(
    r: &[u8],
    in6: bool,
    out6: bool,
    index: u16,
    bits: u8,
) -> Result<LocalConn, DecodeError> {
    let field = |field, value: u32| DecodeError::BadField {
        index,
        field,
        value,
    };
    let mode = mode_of(r[5]).ok_or(field("forwarding mode", u32::from(r[5])))?;
    if r[27] & !OPT_FLOW != 0 {
        return Err(field("options", u32::from(r[27])));
    }
    let [cip, vip, svc_addr] = read_side::<3>(&r[CONN_FIXED..], in6, index, bits)?;
    let in_w = aw(in6);
    let [rip, lip, dest] = read_side::<3>(&r[CONN_FIXED + 3 * in_w..], out6, index, bits)?;
    let x = CONN_FIXED + 3 * in_w + 3 * aw(out6);
    if r[x + 19] != 0 {
        return Err(field("reserved", u32::from(r[x + 19])));
    }
    let (svc_proto, svc_port) = (r[26], be16(r, 10));
    let svc = match r[7] {
        SVC_VS => SvcRef::Vs {
            proto: svc_proto,
            vip: svc_addr,
            vport: svc_port,
        },
        SVC_SNAT if svc_port == 0 && svc_addr == Addr::UNSPECIFIED => {
            SvcRef::Snat { proto: svc_proto }
        }
        SVC_SNAT => return Err(field("SNAT service key", u32::from(svc_port))),
        k => return Err(field("service kind", u32::from(k))),
    };
    let f = x + LOCAL_EXT;
    let flow = (r[27] & OPT_FLOW != 0).then(|| FlowState {
        age_ms: be64(r, f),
        packets: be64(r, f + 8),
        bytes: be64(r, f + 16),
    });
    let conn = SyncConn {
        proto: r[4],
        mode,
        state: r[6],
        flags: be16(r, 8),
        cip,
        cport: be16(r, 16),
        vip,
        vport: be16(r, 18),
        rip,
        rport: be16(r, 20),
        lip,
        lport: be16(r, 22),
        timeout_ms: be32(r, 12),
        svc,
        dest,
        dest_port: be16(r, 24),
        sp_seq: be32(r, x),
        sp_ts: be32(r, x + 4),
    };
    Ok(LocalConn {
        conn,
        in_port: be16(r, x + 8),
        out_port: be16(r, x + 10),
        in_mac: mac_at(r, x + 12),
        local_flags: r[x + 18],
        flow,
    })
}

//! The batching encoder of sync messages: writes records into a caller's
//! buffer, no allocation per record.

use super::msg::{
    Header, Record, SvcRef, SyncConn, CONN_FIXED, FAM_IN6, FAM_OUT6, HEADER_LEN, MAGIC,
    REMOVE_FIXED, RESYNC_LEN, SP_EXT, SVC_SNAT, SVC_VS, SYNC_FLAGS_V3, TY_CREATE, TY_REMOVE,
    TY_RESYNC, TY_UPDATE, VERSION,
};
use crate::addr::Addr;
use std::fmt;

/// Why a record or message could not be written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The buffer cannot hold the header, or not even one record.
    BufferTooSmall,
    /// The record does not fit in what is left of the message: send it and
    /// start the next one. Nothing was written.
    Full,
    /// IPv4 and IPv6 addresses on the same side of a connection.
    MixedFamily,
    /// 65535 records already.
    TooManyRecords,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::BufferTooSmall => "buffer too small for a sync message",
            EncodeError::Full => "sync message full",
            EncodeError::MixedFamily => "IPv4 and IPv6 addresses on one side of a connection",
            EncodeError::TooManyRecords => "too many records in one sync message",
        })
    }
}

impl std::error::Error for EncodeError {}

/// Whether a side made of these addresses is IPv6 (unset addresses do not count).
pub(super) fn side_v6(addrs: &[Addr]) -> Result<bool, EncodeError> {
    let set = || addrs.iter().filter(|a| !a.is_unspecified());
    let v6 = set().any(|a| !a.is_v4());
    if v6 && set().any(|a| a.is_v4()) {
        return Err(EncodeError::MixedFamily);
    }
    Ok(v6)
}

/// A cursor writing big-endian fields into a slice already checked to be
/// long enough.
pub(super) struct Put<'b> {
    pub(super) b: &'b mut [u8],
    pub(super) at: usize,
}

impl Put<'_> {
    pub(super) fn bytes(&mut self, s: &[u8]) {
        if let Some(d) = self.b.get_mut(self.at..self.at + s.len()) {
            d.copy_from_slice(s);
        }
        self.at += s.len();
    }
    pub(super) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    pub(super) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }
    pub(super) fn addr(&mut self, a: &Addr, v6: bool) {
        match (a.is_unspecified(), v6) {
            (true, true) => self.bytes(&[0; 16]),
            (true, false) => self.bytes(&[0; 4]),
            (false, _) => self.bytes(a.wire_bytes()),
        }
    }
}

/// Length and family bits of a record.
fn record_shape(r: &Record) -> Result<(usize, u8), EncodeError> {
    let aw = |v6: bool| if v6 { 16 } else { 4 };
    Ok(match r {
        Record::Create(c) | Record::Update(c) => {
            let svc_addr = match c.svc {
                SvcRef::Vs { vip, .. } => vip,
                SvcRef::Snat { .. } => Addr::UNSPECIFIED,
            };
            let in6 = side_v6(&[c.cip, c.vip, svc_addr])?;
            let out6 = side_v6(&[c.rip, c.lip, c.dest])?;
            let bits = (u8::from(in6) * FAM_IN6) | (u8::from(out6) * FAM_OUT6);
            (CONN_FIXED + 3 * aw(in6) + 3 * aw(out6) + c.ext_len(), bits)
        }
        Record::Remove(t) => {
            let in6 = side_v6(&[t.src, t.dst])?;
            (REMOVE_FIXED + 2 * aw(in6), u8::from(in6) * FAM_IN6)
        }
        Record::Resync { .. } => (RESYNC_LEN, 0),
    })
}

fn put_conn(p: &mut Put<'_>, c: &SyncConn, in6: bool, out6: bool) {
    let (kind, sproto, saddr, sport) = match c.svc {
        SvcRef::Vs { proto, vip, vport } => (SVC_VS, proto, vip, vport),
        SvcRef::Snat { proto } => (SVC_SNAT, proto, Addr::UNSPECIFIED, 0),
    };
    p.u8(c.proto);
    p.u8(c.mode as u8);
    p.u8(c.state);
    p.u8(kind);
    // SYN proxy window bits only with the SYN proxy flag.
    let fl = match c.is_synproxy() {
        true => c.flags & SYNC_FLAGS_V3,
        false => c.flags & SYNC_FLAGS_V3 & !crate::conn::flags::SP_WSCALE,
    };
    p.u16(fl);
    p.u16(sport);
    p.u32(c.timeout_ms);
    for v in [c.cport, c.vport, c.rport, c.lport, c.dest_port] {
        p.u16(v);
    }
    p.u8(sproto);
    p.u8(0);
    for a in [c.cip, c.vip, saddr] {
        p.addr(&a, in6);
    }
    for a in [c.rip, c.lip, c.dest] {
        p.addr(&a, out6);
    }
    match c.ext_len() {
        SP_EXT => {
            p.u32(c.sp_seq);
            p.u32(c.sp_ts);
        }
        0 => {}
        _ => p.u32(c.sp_ts),
    }
}

/// Writes one message into a caller's buffer, record by record, without
/// allocating. The message is as long as the buffer allows (give it the
/// path MTU minus the IP and UDP headers).
#[derive(Debug)]
pub struct Encoder<'b> {
    buf: &'b mut [u8],
    cap: usize,
    len: usize,
    count: u16,
    header: Header,
    /// The lowest version its records need ([`SyncConn::version`]).
    version: u8,
}

impl<'b> Encoder<'b> {
    /// Starts a message in `buf`; its capacity is `buf.len()` (at most 65535).
    pub fn new(buf: &'b mut [u8], header: Header) -> Result<Encoder<'b>, EncodeError> {
        let cap = buf.len().min(usize::from(u16::MAX));
        if cap < HEADER_LEN {
            return Err(EncodeError::BufferTooSmall);
        }
        Ok(Encoder {
            buf,
            cap,
            len: HEADER_LEN,
            count: 0,
            header,
            version: VERSION,
        })
    }

    /// Appends a record. [`EncodeError::Full`]: it does not fit; the message
    /// is unchanged (finish it and put the record in the next one).
    pub fn push(&mut self, r: &Record) -> Result<(), EncodeError> {
        let (n, bits) = record_shape(r)?;
        if self.count == u16::MAX {
            return Err(EncodeError::TooManyRecords);
        }
        if self.len + n > self.cap {
            return Err(EncodeError::Full);
        }
        let ty = match r {
            Record::Create(_) => TY_CREATE,
            Record::Update(_) => TY_UPDATE,
            Record::Remove(_) => TY_REMOVE,
            Record::Resync { .. } => TY_RESYNC,
        };
        let mut p = Put {
            b: &mut self.buf[self.len..self.len + n],
            at: 0,
        };
        p.u8(ty);
        p.u8(bits);
        p.u16(n as u16);
        match r {
            Record::Create(c) | Record::Update(c) => {
                put_conn(&mut p, c, bits & FAM_IN6 != 0, bits & FAM_OUT6 != 0)
            }
            Record::Remove(t) => {
                let in6 = bits & FAM_IN6 != 0;
                p.u8(t.proto);
                p.u8(0);
                p.u16(t.sport);
                p.u16(t.dport);
                p.u16(0);
                p.addr(&t.src, in6);
                p.addr(&t.dst, in6);
            }
            Record::Resync { from_seq } => p.u64(*from_seq),
        }
        self.len += n;
        self.count += 1;
        if let Record::Create(c) | Record::Update(c) = r {
            self.version = self.version.max(c.version());
        }
        Ok(())
    }

    /// Records written so far.
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// Writes the header and returns the message's length: send
    /// `buf[..len]`.
    pub fn finish(self) -> usize {
        put_header(self.buf, self.version, self.len, self.count, &self.header);
        self.len
    }
}

/// Writes a message header (any version) into the start of `buf`.
pub(super) fn put_header(buf: &mut [u8], version: u8, len: usize, count: u16, h: &Header) {
    let mut p = Put {
        b: &mut buf[..HEADER_LEN],
        at: 0,
    };
    p.bytes(&MAGIC);
    p.u8(version);
    p.u8(0);
    p.u16(len as u16);
    p.u32(h.sync_id);
    p.u32(h.node);
    p.u64(h.seq);
    p.u16(count);
    p.u16(0);
}

/// An encoder of one message: what [`fill`] needs of it.
pub(super) trait Batch {
    /// The record type it writes.
    type Rec;
    /// Appends one record.
    fn add(&mut self, r: &Self::Rec) -> Result<(), EncodeError>;
    /// Records written so far.
    fn len(&self) -> usize;
    /// Writes the header; the message's length.
    fn done(self) -> usize;
}

/// Writes as many of `records` as fit into `e`'s message: its length and
/// how many records it holds; refuses a buffer that cannot hold even the
/// first record.
pub(super) fn fill<B: Batch>(mut e: B, records: &[B::Rec]) -> Result<(usize, usize), EncodeError> {
    for r in records {
        match e.add(r) {
            Ok(()) => {}
            Err(EncodeError::Full | EncodeError::TooManyRecords) => break,
            Err(err) => return Err(err),
        }
    }
    if e.len() == 0 && !records.is_empty() {
        return Err(EncodeError::BufferTooSmall);
    }
    let n = e.len();
    Ok((e.done(), n))
}

impl Batch for Encoder<'_> {
    type Rec = Record;
    fn add(&mut self, r: &Record) -> Result<(), EncodeError> {
        self.push(r)
    }
    fn len(&self) -> usize {
        self.count()
    }
    fn done(self) -> usize {
        self.finish()
    }
}

/// Writes as many of `records` as fit into one message in `buf`: returns the
/// message length and how many records it holds (send the rest in the next
/// message, with the next sequence number). Refuses a buffer that cannot
/// hold even the first record.
pub fn encode(
    buf: &mut [u8],
    header: Header,
    records: &[Record],
) -> Result<(usize, usize), EncodeError> {
    fill(Encoder::new(buf, header)?, records)
}

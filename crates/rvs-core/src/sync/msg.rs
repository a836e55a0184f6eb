//! The sync message: header, records, errors and the checked decoder (the
//! encoder is in `encode.rs`). The layout is described in the module doc of
//! [`crate::sync`].

use std::fmt;

use crate::addr::Addr;
use crate::conn::{flags, FwdMode, Tuple};

/// First four bytes of every sync message.
pub const MAGIC: [u8; 4] = *b"RVSY";
/// The version this code writes, unless a message carries a SYN proxy
/// connection ([`VERSION_SYNPROXY`]) or a PROXY protocol one
/// ([`VERSION_PROXY`]).
pub const VERSION: u8 = 1;
/// The version of a message that carries a SYN proxy connection: version 1
/// plus the SYN proxy flags and shifts (see the module doc), so that peers
/// that only read version 1 keep working for everything else.
pub const VERSION_SYNPROXY: u8 = 2;
/// The version of a message that carries a PROXY protocol connection:
/// version 2 plus the PROXY protocol flags and the client's first sequence
/// number (see the module doc).
pub const VERSION_PROXY: u8 = 3;
/// The versions this code reads.
pub const SUPPORTED_VERSIONS: &[u8] = &[1, 2, 3];
/// Length of the message header.
pub const HEADER_LEN: usize = 28;
/// The connection flags a version 1 record carries; the others are local
/// to a worker.
pub const SYNC_FLAGS: u16 = flags::TEMPLATE | flags::NO_OUT_TUPLE | flags::TOA_SENT;
/// The connection flags a version 2 record carries: version 1's and the SYN
/// proxy's ([`flags::SYNPROXY`], [`flags::SP_WSCALE`]).
pub const SYNC_FLAGS_V2: u16 = SYNC_FLAGS | flags::SYNPROXY | flags::SP_WSCALE;
/// The connection flags a version 3 record carries: version 2's and the
/// PROXY protocol's ([`flags::PROXY_V1`], [`flags::PROXY_V2`], at most one).
pub const SYNC_FLAGS_V3: u16 = SYNC_FLAGS_V2 | PROXY_FLAGS;
/// Both PROXY protocol flags.
const PROXY_FLAGS: u16 = flags::PROXY_V1 | flags::PROXY_V2;
/// Bytes a SYN proxy connection's record adds (version 2).
pub(super) const SP_EXT: usize = 8;
/// Bytes a PROXY protocol connection's record adds when it is not also a
/// SYN proxy one (version 3): the client's first sequence number.
pub(super) const PP_EXT: usize = 4;

pub(super) const REC_HDR: usize = 4;
pub(super) const CONN_FIXED: usize = REC_HDR + 24;
pub(super) const REMOVE_FIXED: usize = REC_HDR + 8;
pub(super) const RESYNC_LEN: usize = REC_HDR + 8;
pub(super) const TY_CREATE: u8 = 1;
pub(super) const TY_UPDATE: u8 = 2;
pub(super) const TY_REMOVE: u8 = 3;
pub(super) const TY_RESYNC: u8 = 4;
pub(super) const FAM_IN6: u8 = 1;
pub(super) const FAM_OUT6: u8 = 2;
pub(super) const SVC_VS: u8 = 1;
pub(super) const SVC_SNAT: u8 = 2;

/// The message header fields a sender chooses (the version is [`VERSION`];
/// length and record count are filled in by the [`super::Encoder`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct Header {
    /// Sync id (ipvsadm's `--syncid`): receivers ignore messages of other ids.
    pub sync_id: u32,
    /// The sender's node id.
    pub node: u32,
    /// Sequence number of the message in the sender's stream (one per message).
    pub seq: u64,
}

/// Which service a synced connection belongs to, by configuration identity.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SvcRef {
    /// A virtual service `(proto, vip, vport)`.
    Vs {
        /// IP protocol of the service.
        proto: u8,
        /// Virtual address.
        vip: Addr,
        /// Virtual port.
        vport: u16,
    },
    /// A SNAT match service of this protocol; the receiver finds it by its
    /// dest (the WAN address) and its match.
    Snat {
        /// IP protocol of the service.
        proto: u8,
    },
}

/// A connection as it travels between nodes: keys, state, remaining timeout,
/// and the service and dest by identity.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SyncConn {
    /// IP protocol of the in tuple (255 for a persistence template).
    pub proto: u8,
    /// Forwarding mode.
    pub mode: FwdMode,
    /// Protocol state (a [`crate::conn::tcp::TcpState`] number for TCP).
    pub state: u8,
    /// Connection flags, within [`SYNC_FLAGS_V3`] (the version a record
    /// needs follows from them: [`SyncConn::version`]).
    pub flags: u16,
    /// Client address.
    pub cip: Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vip: Addr,
    /// Virtual port.
    pub vport: u16,
    /// Real-server address.
    pub rip: Addr,
    /// Real-server port.
    pub rport: u16,
    /// Local address (FNAT LIP, SNAT WAN address, NAT: the client).
    pub lip: Addr,
    /// Local port.
    pub lport: u16,
    /// Time left before the connection expires, ms.
    pub timeout_ms: u32,
    /// The service.
    pub svc: SvcRef,
    /// The dest's configured address.
    pub dest: Addr,
    /// The dest's configured port (0: the packet's port).
    pub dest_port: u16,
    /// With [`flags::SYNPROXY`]: the SYN proxy's sequence shift (or, while
    /// it waits for the real server, its cookie); see
    /// [`crate::conn::Conn::sp_seq`]. 0 otherwise.
    pub sp_seq: u32,
    /// With [`flags::PROXY_V1`] or [`flags::PROXY_V2`]: the client's
    /// sequence number of its first byte; otherwise with [`flags::SYNPROXY`]:
    /// the timestamp shift (or rvs's TSval while waiting); see
    /// [`crate::conn::Conn::sp_ts`]. 0 otherwise.
    pub sp_ts: u32,
}

impl SyncConn {
    /// Whether the record needs version 2 (a SYN proxy connection).
    pub fn is_synproxy(&self) -> bool {
        self.flags & flags::SYNPROXY != 0
    }

    /// Whether the record needs version 3 (a PROXY protocol connection).
    pub fn is_proxy(&self) -> bool {
        self.flags & PROXY_FLAGS != 0
    }

    /// The lowest format version that carries this connection.
    pub fn version(&self) -> u8 {
        match (self.is_proxy(), self.is_synproxy()) {
            (true, _) => VERSION_PROXY,
            (false, true) => VERSION_SYNPROXY,
            (false, false) => VERSION,
        }
    }

    /// Bytes its record carries after the addresses: the SYN proxy's shifts
    /// (the second one is the PROXY protocol's first sequence number when
    /// both are on, as in [`crate::conn::Conn::sp_ts`]), or the PROXY
    /// protocol's first sequence number alone, or nothing.
    pub(super) fn ext_len(&self) -> usize {
        ext_len(self.flags)
    }

    /// The key of packets from the client: `(proto, cip:cport -> vip:vport)`.
    pub fn in_tuple(&self) -> Tuple {
        Tuple::new(self.proto, self.cip, self.cport, self.vip, self.vport)
    }
}

/// One record of a message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A new connection.
    Create(SyncConn),
    /// A connection changed state (full contents, so that a receiver that
    /// missed the creation can install it).
    Update(SyncConn),
    /// A connection went away; its in tuple.
    Remove(Tuple),
    /// The receiver lost the stream at this sequence number and asks for a
    /// full dump.
    Resync {
        /// First sequence number missed.
        from_seq: u64,
    },
}

/// Why a message was refused. Decoding never panics.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the part being read needs.
    Truncated {
        /// The part being read.
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes there were.
        have: usize,
    },
    /// The first four bytes are not [`MAGIC`].
    BadMagic([u8; 4]),
    /// A version this code does not read.
    UnsupportedVersion(u8),
    /// The header's length is not the datagram's length.
    LengthMismatch {
        /// Length in the header.
        header: usize,
        /// Bytes received.
        actual: usize,
    },
    /// A reserved header byte is not zero.
    Reserved {
        /// Its offset.
        offset: usize,
    },
    /// An unknown record type.
    BadRecordType {
        /// Record number (0-based).
        index: u16,
        /// The type byte.
        ty: u8,
    },
    /// A record's length does not match its type and address families.
    RecordLength {
        /// Record number.
        index: u16,
        /// Its type.
        ty: u8,
        /// The length its type and families call for.
        expected: usize,
        /// The length it says.
        found: usize,
    },
    /// Address-family bits that the record type does not allow, or an IPv6
    /// field holding an IPv4-mapped address, or an IPv6 side without an
    /// IPv6 address.
    BadFamily {
        /// Record number.
        index: u16,
        /// The family byte.
        bits: u8,
    },
    /// A field out of its range (mode, service kind, flags, reserved bytes).
    BadField {
        /// Record number.
        index: u16,
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: u32,
    },
    /// Bytes left after the announced records.
    TrailingBytes {
        /// Records announced.
        records: u16,
        /// Bytes after them.
        extra: usize,
    },
    /// A version 4 message (a hand-over's [`super::LocalRecord`]s) where
    /// only network versions are accepted: such records come from a local
    /// stream of this host's rvsd, never from a peer.
    LocalOnly,
    /// A message in a higher version than its records need (version 2
    /// without a SYN proxy connection, version 3 without a PROXY protocol
    /// one): senders write the lowest version their records need, so that
    /// every message has one encoding.
    NeedlessVersion {
        /// The message's version.
        version: u8,
        /// The version its records need.
        needed: u8,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Truncated { what, need, have } => {
                write!(f, "sync message truncated in the {what}: need {need} bytes, have {have}")
            }
            DecodeError::BadMagic(m) => write!(f, "not a sync message: bad magic {m:02x?}"),
            DecodeError::UnsupportedVersion(v) => write!(
                f,
                "sync message version {v} not supported (this rvs reads versions {SUPPORTED_VERSIONS:?})"
            ),
            DecodeError::LengthMismatch { header, actual } => write!(
                f,
                "sync message length mismatch: header says {header} bytes, received {actual}"
            ),
            DecodeError::Reserved { offset } => {
                write!(f, "sync message header byte {offset} is reserved and must be 0")
            }
            DecodeError::BadRecordType { index, ty } => {
                write!(f, "sync record {index}: unknown record type {ty}")
            }
            DecodeError::RecordLength { index, ty, expected, found } => write!(
                f,
                "sync record {index} (type {ty}): length {found}, expected {expected}"
            ),
            DecodeError::BadFamily { index, bits } => {
                write!(f, "sync record {index}: bad address families (bits {bits:#x})")
            }
            DecodeError::BadField { index, field, value } => {
                write!(f, "sync record {index}: bad {field} {value}")
            }
            DecodeError::TrailingBytes { records, extra } => {
                write!(f, "sync message has {extra} bytes after its {records} records")
            }
            DecodeError::LocalOnly => f.write_str(
                "sync message version 4 (hand-over records) is accepted only on a local stream, never from the network",
            ),
            DecodeError::NeedlessVersion { version, needed } => write!(
                f,
                "sync message version {version} carries no connection that needs it (it must be version {needed})"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

// ---------------------------------------------------------------- decoding

/// A checked sync message: the header and all records were validated by
/// [`Message::parse`], so reading them cannot fail afterwards.
#[derive(Copy, Clone, Debug)]
pub struct Message<'a> {
    header: Header,
    version: u8,
    count: u16,
    body: &'a [u8],
}

pub(super) fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

pub(super) fn be32(b: &[u8], at: usize) -> u32 {
    (u32::from(be16(b, at)) << 16) | u32::from(be16(b, at + 2))
}

pub(super) fn be64(b: &[u8], at: usize) -> u64 {
    (u64::from(be32(b, at)) << 32) | u64::from(be32(b, at + 4))
}

impl<'a> Message<'a> {
    /// Checks a whole datagram: header, every record, nothing left over.
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        let (header, count) = split_header(buf, |version| {
            if version == super::local::VERSION_LOCAL {
                return Err(DecodeError::LocalOnly);
            }
            if !SUPPORTED_VERSIONS.contains(&version) {
                return Err(DecodeError::UnsupportedVersion(version));
            }
            Ok(())
        })?;
        let version = buf[4];
        let msg = Message {
            header,
            version,
            count,
            body: &buf[HEADER_LEN..],
        };
        let mut at = 0;
        let mut needed = VERSION;
        for index in 0..msg.count {
            let (r, n) = decode_record(&msg.body[at..], index, version)?;
            if let Record::Create(c) | Record::Update(c) = r {
                needed = needed.max(c.version());
            }
            at += n;
        }
        if at != msg.body.len() {
            return Err(DecodeError::TrailingBytes {
                records: msg.count,
                extra: msg.body.len() - at,
            });
        }
        if version > needed {
            return Err(DecodeError::NeedlessVersion { version, needed });
        }
        Ok(msg)
    }

    /// The header (sync id, node, sequence number).
    pub fn header(&self) -> Header {
        self.header
    }

    /// The format version the message was written in.
    pub fn version(&self) -> u8 {
        self.version
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
    pub fn records(&self) -> Records<'a> {
        Records {
            body: self.body,
            index: 0,
            count: self.count,
            version: self.version,
        }
    }
}

/// Iterator over the records of a checked [`Message`].
#[derive(Clone, Debug)]
pub struct Records<'a> {
    body: &'a [u8],
    index: u16,
    count: u16,
    version: u8,
}

impl Iterator for Records<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.index >= self.count {
            return None;
        }
        // Checked by `Message::parse`: cannot fail here.
        let (r, n) = decode_record(self.body, self.index, self.version).ok()?;
        self.body = self.body.get(n..)?;
        self.index += 1;
        Some(r)
    }
}

pub(super) fn mode_of(v: u8) -> Option<FwdMode> {
    Some(match v {
        0 => FwdMode::Fnat,
        1 => FwdMode::Dr,
        2 => FwdMode::Tunnel,
        3 => FwdMode::Nat,
        4 => FwdMode::Snat,
        _ => return None,
    })
}

/// Reads `n` addresses of one side: 4 bytes each for IPv4, 16 for IPv6.
/// An IPv6 side must hold at least one IPv6 address and no IPv4-mapped one,
/// so that every accepted record has exactly one encoding.
pub(super) fn read_side<const N: usize>(
    b: &[u8],
    v6: bool,
    index: u16,
    bits: u8,
) -> Result<[Addr; N], DecodeError> {
    let mut out = [Addr::UNSPECIFIED; N];
    let w = if v6 { 16 } else { 4 };
    let bad = DecodeError::BadFamily { index, bits };
    let mut any = false;
    for (i, a) in out.iter_mut().enumerate() {
        let s = b.get(i * w..(i + 1) * w).ok_or(bad)?;
        if s.iter().all(|&x| x == 0) {
            continue;
        }
        *a = if v6 {
            let mut x = [0u8; 16];
            x.copy_from_slice(s);
            let a = Addr::from_v6_bytes(x);
            if a.is_v4() {
                return Err(bad);
            }
            a
        } else {
            Addr::from_v4_bytes([s[0], s[1], s[2], s[3]])
        };
        any = true;
    }
    if v6 && !any {
        return Err(bad);
    }
    Ok(out)
}

/// The connection flags a record of a message of `version` may carry.
fn flags_of(version: u8) -> u16 {
    match version {
        VERSION_PROXY.. => SYNC_FLAGS_V3,
        VERSION_SYNPROXY => SYNC_FLAGS_V2,
        _ => SYNC_FLAGS,
    }
}

/// Bytes after the addresses of a record with these (allowed) flags.
fn ext_len(fl: u16) -> usize {
    match (fl & flags::SYNPROXY != 0, fl & PROXY_FLAGS != 0) {
        (true, _) => SP_EXT,
        (false, true) => PP_EXT,
        (false, false) => 0,
    }
}

/// A record's type, family bits and length, from the header at the start of `b`.
pub(super) fn record_header(b: &[u8]) -> Result<(u8, u8, usize), DecodeError> {
    if b.len() < REC_HDR {
        return Err(DecodeError::Truncated {
            what: "record header",
            need: REC_HDR,
            have: b.len(),
        });
    }
    Ok((b[0], b[1], usize::from(be16(b, 2))))
}

/// The checks every record shares once its type gave the length it must
/// have (`expected`) and the family bits it may carry (`allowed`): its bytes.
pub(super) fn record_bytes(
    b: &[u8],
    index: u16,
    (ty, bits, len): (u8, u8, usize),
    expected: usize,
    allowed: u8,
) -> Result<&[u8], DecodeError> {
    if bits & !allowed != 0 {
        return Err(DecodeError::BadFamily { index, bits });
    }
    if len != expected {
        return Err(DecodeError::RecordLength {
            index,
            ty,
            expected,
            found: len,
        });
    }
    b.get(..len).ok_or(DecodeError::Truncated {
        what: "record",
        need: len,
        have: b.len(),
    })
}

/// Decodes the record at the start of `b` (in a message of `version`): the
/// record and its length.
fn decode_record(b: &[u8], index: u16, version: u8) -> Result<(Record, usize), DecodeError> {
    let (ty, bits, len) = record_header(b)?;
    let in6 = bits & FAM_IN6 != 0;
    let out6 = bits & FAM_OUT6 != 0;
    let aw = |v6: bool| if v6 { 16 } else { 4 };
    // A SYN proxy or PROXY protocol connection's record has its shifts at
    // the end (flags the version does not have are refused below).
    let ext = ext_len(be16(b, 8) & flags_of(version));
    let (expected, allowed) = match ty {
        TY_CREATE | TY_UPDATE => (
            CONN_FIXED + 3 * aw(in6) + 3 * aw(out6) + ext,
            FAM_IN6 | FAM_OUT6,
        ),
        TY_REMOVE => (REMOVE_FIXED + 2 * aw(in6), FAM_IN6),
        TY_RESYNC => (RESYNC_LEN, 0),
        _ => return Err(DecodeError::BadRecordType { index, ty }),
    };
    let r = record_bytes(b, index, (ty, bits, len), expected, allowed)?;
    let field = |field, value: u32| DecodeError::BadField {
        index,
        field,
        value,
    };
    let rec = match ty {
        TY_RESYNC => Record::Resync {
            from_seq: be64(r, 4),
        },
        TY_REMOVE => {
            if r[5] != 0 || be16(r, 10) != 0 {
                return Err(field("reserved", u32::from(r[5]) | u32::from(be16(r, 10))));
            }
            let [cip, vip] = read_side::<2>(&r[REMOVE_FIXED..], in6, index, bits)?;
            Record::Remove(Tuple::new(r[4], cip, be16(r, 6), vip, be16(r, 8)))
        }
        _ => {
            let c = decode_conn(r, in6, out6, index, bits, flags_of(version))?;
            if ty == TY_CREATE {
                Record::Create(c)
            } else {
                Record::Update(c)
            }
        }
    };
    Ok((rec, len))
}

fn decode_conn(
    r: &[u8],
    in6: bool,
    out6: bool,
    index: u16,
    bits: u8,
    allowed: u16,
) -> Result<SyncConn, DecodeError> {
    let field = |field, value: u32| DecodeError::BadField {
        index,
        field,
        value,
    };
    let mode = mode_of(r[5]).ok_or(field("forwarding mode", u32::from(r[5])))?;
    let fl = be16(r, 8);
    let sp = fl & flags::SYNPROXY != 0;
    let both_proxy = fl & PROXY_FLAGS == PROXY_FLAGS;
    if fl & !allowed != 0 || (!sp && fl & flags::SP_WSCALE != 0) || both_proxy {
        return Err(field("flags", u32::from(fl)));
    }
    if r[27] != 0 {
        return Err(field("reserved", u32::from(r[27])));
    }
    let in_w = if in6 { 16 } else { 4 };
    let [cip, vip, svc_addr] = read_side::<3>(&r[CONN_FIXED..], in6, index, bits)?;
    let out_w = if out6 { 16 } else { 4 };
    let [rip, lip, dest] = read_side::<3>(&r[CONN_FIXED + 3 * in_w..], out6, index, bits)?;
    let ext = CONN_FIXED + 3 * in_w + 3 * out_w;
    let (sp_seq, sp_ts) = match ext_len(fl) {
        SP_EXT => (be32(r, ext), be32(r, ext + 4)),
        PP_EXT => (0, be32(r, ext)),
        _ => (0, 0),
    };
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
    Ok(SyncConn {
        proto: r[4],
        mode,
        state: r[6],
        flags: fl,
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
        sp_seq,
        sp_ts,
    })
}

/// Checks a message's fixed header in wire order (length, magic, the
/// version by `version_ok`, reserved bytes, length field) and returns it
/// with the record count: shared by the network and hand-over decoders.
pub(super) fn split_header(
    buf: &[u8],
    version_ok: impl Fn(u8) -> Result<(), DecodeError>,
) -> Result<(Header, u16), DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated {
            what: "header",
            need: HEADER_LEN,
            have: buf.len(),
        });
    }
    let magic = [buf[0], buf[1], buf[2], buf[3]];
    if magic != MAGIC {
        return Err(DecodeError::BadMagic(magic));
    }
    version_ok(buf[4])?;
    for offset in [5, 26, 27] {
        if buf[offset] != 0 {
            return Err(DecodeError::Reserved { offset });
        }
    }
    let len = usize::from(be16(buf, 6));
    if len > buf.len() {
        return Err(DecodeError::Truncated {
            what: "message",
            need: len,
            have: buf.len(),
        });
    }
    if len != buf.len() || len < HEADER_LEN {
        return Err(DecodeError::LengthMismatch {
            header: len,
            actual: buf.len(),
        });
    }
    let header = Header {
        sync_id: be32(buf, 8),
        node: be32(buf, 12),
        seq: be64(buf, 16),
    };
    Ok((header, be16(buf, 24)))
}

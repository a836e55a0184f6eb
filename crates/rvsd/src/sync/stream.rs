//! The pure parts of the sync stream: packing records into numbered
//! messages ([`Packer`]), following a peer's sequence numbers
//! ([`Streams`]), and choosing the worker a record belongs to
//! ([`route`]).

use std::collections::HashMap;

use rvs_core::conn::{flags, FwdMode};
use rvs_core::sync::{owner_worker, DecodeError, EncodeError, Encoder, Header, Record};

/// Numbers and packs records into messages of at most a buffer's size.
#[derive(Debug)]
pub struct Packer {
    /// Sync id written in every header.
    pub sync_id: u32,
    /// This node's id.
    pub node: u32,
    /// Sequence number of the next message (the first is 1).
    pub next_seq: u64,
}

/// What one [`Packer::pack`] call did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Packed {
    /// Messages handed to `send`.
    pub msgs: u64,
    /// Records in them.
    pub records: u64,
    /// Records that cannot be encoded (e.g. mixed address families), skipped.
    pub refused: u64,
}

impl Packer {
    /// A packer whose first message has sequence number 1.
    pub fn new(sync_id: u8, node: u32) -> Packer {
        Packer {
            sync_id: u32::from(sync_id),
            node,
            next_seq: 1,
        }
    }

    fn header(&self) -> Header {
        Header {
            sync_id: self.sync_id,
            node: self.node,
            seq: self.next_seq,
        }
    }

    /// Writes `records` into as few messages as `buf` allows, each with the
    /// next sequence number, and hands each to `send`.
    pub fn pack(
        &mut self,
        records: &[Record],
        buf: &mut [u8],
        mut send: impl FnMut(&[u8]),
    ) -> Packed {
        let mut out = Packed::default();
        let mut i = 0;
        while i < records.len() {
            let hdr = self.header();
            let Ok(mut enc) = Encoder::new(buf, hdr) else {
                out.refused += (records.len() - i) as u64;
                return out;
            };
            while let Some(r) = records.get(i) {
                match enc.push(r) {
                    Ok(()) => i += 1,
                    Err(EncodeError::Full | EncodeError::TooManyRecords) if enc.count() > 0 => {
                        break
                    }
                    Err(_) => {
                        out.refused += 1;
                        i += 1;
                    }
                }
            }
            let n = enc.count() as u64;
            if n == 0 {
                continue;
            }
            let len = enc.finish();
            send(&buf[..len]);
            self.next_seq += 1;
            out.msgs += 1;
            out.records += n;
        }
        out
    }
}

/// What the receiver does with a message, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Apply it.
    Accept {
        /// Messages were lost since the previous one of this stream.
        gap: bool,
        /// Ask the sender for a full dump, from this sequence number: after
        /// a gap, or on the first message of a stream that started earlier
        /// than we listened (at most once per [`RESYNC_INTERVAL_MS`]).
        resync: Option<u64>,
    },
    /// Another sync id: ignored.
    OtherSyncId,
    /// This node's own message: ignored.
    Own,
}

/// How often a Resync may be asked of one sender, ms.
pub const RESYNC_INTERVAL_MS: u64 = 500;

#[derive(Debug, Clone, Copy)]
struct Stream {
    last_seq: u64,
    last_resync_ms: Option<u64>,
}

/// The receiver's view of each sender's stream.
#[derive(Debug)]
pub struct Streams {
    sync_id: u32,
    node: u32,
    streams: HashMap<u32, Stream>,
}

impl Streams {
    /// Follows the streams of sync id `sync_id`, ignoring node `node` (us).
    pub fn new(sync_id: u8, node: u32) -> Streams {
        Streams {
            sync_id: u32::from(sync_id),
            node,
            streams: HashMap::new(),
        }
    }

    /// This node's id.
    pub fn node(&self) -> u32 {
        self.node
    }

    /// Looks at a message's header. A sender whose numbers go backwards
    /// restarted: its stream is followed anew. Resync requests are asked at
    /// most once per [`RESYNC_INTERVAL_MS`] per sender.
    pub fn on_header(&mut self, h: &Header, now_ms: u64) -> Verdict {
        if h.sync_id != self.sync_id {
            return Verdict::OtherSyncId;
        }
        if h.node == self.node {
            return Verdict::Own;
        }
        let st = self.streams.entry(h.node).or_insert(Stream {
            last_seq: 0,
            last_resync_ms: None,
        });
        let (missed, gap) = if h.seq <= st.last_seq {
            // A restarted sender (or a duplicate): follow it from here.
            (h.seq > 1, false)
        } else {
            let missed = h.seq > st.last_seq + 1;
            (missed, missed && st.last_seq != 0)
        };
        let from_seq = if h.seq <= st.last_seq {
            1
        } else {
            st.last_seq + 1
        };
        st.last_seq = h.seq;
        let due = st
            .last_resync_ms
            .is_none_or(|t| now_ms >= t + RESYNC_INTERVAL_MS);
        let resync = (missed && due).then_some(from_seq);
        if resync.is_some() {
            st.last_resync_ms = Some(now_ms);
        }
        Verdict::Accept { gap, resync }
    }
}

/// Which workers a received record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// This worker.
    One(u16),
    /// Every worker (a removal names only the in tuple; the worker that has
    /// the connection removes it, the others find nothing).
    All,
    /// None (a Resync request is the sync thread's business).
    Sender,
}

/// The worker that owns a record's connection on this node: FNAT and SNAT
/// connections by their local port (`lport % workers`, as the port pools
/// and the steering do), the others by the client-side key the I/O steering
/// uses (`(cip ^ cport) % workers`, low 32 bits of an IPv6 address).
pub fn route(r: &Record, workers: u16) -> Target {
    let w = workers.max(1);
    match r {
        Record::Create(c) | Record::Update(c) => {
            let template = c.flags & flags::TEMPLATE != 0;
            if !template && matches!(c.mode, FwdMode::Fnat | FwdMode::Snat) {
                return Target::One(owner_worker(c.lport, w));
            }
            let key = (c.cip.as_u128() as u32) ^ u32::from(c.cport);
            Target::One((key % u32::from(w)) as u16)
        }
        Record::Remove(_) => Target::All,
        Record::Resync { .. } => Target::Sender,
    }
}

/// Names of decode errors, as counted.
pub const DECODE_ERRORS: [&str; 12] = [
    "truncated",
    "bad_magic",
    "unsupported_version",
    "length_mismatch",
    "reserved",
    "bad_record_type",
    "record_length",
    "bad_family",
    "bad_field",
    "trailing_bytes",
    "needless_version",
    "local_only",
];

/// Index of a decode error in [`DECODE_ERRORS`].
pub fn decode_error_index(e: &DecodeError) -> usize {
    match e {
        DecodeError::Truncated { .. } => 0,
        DecodeError::BadMagic(_) => 1,
        DecodeError::UnsupportedVersion(_) => 2,
        DecodeError::LengthMismatch { .. } => 3,
        DecodeError::Reserved { .. } => 4,
        DecodeError::BadRecordType { .. } => 5,
        DecodeError::RecordLength { .. } => 6,
        DecodeError::BadFamily { .. } => 7,
        DecodeError::BadField { .. } => 8,
        DecodeError::TrailingBytes { .. } => 9,
        DecodeError::NeedlessVersion { .. } => 10,
        // A hand-over message (version 4) on the network: never accepted.
        DecodeError::LocalOnly => 11,
    }
}

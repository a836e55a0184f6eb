//! Connection sync: the message format that carries connection creations,
//! state changes and removals from one rvs node to another (a backup, an
//! active ECMP peer, a hot-upgrade successor), and its encoder and decoder.
//!
//! Pure code: no I/O, no allocation. The daemon sends the bytes (UDP
//! multicast or unicast, or a stream); the workers produce and consume the
//! records ([`crate::pipeline::Worker::drain_sync`],
//! [`crate::pipeline::Worker::install_synced`]).
//!
//! # Lineage
//! LVS's sync daemon (protocol version 1) sends datagrams made of a small
//! header (sync id, size, connection count, version) and one entry per
//! connection: protocol, ports (client, virtual, destination), addresses,
//! flags (forwarding method, template), state, remaining timeout and fwmark,
//! IPv4 or IPv6 per entry. rvs keeps that shape and adds what FNAT and SNAT
//! need and what a reliable stream needs:
//! - the out tuple (local address and port, real-server address and port):
//!   the local port must be the *same* on the backup so that the real server's
//!   replies to `LIP:lport` still match;
//! - the service and dest by their configuration identity (service key
//!   `(proto, vip, vport)` and dest `(addr, port)`), never worker-local slot
//!   numbers: a backup with the same configuration resolves them to its own;
//! - a sender node id and a per-stream sequence number in every message, so
//!   that loss is detected, and a [`Record::Resync`] request that asks the
//!   sender for a full dump;
//! - timeouts in milliseconds (LVS: seconds).
//!
//! # Format, version 1 (all integers big-endian)
//! Header, [`HEADER_LEN`] = 28 bytes:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 4 | magic `"RVSY"` |
//! | 4  | 1 | version (1) |
//! | 5  | 1 | reserved, 0 |
//! | 6  | 2 | total length of the message, header included |
//! | 8  | 4 | sync id (`--syncid`): receivers ignore other ids |
//! | 12 | 4 | sender node id |
//! | 16 | 8 | sequence number of this message in the sender's stream |
//! | 24 | 2 | number of records |
//! | 26 | 2 | reserved, 0 |
//!
//! Then the records, each with a 4-byte record header: type (u8), family
//! bits (u8: bit 0 = the in side is IPv6, bit 1 = the out side is IPv6),
//! record length (u16, record header included). An address takes 4 bytes
//! on an IPv4 side and 16 on an IPv6 side; all zeros means "none".
//!
//! [`Record::Create`] (type 1) and [`Record::Update`] (type 2), 24 bytes
//! then six addresses:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 4  | 1 | IP protocol (255 for a persistence template) |
//! | 5  | 1 | forwarding mode: 0 FNAT, 1 DR, 2 TUNNEL, 3 NAT, 4 SNAT |
//! | 6  | 1 | protocol state (a TCP state number for TCP) |
//! | 7  | 1 | service kind: 1 virtual service, 2 SNAT match service |
//! | 8  | 2 | connection flags ([`SYNC_FLAGS`]: template, in-only, TOA sent; more in versions 2 and 3) |
//! | 10 | 2 | service port (vport of the service key; 0 for SNAT) |
//! | 12 | 4 | remaining timeout, ms |
//! | 16 | 2 | cport |
//! | 18 | 2 | vport |
//! | 20 | 2 | rport |
//! | 22 | 2 | lport |
//! | 24 | 2 | dest port (as configured, 0 = the packet's port) |
//! | 26 | 1 | service protocol |
//! | 27 | 1 | reserved, 0 |
//! | 28 | in | cip, vip, service address (in side; 0 for SNAT) |
//! | .. | out | rip, lip, dest address (out side) |
//!
//! [`Record::Remove`] (type 3): protocol (u8), reserved (u8), cport, vport,
//! reserved (u16), then cip and vip (in side): the in tuple of the conn.
//!
//! [`Record::Resync`] (type 4): the sequence number (u64) from which the
//! receiver lost the stream; the sender answers with a full dump.
//!
//! # Version 2: SYN proxy connections
//! A connection made by the SYN proxy ([`crate::conn::flags::SYNPROXY`])
//! needs its sequence and timestamp shifts on the receiver, or the peer
//! could not translate its packets. Version 2 is version 1 with:
//! - two more connection flags in Create and Update records: SYNPROXY
//!   (`0x0100`) and the SYN proxy's window-scale field (`0x1e00`, only with
//!   SYNPROXY);
//! - a record with SYNPROXY set ends with 8 more bytes, after the
//!   addresses: the sequence shift (u32) and the timestamp shift (u32), as
//!   [`crate::conn::Conn::sp_seq`] and [`crate::conn::Conn::sp_ts`] hold
//!   them (while the proxy waits for the real server: its cookie and TSval).
//!
//! A sender writes version 1 unless the message carries a SYN proxy
//! connection: peers that only read version 1 keep getting every other
//! connection, and refuse (and count) only the messages they could not
//! use anyway.
//!
//! # Version 3: PROXY protocol connections
//! A connection of a `--proxy-protocol` service ([`crate::conn::flags::PROXY_V1`]
//! or [`crate::conn::flags::PROXY_V2`]) shifts the client's sequence numbers
//! by its header's length from the client's first byte on: the receiver
//! needs the version and that first sequence number, or the real server
//! would see the stream without the header's room. Version 3 is version 2
//! with:
//! - two more connection flags: PROXY_V1 (`0x2000`) and PROXY_V2
//!   (`0x4000`), at most one of them;
//! - a record with one of them and without SYNPROXY ends with 4 more bytes,
//!   after the addresses: the client's sequence number of its first byte
//!   (the header's length follows from the version and the in tuple);
//! - a record with one of them and SYNPROXY ends with version 2's 8 bytes,
//!   the second field holding that first sequence number instead of a
//!   timestamp shift (such a connection negotiates no timestamps), as
//!   [`crate::conn::Conn::sp_ts`] does.
//!
//! Every message is written in the lowest version its records need (3 with
//! a PROXY protocol connection, else 2 with a SYN proxy one, else 1); a
//! message in a higher one is refused ([`DecodeError::NeedlessVersion`]).
//! A peer that reads only versions 1 and 2 refuses (and counts) the
//! messages with PROXY protocol connections; failing over such connections
//! to it would break their streams anyway.
//!
//! A receiver refuses a message whose version it does not speak
//! ([`DecodeError::UnsupportedVersion`] names the versions it does); a new
//! version gets a new number, and senders keep sending the old one until
//! every peer is upgraded.
//!
//! # Version 4: hand-over records (local streams only)
//! A successor process on the same host (hot upgrade, warm standby) needs
//! a connection whole: every flag, the fast path's bits, the ports and the
//! previous hop it was seen on, the flow log's counters; and the
//! neighbours. Version 4 ([`local`]) carries them as [`LocalRecord`]s. Its
//! messages are decoded only by [`LocalMessage::parse`] with
//! [`Source::Local`]; [`Message::parse`], the network's decoder, refuses
//! them ([`DecodeError::LocalOnly`]). Versions 1 to 3 are unchanged.
//!
//! # Local ports and workers
//! FNAT and SNAT local ports are owned by worker `lport % workers`
//! ([`crate::sapool`]): a synced connection must land on that worker of the
//! receiver, and the receiver must run the **same number of workers** as the
//! sender, or the real server's replies would be steered to a worker that
//! does not know the connection. (Remapping would mean rewriting the local
//! port, which the real server already knows: it cannot be done for live
//! connections.) The daemon routes each record to worker
//! [`owner_worker`]`(lport, workers)` for FNAT/SNAT and to the worker its RSS
//! steering picks for the in tuple otherwise.

mod encode;
pub mod local;
mod msg;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_local;

pub use encode::{encode, EncodeError, Encoder};
pub use msg::{
    DecodeError, Header, Message, Record, Records, SvcRef, SyncConn, HEADER_LEN, MAGIC,
    SUPPORTED_VERSIONS, SYNC_FLAGS, SYNC_FLAGS_V2, SYNC_FLAGS_V3, VERSION, VERSION_PROXY,
    VERSION_SYNPROXY,
};

pub use local::{
    encode_local, FlowState, LocalConn, LocalEncoder, LocalMessage, LocalRecord, NeighRecord,
    Source, VERSION_LOCAL,
};

pub use crate::sapool::owner_worker;

//! Slow Protocols PDUs of IEEE 802.1AX: the LACPDU (subtype 1) and the
//! Marker PDU (subtype 2), as `wire`-style views over the 110 bytes that
//! follow the Ethernet header, plus builders of whole 124-byte frames.
//!
//! LACPDU layout (offsets from the subtype byte): subtype 1, version 1;
//! actor TLV (type 1, length 20) at 2; partner TLV (type 2, length 20) at 22;
//! collector TLV (type 3, length 16) at 42; terminator (type 0, length 0) at
//! 58; 50 reserved bytes. Marker PDU: subtype 2, version 1; a Marker
//! Information (type 1) or Marker Response (type 2) TLV of length 16
//! (requester port 2, requester system 6, transaction id 4, pad 2);
//! terminator; 90 reserved bytes.

use core::fmt;

use crate::wire::{rd16, rd32, rd8, rd_arr, wr16, wr8, wr_bytes};

/// The Slow Protocols ethertype.
pub const ETHERTYPE: u16 = 0x8809;
/// The Slow Protocols multicast destination `01:80:c2:00:00:02`.
pub const DST_MAC: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x02];
/// Slow Protocols subtype of LACP.
pub const SUBTYPE_LACP: u8 = 1;
/// Slow Protocols subtype of the Marker protocol.
pub const SUBTYPE_MARKER: u8 = 2;
/// Length of a LACPDU or Marker PDU after the Ethernet header.
pub const PDU_LEN: usize = 110;
/// Length of a whole LACPDU or Marker frame (Ethernet header included).
pub const FRAME_LEN: usize = 124;
/// Marker TLV type: Marker Information (a request).
pub const MARKER_INFO: u8 = 1;
/// Marker TLV type: Marker Response.
pub const MARKER_RESPONSE: u8 = 2;

/// The actor/partner state bits (802.1AX §5.4.2.2, bit 0 first).
pub mod state {
    /// LACP_Activity: 1 = active.
    pub const ACTIVITY: u8 = 0x01;
    /// LACP_Timeout: 1 = short timeout (asks for 1 s LACPDUs).
    pub const TIMEOUT: u8 = 0x02;
    /// Aggregation: 1 = aggregatable, 0 = individual.
    pub const AGGREGATION: u8 = 0x04;
    /// Synchronization: the port is attached to the right aggregator.
    pub const SYNC: u8 = 0x08;
    /// Collecting.
    pub const COLLECTING: u8 = 0x10;
    /// Distributing.
    pub const DISTRIBUTING: u8 = 0x20;
    /// Defaulted: the partner information is the administrative default.
    pub const DEFAULTED: u8 = 0x40;
    /// Expired: the receive machine is in EXPIRED.
    pub const EXPIRED: u8 = 0x80;
}

/// Displays state bits as `ACTIVE,FAST,AGG,SYNC,COLL,DIST,DEFAULTED,EXPIRED`
/// (only the bits set; `-` when none is).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StateFlags(pub u8);

impl fmt::Display for StateFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = [
            "ACTIVE",
            "FAST",
            "AGG",
            "SYNC",
            "COLL",
            "DIST",
            "DEFAULTED",
            "EXPIRED",
        ];
        if self.0 == 0 {
            return f.write_str("-");
        }
        let mut first = true;
        for (i, n) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// The contents of an actor or partner TLV: who a port is and its state.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortInfo {
    /// System priority.
    pub system_priority: u16,
    /// System identifier (a MAC address).
    pub system: [u8; 6],
    /// Operational key.
    pub key: u16,
    /// Port priority.
    pub port_priority: u16,
    /// Port number.
    pub port: u16,
    /// State bits (see [`state`]).
    pub state: u8,
}

/// Why a frame was not taken as a LACPDU or Marker PDU.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PduError {
    /// The frame is shorter than the 124 bytes of a slow-protocols PDU.
    Truncated {
        /// The frame's length.
        len: usize,
    },
    /// The ethertype is not Slow Protocols (0x8809).
    NotSlowProtocols {
        /// The ethertype found (the outer one).
        ethertype: u16,
    },
    /// A slow-protocols subtype other than LACP (1) or Marker (2), e.g. OAM (3).
    UnknownSubtype(u8),
    /// A TLV has the wrong type or length.
    BadTlv {
        /// Which TLV: "actor", "partner", "collector", "terminator" or "marker".
        which: &'static str,
        /// The type byte found.
        tlv_type: u8,
        /// The length byte found.
        len: u8,
    },
    /// The slave index is not one of the bond's.
    NoSuchSlave(usize),
    /// A LACPDU whose actor is this bond's own system: the slave is looped
    /// back (cabled to another slave, or a switch reflecting frames). Linux
    /// ignores these too ("an illegal loopback occurred").
    Loopback,
}

impl fmt::Display for PduError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PduError::Truncated { len } => write!(
                f,
                "frame of {len} bytes is shorter than a slow-protocols PDU ({FRAME_LEN})"
            ),
            PduError::NotSlowProtocols { ethertype } => write!(
                f,
                "ethertype {ethertype:#06x} is not Slow Protocols ({ETHERTYPE:#06x})"
            ),
            PduError::UnknownSubtype(s) => write!(
                f,
                "slow-protocols subtype {s} is neither LACP ({SUBTYPE_LACP}) nor Marker ({SUBTYPE_MARKER})"
            ),
            PduError::BadTlv {
                which,
                tlv_type,
                len,
            } => write!(f, "bad {which} TLV: type {tlv_type} length {len}"),
            PduError::NoSuchSlave(i) => write!(f, "no slave {i} in this bond"),
            PduError::Loopback => f.write_str(
                "LACPDU from this bond's own system: the slave is looped back to the bond",
            ),
        }
    }
}

impl std::error::Error for PduError {}

/// Checks the Ethernet header of a slow-protocols frame and returns its
/// subtype (the frame's byte 14). Untagged only, as 802.1AX sends them.
pub fn classify(frame: &[u8]) -> Result<u8, PduError> {
    let ethertype = rd16(frame, 12);
    if ethertype != ETHERTYPE {
        return Err(PduError::NotSlowProtocols { ethertype });
    }
    if frame.len() < FRAME_LEN {
        return Err(PduError::Truncated { len: frame.len() });
    }
    match rd8(frame, 14) {
        s @ (SUBTYPE_LACP | SUBTYPE_MARKER) => Ok(s),
        s => Err(PduError::UnknownSubtype(s)),
    }
}

fn check_tlv(b: &[u8], off: usize, which: &'static str, ty: u8, len: u8) -> Result<(), PduError> {
    let (t, l) = (rd8(b, off), rd8(b, off + 1));
    if t != ty || l != len {
        return Err(PduError::BadTlv {
            which,
            tlv_type: t,
            len: l,
        });
    }
    Ok(())
}

const ACTOR: usize = 4;
const PARTNER: usize = 24;
const COLLECTOR_DELAY: usize = 44;

/// A view of a LACPDU (the bytes after the Ethernet header).
#[derive(Debug, Clone)]
pub struct LacpPdu<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> LacpPdu<T> {
    /// Validates the length (110 bytes; trailing bytes allowed), subtype 1
    /// and the actor (1/20), partner (2/20) and collector (3/16) TLVs, as
    /// Open vSwitch and Linux do. The version byte and the terminator are not
    /// checked (802.1AX: a later version must be accepted).
    pub fn new_checked(buf: T) -> Result<Self, PduError> {
        let b = buf.as_ref();
        if b.len() < PDU_LEN {
            return Err(PduError::Truncated {
                len: b.len() + crate::wire::ethernet::HEADER_LEN,
            });
        }
        if b[0] != SUBTYPE_LACP {
            return Err(PduError::UnknownSubtype(b[0]));
        }
        check_tlv(b, 2, "actor", 1, 20)?;
        check_tlv(b, 22, "partner", 2, 20)?;
        check_tlv(b, 42, "collector", 3, 16)?;
        Ok(LacpPdu { buf })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The version number (1 in 802.1AX-2008).
    pub fn version(&self) -> u8 {
        rd8(self.buf.as_ref(), 1)
    }

    fn info(&self, off: usize) -> PortInfo {
        let b = self.buf.as_ref();
        PortInfo {
            system_priority: rd16(b, off),
            system: rd_arr(b, off + 2),
            key: rd16(b, off + 8),
            port_priority: rd16(b, off + 10),
            port: rd16(b, off + 12),
            state: rd8(b, off + 14),
        }
    }

    /// The actor TLV: the sender's own port.
    pub fn actor(&self) -> PortInfo {
        self.info(ACTOR)
    }

    /// The partner TLV: the sender's view of the receiver.
    pub fn partner(&self) -> PortInfo {
        self.info(PARTNER)
    }

    /// The collector's max delay (tens of microseconds).
    pub fn collector_max_delay(&self) -> u16 {
        rd16(self.buf.as_ref(), COLLECTOR_DELAY)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> LacpPdu<T> {
    fn set_info(&mut self, off: usize, p: &PortInfo) {
        let b = self.buf.as_mut();
        wr16(b, off, p.system_priority);
        wr_bytes(b, off + 2, &p.system);
        wr16(b, off + 8, p.key);
        wr16(b, off + 10, p.port_priority);
        wr16(b, off + 12, p.port);
        wr8(b, off + 14, p.state);
    }

    /// Sets the actor TLV's fields.
    pub fn set_actor(&mut self, p: &PortInfo) {
        self.set_info(ACTOR, p);
    }

    /// Sets the partner TLV's fields.
    pub fn set_partner(&mut self, p: &PortInfo) {
        self.set_info(PARTNER, p);
    }

    /// Sets the collector's max delay.
    pub fn set_collector_max_delay(&mut self, d: u16) {
        wr16(self.buf.as_mut(), COLLECTOR_DELAY, d);
    }
}

/// Writes the Ethernet header of a slow-protocols frame from `src`.
fn write_eth(f: &mut [u8; FRAME_LEN], src: [u8; 6]) {
    f[..6].copy_from_slice(&DST_MAC);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
}

/// Builds a whole LACPDU frame (version 1, collector max delay 0, reserved
/// bytes zero) from the port's MAC `src`.
pub fn build_lacpdu(src: [u8; 6], actor: &PortInfo, partner: &PortInfo) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    write_eth(&mut f, src);
    let b = &mut f[14..];
    b[..4].copy_from_slice(&[SUBTYPE_LACP, 1, 1, 20]);
    b[22..24].copy_from_slice(&[2, 20]);
    b[42..44].copy_from_slice(&[3, 16]);
    // Terminator: type 0 length 0 at 58, already zero.
    let mut v = LacpPdu { buf: b };
    v.set_actor(actor);
    v.set_partner(partner);
    f
}

/// A view of a Marker PDU (the bytes after the Ethernet header).
#[derive(Debug, Clone)]
pub struct MarkerPdu<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> MarkerPdu<T> {
    /// Validates the length (110 bytes; trailing allowed), subtype 2 and a
    /// Marker Information or Response TLV of length 16.
    pub fn new_checked(buf: T) -> Result<Self, PduError> {
        let b = buf.as_ref();
        if b.len() < PDU_LEN {
            return Err(PduError::Truncated {
                len: b.len() + crate::wire::ethernet::HEADER_LEN,
            });
        }
        if b[0] != SUBTYPE_MARKER {
            return Err(PduError::UnknownSubtype(b[0]));
        }
        if !matches!(b[2], MARKER_INFO | MARKER_RESPONSE) || b[3] != 16 {
            return Err(PduError::BadTlv {
                which: "marker",
                tlv_type: b[2],
                len: b[3],
            });
        }
        Ok(MarkerPdu { buf })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The TLV type: [`MARKER_INFO`] or [`MARKER_RESPONSE`].
    pub fn tlv_type(&self) -> u8 {
        rd8(self.buf.as_ref(), 2)
    }

    /// The requester's port number.
    pub fn requester_port(&self) -> u16 {
        rd16(self.buf.as_ref(), 4)
    }

    /// The requester's system identifier.
    pub fn requester_system(&self) -> [u8; 6] {
        rd_arr(self.buf.as_ref(), 6)
    }

    /// The requester's transaction id.
    pub fn transaction_id(&self) -> u32 {
        rd32(self.buf.as_ref(), 12)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> MarkerPdu<T> {
    /// Sets the TLV type (information or response).
    pub fn set_tlv_type(&mut self, t: u8) {
        wr8(self.buf.as_mut(), 2, t);
    }
}

/// A Marker Information frame (a request) from port `port` of `system`,
/// sent from `src` with transaction id `transaction`: what a Marker
/// Generator sends before moving conversations (rvs never needs to; the
/// lab uses it to see what a peer does with one).
pub fn build_marker_info(
    src: [u8; 6],
    port: u16,
    system: [u8; 6],
    transaction: u32,
) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    write_eth(&mut f, src);
    f[14..18].copy_from_slice(&[SUBTYPE_MARKER, 1, MARKER_INFO, 16]);
    f[18..20].copy_from_slice(&port.to_be_bytes());
    f[20..26].copy_from_slice(&system);
    f[26..30].copy_from_slice(&transaction.to_be_bytes());
    f
}

/// The Marker Response to a Marker Information frame: the same fields, TLV
/// type 2, sent from `src` (802.1AX §6.5.3: the responder copies the
/// requester's port, system and transaction id). `None` if `frame` is not a
/// valid Marker Information frame.
pub fn marker_response(frame: &[u8], src: [u8; 6]) -> Option<[u8; FRAME_LEN]> {
    let m = MarkerPdu::new_checked(frame.get(14..)?).ok()?;
    if m.tlv_type() != MARKER_INFO {
        return None;
    }
    let mut f = [0u8; FRAME_LEN];
    write_eth(&mut f, src);
    // Subtype, version, the TLV (2 + 16 bytes): reserved bytes stay zero.
    f[14..34].copy_from_slice(frame.get(14..34)?);
    f[16] = MARKER_RESPONSE;
    Some(f)
}

//! TCP segments (RFC 9293), their options, and the TOA option used by FNAT.

use super::checksum;
use super::{rd16, rd32, rd8, sub, sub_mut, wr16, wr32, wr8, write_with_csum, WireError};
use crate::addr::{proto, Addr};

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;
/// Longest TCP header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// Where each field of the TCP header is, in bytes from its start: the
/// one place that knows the layout (the view and the pipeline use these).
pub mod field {
    use core::ops::{Range, RangeFrom};

    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Sequence number.
    pub const SEQ_NUM: Range<usize> = 4..8;
    /// Acknowledgment number.
    pub const ACK_NUM: Range<usize> = 8..12;
    /// Data offset (high nibble, in 32-bit words) and reserved bits.
    pub const DATA_OFF: usize = 12;
    /// Flags.
    pub const FLAGS: usize = 13;
    /// Window.
    pub const WINDOW: Range<usize> = 14..16;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 16..18;
    /// Urgent pointer.
    pub const URGENT: Range<usize> = 18..20;
    /// Options (up to the data offset), then the payload.
    pub const OPTIONS: RangeFrom<usize> = 20..;
}

/// TCP flag bits as found in the flags byte ([`TcpPacket::flags`]).
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field significant.
    pub const URG: u8 = 0x20;
    /// ECN-Echo.
    pub const ECE: u8 = 0x40;
    /// Congestion Window Reduced.
    pub const CWR: u8 = 0x80;
}

/// TCP option kinds.
pub mod opt {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No-operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Window scale.
    pub const WSCALE: u8 = 3;
    /// SACK permitted.
    pub const SACK_PERM: u8 = 4;
    /// SACK blocks.
    pub const SACK: u8 = 5;
    /// Timestamps.
    pub const TIMESTAMPS: u8 = 8;
    /// TCP Option Address (LVS FNAT client address).
    pub const TOA: u8 = 254;
}

/// Length of the IPv4 form of the TOA option.
pub const TOA_LEN_V4: usize = 8;
/// Length of the IPv6 form of the TOA option.
pub const TOA_LEN_V6: usize = 20;

/// One parsed TCP option.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// Maximum segment size.
    Mss(u16),
    /// Window scale shift count.
    WindowScale(u8),
    /// SACK permitted.
    SackPermitted,
    /// SACK blocks, raw (pairs of 32-bit edges).
    Sack(&'a [u8]),
    /// Timestamps: (TSval, TSecr).
    Timestamps(u32, u32),
    /// TCP Option Address: the client's port and address (IPv4 or IPv6 form).
    Toa {
        /// Client port.
        port: u16,
        /// Client address.
        addr: Addr,
    },
    /// Any other option, or a known kind with an unexpected length (which
    /// receivers ignore rather than reject).
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data after the kind and length bytes.
        data: &'a [u8],
    },
}

/// An allocation-free iterator over TCP options.
///
/// Stops at EOL or the end of the options. A malformed list (a length byte
/// missing, below 2, or running past the end) also ends the iteration, and
/// [`TcpOptions::is_malformed`] then reports it; options before the fault
/// have been yielded.
#[derive(Clone, Debug)]
pub struct TcpOptions<'a> {
    data: &'a [u8],
    pos: usize,
    malformed: bool,
}

impl<'a> TcpOptions<'a> {
    /// Iterates over the raw option bytes `data` (the header after byte 20).
    #[inline]
    pub fn new(data: &'a [u8]) -> Self {
        TcpOptions {
            data,
            pos: 0,
            malformed: false,
        }
    }

    /// Whether iteration ended on a malformed option.
    #[inline]
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }

    /// The next option as (kind, offset of the kind byte, data), skipping NOPs.
    #[inline]
    fn next_raw(&mut self) -> Option<(u8, usize, &'a [u8])> {
        loop {
            let at = self.pos;
            let kind = *self.data.get(at)?;
            match kind {
                opt::EOL => {
                    self.pos = self.data.len();
                    return None;
                }
                opt::NOP => self.pos = at + 1,
                _ => {
                    let len = match self.data.get(at + 1) {
                        Some(&l) if l >= 2 => l as usize,
                        _ => return self.fail(),
                    };
                    let Some(d) = self.data.get(at + 2..at + len) else {
                        return self.fail();
                    };
                    self.pos = at + len;
                    return Some((kind, at, d));
                }
            }
        }
    }

    #[cold]
    fn fail<X>(&mut self) -> Option<X> {
        self.malformed = true;
        self.pos = self.data.len();
        None
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = TcpOption<'a>;

    #[inline]
    fn next(&mut self) -> Option<TcpOption<'a>> {
        let (kind, _, d) = self.next_raw()?;
        Some(match (kind, d) {
            (opt::MSS, &[a, b]) => TcpOption::Mss(u16::from_be_bytes([a, b])),
            (opt::WSCALE, &[s]) => TcpOption::WindowScale(s),
            (opt::SACK_PERM, &[]) => TcpOption::SackPermitted,
            (opt::SACK, d) if !d.is_empty() && d.len() % 8 == 0 => TcpOption::Sack(d),
            (opt::TIMESTAMPS, &[a, b, c, e, f, g, h, i]) => TcpOption::Timestamps(
                u32::from_be_bytes([a, b, c, e]),
                u32::from_be_bytes([f, g, h, i]),
            ),
            (opt::TOA, &[p0, p1, a, b, c, e]) => TcpOption::Toa {
                port: u16::from_be_bytes([p0, p1]),
                addr: Addr::v4(a, b, c, e),
            },
            (opt::TOA, d) if d.len() == TOA_LEN_V6 - 2 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&d[2..]);
                TcpOption::Toa {
                    port: u16::from_be_bytes([d[0], d[1]]),
                    addr: Addr(a),
                }
            }
            (kind, data) => TcpOption::Unknown { kind, data },
        })
    }
}

/// A view of a TCP segment (the whole IP payload).
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buf` without checking it, for a buffer an earlier check
    /// already validated (as `new_checked` would). The getters stay
    /// panic-free whatever the buffer holds: out of range they read zeros
    /// and the setters write nothing.
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        TcpPacket { buf }
    }

    /// Validates that the buffer holds the header and that the data offset is
    /// at least 5 and within the buffer.
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let hl = (rd8(b, field::DATA_OFF) >> 4) as usize * 4;
        if hl < HEADER_LEN {
            return Err(WireError::BadHeaderLen);
        }
        if hl > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(TcpPacket { buf })
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The whole segment.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        rd16(self.buf.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        rd16(self.buf.as_ref(), field::DST_PORT.start)
    }

    /// Sequence number.
    #[inline]
    pub fn seq(&self) -> u32 {
        rd32(self.buf.as_ref(), field::SEQ_NUM.start)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack(&self) -> u32 {
        rd32(self.buf.as_ref(), field::ACK_NUM.start)
    }

    /// Header length in bytes (data offset times 4, 20..=60).
    #[inline]
    pub fn header_len(&self) -> usize {
        (rd8(self.buf.as_ref(), field::DATA_OFF) >> 4) as usize * 4
    }

    /// The flags byte (see [`flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        rd8(self.buf.as_ref(), field::FLAGS)
    }

    /// Whether all bits of `f` are set in the flags.
    #[inline]
    pub fn has_flags(&self, f: u8) -> bool {
        self.flags() & f == f
    }

    /// Window.
    #[inline]
    pub fn window(&self) -> u16 {
        rd16(self.buf.as_ref(), field::WINDOW.start)
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        rd16(self.buf.as_ref(), field::CHECKSUM.start)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        rd16(self.buf.as_ref(), field::URGENT.start)
    }

    /// The raw option bytes.
    #[inline]
    pub fn options(&self) -> &[u8] {
        sub(self.buf.as_ref(), HEADER_LEN, self.header_len())
    }

    /// An iterator over the options.
    #[inline]
    pub fn option_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    /// Whether the option list is malformed (see [`TcpOptions`]).
    #[inline]
    pub fn has_malformed_options(&self) -> bool {
        let mut it = self.option_iter();
        while it.next_raw().is_some() {}
        it.is_malformed()
    }

    /// The MSS option's value, if present.
    #[inline]
    pub fn mss(&self) -> Option<u16> {
        self.option_iter().find_map(|o| match o {
            TcpOption::Mss(m) => Some(m),
            _ => None,
        })
    }

    /// The window scale option's shift, if present.
    #[inline]
    pub fn wscale(&self) -> Option<u8> {
        self.option_iter().find_map(|o| match o {
            TcpOption::WindowScale(s) => Some(s),
            _ => None,
        })
    }

    /// The timestamps option's (TSval, TSecr), if present.
    #[inline]
    pub fn timestamps(&self) -> Option<(u32, u32)> {
        self.option_iter().find_map(|o| match o {
            TcpOption::Timestamps(v, e) => Some((v, e)),
            _ => None,
        })
    }

    /// The payload after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        sub(b, self.header_len(), b.len())
    }

    /// Whether the checksum verifies for this segment between `src` and `dst`.
    #[inline]
    pub fn verify_checksum(&self, src: &Addr, dst: &Addr) -> bool {
        checksum::verify_l4(src, dst, proto::TCP, self.buf.as_ref())
    }

    /// Offset (in the segment) of the first option of `kind` with data length
    /// `dlen`, pointing at its data.
    fn find_option(&self, kind: u8, dlen: usize) -> Option<usize> {
        let mut it = self.option_iter();
        while let Some((k, at, d)) = it.next_raw() {
            if k == kind && d.len() == dlen {
                return Some(HEADER_LEN + at + 2);
            }
        }
        None
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port (checksum untouched).
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        wr16(self.buf.as_mut(), field::SRC_PORT.start, p);
    }

    /// Sets the destination port (checksum untouched).
    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        wr16(self.buf.as_mut(), field::DST_PORT.start, p);
    }

    /// Sets the sequence number (checksum untouched).
    #[inline]
    pub fn set_seq(&mut self, v: u32) {
        wr32(self.buf.as_mut(), field::SEQ_NUM.start, v);
    }

    /// Sets the acknowledgment number (checksum untouched).
    #[inline]
    pub fn set_ack(&mut self, v: u32) {
        wr32(self.buf.as_mut(), field::ACK_NUM.start, v);
    }

    /// Sets the header length in bytes (rounded down to a multiple of 4;
    /// checksum untouched). Used after inserting options such as TOA.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buf.as_mut();
        let v = (((len / 4).min(15) as u8) << 4) | (rd8(b, field::DATA_OFF) & 0x0f);
        wr8(b, field::DATA_OFF, v);
    }

    /// Sets the header length in bytes (as [`TcpPacket::set_header_len`]),
    /// updating the checksum incrementally for the data-offset word.
    #[inline]
    pub fn rewrite_header_len(&mut self, len: usize) {
        let old = rd16(self.buf.as_ref(), field::DATA_OFF);
        self.set_header_len(len);
        let new = rd16(self.buf.as_ref(), field::DATA_OFF);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_checksum(c);
    }

    /// Sets the flags byte (checksum untouched).
    #[inline]
    pub fn set_flags(&mut self, f: u8) {
        wr8(self.buf.as_mut(), field::FLAGS, f);
    }

    /// Sets the window (checksum untouched).
    #[inline]
    pub fn set_window(&mut self, w: u16) {
        wr16(self.buf.as_mut(), field::WINDOW.start, w);
    }

    /// Sets the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        wr16(self.buf.as_mut(), field::CHECKSUM.start, c);
    }

    /// Recomputes the checksum over the whole segment.
    #[inline]
    pub fn fill_checksum(&mut self, src: &Addr, dst: &Addr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum(src, dst, proto::TCP, self.buf.as_ref());
        self.set_checksum(c);
    }

    /// Sets the source port, updating the checksum incrementally.
    #[inline]
    pub fn rewrite_src_port(&mut self, p: u16) {
        let c = checksum::update16(self.checksum(), self.src_port(), p);
        self.set_src_port(p);
        self.set_checksum(c);
    }

    /// Sets the destination port, updating the checksum incrementally.
    #[inline]
    pub fn rewrite_dst_port(&mut self, p: u16) {
        let c = checksum::update16(self.checksum(), self.dst_port(), p);
        self.set_dst_port(p);
        self.set_checksum(c);
    }

    /// Sets the sequence number, updating the checksum incrementally.
    #[inline]
    pub fn rewrite_seq(&mut self, v: u32) {
        let c = checksum::update32(self.checksum(), self.seq(), v);
        self.set_seq(v);
        self.set_checksum(c);
    }

    /// Sets the acknowledgment number, updating the checksum incrementally.
    #[inline]
    pub fn rewrite_ack(&mut self, v: u32) {
        let c = checksum::update32(self.checksum(), self.ack(), v);
        self.set_ack(v);
        self.set_checksum(c);
    }

    /// Rewrites an existing MSS option in place (updating the checksum
    /// incrementally, even when the option is not 16-bit aligned); returns
    /// false, changing nothing, if there is no MSS option.
    #[inline]
    pub fn set_mss(&mut self, mss: u16) -> bool {
        let Some(off) = self.find_option(opt::MSS, 2) else {
            return false;
        };
        let c = self.checksum();
        let c = write_with_csum(self.buf.as_mut(), off, &mss.to_be_bytes(), c);
        self.set_checksum(c);
        true
    }

    /// Sets the window, updating the checksum incrementally.
    #[inline]
    pub fn rewrite_window(&mut self, w: u16) {
        let c = checksum::update16(self.checksum(), self.window(), w);
        self.set_window(w);
        self.set_checksum(c);
    }

    /// Rewrites the timestamps option's values in place (updating the
    /// checksum incrementally); returns false, changing nothing, if there is
    /// no timestamps option.
    #[inline]
    pub fn set_timestamps(&mut self, tsval: u32, tsecr: u32) -> bool {
        let Some(off) = self.find_option(opt::TIMESTAMPS, 8) else {
            return false;
        };
        let mut v = [0u8; 8];
        v[..4].copy_from_slice(&tsval.to_be_bytes());
        v[4..].copy_from_slice(&tsecr.to_be_bytes());
        let c = self.checksum();
        let c = write_with_csum(self.buf.as_mut(), off, &v, c);
        self.set_checksum(c);
        true
    }

    /// Adds `delta` (modulo 2^32) to both edges of every block of the SACK
    /// option, updating the checksum incrementally. No-op without one.
    pub fn shift_sack(&mut self, delta: u32) {
        self.map_sack(|e| e.wrapping_add(delta));
    }

    /// Replaces both edges of every block of the SACK option by `f(edge)`,
    /// updating the checksum incrementally. No-op without one.
    pub fn map_sack(&mut self, f: impl Fn(u32) -> u32) {
        let mut it = self.option_iter();
        let mut at = None;
        while let Some((k, off, d)) = it.next_raw() {
            if k == opt::SACK && !d.is_empty() && d.len() % 8 == 0 {
                at = Some((HEADER_LEN + off + 2, d.len()));
                break;
            }
        }
        let Some((start, len)) = at else {
            return;
        };
        let mut c = self.checksum();
        for edge in (start..start + len).step_by(4) {
            let v = f(rd32(self.buf.as_ref(), edge));
            c = write_with_csum(self.buf.as_mut(), edge, &v.to_be_bytes(), c);
        }
        self.set_checksum(c);
    }

    /// The option bytes, mutably.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        sub_mut(self.buf.as_mut(), HEADER_LEN, h)
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        let b = self.buf.as_mut();
        let n = b.len();
        sub_mut(b, h, n)
    }
}

/// Length of the TOA option for `addr`: 8 for IPv4, 20 for IPv6.
#[inline]
pub fn toa_len(addr: &Addr) -> usize {
    if addr.is_v4() {
        TOA_LEN_V4
    } else {
        TOA_LEN_V6
    }
}

/// Writes a TOA option (kind 254; port, then the address as on the wire)
/// into `out`; returns its length, or 0 if `out` is too short.
#[inline]
pub fn write_toa(out: &mut [u8], port: u16, addr: &Addr) -> usize {
    let n = toa_len(addr);
    let Some(o) = out.get_mut(..n) else {
        return 0;
    };
    o[0] = opt::TOA;
    o[1] = n as u8;
    o[2..4].copy_from_slice(&port.to_be_bytes());
    o[4..].copy_from_slice(addr.wire_bytes());
    n
}

#[cfg(test)]
mod tests;

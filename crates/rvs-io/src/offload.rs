//! Finishing work a neighbour's offloads left undone, on plain byte slices so
//! it is testable without sockets.
//!
//! A veth peer (or any local sender) hands frames over as the kernel holds
//! them: with a partial checksum (the L4 field holds only the pseudo-header
//! sum, the rest is the NIC's job) and, with TSO/GSO, as one super-frame of
//! up to 64 KiB standing for many MTU-sized segments. The rest of rvs expects
//! wire frames, so the receive path completes the checksum and cuts the
//! super-frame into segments here.

use rvs_core::addr::{proto, Addr};
use rvs_core::wire::checksum::{finish, l4_checksum, sum};

/// `struct virtio_net_hdr` as the kernel writes it before each frame when
/// PACKET_VNET_HDR is on (native endian: legacy virtio on this host).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct VnetHdr {
    pub(crate) flags: u8,
    pub(crate) gso_type: u8,
    pub(crate) gso_size: u16,
    pub(crate) csum_start: u16,
    pub(crate) csum_offset: u16,
}

pub(crate) const VNET_HDR_LEN: usize = 10;
const F_NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;

impl VnetHdr {
    pub(crate) fn parse(b: &[u8; VNET_HDR_LEN]) -> VnetHdr {
        let u = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        }
    }

    pub(crate) fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }
}

/// Where the IP and transport headers of a frame are.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct L4Info {
    pub(crate) l3: usize,
    pub(crate) v6: bool,
    pub(crate) l4: usize,
    pub(crate) proto: u8,
    /// End of the IP packet (excludes Ethernet padding).
    pub(crate) end: usize,
}

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

/// Locates the transport header of an unfragmented IPv4 packet or an IPv6
/// packet whose first next-header is the transport, behind up to two VLAN
/// tags. Anything else is `None`.
pub(crate) fn parse_l4(f: &[u8]) -> Option<L4Info> {
    let mut l3 = 14;
    if f.len() < l3 {
        return None;
    }
    let mut ty = be16(f, 12);
    for _ in 0..2 {
        if ty != 0x8100 && ty != 0x88a8 {
            break;
        }
        if f.len() < l3 + 4 {
            return None;
        }
        ty = be16(f, l3 + 2);
        l3 += 4;
    }
    match ty {
        0x0800 => {
            if f.len() < l3 + 20 || f[l3] >> 4 != 4 {
                return None;
            }
            let ihl = (f[l3] & 0xf) as usize * 4;
            let tot = be16(f, l3 + 2) as usize;
            // Fragments other than a whole packet have no complete L4 segment.
            if ihl < 20 || be16(f, l3 + 6) & 0x3fff != 0 || tot < ihl {
                return None;
            }
            let end = (l3 + tot).min(f.len());
            let l4 = l3 + ihl;
            (l4 <= end).then_some(L4Info {
                l3,
                v6: false,
                l4,
                proto: f[l3 + 9],
                end,
            })
        }
        0x86dd => {
            if f.len() < l3 + 40 || f[l3] >> 4 != 6 {
                return None;
            }
            let end = (l3 + 40 + be16(f, l3 + 4) as usize).min(f.len());
            Some(L4Info {
                l3,
                v6: true,
                l4: l3 + 40,
                proto: f[l3 + 6],
                end,
            })
        }
        _ => None,
    }
}

/// Completes a partial L4 checksum in place: the field already holds the
/// pseudo-header sum, so the one's-complement sum from the checksum start to
/// the end of the packet, field included, is the whole sum. Uses the vnet
/// header's start/offset when the kernel gave them, else the TCP/UDP field
/// found by parsing. Returns false (frame untouched) when neither works.
pub(crate) fn complete_csum(f: &mut [u8], vnet: &VnetHdr) -> bool {
    let info = parse_l4(f);
    let (start, off) = if vnet.flags & F_NEEDS_CSUM != 0 {
        (vnet.csum_start as usize, vnet.csum_offset as usize)
    } else {
        match info {
            Some(i) if i.proto == proto::TCP => (i.l4, 16),
            Some(i) if i.proto == proto::UDP => (i.l4, 6),
            _ => return false,
        }
    };
    let end = info.map_or(f.len(), |i| i.end);
    let field = start + off;
    if field + 2 > end {
        return false;
    }
    let c = finish(sum(&f[start..end]));
    // As the kernel's skb_checksum_help: 0 is sent as 0xffff, which is the
    // same value for TCP and means "computed" for UDP.
    let c = if c == 0 { 0xffff } else { c };
    f[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// A GSO super-frame being cut into segments.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Gso {
    info: L4Info,
    /// End of the headers copied into every segment.
    hdr: usize,
    mss: usize,
    /// Payload offset of the next segment.
    next: usize,
    end: usize,
    index: u32,
}

/// Why a super-frame could not be segmented.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum GsoError {
    /// Unsupported GSO type or malformed headers.
    Bad,
    /// A segment would not fit the scratch slots.
    TooBig,
}

impl Gso {
    /// Plans the segmentation of `f` (TCP over IPv4/IPv6, or UDP GSO) into
    /// segments of `gso_size` payload bytes, none longer than `max_frame`.
    pub(crate) fn plan(f: &[u8], vnet: &VnetHdr, max_frame: usize) -> Result<Gso, GsoError> {
        let info = parse_l4(f).ok_or(GsoError::Bad)?;
        let tcp = match vnet.gso_type & !GSO_ECN {
            GSO_TCPV4 | GSO_TCPV6 => true,
            GSO_UDP_L4 => false,
            _ => return Err(GsoError::Bad),
        };
        let want = if tcp { proto::TCP } else { proto::UDP };
        if info.proto != want {
            return Err(GsoError::Bad);
        }
        let hdr = if tcp {
            if f.len() < info.l4 + 20 {
                return Err(GsoError::Bad);
            }
            let doff = (f[info.l4 + 12] >> 4) as usize * 4;
            if doff < 20 {
                return Err(GsoError::Bad);
            }
            info.l4 + doff
        } else {
            info.l4 + 8
        };
        // The captured length is the authority for where the payload ends
        // (parse_l4 already clamped the IP length to it). BIG TCP super-frames
        // (IPv4 total length 0, IPv6 jumbograms) are not taken: parse_l4
        // refuses them and they are dropped as malformed.
        let end = f.len();
        let mss = vnet.gso_size as usize;
        if mss == 0 || hdr >= end {
            return Err(GsoError::Bad);
        }
        if hdr + mss > max_frame {
            return Err(GsoError::TooBig);
        }
        Ok(Gso {
            info,
            hdr,
            mss,
            next: hdr,
            end,
            index: 0,
        })
    }

    /// Whether every segment was produced.
    pub(crate) fn done(&self) -> bool {
        self.next >= self.end
    }

    /// Segments still to come.
    pub(crate) fn remaining(&self) -> usize {
        (self.end.saturating_sub(self.next)).div_ceil(self.mss)
    }

    /// Writes the next segment of `f` (the same frame `plan` saw) to the
    /// start of `out`; returns its length, or `None` when done or `out` is
    /// too small.
    pub(crate) fn next_segment(&mut self, f: &[u8], out: &mut [u8]) -> Option<usize> {
        if self.done() || f.len() < self.end {
            return None;
        }
        let n = self.mss.min(self.end - self.next);
        let len = self.hdr + n;
        if out.len() < len {
            return None;
        }
        let first = self.index == 0;
        let last = self.next + n >= self.end;
        out[..self.hdr].copy_from_slice(&f[..self.hdr]);
        out[self.hdr..len].copy_from_slice(&f[self.next..self.next + n]);
        let i = self.info;
        let seg = &mut out[..len];
        let (src, dst) = if i.v6 {
            let l = (len - i.l3 - 40) as u16;
            seg[i.l3 + 4..i.l3 + 6].copy_from_slice(&l.to_be_bytes());
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&seg[i.l3 + 8..i.l3 + 24]);
            d.copy_from_slice(&seg[i.l3 + 24..i.l3 + 40]);
            (Addr::from_v6_bytes(s), Addr::from_v6_bytes(d))
        } else {
            let tot = (len - i.l3) as u16;
            seg[i.l3 + 2..i.l3 + 4].copy_from_slice(&tot.to_be_bytes());
            let id = be16(seg, i.l3 + 4).wrapping_add(self.index as u16);
            seg[i.l3 + 4..i.l3 + 6].copy_from_slice(&id.to_be_bytes());
            seg[i.l3 + 10..i.l3 + 12].copy_from_slice(&[0, 0]);
            let c = finish(sum(&seg[i.l3..i.l4]));
            seg[i.l3 + 10..i.l3 + 12].copy_from_slice(&c.to_be_bytes());
            let a = |o: usize| [seg[o], seg[o + 1], seg[o + 2], seg[o + 3]];
            (
                Addr::from_v4_bytes(a(i.l3 + 12)),
                Addr::from_v4_bytes(a(i.l3 + 16)),
            )
        };
        let l4 = &mut seg[i.l4..];
        let csum_at = if i.proto == proto::TCP {
            let seq = u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]])
                .wrapping_add(self.index.wrapping_mul(self.mss as u32));
            l4[4..8].copy_from_slice(&seq.to_be_bytes());
            // FIN and PSH end the data, CWR answers ECE once: as the
            // kernel's tcp_gso_segment does.
            if !last {
                l4[13] &= !(0x01 | 0x08);
            }
            if !first {
                l4[13] &= !0x80;
            }
            16
        } else {
            let ul = l4.len() as u16;
            l4[4..6].copy_from_slice(&ul.to_be_bytes());
            6
        };
        l4[csum_at..csum_at + 2].copy_from_slice(&[0, 0]);
        let c = l4_checksum(&src, &dst, i.proto, l4);
        l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
        self.next += n;
        self.index = self.index.wrapping_add(1);
        Some(len)
    }
}

#[cfg(test)]
mod tests;

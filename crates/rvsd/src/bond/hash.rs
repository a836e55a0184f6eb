//! The mode 4 transmit hash (until rvs-core's `bond::xmit_hash` lands):
//! Linux's `layer3+4` (ports and addresses), `layer2+3`, `layer2`.

use crate::config::XmitHashConf;

/// The slave-choosing hash of `frame` (past one VLAN tag).
pub fn xmit_hash(kind: XmitHashConf, frame: &[u8]) -> u32 {
    let b = |i: usize| frame.get(i).copied().unwrap_or(0);
    let w = |i: usize| u32::from_be_bytes([b(i), b(i + 1), b(i + 2), b(i + 3)]);
    let l2 = u32::from(b(5) ^ b(11)) ^ u32::from(u16::from_be_bytes([b(12), b(13)]));
    if kind == XmitHashConf::Layer2 {
        return l2;
    }
    let mut off = 12;
    let mut et = u16::from_be_bytes([b(off), b(off + 1)]);
    if et == 0x8100 || et == 0x88a8 {
        off += 4;
        et = u16::from_be_bytes([b(off), b(off + 1)]);
    }
    let ip = off + 2;
    let (mut h, proto, l4) = match et {
        0x0800 => {
            let ihl = usize::from(b(ip) & 0x0f) * 4;
            let frag = u16::from_be_bytes([b(ip + 6), b(ip + 7)]) & 0x3fff != 0;
            let proto = if frag { 0 } else { b(ip + 9) };
            (w(ip + 12) ^ w(ip + 16), proto, ip + ihl)
        }
        0x86dd => {
            let mut h = 0;
            for k in 0..8 {
                h ^= w(ip + 8 + 4 * k);
            }
            (h, b(ip + 6), ip + 40)
        }
        _ => return l2,
    };
    if kind == XmitHashConf::Layer23 {
        h ^= l2;
    } else if proto == 6 || proto == 17 {
        h ^= w(l4);
    }
    h ^= h >> 16;
    h ^ (h >> 8)
}

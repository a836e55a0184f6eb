//! The transmit hash of a mode 4 bond: which slave a frame leaves on, as
//! Linux's `bond_xmit_hash` computes it (Documentation/networking/
//! bonding.rst, `xmit_hash_policy`), so that rvs spreads flows the way a
//! Linux bond would. The caller takes `hash % n` over its distributing
//! slaves.

use core::fmt;
use core::str::FromStr;

use crate::wire::{ethernet::ethertype, rd16, rd8, rd_arr, EthernetFrame};

/// A transmit hash policy (Linux's `xmit_hash_policy` names).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum XmitHash {
    /// `layer2`: the MACs' last bytes and the ethertype.
    Layer2,
    /// `layer2+3`: `layer2` and the IP addresses.
    Layer23,
    /// `layer3+4`: the IP addresses and the TCP/UDP ports (or the ICMP
    /// echo id); frames that are not IP fall back to `layer2`.
    #[default]
    Layer34,
}

impl XmitHash {
    /// The Linux name: `layer2`, `layer2+3` or `layer3+4`.
    pub fn name(self) -> &'static str {
        match self {
            XmitHash::Layer2 => "layer2",
            XmitHash::Layer23 => "layer2+3",
            XmitHash::Layer34 => "layer3+4",
        }
    }
}

impl fmt::Display for XmitHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A transmit hash name that is not one rvs implements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmitHashParseError(pub String);

impl fmt::Display for XmitHashParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown xmit_hash {:?}: expected layer2, layer2+3 or layer3+4 \
             (Linux's encap2+3, encap3+4 and vlan+srcmac are not supported)",
            self.0
        )
    }
}

impl std::error::Error for XmitHashParseError {}

impl FromStr for XmitHash {
    type Err = XmitHashParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "layer2" => Ok(XmitHash::Layer2),
            "layer2+3" => Ok(XmitHash::Layer23),
            "layer3+4" => Ok(XmitHash::Layer34),
            _ => Err(XmitHashParseError(s.to_string())),
        }
    }
}

/// Linux's `bond_eth_hash`: last byte of each MAC and the (outer) ethertype.
fn eth_hash(frame: &[u8]) -> u32 {
    (rd8(frame, 5) ^ rd8(frame, 11)) as u32 ^ rd16(frame, 12) as u32
}

/// What the flow dissector finds: addresses folded to 32 bits and the L4
/// word (ports, or ICMP type/code/id), both as Linux reads them from memory
/// (little-endian host: `from_le_bytes` of the wire bytes).
struct Flow {
    addrs: u32,
    l4: u32,
}

fn le(b: [u8; 4]) -> u32 {
    u32::from_le_bytes(b)
}

/// Dissects IPv4 or IPv6 past at most one VLAN tag; `None` if not IP.
fn dissect(frame: &[u8]) -> Option<Flow> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.vlan_tags() > 1 {
        return None;
    }
    let ip = eth.payload();
    match eth.ethertype() {
        ethertype::IPV4 => {
            let ihl = (rd8(ip, 0) & 0x0f) as usize * 4;
            if ip.len() < 20 || ihl < 20 || rd8(ip, 0) >> 4 != 4 {
                return None;
            }
            let addrs = le(rd_arr(ip, 12)) ^ le(rd_arr(ip, 16));
            let frag = rd16(ip, 6) & 0x3fff != 0;
            let l4 = if frag {
                0
            } else {
                l4_word(rd8(ip, 9), ip.get(ihl..).unwrap_or(&[]))
            };
            Some(Flow { addrs, l4 })
        }
        ethertype::IPV6 => {
            let v6 = crate::wire::Ipv6Packet::new_checked(ip).ok()?;
            let mut addrs = 0;
            for off in (8..40).step_by(4) {
                addrs ^= le(rd_arr(ip, off));
            }
            let l4 = match v6.upper_layer() {
                Ok((proto, off, false)) => l4_word(proto, ip.get(off..).unwrap_or(&[])),
                _ => 0,
            };
            Some(Flow { addrs, l4 })
        }
        _ => None,
    }
}

/// The L4 word Linux mixes in: the TCP/UDP/SCTP ports, or for an ICMP(v6)
/// echo its type, code and id (when the id is not zero).
fn l4_word(proto: u8, l4: &[u8]) -> u32 {
    match proto {
        6 | 17 | 132 | 136 => le(rd_arr(l4, 0)),
        1 | 58 => {
            let ty = rd8(l4, 0);
            let echo = matches!(ty, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18 | 128 | 129);
            let id = rd16(l4, 4);
            if echo && id != 0 {
                le([ty, rd8(l4, 1), rd8(l4, 4), rd8(l4, 5)])
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// The transmit hash of `frame` (whole, from the destination MAC) under
/// `policy`, as Linux computes it: `layer2` = MAC bytes 5 XOR'd and the
/// ethertype; `layer2+3` = that XOR both IP addresses, folded (`h ^= h>>16;
/// h ^= h>>8`); `layer3+4` = the ports word XOR both addresses, folded,
/// shifted right by one. IPv6 addresses are XOR-folded to 32 bits; one VLAN
/// tag is looked past; fragments hash without ports; non-IP frames hash as
/// `layer2`. Never panics, allocates nothing.
pub fn xmit_hash(frame: &[u8], policy: XmitHash) -> u32 {
    if policy == XmitHash::Layer2 {
        return eth_hash(frame);
    }
    let Some(flow) = dissect(frame) else {
        return eth_hash(frame);
    };
    let mut h = if policy == XmitHash::Layer23 {
        eth_hash(frame)
    } else {
        flow.l4
    };
    h ^= flow.addrs;
    h ^= h >> 16;
    h ^= h >> 8;
    if policy == XmitHash::Layer34 {
        h >> 1
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + the first 4 bytes of L4, optionally VLAN-tagged.
    fn v4(proto: u8, sport: u16, dport: u16, frag: u16, vlan: bool) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 0x11, 2, 0, 0, 0, 0, 0x22];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0]);
        f.extend_from_slice(&frag.to_be_bytes());
        f.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0; 4]);
        f
    }

    #[test]
    fn layer34_as_bonding_rst() {
        // bonding.rst on a little-endian host: ports word 0x5000d204, addrs
        // 0x0100000a ^ 0x0200000a; fold by 16 and 8; drop the low bit.
        let f = v4(6, 1234, 80, 0, false);
        assert_eq!(xmit_hash(&f, XmitHash::Layer34), 0x29a9_c0c2);
        // Past one VLAN tag: the same flow hashes the same.
        assert_eq!(
            xmit_hash(&v4(6, 1234, 80, 0, true), XmitHash::Layer34),
            0x29a9_c0c2
        );
        // Another source port moves it; a fragment hashes without ports.
        assert_ne!(
            xmit_hash(&v4(6, 1235, 80, 0, false), XmitHash::Layer34),
            0x29a9_c0c2
        );
        let fr = xmit_hash(&v4(17, 1234, 80, 0x2000, false), XmitHash::Layer34);
        assert_eq!(
            fr,
            xmit_hash(&v4(17, 9, 9, 0x2000, false), XmitHash::Layer34)
        );
        assert_eq!(fr, 0x0303_0303 >> 1);
    }

    #[test]
    fn layer2_and_layer23() {
        let f = v4(6, 1234, 80, 0, false);
        assert_eq!(xmit_hash(&f, XmitHash::Layer2), 0x11 ^ 0x22 ^ 0x0800);
        let h = (0x11 ^ 0x22 ^ 0x0800) ^ 0x0300_0000u32;
        let h = h ^ (h >> 16);
        assert_eq!(xmit_hash(&f, XmitHash::Layer23), h ^ (h >> 8));
        // Not IP (ARP): layer3+4 falls back to layer2.
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(xmit_hash(&arp, XmitHash::Layer34), 0x11 ^ 0x22 ^ 0x0806);
        assert_eq!(xmit_hash(&[], XmitHash::Layer34), 0, "never panics");
    }

    #[test]
    fn ipv6_addresses_fold() {
        let mut f = vec![2, 0, 0, 0, 0, 0x11, 2, 0, 0, 0, 0, 0x22, 0x86, 0xdd];
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 17, 64]);
        let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut dst = src;
        dst[15] = 2;
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&[0x04, 0xd2, 0x00, 0x50, 0, 8, 0, 0]);
        // Words XOR to zero but the last: 0x01000000 ^ 0x02000000.
        let h = 0x5000_d204u32 ^ 0x0300_0000;
        let h = h ^ (h >> 16);
        assert_eq!(xmit_hash(&f, XmitHash::Layer34), (h ^ (h >> 8)) >> 1);
    }

    #[test]
    fn names_parse_and_refuse_clearly() {
        for p in [XmitHash::Layer2, XmitHash::Layer23, XmitHash::Layer34] {
            assert_eq!(p.name().parse::<XmitHash>(), Ok(p));
        }
        assert_eq!(
            "encap3+4".parse::<XmitHash>().unwrap_err().to_string(),
            "unknown xmit_hash \"encap3+4\": expected layer2, layer2+3 or layer3+4 \
             (Linux's encap2+3, encap3+4 and vlan+srcmac are not supported)"
        );
    }
}

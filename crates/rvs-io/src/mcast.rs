//! The link-layer multicast groups a port must receive.
//!
//! rvs answers IPv6 neighbour solicitations itself, but the takeover turns
//! IPv6 off on the port, so the kernel leaves the solicited-node groups of
//! its addresses; a NIC with a multicast filter then drops the
//! solicitations for rvs's addresses before any ring sees them (a veth
//! filters nothing, which is why labs never show it). The same holds for
//! LACP's slow-protocols address on a bond slave.
//!
//! A [`Membership`] holds the groups with `PACKET_ADD_MEMBERSHIP` on an
//! AF_PACKET socket of its own that receives nothing (protocol 0, never
//! bound). The kernel counts memberships per socket and drops them all when
//! the socket closes, also when rvsd is killed: nothing survives rvs, no
//! state file is needed, and two processes (a hot upgrade) may hold the same
//! group at once without one's exit taking it from the other.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::OwnedFd;

use crate::sys;

/// A 48-bit link-layer group address.
pub type Group = [u8; 6];

/// `33:33:00:00:00:01`, the IPv6 all-nodes group (RFC 4291 section 2.7.1),
/// where router advertisements and unsolicited neighbour advertisements go.
pub const ALL_NODES: Group = [0x33, 0x33, 0, 0, 0, 1];

/// `01:80:c2:00:00:02`, the IEEE 802.3 slow-protocols group (LACP).
pub const SLOW_PROTOCOLS: Group = [0x01, 0x80, 0xc2, 0, 0, 2];

/// The link-layer group of `a`'s solicited-node address `ff02::1:ffXX:XXXX`
/// (RFC 4291 section 2.7.1, RFC 2464 section 7): `33:33:ff` and the address's low
/// 24 bits.
pub fn solicited_node(a: &Ipv6Addr) -> Group {
    let o = a.octets();
    [0x33, 0x33, 0xff, o[13], o[14], o[15]]
}

/// Formats a group as `33:33:ff:00:00:01`.
pub struct Show<'a>(pub &'a Group);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            g[0], g[1], g[2], g[3], g[4], g[5]
        )
    }
}

/// The groups one interface receives on rvs's behalf.
#[derive(Debug)]
pub struct Membership {
    fd: OwnedFd,
    iface: String,
    ifindex: u32,
    joined: BTreeSet<Group>,
}

impl Membership {
    /// A membership socket for `iface`, holding no group yet.
    pub fn open(iface: &str) -> io::Result<Membership> {
        let ifindex = crate::iface::if_index(iface)
            .map_err(|e| io::Error::new(e.kind(), format!("{iface}: {e}")))?;
        // Protocol 0: the socket receives no frame at all.
        let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0)?;
        Ok(Membership {
            fd,
            iface: iface.to_string(),
            ifindex,
            joined: BTreeSet::new(),
        })
    }

    /// The groups held now.
    pub fn joined(&self) -> &BTreeSet<Group> {
        &self.joined
    }

    /// Holds exactly `want`: joins what is new, leaves what is gone. On an
    /// error the groups handled so far stay as they are now and the error
    /// names the interface and the group.
    pub fn set(&mut self, want: &BTreeSet<Group>) -> io::Result<()> {
        let gone: Vec<Group> = self.joined.difference(want).copied().collect();
        for g in gone {
            self.change(libc::PACKET_DROP_MEMBERSHIP, &g)?;
            self.joined.remove(&g);
        }
        for g in want {
            if !self.joined.contains(g) {
                self.change(libc::PACKET_ADD_MEMBERSHIP, g)?;
                self.joined.insert(*g);
            }
        }
        Ok(())
    }

    fn change(&self, op: libc::c_int, g: &Group) -> io::Result<()> {
        let mut address = [0u8; 8];
        address[..6].copy_from_slice(g);
        let mr = libc::packet_mreq {
            mr_ifindex: self.ifindex as libc::c_int,
            mr_type: libc::PACKET_MR_MULTICAST as libc::c_ushort,
            mr_alen: 6,
            mr_address: address,
        };
        sys::setsockopt(&self.fd, libc::SOL_PACKET, op, &mr).map_err(|e| {
            let what = match op {
                libc::PACKET_ADD_MEMBERSHIP => "join",
                _ => "leave",
            };
            io::Error::new(
                e.kind(),
                format!("{}: cannot {what} {}: {e}", self.iface, Show(g)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solicited_node_group_takes_the_low_24_bits() {
        let a: Ipv6Addr = "2001:db8::1:2345:6789".parse().unwrap();
        assert_eq!(solicited_node(&a), [0x33, 0x33, 0xff, 0x45, 0x67, 0x89]);
        assert_eq!(Show(&solicited_node(&a)).to_string(), "33:33:ff:45:67:89");
    }
}

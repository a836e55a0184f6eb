//! The reading side of UOA for real servers: finds the client address and
//! port that an FNAT load balancer (rvs with `[pipeline] uoa_mode`, or
//! DPVS) put in a UDP datagram, and prints it. The encodings are described
//! in [`rvs_core::wire::uoa`]; the binary `rvs-uoa-decode` reads them from
//! raw sockets on the real server or from a pcap file.
//!
//! This is a tool to see and check UOA, and an example of reading it: a
//! production real server takes the address in its own receive path (for
//! `opp`, DPVS's `uoa` kernel module strips the header and hands the
//! datagram to the UDP socket, which asks the module for the address).

use std::fmt;
use std::net::IpAddr;

use rvs_core::wire::uoa::{self, Mode};

/// One datagram carrying UOA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The client's address, from UOA.
    pub client: IpAddr,
    /// The client's port, from UOA.
    pub client_port: u16,
    /// The UDP destination port (the real server's).
    pub dport: u16,
    /// `ipo` or `opp`.
    pub mode: Mode,
    /// Bytes of UDP payload.
    pub payload_len: usize,
}

impl fmt::Display for Found {
    /// `client 10.0.0.48:40000 dport 53 opp 5 bytes` (IPv6 in brackets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Ipo => "ipo",
            Mode::Opp => "opp",
            Mode::Off => "off",
        };
        let c = match self.client {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        write!(
            f,
            "client {c}:{} dport {} {mode} {} bytes",
            self.client_port, self.dport, self.payload_len
        )
    }
}

/// The UOA of the UDP datagram in IP packet `ip`; None when the packet is
/// not UDP or carries no UOA.
pub fn decode_ip(ip: &[u8]) -> Option<Found> {
    let d = uoa::decode(ip)?;
    if d.proto != 17 {
        return None;
    }
    let udp = ip.get(d.l4..d.l4 + 8)?;
    Some(Found {
        client: d.client.0.to_ip(),
        client_port: d.client.1,
        dport: u16::from_be_bytes([udp[2], udp[3]]),
        mode: d.mode,
        payload_len: usize::from(u16::from_be_bytes([udp[4], udp[5]])).saturating_sub(8),
    })
}

/// The IP packet in a captured frame of link type `linktype` (pcap's
/// numbers: 1 Ethernet, 101 raw IP, 113 Linux cooked, 276 Linux cooked
/// v2), skipping VLAN tags; None for other link types or ethertypes.
pub fn ip_of_frame(linktype: u32, frame: &[u8]) -> Option<&[u8]> {
    let (mut at, mut et) = match linktype {
        1 => (14, u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?])),
        101 => return Some(frame),
        113 => (16, u16::from_be_bytes([*frame.get(14)?, *frame.get(15)?])),
        276 => (20, u16::from_be_bytes([*frame.first()?, *frame.get(1)?])),
        _ => return None,
    };
    while et == 0x8100 || et == 0x88a8 {
        et = u16::from_be_bytes([*frame.get(at + 2)?, *frame.get(at + 3)?]);
        at += 4;
    }
    match et {
        0x0800 | 0x86dd => frame.get(at..),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::addr::Addr;

    /// An IPv4 packet 10.0.0.48 -> 192.168.100.2 with an `opp` header and a
    /// UDP datagram of `payload` bytes to port 53.
    fn opp_packet(payload: usize) -> Vec<u8> {
        let mut opp = [0u8; 12];
        uoa::write_opp(&mut opp, 17, &Addr::v4(10, 0, 0, 48), 40000);
        let total = 20 + 12 + 8 + payload;
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0,
            0,
            64,
            248,
            0,
            0,
        ];
        p.extend_from_slice(&[192, 168, 100, 200, 192, 168, 100, 2]);
        p.extend_from_slice(&opp);
        p.extend_from_slice(&[0x9c, 0x41, 0, 53, 0, (8 + payload) as u8, 0, 0]);
        p.resize(total, b'x');
        p
    }

    #[test]
    fn decodes_opp_and_prints_the_client() {
        let f = decode_ip(&opp_packet(5)).expect("found");
        assert_eq!(f.to_string(), "client 10.0.0.48:40000 dport 53 opp 5 bytes");
    }

    #[test]
    fn frames_of_each_link_type() {
        let ip = opp_packet(1);
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x81, 0, 0, 5, 0x08, 0]);
        eth.extend_from_slice(&ip);
        assert_eq!(ip_of_frame(1, &eth), Some(&ip[..]));
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0]);
        sll.extend_from_slice(&ip);
        assert_eq!(ip_of_frame(113, &sll), Some(&ip[..]));
        assert_eq!(ip_of_frame(101, &ip), Some(&ip[..]));
        assert_eq!(ip_of_frame(105, &ip), None);
    }

    #[test]
    fn plain_udp_is_not_reported() {
        let mut p = opp_packet(0);
        p.drain(20..32);
        p[9] = 17;
        assert_eq!(decode_ip(&p), None);
    }
}

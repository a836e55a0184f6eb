//! The sockets of the runtime: raw IPv4 protocol 112 on the kni device
//! (receive with the IP header, send with a header we build: TTL 255, the
//! instance's source), and the frames of gratuitous ARP / unsolicited NA,
//! sent on the kni device through an AF_PACKET socket (`pnet_datalink`).

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

use crate::vrrp::packet::IpMeta;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: i32 = 112;

/// An interface as the kernel knows it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfInfo {
    /// Its index.
    pub index: u32,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Its first IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 link-local address.
    pub link_local: Option<Ipv6Addr>,
    /// Whether it is administratively up.
    pub up: bool,
}

/// Looks `name` up (None: no such interface).
pub fn if_info(name: &str) -> Option<IfInfo> {
    let i = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)?;
    let ipv4 = i.ips.iter().find_map(|n| match n.ip() {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    });
    let link_local = i.ips.iter().find_map(|n| match n.ip() {
        IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => Some(a),
        _ => None,
    });
    Some(IfInfo {
        index: i.index,
        mac: i.mac.map(|m| m.octets()).unwrap_or_default(),
        ipv4,
        link_local,
        up: i.is_up(),
    })
}

/// A received VRRP message: the interface, the IP facts and the payload.
#[derive(Debug)]
pub struct Received {
    /// The interface it came in on.
    pub ifname: String,
    /// Source, destination, TTL.
    pub meta: IpMeta,
    /// The VRRP message (the IP payload cut at the IP length).
    pub payload: Vec<u8>,
}

/// Parses an IPv4 packet as a raw socket delivers it.
pub fn parse_ipv4(buf: &[u8]) -> Option<(IpMeta, &[u8])> {
    if buf.len() < 20 || buf[0] >> 4 != 4 {
        return None;
    }
    let ihl = (buf[0] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    if ihl < 20 || total < ihl || buf.len() < total || buf[9] as i32 != IPPROTO_VRRP {
        return None;
    }
    let a = |o: usize| IpAddr::V4(Ipv4Addr::new(buf[o], buf[o + 1], buf[o + 2], buf[o + 3]));
    let meta = IpMeta {
        src: a(12),
        dst: a(16),
        ttl: Some(buf[8]),
    };
    Some((meta, &buf[ihl..total]))
}

/// Parses an IPv6 packet carrying VRRP directly (no extension header), as
/// an AF_PACKET socket of type ETH_P_IPV6 delivers it.
pub fn parse_ipv6(buf: &[u8]) -> Option<(IpMeta, &[u8])> {
    if buf.len() < 40 || buf[0] >> 4 != 6 || buf[6] as i32 != IPPROTO_VRRP {
        return None;
    }
    let len = u16::from_be_bytes([buf[4], buf[5]]) as usize;
    let payload = buf.get(40..40 + len)?;
    let a = |o: usize| {
        let mut b = [0u8; 16];
        b.copy_from_slice(&buf[o..o + 16]);
        IpAddr::V6(Ipv6Addr::from(b))
    };
    let meta = IpMeta {
        src: a(8),
        dst: a(24),
        ttl: Some(buf[7]),
    };
    Some((meta, payload))
}

/// The IPv4 header of an advert: TTL 255, protocol 112, no options.
pub fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, payload_len: usize) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[1] = 0xc0; // DSCP CS6 (network control), as keepalived
    h[2..4].copy_from_slice(&((20 + payload_len) as u16).to_be_bytes());
    h[8] = 255;
    h[9] = IPPROTO_VRRP as u8;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

/// The Internet checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum16(data, 0))
}

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        acc += w as u32;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The VRRP sockets of one interface.
pub struct VrrpLink {
    /// The interface (the kni device).
    pub name: String,
    /// Its index when the sockets were opened.
    pub index: u32,
    tx: Socket,
    tx6: Option<Socket>,
    stop: Arc<AtomicBool>,
}

impl VrrpLink {
    /// Opens the sockets on `name` (index `index`): a receiving raw socket
    /// joined to 224.0.0.18 whose reader thread sends what it gets to
    /// `sink`, and a sending one with the header included. With `v6`, also
    /// IPv6: a raw socket joined to ff02::12 sending with hop limit 255,
    /// and a reader of the IPv6 packets of the interface (an AF_PACKET
    /// socket: it gives the source and hop limit without ancillary data).
    pub fn open(name: &str, index: u32, v6: bool, sink: Sender<Received>) -> io::Result<VrrpLink> {
        let ctx =
            |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what} on {name}: {e}"));
        let proto = Some(Protocol::from(IPPROTO_VRRP));
        let rx = Socket::new(Domain::IPV4, Type::RAW, proto).map_err(|e| ctx("raw socket", e))?;
        rx.bind_device(Some(name.as_bytes()))
            .map_err(|e| ctx("SO_BINDTODEVICE", e))?;
        rx.join_multicast_v4_n(
            &Ipv4Addr::new(224, 0, 0, 18),
            &InterfaceIndexOrAddress::Index(index),
        )
        .map_err(|e| ctx("joining 224.0.0.18", e))?;
        rx.set_read_timeout(Some(Duration::from_millis(200)))?;
        let tx = Socket::new(Domain::IPV4, Type::RAW, proto).map_err(|e| ctx("raw socket", e))?;
        tx.set_header_included_v4(true)?;
        tx.bind_device(Some(name.as_bytes()))
            .map_err(|e| ctx("SO_BINDTODEVICE", e))?;
        tx.set_multicast_loop_v4(false)?;
        let stop = Arc::new(AtomicBool::new(false));
        let tx6 = if v6 {
            Some(
                open_v6(name, index, stop.clone(), sink.clone())
                    .map_err(|e| ctx("IPv6 VRRP", e))?,
            )
        } else {
            None
        };
        let (flag, ifname) = (stop.clone(), name.to_string());
        std::thread::Builder::new()
            .name(format!("vrrp-rx-{name}"))
            .spawn(move || reader(rx, ifname, flag, sink))?;
        Ok(VrrpLink {
            name: name.to_string(),
            index,
            tx,
            tx6,
            stop,
        })
    }

    /// Sends one advert. IPv6: the kernel chooses the source (the
    /// interface's link-local address for multicast), which must be `src`,
    /// the address the checksum was computed for.
    pub fn send(&self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> io::Result<()> {
        let (s, d) = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (s, d),
            (_, IpAddr::V6(d)) => {
                let tx6 = self
                    .tx6
                    .as_ref()
                    .ok_or_else(|| io::Error::other("no IPv6 socket"))?;
                let to = std::net::SocketAddrV6::new(d, 0, 0, self.index);
                return tx6.send_to(payload, &SockAddr::from(to)).map(|_| ());
            }
            _ => return Err(io::Error::other("address family mismatch")),
        };
        let mut pkt = ipv4_header(s, d, payload.len()).to_vec();
        pkt.extend_from_slice(payload);
        let to = SockAddr::from(SocketAddr::new(dst, 0));
        self.tx.send_to(&pkt, &to).map(|_| ())
    }
}

impl Drop for VrrpLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn open_v6(
    name: &str,
    index: u32,
    stop: Arc<AtomicBool>,
    sink: Sender<Received>,
) -> io::Result<Socket> {
    use pnet_datalink::{Channel, ChannelType};
    let tx = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))?;
    tx.bind_device(Some(name.as_bytes()))?;
    tx.set_multicast_hops_v6(255)?;
    tx.set_unicast_hops_v6(255)?;
    tx.set_multicast_loop_v6(false)?;
    tx.join_multicast_v6(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12), index)?;
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such interface"))?;
    let cfg = pnet_datalink::Config {
        read_timeout: Some(Duration::from_millis(200)),
        channel_type: ChannelType::Layer3(0x86dd),
        promiscuous: false,
        ..Default::default()
    };
    let mut rx = match pnet_datalink::channel(&iface, cfg)? {
        Channel::Ethernet(_, rx) => rx,
        _ => return Err(io::Error::other("not an Ethernet channel")),
    };
    let ifname = name.to_string();
    std::thread::Builder::new()
        .name(format!("vrrp6-rx-{name}"))
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let pkt = match rx.next() {
                    Ok(p) => p,
                    Err(_) => continue,
                };
                let Some((meta, payload)) = parse_ipv6(pkt) else {
                    continue;
                };
                let r = Received {
                    ifname: ifname.clone(),
                    meta,
                    payload: payload.to_vec(),
                };
                if sink.send(r).is_err() {
                    return;
                }
            }
        })?;
    Ok(tx)
}

fn reader(mut rx: Socket, ifname: String, stop: Arc<AtomicBool>, sink: Sender<Received>) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let n = match rx.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                crate::runtime::log::warn(&format!("receiving VRRP on {ifname}: {e}"));
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        let Some((meta, payload)) = parse_ipv4(&buf[..n]) else {
            continue;
        };
        let r = Received {
            ifname: ifname.clone(),
            meta,
            payload: payload.to_vec(),
        };
        if sink.send(r).is_err() {
            return;
        }
    }
}

/// A gratuitous ARP request for `ip` from `mac` (keepalived sends requests
/// with sender = target = the address, to the broadcast address).
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&ip.octets());
    f
}

/// An unsolicited neighbour advertisement for `ip` from `mac` to all nodes
/// (ff02::1), override flag set, with the target link-layer address option.
pub fn unsolicited_na_frame(mac: [u8; 6], ip: Ipv6Addr) -> Vec<u8> {
    let mut icmp = vec![136u8, 0, 0, 0, 0x20, 0, 0, 0];
    icmp.extend_from_slice(&ip.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&mac);
    let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&ip.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    let sum = fold(sum16(&icmp, sum16(&pseudo, 0)));
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    f.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// Sends `frames` on interface `name` through an AF_PACKET socket.
pub fn send_frames(name: &str, frames: &[Vec<u8>]) -> io::Result<()> {
    use pnet_datalink::Channel;
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no interface {name}")))?;
    let cfg = pnet_datalink::Config {
        read_timeout: Some(Duration::from_millis(1)),
        promiscuous: false,
        ..Default::default()
    };
    let mut tx = match pnet_datalink::channel(&iface, cfg)? {
        Channel::Ethernet(tx, _rx) => tx,
        _ => return Err(io::Error::other("not an Ethernet channel")),
    };
    for f in frames {
        if let Some(r) = tx.send_to(f, None) {
            r?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_round_trips_with_ttl_255_and_a_valid_checksum() {
        let (s, d) = (
            Ipv4Addr::new(192, 168, 100, 11),
            Ipv4Addr::new(224, 0, 0, 18),
        );
        let mut pkt = ipv4_header(s, d, 3).to_vec();
        assert_eq!(checksum(&pkt), 0);
        pkt.extend_from_slice(&[1, 2, 3, 9, 9]); // trailing bytes past the IP length
        let (meta, payload) = parse_ipv4(&pkt).unwrap();
        assert_eq!(meta.src, IpAddr::V4(s));
        assert_eq!(meta.dst, IpAddr::V4(d));
        assert_eq!(meta.ttl, Some(255));
        assert_eq!(payload, &[1, 2, 3]);
    }

    #[test]
    fn ipv6_vrrp_is_parsed_with_its_hop_limit() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::12".parse().unwrap();
        let mut pkt = vec![0x60, 0, 0, 0, 0, 3, 112, 255];
        pkt.extend_from_slice(&src.octets());
        pkt.extend_from_slice(&dst.octets());
        pkt.extend_from_slice(&[7, 8, 9, 0]);
        let (meta, payload) = parse_ipv6(&pkt).unwrap();
        assert_eq!(
            (meta.src, meta.dst, meta.ttl),
            (src.into(), dst.into(), Some(255))
        );
        assert_eq!(payload, &[7, 8, 9]);
        pkt[6] = 58;
        assert!(parse_ipv6(&pkt).is_none(), "not VRRP");
        pkt[6] = 112;
        pkt[5] = 9;
        assert!(parse_ipv6(&pkt).is_none(), "payload length past the end");
    }

    #[test]
    fn parse_refuses_short_or_other_protocols() {
        let mut pkt = ipv4_header(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 0).to_vec();
        assert!(parse_ipv4(&pkt[..19]).is_none());
        pkt[9] = 6;
        assert!(parse_ipv4(&pkt).is_none());
    }

    #[test]
    fn garp_is_a_broadcast_request_for_the_address() {
        let mac = [2, 0, 0, 0, 0, 1];
        let f = garp_frame(mac, Ipv4Addr::new(192, 168, 100, 254));
        assert_eq!(f.len(), 42);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &mac);
        assert_eq!(&f[12..14], &[8, 6]);
        assert_eq!(&f[20..22], &[0, 1], "opcode request");
        assert_eq!(&f[28..32], &[192, 168, 100, 254], "sender IP");
        assert_eq!(&f[38..42], &[192, 168, 100, 254], "target IP");
    }

    #[test]
    fn unsolicited_na_checksum_verifies() {
        let ip: Ipv6Addr = "2001:db8::254".parse().unwrap();
        let f = unsolicited_na_frame([2, 0, 0, 0, 0, 1], ip);
        let icmp = &f[54..];
        assert_eq!(icmp[0], 136);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&f[22..38]);
        pseudo.extend_from_slice(&f[38..54]);
        pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(fold(sum16(icmp, sum16(&pseudo, 0))), 0);
    }
}

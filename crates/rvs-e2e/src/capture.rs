//! Packet captures with tcpdump inside a lab namespace, read back here.

use std::path::PathBuf;
use std::time::Duration;

use crate::Lab;

/// A running tcpdump; [`Capture::stop`] ends it and returns the frames.
pub struct Capture {
    proc_index: usize,
    file: PathBuf,
}

/// One captured frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The bytes, from the Ethernet header.
    pub data: Vec<u8>,
}

impl Frame {
    /// IPv4 header offset, if the frame is IPv4.
    fn ip(&self) -> Option<usize> {
        (self.data.len() >= 34 && self.data[12..14] == [0x08, 0x00]).then_some(14)
    }

    /// IPv4 protocol.
    pub fn proto(&self) -> Option<u8> {
        self.ip().map(|o| self.data[o + 9])
    }

    /// IPv4 source and destination.
    pub fn addrs(&self) -> Option<([u8; 4], [u8; 4])> {
        let o = self.ip()?;
        let d = &self.data;
        Some((
            [d[o + 12], d[o + 13], d[o + 14], d[o + 15]],
            [d[o + 16], d[o + 17], d[o + 18], d[o + 19]],
        ))
    }

    /// Offset of the transport header after the IPv4 header at `o`.
    fn l4_at(&self, o: usize) -> usize {
        o + (self.data[o] & 0xf) as usize * 4
    }

    /// TCP/UDP ports of the (outer) IPv4 packet.
    pub fn ports(&self) -> Option<(u16, u16)> {
        let o = self.ip()?;
        let l4 = self.l4_at(o);
        let d = self.data.get(l4..l4 + 4)?;
        Some((
            u16::from_be_bytes([d[0], d[1]]),
            u16::from_be_bytes([d[2], d[3]]),
        ))
    }

    /// For an IPIP packet: the inner source, destination and ports.
    pub fn inner(&self) -> Option<([u8; 4], [u8; 4], u16, u16)> {
        let o = self.ip()?;
        if self.data[o + 9] != 4 {
            return None;
        }
        let i = self.l4_at(o);
        let d = &self.data;
        let l4 = i + (d.get(i)? & 0xf) as usize * 4;
        let p = d.get(l4..l4 + 4)?;
        Some((
            [d[i + 12], d[i + 13], d[i + 14], d[i + 15]],
            [d[i + 16], d[i + 17], d[i + 18], d[i + 19]],
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        ))
    }

    /// For an ICMPv4 error: its type and code and the packet it quotes.
    pub fn icmp_error(&self) -> Option<IcmpError> {
        let o = self.ip()?;
        let d = &self.data;
        if d[o + 9] != 1 {
            return None;
        }
        let l4 = self.l4_at(o);
        let (ty, code) = (*d.get(l4)?, *d.get(l4 + 1)?);
        if !matches!(ty, 3 | 4 | 5 | 11 | 12) {
            return None;
        }
        let i = l4 + 8;
        let q = d.get(i..i + 20)?;
        let il4 = i + (q[0] & 0xf) as usize * 4;
        let p = d.get(il4..il4 + 4)?;
        Some(IcmpError {
            ty,
            code,
            src: [q[12], q[13], q[14], q[15]],
            dst: [q[16], q[17], q[18], q[19]],
            proto: q[9],
            sport: u16::from_be_bytes([p[0], p[1]]),
            dport: u16::from_be_bytes([p[2], p[3]]),
        })
    }

    /// The payload of a UDP datagram (as far as captured).
    pub fn udp_payload(&self) -> Option<&[u8]> {
        let o = self.ip()?;
        if self.data[o + 9] != 17 {
            return None;
        }
        self.data.get(self.l4_at(o) + 8..)
    }

    /// TCP option 254 (TOA): the client port and IPv4 address it carries.
    pub fn toa(&self) -> Option<(u16, [u8; 4])> {
        let o = self.ip()?;
        if self.data[o + 9] != 6 {
            return None;
        }
        let l4 = self.l4_at(o);
        let d = &self.data;
        let hl = (*d.get(l4 + 12)? >> 4) as usize * 4;
        let mut i = l4 + 20;
        let end = (l4 + hl).min(d.len());
        while i < end {
            match d[i] {
                0 => break,
                1 => i += 1,
                k => {
                    let l = *d.get(i + 1)? as usize;
                    if l < 2 {
                        break;
                    }
                    if k == 254 && l == 8 && i + 8 <= end {
                        return Some((
                            u16::from_be_bytes([d[i + 2], d[i + 3]]),
                            [d[i + 4], d[i + 5], d[i + 6], d[i + 7]],
                        ));
                    }
                    i += l;
                }
            }
        }
        None
    }
}

impl Frame {
    /// IPv6 header offset, if the frame is IPv6 with TCP right after its
    /// fixed header (what rvs and the lab's hosts send).
    fn ip6_tcp(&self) -> Option<usize> {
        (self.data.len() >= 74 && self.data[12..14] == [0x86, 0xdd] && self.data[20] == 6)
            .then_some(14)
    }

    /// IPv6 source and destination of a TCP frame.
    pub fn addrs6(&self) -> Option<(std::net::Ipv6Addr, std::net::Ipv6Addr)> {
        let o = self.ip6_tcp()?;
        let a = |i: usize| -> Option<std::net::Ipv6Addr> {
            let b: [u8; 16] = self.data.get(i..i + 16)?.try_into().ok()?;
            Some(b.into())
        };
        Some((a(o + 8)?, a(o + 24)?))
    }

    /// TCP ports of an IPv6 TCP frame.
    pub fn ports6(&self) -> Option<(u16, u16)> {
        let l4 = self.ip6_tcp()? + 40;
        let d = self.data.get(l4..l4 + 4)?;
        Some((
            u16::from_be_bytes([d[0], d[1]]),
            u16::from_be_bytes([d[2], d[3]]),
        ))
    }

    /// TCP option 254 of 20 bytes (TOA for IPv6): the client port and
    /// IPv6 address it carries.
    pub fn toa6(&self) -> Option<(u16, std::net::Ipv6Addr)> {
        let l4 = self.ip6_tcp()? + 40;
        let d = &self.data;
        let hl = (*d.get(l4 + 12)? >> 4) as usize * 4;
        let mut i = l4 + 20;
        let end = (l4 + hl).min(d.len());
        while i < end {
            match d[i] {
                0 => break,
                1 => i += 1,
                k => {
                    let l = *d.get(i + 1)? as usize;
                    if l < 2 {
                        break;
                    }
                    if k == 254 && l == 20 && i + 20 <= end {
                        let a: [u8; 16] = d[i + 4..i + 20].try_into().ok()?;
                        return Some((u16::from_be_bytes([d[i + 2], d[i + 3]]), a.into()));
                    }
                    i += l;
                }
            }
        }
        None
    }
}

/// An ICMPv4 error and the packet it quotes (see [`Frame::icmp_error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// ICMP type (3 destination unreachable, 11 time exceeded...).
    pub ty: u8,
    /// ICMP code (3 port unreachable, 4 fragmentation needed...).
    pub code: u8,
    /// The quoted packet's source address.
    pub src: [u8; 4],
    /// The quoted packet's destination address.
    pub dst: [u8; 4],
    /// The quoted packet's protocol.
    pub proto: u8,
    /// The quoted packet's source port (TCP/UDP).
    pub sport: u16,
    /// The quoted packet's destination port.
    pub dport: u16,
}

fn read_pcap(path: &PathBuf) -> Vec<Frame> {
    let Ok(b) = std::fs::read(path) else {
        return Vec::new();
    };
    if b.len() < 24 {
        return Vec::new();
    }
    let le = b[0..4] == [0xd4, 0xc3, 0xb2, 0xa1] || b[0..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let rd = |s: &[u8]| {
        let a = [s[0], s[1], s[2], s[3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let caplen = rd(&b[i + 8..i + 12]) as usize;
        let start = i + 16;
        if start + caplen > b.len() {
            break;
        }
        out.push(Frame {
            data: b[start..start + caplen].to_vec(),
        });
        i = start + caplen;
    }
    out
}

impl Capture {
    /// Starts tcpdump on `iface` in namespace `ns` with a capture filter.
    pub fn start(lab: &mut Lab, ns: &str, iface: &str, filter: &str) -> Capture {
        let n = lab.dir.read_dir().map(|d| d.count()).unwrap_or(0);
        let file = lab.dir.join(format!("cap-{ns}-{iface}-{n}.pcap"));
        let f = file.to_string_lossy().into_owned();
        let mut args = vec![
            "tcpdump",
            "-Z",
            "root",
            "-i",
            iface,
            "--immediate-mode",
            "-U",
            "-n",
            "-s",
            "256",
            "-w",
            &f,
        ];
        args.extend(filter.split_whitespace());
        let proc_index = lab.spawn(ns, &format!("tcpdump-{ns}-{iface}-{n}"), &args, &[]);
        // tcpdump prints "listening on" once the capture runs.
        let log = lab.dir.join(format!("tcpdump-{ns}-{iface}-{n}.log"));
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < end {
            if std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("listening on")
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Capture { proc_index, file }
    }

    /// Stops the capture and returns what it saw.
    pub fn stop(self, lab: &mut Lab) -> Vec<Frame> {
        std::thread::sleep(Duration::from_millis(200));
        let p = lab.proc(self.proc_index);
        p.signal("INT");
        p.wait_exit(Duration::from_secs(3));
        read_pcap(&self.file)
    }
}

//! `rvs-bench flood-gen`: the flood generator `rvs-bench flood` starts in
//! the attacker's namespace. It writes frames into an AF_PACKET TX ring,
//! a batch every millisecond, at a bounded rate for a bounded time, to one
//! destination MAC and address; each frame gets a fresh random source (and
//! ports, sequence numbers) written in place, checksums recomputed. Cheap
//! per packet, so the flood's cost on the load core is the kernel's
//! delivery, not the generator's (hping3 `-i u20` took most of a core for
//! fewer than 20,000 packets per second here).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rvs_core::lab::Rng;

use crate::e2e::agent::parse_mac;

/// What the generator sends.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// TCP SYNs to port 80, random sources, ports and sequence numbers.
    Syn,
    /// TCP ACKs to port 80, random sources, sequence and ack numbers.
    Ack,
    /// 64-byte UDP datagrams to ever-changing ports, random sources.
    Udp,
    /// Halves of 1,000-byte UDP datagrams (first or last fragment), random
    /// sources and IP ids.
    Frag,
    /// TCP SYNs to port 80 from `--src` itself, random source ports.
    OneSource,
}

/// Arguments of `rvs-bench flood-gen`.
#[derive(clap::Args, Debug)]
pub struct GenArgs {
    /// Interface to transmit on.
    #[arg(long)]
    iface: String,
    /// Destination MAC (the next hop).
    #[arg(long)]
    dst_mac: String,
    /// Destination address.
    #[arg(long)]
    dst: Ipv4Addr,
    /// The attacker's own address (the source of `one-source`).
    #[arg(long)]
    src: Ipv4Addr,
    /// What to send.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Packets per second.
    #[arg(long)]
    pps: u32,
    /// How long, in seconds.
    #[arg(long)]
    secs: f64,
    /// Pin to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
}

/// Sum of big-endian 16-bit words.
fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// The ones' complement of the folded sum.
fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Offsets in the frame.
const IP: usize = 14;
const L4: usize = IP + 20;

/// A frame template for `kind` (Ethernet + IPv4 + L4), fields filled per
/// packet by [`fill`].
fn template(kind: Kind, macs: ([u8; 6], [u8; 6]), dst: Ipv4Addr) -> Vec<u8> {
    let (l4_len, proto) = match kind {
        Kind::Syn | Kind::Ack | Kind::OneSource => (20, 6u8),
        Kind::Udp => (30, 17),
        Kind::Frag => (504, 17),
    };
    let mut f = vec![0u8; L4 + l4_len];
    f[0..6].copy_from_slice(&macs.1);
    f[6..12].copy_from_slice(&macs.0);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[IP] = 0x45;
    let ip_len = (20 + l4_len) as u16;
    f[IP + 2..IP + 4].copy_from_slice(&ip_len.to_be_bytes());
    f[IP + 8] = 64;
    f[IP + 9] = proto;
    f[IP + 16..IP + 20].copy_from_slice(&dst.octets());
    if proto == 6 {
        f[L4 + 2..L4 + 4].copy_from_slice(&80u16.to_be_bytes());
        f[L4 + 12] = 5 << 4;
        f[L4 + 13] = if kind == Kind::Ack { 0x10 } else { 0x02 };
        f[L4 + 14..L4 + 16].copy_from_slice(&64240u16.to_be_bytes());
    } else {
        for (i, b) in f[L4 + 8..].iter_mut().enumerate() {
            *b = b'a' + (i % 26) as u8;
        }
    }
    f
}

/// A random unicast source outside the lab's 10.0.0.0/8.
fn random_source(r: &mut Rng) -> [u8; 4] {
    loop {
        let a = r.u32();
        let first = (a >> 24) as u8;
        if (1..224).contains(&first) && first != 10 && first != 127 {
            return a.to_be_bytes();
        }
    }
}

/// Writes packet `n`'s random fields and checksums into `f`.
fn fill(f: &mut [u8], kind: Kind, src: Ipv4Addr, n: u64, r: &mut Rng) {
    let s = match kind {
        Kind::OneSource => src.octets(),
        _ => random_source(r),
    };
    f[IP + 12..IP + 16].copy_from_slice(&s);
    let x = r.next();
    f[IP + 4..IP + 6].copy_from_slice(&(x as u16).to_be_bytes());
    match kind {
        Kind::Syn | Kind::Ack | Kind::OneSource => {
            f[L4..L4 + 2].copy_from_slice(&(1024 + (x >> 16) as u16 % 64000).to_be_bytes());
            f[L4 + 4..L4 + 12].copy_from_slice(&r.next().to_be_bytes());
        }
        Kind::Udp => {
            f[L4..L4 + 2].copy_from_slice(&(1024 + (x >> 16) as u16 % 64000).to_be_bytes());
            f[L4 + 2..L4 + 4].copy_from_slice(&(n as u16).to_be_bytes());
            f[L4 + 4..L4 + 6].copy_from_slice(&(L4_UDP_LEN).to_be_bytes());
        }
        Kind::Frag => {
            // First half (MF, offset 0, with the UDP header) or last half.
            let first = n.is_multiple_of(2);
            let frag: u16 = if first { 0x2000 } else { 504 / 8 };
            f[IP + 6..IP + 8].copy_from_slice(&frag.to_be_bytes());
            f[L4..L4 + 2].copy_from_slice(&(1024 + (x >> 16) as u16 % 64000).to_be_bytes());
            f[L4 + 2..L4 + 4].copy_from_slice(&53u16.to_be_bytes());
            f[L4 + 4..L4 + 6].copy_from_slice(&1008u16.to_be_bytes());
        }
    }
    f[IP + 10..IP + 12].fill(0);
    let c = fold(sum16(&f[IP..L4]));
    f[IP + 10..IP + 12].copy_from_slice(&c.to_be_bytes());
    l4_checksum(f, kind);
}

/// UDP length of the `udp` kind.
const L4_UDP_LEN: u16 = 30;

/// The TCP or UDP checksum over the pseudo-header (none for fragments: a
/// receiver cannot check it before reassembly).
fn l4_checksum(f: &mut [u8], kind: Kind) {
    let at = match kind {
        Kind::Frag => return,
        Kind::Udp => L4 + 6,
        _ => L4 + 16,
    };
    f[at..at + 2].fill(0);
    let len = (f.len() - L4) as u32;
    let pseudo = sum16(&f[IP + 12..IP + 20]) + u32::from(f[IP + 9]) + len;
    let c = fold(pseudo + sum16(&f[L4..]));
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Runs the generator; prints `{"sent":N,"secs":S}` at the end.
pub fn gen(a: GenArgs) -> i32 {
    if let Some(cpu) = a.cpu {
        if let Err(e) = rvs_io::iface::pin_thread(cpu) {
            eprintln!("flood-gen: cannot pin to CPU {cpu}: {e}");
            return 2;
        }
    }
    let Some(dst_mac) = parse_mac(&a.dst_mac) else {
        eprintln!("flood-gen: bad MAC {}", a.dst_mac);
        return 2;
    };
    let (src_mac, ifindex) = match (
        rvs_io::iface::mac_of(&a.iface),
        rvs_io::iface::if_index(&a.iface),
    ) {
        (Ok(m), Ok(i)) => (m, i),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("flood-gen: interface {}: {e}", a.iface);
            return 2;
        }
    };
    let mut f = template(a.kind, (src_mac, dst_mac), a.dst);
    let mut tx = match rvs_io::TxRing::open(ifindex, 2048, 4096) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("flood-gen: cannot open a TX ring on {}: {e}", a.iface);
            return 2;
        }
    };
    let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(a.secs.max(0.0));
    let mut n = 0u64;
    while Instant::now() < end {
        let due = (start.elapsed().as_secs_f64() * f64::from(a.pps)) as u64;
        while n < due {
            fill(&mut f, a.kind, a.src, n, &mut r);
            if !tx.send(&f) {
                tx.flush();
                break;
            }
            n += 1;
        }
        tx.flush();
        std::thread::sleep(Duration::from_millis(1));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"sent\":{},\"secs\":{secs:.3},\"ring_full\":{}}}",
        tx.stats().packets,
        tx.stats().ring_full
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind's frames carry valid IPv4 (and TCP/UDP) checksums and
    /// the addresses asked for.
    #[test]
    fn frames_are_valid() {
        let dst = Ipv4Addr::new(10, 0, 0, 100);
        let src = Ipv4Addr::new(10, 0, 0, 66);
        let mut r = Rng(1);
        for kind in [Kind::Syn, Kind::Ack, Kind::Udp, Kind::Frag, Kind::OneSource] {
            let mut f = template(kind, ([2; 6], [4; 6]), dst);
            for n in 0..4 {
                fill(&mut f, kind, src, n, &mut r);
                assert_eq!(fold(sum16(&f[IP..L4])), 0, "{kind:?} IP checksum");
                assert_eq!(&f[IP + 16..IP + 20], &dst.octets());
                if kind == Kind::OneSource {
                    assert_eq!(&f[IP + 12..IP + 16], &src.octets());
                } else {
                    assert_ne!(f[IP + 12], 10, "{kind:?} spoofed outside the lab");
                }
                if kind != Kind::Frag {
                    let len = (f.len() - L4) as u32;
                    let pseudo = sum16(&f[IP + 12..IP + 20]) + u32::from(f[IP + 9]) + len;
                    assert_eq!(fold(pseudo + sum16(&f[L4..])), 0, "{kind:?} L4 checksum");
                }
            }
        }
    }
}

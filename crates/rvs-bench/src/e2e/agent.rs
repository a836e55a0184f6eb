//! The two helpers `rvs-bench e2e` starts inside the namespaces it creates:
//! a 64-byte UDP generator on an AF_PACKET TX ring (`e2e-gen`, in the client
//! namespace) and a one-shot UDP receiver that prints when the first datagram
//! arrived (`e2e-sink`, in a real server's namespace, for the startup case).

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Arguments of `rvs-bench e2e-gen` (started by `rvs-bench e2e`).
#[derive(clap::Args, Debug)]
pub struct GenArgs {
    /// Interface to transmit on.
    #[arg(long)]
    iface: String,
    /// Destination MAC (the next hop: the load balancer's port).
    #[arg(long)]
    dst_mac: String,
    /// Source IPv4 address.
    #[arg(long)]
    src: Ipv4Addr,
    /// Destination IPv4 addresses, used in turn by successive flows.
    #[arg(long, value_delimiter = ',', required = true)]
    dst: Vec<Ipv4Addr>,
    /// UDP destination port.
    #[arg(long, default_value_t = 9)]
    port: u16,
    /// Flows: flow i comes from address `--src` + (i mod `--src-count`)
    /// and UDP source port `--sport-base` + i / `--src-count` (one frame of
    /// `--frame` bytes is built per flow beforehand).
    #[arg(long, default_value_t = 64)]
    flows: u32,
    /// Source addresses the flows take in turn, from `--src` upward.
    #[arg(long, default_value_t = 1)]
    src_count: u32,
    /// UDP source port of the first flow of each source address.
    #[arg(long, default_value_t = 10_000)]
    sport_base: u16,
    /// Send every flow's frame exactly once, then stop (`--secs` is then a
    /// time limit): one connection per flow in the load balancer.
    #[arg(long)]
    once: bool,
    /// Ethernet frame length without FCS (at least 42).
    #[arg(long, default_value_t = 64)]
    frame: usize,
    /// How long to send, in seconds.
    #[arg(long)]
    secs: f64,
    /// Microseconds between frames; 0 sends as fast as the ring allows.
    #[arg(long, default_value_t = 0)]
    interval_us: u64,
    /// Pin to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Frames per second, in bursts of at most 64 (overrides
    /// `--interval-us`); 0: not paced.
    #[arg(long, default_value_t = 0)]
    pps: u64,
}

/// Arguments of `rvs-bench e2e-sink` (started by `rvs-bench e2e`).
#[derive(clap::Args, Debug)]
pub struct SinkArgs {
    /// UDP port to listen on (all addresses).
    #[arg(long)]
    port: u16,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 60_000)]
    timeout_ms: u64,
}

pub(crate) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut n = 0;
    for (i, part) in s.trim().split(':').enumerate() {
        if i >= 6 {
            return None;
        }
        m[i] = u8::from_str_radix(part, 16).ok()?;
        n = i + 1;
    }
    (n == 6).then_some(m)
}

fn csum_add(mut sum: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One Ethernet/IPv4/UDP frame of `len` bytes with valid checksums, from
/// `(src, dst)` MACs, addresses and ports.
pub(crate) fn udp_frame(
    len: usize,
    macs: ([u8; 6], [u8; 6]),
    addrs: (Ipv4Addr, Ipv4Addr),
    ports: (u16, u16),
    id: u16,
) -> Vec<u8> {
    let mut f = vec![0u8; len];
    udp_frame_into(&mut f, macs, addrs, ports, id);
    f
}

/// [`udp_frame`] written into `f` (its length is the frame's; at least 42).
pub(crate) fn udp_frame_into(
    f: &mut [u8],
    (src_mac, dst_mac): ([u8; 6], [u8; 6]),
    (src, dst): (Ipv4Addr, Ipv4Addr),
    (sport, dport): (u16, u16),
    id: u16,
) {
    let len = f.len();
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (len - 14) as u16;
    let udp_len = ip_len - 20;
    {
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[4..6].copy_from_slice(&id.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&src.octets());
        ip[16..20].copy_from_slice(&dst.octets());
        let c = csum_fold(csum_add(0, ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
    for (i, b) in f[42..].iter_mut().enumerate() {
        *b = b'a' + (i % 26) as u8;
    }
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[38..40].copy_from_slice(&udp_len.to_be_bytes());
    let mut sum = csum_add(0, &src.octets());
    sum = csum_add(sum, &dst.octets());
    sum += 17 + u32::from(udp_len);
    sum = csum_add(sum, &f[34..]);
    let mut c = csum_fold(sum);
    if c == 0 {
        c = 0xffff;
    }
    f[40..42].copy_from_slice(&c.to_be_bytes());
}

/// The source address and port of flow `i` of `e2e-gen` (see
/// [`GenArgs`]'s `--flows`), or None when the port would pass 65535.
pub(crate) fn flow_source(
    src: Ipv4Addr,
    src_count: u32,
    sport_base: u16,
    i: u32,
) -> Option<(Ipv4Addr, u16)> {
    let n = src_count.max(1);
    let port = u16::try_from(u32::from(sport_base) + i / n).ok()?;
    Some((Ipv4Addr::from(u32::from(src).wrapping_add(i % n)), port))
}

/// The generator's frames, built beforehand, back to back in one buffer
/// (no per-flow allocation: 5,000,000 flows of 64 bytes take 320 MB).
pub(crate) struct Frames {
    buf: Vec<u8>,
    len: usize,
}

impl Frames {
    /// How many frames.
    pub(crate) fn count(&self) -> usize {
        self.buf.len() / self.len
    }

    /// Frame `i`.
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        &self.buf[i * self.len..(i + 1) * self.len]
    }
}

/// Largest frame buffer the generator builds (flows × frame length).
const MAX_FRAME_BYTES: usize = 2 << 30;

/// Builds one frame per flow; an error names what is out of range.
fn build_frames(a: &GenArgs, macs: ([u8; 6], [u8; 6])) -> Result<Frames, String> {
    let flows = a.flows as usize;
    if flows * a.frame > MAX_FRAME_BYTES {
        return Err(format!(
            "{} flows of {} bytes need more than {} MiB of frames",
            a.flows,
            a.frame,
            MAX_FRAME_BYTES >> 20
        ));
    }
    if flow_source(a.src, a.src_count, a.sport_base, a.flows - 1).is_none() {
        return Err(format!(
            "{} flows over {} source addresses from port {} pass port 65535: raise --src-count",
            a.flows, a.src_count, a.sport_base
        ));
    }
    let mut buf = vec![0u8; flows * a.frame];
    for (i, f) in buf.chunks_exact_mut(a.frame).enumerate() {
        let i = i as u32;
        let (src, sport) = flow_source(a.src, a.src_count, a.sport_base, i).unwrap_or((a.src, 0));
        let dst = a.dst[i as usize % a.dst.len()];
        udp_frame_into(f, macs, (src, dst), (sport, a.port), i as u16);
    }
    Ok(Frames { buf, len: a.frame })
}

/// Runs the generator; prints one JSON object (`sent`, `secs`, ...) at the end.
pub fn gen(a: GenArgs) -> i32 {
    if let Some(cpu) = a.cpu {
        if let Err(e) = rvs_io::iface::pin_thread(cpu) {
            eprintln!("e2e-gen: cannot pin to CPU {cpu}: {e}");
            return 2;
        }
    }
    let Some(dst_mac) = parse_mac(&a.dst_mac) else {
        eprintln!("e2e-gen: bad MAC {}", a.dst_mac);
        return 2;
    };
    if !(42..=1514).contains(&a.frame) || a.flows == 0 || a.dst.is_empty() {
        eprintln!("e2e-gen: frame must be 42..1514 bytes, flows and dst non-empty");
        return 2;
    }
    let (src_mac, ifindex) = match (
        rvs_io::iface::mac_of(&a.iface),
        rvs_io::iface::if_index(&a.iface),
    ) {
        (Ok(m), Ok(i)) => (m, i),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("e2e-gen: interface {}: {e}", a.iface);
            return 2;
        }
    };
    let built = Instant::now();
    let frames = match build_frames(&a, (src_mac, dst_mac)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("e2e-gen: {e}");
            return 2;
        }
    };
    // Slots just large enough for the frame (with the 42 bytes of slot and
    // virtio-net headers).
    let slot = (a.frame + 42).next_multiple_of(64).max(128) as u32;
    let mut tx = match rvs_io::TxRing::open(ifindex, slot, 4096) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("e2e-gen: cannot open a TX ring on {}: {e}", a.iface);
            return 2;
        }
    };
    let build_secs = built.elapsed().as_secs_f64();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(a.secs.max(0.0));
    let mut i = 0usize;
    // With --once, every frame is sent exactly once.
    let limit = if a.once {
        frames.count() as u64
    } else {
        u64::MAX
    };
    if a.pps > 0 {
        super::pace::paced(&mut tx, &frames, a.pps, end, limit);
    } else if a.interval_us == 0 {
        // As fast as possible: fill a burst of slots, one sendto per burst
        // (the kernel transmits the burst synchronously, veth never blocks).
        let mut sent = 0u64;
        while Instant::now() < end && sent < limit {
            for _ in 0..256 {
                if sent == limit || !tx.send(frames.get(i)) {
                    break;
                }
                sent += 1;
                i += 1;
                if i == frames.count() {
                    i = 0;
                }
            }
            tx.flush();
        }
    } else {
        let step = Duration::from_micros(a.interval_us);
        let mut next = start;
        let mut sent = 0u64;
        while Instant::now() < end && sent < limit {
            sent += u64::from(tx.send(frames.get(i)));
            tx.flush();
            i = (i + 1) % frames.count();
            next += step;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let s = tx.stats();
    println!(
        "{{\"sent\":{},\"secs\":{secs:.3},\"build_secs\":{build_secs:.3},\"ring_full\":{},\"kick_errors\":{}}}",
        s.packets, s.ring_full, s.kick_errors
    );
    0
}

/// Waits for one datagram; prints its arrival time (nanoseconds since the
/// Unix epoch) and exits 0, or exits 1 after the timeout.
pub fn sink(a: SinkArgs) -> i32 {
    let sock = match UdpSocket::bind(("0.0.0.0", a.port)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("e2e-sink: cannot bind UDP port {}: {e}", a.port);
            return 2;
        }
    };
    // Ready: the parent waits for this line before it starts what it times.
    println!("ready");
    let _ = sock.set_read_timeout(Some(Duration::from_millis(a.timeout_ms.max(1))));
    let mut buf = [0u8; 2048];
    match sock.recv_from(&mut buf) {
        Ok(_) => {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            println!("{t}");
            0
        }
        Err(e) => {
            eprintln!("e2e-sink: nothing arrived: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_checksums_verify() {
        let f = udp_frame(
            64,
            ([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1]),
            (Ipv4Addr::new(10, 0, 0, 48), Ipv4Addr::new(10, 0, 0, 100)),
            (10_000, 9),
            1,
        );
        assert_eq!(f.len(), 64);
        assert_eq!(csum_fold(csum_add(0, &f[14..34])), 0);
        let mut sum = csum_add(0, &f[26..34]);
        sum += 17 + u32::from(u16::from_be_bytes([f[38], f[39]]));
        sum = csum_add(sum, &f[34..]);
        assert_eq!(csum_fold(sum), 0);
        assert_eq!(parse_mac("02:00:00:00:00:0a"), Some([2, 0, 0, 0, 0, 10]));
        assert_eq!(parse_mac("02:00"), None);
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        gen: GenArgs,
    }

    fn gen_args(extra: &[&str]) -> GenArgs {
        use clap::Parser;
        let base = [
            "gen",
            "--iface",
            "eth0",
            "--dst-mac",
            "02:00:00:00:00:01",
            "--src",
            "10.0.128.0",
            "--dst",
            "10.0.0.100",
            "--secs",
            "1",
        ];
        Cli::parse_from(base.iter().chain(extra)).gen
    }

    #[test]
    fn flows_beyond_u16_spread_over_source_addresses() {
        let s = Ipv4Addr::new(10, 0, 128, 0);
        // Sources vary fastest, then the port.
        assert_eq!(flow_source(s, 4, 1024, 0), Some((s, 1024)));
        assert_eq!(
            flow_source(s, 4, 1024, 5),
            Some((Ipv4Addr::new(10, 0, 128, 1), 1025))
        );
        // 5,000,000 flows over 32,768 sources stay far below port 65535.
        assert_eq!(
            flow_source(s, 32_768, 1024, 4_999_999),
            Some((Ipv4Addr::new(10, 0, 203, 63), 1024 + 152))
        );
        // One source: the old layout (port 10000 + i), refused past 65535.
        assert_eq!(flow_source(s, 1, 10_000, 55_535), Some((s, 65_535)));
        assert_eq!(flow_source(s, 1, 10_000, 55_536), None);
    }

    #[test]
    fn frames_are_built_once_per_flow_and_refused_past_the_last_port() {
        let a = gen_args(&[
            "--flows",
            "70000",
            "--src-count",
            "2",
            "--sport-base",
            "1024",
            "--frame",
            "60",
        ]);
        let f = build_frames(&a, ([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])).expect("fits");
        assert_eq!(f.count(), 70_000);
        let last = f.get(69_999);
        assert_eq!(last.len(), 60);
        assert_eq!(&last[26..30], &[10, 0, 128, 1]);
        assert_eq!(u16::from_be_bytes([last[34], last[35]]), 1024 + 34_999);
        let a = gen_args(&["--flows", "70000"]);
        let e = build_frames(&a, ([0; 6], [0; 6])).err().expect("refused");
        assert!(e.contains("--src-count"), "{e}");
    }
}

//! rvs-udp: a small UDP echo server and a many-source-ports probe, for the
//! lab's UDP cases (std only).
//!
//! `rvs-udp echo ADDR:PORT [LABEL] [--quiet]` answers every datagram with
//! `<label> <peer ip>:<peer port> <payload>` and prints `seen <peer>` for
//! each one it gets (not with `--quiet`).
//!
//! `rvs-udp stream --pps N --secs S [--from-port P] [--stop-file F] [--warmup-ms W] TARGET:PORT`
//! sends a numbered stream (`seq-<n>`) of N datagrams per second for S
//! seconds (or until file F exists) from one socket (one flow), reads the
//! echoes with their kernel receive times, and prints one JSON line
//! ([`rvs_e2e::stream::StreamReport`]): the longest time the path held the
//! stream, sequence numbers never echoed, echoes seen twice; silence in
//! its first W ms (its own start) is not counted as a gap.
//!
//! `rvs-udp ping --pps N --secs S [--stop-file F] [--warmup-ms W] TARGET:0` does the same
//! with ICMP echo requests (a raw socket: root), numbered in their payload;
//! the same JSON line (`sent`, `received`, `longest_gap_ms`, ...).
//!
//! `rvs-udp probe --sources N --from-port P [--timeout-ms T] TARGET:PORT`
//! sends one datagram from each of N sockets bound to ports P..P+N, waits for
//! the answers, and prints
//! `sent N replies M`, then one `from <addr> <count>` line per address the
//! replies came from, one `label <label> <count>` line per echo server that
//! answered, and one `peer <ip> <count>` line per peer address the servers
//! saw. It exits 0 when it ran (whatever came back).
//!
//! Stream, ping and echo move datagrams by the batch (`sendmmsg`,
//! `recvmmsg`; [`mmsg`]): the stream wakes once per 0.5 ms tick, sends
//! what is due in one call and reads what came back in another, the echo
//! server answers what one read brought in one send. Per datagram the old
//! loop made two system calls on each side and woke the reader per echo;
//! at 50,000 datagrams/s that, on the client side's one CPU, lost most of
//! the stream with no event at all.
//!
//! IPv6 works throughout: `echo [::]:53` (which takes IPv4 too),
//! `probe ... [2001:db8::100]:53`; the client sockets bind to the wildcard
//! of the target's family. An IPv6 peer is printed in brackets
//! (`[fd00:100::200]:40001`, `peer [fd00:100::200] 50`).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod mmsg;

use mmsg::{RecvBatch, SendBatch};

fn usage() -> ! {
    eprintln!(
        "usage: rvs-udp echo ADDR:PORT [LABEL] [--quiet]\n       rvs-udp stream --pps N --secs S [--from-port P] [--stop-file F] [--warmup-ms W] TARGET:PORT\n       rvs-udp ping --pps N --secs S [--stop-file F] [--warmup-ms W] TARGET:0\n       rvs-udp probe --sources N --from-port P [--timeout-ms T] TARGET:PORT"
    );
    std::process::exit(2)
}

/// Datagrams read or sent per system call (a 0.5 ms burst of a 50,000/s
/// stream is 25).
const BATCH: usize = 64;

/// Socket buffers of the stream and the echo servers (bytes): a burst
/// waits there for the next batch read, a stalled reader loses nothing for
/// tens of ms.
const SOCKET_BUFFER: usize = 8 << 20;

/// The echo server: each batch of datagrams read is answered in one send,
/// each reply `LABEL PEER PAYLOAD`.
fn echo(addr: &str, label: &str, quiet: bool) -> std::io::Result<()> {
    let s = UdpSocket::bind(addr)?;
    let fd = s.as_raw_fd();
    mmsg::buffers(fd, SOCKET_BUFFER);
    println!("listening {}", s.local_addr()?);
    std::io::stdout().flush()?;
    let mut rx = RecvBatch::new(BATCH);
    let mut tx = SendBatch::new();
    // `LABEL PEER ` of the last peer (one stream: always the same).
    let mut prefix: (Option<SocketAddr>, Vec<u8>) = (None, Vec::new());
    loop {
        match rx.recv(fd, true) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r?,
        };
        for i in 0..rx.len() {
            let (data, peer, _) = rx.get(i);
            let Some(peer) = peer else { continue };
            if prefix.0 != Some(peer) {
                prefix = (Some(peer), format!("{label} {peer} ").into_bytes());
            }
            tx.push(&[&prefix.1, data], Some(peer));
            if !quiet {
                println!("seen {peer}");
            }
        }
        tx.flush(fd);
        if !quiet {
            std::io::stdout().flush()?;
        }
    }
}

/// The wildcard address of `target`'s family, to bind a client socket to.
fn unspecified(target: SocketAddr) -> IpAddr {
    match target {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn probe(
    target: SocketAddr,
    sources: u16,
    from_port: u16,
    timeout: Duration,
) -> std::io::Result<()> {
    let mut socks = Vec::new();
    for i in 0..sources {
        let port = from_port
            .checked_add(i)
            .ok_or_else(|| std::io::Error::other("port range overflows"))?;
        let s = UdpSocket::bind((unspecified(target), port))?;
        s.set_nonblocking(true)?;
        s.send_to(format!("probe-{port}").as_bytes(), target)?;
        socks.push((port, s, false));
    }
    let mut from: BTreeMap<String, u32> = BTreeMap::new();
    let mut labels: BTreeMap<String, u32> = BTreeMap::new();
    let mut peers: BTreeMap<String, u32> = BTreeMap::new();
    let mut replies = 0u32;
    let mut buf = [0u8; 2048];
    let end = Instant::now() + timeout;
    while Instant::now() < end && socks.iter().any(|s| !s.2) {
        let mut got = false;
        for (port, s, done) in socks.iter_mut() {
            if *done {
                continue;
            }
            match s.recv_from(&mut buf) {
                Ok((n, src)) => {
                    got = true;
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let mut w = text.split(' ');
                    let (Some(label), Some(peer), Some(payload)) = (w.next(), w.next(), w.next())
                    else {
                        continue;
                    };
                    if payload != format!("probe-{port}") {
                        continue;
                    }
                    *done = true;
                    replies += 1;
                    *from.entry(src.to_string()).or_default() += 1;
                    *labels.entry(label.to_string()).or_default() += 1;
                    let ip = peer.rsplit_once(':').map_or(peer, |p| p.0);
                    *peers.entry(ip.to_string()).or_default() += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => {}
            }
        }
        if !got {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    println!("sent {sources} replies {replies}");
    for (k, v) in from {
        println!("from {k} {v}");
    }
    for (k, v) in labels {
        println!("label {k} {v}");
    }
    for (k, v) in peers {
        println!("peer {k} {v}");
    }
    Ok(())
}

/// The echo's sequence number: the payload after the label and the peer.
fn seq_of(reply: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(reply).ok()?;
    text.rsplit(' ').next()?.strip_prefix("seq-")?.parse().ok()
}

/// What a stream sends and reads back: numbered UDP datagrams to an echo
/// server, or ICMP echo requests (`ping`).
enum Kind {
    /// UDP on a socket connected to its target.
    Udp,
    /// ICMP echo to this address, with this identifier.
    Icmp(SocketAddr, u16),
}

impl Kind {
    /// Adds number `seq` to the batch `b`.
    fn push(&self, b: &mut SendBatch, seq: u64) {
        match self {
            Kind::Udp => b.push(&[format!("seq-{seq}").as_bytes()], None),
            Kind::Icmp(to, id) => b.push(&[&icmp_echo(*id, seq)], Some(*to)),
        }
    }

    /// The number an answer carries, if it is one of ours.
    fn seq(&self, reply: &[u8]) -> Option<u64> {
        match self {
            Kind::Udp => seq_of(reply),
            Kind::Icmp(_, id) => icmp_reply_seq(reply, *id),
        }
    }
}

/// An ICMP echo request with identifier `id`, sequence number `seq` (low
/// 16 bits) and payload `seq-<seq>`.
fn icmp_echo(id: u16, seq: u64) -> Vec<u8> {
    let mut p = vec![8u8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&(seq as u16).to_be_bytes());
    p.extend_from_slice(format!("seq-{seq}").as_bytes());
    let mut sum = 0u32;
    for c in p.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

/// The number of an ICMP echo reply with identifier `id` as a raw socket
/// reads it (IPv4 header first).
fn icmp_reply_seq(pkt: &[u8], id: u16) -> Option<u64> {
    let ihl = usize::from(*pkt.first()? & 0x0f) * 4;
    let icmp = pkt.get(ihl..)?;
    if icmp.len() < 8 || icmp[0] != 0 || icmp[4..6] != id.to_be_bytes() {
        return None;
    }
    std::str::from_utf8(&icmp[8..])
        .ok()?
        .strip_prefix("seq-")?
        .parse()
        .ok()
}

/// A raw ICMP socket (root), as a `UdpSocket` for its send/receive calls.
fn icmp_socket() -> std::io::Result<UdpSocket> {
    // SAFETY: plain socket(2) call; the descriptor is checked, then owned.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    Ok(UdpSocket::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The tick of the stream: the numbers due are sent, the answers read.
const TICK: Duration = Duration::from_micros(500);

/// Reads at most this many batches per tick: the sends stay on time
/// however much comes in.
const DRAIN_BATCHES: usize = 16;

/// The stream: one thread, each [`TICK`], sends the numbers due in one
/// batch (until `secs` passed or `stop` exists), then reads the answers
/// waiting, with their kernel receive times, and sleeps until the next
/// tick (no wake-up per answer); 300 ms after the last send it reports.
/// How a stream runs: datagrams per second, for how long at most, until
/// which file exists, and its warm-up (s; see [`rvs_e2e::stream::Tally::warm_until`]).
struct Run<'a> {
    pps: u64,
    secs: f64,
    stop: Option<&'a Path>,
    warmup: f64,
}

fn stream(s: &UdpSocket, kind: &Kind, run: &Run) -> std::io::Result<()> {
    let Run {
        pps, secs, stop, ..
    } = *run;
    let fd = s.as_raw_fd();
    s.set_nonblocking(true)?;
    mmsg::stamp_receives(fd)?;
    mmsg::buffers(fd, SOCKET_BUFFER);
    let total = (pps as f64 * secs) as u64;
    let t0 = rvs_e2e::gap::wall();
    let mut tally = rvs_e2e::stream::Tally::new(t0, total as usize);
    tally.warm_until(t0 + run.warmup);
    let (mut rx, mut tx) = (RecvBatch::new(BATCH), SendBatch::new());
    let start = Instant::now();
    let (mut sent, mut limit, mut ended) = (0u64, total, None::<Instant>);
    let mut checks = 0u32;
    loop {
        let due = ((start.elapsed().as_secs_f64() * pps as f64) as u64 + 1).min(limit);
        if due > sent {
            // The burst's time is its first datagram's, taken once the
            // kernel has it (as when each went in a call of its own); the
            // rest follow in batches. A send refused (no route yet, a full
            // queue) is a datagram lost.
            let first = sent;
            while sent < due {
                kind.push(&mut tx, sent);
                sent += 1;
                if sent == first + 1 || tx.len() >= BATCH {
                    tx.flush(fd);
                }
                if sent == first + 1 {
                    tally.sent(first, due - first, rvs_e2e::gap::wall());
                }
            }
            tx.flush(fd);
        }
        checks += 1;
        let late = start.elapsed().as_secs_f64() > secs + 1.0;
        if late || stop.is_some_and(|p| checks.is_multiple_of(16) && p.exists()) {
            limit = sent;
        }
        if sent >= limit && ended.is_none() {
            ended = Some(Instant::now());
        }
        if ended.is_some_and(|e| e.elapsed() >= Duration::from_millis(300)) {
            break;
        }
        for _ in 0..DRAIN_BATCHES {
            let n = rx.recv(fd, false).unwrap_or(0);
            for i in 0..n {
                let (data, _, t) = rx.get(i);
                if let Some(seq) = kind.seq(data) {
                    tally.echo(seq, t.unwrap_or_else(rvs_e2e::gap::wall));
                }
            }
            if n < BATCH {
                break;
            }
        }
        let k = start.elapsed().as_micros() / TICK.as_micros() + 1;
        let next = TICK.saturating_mul(k as u32);
        std::thread::sleep(next.saturating_sub(start.elapsed()));
    }
    let line = serde_json::to_string(&tally.report(sent)).map_err(std::io::Error::other)?;
    println!("{line}");
    Ok(())
}

/// `stream` (UDP) or `ping` (ICMP echo, `icmp` true).
fn stream_main(args: &[String], icmp: bool) -> std::io::Result<()> {
    let (mut pps, mut secs, mut from_port, mut target) = (1000u64, 1.0f64, 0u16, None);
    let (mut stop, mut warmup_ms) = (None, 0u64);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage()).clone();
        match a.as_str() {
            "--pps" => pps = val().parse().unwrap_or_else(|_| usage()),
            "--secs" => secs = val().parse().unwrap_or_else(|_| usage()),
            "--from-port" => from_port = val().parse().unwrap_or_else(|_| usage()),
            "--stop-file" => stop = Some(PathBuf::from(val())),
            "--warmup-ms" => warmup_ms = val().parse().unwrap_or_else(|_| usage()),
            t => target = Some(t.parse::<SocketAddr>().unwrap_or_else(|_| usage())),
        }
    }
    if pps == 0 || !(secs > 0.0 && secs <= 600.0) {
        usage();
    }
    let target = target.unwrap_or_else(|| usage());
    let run = Run {
        pps,
        secs,
        stop: stop.as_deref(),
        warmup: warmup_ms as f64 / 1e3,
    };
    if icmp {
        let id = std::process::id() as u16;
        return stream(&icmp_socket()?, &Kind::Icmp(target, id), &run);
    }
    let s = UdpSocket::bind((unspecified(target), from_port))?;
    s.connect(target)?;
    stream(&s, &Kind::Udp, &run)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("echo") => {
            let quiet = args.iter().any(|a| a == "--quiet");
            let pos: Vec<&String> = args[1..].iter().filter(|a| *a != "--quiet").collect();
            let addr = pos.first().unwrap_or_else(|| usage());
            let label = pos.get(1).map_or("echo", |l| l.as_str());
            echo(addr, label, quiet)
        }
        Some("stream") => stream_main(&args[1..], false),
        Some("ping") => stream_main(&args[1..], true),
        Some("probe") => {
            let mut sources = 1u16;
            let mut from_port = 20000u16;
            let mut timeout_ms = 3000u64;
            let mut target = None;
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                let mut val = || it.next().unwrap_or_else(|| usage()).clone();
                match a.as_str() {
                    "--sources" => sources = val().parse().unwrap_or_else(|_| usage()),
                    "--from-port" => from_port = val().parse().unwrap_or_else(|_| usage()),
                    "--timeout-ms" => timeout_ms = val().parse().unwrap_or_else(|_| usage()),
                    t => target = Some(t.parse::<SocketAddr>().unwrap_or_else(|_| usage())),
                }
            }
            let target = target.unwrap_or_else(|| usage());
            probe(
                target,
                sources,
                from_port,
                Duration::from_millis(timeout_ms),
            )
        }
        _ => usage(),
    };
    if let Err(e) = res {
        eprintln!("rvs-udp: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_request_has_a_valid_checksum_and_its_reply_gives_the_number_back() {
        let req = icmp_echo(0x1234, 70_000);
        let mut sum = 0u32;
        for c in req.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff, "{req:?}");
        // The reply as a raw socket reads it: a 20-byte IPv4 header, type 0.
        let mut reply = vec![0x45u8; 1];
        reply.resize(20, 0);
        reply.extend_from_slice(&req);
        reply[20] = 0;
        assert_eq!(icmp_reply_seq(&reply, 0x1234), Some(70_000));
        assert_eq!(icmp_reply_seq(&reply, 0x1235), None, "another pinger's");
        reply[20] = 8;
        assert_eq!(icmp_reply_seq(&reply, 0x1234), None, "a request");
    }
}

//! rvs-udp: a small UDP echo server and a many-source-ports probe, for the
//! lab's UDP cases (std only).
//!
//! `rvs-udp echo ADDR:PORT [LABEL] [--quiet]` answers every datagram with
//! `<label> <peer ip>:<peer port> <payload>` and prints `seen <peer>` for
//! each one it gets (not with `--quiet`).
//!
//! `rvs-udp stream --pps N --secs S [--from-port P] TARGET:PORT` sends a
//! numbered stream (`seq-<n>`) of N datagrams per second for S seconds from
//! one socket (one flow), reads the echoes, and prints one JSON line
//! ([`rvs_e2e::stream::StreamReport`]): the longest time without an echo,
//! sequence numbers never echoed, echoes seen twice.
//!
//! `rvs-udp probe --sources N --from-port P [--timeout-ms T] TARGET:PORT`
//! sends one datagram from each of N sockets bound to ports P..P+N, waits for
//! the answers, and prints
//! `sent N replies M`, then one `from <addr> <count>` line per address the
//! replies came from, one `label <label> <count>` line per echo server that
//! answered, and one `peer <ip> <count>` line per peer address the servers
//! saw. It exits 0 when it ran (whatever came back).
//!
//! IPv6 works throughout: `echo [::]:53` (which takes IPv4 too),
//! `probe ... [2001:db8::100]:53`; the client sockets bind to the wildcard
//! of the target's family. An IPv6 peer is printed in brackets
//! (`[fd00:100::200]:40001`, `peer [fd00:100::200] 50`).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn usage() -> ! {
    eprintln!(
        "usage: rvs-udp echo ADDR:PORT [LABEL] [--quiet]\n       rvs-udp stream --pps N --secs S [--from-port P] TARGET:PORT\n       rvs-udp probe --sources N --from-port P [--timeout-ms T] TARGET:PORT"
    );
    std::process::exit(2)
}

fn echo(addr: &str, label: &str, quiet: bool) -> std::io::Result<()> {
    let s = UdpSocket::bind(addr)?;
    println!("listening {}", s.local_addr()?);
    std::io::stdout().flush()?;
    let mut buf = [0u8; 2048];
    loop {
        let (n, peer) = s.recv_from(&mut buf)?;
        let mut out = format!("{label} {peer} ").into_bytes();
        out.extend_from_slice(&buf[..n]);
        s.send_to(&out, peer)?;
        if !quiet {
            println!("seen {peer}");
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

fn stream(target: SocketAddr, pps: u64, secs: f64, from_port: u16) -> std::io::Result<()> {
    let s = UdpSocket::bind((unspecified(target), from_port))?;
    let r = s.try_clone()?;
    r.set_read_timeout(Some(Duration::from_millis(50)))?;
    let total = (pps as f64 * secs) as u64;
    let t0 = rvs_e2e::gap::wall();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done_r = done.clone();
    let reader = std::thread::spawn(move || {
        let mut tally = rvs_e2e::stream::Tally::new(t0, total as usize);
        let mut buf = [0u8; 2048];
        while !done_r.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(n) = r.recv(&mut buf) {
                if let Some(seq) = seq_of(&buf[..n]) {
                    tally.echo(seq, rvs_e2e::gap::wall());
                }
            }
        }
        tally
    });
    // Paced per millisecond: the datagrams due by now go out together.
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * pps as f64) as u64 + 1).min(total);
        while sent < due {
            // A send refused (no route yet, buffer full) is a datagram lost.
            let _ = s.send_to(format!("seq-{sent}").as_bytes(), target);
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let tally = reader
        .join()
        .map_err(|_| std::io::Error::other("reader died"))?;
    let line = serde_json::to_string(&tally.report(sent)).map_err(std::io::Error::other)?;
    println!("{line}");
    Ok(())
}

fn stream_main(args: &[String]) -> std::io::Result<()> {
    let (mut pps, mut secs, mut from_port, mut target) = (1000u64, 1.0f64, 0u16, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage()).clone();
        match a.as_str() {
            "--pps" => pps = val().parse().unwrap_or_else(|_| usage()),
            "--secs" => secs = val().parse().unwrap_or_else(|_| usage()),
            "--from-port" => from_port = val().parse().unwrap_or_else(|_| usage()),
            t => target = Some(t.parse::<SocketAddr>().unwrap_or_else(|_| usage())),
        }
    }
    if pps == 0 || !(secs > 0.0 && secs <= 600.0) {
        usage();
    }
    stream(target.unwrap_or_else(|| usage()), pps, secs, from_port)
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
        Some("stream") => stream_main(&args[1..]),
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

//! rvs-udp: a small UDP echo server and a many-source-ports probe, for the
//! lab's UDP cases (std only).
//!
//! `rvs-udp echo ADDR:PORT [LABEL]` answers every datagram with
//! `<label> <peer ip>:<peer port> <payload>` and prints `seen <peer>` for
//! each one it gets.
//!
//! `rvs-udp probe --sources N --from-port P [--timeout-ms T] TARGET:PORT`
//! sends one datagram from each of N sockets bound to ports P..P+N, waits for
//! the answers, and prints
//! `sent N replies M`, then one `from <addr> <count>` line per address the
//! replies came from, one `label <label> <count>` line per echo server that
//! answered, and one `peer <ip> <count>` line per peer address the servers
//! saw. It exits 0 when it ran (whatever came back).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn usage() -> ! {
    eprintln!(
        "usage: rvs-udp echo ADDR:PORT [LABEL]\n       rvs-udp probe --sources N --from-port P [--timeout-ms T] TARGET:PORT"
    );
    std::process::exit(2)
}

fn echo(addr: &str, label: &str) -> std::io::Result<()> {
    let s = UdpSocket::bind(addr)?;
    println!("listening {}", s.local_addr()?);
    std::io::stdout().flush()?;
    let mut buf = [0u8; 2048];
    loop {
        let (n, peer) = s.recv_from(&mut buf)?;
        let mut out = format!("{label} {peer} ").into_bytes();
        out.extend_from_slice(&buf[..n]);
        s.send_to(&out, peer)?;
        println!("seen {peer}");
        std::io::stdout().flush()?;
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
        let s = UdpSocket::bind(("0.0.0.0", port))?;
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("echo") => {
            let addr = args.get(1).unwrap_or_else(|| usage());
            let label = args.get(2).map_or("echo", String::as_str);
            echo(addr, label)
        }
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

//! rvs-keepalive: HTTP/1.1 keep-alive connections that each send a request
//! every few milliseconds for a while and report what failed (std only).
//!
//! `rvs-keepalive [--conns N] [--secs S] [--interval-ms I] [--timeout-ms T] [--stop-file F] ADDR:PORT`
//! opens N connections, and on each one sends `GET /` and reads the whole
//! answer, again and again, I ms apart, for S seconds (or until file F
//! exists). A connection that is
//! reset or closed, or whose answer does not come within T ms, counts as
//! lost and is opened again. Prints one JSON line
//! ([`rvs_e2e::disrupt::KeepaliveReport`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rvs_e2e::disrupt::KeepaliveReport;

fn usage() -> ! {
    eprintln!(
        "usage: rvs-keepalive [--conns N] [--secs S] [--interval-ms I] [--timeout-ms T] [--stop-file F] ADDR:PORT"
    );
    std::process::exit(2)
}

/// Why a request failed.
enum Fail {
    Reset,
    Closed,
    Timeout,
    Bad,
}

fn fail_of(e: &std::io::Error) -> Fail {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Fail::Timeout,
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => Fail::Reset,
        std::io::ErrorKind::UnexpectedEof => Fail::Closed,
        _ => Fail::Bad,
    }
}

/// One request and its whole answer on `r` (the connection, buffered).
fn request(r: &mut BufReader<TcpStream>) -> Result<(), Fail> {
    r.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
        .map_err(|e| fail_of(&e))?;
    let mut len = None;
    let mut status = None;
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).map_err(|e| fail_of(&e))?;
        if n == 0 {
            return Err(Fail::Closed);
        }
        let l = line.trim_end();
        if status.is_none() {
            status = l.split_whitespace().nth(1).map(str::to_string);
        } else if l.is_empty() {
            break;
        } else if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = vec![0u8; len.ok_or(Fail::Bad)?];
    r.read_exact(&mut body).map_err(|e| fail_of(&e))?;
    match status.as_deref() {
        Some(s) if s.starts_with('2') || s.starts_with('3') => Ok(()),
        _ => Err(Fail::Bad),
    }
}

fn connect(to: SocketAddr, timeout: Duration) -> Option<BufReader<TcpStream>> {
    let s = TcpStream::connect_timeout(&to, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_nodelay(true).ok()?;
    Some(BufReader::new(s))
}

/// One connection's loop until `end` or until `stop` exists.
fn run(
    to: SocketAddr,
    end: Instant,
    stop: Option<&Path>,
    interval: Duration,
    timeout: Duration,
) -> KeepaliveReport {
    let mut rep = KeepaliveReport::default();
    let mut conn = connect(to, timeout);
    rep.connects += 1;
    while Instant::now() < end && !stop.is_some_and(Path::exists) {
        let Some(c) = conn.as_mut() else {
            rep.connect_failed += 1;
            std::thread::sleep(interval);
            conn = connect(to, timeout);
            rep.connects += 1;
            continue;
        };
        let t = Instant::now();
        match request(c) {
            Ok(()) => {
                rep.requests += 1;
                rep.max_latency_ms = rep.max_latency_ms.max(t.elapsed().as_secs_f64() * 1e3);
            }
            Err(f) => {
                rep.failed += 1;
                match f {
                    Fail::Reset => rep.resets += 1,
                    Fail::Closed => rep.closed += 1,
                    Fail::Timeout => rep.timeouts += 1,
                    Fail::Bad => rep.bad += 1,
                }
                conn = connect(to, timeout);
                rep.connects += 1;
            }
        }
        std::thread::sleep(interval);
    }
    rep
}

fn main() {
    let (mut conns, mut secs, mut interval, mut timeout) = (4usize, 4.0f64, 2u64, 1000u64);
    let mut target = None;
    let mut stop: Option<PathBuf> = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage()).clone();
        match a.as_str() {
            "--conns" => conns = val().parse().unwrap_or_else(|_| usage()),
            "--secs" => secs = val().parse().unwrap_or_else(|_| usage()),
            "--interval-ms" => interval = val().parse().unwrap_or_else(|_| usage()),
            "--timeout-ms" => timeout = val().parse().unwrap_or_else(|_| usage()),
            "--stop-file" => stop = Some(PathBuf::from(val())),
            t => target = Some(t.parse::<SocketAddr>().unwrap_or_else(|_| usage())),
        }
    }
    let to = target.unwrap_or_else(|| usage());
    if conns == 0 || !(secs > 0.0 && secs <= 600.0) {
        usage();
    }
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let (iv, to_) = (
        Duration::from_millis(interval),
        Duration::from_millis(timeout),
    );
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || run(to, end, stop.as_deref(), iv, to_))
        })
        .collect();
    let mut total = KeepaliveReport::default();
    for t in threads {
        if let Ok(r) = t.join() {
            total.add(&r);
        }
    }
    match serde_json::to_string(&total) {
        Ok(l) => println!("{l}"),
        Err(e) => {
            eprintln!("rvs-keepalive: {e}");
            std::process::exit(1);
        }
    }
}

//! The long-lived-connection client `survival` runs in its client namespace:
//! N keep-alive HTTP connections, each making a request every interval, a
//! thread each. A connection fails at its first request that gets no full
//! answer within the timeout (or an error); it is not reopened. At the end
//! it writes one JSON object: how many connections were established, and
//! the time (unix ms) of each failure.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Arguments of `rvs-bench survival-client`.
#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// VIP:port.
    #[arg(long)]
    pub target: SocketAddr,
    /// Connections.
    #[arg(long, default_value_t = 500)]
    pub conns: usize,
    /// Milliseconds between two requests of a connection.
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
    /// Seconds to run.
    #[arg(long)]
    pub seconds: u64,
    /// A request without a full answer within this many ms fails its connection.
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
    /// Where to write the result (JSON).
    #[arg(long)]
    pub out: String,
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One HTTP/1.1 exchange on a kept-alive connection: true when the whole
/// answer (headers and Content-Length bytes of body) arrived.
fn exchange(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    if s.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: keep-alive\r\n\r\n")
        .is_err()
    {
        return false;
    }
    buf.clear();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(len) = len {
                if buf.len() >= end + 4 + len {
                    return head.starts_with("http/1.1 200");
                }
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn one(a: &ClientArgs, i: usize, end: Instant, failures: &Mutex<Vec<u64>>, ok: &AtomicU64) -> bool {
    let t = Duration::from_millis(a.timeout_ms);
    // Spread the opening over the first interval.
    std::thread::sleep(Duration::from_millis(
        a.interval_ms * i as u64 / a.conns.max(1) as u64,
    ));
    let Ok(mut s) = TcpStream::connect_timeout(&a.target, t) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(t));
    let _ = s.set_nodelay(true);
    let mut buf = Vec::with_capacity(512);
    if !exchange(&mut s, &mut buf) {
        return false;
    }
    ok.fetch_add(1, Relaxed);
    let mut next = Instant::now() + Duration::from_millis(a.interval_ms);
    while next < end {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        if !exchange(&mut s, &mut buf) {
            if let Ok(mut f) = failures.lock() {
                f.push(unix_ms());
            }
            break;
        }
        ok.fetch_add(1, Relaxed);
        next += Duration::from_millis(a.interval_ms);
    }
    true
}

/// `rvs-bench survival-client`.
pub fn run(a: ClientArgs) -> i32 {
    let a = Arc::new(a);
    let end = Instant::now() + Duration::from_secs(a.seconds);
    let failures = Arc::new(Mutex::new(Vec::new()));
    let ok = Arc::new(AtomicU64::new(0));
    let started = unix_ms();
    let threads: Vec<_> = (0..a.conns)
        .map(|i| {
            let (a, f, ok) = (a.clone(), failures.clone(), ok.clone());
            std::thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || one(&a, i, end, &f, &ok))
                .expect("thread")
        })
        .collect();
    let established = threads
        .into_iter()
        .map(|t| t.join().unwrap_or(false))
        .filter(|&e| e)
        .count();
    let mut f = failures.lock().map(|f| f.clone()).unwrap_or_default();
    f.sort_unstable();
    let out = serde_json::json!({
        "started_ms": started,
        "conns": a.conns,
        "established": established,
        "requests_ok": ok.load(Relaxed),
        "failures_ms": f,
    });
    match std::fs::write(&a.out, out.to_string()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("survival-client: cannot write {}: {e}", a.out);
            1
        }
    }
}

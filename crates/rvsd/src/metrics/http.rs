//! The `/metrics` HTTP server: one thread, std sockets, one request per
//! connection (`Connection: close`), off the data path. It answers
//! `GET /metrics` with the text format and anything else with 404 or 405.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::control::Control;

/// The content type of the OpenMetrics text format `prometheus-client` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest request head read (request line and headers).
const MAX_HEAD: usize = 8192;

/// Binds `addr` (done before anything else at start-up, so that a port in
/// use fails it before any port is taken over).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Serves scrapes of `ctl` on `l` in a thread until `stop` is set.
pub fn serve(
    l: TcpListener,
    ctl: Arc<Control>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("rvs-metrics".into())
        .spawn(move || accept_loop(&l, &ctl, &stop))
}

fn accept_loop(l: &TcpListener, ctl: &Control, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((s, _)) => {
                if let Err(e) = answer(s, ctl) {
                    tracing::debug!("metrics: a scrape failed: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                tracing::warn!("metrics: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// What a request head asks for: the status line, and whether the answer
/// is the metrics.
pub fn route(head: &str) -> (&'static str, bool) {
    let mut it = head.lines().next().unwrap_or("").split_whitespace();
    match (it.next(), it.next()) {
        (Some("GET"), Some(p)) if p == "/metrics" || p.starts_with("/metrics?") => ("200 OK", true),
        (Some("GET"), Some(_)) => ("404 Not Found", false),
        _ => ("405 Method Not Allowed", false),
    }
}

fn read_head(s: &TcpStream) -> io::Result<String> {
    let mut r = BufReader::new(io::Read::take(s, MAX_HEAD as u64 + 1024));
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            return Ok(head);
        }
        head.push_str(&line);
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too long",
            ));
        }
    }
}

fn answer(mut s: TcpStream, ctl: &Control) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    s.set_write_timeout(Some(READ_TIMEOUT))?;
    let head = read_head(&s)?;
    let (status, ok) = route(&head);
    let (ctype, body) = if ok {
        (CONTENT_TYPE, super::render(&super::collect(ctl)))
    } else {
        (
            "text/plain",
            format!("{status}: rvsd serves GET /metrics only\n"),
        )
    };
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
}

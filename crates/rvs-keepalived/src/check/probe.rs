//! One check attempt, blocking and bounded by the checker's timeout:
//! `TCP_CHECK` (a connection), `HTTP_GET` (status code and MD5 digest of the
//! body, as keepalived's genhash prints it), `UDP_CHECK` (no ICMP port
//! unreachable, or the reply required), `MISC_CHECK` (exit status).

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use socket2::{Domain, Socket, Type};

use super::retry::Outcome;
use crate::conf::{CheckKind, Checker, RealServer, UrlCheck};

/// At most this much of an HTTP answer is read (a health page is small).
const HTTP_MAX: usize = 4 << 20;

/// A checker ready to run: where it connects and what it checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    target: SocketAddr,
    bind: Option<SocketAddr>,
    timeout: Duration,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Tcp,
    Http(Vec<UrlCheck>),
    Udp {
        payload: Vec<u8>,
        reply: Option<Vec<u8>>,
    },
    Misc {
        argv: Vec<String>,
        timeout: Duration,
        dynamic: bool,
    },
    /// Not run (`SSL_GET`): always up.
    Skipped,
}

impl Probe {
    /// The probe of `checker` on real server `rs`. An error names what in
    /// the checker cannot be run (a payload that is not hex, an empty
    /// `misc_path`).
    pub fn new(checker: &Checker, rs: &RealServer) -> Result<Probe, String> {
        let (ip, port) = checker.target(rs);
        let bind = match (checker.bindto, checker.bind_port) {
            (None, None) => None,
            (a, p) => Some(SocketAddr::new(
                a.unwrap_or(unspecified(ip)),
                p.unwrap_or(0),
            )),
        };
        let kind = match &checker.kind {
            CheckKind::Tcp => Kind::Tcp,
            CheckKind::Http(h) if h.tls => Kind::Skipped,
            CheckKind::Http(h) => Kind::Http(h.urls.clone()),
            CheckKind::Udp(u) => Kind::Udp {
                payload: match &u.payload {
                    Some(p) => hex(p).map_err(|e| format!("payload: {e}"))?,
                    None => Vec::new(),
                },
                reply: match &u.require_reply {
                    Some(r) => Some(hex(r).map_err(|e| format!("require_reply: {e}"))?),
                    None => None,
                },
            },
            CheckKind::Misc(m) => {
                let argv = split_words(&m.path);
                if argv.is_empty() {
                    return Err("misc_path is empty".into());
                }
                Kind::Misc {
                    argv,
                    timeout: m.timeout,
                    dynamic: m.dynamic,
                }
            }
        };
        Ok(Probe {
            target: SocketAddr::new(ip, port),
            bind,
            timeout: checker.connect_timeout,
            kind,
        })
    }

    /// Whether this probe is actually run (`SSL_GET` is not).
    pub fn is_run(&self) -> bool {
        self.kind != Kind::Skipped
    }

    /// One attempt: [`Outcome::Down`] with the reason, or up.
    pub fn run(&self) -> (Outcome, String) {
        let r = match &self.kind {
            Kind::Tcp => self.tcp().map(|_| None),
            Kind::Http(urls) => urls.iter().try_for_each(|u| self.http(u)).map(|_| None),
            Kind::Udp { payload, reply } => self.udp(payload, reply.as_deref()).map(|_| None),
            Kind::Misc {
                argv,
                timeout,
                dynamic,
            } => misc(argv, *timeout, *dynamic),
            Kind::Skipped => Ok(None),
        };
        match r {
            Ok(None) => (Outcome::Up, String::new()),
            Ok(Some(w)) => (Outcome::UpWeight(w), String::new()),
            Err(e) => (Outcome::Down, e),
        }
    }

    fn tcp(&self) -> Result<TcpStream, String> {
        let t = self.target;
        let fail = |e: std::io::Error| format!("TCP connection to {t} failed: {e}");
        let s = match self.bind {
            None => return TcpStream::connect_timeout(&t, self.timeout).map_err(fail),
            Some(b) => {
                let s = Socket::new(Domain::for_address(t), Type::STREAM, None).map_err(fail)?;
                s.set_reuse_address(true).map_err(fail)?;
                s.bind(&b.into())
                    .map_err(|e| format!("cannot bind check socket to {b}: {e}"))?;
                s.connect_timeout(&t.into(), self.timeout).map_err(fail)?;
                s
            }
        };
        Ok(s.into())
    }

    fn http(&self, u: &UrlCheck) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout;
        let mut s = self.tcp()?;
        let io = |e: std::io::Error| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => format!(
                "HTTP GET {} from {}: no complete answer within {:?}",
                u.path, self.target, self.timeout
            ),
            _ => format!("HTTP GET {} from {}: {e}", u.path, self.target),
        };
        s.set_read_timeout(Some(self.timeout)).map_err(io)?;
        s.set_write_timeout(Some(self.timeout)).map_err(io)?;
        let host = match &u.virtualhost {
            Some(h) => h.clone(),
            None => host_of(self.target),
        };
        let req = format!(
            "GET {} HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: {host}\r\n\r\n",
            u.path
        );
        s.write_all(req.as_bytes()).map_err(io)?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if Instant::now() > deadline {
                return Err(io(ErrorKind::TimedOut.into()));
            }
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) if buf.len() + n > HTTP_MAX => {
                    return Err(format!(
                        "HTTP answer from {} is over {HTTP_MAX} bytes",
                        self.target
                    ))
                }
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if answer_complete(&buf) {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        check_http_answer(&buf, u)
            .map_err(|e| format!("HTTP GET {} from {}: {e}", u.path, self.target))
    }

    fn udp(&self, payload: &[u8], reply: Option<&[u8]>) -> Result<(), String> {
        let t = self.target;
        let fail = |e: std::io::Error| format!("UDP check of {t}: {e}");
        let bind = self.bind.unwrap_or(SocketAddr::new(unspecified(t.ip()), 0));
        let s = UdpSocket::bind(bind).map_err(fail)?;
        s.connect(t).map_err(fail)?;
        s.set_read_timeout(Some(self.timeout)).map_err(fail)?;
        s.send(payload).map_err(fail)?;
        let mut buf = [0u8; 65536];
        match s.recv(&mut buf) {
            Ok(n) => match reply {
                Some(want) if !buf[..n].starts_with(want) => Err(format!(
                    "UDP check of {t}: the reply is not the one required"
                )),
                _ => Ok(()),
            },
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                Err(format!("UDP check of {t}: port unreachable"))
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                match reply {
                    Some(_) => Err(format!(
                        "UDP check of {t}: no reply within {:?}",
                        self.timeout
                    )),
                    None => Ok(()),
                }
            }
            Err(e) => Err(fail(e)),
        }
    }
}

/// Where the header ends (after the blank line), if it has.
fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
}

/// Whether an answer with a `Content-Length` is all there: a server that
/// keeps the connection open despite HTTP/1.0 is then not waited for.
fn answer_complete(buf: &[u8]) -> bool {
    let Some(end) = header_end(buf) else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .is_some_and(|len| buf.len() >= end + len)
}

/// Checks the status code (any 2xx when none is configured) and the digest.
pub fn check_http_answer(buf: &[u8], u: &UrlCheck) -> Result<(), String> {
    let head_end = header_end(buf).ok_or("the answer has no complete header")?;
    let status_line = buf[..head_end]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .filter(|_| status_line.starts_with("HTTP/"))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line '{}'", status_line.trim_end()))?;
    let ok = if u.status_codes.is_empty() {
        (200..300).contains(&code)
    } else {
        u.status_codes
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    };
    if !ok {
        return Err(format!("status code {code} is not the one expected"));
    }
    if let Some(want) = &u.digest {
        let got = md5_hex(&buf[head_end..]);
        if &got != want {
            return Err(format!("body digest {got} is not {want}"));
        }
    }
    Ok(())
}

/// The MD5 of `data` in lowercase hex, as keepalived's genhash prints it.
pub fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs `argv` (no shell, as keepalived does), killed after `timeout`:
/// exit 0 is up; with `dynamic`, exit 2..255 is up with weight status - 2.
fn misc(argv: &[String], timeout: Duration, dynamic: bool) -> Result<Option<u32>, String> {
    let cmd = argv.join(" ");
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("MISC_CHECK cannot run '{cmd}': {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                // The child may have exited in between: then kill fails and wait reaps it.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("MISC_CHECK '{cmd}' timed out after {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("MISC_CHECK '{cmd}': {e}")),
        }
    };
    match status.code() {
        Some(0) => Ok(None),
        Some(c) if dynamic && c >= 2 => Ok(Some(c as u32 - 2)),
        Some(c) => Err(format!("MISC_CHECK '{cmd}' exited with status {c}")),
        None => Err(format!("MISC_CHECK '{cmd}' was killed by a signal")),
    }
}

/// A command line split into words: spaces separate, `"..."` and `'...'`
/// quote, `\` escapes the next character.
pub fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Bytes from hex (spaces ignored).
fn hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("'{s}' has an odd number of hex digits"));
    }
    digits
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("'{s}' is not hex"))
        })
        .collect()
}

fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

/// `Host:` without a `virtualhost`: the address, with the port unless 80.
fn host_of(t: SocketAddr) -> String {
    let ip = match t.ip() {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    if t.port() == 80 {
        ip
    } else {
        format!("{ip}:{}", t.port())
    }
}

//! Network namespaces for the integration tests: each test builds its own
//! topology in namespaces named `rvsio-<pid>-<n>`, runs its bodies on
//! threads moved into them with setns(2), and deletes them on drop, so no
//! frame ever leaves them and nothing is left behind, even on failure.

#![allow(dead_code)]

pub mod procs;

use std::ffi::CString;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Fails the test loudly unless running as root.
pub fn require_root() {
    // SAFETY: geteuid has no arguments and cannot fail.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "rvs-io integration tests need root (network namespaces, AF_PACKET, TAP): run them as root"
    );
}

/// Runs `ip` with `args`, asserting success.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A fresh namespace with loopback up and IPv6 off (so the kernel sends
    /// no autoconfiguration chatter the tests would have to skip).
    pub fn new() -> Netns {
        require_root();
        let name = format!(
            "rvsio-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        let st = Command::new("ip")
            .args(["netns", "exec", &ns.name, "sysctl", "-qw"])
            .args([
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ])
            .status()
            .expect("run sysctl");
        assert!(st.success(), "sysctl in {}", ns.name);
        ns
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        ip(&a);
    }

    /// Moves the calling thread into this namespace. Only for threads made
    /// for it (the test harness's own thread must stay where it is).
    pub fn enter(&self) {
        let path = CString::new(format!("/run/netns/{}", self.name)).unwrap();
        // SAFETY: `path` is NUL-terminated; open and setns only read it, the
        // descriptor is closed right after use.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            assert!(
                fd >= 0,
                "open {}: {}",
                self.name,
                std::io::Error::last_os_error()
            );
            let r = libc::setns(fd, libc::CLONE_NEWNET);
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            assert_eq!(r, 0, "setns {}: {e}", self.name);
        }
    }

    /// Runs `f` on a new thread inside this namespace and returns its result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter();
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace destroys the veths and TAPs still in it.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A veth pair `a`/`b` inside `ns`, both up.
pub fn veth_pair(ns: &Netns, a: &str, b: &str) {
    ns.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
    ns.ip(&["link", "set", a, "up"]);
    ns.ip(&["link", "set", b, "up"]);
}

/// RFC 1071 sum, for building frames with valid checksums.
pub fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        s += (c[0] as u32) << 8 | *c.get(1).unwrap_or(&0) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet/IPv4/UDP frame with valid IP and UDP checksums.
pub fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let ulen = 8 + payload.len();
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + ulen) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(ulen as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let mut ph = Vec::new();
    ph.extend_from_slice(&src);
    ph.extend_from_slice(&dst);
    ph.extend_from_slice(&[0, 17]);
    ph.extend_from_slice(&(ulen as u16).to_be_bytes());
    ph.extend_from_slice(&u);
    let c = csum(&ph);
    u[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    f.extend_from_slice(&u);
    f
}

/// Sends `data` over TCP from namespace `a` (10.9.0.1) to a server in
/// namespace `b` (10.9.0.2:5001) through whatever forwards between them,
/// and returns what the server received.
pub fn tcp_through(a: &Netns, b: &Netns, data: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        let server = s.spawn(move || {
            b.enter();
            let l = TcpListener::bind("10.9.0.2:5001").expect("bind");
            tx.send(()).unwrap();
            l.set_nonblocking(true).unwrap();
            let deadline = Instant::now() + Duration::from_secs(8);
            let mut c = loop {
                match l.accept() {
                    Ok((c, _)) => break c,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            };
            c.set_nonblocking(false).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
            let mut v = Vec::new();
            c.read_to_end(&mut v).expect("read");
            v
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("server ready");
        s.spawn(move || {
            a.enter();
            let addr: SocketAddr = "10.9.0.2:5001".parse().unwrap();
            let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .expect("connect through forwarder");
            c.set_write_timeout(Some(Duration::from_secs(8))).unwrap();
            c.write_all(data).expect("write");
            c.shutdown(Shutdown::Write).unwrap();
        })
        .join()
        .unwrap();
        server.join().unwrap()
    })
}

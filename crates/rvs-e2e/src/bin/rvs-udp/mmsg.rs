//! Datagrams by the batch (`recvmmsg`/`sendmmsg`) for the probers of
//! `rvs_e2e::disrupt` and their echo servers: one system call per burst,
//! not per datagram, so that a 50,000 datagrams/s stream and its echoes fit
//! on the one CPU the client side has.
//!
//! [`RecvBatch`] reads what is waiting with each datagram's source and, on
//! a socket with `SO_TIMESTAMPNS` ([`stamp_receives`]), the kernel's receive
//! time: reading late (a batch per wake-up) does not move the path's times.
//! [`SendBatch`] collects datagrams and sends them in one call.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// The largest datagram a [`RecvBatch`] reads whole.
pub const MAX_DATAGRAM: usize = 2048;

/// Control buffer per message: room for one `SCM_TIMESTAMPNS`.
const CTL_WORDS: usize = 8;

/// Turns on the kernel's receive timestamps (`SO_TIMESTAMPNS`) of `fd`.
pub fn stamp_receives(fd: RawFd) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// Sets `fd`'s receive and send buffers to `bytes` each, beyond the
/// system's maximum when root (`SO_RCVBUFFORCE`), else as far as allowed:
/// a burst of echoes waits there for the next batch read.
pub fn buffers(fd: RawFd, bytes: usize) {
    let b = bytes.min(i32::MAX as usize) as libc::c_int;
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if set_int(fd, libc::SOL_SOCKET, force, b).is_err() {
            let _ = set_int(fd, libc::SOL_SOCKET, plain, b);
        }
    }
}

fn set_int(fd: RawFd, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: a c_int option of its size on a descriptor the caller owns.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `a` as a socket address for the kernel, and its length.
fn to_storage(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut st as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut st as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (st, len as libc::socklen_t)
}

/// The address the kernel wrote into `st`, if IPv4 or IPv6.
fn from_storage(st: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(st.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin =
                unsafe { &*(st as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let s6 =
                unsafe { &*(st as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(s6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(s6.sin6_port),
                s6.sin6_flowinfo,
                s6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Buffers for reading up to `n` datagrams in one `recvmmsg`.
pub struct RecvBatch {
    bufs: Vec<u8>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    ctls: Vec<[u64; CTL_WORDS]>,
    hdrs: Vec<libc::mmsghdr>,
    got: usize,
}

impl RecvBatch {
    /// Room for `n` datagrams of up to [`MAX_DATAGRAM`] bytes.
    pub fn new(n: usize) -> RecvBatch {
        let n = n.max(1);
        RecvBatch {
            bufs: vec![0; n * MAX_DATAGRAM],
            iovs: Vec::with_capacity(n),
            // SAFETY: both are plain data; all zeroes is valid.
            addrs: vec![unsafe { std::mem::zeroed() }; n],
            ctls: vec![[0; CTL_WORDS]; n],
            hdrs: Vec::with_capacity(n),
            got: 0,
        }
    }

    /// Reads what is waiting on `fd` (at most the batch). `wait`: blocks
    /// until one datagram is there, then takes only what else is waiting
    /// (`MSG_WAITFORONE`); else returns 0 at once when none is.
    pub fn recv(&mut self, fd: RawFd, wait: bool) -> io::Result<usize> {
        let n = self.ctls.len();
        self.iovs.clear();
        self.hdrs.clear();
        for (i, chunk) in self.bufs.chunks_exact_mut(MAX_DATAGRAM).enumerate() {
            self.iovs.push(libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            });
            self.ctls[i] = [0; CTL_WORDS];
        }
        for i in 0..n {
            // SAFETY: mmsghdr is plain data; all zeroes is valid.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = self.ctls[i].as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = std::mem::size_of::<[u64; CTL_WORDS]>() as _;
            self.hdrs.push(h);
        }
        let flags = if wait {
            libc::MSG_WAITFORONE
        } else {
            libc::MSG_DONTWAIT
        };
        // SAFETY: every header points at a buffer, address and control
        // area of this batch, live and of the lengths given, `n` of them.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        self.got = 0;
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(0),
                _ => Err(e),
            };
        }
        self.got = r as usize;
        Ok(self.got)
    }

    /// Datagrams read by the last [`RecvBatch::recv`].
    pub fn len(&self) -> usize {
        self.got
    }

    /// The `i`th datagram read: its bytes, source and kernel receive time
    /// (wall clock, s; `None` without `SO_TIMESTAMPNS`).
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>, Option<f64>) {
        assert!(i < self.got, "datagram {i} of {}", self.got);
        let h = &self.hdrs[i];
        let len = (h.msg_len as usize).min(MAX_DATAGRAM);
        let data = &self.bufs[i * MAX_DATAGRAM..i * MAX_DATAGRAM + len];
        (data, from_storage(&self.addrs[i]), stamp(&h.msg_hdr))
    }
}

/// The `SCM_TIMESTAMPNS` of a received message, as wall-clock seconds.
fn stamp(msg: &libc::msghdr) -> Option<f64> {
    let mut t = None;
    // SAFETY: the CMSG macros walk the control buffer the kernel filled,
    // within msg_controllen; SCM_TIMESTAMPNS carries a timespec.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                t = Some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    t
}

/// Datagrams collected for one `sendmmsg`.
#[derive(Default)]
pub struct SendBatch {
    data: Vec<u8>,
    /// (offset in `data`, length, address index if any) per datagram.
    msgs: Vec<(usize, usize, Option<usize>)>,
    addrs: Vec<(libc::sockaddr_storage, libc::socklen_t)>,
    last_to: Option<SocketAddr>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl SendBatch {
    /// An empty batch.
    pub fn new() -> SendBatch {
        SendBatch::default()
    }

    /// Datagrams waiting.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// Adds a datagram made of `parts` one after the other, to `to` or,
    /// with `None`, to the connected socket's peer (no route lookup per
    /// datagram).
    pub fn push(&mut self, parts: &[&[u8]], to: Option<SocketAddr>) {
        if let Some(to) = to.filter(|&t| self.last_to != Some(t)) {
            self.addrs.push(to_storage(to));
            self.last_to = Some(to);
        }
        let off = self.data.len();
        for p in parts {
            self.data.extend_from_slice(p);
        }
        let at = to.map(|_| self.addrs.len() - 1);
        self.msgs.push((off, self.data.len() - off, at));
    }

    /// Sends everything on `fd` (`MSG_DONTWAIT`) and empties the batch;
    /// returns how many the kernel took. A datagram refused (no route yet,
    /// a full queue) is lost, the next ones still go (a full socket buffer
    /// drops the rest); an ICMP error reported on a connected socket
    /// instead of a send is passed over.
    pub fn flush(&mut self, fd: RawFd) -> usize {
        self.iovs.clear();
        self.hdrs.clear();
        for &(off, len, _) in &self.msgs {
            self.iovs.push(libc::iovec {
                iov_base: self.data[off..].as_mut_ptr().cast(),
                iov_len: len,
            });
        }
        for (i, &(_, _, a)) in self.msgs.iter().enumerate() {
            // SAFETY: mmsghdr is plain data; all zeroes is valid.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            if let Some(a) = a {
                h.msg_hdr.msg_name = (&mut self.addrs[a].0 as *mut libc::sockaddr_storage).cast();
                h.msg_hdr.msg_namelen = self.addrs[a].1;
            }
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(h);
        }
        let (mut done, mut took, mut retried) = (0, 0, false);
        while done < self.hdrs.len() {
            let rest = &mut self.hdrs[done..];
            // SAFETY: every header points at an iovec into `data` and an
            // address of this batch, all live until the call returns.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    rest.as_mut_ptr(),
                    rest.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                done += r as usize;
                took += r as usize;
                retried = false;
                continue;
            }
            match io::Error::last_os_error().raw_os_error() {
                // A connected socket reports an ICMP error (the path
                // refused an earlier datagram) instead of sending: again.
                Some(libc::ECONNREFUSED) if !retried => retried = true,
                // The socket's buffer is full: so for the rest.
                Some(libc::EAGAIN) => break,
                // This datagram is lost (e.g. dropped at a full queue).
                _ => {
                    done += 1;
                    retried = false;
                }
            }
        }
        self.data.clear();
        self.msgs.clear();
        self.addrs.clear();
        self.last_to = None;
        took
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_sent_in_one_call_is_read_back_in_one_with_sources_and_kernel_times() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        stamp_receives(rx.as_raw_fd()).expect("SO_TIMESTAMPNS");
        buffers(rx.as_raw_fd(), 1 << 20);
        let to = rx.local_addr().expect("addr");
        let before = rvs_e2e::gap::wall();
        let mut s = SendBatch::new();
        for i in 0..40u32 {
            s.push(&[b"seq-", i.to_string().as_bytes()], Some(to));
        }
        assert_eq!(s.len(), 40);
        assert_eq!(s.flush(tx.as_raw_fd()), 40);
        assert_eq!(s.len(), 0, "a flush empties the batch");
        let after = rvs_e2e::gap::wall();
        let mut r = RecvBatch::new(16);
        let mut seen = Vec::new();
        while seen.len() < 40 {
            let n = r.recv(rx.as_raw_fd(), true).expect("recvmmsg");
            assert!((1..=16).contains(&n), "{n} read");
            for i in 0..r.len() {
                let (data, from, t) = r.get(i);
                assert_eq!(from, tx.local_addr().ok());
                let t = t.expect("a kernel receive time");
                assert!(
                    t >= before - 0.001 && t <= after + 0.001,
                    "{t} not in [{before}, {after}]"
                );
                seen.push(String::from_utf8_lossy(data).into_owned());
            }
        }
        let want: Vec<String> = (0..40).map(|i| format!("seq-{i}")).collect();
        assert_eq!(seen, want);
        assert_eq!(
            r.recv(rx.as_raw_fd(), false).expect("recvmmsg"),
            0,
            "nothing left"
        );
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn a_refused_datagram_on_a_connected_socket_does_not_stop_the_next_batch() {
        // A port nobody listens on: the first datagram draws an ICMP port
        // unreachable, which the socket reports on its next send.
        let gone = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = gone.local_addr().expect("addr");
        drop(gone);
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        tx.connect(to).expect("connect");
        let mut s = SendBatch::new();
        s.push(&[b"first"], None);
        assert_eq!(s.flush(tx.as_raw_fd()), 1);
        std::thread::sleep(std::time::Duration::from_millis(20));
        s.push(&[b"second"], None);
        s.push(&[b"third"], None);
        assert_eq!(s.flush(tx.as_raw_fd()), 2, "the error is passed over");
    }

    #[test]
    fn a_batch_goes_to_each_datagrams_own_address() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = UdpSocket::bind("[::1]:0").expect("bind v6");
        let tx4 = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut s = SendBatch::new();
        s.push(&[b"one"], a.local_addr().ok());
        s.push(&[b"two", b"-2"], a.local_addr().ok());
        assert_eq!(s.flush(tx4.as_raw_fd()), 2);
        let tx6 = UdpSocket::bind("[::1]:0").expect("bind v6");
        s.push(&[b"three"], b.local_addr().ok());
        assert_eq!(s.flush(tx6.as_raw_fd()), 1);
        // A connected socket: no address per datagram.
        tx4.connect(a.local_addr().expect("addr")).expect("connect");
        s.push(&[b"four"], None);
        assert_eq!(s.flush(tx4.as_raw_fd()), 1);
        let mut buf = [0u8; 64];
        let (n, _) = a.recv_from(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"one");
        let (n, _) = a.recv_from(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"two-2");
        let (n, _) = a.recv_from(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"four");
        let mut r = RecvBatch::new(4);
        assert_eq!(r.recv(b.as_raw_fd(), true).expect("recvmmsg"), 1);
        let (data, from, t) = r.get(0);
        assert_eq!(data, b"three");
        assert_eq!(from, tx6.local_addr().ok());
        assert_eq!(t, None, "no SO_TIMESTAMPNS asked for");
    }
}

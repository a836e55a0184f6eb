//! Setting up the pieces of a port: clearing a leftover program, XSK
//! sockets, their rings and binding, the UMEM mapping.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::ring::{Ring, Role};
use super::{bpf, prog, XdpConf};
use crate::sys::{getsockopt, setsockopt, socket, Mmap};

/// Clears a leftover XDP program of ours; refuses anything else.
///
/// A link whose last descriptor was just closed (a queue dropped a moment
/// ago, a process that just exited) is released by the kernel
/// asynchronously, so a busy link is retried for a short while before the
/// port is declared in use by someone else.
pub(super) fn clear_stale(ifname: &str, ifindex: u32) -> io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let at = bpf::xdp_query(ifindex)?;
        if at.prog_id == 0 {
            return Ok(());
        }
        let name = bpf::prog_name_by_id(at.prog_id).unwrap_or_default();
        if name != prog::PROG_NAME {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{ifname} already has an XDP program (id {}, name {name:?}) that is not rvs's; \
                     detach it first (ip link set dev {ifname} xdp off)",
                    at.prog_id
                ),
            ));
        }
        match bpf::xdp_set_netlink(ifindex, -1, bpf::is_generic(&at)) {
            Ok(()) => {
                note_stale(ifname, at.prog_id);
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
                // Still held: a live process (another rvsd) uses the port.
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{ifname}: rvs's XDP program (id {}) is attached through a link held by a \
                         running process (another rvsd on this interface?)",
                        at.prog_id
                    ),
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The crate has no logger; a stale program detached is rare enough to say
/// on stderr.
fn note_stale(ifname: &str, id: u32) {
    eprintln!("rvs-io: detached a stale rvs XDP program (id {id}) from {ifname}");
}

pub(super) fn xsk_socket() -> io::Result<OwnedFd> {
    socket(libc::AF_XDP, libc::SOCK_RAW, 0)
}

pub(super) fn offsets(fd: &OwnedFd) -> io::Result<libc::xdp_mmap_offsets> {
    #[derive(Copy, Clone)]
    struct Off(libc::xdp_mmap_offsets);
    impl Default for Off {
        fn default() -> Self {
            // SAFETY: plain integers, all-zero is valid.
            Off(unsafe { std::mem::zeroed() })
        }
    }
    Ok(getsockopt::<Off>(fd.as_raw_fd(), libc::SOL_XDP, libc::XDP_MMAP_OFFSETS)?.0)
}

/// Binds, waiting out EBUSY for up to two seconds: the kernel releases a
/// closed socket's buffer pool from a work queue, so the (device, queue) of
/// a port just closed (a restart, a test) stays taken for a moment.
pub(super) fn bind_xsk(
    fd: &OwnedFd,
    ifindex: u32,
    queue: u32,
    flags: u16,
    shared_fd: u32,
) -> io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match bind_xsk_once(fd, ifindex, queue, flags, shared_fd) {
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            r => return r,
        }
    }
}

fn bind_xsk_once(
    fd: &OwnedFd,
    ifindex: u32,
    queue: u32,
    flags: u16,
    shared_fd: u32,
) -> io::Result<()> {
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: shared_fd,
    };
    // SAFETY: the pointer and length describe `sa`, read by the kernel only.
    crate::sys::cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_xdp).cast(),
            std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// A socket's RX ring and, when `tx`, its TX ring, set up and mapped.
pub(super) fn rx_tx_rings(
    fd: &OwnedFd,
    conf: &XdpConf,
    tx: bool,
) -> io::Result<(Ring<libc::xdp_desc>, Option<Ring<libc::xdp_desc>>)> {
    setsockopt(fd, libc::SOL_XDP, libc::XDP_RX_RING, &conf.rx_size)?;
    if tx {
        setsockopt(fd, libc::SOL_XDP, libc::XDP_TX_RING, &conf.tx_size)?;
    }
    let off = offsets(fd)?;
    let rx = Ring::map(
        fd,
        &off.rx,
        conf.rx_size,
        libc::XDP_PGOFF_RX_RING as u64,
        Role::Consumer,
    )?;
    let tx = match tx {
        true => Some(Ring::map(
            fd,
            &off.tx,
            conf.tx_size,
            libc::XDP_PGOFF_TX_RING as u64,
            Role::Producer,
        )?),
        false => None,
    };
    Ok((rx, tx))
}

/// A socket's own fill and completion rings (the first socket on a device
/// queue registers them; later sockets on that queue share them).
pub(super) fn fill_comp_rings(
    fd: &OwnedFd,
    fill: u32,
    comp: u32,
) -> io::Result<(Ring<u64>, Ring<u64>)> {
    setsockopt(fd, libc::SOL_XDP, libc::XDP_UMEM_FILL_RING, &fill)?;
    setsockopt(fd, libc::SOL_XDP, libc::XDP_UMEM_COMPLETION_RING, &comp)?;
    let off = offsets(fd)?;
    let f = Ring::map(
        fd,
        &off.fr,
        fill,
        libc::XDP_UMEM_PGOFF_FILL_RING,
        Role::Producer,
    )?;
    let c = Ring::map(
        fd,
        &off.cr,
        comp,
        libc::XDP_UMEM_PGOFF_COMPLETION_RING,
        Role::Consumer,
    )?;
    Ok((f, c))
}

/// An epoll descriptor that is readable when any of `fds` is: one
/// descriptor to poll for a worker's sockets on several device queues.
pub(super) fn epoll_of(fds: &[std::os::fd::RawFd]) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: no pointer involved; a new descriptor or -1.
    let ep = crate::sys::cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: `ep` was just returned to us and is owned by nothing else.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    for &fd in fds {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: `ev` is a live epoll_event the kernel only reads.
        crate::sys::cvt(unsafe {
            libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev)
        })?;
    }
    Ok(ep)
}

/// The UMEM's memory: a memfd (so a successor process can map the same
/// frames, see [`super::handover`]) mapped shared.
pub(crate) struct Umem {
    /// The memfd.
    pub(crate) fd: OwnedFd,
    /// Its mapping in this process.
    pub(crate) map: Mmap,
    /// Whether it lives on explicit 2 MiB huge pages (`MFD_HUGETLB`).
    pub(crate) hugetlb: bool,
}

/// A memfd of at least `len` bytes mapped `MAP_SHARED`: on explicit 2 MiB
/// huge pages when `huge` and the kernel has enough free (the size rounded
/// up to whole huge pages), on ordinary pages otherwise.
pub(super) fn umem_memfd(len: usize, huge: bool) -> io::Result<Umem> {
    if huge {
        let hlen = len.div_ceil(crate::mem::HUGE_PAGE) * crate::mem::HUGE_PAGE;
        let flags = libc::MFD_HUGETLB | libc::MFD_HUGE_2MB;
        // No free huge pages: mmap fails (ENOMEM) and the ordinary memfd
        // below is used, as a UMEM always was before.
        if let Ok(fd) = memfd(c"rvs-umem", flags, hlen) {
            if let Ok(map) = map_shared(&fd, hlen) {
                return Ok(Umem {
                    fd,
                    map,
                    hugetlb: true,
                });
            }
        }
    }
    let fd = memfd(c"rvs-umem", 0, len)?;
    let map = map_shared(&fd, len)?;
    Ok(Umem {
        fd,
        map,
        hugetlb: false,
    })
}

/// A close-on-exec memfd of `len` bytes, sealed at that size.
fn memfd(name: &std::ffi::CStr, flags: libc::c_uint, len: usize) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: `name` is NUL-terminated and only read; the result is a new
    // descriptor or -1.
    let fd = crate::sys::cvt(unsafe {
        libc::memfd_create(
            name.as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | flags,
        )
    })?;
    // SAFETY: `fd` was just returned to us and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: no pointer involved.
    crate::sys::cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) })?;
    // Its size is fixed from here on: a successor mapping it can rely on
    // the size it checked (a shrunk UMEM would fault under the kernel).
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: no pointer involved.
    crate::sys::cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) })?;
    Ok(fd)
}

/// Maps `len` bytes of the memfd `fd` shared and populated (the UMEM of a
/// port opened here or adopted from another process).
pub(super) fn map_shared(fd: &OwnedFd, len: usize) -> io::Result<Mmap> {
    // SAFETY: a fresh shared mapping at an address the kernel chooses; it
    // aliases no Rust object of this process (another process may map the
    // same memfd: frames are handed between them by the rings, see module
    // `handover`).
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(Mmap { ptr: p.cast(), len })
}

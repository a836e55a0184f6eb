//! Thin wrappers over the few syscalls the crate makes, so the `unsafe`
//! needed for them is written (and justified) once.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Turns a -1 return into the thread's `errno`.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A new socket, owned so that every error path closes it.
pub(crate) fn socket(
    domain: libc::c_int,
    ty: libc::c_int,
    proto: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) has no memory arguments; the returned descriptor is
    // fresh and owned by nobody else, so OwnedFd may take it.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) })?;
    // SAFETY: `fd` was just returned by socket(2) and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// setsockopt(2) with a plain-old-data value.
pub(crate) fn setsockopt<T: Copy>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
) -> io::Result<()> {
    // SAFETY: the pointer and length describe `*val`, a live `Copy` value the
    // kernel only reads during the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// getsockopt(2) into a plain-old-data value (zero-initialised first).
pub(crate) fn getsockopt<T: Copy + Default>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    let mut val = T::default();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `val`, which the kernel fills
    // with at most `len` bytes; `T: Copy` has no invariants to break.
    cvt(unsafe { libc::getsockopt(fd, level, name, (&mut val as *mut T).cast(), &mut len) })?;
    Ok(val)
}

/// Binds a packet socket to an interface and an ethertype (0: receive nothing).
pub(crate) fn bind_packet(fd: &OwnedFd, ifindex: u32, proto: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data for which all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: the pointer and length describe `sll`, read by the kernel only.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// The interface a packet socket is bound to (getsockname(2); 0: none).
pub(crate) fn bound_ifindex(fd: RawFd) -> io::Result<u32> {
    // SAFETY: sockaddr_ll is plain old data for which all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `sll`, which the kernel fills
    // with at most `len` bytes.
    cvt(unsafe { libc::getsockname(fd, (&mut sll as *mut libc::sockaddr_ll).cast(), &mut len) })?;
    if sll.sll_family != libc::AF_PACKET as u16 {
        return Ok(0);
    }
    Ok(sll.sll_ifindex as u32)
}

/// A shared read/write mapping of a packet socket's ring(s), unmapped on drop.
pub(crate) struct Mmap {
    pub(crate) ptr: *mut u8,
    pub(crate) len: usize,
}

impl Mmap {
    /// Maps `len` bytes of the rings configured on `fd`.
    pub(crate) fn ring(fd: &OwnedFd, len: usize) -> io::Result<Mmap> {
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL) aliases no
        // Rust object; MAP_LOCKED is not requested so the call cannot fail on
        // RLIMIT_MEMLOCK, MAP_POPULATE faults the pages in up front.
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
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `ring`, and the
        // owner drops it only when no slice into it can be alive (slices
        // borrow the ring that owns this Mmap).
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// poll(2) on up to 64 descriptors for readability; returns how many are ready.
pub(crate) fn poll_in(fds: &[RawFd], timeout_ms: i32) -> io::Result<usize> {
    const MAX: usize = 64;
    if fds.len() > MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "more than 64 descriptors",
        ));
    }
    let mut p = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX];
    for (slot, fd) in p.iter_mut().zip(fds) {
        slot.fd = *fd;
        slot.events = libc::POLLIN;
    }
    // SAFETY: `p` holds `fds.len()` initialised pollfd entries that live
    // across the call.
    let r = unsafe { libc::poll(p.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    match cvt(r) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// Sets the process's file-mode creation mask and returns the previous one
/// (umask(2); it cannot fail). Process-wide: callers set it around the one
/// file they create and put the old mask back.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask(2) takes a plain integer and touches no memory of ours.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

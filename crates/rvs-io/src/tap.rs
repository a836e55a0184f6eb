//! TAP devices: the exception path between rvs and the kernel stack (what
//! DPVS calls KNI). Frames rvs does not handle itself (ARP for addresses the
//! kernel owns, management traffic, routing protocols) are written to the
//! port's TAP and the kernel's answers read back and transmitted.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::iface::{ctl, if_index, ifreq_ioctl, set_mac_on, set_mtu_on, set_up_on, IfReq};
use crate::sys::cvt;

/// An open, non-persistent TAP device; closing it (drop) removes it.
#[derive(Debug)]
pub struct Tap {
    fd: OwnedFd,
    name: String,
}

impl Tap {
    /// Creates TAP device `name` (frames without packet-info header), sets
    /// its MAC and MTU and brings it up. The descriptor is non-blocking.
    pub fn open(name: &str, mac: [u8; 6], mtu: u16) -> io::Result<Tap> {
        let path: &CStr = c"/dev/net/tun";
        // SAFETY: `path` is NUL-terminated and lives across the call.
        let raw = cvt(unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: `raw` was just returned by open(2) and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut r = IfReq::new(name)?;
        let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as i16;
        r.data[..2].copy_from_slice(&flags.to_ne_bytes());
        // TUNSETIFF takes the ifreq like the SIOC* requests do.
        ifreq_ioctl(&fd, libc::TUNSETIFF, &mut r)?;
        let s = ctl()?;
        set_mac_on(&s, name, mac)?;
        set_mtu_on(&s, name, mtu)?;
        set_up_on(&s, name)?;
        Ok(Tap {
            fd,
            name: name.to_string(),
        })
    }

    /// Takes over a TAP device from a descriptor another process passed
    /// (hot upgrade: the device lives as long as some process holds it, so
    /// it survives the old process). Checks that the descriptor is a TAP
    /// (without packet-info header) attached to `name` and that `name` has
    /// interface index `ifindex` here; refuses otherwise, saying what
    /// differs (`fd` is then closed, the sender's own is untouched).
    pub fn adopt(fd: OwnedFd, name: &str, ifindex: u32) -> io::Result<Tap> {
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let mut r = IfReq::new("x")?;
        r.name = [0; libc::IFNAMSIZ];
        ifreq_ioctl(&fd, libc::TUNGETIFF, &mut r).map_err(|e| {
            bad(format!(
                "TAP {name}: the descriptor is no attached TAP ({e})"
            ))
        })?;
        let len = r.name.iter().position(|&c| c == 0).unwrap_or(r.name.len());
        let got = String::from_utf8_lossy(&r.name[..len]).into_owned();
        if got != name {
            return Err(bad(format!(
                "TAP {name}: the descriptor is attached to {got}"
            )));
        }
        let flags = i16::from_ne_bytes([r.data[0], r.data[1]]) as libc::c_int;
        if flags & libc::IFF_TAP == 0 || flags & libc::IFF_NO_PI == 0 {
            return Err(bad(format!(
                "TAP {name}: flags {flags:#x}, not IFF_TAP|IFF_NO_PI"
            )));
        }
        let here = if_index(name).map_err(|e| bad(format!("TAP {name}: not found here ({e})")))?;
        if here != ifindex {
            return Err(bad(format!(
                "TAP {name}: interface index {here} here, {ifindex} expected"
            )));
        }
        // SAFETY: fcntl(F_GETFL) has no memory arguments; `fd` is open.
        let fl = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
        if fl & libc::O_NONBLOCK == 0 {
            return Err(bad(format!("TAP {name}: the descriptor is blocking")));
        }
        Ok(Tap {
            fd,
            name: name.to_string(),
        })
    }

    /// The device's interface index (for a hand-over manifest).
    pub fn ifindex(&self) -> io::Result<u32> {
        if_index(&self.name)
    }

    /// Reads one frame the kernel sent out of the device; `WouldBlock` when
    /// none is queued. A frame longer than `buf` is truncated by the kernel.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the pointer and length describe `buf`, writable for the call.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Hands one Ethernet frame to the kernel as if received on the device.
    pub fn write(&mut self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: the pointer and length describe `frame`, readable for the call.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else if n as usize != frame.len() {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write to tap",
            ))
        } else {
            Ok(())
        }
    }

    /// The descriptor, to poll together with the worker's queues.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handle that switches the device's carrier from another thread
    /// (a duplicate of the descriptor: no lock on the TAP is taken).
    pub fn carrier(&self) -> io::Result<TapCarrier> {
        Ok(TapCarrier {
            fd: self.fd.try_clone()?,
            name: self.name.clone(),
        })
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Switches a TAP device's carrier (`TUNSETCARRIER`): without carrier the
/// kernel sends nothing on it and routing daemons take it as down, while
/// its addresses and routes stay (an administrative down would delete the
/// routes through it).
#[derive(Debug)]
pub struct TapCarrier {
    fd: OwnedFd,
    name: String,
}

impl TapCarrier {
    /// Turns the carrier on or off.
    pub fn set(&self, on: bool) -> io::Result<()> {
        let v: libc::c_int = on.into();
        // SAFETY: TUNSETCARRIER reads one int through the pointer, which
        // points to `v`, alive for the call; the descriptor is ours.
        cvt(unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TUNSETCARRIER, &v) }).map(|_| ())
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

//! Interface helpers over ioctl(2) on a throwaway datagram socket: no netlink
//! needed for the handful of attributes rvs reads or sets.
//!
//! Every function acts in the network namespace of the calling thread.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::sys::{cvt, socket};

/// `struct ifreq`: the name, then a 24-byte union (flags, MTU, hardware
/// address...), 8-byte aligned because the union holds pointers.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub(crate) struct IfReq {
    pub(crate) name: [u8; libc::IFNAMSIZ],
    pub(crate) data: [u8; 24],
}

impl IfReq {
    /// A request for `name`, which must fit IFNAMSIZ with its NUL.
    pub(crate) fn new(name: &str) -> io::Result<IfReq> {
        let b = name.as_bytes();
        if b.is_empty() || b.len() >= libc::IFNAMSIZ || b.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad interface name",
            ));
        }
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        r.name[..b.len()].copy_from_slice(b);
        Ok(r)
    }

    fn i16(&self) -> i16 {
        i16::from_ne_bytes([self.data[0], self.data[1]])
    }

    fn i32(&self) -> i32 {
        i32::from_ne_bytes([self.data[0], self.data[1], self.data[2], self.data[3]])
    }
}

/// Runs one interface ioctl; `req` is read and possibly filled in.
pub(crate) fn ifreq_ioctl(sock: &OwnedFd, op: libc::Ioctl, req: &mut IfReq) -> io::Result<()> {
    // SAFETY: every SIOC[GS]IF* request used here reads/writes at most one
    // `struct ifreq`, which `IfReq` matches in size (40) and alignment.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), op, req as *mut IfReq) }).map(drop)
}

fn ctl_socket() -> io::Result<OwnedFd> {
    socket(libc::AF_INET, libc::SOCK_DGRAM, 0)
}

/// The interface index of `name`.
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// The hardware (MAC) address of `name`.
pub fn mac_of(name: &str) -> io::Result<[u8; 6]> {
    let s = ctl_socket()?;
    let mut r = IfReq::new(name)?;
    ifreq_ioctl(&s, libc::SIOCGIFHWADDR, &mut r)?;
    // The union holds a sockaddr: 2 bytes of family, then the address.
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&r.data[2..8]);
    Ok(mac)
}

/// The MTU of `name`.
pub fn mtu_of(name: &str) -> io::Result<u32> {
    let s = ctl_socket()?;
    let mut r = IfReq::new(name)?;
    ifreq_ioctl(&s, libc::SIOCGIFMTU, &mut r)?;
    Ok(r.i32().max(0) as u32)
}

/// The receive queues of `name` the kernel uses, i.e. the values an XDP
/// program sees in `rx_queue_index` (see [`queues`]).
pub fn rx_queues(name: &str) -> io::Result<u32> {
    Ok(queues(name)?.0)
}

/// The (receive, transmit) queues of `name` the kernel uses: the combined
/// plus RX-only (TX-only) channels of `ethtool -l` (ETHTOOL_GCHANNELS). A
/// driver without channel support (loopback, bridge, tun) is counted from
/// `/sys/class/net/<name>/queues` when that shows this namespace's device,
/// and as one queue each way otherwise.
pub fn queues(name: &str) -> io::Result<(u32, u32)> {
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    // struct ethtool_channels: cmd, max_rx, max_tx, max_other,
    // max_combined, rx_count, tx_count, other_count, combined_count.
    let mut ch = [0u32; 9];
    ch[0] = ETHTOOL_GCHANNELS;
    let s = ctl_socket()?;
    let mut r = IfReq::new(name)?;
    r.data[..8].copy_from_slice(&(ch.as_mut_ptr() as usize as u64).to_ne_bytes());
    // SAFETY: SIOCETHTOOL reads one `struct ifreq` (IfReq matches it) whose
    // data pointer names `ch`, a live `struct ethtool_channels` (nine u32)
    // that the kernel fills for ETHTOOL_GCHANNELS and nothing else.
    let rc = cvt(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCETHTOOL, &mut r as *mut IfReq) });
    match rc {
        Ok(_) => Ok(((ch[5] + ch[8]).max(1), (ch[6] + ch[8]).max(1))),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            let count = |prefix: &str| {
                std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                            .count() as u32
                    })
                    .unwrap_or(0)
                    .max(1)
            };
            Ok((count("rx-"), count("tx-")))
        }
        Err(e) => Err(e),
    }
}

/// Brings `name` administratively up (keeping its other flags).
pub fn set_up(name: &str) -> io::Result<()> {
    let s = ctl_socket()?;
    set_up_on(&s, name)
}

/// Takes `name` administratively down (keeping its other flags).
pub fn set_down(name: &str) -> io::Result<()> {
    let s = ctl_socket()?;
    set_flags_on(&s, name, 0, libc::IFF_UP as i16)
}

/// Whether `name` is administratively up.
pub fn is_up(name: &str) -> io::Result<bool> {
    let s = ctl_socket()?;
    let mut r = IfReq::new(name)?;
    ifreq_ioctl(&s, libc::SIOCGIFFLAGS, &mut r)?;
    Ok(r.i16() & libc::IFF_UP as i16 != 0)
}

pub(crate) fn set_up_on(s: &OwnedFd, name: &str) -> io::Result<()> {
    set_flags_on(s, name, libc::IFF_UP as i16, 0)
}

/// Sets the flags in `set` and clears those in `clear`, keeping the others.
fn set_flags_on(s: &OwnedFd, name: &str, set: i16, clear: i16) -> io::Result<()> {
    let mut r = IfReq::new(name)?;
    ifreq_ioctl(s, libc::SIOCGIFFLAGS, &mut r)?;
    let flags = (r.i16() | set) & !clear;
    r.data = [0; 24];
    r.data[..2].copy_from_slice(&flags.to_ne_bytes());
    ifreq_ioctl(s, libc::SIOCSIFFLAGS, &mut r)
}

pub(crate) fn set_mac_on(s: &OwnedFd, name: &str, mac: [u8; 6]) -> io::Result<()> {
    let mut r = IfReq::new(name)?;
    r.data[..2].copy_from_slice(&libc::ARPHRD_ETHER.to_ne_bytes());
    r.data[2..8].copy_from_slice(&mac);
    ifreq_ioctl(s, libc::SIOCSIFHWADDR, &mut r)
}

pub(crate) fn set_mtu_on(s: &OwnedFd, name: &str, mtu: u16) -> io::Result<()> {
    let mut r = IfReq::new(name)?;
    r.data[..4].copy_from_slice(&(mtu as i32).to_ne_bytes());
    ifreq_ioctl(s, libc::SIOCSIFMTU, &mut r)
}

pub(crate) fn ctl() -> io::Result<OwnedFd> {
    ctl_socket()
}

/// Pins the calling thread to one CPU.
pub fn pin_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} out of range"),
        ));
    }
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above), so the bit is inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t and its size is passed with it; pid 0
    // is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the calling thread's nice value (-20..=19; 19 yields to almost
/// everything, 0 is the default). rvsd's successor runs its dormant workers
/// at 19 while the running rvsd still forwards on the same CPUs.
pub fn set_thread_nice(nice: i32) -> io::Result<()> {
    set_nice_of(thread_id(), nice)
}

/// The calling thread's id (its `gettid`).
pub fn thread_id() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// Sets thread `tid`'s nice value (as [`set_thread_nice`], for another
/// thread of this process: a successor raises a dormant worker's priority
/// before it wakes it, so that the wake-up does not wait at nice 19).
pub fn set_nice_of(tid: u32, nice: i32) -> io::Result<()> {
    // SAFETY: setpriority takes plain integers; PRIO_PROCESS with a thread
    // id changes only that thread on Linux.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The nice value of the calling thread.
pub fn thread_nice() -> io::Result<i32> {
    // SAFETY: as in set_thread_nice.
    let tid = unsafe { libc::gettid() };
    // getpriority returns -1 both for nice -1 and for an error: errno tells.
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: plain integers.
    let n = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    let e = io::Error::last_os_error();
    if n == -1 && e.raw_os_error() != Some(0) {
        return Err(e);
    }
    Ok(n)
}

/// Puts thread `tid` under `SCHED_IDLE`: it runs only when nothing else
/// wants its CPU, and any other thread that wakes there preempts it at
/// once (a nice value only lowers its share).
pub fn set_idle_of(tid: u32) -> io::Result<()> {
    let p = libc::sched_param { sched_priority: 0 };
    // SAFETY: `p` is a valid sched_param for the call's duration; a thread
    // id names that thread only on Linux.
    let rc = unsafe { libc::sched_setscheduler(tid as libc::pid_t, libc::SCHED_IDLE, &p) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether thread `tid` is under `SCHED_IDLE`.
pub fn is_idle(tid: u32) -> io::Result<bool> {
    // SAFETY: plain integer argument.
    let rc = unsafe { libc::sched_getscheduler(tid as libc::pid_t) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc == libc::SCHED_IDLE)
}

/// The ids of this process's threads (from `/proc/self/task`).
pub fn threads() -> io::Result<Vec<u32>> {
    let mut tids = Vec::new();
    for e in std::fs::read_dir("/proc/self/task")? {
        if let Some(tid) = e?.file_name().to_str().and_then(|s| s.parse().ok()) {
            tids.push(tid);
        }
    }
    Ok(tids)
}

/// Applies `f` to every thread of this process; a thread that ended
/// meanwhile is skipped. Returns how many it was applied to.
fn each_thread(f: impl Fn(u32) -> io::Result<()>) -> io::Result<usize> {
    let mut n = 0;
    for tid in threads()? {
        match f(tid) {
            Ok(()) => n += 1,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Puts every thread of this process under `SCHED_IDLE` ([`set_idle_of`]):
/// a rvsd that handed over its ports does its exit (joins, frees, the
/// kernel unmapping its tables) without taking its successor's CPU.
/// Returns how many threads it lowered.
pub fn set_process_idle() -> io::Result<usize> {
    each_thread(set_idle_of)
}

/// The combined channels of `name` as DPDK's `net_af_xdp` counts them
/// (the queues it can bind): `combined_count` of ETHTOOL_GCHANNELS, or 1
/// when the driver reports no combined channel (veth) or none at all.
pub fn combined_channels(name: &str) -> io::Result<u32> {
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    let mut ch = [0u32; 9];
    ch[0] = ETHTOOL_GCHANNELS;
    let s = ctl_socket()?;
    let mut r = IfReq::new(name)?;
    r.data[..8].copy_from_slice(&(ch.as_mut_ptr() as usize as u64).to_ne_bytes());
    // SAFETY: as in `queues`: one `struct ifreq` whose data pointer names
    // `ch`, a live `struct ethtool_channels`.
    let rc = cvt(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCETHTOOL, &mut r as *mut IfReq) });
    match rc {
        Ok(_) if ch[4] > 0 => Ok(ch[8].max(1)),
        Ok(_) => Ok(1),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(1),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_attributes() {
        // Present in every namespace, so this holds in any test environment.
        assert_eq!(if_index("lo").unwrap(), 1);
        assert_eq!(mac_of("lo").unwrap(), [0; 6]);
        assert!(mtu_of("lo").unwrap() >= 1500);
        assert!(if_index("rvs-no-such-if").is_err());
        assert!(IfReq::new("a-name-longer-than-15").is_err());
    }

    /// A thread lowered to 19 reads 19 back and, as root, returns to 0;
    /// other threads keep theirs.
    #[test]
    fn a_thread_s_nice_value_is_its_own() {
        let before = thread_nice().expect("nice of this thread");
        let (low, back) = std::thread::spawn(|| {
            set_thread_nice(19).expect("lower");
            let low = thread_nice().expect("read");
            set_thread_nice(0).expect("restore (needs root)");
            (low, thread_nice().expect("read"))
        })
        .join()
        .expect("thread");
        assert_eq!((low, back), (19, 0));
        assert_eq!(thread_nice().expect("read"), before);
    }

    /// Runs `f` with the id of another live thread, which ends after it.
    fn with_thread(f: impl FnOnce(u32)) -> u32 {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(thread_id()).expect("tid");
            let _ = done_rx.recv();
        });
        let tid = rx.recv().expect("tid");
        f(tid);
        done_tx.send(()).expect("done");
        t.join().expect("thread");
        tid
    }

    /// A thread put under SCHED_IDLE reads so; the others are untouched.
    #[test]
    fn a_thread_under_sched_idle_is_its_own() {
        with_thread(|tid| {
            assert!(!is_idle(tid).expect("policy"));
            set_idle_of(tid).expect("SCHED_IDLE");
            assert!(is_idle(tid).expect("policy"));
            assert!(!is_idle(thread_id()).expect("policy of this thread"));
        });
    }

    #[test]
    fn the_threads_of_this_process_are_listed() {
        let tid = with_thread(|tid| {
            let all = threads().expect("threads");
            assert!(all.contains(&tid) && all.contains(&thread_id()), "{all:?}");
        });
        assert!(!threads().expect("threads").contains(&tid));
    }
}

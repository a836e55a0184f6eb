//! The taking side of a hand-over (see module `handover`): validating every
//! passed descriptor against the manifest and this process's configuration,
//! mapping the UMEM and the rings of the live sockets, and starting from the
//! old process's pool state.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use super::handover::{roles, FdRole, XdpManifest, XdpPoolState};
use super::open::{worker_queues, Plan, Socks};
use super::ring::{Pool, Ring, Role};
use super::sock::{map_shared, offsets};
use super::{abi, bpf, prog, FastMap, Shared, XdpConf, XdpMode, XdpPort};
use crate::sys::getsockopt;

/// A port adopted from another process, mapped but not started: the old
/// process may still be forwarding. [`start`](Self::start) it with the pool
/// state the old one gives once frozen.
pub struct XdpPrepared {
    port: XdpPort,
}

fn refused(ifname: &str, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("cannot adopt the AF_XDP port of {ifname}: {what}"),
    )
}

/// Whether kernel `release` (e.g. "6.18.4-foo") lets a process map the
/// fill and completion rings of a bound socket (Linux 6.4).
pub(crate) fn kernel_release_ok(release: &str) -> Result<(), String> {
    let mut it = release.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    let (major, minor) = (it.next().flatten(), it.next().flatten());
    match (major, minor) {
        (Some(a), Some(b)) if (a, b) >= (6, 4) => Ok(()),
        _ => Err(format!(
            "kernel {release:?}: handing an AF_XDP port to another process needs Linux 6.4 or \
             later (mapping the fill and completion rings of a bound socket, \"xsk: allow remap \
             of fill and/or completion rings\"); restart instead"
        )),
    }
}

/// Every field where the manifest and this configuration differ, as
/// "what: running X, configured Y".
fn geometry_diffs(m: &XdpManifest, plan: &Plan, conf: &XdpConf) -> Vec<String> {
    let g = plan.geom(conf);
    let mut d = Vec::new();
    let mut cmp = |what: &str, theirs: u64, ours: u64| {
        if theirs != ours {
            d.push(format!("{what}: running {theirs}, configured {ours}"));
        }
    };
    cmp("frame size", m.frame_size.into(), g.frame_size.into());
    cmp("frames per queue", m.frames.into(), g.frames.into());
    cmp("fill ring size", m.fill_size.into(), g.fill.into());
    cmp("completion ring size", m.comp_size.into(), g.comp.into());
    cmp("RX ring size", m.rx_size.into(), g.rx.into());
    cmp("TX ring size", m.tx_size.into(), g.tx.into());
    cmp("workers", m.workers.into(), g.workers.into());
    cmp("first queue", m.first_queue.into(), g.first_queue.into());
    cmp("served queues", m.queues.into(), g.queues.into());
    cmp(
        "device RX queues",
        m.device_queues.into(),
        plan.device.into(),
    );
    cmp("home queues", m.homes.into(), g.homes.into());
    cmp(
        "steering map entries",
        m.max_addrs.into(),
        g.max_addrs.into(),
    );
    cmp(
        "fast-path entries",
        m.fast_entries.into(),
        g.fast_entries.into(),
    );
    cmp("device index", m.ifindex.into(), plan.ifindex.into());
    let umem = u64::from(g.frame_size) * u64::from(g.frames) * u64::from(g.queues);
    cmp("UMEM bytes", m.umem_len, umem);
    match conf.mode {
        XdpMode::Native if !m.native => {
            d.push("XDP mode: running generic, configured native".into())
        }
        XdpMode::Generic if m.native => {
            d.push("XDP mode: running native, configured generic".into())
        }
        _ => {}
    }
    if m.fds != roles(&g) {
        d.push(format!(
            "descriptor list: {} entries not in the order this build passes them",
            m.fds.len()
        ));
    }
    d
}

/// What `/proc/self/fd/N` links to: "anon_inode:bpf-map", "socket:[..]",
/// "/memfd:rvs-umem (deleted)".
fn fd_target(fd: RawFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn info_u32(info: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([info[off], info[off + 1], info[off + 2], info[off + 3]])
}

/// A BPF map of layout `l` with `entries` entries.
fn check_map(fd: RawFd, l: abi::MapLayout, entries: u32) -> Result<(), String> {
    let (ty, key, value) = (l.kind, l.key_size, l.value_size);
    let t = fd_target(fd);
    if !t.contains("bpf-map") {
        return Err(format!("is {t:?}, not a BPF map"));
    }
    // struct bpf_map_info: type, id, key_size, value_size, max_entries.
    let mut info = [0u8; 96];
    bpf::obj_info(fd, &mut info).map_err(|e| format!("BPF_OBJ_GET_INFO_BY_FD: {e}"))?;
    let got = [0, 8, 12, 16].map(|o| info_u32(&info, o));
    let want = [ty, key, value, entries];
    if got != want {
        return Err(format!(
            "a map of type {} with {}-byte keys, {}-byte values, {} entries; expected type {ty}, \
             {key}, {value}, {entries}",
            got[0], got[1], got[2], got[3]
        ));
    }
    Ok(())
}

/// rvs's XDP program.
fn check_prog(fd: RawFd) -> Result<(), String> {
    let t = fd_target(fd);
    if !t.contains("bpf-prog") {
        return Err(format!("is {t:?}, not a BPF program"));
    }
    // struct bpf_prog_info: type at 0, name at 64..80.
    let mut info = [0u8; 256];
    bpf::obj_info(fd, &mut info).map_err(|e| format!("BPF_OBJ_GET_INFO_BY_FD: {e}"))?;
    let n = &info[64..80];
    let name = String::from_utf8_lossy(&n[..n.iter().position(|&b| b == 0).unwrap_or(16)]);
    if info_u32(&info, 0) != 6 || name != prog::PROG_NAME {
        return Err(format!(
            "a program of type {} named {name:?}, not rvs's XDP program {:?}",
            info_u32(&info, 0),
            prog::PROG_NAME
        ));
    }
    Ok(())
}

/// An XDP link on device `ifindex`.
fn check_link(fd: RawFd, ifindex: u32) -> Result<(), String> {
    let t = fd_target(fd);
    if !t.contains("bpf_link") {
        return Err(format!("is {t:?}, not a BPF link"));
    }
    // struct bpf_link_info: type, id, prog_id, then (8-aligned) xdp.ifindex.
    let mut info = [0u8; 64];
    bpf::obj_info(fd, &mut info).map_err(|e| format!("BPF_OBJ_GET_INFO_BY_FD: {e}"))?;
    let (ty, on) = (info_u32(&info, 0), info_u32(&info, 16));
    if ty != 6 || on != ifindex {
        return Err(format!(
            "a link of type {ty} on device index {on}, not an XDP link (6) on {ifindex}"
        ));
    }
    Ok(())
}

/// A memfd of `size` bytes.
fn check_memfd(fd: &OwnedFd, size: u64) -> Result<(), String> {
    let t = fd_target(fd.as_raw_fd());
    if !t.starts_with("/memfd:") {
        return Err(format!("is {t:?}, not a memfd"));
    }
    let len = std::fs::File::from(fd.try_clone().map_err(|e| e.to_string())?)
        .metadata()
        .map_err(|e| e.to_string())?
        .len();
    if len != size {
        return Err(format!("{len} bytes, the manifest says {size}"));
    }
    // SAFETY: no pointer involved.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    let fixed = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    if seals < 0 || seals & fixed != fixed {
        return Err("a memfd whose size is not sealed (not rvs's UMEM)".to_string());
    }
    Ok(())
}

/// An AF_XDP socket, bound zero-copy or not as the manifest says.
fn check_xsk(fd: RawFd, zero_copy: bool) -> Result<(), String> {
    let domain = getsockopt::<libc::c_int>(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)
        .map_err(|e| format!("is no socket ({e})"))?;
    let ty = getsockopt::<libc::c_int>(fd, libc::SOL_SOCKET, libc::SO_TYPE).unwrap_or(-1);
    if domain != libc::AF_XDP || ty != libc::SOCK_RAW {
        return Err(format!(
            "a socket of domain {domain} type {ty}, not AF_XDP ({}) SOCK_RAW",
            libc::AF_XDP
        ));
    }
    let opts = getsockopt::<u32>(fd, libc::SOL_XDP, libc::XDP_OPTIONS)
        .map_err(|e| format!("XDP_OPTIONS: {e} (not bound?)"))?;
    if (opts & libc::XDP_OPTIONS_ZEROCOPY != 0) != zero_copy {
        return Err(format!(
            "bound {}, the manifest says {}",
            if zero_copy {
                "in copy mode"
            } else {
                "zero-copy"
            },
            if zero_copy { "zero-copy" } else { "copy" }
        ));
    }
    Ok(())
}

/// Checks descriptor `fd` for `role`; the reason when it is not that.
fn check_fd(fd: &OwnedFd, role: FdRole, m: &XdpManifest) -> Result<(), String> {
    let raw = fd.as_raw_fd();
    match role {
        FdRole::Link => check_link(raw, m.ifindex),
        FdRole::Prog => check_prog(raw),
        FdRole::Xsks => check_map(raw, abi::XSKS, u32::from(m.workers) * m.queues),
        FdRole::Addrs => check_map(raw, abi::ADDRS, m.max_addrs),
        FdRole::Fast => check_map(raw, abi::FAST, m.fast_entries.max(1)),
        FdRole::Umem => check_memfd(fd, m.memfd_size),
        FdRole::Xsk { .. } => check_xsk(raw, m.zero_copy),
    }
}

/// Maps a ring of a bound socket, naming the kernel need when refused.
fn live_ring<T: Copy>(
    fd: &OwnedFd,
    off: &libc::xdp_ring_offset,
    size: u32,
    pgoff: u64,
    role: Role,
    what: &str,
) -> io::Result<Ring<T>> {
    Ring::map(fd, off, size, pgoff, role).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "mapping the {what} ring of a bound socket: {e} (needs Linux 6.4 or later: \
                 \"xsk: allow remap of fill and/or completion rings\")"
            ),
        )
    })
}

impl XdpPort {
    /// [`prepare`](Self::prepare) then [`start`](XdpPrepared::start) at
    /// once, for a port whose old process is already frozen.
    pub fn adopt(
        ifname: &str,
        conf: &XdpConf,
        manifest: &XdpManifest,
        fds: Vec<OwnedFd>,
        pool: &XdpPoolState,
    ) -> io::Result<XdpPort> {
        XdpPort::prepare(ifname, conf, manifest, fds)?.start(pool)
    }

    /// Validates and maps a port handed over by another process (see
    /// module `handover`): `manifest` and `fds` from the old process's
    /// [`export`](XdpPort::export), `conf` this process's configuration of
    /// the port (its geometry must be the running one; `port` and
    /// `rx_checksum` are this process's). Every descriptor is checked
    /// (BPF object kind, type, key/value sizes and entries; socket domain,
    /// type and mode; memfd size) before anything is mapped, and a mismatch
    /// is refused naming each difference; nothing of the old process's state
    /// is touched then. Refused on kernels before 6.4.
    pub fn prepare(
        ifname: &str,
        conf: &XdpConf,
        manifest: &XdpManifest,
        fds: Vec<OwnedFd>,
    ) -> io::Result<XdpPrepared> {
        kernel_release_ok(
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim(),
        )
        .map_err(|e| refused(ifname, e))?;
        let m = manifest;
        if m.ifname != ifname {
            return Err(refused(
                ifname,
                format!("the manifest is for {:?}", m.ifname),
            ));
        }
        let plan = Plan::of(ifname, conf)?;
        let diffs = geometry_diffs(m, &plan, conf);
        if !diffs.is_empty() {
            return Err(refused(
                ifname,
                format!(
                    "the running port differs from this configuration ({}); restart to change it",
                    diffs.join("; ")
                ),
            ));
        }
        if fds.len() != m.fds.len() {
            return Err(refused(
                ifname,
                format!(
                    "{} descriptors received, the manifest lists {}",
                    fds.len(),
                    m.fds.len()
                ),
            ));
        }
        let bad: Vec<String> = fds
            .iter()
            .zip(&m.fds)
            .enumerate()
            .filter_map(|(i, (fd, &role))| {
                check_fd(fd, role, m)
                    .err()
                    .map(|e| format!("descriptor {i} ({role:?}) {e}"))
            })
            .collect();
        if !bad.is_empty() {
            return Err(refused(ifname, bad.join("; ")));
        }
        map_port(ifname, conf, m, plan, fds)
    }
}

/// Maps everything of a validated hand-over: the UMEM, each queue's fill
/// and completion rings (from its first socket) and every socket's rings.
fn map_port(
    ifname: &str,
    conf: &XdpConf,
    m: &XdpManifest,
    plan: Plan,
    fds: Vec<OwnedFd>,
) -> io::Result<XdpPrepared> {
    let mut it = fds.into_iter();
    let mut next = || it.next().ok_or_else(|| io::Error::other("descriptor list"));
    let (link, prog_fd, xsks, addrs) = (next()?, next()?, next()?, next()?);
    let fast = match m.fast_entries {
        0 => None,
        _ => Some(Arc::new(FastMap { fd: next()? })),
    };
    let umem_fd = next()?;
    let umem = map_shared(&umem_fd, m.memfd_size as usize)?;
    let workers = u32::from(m.workers);
    let mut pools = Vec::new();
    let mut per_queue = Vec::new();
    for qi in 0..m.queues {
        let mut socks: Socks = Vec::new();
        for w in 0..workers {
            let s = next()?;
            let off = offsets(&s)?;
            if w == 0 {
                let fill = live_ring(
                    &s,
                    &off.fr,
                    m.fill_size,
                    libc::XDP_UMEM_PGOFF_FILL_RING,
                    Role::Producer,
                    "fill",
                )?;
                let comp = live_ring(
                    &s,
                    &off.cr,
                    m.comp_size,
                    libc::XDP_UMEM_PGOFF_COMPLETION_RING,
                    Role::Consumer,
                    "completion",
                )?;
                pools.push(Mutex::new(Pool {
                    fill,
                    comp,
                    free: Vec::new(),
                    reserve: 0,
                }));
            }
            let rx = live_ring(
                &s,
                &off.rx,
                m.rx_size,
                libc::XDP_PGOFF_RX_RING as u64,
                Role::Consumer,
                "RX",
            )?;
            let tx = match w % m.homes == qi {
                true => Some(live_ring(
                    &s,
                    &off.tx,
                    m.tx_size,
                    libc::XDP_PGOFF_TX_RING as u64,
                    Role::Producer,
                    "TX",
                )?),
                false => None,
            };
            socks.push((s, rx, tx));
        }
        per_queue.push((m.first_queue + qi, socks));
    }
    let shared = Arc::new(Shared {
        link,
        _prog: prog_fd,
        _xsks: xsks,
        addrs,
        fast,
        pools,
        umem,
        umem_fd,
        umem_hugetlb: m.umem_hugetlb,
        socks: Mutex::new(Vec::new()),
        geom: plan.geom(conf),
        frame_size: m.frame_size as usize,
        frames: m.frames as usize * m.queues as usize,
        native: m.native,
        zero_copy: m.zero_copy,
        served: plan.served.clone(),
        device: plan.device,
        ifname: ifname.to_string(),
        ifindex: plan.ifindex,
    });
    let queues = worker_queues(&shared, per_queue, workers as usize, conf)?;
    Ok(XdpPrepared {
        port: XdpPort { shared, queues },
    })
}

/// Checks a queue's frozen pool: every free frame inside the queue's share
/// of the UMEM, frame-aligned, listed once.
fn check_pool(qi: usize, free: &[u64], fs: u64, frames: u64) -> Result<(), String> {
    let base = qi as u64 * frames * fs;
    let mut seen = vec![false; frames as usize];
    for &a in free {
        let i = a.wrapping_sub(base) / fs;
        if a < base || i >= frames || a % fs != 0 {
            return Err(format!(
                "queue {qi}: free frame {a:#x} is not a frame of the queue"
            ));
        }
        if std::mem::replace(&mut seen[i as usize], true) {
            return Err(format!("queue {qi}: free frame {a:#x} listed twice"));
        }
    }
    Ok(())
}

impl XdpPrepared {
    /// Starts the adopted port from the old process's frozen pools (its
    /// [`XdpPort::freeze`]): re-reads every ring's indices from the shared
    /// pages (the old process moved them after `prepare` mapped them) and
    /// takes the free lists. Refuses a state for another geometry, a free
    /// list with a frame outside its queue or listed twice, and a fill or
    /// completion index that moved after the freeze (the old process is
    /// still running its workers).
    pub fn start(self, pool: &XdpPoolState) -> io::Result<XdpPort> {
        let mut port = self.into_unstarted();
        port.apply_pools(pool)?;
        for q in &mut port.queues {
            q.rx.resync();
            q.tx.resync();
        }
        Ok(port)
    }

    /// The port before its start: its queues may go to their workers, which
    /// must not use them before [`XdpPort::apply_pools`] and a `resync` of
    /// each queue's rings (what [`XdpPrepared::start`] does in one go).
    pub fn into_unstarted(self) -> XdpPort {
        self.port
    }

    /// The prepared port (not to be used before `start`).
    pub fn port(&self) -> &XdpPort {
        &self.port
    }
}

impl XdpPort {
    /// Takes over the running rvsd's frozen UMEM pools (free lists and
    /// reserves, checked against the fill and completion rings), for a port
    /// from [`XdpPrepared::into_unstarted`].
    pub fn apply_pools(&self, pool: &XdpPoolState) -> io::Result<()> {
        let sh = &self.shared;
        let name = sh.ifname.clone();
        if pool.queues.len() != sh.pools.len() {
            return Err(refused(
                &name,
                format!(
                    "the pool state has {} queues, the port serves {}",
                    pool.queues.len(),
                    sh.pools.len()
                ),
            ));
        }
        let (fs, frames) = (sh.frame_size as u64, sh.geom.frames as u64);
        for (qi, (p, q)) in sh.pools.iter().zip(&pool.queues).enumerate() {
            check_pool(qi, &q.free, fs, frames).map_err(|e| refused(&name, e))?;
            let mut p = p
                .lock()
                .map_err(|_| io::Error::other("a pool's lock is poisoned"))?;
            p.fill.resync();
            p.comp.resync();
            let (fill, comp) = (p.fill.local(), p.comp.local());
            if fill != q.fill_prod || comp != q.comp_cons {
                return Err(refused(
                    &name,
                    format!(
                        "queue {qi}: fill producer {fill} and completion consumer {comp} in the \
                         rings, {} and {} in the frozen state: the old process still uses them",
                        q.fill_prod, q.comp_cons
                    ),
                ));
            }
            p.free = q.free.clone();
            p.reserve = q.reserve as usize;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_before_6_4_are_refused_naming_the_need() {
        assert!(kernel_release_ok("6.18.44-fc-v782").is_ok());
        assert!(kernel_release_ok("6.4.0").is_ok());
        assert!(kernel_release_ok("7.0").is_ok());
        let e = kernel_release_ok("6.1.0-13-amd64").unwrap_err();
        assert!(
            e.contains("6.1.0-13-amd64") && e.contains("Linux 6.4"),
            "{e}"
        );
        assert!(kernel_release_ok("garbage").is_err());
    }

    #[test]
    fn a_frozen_pool_must_hold_frames_of_its_queue_once() {
        assert!(check_pool(1, &[8192, 10240], 2048, 4).is_ok());
        let e = check_pool(1, &[0], 2048, 4).unwrap_err();
        assert!(e.contains("not a frame of the queue"), "{e}");
        let e = check_pool(0, &[2048, 2048], 2048, 4).unwrap_err();
        assert!(e.contains("twice"), "{e}");
        assert!(check_pool(0, &[100], 2048, 4).is_err());
    }
}

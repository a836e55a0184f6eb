//! Handing a port to another process (issue 14, hot upgrade): the kernel
//! objects stay, the process using them changes.
//!
//! The old process calls [`XdpPort::export`] for a [`XdpManifest`] (what the
//! port is: geometry, and what each descriptor is) and duplicates of every
//! descriptor the port lives by (the BPF link, program and maps, the UMEM
//! memfd, every XSK socket), and sends them (e.g. [`crate::fdpass`]). The
//! new process validates and maps all of it with [`XdpPort::prepare`] while
//! the old one still forwards. At the cut-over the old one stops its
//! workers: each receive half [`release`](super::XdpRx::release)s its last
//! burst and each transmit half [`freeze`](super::XdpTx::freeze)s (flushes
//! and gives its cache of free frames back); then [`XdpPort::freeze`] gives
//! the [`XdpPoolState`] (per served queue: the free list of UMEM offsets, the
//! reserve, our fill/completion indices), and the old process must not touch
//! the port again (it may exit: the new one holds every descriptor, so no
//! kernel object goes). The new process [`XdpPrepared::start`]s with that
//! state, re-reading every ring's indices from the shared pages, and has the
//! same worker queues as [`XdpPort::open`] gives.
//!
//! Frames are never copied or moved: descriptors hold UMEM offsets, and the
//! UMEM is a memfd both processes map (at different addresses). A frame the
//! kernel delivered after the old process's last burst waits in its RX ring;
//! one it was sending completes into the completion ring the new process
//! reaps. [`XdpPort::account`] checks that every UMEM frame is in exactly
//! one place.
//!
//! Remapping the fill and completion rings of a bound socket needs Linux
//! 6.4 ("xsk: allow remap of fill and/or completion rings"); older kernels
//! are refused with that reason.

use std::io;
use std::os::fd::OwnedFd;

use super::adopt::kernel_release_ok;
use super::{XdpPort, XdpQueue};

pub use super::adopt::XdpPrepared;

/// The version of [`XdpManifest`]'s encoding this build writes and reads.
pub const MANIFEST_VERSION: u16 = 1;
/// The version of [`XdpPoolState`]'s encoding this build writes and reads.
pub const POOL_STATE_VERSION: u16 = 1;

/// The geometry a port was set up with (see [`XdpManifest`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Geom {
    pub(crate) workers: u32,
    pub(crate) frame_size: u32,
    /// UMEM frames per served queue.
    pub(crate) frames: u32,
    pub(crate) fill: u32,
    pub(crate) comp: u32,
    pub(crate) rx: u32,
    pub(crate) tx: u32,
    pub(crate) first_queue: u32,
    pub(crate) queues: u32,
    pub(crate) homes: u32,
    pub(crate) max_addrs: u32,
    pub(crate) fast_entries: u32,
}

/// What one passed descriptor is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FdRole {
    /// The BPF link attaching the program to the device.
    Link,
    /// The XDP program.
    Prog,
    /// The XSKMAP `rvs_xsks`.
    Xsks,
    /// The steering address map `rvs_addrs`.
    Addrs,
    /// The fast-path map (only when the port has one).
    Fast,
    /// The UMEM memfd.
    Umem,
    /// Worker `worker`'s XSK socket on the `queue`-th served queue.
    Xsk {
        /// Index among the served queues.
        queue: u32,
        /// The worker.
        worker: u16,
    },
}

/// What a port is, for the process taking it over: geometry and the role of
/// each descriptor passed with it, in order. Encoded with
/// [`encode`](Self::encode), versioned by [`MANIFEST_VERSION`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpManifest {
    /// The encoding's version.
    pub version: u16,
    /// The device.
    pub ifname: String,
    /// Its index (the same device, not one renamed in between).
    pub ifindex: u32,
    /// UMEM frame size.
    pub frame_size: u32,
    /// UMEM frames per served queue.
    pub frames: u32,
    /// Fill ring entries.
    pub fill_size: u32,
    /// Completion ring entries.
    pub comp_size: u32,
    /// RX ring entries of each socket.
    pub rx_size: u32,
    /// TX ring entries of each socket that has one.
    pub tx_size: u32,
    /// Workers (sockets per served queue).
    pub workers: u16,
    /// The first device RX queue served.
    pub first_queue: u32,
    /// Served queues.
    pub queues: u32,
    /// The device's RX queues.
    pub device_queues: u32,
    /// Served queues some worker transmits on (worker `w`: queue `w % homes`).
    pub homes: u32,
    /// Entries of the steering address map.
    pub max_addrs: u32,
    /// Entries of the fast-path map (0: none).
    pub fast_entries: u32,
    /// Whether the program runs at the driver's hook.
    pub native: bool,
    /// Whether the sockets are bound zero-copy.
    pub zero_copy: bool,
    /// Bytes of UMEM registered (frames × frame size × queues).
    pub umem_len: u64,
    /// Size of the UMEM memfd (rounded up to whole huge pages on hugetlb).
    pub memfd_size: u64,
    /// Whether the memfd is on explicit huge pages.
    pub umem_hugetlb: bool,
    /// What each passed descriptor is, in the order passed.
    pub fds: Vec<FdRole>,
}

/// One served queue's pool when the old process froze: every UMEM frame of
/// the queue not in a ring is in `free`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpQueuePool {
    /// Free frames (UMEM offsets).
    pub free: Vec<u64>,
    /// How many of them are kept for transmission.
    pub reserve: u32,
    /// The fill ring's producer index as the old process left it.
    pub fill_prod: u32,
    /// The completion ring's consumer index as the old process left it.
    pub comp_cons: u32,
}

/// The pools of a frozen port, per served queue. Encoded with
/// [`encode`](Self::encode), versioned by [`POOL_STATE_VERSION`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpPoolState {
    /// The encoding's version.
    pub version: u16,
    /// One per served queue, in order.
    pub queues: Vec<XdpQueuePool>,
}

/// Where every UMEM frame of a port is ([`XdpPort::account`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct UmemAccount {
    /// Frames in the UMEM.
    pub total: usize,
    /// In the fill rings (as published: see `kernel_cached`).
    pub fill: usize,
    /// In the RX rings, not yet taken.
    pub rx: usize,
    /// In the TX rings, not yet sent.
    pub tx: usize,
    /// In the completion rings, not yet reaped.
    pub comp: usize,
    /// In the pools' free lists.
    pub free: usize,
    /// Held by a worker: its last burst, its TX cache.
    pub held: usize,
    /// Fill entries the kernel already took (it publishes its fill consumer
    /// lazily, so they still look queued) and that are found elsewhere.
    pub kernel_cached: usize,
    /// Frames found nowhere (in flight in the kernel, or lost).
    pub missing: usize,
    /// Extra places a frame was found in (a bug: two owners).
    pub duplicated: usize,
    /// Entries that are no frame of this UMEM.
    pub foreign: usize,
}

impl UmemAccount {
    /// Every frame in exactly one place:
    /// `fill - kernel_cached + rx + tx + comp + free + held == total`.
    pub fn exact(&self) -> bool {
        self.missing == 0
            && self.duplicated == 0
            && self.foreign == 0
            && self.fill - self.kernel_cached
                + self.rx
                + self.tx
                + self.comp
                + self.free
                + self.held
                == self.total
    }
}

/// The descriptors of a port, in the order [`XdpPort::export`] passes them.
pub(crate) fn roles(g: &Geom) -> Vec<FdRole> {
    let mut r = vec![FdRole::Link, FdRole::Prog, FdRole::Xsks, FdRole::Addrs];
    if g.fast_entries > 0 {
        r.push(FdRole::Fast);
    }
    r.push(FdRole::Umem);
    for queue in 0..g.queues {
        for w in 0..g.workers {
            r.push(FdRole::Xsk {
                queue,
                worker: w as u16,
            });
        }
    }
    r
}

impl XdpPort {
    /// The manifest of this port and duplicates of its descriptors, in the
    /// manifest's order, to pass to the process taking it over. Fails when a
    /// worker's socket is already closed (its queue was dropped).
    pub fn export(&self) -> io::Result<(XdpManifest, Vec<OwnedFd>)> {
        let sh = &self.shared;
        let g = &sh.geom;
        let mut fds = vec![
            sh.link.try_clone()?,
            sh._prog.try_clone()?,
            sh._xsks.try_clone()?,
            sh.addrs.try_clone()?,
        ];
        if let Some(f) = &sh.fast {
            fds.push(f.fd.try_clone()?);
        }
        fds.push(sh.umem_fd.try_clone()?);
        let socks = sh.socks.lock().map_err(|_| io::Error::other("poisoned"))?;
        for (i, s) in socks.iter().enumerate() {
            let s = s.upgrade().ok_or_else(|| {
                io::Error::other(format!(
                    "{}: worker {}'s socket on queue {} is closed (its queue was dropped): \
                     the port cannot be handed over",
                    sh.ifname,
                    i % g.workers as usize,
                    sh.served.start as usize + i / g.workers as usize
                ))
            })?;
            fds.push(s.fd.try_clone()?);
        }
        let m = XdpManifest {
            version: MANIFEST_VERSION,
            ifname: sh.ifname.clone(),
            ifindex: sh.ifindex,
            frame_size: g.frame_size,
            frames: g.frames,
            fill_size: g.fill,
            comp_size: g.comp,
            rx_size: g.rx,
            tx_size: g.tx,
            workers: g.workers as u16,
            first_queue: g.first_queue,
            queues: g.queues,
            device_queues: sh.device,
            homes: g.homes,
            max_addrs: g.max_addrs,
            fast_entries: g.fast_entries,
            native: sh.native,
            zero_copy: sh.zero_copy,
            umem_len: (sh.frame_size * sh.frames) as u64,
            memfd_size: sh.umem.len as u64,
            umem_hugetlb: sh.umem_hugetlb,
            fds: roles(g),
        };
        if fds.len() != m.fds.len() {
            return Err(io::Error::other(format!(
                "{}: {} descriptors for {} roles",
                sh.ifname,
                fds.len(),
                m.fds.len()
            )));
        }
        Ok((m, fds))
    }

    /// The pools' state for the process taking over, once every worker has
    /// stopped: called after each receive half's `release` and each transmit
    /// half's `freeze`, with no burst or send afterwards. From here on the
    /// rings belong to the successor: this process must not use the port
    /// again (dropping it is fine). Freezing changes nothing: if the
    /// successor fails before [`XdpPrepared::start`] succeeded, this process
    /// thaws by simply resuming its workers; so it keeps its descriptors
    /// until the successor confirms.
    pub fn freeze(&self) -> io::Result<XdpPoolState> {
        let mut queues = Vec::with_capacity(self.shared.pools.len());
        for p in &self.shared.pools {
            let p = p
                .lock()
                .map_err(|_| io::Error::other("a pool's lock is poisoned"))?;
            queues.push(XdpQueuePool {
                free: p.free.clone(),
                reserve: p.reserve as u32,
                fill_prod: p.fill.local(),
                comp_cons: p.comp.local(),
            });
        }
        Ok(XdpPoolState {
            version: POOL_STATE_VERSION,
            queues,
        })
    }

    /// Where every UMEM frame is: in the port's rings, pools and the queues
    /// it still has or `taken` (those handed out by `take_queues`). Exact
    /// only when the port is quiet (nothing being received or sent: frames
    /// the kernel is moving are `missing`).
    pub fn account(&self, taken: &[XdpQueue]) -> UmemAccount {
        let sh = &self.shared;
        let fs = sh.frame_size as u64;
        let mut a = UmemAccount {
            total: sh.frames,
            ..UmemAccount::default()
        };
        let mut seen = vec![0u32; sh.frames];
        let mut add = |addrs: &[u64], n: &mut usize, a_foreign: &mut usize| {
            *n += addrs.len();
            for &x in addrs {
                match seen.get_mut((x / fs) as usize) {
                    Some(c) if x % fs == 0 => *c += 1,
                    _ => *a_foreign += 1,
                }
            }
        };
        let mut fills = Vec::new();
        for p in &sh.pools {
            let Ok(p) = p.lock() else { continue };
            add(&p.free, &mut a.free, &mut a.foreign);
            add(&p.comp.pending(), &mut a.comp, &mut a.foreign);
            fills.push(p.fill.pending());
        }
        for q in self.queues.iter().chain(taken) {
            let (held, rx) = q.rx.frames();
            let (cache, tx) = q.tx.frames();
            add(&held, &mut a.held, &mut a.foreign);
            add(&cache, &mut a.held, &mut a.foreign);
            add(&rx, &mut a.rx, &mut a.foreign);
            add(&tx, &mut a.tx, &mut a.foreign);
        }
        for f in &fills {
            add(f, &mut a.fill, &mut a.foreign);
        }
        // The oldest fill entries may be ones the kernel took already: they
        // are found again where the frame went (an RX ring, a later fill
        // entry, the free list).
        for f in &fills {
            for &x in f {
                match seen.get_mut((x / fs) as usize) {
                    Some(c) if *c >= 2 => {
                        *c -= 1;
                        a.kernel_cached += 1;
                    }
                    _ => break,
                }
            }
        }
        a.missing = seen.iter().filter(|&&c| c == 0).count();
        a.duplicated = seen.iter().map(|&c| c.saturating_sub(1) as usize).sum();
        a
    }
}

/// Whether this kernel lets a second process map a bound socket's rings;
/// the reason when not.
pub fn handover_supported() -> Result<(), String> {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    kernel_release_ok(rel.trim())
}

/// Little-endian writer of the encodings.
struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) -> &mut W {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut W {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut W {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut W {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
}

/// Reader of the encodings: every short read is an error naming `what`.
struct R<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl R<'_> {
    fn take<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        if self.b.len() < N {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} truncated", self.what),
            ));
        }
        let (h, t) = self.b.split_at(N);
        self.b = t;
        Ok(h.try_into().expect("N bytes"))
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> io::Result<u16> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn version(&mut self, reads: u16) -> io::Result<u16> {
        let v = self.u16()?;
        if v != reads {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} version {v}: this build reads version {reads} only",
                    self.what
                ),
            ));
        }
        Ok(v)
    }
}

impl XdpManifest {
    /// The manifest as bytes (little endian, `version` first).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W(Vec::new());
        w.u16(self.version).u16(self.ifname.len() as u16);
        w.0.extend_from_slice(self.ifname.as_bytes());
        w.u32(self.ifindex)
            .u32(self.frame_size)
            .u32(self.frames)
            .u32(self.fill_size)
            .u32(self.comp_size)
            .u32(self.rx_size)
            .u32(self.tx_size)
            .u16(self.workers)
            .u32(self.first_queue)
            .u32(self.queues)
            .u32(self.device_queues)
            .u32(self.homes)
            .u32(self.max_addrs)
            .u32(self.fast_entries)
            .u8(self.native as u8)
            .u8(self.zero_copy as u8)
            .u64(self.umem_len)
            .u64(self.memfd_size)
            .u8(self.umem_hugetlb as u8)
            .u32(self.fds.len() as u32);
        for r in &self.fds {
            match *r {
                FdRole::Xsk { queue, worker } => w.u8(7).u32(queue).u16(worker),
                r => w.u8(match r {
                    FdRole::Link => 1,
                    FdRole::Prog => 2,
                    FdRole::Xsks => 3,
                    FdRole::Addrs => 4,
                    FdRole::Fast => 5,
                    _ => 6,
                }),
            };
        }
        w.0
    }

    /// A manifest from [`encode`](Self::encode)'s bytes; refuses another
    /// version, naming both.
    pub fn decode(b: &[u8]) -> io::Result<XdpManifest> {
        let mut r = R {
            b,
            what: "XDP port manifest",
        };
        let version = r.version(MANIFEST_VERSION)?;
        let n = r.u16()? as usize;
        if r.b.len() < n {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "XDP port manifest truncated",
            ));
        }
        let ifname = String::from_utf8_lossy(&r.b[..n]).into_owned();
        r.b = &r.b[n..];
        let mut m = XdpManifest {
            version,
            ifname,
            ifindex: r.u32()?,
            frame_size: r.u32()?,
            frames: r.u32()?,
            fill_size: r.u32()?,
            comp_size: r.u32()?,
            rx_size: r.u32()?,
            tx_size: r.u32()?,
            workers: r.u16()?,
            first_queue: r.u32()?,
            queues: r.u32()?,
            device_queues: r.u32()?,
            homes: r.u32()?,
            max_addrs: r.u32()?,
            fast_entries: r.u32()?,
            native: r.u8()? != 0,
            zero_copy: r.u8()? != 0,
            umem_len: r.u64()?,
            memfd_size: r.u64()?,
            umem_hugetlb: r.u8()? != 0,
            fds: Vec::new(),
        };
        let n = r.u32()? as usize;
        for _ in 0..n.min(1 << 16) {
            m.fds.push(match r.u8()? {
                1 => FdRole::Link,
                2 => FdRole::Prog,
                3 => FdRole::Xsks,
                4 => FdRole::Addrs,
                5 => FdRole::Fast,
                6 => FdRole::Umem,
                7 => FdRole::Xsk {
                    queue: r.u32()?,
                    worker: r.u16()?,
                },
                t => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("XDP port manifest: unknown descriptor role {t}"),
                    ))
                }
            });
        }
        Ok(m)
    }
}

impl XdpPoolState {
    /// The state as bytes (little endian, `version` first).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W(Vec::new());
        w.u16(self.version).u32(self.queues.len() as u32);
        for q in &self.queues {
            w.u32(q.reserve)
                .u32(q.fill_prod)
                .u32(q.comp_cons)
                .u32(q.free.len() as u32);
            for &a in &q.free {
                w.u64(a);
            }
        }
        w.0
    }

    /// A state from [`encode`](Self::encode)'s bytes; refuses another
    /// version, naming both.
    pub fn decode(b: &[u8]) -> io::Result<XdpPoolState> {
        let mut r = R {
            b,
            what: "XDP pool state",
        };
        let version = r.version(POOL_STATE_VERSION)?;
        let n = r.u32()? as usize;
        let mut queues = Vec::new();
        for _ in 0..n.min(1 << 16) {
            let (reserve, fill_prod, comp_cons) = (r.u32()?, r.u32()?, r.u32()?);
            let k = r.u32()? as usize;
            if r.b.len() < k.saturating_mul(8) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "XDP pool state truncated",
                ));
            }
            let free = (0..k).map(|_| r.u64()).collect::<io::Result<_>>()?;
            queues.push(XdpQueuePool {
                free,
                reserve,
                fill_prod,
                comp_cons,
            });
        }
        Ok(XdpPoolState { version, queues })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> XdpManifest {
        let g = Geom {
            workers: 2,
            frame_size: 2048,
            frames: 4096,
            fill: 2048,
            comp: 1024,
            rx: 1024,
            tx: 1024,
            first_queue: 0,
            queues: 2,
            homes: 2,
            max_addrs: 64,
            fast_entries: 16,
        };
        XdpManifest {
            version: MANIFEST_VERSION,
            ifname: "eth7".into(),
            ifindex: 9,
            frame_size: 2048,
            frames: 4096,
            fill_size: 2048,
            comp_size: 1024,
            rx_size: 1024,
            tx_size: 1024,
            workers: 2,
            first_queue: 0,
            queues: 2,
            device_queues: 2,
            homes: 2,
            max_addrs: 64,
            fast_entries: 16,
            native: true,
            zero_copy: false,
            umem_len: 2048 * 4096 * 2,
            memfd_size: 2048 * 4096 * 2,
            umem_hugetlb: false,
            fds: roles(&g),
        }
    }

    #[test]
    fn manifest_and_pool_state_round_trip_and_other_versions_are_refused() {
        let m = manifest();
        assert_eq!(m.fds.len(), 4 + 1 + 1 + 4);
        assert_eq!(
            m.fds[9],
            FdRole::Xsk {
                queue: 1,
                worker: 1
            }
        );
        let b = m.encode();
        assert_eq!(XdpManifest::decode(&b).unwrap(), m);
        let mut v2 = b.clone();
        v2[0] = 2;
        let e = XdpManifest::decode(&v2).unwrap_err().to_string();
        assert!(
            e.contains("manifest version 2") && e.contains("reads version 1"),
            "{e}"
        );
        let e = XdpManifest::decode(&b[..b.len() - 3])
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");

        let p = XdpPoolState {
            version: POOL_STATE_VERSION,
            queues: vec![
                XdpQueuePool {
                    free: vec![0, 2048, 4096],
                    reserve: 2,
                    fill_prod: 77,
                    comp_cons: u32::MAX,
                },
                XdpQueuePool {
                    free: vec![],
                    reserve: 0,
                    fill_prod: 0,
                    comp_cons: 0,
                },
            ],
        };
        assert_eq!(XdpPoolState::decode(&p.encode()).unwrap(), p);
        let mut b = p.encode();
        b[0] = 9;
        let e = XdpPoolState::decode(&b).unwrap_err().to_string();
        assert!(e.contains("pool state version 9"), "{e}");
    }

    #[test]
    fn an_account_is_exact_only_when_every_frame_is_in_one_place() {
        let a = UmemAccount {
            total: 10,
            fill: 5,
            rx: 2,
            free: 4,
            kernel_cached: 1,
            ..UmemAccount::default()
        };
        assert!(a.exact());
        assert!(!UmemAccount { missing: 1, ..a }.exact());
        assert!(!UmemAccount { free: 3, ..a }.exact());
    }
}

//! [`XdpPort::open`]: which device queues to serve, the sockets on them,
//! their pools, the program, and attaching it.

use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use super::handover::Geom;

use super::ring::{Pool, Ring, Sock};
use super::sock::{bind_xsk, clear_stale, fill_comp_rings, rx_tx_rings, umem_memfd, xsk_socket};
use super::{bpf, prog, FastMap, Shared, XdpConf, XdpMode, XdpPort, XdpQueue, XdpRx, XdpTx, BURST};
use crate::iface::{if_index, mtu_of, queues};
use crate::sys::setsockopt;

/// XDP_PACKET_HEADROOM: room the kernel leaves before every received frame.
const XDP_HEADROOM: usize = 256;

fn bad(m: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, m.into())
}

fn pow2(v: u32, what: &str) -> io::Result<u32> {
    if v == 0 || !v.is_power_of_two() {
        return Err(bad(format!("{what} must be a power of two, not {v}")));
    }
    Ok(v)
}

/// `a-b`, or `a` alone.
fn span(r: &Range<u32>) -> String {
    match r.len() {
        1 => r.start.to_string(),
        _ => format!("{}-{}", r.start, r.end - 1),
    }
}

/// The device RX queues to serve: `queues` of them from `first` on, all
/// the device has from `first` on when `None`. Refuses queues the device
/// does not have, naming it and its queue count.
pub(crate) fn served_queues(
    ifname: &str,
    device: u32,
    first: u32,
    queues: Option<u32>,
) -> io::Result<Range<u32>> {
    let device = device.max(1);
    if first >= device {
        return Err(bad(format!(
            "{ifname} has {device} RX queue(s) (0-{}); it has no queue {first} to serve",
            device - 1
        )));
    }
    let n = queues.unwrap_or(device - first);
    if n == 0 || first + n > device {
        return Err(bad(format!(
            "{ifname} has {device} RX queue(s) (0-{}); cannot serve {n} from queue {first} on",
            device - 1
        )));
    }
    Ok(first..first + n)
}

/// What to tell the operator when the device has RX queues outside
/// `served`: frames the NIC puts there reach no worker.
pub fn unserved_note(ifname: &str, device: u32, served: &Range<u32>) -> Option<String> {
    let mut unserved = Vec::new();
    if served.start > 0 {
        unserved.push(span(&(0..served.start)));
    }
    if served.end < device {
        unserved.push(span(&(served.end..device)));
    }
    if unserved.is_empty() {
        return None;
    }
    Some(format!(
        "{ifname} has {device} RX queues but rvs serves only queue(s) {}: no worker serves \
         queue(s) {}, whose frames go to the kernel (XDP_PASS) instead of rvs; serve every \
         queue, or give the device {} queue(s) (ethtool -L {ifname} combined {})",
        span(served),
        unserved.join(", "),
        served.len(),
        served.len()
    ))
}

/// A queue's sockets, one per worker in worker order, with their RX ring
/// and (on the worker's home queue only) TX ring.
pub(super) type Socks = Vec<(OwnedFd, Ring<libc::xdp_desc>, Option<Ring<libc::xdp_desc>>)>;

/// One device queue's sockets and its pool.
struct QueueSocks {
    qid: u32,
    socks: Socks,
    pool: Pool,
}

/// Which device queue a socket set is for.
struct Place<'a> {
    ifname: &'a str,
    ifindex: u32,
    /// Index among the served queues.
    qi: usize,
    /// The device queue.
    qid: u32,
}

impl Place<'_> {
    /// A bind error, naming the device and queue.
    fn err(&self, e: io::Error) -> io::Error {
        let (ifname, qid) = (self.ifname, self.qid);
        let hint = match e.raw_os_error() {
            Some(libc::EINVAL) => format!(" (does queue {qid} exist? see ethtool -l {ifname})"),
            _ => String::new(),
        };
        io::Error::new(
            e.kind(),
            format!("{ifname}: AF_XDP bind queue {qid}: {e}{hint}"),
        )
    }
}

/// The sockets of one device queue: `s` registers the queue's fill and
/// completion rings and binds first (sharing the UMEM of socket `owner`, or
/// as the UMEM's owner when `None`: zero-copy if it can), then the other
/// workers' sockets bind sharing `s`'s rings. Returns the sockets, the
/// rings, and whether the UMEM is zero-copy.
fn queue_socks(
    at: &Place<'_>,
    s: OwnedFd,
    owner: Option<u32>,
    conf: &XdpConf,
    g: &Geometry,
    homes: usize,
) -> io::Result<(Socks, Ring<u64>, Ring<u64>, bool)> {
    let (fill, comp) = fill_comp_rings(&s, g.fill, g.comp)?;
    let home = |w: u32| w as usize % homes == at.qi;
    let (rx, tx) = rx_tx_rings(&s, conf, home(0))?;
    let mut zero_copy = false;
    match owner {
        None if conf.mode != XdpMode::Generic
            && bind_xsk(&s, at.ifindex, at.qid, libc::XDP_ZEROCOPY, 0).is_ok() =>
        {
            zero_copy = true
        }
        None => bind_xsk(&s, at.ifindex, at.qid, libc::XDP_COPY, 0).map_err(|e| at.err(e))?,
        Some(o) => {
            bind_xsk(&s, at.ifindex, at.qid, libc::XDP_SHARED_UMEM, o).map_err(|e| at.err(e))?
        }
    }
    let mut socks = vec![(s, rx, tx)];
    for w in 1..g.workers {
        let s = xsk_socket()?;
        let (rx, tx) = rx_tx_rings(&s, conf, home(w))?;
        let mate = socks[0].0.as_raw_fd() as u32;
        bind_xsk(&s, at.ifindex, at.qid, libc::XDP_SHARED_UMEM, mate).map_err(|e| at.err(e))?;
        socks.push((s, rx, tx));
    }
    Ok((socks, fill, comp, zero_copy))
}

/// The checked geometry of a port.
pub(super) struct Geometry {
    pub(super) workers: u32,
    pub(super) fs: u32,
    pub(super) frames: u32,
    pub(super) fill: u32,
    pub(super) comp: u32,
}

fn geometry(ifname: &str, conf: &XdpConf) -> io::Result<Geometry> {
    let mtu = mtu_of(ifname)?.max(1500) as usize;
    let workers = conf.workers.max(1) as u32;
    let fs = conf.frame_size;
    if fs != 2048 && fs != 4096 {
        return Err(bad(format!(
            "xdp frame_size must be 2048 or 4096, not {fs}"
        )));
    }
    if XDP_HEADROOM + mtu + 14 + 8 > fs as usize {
        return Err(bad(format!(
            "{ifname}: MTU {mtu} does not fit a {fs}-byte UMEM frame; use frame_size 4096"
        )));
    }
    let fill = pow2(conf.fill_size, "fill_size")?;
    let comp = pow2(conf.comp_size, "comp_size")?;
    pow2(conf.rx_size, "rx_size")?;
    pow2(conf.tx_size, "tx_size")?;
    let frames = conf.frames;
    if (frames as usize) < 4 * BURST * workers as usize {
        return Err(bad("too few UMEM frames for the workers"));
    }
    Ok(Geometry {
        workers,
        fs,
        frames,
        fill,
        comp,
    })
}

/// A queue's pool: frames `[qi * frames, (qi + 1) * frames)` of the UMEM,
/// half (at most the fill ring) given for reception on a queue some worker
/// transmits on (`home`), the rest kept free for transmission; all that fit
/// the fill ring otherwise.
fn new_pool(g: &Geometry, qi: usize, home: bool, fill: Ring<u64>, comp: Ring<u64>) -> Pool {
    let frames = g.frames as usize;
    let mut pool = Pool {
        fill,
        comp,
        free: Vec::with_capacity(frames),
        reserve: match home {
            true => (frames / 2).max(2 * BURST * g.workers as usize),
            false => 0,
        },
    };
    let base = (qi * frames) as u64;
    for i in (0..frames as u64).rev() {
        pool.free.push((base + i) * g.fs as u64);
    }
    let n = (frames - pool.reserve).min(g.fill as usize);
    let room = pool.fill.free(n as u32) as usize;
    for _ in 0..n.min(room) {
        if let Some(a) = pool.free.pop() {
            pool.fill.push(a);
        }
    }
    pool.fill.submit();
    pool
}

/// Attaches the program in `mode`: (link, native).
fn attach(prog_fd: &OwnedFd, ifindex: u32, mode: XdpMode) -> io::Result<(OwnedFd, bool)> {
    let p = prog_fd.as_raw_fd();
    Ok(match mode {
        XdpMode::Native => (
            bpf::link_create_xdp(p, ifindex, bpf::XDP_FLAGS_DRV_MODE)?,
            true,
        ),
        XdpMode::Generic => (
            bpf::link_create_xdp(p, ifindex, bpf::XDP_FLAGS_SKB_MODE)?,
            false,
        ),
        XdpMode::Auto => match bpf::link_create_xdp(p, ifindex, bpf::XDP_FLAGS_DRV_MODE) {
            Ok(l) => (l, true),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Err(e),
            Err(_) => (
                bpf::link_create_xdp(p, ifindex, bpf::XDP_FLAGS_SKB_MODE)?,
                false,
            ),
        },
    })
}

/// Where and how a port is set up on a device, from its configuration.
pub(super) struct Plan {
    pub(super) ifindex: u32,
    pub(super) g: Geometry,
    /// The device's RX queues.
    pub(super) device: u32,
    pub(super) served: Range<u32>,
    /// How many served queues are some worker's home (TX) queue.
    pub(super) homes: usize,
}

impl Plan {
    pub(super) fn of(ifname: &str, conf: &XdpConf) -> io::Result<Plan> {
        let ifindex = if_index(ifname)?;
        let g = geometry(ifname, conf)?;
        let (device, txq) = queues(ifname)
            .map_err(|e| io::Error::new(e.kind(), format!("{ifname}: queues: {e}")))?;
        let served = served_queues(ifname, device, conf.queue, conf.queues)?;
        // Workers transmit on served queues the device also has for TX.
        let homes = (txq.saturating_sub(served.start) as usize).clamp(1, served.len());
        Ok(Plan {
            ifindex,
            g,
            device,
            served,
            homes,
        })
    }

    /// The geometry a hand-over manifest records.
    pub(super) fn geom(&self, conf: &XdpConf) -> Geom {
        Geom {
            workers: self.g.workers,
            frame_size: self.g.fs,
            frames: self.g.frames,
            fill: self.g.fill,
            comp: self.g.comp,
            rx: conf.rx_size,
            tx: conf.tx_size,
            first_queue: self.served.start,
            queues: self.served.len() as u32,
            homes: self.homes as u32,
            max_addrs: conf.max_addrs.max(1),
            fast_entries: conf.fast_entries,
        }
    }
}

impl XdpPort {
    /// Sets up, on each served RX queue of `ifname` (`conf.queues` from
    /// `conf.queue` on; by default every queue the device has), one socket
    /// per worker (`conf.workers`), all sharing one UMEM; loads the
    /// steering program (steering every pool or NAT address-dependent frame
    /// by the rules once [`set_steering`](Self::set_steering) gave the
    /// addresses; until then by source) to the owning worker's socket on
    /// the frame's queue, and attaches it (see the module doc for modes and
    /// leftovers). Refuses queues the device does not have; see
    /// [`XdpPort::unserved`] for queues it has that no worker serves.
    /// Needs CAP_NET_ADMIN, CAP_BPF (or root).
    pub fn open(ifname: &str, conf: &XdpConf) -> io::Result<XdpPort> {
        let plan = Plan::of(ifname, conf)?;
        let geom = plan.geom(conf);
        let Plan {
            ifindex,
            g,
            device,
            served,
            homes,
        } = plan;
        let nq = served.len();
        clear_stale(ifname, ifindex)?;

        let a = super::abi::ADDRS;
        let addrs = bpf::map_create(
            a.kind,
            a.key_size,
            a.value_size,
            conf.max_addrs.max(1),
            a.name,
        )?;
        let fast = match conf.fast_entries {
            0 => None,
            n => Some(Arc::new(FastMap::create(n)?)),
        };
        let x = super::abi::XSKS;
        let xsks = bpf::map_create(
            x.kind,
            x.key_size,
            x.value_size,
            g.workers * nq as u32,
            x.name,
        )?;
        let insns = prog::build(&prog::ProgParams {
            addrs: addrs.as_raw_fd(),
            workers: g.workers,
            first_queue: served.start,
            queues: nq as u32,
            tail: prog::Tail::Redirect {
                xsks: xsks.as_raw_fd(),
            },
            fast: fast.as_ref().map(|f| f.fd.as_raw_fd()),
        });
        let prog_fd = bpf::prog_load_xdp(&insns, prog::PROG_NAME)?;

        // The UMEM, registered on the first socket of the first queue.
        let len = g.fs as usize * g.frames as usize * nq;
        let umem = umem_memfd(len, conf.umem_huge_pages)?;
        let s0 = xsk_socket()?;
        let reg = libc::xdp_umem_reg {
            addr: umem.map.ptr as u64,
            len: len as u64,
            chunk_size: g.fs,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(&s0, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)?;
        let mut first = Some(s0);
        let mut zero_copy = false;
        let mut qs: Vec<QueueSocks> = Vec::with_capacity(nq);
        for (qi, qid) in served.clone().enumerate() {
            let at = Place {
                ifname,
                ifindex,
                qi,
                qid,
            };
            // The first queue's first socket registers the UMEM too, and the
            // later queues share it.
            let s = match first.take() {
                Some(s) => s,
                None => xsk_socket()?,
            };
            let owner = qs.first().map(|q| q.socks[0].0.as_raw_fd() as u32);
            let (socks, fill, comp, zc) = queue_socks(&at, s, owner, conf, &g, homes)?;
            zero_copy |= zc;
            for (w, (s, _, _)) in socks.iter().enumerate() {
                let key = qi as u32 * g.workers + w as u32;
                bpf::map_update(
                    xsks.as_raw_fd(),
                    &key.to_ne_bytes(),
                    &(s.as_raw_fd() as u32).to_ne_bytes(),
                )?;
            }
            let pool = new_pool(&g, qi, qi < homes.min(g.workers as usize), fill, comp);
            qs.push(QueueSocks { qid, socks, pool });
        }

        // Attach last, when every socket is in the map.
        let (link, native) = attach(&prog_fd, ifindex, conf.mode)?;
        let mut pools = Vec::with_capacity(nq);
        let mut per_queue = Vec::with_capacity(nq);
        for q in qs {
            pools.push(Mutex::new(q.pool));
            per_queue.push((q.qid, q.socks));
        }
        let shared = Arc::new(Shared {
            link,
            _prog: prog_fd,
            _xsks: xsks,
            addrs,
            fast,
            pools,
            umem: umem.map,
            umem_fd: umem.fd,
            umem_hugetlb: umem.hugetlb,
            socks: Mutex::new(Vec::new()),
            geom,
            frame_size: g.fs as usize,
            frames: g.frames as usize * nq,
            native,
            zero_copy,
            served: served.clone(),
            device,
            ifname: ifname.to_string(),
            ifindex,
        });
        let queues = worker_queues(&shared, per_queue, g.workers as usize, conf)?;
        Ok(XdpPort { shared, queues })
    }
}

/// Each worker's queue: the RX rings of its sockets on every served queue,
/// and the TX ring of its socket on its home queue.
pub(super) fn worker_queues(
    shared: &Arc<Shared>,
    per_queue: Vec<(u32, Socks)>,
    workers: usize,
    conf: &XdpConf,
) -> io::Result<Vec<XdpQueue>> {
    let mut rx: Vec<Vec<(Ring<libc::xdp_desc>, Arc<Sock>)>> =
        (0..workers).map(|_| Vec::new()).collect();
    let mut tx: Vec<Option<XdpTx>> = (0..workers).map(|_| None).collect();
    for (qi, (qid, socks)) in per_queue.into_iter().enumerate() {
        for (w, (fd, r, t)) in socks.into_iter().enumerate() {
            let sock = Arc::new(Sock {
                fd,
                queue: qi,
                qid,
                shared: shared.clone(),
            });
            if let Ok(mut reg) = shared.socks.lock() {
                reg.push(Arc::downgrade(&sock));
            }
            if let Some(t) = t {
                tx[w] = Some(XdpTx::new(t, sock.clone()));
            }
            rx[w].push((r, sock));
        }
    }
    rx.into_iter()
        .zip(tx)
        .map(|(r, t)| {
            Ok(XdpQueue {
                rx: XdpRx::new(r, conf.port, conf.rx_checksum)?,
                tx: t.ok_or_else(|| io::Error::other("a worker without a home queue"))?,
                shared: shared.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_queues_default_to_all_and_refuse_missing_ones() {
        assert_eq!(served_queues("eth0", 4, 0, None).unwrap(), 0..4);
        assert_eq!(served_queues("eth0", 1, 0, None).unwrap(), 0..1);
        assert_eq!(served_queues("eth0", 4, 0, Some(2)).unwrap(), 0..2);
        assert_eq!(served_queues("eth0", 4, 1, None).unwrap(), 1..4);
        let e = served_queues("eth0", 4, 0, Some(8))
            .unwrap_err()
            .to_string();
        assert!(e.contains("eth0 has 4 RX queue(s) (0-3)"), "{e}");
        assert!(e.contains("cannot serve 8"), "{e}");
        let e = served_queues("eth0", 2, 2, None).unwrap_err().to_string();
        assert!(e.contains("no queue 2"), "{e}");
    }

    #[test]
    fn unserved_note_names_the_device_its_queues_and_the_unserved_ones() {
        assert_eq!(unserved_note("eth0", 4, &(0..4)), None);
        assert_eq!(unserved_note("eth0", 1, &(0..1)), None);
        let m = unserved_note("eth0", 4, &(0..1)).unwrap();
        assert!(m.starts_with("eth0 has 4 RX queues"), "{m}");
        assert!(m.contains("serves only queue(s) 0:"), "{m}");
        assert!(m.contains("no worker serves queue(s) 1-3,"), "{m}");
        assert!(m.contains("ethtool -L eth0 combined 1"), "{m}");
        let m = unserved_note("eth1", 8, &(2..4)).unwrap();
        assert!(m.contains("no worker serves queue(s) 0-1, 4-7,"), "{m}");
    }
}

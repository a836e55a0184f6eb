//! Handing a port's AF_PACKET receive queues to another process (issue 14,
//! hot upgrade and warm standby).
//!
//! What moves is the RX socket of every worker, by `SCM_RIGHTS`
//! ([`crate::fdpass`]): its fanout group membership and the group's cBPF
//! steering program belong to the socket, so they move with it untouched,
//! and so does the ring the kernel keeps filling meanwhile. A
//! [`PacketManifest`] (a `u16` version first) describes the port and each
//! ring's geometry; the new process checks every descriptor against it and
//! maps the ring from the descriptor ([`adopt`]). TX sockets are not
//! exclusive: the new process opens its own ([`super::TxRing::open`]).
//!
//! The cut-over: the old worker calls [`RxRing::freeze`], which returns
//! everything it consumed to the kernel and reports where it stopped
//! ([`RxCursor`]); the new worker resumes exactly there
//! ([`AdoptedRx::start`]). Frames that arrive in between wait in the ring.
//! The old process keeps its ring (mapping and descriptor) until the
//! hand-over commits: if the new one fails before it started reading, the
//! old one just reads on (a thaw: nothing moved); if it fails after, the
//! old one finds where the new one stopped with [`RxRing::recover`]. At
//! the commit it drops the ring, which closes only its own copy of the
//! socket.
//!
//! Without the old process's help (it was killed),
//! [`AdoptedRx::reconstruct`] finds the cursor from the ring alone: the
//! oldest slot (V2) or block (V3) the kernel handed over and nobody gave
//! back. The frames the dead process had taken but not yet released are
//! then processed a second time: at most one burst per queue with V2, at
//! most one block with V3; none is lost.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rvs_core::addr::PortId;

use super::rx::{Layout, RxRing};
use super::RxRingKind;
use crate::iface::if_index;
use crate::sys::{bound_ifindex, getsockopt, Mmap};

/// The manifest format this build writes and reads.
pub const MANIFEST_VERSION: u16 = 1;
/// The cursor report format this build writes and reads.
pub const CURSORS_VERSION: u16 = 1;

/// The shape of one RX ring, as the kernel and [`RxRing`] know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxGeometry {
    /// TPACKET version.
    pub kind: RxRingKind,
    /// Block size in bytes.
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// V2 slot size (0 for V3, whose frames have no fixed size).
    pub frame_size: u32,
    /// PACKET_RESERVE: headroom before every frame.
    pub headroom: u32,
    /// Largest segment cut from a GSO super-frame (from the MTU).
    pub seg_max: u32,
}

/// Everything a new process needs besides the descriptors to adopt a
/// port's AF_PACKET receive queues: sent with one RX socket per worker,
/// in worker order (the fanout member order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketManifest {
    /// Format version ([`MANIFEST_VERSION`] when written by this build).
    pub version: u16,
    /// Port id stamped on received packets.
    pub port: PortId,
    /// Interface name.
    pub iface: String,
    /// Interface index the sockets are bound to.
    pub ifindex: u32,
    /// Fanout group id (`None`: a single queue, no group).
    pub fanout: Option<u16>,
    /// One ring per worker, in worker order.
    pub queues: Vec<RxGeometry>,
}

/// Where a reader stopped in a ring: the V2 slot or V3 block to read next,
/// and (V3) how many frames of that block were already processed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RxCursor {
    /// Slot (V2) or block (V3) index.
    pub index: u32,
    /// V3: frames of block `index` already processed (0 for V2).
    pub skip: u32,
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl AsFd for RxRing {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl RxRing {
    /// This ring's shape, for a [`PacketManifest`].
    pub fn geometry(&self) -> RxGeometry {
        let (kind, block_size, blocks, frame_size) = match &self.layout {
            Layout::V2(s) => (
                RxRingKind::V2,
                s.block_size,
                s.frames / s.per_block,
                s.frame_size,
            ),
            Layout::V3(s) => (RxRingKind::V3, s.block_size, s.blocks, 0),
        };
        RxGeometry {
            kind,
            block_size: block_size as u32,
            block_count: blocks as u32,
            frame_size: frame_size as u32,
            headroom: self.slot_head as u32,
            seg_max: self.seg_max as u32,
        }
    }

    /// The cut-over on the old side: gives every consumed slot or block back
    /// to the kernel and returns where the next reader must start. The ring
    /// stays usable: reading on from here is a thaw. A GSO super-frame being
    /// segmented stays unconsumed (its segments are cut again by the next
    /// reader), except one read out of the ring with recvfrom (V2
    /// `TP_STATUS_COPY`), which is dropped: its copy left the socket and
    /// cannot be read again.
    pub fn freeze(&mut self) -> RxCursor {
        if let Some(g) = self.gso.take() {
            let base = self.map.ptr as usize;
            let in_ring = (base..base + self.map.len).contains(&(g.frame as usize));
            if !in_ring {
                self.advance();
            }
        }
        self.release();
        self.position()
    }

    /// The reader's position (see [`RxCursor`]).
    fn position(&self) -> RxCursor {
        match &self.layout {
            Layout::V2(s) => RxCursor {
                index: s.cur as u32,
                skip: 0,
            },
            Layout::V3(s) => {
                let skip = if s.open {
                    let num = self.status_at(self.block(s.cur).wrapping_add(12));
                    num.load(Ordering::Acquire).saturating_sub(s.left)
                } else {
                    0
                };
                RxCursor {
                    index: s.cur as u32,
                    skip,
                }
            }
        }
    }
}

/// What the running process sends for a port: the manifest of `rings`
/// (every worker's, in worker order) and a duplicate of each RX socket, in
/// the same order (a duplicate shares the socket: its ring, fanout group
/// and program).
pub fn export(iface: &str, rings: &[&RxRing]) -> io::Result<(PacketManifest, Vec<OwnedFd>)> {
    let m = PacketManifest::of(iface, rings)?;
    let fds = rings
        .iter()
        .map(|r| r.fd.try_clone())
        .collect::<io::Result<Vec<_>>>()?;
    Ok((m, fds))
}

/// The fanout group an AF_PACKET socket belongs to (`None`: none), for a
/// manifest built from sockets the caller holds elsewhere.
pub fn fanout_of(fd: BorrowedFd<'_>) -> io::Result<Option<u16>> {
    let f = getsockopt::<libc::c_int>(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_FANOUT)?;
    Ok((f != 0).then_some(f as u16))
}

impl PacketManifest {
    /// Describes `rings` (every worker's, in worker order) of interface
    /// `iface`, reading the bound interface and the fanout group from the
    /// first socket.
    pub fn of(iface: &str, rings: &[&RxRing]) -> io::Result<PacketManifest> {
        let first = rings
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no ring to describe"))?;
        let fd = first.fd.as_raw_fd();
        let ifindex = bound_ifindex(fd)?;
        let port = first.port;
        let fanout = getsockopt::<libc::c_int>(fd, libc::SOL_PACKET, libc::PACKET_FANOUT)?;
        Ok(PacketManifest {
            version: MANIFEST_VERSION,
            port,
            iface: iface.to_string(),
            ifindex,
            fanout: (fanout != 0).then_some(fanout as u16),
            queues: rings.iter().map(|r| r.geometry()).collect(),
        })
    }

    /// The wire form: little endian, the version first.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16 + self.iface.len() + 21 * self.queues.len());
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&self.port.to_le_bytes());
        b.extend_from_slice(&self.ifindex.to_le_bytes());
        b.push(self.fanout.is_some().into());
        b.extend_from_slice(&self.fanout.unwrap_or(0).to_le_bytes());
        b.push(self.iface.len().min(255) as u8);
        b.extend_from_slice(&self.iface.as_bytes()[..self.iface.len().min(255)]);
        b.extend_from_slice(&(self.queues.len() as u16).to_le_bytes());
        for q in &self.queues {
            b.push(match q.kind {
                RxRingKind::V2 => 2,
                RxRingKind::V3 => 3,
            });
            for v in [
                q.block_size,
                q.block_count,
                q.frame_size,
                q.headroom,
                q.seg_max,
            ] {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        b
    }

    /// Reads the wire form; refuses another version or a malformed one,
    /// saying what is wrong.
    pub fn decode(b: &[u8]) -> io::Result<PacketManifest> {
        let mut r = Reader { b, at: 0 };
        let version = r.u16()?;
        if version != MANIFEST_VERSION {
            return Err(bad(format!(
                "af_packet manifest version {version}: this build reads version {MANIFEST_VERSION}"
            )));
        }
        let port = r.u16()?;
        let ifindex = r.u32()?;
        let has_fanout = r.u8()? != 0;
        let id = r.u16()?;
        let n = r.u8()? as usize;
        let iface = String::from_utf8(r.take(n)?.to_vec())
            .map_err(|_| bad("af_packet manifest: interface name is not UTF-8".into()))?;
        let nq = r.u16()? as usize;
        let mut queues = Vec::with_capacity(nq.min(1024));
        for _ in 0..nq {
            let kind = match r.u8()? {
                2 => RxRingKind::V2,
                3 => RxRingKind::V3,
                k => return Err(bad(format!("af_packet manifest: unknown ring kind {k}"))),
            };
            queues.push(RxGeometry {
                kind,
                block_size: r.u32()?,
                block_count: r.u32()?,
                frame_size: r.u32()?,
                headroom: r.u32()?,
                seg_max: r.u32()?,
            });
        }
        if r.at != b.len() {
            return Err(bad(format!(
                "af_packet manifest: {} bytes after the end",
                b.len() - r.at
            )));
        }
        Ok(PacketManifest {
            version,
            port,
            iface,
            ifindex,
            fanout: has_fanout.then_some(id),
            queues,
        })
    }
}

/// A cursor report: one [`RxCursor`] per queue, the version first.
pub fn encode_cursors(c: &[RxCursor]) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + 8 * c.len());
    b.extend_from_slice(&CURSORS_VERSION.to_le_bytes());
    b.extend_from_slice(&(c.len() as u16).to_le_bytes());
    for x in c {
        b.extend_from_slice(&x.index.to_le_bytes());
        b.extend_from_slice(&x.skip.to_le_bytes());
    }
    b
}

/// Reads a cursor report written by [`encode_cursors`].
pub fn decode_cursors(b: &[u8]) -> io::Result<Vec<RxCursor>> {
    let mut r = Reader { b, at: 0 };
    let version = r.u16()?;
    if version != CURSORS_VERSION {
        return Err(bad(format!(
            "af_packet cursor report version {version}: this build reads version {CURSORS_VERSION}"
        )));
    }
    let n = r.u16()? as usize;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(RxCursor {
            index: r.u32()?,
            skip: r.u32()?,
        });
    }
    Ok(v)
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        let s = self.b.get(self.at..self.at + n).ok_or_else(|| {
            bad(format!(
                "af_packet hand-over data truncated at byte {}",
                self.at
            ))
        })?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> io::Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
}

/// A ring taken over from another process: validated and mapped, not read
/// yet (the old process may still be reading it). Becomes an [`RxRing`] at
/// the cut-over, by [`start`](Self::start) or [`reconstruct`](Self::reconstruct).
pub struct AdoptedRx {
    ring: RxRing,
}

/// Takes over the RX sockets `fds` (one per queue of `m`, in its order):
/// checks every one against the manifest (socket domain and type, TPACKET
/// version, headroom, vnet header, bound interface, fanout group, ring size)
/// and maps its ring. All or nothing: on any error every mapping made is
/// undone and `fds` are closed (the sender's own descriptors are untouched),
/// and the error names the queue and what differs.
pub fn adopt(m: &PacketManifest, fds: Vec<OwnedFd>) -> io::Result<Vec<AdoptedRx>> {
    if m.version != MANIFEST_VERSION {
        return Err(bad(format!(
            "af_packet manifest version {}: this build reads version {MANIFEST_VERSION}",
            m.version
        )));
    }
    if fds.len() != m.queues.len() {
        return Err(bad(format!(
            "{}: the manifest lists {} queues, {} descriptors came with it",
            m.iface,
            m.queues.len(),
            fds.len()
        )));
    }
    let here = if_index(&m.iface)
        .map_err(|e| bad(format!("{}: no such interface here ({e})", m.iface)))?;
    if here != m.ifindex {
        return Err(bad(format!(
            "{}: interface index {here} here, the manifest says {} (another network namespace?)",
            m.iface, m.ifindex
        )));
    }
    for (i, (fd, g)) in fds.iter().zip(&m.queues).enumerate() {
        check_socket(fd, m, g).map_err(|e| bad(format!("{} queue {i}: {e}", m.iface)))?;
    }
    let mut out = Vec::with_capacity(fds.len());
    for (i, (fd, g)) in fds.into_iter().zip(&m.queues).enumerate() {
        out.push(map_ring(fd, m.port, g).map_err(|e| bad(format!("{} queue {i}: {e}", m.iface)))?);
    }
    Ok(out)
}

fn kind_name(v: libc::c_int) -> String {
    match v {
        0 => "TPACKET_V1".into(),
        1 => "TPACKET_V2".into(),
        2 => "TPACKET_V3".into(),
        v => format!("TPACKET version {v}"),
    }
}

/// Compares what the kernel says of the socket with the manifest.
fn check_socket(fd: &OwnedFd, m: &PacketManifest, g: &RxGeometry) -> Result<(), String> {
    let raw = fd.as_raw_fd();
    let int = |level, name| getsockopt::<libc::c_int>(raw, level, name);
    let domain =
        int(libc::SOL_SOCKET, libc::SO_DOMAIN).map_err(|e| format!("not a socket ({e})"))?;
    if domain != libc::AF_PACKET {
        return Err(format!(
            "socket domain {domain}, not AF_PACKET ({})",
            libc::AF_PACKET
        ));
    }
    let ty = int(libc::SOL_SOCKET, libc::SO_TYPE).map_err(|e| e.to_string())?;
    if ty != libc::SOCK_RAW {
        return Err(format!("socket type {ty}, not SOCK_RAW"));
    }
    let want = match g.kind {
        RxRingKind::V2 => 1,
        RxRingKind::V3 => 2,
    };
    let v = int(libc::SOL_PACKET, libc::PACKET_VERSION).map_err(|e| e.to_string())?;
    if v != want {
        return Err(format!(
            "PACKET_VERSION is {}, the manifest says {}",
            kind_name(v),
            kind_name(want)
        ));
    }
    let reserve = int(libc::SOL_PACKET, libc::PACKET_RESERVE).map_err(|e| e.to_string())?;
    if reserve as u32 != g.headroom {
        return Err(format!(
            "PACKET_RESERVE is {reserve}, the manifest says headroom {}",
            g.headroom
        ));
    }
    if int(libc::SOL_PACKET, libc::PACKET_VNET_HDR).map_err(|e| e.to_string())? == 0 {
        return Err("PACKET_VNET_HDR is off (not an rvs RX socket)".into());
    }
    let bound = bound_ifindex(raw).map_err(|e| e.to_string())?;
    if bound != m.ifindex {
        return Err(format!(
            "bound to interface index {bound}, the manifest says {}",
            m.ifindex
        ));
    }
    let f = int(libc::SOL_PACKET, libc::PACKET_FANOUT).map_err(|e| e.to_string())?;
    let group = (f != 0).then_some(f as u16);
    if group != m.fanout {
        return Err(format!(
            "fanout group {group:?}, the manifest says {:?}",
            m.fanout
        ));
    }
    let page = 4096;
    let frame_ok = match g.kind {
        RxRingKind::V2 => {
            g.frame_size >= 64 && g.frame_size.is_multiple_of(16) && g.frame_size <= g.block_size
        }
        RxRingKind::V3 => true,
    };
    if g.block_size == 0 || !g.block_size.is_multiple_of(page) || g.block_count == 0 || !frame_ok {
        return Err(format!("impossible ring geometry in the manifest: {g:?}"));
    }
    Ok(())
}

/// Maps the ring of a checked socket. The kernel refuses a mapping whose
/// length is not exactly its ring's (EINVAL), which checks the ring size.
fn map_ring(fd: OwnedFd, port: PortId, g: &RxGeometry) -> Result<AdoptedRx, String> {
    let len = g.block_size as usize * g.block_count as usize;
    let map = Mmap::ring(&fd, len).map_err(|e| {
        format!(
            "cannot map {len} bytes of ring ({} blocks of {}): {e}; the socket's ring is another size, or it has none",
            g.block_count, g.block_size
        )
    })?;
    let (bs, bc, hr, seg) = (
        g.block_size as usize,
        g.block_count as usize,
        g.headroom as usize,
        g.seg_max as usize,
    );
    let ring = match g.kind {
        RxRingKind::V2 => RxRing::new_v2(fd, map, port, bs, bc, g.frame_size as usize, seg, hr),
        RxRingKind::V3 => RxRing::new_v3(fd, map, port, bs, bc, seg, hr),
    };
    Ok(AdoptedRx { ring })
}

impl AdoptedRx {
    /// The ring's shape (as checked against the manifest).
    pub fn geometry(&self) -> RxGeometry {
        self.ring.geometry()
    }

    /// Starts reading at the cursor the old process reported at its freeze.
    /// Refused if the cursor is outside the ring, or (V3) names frames of a
    /// block the kernel has not handed over.
    pub fn start(mut self, c: RxCursor) -> io::Result<RxRing> {
        self.ring.start_at(c)?;
        Ok(self.ring)
    }

    /// The ring, not started: a successor builds its workers on it before
    /// the old process froze, and must [`RxRing::start_at`] the cursor the
    /// old one reports before reading it.
    pub fn unstarted(self) -> RxRing {
        self.ring
    }

    /// Starts reading where the ring itself says, for an old process that
    /// died without a freeze (see the module doc; duplicates are possible,
    /// losses are not).
    pub fn reconstruct(mut self) -> RxRing {
        self.ring.recover();
        self.ring
    }

    /// The cursor [`reconstruct`](Self::reconstruct) would start at. V2: the
    /// first slot the kernel handed over after one it owns (the oldest one
    /// nobody gave back); all handed over: the oldest by timestamp; none:
    /// after the most recently written one, confirmed by a second look 1 ms
    /// later (a slot being written as we look is then handed over). V3: the
    /// handed-over block with the lowest sequence number; none: the block
    /// the kernel is filling (the highest sequence number).
    pub fn find_cursor(&self) -> RxCursor {
        self.ring.find_cursor()
    }
}

impl RxRing {
    /// Sets the cursor the old process reported at its freeze (an
    /// [`AdoptedRx::unstarted`] ring). Refused if the cursor is outside the
    /// ring, or (V3) names frames of a block the kernel has not handed over.
    pub fn start_at(&mut self, c: RxCursor) -> io::Result<()> {
        let n = match &self.layout {
            Layout::V2(s) => s.frames,
            Layout::V3(s) => s.blocks,
        };
        if c.index as usize >= n || (c.skip > 0 && matches!(self.layout, Layout::V2(_))) {
            return Err(bad(format!(
                "cursor {c:?} outside a ring of {n} slots or blocks"
            )));
        }
        self.set_cursor(c.index as usize);
        if c.skip > 0 {
            self.skip_v3(c)?;
        }
        Ok(())
    }

    /// Opens block `c.index` and steps over its first `c.skip` frames.
    fn skip_v3(&mut self, c: RxCursor) -> io::Result<()> {
        let r = self;
        if !r.open_block() {
            return Err(bad(format!("cursor {c:?}: that block is not handed over")));
        }
        for _ in 0..c.skip {
            let Layout::V3(s) = &r.layout else { break };
            if !s.open || s.off + 4 > s.block_size {
                return Err(bad(format!("cursor {c:?}: the block has fewer frames")));
            }
            let next = r
                .status_at(r.block(s.cur).wrapping_add(s.off))
                .load(Ordering::Relaxed);
            if let Layout::V3(s) = &mut r.layout {
                s.next = next as usize;
            }
            r.advance();
        }
        Ok(())
    }
}

impl RxRing {
    /// Resumes where the ring itself says, after another reader used it
    /// (the successor that died after it started, or the process this ring
    /// was adopted from): see [`AdoptedRx::find_cursor`]. Returns the
    /// cursor. The frames that reader had taken but not given back are read
    /// again.
    pub fn recover(&mut self) -> RxCursor {
        self.gso = None;
        let c = self.find_cursor();
        self.set_cursor(c.index as usize);
        c
    }

    /// The cursor [`recover`](Self::recover) would resume at (see
    /// [`AdoptedRx::find_cursor`]).
    fn find_cursor(&self) -> RxCursor {
        match &self.layout {
            Layout::V2(_) => {
                let mut c = self.scan_v2();
                for _ in 0..100 {
                    if c.1 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    let again = self.scan_v2();
                    if again.0 == c.0 {
                        break;
                    }
                    c = again;
                }
                RxCursor {
                    index: c.0 as u32,
                    skip: 0,
                }
            }
            Layout::V3(_) => RxCursor {
                index: self.scan_v3() as u32,
                skip: 0,
            },
        }
    }

    fn set_cursor(&mut self, i: usize) {
        match &mut self.layout {
            Layout::V2(s) => {
                s.cur = i;
                s.unreleased = 0;
            }
            Layout::V3(s) => {
                s.cur = i;
                s.open = false;
                s.left = 0;
                s.unreleased = 0;
            }
        }
    }

    /// One look at a V2 ring: the cursor, and whether it is certain (some
    /// slot handed over) rather than inferred from timestamps. One status
    /// read per slot; timestamps only where needed.
    fn scan_v2(&self) -> (usize, bool) {
        let r = self;
        let Layout::V2(s) = &r.layout else {
            return (0, true);
        };
        let n = s.frames;
        let word = |i: usize, off: usize| {
            r.status_at(r.slot(s, i).wrapping_add(off))
                .load(Ordering::Acquire)
        };
        let user = |i: usize| word(i, 0) & libc::TP_STATUS_USER != 0;
        // tp_sec, tp_nsec at 16 and 20 of tpacket2_hdr.
        let ts = |i: usize| u64::from(word(i, 16)) * 1_000_000_000 + u64::from(word(i, 20));
        let (mut prev, mut any_kernel, mut any_user) = (user(n - 1), false, false);
        // A slot handed over after one the kernel owns; more than one only
        // if someone gave slots back out of order: the oldest then.
        let mut first = None::<(u64, usize)>;
        for i in 0..n {
            let u = user(i);
            if u && !prev {
                let t = ts(i);
                if first.is_none_or(|(o, _)| t < o) {
                    first = Some((t, i));
                }
            }
            (any_kernel, any_user, prev) = (any_kernel || !u, any_user || u, u);
        }
        if let Some((_, i)) = first {
            return (i, true);
        }
        let by_ts = (0..n).map(|i| (ts(i), i));
        if any_user {
            // Every slot handed over: the oldest.
            (by_ts.min().map_or(0, |x| x.1), true)
        } else {
            // None: after the most recently written (slot 0 if none was).
            let newest = by_ts.filter(|x| x.0 != 0).max();
            (newest.map_or(0, |x| (x.1 + 1) % n), false)
        }
    }

    /// The V3 cursor (see [`find_cursor`](Self::find_cursor)).
    fn scan_v3(&self) -> usize {
        let r = self;
        let Layout::V3(s) = &r.layout else { return 0 };
        let (mut oldest_user, mut newest) = (None::<(u64, usize)>, (0u64, 0usize));
        for b in 0..s.blocks {
            let p = r.block(b);
            let st = r.status_at(p.wrapping_add(8)).load(Ordering::Acquire);
            // SAFETY: offset 24 of a block descriptor (seq_num, u64) is
            // 8-aligned (blocks are page-aligned) and inside the mapping; the
            // kernel writes it when it opens the block, hence atomic access.
            let seq = unsafe { AtomicU64::from_ptr(p.add(24).cast()) }.load(Ordering::Acquire);
            if st & libc::TP_STATUS_USER != 0 {
                if oldest_user.is_none_or(|(o, _)| seq < o) {
                    oldest_user = Some((seq, b));
                }
            } else if seq > newest.0 {
                newest = (seq, b);
            }
        }
        oldest_user.map_or(newest.1, |(_, b)| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> PacketManifest {
        let g = RxGeometry {
            kind: RxRingKind::V3,
            block_size: 1 << 20,
            block_count: 16,
            frame_size: 0,
            headroom: 128,
            seg_max: 1522,
        };
        PacketManifest {
            version: MANIFEST_VERSION,
            port: 3,
            iface: "eth1".into(),
            ifindex: 7,
            fanout: Some(0x4b1d),
            queues: vec![
                g.clone(),
                RxGeometry {
                    kind: RxRingKind::V2,
                    frame_size: 2048,
                    ..g
                },
            ],
        }
    }

    #[test]
    fn manifest_and_cursors_round_trip() {
        let m = manifest();
        assert_eq!(PacketManifest::decode(&m.encode()).unwrap(), m);
        let c = vec![RxCursor { index: 5, skip: 2 }, RxCursor::default()];
        assert_eq!(decode_cursors(&encode_cursors(&c)).unwrap(), c);
    }

    #[test]
    fn malformed_manifests_are_refused_with_the_reason() {
        let m = manifest().encode();
        let e = PacketManifest::decode(&m[..m.len() - 1]).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let mut long = m.clone();
        long.push(0);
        let e = PacketManifest::decode(&long).unwrap_err();
        assert!(e.to_string().contains("1 bytes after the end"), "{e}");
        let mut kind = m.clone();
        kind[4 + 4 + 3 + 1 + 4 + 2] = 9;
        let e = PacketManifest::decode(&kind).unwrap_err();
        assert!(e.to_string().contains("unknown ring kind 9"), "{e}");
        let mut c = encode_cursors(&[]);
        c[0] = 2;
        let e = decode_cursors(&c).unwrap_err();
        assert!(e.to_string().contains("cursor report version 2"), "{e}");
    }
}

//! AF_PACKET queues: one RX ring (TPACKET_V2 by default, or TPACKET_V3, see
//! [`RxRingKind`]) and one TPACKET_V2 TX ring per (worker, port), steered
//! across workers by a classic-BPF fanout program.
//!
//! Receive ([`RxRing`], module `rx`): frames are processed in place in the
//! ring, in bursts of up to [`BURST`]. A V2 ring shows each frame as soon as
//! the kernel wrote it; a V3 ring hands over whole blocks, when full or when
//! their retire timer fires, which at low rates delays every frame by up to
//! the timer (milliseconds). A PACKET_VNET_HDR header in front of
//! every frame tells the GSO segment size and checksum start, so frames a
//! local neighbour (veth peer, container) sent with TSO/checksum offload are
//! completed and segmented here without touching anyone's ethtool settings.
//!
//! Transmit ([`TxRing`], module `tx`): `send` copies a frame into the next
//! free slot, `flush` kicks the kernel once per burst.

pub mod handover;
mod rx;
mod tx;

use std::io;
use std::os::fd::{OwnedFd, RawFd};

use rvs_core::addr::PortId;

pub use handover::{AdoptedRx, PacketManifest, RxCursor, RxGeometry};
pub use rx::{RxBurst, RxRing, RxStats, BURST};
pub use tx::{TxRing, TxStats};

use crate::iface::{if_index, mtu_of};
use crate::steer::{set_fanout_program, Steering};
use crate::sys::{bind_packet, setsockopt, socket, Mmap};

/// Which TPACKET version the RX ring uses.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum RxRingKind {
    /// Fixed slots, each handed over (and the poller woken) as soon as the
    /// kernel wrote its frame: the lowest latency. Frames larger than a slot
    /// (GSO super-frames) are read whole with recvfrom(2) (TP_STATUS_COPY).
    #[default]
    V2,
    /// Variable-size frames in blocks handed over when full or when the
    /// retire timer fires: fewer wake-ups at high packet rates, up to
    /// `retire_ms` (rounded up to the scheduler tick) of added latency at
    /// low rates.
    V3,
}

/// Geometry and options of one queue.
#[derive(Clone, Debug)]
pub struct AfPacketConf {
    /// The port id stamped on received packets.
    pub port: PortId,
    /// RX ring version.
    pub rx_ring: RxRingKind,
    /// RX block size; a multiple of the page size. For V3 at least 128 KiB,
    /// so a 64 KiB GSO super-frame fits a block whole (else it is dropped as
    /// truncated); for V2 the ring is `block_count` blocks of slots.
    pub block_size: u32,
    /// RX blocks.
    pub block_count: u32,
    /// RX frame size. V2: the slot size (a multiple of 16), raised as needed
    /// so an MTU-sized frame behind two VLAN tags fits after the headroom.
    /// V3: nominal (frames are variable; the kernel only uses it to check
    /// the geometry).
    pub frame_size: u32,
    /// V3 only: milliseconds after which the kernel hands over a partly
    /// filled block: the worst-case added latency at low load.
    pub retire_ms: u32,
    /// Headroom reserved before every received frame (PACKET_RESERVE, at
    /// least 64), so the pipeline can grow frames in place (TOA, tunnels).
    pub headroom: u32,
    /// TX slot size (multiple of 16; holds frames up to `tx_frame_size - 42`).
    pub tx_frame_size: u32,
    /// TX slots.
    pub tx_frames: u32,
    /// Fanout group to join (one id per port, unique in the namespace), in
    /// classic-BPF mode; `None` for a single queue on the port.
    pub fanout: Option<u16>,
}

impl Default for AfPacketConf {
    fn default() -> Self {
        AfPacketConf {
            port: 0,
            rx_ring: RxRingKind::V2,
            block_size: 1 << 20,
            block_count: 16,
            frame_size: 2048,
            retire_ms: 2,
            headroom: 128,
            tx_frame_size: 2048,
            tx_frames: 1024,
            fanout: None,
        }
    }
}

/// Counters of one queue.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Receive side.
    pub rx: RxStats,
    /// Transmit side.
    pub tx: TxStats,
}

/// One worker's queue on one port: an RX ring and a TX ring. The halves are
/// public so a worker can keep an RX burst borrowed while transmitting on
/// any queue's TX half, this one's included.
pub struct AfPacketQueue {
    /// The receive half.
    pub rx: RxRing,
    /// The transmit half.
    pub tx: TxRing,
}

const ETH_P_ALL: u16 = 0x0003;

impl AfPacketQueue {
    /// Opens a queue on interface `ifname` (in the calling thread's network
    /// namespace). With `conf.fanout`, the RX socket joins that group; the
    /// kernel numbers group members in join order, which is the worker index
    /// the steering program returns, so open worker 0's queue first.
    pub fn open(ifname: &str, conf: &AfPacketConf) -> io::Result<AfPacketQueue> {
        let ifindex = if_index(ifname)?;
        let mtu = mtu_of(ifname)?.max(1500) as usize;
        let rx = open_rx(ifindex, mtu, conf)?;
        let tx = TxRing::open(ifindex, conf.tx_frame_size, conf.tx_frames)?;
        Ok(AfPacketQueue { rx, tx })
    }

    /// Takes up to `max` frames (see [`RxRing::burst`]).
    pub fn rx_burst(&mut self, max: usize) -> RxBurst<'_> {
        self.rx.burst(max)
    }

    /// Returns fully handed-out RX slots or blocks to the kernel.
    pub fn release(&mut self) {
        self.rx.release()
    }

    /// Queues `frame` for transmission; false (counted) when the ring is full.
    pub fn tx(&mut self, frame: &[u8]) -> bool {
        self.tx.send(frame)
    }

    /// Sends everything queued with one syscall.
    pub fn flush(&mut self) {
        self.tx.flush()
    }

    /// Waits up to `timeout_ms` for received frames; returns whether some
    /// are ready. Returns the RX slots or blocks first (the kernel reports
    /// the socket readable while we hold one). A worker with several queues (and TAPs)
    /// should instead release each and call [`wait_any`] on all their
    /// [`fd`](Self::fd)s at once.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<bool> {
        self.rx.release();
        if self.rx.ready() {
            return Ok(true);
        }
        Ok(wait_any(&[self.rx.fd()], timeout_ms)? > 0)
    }

    /// The RX descriptor, for poll(2).
    pub fn fd(&self) -> RawFd {
        self.rx.fd()
    }

    /// Replaces the fanout group's steering program (any member may do it;
    /// it applies to the whole group at once).
    pub fn set_steering(&self, s: &Steering) -> io::Result<()> {
        set_fanout_program(self.rx.fd(), s)
    }

    /// Counters of both halves.
    pub fn stats(&mut self) -> QueueStats {
        QueueStats {
            rx: self.rx.stats(),
            tx: self.tx.stats(),
        }
    }
}

/// Waits up to `timeout_ms` (-1: forever) until one of `fds` (at most 64) is
/// readable; returns how many are. Interrupted waits return 0.
pub fn wait_any(fds: &[RawFd], timeout_ms: i32) -> io::Result<usize> {
    crate::sys::poll_in(fds, timeout_ms)
}

/// Bytes the kernel puts before the MAC header of a V2 slot besides the
/// headroom: `TPACKET_ALIGN(TPACKET2_HDRLEN + 16)` + the vnet header - the
/// Ethernet header (`macoff` in `tpacket_rcv`).
const V2_MAC_EXTRA: usize = 80 + crate::offload::VNET_HDR_LEN - 14;

/// Room in the socket's receive queue for frames larger than a V2 slot,
/// waiting whole to be read with recvfrom: dozens of 64 KiB super-frames.
const V2_RCVBUF: libc::c_int = 8 << 20;

fn open_rx(ifindex: u32, mtu: usize, conf: &AfPacketConf) -> io::Result<RxRing> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_string());
    let headroom = conf.headroom.max(64);
    if !conf.block_size.is_multiple_of(4096) || conf.block_count == 0 || conf.frame_size == 0 {
        return Err(bad("bad rx ring geometry"));
    }
    // Segments: the largest MTU-sized frame behind two VLAN tags.
    let seg_max = mtu + 14 + 8;
    let v2 = conf.rx_ring == RxRingKind::V2;
    let frame_size = if v2 {
        let need = (headroom as usize + V2_MAC_EXTRA + seg_max).next_multiple_of(16);
        (conf.frame_size as usize)
            .next_multiple_of(16)
            .max(need)
            .min(u32::MAX as usize) as u32
    } else {
        conf.frame_size
    };
    let per_block = conf.block_size / frame_size;
    if per_block == 0 {
        return Err(bad("rx frame_size larger than block_size"));
    }
    // Bound to nothing (protocol 0) until the ring is ready, so no frame is
    // queued the slow way in between.
    let fd: OwnedFd = socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK, 0)?;
    let one: libc::c_int = 1;
    let version = if v2 {
        libc::tpacket_versions::TPACKET_V2
    } else {
        libc::tpacket_versions::TPACKET_V3
    };
    setsockopt(
        &fd,
        libc::SOL_PACKET,
        libc::PACKET_VERSION,
        &(version as libc::c_int),
    )?;
    setsockopt(
        &fd,
        libc::SOL_PACKET,
        libc::PACKET_RESERVE,
        &(headroom as libc::c_int),
    )?;
    setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &one)?;
    let map_len = conf.block_size as usize * conf.block_count as usize;
    let map = if v2 {
        // A frame larger than a slot is kept whole in the receive queue (and
        // its slot flagged TP_STATUS_COPY) only with a copy threshold set and
        // while the queue's memory is under the receive buffer.
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_COPY_THRESH, &one)?;
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &V2_RCVBUF).is_err() {
            // Without CAP_NET_ADMIN: as much as net.core.rmem_max allows.
            let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &V2_RCVBUF);
        }
        let req = libc::tpacket_req {
            tp_block_size: conf.block_size,
            tp_block_nr: conf.block_count,
            tp_frame_size: frame_size,
            tp_frame_nr: per_block * conf.block_count,
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        Mmap::ring(&fd, map_len)?
    } else {
        let req = libc::tpacket_req3 {
            tp_block_size: conf.block_size,
            tp_block_nr: conf.block_count,
            tp_frame_size: frame_size,
            tp_frame_nr: per_block * conf.block_count,
            tp_retire_blk_tov: conf.retire_ms.max(1),
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        Mmap::ring(&fd, map_len)?
    };
    // Our own transmissions (and other workers') are not input.
    setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one)?;
    bind_packet(&fd, ifindex, ETH_P_ALL)?;
    if let Some(id) = conf.fanout {
        // In a fanout group the group's hook receives, not the socket's, so
        // ignoring outgoing frames must be asked of the group as well.
        let mode = libc::PACKET_FANOUT_CBPF | libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
        let val = (id as u32 | (mode << 16)) as libc::c_int;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &val)?;
    }
    Ok(if v2 {
        RxRing::new_v2(
            fd,
            map,
            conf.port,
            conf.block_size as usize,
            conf.block_count as usize,
            frame_size as usize,
            seg_max,
            headroom as usize,
        )
    } else {
        RxRing::new_v3(
            fd,
            map,
            conf.port,
            conf.block_size as usize,
            conf.block_count as usize,
            seg_max,
            headroom as usize,
        )
    })
}

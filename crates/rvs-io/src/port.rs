//! One port, whatever its backend: [`open_port`] opens every worker's queue
//! of an interface and keeps what steers frames to them, so that a daemon
//! names no backend type. [`RxQ`], [`TxQ`] and [`Burst`] are enums over the
//! two backends' halves (a match per burst or per frame: no allocation, no
//! dynamic dispatch in the worker loop).

use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::RawFd;

use rvs_core::pipeline::Packet;

use crate::af_packet::{AfPacketConf, AfPacketQueue, RxBurst, RxRing, RxRingKind, TxRing};
use crate::af_xdp::{XdpBurst, XdpConf, XdpPort, XdpQueue, XdpRx, XdpTx};
#[cfg(feature = "dpdk")]
use crate::dpdk::{DpdkBurst, DpdkConf, DpdkPort, DpdkRx, DpdkTx};
use crate::steer::{self, Steering};

/// Which backend a port uses, with its settings.
#[derive(Clone, Debug)]
pub enum Backend {
    /// AF_PACKET rings joined in a fanout group (`fanout` is the group id,
    /// unique per port within the network namespace).
    AfPacket {
        /// Receive ring version.
        rx_ring: RxRingKind,
        /// Fanout group id (used when there are several workers).
        fanout: u16,
    },
    /// AF_XDP sockets steered by rvs's XDP program (`port` and `workers`
    /// are overridden by [`PortConf`]).
    AfXdp(XdpConf),
    /// A DPDK poll-mode driver (feature `dpdk`).
    #[cfg(feature = "dpdk")]
    Dpdk(DpdkConf),
}

/// What [`open_port`] needs.
#[derive(Clone, Debug)]
pub struct PortConf {
    /// The port id stamped on received packets.
    pub port: u16,
    /// Number of workers (one queue each).
    pub workers: u16,
    /// Backend and its settings.
    pub backend: Backend,
}

/// A worker's receive queue on one port, of either backend.
pub enum RxQ {
    /// AF_PACKET receive ring (TPACKET_V2 or V3).
    Packet(RxRing),
    /// AF_XDP socket.
    Xdp(XdpRx),
    /// DPDK queue and its inbound hand-off rings.
    #[cfg(feature = "dpdk")]
    Dpdk(DpdkRx),
}

/// A worker's transmit queue on one port, of either backend.
pub enum TxQ {
    /// AF_PACKET TPACKET_V2 transmit ring.
    Packet(TxRing),
    /// AF_XDP socket.
    Xdp(XdpTx),
    /// DPDK queue.
    #[cfg(feature = "dpdk")]
    Dpdk(DpdkTx),
}

/// One worker's two halves on one port.
pub struct Queue {
    /// Receive half.
    pub rx: RxQ,
    /// Transmit half.
    pub tx: TxQ,
}

/// Frames received in one burst, in place in either backend's memory.
pub enum Burst<'a> {
    /// From an AF_PACKET ring.
    Packet(RxBurst<'a>),
    /// From an AF_XDP UMEM.
    Xdp(XdpBurst<'a>),
    /// In DPDK mbufs.
    #[cfg(feature = "dpdk")]
    Dpdk(DpdkBurst<'a>),
}

impl<'a> Deref for Burst<'a> {
    type Target = [Packet<'a>];
    fn deref(&self) -> &[Packet<'a>] {
        match self {
            Burst::Packet(b) => b,
            Burst::Xdp(b) => b,
            #[cfg(feature = "dpdk")]
            Burst::Dpdk(b) => b,
        }
    }
}

impl<'a> DerefMut for Burst<'a> {
    fn deref_mut(&mut self) -> &mut [Packet<'a>] {
        match self {
            Burst::Packet(b) => b,
            Burst::Xdp(b) => b,
            #[cfg(feature = "dpdk")]
            Burst::Dpdk(b) => b,
        }
    }
}

impl RxQ {
    /// Up to `max` frames.
    pub fn burst(&mut self, max: usize) -> Burst<'_> {
        match self {
            RxQ::Packet(r) => Burst::Packet(r.burst(max)),
            RxQ::Xdp(r) => Burst::Xdp(r.burst(max)),
            #[cfg(feature = "dpdk")]
            RxQ::Dpdk(r) => Burst::Dpdk(r.burst(max)),
        }
    }

    /// Gives the last burst's memory back to the kernel.
    pub fn release(&mut self) {
        match self {
            RxQ::Packet(r) => r.release(),
            RxQ::Xdp(r) => r.release(),
            #[cfg(feature = "dpdk")]
            RxQ::Dpdk(r) => r.release(),
        }
    }

    /// The descriptor to poll (-1, which poll(2) skips, for DPDK: a
    /// polled queue has none).
    pub fn fd(&self) -> RawFd {
        match self {
            RxQ::Packet(r) => r.fd(),
            RxQ::Xdp(r) => r.fd(),
            #[cfg(feature = "dpdk")]
            RxQ::Dpdk(_) => -1,
        }
    }

    /// Frames the kernel dropped before rvs saw them, in total (DPDK:
    /// frames dropped because they came in several segments).
    pub fn kernel_drops(&mut self) -> u64 {
        match self {
            RxQ::Packet(r) => r.stats().kernel_drops,
            RxQ::Xdp(r) => {
                let s = r.stats();
                s.kernel_drops + s.kernel_ring_full
            }
            #[cfg(feature = "dpdk")]
            RxQ::Dpdk(r) => r.stats().multiseg,
        }
    }

    /// Frames dropped since the last call because the worker owning them
    /// had its hand-off ring full (DPDK; 0 for the other backends, whose
    /// kernel steers every frame to its owner), for the drop reason
    /// `handoff_full`.
    pub fn take_handoff_drops(&mut self) -> u64 {
        match self {
            #[cfg(feature = "dpdk")]
            RxQ::Dpdk(r) => r.take_handoff_full(),
            _ => 0,
        }
    }
}

impl TxQ {
    /// Queues a frame; false when there is no room.
    pub fn send(&mut self, frame: &[u8]) -> bool {
        match self {
            TxQ::Packet(t) => t.send(frame),
            TxQ::Xdp(t) => t.send(frame),
            #[cfg(feature = "dpdk")]
            TxQ::Dpdk(t) => t.send(frame),
        }
    }

    /// Sends what was queued.
    pub fn flush(&mut self) {
        match self {
            TxQ::Packet(t) => t.flush(),
            TxQ::Xdp(t) => t.flush(),
            #[cfg(feature = "dpdk")]
            TxQ::Dpdk(t) => t.flush(),
        }
    }
}

/// What steers a port's frames to its workers, kept by the daemon.
enum Steer {
    /// One fanout member's ring descriptor (any member updates the group's
    /// program; it stays valid while the worker owns the ring), or none
    /// with a single worker.
    Fanout(Option<RawFd>),
    /// The XDP program and its maps (detached when dropped).
    Xdp(XdpPort),
    /// The DPDK port (its hand-off steering).
    #[cfg(feature = "dpdk")]
    Dpdk(DpdkPort),
}

/// An opened port: its workers' queues until [`Port::take_queues`], and the
/// steering, which lives as long as the `Port`.
pub struct Port {
    queues: Vec<Queue>,
    steer: Steer,
    backend: String,
    warnings: Vec<String>,
}

/// Opens `iface` for `conf.workers` workers and installs `steering`.
/// Errors name what could not be opened.
pub fn open_port(iface: &str, conf: &PortConf, steering: &Steering) -> io::Result<Port> {
    match &conf.backend {
        Backend::AfPacket { rx_ring, fanout } => {
            open_af_packet(iface, conf, *rx_ring, *fanout, steering)
        }
        Backend::AfXdp(x) => open_af_xdp(iface, conf, x, steering),
        #[cfg(feature = "dpdk")]
        Backend::Dpdk(d) => open_dpdk(iface, conf, d, steering),
    }
}

#[cfg(feature = "dpdk")]
fn open_dpdk(iface: &str, conf: &PortConf, d: &DpdkConf, steering: &Steering) -> io::Result<Port> {
    let (port, queues) = DpdkPort::open(iface, d, conf.port, conf.workers)?;
    port.set_steering(steering);
    let queues = queues
        .into_iter()
        .map(|(rx, tx)| Queue {
            rx: RxQ::Dpdk(rx),
            tx: TxQ::Dpdk(tx),
        })
        .collect();
    Ok(Port {
        queues,
        backend: port.backend().to_string(),
        steer: Steer::Dpdk(port),
        warnings: Vec::new(),
    })
}

fn open_af_packet(
    iface: &str,
    conf: &PortConf,
    rx_ring: RxRingKind,
    fanout: u16,
    steering: &Steering,
) -> io::Result<Port> {
    let workers = conf.workers.max(1);
    let mut queues = Vec::new();
    let mut steer_fd = None;
    // Worker order, so that group member index == worker.
    for w in 0..workers {
        let qc = AfPacketConf {
            port: conf.port,
            rx_ring,
            fanout: (workers > 1).then_some(fanout),
            ..AfPacketConf::default()
        };
        let AfPacketQueue { rx, tx } = AfPacketQueue::open(iface, &qc)
            .map_err(|e| io::Error::new(e.kind(), format!("AF_PACKET queue: {e}")))?;
        if w == 0 && workers > 1 {
            steer::set_fanout_program(rx.fd(), steering)
                .map_err(|e| io::Error::new(e.kind(), format!("fanout steering program: {e}")))?;
            steer_fd = Some(rx.fd());
        }
        queues.push(Queue {
            rx: RxQ::Packet(rx),
            tx: TxQ::Packet(tx),
        });
    }
    let backend = match rx_ring {
        RxRingKind::V2 => "af_packet (tpacket_v2)",
        RxRingKind::V3 => "af_packet (tpacket_v3)",
    };
    Ok(Port {
        queues,
        steer: Steer::Fanout(steer_fd),
        backend: backend.to_string(),
        warnings: Vec::new(),
    })
}

fn open_af_xdp(iface: &str, conf: &PortConf, x: &XdpConf, steering: &Steering) -> io::Result<Port> {
    let xc = XdpConf {
        port: conf.port,
        workers: conf.workers.max(1),
        ..x.clone()
    };
    let port = XdpPort::open(iface, &xc)
        .map_err(|e| io::Error::new(e.kind(), format!("AF_XDP queues: {e}")))?;
    port.set_steering(steering)
        .map_err(|e| io::Error::new(e.kind(), format!("XDP steering: {e}")))?;
    Ok(Port::from_xdp(port))
}

impl Port {
    /// The port of an AF_XDP port opened or adopted from another process
    /// ([`XdpPort::prepare`], then [`start`](crate::af_xdp::XdpPrepared::start)),
    /// with its workers' queues (the same as [`open_port`] gives).
    pub fn from_xdp(mut port: XdpPort) -> Port {
        let queues = port
            .take_queues()
            .into_iter()
            .map(|q| {
                let XdpQueue { rx, tx, .. } = q;
                Queue {
                    rx: RxQ::Xdp(rx),
                    tx: TxQ::Xdp(tx),
                }
            })
            .collect();
        let backend = port.backend();
        let warnings = port.unserved().into_iter().collect();
        Port {
            queues,
            steer: Steer::Xdp(port),
            backend,
            warnings,
        }
    }

    /// The AF_XDP port behind it (to [`export`](XdpPort::export) and
    /// [`freeze`](XdpPort::freeze) it for a hand-over); `None` on AF_PACKET.
    pub fn xdp(&self) -> Option<&XdpPort> {
        match &self.steer {
            Steer::Xdp(p) => Some(p),
            _ => None,
        }
    }
}

impl Port {
    /// A port whose AF_PACKET queues were taken over from another process
    /// (hot upgrade, standby; see [`crate::af_packet::handover`]): `queues`
    /// in worker order, their RX rings adopted and started, their TX rings
    /// this process's own. The fanout group and its program came with the
    /// sockets; [`set_steering`](Self::set_steering) replaces the program
    /// through worker 0's ring, as on a port opened here.
    pub fn adopted_af_packet(queues: Vec<Queue>) -> io::Result<Port> {
        let mut kind = None;
        for q in &queues {
            match &q.rx {
                RxQ::Packet(r) => kind = Some(r.kind()),
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a queue of another backend among adopted AF_PACKET queues",
                    ))
                }
            }
        }
        let backend = match kind {
            Some(RxRingKind::V2) => "af_packet (tpacket_v2)",
            Some(RxRingKind::V3) => "af_packet (tpacket_v3)",
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no queue to adopt",
                ))
            }
        };
        let steer_fd = (queues.len() > 1).then(|| queues[0].rx.fd());
        Ok(Port {
            queues,
            steer: Steer::Fanout(steer_fd),
            backend: backend.to_string(),
            warnings: Vec::new(),
        })
    }

    /// The workers' queues, in worker order (once; empty afterwards).
    pub fn take_queues(&mut self) -> Vec<Queue> {
        std::mem::take(&mut self.queues)
    }

    /// What the port runs on, e.g. "af_xdp (native, copy)".
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// What the operator should know about how the port was opened (e.g.
    /// device queues no worker serves), one sentence each.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The XDP fast-path map (AF_XDP ports opened with `fast_entries`).
    pub fn fast_map(&self) -> Option<std::sync::Arc<crate::af_xdp::FastMap>> {
        match &self.steer {
            Steer::Xdp(p) => p.fast(),
            _ => None,
        }
    }

    /// Re-steers after a configuration change (pool addresses, real servers).
    pub fn set_steering(&self, s: &Steering) -> io::Result<()> {
        match &self.steer {
            Steer::Fanout(Some(fd)) => steer::set_fanout_program(*fd, s),
            Steer::Fanout(None) => Ok(()),
            Steer::Xdp(p) => p.set_steering(s),
            #[cfg(feature = "dpdk")]
            Steer::Dpdk(p) => {
                p.set_steering(s);
                Ok(())
            }
        }
    }
}

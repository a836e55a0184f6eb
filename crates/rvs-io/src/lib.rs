//! The Linux I/O under the rvs pipeline: AF_PACKET rings, fanout steering
//! and TAP devices for the exception path.
//!
//! # How a daemon uses it
//!
//! With `W` workers and `P` ports, every worker `w` opens, for every port
//! `p`, its own [`AfPacketQueue`] with `fanout: Some(group_of(p))` (one
//! fanout group id per port, unique within the network namespace), opening
//! them in worker order (worker 0 first on each port): the kernel numbers
//! group members in join order, and that number is what the steering
//! program returns. Once the last worker joined, any one queue per port
//! installs the program with [`AfPacketQueue::set_steering`]; it is replaced
//! the same way whenever pool addresses, real servers or `W` change. A
//! member that closes shifts the numbering (the kernel moves the last member
//! into the hole), so the daemon restarts a port's group as a whole.
//!
//! Each worker loop then, for each of its queues:
//!
//! ```ignore
//! let AfPacketQueue { rx, .. } = &mut queues[p];
//! let mut burst = rx.burst(BURST);          // frames in place in the ring
//! worker.process_burst(&mut burst, &mut verdicts, now_ms);
//! for (pkt, v) in burst.iter().zip(&verdicts) {
//!     match v {
//!         Verdict::Transmit(out) => { txs[*out].send(pkt.frame()); }  // counts ring-full itself
//!         Verdict::ToKernel(port) => { let _ = taps[*port].write(pkt.frame()); }
//!         _ => {}
//!     }
//! }
//! // then flush every TX ring written to: one sendto per ring per round
//! ```
//!
//! where the TX halves may be kept apart from the RX halves (the fields of
//! [`AfPacketQueue`] are public), so a frame can go out of the port it came
//! in on while the burst is still borrowed. Frames the kernel sends on a
//! port's TAP (`Tap::read`) are transmitted on that port's TX ring.
//!
//! When a round finds nothing, the worker calls `release` on each RX ring
//! (a held slot or block keeps the socket readable) and sleeps in [`wait_any`] on
//! the descriptors of all its queues and TAPs together, with a short
//! timeout so timers still run.
//!
//! Offloads of neighbours need no configuration: partial checksums are
//! completed and GSO super-frames segmented on receive (see
//! [`af_packet`]).
//!
//! A daemon need not name either backend's types: [`open_port`] opens all
//! workers' queues of a port ([`Queue`]: [`RxQ`] and [`TxQ`], enums over the
//! backends) and keeps its steering ([`Port::set_steering`]).
//!
//! A running rvs hands its AF_PACKET queues to a successor process without
//! closing anything (hot upgrade, warm standby): [`af_packet::handover`]
//! passes each worker's RX socket (fanout membership and steering included)
//! with a versioned manifest and a cursor per ring, [`Tap::adopt`] and
//! [`lock::adopt_lock`] take over the TAP devices and the port lock from
//! passed descriptors; [`fdpass`] carries them.
//!
//! The other backend, [`af_xdp`], gives the same worker loop AF_XDP sockets
//! ([`XdpPort::open`] opens all workers' queues of a port at once, steered
//! by rvs's own XDP program instead of a fanout group); its module doc says
//! how the program is built, loaded and attached, and why.

pub mod af_packet;
pub mod af_xdp;
pub mod clock;
pub mod deathwatch;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod fdpass;
pub mod iface;
pub mod lock;
pub mod mcast;
pub mod mem;
mod offload;
pub mod peer;
pub mod port;
pub mod steer;
mod sys;
pub mod tap;

pub use af_packet::{
    wait_any, AfPacketConf, AfPacketQueue, QueueStats, RxBurst, RxRing, RxRingKind, RxStats,
    TxRing, TxStats, BURST,
};
pub use af_xdp::{
    RxChecksum, XdpBurst, XdpConf, XdpMode, XdpPort, XdpQueue, XdpQueueStats, XdpRx, XdpRxStats,
    XdpTx, XdpTxStats,
};
pub use port::{open_port, Backend, Burst, Port, PortConf, Queue, RxQ, TxQ};
pub use steer::{build_cbpf, Steering};
pub use sys::set_umask;
pub use tap::{Tap, TapCarrier};

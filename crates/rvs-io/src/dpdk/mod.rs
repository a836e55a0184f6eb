//! The DPDK backend (feature `dpdk`): ports driven by a DPDK poll-mode
//! driver through the system's libdpdk (`rvs-dpdk-sys`).
//!
//! [`eal::init`] runs `rte_eal_init` once per process, in the thread that
//! opens the first port (rvsd's main thread, before the workers start),
//! and restores that thread's CPU affinity after. [`DpdkPort::open`]
//! probes the device (`net_af_packet`/`net_af_xdp` on a kernel interface,
//! as a vdev with one queue pair per worker, or a PCI address), creates
//! its mbuf pool, configures one RX and one TX queue per worker and
//! starts it. Worker `w` owns queue `w` of every DPDK port: no queue is
//! shared, and each worker thread registers with EAL on its first burst
//! (`rte_thread_register`: an lcore id, so a mempool cache).
//!
//! A received frame whose connection another worker owns
//! ([`crate::steer::owner`], the same rules as the kernel programs of the
//! other backends) is handed over: its mbuf pointer goes on the
//! single-producer single-consumer `rte_ring` from this worker to the owner
//! (full: freed and counted as `handoff_full`), and every burst also takes
//! what the other workers handed over to this one. Where the device
//! validates rte_flow rules at start ([`crate::steer::flow`]), rules also
//! send traffic to pool addresses (FNAT/SNAT return traffic) straight to
//! the owner's queue and RSS spreads the rest, so fewer frames need the
//! ring; neither vdev does (no RSS control, no rte_flow: the af_packet
//! PMD's fanout hash or the NIC queue decides), and the port's backend name
//! says which path it uses and why.
//!
//! Received frames are handed to the pipeline in place in their mbufs
//! (no copy); frames sent are copied into a fresh mbuf (`TxQ::send` takes
//! a byte slice, as for the other backends): zero-copy transmit of the
//! received mbuf is a follow-up.

pub mod eal;
mod flow;
mod port;

pub use port::{DpdkBurst, DpdkConf, DpdkPort, DpdkRx, DpdkRxStats, DpdkTx};

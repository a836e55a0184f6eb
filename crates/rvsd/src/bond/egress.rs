//! A worker's way out: a taken-over port's frames go to its transmit queue,
//! a bond's to one of its distributing slaves (mode 0: per-worker round
//! robin; mode 4: the transmit hash modulo their number). The slave list is
//! rebuilt only when `rvs-bond` publishes a new mask: one relaxed load per
//! frame. Mode 4 slaves' receive side is filtered here too: Slow Protocols
//! frames go to `rvs-bond`, a slave not collecting has the rest dropped.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use rvs_core::bond::XmitHash;
use rvs_core::pipeline::Packet;
use rvs_io::TxQ;

use super::{Bond, Bonds, CtlFrame, CTL_FRAME};
use crate::runtime::{send_on, PortCounters};

/// Ethertype of the Slow Protocols (LACP, Marker).
const SLOW_PROTOCOLS: u16 = rvs_core::bond::pdu::ETHERTYPE;

/// One bond as a worker sends on it.
struct BondTx {
    bond: Arc<Bond>,
    /// Mask the slot list was built from.
    seen: u32,
    /// Distributing slaves' port indexes.
    slots: [u16; 32],
    /// Slots in use.
    n: usize,
    /// Round-robin position (mode 0).
    rr: usize,
    /// Mode 4.
    lacp: bool,
    /// Mode 4's transmit hash.
    hash: XmitHash,
}

impl BondTx {
    fn rebuild(&mut self, mask: u32) {
        self.seen = mask;
        self.n = 0;
        for (k, &p) in self.bond.slaves.iter().enumerate() {
            if k < 32 && mask & (1 << k) != 0 {
                self.slots[self.n] = p;
                self.n += 1;
            }
        }
    }
}

/// A slave's receive side, mode 4: (its bond, its bit).
#[derive(Clone, Copy)]
struct SlaveRx {
    bond: usize,
    bit: u32,
}

/// A worker's egress and bond receive filter.
pub struct Egress {
    phys: usize,
    bonds: Vec<BondTx>,
    /// By port index (taken-over ports): the mode 4 bond it is a slave of.
    rx: Vec<Option<SlaveRx>>,
    ctl_in: Option<SyncSender<CtlFrame>>,
    ctl_out: Option<Receiver<CtlFrame>>,
}

impl Egress {
    /// The egress of one worker over `bonds`; `first`: worker 0, which sends
    /// what `rvs-bond` sends.
    pub fn new(bonds: &Bonds, first: bool) -> Egress {
        let mut rx = vec![None; bonds.phys];
        let mut txs = Vec::new();
        for (i, b) in bonds.list.iter().enumerate() {
            let lacp = b.conf.mode == 4;
            if lacp {
                for (k, &s) in b.slaves.iter().enumerate() {
                    if let Some(r) = rx.get_mut(usize::from(s)) {
                        *r = Some(SlaveRx {
                            bond: i,
                            bit: 1 << k,
                        });
                    }
                }
            }
            let mut t = BondTx {
                bond: b.clone(),
                seen: 0,
                slots: [0; 32],
                n: 0,
                rr: 0,
                lacp,
                hash: super::lacp::xmit_policy(b.conf.xmit_hash),
            };
            t.rebuild(b.shared.distributing.load(Relaxed));
            txs.push(t);
        }
        let any = !bonds.list.is_empty();
        Egress {
            phys: bonds.phys,
            bonds: txs,
            rx,
            ctl_in: any.then(|| bonds.ctl_in.clone()),
            ctl_out: match (first && any, bonds.ctl_out.lock()) {
                (true, Ok(mut o)) => o.take(),
                _ => None,
            },
        }
    }

    /// Sends `frame` out of port `port`: a taken-over port's queue, or one
    /// of a bond's distributing slaves (none: counted `bond_no_slave`).
    #[inline]
    pub fn send(&mut self, tx: &mut [TxQ], counters: &[PortCounters], port: usize, frame: &[u8]) {
        if port < self.phys {
            send_on(tx, counters, port, frame);
        } else if let Some(s) = self.slave_for(port, frame) {
            send_on(tx, counters, s, frame);
        }
    }

    /// The slave (port index) bond port `port` sends `frame` on now; `None`
    /// (counted) when no slave distributes, or `port` is no bond.
    fn slave_for(&mut self, port: usize, frame: &[u8]) -> Option<usize> {
        let b = self.bonds.get_mut(port.checked_sub(self.phys)?)?;
        let mask = b.bond.shared.distributing.load(Relaxed);
        if mask != b.seen {
            b.rebuild(mask);
        }
        if b.n == 0 {
            b.bond.shared.no_slave.fetch_add(1, Relaxed);
            return None;
        }
        let k = if b.lacp {
            rvs_core::bond::xmit_hash(frame, b.hash) as usize % b.n
        } else {
            b.rr = if b.rr + 1 >= b.n { 0 } else { b.rr + 1 };
            b.rr
        };
        Some(usize::from(b.slots[k]))
    }

    /// Mode 4 receive filter for a burst of port `port`: Slow Protocols
    /// frames go to `rvs-bond`; on a slave not collecting the others are
    /// dropped (`bond_not_collecting`). Returns how many frames, at the
    /// front of `burst`, the pipeline should see.
    #[inline]
    pub fn rx(&mut self, port: usize, burst: &mut [Packet<'_>]) -> usize {
        let Some(Some(s)) = self.rx.get(port).copied() else {
            return burst.len();
        };
        self.rx_slave(port, s, burst)
    }

    fn rx_slave(&mut self, port: usize, s: SlaveRx, burst: &mut [Packet<'_>]) -> usize {
        let mut keep = burst.len();
        let mut i = 0;
        while i < keep {
            let f = burst[i].frame();
            if f.len() >= 14 && u16::from_be_bytes([f[12], f[13]]) == SLOW_PROTOCOLS {
                if let Some(tx) = &self.ctl_in {
                    let mut c = CtlFrame {
                        slave: port as u16,
                        len: f.len().min(CTL_FRAME) as u8,
                        buf: [0; CTL_FRAME],
                    };
                    c.buf[..usize::from(c.len)].copy_from_slice(&f[..usize::from(c.len)]);
                    let _ = tx.try_send(c);
                }
                // To the end, the others kept in order (rare: no cost
                // on a burst without a Slow Protocols frame).
                burst[i..keep].rotate_left(1);
                keep -= 1;
            } else {
                i += 1;
            }
        }
        let b = &self.bonds[s.bond].bond.shared;
        if b.collecting.load(Relaxed) & s.bit == 0 && keep > 0 {
            b.not_collecting.fetch_add(keep as u64, Relaxed);
            return 0;
        }
        keep
    }

    /// Worker 0: sends what `rvs-bond` queued (LACPDUs), each on its slave.
    pub fn drain_ctl(&mut self, tx: &mut [TxQ], counters: &[PortCounters]) -> usize {
        let Some(out) = &self.ctl_out else { return 0 };
        let mut n = 0;
        while let Ok(c) = out.try_recv() {
            send_on(
                tx,
                counters,
                usize::from(c.slave),
                &c.buf[..usize::from(c.len)],
            );
            n += 1;
        }
        n
    }
}

#[cfg(test)]
#[path = "egress_tests.rs"]
mod tests;

//! Taking a port back from a successor that started and then failed or died
//! (hot upgrade, `docs/design/hot-upgrade.md` section 3 (a)): nothing says
//! what it held, so each queue's pool is rebuilt from the rings alone.
//!
//! Every ring's indices are re-read from the shared pages; a UMEM frame is
//! free when it is in none of the queue's rings: not in the fill ring
//! (`[cons, prod)`, which also covers entries the kernel took but has not
//! published as consumed), no socket's RX ring and no TX ring
//! (`[cons, prod)`), and not in the completion ring (those are reaped as
//! free by the next transmission). Frames the successor held privately
//! (its last burst, its TX cache, its free list) are free by construction.
//!
//! The receive and transmit halves re-read their own rings
//! ([`XdpRx::resync`](super::XdpRx::resync),
//! [`XdpTx::resync`](super::XdpTx::resync)) before they run again; until
//! then they must not be used.

use std::io;
use std::sync::Arc;

use super::ring::{Ring, Role};
use super::sock::offsets;
use super::XdpPort;

/// What [`XdpPort::reconstruct`] found, summed over the served queues.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconstructed {
    /// Frames in the fill rings.
    pub fill: usize,
    /// Frames in RX rings.
    pub rx: usize,
    /// Frames in TX rings.
    pub tx: usize,
    /// Frames in the completion rings (reaped as free later).
    pub comp: usize,
    /// Frames in the rebuilt free lists.
    pub free: usize,
}

impl XdpPort {
    /// Rebuilds every queue's pool from the rings as another process left
    /// them (see the module doc). Call it only while no worker of this
    /// process uses the port (all parked), and let each worker resync its
    /// halves before it runs again.
    pub fn reconstruct(&self) -> io::Result<Reconstructed> {
        let sh = &self.shared;
        let g = &sh.geom;
        let fs = sh.frame_size as u64;
        let per_queue = u64::from(g.frames);
        let socks: Vec<_> = sh
            .socks
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .iter()
            .map(|w| w.upgrade())
            .collect();
        let workers = g.workers as usize;
        let mut r = Reconstructed::default();
        for (qi, pool) in sh.pools.iter().enumerate() {
            let base = qi as u64 * per_queue * fs;
            let mut used = vec![false; per_queue as usize];
            let mut mark = |addrs: &[u64], n: &mut usize| {
                for &a in addrs {
                    let i = a.wrapping_sub(base) / fs;
                    if a >= base && i < per_queue {
                        *n += 1;
                        used[i as usize] = true;
                    }
                }
            };
            let mut p = pool
                .lock()
                .map_err(|_| io::Error::other("a pool's lock is poisoned"))?;
            p.fill.resync();
            p.comp.resync();
            mark(&p.fill.pending(), &mut r.fill);
            mark(&p.comp.pending(), &mut r.comp);
            for w in 0..workers {
                let Some(Some(s)) = socks.get(qi * workers + w) else {
                    continue;
                };
                let home = w as u32 % g.homes.max(1) == qi as u32;
                let (rx, tx) = socket_rings(s, g.rx, g.tx, home)?;
                mark(&rx, &mut r.rx);
                mark(&tx, &mut r.tx);
            }
            p.free = (0..per_queue)
                .filter(|&i| !used[i as usize])
                .map(|i| base + i * fs)
                .collect();
            r.free += p.free.len();
        }
        Ok(r)
    }
}

/// The frame bases in a socket's RX ring and (when `has_tx`) TX ring,
/// `[cons, prod)` as published, from a mapping of its own.
fn socket_rings(
    s: &Arc<super::ring::Sock>,
    rx_size: u32,
    tx_size: u32,
    has_tx: bool,
) -> io::Result<(Vec<u64>, Vec<u64>)> {
    let fs = s.shared.frame_size as u64;
    let off = offsets(&s.fd)?;
    let rx: Ring<libc::xdp_desc> = Ring::map(
        &s.fd,
        &off.rx,
        rx_size,
        libc::XDP_PGOFF_RX_RING as u64,
        Role::Consumer,
    )?;
    let rx = rx.pending().iter().map(|d| d.addr & !(fs - 1)).collect();
    let tx = match has_tx {
        true => {
            let t: Ring<libc::xdp_desc> = Ring::map(
                &s.fd,
                &off.tx,
                tx_size,
                libc::XDP_PGOFF_TX_RING as u64,
                Role::Producer,
            )?;
            t.pending().iter().map(|d| d.addr & !(fs - 1)).collect()
        }
        false => Vec::new(),
    };
    Ok((rx, tx))
}

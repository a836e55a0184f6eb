//! The new rvsd's side of a hand-over for AF_XDP ports
//! (`docs/design/hot-upgrade.md` steps 5 and 8): the port's descriptors
//! are checked and its UMEM and rings mapped when they arrive, while the
//! running rvsd still forwards ([`prepare`]); the pools come at the freeze
//! ([`pool_in`]) and are applied at the cut-over, when each dormant worker
//! re-reads its rings' indices (`dormant.rs`).
//! The XDP program, its maps (steering, fast path) and the link stay as
//! the running rvsd left them: the HELLO checked that the program's ABI,
//! the maps' layouts and the steering rules are this binary's.

use std::os::fd::OwnedFd;

use rvs_io::af_xdp::{XdpManifest, XdpPoolState, XdpPrepared};
use rvs_io::fdpass::Frame;
use rvs_io::{XdpConf, XdpPort};

use crate::config::{Config, FastPathConf};
use crate::store::PortDef;

/// Validates and maps AF_XDP port `p` (`def`) from its manifest and
/// descriptors (after the lock and TAP): nothing runs on it yet.
pub(super) fn prepare(
    conf: &Config,
    p: usize,
    def: &PortDef,
    manifest: &[u8],
    fds: Vec<OwnedFd>,
) -> Result<XdpPrepared, String> {
    let n = conf
        .netif
        .get(p)
        .ok_or_else(|| format!("port {p} is not in this configuration"))?;
    let m = XdpManifest::decode(manifest).map_err(|e| format!("{}: {e}", def.name))?;
    let xc = XdpConf {
        port: p as u16,
        workers: conf.workers.max(1),
        ..super::ports::xdp_conf(n, conf.pipeline.fast_path == FastPathConf::Xdp)
    };
    XdpPort::prepare(&def.iface, &xc, &m, fds).map_err(|e| format!("{}: {e}", def.name))
}

/// A POOL_STATE frame: the port index (`u16` LE) and its pools, put in
/// `pools` by port.
pub(super) fn pool_in(f: &Frame, pools: &mut [Option<XdpPoolState>]) -> Result<(), String> {
    let (p, st) = f
        .payload
        .split_first_chunk::<2>()
        .ok_or("a UMEM pool state without its port")?;
    let p = usize::from(u16::from_le_bytes(*p));
    let st = XdpPoolState::decode(st).map_err(|e| format!("port {p}: {e}"))?;
    let slot = pools
        .get_mut(p)
        .ok_or_else(|| format!("the UMEM pools of port {p}, which is not configured here"))?;
    *slot = Some(st);
    Ok(())
}

/// Gives each AF_XDP port the UMEM pools the running rvsd froze (its
/// workers are parked: nothing moves them any more).
pub(super) fn apply_pools(
    d: &super::Daemon,
    pools: &mut [Option<XdpPoolState>],
) -> Result<(), String> {
    let opened = d
        .ports
        .opened
        .lock()
        .map_err(|_| "the ports' lock is poisoned")?;
    for (p, port) in opened.iter().enumerate() {
        if let Some(x) = port.xdp() {
            let pool = pools.get_mut(p).and_then(Option::take);
            let pool = pool.ok_or_else(|| format!("port {p}: no UMEM pool state came"))?;
            x.apply_pools(&pool).map_err(|e| format!("port {p}: {e}"))?;
        }
    }
    Ok(())
}

//! The running rvsd's side of a hand-over for its AF_XDP ports
//! (`docs/design/hot-upgrade.md` steps 4, 7 and section 3 (a)).
//!
//! - HELLO: refused on kernels before 6.4 ([`unsupported`]): a second
//!   process cannot map the fill and completion rings of a bound socket.
//! - FDS ([`port_frame`]): the port's lock and TAP as for AF_PACKET, then
//!   what [`rvs_io::XdpPort::export`] gives: the XDP link, program and maps
//!   (`rvs_xsks`, `rvs_addrs`, the fast-path map when `fast_path = "xdp"`:
//!   the fast path keeps forwarding through the hand-over, its entries
//!   stay), the UMEM memfd and every XSK socket (queue × worker), with the
//!   manifest (ring geometry).
//! - FREEZE: each worker releases its last burst and freezes its transmit
//!   halves ([`park_queues`]); once all are parked the hand-over thread
//!   sends each port's pools (free lists, reserves: [`pool_frames`]),
//!   which move at that one point.
//! - Thaw before the successor started: nothing to do, the rings and pools
//!   are as the workers left them.
//! - Recovery after it started (then failed or died): the pools are rebuilt
//!   from the rings ([`reconstruct`], while the workers are still parked),
//!   then each worker re-reads its rings ([`resync_queues`]).

use std::os::fd::{AsFd, OwnedFd};

use super::give::{GiveCtx, PortFrame};
use super::session::Out;
use crate::config::{BackendKind, Config};
use crate::handover::compat::Kind;
use rvs_io::{RxQ, TxQ};

/// The refusal for `conf`'s AF_XDP ports when this kernel cannot hand them
/// over (`supported`: [`rvs_io::af_xdp::handover_supported`]).
pub fn refusal(conf: &Config, supported: Result<(), String>) -> Option<String> {
    let n = conf
        .netif
        .iter()
        .find(|n| n.backend == BackendKind::AfXdp)?;
    let why = supported.err()?;
    Some(format!(
        "{}: af_xdp hand-over needs Linux 6.4 or later (remap of fill/completion rings); \
         restart instead ({why})",
        n.name
    ))
}

/// Why `conf`'s ports cannot switch one worker at a time (`rvsd
/// --takeover --rolling`): an AF_XDP port's fill and completion rings are
/// shared by all its workers (one UMEM pool per queue), so its unit is the
/// port, all workers together (`docs/design/hot-upgrade.md`, section 4).
pub fn no_rolling(conf: &Config) -> Option<String> {
    let n = conf
        .netif
        .iter()
        .find(|n| n.backend != BackendKind::AfPacket)?;
    Some(format!(
        "{}: --rolling needs every port on af_packet; on {} the workers of a port share its \
         fill and completion rings, so they switch together: run rvsd --takeover without --rolling",
        n.name,
        match n.backend {
            BackendKind::AfXdp => "af_xdp",
            _ => "dpdk",
        }
    ))
}

/// Why this daemon cannot hand its AF_XDP ports over on this kernel.
pub fn unsupported(conf: &Config) -> Option<String> {
    if !conf.netif.iter().any(|n| n.backend == BackendKind::AfXdp) {
        return None;
    }
    refusal(conf, rvs_io::af_xdp::handover_supported())
}

/// The FDS frame of AF_XDP port `p`: its lock, its TAP if any, then the
/// port's exported descriptors; the manifest in [`PortFrame::xdp`].
pub fn port_frame(cx: &GiveCtx, p: usize, version: u16) -> Result<Out, String> {
    let n = &cx.conf.netif[p];
    let mut fds: Vec<OwnedFd> = vec![cx.locks[p]
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("{}: the lock: {e}", n.name))?];
    let tap = match cx.taps.get(p).and_then(Option::as_ref) {
        Some(t) => {
            fds.push(
                t.try_clone()
                    .map_err(|e| format!("{}: the TAP: {e}", n.name))?,
            );
            true
        }
        None => false,
    };
    let opened = cx.opened.lock().map_err(|_| "the ports are poisoned")?;
    let x = opened
        .get(p)
        .and_then(rvs_io::Port::xdp)
        .ok_or_else(|| format!("{}: not an AF_XDP port", n.name))?;
    let (m, xfds) = x
        .export()
        .map_err(|e| format!("{}: cannot export the AF_XDP port: {e}", n.name))?;
    fds.extend(xfds);
    let f = PortFrame {
        port: p as u16,
        tap,
        manifest: Vec::new(),
        xdp: m.encode(),
    };
    Ok(Out {
        kind: Kind::FDS.0,
        version,
        payload: serde_json::to_vec(&f).map_err(|e| e.to_string())?,
        fds,
    })
}

/// A worker parking: its last receive bursts released (consumer indices
/// published, frames back in the fill rings), its transmit halves flushed
/// and their free frames given back to the pools.
pub fn park_queues(rx: &mut [RxQ], tx: &mut [TxQ]) {
    for r in rx.iter_mut() {
        if let RxQ::Xdp(r) = r {
            r.release();
        }
    }
    for t in tx.iter_mut() {
        if let TxQ::Xdp(t) = t {
            t.freeze();
        }
    }
}

/// A worker resuming after a successor ran: its rings re-read (after
/// [`reconstruct`] rebuilt the pools).
pub fn resync_queues(rx: &mut [RxQ], tx: &mut [TxQ]) {
    for r in rx.iter_mut() {
        if let RxQ::Xdp(r) = r {
            r.resync();
        }
    }
    for t in tx.iter_mut() {
        if let TxQ::Xdp(t) = t {
            t.resync();
        }
    }
}

/// The POOL_STATE frames, one per AF_XDP port (port index as `u16` LE,
/// then [`rvs_io::af_xdp::XdpPoolState::encode`]); every worker parked.
pub fn pool_frames(cx: &GiveCtx, version: u16) -> Result<Vec<Out>, String> {
    let opened = cx.opened.lock().map_err(|_| "the ports are poisoned")?;
    let mut out = Vec::new();
    for (p, port) in opened.iter().enumerate() {
        let Some(x) = port.xdp() else { continue };
        let st = x
            .freeze()
            .map_err(|e| format!("{}: the UMEM pools: {e}", cx.conf.netif[p].name))?;
        let mut payload = (p as u16).to_le_bytes().to_vec();
        payload.extend_from_slice(&st.encode());
        out.push(Out {
            kind: Kind::POOL_STATE.0,
            version,
            payload,
            fds: Vec::new(),
        });
    }
    Ok(out)
}

/// Rebuilds every AF_XDP port's pools from its rings (the successor ran
/// on them); the workers are parked.
pub fn reconstruct(cx: &GiveCtx) {
    let Ok(opened) = cx.opened.lock() else { return };
    for (p, port) in opened.iter().enumerate() {
        let Some(x) = port.xdp() else { continue };
        match x.reconstruct() {
            Ok(r) => tracing::info!(
                "{}: UMEM pools rebuilt from the rings: {} free, {} in fill, {} received, {} \
                 being sent, {} completed",
                cx.conf.netif[p].name,
                r.free,
                r.fill,
                r.rx,
                r.tx,
                r.comp
            ),
            Err(e) => tracing::error!(
                "{}: cannot rebuild the UMEM pools from the rings: {e}",
                cx.conf.netif[p].name
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(backend: &str) -> Config {
        let text = format!(
            "workers = 1\n[[netif]]\nname = \"dpdk0\"\niface = \"eth9\"\nbackend = \"{backend}\"\n"
        );
        Config::parse(std::path::Path::new("t.toml"), &text).expect("config")
    }

    #[test]
    fn af_xdp_ports_are_refused_on_kernels_before_6_4_naming_why() {
        let old = Err("kernel \"6.1.0-13-amd64\": needs Linux 6.4".to_string());
        let e = refusal(&conf("af_xdp"), old.clone()).expect("refused");
        assert!(
            e.starts_with("dpdk0: af_xdp hand-over needs Linux 6.4 or later (remap of fill/completion rings); restart instead"),
            "{e}"
        );
        assert!(e.contains("6.1.0-13-amd64"), "{e}");
        assert_eq!(refusal(&conf("af_xdp"), Ok(())), None);
        assert_eq!(refusal(&conf("af_packet"), old), None);
    }

    #[test]
    fn rolling_is_refused_on_af_xdp_ports_naming_the_port_and_why() {
        let e = no_rolling(&conf("af_xdp")).expect("refused");
        assert!(
            e.starts_with("dpdk0: --rolling needs every port on af_packet; on af_xdp the workers of a port share its fill and completion rings"),
            "{e}"
        );
        assert!(e.ends_with("run rvsd --takeover without --rolling"), "{e}");
        assert_eq!(no_rolling(&conf("af_packet")), None);
    }
}

//! The ports: what the kernel knows of each interface, taking them over,
//! their exception-path TAP devices and their queues.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use rvs_core::addr::Mac;
use rvs_io::{open_port, Backend, Port, PortConf, Queue, RxChecksum, RxRingKind, Steering};
use rvs_io::{Tap, XdpConf, XdpMode};

use super::DaemonError;
use crate::config::{
    BackendKind, Config, FastPathConf, Netif, RxChecksumConf, RxRingConf, XdpModeConf,
};
use crate::fastpath::FastMaps;
use crate::runtime::{KniDev, Taps};
use crate::store::{PortDef, Store};
use crate::takeover::{self, PortLock, Takeover};

/// Everything rvsd holds of its ports. Dropping it gives them back: the
/// XDP programs and TAPs go, then the takeovers are undone (the workers,
/// which own the queues, must have stopped).
pub(super) struct Ports {
    /// Name, interface, MAC, MTU of each port, in configuration order.
    pub defs: Vec<PortDef>,
    /// The opened ports (their steering), kept until the daemon stops;
    /// shared with the control plane's re-steering hook.
    pub opened: Arc<Mutex<Vec<Port>>>,
    /// Exception-path devices, by port.
    pub taps: Taps,
    /// Undone last, when the queues and TAPs are closed.
    pub takeovers: Vec<Takeover>,
    /// The bonds over these ports.
    pub bonds: Arc<crate::bond::Bonds>,
}

impl Ports {
    /// Carrier switches of the kni devices (for the watchdog); a device
    /// whose descriptor cannot be duplicated is left out, logged.
    pub fn kni_carriers(&self) -> Vec<rvs_io::TapCarrier> {
        self.taps
            .load()
            .iter()
            .flatten()
            .filter_map(|t| {
                let t = t.tap.lock().ok()?;
                t.carrier()
                    .map_err(|e| tracing::error!("health: no carrier switch for {}: {e}", t.name()))
                    .ok()
            })
            .collect()
    }
}

impl Drop for Ports {
    fn drop(&mut self) {
        if let Ok(mut o) = self.opened.lock() {
            o.clear();
        }
        self.taps.store(Arc::new(Vec::new()));
        for t in &mut self.takeovers {
            t.restore();
        }
    }
}

/// Fanout group ids: one per port, derived from the pid so that two daemons
/// in one namespace do not join each other's groups.
fn fanout_id(port: usize) -> u16 {
    ((std::process::id() as u16).wrapping_mul(8)).wrapping_add(port as u16)
}

/// The steering rules of the configuration in `store` for `workers`.
pub(super) fn steering(store: &Store, workers: u16) -> Steering {
    let (pools, rss) = store.steering();
    let v4 = |v: &[rvs_core::addr::Addr]| {
        v.iter()
            .filter(|a| a.is_v4())
            .map(|a| a.v4_bytes())
            .collect()
    };
    let v6 = |v: &[rvs_core::addr::Addr]| v.iter().filter(|a| !a.is_v4()).map(|a| a.0).collect();
    Steering {
        workers,
        pool_v4: v4(&pools),
        rs_v4: v4(&rss),
        pool_v6: v6(&pools),
        rs_v6: v6(&rss),
    }
}

/// What the kernel knows of each configured interface (MAC, MTU).
pub(super) fn discover(conf: &Config) -> Result<Vec<PortDef>, DaemonError> {
    conf.netif
        .iter()
        .map(|n| {
            let mac = rvs_io::iface::mac_of(&n.iface)
                .map_err(|e| DaemonError::port(&n.name, format!("interface {}: {e}", n.iface)))?;
            let mtu = match n.mtu {
                Some(m) => m,
                None => rvs_io::iface::mtu_of(&n.iface)
                    .map_err(|e| DaemonError::port(&n.name, e))? as u16,
            };
            Ok(PortDef {
                name: n.name.clone(),
                iface: n.iface.clone(),
                mac: Mac(mac),
                mtu,
                kni: n.kni,
                slave_of: None,
            })
        })
        .collect()
}

/// Takes every port over; on an error the ones already taken are given back.
/// Every port is locked before any is touched: a port another rvsd holds
/// stops the start with nothing changed.
pub(super) fn take_over(defs: &[PortDef]) -> Result<Vec<Takeover>, DaemonError> {
    let run_dir = takeover::run_dir();
    let mut locks = Vec::new();
    for d in defs {
        locks.push(
            PortLock::acquire(&run_dir, &d.iface).map_err(|e| DaemonError::port(&d.name, e))?,
        );
    }
    let mut takeovers = Vec::new();
    for (d, lock) in defs.iter().zip(locks) {
        takeovers.push(Takeover::take(lock).map_err(|e| DaemonError::port(&d.name, e))?);
        tracing::info!(
            "took over {} as {} (mac {}, mtu {})",
            d.iface,
            d.name,
            d.mac,
            d.mtu
        );
    }
    Ok(takeovers)
}

/// The `<name>.kni` TAP devices of the ports that have one.
pub(super) fn open_taps(defs: &[PortDef]) -> Result<Taps, DaemonError> {
    let mut taps = Vec::new();
    for d in defs {
        if d.kni {
            let name = format!("{}.kni", d.name);
            let t = Tap::open(&name, d.mac.0, d.mtu)
                .map_err(|e| DaemonError::port(&d.name, format!("cannot create {name}: {e}")))?;
            tracing::info!("exception path {name} up");
            taps.push(Some(KniDev::plain(t)));
        } else {
            taps.push(None);
        }
    }
    Ok(Arc::new(ArcSwap::from_pointee(taps)))
}

/// Flow directions each port's XDP fast-path map holds.
pub(super) const FAST_ENTRIES: u32 = 65536;

/// The ports' fast-path maps and interface indexes, when `fast_path = "xdp"`.
pub(super) fn fast_maps(
    conf: &Config,
    defs: &[PortDef],
    opened: &[Port],
) -> Result<Option<FastMaps>, DaemonError> {
    if conf.pipeline.fast_path != FastPathConf::Xdp {
        return Ok(None);
    }
    let mut f = FastMaps::default();
    for (d, p) in defs.iter().zip(opened) {
        let ifindex = rvs_io::iface::if_index(&d.iface)
            .map_err(|e| DaemonError::port(&d.name, format!("interface {}: {e}", d.iface)))?;
        f.ifindex.push(ifindex);
        f.maps.push(p.fast_map());
        if p.backend().contains("native") && has_peer(&d.iface, ifindex) {
            tracing::warn!(
                "{} ({}): native XDP on a device with a peer (veth?): frames the fast path sends on are lost unless the peer has GRO on (ethtool -K PEER gro on) or an XDP program; else use xdp_mode = \"generic\"",
                d.name,
                d.iface
            );
        }
        tracing::info!(
            "{} ({}): XDP fast path for established FNAT flows (up to {FAST_ENTRIES} directions)",
            d.name,
            d.iface
        );
    }
    Ok(Some(f))
}

/// Whether `iface` is one end of a pair (its `iflink` names another device,
/// as a veth's does).
fn has_peer(iface: &str, ifindex: u32) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/iflink"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .is_some_and(|l| l != ifindex)
}

/// The AF_XDP settings of port `port` from its `[[netif]]` section.
pub(super) fn xdp_conf(n: &Netif, fast: bool) -> XdpConf {
    let d = XdpConf::default();
    XdpConf {
        mode: match n.xdp_mode {
            XdpModeConf::Auto => XdpMode::Auto,
            XdpModeConf::Native => XdpMode::Native,
            XdpModeConf::Generic => XdpMode::Generic,
        },
        queues: n.xdp_queues,
        frame_size: n.xdp_frame_size.unwrap_or(d.frame_size),
        frames: n.xdp_frames.unwrap_or(d.frames),
        fill_size: n.xdp_fill_size.unwrap_or(d.fill_size),
        comp_size: n.xdp_comp_size.unwrap_or(d.comp_size),
        rx_size: n.xdp_ring_size.unwrap_or(d.rx_size),
        tx_size: n.xdp_ring_size.unwrap_or(d.tx_size),
        rx_checksum: match n.rx_checksum {
            RxChecksumConf::Verify => RxChecksum::Verify,
            RxChecksumConf::Complete => RxChecksum::Complete,
            RxChecksumConf::Trust => RxChecksum::Trust,
        },
        fast_entries: if fast { FAST_ENTRIES } else { 0 },
        ..d
    }
}

/// The backend settings of port `p`.
fn backend(p: usize, n: &Netif, fast: bool, dpdk: &crate::config::dpdk::DpdkSection) -> Backend {
    match n.backend {
        BackendKind::AfPacket => Backend::AfPacket {
            rx_ring: match n.rx_ring {
                RxRingConf::V2 => RxRingKind::V2,
                RxRingConf::V3 => RxRingKind::V3,
            },
            fanout: fanout_id(p),
        },
        BackendKind::AfXdp => Backend::AfXdp(xdp_conf(n, fast)),
        #[cfg(feature = "dpdk")]
        BackendKind::Dpdk => crate::config::dpdk::backend(n, dpdk),
        // Refused when the configuration was read (config::dpdk::check_dpdk).
        #[cfg(not(feature = "dpdk"))]
        BackendKind::Dpdk => {
            let _ = dpdk;
            unreachable!("{}", crate::config::dpdk::NOT_BUILT)
        }
    }
}

/// Opens every port for `workers` workers, steered by `steering`: the
/// opened ports, and each worker's queues (one per port, in port order).
pub(super) fn open_queues(
    defs: &[PortDef],
    conf: &Config,
    steering: &Steering,
) -> Result<(Vec<Port>, Vec<Vec<Queue>>), DaemonError> {
    let workers = conf.workers;
    let mut per_worker: Vec<Vec<Queue>> = (0..workers).map(|_| Vec::new()).collect();
    let mut opened = Vec::new();
    for (p, (d, n)) in defs.iter().zip(&conf.netif).enumerate() {
        let pc = PortConf {
            // A bond's slave stamps the bond's index on what it receives.
            port: d.slave_of.unwrap_or(p as u16),
            workers,
            backend: backend(
                p,
                n,
                conf.pipeline.fast_path == FastPathConf::Xdp,
                &conf.dpdk,
            ),
        };
        let mut port = open_port(&d.iface, &pc, steering)
            .map_err(|e| DaemonError::port(&d.name, format!("cannot open {}: {e}", d.iface)))?;
        for (w, q) in port.take_queues().into_iter().enumerate() {
            if let Some(v) = per_worker.get_mut(w) {
                v.push(q);
            }
        }
        tracing::info!("{} ({}): {}", d.name, d.iface, port.backend());
        for w in port.warnings() {
            tracing::warn!(
                "{} ({}): {w} (rvsd: leave out xdp_queues in [[netif]] to serve them all)",
                d.name,
                d.iface
            );
        }
        opened.push(port);
    }
    Ok((opened, per_worker))
}

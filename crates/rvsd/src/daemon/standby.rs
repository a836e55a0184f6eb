//! `rvsd --standby -c FILE`: a warm standby (`docs/design/hot-upgrade.md`
//! section 3). It asks the running (active) rvsd for a hand-over like
//! `--takeover` and takes the same steps up to the pre-copy with the same
//! code ([`super::adopt`]: descriptors adopted, daemon built dormant, the
//! tables installed), logs "standby ready", then stays: it follows the
//! active's table and configuration changes ([`handover::standby::follow`])
//! while the active never stops forwarding.
//!
//! When the active dies (its pidfd readable: SIGKILL included) it is
//! promoted: AF_XDP pools rebuilt from the rings once the transmit rings
//! drained (at most [`TX_DRAIN`]), the active's last counters (it reports
//! them and its neighbours every second) added as bases, every worker's
//! rings re-read where the
//! dead process left them, timers re-armed, the workers let go, the port
//! locks and state files taken (this pid), the control socket and metrics
//! served; it logs "standby promoted" and is a normal rvsd from then on.
//! If the promotion fails, the kni devices lose their carrier (routing
//! withdraws the VIPs) and it exits 1. An active that dies before this
//! standby is ready (its pre-copy not complete) cannot be replaced: it
//! exits 1 saying so, and what the operator does then ([`not_ready`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};

use super::adopt::{self, DaemonTaker};
use super::{Daemon, DaemonError};
use crate::config::Config;
use crate::handover::give::GiveCtx;
use crate::handover::session::{self, Timeouts};
use crate::handover::standby::{self as sb, Ended};

/// The longest a promotion waits for the dead active's transmit rings to
/// drain (AF_XDP) before it rebuilds the pools as they are.
const TX_DRAIN: Duration = Duration::from_millis(5);

/// `rvsd --standby -c FILE`: a warm standby of the rvsd serving the same
/// control socket until it dies, then the daemon until a signal.
pub fn standby(path: &Path, conf: &Config) -> Result<(), DaemonError> {
    let fail = |m: String| DaemonError::Standby(m);
    let (s, active) = adopt::connect(conf, true).map_err(fail)?;
    let pid = active.pid();
    let mut k = DaemonTaker::new(conf)?;
    k.latest = Some(vec![None; usize::from(conf.workers)]);
    if adopt::injected("active_dies_early").is_err() {
        let _ = active.kill();
    }
    if let Err(e) = session::take_precopy(&s, &mut k, Timeouts::default()) {
        let dead = active
            .wait_exit(Duration::from_millis(200))
            .unwrap_or(false);
        return Err(fail(not_ready(pid, dead, path, &e.to_string())));
    }
    let conns = k.gates.as_ref().map_or(0, |g| g.conns());
    tracing::info!("standby ready: following the active rvsd (pid {pid}), {conns} connections");
    let term = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        signal_hook::flag::register(sig, term.clone()).map_err(DaemonError::Signal)?;
    }
    match sb::follow(&s, &mut k, &active, &term, &conf.standby) {
        Ok(Ended::ActiveDied) => {}
        Ok(Ended::ActiveStopped) => {
            tracing::info!("the active rvsd (pid {pid}) stopped: this standby stops too");
            return Ok(());
        }
        Ok(Ended::Stopped) => {
            tracing::info!("standby stopping; the active rvsd (pid {pid}) forwards on");
            return Ok(());
        }
        Err(e) => {
            return Err(fail(format!(
                "the session with the active rvsd (pid {pid}) ended: {e}"
            )))
        }
    }
    drop(s);
    let t = Instant::now();
    tracing::warn!("the active rvsd (pid {pid}) died: promoting");
    let counted = k.latest.iter().flatten().filter(|c| c.is_some()).count();
    if counted == 0 {
        tracing::warn!(
            "the active rvsd (pid {pid}) reported no counters (an rvsd before COUNTERS v3, or \
             dead within a second): the counters start from zero"
        );
    }
    let mut d = match promote(&mut k) {
        Ok(d) => d,
        Err(why) => {
            carrier_off(k.daemon.as_ref());
            return Err(fail(format!(
                "promotion after the death of pid {pid} failed (kni carriers dropped): {why}"
            )));
        }
    };
    let (conns, neigh) = k.gates.as_ref().map_or((0, 0), |g| (g.conns(), g.neigh()));
    tracing::info!(
        "standby promoted in {:.1} ms: {conns} connections, {neigh} neighbours, the counters \
         of {counted} worker(s) as of the active's last report, forwarding (the active pid \
         {pid} died)",
        t.elapsed().as_secs_f64() * 1e3
    );
    d.keep_ports = false;
    for tk in &mut d.ports.takeovers {
        if let Err(e) = tk.claim() {
            tracing::warn!("{}: {e}", tk.iface());
        }
    }
    // The active's listening sockets, passed with its ports: clients
    // waiting in their queues are answered here.
    let (control, metrics) = k.passed_listeners();
    let metrics = match metrics {
        Some(l) => Some(l),
        None => super::bind_metrics(conf)?,
    };
    d.serve(conf, control, metrics)?;
    tracing::info!(
        "standby: serving the control socket {:.1} ms after the death of pid {pid}",
        t.elapsed().as_secs_f64() * 1e3
    );
    drop(k);
    d.run_until_signalled(path)
}

/// Why a standby that was not ready (its pre-copy not complete) exits:
/// `dead`, the active died meanwhile (nothing forwards: the operator
/// starts rvsd), else the hand-over failed (the active forwards on).
fn not_ready(pid: u32, dead: bool, path: &Path, e: &str) -> String {
    if !dead {
        return format!("the hand-over from pid {pid}: {e}");
    }
    format!(
        "the active rvsd (pid {pid}) died before this standby was ready (its tables and \
         configuration were not all copied: {e}); this standby did NOT take over and exits: \
         nothing forwards on these ports now. Start rvsd again (rvsd -c {}; it takes back the \
         ports the dead one left) and apply its configuration again (services, addresses: \
         e.g. restart keepalived), then start a new standby",
        path.display()
    )
}

/// The dormant daemon forwarding on the rings as the dead active left
/// them. On `Err` no worker was let go.
fn promote(k: &mut DaemonTaker) -> Result<Daemon, String> {
    adopt::injected("promote")?;
    let d = k.daemon.take().ok_or("no daemon was built")?;
    let gates = k.gates.as_ref().ok_or("no workers were built")?;
    // Its latest counters first: the workers go on from them.
    for c in k.latest.iter_mut().flatten().filter_map(Option::take) {
        gates.counters(c)?;
    }
    let rebuilt = rebuild_pools(&d);
    if let Err(e) = rebuilt.and_then(|()| gates.recover()) {
        k.daemon = Some(d);
        return Err(e);
    }
    gates.go();
    Ok(d)
}

/// Rebuilds every AF_XDP port's pools from its rings, once its transmit
/// rings drained (or [`TX_DRAIN`] passed: frames still in them stay used).
fn rebuild_pools(d: &Daemon) -> Result<(), String> {
    let opened = d
        .ports
        .opened
        .lock()
        .map_err(|_| "the ports are poisoned")?;
    for (p, port) in opened.iter().enumerate() {
        let Some(x) = port.xdp() else { continue };
        let t = Instant::now();
        loop {
            let r = x
                .reconstruct()
                .map_err(|e| format!("port {p}: cannot rebuild the UMEM pools: {e}"))?;
            if r.tx == 0 || t.elapsed() >= TX_DRAIN {
                tracing::info!(
                    "port {p}: UMEM pools rebuilt from the rings: {} free, {} in fill, {} \
                     received, {} being sent, {} completed",
                    r.free,
                    r.fill,
                    r.rx,
                    r.tx,
                    r.comp
                );
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    Ok(())
}

/// A failed promotion: every kni device loses its carrier, so that the
/// routing daemons withdraw the VIPs.
fn carrier_off(d: Option<&Daemon>) {
    for c in d.map(|d| d.ports.kni_carriers()).unwrap_or_default() {
        if let Err(e) = c.set(false) {
            tracing::error!("{}: cannot drop the carrier: {e}", c.name());
        }
    }
}

/// A daemon stopping with a warm standby attached: waits (briefly) until
/// the session told the standby so, lest it promote on ports given back.
pub(super) fn let_go(give: Option<&GiveCtx>) {
    let Some(g) = give.filter(|g| g.standby.load(Ordering::SeqCst) != 0) else {
        return;
    };
    let t = Instant::now();
    while g.busy.load(Ordering::SeqCst) && t.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_not_ready_says_whether_anyone_forwards() {
        let p = Path::new("/etc/rvs/rvs.toml");
        let m = not_ready(42, true, p, "connection lost: closed");
        for part in [
            "the active rvsd (pid 42) died before this standby was ready",
            "connection lost: closed",
            "did NOT take over",
            "nothing forwards on these ports now",
            "Start rvsd again (rvsd -c /etc/rvs/rvs.toml;",
        ] {
            assert!(m.contains(part), "{part}: {m}");
        }
        let m = not_ready(42, false, p, "refused: workers differ");
        assert_eq!(m, "the hand-over from pid 42: refused: workers differ");
    }
}

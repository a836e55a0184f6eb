//! The `rvs-bond` thread: every `miimon_ms` it reads each slave's carrier
//! (`/sys/class/net/<iface>/carrier`, as Linux's miimon) and publishes which
//! slaves carry traffic: mode 0 every slave with carrier; mode 4 those LACP
//! agrees on (it runs each mode 4 bond's LACP machines: LACPDUs in from the
//! workers, out through worker 0).

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvs_io::TapCarrier;

use super::{lacp::LacpRun, Bond, Bonds, CtlFrame};
use crate::runtime::Taps;

/// Whether `iface` has carrier (a missing or down interface has none).
pub fn carrier(iface: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/carrier"))
        .is_ok_and(|s| s.trim() == "1")
}

/// The carrier of each slave of `b`, as a mask.
fn carrier_mask(b: &Bond) -> u32 {
    b.ifaces
        .iter()
        .enumerate()
        .filter(|(k, i)| *k < 32 && carrier(i))
        .fold(0, |m, (k, _)| m | (1 << k))
}

/// Starts `rvs-bond` when there are bonds; it stops when `stop` is set.
/// `taps`: the kni devices, whose bonds' carriers follow the bonds (off
/// while no slave distributes: routing daemons on them withdraw).
pub fn start(
    bonds: &Arc<Bonds>,
    taps: &Taps,
    stop: &Arc<AtomicBool>,
    epoch: Instant,
) -> std::io::Result<()> {
    if bonds.list.is_empty() {
        return Ok(());
    }
    let cur = taps.load();
    let carriers: Vec<Option<TapCarrier>> = bonds
        .list
        .iter()
        .map(|b| {
            let t = cur.get(usize::from(b.port))?.as_ref()?;
            let t = t.tap.lock().ok()?;
            t.carrier()
                .map_err(|e| {
                    tracing::warn!("{}: no carrier switch for {}: {e}", b.conf.name, t.name())
                })
                .ok()
        })
        .collect();
    let Some((ctl_in, ctl_out)) = bonds.thread_ends.lock().ok().and_then(|mut e| e.take()) else {
        return Ok(());
    };
    let (bonds, stop) = (bonds.clone(), stop.clone());
    std::thread::Builder::new()
        .name("rvs-bond".into())
        .spawn(move || run(&bonds, &carriers, &stop, epoch, &ctl_in, &ctl_out))?;
    Ok(())
}

fn run(
    bonds: &Bonds,
    carriers: &[Option<TapCarrier>],
    stop: &AtomicBool,
    epoch: Instant,
    ctl_in: &Receiver<CtlFrame>,
    ctl_out: &SyncSender<CtlFrame>,
) {
    let period = bonds
        .list
        .iter()
        .map(|b| b.conf.miimon_ms)
        .min()
        .unwrap_or(100);
    // LACP wants a look at least every 100 ms (its timers count in seconds).
    let tick = Duration::from_millis(u64::from(period.min(100)));
    let mut lacps: Vec<Option<LacpRun>> = bonds
        .list
        .iter()
        .map(|b| (b.conf.mode == 4).then(|| LacpRun::new(b, epoch.elapsed().as_millis() as u64)))
        .collect();
    let mut last_poll = vec![0u64; bonds.list.len()];
    let mut up = vec![0u32; bonds.list.len()];
    let mut kni_on = vec![true; bonds.list.len()];
    while !stop.load(Relaxed) {
        let now = epoch.elapsed().as_millis() as u64;
        while let Ok(f) = ctl_in.try_recv() {
            let b = bonds.list.iter().position(|b| b.slaves.contains(&f.slave));
            if let Some(Some(l)) = b.and_then(|b| lacps.get_mut(b)) {
                l.receive(f.slave, &f.buf[..usize::from(f.len)], now, ctl_out);
            }
        }
        for (i, b) in bonds.list.iter().enumerate() {
            if now >= last_poll[i] + u64::from(b.conf.miimon_ms) || last_poll[i] == 0 {
                last_poll[i] = now.max(1);
                let m = carrier_mask(b);
                if m != up[i] {
                    log_change(b, up[i], m);
                    up[i] = m;
                }
                if let Some(Some(l)) = lacps.get_mut(i) {
                    l.link(m, now);
                }
            }
            match lacps.get_mut(i) {
                Some(Some(l)) => {
                    l.tick(now, ctl_out);
                    let (c, d) = l.masks();
                    b.shared.collecting.store(c, Relaxed);
                    b.shared.distributing.store(d, Relaxed);
                    l.publish(b, up[i]);
                }
                _ => {
                    b.shared.collecting.store(up[i], Relaxed);
                    b.shared.distributing.store(up[i], Relaxed);
                    publish_carrier(b, up[i]);
                }
            }
            let on = b.shared.distributing.load(Relaxed) != 0;
            if on != kni_on[i] {
                kni_on[i] = on;
                kni_carrier(b, carriers.get(i).and_then(Option::as_ref), on);
            }
        }
        std::thread::sleep(tick);
    }
}

/// The bond's kni carrier `on` or off (no slave distributes).
fn kni_carrier(b: &Bond, c: Option<&TapCarrier>, on: bool) {
    tracing::info!(
        "{}: {} slave distributes{}",
        b.conf.name,
        if on { "a" } else { "no" },
        match (c, on) {
            (Some(_), true) => "; kni carrier on",
            (Some(_), false) => "; kni carrier off",
            _ => "",
        }
    );
    if let Some(Err(e)) = c.map(|c| c.set(on)) {
        tracing::warn!("{}: cannot switch the kni carrier: {e}", b.conf.name);
    }
}

fn log_change(b: &Bond, old: u32, new: u32) {
    for (k, n) in b.names.iter().enumerate().take(32) {
        let (was, is) = (old & (1 << k) != 0, new & (1 << k) != 0);
        if was != is {
            tracing::info!(
                "{}: slave {n} ({}) carrier {}",
                b.conf.name,
                b.ifaces[k],
                if is { "up" } else { "down" }
            );
        }
    }
}

/// Mode 0: the slaves' rows are their carriers.
fn publish_carrier(b: &Bond, up: u32) {
    if let Ok(mut s) = b.shared.slaves.lock() {
        for (k, st) in s.iter_mut().enumerate().take(32) {
            st.up = up & (1 << k) != 0;
        }
    }
}

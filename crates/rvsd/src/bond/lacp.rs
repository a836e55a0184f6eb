//! Mode 4: a bond's LACP machines (rvs-core's sans-IO [`Lacp`]) as
//! `rvs-bond` drives them: carriers and LACPDUs in, LACPDUs out through
//! worker 0 (each with its slave's own MAC as source), masks and per-slave
//! rows published.

use std::sync::mpsc::SyncSender;

use rvs_api::{LacpEnd, SlaveLacpInfo};
use rvs_core::addr::Mac;
use rvs_core::bond::{Lacp, LacpConf, PortInfo, XmitHash};

use super::{Bond, CtlFrame, CTL_FRAME};
use crate::config::{LacpRate, XmitHashConf};

/// The core's transmit hash for the configured one.
pub fn xmit_policy(x: XmitHashConf) -> XmitHash {
    match x {
        XmitHashConf::Layer2 => XmitHash::Layer2,
        XmitHashConf::Layer23 => XmitHash::Layer23,
        XmitHashConf::Layer34 => XmitHash::Layer34,
    }
}

/// One mode 4 bond's LACP.
pub struct LacpRun {
    lacp: Lacp,
    /// The slaves' port indexes (slave k of the machines).
    slaves: Vec<u16>,
}

fn queue(out: &SyncSender<CtlFrame>, slave: u16, f: &[u8]) {
    let len = f.len().min(CTL_FRAME);
    let mut c = CtlFrame {
        slave,
        len: len as u8,
        buf: [0; CTL_FRAME],
    };
    c.buf[..len].copy_from_slice(&f[..len]);
    // Full: worker 0 is stalled; the periodic machine sends again.
    let _ = out.try_send(c);
}

impl LacpRun {
    /// The machines of `b`'s slaves at `now` (ms). The key is the bond's
    /// port index plus one (the same on every slave of the bond).
    pub fn new(b: &Bond, now: u64) -> LacpRun {
        let conf = LacpConf {
            system_priority: b.conf.system_priority,
            system_mac: b.mac,
            key: b.port + 1,
            fast: b.conf.lacp_rate == LacpRate::Fast,
            active: b.conf.lacp_active,
            fallback: b.conf.lacp_fallback,
        };
        LacpRun {
            lacp: Lacp::new(conf, &b.macs, now),
            slaves: b.slaves.clone(),
        }
    }

    /// A Slow Protocols frame from slave (port index) `slave`; a Marker
    /// answer goes to `out`.
    pub fn receive(&mut self, slave: u16, frame: &[u8], now: u64, out: &SyncSender<CtlFrame>) {
        let Some(k) = self.slaves.iter().position(|&s| s == slave) else {
            return;
        };
        if let Ok(Some(answer)) = self.lacp.receive(k, frame, now) {
            queue(out, slave, &answer);
        }
    }

    /// The slaves' carriers (bit k: the k-th slave).
    pub fn link(&mut self, up: u32, now: u64) {
        for k in 0..self.slaves.len().min(32) {
            self.lacp.link(k, up & (1 << k) != 0, now);
        }
    }

    /// Runs the timers; LACPDUs to send go to `out`.
    pub fn tick(&mut self, now: u64, out: &SyncSender<CtlFrame>) {
        let slaves = &self.slaves;
        self.lacp.tick(now, &mut |k, f| {
            if let Some(&s) = slaves.get(k) {
                queue(out, s, f);
            }
        });
    }

    /// (collecting, distributing).
    pub fn masks(&self) -> (u32, u32) {
        self.lacp.masks()
    }

    /// Publishes the slaves' rows for `rvsip link show`.
    pub fn publish(&self, b: &Bond, up: u32) {
        let Ok(mut s) = b.shared.slaves.lock() else {
            return;
        };
        for (k, st) in s.iter_mut().enumerate().take(self.slaves.len().min(32)) {
            st.up = up & (1 << k) != 0;
            let i = self.lacp.info(k);
            st.lacp = Some(SlaveLacpInfo {
                mux: i.mux.name().to_string(),
                rx: i.rx.name().to_string(),
                actor: end(&i.actor),
                partner: end(&i.partner),
                pdu_rx: i.lacpdu_rx,
                pdu_tx: i.lacpdu_tx,
                pdu_bad: i.lacpdu_bad,
            });
        }
    }
}

fn end(p: &PortInfo) -> LacpEnd {
    LacpEnd {
        system: Mac(p.system).to_string(),
        system_priority: p.system_priority,
        port: p.port,
        port_priority: p.port_priority,
        key: p.key,
        state: p.state,
    }
}

//! lacp-probe: rvs-core's LACP machines ([`rvs_core::bond::Lacp`]) on real
//! interfaces, through rvs-io's AF_PACKET queues: the 802.1AX peer of a real
//! switch in the lab (`tests/lacp_ovs.rs` runs it against Open vSwitch).
//!
//! `lacp-probe [--slow] [--passive] [--key K] [--ctl DIR] [--secs S] [--marker] IFACE...`
//!
//! Slave `i` is the `i`-th interface (port number `i + 1`, LACPDUs from its
//! own MAC); the system id is the first interface's MAC. Carrier is read
//! from `/sys/class/net/<iface>/carrier` every 100 ms. While the file
//! `DIR/mute-<i>` exists, slave `i` sends nothing (it goes silent).
//!
//! Output, one line each: `state t=<ms> masks=<collecting>/<distributing>`
//! followed by ` | s<i> <rx state> <mux state> <selection> actor <state>
//! partner <system> key <k> port <p> state <state> rx <n> tx <n> bad <n>
//! marker <n>` per slave, at start and whenever something but a counter
//! changes; `lacpdu <i> <hex>` for the first LACPDU received on each slave;
//! `bad <i> <error>` for each refused slow-protocols frame. With `--marker`,
//! each slave sends one Marker Information frame (transaction id = slave
//! index + 1) after its first LACPDU arrives, and prints `marker-response
//! <i> <transaction>` for each Marker Response it gets.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rvs_core::bond::pdu::{build_marker_info, MarkerPdu, ETHERTYPE, MARKER_RESPONSE};
use rvs_core::bond::{Lacp, LacpConf, SlaveLacp};
use rvs_io::af_packet::{wait_any, AfPacketConf, AfPacketQueue};

struct Args {
    fast: bool,
    active: bool,
    key: u16,
    ctl: Option<PathBuf>,
    secs: u64,
    marker: bool,
    ifaces: Vec<String>,
}

fn usage() -> ! {
    eprintln!("usage: lacp-probe [--slow] [--passive] [--key K] [--ctl DIR] [--secs S] IFACE...");
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        fast: true,
        active: true,
        key: 9,
        ctl: None,
        secs: 3600,
        marker: false,
        ifaces: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match x.as_str() {
            "--slow" => a.fast = false,
            "--passive" => a.active = false,
            "--marker" => a.marker = true,
            "--key" => a.key = val().parse().unwrap_or_else(|_| usage()),
            "--ctl" => a.ctl = Some(PathBuf::from(val())),
            "--secs" => a.secs = val().parse().unwrap_or_else(|_| usage()),
            s if s.starts_with('-') => usage(),
            s => a.ifaces.push(s.to_string()),
        }
    }
    if a.ifaces.is_empty() || a.ifaces.len() > 32 {
        usage();
    }
    a
}

fn mac_of(iface: &str) -> [u8; 6] {
    let p = format!("/sys/class/net/{iface}/address");
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let mut m = [0u8; 6];
    for (i, b) in s.trim().split(':').enumerate().take(6) {
        m[i] = u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("{p}: {s:?}: {e}"));
    }
    m
}

fn carrier(iface: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/carrier"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// A slave's line, without the counters (what decides "changed").
fn slave_state(i: usize, s: &SlaveLacp) -> String {
    format!(
        "s{i} {} {} {} actor {:#04x} partner {} key {} port {} state {:#04x}",
        s.rx.name(),
        s.mux.name(),
        s.selected.name(),
        s.actor.state,
        mac(&s.partner.system),
        s.partner.key,
        s.partner.port,
        s.partner.state
    )
}

fn main() {
    let a = args();
    let macs: Vec<[u8; 6]> = a.ifaces.iter().map(|i| mac_of(i)).collect();
    let conf = LacpConf {
        system_priority: 65535,
        system_mac: macs[0],
        key: a.key,
        fast: a.fast,
        active: a.active,
        fallback: false,
    };
    let qconf = AfPacketConf {
        block_count: 2,
        tx_frames: 64,
        ..Default::default()
    };
    let mut queues: Vec<AfPacketQueue> = a
        .ifaces
        .iter()
        .map(|i| AfPacketQueue::open(i, &qconf).unwrap_or_else(|e| panic!("open {i}: {e}")))
        .collect();
    let fds: Vec<_> = queues.iter().map(|q| q.fd()).collect();
    let start = Instant::now();
    let ms = || start.elapsed().as_millis() as u64;
    let mut lacp = Lacp::new(conf, &macs, ms());
    let n = a.ifaces.len();
    let mut seen = vec![false; n];
    let mut last = String::new();
    let mut next_carrier = 0;
    let mut muted = vec![false; n];
    let out = std::io::stdout();
    while start.elapsed() < Duration::from_secs(a.secs) {
        let now = ms();
        if now >= next_carrier {
            next_carrier = now + 100;
            for (i, ifc) in a.ifaces.iter().enumerate() {
                lacp.link(i, carrier(ifc), now);
                muted[i] = a
                    .ctl
                    .as_ref()
                    .is_some_and(|d| d.join(format!("mute-{i}")).exists());
            }
        }
        for (i, q) in queues.iter_mut().enumerate() {
            let mut replies = Vec::new();
            for p in q.rx.burst(64).iter() {
                let f = p.frame();
                if f.get(12..14) != Some(&ETHERTYPE.to_be_bytes()[..]) {
                    continue;
                }
                if let Ok(m) = MarkerPdu::new_checked(&f[14..]) {
                    if m.tlv_type() == MARKER_RESPONSE {
                        let t = m.transaction_id();
                        let _ = writeln!(out.lock(), "marker-response {i} {t}");
                    }
                }
                match lacp.receive(i, f, now) {
                    Ok(Some(r)) => replies.push(r),
                    Ok(None) if !seen[i] && f.get(14) == Some(&1) => {
                        seen[i] = true;
                        let _ = writeln!(out.lock(), "lacpdu {i} {}", hex(f));
                        if a.marker {
                            let t = i as u32 + 1;
                            replies.push(build_marker_info(macs[i], i as u16 + 1, macs[0], t));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = writeln!(out.lock(), "bad {i} {e}");
                    }
                }
            }
            q.rx.release();
            if !muted[i] {
                for r in &replies {
                    q.tx.send(r);
                }
            }
        }
        lacp.tick(now, &mut |s, f| {
            if !muted[s] {
                queues[s].tx.send(f);
            }
        });
        for q in &mut queues {
            q.tx.flush();
        }
        let (c, d) = lacp.masks();
        let mut line = format!("state masks={c:#b}/{d:#b}");
        let mut counters = String::new();
        for i in 0..n {
            let s = lacp.info(i);
            line.push_str(&format!(" | {}", slave_state(i, &s)));
            counters.push_str(&format!(
                " | s{i} rx {} tx {} bad {} marker {}",
                s.lacpdu_rx, s.lacpdu_tx, s.lacpdu_bad, s.marker_rx
            ));
        }
        if line != last {
            let _ = writeln!(out.lock(), "t={now} {line}{counters}");
            let _ = out.lock().flush();
            last = line;
        }
        let wait = lacp
            .next_deadline()
            .min(next_carrier)
            .saturating_sub(ms())
            .min(100);
        let _ = wait_any(&fds, wait as i32);
    }
}

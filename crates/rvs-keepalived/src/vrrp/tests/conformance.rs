//! Conformance tables, holo-style: one instance, a sequence of timed inputs,
//! and for each the exact actions expected, written as text.
//!
//! Input, one per line: `TIME INPUT => OUTPUT; OUTPUT; ...` where INPUT is
//! `startup`, `timeout`, `shutdown`, `link IF up|down`, `script NAME ok|fail`
//! or `advert SRC prio P [int CS] [ttl T] [dst D] [vrid V]` (a valid advert
//! of the instance's version, from SRC), and each OUTPUT is one of
//! `FROM->TO`, `send DST prio P`, `add VIP`, `remove VIP`, `garp VIP xN`,
//! `run SCRIPT ARGS...`, `drop REASON` (a counter that grew), `next T`
//! (when the next timeout is due, `-` for none; checked only if written).
//! The instance under test is 192.168.100.1, VRID 51, priority 150,
//! VIP 192.168.100.254, notify script `notify.sh` and `notify_master`
//! `master.sh`.

use std::net::IpAddr;

use crate::vrrp::packet::{AdvertRepr, IpMeta, Version, MCAST_V4};
use crate::vrrp::{Action, Event, Instance, InstanceConf, Tracked, VirtualAddress};

fn conf() -> InstanceConf {
    let mut c = InstanceConf::new("VI_1", 51, "dpdk0.kni", "192.168.100.1".parse().unwrap());
    c.priority = 150;
    c.virtual_addresses = vec![VirtualAddress::host("192.168.100.254".parse().unwrap())];
    c.notify.master = Some("master.sh".into());
    c.notify.any = Some("notify.sh".into());
    c.track_interfaces = vec![Tracked::new("eth1")];
    c.track_scripts = vec![Tracked::new("chk").weight(-60)];
    c
}

fn render(a: &Action) -> String {
    let list = |v: &[VirtualAddress]| {
        let s: Vec<String> = v.iter().map(|v| v.addr.to_string()).collect();
        s.join(",")
    };
    match a {
        Action::Transition { from, to } => format!("{from}->{to}"),
        Action::SendAdvert { dst, priority, .. } => format!("send {dst} prio {priority}"),
        Action::AddVips(v) => format!("add {}", list(v)),
        Action::RemoveVips(v) => format!("remove {}", list(v)),
        Action::ActivateLaddrs(v) | Action::StandbyLaddrs(v) => {
            let s: Vec<String> = v.iter().map(|a| a.to_string()).collect();
            let what = matches!(a, Action::ActivateLaddrs(_));
            format!(
                "{} {}",
                if what { "activate" } else { "standby" },
                s.join(",")
            )
        }
        Action::Announce { addresses, repeat } => {
            let s: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
            format!("garp {} x{repeat}", s.join(","))
        }
        Action::RunScript { script, args } => {
            let mut s = format!("run {script}");
            for a in args {
                s.push(' ');
                s.push_str(a);
            }
            s
        }
    }
}

/// Builds the payload and metadata of an `advert ...` input.
fn advert(words: &[&str], vi: &Instance) -> (IpMeta, Vec<u8>) {
    let c = vi.conf();
    let src: IpAddr = words[1].parse().unwrap();
    let mut repr = AdvertRepr {
        version: c.version,
        vrid: c.vrid,
        priority: 0,
        interval_cs: c.interval_cs,
        auth: c.auth,
        addresses: c.virtual_addresses.iter().map(|v| v.addr).collect(),
    };
    let mut meta = IpMeta {
        src,
        dst: IpAddr::V4(MCAST_V4),
        ttl: Some(255),
    };
    for kv in words[2..].chunks(2) {
        match kv {
            ["prio", p] => repr.priority = p.parse().unwrap(),
            ["int", i] => repr.interval_cs = i.parse().unwrap(),
            ["ttl", t] => meta.ttl = Some(t.parse().unwrap()),
            ["dst", d] => meta.dst = d.parse().unwrap(),
            ["vrid", v] => repr.vrid = v.parse().unwrap(),
            _ => panic!("bad advert input {words:?}"),
        }
    }
    let payload = repr
        .to_bytes(meta.src, meta.dst, vi.checksum_mode())
        .unwrap();
    (meta, payload)
}

fn drops_grown(before: &crate::vrrp::Drops, after: &crate::vrrp::Drops) -> Vec<String> {
    let b = before.by_reason();
    let a = after.by_reason();
    let grown = a.iter().zip(b.iter()).filter(|(x, y)| x.1 > y.1);
    grown.map(|(x, _)| format!("drop {}", x.0)).collect()
}

/// Runs a table against a fresh instance from `conf`.
fn run_table(conf: InstanceConf, table: &str) {
    let mut vi = Instance::new(conf).unwrap();
    for (n, line) in table.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (input, expected) = line.split_once("=>").expect("INPUT => OUTPUTS");
        let words: Vec<&str> = input.split_whitespace().collect();
        let now: u64 = words[0].parse().unwrap();
        let before = vi.stats().drops;
        let mut out = Vec::new();
        match words[1..] {
            ["startup"] => vi.handle(now, Event::Startup, &mut out),
            ["timeout"] => vi.handle(now, Event::Timeout, &mut out),
            ["shutdown"] => vi.handle(now, Event::Shutdown, &mut out),
            ["link", ifname, s] => vi.handle(
                now,
                Event::Link {
                    ifname,
                    up: s == "up",
                },
                &mut out,
            ),
            ["script", name, s] => vi.handle(
                now,
                Event::Script {
                    name,
                    ok: s == "ok",
                },
                &mut out,
            ),
            ["advert", ..] => {
                let (meta, payload) = advert(&words[1..], &vi);
                vi.handle(
                    now,
                    Event::Advert {
                        meta,
                        payload: &payload,
                    },
                    &mut out,
                );
            }
            _ => panic!("line {}: unknown input {input}", n + 1),
        }
        let mut got: Vec<String> = out.iter().map(render).collect();
        got.extend(drops_grown(&before, &vi.stats().drops));
        let mut want: Vec<String> = Vec::new();
        for item in expected.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            if let Some(t) = item.strip_prefix("next ") {
                let next = vi.next_timeout().map_or("-".to_string(), |t| t.to_string());
                assert_eq!(next, t, "line {}: `{line}`: next timeout", n + 1);
            } else {
                want.push(item.to_string());
            }
        }
        assert_eq!(got, want, "line {}: `{line}`", n + 1);
    }
}

/// RFC 5798 6.4.1 and 6.4.2: start-up, Master_Down_Timer, becoming master,
/// advertising every Advertisement_Interval, keepalived's GARP schedule.
const STARTUP_AND_TAKEOVER: &str = "
0     startup => INIT->BACKUP; remove 192.168.100.254; run notify.sh INSTANCE VI_1 BACKUP 150; next 3414
3413  timeout => next 3414
3414  timeout => BACKUP->MASTER; send 224.0.0.18 prio 150; add 192.168.100.254; garp 192.168.100.254 x5; run master.sh; run notify.sh INSTANCE VI_1 MASTER 150; next 4414
4414  timeout => send 224.0.0.18 prio 150; next 5414
8414  timeout => send 224.0.0.18 prio 150; garp 192.168.100.254 x5; next 9414
9000  shutdown => MASTER->INIT; send 224.0.0.18 prio 0; remove 192.168.100.254; run notify.sh INSTANCE VI_1 STOP 150; next -
9100  advert 192.168.100.2 prio 100 => drop not_running
# A stopped instance can start again.
9500  startup => INIT->BACKUP; remove 192.168.100.254; run notify.sh INSTANCE VI_1 BACKUP 150; next 12914
";

/// RFC 5798 6.4.2: what a backup does with adverts.
const BACKUP_RECEIVES: &str = "
0     startup => INIT->BACKUP; remove 192.168.100.254; run notify.sh INSTANCE VI_1 BACKUP 150
# A higher priority: accepted, the timer restarts from now.
1000  advert 192.168.100.2 prio 200 => next 4414
# Equal priority: accepted too (the backup does not compare addresses).
2000  advert 192.168.100.9 prio 150 => next 5414
# Lower priority with preempt: ignored, the timer keeps running.
3000  advert 192.168.100.3 prio 100 => next 5414
# Priority 0: master in Skew_Time.
4000  advert 192.168.100.2 prio 0 => next 4414
# Bad adverts change nothing and are counted by reason.
4100  advert 192.168.100.2 prio 200 ttl 64 => drop bad_ttl; next 4414
4100  advert 192.168.100.2 prio 200 int 200 => drop interval_mismatch; next 4414
4100  advert 192.168.100.2 prio 200 vrid 52 => drop wrong_vrid; next 4414
4100  advert 192.168.100.1 prio 200 => drop own_advert; next 4414
4100  advert 192.168.100.2 prio 200 dst 192.168.100.1 => drop cast_mismatch; next 4414
4414  timeout => BACKUP->MASTER; send 224.0.0.18 prio 150; add 192.168.100.254; garp 192.168.100.254 x5; run master.sh; run notify.sh INSTANCE VI_1 MASTER 150
";

/// RFC 5798 6.4.3 and keepalived's answers to a lower priority.
const MASTER_RECEIVES: &str = "
0     startup => INIT->BACKUP; remove 192.168.100.254; run notify.sh INSTANCE VI_1 BACKUP 150
3414  timeout => BACKUP->MASTER; send 224.0.0.18 prio 150; add 192.168.100.254; garp 192.168.100.254 x5; run master.sh; run notify.sh INSTANCE VI_1 MASTER 150
# Priority 0 from another router: advertise at once, timer restarts.
3500  advert 192.168.100.2 prio 0 => send 224.0.0.18 prio 150; next 4500
# Lower priority: keepalived answers at once and re-announces.
3600  advert 192.168.100.2 prio 100 => send 224.0.0.18 prio 150; garp 192.168.100.254 x5; next 4500
# Equal priority from a lower address: the same.
3700  advert 192.168.100.0 prio 150 => send 224.0.0.18 prio 150; garp 192.168.100.254 x5
# Equal priority from a higher address: step down.
3800  advert 192.168.100.2 prio 150 => MASTER->BACKUP; remove 192.168.100.254; run notify.sh INSTANCE VI_1 BACKUP 150; next 7214
";

/// Tracking: weight 0 interface → FAULT (priority-0 advert when master),
/// weighted script → priority, recovery → BACKUP.
const TRACKING: &str = "
0     startup => INIT->BACKUP; remove 192.168.100.254; run notify.sh INSTANCE VI_1 BACKUP 150
3414  timeout => BACKUP->MASTER; send 224.0.0.18 prio 150; add 192.168.100.254; garp 192.168.100.254 x5; run master.sh; run notify.sh INSTANCE VI_1 MASTER 150
4000  script chk fail => next 4414
4414  timeout => send 224.0.0.18 prio 90
4500  link eth7 down =>
4600  link eth1 down => MASTER->FAULT; send 224.0.0.18 prio 0; remove 192.168.100.254; run notify.sh INSTANCE VI_1 FAULT 90; next -
4700  advert 192.168.100.2 prio 100 => drop not_running
4800  script chk ok =>
5000  link eth1 up => FAULT->BACKUP; run notify.sh INSTANCE VI_1 BACKUP 150; next 8414
";

/// Fault at start-up: a link already down.
const FAULT_AT_STARTUP: &str = "
0     link dpdk0.kni down =>
10    startup => INIT->FAULT; remove 192.168.100.254; run notify.sh INSTANCE VI_1 FAULT 150; next -
20    link dpdk0.kni up => FAULT->BACKUP; run notify.sh INSTANCE VI_1 BACKUP 150; next 3434
";

#[test]
fn startup_and_takeover() {
    run_table(conf(), STARTUP_AND_TAKEOVER);
}

#[test]
fn backup_receives() {
    run_table(conf(), BACKUP_RECEIVES);
}

#[test]
fn master_receives() {
    run_table(conf(), MASTER_RECEIVES);
}

#[test]
fn tracking() {
    run_table(conf(), TRACKING);
}

#[test]
fn fault_at_startup() {
    run_table(conf(), FAULT_AT_STARTUP);
}

/// VRRPv3 at 0.1 s: Skew_Time from the master's interval, and the
/// interval adopted from a higher-priority master.
const V3_FAST: &str = "
0     startup => INIT->BACKUP; remove 192.168.100.254; run notify.sh INSTANCE VI_1 BACKUP 150; next 341
100   advert 192.168.100.2 prio 200 int 5 => next 270
200   advert 192.168.100.2 prio 0 int 5 => next 220
220   timeout => BACKUP->MASTER; send 224.0.0.18 prio 150; add 192.168.100.254; garp 192.168.100.254 x5; run master.sh; run notify.sh INSTANCE VI_1 MASTER 150; next 320
";

#[test]
fn v3_fast_intervals() {
    let mut c = conf();
    c.version = Version::V3;
    c.interval_cs = 10;
    run_table(c, V3_FAST);
}

/// `lower_prio_no_advert` and no lower-priority GARPs: RFC 5798's silence.
const RFC_SILENT_MASTER: &str = "
0     startup => INIT->BACKUP; remove 192.168.100.254; run notify.sh INSTANCE VI_1 BACKUP 150
3414  timeout => BACKUP->MASTER; send 224.0.0.18 prio 150; add 192.168.100.254; garp 192.168.100.254 x5; run master.sh; run notify.sh INSTANCE VI_1 MASTER 150
3600  advert 192.168.100.2 prio 100 =>
";

#[test]
fn rfc_silent_master() {
    let mut c = conf();
    c.lower_prio_no_advert = true;
    c.garp.lower_prio_repeat = 0;
    run_table(c, RFC_SILENT_MASTER);
}

/// `garp_master_refresh 10` with `garp_master_refresh_repeat 2` and
/// `garp_master_delay 0`: no second burst, then a burst every 10 s.
const GARP_REFRESH: &str = "
0      startup => INIT->BACKUP; remove 192.168.100.254; run notify.sh INSTANCE VI_1 BACKUP 150
3414   timeout => BACKUP->MASTER; send 224.0.0.18 prio 150; add 192.168.100.254; garp 192.168.100.254 x1; run master.sh; run notify.sh INSTANCE VI_1 MASTER 150
13414  timeout => send 224.0.0.18 prio 150; garp 192.168.100.254 x2
23414  timeout => send 224.0.0.18 prio 150; garp 192.168.100.254 x2; next 24414
";

#[test]
fn garp_refresh() {
    let mut c = conf();
    c.garp.master_delay_ms = 0;
    c.garp.master_repeat = 1;
    c.garp.refresh_ms = 10_000;
    c.garp.refresh_repeat = 2;
    run_table(c, GARP_REFRESH);
}

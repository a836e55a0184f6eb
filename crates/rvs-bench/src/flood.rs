//! `rvs-bench flood` (root): legitimate traffic under attack. The tutorial's
//! FNAT two-arm service (VIP 10.0.0.100:80, local address 192.168.100.200,
//! two nginx real servers); on the WAN bridge a client runs wrk (keep-alive)
//! and an attacker namespace runs a bounded flood with hping3 (at most
//! `--pps` packets per second for `--seconds`, to the VIP only). rvsd's
//! worker is pinned to CPU 1, wrk and hping3 to CPU 0. For each flood:
//! wrk's rate during the flood as a share of its rate without, flood
//! packets that reached the real servers (their kernels' TCP passive opens
//! and SYN cookies sent), local ports in use after, rvsd's resident memory
//! before and after, and the requests (new connections) served in the 5 s
//! after the flood ended.

use std::process::Output;
use std::time::{Duration, Instant};

use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;

use crate::e2e::measure::{parse_wrk, vm_rss_kb};

const VIP: &str = "10.0.0.100";

/// Arguments of `rvs-bench flood`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Flood packets per second at most.
    #[arg(long, default_value_t = 50_000)]
    pps: u32,
    /// Seconds of each flood (and of each wrk run).
    #[arg(long, default_value_t = 8)]
    seconds: u32,
    /// rvsd backend.
    #[arg(long, default_value = "af_packet")]
    backend: String,
    /// Only these floods (comma-separated names; default: all).
    #[arg(long)]
    only: Option<String>,
    /// rvsadm arguments applied to the service before measuring, e.g. "-j enable"
    /// once the SYN proxy exists (split on spaces, appended to `-E -t VIP:80 -s rr`).
    #[arg(long)]
    service_flags: Option<String>,
}

/// A flood: its name and hping3's arguments (before the rate and count).
struct Flood {
    name: &'static str,
    what: &'static str,
    args: &'static [&'static str],
}

const FLOODS: &[Flood] = &[
    Flood {
        name: "syn",
        what: "spoofed SYNs to VIP:80",
        args: &["-S", "-p", "80", "--rand-source"],
    },
    Flood {
        name: "ack",
        what: "spoofed ACKs (random sequence numbers) to VIP:80",
        args: &["-A", "-p", "80", "--rand-source"],
    },
    Flood {
        name: "udp",
        what: "spoofed UDP to ever-changing ports of the VIP",
        args: &["-2", "-p", "++1", "--rand-source"],
    },
    Flood {
        name: "frag",
        what: "spoofed fragmented UDP (1,000-byte datagrams split by hping3 -f)",
        args: &["-2", "-f", "-d", "1000", "-p", "53", "--rand-source"],
    },
    Flood {
        name: "one-source",
        what: "SYNs from one source (the attacker's own address)",
        args: &["-S", "-p", "80"],
    },
];

/// The lab: client 10.0.0.48 and attacker 10.0.0.66 on the WAN bridge with
/// rvsd's dpdk1; rs1, rs2 on the LAN bridge with dpdk0.
fn build(backend: &str) -> (Lab, Rvsd) {
    let mut lab = Lab::new();
    for n in ["client", "attacker", "wsw", "lb", "sw", "rs1", "rs2"] {
        lab.add_ns(n);
    }
    lab.veth("client", "eth0", "wsw", "p-client");
    lab.veth("attacker", "eth0", "wsw", "p-attacker");
    lab.veth("lb", "wan", "wsw", "p-lb");
    lab.veth("lb", "lan", "sw", "p-lb");
    lab.veth("rs1", "eth0", "sw", "p-rs1");
    lab.veth("rs2", "eth0", "sw", "p-rs2");
    for (ns, ports) in [
        ("wsw", ["p-client", "p-attacker", "p-lb"]),
        ("sw", ["p-lb", "p-rs1", "p-rs2"]),
    ] {
        lab.must_in(ns, &["ip", "link", "add", "br0", "type", "bridge"]);
        for p in ports {
            lab.must_in(ns, &["ip", "link", "set", p, "master", "br0"]);
        }
        lab.must_in(ns, &["ip", "link", "set", "br0", "up"]);
    }
    for (ns, a) in [
        ("client", "10.0.0.48/16"),
        ("attacker", "10.0.0.66/16"),
        ("rs1", "192.168.100.2/24"),
        ("rs2", "192.168.100.3/24"),
    ] {
        lab.must_in(ns, &["ip", "addr", "add", a, "dev", "eth0"]);
    }
    lab.nginx("rs1", "rs1");
    lab.nginx("rs2", "rs2");
    let opts = RvsdOpts {
        backend: backend.to_string(),
        conn_capacity: 1 << 20,
        cpus: vec![1],
        ..Default::default()
    };
    let r = Rvsd::start(&mut lab, &[("dpdk0", "lan"), ("dpdk1", "wan")], &opts);
    // The tutorial's FNAT two-arm commands.
    r.ok("rvsip", &["addr", "add", "10.0.0.100/32", "dev", "dpdk1"]);
    r.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]);
    r.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    r.ok("rvsadm", &["-A", "-t", "10.0.0.100:80", "-s", "rr"]);
    for rs in ["192.168.100.2", "192.168.100.3"] {
        r.ok("rvsadm", &["-a", "-t", "10.0.0.100:80", "-r", rs, "-b"]);
    }
    r.ok(
        "rvsadm",
        &[
            "--add-laddr",
            "-z",
            "192.168.100.200",
            "-t",
            "10.0.0.100:80",
            "-F",
            "dpdk0",
        ],
    );
    (lab, r)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// wrk for `secs` from the client (CPU 0): requests per second.
fn wrk(lab: &Lab, secs: u32) -> f64 {
    let o = lab.exec(
        "client",
        &[
            "taskset",
            "-c",
            "0",
            "wrk",
            "-t1",
            "-c32",
            &format!("-d{secs}s"),
            "--latency",
            &format!("http://{VIP}/"),
        ],
    );
    parse_wrk(&text(&o)).map_or(0.0, |r| r.rps)
}

/// The real servers' TCP passive opens plus SYN cookies sent (nstat).
fn rs_syns(lab: &Lab) -> u64 {
    ["rs1", "rs2"]
        .iter()
        .map(|ns| {
            let o = lab.exec(
                ns,
                &["nstat", "-az", "TcpPassiveOpens", "TcpExtSyncookiesSent"],
            );
            text(&o)
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// Local ports in use (`sa_used` of `rvsip addr show` for the local address).
fn ports_used(r: &Rvsd) -> u64 {
    let s = r.ok("rvsip", &["addr", "show"]);
    s.split_whitespace()
        .skip_while(|w| *w != "sa_used")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// New connections (curl) served in `secs` right after a flood: (ok, all).
fn served_after(lab: &Lab, secs: u64) -> (u32, u32) {
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut ok, mut all) = (0, 0);
    while Instant::now() < end {
        let o = lab.exec(
            "client",
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                "1",
                &format!("http://{VIP}/"),
            ],
        );
        all += 1;
        if o.status.success() {
            ok += 1;
        }
    }
    (ok, all)
}

/// The flood in the background (attacker, CPU 0); returns its lab index.
fn start_flood(lab: &mut Lab, f: &Flood, pps: u32, secs: u32) -> usize {
    let interval = format!("u{}", (1_000_000 / pps.max(1)).max(1));
    let count = (u64::from(pps) * u64::from(secs)).to_string();
    let mut cmd: Vec<&str> = vec!["taskset", "-c", "0", "hping3", "-q"];
    cmd.extend_from_slice(f.args);
    cmd.extend_from_slice(&["-i", &interval, "-c", &count, VIP]);
    lab.spawn("attacker", &format!("flood-{}", f.name), &cmd, &[])
}

/// `rvs-bench flood`.
pub fn run(a: Args) -> i32 {
    if !rvs_e2e::is_root() {
        eprintln!("rvs-bench flood needs root (network namespaces)");
        return 1;
    }
    rvs_e2e::require_tools(&["wrk", "hping3", "nstat", "curl", "nginx", "taskset"]);
    println!(
        "backend {}; floods at most {} packets/s for {} s; wrk -t1 -c32 keep-alive; rvsd worker on CPU 1, load on CPU 0",
        a.backend, a.pps, a.seconds
    );
    println!("flood       wrk alone  under flood  share  reached RS  ports after  RSS before/after (MiB)  served in 5 s after");
    let only: Option<Vec<&str>> = a.only.as_deref().map(|s| s.split(',').collect());
    for f in FLOODS {
        if only.as_ref().is_some_and(|o| !o.contains(&f.name)) {
            continue;
        }
        // A fresh lab per flood: nothing left over from the previous one.
        let (mut lab, r) = build(&a.backend);
        if let Some(flags) = &a.service_flags {
            let mut args = vec!["-E", "-t", "10.0.0.100:80", "-s", "rr"];
            args.extend(flags.split_whitespace());
            r.ok("rvsadm", &args);
        }
        let pid = lab.proc(r.index).pid();
        let alone = wrk(&lab, a.seconds);
        let rss0 = vm_rss_kb(pid).unwrap_or(0);
        let syns0 = rs_syns(&lab);
        let fl = start_flood(&mut lab, f, a.pps, a.seconds);
        std::thread::sleep(Duration::from_millis(300));
        let under = wrk(&lab, a.seconds.saturating_sub(1).max(1));
        let p = lab.proc(fl);
        let _ = p.wait_exit(Duration::from_secs(u64::from(a.seconds) + 10));
        let reached = rs_syns(&lab).saturating_sub(syns0);
        let ports = ports_used(&r);
        let served = served_after(&lab, 5);
        let rss1 = vm_rss_kb(pid).unwrap_or(0);
        println!(
            "{:<10}  {:>9.0}  {:>11.0}  {:>4.0} %  {:>10}  {:>11}  {:>10.1} / {:<10.1}  {}/{}",
            f.name,
            alone,
            under,
            if alone > 0.0 {
                100.0 * under / alone
            } else {
                0.0
            },
            reached,
            ports,
            rss0 as f64 / 1024.0,
            rss1 as f64 / 1024.0,
            served.0,
            served.1
        );
        eprintln!(
            "{} ({}): rvsip -s link show:\n{}",
            f.name,
            f.what,
            r.ok("rvsip", &["-s", "link", "show"])
        );
    }
    0
}

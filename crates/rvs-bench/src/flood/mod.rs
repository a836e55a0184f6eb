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
//!
//! `--lb kernel` puts the kernel in rvsd's place (nftables DNAT and SNAT,
//! conntrack, the real servers' own SYN cookies): the same floods against
//! what Linux does alone. `--control` first aims each flood at a sink
//! namespace on the same bridge, which drops it: wrk's rate then shows what
//! the generator alone takes from the load core, so the two shares separate
//! the load balancer's part from the machine's.

pub mod gen;
mod lab;

use std::process::Output;
use std::time::{Duration, Instant};

use rvs_e2e::Lab;

use crate::e2e::measure::{parse_wrk, vm_rss_kb};
use lab::{Lb, LbKind, ATTACKER, SINK, VIP};

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
    /// The load balancer: rvsd, or the kernel (nftables DNAT + SNAT).
    #[arg(long, value_enum, default_value_t = LbKind::Rvs)]
    lb: LbKind,
    /// Also run each flood against a sink namespace (no load balancer on
    /// the path) and report wrk's share then.
    #[arg(long)]
    control: bool,
}

/// A flood: its name and what the generator sends.
struct Flood {
    name: &'static str,
    what: &'static str,
    kind: gen::Kind,
}

const FLOODS: &[Flood] = &[
    Flood {
        name: "syn",
        what: "spoofed SYNs to VIP:80",
        kind: gen::Kind::Syn,
    },
    Flood {
        name: "ack",
        what: "spoofed ACKs (random sequence and ack numbers) to VIP:80",
        kind: gen::Kind::Ack,
    },
    Flood {
        name: "udp",
        what: "spoofed 64-byte UDP to ever-changing ports of the VIP",
        kind: gen::Kind::Udp,
    },
    Flood {
        name: "frag",
        what: "spoofed fragments (halves of 1,000-byte UDP datagrams) to the VIP",
        kind: gen::Kind::Frag,
    },
    Flood {
        name: "one-source",
        what: "SYNs from one source (the attacker's own address), random ports",
        kind: gen::Kind::OneSource,
    },
];

/// A command's stdout and stderr.
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

/// The flood in the background (attacker, CPU 0) towards `dst`, whose
/// next hop is `(ns, iface)`; returns its lab index.
fn start_flood(lab: &mut Lab, f: &Flood, dst: (&str, &str, &str), a: &Args) -> usize {
    let o = lab.exec(
        dst.1,
        &["cat", &format!("/sys/class/net/{}/address", dst.2)],
    );
    let mac = text(&o).trim().to_string();
    let exe = std::env::current_exe().expect("rvs-bench's own path");
    let (pps, secs) = (a.pps.to_string(), a.seconds.to_string());
    let kind = clap::ValueEnum::to_possible_value(&f.kind)
        .map_or_else(String::new, |v| v.get_name().to_string());
    let cmd = [
        &*exe.to_string_lossy(),
        "flood-gen",
        "--iface",
        "eth0",
        "--dst-mac",
        &mac,
        "--dst",
        dst.0,
        "--src",
        ATTACKER,
        "--kind",
        &kind,
        "--pps",
        &pps,
        "--secs",
        &secs,
        "--cpu",
        "0",
    ];
    lab.spawn(
        "attacker",
        &format!("flood-{}-{}", f.name, dst.0),
        &cmd,
        &[],
    )
}

/// Packets the attacker's interface has sent.
fn sent(lab: &Lab) -> u64 {
    let o = lab.exec(
        "attacker",
        &["cat", "/sys/class/net/eth0/statistics/tx_packets"],
    );
    text(&o).trim().parse().unwrap_or(0)
}

/// What one flood did.
struct Outcome {
    /// Flood packets per second the attacker sent.
    sent_pps: f64,
    /// wrk's requests per second during the flood.
    under: f64,
}

/// Runs `f` towards `dst` with wrk from the client during it.
fn flood(lab: &mut Lab, f: &Flood, dst: (&str, &str, &str), a: &Args) -> Outcome {
    let s0 = sent(lab);
    let t0 = Instant::now();
    let fl = start_flood(lab, f, dst, a);
    std::thread::sleep(Duration::from_millis(300));
    let under = wrk(lab, a.seconds.saturating_sub(1).max(1));
    let p = lab.proc(fl);
    let _ = p.wait_exit(Duration::from_secs(u64::from(a.seconds) + 10));
    let secs = t0
        .elapsed()
        .as_secs_f64()
        .min(f64::from(a.seconds))
        .max(0.1);
    Outcome {
        sent_pps: sent(lab).saturating_sub(s0) as f64 / secs,
        under,
    }
}

/// A share in per cent.
fn pct(x: f64, of: f64) -> f64 {
    if of > 0.0 {
        100.0 * x / of
    } else {
        0.0
    }
}

/// `rvs-bench flood`.
pub fn run(a: Args) -> i32 {
    if !rvs_e2e::is_root() {
        eprintln!("rvs-bench flood needs root (network namespaces)");
        return 1;
    }
    rvs_e2e::require_tools(&["wrk", "nstat", "curl", "nginx", "taskset", "nft"]);
    println!(
        "lb {:?}, backend {}; floods at most {} packets/s for {} s; wrk -t1 -c32 keep-alive; rvsd worker on CPU 1, load on CPU 0",
        a.lb, a.backend, a.pps, a.seconds
    );
    println!("flood       sent pps  wrk alone  under flood  share  share at sink  reached RS  in use after  RSS before/after (MiB)  served in 5 s after");
    let only: Option<Vec<&str>> = a.only.as_deref().map(|s| s.split(',').collect());
    for f in FLOODS {
        if only.as_ref().is_some_and(|o| !o.contains(&f.name)) {
            continue;
        }
        // A fresh lab per flood: nothing left over from the previous one.
        let (mut lab, lb) = lab::build(a.lb, &a.backend);
        if let (Some(flags), Lb::Rvs(r)) = (&a.service_flags, &lb) {
            let mut args = vec!["-E", "-t", "10.0.0.100:80", "-s", "rr"];
            args.extend(flags.split_whitespace());
            r.ok("rvsadm", &args);
        }
        let pid = lb.pid(&mut lab);
        // The previous lab's namespaces are torn down by the kernel in the
        // background: let that finish before anything is timed.
        std::thread::sleep(Duration::from_secs(3));
        let alone = wrk(&lab, a.seconds);
        let control = a
            .control
            .then(|| flood(&mut lab, f, (SINK, "sink", "eth0"), &a).under);
        let rss0 = pid.and_then(vm_rss_kb).unwrap_or(0);
        let syns0 = rs_syns(&lab);
        let o = flood(&mut lab, f, (VIP, "lb", "wan"), &a);
        let reached = rs_syns(&lab).saturating_sub(syns0);
        let in_use = lb.in_use(&lab);
        let served = served_after(&lab, 5);
        let rss1 = pid.and_then(vm_rss_kb).unwrap_or(0);
        println!(
            "{:<10}  {:>8.0}  {:>9.0}  {:>11.0}  {:>4.0} %  {:>13}  {:>10}  {:>12}  {:>10.1} / {:<10.1}  {}/{}",
            f.name,
            o.sent_pps,
            alone,
            o.under,
            pct(o.under, alone),
            control.map_or("-".to_string(), |c| format!("{:.0} %", pct(c, alone))),
            reached,
            in_use,
            rss0 as f64 / 1024.0,
            rss1 as f64 / 1024.0,
            served.0,
            served.1
        );
        if let Lb::Rvs(r) = &lb {
            eprintln!(
                "{} ({}): rvsip -s link show:\n{}\nrvsadm -ln --rate:\n{}",
                f.name,
                f.what,
                r.ok("rvsip", &["-s", "link", "show"]),
                r.ok("rvsadm", &["-ln", "--rate"])
            );
        }
    }
    0
}

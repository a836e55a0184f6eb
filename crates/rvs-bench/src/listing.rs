//! `rvs-bench listing` (root): how long forwarding pauses while `rvsadm -ln`
//! and `rvsadm -lnc` run against a large connection table.
//!
//! In the e2e lab's two-arm topology ([`rvs_e2e::topo::TwoArm`]), rvsd gets a
//! UDP FNAT service `10.0.0.100:7` → rs1 (an `rvs-udp echo`) and a UDP DR
//! service `10.0.0.100:9` → rs2 (nothing answers: the frames only create
//! connections). `rvs-bench listing-fill` sends one datagram per flow to :9
//! from the client on an AF_PACKET ring (distinct source address/port per
//! flow) until rvsd holds `--conns` connections; then `rvs-bench
//! listing-probe` sends one datagram to :7 every millisecond and timestamps
//! the echoes while the phases run: idle, `rvsadm -ln` repeated, `rvsadm -lnc`.
//! For each phase it prints the longest gap between two echoes, the longest
//! round trip and the probes lost. `RVS_BIN_DIR` chooses the rvsd/rvsadm
//! build to measure (another checkout's `target/release`).

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rvs_e2e::bin;
use rvs_e2e::topo::{RvsdOpts, TwoArm};

/// Arguments of `rvs-bench listing`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Connections to fill the table with.
    #[arg(long, default_value_t = 1_000_000)]
    conns: u32,
    /// Worker threads of rvsd.
    #[arg(long, default_value_t = 1)]
    workers: u16,
    /// Backend (af_packet, af_xdp).
    #[arg(long, default_value = "af_packet")]
    backend: String,
    /// Frames per second of the filler.
    #[arg(long, default_value_t = 100_000)]
    fill_pps: u32,
    /// How many times `rvsadm -ln` runs in its phase.
    #[arg(long, default_value_t = 20)]
    ln_runs: u32,
}

/// Arguments of `rvs-bench listing-fill` (started by `listing`).
#[derive(clap::Args, Debug)]
pub struct FillArgs {
    /// Interface to transmit on.
    #[arg(long)]
    iface: String,
    /// Destination MAC (the load balancer's port).
    #[arg(long)]
    dst_mac: String,
    /// Flows: source 10.1.0.0 + i / 50000, port 10000 + i % 50000.
    #[arg(long)]
    flows: u32,
    /// Frames per second.
    #[arg(long)]
    pps: u32,
}

/// Arguments of `rvs-bench listing-probe` (started by `listing`).
#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// Where to send (the FNAT UDP service).
    #[arg(long)]
    target: String,
    /// Stop when this file exists.
    #[arg(long)]
    stop: PathBuf,
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Sends one UDP datagram per flow to 10.0.0.100:9, paced.
pub fn fill(a: FillArgs) -> i32 {
    let (Some(dst_mac), Ok(src_mac), Ok(ifindex)) = (
        crate::e2e::parse_mac(&a.dst_mac),
        rvs_io::iface::mac_of(&a.iface),
        rvs_io::iface::if_index(&a.iface),
    ) else {
        eprintln!(
            "listing-fill: bad MAC {} or interface {}",
            a.dst_mac, a.iface
        );
        return 2;
    };
    let mut tx = match rvs_io::TxRing::open(ifindex, 128, 4096) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("listing-fill: cannot open a TX ring on {}: {e}", a.iface);
            return 2;
        }
    };
    let vip = Ipv4Addr::new(10, 0, 0, 100);
    let base = u32::from(Ipv4Addr::new(10, 1, 0, 0));
    let start = Instant::now();
    let mut i = 0u32;
    while i < a.flows {
        for _ in 0..256 {
            if i >= a.flows {
                break;
            }
            let src = Ipv4Addr::from(base + i / 50_000);
            let sport = 10_000 + (i % 50_000) as u16;
            let f = crate::e2e::udp_frame(64, (src_mac, dst_mac), (src, vip), (sport, 9), i as u16);
            if !tx.send(&f) {
                break;
            }
            i += 1;
        }
        tx.flush();
        let due = start + Duration::from_secs_f64(f64::from(i) / f64::from(a.pps.max(1)));
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
    println!("sent {i} in {:.2} s", start.elapsed().as_secs_f64());
    0
}

/// Sends a numbered datagram every millisecond until the stop file exists;
/// prints `seq sent_ns recv_ns` for every probe (`recv_ns` 0: no echo).
pub fn probe(a: ProbeArgs) -> i32 {
    let sock = match UdpSocket::bind("0.0.0.0:45000").and_then(|s| {
        s.connect(&a.target)?;
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        Ok(s)
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("listing-probe: {e}");
            return 2;
        }
    };
    let Ok(tx) = sock.try_clone() else {
        return 2;
    };
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let stop = a.stop.clone();
    let sender = std::thread::spawn(move || {
        let start = Instant::now();
        let mut sent = Vec::new();
        let mut k = 0u64;
        while !stop.exists() {
            sent.push(unix_ns());
            let _ = tx.send(k.to_string().as_bytes());
            k += 1;
            let due = start + Duration::from_millis(k);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        d.store(true, Ordering::Relaxed);
        sent
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let mut quiet_since = None;
    loop {
        if let Ok(n) = sock.recv(&mut buf) {
            let t = unix_ns();
            let text = String::from_utf8_lossy(&buf[..n]);
            if let Some(seq) = text.split(' ').nth(2).and_then(|s| s.parse::<usize>().ok()) {
                got.push((seq, t));
            }
        }
        if done.load(Ordering::Relaxed) {
            // Late echoes for 200 ms, then done.
            let q = *quiet_since.get_or_insert_with(Instant::now);
            if q.elapsed() > Duration::from_millis(200) {
                break;
            }
        }
    }
    let sent = sender.join().unwrap_or_default();
    let mut recv = vec![0u128; sent.len()];
    for (seq, t) in got {
        if let Some(r) = recv.get_mut(seq) {
            *r = t;
        }
    }
    let mut out = std::io::stdout().lock();
    for (seq, (s, r)) in sent.iter().zip(&recv).enumerate() {
        let _ = writeln!(out, "{seq} {s} {r}");
    }
    0
}

/// What the probe saw during one phase.
#[derive(Debug, Default)]
struct Window {
    max_gap_ms: f64,
    max_rtt_ms: f64,
    p99_rtt_ms: f64,
    over_1ms: usize,
    sent: usize,
    lost: usize,
}

/// Echo gaps and round trips of probes sent in `[from, to]` (ns).
fn window(echoes: &[(u128, u128)], from: u128, to: u128) -> Window {
    let mut w = Window::default();
    let mut arrivals: Vec<u128> = Vec::new();
    let mut rtts: Vec<f64> = Vec::new();
    for &(s, r) in echoes {
        if (from..=to).contains(&s) {
            w.sent += 1;
            if r == 0 {
                w.lost += 1;
            } else {
                rtts.push((r - s) as f64 / 1e6);
            }
        }
        if r != 0 && r >= from {
            arrivals.push(r);
        }
    }
    rtts.sort_unstable_by(f64::total_cmp);
    w.max_rtt_ms = rtts.last().copied().unwrap_or(0.0);
    w.p99_rtt_ms = rtts.get(rtts.len() * 99 / 100).copied().unwrap_or(0.0);
    w.over_1ms = rtts.iter().filter(|&&r| r > 1.0).count();
    arrivals.sort_unstable();
    // Gaps between echoes that arrived in the window, and the one that ends it.
    let mut prev = from;
    for r in arrivals {
        w.max_gap_ms = w.max_gap_ms.max((r - prev) as f64 / 1e6);
        prev = r;
        if r > to {
            break;
        }
    }
    w
}

fn rvsadm(t: &TwoArm, args: &[&str]) -> (f64, usize, bool) {
    let start = Instant::now();
    let o = Command::new(bin("rvsadm"))
        .args(args)
        .env("RVS_SOCKET", &t.socket)
        .stderr(Stdio::piped())
        .output()
        .expect("rvsadm");
    let lines = o.stdout.iter().filter(|&&b| b == b'\n').count();
    if !o.status.success() {
        eprintln!(
            "rvsadm {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    (start.elapsed().as_secs_f64(), lines, o.status.success())
}

fn setup(t: &TwoArm) {
    t.ok("rvsip", &["addr", "add", "10.0.0.100/32", "dev", "dpdk1"]);
    t.ok("rvsip", &["route", "add", "10.0.0.0/8", "dev", "dpdk1"]);
    t.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    t.ok("rvsadm", &["-A", "-u", "10.0.0.100:7", "-s", "rr"]);
    t.ok(
        "rvsadm",
        &["-a", "-u", "10.0.0.100:7", "-r", "192.168.100.2:7", "-b"],
    );
    t.ok(
        "rvsadm",
        &[
            "--add-laddr",
            "-z",
            "192.168.100.200",
            "-u",
            "10.0.0.100:7",
            "-F",
            "dpdk0",
        ],
    );
    t.ok("rvsadm", &["-A", "-u", "10.0.0.100:9", "-s", "rr"]);
    t.ok(
        "rvsadm",
        &["-a", "-u", "10.0.0.100:9", "-r", "192.168.100.3", "-g"],
    );
}

fn conn_count(t: &TwoArm) -> u64 {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(&t.socket) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    match rvs_api::call(&mut s, &rvs_api::Request::Status) {
        Ok(rvs_api::Reply::Status(st)) => st.conns,
        _ => 0,
    }
}

/// Runs the measurement; prints one line per phase.
pub fn run(a: Args) -> i32 {
    let per_worker = (a.conns as usize / a.workers.max(1) as usize) * 3 / 2 + 4096;
    let mut t = TwoArm::new(&RvsdOpts {
        workers: a.workers,
        backend: a.backend.clone(),
        conn_capacity: per_worker,
        extra: "[timeouts]\nudp = 3600\n".into(),
        ..Default::default()
    });
    setup(&t);
    let me = std::env::current_exe()
        .expect("current exe")
        .to_string_lossy()
        .into_owned();
    let udp = bin("rvs-udp").to_string_lossy().into_owned();
    t.lab
        .spawn("rs1", "echo", &[&udp, "echo", "0.0.0.0:7", "rs1"], &[]);
    let mac = t.lab.must_in("lb", &["cat", "/sys/class/net/wan/address"]);
    let flows = a.conns.to_string();
    let pps = a.fill_pps.to_string();
    let start = Instant::now();
    for round in 0..5 {
        let o = t.lab.must_in(
            "client",
            &[
                &me,
                "listing-fill",
                "--iface",
                "eth0",
                "--dst-mac",
                mac.trim(),
                "--flows",
                &flows,
                "--pps",
                &pps,
            ],
        );
        let n = conn_count(&t);
        println!(
            "fill round {round}: {} -> rvsd reports {n} connections",
            o.trim()
        );
        if n >= u64::from(a.conns) {
            break;
        }
    }
    println!("filled in {:.1} s", start.elapsed().as_secs_f64());
    let stop = t.lab.dir.join("probe.stop");
    let stop_s = stop.to_string_lossy().into_owned();
    let p = t.lab.spawn(
        "client",
        "probe",
        &[
            &me,
            "listing-probe",
            "--target",
            "10.0.0.100:7",
            "--stop",
            &stop_s,
        ],
        &[],
    );
    std::thread::sleep(Duration::from_secs(1));
    let mut phases = Vec::new();
    let t0 = unix_ns();
    std::thread::sleep(Duration::from_secs(3));
    phases.push(("idle".to_string(), t0, unix_ns(), String::new()));
    let t0 = unix_ns();
    let mut times = Vec::new();
    for _ in 0..a.ln_runs {
        times.push(rvsadm(&t, &["-ln"]));
    }
    let worst = times.iter().map(|x| x.0).fold(0.0, f64::max);
    let ok = times.iter().all(|x| x.2);
    phases.push((
        format!("rvsadm -ln x{}", a.ln_runs),
        t0,
        unix_ns(),
        format!("longest run {worst:.3} s, all ok {ok}"),
    ));
    std::thread::sleep(Duration::from_secs(1));
    let t0 = unix_ns();
    let (secs, lines, ok) = rvsadm(&t, &["-lnc"]);
    phases.push((
        "rvsadm -lnc".to_string(),
        t0,
        unix_ns(),
        format!("{secs:.2} s, {lines} lines, ok {ok}"),
    ));
    std::thread::sleep(Duration::from_secs(1));
    let _ = std::fs::write(&stop, "");
    let end = Instant::now() + Duration::from_secs(10);
    while t.lab.proc(p).alive() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = t.lab.proc(p).log();
    let mut echoes: Vec<(u128, u128)> = Vec::new();
    for l in BufReader::new(log.as_bytes()).lines().map_while(Result::ok) {
        let v: Vec<u128> = l.split(' ').filter_map(|x| x.parse().ok()).collect();
        if let [_, s, r] = v[..] {
            echoes.push((s, r));
        }
    }
    println!(
        "conns={} workers={} backend={}",
        conn_count(&t),
        a.workers,
        a.backend
    );
    for (name, from, to, note) in phases {
        let w = window(&echoes, from, to);
        println!(
            "{name}: max_rtt_ms={:.2} p99_rtt_ms={:.2} rtt_over_1ms={} max_gap_ms={:.2} probes={} lost={} ({note})",
            w.max_rtt_ms, w.p99_rtt_ms, w.over_1ms, w.max_gap_ms, w.sent, w.lost
        );
    }
    0
}

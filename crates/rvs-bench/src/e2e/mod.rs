//! `rvs-bench e2e`: rvs side by side with the kernel, nftables and HAProxy on
//! real interfaces (veth pairs between network namespaces it creates and
//! removes itself), one JSON object per line.
//!
//! For every load balancer a fresh test bed ([`bed`]) is built: client → lb →
//! switch → two real servers running nginx. Then:
//!
//! - `pps`: a rate sweep ([`sweep`]), interleaved and repeated: `rvs-bench
//!   e2e-gen` in the client (CPU 0) sends 64-byte UDP frames on an AF_PACKET
//!   TX ring at each offered rate of `--rates` (and flat out), over 64
//!   flows, to the VIP (to both RS for plain kernel forwarding); the RS count
//!   what arrives (`rx_packets` of their `eth0`, then an ingress drop).
//!   DPDK testpmd rows ([`testpmd`]) give the I/O floor of the same drivers.
//! - `http-keepalive`, `http-close`: `wrk -t1 --latency` from the client to
//!   nginx (through the load balancer; `direct`: over the switch to rs1).
//! - `memory`, `startup` (rvs only): rvsd's VmRSS with 1,000,000 and
//!   10,000,000 connections of capacity, and the time from starting rvsd to
//!   the first UDP probe (one a millisecond since before the start) arriving
//!   at a real server, with the tutorial configuration applied as fast as
//!   the tools can.
//! - `restart`, `upgrade`, `standby` (rvs only, not in the default list;
//!   [`disruption`]): what a 1 ms ping, a numbered UDP stream and
//!   keep-alive HTTP see across a plain restart of rvsd, a hot upgrade
//!   (`rvsd --takeover`) and SIGKILL of the active with a warm standby
//!   ([`standby`]), after filling its table with `--fill` connections
//!   (issue 14); `upgrade-rolling`: `rvsd --takeover --rolling`, one
//!   worker at a time ([`rolling`]; `--workers 2` to see it); `none`: the
//!   same probers across no event (their noise floor).
//!
//! CPU of the load balancer (see [`bed`] for where things run): for
//! processes (rvsd, haproxy) utime+stime from /proc/<pid>/stat
//! (`lb_cpu_*`); for kernel forwarding and nftables, the busy time of CPU 1
//! from /proc/stat. For every load balancer `cpu1_*` also gives CPU 1's busy
//! time, which includes the kernel's receive work on behalf of a process.
//! Each line carries a `cpu_note` saying what `lb_cpu_*` counts.

pub(crate) mod agent;
pub(crate) mod bed;
pub(crate) mod disruption;
pub(crate) mod measure;
pub(crate) mod pace;
pub(crate) mod rolling;
pub(crate) mod standby;
pub(crate) mod sweep;
pub(crate) mod sweep_report;
pub(crate) mod testpmd;

pub use agent::{gen, sink, GenArgs, SinkArgs};
pub(crate) use agent::{parse_mac, udp_frame};

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bed::{Bed, Lb, RvsdOpts, LB_CPU, LOAD_CPU, UDP_PORT};
use measure::{cpu_secs, CpuSnap};

/// Arguments of `rvs-bench e2e`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// One JSON object per line (otherwise `key=value` lines).
    #[arg(long)]
    json: bool,
    /// Load balancers, in order: kernel, direct, nftables, haproxy,
    /// rvs-<backend>, testpmd-<pmd> (DPDK testpmd MAC forwarding, pps only);
    /// `rvs-af_xdp-fast`: rvs over af_xdp with the XDP fast path.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kernel,direct,nftables,haproxy,rvs-af_packet,rvs-af_xdp,testpmd-af_packet,testpmd-af_xdp"
    )]
    lbs: Vec<String>,
    /// Cases: pps, http-keepalive, http-close, memory, startup; and (rvs
    /// only, not by default) restart, upgrade, standby, none: ping/UDP/HTTP
    /// across a plain restart, a hot upgrade, SIGKILL of the active with a
    /// standby, nothing.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pps,http-keepalive,http-close,memory,startup"
    )]
    cases: Vec<String>,
    /// Seconds of each packet-rate window (after the warm-up).
    #[arg(long, default_value_t = 3.0)]
    pps_secs: f64,
    /// Seconds of warm-up before each packet-rate window.
    #[arg(long, default_value_t = 1.0)]
    warm_secs: f64,
    /// Offered rates of the packet-rate sweep, in frames per second
    /// (k and M suffixes; `max`: as fast as the generator can).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = sweep::parse_rate,
        default_value = "50k,100k,200k,400k,max"
    )]
    rates: Vec<Option<u64>>,
    /// Runs of the packet-rate sweep per configuration, interleaved
    /// (A B C A B C ...); min, median and max are reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 8)]
    http_secs: u64,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    conns: u32,
    /// UDP flows of the generator.
    #[arg(long, default_value_t = 64)]
    flows: u16,
    /// Ethernet frame length of the generator (without FCS).
    #[arg(long, default_value_t = 64)]
    frame: usize,
    /// restart: connections to create in rvsd (one UDP flow each, to a DR
    /// service) before each event.
    #[arg(long, default_value_t = 0)]
    fill: u32,
    /// restart: datagrams per second of the fill (each creates a
    /// connection: rvsd's creation rate, not its forwarding rate, limits it;
    /// frames it drops are sent again in the next round).
    #[arg(long, default_value_t = 100_000)]
    fill_pps: u64,
    /// restart: rvsd's connection-table capacity (per worker).
    #[arg(long, default_value_t = 1 << 20)]
    conn_capacity: usize,
    /// restart, upgrade, upgrade-rolling, standby: rvsd's workers (all on
    /// CPU 1, as the rest of rvsd).
    #[arg(long, default_value_t = 1)]
    workers: u16,
    /// restart: datagrams per second of the numbered UDP stream.
    #[arg(long, default_value_t = 50_000)]
    udp_pps: u64,
    /// restart: keep-alive HTTP connections (a request every 2 ms each).
    #[arg(long, default_value_t = 4)]
    http_conns: u32,
    /// restart: seconds the probers run at least (the event starts 1.5 s
    /// in; they go on until 1.5 s after it ended, at most 300 s more).
    #[arg(long, default_value_t = 6.0)]
    probe_secs: f64,
}

/// Why a measurement has no figure.
#[derive(Debug)]
pub enum E2eError {
    /// Ctrl-C or SIGTERM: stop everything, clean up.
    Interrupted,
    /// The load balancer refused its configuration (e.g. an unknown backend).
    Refused(String),
    /// Anything else.
    Failed(String),
}

impl std::fmt::Display for E2eError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            E2eError::Interrupted => write!(f, "interrupted"),
            E2eError::Refused(s) | E2eError::Failed(s) => write!(f, "{s}"),
        }
    }
}

static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Err(Interrupted) once SIGINT/SIGTERM arrived.
pub fn check_stop() -> Result<(), E2eError> {
    match STOP.get() {
        Some(s) if s.load(Ordering::Relaxed) => Err(E2eError::Interrupted),
        _ => Ok(()),
    }
}

/// Sleeps `d`, returning early with Err(Interrupted) on SIGINT/SIGTERM.
pub fn nap(d: Duration) -> Result<(), E2eError> {
    let end = Instant::now() + d;
    loop {
        check_stop()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// A JSON value of an output line.
enum V {
    S(String),
    N(f64, usize),
    I(u64),
    Null,
}

struct Out {
    json: bool,
}

impl Out {
    fn emit(&self, fields: &[(&str, V)]) {
        let line = if self.json {
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        V::S(s) => serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()),
                        V::N(x, _) if !x.is_finite() => "null".into(),
                        V::N(x, d) => format!("{x:.d$}"),
                        V::I(i) => i.to_string(),
                        V::Null => "null".into(),
                    };
                    format!("\"{k}\":{v}")
                })
                .collect();
            format!("{{{}}}", body.join(","))
        } else {
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v)| match v {
                    V::S(s) => format!("{k}={s}"),
                    V::N(x, d) => format!("{k}={x:.d$}"),
                    V::I(i) => format!("{k}={i}"),
                    V::Null => format!("{k}=-"),
                })
                .collect();
            body.join(" ")
        };
        let mut so = std::io::stdout().lock();
        let _ = writeln!(so, "{line}");
        let _ = so.flush();
    }

    fn error(&self, case: &str, lb: &Lb, e: &E2eError) {
        self.emit(&[
            ("case", V::S(case.into())),
            ("lb", V::S(lb.name())),
            ("error", V::S(e.to_string())),
        ]);
    }
}

fn have(tool: &str) -> bool {
    rvs_e2e::run(&["sh", "-c", &format!("command -v {tool}")])
        .status
        .success()
}

fn per(cpu: Option<f64>, units: f64, scale: f64) -> V {
    match cpu {
        Some(c) if units > 0.0 => V::N(c / units * scale, 3),
        _ => V::Null,
    }
}

/// Runs the benchmark; returns the process exit code.
pub fn run(a: Args) -> i32 {
    if !rvs_e2e::is_root() {
        eprintln!("rvs-bench e2e: needs root (it creates network namespaces)");
        return 2;
    }
    let mut lbs = Vec::new();
    for s in &a.lbs {
        match Lb::parse(s) {
            Some(l) => lbs.push(l),
            None => {
                eprintln!("rvs-bench e2e: unknown load balancer '{s}'");
                return 2;
            }
        }
    }
    const CASES: [&str; 5] = ["pps", "http-keepalive", "http-close", "memory", "startup"];
    let all: Vec<&str> = CASES.iter().chain(&disruption::EVENTS).copied().collect();
    if let Some(c) = a.cases.iter().find(|c| !all.contains(&c.as_str())) {
        eprintln!(
            "rvs-bench e2e: unknown case '{c}' (cases: {})",
            all.join(", ")
        );
        return 2;
    }
    let events: Vec<disruption::Event> = a
        .cases
        .iter()
        .filter_map(|c| disruption::Event::parse(c))
        .collect();
    if u64::from(a.fill) > a.conn_capacity as u64 * 9 / 10 {
        eprintln!(
            "rvs-bench e2e: --fill {} does not fit a table of {} (--conn-capacity): keep it under 90%",
            a.fill, a.conn_capacity
        );
        return 2;
    }
    let mut tools = vec!["ip", "nft", "nginx", "wrk", "taskset", "ss", "sysctl"];
    if !events.is_empty() {
        tools.extend(["ping", "curl"]);
    }
    let missing: Vec<&str> = tools.into_iter().filter(|t| !have(t)).collect();
    if !missing.is_empty() {
        eprintln!(
            "rvs-bench e2e: missing {}: run `bash scripts/deps.sh`",
            missing.join(", ")
        );
        return 2;
    }
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    if ncpu < 2 {
        eprintln!("rvs-bench e2e: needs two CPUs (the load on CPU 0, the load balancer on CPU 1)");
        return 2;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("rvs-bench e2e: cannot handle signal {sig}: {e}");
            return 2;
        }
    }
    let _ = STOP.set(stop);
    // Everything this process starts inherits CPU 0; the load balancer is
    // moved to CPU 1 explicitly.
    let pinned = core_affinity::get_core_ids()
        .and_then(|ids| ids.into_iter().find(|c| c.id == LOAD_CPU))
        .is_some_and(core_affinity::set_for_current);
    if !pinned {
        eprintln!("rvs-bench e2e: cannot pin to CPU {LOAD_CPU}");
        return 2;
    }
    let tck = measure::clk_tck();
    let out = Out { json: a.json };
    let want = |c: &str| a.cases.iter().any(|x| x == c);
    if want("pps") {
        let udp: Vec<Lb> = lbs.iter().filter(|l| l.does_udp()).cloned().collect();
        let plan = sweep::Plan {
            rates: &a.rates,
            repeat: a.repeat.max(1),
            warm: a.warm_secs.max(0.0),
            secs: a.pps_secs.max(0.1),
            flows: a.flows,
            frame: a.frame,
        };
        if let Err(E2eError::Interrupted) = sweep::run(&udp, &plan, tck, &out) {
            eprintln!("rvs-bench e2e: interrupted; namespaces and processes removed");
            return 130;
        }
    }
    for lb in &lbs {
        let mut cases: Vec<&str> = Vec::new();
        for c in ["http-keepalive", "http-close"] {
            if want(c) && lb.does_http() {
                cases.push(c);
            }
        }
        if cases.is_empty() {
            continue;
        }
        if *lb == Lb::Haproxy && !have("haproxy") {
            for c in &cases {
                out.error(
                    c,
                    lb,
                    &E2eError::Failed("haproxy is not installed (scripts/deps.sh)".into()),
                );
            }
            continue;
        }
        if let Err(E2eError::Interrupted) = run_lb(lb, &cases, &a, tck, &out) {
            eprintln!("rvs-bench e2e: interrupted; namespaces and processes removed");
            return 130;
        }
    }
    for lb in lbs.iter().filter(|l| matches!(l, Lb::Rvs(_))) {
        if !(want("memory") || want("startup")) {
            break;
        }
        for cap in [1_000_000usize, 10_000_000] {
            match startup(lb, cap, tck) {
                Ok(s) => {
                    if want("memory") {
                        out.emit(&[
                            ("case", V::S("memory".into())),
                            ("lb", V::S(lb.name())),
                            ("conn_capacity", V::I(cap as u64)),
                            ("vmrss_kb", V::I(s.rss_kb)),
                            ("vmrss_mib", V::N(s.rss_kb as f64 / 1024.0, 1)),
                            ("workers", V::I(1)),
                        ]);
                    }
                    if want("startup") {
                        out.emit(&[
                            ("case", V::S("startup".into())),
                            ("lb", V::S(lb.name())),
                            ("conn_capacity", V::I(cap as u64)),
                            ("first_packet_ms", V::N(s.first_ms, 1)),
                            ("ready_ms", V::N(s.ready_ms, 1)),
                            ("configured_ms", V::N(s.configured_ms, 1)),
                            ("probe_interval_ms", V::I(1)),
                        ]);
                    }
                }
                Err(E2eError::Interrupted) => {
                    eprintln!("rvs-bench e2e: interrupted; namespaces and processes removed");
                    return 130;
                }
                Err(e) => {
                    for c in ["memory", "startup"] {
                        if want(c) {
                            out.emit(&[
                                ("case", V::S(c.into())),
                                ("lb", V::S(lb.name())),
                                ("conn_capacity", V::I(cap as u64)),
                                ("error", V::S(e.to_string())),
                            ]);
                        }
                    }
                    if matches!(e, E2eError::Refused(_)) {
                        break;
                    }
                }
            }
        }
    }
    if !events.is_empty() {
        let bins = rvs_e2e::bin_dir();
        if let Some(b) = ["rvsd", "rvsadm", "rvsip", "rvs-udp", "rvs-keepalive"]
            .iter()
            .find(|b| !bins.join(b).exists())
        {
            eprintln!(
                "rvs-bench e2e: {} not built: cargo build --release --workspace",
                bins.join(b).display()
            );
            return 2;
        }
        if let Err(E2eError::Interrupted) = disruption::run(&lbs, &events, &a, &out) {
            eprintln!("rvs-bench e2e: interrupted; namespaces and processes removed");
            return 130;
        }
    }
    0
}

/// Builds the bed for `lb` and runs `cases` on it, emitting one line per case.
fn run_lb(lb: &Lb, cases: &[&str], a: &Args, tck: f64, out: &Out) -> Result<(), E2eError> {
    let mut bed =
        match Bed::topology(lb).and_then(|mut b| b.start_lb(&RvsdOpts::default()).map(|_| b)) {
            Ok(b) => b,
            Err(e) => {
                check_stop()?;
                for c in cases {
                    out.error(c, lb, &e);
                }
                return Ok(());
            }
        };
    for c in cases {
        let r = match *c {
            "http-keepalive" => http(&mut bed, a, tck, false),
            _ => http(&mut bed, a, tck, true),
        };
        match r {
            Ok(fields) => {
                let mut f = vec![("case", V::S((*c).into())), ("lb", V::S(lb.name()))];
                f.extend(fields);
                f.push(("cpu_note", V::S(lb.cpu_note().into())));
                out.emit(&f);
            }
            Err(E2eError::Interrupted) => return Err(E2eError::Interrupted),
            Err(e) => {
                check_stop()?;
                out.error(c, lb, &e);
            }
        }
    }
    Ok(())
}

/// The load balancer's CPU seconds: its own (the process, or CPU 1 for the
/// kernel's paths) plus the softirq time on the load's CPU. The second term
/// is there because on veth a transmit runs the peer's receive path in the
/// sender's softirq: much of the kernel's forwarding (and of AF_XDP's copy
/// into the UMEM) happens on CPU 0 whatever RPS says, and leaving it out
/// would make the kernel look almost free. It also holds the real servers'
/// receive, the same for every load balancer.
fn lb_cpu(lb: &Lb, cpu1: f64, proc: Option<f64>, soft0: f64) -> Option<f64> {
    match lb {
        Lb::Kernel | Lb::Nftables => Some(cpu1 + soft0),
        Lb::Direct => None,
        _ => proc.map(|p| p + soft0),
    }
}

/// An HTTP case on a running bed.
fn http(
    bed: &mut Bed,
    a: &Args,
    tck: f64,
    close: bool,
) -> Result<Vec<(&'static str, V)>, E2eError> {
    check_stop()?;
    let pid = bed.lb_pid();
    let conns = a.conns.to_string();
    let dur = format!("{}s", a.http_secs);
    let mut cmd = vec![
        "wrk",
        "-t1",
        "-c",
        &conns,
        "-d",
        &dur,
        "--timeout",
        "2s",
        "--latency",
    ];
    if close {
        cmd.extend(["-H", "Connection: close"]);
    }
    cmd.push(bed.url());
    let c0 = CpuSnap::take(LB_CPU, pid);
    let o = bed.lab.exec("client", &cmd);
    let c1 = CpuSnap::take(LB_CPU, pid);
    check_stop()?;
    bed.lb_alive()?;
    let text = String::from_utf8_lossy(&o.stdout);
    let r = measure::parse_wrk(&text).ok_or_else(|| {
        E2eError::Failed(format!(
            "wrk: {}{}",
            bed::last_lines(&text, 3),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    })?;
    let (cpu1, proc, soft0) = cpu_secs(&c0, &c1, tck);
    let dt = c1.at.duration_since(c0.at).as_secs_f64();
    let lb_cpu = lb_cpu(&bed.lb, cpu1, proc, soft0);
    let req = r.requests as f64;
    Ok(vec![
        ("rps", V::N(r.rps, 0)),
        ("p50_ms", V::N(r.p50_ms, 3)),
        ("p99_ms", V::N(r.p99_ms, 3)),
        ("lb_cpu_s_per_100k_req", per(lb_cpu, req, 1e5)),
        ("load_softirq_s_per_100k_req", per(Some(soft0), req, 1e5)),
        ("cpu1_s_per_100k_req", per(Some(cpu1), req, 1e5)),
        ("cpu1_busy", V::N(cpu1 / dt, 2)),
        ("requests", V::I(r.requests)),
        ("errors", V::I(r.errors)),
        ("conns", V::I(u64::from(a.conns))),
        ("secs", V::I(a.http_secs)),
    ])
}

/// What the startup case measured.
struct Startup {
    rss_kb: u64,
    first_ms: f64,
    ready_ms: f64,
    configured_ms: f64,
}

/// Starts rvsd with `cap` connections of capacity while a probe a
/// millisecond goes to the VIP; how long until the first one reaches a real
/// server, and rvsd's VmRSS then.
fn startup(lb: &Lb, cap: usize, _tck: f64) -> Result<Startup, E2eError> {
    let mut bed = Bed::topology(lb)?;
    let exe = std::env::current_exe()
        .map_err(|e| E2eError::Failed(format!("own executable: {e}")))?
        .to_string_lossy()
        .into_owned();
    let port = UDP_PORT.to_string();
    let sinks: Vec<usize> = ["rs1", "rs2"]
        .iter()
        .map(|rs| {
            bed.lab.spawn(
                rs,
                &format!("sink-{rs}"),
                &[&exe, "e2e-sink", "--port", &port, "--timeout-ms", "60000"],
                &[],
            )
        })
        .collect();
    let end = Instant::now() + Duration::from_secs(5);
    while sinks
        .iter()
        .any(|&s| !bed.lab.proc(s).log().starts_with("ready"))
    {
        if Instant::now() > end {
            return Err(E2eError::Failed("UDP sinks did not start".into()));
        }
        nap(Duration::from_millis(10))?;
    }
    let dst_mac = bed.mac("lb", "wan")?;
    let g = bed.lab.spawn(
        "client",
        "probe",
        &[
            &exe,
            "e2e-gen",
            "--iface",
            "eth0",
            "--dst-mac",
            &dst_mac,
            "--src",
            "10.0.0.48",
            "--dst",
            bed::VIP,
            "--port",
            &port,
            "--flows",
            "1",
            "--secs",
            "90",
            "--interval-us",
            "1000",
        ],
        &[],
    );
    nap(Duration::from_millis(300))?;
    if !bed.lab.proc(g).alive() {
        return Err(E2eError::Failed(format!(
            "probe generator exited: {}",
            bed::last_lines(&bed.lab.proc(g).log(), 3)
        )));
    }
    let t0 = bed.start_rvsd_timed(&RvsdOpts { conn_capacity: cap })?;
    let end = Instant::now() + Duration::from_secs(60);
    let mut first: Option<u128> = None;
    while first.is_none() {
        for &s in &sinks {
            if let Some(t) = bed
                .lab
                .proc(s)
                .log()
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse::<u128>().ok())
            {
                first = Some(first.map_or(t, |f: u128| f.min(t)));
            }
        }
        if first.is_some() {
            break;
        }
        bed.lb_alive()?;
        if Instant::now() > end {
            return Err(E2eError::Failed(
                "no probe reached a real server within 60 s of rvsd's start".into(),
            ));
        }
        nap(Duration::from_millis(1))?;
    }
    let pid = bed
        .lb_pid()
        .ok_or_else(|| E2eError::Failed("no rvsd".into()))?;
    let rss_kb = measure::vm_rss_kb(pid)
        .ok_or_else(|| E2eError::Failed("cannot read rvsd's VmRSS".into()))?;
    let since = |t: Option<std::time::SystemTime>| -> f64 {
        t.and_then(|t| t.duration_since(t0).ok())
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    let t0_ns = t0
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let first_ms = first.unwrap_or(0).saturating_sub(t0_ns) as f64 / 1e6;
    Ok(Startup {
        rss_kb,
        first_ms,
        ready_ms: since(bed.rvsd_ready),
        configured_ms: since(bed.rvsd_configured),
    })
}

//! The packet-rate case (`pps`) as an interleaved, repeated rate sweep.
//!
//! Every configuration (load balancer or testpmd reference row) is measured
//! `--repeat` times, interleaved (A B C D A B C D ...), each time on a fresh
//! bed; on each bed the generator offers every rate of `--rates` in turn
//! (`max`: as fast as it can). One line per point, then per configuration
//! and rate the minimum, median and maximum over the repeats, then the
//! issue's goals checked on the medians.
//!
//! Per point:
//! - `offered_pps`: what the generator actually put on the wire during the
//!   window (the client's `eth0` tx_packets + tx_dropped), next to
//!   `target_pps`; `gen_short` when it is below 95 % of the target.
//! - `delivered_pps`: `rx_packets` of the real servers' `eth0`.
//! - CPU per delivered packet, in ns, from tick-sampled accounting
//!   (/proc/stat, /proc/<pid>/stat): `cpu1_ns_per_pkt` is CPU 1's busy time
//!   (user + system + irq + softirq; CPU 1 runs nothing of the bench but the
//!   data plane, so this is the data plane with the kernel work done there on
//!   its behalf); `cpu0_softirq_ns_per_pkt` the softirq time of CPU 0 (the
//!   generator's CPU), where a veth transmit runs the receiving side's work
//!   (XDP and the AF_XDP copy for `wan`, the bridge and the real servers'
//!   receive for everyone); `dp_ns_per_pkt` is their sum, the figure
//!   compared; `cpu_ticks` is how many ticks that sum counted, its
//!   precision (±1 tick each end), and with none counted the figure is
//!   null (below /proc/stat's resolution, not free). `proc_ns_per_pkt`: the data plane process's utime+stime (rvsd,
//!   testpmd; with tick accounting it includes softirq ticks that hit it).
//!   `own_ns_per_pkt`: CPU 1's irq + softirq time, plus the process's
//!   utime+stime, plus CPU 0's softirq time: the data plane's work without
//!   other tasks that ran on CPU 1 (for a machine that is not quiet); an
//!   upper bound, since softirq ticks that hit the process count twice.

use std::time::{Duration, Instant};

use super::bed::{Bed, Lb, RvsdOpts, LB_CPU, LOAD_CPU, UDP_PORT};
use super::measure::{cpu_secs, lb_kernel_secs, CpuSnap};
use super::{check_stop, nap, E2eError, Out, V};

/// Parses a rate of `--rates`: `50k`, `1.5M`, `200000`, or `max` (None).
pub fn parse_rate(s: &str) -> Result<Option<u64>, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("max") {
        return Ok(None);
    }
    let (num, mul) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        _ => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(x) if x * mul >= 1.0 && x * mul <= 1e9 => Ok(Some((x * mul).round() as u64)),
        _ => Err(format!("bad rate '{s}' (e.g. 50k, 1.5M, 200000 or max)")),
    }
}

/// A rate as printed: the number, or `max`.
pub(crate) fn name_of_rate(r: Option<u64>) -> String {
    r.map_or("max".into(), |r| r.to_string())
}

/// One measured point.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    rep: usize,
    lb: String,
    target: Option<u64>,
    offered: f64,
    delivered: f64,
    /// CPU 1 busy, CPU 0 softirq, the process (s per delivered packet × 1e9).
    cpu1_ns: Option<f64>,
    soft0_ns: Option<f64>,
    proc_ns: Option<f64>,
    own_ns: Option<f64>,
    cpu1_busy: f64,
    soft0_busy: f64,
    /// Ticks behind `dp_ns` (CPU 1 busy + CPU 0 softirq).
    ticks: u64,
    secs: f64,
    /// The generator's own report: frames queued, ring-full and kick-error counts.
    gen: [Option<u64>; 3],
}

impl Point {
    fn dp_ns(&self) -> Option<f64> {
        if self.ticks == 0 {
            return None;
        }
        Some(self.cpu1_ns? + self.soft0_ns?)
    }
    fn share(&self) -> f64 {
        if self.offered > 0.0 {
            self.delivered / self.offered
        } else {
            0.0
        }
    }
}

/// Counters read at both ends of a window.
struct Snap {
    rx: u64,
    tx: u64,
    cpu: CpuSnap,
}

fn client_tx(bed: &Bed) -> Result<u64, E2eError> {
    let o = bed.lab.exec(
        "client",
        &[
            "cat",
            "/sys/class/net/eth0/statistics/tx_packets",
            "/sys/class/net/eth0/statistics/tx_dropped",
        ],
    );
    if !o.status.success() {
        return Err(E2eError::Failed(
            "cannot read the client's tx counters".into(),
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum())
}

fn snap(bed: &mut Bed) -> Result<Snap, E2eError> {
    let pid = bed.lb_pid();
    Ok(Snap {
        tx: client_tx(bed)?,
        rx: bed.rs_rx_packets()?,
        cpu: CpuSnap::take(LB_CPU, pid),
    })
}

/// Durations and load of a sweep.
pub(crate) struct Plan<'a> {
    pub rates: &'a [Option<u64>],
    pub repeat: usize,
    pub warm: f64,
    pub secs: f64,
    pub flows: u16,
    pub frame: usize,
}

/// One rate point on a running bed: the generator at `target` (None: flat
/// out) for warm-up + window, counters around the window.
fn point(bed: &mut Bed, p: &Plan, target: Option<u64>, tck: f64) -> Result<Point, E2eError> {
    let dst_mac = bed.mac("lb", "wan")?;
    let exe = std::env::current_exe()
        .map_err(|e| E2eError::Failed(format!("own executable: {e}")))?
        .to_string_lossy()
        .into_owned();
    let total = p.warm + p.secs + 0.5;
    let (port, flows, frame) = (
        UDP_PORT.to_string(),
        p.flows.to_string(),
        p.frame.to_string(),
    );
    let (total_s, cpu, rate) = (
        total.to_string(),
        LOAD_CPU.to_string(),
        target.unwrap_or(0).to_string(),
    );
    let g = bed.lab.spawn(
        "client",
        "gen",
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
            bed.udp_targets(),
            "--port",
            &port,
            "--flows",
            &flows,
            "--frame",
            &frame,
            "--secs",
            &total_s,
            "--cpu",
            &cpu,
            "--pps",
            &rate,
        ],
        &[],
    );
    nap(Duration::from_secs_f64(p.warm))?;
    if !bed.lab.proc(g).alive() {
        return Err(E2eError::Failed(format!(
            "generator exited: {}",
            super::bed::last_lines(&bed.lab.proc(g).log(), 3)
        )));
    }
    let a = snap(bed)?;
    nap(Duration::from_secs_f64(p.secs))?;
    let b = snap(bed)?;
    let end = Instant::now() + Duration::from_secs(5);
    while bed
        .lab
        .proc(g)
        .wait_exit(Duration::from_millis(100))
        .is_none()
    {
        check_stop()?;
        if Instant::now() > end {
            return Err(E2eError::Failed("the generator did not stop".into()));
        }
    }
    bed.lb_alive()?;
    let log = bed.lab.proc(g).log();
    let last: serde_json::Value =
        serde_json::from_str(log.lines().last().unwrap_or("").trim()).unwrap_or_default();
    let gen = ["sent", "ring_full", "kick_errors"].map(|k| last.get(k).and_then(|v| v.as_u64()));
    let dt = b.cpu.at.duration_since(a.cpu.at).as_secs_f64();
    let delivered = b.rx.saturating_sub(a.rx) as f64;
    let (cpu1, proc, soft0) = cpu_secs(&a.cpu, &b.cpu, tck);
    let ns = |s: f64| (delivered > 0.0).then(|| s / delivered * 1e9);
    let own = lb_kernel_secs(&a.cpu, &b.cpu, tck) + proc.unwrap_or(0.0) + soft0;
    Ok(Point {
        rep: 0,
        lb: bed.lb.name(),
        target,
        offered: b.tx.saturating_sub(a.tx) as f64 / dt,
        delivered: delivered / dt,
        cpu1_ns: ns(cpu1),
        soft0_ns: ns(soft0),
        proc_ns: proc.and_then(ns),
        own_ns: ns(own),
        cpu1_busy: cpu1 / dt,
        soft0_busy: soft0 / dt,
        ticks: ((cpu1 + soft0) * tck).round() as u64,
        secs: dt,
        gen,
    })
}

fn opt(x: Option<f64>, d: usize) -> V {
    x.map_or(V::Null, |x| V::N(x, d))
}

fn emit_point(out: &Out, p: &Point, plan: &Plan, note: &str) {
    let short = p.target.is_some_and(|t| p.offered < 0.95 * t as f64);
    out.emit(&[
        ("case", V::S("pps".into())),
        ("lb", V::S(p.lb.clone())),
        ("rep", V::I(p.rep as u64)),
        ("target_pps", p.target.map_or(V::Null, V::I)),
        ("offered_pps", V::N(p.offered, 0)),
        ("delivered_pps", V::N(p.delivered, 0)),
        ("delivered_share", V::N(p.share(), 3)),
        ("dp_ns_per_pkt", opt(p.dp_ns(), 0)),
        ("cpu1_ns_per_pkt", opt(p.cpu1_ns, 0)),
        ("cpu0_softirq_ns_per_pkt", opt(p.soft0_ns, 0)),
        ("proc_ns_per_pkt", opt(p.proc_ns, 0)),
        ("own_ns_per_pkt", opt(p.own_ns, 0)),
        ("cpu1_busy", V::N(p.cpu1_busy, 2)),
        ("cpu0_softirq_busy", V::N(p.soft0_busy, 2)),
        ("cpu_ticks", V::I(p.ticks)),
        ("gen_short", V::S(short.to_string())),
        ("gen_sent", p.gen[0].map_or(V::Null, V::I)),
        ("gen_ring_full", p.gen[1].map_or(V::Null, V::I)),
        ("gen_kick_errors", p.gen[2].map_or(V::Null, V::I)),
        ("frame_bytes", V::I(plan.frame as u64)),
        ("flows", V::I(u64::from(plan.flows))),
        ("secs", V::N(p.secs, 2)),
        ("cpu_note", V::S(note.into())),
    ]);
}

/// Runs the sweep over `lbs` (those that forward UDP), interleaved, and
/// prints points, the summary and the goals.
pub(super) fn run(lbs: &[Lb], plan: &Plan, tck: f64, out: &Out) -> Result<(), E2eError> {
    let mut points = Vec::new();
    for rep in 0..plan.repeat {
        for lb in lbs {
            let mut bed = match Bed::topology(lb)
                .and_then(|mut b| b.start_lb(&RvsdOpts::default()).map(|_| b))
                .and_then(|b| b.rs_udp_drop().map(|_| b))
            {
                Ok(b) => b,
                Err(e) => {
                    check_stop()?;
                    out.error("pps", lb, &e);
                    continue;
                }
            };
            for &target in plan.rates {
                match point(&mut bed, plan, target, tck) {
                    Ok(mut p) => {
                        p.rep = rep;
                        emit_point(out, &p, plan, lb.cpu_note());
                        points.push(p);
                    }
                    Err(E2eError::Interrupted) => return Err(E2eError::Interrupted),
                    Err(e) => {
                        check_stop()?;
                        out.error("pps", lb, &e);
                    }
                }
                // Let queues drain before the next rate.
                nap(Duration::from_millis(300))?;
            }
        }
    }
    let rows = super::sweep_report::summarize(lbs, plan.rates, &points);
    super::sweep_report::emit(out, &rows, plan);
    Ok(())
}

/// What the summary needs of a point.
impl Point {
    pub(crate) fn lb(&self) -> &str {
        &self.lb
    }
    pub(crate) fn target(&self) -> Option<u64> {
        self.target
    }
    /// (offered, delivered, share, dp_ns, cpu1_ns, cpu0_softirq_ns, proc_ns, own_ns).
    pub(crate) fn figures(&self) -> [Option<f64>; 8] {
        [
            Some(self.offered),
            Some(self.delivered),
            Some(self.share()),
            self.dp_ns(),
            self.cpu1_ns,
            self.soft0_ns,
            self.proc_ns,
            self.own_ns,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_suffixes_and_max() {
        assert_eq!(parse_rate("50k"), Ok(Some(50_000)));
        assert_eq!(parse_rate("1.5M"), Ok(Some(1_500_000)));
        assert_eq!(parse_rate("200000"), Ok(Some(200_000)));
        assert_eq!(parse_rate("max"), Ok(None));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0").is_err());
        assert_eq!(name_of_rate(None), "max");
    }
}

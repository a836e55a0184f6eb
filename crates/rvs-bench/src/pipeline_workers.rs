//! `rvs-bench pipeline --workers N`: N workers, each on its own thread pinned
//! to its own CPU, each with its own snapshot, connection table and frames
//! (built before timing, in the worker's own thread so its memory is first
//! touched there), as rvsd runs one worker per core with nothing shared on
//! the packet path. Every round times worker 0 alone, then all N together:
//! released at once by a barrier and stopped by one flag after the same
//! window, each counting what it did in its own elapsed time. The aggregate
//! is the sum of the workers' rates; `_scaling` is the aggregate over worker
//! 0 alone in the same round (median of the rounds, and its range).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use rvs_core::conn::FwdMode;
use rvs_core::pipeline::Worker;

use crate::pipeline::{burst, drive, setup, BurstBufs, Frames, SyncBench, BURST};
use crate::pipeline_churn::Churner;
use crate::pipeline_drive::thread_run_ns;
use crate::pipeline_tx::TxRing;

/// The `--workers` options of `rvs-bench pipeline`.
#[derive(clap::Args, Debug)]
pub struct WorkersArgs {
    /// Run N workers side by side (fnat_in with 1,000,000 and 1,000
    /// connections each, and fnat_churn_cps) instead of the single-worker
    /// cases; worker i is pinned to CPU i, or to `--cpus`, or with N = 1
    /// to `--cpu`.
    #[arg(long)]
    workers: Option<usize>,
    /// The CPUs of the `--workers`, one each, e.g. `--cpus 0,1`.
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    /// The window each worker is timed over, per round and case.
    #[arg(long, default_value_t = 2000)]
    window_ms: u64,
    /// Rounds (worker 0 alone, then all) per case.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// With `--workers`: copy each forwarded frame into a transmit ring as
    /// rvsd does (see `fnat_in_tx_mpps`).
    #[arg(long)]
    tx_copy: bool,
}

impl WorkersArgs {
    /// Whether `--workers` was given.
    pub fn wanted(&self) -> bool {
        self.workers.is_some()
    }
}

/// The CPU of each worker (`None`: not pinned) from `--workers`, `--cpu`,
/// `--cpus` and the online CPUs, or what is wrong with them.
fn plan_cpus(
    workers: usize,
    cpu: Option<usize>,
    list: &[usize],
    online: &[usize],
) -> Result<Vec<Option<usize>>, String> {
    if workers == 0 {
        return Err("--workers 0: at least one worker".into());
    }
    if workers > online.len() {
        return Err(format!(
            "--workers {workers}: more than the {} online CPUs (one worker per core)",
            online.len()
        ));
    }
    let cpus: Vec<usize> = if !list.is_empty() {
        if list.len() != workers {
            return Err(format!(
                "--cpus names {} CPUs for --workers {workers}: one each",
                list.len()
            ));
        }
        list.to_vec()
    } else if workers == 1 {
        return match cpu {
            Some(c) if !online.contains(&c) => Err(format!("--cpu {c}: no such online CPU")),
            c => Ok(vec![c]),
        };
    } else if cpu.is_some() {
        return Err("--cpu pins a single worker; give --cpus for --workers above 1".into());
    } else {
        (0..workers).collect()
    };
    for (i, c) in cpus.iter().enumerate() {
        if !online.contains(c) {
            return Err(format!("--cpus: CPU {c} is not online"));
        }
        if cpus[..i].contains(c) {
            return Err(format!("--cpus: CPU {c} named twice (one core per worker)"));
        }
    }
    Ok(cpus.into_iter().map(Some).collect())
}

fn pin(cpu: Option<usize>) -> Result<(), String> {
    let Some(cpu) = cpu else { return Ok(()) };
    let ok = core_affinity::get_core_ids()
        .and_then(|ids| ids.into_iter().find(|c| c.id == cpu))
        .is_some_and(core_affinity::set_for_current);
    if ok {
        Ok(())
    } else {
        Err(format!("cannot pin to CPU {cpu}"))
    }
}

/// A worker's share of a case: one burst at a time.
trait Lane: Send {
    /// Runs one burst; returns what it counts (packets forwarded, or
    /// connections made).
    fn step(&mut self, since: Instant) -> usize;
    /// What went wrong so far, if anything.
    fn fault(&self) -> Option<String>;
}

/// fnat_in: data frames of established connections, client side.
struct InLane {
    w: Worker,
    frames: Frames,
    idx: usize,
    bufs: BurstBufs,
    tx: Option<TxRing>,
    short: usize,
}

impl InLane {
    fn new(n: usize, tx_copy: bool) -> Result<InLane, String> {
        let (mut w, _, ins, _) = setup(FwdMode::Fnat, n, SyncBench::Off, false, &None)?;
        // Warm-up: the first data segment of each connection carries TOA.
        let (_, fwd, bad) = drive(&mut w, &ins, n, 2);
        if fwd != n {
            return Err(format!("warm-up: {fwd} of {n} forwarded ({bad:?})"));
        }
        Ok(InLane {
            w,
            frames: ins,
            idx: 0,
            bufs: BurstBufs::new(),
            tx: tx_copy.then(TxRing::new),
            short: 0,
        })
    }
}

impl Lane for InLane {
    fn step(&mut self, since: Instant) -> usize {
        let now = 3 + since.elapsed().as_millis() as u64;
        let tx = self.tx.as_mut();
        let (fwd, _) = burst(
            &mut self.w,
            &self.frames,
            &mut self.idx,
            BURST,
            &mut self.bufs,
            now,
            tx,
        );
        self.short += BURST - fwd;
        fwd
    }
    fn fault(&self) -> Option<String> {
        (self.short > 0).then(|| format!("{} packets not forwarded", self.short))
    }
}

/// fnat_churn: SYNs of fresh clients into a table held at half its size.
struct ChurnLane {
    c: Churner,
    refused: usize,
}

impl Lane for ChurnLane {
    fn step(&mut self, _: Instant) -> usize {
        let (made, refused) = self.c.step(BURST);
        self.refused += refused;
        made
    }
    fn fault(&self) -> Option<String> {
        (self.refused > 0).then(|| {
            format!(
                "{} SYNs refused (drops: {:?})",
                self.refused,
                self.c.drops()
            )
        })
    }
}

/// Makes one lane per CPU, each in a thread pinned to its CPU.
fn build<L: Lane>(
    cpus: &[Option<usize>],
    make: impl Fn() -> Result<L, String> + Sync,
) -> Result<Vec<L>, String> {
    std::thread::scope(|s| {
        let hs: Vec<_> = cpus
            .iter()
            .map(|&c| {
                let make = &make;
                s.spawn(move || pin(c).and_then(|_| make()))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a worker panicked".into())))
            .collect()
    })
}

/// What one lane did in a phase.
#[derive(Clone, Copy)]
struct Done {
    /// Per second of the window.
    rate: f64,
    /// Per second the thread actually ran.
    rate_on_cpu: f64,
    /// The share of the window the thread ran.
    on_cpu: f64,
}

/// Runs `lanes` together over `window`; returns what each one did.
fn phase<L: Lane>(
    lanes: &mut [L],
    cpus: &[Option<usize>],
    window: Duration,
) -> Result<Vec<Done>, String> {
    let start = Barrier::new(lanes.len() + 1);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let hs: Vec<_> = lanes
            .iter_mut()
            .zip(cpus)
            .map(|(lane, &c)| {
                let (start, stop) = (&start, &stop);
                s.spawn(move || {
                    let pinned = pin(c);
                    start.wait();
                    pinned?;
                    let run0 = thread_run_ns();
                    let t0 = Instant::now();
                    let mut done = 0usize;
                    while !stop.load(Relaxed) {
                        done += lane.step(t0);
                    }
                    let secs = t0.elapsed().as_secs_f64();
                    let ran = match (run0, thread_run_ns()) {
                        (Some(a), Some(b)) => (b - a) as f64 / 1e9,
                        _ => secs,
                    };
                    match lane.fault() {
                        Some(e) => Err(e),
                        None => Ok(Done {
                            rate: done as f64 / secs,
                            rate_on_cpu: done as f64 / ran.max(1e-9),
                            on_cpu: ran / secs,
                        }),
                    }
                })
            })
            .collect();
        start.wait();
        std::thread::sleep(window);
        stop.store(true, Relaxed);
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a worker panicked".into())))
            .collect()
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

fn list(v: impl Iterator<Item = String>) -> String {
    format!("[{}]", v.collect::<Vec<_>>().join(","))
}

/// A key made at run time (the figures' keys are static strings).
fn key(prefix: &str, suffix: &str) -> &'static str {
    Box::leak(format!("{prefix}{suffix}").into_boxed_str())
}

/// Rounds of worker 0 alone then all; pushes `PREFIX_UNIT` (the aggregate),
/// `_each`, `_solo`, `PREFIX_scaling` (aggregate over solo, median of the
/// rounds) and its `_range`, each worker's `_on_cpu` share of the window
/// (`_on_cpu_solo`: worker 0's alone), and `_scaling_on_cpu` (the same from rates per second of CPU each
/// thread actually got). `scale` divides rates into the unit.
fn measure<L: Lane>(
    out: &mut Vec<(&'static str, String)>,
    (prefix, unit, scale): (&str, &str, f64),
    lanes: &mut [L],
    cpus: &[Option<usize>],
    a: &WorkersArgs,
) -> Result<(), String> {
    let window = Duration::from_millis(a.window_ms.max(10));
    let (mut solo, mut agg, mut ratio, mut ratio_cpu) = (vec![], vec![], vec![], vec![]);
    let mut solo_on_cpu = vec![];
    let mut each = vec![vec![]; lanes.len()];
    let mut on_cpu = vec![vec![]; lanes.len()];
    for _ in 0..a.rounds.max(1) {
        let one = phase(&mut lanes[..1], &cpus[..1], window)?[0];
        let all = phase(lanes, cpus, window)?;
        let sum: f64 = all.iter().map(|d| d.rate).sum();
        let sum_cpu: f64 = all.iter().map(|d| d.rate_on_cpu).sum();
        for (k, d) in all.iter().enumerate() {
            each[k].push(d.rate);
            on_cpu[k].push(d.on_cpu);
        }
        solo.push(one.rate);
        solo_on_cpu.push(one.on_cpu);
        agg.push(sum);
        ratio.push(sum / one.rate);
        ratio_cpu.push(sum_cpu / one.rate_on_cpu);
    }
    let digits = if scale > 1.0 { 2 } else { 0 };
    let fmt = |x: f64| format!("{:.*}", digits, x / scale);
    let lo = ratio.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratio.iter().copied().fold(0.0, f64::max);
    out.push((key(prefix, unit), fmt(median(&agg))));
    let per = each.iter().map(|e| fmt(median(e)));
    out.push((key(prefix, &format!("{unit}_each")), list(per)));
    out.push((key(prefix, &format!("{unit}_solo")), fmt(median(&solo))));
    out.push((key(prefix, "_scaling"), format!("{:.2}", median(&ratio))));
    out.push((key(prefix, "_scaling_range"), format!("[{lo:.2},{hi:.2}]")));
    let share = on_cpu.iter().map(|e| format!("{:.2}", median(e)));
    out.push((key(prefix, "_on_cpu_each"), list(share)));
    out.push((
        key(prefix, "_on_cpu_solo"),
        format!("{:.2}", median(&solo_on_cpu)),
    ));
    out.push((
        key(prefix, "_scaling_on_cpu"),
        format!("{:.2}", median(&ratio_cpu)),
    ));
    Ok(())
}

/// Runs `--workers`; returns the figures or what went wrong.
pub(crate) fn run(
    a: &WorkersArgs,
    conns: usize,
    cpu: Option<usize>,
) -> Result<Vec<(&'static str, String)>, String> {
    let online: Vec<usize> = core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default();
    let cpus = plan_cpus(a.workers.unwrap_or(1), cpu, &a.cpus, &online)?;
    let n = conns.max(1);
    let mut out: Vec<(&'static str, String)> = vec![("workers", cpus.len().to_string())];
    let cpu_list: Vec<String> = cpus
        .iter()
        .map(|c| c.map_or("null".into(), |c| c.to_string()))
        .collect();
    out.push(("workers_cpus", format!("[{}]", cpu_list.join(","))));
    let tx = a.tx_copy;
    let mut lanes = build(&cpus, || InLane::new(n, tx))?;
    let mem = crate::pipeline_mem::Memory::of(&lanes[0].w);
    let case = ("workers_fnat_in", "_mpps", 1e6);
    measure(&mut out, case, &mut lanes, &cpus, a)?;
    drop(lanes);
    let mut lanes = build(&cpus, || InLane::new(1000.min(n), tx))?;
    let case = ("workers_fnat_in_1k", "_mpps", 1e6);
    measure(&mut out, case, &mut lanes, &cpus, a)?;
    drop(lanes);
    let mut lanes = build(&cpus, || {
        let mut c = Churner::new(n);
        c.fill();
        Ok(ChurnLane { c, refused: 0 })
    })?;
    let case = ("workers_fnat_churn", "_cps", 1.0);
    measure(&mut out, case, &mut lanes, &cpus, a)?;
    drop(lanes);
    out.push(("workers_tx_copy", tx.to_string()));
    out.push(("workers_window_ms", a.window_ms.to_string()));
    out.push(("workers_rounds", a.rounds.max(1).to_string()));
    out.push(("conns", n.to_string()));
    mem.push(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::plan_cpus;

    #[test]
    fn workers_are_pinned_one_per_cpu_and_bad_plans_are_refused() {
        let online = [0, 1, 2, 3];
        assert_eq!(plan_cpus(1, None, &[], &online), Ok(vec![None]));
        assert_eq!(plan_cpus(1, Some(3), &[], &online), Ok(vec![Some(3)]));
        assert_eq!(plan_cpus(2, None, &[], &online), Ok(vec![Some(0), Some(1)]));
        assert_eq!(
            plan_cpus(2, None, &[3, 1], &online),
            Ok(vec![Some(3), Some(1)])
        );
        for (w, cpu, list) in [
            (0, None, vec![]),
            (5, None, vec![]),
            (1, Some(7), vec![]),
            (2, Some(1), vec![]),
            (2, None, vec![1]),
            (2, None, vec![1, 1]),
            (2, None, vec![1, 9]),
        ] {
            let r = plan_cpus(w, cpu, &list, &online);
            assert!(r.is_err(), "{w} {cpu:?} {list:?}: {r:?}");
        }
    }
}

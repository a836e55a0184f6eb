//! What the e2e benchmark reads: CPU time (of CPU 1 from /proc/stat, of a
//! process from /proc/<pid>/stat), resident memory, and wrk's report.

use std::time::Instant;

/// Clock ticks per second of /proc/stat and /proc/<pid>/stat (USER_HZ; 100
/// on every Linux architecture rvs targets, read once from `getconf`).
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// The tick counters of one CPU's `cpuN` line of /proc/stat, in order:
/// user nice system idle iowait irq softirq steal ...
fn cpu_ticks(cpu: usize) -> Option<Vec<u64>> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let tag = format!("cpu{cpu} ");
    let line = s.lines().find(|l| l.starts_with(&tag))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() >= 7).then_some(v)
}

/// Busy ticks of one CPU: user + system + irq + softirq, from the `cpuN`
/// line of /proc/stat. Not counted: idle, iowait, steal, and nice (the load
/// balancers never run niced, while background jobs on a shared machine,
/// e.g. fuzzers, usually do).
pub fn cpu_busy_ticks(cpu: usize) -> Option<u64> {
    let v = cpu_ticks(cpu)?;
    Some(v[0] + v[2] + v[5] + v[6])
}

/// Softirq ticks of one CPU (the `softirq` column of its /proc/stat line).
pub fn cpu_softirq_ticks(cpu: usize) -> Option<u64> {
    Some(cpu_ticks(cpu)?[6])
}

/// irq + softirq ticks of one CPU (the kernel's packet work there, for
/// whichever task it interrupted).
pub fn cpu_irq_softirq_ticks(cpu: usize) -> Option<u64> {
    let v = cpu_ticks(cpu)?;
    Some(v[5] + v[6])
}

/// utime + stime of a process (all its threads), in ticks.
pub fn proc_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold blanks): state is
    // field 3, utime 14 and stime 15.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some(ut + st)
}

/// VmRSS of a process in kB.
pub fn vm_rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A CPU snapshot: CPU 1's busy ticks, the load balancer process's ticks.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnap {
    /// When it was taken.
    pub at: Instant,
    /// Busy ticks of the load balancer's CPU.
    pub cpu: u64,
    /// utime + stime of the load balancer process, if there is one.
    pub proc: Option<u64>,
    /// Softirq ticks of the load's CPU: packet processing the kernel did
    /// there (a veth transmit runs the peer's receive in the sender's softirq).
    pub load_softirq: u64,
    /// irq + softirq ticks of the load balancer's CPU.
    pub lb_kernel: u64,
}

impl CpuSnap {
    /// Takes a snapshot of CPU `cpu` and process `pid`.
    pub fn take(cpu: usize, pid: Option<u32>) -> CpuSnap {
        CpuSnap {
            at: Instant::now(),
            cpu: cpu_busy_ticks(cpu).unwrap_or(0),
            proc: pid.and_then(proc_ticks),
            load_softirq: cpu_softirq_ticks(super::bed::LOAD_CPU).unwrap_or(0),
            lb_kernel: cpu_irq_softirq_ticks(cpu).unwrap_or(0),
        }
    }
}

/// CPU seconds between two snapshots: (the CPU's busy time, the process's,
/// the load CPU's softirq time).
pub fn cpu_secs(a: &CpuSnap, b: &CpuSnap, tck: f64) -> (f64, Option<f64>, f64) {
    let cpu = b.cpu.saturating_sub(a.cpu) as f64 / tck;
    let proc = match (a.proc, b.proc) {
        (Some(x), Some(y)) => Some(y.saturating_sub(x) as f64 / tck),
        _ => None,
    };
    let soft = b.load_softirq.saturating_sub(a.load_softirq) as f64 / tck;
    (cpu, proc, soft)
}

/// irq + softirq seconds of the load balancer's CPU between two snapshots.
pub fn lb_kernel_secs(a: &CpuSnap, b: &CpuSnap, tck: f64) -> f64 {
    b.lb_kernel.saturating_sub(a.lb_kernel) as f64 / tck
}

/// What wrk reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WrkReport {
    /// Requests/sec.
    pub rps: f64,
    /// Requests completed.
    pub requests: u64,
    /// Median latency in ms.
    pub p50_ms: f64,
    /// 99th percentile latency in ms.
    pub p99_ms: f64,
    /// Socket errors (connect + read + write + timeout) and non-2xx/3xx answers.
    pub errors: u64,
}

fn ms(v: &str) -> Option<f64> {
    let (num, unit) = v
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| v.split_at(i))?;
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => return None,
    })
}

/// Parses `wrk --latency` output.
pub fn parse_wrk(out: &str) -> Option<WrkReport> {
    let mut r = WrkReport::default();
    let mut have_rps = false;
    for line in out.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        match t.as_slice() {
            ["Requests/sec:", v] => {
                r.rps = v.parse().ok()?;
                have_rps = true;
            }
            ["50%", v] => r.p50_ms = ms(v)?,
            ["99%", v] => r.p99_ms = ms(v)?,
            [n, "requests", "in", ..] => r.requests = n.parse().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                r.errors += rest
                    .iter()
                    .filter_map(|x| x.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => r.errors += n.parse::<u64>().ok()?,
            _ => {}
        }
    }
    have_rps.then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output() {
        let out = "Running 8s test @ http://10.0.0.100/\n  1 threads and 32 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   512.00us  100.00us   3.00ms   90.00%\n\
  Latency Distribution\n     50%  449.00us\n     75%  600.00us\n     90%  700.00us\n     99%    1.23ms\n\
  123456 requests in 8.00s, 20.00MB read\n  Socket errors: connect 1, read 2, write 0, timeout 3\n\
  Non-2xx or 3xx responses: 5\nRequests/sec:  15432.10\nTransfer/sec:      2.50MB\n";
        let r = parse_wrk(out).expect("parses");
        assert_eq!(r.requests, 123_456);
        assert!((r.rps - 15432.10).abs() < 1e-6);
        assert!((r.p50_ms - 0.449).abs() < 1e-9);
        assert!((r.p99_ms - 1.23).abs() < 1e-9);
        assert_eq!(r.errors, 11);
        assert_eq!(ms("2.00s"), Some(2000.0));
        assert!(parse_wrk("unable to connect").is_none());
    }

    #[test]
    fn proc_stat_of_self() {
        assert!(proc_ticks(std::process::id()).is_some());
        assert!(vm_rss_kb(std::process::id()).is_some_and(|k| k > 0));
        assert!(cpu_busy_ticks(0).is_some());
    }
}

//! `rvs-bench overload` (root): delivered against offered packet rate, on the
//! bed of `rvs-bench e2e` (client → lb → switch → two real servers; the
//! generator on CPU 0, the load balancer on CPU 1), for a list of offered
//! rates. One line per (load balancer, rate): what the generator sent, what
//! reached the real servers, and CPU 1's busy share.
//!
//! The generator is `rvs-bench e2e-gen --pps`: 64-byte UDP frames over 64
//! flows, a batch every millisecond. An offered rate of 0 sends as fast as
//! the generator can. The generator runs at nice -20 so that other work on
//! CPU 0 (a shared build machine) does not cap the offered rate; the load
//! balancer keeps the default priority. The best no-drop rate is the highest offered rate whose
//! delivered rate is within 1 % of it; the overload figure is the delivered
//! rate at three times that.

use std::time::{Duration, Instant};

use crate::e2e::bed::{self, Bed, Lb, RvsdOpts, LB_CPU, LOAD_CPU, UDP_PORT};
use crate::e2e::measure::{self, CpuSnap};
use crate::e2e::{nap, E2eError};

/// Arguments of `rvs-bench overload`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Load balancers (as for `rvs-bench e2e`), each on a fresh bed.
    #[arg(long, value_delimiter = ',', default_value = "rvs-af_packet")]
    lbs: Vec<String>,
    /// Offered rates in frames per second, in order; 0: as fast as possible.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "50000,100000,150000,200000,300000,450000,0"
    )]
    rates: Vec<u64>,
    /// Seconds of each measurement (after a 1 s warm-up).
    #[arg(long, default_value_t = 4)]
    secs: u64,
}

/// Runs the sweep; returns the process exit code.
pub fn run(a: Args) -> i32 {
    if !rvs_e2e::is_root() {
        eprintln!("rvs-bench overload: needs root (it creates network namespaces)");
        return 2;
    }
    let pinned = core_affinity::get_core_ids()
        .and_then(|ids| ids.into_iter().find(|c| c.id == LOAD_CPU))
        .is_some_and(core_affinity::set_for_current);
    if !pinned {
        eprintln!("rvs-bench overload: cannot pin to CPU {LOAD_CPU}");
        return 2;
    }
    let tck = measure::clk_tck();
    for name in &a.lbs {
        let Some(lb) = Lb::parse(name) else {
            eprintln!("rvs-bench overload: unknown load balancer '{name}'");
            return 2;
        };
        let mut bed = match Bed::topology(&lb)
            .and_then(|mut b| b.start_lb(&RvsdOpts::default()).map(|_| b))
        {
            Ok(b) => b,
            Err(e) => {
                println!("{{\"lb\":\"{name}\",\"error\":{:?}}}", e.to_string());
                continue;
            }
        };
        for &rate in &a.rates {
            match one(&mut bed, rate, a.secs, tck) {
                Ok(l) => println!("{{\"lb\":\"{name}\",{l}}}"),
                Err(e) => println!(
                    "{{\"lb\":\"{name}\",\"rate\":{rate},\"error\":{:?}}}",
                    e.to_string()
                ),
            }
        }
    }
    0
}

/// One offered rate on a running bed; the JSON fields of its line.
fn one(bed: &mut Bed, rate: u64, secs: u64, tck: f64) -> Result<String, E2eError> {
    bed.rs_udp_drop()?;
    let dst_mac = bed.mac("lb", "wan")?;
    let exe = std::env::current_exe()
        .map_err(|e| E2eError::Failed(format!("own executable: {e}")))?
        .to_string_lossy()
        .into_owned();
    let warm = 1.0;
    let total = warm + secs as f64 + 1.0;
    let g = bed.lab.spawn(
        "client",
        "gen",
        &[
            "nice",
            "-n",
            "-20",
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
            &UDP_PORT.to_string(),
            "--secs",
            &total.to_string(),
            "--pps",
            &rate.to_string(),
            "--cpu",
            &LOAD_CPU.to_string(),
        ],
        &[],
    );
    nap(Duration::from_secs_f64(warm))?;
    let pid = bed.lb_pid();
    let r0 = bed.rs_rx_packets()?;
    let c0 = CpuSnap::take(LB_CPU, pid);
    nap(Duration::from_secs(secs))?;
    let r1 = bed.rs_rx_packets()?;
    let c1 = CpuSnap::take(LB_CPU, pid);
    let end = Instant::now() + Duration::from_secs(5);
    let mut code = None;
    while code.is_none() && Instant::now() < end {
        code = bed.lab.proc(g).wait_exit(Duration::from_millis(100));
    }
    let log = bed.lab.proc(g).log();
    let sent = log
        .lines()
        .last()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .and_then(|v| v.get("sent")?.as_u64())
        .ok_or_else(|| E2eError::Failed(format!("generator: {}", bed::last_lines(&log, 3))))?;
    bed.lb_alive()?;
    let dt = c1.at.duration_since(c0.at).as_secs_f64();
    let offered = sent as f64 / total;
    let delivered = r1.saturating_sub(r0) as f64 / dt;
    let (cpu1, proc, soft0) = measure::cpu_secs(&c0, &c1, tck);
    Ok(format!(
        "\"rate\":{rate},\"offered_pps\":{offered:.0},\"delivered_pps\":{delivered:.0},\"share\":{:.3},\"cpu1_busy\":{:.2},\"lb_proc_busy\":{},\"cpu0_softirq\":{:.2}",
        delivered / offered.max(1.0),
        cpu1 / dt,
        proc.map_or("null".into(), |p| format!("{:.2}", p / dt)),
        soft0 / dt,
    ))
}

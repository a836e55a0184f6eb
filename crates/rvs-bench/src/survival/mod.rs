//! `rvs-bench survival` (root): the share of established connections that
//! survive an ECMP reshuffle. Three rvs nodes behind one L3 switch (a
//! namespace whose route to the VIP is a multipath route with
//! `fib_multipath_hash_policy = 1`, so flows spread by L4 hash), FNAT with a
//! local address per node, two nginx real servers. A client holds N
//! keep-alive connections, each making a request every interval. Nodes 1
//! and 2 carry the VIP; after a phase node 3 joins (the switch rehashes),
//! after another node 2 leaves (withdrawn from the route, still running, as
//! when its routing daemon is stopped to drain it). With active-active
//! connection sync (`[sync] role = "both"`) a node that receives a flow it
//! did not create knows it from its peer and forwards it with the owner's
//! local address; without sync it drops it. Both set-ups run side by side,
//! interleaved.

pub mod client;

use std::time::Duration;

use rvs_e2e::ecmp::{Ecmp, EcmpOpts};
use rvs_e2e::rvsd::RvsdOpts;

use client::unix_ms;

/// Arguments of `rvs-bench survival`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep-alive connections.
    #[arg(long, default_value_t = 500)]
    pub conns: usize,
    /// Milliseconds between two requests of a connection.
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
    /// Seconds between the events (start, join, leave, end).
    #[arg(long, default_value_t = 4)]
    pub phase_s: u64,
    /// Repeats of each set-up (interleaved).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// rvsd backend.
    #[arg(long, default_value = "af_packet")]
    pub backend: String,
    /// Only the set-up with sync (skip the baseline).
    #[arg(long)]
    pub sync_only: bool,
}

/// What one run saw.
#[derive(Debug, Default)]
struct Outcome {
    established: usize,
    /// Failures before the join (noise: nothing changed yet).
    before: usize,
    /// Failures between the join and the leave.
    join: usize,
    /// Failures after the leave.
    leave: usize,
}

fn once(a: &Args, sync: bool) -> Outcome {
    let mut e = Ecmp::new(&EcmpOpts {
        nodes: 3,
        rvsd: RvsdOpts {
            backend: a.backend.clone(),
            ..Default::default()
        },
        sync,
        dr: false,
    });
    for i in 1..=3 {
        e.fnat(i);
    }
    e.route(&[1, 2]);
    let out = e.lab.dir.join("survival.json");
    let client = e.keepalive_client(a.conns, a.interval_ms, a.phase_s * 3 + 1, &out);
    let phase = Duration::from_secs(a.phase_s);
    std::thread::sleep(phase);
    let join = unix_ms();
    e.route(&[1, 2, 3]);
    std::thread::sleep(phase);
    let leave = unix_ms();
    e.route(&[1, 3]);
    let p = e.lab.proc(client);
    if p.wait_exit(phase * 2 + Duration::from_secs(10)).is_none() {
        eprintln!("survival-client did not finish: {}", p.log());
    }
    let v: serde_json::Value = std::fs::read_to_string(&out)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| {
            panic!(
                "no result from survival-client: {}",
                e.lab.proc(client).log()
            )
        });
    let fails: Vec<u64> = v["failures_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default();
    for (i, n) in e.nodes.iter().enumerate() {
        let s = n.ok("rvsadm", &["-L", "--daemon", "--stats"]);
        let conns = n.ok("rvsadm", &["-ln"]);
        eprintln!("lb{} (sync {sync}):\n{s}{conns}", i + 1);
    }
    Outcome {
        established: v["established"].as_u64().unwrap_or(0) as usize,
        before: fails.iter().filter(|&&t| t < join).count(),
        join: fails
            .iter()
            .filter(|&&t| (join..leave).contains(&t))
            .count(),
        leave: fails.iter().filter(|&&t| t >= leave).count(),
    }
}

fn share(lost: usize, base: usize) -> f64 {
    match base {
        0 => 0.0,
        b => 100.0 * (b - lost) as f64 / b as f64,
    }
}

/// `rvs-bench survival`.
pub fn run(a: Args) -> i32 {
    if !rvs_e2e::is_root() {
        eprintln!("rvs-bench survival needs root (network namespaces)");
        return 1;
    }
    println!(
        "{} keep-alive connections, a request each every {} ms; node 3 joins at {} s, node 2 leaves at {} s; backend {}",
        a.conns,
        a.interval_ms,
        a.phase_s,
        2 * a.phase_s,
        a.backend
    );
    println!(
        "set-up        run  established  lost before  join: lost  survived  leave: lost  survived"
    );
    for run in 1..=a.runs {
        for sync in [true, false] {
            if !sync && a.sync_only {
                continue;
            }
            let o = once(&a, sync);
            let at_join = o.established - o.before;
            let at_leave = at_join - o.join;
            println!(
                "{:<12}  {run:>3}  {:>11}  {:>11}  {:>10}  {:>7.1}%  {:>11}  {:>7.1}%",
                if sync { "sync both" } else { "no sync" },
                o.established,
                o.before,
                o.join,
                share(o.join, at_join),
                o.leave,
                share(o.leave, at_leave)
            );
        }
    }
    0
}

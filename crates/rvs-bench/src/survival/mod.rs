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

use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::{bin, Lab};

use client::unix_ms;

const VIP: &str = "10.0.0.100";

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

/// The lab: nodes lb1..lb3 (wan on the `wsw` bridge with the switch, lan on
/// the `lsw` bridge with the real servers, a kernel `sync` link on `ssw`),
/// the switch `sw` (10.0.0.254 on the WAN bridge, 172.16.0.1 to the client),
/// the client 172.16.0.2.
fn build(lab: &mut Lab, sync: bool, backend: &str) -> Vec<Rvsd> {
    for n in [
        "client", "sw", "wsw", "lsw", "ssw", "rs1", "rs2", "lb1", "lb2", "lb3",
    ] {
        lab.add_ns(n);
    }
    lab.veth("client", "eth0", "sw", "down");
    lab.veth("sw", "wan", "wsw", "p-sw");
    let mut bridges = vec![
        ("wsw", vec!["p-sw".to_string()]),
        ("lsw", vec![]),
        ("ssw", vec![]),
    ];
    for i in 1..=3 {
        let lb = format!("lb{i}");
        lab.veth(&lb, "wan", "wsw", &format!("p-{lb}"));
        lab.veth(&lb, "lan", "lsw", &format!("p-{lb}"));
        lab.veth(&lb, "sync", "ssw", &format!("p-{lb}"));
        for b in bridges.iter_mut() {
            b.1.push(format!("p-{lb}"));
        }
        let a = format!("10.9.0.{i}/24");
        lab.must_in(&lb, &["ip", "addr", "add", &a, "dev", "sync"]);
    }
    for rs in ["rs1", "rs2"] {
        lab.veth(rs, "eth0", "lsw", &format!("p-{rs}"));
        bridges[1].1.push(format!("p-{rs}"));
    }
    for (ns, ports) in &bridges {
        lab.must_in(ns, &["ip", "link", "add", "br0", "type", "bridge"]);
        for p in ports {
            lab.must_in(ns, &["ip", "link", "set", p, "master", "br0"]);
        }
        lab.must_in(ns, &["ip", "link", "set", "br0", "up"]);
    }
    lab.must_in(
        "client",
        &["ip", "addr", "add", "172.16.0.2/24", "dev", "eth0"],
    );
    lab.must_in(
        "client",
        &["ip", "route", "add", "default", "via", "172.16.0.1"],
    );
    lab.must_in("sw", &["ip", "addr", "add", "172.16.0.1/24", "dev", "down"]);
    lab.must_in("sw", &["ip", "addr", "add", "10.0.0.254/24", "dev", "wan"]);
    lab.must_in("sw", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.must_in(
        "sw",
        &["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"],
    );
    for (rs, a) in [("rs1", "192.168.100.2/24"), ("rs2", "192.168.100.3/24")] {
        lab.must_in(rs, &["ip", "addr", "add", a, "dev", "eth0"]);
        lab.nginx(rs, rs);
    }
    (1..=3)
        .map(|i| {
            let extra = match sync {
                true => format!(
                    "[sync]\nrole = \"both\"\nsync_id = 7\nmcast_interface = \"sync\"\nnode_id = {i}\n"
                ),
                false => String::new(),
            };
            let opts = RvsdOpts {
                backend: backend.to_string(),
                extra,
                ..Default::default()
            };
            let lb = format!("lb{i}");
            let r = Rvsd::start_in(lab, &lb, &format!("{lb}-"), &[("dpdk0", "lan"), ("dpdk1", "wan")], &opts);
            node_config(&r, i);
            r
        })
        .collect()
}

/// The tutorial's FNAT service on node `i`, with its own local address; no
/// route to the clients (fast xmit answers through the switch).
fn node_config(r: &Rvsd, i: u8) {
    r.ok(
        "rvsip",
        &["addr", "add", &format!("10.0.0.{i}/24"), "dev", "dpdk1"],
    );
    r.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    let svc = format!("{VIP}:80");
    r.ok("rvsadm", &["-A", "-t", &svc, "-s", "rr"]);
    for rip in ["192.168.100.2", "192.168.100.3"] {
        r.ok("rvsadm", &["-a", "-t", &svc, "-r", rip, "-b"]);
    }
    let lip = format!("192.168.100.{}", 200 + i);
    r.ok(
        "rvsadm",
        &["--add-laddr", "-z", &lip, "-t", &svc, "-F", "dpdk0"],
    );
}

/// Points the switch's VIP route at nodes `nodes`.
fn route(lab: &Lab, nodes: &[u8]) {
    let mut cmd = vec![
        "ip".to_string(),
        "route".into(),
        "replace".into(),
        format!("{VIP}/32"),
    ];
    for n in nodes {
        cmd.extend(["nexthop".into(), "via".into(), format!("10.0.0.{n}")]);
    }
    let c: Vec<&str> = cmd.iter().map(String::as_str).collect();
    lab.must_in("sw", &c);
}

fn once(a: &Args, sync: bool) -> Outcome {
    let mut lab = Lab::new();
    let nodes = build(&mut lab, sync, &a.backend);
    route(&lab, &[1, 2]);
    let out = lab.dir.join("survival.json");
    let bench = bin("rvs-bench").to_string_lossy().into_owned();
    let secs = (a.phase_s * 3 + 1).to_string();
    let client = lab.spawn(
        "client",
        "survival-client",
        &[
            &bench,
            "survival-client",
            "--target",
            &format!("{VIP}:80"),
            "--conns",
            &a.conns.to_string(),
            "--interval-ms",
            &a.interval_ms.to_string(),
            "--seconds",
            &secs,
            "--out",
            &out.to_string_lossy(),
        ],
        &[],
    );
    let phase = Duration::from_secs(a.phase_s);
    std::thread::sleep(phase);
    let join = unix_ms();
    route(&lab, &[1, 2, 3]);
    std::thread::sleep(phase);
    let leave = unix_ms();
    route(&lab, &[1, 3]);
    let p = lab.proc(client);
    if p.wait_exit(phase * 2 + Duration::from_secs(10)).is_none() {
        eprintln!("survival-client did not finish: {}", p.log());
    }
    let v: serde_json::Value = std::fs::read_to_string(&out)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| panic!("no result from survival-client: {}", lab.proc(client).log()));
    let fails: Vec<u64> = v["failures_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default();
    for (i, n) in nodes.iter().enumerate() {
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

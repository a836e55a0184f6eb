//! BGP with BFD announcing the VIP from rvs's kni device (issue 10, item 3):
//! the tutorial's OSPF-cluster set-up with eBGP instead of OSPF. rvsd runs
//! the tutorial's commands (LAN route, service 123.1.2.3:80 rr with two FNAT
//! real servers, two local addresses, a `kni_host` route for the
//! inter-connection address 172.10.0.2); the VIP is on `dpdk1.kni`, where
//! bird (the lb's kernel) announces it over eBGP to an L3 switch (bird with
//! `protocol kernel`), with BFD on the session. BGP (TCP 179) and BFD (UDP
//! 3784) reach the lb's kernel through the kni device. A client behind the
//! switch reaches both real servers through the VIP; when rvsd dies, BFD
//! withdraws the route long before the BGP hold timer could.
//!
//! ```text
//! client 10.0.0.2/24 ── 10.0.0.1 switch 172.10.0.1/30 ── wan (dpdk1) lb lan (dpdk0) ── bridge ── rs1 192.168.100.2
//!                                  (bird, kernel table)     dpdk1.kni 172.10.0.2/30,                  └─ rs2 192.168.100.3
//!                                                                     123.1.2.3/32 (bird)
//! ```

use std::time::{Duration, Instant};

use rvs_e2e::bird::Bird;
use rvs_e2e::gap::{self, wall, Gap, Loops};
use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;

const VIP: &str = "123.1.2.3";
/// BGP timers, long next to BFD's 3 × 100 ms: after a node dies, the hold
/// timer cannot expire before HOLD - KEEPALIVE seconds.
const HOLD: u64 = 9;
const KEEPALIVE: u64 = 3;

/// The switch's side of node `i`'s inter-connection network (172.10.0.1 for
/// node 1, as in the tutorial; a /30 per node).
fn switch_ip(i: usize) -> String {
    format!("172.10.0.{}", 4 * (i - 1) + 1)
}

/// Node `i`'s side (`dpdk1.kni`) of its inter-connection network.
fn lb_ip(i: usize) -> String {
    format!("172.10.0.{}", 4 * (i - 1) + 2)
}

/// Node `i`'s bird: the VIP taken from `dpdk1.kni` (`protocol direct`) and
/// announced over eBGP with BFD (the README's "BGP with BFD").
fn lb_bird_conf(i: usize) -> String {
    let (me, sw) = (lb_ip(i), switch_ip(i));
    format!(
        r#"log stderr all;
router id {me};
protocol device {{ scan time 1; }}
protocol direct {{ ipv4; interface "dpdk1.kni"; }}
protocol bfd {{ interface "dpdk1.kni" {{ interval 100 ms; multiplier 3; }}; }}
protocol bgp switch {{
  local {me} as 65002;
  neighbor {sw} as 65001;
  hold time {HOLD}; keepalive time {KEEPALIVE}; connect delay time 1; connect retry time 2; error wait time 1, 5;
  bfd on;
  ipv4 {{ import none; export where net ~ [ {VIP}/32 ]; }};
}}
"#
    )
}

/// The L3 switch with a session to each of `nodes` nodes: what it learns
/// goes to its kernel table, merged into one multipath route when several
/// nodes announce the VIP.
fn switch_bird_conf(nodes: usize) -> String {
    let mut s = format!(
        r#"log stderr all;
router id {};
protocol device {{ scan time 1; }}
protocol kernel {{ ipv4 {{ import none; export all; }}; merge paths on; }}
protocol bfd {{ interface "lb*" {{ interval 100 ms; multiplier 3; }}; }}
"#,
        switch_ip(1)
    );
    for i in 1..=nodes {
        s.push_str(&format!(
            r#"protocol bgp lb{i} {{
  local {} as 65001;
  neighbor {} as 65002;
  hold time {HOLD}; keepalive time {KEEPALIVE}; connect delay time 1; connect retry time 2; error wait time 1, 5;
  bfd on;
  ipv4 {{ import all; export none; }};
}}
"#,
            switch_ip(i),
            lb_ip(i)
        ));
    }
    s
}

/// An rvs node: rvsd in namespace `lb<i>` and its bird.
struct Node {
    rvsd: Rvsd,
    bird: Option<Bird>,
}

/// The lab: namespaces, links, nginx on the real servers, rvsd on every node.
struct Bgp {
    lab: Lab,
    nodes: Vec<Node>,
    switch: Option<Bird>,
}

impl Bgp {
    /// `n` rvs nodes between the switch and one LAN with two real servers.
    fn new(n: usize) -> Bgp {
        Bgp::with(n, &RvsdOpts::default())
    }

    /// The same with rvsd options `opts` on every node.
    fn with(n: usize, opts: &RvsdOpts) -> Bgp {
        rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft", "ping", "bird", "birdc"]);
        let mut lab = Lab::new();
        for ns in ["client", "switch", "lan", "rs1", "rs2"] {
            lab.add_ns(ns);
        }
        lab.must_in("lan", &["ip", "link", "add", "br0", "type", "bridge"]);
        lab.must_in("lan", &["ip", "link", "set", "br0", "up"]);
        lab.veth("client", "eth0", "switch", "c0");
        lab.must_in(
            "client",
            &["ip", "addr", "add", "10.0.0.2/24", "dev", "eth0"],
        );
        lab.must_in(
            "client",
            &["ip", "route", "add", "default", "via", "10.0.0.1"],
        );
        lab.must_in("switch", &["ip", "addr", "add", "10.0.0.1/24", "dev", "c0"]);
        // A router spreading flows over the nodes by their L4 hash.
        lab.must_in("switch", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        lab.must_in(
            "switch",
            &["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"],
        );
        for (ns, a) in [("rs1", "192.168.100.2/24"), ("rs2", "192.168.100.3/24")] {
            lab.veth(ns, "eth0", "lan", &format!("p-{ns}"));
            lab.must_in(
                "lan",
                &["ip", "link", "set", &format!("p-{ns}"), "master", "br0"],
            );
            lab.must_in(ns, &["ip", "addr", "add", a, "dev", "eth0"]);
            lab.nginx(ns, ns);
        }
        let mut nodes = Vec::new();
        for i in 1..=n {
            let ns = format!("lb{i}");
            lab.add_ns(&ns);
            lab.veth("switch", &ns, &ns, "wan");
            lab.must_in(
                "switch",
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("{}/30", switch_ip(i)),
                    "dev",
                    &ns,
                ],
            );
            lab.veth(&ns, "lan", "lan", &format!("p-{ns}"));
            lab.must_in(
                "lan",
                &["ip", "link", "set", &format!("p-{ns}"), "master", "br0"],
            );
            let rvsd = Rvsd::start_in(
                &mut lab,
                &ns,
                &format!("{ns}-"),
                &[("dpdk0", "lan"), ("dpdk1", "wan")],
                opts,
            );
            nodes.push(Node { rvsd, bird: None });
        }
        let t = Bgp {
            lab,
            nodes,
            switch: None,
        };
        for i in 1..=n {
            t.tutorial(i);
        }
        t
    }

    fn rvsd(&self, i: usize) -> &Rvsd {
        &self.nodes[i - 1].rvsd
    }

    /// The tutorial's OSPF section for node `i`'s rvs and kernel, word for
    /// word for node 1 (dpip → rvsip, ipvsadm → rvsadm); the other nodes
    /// have their own local addresses and inter-connection network.
    fn tutorial(&self, i: usize) {
        let r = self.rvsd(i);
        r.ok(
            "rvsip",
            &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
        );
        r.ok("rvsadm", &["-A", "-t", "123.1.2.3:80", "-s", "rr"]);
        for rs in ["192.168.100.2", "192.168.100.3"] {
            r.ok("rvsadm", &["-a", "-t", "123.1.2.3:80", "-r", rs, "-b"]);
        }
        for k in 0..2 {
            let lip = format!("192.168.100.{}", 200 + 2 * (i - 1) + k);
            r.ok(
                "rvsadm",
                &[
                    "--add-laddr",
                    "-z",
                    &lip,
                    "-t",
                    "123.1.2.3:80",
                    "-F",
                    "dpdk0",
                ],
            );
        }
        let (me, sw) = (lb_ip(i), switch_ip(i));
        r.ok(
            "rvsip",
            &[
                "route",
                "add",
                &format!("{me}/32"),
                "dev",
                "dpdk1",
                "scope",
                "kni_host",
            ],
        );
        let ns = format!("lb{i}");
        let l = &self.lab;
        l.must_in(&ns, &["ip", "link", "set", "dpdk1.kni", "up"]);
        l.must_in(
            &ns,
            &["ip", "addr", "add", &format!("{me}/30"), "dev", "dpdk1.kni"],
        );
        l.must_in(
            &ns,
            &["ip", "addr", "add", "123.1.2.3/32", "dev", "dpdk1.kni"],
        );
        l.must_in(
            &ns,
            &[
                "ip",
                "route",
                "add",
                "default",
                "via",
                &sw,
                "dev",
                "dpdk1.kni",
            ],
        );
        // "Check if inter-connection works by ping switch."
        let o = l.exec(&ns, &["ping", "-c", "1", "-W", "2", &sw]);
        assert!(
            o.status.success(),
            "{ns}$ ping {sw} through dpdk1.kni failed: {}\nrvsip -s link show:\n{}",
            String::from_utf8_lossy(&o.stdout),
            r.ok("rvsip", &["-s", "link", "show"])
        );
    }

    /// Starts bird on the switch and on every node; waits for every BGP
    /// session to be Established and every BFD session Up, on both sides.
    fn start_birds(&mut self) {
        let n = self.nodes.len();
        self.switch = Some(Bird::start(
            &mut self.lab,
            "switch",
            "bird-switch",
            &switch_bird_conf(n),
        ));
        for i in 1..=n {
            let ns = format!("lb{i}");
            let b = Bird::start(&mut self.lab, &ns, &format!("bird-{ns}"), &lb_bird_conf(i));
            self.nodes[i - 1].bird = Some(b);
        }
        let sw = self.switch.as_ref().expect("switch bird");
        for i in 1..=n {
            let lb = self.nodes[i - 1].bird.as_ref().expect("node bird");
            // BGP (TCP 179 to the kni_host address) and BFD (UDP 3784) reach
            // the node's kernel through dpdk1.kni, and its answers leave by dpdk1.
            assert!(
                established(sw, &format!("lb{i}")) && established(lb, "switch"),
                "the BGP session of node {i} is not Established on both sides within 15 s\n{}",
                self.diag()
            );
            assert!(
                bfd_up(sw, &lb_ip(i)) && bfd_up(lb, &switch_ip(i)),
                "the BFD session of node {i} is not Up on both sides within 10 s\n{}",
                self.diag()
            );
        }
    }

    fn switch(&self) -> &Bird {
        self.switch.as_ref().expect("start_birds first")
    }

    /// The switch kernel's route to the VIP (`ip route show VIP`).
    fn switch_route(&self) -> String {
        let o = self.lab.exec("switch", &["ip", "route", "show", VIP]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Waits until the switch routes the VIP via every node of `via`.
    fn wait_route_via(&self, via: &[usize]) -> String {
        let want: Vec<String> = via.iter().map(|&i| format!("via {} ", lb_ip(i))).collect();
        self.switch()
            .wait(Duration::from_secs(5), |_| {
                let r = self.switch_route();
                want.iter().all(|w| r.contains(w.as_str())).then_some(r)
            })
            .unwrap_or_else(|| {
                panic!(
                    "the switch's kernel has no route {VIP} via {want:?}: {}\n{}",
                    self.switch_route(),
                    self.diag()
                )
            })
    }

    /// SIGKILL of node `i`'s rvsd; the instant it was sent.
    fn kill_rvsd(&mut self, i: usize) -> Instant {
        let pid = self.lab.proc(self.rvsd(i).index).pid();
        let at = Instant::now();
        rvs_e2e::must(&["kill", "-KILL", &pid.to_string()]);
        at
    }

    /// Waits until the switch no longer routes the VIP via node `i`; the
    /// time since `since`, or `None` after `limit`.
    fn wait_withdrawn(&self, i: usize, since: Instant, limit: Duration) -> Option<Duration> {
        let via = format!("via {} ", lb_ip(i));
        self.switch().wait(limit, |_| {
            (!self.switch_route().contains(&via)).then(|| since.elapsed())
        })
    }

    fn diag(&self) -> String {
        let mut s = format!(
            "switch$ ip route\n{}",
            String::from_utf8_lossy(&self.lab.exec("switch", &["ip", "route"]).stdout)
        );
        for (i, n) in self.nodes.iter().enumerate() {
            s.push_str(&format!(
                "\nnode {}: rvsip -s link show:\n{}\nrvsadm -ln --stats:\n{}\nrvsd log:\n{}",
                i + 1,
                String::from_utf8_lossy(&n.rvsd.rvsip(&["-s", "link", "show"]).stdout),
                String::from_utf8_lossy(&n.rvsd.rvsadm(&["-ln", "--stats"]).stdout),
                n.rvsd.rvsd_log()
            ));
        }
        let birds = self
            .switch
            .iter()
            .chain(self.nodes.iter().filter_map(|n| n.bird.as_ref()));
        for b in birds {
            s.push_str(&format!(
                "\nbird {}: {}\n{}\nlog:\n{}",
                b.name,
                b.birdc(&["show", "protocols", "all"]).unwrap_or_else(|e| e),
                b.birdc(&["show", "bfd", "sessions"]).unwrap_or_else(|e| e),
                b.log()
            ));
        }
        s
    }
}

/// Waits for BGP protocol `proto` of `b` to be Established.
fn established(b: &Bird, proto: &str) -> bool {
    b.wait(Duration::from_secs(15), |b| {
        b.protocol(proto)
            .filter(|(state, info)| state == "up" && info == "Established")
    })
    .is_some()
}

/// Waits for `b`'s BFD session with `peer` to be Up.
fn bfd_up(b: &Bird, peer: &str) -> bool {
    b.wait(Duration::from_secs(10), |b| {
        b.bfd_state(peer).filter(|s| s == "Up")
    })
    .is_some()
}

#[test]
fn bgp_bfd_announces_vip_from_kni_and_withdraws_it_when_rvsd_dies() {
    let mut t = Bgp::new(1);
    t.start_birds();
    let (sw, lb) = (t.switch(), t.nodes[0].bird.as_ref().expect("bird"));
    println!("switch$ birdc show protocols\n{}", sw.show("protocols"));
    println!(
        "switch$ birdc show bfd sessions\n{}",
        sw.show("bfd sessions")
    );
    println!(
        "lb1$ birdc show route export switch\n{}",
        lb.show("route export switch")
    );

    // The switch's kernel routes the VIP to the node (and nothing else it has).
    let route = t.wait_route_via(&[1]);
    println!("switch$ ip route show {VIP}\n{route}");
    assert!(route.contains("proto bird"), "{route}");
    let o = t
        .lab
        .exec("switch", &["ip", "route", "show", "proto", "bird"]);
    let bird_routes = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        bird_routes.lines().count(),
        1,
        "the node must announce only the VIP:\n{bird_routes}"
    );

    // The client, behind the switch, reaches both real servers (rr).
    let mut seen = Vec::new();
    for _ in 0..4 {
        let body = t
            .lab
            .curl("client", &format!("http://{VIP}/"))
            .unwrap_or_else(|e| panic!("client$ curl http://{VIP}/ failed: {e}\n{}", t.diag()));
        println!("client$ curl http://{VIP}/\n{body}");
        seen.push(body.split_whitespace().next().unwrap_or("").to_string());
    }
    assert!(
        seen.iter().any(|s| s == "rs1") && seen.iter().any(|s| s == "rs2"),
        "answers through the VIP must come from both real servers: {seen:?}"
    );

    // rvsd dies: dpdk1.kni goes with it, nothing answers the switch any
    // more, and BFD (3 × 100 ms) withdraws the route; the BGP hold timer
    // could not expire before HOLD - KEEPALIVE seconds.
    let killed = t.kill_rvsd(1);
    let limit = Duration::from_secs(HOLD - KEEPALIVE);
    let Some(gone) = t.wait_withdrawn(1, killed, limit) else {
        panic!(
            "{VIP} still routed by the switch {limit:?} after rvsd was killed: {}\n{}",
            t.switch_route(),
            t.diag()
        );
    };
    println!(
        "route to {VIP} withdrawn {} ms after SIGKILL of rvsd (BFD 100 ms x 3; BGP hold {HOLD} s)",
        gone.as_millis()
    );
    let sw = t.switch();
    let (state, info) = sw.protocol("lb1").unwrap_or_default();
    println!(
        "switch: BGP lb1 {state} {info}; BFD {:?}",
        sw.bfd_state(&lb_ip(1))
    );
    assert!(
        info.contains("BFD session down"),
        "BFD, not the hold timer, must have brought the session down: {state} {info}\n{}",
        sw.log()
    );
}

/// Connections node `i` scheduled for the VIP service (`rvsadm -ln --stats`).
fn scheduled(t: &Bgp, i: usize) -> u64 {
    let s = t.rvsd(i).ok("rvsadm", &["-ln", "--stats"]);
    s.lines()
        .find(|l| l.starts_with("TCP") && l.contains(&format!("{VIP}:80")))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("node {i}: no {VIP}:80 in rvsadm -ln --stats:\n{s}"))
}

/// `n` requests from the client, each a new connection; all must be answered.
fn all_answered(t: &Bgp, n: usize, when: &str) {
    for k in 0..n {
        if let Err(e) = t.lab.curl("client", &format!("http://{VIP}/")) {
            panic!("{when}: request {k} failed: {e}\n{}", t.diag());
        }
    }
}

/// Two nodes announce the VIP; the switch spreads new flows over both by
/// their L4 hash. Stopping one node's routing daemon moves its share to the
/// other; so does killing a node's rvsd (its kni device goes, BFD notices).
#[test]
fn two_nodes_share_the_vip_by_ecmp_and_either_failure_moves_traffic_to_the_other() {
    let mut t = Bgp::new(2);
    t.start_birds();
    let route = t.wait_route_via(&[1, 2]);
    println!("switch$ ip route show {VIP}\n{route}");
    all_answered(&t, 16, "both nodes up");
    let (a, b) = (scheduled(&t, 1), scheduled(&t, 2));
    println!("16 new connections: node 1 scheduled {a}, node 2 {b}");
    assert!(
        a > 0 && b > 0,
        "the switch must spread flows over both nodes: {a} and {b}"
    );

    // Node 1's routing daemon stops (SIGTERM: bird closes its sessions).
    let bird1 = t.nodes[0].bird.take().expect("node 1 bird");
    let stopped = Instant::now();
    t.lab.proc(bird1.index).signal("TERM");
    let gone = t
        .wait_withdrawn(1, stopped, Duration::from_secs(HOLD - KEEPALIVE))
        .unwrap_or_else(|| panic!("route via node 1 kept after its bird stopped\n{}", t.diag()));
    println!("node 1's bird stopped: route via node 1 withdrawn after {gone:?}");
    let (a0, b0) = (scheduled(&t, 1), scheduled(&t, 2));
    all_answered(&t, 8, "node 1 withdrawn");
    assert_eq!(scheduled(&t, 1), a0, "no new flow may reach node 1");
    assert_eq!(scheduled(&t, 2), b0 + 8, "node 2 takes every new flow");

    // Node 1 announces again; then node 2's rvsd dies.
    let again = Bird::start(&mut t.lab, "lb1", "bird-lb1-again", &lb_bird_conf(1));
    t.nodes[0].bird = Some(again);
    t.wait_route_via(&[1, 2]);
    let killed = t.kill_rvsd(2);
    let gone = t
        .wait_withdrawn(2, killed, Duration::from_secs(HOLD - KEEPALIVE))
        .unwrap_or_else(|| panic!("route via node 2 kept after its rvsd died\n{}", t.diag()));
    println!("node 2's rvsd killed: route via node 2 withdrawn after {gone:?}");
    let a1 = scheduled(&t, 1);
    all_answered(&t, 8, "node 2 dead");
    assert_eq!(scheduled(&t, 1), a1 + 8, "node 1 takes every new flow");
}

/// A node whose worker hangs while the rest of rvsd runs (the kni path is
/// served by worker 0, so BGP and BFD would go on): rvsd's watchdog takes
/// its kni devices down, which withdraws the route; it comes back when the
/// worker runs again.
#[test]
fn a_node_with_a_hung_worker_is_withdrawn_until_it_recovers() {
    let mut t = Bgp::with(
        1,
        &RvsdOpts {
            workers: 2,
            extra: "[health]\nstall_ms = 300\n".into(),
            ..Default::default()
        },
    );
    t.start_birds();
    t.wait_route_via(&[1]);
    let pid = t.lab.proc(t.rvsd(1).index).pid();
    let frozen = Instant::now();
    let f = rvs_e2e::fault::freeze_thread(&mut t.lab, "lb1", pid, "rvs-worker-1", 3.0);
    let gone = t
        .wait_withdrawn(1, frozen, Duration::from_secs(3))
        .unwrap_or_else(|| panic!("route kept while worker 1 hung\n{}", t.diag()));
    println!("worker 1 frozen: route withdrawn after {gone:?}");
    assert!(t.lab.proc(f).log().contains("frozen"));
    // Thawed: the kni device comes back, and with it BGP and the route.
    let sw = t.switch();
    assert!(
        established(sw, "lb1"),
        "BGP back after the worker recovered\n{}",
        t.diag()
    );
    let route = t.wait_route_via(&[1]);
    println!(
        "worker 1 thawed after 3 s: {route} ({:?} after the freeze)",
        frozen.elapsed()
    );
    all_answered(&t, 4, "after recovery");
}

/// Request loops of the client in [`failover`].
const LOOPS: usize = 4;

/// Two nodes announce the VIP (one multipath route on the switch), the
/// client makes new connections in [`LOOPS`] loops, node 1's rvsd is killed.
fn failover() -> Gap {
    let mut t = Bgp::new(2);
    t.start_birds();
    let route = t.wait_route_via(&[1, 2]);
    println!("switch$ ip route show {VIP}\n{route}");
    let loops = Loops::start(&mut t.lab, "client", &format!("http://{VIP}/"), LOOPS);
    std::thread::sleep(Duration::from_millis(1500));
    // Flows spread over both nodes (the switch hashes L4 ports).
    for i in 1..=2 {
        assert!(
            scheduled(&t, i) > 0,
            "node {i} got no connection before the kill"
        );
    }
    let kill_wall = wall();
    let killed = t.kill_rvsd(1);
    let withdrawn = t
        .wait_withdrawn(1, killed, Duration::from_secs(HOLD - KEEPALIVE))
        .unwrap_or_else(|| panic!("route via node 1 not withdrawn\n{}", t.diag()));
    std::thread::sleep(Duration::from_millis(1500));
    let g = Gap::of(&loops.stop(&mut t.lab), kill_wall, withdrawn);
    // After the withdrawal (and the requests then in flight), all answered.
    assert!(
        g.late_failures == 0 && g.any_after,
        "requests after the route was withdrawn must all be answered by node 2: {g:?}\n{}",
        t.diag()
    );
    g
}

/// The failover gap with BFD (a measurement, for BENCHMARKS.md; no timed
/// assertion): `RVS_GAP_RUNS=N` rounds, min / median / max printed.
#[test]
#[ignore = "a measurement: cargo test -p rvs-e2e --test bgp -- --ignored --nocapture"]
fn bgp_bfd_failover_gap() {
    let mut gaps = Vec::new();
    for run in 1..=gap::runs() {
        let g = failover();
        println!(
            "run {run}: route withdrawn {:.0} ms after SIGKILL; the last failed request started {:.0} ms and ended {:.0} ms after it; {}/{} requests failed",
            g.withdrawn_ms, g.last_fail_ms.0, g.last_fail_ms.1, g.failed, g.total
        );
        gaps.push(g);
    }
    gap::summary("rvsd killed", &gaps);
}

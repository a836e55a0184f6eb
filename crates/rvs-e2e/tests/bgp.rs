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
use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;

const VIP: &str = "123.1.2.3";
/// The switch's side and the lb's side of the inter-connection network.
const SWITCH_IP: &str = "172.10.0.1";
const LB_IP: &str = "172.10.0.2";
/// BGP timers, long next to BFD's 3 × 100 ms: after the lb dies, the hold
/// timer cannot expire before HOLD - KEEPALIVE seconds.
const HOLD: u64 = 9;
const KEEPALIVE: u64 = 3;

/// The rvs node's bird: the VIP taken from `dpdk1.kni` (`protocol direct`)
/// and announced over eBGP with BFD (the README's "BGP with BFD").
fn lb_bird_conf() -> String {
    format!(
        r#"log stderr all;
router id {LB_IP};
protocol device {{ scan time 1; }}
protocol direct {{ ipv4; interface "dpdk1.kni"; }}
protocol bfd {{ interface "dpdk1.kni" {{ interval 100 ms; multiplier 3; }}; }}
protocol bgp switch {{
  local {LB_IP} as 65002;
  neighbor {SWITCH_IP} as 65001;
  hold time {HOLD}; keepalive time {KEEPALIVE}; connect delay time 1; connect retry time 2;
  bfd on;
  ipv4 {{ import none; export where net ~ [ {VIP}/32 ]; }};
}}
"#
    )
}

/// The L3 switch: what it learns over BGP goes to its kernel table (merged
/// into multipath routes when several nodes announce the VIP).
fn switch_bird_conf() -> String {
    format!(
        r#"log stderr all;
router id {SWITCH_IP};
protocol device {{ scan time 1; }}
protocol kernel {{ ipv4 {{ import none; export all; }}; merge paths on; }}
protocol bfd {{ interface "lb0" {{ interval 100 ms; multiplier 3; }}; }}
protocol bgp lb1 {{
  local {SWITCH_IP} as 65001;
  neighbor {LB_IP} as 65002;
  hold time {HOLD}; keepalive time {KEEPALIVE}; connect delay time 1; connect retry time 2;
  bfd on;
  ipv4 {{ import all; export none; }};
}}
"#
    )
}

/// The lab: namespaces, links, nginx on the real servers, rvsd in `lb`.
struct Bgp {
    lab: Lab,
    rvsd: Rvsd,
}

impl Bgp {
    fn new() -> Bgp {
        rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft", "ping", "bird", "birdc"]);
        let mut lab = Lab::new();
        for n in ["client", "switch", "lb", "lan", "rs1", "rs2"] {
            lab.add_ns(n);
        }
        lab.veth("client", "eth0", "switch", "c0");
        lab.veth("switch", "lb0", "lb", "wan");
        lab.veth("lb", "lan", "lan", "p-lb");
        lab.veth("rs1", "eth0", "lan", "p-rs1");
        lab.veth("rs2", "eth0", "lan", "p-rs2");
        lab.must_in("lan", &["ip", "link", "add", "br0", "type", "bridge"]);
        for p in ["p-lb", "p-rs1", "p-rs2"] {
            lab.must_in("lan", &["ip", "link", "set", p, "master", "br0"]);
        }
        lab.must_in("lan", &["ip", "link", "set", "br0", "up"]);
        lab.must_in(
            "client",
            &["ip", "addr", "add", "10.0.0.2/24", "dev", "eth0"],
        );
        lab.must_in(
            "client",
            &["ip", "route", "add", "default", "via", "10.0.0.1"],
        );
        lab.must_in("switch", &["ip", "addr", "add", "10.0.0.1/24", "dev", "c0"]);
        lab.must_in(
            "switch",
            &[
                "ip",
                "addr",
                "add",
                &format!("{SWITCH_IP}/30"),
                "dev",
                "lb0",
            ],
        );
        // A router, ready for ECMP over several nodes (flows hashed by L4).
        lab.must_in("switch", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        lab.must_in(
            "switch",
            &["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"],
        );
        for (ns, a) in [("rs1", "192.168.100.2/24"), ("rs2", "192.168.100.3/24")] {
            lab.must_in(ns, &["ip", "addr", "add", a, "dev", "eth0"]);
            lab.nginx(ns, ns);
        }
        let rvsd = Rvsd::start(
            &mut lab,
            &[("dpdk0", "lan"), ("dpdk1", "wan")],
            &RvsdOpts::default(),
        );
        Bgp { lab, rvsd }
    }

    /// The tutorial's OSPF section for rvs and the lb's kernel, word for
    /// word (dpip → rvsip, ipvsadm → rvsadm).
    fn tutorial(&self) {
        let r = &self.rvsd;
        r.ok(
            "rvsip",
            &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
        );
        r.ok("rvsadm", &["-A", "-t", "123.1.2.3:80", "-s", "rr"]);
        for rs in ["192.168.100.2", "192.168.100.3"] {
            r.ok("rvsadm", &["-a", "-t", "123.1.2.3:80", "-r", rs, "-b"]);
        }
        for lip in ["192.168.100.200", "192.168.100.201"] {
            r.ok(
                "rvsadm",
                &[
                    "--add-laddr",
                    "-z",
                    lip,
                    "-t",
                    "123.1.2.3:80",
                    "-F",
                    "dpdk0",
                ],
            );
        }
        r.ok(
            "rvsip",
            &[
                "route",
                "add",
                "172.10.0.2/32",
                "dev",
                "dpdk1",
                "scope",
                "kni_host",
            ],
        );
        let l = &self.lab;
        l.must_in("lb", &["ip", "link", "set", "dpdk1.kni", "up"]);
        l.must_in(
            "lb",
            &["ip", "addr", "add", "172.10.0.2/30", "dev", "dpdk1.kni"],
        );
        l.must_in(
            "lb",
            &["ip", "addr", "add", "123.1.2.3/32", "dev", "dpdk1.kni"],
        );
        l.must_in(
            "lb",
            &[
                "ip",
                "route",
                "add",
                "default",
                "via",
                "172.10.0.1",
                "dev",
                "dpdk1.kni",
            ],
        );
        // "Check if inter-connection works by ping switch."
        let o = l.exec("lb", &["ping", "-c", "1", "-W", "2", SWITCH_IP]);
        assert!(
            o.status.success(),
            "lb$ ping {SWITCH_IP} through dpdk1.kni failed: {}\nrvsip -s link show:\n{}",
            String::from_utf8_lossy(&o.stdout),
            r.ok("rvsip", &["-s", "link", "show"])
        );
    }

    /// The switch kernel's route to the VIP (`ip route show VIP`).
    fn switch_route(&self) -> String {
        let o = self.lab.exec("switch", &["ip", "route", "show", VIP]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn diag(&self, birds: &[&Bird]) -> String {
        let mut s = format!(
            "switch$ ip route\n{}\nrvsip -s link show:\n{}\nrvsadm -ln --stats:\n{}\nrvsd log:\n{}",
            String::from_utf8_lossy(&self.lab.exec("switch", &["ip", "route"]).stdout),
            String::from_utf8_lossy(&self.rvsd.rvsip(&["-s", "link", "show"]).stdout),
            String::from_utf8_lossy(&self.rvsd.rvsadm(&["-ln", "--stats"]).stdout),
            self.rvsd.rvsd_log()
        );
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
    let mut t = Bgp::new();
    t.tutorial();
    let sw = Bird::start(&mut t.lab, "switch", "bird-switch", &switch_bird_conf());
    let lb = Bird::start(&mut t.lab, "lb", "bird-lb", &lb_bird_conf());

    // BGP (TCP 179 to the kni_host address) and BFD (UDP 3784) reach the
    // lb's kernel through dpdk1.kni, and its answers leave by dpdk1.
    assert!(
        established(&sw, "lb1") && established(&lb, "switch"),
        "the BGP session is not Established on both sides within 15 s\n{}",
        t.diag(&[&sw, &lb])
    );
    assert!(
        bfd_up(&sw, LB_IP) && bfd_up(&lb, SWITCH_IP),
        "the BFD session is not Up on both sides within 10 s\n{}",
        t.diag(&[&sw, &lb])
    );
    println!("switch$ birdc show protocols\n{}", sw.show("protocols"));
    println!(
        "switch$ birdc show bfd sessions\n{}",
        sw.show("bfd sessions")
    );
    println!(
        "lb$ birdc show route export switch\n{}",
        lb.show("route export switch")
    );

    // The switch's kernel routes the VIP to the lb (and nothing else the lb has).
    let route = sw
        .wait(Duration::from_secs(5), |_| {
            let r = t.switch_route();
            r.contains(&format!("via {LB_IP}")).then_some(r)
        })
        .unwrap_or_else(|| {
            panic!(
                "the switch's kernel has no route {VIP} via {LB_IP}\n{}",
                t.diag(&[&sw, &lb])
            )
        });
    println!("switch$ ip route show {VIP}\n{route}");
    assert!(route.contains("proto bird"), "{route}");
    let o = t.lab.exec(
        "switch",
        &["ip", "route", "show", "172.10.0.0/30", "proto", "bird"],
    );
    assert!(
        o.stdout.is_empty(),
        "the lb must announce only the VIP:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // The client, behind the switch, reaches both real servers (rr).
    let mut seen = Vec::new();
    for _ in 0..4 {
        let body = t
            .lab
            .curl("client", &format!("http://{VIP}/"))
            .unwrap_or_else(|e| {
                panic!(
                    "client$ curl http://{VIP}/ failed: {e}\n{}",
                    t.diag(&[&sw, &lb])
                )
            });
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
    let pid = t.lab.proc(t.rvsd.index).pid();
    let killed = Instant::now();
    rvs_e2e::must(&["kill", "-KILL", &pid.to_string()]);
    let limit = Duration::from_secs(HOLD - KEEPALIVE);
    let gone = sw.wait(limit, |_| {
        t.switch_route().is_empty().then(|| killed.elapsed())
    });
    let Some(gone) = gone else {
        panic!(
            "{VIP} still routed by the switch {limit:?} after rvsd was killed: {}\n{}",
            t.switch_route(),
            t.diag(&[&sw])
        );
    };
    println!(
        "route to {VIP} withdrawn {} ms after SIGKILL of rvsd (BFD 100 ms x 3; BGP hold {HOLD} s)",
        gone.as_millis()
    );
    let (state, info) = sw.protocol("lb1").unwrap_or_default();
    println!(
        "switch: BGP lb1 {state} {info}; BFD {:?}",
        sw.bfd_state(LB_IP)
    );
    assert!(
        info.contains("BFD session down"),
        "BFD, not the hold timer, must have brought the session down: {state} {info}\n{}",
        sw.log()
    );
}

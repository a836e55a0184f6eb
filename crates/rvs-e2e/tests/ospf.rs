//! The DPVS tutorial's OSPF section ("OSPF-cluster model"), word for word
//! (`dpip` → `rvsip`, `ipvsadm` → `rvsadm`, quagga → FRR 8): rvsd with the
//! tutorial's commands, the kernel side of `dpdk1.kni` as the tutorial sets
//! it, FRR's zebra and ospfd on it with the tutorial's zebra.conf and
//! ospfd.conf, an L3 switch (bird2) in front with a client behind it.
//!
//! What differs from the tutorial's files, and why:
//! - paths (`log file` in the lab's directory);
//! - the comments the tutorial writes after a command (`interface dpdk1.kni
//!   # should be wan-side kni device`) are on their own `!` lines: FRR only
//!   knows whole-line comments and refuses such a line ("No such command"),
//!   and then everything under it (the interface's timers, both `network`
//!   lines) is lost;
//! - the tutorial's masked passwords (`password ****`) are a word: FRR
//!   refuses a password that does not start with a letter or digit.
//!
//! Timers are the tutorial's (hello 10, dead 40). The adjacency forms on
//! hellos, but on a broadcast network each router first waits a dead
//! interval before electing a designated router, unless a neighbour already
//! claims the role (RFC 2328 9.4, BackupSeen): the switch waits 2 s (bird's
//! `wait 2`) and claims it, so the adjacency forms on its next hello.
//! The route follows about 10 s later: FRR sends two instances of its
//! router-LSA in one update, bird keeps the first (the second arrives within
//! MinLSArrival, 1 s, RFC 2328 13.(5)(a)) and gets the second when ospfd
//! retransmits it. Stopping ospfd (`kill PID`, SIGTERM) withdraws the route
//! at once, not after the dead interval: FRR floods its own LSAs at MaxAge
//! when it stops.
//!
//! ```text
//! client 10.0.0.48/16 ── 10.0.0.1 switch 172.10.0.1/30 ── wan (dpdk1) lb lan (dpdk0) ── bridge ── rs1 192.168.100.2
//!                              (bird, ospf)        dpdk1.kni 172.10.0.2/30,             └─ rs2 192.168.100.3
//!                                                  123.1.2.3/32 (zebra, ospfd)
//! ```

use std::time::{Duration, Instant};

use rvs_e2e::bird::Bird;
use rvs_e2e::frr::{require_frr, Frr};
use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;

/// The tutorial's VIP.
const VIP: &str = "123.1.2.3";

/// The tutorial's lab: `client` (10.0.0.48/16) behind `switch` (10.0.0.1/16,
/// 172.10.0.1/30 towards rvs, bird2), `lb` (rvsd: dpdk1 on the
/// inter-connection network, dpdk0 on the LAN), `lan` (a bridge) with the
/// real servers `rs1`/`rs2` (192.168.100.2 and .3, nginx).
struct Cluster {
    lab: Lab,
    rvsd: Rvsd,
    switch: Bird,
}

/// The L3 switch (the tutorial leaves its configuration to the reader).
/// Broadcast network type, as ospfd uses on `dpdk1.kni`; the tutorial's
/// timers; ECMP on (for several rvs nodes).
fn switch_conf() -> &'static str {
    r#"router id 172.10.0.1;
log stderr all;
protocol device { scan time 1; }
protocol kernel { ipv4 { export all; }; merge paths yes; }
protocol ospf v2 {
  ecmp yes;
  ipv4 { import all; export none; };
  area 0.0.0.0 {
    interface "eth-lb*" { type broadcast; hello 10; dead 40; wait 2; };
  };
}
"#
}

impl Cluster {
    fn new(opts: &RvsdOpts) -> Cluster {
        rvs_e2e::require_tools(&["ip", "nginx", "curl", "ping", "sysctl", "bird", "birdc"]);
        require_frr(&["zebra", "ospfd"]);
        let mut lab = Lab::new();
        for n in ["client", "switch", "lb", "lan", "rs1", "rs2"] {
            lab.add_ns(n);
        }
        lab.veth("client", "eth0", "switch", "eth-client");
        lab.veth("lb", "wan", "switch", "eth-lb");
        lab.veth("lb", "lan", "lan", "p-lb");
        lab.veth("rs1", "eth0", "lan", "p-rs1");
        lab.veth("rs2", "eth0", "lan", "p-rs2");
        lab.must_in("lan", &["ip", "link", "add", "br0", "type", "bridge"]);
        for p in ["p-lb", "p-rs1", "p-rs2"] {
            lab.must_in("lan", &["ip", "link", "set", p, "master", "br0"]);
        }
        lab.must_in("lan", &["ip", "link", "set", "br0", "up"]);
        for (ns, dev, a) in [
            ("client", "eth0", "10.0.0.48/16"),
            ("switch", "eth-client", "10.0.0.1/16"),
            ("switch", "eth-lb", "172.10.0.1/30"),
            ("rs1", "eth0", "192.168.100.2/24"),
            ("rs2", "eth0", "192.168.100.3/24"),
        ] {
            lab.must_in(ns, &["ip", "addr", "add", a, "dev", dev]);
        }
        lab.must_in(
            "client",
            &["ip", "route", "add", "default", "via", "10.0.0.1"],
        );
        for s in [
            "net.ipv4.ip_forward=1",
            "net.ipv4.fib_multipath_hash_policy=1",
        ] {
            lab.must_in("switch", &["sysctl", "-w", s]);
        }
        // The switch first: its hello timer runs while the rest comes up.
        let switch = Bird::start(&mut lab, "switch", "switch", switch_conf());
        lab.nginx("rs1", "rs1");
        lab.nginx("rs2", "rs2");
        let rvsd = Rvsd::start(&mut lab, &[("dpdk0", "lan"), ("dpdk1", "wan")], opts);
        Cluster { lab, rvsd, switch }
    }

    /// The tutorial's rvs part, word for word.
    fn tutorial_rvs(&self) {
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
    }

    /// The tutorial's kernel part on `dpdk1.kni`, word for word, and its
    /// check (`ping 172.10.0.1`).
    fn tutorial_kni(&self) {
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
        let o = l.exec(
            "lb",
            &["ping", "-c", "2", "-i", "0.2", "-W", "2", "172.10.0.1"],
        );
        println!(
            "lb$ ping 172.10.0.1\n{}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(
            o.status.success(),
            "the inter-connection network does not work (ping 172.10.0.1 from dpdk1.kni)\nrvsip -s link show:\n{}",
            self.rvsd.ok("rvsip", &["-s", "link", "show"])
        );
    }
}

/// The tutorial's zebra.conf.
fn zebra_conf(frr: &Frr) -> String {
    format!(
        "! -*- zebra -*-
!
! zebra sample configuration file
!
! Id: zebra.conf.sample,v 1.1 2002/12/13 20:15:30 paul Exp $
!
! change to it real hostname
hostname localhost.localdomain
password rvs
enable password rvs
log file {}
service password-encryption
",
        frr.path("zebra.log")
    )
}

/// The tutorial's ospfd.conf.
fn ospfd_conf(frr: &Frr) -> String {
    format!(
        "log file {}
log stdout
log syslog
password rvs
enable password rvs
! should be wan-side kni device
interface dpdk1.kni
ip ospf hello-interval 10
ip ospf dead-interval 40
router ospf
! just use LAN IP
ospf router-id 192.168.100.200
log-adjacency-changes
auto-cost reference-bandwidth 1000
! announce inter-connection network
network 172.10.0.0/30 area 0.0.0.0
! announce VIP
network 123.1.2.3/32 area 0.0.0.0
",
        frr.path("ospf.log")
    )
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `t`; panics
/// with `what` and the text `diag` gives.
fn wait_for<T>(
    what: &str,
    t: Duration,
    mut f: impl FnMut() -> Option<T>,
    diag: impl FnOnce() -> String,
) -> T {
    let end = Instant::now() + t;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > end {
            panic!("{what}: not within {t:?}\n{}", diag());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The line of `show ip ospf neighbor` (FRR) or `show ospf neighbors`
/// (bird) about `id`, if its state is Full.
fn full_line(out: &str, id: &str) -> Option<String> {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(id) && l.contains("Full"))
        .map(str::to_string)
}

/// The switch's kernel route to the VIP, if it goes via rvs's kni address.
fn vip_route(lab: &Lab) -> Option<String> {
    let r = lab.must_in("switch", &["ip", "route", "show", "123.1.2.3/32"]);
    r.contains("via 172.10.0.2").then_some(r)
}

/// The tutorial's OSPF section with `workers` workers.
fn ospf(workers: u16) {
    let mut c = Cluster::new(&RvsdOpts {
        workers,
        ..Default::default()
    });
    c.tutorial_rvs();
    c.tutorial_kni();
    let mut frr = Frr::new(&c.lab, "lb", "lb");
    let t0 = Instant::now();
    frr.start(&mut c.lab, "zebra", &zebra_conf(&frr));
    frr.start(&mut c.lab, "ospfd", &ospfd_conf(&frr));
    // The adjacency reaches Full on both sides.
    let (lab, sw) = (&c.lab, &c.switch);
    let (lb_line, sw_line) = wait_for(
        "OSPF adjacency Full on both sides",
        Duration::from_secs(45),
        || {
            let lb = full_line(&frr.vtysh(lab, "show ip ospf neighbor"), "172.10.0.1")?;
            let s = full_line(&sw.show("ospf neighbors"), "192.168.100.200")?;
            Some((lb, s))
        },
        || diag(&c, &frr),
    );
    let t_full = t0.elapsed();
    // By now both daemons have read their configuration.
    let errors = frr.config_errors();
    assert!(
        errors.is_empty(),
        "FRR refused lines of the tutorial's configuration:\n{}",
        errors.join("\n")
    );
    println!("lb$ vtysh -c 'show ip ospf neighbor'\n{lb_line}\nswitch$ birdc show ospf neighbors\n{sw_line}");

    // The switch learns the VIP from OSPF.
    let route = wait_for(
        "the switch's route to 123.1.2.3/32 via 172.10.0.2",
        Duration::from_secs(30),
        || vip_route(lab),
        || diag(&c, &frr),
    );
    let t_route = t0.elapsed();
    let birdr = sw.show(&format!("route for {VIP} all"));
    println!("switch$ ip route show 123.1.2.3/32\n{route}switch$ birdc show route for {VIP} all\n{birdr}");
    assert!(
        route.contains("proto bird") && birdr.contains("OSPF"),
        "the switch's route to the VIP must come from OSPF:\n{route}\n{birdr}"
    );
    println!("ospfd started -> Full {t_full:?}, -> route on the switch {t_route:?}");

    // The client reaches both real servers through the VIP (rr).
    let mut seen = Vec::new();
    for _ in 0..4 {
        let body = c
            .lab
            .curl("client", "http://123.1.2.3/")
            .unwrap_or_else(|e| {
                panic!(
                    "client$ curl http://123.1.2.3/ failed: {e}\n{}",
                    diag(&c, &frr)
                )
            });
        println!("client$ curl http://123.1.2.3/\n{body}");
        seen.push(
            body.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }
    for rs in ["rs1", "rs2"] {
        assert!(
            seen.iter().any(|s| s == rs),
            "{rs} never answered through the VIP (rr): {seen:?}"
        );
    }

    // Stopping ospfd withdraws the route on the switch well before the dead
    // interval: FRR flushes its LSAs (MaxAge) on SIGTERM. A neighbour
    // discards a new instance of an LSA that arrives within MinLSArrival
    // (1 s) of the previous one (RFC 2328 13.(5)(a)), so first let what
    // ospfd sent settle: nothing left to retransmit, then 1 s.
    wait_for(
        "ospfd's retransmission list to the switch empty",
        Duration::from_secs(15),
        || retransmit_empty(&frr.vtysh(&c.lab, "show ip ospf neighbor")).then_some(()),
        || diag(&c, &frr),
    );
    std::thread::sleep(Duration::from_millis(1100));
    let pid = frr.pid("ospfd");
    assert_eq!(
        pid,
        c.lab.proc(frr.daemon("ospfd")).pid(),
        "ospfd's pid file"
    );
    let t1 = Instant::now();
    rvs_e2e::must(&["kill", &pid.to_string()]);
    wait_for(
        "the switch's route to the VIP withdrawn after ospfd stopped (well within the dead interval, 40 s)",
        Duration::from_secs(10),
        || vip_route(&c.lab).is_none().then_some(()),
        || diag(&c, &frr),
    );
    println!(
        "ospfd stopped -> route withdrawn on the switch in {:?}",
        t1.elapsed()
    );
    let e = c.lab.curl("client", "http://123.1.2.3/");
    assert!(e.is_err(), "the VIP must no longer be reachable: {e:?}");
}

/// Whether FRR's neighbour line towards the switch has an empty
/// retransmission list (its `RXmtL` column, third from the end).
fn retransmit_empty(out: &str) -> bool {
    full_line(out, "172.10.0.1").is_some_and(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 3 && f[f.len() - 3] == "0"
    })
}

/// What to look at when something does not come up.
fn diag(c: &Cluster, frr: &Frr) -> String {
    let l = &c.lab;
    let vty = frr.dir.to_string_lossy().into_owned();
    let sh = |ns: &str, cmd: &[&str]| String::from_utf8_lossy(&l.exec(ns, cmd).stdout).into_owned();
    format!(
        "lb$ vtysh -c 'show ip ospf neighbor'\n{}\nlb$ vtysh -c 'show ip ospf interface'\n{}\n\
         switch$ birdc show ospf neighbors\n{}\nswitch$ birdc show ospf state\n{}\nswitch$ ip route\n{}\n\
         rvsip -s link show\n{}\nrvsadm -ln --stats\n{}\nFRR's refusals:\n{}\nospf.log:\n{}\nswitch bird log:\n{}\nrvsd log:\n{}",
        sh("lb", &["vtysh", "--vty_socket", &vty, "-c", "show ip ospf neighbor"]),
        sh("lb", &["vtysh", "--vty_socket", &vty, "-c", "show ip ospf interface"]),
        c.switch.birdc(&["show", "ospf", "neighbors"]).unwrap_or_else(|e| e),
        c.switch.birdc(&["show", "ospf", "state"]).unwrap_or_else(|e| e),
        sh("switch", &["ip", "route"]),
        String::from_utf8_lossy(&c.rvsd.rvsip(&["-s", "link", "show"]).stdout),
        String::from_utf8_lossy(&c.rvsd.rvsadm(&["-ln", "--stats"]).stdout),
        frr.config_errors().join("\n"),
        std::fs::read_to_string(frr.dir.join("ospf.log")).unwrap_or_default(),
        c.switch.log(),
        c.rvsd.rvsd_log(),
    )
}

#[test]
fn ospf_one_worker() {
    ospf(1);
}

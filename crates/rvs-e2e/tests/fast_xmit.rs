//! Fast xmit with two upstream routers: rvs has no route to either client
//! network (as in the tutorial's OSPF model, where the default route is the
//! kernel's, on the kni device), yet each flow is answered through the
//! router that delivered it. With `[pipeline] fast_xmit = false` (DPVS's
//! `fast_xmit_close`) the route table decides and the replies are dropped as
//! `no_route`.
//!
//! ```text
//! c1 (172.16.1.2) - r1 (.1 | 10.0.0.11) \
//!                                        wsw (bridge) - lb wan (dpdk1: 10.0.0.1/24, VIP 10.0.0.100)
//! c2 (172.16.2.2) - r2 (.1 | 10.0.0.12) /               lb lan (dpdk0) - sw - rs1, rs2
//! ```
//! Neither router knows the other's client network, so a reply sent through
//! the wrong router is lost.

use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;
use std::time::Duration;

const VIP: &str = "10.0.0.100";

fn lab() -> (Lab, Rvsd) {
    let mut lab = Lab::new();
    for n in ["c1", "c2", "r1", "r2", "wsw", "lb", "sw", "rs1", "rs2"] {
        lab.add_ns(n);
    }
    lab.veth("c1", "eth0", "r1", "downlink");
    lab.veth("c2", "eth0", "r2", "downlink");
    lab.veth("r1", "uplink", "wsw", "p-r1");
    lab.veth("r2", "uplink", "wsw", "p-r2");
    lab.veth("lb", "wan", "wsw", "p-lb");
    lab.veth("lb", "lan", "sw", "p-lb");
    lab.veth("rs1", "eth0", "sw", "p-rs1");
    lab.veth("rs2", "eth0", "sw", "p-rs2");
    for (ns, ports) in [
        ("wsw", &["p-r1", "p-r2", "p-lb"]),
        ("sw", &["p-lb", "p-rs1", "p-rs2"]),
    ] {
        lab.must_in(ns, &["ip", "link", "add", "br0", "type", "bridge"]);
        for p in ports {
            lab.must_in(ns, &["ip", "link", "set", p, "master", "br0"]);
        }
        lab.must_in(ns, &["ip", "link", "set", "br0", "up"]);
    }
    for (c, r, i) in [("c1", "r1", 1), ("c2", "r2", 2)] {
        let net = format!("172.16.{i}");
        lab.must_in(
            c,
            &["ip", "addr", "add", &format!("{net}.2/24"), "dev", "eth0"],
        );
        lab.must_in(
            c,
            &["ip", "route", "add", "default", "via", &format!("{net}.1")],
        );
        lab.must_in(
            r,
            &[
                "ip",
                "addr",
                "add",
                &format!("{net}.1/24"),
                "dev",
                "downlink",
            ],
        );
        let up = format!("10.0.0.1{i}/24");
        lab.must_in(r, &["ip", "addr", "add", &up, "dev", "uplink"]);
        lab.must_in(r, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        // The VIP through rvs's interconnect address; no default route.
        lab.must_in(
            r,
            &[
                "ip",
                "route",
                "add",
                &format!("{VIP}/32"),
                "via",
                "10.0.0.1",
            ],
        );
    }
    for (rs, a) in [("rs1", "192.168.100.2/24"), ("rs2", "192.168.100.3/24")] {
        lab.must_in(rs, &["ip", "addr", "add", a, "dev", "eth0"]);
        lab.nginx(rs, rs);
    }
    let r = Rvsd::start(
        &mut lab,
        &[("dpdk0", "lan"), ("dpdk1", "wan")],
        &RvsdOpts::default(),
    );
    // The tutorial's FNAT service; the only routes are the connected ones.
    r.ok("rvsip", &["addr", "add", "10.0.0.1/24", "dev", "dpdk1"]);
    r.ok(
        "rvsip",
        &["addr", "add", &format!("{VIP}/32"), "dev", "dpdk1"],
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
    r.ok(
        "rvsadm",
        &[
            "--add-laddr",
            "-z",
            "192.168.100.200",
            "-t",
            &svc,
            "-F",
            "dpdk0",
        ],
    );
    for rs in ["rs1", "rs2"] {
        lab.wait_port(rs, 80, Duration::from_secs(5));
    }
    (lab, r)
}

fn curl(lab: &Lab, ns: &str) -> Result<String, String> {
    let o = lab.exec(
        ns,
        &["curl", "-s", "--max-time", "2", &format!("http://{VIP}/")],
    );
    match o.status.success() {
        true => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        false => Err(format!("curl exit {:?}", o.status.code())),
    }
}

#[test]
fn replies_go_back_through_the_router_each_flow_came_from() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl"]);
    let (mut lab, r) = lab();
    let routes = r.ok("rvsip", &["route", "show"]);
    println!("$ rvsip route show\n{routes}");
    assert!(
        !routes.contains("172.16."),
        "the test needs rvs without a route to the clients:\n{routes}"
    );
    for ns in ["c1", "c2", "c1", "c2"] {
        let body = curl(&lab, ns).unwrap_or_else(|e| {
            panic!(
                "{ns}$ curl {VIP}: {e}\n{}\nrvsd log:\n{}",
                r.ok("rvsip", &["-s", "link", "show"]),
                r.rvsd_log()
            )
        });
        println!("{ns}$ curl http://{VIP}/ -> {body}");
        assert!(
            body.starts_with("rs1 ") || body.starts_with("rs2 "),
            "{body}"
        );
    }
    assert_eq!(r.drops("no_route"), 0);

    // fast_xmit = false (DPVS's fast_xmit_close), applied by SIGHUP: the
    // route table decides, and it has no route to the clients.
    let text = std::fs::read_to_string(&r.conf).expect("rvsd config");
    std::fs::write(&r.conf, format!("{text}\n[pipeline]\nfast_xmit = false\n")).expect("config");
    lab.proc(r.index).signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    let e = curl(&lab, "c1");
    let n = r.drops("no_route");
    println!("with fast_xmit = false: curl {e:?}, no_route drops {n}");
    assert!(
        e.is_err(),
        "without fast xmit and without a route, no answer"
    );
    assert!(n > 0, "the replies are counted as no_route");
}

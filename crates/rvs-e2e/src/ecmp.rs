//! Several rvs nodes behind an L3 switch that spreads flows over them by
//! ECMP: the lab of `tests/ecmp.rs` and of `rvs-bench survival`.
//!
//! Namespaces: `client` (172.16.0.2) behind the switch `sw`; bridges `wsw`
//! (the switch's 10.0.0.254 and each node's WAN, 10.0.0.N), `lsw` (each
//! node's LAN, the real servers rs1 and rs2 at 192.168.100.2/.3, and the
//! switch's 192.168.100.254, their gateway) and `ssw` (each node's kernel
//! `sync` link, 10.9.0.N); nodes `lb1`..`lbN`. The switch's route to the VIP
//! is a static multipath route with `fib_multipath_hash_policy = 1` (flows
//! spread by L4 hash); [`Ecmp::route`] changes which nodes it points at, as
//! a routing protocol would when a node joins or leaves. The nodes have no
//! route to the client: fast xmit answers through the switch.

use std::path::Path;

use crate::rvsd::{Rvsd, RvsdOpts};
use crate::{bin, Lab};

/// The VIP every node serves.
pub const VIP: &str = "10.0.0.100";

/// What the nodes run.
#[derive(Clone, Debug)]
pub struct EcmpOpts {
    /// Nodes (lb1..lbN).
    pub nodes: u8,
    /// rvsd options of every node (with sync, its `[sync]` is appended).
    pub rvsd: RvsdOpts,
    /// Active-active connection sync (`[sync] role = "both"`) on the `sync` links.
    pub sync: bool,
    /// The real servers are DR real servers (the VIP on lo, no ARP for it).
    pub dr: bool,
}

/// The lab, its nodes' rvsd (node `i` is `nodes[i - 1]`).
pub struct Ecmp {
    /// The lab (dropping it removes everything).
    pub lab: Lab,
    /// rvsd of each node.
    pub nodes: Vec<Rvsd>,
}

impl Ecmp {
    /// Builds the lab and starts rvsd on every node (no service yet).
    pub fn new(o: &EcmpOpts) -> Ecmp {
        let mut lab = Lab::new();
        for n in ["client", "sw", "wsw", "lsw", "ssw", "rs1", "rs2"] {
            lab.add_ns(n);
        }
        lab.veth("client", "eth0", "sw", "down");
        lab.veth("sw", "wan", "wsw", "p-sw");
        lab.veth("sw", "lan", "lsw", "p-sw");
        let mut bridges = vec![
            ("wsw", vec!["p-sw".to_string()]),
            ("lsw", vec!["p-sw".to_string()]),
            ("ssw", vec![]),
        ];
        for i in 1..=o.nodes {
            let lb = format!("lb{i}");
            lab.add_ns(&lb);
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
        let ip = |ns: &str, args: &[&str]| lab.must_in(ns, &[&["ip"][..], args].concat());
        ip("client", &["addr", "add", "172.16.0.2/24", "dev", "eth0"]);
        ip("client", &["route", "add", "default", "via", "172.16.0.1"]);
        ip("sw", &["addr", "add", "172.16.0.1/24", "dev", "down"]);
        ip("sw", &["addr", "add", "10.0.0.254/24", "dev", "wan"]);
        ip("sw", &["addr", "add", "192.168.100.254/24", "dev", "lan"]);
        lab.must_in("sw", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        lab.must_in(
            "sw",
            &["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"],
        );
        for (rs, a) in [("rs1", "192.168.100.2/24"), ("rs2", "192.168.100.3/24")] {
            lab.must_in(rs, &["ip", "addr", "add", a, "dev", "eth0"]);
            lab.must_in(
                rs,
                &["ip", "route", "add", "default", "via", "192.168.100.254"],
            );
            if o.dr {
                // The tutorial's DR real server: the VIP on lo, no ARP for it.
                let vip = format!("{VIP}/32");
                lab.must_in(rs, &["ip", "addr", "add", &vip, "dev", "lo"]);
                for k in ["lo.arp_ignore=1", "all.arp_ignore=1", "all.arp_announce=2"] {
                    lab.must_in(rs, &["sysctl", "-qw", &format!("net.ipv4.conf.{k}")]);
                }
            }
            lab.nginx(rs, rs);
        }
        let nodes = (1..=o.nodes)
            .map(|i| {
                let mut opts = o.rvsd.clone();
                if o.sync {
                    opts.extra.push_str(&format!(
                        "\n[sync]\nrole = \"both\"\nsync_id = 7\nmcast_interface = \"sync\"\nnode_id = {i}\n"
                    ));
                }
                let lb = format!("lb{i}");
                let lans = [("dpdk0", "lan"), ("dpdk1", "wan")];
                let r = Rvsd::start_in(&mut lab, &lb, &format!("{lb}-"), &lans, &opts);
                let own = format!("10.0.0.{i}/24");
                r.ok("rvsip", &["addr", "add", &own, "dev", "dpdk1"]);
                r
            })
            .collect();
        Ecmp { lab, nodes }
    }

    /// rvsd of node `i` (1-based).
    pub fn node(&self, i: u8) -> &Rvsd {
        &self.nodes[usize::from(i) - 1]
    }

    /// The tutorial's FNAT service on node `i`, with its own local address
    /// 192.168.100.(200 + i).
    pub fn fnat(&self, i: u8) {
        let r = self.node(i);
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

    /// Points the switch's route to the VIP at nodes `nodes`.
    pub fn route(&self, nodes: &[u8]) {
        let mut cmd: Vec<String> = ["ip", "route", "replace", &format!("{VIP}/32")]
            .map(String::from)
            .to_vec();
        for n in nodes {
            cmd.extend(["nexthop".into(), "via".into(), format!("10.0.0.{n}")]);
        }
        let c: Vec<&str> = cmd.iter().map(String::as_str).collect();
        self.lab.must_in("sw", &c);
    }

    /// Starts `rvs-bench survival-client` in the client namespace: `conns`
    /// keep-alive connections to the VIP, a request each every
    /// `interval_ms`, for `seconds`, its result written to `out`. Returns
    /// its index in the lab.
    pub fn keepalive_client(
        &mut self,
        conns: usize,
        interval_ms: u64,
        seconds: u64,
        out: &Path,
    ) -> usize {
        let bench = bin("rvs-bench").to_string_lossy().into_owned();
        self.lab.spawn(
            "client",
            "survival-client",
            &[
                &bench,
                "survival-client",
                "--target",
                &format!("{VIP}:80"),
                "--conns",
                &conns.to_string(),
                "--interval-ms",
                &interval_ms.to_string(),
                "--seconds",
                &seconds.to_string(),
                "--out",
                &out.to_string_lossy(),
            ],
            &[],
        )
    }
}

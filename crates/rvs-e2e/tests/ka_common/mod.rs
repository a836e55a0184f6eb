//! The lab of the rvs-keepalived tests: rvs nodes (rvsd with its kni
//! device) on one LAN segment running rvs-keepalived, and the checks the
//! tests share.
#![allow(dead_code)] // each test file uses part of it

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;

pub const VIP: &str = "192.168.100.254";

pub fn tools() {
    rvs_e2e::require_tools(&["ip", "ping", "arping", "keepalived"]);
}

/// One rvs node: rvsd on `lan` (dpdk0) and its kni address.
pub struct Node {
    pub ns: &'static str,
    pub rvsd: Rvsd,
    /// The MAC of its port (and of `dpdk0.kni`).
    pub mac: String,
    pub conf: PathBuf,
    pub keepalived: Option<usize>,
}

/// The lab and its rvs nodes (n1 is `nodes[0]`).
pub struct Pair {
    pub lab: Lab,
    pub nodes: Vec<Node>,
}

pub fn tutorial_conf() -> String {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rvs-keepalived/testdata/tutorial-master.conf"
    );
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// The tutorial's file for the backup: only state and priority differ.
pub fn backup_conf() -> String {
    let t = tutorial_conf();
    let b = t
        .replace("state MASTER", "state BACKUP")
        .replace("priority 100", "priority 80");
    assert!(
        b.contains("state BACKUP") && b.contains("priority 80"),
        "{b}"
    );
    b
}

pub fn mac_of(lab: &Lab, ns: &str, dev: &str) -> String {
    let out = lab.must_in(ns, &["ip", "-o", "link", "show", dev]);
    let w: Vec<&str> = out.split_whitespace().collect();
    let i = w.iter().position(|x| *x == "link/ether").expect("mac");
    w[i + 1].to_string()
}

pub fn node(lab: &mut Lab, ns: &'static str, kni_addr: &str, conf: &str) -> Node {
    node_ll(lab, ns, kni_addr, None, conf)
}

/// A node whose kni device has the link-local address `ll` (if given) and
/// no other.
pub fn node_ll(
    lab: &mut Lab,
    ns: &'static str,
    kni_addr: &str,
    ll: Option<&str>,
    conf: &str,
) -> Node {
    let rvsd = Rvsd::start_in(
        lab,
        ns,
        &format!("{ns}-"),
        &[("dpdk0", "lan")],
        &RvsdOpts::default(),
    );
    if ll.is_some() {
        lab.must_in(
            ns,
            &["ip", "link", "set", "dpdk0.kni", "addrgenmode", "none"],
        );
    }
    lab.must_in(ns, &["ip", "link", "set", "dpdk0.kni", "up"]);
    if let Some(ll) = ll {
        lab.must_in(
            ns,
            &[
                "ip",
                "addr",
                "add",
                &format!("{ll}/64"),
                "dev",
                "dpdk0.kni",
                "nodad",
            ],
        );
    }
    lab.must_in(
        ns,
        &[
            "ip",
            "addr",
            "add",
            &format!("{kni_addr}/24"),
            "dev",
            "dpdk0.kni",
        ],
    );
    rvsd.ok(
        "rvsip",
        &[
            "route",
            "add",
            &format!("{kni_addr}/32"),
            "dev",
            "dpdk0",
            "scope",
            "kni_host",
        ],
    );
    let mac = mac_of(lab, ns, "lan");
    assert_eq!(
        mac,
        mac_of(lab, ns, "dpdk0.kni"),
        "the kni device has the port's MAC"
    );
    let conf = lab.file(&format!("{ns}-keepalived.conf"), conf);
    Node {
        ns,
        rvsd,
        mac,
        conf,
        keepalived: None,
    }
}

pub fn pair() -> Pair {
    pair_with(&tutorial_conf(), &backup_conf(), false)
}

/// Two nodes running `c1` and `c2`; with `v6`, the kni devices have the
/// link-local addresses fe80::11 and fe80::12 and the client 2001:db8::48.
pub fn pair_with(c1: &str, c2: &str, v6: bool) -> Pair {
    tools();
    let mut lab = Lab::new();
    for n in ["n1", "n2", "sw", "client"] {
        lab.add_ns(n);
    }
    lab.veth("n1", "lan", "sw", "p-n1");
    lab.veth("n2", "lan", "sw", "p-n2");
    lab.veth("client", "eth0", "sw", "p-c");
    lab.must_in("sw", &["ip", "link", "add", "br0", "type", "bridge"]);
    for p in ["p-n1", "p-n2", "p-c"] {
        lab.must_in("sw", &["ip", "link", "set", p, "master", "br0"]);
    }
    lab.must_in("sw", &["ip", "link", "set", "br0", "up"]);
    lab.must_in(
        "client",
        &["ip", "addr", "add", "192.168.100.48/24", "dev", "eth0"],
    );
    if v6 {
        lab.must_in(
            "client",
            &[
                "ip",
                "addr",
                "add",
                "2001:db8::48/64",
                "dev",
                "eth0",
                "nodad",
            ],
        );
    }
    let (l1, l2) = if v6 {
        (Some("fe80::11"), Some("fe80::12"))
    } else {
        (None, None)
    };
    let n1 = node_ll(&mut lab, "n1", "192.168.100.11", l1, c1);
    let n2 = node_ll(&mut lab, "n2", "192.168.100.12", l2, c2);
    Pair {
        lab,
        nodes: vec![n1, n2],
    }
}

impl Pair {
    pub fn node(&mut self, which: u8) -> &mut Node {
        &mut self.nodes[which as usize - 1]
    }

    /// Starts rvs-keepalived on node `which` with keepalived's options.
    pub fn start_keepalived(&mut self, which: u8) {
        let bin = rvs_e2e::bin("rvs-keepalived")
            .to_string_lossy()
            .into_owned();
        let dir = self.lab.dir.clone();
        let n = &self.nodes[which as usize - 1];
        let (ns, conf, sock) = (
            n.ns,
            n.conf.to_string_lossy().into_owned(),
            n.rvsd.socket.clone(),
        );
        let pid = dir
            .join(format!("{ns}-keepalived.pid"))
            .to_string_lossy()
            .into_owned();
        let i = self.lab.spawn(
            ns,
            &format!("{ns}-keepalived"),
            &[&bin, "-n", "-l", "-D", "-f", &conf, "-p", &pid],
            &[("RVS_SOCKET", &sock)],
        );
        self.node(which).keepalived = Some(i);
    }

    pub fn keepalived_log(&mut self, which: u8) -> String {
        let i = self.node(which).keepalived.expect("started");
        self.lab.proc(i).log()
    }

    pub fn logs(&mut self) -> String {
        let mut s = String::new();
        for w in 1..=self.nodes.len() as u8 {
            if self.node(w).keepalived.is_some() {
                s += &format!("--- n{w} rvs-keepalived:\n{}\n", self.keepalived_log(w));
            }
        }
        s
    }

    pub fn signal(&mut self, which: u8, sig: &str) {
        let i = self.node(which).keepalived.expect("started");
        self.lab.proc(i).signal(sig);
    }
}

/// Whether rvsd of `n` has the VIP (`rvsip addr show`); None if rvsd is gone.
pub fn has_vip(n: &Node) -> Option<bool> {
    let o = n.rvsd.rvsip(&["addr", "show"]);
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).contains(&format!("{VIP}/")))
}

pub fn wait_for(t: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < t {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The MACs that answer the client's ARP requests for `ip`.
pub fn arp_answers_for(lab: &Lab, ip: &str) -> Vec<String> {
    let o = lab.exec(
        "client",
        &["arping", "-c", "2", "-w", "2", "-I", "eth0", ip],
    );
    let out = String::from_utf8_lossy(&o.stdout).to_lowercase();
    println!("client$ arping {ip}\n{out}");
    // Habets' arping (Debian's `arping`): "58 bytes from MAC (IP): ...";
    // iputils' arping: "Unicast reply from IP [MAC] ...".
    let mut macs: Vec<String> = out
        .lines()
        .filter_map(|l| {
            if let Some(r) = l.split(" bytes from ").nth(1) {
                return r.split_whitespace().next().map(str::to_string);
            }
            let s = l.find("reply from").and_then(|_| l.find('['))?;
            let e = l.find(']')?;
            Some(l[s + 1..e].to_string())
        })
        .collect();
    macs.sort();
    macs.dedup();
    macs
}

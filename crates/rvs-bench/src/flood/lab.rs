//! The flood labs: the same namespaces and addresses in front of rvsd or in
//! front of the kernel (nftables DNAT + SNAT, the real servers' own SYN
//! cookies), and a sink that takes a flood without any load balancer. The
//! load balancer gets CPU 1; the load (wrk, the generator, nginx) CPU 0.

use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;

use super::text;

/// The VIP of the tutorial's FNAT service.
pub const VIP: &str = "10.0.0.100";
/// The attacker's own address.
pub const ATTACKER: &str = "10.0.0.66";
/// A namespace on the WAN bridge that drops everything (the control flood's target).
pub const SINK: &str = "10.0.0.99";
/// The real servers.
const RS: [(&str, &str); 2] = [("rs1", "192.168.100.2"), ("rs2", "192.168.100.3")];
/// The local address (FNAT's source towards the real servers).
const LADDR: &str = "192.168.100.200";

/// Which load balancer the lab puts between the client and the real servers.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbKind {
    /// rvsd with the tutorial's FNAT service.
    Rvs,
    /// The kernel: nftables DNAT to the real servers (round robin) and SNAT
    /// to the local address, conntrack; the real servers answer floods with
    /// their own SYN cookies (`tcp_syncookies = 1`).
    Kernel,
    /// `kernel` with nftables' SYN proxy in front (the kernel's SYN cookies
    /// on the load balancer itself): SYNs to the VIP are not tracked, the
    /// lb answers them, and replays the handshake to a real server
    /// (DNAT in the output hook) once the client's ACK has a valid cookie.
    KernelSynproxy,
}

/// The load balancer of a lab.
pub enum Lb {
    /// rvsd.
    Rvs(Rvsd),
    /// The kernel of the `lb` namespace.
    Kernel,
}

impl Lb {
    /// Local ports (rvs: `sa_used` of `rvsip addr show`) or conntrack entries
    /// (kernel) in use now.
    pub fn in_use(&self, lab: &Lab) -> u64 {
        match self {
            Lb::Rvs(r) => {
                let s = r.ok("rvsip", &["addr", "show"]);
                s.split_whitespace()
                    .skip_while(|w| *w != "sa_used")
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            }
            Lb::Kernel => {
                let o = lab.exec("lb", &["cat", "/proc/sys/net/netfilter/nf_conntrack_count"]);
                text(&o).trim().parse().unwrap_or(0)
            }
        }
    }

    /// rvsd's pid (none for the kernel).
    pub fn pid(&self, lab: &mut Lab) -> Option<u32> {
        match self {
            Lb::Rvs(r) => Some(lab.proc(r.index).pid()),
            Lb::Kernel => None,
        }
    }
}

/// The lab: client 10.0.0.48, attacker 10.0.0.66 and the sink on the WAN
/// bridge with the load balancer's `wan`; rs1, rs2 on the LAN bridge with
/// its `lan`.
pub fn build(kind: LbKind, backend: &str) -> (Lab, Lb) {
    let mut lab = Lab::new();
    for n in [
        "client", "attacker", "sink", "wsw", "lb", "sw", "rs1", "rs2",
    ] {
        lab.add_ns(n);
    }
    for n in ["client", "attacker", "sink"] {
        lab.veth(n, "eth0", "wsw", &format!("p-{n}"));
    }
    lab.veth("lb", "wan", "wsw", "p-lb");
    lab.veth("lb", "lan", "sw", "p-lb");
    for (rs, _) in RS {
        lab.veth(rs, "eth0", "sw", &format!("p-{rs}"));
    }
    bridge(&lab, "wsw", &["p-client", "p-attacker", "p-sink", "p-lb"]);
    // A spoofing attacker never sees the answers (they go to the forged
    // sources): the switch drops them instead of making CPU 0 receive them,
    // whether the load balancer sends them back to the attacker's MAC (rvs:
    // to where the packet came from) or to its default gateway (the
    // kernel: the sink stands in for the upstream router).
    nft(
        &lab,
        "wsw",
        &format!(
            "table bridge wsw {{\n  chain spoofed {{ type filter hook forward priority 0;\n    oifname \"p-attacker\" drop\n    oifname \"p-sink\" ip daddr != {SINK} drop\n  }}\n}}\n"
        ),
    );
    bridge(&lab, "sw", &["p-lb", "p-rs1", "p-rs2"]);
    for (ns, a) in [
        ("client", "10.0.0.48/16"),
        ("attacker", "10.0.0.66/16"),
        ("sink", "10.0.0.99/16"),
        ("rs1", "192.168.100.2/24"),
        ("rs2", "192.168.100.3/24"),
    ] {
        lab.must_in(ns, &["ip", "addr", "add", a, "dev", "eth0"]);
    }
    nft(
        &lab,
        "sink",
        "table inet sink {\n  chain in { type filter hook input priority 0; policy drop; }\n}\n",
    );
    for (rs, _) in RS {
        let i = lab.nginx(rs, rs);
        let pid = lab.proc(i).pid().to_string();
        rvs_e2e::must(&["taskset", "-a", "-cp", "0", &pid]);
    }
    steer_receive(&lab);
    let lb = match kind {
        LbKind::Rvs => {
            let opts = RvsdOpts {
                backend: backend.to_string(),
                conn_capacity: 1 << 20,
                cpus: vec![1],
                ..Default::default()
            };
            let r = Rvsd::start(&mut lab, &[("dpdk0", "lan"), ("dpdk1", "wan")], &opts);
            r.tutorial_fnat();
            Lb::Rvs(r)
        }
        LbKind::Kernel | LbKind::KernelSynproxy => {
            kernel_lb(&lab, kind == LbKind::KernelSynproxy);
            Lb::Kernel
        }
    };
    (lab, lb)
}

/// Receive processing (RPS): the load balancer's interfaces on CPU 1, the
/// rest on CPU 0, where the load runs (as `rvs-bench e2e` does).
fn steer_receive(lab: &Lab) {
    let set = |ns: &str, iface: &str, mask: &str| {
        crate::e2e::bed::rps(lab, ns, iface, mask).unwrap_or_else(|e| panic!("{e}"));
    };
    set("lb", "wan", "2");
    set("lb", "lan", "2");
    for ns in ["client", "attacker", "sink", "rs1", "rs2"] {
        set(ns, "eth0", "1");
    }
    for (ns, p) in [("wsw", "p-lb"), ("sw", "p-lb")] {
        set(ns, p, "1");
    }
}

/// A bridge `br0` in `ns` over `ports`.
fn bridge(lab: &Lab, ns: &str, ports: &[&str]) {
    lab.must_in(ns, &["ip", "link", "add", "br0", "type", "bridge"]);
    lab.must_in(ns, &["sh", "-c", crate::e2e::bed::BRIDGE_NO_NF]);
    for p in ports {
        lab.must_in(ns, &["ip", "link", "set", p, "master", "br0"]);
    }
    lab.must_in(ns, &["ip", "link", "set", "br0", "up"]);
}

/// Loads an nftables ruleset into `ns`.
fn nft(lab: &Lab, ns: &str, rules: &str) {
    let f = lab.file(&format!("{ns}.nft"), rules);
    lab.must_in(ns, &["nft", "-f", &f.to_string_lossy()]);
}

/// The kernel as the load balancer: the VIP on `wan`, the local address on
/// `lan`, forwarding on, DNAT round robin to the real servers and SNAT to
/// the local address (full NAT, like the tutorial's FNAT service); with
/// `synproxy`, nftables' SYN proxy answers the SYNs.
fn kernel_lb(lab: &Lab, synproxy: bool) {
    lab.must_in("lb", &["ip", "link", "set", "wan", "up"]);
    lab.must_in("lb", &["ip", "link", "set", "lan", "up"]);
    lab.must_in(
        "lb",
        &["ip", "addr", "add", &format!("{VIP}/16"), "dev", "wan"],
    );
    lab.must_in(
        "lb",
        &["ip", "addr", "add", &format!("{LADDR}/24"), "dev", "lan"],
    );
    lab.must_in("lb", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    // The answers to forged sources leave by the default route, as they
    // would towards the upstream router (else the kernel drops them for
    // want of a route, which spares it the transmit rvs pays).
    lab.must_in("lb", &["ip", "route", "add", "default", "via", SINK]);
    let dnat = format!(
        "ip daddr {VIP} tcp dport 80 dnat to numgen inc mod 2 map {{ 0 : {}, 1 : {} }}",
        RS[0].1, RS[1].1
    );
    let mut rules = format!(
        "table ip lb {{
  chain pre {{ type nat hook prerouting priority dstnat; policy accept; {dnat}; }}
  chain post {{ type nat hook postrouting priority srcnat; policy accept; ip daddr 192.168.100.0/24 snat to {LADDR}; }}
"
    );
    if synproxy {
        // The client's ACK must be invalid (not picked up mid-stream) to
        // reach the SYN proxy; the replayed SYN leaves by the output hook.
        lab.must_in(
            "lb",
            &["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0"],
        );
        rules += &format!(
            "  chain raw {{ type filter hook prerouting priority raw; policy accept; ip daddr {VIP} tcp dport 80 tcp flags syn notrack; }}
  chain out {{ type nat hook output priority -100; policy accept; {dnat}; }}
  chain in {{ type filter hook input priority filter; policy accept;
    ip daddr {VIP} tcp dport 80 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
    ct state invalid drop
  }}
"
        );
    }
    rules += "}\n";
    nft(lab, "lb", &rules);
}

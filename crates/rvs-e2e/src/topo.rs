//! The tutorial's topologies, built in a [`Lab`], with rvsd running in the
//! `lb` namespace and the operator tools talking to it.

pub use crate::rvsd::{Rvsd, RvsdOpts};
use crate::Lab;

/// rvsd and its namespaces: `client` (10.0.0.48/16) on the WAN side,
/// `rs1`/`rs2` (192.168.100.2 and .3/24) behind a switch (`sw`, a bridge) on
/// the LAN side, `lb` in the middle with `wan` (dpdk1) and `lan` (dpdk0).
pub struct TwoArm {
    /// The lab (dropping it removes everything).
    pub lab: Lab,
    /// The daemon (its tools and log are reached through `Deref`).
    pub rvsd: Rvsd,
}

impl std::ops::Deref for TwoArm {
    type Target = Rvsd;
    fn deref(&self) -> &Rvsd {
        &self.rvsd
    }
}

impl TwoArm {
    /// Builds the namespaces and links, starts nginx on both real servers and rvsd.
    pub fn new(opts: &RvsdOpts) -> TwoArm {
        let mut lab = Lab::new();
        for n in ["client", "lb", "sw", "rs1", "rs2"] {
            lab.add_ns(n);
        }
        lab.veth("client", "eth0", "lb", "wan");
        lab.veth("lb", "lan", "sw", "p-lb");
        lab.veth("rs1", "eth0", "sw", "p-rs1");
        lab.veth("rs2", "eth0", "sw", "p-rs2");
        if opts.backend.starts_with("dpdk-") {
            // DPDK's vdevs read no checksum metadata (no PACKET_VNET_HDR),
            // so veth neighbours must send whole checksums, as a NIC does.
            for ns in ["client", "rs1", "rs2"] {
                lab.must_in(ns, &["ethtool", "-K", "eth0", "tx", "off"]);
            }
        }
        lab.must_in("sw", &["ip", "link", "add", "br0", "type", "bridge"]);
        for p in ["p-lb", "p-rs1", "p-rs2"] {
            lab.must_in("sw", &["ip", "link", "set", p, "master", "br0"]);
        }
        lab.must_in("sw", &["ip", "link", "set", "br0", "up"]);
        lab.tutorial_client();
        lab.tutorial_rs(1);
        lab.tutorial_rs(2);
        let rvsd = Rvsd::start(&mut lab, &[("dpdk0", "lan"), ("dpdk1", "wan")], opts);
        TwoArm { lab, rvsd }
    }

    /// Adds real server `rsN` (192.168.100.(N+1)/24) on the LAN switch, with nginx.
    pub fn add_rs(&mut self, n: u8) {
        let ns = format!("rs{n}");
        self.lab.add_ns(&ns);
        self.lab.veth(&ns, "eth0", "sw", &format!("p-{ns}"));
        self.lab.must_in(
            "sw",
            &["ip", "link", "set", &format!("p-{ns}"), "master", "br0"],
        );
        self.lab.tutorial_rs(n);
    }

    /// rvsd's process.
    pub fn rvsd_proc(&mut self) -> &mut crate::Proc {
        self.lab.proc(self.rvsd.index)
    }
}

impl Lab {
    /// The tutorial's client address, 10.0.0.48/16, on `client`'s `eth0`.
    pub fn tutorial_client(&self) {
        let a = ["ip", "addr", "add", "10.0.0.48/16", "dev", "eth0"];
        self.must_in("client", &a);
    }

    /// The tutorial's real server `rs<n>`: 192.168.100.(n+1)/24 on its
    /// `eth0`, and nginx answering `rs<n> <peer address:port>`.
    pub fn tutorial_rs(&mut self, n: u8) {
        let ns = format!("rs{n}");
        let a = format!("192.168.100.{}/24", n + 1);
        self.must_in(&ns, &["ip", "addr", "add", &a, "dev", "eth0"]);
        self.nginx(&ns, &ns);
    }
}

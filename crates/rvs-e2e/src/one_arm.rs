//! The tutorial's one-arm topology: client, real servers and rvs's only port
//! on one LAN, with rvsd running in the `lb` namespace.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::rvsd::{Rvsd, RvsdOpts};
use crate::Lab;

/// The client's address on the LAN (the tutorial's keepalived section).
pub const CLIENT: &str = "192.168.100.146";
/// The VIP of the one-arm examples.
pub const VIP: &str = "192.168.100.254";

/// rvsd and its namespaces on one LAN (192.168.100.0/24, a bridge in `sw`):
/// `client` (192.168.100.146), `rs1`/`rs2` (.2 and .3, nginx answering
/// `<rs> <peer ip>:<peer port>`) and `lb`, whose `lan` interface is rvs's
/// only port, `dpdk0`.
pub struct OneArm {
    /// The lab (dropping it removes everything).
    pub lab: Lab,
    /// The daemon (its tools and log are reached through `Deref`).
    pub rvsd: Rvsd,
}

impl std::ops::Deref for OneArm {
    type Target = Rvsd;
    fn deref(&self) -> &Rvsd {
        &self.rvsd
    }
}

impl OneArm {
    /// Builds the namespaces and links, starts nginx on both real servers and rvsd.
    pub fn new(opts: &RvsdOpts) -> OneArm {
        let mut lab = Lab::new();
        for n in ["client", "lb", "sw", "rs1", "rs2"] {
            lab.add_ns(n);
        }
        lab.veth("lb", "lan", "sw", "p-lb");
        lab.veth("client", "eth0", "sw", "p-client");
        lab.veth("rs1", "eth0", "sw", "p-rs1");
        lab.veth("rs2", "eth0", "sw", "p-rs2");
        lab.must_in("sw", &["ip", "link", "add", "br0", "type", "bridge"]);
        for p in ["p-lb", "p-client", "p-rs1", "p-rs2"] {
            lab.must_in("sw", &["ip", "link", "set", p, "master", "br0"]);
        }
        lab.must_in("sw", &["ip", "link", "set", "br0", "up"]);
        for (ns, a) in [
            ("client", CLIENT),
            ("rs1", "192.168.100.2"),
            ("rs2", "192.168.100.3"),
        ] {
            let cidr = format!("{a}/24");
            lab.must_in(ns, &["ip", "addr", "add", &cidr, "dev", "eth0"]);
        }
        lab.nginx("rs1", "rs1");
        lab.nginx("rs2", "rs2");
        let rvsd = Rvsd::start(&mut lab, &[("dpdk0", "lan")], opts);
        OneArm { lab, rvsd }
    }

    /// Makes namespace `rs` a real server for DR (and TUNNEL) as the tutorial
    /// and the LVS docs say: the VIP on `lo`, and ARP for it neither
    /// answered (`arp_ignore=1`) nor announced (`arp_announce=2`).
    pub fn dr_real_server(&self, rs: &str) {
        let vip = format!("{VIP}/32");
        self.lab
            .must_in(rs, &["ip", "addr", "add", &vip, "dev", "lo"]);
        for s in [
            "net.ipv4.conf.lo.arp_ignore=1",
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
        ] {
            self.lab.must_in(rs, &["sysctl", "-q", "-w", s]);
        }
    }

    /// Starts the test's TUNNEL real server in namespace `rs` (see
    /// `tools/tun_rs.py`): it takes the IPIP packets rvs sends apart and
    /// answers each inner UDP datagram straight to the client with
    /// `<label> <client ip>:<client port> <request>`. Returns its process index.
    pub fn tun_responder(&mut self, rs: &str, label: &str) -> usize {
        let script = tool_script("tun_rs.py");
        let i = self.lab.spawn(
            rs,
            &format!("tun-{label}"),
            &["python3", "-u", &script, "serve", label],
            &[],
        );
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if self.lab.proc(i).log().contains("ready") {
                return i;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the tunnel responder in {rs} did not start: {}",
            self.lab.proc(i).log()
        );
    }

    /// Sends `msg` over UDP from the client to `host:port` with
    /// `tools/tun_rs.py ask`; its line `reply from IP:PORT: TEXT`, or what it
    /// printed when no reply came.
    pub fn udp_ask(&self, host: &str, port: u16, msg: &str) -> Result<String, String> {
        let script = tool_script("tun_rs.py");
        let o = self.lab.exec(
            "client",
            &["python3", &script, "ask", host, &port.to_string(), msg, "3"],
        );
        let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if o.status.success() {
            Ok(out)
        } else {
            Err(format!("{out}{}", String::from_utf8_lossy(&o.stderr)))
        }
    }
}

/// The MAC address of interface `iface` in namespace `short`.
pub fn mac(lab: &Lab, short: &str, iface: &str) -> [u8; 6] {
    let out = lab.must_in(short, &["cat", &format!("/sys/class/net/{iface}/address")]);
    let mut m = [0u8; 6];
    let parts: Vec<&str> = out.trim().split(':').collect();
    assert_eq!(parts.len(), 6, "bad MAC {out:?} of {iface} in {short}");
    for (b, p) in m.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).unwrap_or_else(|_| panic!("bad MAC {out:?}"));
    }
    m
}

/// The path of a helper script in this crate's `tools/` directory.
pub fn tool_script(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tools")
        .join(name);
    assert!(p.exists(), "{} is missing", p.display());
    p.to_string_lossy().into_owned()
}

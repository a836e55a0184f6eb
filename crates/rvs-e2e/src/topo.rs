//! The tutorial's topologies, built in a [`Lab`], with rvsd running in the
//! `lb` namespace and the operator tools talking to it.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::{bin, Lab};

/// rvsd and its namespaces: `client` (10.0.0.48/16) on the WAN side,
/// `rs1`/`rs2` (192.168.100.2 and .3/24) behind a switch (`sw`, a bridge) on
/// the LAN side, `lb` in the middle with `wan` (dpdk1) and `lan` (dpdk0).
pub struct TwoArm {
    /// The lab (dropping it removes everything).
    pub lab: Lab,
    /// Index of the rvsd process in the lab.
    pub rvsd: usize,
    /// Control socket.
    pub socket: String,
    /// Configuration file.
    pub conf: std::path::PathBuf,
}

/// Options of the lab's rvsd.
#[derive(Debug, Clone)]
pub struct RvsdOpts {
    /// Worker threads.
    pub workers: u16,
    /// Backend name (`af_packet`, `af_xdp`).
    pub backend: String,
    /// Extra TOML appended to the configuration.
    pub extra: String,
    /// Kernel addresses put on the lb namespace's interfaces before rvsd
    /// starts, as (interface, address/prefix): rvsd must remove them while
    /// it runs and restore them when it stops.
    pub lb_addrs: Vec<(String, String)>,
    /// Connection-table capacity per worker.
    pub conn_capacity: usize,
}

impl Default for RvsdOpts {
    fn default() -> Self {
        RvsdOpts {
            workers: 1,
            backend: "af_packet".into(),
            extra: String::new(),
            lb_addrs: Vec::new(),
            conn_capacity: 65536,
        }
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
        lab.must_in("sw", &["ip", "link", "add", "br0", "type", "bridge"]);
        for p in ["p-lb", "p-rs1", "p-rs2"] {
            lab.must_in("sw", &["ip", "link", "set", p, "master", "br0"]);
        }
        lab.must_in("sw", &["ip", "link", "set", "br0", "up"]);
        lab.must_in(
            "client",
            &["ip", "addr", "add", "10.0.0.48/16", "dev", "eth0"],
        );
        lab.must_in(
            "rs1",
            &["ip", "addr", "add", "192.168.100.2/24", "dev", "eth0"],
        );
        lab.must_in(
            "rs2",
            &["ip", "addr", "add", "192.168.100.3/24", "dev", "eth0"],
        );
        lab.nginx("rs1", "rs1");
        lab.nginx("rs2", "rs2");
        for (dev, a) in &opts.lb_addrs {
            lab.must_in("lb", &["ip", "addr", "add", a, "dev", dev]);
        }
        let socket = lab.dir.join("rvs.sock").to_string_lossy().into_owned();
        let conf = lab.file(
            "rvs.toml",
            &format!(
                "workers = {w}\nconn_capacity = {cap}\nidle = \"adaptive\"\nlog_level = \"info\"\n\n\
                 [[netif]]\nname = \"dpdk0\"\niface = \"lan\"\nbackend = \"{b}\"\n\n\
                 [[netif]]\nname = \"dpdk1\"\niface = \"wan\"\nbackend = \"{b}\"\n\n{extra}\n",
                w = opts.workers,
                cap = opts.conn_capacity,
                b = opts.backend,
                extra = opts.extra
            ),
        );
        let rvsd_bin = bin("rvsd").to_string_lossy().into_owned();
        let c = conf.to_string_lossy().into_owned();
        let rvsd = lab.spawn(
            "lb",
            "rvsd",
            &[&rvsd_bin, "-c", &c],
            &[("RVS_SOCKET", &socket)],
        );
        let t = TwoArm {
            lab,
            rvsd,
            socket,
            conf,
        };
        t.wait_ready();
        t
    }

    fn wait_ready(&self) {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if self.rvsadm(&["-ln"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "rvsd did not answer on {} within 10 s; its log:\n{}",
            self.socket,
            self.rvsd_log()
        );
    }

    /// rvsd's log so far.
    pub fn rvsd_log(&self) -> String {
        std::fs::read_to_string(self.lab.dir.join("rvsd.log")).unwrap_or_default()
    }

    fn tool(&self, name: &str, args: &[&str]) -> Output {
        std::process::Command::new(bin(name))
            .args(args)
            .env("RVS_SOCKET", &self.socket)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
    }

    /// Runs `rvsadm` against this lab's rvsd.
    pub fn rvsadm(&self, args: &[&str]) -> Output {
        self.tool("rvsadm", args)
    }

    /// Runs `rvsip` against this lab's rvsd.
    pub fn rvsip(&self, args: &[&str]) -> Output {
        self.tool("rvsip", args)
    }

    /// Runs a tool and requires success, returning stdout.
    pub fn ok(&self, tool: &str, args: &[&str]) -> String {
        let o = self.tool(tool, args);
        assert!(
            o.status.success(),
            "{tool} {} failed ({}): {}{}\nrvsd log:\n{}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.rvsd_log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
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
        self.lab.must_in(
            &ns,
            &[
                "ip",
                "addr",
                "add",
                &format!("192.168.100.{}/24", n + 1),
                "dev",
                "eth0",
            ],
        );
        self.lab.nginx(&ns, &ns);
    }

    /// rvsd's process.
    pub fn rvsd_proc(&mut self) -> &mut crate::Proc {
        self.lab.proc(self.rvsd)
    }

    /// The tutorial's FNAT two-arm commands, word for word (dpip → rvsip, ipvsadm → rvsadm).
    pub fn tutorial_fnat(&self) {
        self.ok("rvsip", &["addr", "add", "10.0.0.100/32", "dev", "dpdk1"]);
        self.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]);
        self.ok(
            "rvsip",
            &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
        );
        self.ok("rvsadm", &["-A", "-t", "10.0.0.100:80", "-s", "rr"]);
        self.ok(
            "rvsadm",
            &["-a", "-t", "10.0.0.100:80", "-r", "192.168.100.2", "-b"],
        );
        self.ok(
            "rvsadm",
            &["-a", "-t", "10.0.0.100:80", "-r", "192.168.100.3", "-b"],
        );
        self.ok(
            "rvsadm",
            &[
                "--add-laddr",
                "-z",
                "192.168.100.200",
                "-t",
                "10.0.0.100:80",
                "-F",
                "dpdk0",
            ],
        );
    }
}

//! The test bed: the tutorial's two-arm topology built with the e2e lab
//! ([`rvs_e2e::Lab`], the same namespaces and addresses as
//! [`rvs_e2e::topo::TwoArm`]), with one of the load balancers under test in
//! the `lb` namespace.
//!
//! ```text
//! client 10.0.0.48/16 eth0 ── wan [lb] lan ── p-lb  [sw: br0]  p-rs1 ── eth0 rs1 192.168.100.2
//!                                                               p-rs2 ── eth0 rs2 192.168.100.3
//! (direct only) client eth1 192.168.100.50/24 ── p-cl [sw: br0]
//! ```
//!
//! Kernel-based load balancers (kernel forwarding, nftables, HAProxy) get
//! `wan` 10.0.0.100/16 (the VIP) and `lan` 192.168.100.200/24 (the local
//! address their translated traffic comes from); rvsd takes both interfaces
//! over and owns the same addresses (VIP 10.0.0.100, LIP 192.168.100.200).
//!
//! CPU placement (the bench process and everything it starts inherit CPU 0;
//! the load balancer gets CPU 1): rvsd and haproxy run under `taskset -c 1`
//! (rvsd also pins its worker with `cpus = [1]`), and RPS steers the kernel's
//! receive processing of the `lb` namespace's interfaces (`wan`, `lan`) to
//! CPU 1 and of the first hop after the load balancer (`p-lb` on the switch,
//! `eth0` of the client) back to CPU 0. So CPU 1 runs the load balancer and
//! nothing else of the bench: kernel forwarding and nftables in softirq, rvsd's
//! AF_PACKET receive path in softirq plus its worker, HAProxy's sockets.

use std::time::{Duration, Instant, SystemTime};

use rvs_e2e::Lab;

use super::{nap, E2eError};

/// CPU of the load balancer.
pub const LB_CPU: usize = 1;
/// CPU of the load (generator, wrk, nginx).
pub const LOAD_CPU: usize = 0;
/// UDP port of the packet-rate case.
pub const UDP_PORT: u16 = 9;
/// The VIP.
pub const VIP: &str = "10.0.0.100";

/// The suffix of an rvs backend name that turns the XDP fast path on
/// (`rvs-af_xdp-fast`): established FNAT flows are forwarded by the XDP
/// program. On veth a frame it sends on in native mode reaches the receiving
/// peer only through that peer's NAPI, so GRO is turned on at the peers of
/// the lb's interfaces (the client's `eth0`, the switch's `p-lb`), and the
/// senders checksum in software (TX checksum offload off: a partial checksum
/// is left to the workers).
pub const FAST_SUFFIX: &str = "-fast";

/// A load balancer under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lb {
    /// Kernel IP forwarding, no balancing: the limit of the path.
    Kernel,
    /// No load balancer: the client talks to one real server on the switch.
    Direct,
    /// nftables DNAT (`numgen inc mod 2`) + masquerade to the LB's LAN address.
    Nftables,
    /// HAProxy in TCP mode, roundrobin, one thread.
    Haproxy,
    /// rvsd FNAT with the named backend (`af_packet`, `af_xdp`;
    /// `af_xdp-fast`: af_xdp with `fast_path = "xdp"`, see [`FAST_SUFFIX`]).
    Rvs(String),
    /// DPDK testpmd MAC forwarding over the named poll-mode driver
    /// (`af_xdp`, `af_packet`): a reference row of the packet rate.
    Testpmd(String),
}

impl Lb {
    /// Parses `kernel`, `direct`, `nftables`, `haproxy` or `rvs-<backend>`.
    pub fn parse(s: &str) -> Option<Lb> {
        Some(match s {
            "kernel" => Lb::Kernel,
            "direct" => Lb::Direct,
            "nftables" => Lb::Nftables,
            "haproxy" => Lb::Haproxy,
            _ if s.starts_with("testpmd-") => Lb::Testpmd(
                s.strip_prefix("testpmd-")
                    .filter(|b| !b.is_empty())?
                    .to_string(),
            ),
            _ => Lb::Rvs(
                s.strip_prefix("rvs-")
                    .filter(|b| !b.is_empty())?
                    .to_string(),
            ),
        })
    }

    /// The name in the output (`lb` field).
    pub fn name(&self) -> String {
        match self {
            Lb::Kernel => "kernel".into(),
            Lb::Direct => "direct".into(),
            Lb::Nftables => "nftables".into(),
            Lb::Haproxy => "haproxy".into(),
            Lb::Rvs(b) => format!("rvs-{b}"),
            Lb::Testpmd(p) => format!("testpmd-{p}"),
        }
    }

    /// Whether it serves HTTP (testpmd only forwards the UDP case's frames).
    pub fn does_http(&self) -> bool {
        !matches!(self, Lb::Testpmd(_))
    }

    /// Whether it forwards UDP (the packet-rate case).
    pub fn does_udp(&self) -> bool {
        !matches!(self, Lb::Direct | Lb::Haproxy)
    }

    /// What `lb_cpu_*` counts for it.
    pub fn cpu_note(&self) -> &'static str {
        match self {
            Lb::Kernel | Lb::Nftables => {
                "lb_cpu: busy time of CPU 1 (user+system+irq+softirq, nice excluded) plus softirq time of CPU 0, where a veth transmit runs the peer's receive (forwarding) whatever RPS says"
            }
            Lb::Haproxy => "lb_cpu: haproxy's utime+stime (/proc/<pid>/stat) plus softirq time of CPU 0; its softirq work on CPU 1 is in cpu1_*",
            Lb::Rvs(b) if b.ends_with(FAST_SUFFIX) => "lb_cpu: rvsd's utime+stime (/proc/<pid>/stat, all threads) plus softirq time of CPU 0, where the XDP fast path runs (in the client's veth transmit, with the forwarding to the switch's veth peer); softirq on CPU 1 is in cpu1_*",
            Lb::Rvs(_) => "lb_cpu: rvsd's utime+stime (/proc/<pid>/stat, all threads) plus softirq time of CPU 0 (AF_XDP's copy into the UMEM runs there); softirq on CPU 1 is in cpu1_*",
            Lb::Direct => "no load balancer: lb_cpu is null; cpu1_* shows CPU 1 is idle",
            Lb::Testpmd(_) => "lb_cpu: testpmd's utime+stime (it polls CPU 1 all the time) plus softirq time of CPU 0",
        }
    }
}

/// The namespaces, with the load balancer configured and running.
pub struct Bed {
    /// The lab (dropping it removes namespaces and processes).
    pub lab: Lab,
    /// The load balancer.
    pub lb: Lb,
    /// Index of the load balancer's process in the lab (rvsd, haproxy).
    pub lb_proc: Option<usize>,
    /// rvsd's control socket.
    socket: String,
    /// When rvsd first answered on its control socket.
    pub rvsd_ready: Option<SystemTime>,
    /// When the last configuration command returned.
    pub rvsd_configured: Option<SystemTime>,
    /// testpmd, for its reference rows.
    pub testpmd: Option<super::testpmd::Testpmd>,
}

/// Options of rvsd in the bed.
#[derive(Debug, Clone)]
pub struct RvsdOpts {
    /// Connection-table capacity of its one worker.
    pub conn_capacity: usize,
}

impl Default for RvsdOpts {
    fn default() -> Self {
        RvsdOpts {
            conn_capacity: 1 << 20,
        }
    }
}

fn ok_in(lab: &Lab, ns: &str, cmd: &[&str]) -> Result<String, E2eError> {
    let o = lab.exec(ns, cmd);
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(E2eError::Failed(format!(
            "{ns}: {} failed: {}{}",
            cmd.join(" "),
            String::from_utf8_lossy(&o.stdout).trim(),
            String::from_utf8_lossy(&o.stderr).trim()
        )))
    }
}

/// Receive processing of `iface` in `ns` on the CPUs of `mask` (RPS).
pub(crate) fn rps(lab: &Lab, ns: &str, iface: &str, mask: &str) -> Result<(), E2eError> {
    ok_in(
        lab,
        ns,
        &[
            "sh",
            "-c",
            &format!("echo {mask} > /sys/class/net/{iface}/queues/rx-0/rps_cpus"),
        ],
    )
    .map(|_| ())
}

/// The shell line that makes a bridge in a namespace a switch, not a
/// firewall: with `br_netfilter` loaded (its sysctls exist then), bridged
/// frames would otherwise run the IP hooks (`br_nf_*`), a cost on the
/// sender's CPU that no data plane under test has.
pub(crate) const BRIDGE_NO_NF: &str = "test ! -d /proc/sys/net/bridge || sysctl -qw \
    net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
    net.bridge.bridge-nf-call-arptables=0";

impl Bed {
    /// Builds the namespaces and links, starts nginx on both real servers;
    /// the load balancer is not started yet ([`Bed::start_lb`]).
    pub fn topology(lb: &Lb) -> Result<Bed, E2eError> {
        let mut lab = Lab::new();
        for n in ["client", "lb", "sw", "rs1", "rs2"] {
            lab.add_ns(n);
        }
        lab.veth("client", "eth0", "lb", "wan");
        lab.veth("lb", "lan", "sw", "p-lb");
        lab.veth("rs1", "eth0", "sw", "p-rs1");
        lab.veth("rs2", "eth0", "sw", "p-rs2");
        ok_in(&lab, "sw", &["ip", "link", "add", "br0", "type", "bridge"])?;
        ok_in(&lab, "sw", &["sh", "-c", BRIDGE_NO_NF])?;
        let mut ports = vec!["p-lb", "p-rs1", "p-rs2"];
        if *lb == Lb::Direct {
            lab.veth("client", "eth1", "sw", "p-cl");
            ports.push("p-cl");
            ok_in(
                &lab,
                "client",
                &["ip", "addr", "add", "192.168.100.50/24", "dev", "eth1"],
            )?;
        }
        for p in ports {
            ok_in(&lab, "sw", &["ip", "link", "set", p, "master", "br0"])?;
        }
        ok_in(&lab, "sw", &["ip", "link", "set", "br0", "up"])?;
        ok_in(
            &lab,
            "client",
            &["ip", "addr", "add", "10.0.0.48/16", "dev", "eth0"],
        )?;
        for (ns, a) in [("rs1", "192.168.100.2/24"), ("rs2", "192.168.100.3/24")] {
            ok_in(&lab, ns, &["ip", "addr", "add", a, "dev", "eth0"])?;
            // Kernel forwarding does no NAT: replies go back through the lb.
            ok_in(
                &lab,
                ns,
                &["ip", "route", "add", "default", "via", "192.168.100.200"],
            )?;
        }
        // Receive processing: lb interfaces on CPU 1, the next hops on CPU 0.
        rps(&lab, "lb", "wan", "2")?;
        rps(&lab, "lb", "lan", "2")?;
        rps(&lab, "sw", "p-lb", "1")?;
        rps(&lab, "client", "eth0", "1")?;
        lab.nginx("rs1", "rs1");
        lab.nginx("rs2", "rs2");
        Ok(Bed {
            lab,
            lb: lb.clone(),
            lb_proc: None,
            socket: String::new(),
            rvsd_ready: None,
            rvsd_configured: None,
            testpmd: None,
        })
    }

    /// Configures and starts the load balancer; for rvsd, returns once it
    /// answers on its control socket and the tutorial's configuration (plus
    /// a UDP service on port 9) is applied.
    pub fn start_lb(&mut self, rvsd: &RvsdOpts) -> Result<(), E2eError> {
        let lab = &self.lab;
        let kernel_addrs = |lab: &Lab| -> Result<(), E2eError> {
            ok_in(
                lab,
                "lb",
                &["ip", "addr", "add", "10.0.0.100/16", "dev", "wan"],
            )?;
            ok_in(
                lab,
                "lb",
                &["ip", "addr", "add", "192.168.100.200/24", "dev", "lan"],
            )
            .map(|_| ())
        };
        // Peers that reuse a port of theirs quickly toward the RS (masquerade,
        // HAProxy) meet the RS's TIME_WAIT entries with unrelated timestamps.
        let tw_buckets = |lab: &Lab| -> Result<(), E2eError> {
            for rs in ["rs1", "rs2"] {
                ok_in(
                    lab,
                    rs,
                    &["sysctl", "-qw", "net.ipv4.tcp_max_tw_buckets=1024"],
                )?;
            }
            Ok(())
        };
        match self.lb.clone() {
            Lb::Direct => {}
            Lb::Kernel => {
                kernel_addrs(lab)?;
                ok_in(lab, "lb", &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
                ok_in(
                    lab,
                    "client",
                    &["ip", "route", "add", "192.168.100.0/24", "via", VIP],
                )?;
            }
            Lb::Nftables => {
                kernel_addrs(lab)?;
                tw_buckets(lab)?;
                ok_in(lab, "lb", &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
                let rules = "table ip rvsbench {\n\
                  chain pre {\n    type nat hook prerouting priority dstnat; policy accept;\n\
                    ip daddr 10.0.0.100 meta l4proto { tcp, udp } dnat to numgen inc mod 2 map { 0 : 192.168.100.2, 1 : 192.168.100.3 }\n  }\n\
                  chain post {\n    type nat hook postrouting priority srcnat; policy accept;\n\
                    oifname \"lan\" masquerade\n  }\n}\n";
                let f = lab.file("nft.rules", rules);
                ok_in(lab, "lb", &["nft", "-f", &f.to_string_lossy()])?;
            }
            Lb::Haproxy => {
                kernel_addrs(lab)?;
                tw_buckets(lab)?;
                let conf = "global\n  nbthread 1\n  maxconn 8000\n\
                    defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
                    listen vip\n  bind 10.0.0.100:80\n  balance roundrobin\n\
                      server rs1 192.168.100.2:80\n  server rs2 192.168.100.3:80\n";
                let f = self.lab.file("haproxy.cfg", conf);
                let f = f.to_string_lossy().into_owned();
                let i = self.lab.spawn(
                    "lb",
                    "haproxy",
                    &["taskset", "-c", "1", "haproxy", "-db", "-f", &f],
                    &[],
                );
                self.lb_proc = Some(i);
                self.wait_listen(80, Duration::from_secs(5))?;
            }
            Lb::Rvs(backend) => {
                self.start_rvsd(&backend, rvsd)?;
            }
            Lb::Testpmd(pmd) => {
                self.testpmd = Some(super::testpmd::Testpmd::start(&self.lab, &pmd)?);
            }
        }
        Ok(())
    }

    fn wait_listen(&mut self, port: u16, t: Duration) -> Result<(), E2eError> {
        let end = Instant::now() + t;
        while Instant::now() < end {
            let o = self
                .lab
                .exec("lb", &["ss", "-ltnH", &format!("sport = :{port}")]);
            if !o.stdout.is_empty() {
                return Ok(());
            }
            if let Some(i) = self.lb_proc {
                if !self.lab.proc(i).alive() {
                    return Err(E2eError::Failed(format!(
                        "the load balancer exited: {}",
                        last_lines(&self.lab.proc(i).log(), 3)
                    )));
                }
            }
            nap(Duration::from_millis(50))?;
        }
        Err(E2eError::Failed(format!(
            "nothing listens on port {port} in the lb namespace"
        )))
    }

    /// Starts rvsd; the time it was started at (wall clock, for the startup case).
    fn start_rvsd(&mut self, backend: &str, o: &RvsdOpts) -> Result<SystemTime, E2eError> {
        let bin = rvs_e2e::bin_dir();
        for b in ["rvsd", "rvsadm", "rvsip"] {
            if !bin.join(b).exists() {
                return Err(E2eError::Failed(format!(
                    "{} not built: cargo build --release --workspace",
                    bin.join(b).display()
                )));
            }
        }
        self.socket = self.lab.dir.join("rvs.sock").to_string_lossy().into_owned();
        let (backend, fast) = match backend.strip_suffix(FAST_SUFFIX) {
            Some(b) => (b, "\n[pipeline]\nfast_path = \"xdp\"\n"),
            None => (backend, ""),
        };
        if !fast.is_empty() {
            ok_in(&self.lab, "client", &["ethtool", "-K", "eth0", "gro", "on"])?;
            ok_in(&self.lab, "sw", &["ethtool", "-K", "p-lb", "gro", "on"])?;
            for ns in ["client", "rs1", "rs2"] {
                ok_in(&self.lab, ns, &["ethtool", "-K", "eth0", "tx", "off"])?;
            }
        }
        let conf = self.lab.file(
            "rvs.toml",
            &format!(
                "workers = 1\ncpus = [{LB_CPU}]\nconn_capacity = {cap}\nidle = \"adaptive\"\nlog_level = \"warn\"\n\n\
                 [[netif]]\nname = \"dpdk0\"\niface = \"lan\"\nbackend = \"{backend}\"\n\n\
                 [[netif]]\nname = \"dpdk1\"\niface = \"wan\"\nbackend = \"{backend}\"\n{fast}",
                cap = o.conn_capacity
            ),
        );
        let rvsd = bin.join("rvsd").to_string_lossy().into_owned();
        let c = conf.to_string_lossy().into_owned();
        let socket = self.socket.clone();
        let t0 = SystemTime::now();
        let i = self.lab.spawn(
            "lb",
            "rvsd",
            &["taskset", "-c", "1", &rvsd, "-c", &c],
            &[("RVS_SOCKET", &socket)],
        );
        self.lb_proc = Some(i);
        // Ready when the control socket answers; refused when rvsd exits.
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if !self.lab.proc(i).alive() {
                return Err(E2eError::Refused(format!(
                    "rvsd exited at start: {}",
                    last_lines(&self.lab.proc(i).log(), 2)
                )));
            }
            if self.tool("rvsadm", &["-ln"]).is_ok() {
                self.rvsd_ready = Some(SystemTime::now());
                break;
            }
            if Instant::now() > end {
                return Err(E2eError::Failed(format!(
                    "rvsd did not answer within 30 s: {}",
                    last_lines(&self.lab.proc(i).log(), 3)
                )));
            }
            super::check_stop()?;
            std::thread::sleep(Duration::from_millis(2));
        }
        let cmds: &[(&str, &[&str])] = &[
            ("rvsip", &["addr", "add", "10.0.0.100/32", "dev", "dpdk1"]),
            ("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]),
            (
                "rvsip",
                &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
            ),
            ("rvsadm", &["-A", "-t", "10.0.0.100:80", "-s", "rr"]),
            (
                "rvsadm",
                &["-a", "-t", "10.0.0.100:80", "-r", "192.168.100.2", "-b"],
            ),
            (
                "rvsadm",
                &["-a", "-t", "10.0.0.100:80", "-r", "192.168.100.3", "-b"],
            ),
            (
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
            ),
            ("rvsadm", &["-A", "-u", "10.0.0.100:9", "-s", "rr"]),
            (
                "rvsadm",
                &["-a", "-u", "10.0.0.100:9", "-r", "192.168.100.2:9", "-b"],
            ),
            (
                "rvsadm",
                &["-a", "-u", "10.0.0.100:9", "-r", "192.168.100.3:9", "-b"],
            ),
            (
                "rvsadm",
                &[
                    "--add-laddr",
                    "-z",
                    "192.168.100.200",
                    "-u",
                    "10.0.0.100:9",
                    "-F",
                    "dpdk0",
                ],
            ),
        ];
        for (tool, args) in cmds {
            self.tool(tool, args)?;
        }
        self.rvsd_configured = Some(SystemTime::now());
        Ok(t0)
    }

    /// Starts rvsd (for the startup case) and returns the wall-clock time
    /// just before it was started.
    pub fn start_rvsd_timed(&mut self, o: &RvsdOpts) -> Result<SystemTime, E2eError> {
        let Lb::Rvs(b) = self.lb.clone() else {
            return Err(E2eError::Failed("not an rvs bed".into()));
        };
        self.start_rvsd(&b, o)
    }

    fn tool(&self, name: &str, args: &[&str]) -> Result<String, E2eError> {
        let o = std::process::Command::new(rvs_e2e::bin_dir().join(name))
            .args(args)
            .env("RVS_SOCKET", &self.socket)
            .output()
            .map_err(|e| E2eError::Failed(format!("cannot run {name}: {e}")))?;
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        } else {
            Err(E2eError::Failed(format!(
                "{name} {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            )))
        }
    }

    /// The load balancer's pid (rvsd, haproxy).
    pub fn lb_pid(&mut self) -> Option<u32> {
        if let Some(t) = &self.testpmd {
            return Some(t.pid());
        }
        let i = self.lb_proc?;
        Some(self.lab.proc(i).pid())
    }

    /// Whether the load balancer process (if any) still runs; its log tail if not.
    pub fn lb_alive(&mut self) -> Result<(), E2eError> {
        if let Some(t) = &mut self.testpmd {
            t.alive()?;
        }
        if let Some(i) = self.lb_proc {
            let p = self.lab.proc(i);
            if !p.alive() {
                return Err(E2eError::Failed(format!(
                    "{} died: {}",
                    p.name,
                    last_lines(&p.log(), 5)
                )));
            }
        }
        Ok(())
    }

    /// MAC address of `iface` in namespace `ns`.
    pub fn mac(&self, ns: &str, iface: &str) -> Result<String, E2eError> {
        ok_in(
            &self.lab,
            ns,
            &["cat", &format!("/sys/class/net/{iface}/address")],
        )
        .map(|s| s.trim().to_string())
    }

    /// Sum of `rx_packets` of `eth0` on both real servers.
    pub fn rs_rx_packets(&self) -> Result<u64, E2eError> {
        let mut n = 0;
        for rs in ["rs1", "rs2"] {
            let s = ok_in(
                &self.lab,
                rs,
                &["cat", "/sys/class/net/eth0/statistics/rx_packets"],
            )?;
            n += s.trim().parse::<u64>().unwrap_or(0);
        }
        Ok(n)
    }

    /// Drops UDP port 9 at the real servers' ingress (after it is counted
    /// in rx_packets), so that no ICMP errors or socket work add noise.
    pub fn rs_udp_drop(&self) -> Result<(), E2eError> {
        let rules = format!(
            "table netdev rvsbench_sink {{\n  chain rx {{\n    type filter hook ingress device \"eth0\" priority 0; policy accept;\n    udp dport {UDP_PORT} drop\n  }}\n}}\n"
        );
        let f = self.lab.file("sink.nft", &rules);
        for rs in ["rs1", "rs2"] {
            ok_in(&self.lab, rs, &["nft", "-f", &f.to_string_lossy()])?;
        }
        Ok(())
    }

    /// Where the packet-rate generator sends (the VIP, or both RS for plain forwarding).
    pub fn udp_targets(&self) -> &'static str {
        match self.lb {
            Lb::Kernel => "192.168.100.2,192.168.100.3",
            _ => VIP,
        }
    }

    /// The URL wrk loads.
    pub fn url(&self) -> &'static str {
        match self.lb {
            Lb::Kernel | Lb::Direct => "http://192.168.100.2/",
            _ => "http://10.0.0.100/",
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        // testpmd first, while its namespace and interfaces still exist.
        self.testpmd = None;
    }
}

/// The last `n` non-empty lines of a log, joined with " | ".
pub fn last_lines(log: &str, n: usize) -> String {
    let v: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    v[v.len().saturating_sub(n)..].join(" | ")
}

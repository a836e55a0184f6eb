//! rvsd as a lab runs it: a configuration file over the lab's ports, the
//! daemon in the `lb` namespace, and the operator tools talking to it.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::{bin, Lab};

/// How long a hot upgrade may take until the old rvsd is gone.
const UPGRADE_WAIT: Duration = Duration::from_secs(150);

/// Options of the lab's rvsd.
#[derive(Debug, Clone)]
pub struct RvsdOpts {
    /// Worker threads.
    pub workers: u16,
    /// Backend name (`af_packet`, `af_xdp`, or `dpdk-af_packet` and
    /// `dpdk-af_xdp`: `backend = "dpdk"` on DPDK's `net_af_packet` or
    /// `net_af_xdp` vdev, with an rvsd built with `--features dpdk`).
    pub backend: String,
    /// Extra TOML appended to the configuration.
    pub extra: String,
    /// Kernel addresses put on the lb namespace's interfaces before rvsd
    /// starts, as (interface, address/prefix): rvsd must remove them while
    /// it runs and restore them when it stops.
    pub lb_addrs: Vec<(String, String)>,
    /// Connection-table capacity per worker.
    pub conn_capacity: usize,
    /// CPUs to pin the workers to (`cpus`), none by default.
    pub cpus: Vec<usize>,
    /// Top-level TOML put before the `[[netif]]` sections (e.g. `metrics_listen`).
    pub head: String,
}

impl Default for RvsdOpts {
    fn default() -> Self {
        RvsdOpts {
            workers: 1,
            // The whole suite runs once per backend (scripts/test-all.sh).
            backend: std::env::var("RVS_E2E_BACKEND").unwrap_or_else(|_| "af_packet".into()),
            extra: String::new(),
            lb_addrs: Vec::new(),
            conn_capacity: 65536,
            cpus: Vec::new(),
            head: String::new(),
        }
    }
}

/// The `[[netif]]` keys of lab backend `b` (see [`RvsdOpts::backend`]).
fn backend_toml(b: &str) -> String {
    match b.strip_prefix("dpdk-") {
        Some(vdev) => format!("backend = \"dpdk\"\ndpdk_dev = \"net_{vdev}\""),
        None => format!("backend = \"{b}\""),
    }
}

/// How `rvsip link show` names lab backend `b` (its start).
pub fn shown_backend(b: &str) -> String {
    match b.strip_prefix("dpdk-") {
        Some(vdev) => format!("dpdk (net_{vdev}"),
        None => b.to_string(),
    }
}

/// A running rvsd of a lab.
pub struct Rvsd {
    /// Index of the rvsd process in the lab.
    pub index: usize,
    /// Control socket.
    pub socket: String,
    /// Configuration file.
    pub conf: PathBuf,
    /// Its run-time directory (`RVS_RUN_DIR`: port locks, takeover state),
    /// in the lab dir so that labs never share a port lock.
    pub run_dir: String,
    log: PathBuf,
    /// Namespace and file tag it was started with (for a restart).
    ns: String,
    tag: String,
    /// The backend it must report.
    backend: String,
    /// CPUs (a `taskset -c` list) every rvsd started from now on (restart,
    /// takeover) runs on, all its threads: a benchmark gives the load
    /// balancer its own core. None: as the caller.
    pub pin: Option<String>,
}

impl Rvsd {
    /// Writes the configuration for `netifs` (name, kernel interface in the
    /// `lb` namespace), starts rvsd in `lb` and waits until it answers.
    pub fn start(lab: &mut Lab, netifs: &[(&str, &str)], opts: &RvsdOpts) -> Rvsd {
        Rvsd::start_in(lab, "lb", "", netifs, opts)
    }

    /// The same in namespace `ns`, with `tag` prefixed to the names of its
    /// files (socket, configuration, run directory, log) so that several
    /// rvsd (two nodes of a pair) run in one lab.
    pub fn start_in(
        lab: &mut Lab,
        ns: &str,
        tag: &str,
        netifs: &[(&str, &str)],
        opts: &RvsdOpts,
    ) -> Rvsd {
        let socket = lab
            .dir
            .join(format!("{tag}rvs.sock"))
            .to_string_lossy()
            .into_owned();
        let run_dir = lab
            .dir
            .join(format!("{tag}run"))
            .to_string_lossy()
            .into_owned();
        let mut text = format!(
            "workers = {}\nconn_capacity = {}\nidle = \"adaptive\"\nlog_level = \"info\"\n",
            opts.workers, opts.conn_capacity
        );
        text.push_str(&opts.head);
        if !opts.cpus.is_empty() {
            let cpus: Vec<String> = opts.cpus.iter().map(usize::to_string).collect();
            text.push_str(&format!("cpus = [{}]\n", cpus.join(", ")));
        }
        for (name, iface) in netifs {
            text.push_str(&format!(
                "\n[[netif]]\nname = \"{name}\"\niface = \"{iface}\"\n{}\n",
                backend_toml(&opts.backend)
            ));
        }
        text.push_str(&format!("\n{}\n", opts.extra));
        let conf = lab.file(&format!("{tag}rvs.toml"), &text);
        let rvsd_bin = bin("rvsd").to_string_lossy().into_owned();
        for (dev, a) in &opts.lb_addrs {
            lab.must_in(ns, &["ip", "addr", "add", a, "dev", dev]);
        }
        let mut r = Rvsd {
            index: usize::MAX,
            socket,
            conf,
            run_dir,
            log: lab.dir.join(format!("{tag}rvsd.log")),
            ns: ns.to_string(),
            tag: tag.to_string(),
            backend: shown_backend(&opts.backend),
            pin: None,
        };
        r.launch(lab, &rvsd_bin);
        r
    }

    /// Starts the rvsd binary `rvsd_bin` on this configuration and waits
    /// until it answers on the backend asked for.
    fn launch(&mut self, lab: &mut Lab, rvsd_bin: &str) {
        let c = self.conf.to_string_lossy().into_owned();
        self.index = lab.spawn(
            &self.ns,
            &format!("{}rvsd", self.tag),
            &self.pinned(&[rvsd_bin, "-c", &c]),
            &[("RVS_SOCKET", &self.socket), ("RVS_RUN_DIR", &self.run_dir)],
        );
        self.wait_ready();
        // The suite must run on the backend it was asked to.
        let links = self.ok("rvsip", &["link", "show"]);
        assert!(
            links.contains(&self.backend),
            "rvsd runs another backend than {}:\n{links}",
            self.backend
        );
    }

    /// `cmd` behind `taskset -c <pin>` when [`Rvsd::pin`] is set.
    pub fn pinned<'a>(&'a self, cmd: &[&'a str]) -> Vec<&'a str> {
        let mut v = Vec::new();
        if let Some(p) = &self.pin {
            v.extend(["taskset", "-c", p.as_str()]);
        }
        v.extend_from_slice(cmd);
        v
    }

    /// Makes process `index` of the lab (started as `name`, so logging to
    /// `<name>.log`) this rvsd: a standby that took over the ports.
    pub fn replaced_by(&mut self, lab: &Lab, index: usize, name: &str) {
        self.index = index;
        self.log = lab.dir.join(format!("{name}.log"));
    }

    /// A hot upgrade: `rvsd --takeover` on the same file (the same binary:
    /// as an upgrade to a rebuilt one). `Ok` with how long until the old
    /// process exited, once the new one answers; `Err` with the new one's
    /// log when it exited instead (the old one then must still run).
    pub fn upgrade(&mut self, lab: &mut Lab) -> Result<Duration, String> {
        self.upgrade_with(lab, &[])
    }

    /// As [`Rvsd::upgrade`], with more environment for the new rvsd (e.g.
    /// `RVS_TEST_TAKEOVER_FAIL`).
    pub fn upgrade_with(
        &mut self,
        lab: &mut Lab,
        env: &[(&str, &str)],
    ) -> Result<Duration, String> {
        self.upgrade_args(lab, &[], env)
    }

    /// As [`Rvsd::upgrade_with`], with more arguments for `rvsd --takeover`
    /// (e.g. `--rolling`).
    pub fn upgrade_args(
        &mut self,
        lab: &mut Lab,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Duration, String> {
        let t = Instant::now();
        let old = self.index;
        let c = self.conf.to_string_lossy().into_owned();
        let rvsd_bin = bin("rvsd").to_string_lossy().into_owned();
        let new = lab.spawn(
            &self.ns,
            &format!("{}rvsd-new", self.tag),
            &self.pinned(&[&[rvsd_bin.as_str(), "--takeover", "-c", &c][..], args].concat()),
            &[
                &[
                    ("RVS_SOCKET", self.socket.as_str()),
                    ("RVS_RUN_DIR", &self.run_dir),
                ][..],
                env,
            ]
            .concat(),
        );
        // rvsd's own limit for the pre-copy is 120 s (millions of
        // connections take tens of seconds while the old one forwards).
        let end = Instant::now() + UPGRADE_WAIT;
        loop {
            if !lab.proc(new).alive() {
                return Err(format!("rvsd --takeover exited: {}", lab.proc(new).log()));
            }
            if !lab.proc(old).alive() {
                break;
            }
            if Instant::now() > end {
                return Err(format!(
                    "the old rvsd still runs {UPGRADE_WAIT:?} after --takeover: {}",
                    lab.proc(new).log()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let took = t.elapsed();
        self.index = new;
        self.log = lab.dir.join(format!("{}rvsd-new.log", self.tag));
        self.wait_ready();
        Ok(took)
    }

    /// Starts `rvsd --standby -c FILE` (a warm standby of this rvsd; its
    /// log `{tag}rvsd-standby{n}.log`) and waits until it logs "standby
    /// ready": its index in the lab. Panics with its log if it exits.
    pub fn standby(&self, lab: &mut Lab, n: usize) -> usize {
        self.standby_with(lab, n, &[])
    }

    /// As [`Rvsd::standby`], with more environment for the standby (e.g.
    /// `RVS_TEST_TAKEOVER_FAIL=promote`).
    pub fn standby_with(&self, lab: &mut Lab, n: usize, env: &[(&str, &str)]) -> usize {
        let i = self.spawn_standby(lab, n, env);
        let end = Instant::now() + Duration::from_secs(20);
        while !lab.proc(i).log().contains("standby ready") {
            assert!(
                lab.proc(i).alive(),
                "rvsd --standby exited: {}",
                lab.proc(i).log()
            );
            assert!(
                Instant::now() < end,
                "no \"standby ready\" within 20 s: {}",
                lab.proc(i).log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        i
    }

    /// Starts `rvsd --standby` number `n` (its log `<tag>rvsd-standby<n>`)
    /// with `env` besides, without waiting for anything.
    pub fn spawn_standby(&self, lab: &mut Lab, n: usize, env: &[(&str, &str)]) -> usize {
        let c = self.conf.to_string_lossy().into_owned();
        let rvsd_bin = bin("rvsd").to_string_lossy().into_owned();
        lab.spawn(
            &self.ns,
            &format!("{}rvsd-standby{n}", self.tag),
            &[&rvsd_bin, "--standby", "-c", &c],
            &[
                &[
                    ("RVS_SOCKET", self.socket.as_str()),
                    ("RVS_RUN_DIR", &self.run_dir),
                ][..],
                env,
            ]
            .concat(),
        )
    }

    /// The standby `i` (from [`Rvsd::standby`]) is the daemon now: the
    /// tools and log are its.
    pub fn promoted(&mut self, i: usize, n: usize) {
        self.index = i;
        self.log = self
            .conf
            .with_file_name(format!("{}rvsd-standby{n}.log", self.tag));
        self.wait_ready();
    }

    /// Starts rvsd again after it died (as an operator does), on the
    /// ports it left taken.
    pub fn start_again(&mut self, lab: &mut Lab) {
        assert!(!lab.proc(self.index).alive(), "rvsd still runs");
        self.launch(lab, &bin("rvsd").to_string_lossy());
    }

    /// A plain restart, as an operator without hot upgrade does it: SIGTERM,
    /// wait until the daemon gave the ports back and exited, start it again
    /// on the same file. Its configuration (services, addresses) is gone:
    /// the caller applies it again. Returns how long rvsd took to exit.
    pub fn restart(&mut self, lab: &mut Lab) -> Duration {
        let t = Instant::now();
        let p = lab.proc(self.index);
        p.signal("TERM");
        let code = p.wait_exit(Duration::from_secs(10));
        assert_eq!(
            code,
            Some(0),
            "rvsd did not stop cleanly on SIGTERM; its log:\n{}",
            self.rvsd_log()
        );
        let down = t.elapsed();
        self.launch(lab, &bin("rvsd").to_string_lossy());
        down
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
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn tool(&self, name: &str, args: &[&str]) -> Output {
        std::process::Command::new(bin(name))
            .args(args)
            .env("RVS_SOCKET", &self.socket)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
    }

    /// Runs `rvsadm` against this rvsd.
    pub fn rvsadm(&self, args: &[&str]) -> Output {
        self.tool("rvsadm", args)
    }

    /// Runs `rvsip` against this rvsd.
    pub fn rvsip(&self, args: &[&str]) -> Output {
        self.tool("rvsip", args)
    }

    /// The drop counter `reason` (e.g. `no_route`) in `rvsip -s link show`'s
    /// drop lists. They are the workers' drops, shown alike under every
    /// port, so the first port's list is read.
    pub fn drops(&self, reason: &str) -> u64 {
        self.ok("rvsip", &["-s", "link", "show"])
            .lines()
            .filter_map(|l| l.trim().strip_prefix(&format!("{reason}:")))
            .find_map(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    }

    /// The tutorial's FNAT two-arm commands, word for word (dpip → rvsip,
    /// ipvsadm → rvsadm): VIP 10.0.0.100 on dpdk1, two FNAT real servers,
    /// local address 192.168.100.200 on dpdk0.
    pub fn tutorial_fnat(&self) {
        self.tutorial_fnat_on("dpdk1", "dpdk0", &["192.168.100.2", "192.168.100.3"]);
    }

    /// [`Rvsd::tutorial_fnat`] with the VIP and the client's route on device
    /// `wan` (a bond, a VLAN device), the real servers' route and the local
    /// address on `lan`, and real servers `rss`.
    pub fn tutorial_fnat_on(&self, wan: &str, lan: &str, rss: &[&str]) {
        self.ok("rvsip", &["addr", "add", "10.0.0.100/32", "dev", wan]);
        self.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", wan]);
        self.ok("rvsip", &["route", "add", "192.168.100.0/24", "dev", lan]);
        let rss: Vec<String> = rss.iter().map(|r| r.to_string()).collect();
        self.fnat_service(
            &FnatService {
                lan,
                ..FnatService::tutorial()
            },
            &rss,
        );
    }

    /// A UDP FNAT service 10.0.0.100:53 (rr) to the real servers `rss`
    /// (`IP:53`), with the tutorial's local address 192.168.100.200 on
    /// dpdk0 (the VIP and routes as [`Rvsd::tutorial_fnat`] sets them).
    pub fn udp_fnat_service(&self, rss: &[&str]) {
        let rss: Vec<String> = rss.iter().map(|r| r.to_string()).collect();
        let s = FnatService {
            proto: "-u",
            vs: "10.0.0.100:53",
            ..FnatService::tutorial()
        };
        self.fnat_service(&s, &rss);
    }

    /// The tutorial's FNAT service again on `VIP:port` toward the real
    /// servers' `port`, with `--proxy-protocol version` (v1 or v2): their
    /// nginx ([`crate::Lab::nginx_proxy_protocol`]) reads the client's
    /// address from the header.
    pub fn proxy_protocol_service(&self, port: u16, version: &str) {
        let vs = format!("10.0.0.100:{port}");
        let rss: Vec<String> = ["192.168.100.2", "192.168.100.3"]
            .iter()
            .map(|rs| format!("{rs}:{port}"))
            .collect();
        let s = FnatService {
            vs: &vs,
            options: &["--proxy-protocol", version],
            ..FnatService::tutorial()
        };
        self.fnat_service(&s, &rss);
    }

    /// Adds FNAT service `s` (rr) with real servers `rss` (`rvsadm -a ...
    /// -b`, each must be accepted) and its local address. Returns what the
    /// first real server's `rvsadm -a` said on stderr (a warning, or
    /// nothing).
    pub fn fnat_service(&self, s: &FnatService, rss: &[String]) -> String {
        let (p, vs) = (s.proto, s.vs);
        self.ok(
            "rvsadm",
            &[&["-A", p, vs, "-s", "rr"][..], s.options].concat(),
        );
        let mut first = None;
        for r in rss {
            let o = self.rvsadm(&["-a", p, vs, "-r", r, "-b"]);
            assert!(
                o.status.success(),
                "rvsadm -a {p} {vs} -r {r} -b: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            first.get_or_insert_with(|| String::from_utf8_lossy(&o.stderr).into_owned());
        }
        let z = ["--add-laddr", "-z", s.lip, p, vs, "-F", s.lan];
        self.ok("rvsadm", &z);
        first.unwrap_or_default()
    }

    /// `curl -sS --max-time 5 --local-port <port> <url>` from namespace
    /// `ns` of `lab`: the body, trimmed; a failure panics showing curl's
    /// error and [`Rvsd::diag`].
    pub fn curl(&self, lab: &Lab, ns: &str, port: u16, url: &str) -> String {
        let lp = port.to_string();
        let cmd = ["curl", "-sS", "--max-time", "5", "--local-port", &lp, url];
        let o = lab.exec(ns, &cmd);
        assert!(
            o.status.success(),
            "{ns}$ curl --local-port {port} {url} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.diag()
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// What a failed check shows of rvsd: `rvsip -s link show` (counters,
    /// drops, bond state) and its log.
    pub fn diag(&self) -> String {
        format!(
            "$ rvsip -s link show\n{}\nrvsd log:\n{}",
            self.ok("rvsip", &["-s", "link", "show"]),
            self.rvsd_log()
        )
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
}

/// An FNAT service for [`Rvsd::fnat_service`].
#[derive(Debug, Clone, Copy)]
pub struct FnatService<'a> {
    /// `-t` (TCP) or `-u` (UDP).
    pub proto: &'a str,
    /// The virtual service, `VIP:port` (`[VIP6]:port`).
    pub vs: &'a str,
    /// The local address.
    pub lip: &'a str,
    /// The device the local address is on.
    pub lan: &'a str,
    /// More `rvsadm -A` options (`--proxy-protocol v1`, ...).
    pub options: &'a [&'a str],
}

impl FnatService<'_> {
    /// The tutorial's: TCP 10.0.0.100:80, local address 192.168.100.200 on dpdk0.
    pub fn tutorial() -> FnatService<'static> {
        FnatService {
            proto: "-t",
            vs: "10.0.0.100:80",
            lip: "192.168.100.200",
            lan: "dpdk0",
            options: &[],
        }
    }
}

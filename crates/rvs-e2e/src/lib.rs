//! A lab of network namespaces for rvs: the DPVS tutorial's topologies with
//! real peers (nginx, curl, wrk, tcpdump) that rvs did not write.
//!
//! Everything a [`Lab`] creates (namespaces, veth pairs, processes, files) is
//! named uniquely per run (`rvs<pid>x<n>-...`) and removed when the lab is
//! dropped, also when a test fails; [`sweep`] removes what a killed run left.
//! No traffic leaves the namespaces the lab creates.
#![forbid(unsafe_code)]

pub mod bird;
pub mod capture;
pub mod disrupt;
pub mod ecmp;
pub mod fault;
pub mod frr;
pub mod gap;
pub mod one_arm;
pub mod ovs;
pub mod rvsd;
pub mod stream;
pub mod topo;
pub mod v6;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Runs a command, returning its output; panics with the command and its
/// stderr when it cannot start.
pub fn run(cmd: &[&str]) -> Output {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command and requires success.
pub fn must(cmd: &[&str]) -> String {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed ({}): {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether we are root (the lab needs it).
pub fn is_root() -> bool {
    run(&["id", "-u"]).stdout.starts_with(b"0")
}

/// Fails loudly when a tool the lab needs is missing.
pub fn require_tools(tools: &[&str]) {
    assert!(
        is_root(),
        "the rvs lab needs root (network namespaces); run as root"
    );
    for t in tools {
        let found = run(&["sh", "-c", &format!("command -v {t}")])
            .status
            .success();
        assert!(found, "{t} is not installed: run `bash scripts/test-all.sh` (it installs the lab's packages) or apt-get install it");
    }
}

/// The directory holding the workspace's built binaries (target/debug or release).
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("RVS_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut d = exe.parent().expect("exe dir").to_path_buf();
    if d.ends_with("deps") {
        d.pop();
    }
    d
}

/// A built binary of the workspace (`rvsd`, `rvsadm`, `rvsip`).
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// Removes namespaces left by lab runs whose process is gone.
pub fn sweep() {
    let out = run(&["ip", "netns", "list"]);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("rvs") else {
            continue;
        };
        let Some(pid) = rest.split('x').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let pids = run(&["ip", "netns", "pids", name]);
            for p in String::from_utf8_lossy(&pids.stdout).lines() {
                let _ = run(&["kill", "-9", p]);
            }
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
}

/// A process started by the lab; killed on drop.
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Its log (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (e.g. "HUP", "TERM").
    pub fn signal(&self, sig: &str) {
        let _ = run(&["kill", &format!("-{sig}"), &self.child.id().to_string()]);
    }

    /// Waits up to `t` for it to exit; its exit code.
    pub fn wait_exit(&mut self, t: Duration) -> Option<i32> {
        let end = Instant::now() + t;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = run(&["kill", "-TERM", &self.child.id().to_string()]);
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A set of namespaces and processes with a unique prefix; all removed on drop.
pub struct Lab {
    /// Unique prefix, e.g. `rvs1234x0`.
    pub id: String,
    /// Scratch directory (configs, logs, the control socket).
    pub dir: PathBuf,
    namespaces: Vec<String>,
    procs: Vec<Proc>,
}

impl Lab {
    /// A new, empty lab.
    pub fn new() -> Lab {
        sweep();
        let id = format!(
            "rvs{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(&id);
        std::fs::create_dir_all(&dir).expect("lab dir");
        Lab {
            id,
            dir,
            namespaces: Vec::new(),
            procs: Vec::new(),
        }
    }

    /// The full name of namespace `short` (e.g. "lb" → "rvs1234x0-lb").
    pub fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.id)
    }

    /// Creates namespace `short` with loopback up.
    pub fn add_ns(&mut self, short: &str) -> String {
        let n = self.ns(short);
        must(&["ip", "netns", "add", &n]);
        self.namespaces.push(n.clone());
        must(&["ip", "-n", &n, "link", "set", "lo", "up"]);
        n
    }

    /// Runs a command inside namespace `short`.
    pub fn exec(&self, short: &str, cmd: &[&str]) -> Output {
        let ns = self.ns(short);
        let mut full = vec!["ip", "netns", "exec", ns.as_str()];
        full.extend_from_slice(cmd);
        run(&full)
    }

    /// Runs a command inside namespace `short` and requires success.
    pub fn must_in(&self, short: &str, cmd: &[&str]) -> String {
        let ns = self.ns(short);
        let mut full = vec!["ip", "netns", "exec", ns.as_str()];
        full.extend_from_slice(cmd);
        must(&full)
    }

    /// A veth pair between namespaces `a` and `b`, named `an`/`bn` inside them.
    pub fn veth(&self, a: &str, an: &str, b: &str, bn: &str) {
        // Unique across concurrent runs too: the pair is created in the root
        // namespace before it moves (at most 15 bytes with the `b`).
        let tmp_a = format!(
            "v{}x{}a",
            std::process::id() % 1_000_000,
            SEQ.fetch_add(1, Ordering::SeqCst) % 100_000
        );
        let tmp_b = format!("{tmp_a}b");
        must(&[
            "ip", "link", "add", &tmp_a, "type", "veth", "peer", "name", &tmp_b,
        ]);
        must(&[
            "ip",
            "link",
            "set",
            &tmp_a,
            "netns",
            &self.ns(a),
            "name",
            an,
        ]);
        must(&[
            "ip",
            "link",
            "set",
            &tmp_b,
            "netns",
            &self.ns(b),
            "name",
            bn,
        ]);
        // `dev`: a name like "down" or "up" is not taken for a keyword.
        must(&["ip", "-n", &self.ns(a), "link", "set", "dev", an, "up"]);
        must(&["ip", "-n", &self.ns(b), "link", "set", "dev", bn, "up"]);
    }

    /// Starts a long-running process inside namespace `short` (logging to the lab dir).
    pub fn spawn(&mut self, short: &str, name: &str, cmd: &[&str], env: &[(&str, &str)]) -> usize {
        let log = self.dir.join(format!("{name}.log"));
        let f = std::fs::File::create(&log).expect("log file");
        let f2 = f.try_clone().expect("log file");
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(short)])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.procs.push(Proc {
            name: name.to_string(),
            child,
            log,
        });
        self.procs.len() - 1
    }

    /// A process started with [`Lab::spawn`].
    pub fn proc(&mut self, i: usize) -> &mut Proc {
        &mut self.procs[i]
    }

    /// Writes a file in the lab dir and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).expect("write lab file");
        p
    }

    /// Starts nginx in namespace `short`, answering every request with
    /// `<label> <client address>:<client port>` (like the tutorial's TOA-enabled
    /// nginx, which prints the client's address).
    pub fn nginx(&mut self, short: &str, label: &str) -> usize {
        let root = self.dir.join(format!("nginx-{label}"));
        std::fs::create_dir_all(&root).expect("nginx dir");
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {root}/nginx.pid; error_log {root}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log off; client_body_temp_path {root}; proxy_temp_path {root}; fastcgi_temp_path {root};\n\
               uwsgi_temp_path {root}; scgi_temp_path {root}; keepalive_requests 1000000;\n\
               server {{ listen 80 reuseport; listen [::]:80; location / {{ default_type text/plain; return 200 \"{label} $remote_addr:$remote_port\\n\"; }} }} }}\n",
            root = root.display()
        );
        let path = root.join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx conf");
        let p = path.to_string_lossy().into_owned();
        let i = self.spawn(short, &format!("nginx-{label}"), &["nginx", "-c", &p], &[]);
        self.wait_port(short, 80, Duration::from_secs(5));
        i
    }

    /// Starts nginx in namespace `short` listening on `port` with
    /// `proxy_protocol` (it then requires a PROXY protocol header, v1 or v2),
    /// answering every request with `<label> <PROXY protocol address>:<port>
    /// via <peer address>:<port>`: the client's address as the header gave it,
    /// then the connection's own peer (rvs's local address).
    pub fn nginx_proxy_protocol(&mut self, short: &str, label: &str, port: u16) -> usize {
        let root = self.dir.join(format!("nginx-pp-{label}"));
        std::fs::create_dir_all(&root).expect("nginx dir");
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {root}/nginx.pid; error_log {root}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; client_body_temp_path {root}; proxy_temp_path {root}; fastcgi_temp_path {root};\n\
               uwsgi_temp_path {root}; scgi_temp_path {root};\n\
               server {{ listen {port} proxy_protocol; location / {{ default_type text/plain;\n\
                 return 200 \"{label} $proxy_protocol_addr:$proxy_protocol_port via $remote_addr:$remote_port\\n\"; }} }} }}\n",
            root = root.display()
        );
        let path = root.join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx conf");
        let p = path.to_string_lossy().into_owned();
        let i = self.spawn(
            short,
            &format!("nginx-pp-{label}"),
            &["nginx", "-c", &p],
            &[],
        );
        self.wait_port(short, port, Duration::from_secs(5));
        i
    }

    /// Waits until something listens on TCP `port` in namespace `short`.
    pub fn wait_port(&self, short: &str, port: u16, t: Duration) {
        self.wait_socket(short, "-ltnH", port, t)
    }

    /// Waits until a UDP socket is bound to `port` in namespace `short`
    /// (an echo server spawned a moment ago may not be yet).
    pub fn wait_udp_port(&self, short: &str, port: u16, t: Duration) {
        self.wait_socket(short, "-lunH", port, t)
    }

    fn wait_socket(&self, short: &str, ss_flags: &str, port: u16, t: Duration) {
        let end = Instant::now() + t;
        while Instant::now() < end {
            let o = self.exec(short, &["ss", ss_flags, &format!("sport = :{port}")]);
            if !o.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nothing listens on port {port} in {} after {t:?}",
            self.ns(short)
        );
    }

    /// `curl` from namespace `short`; the body, or an error with curl's message.
    pub fn curl(&self, short: &str, url: &str) -> Result<String, String> {
        let o = self.exec(short, &["curl", "-sS", "--max-time", "5", url]);
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Processes first (they run inside the namespaces), then namespaces.
        self.procs.clear();
        for n in self.namespaces.drain(..).rev() {
            let pids = run(&["ip", "netns", "pids", &n]);
            for p in String::from_utf8_lossy(&pids.stdout).lines() {
                let _ = run(&["kill", "-9", p]);
            }
            let _ = run(&["ip", "netns", "del", &n]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

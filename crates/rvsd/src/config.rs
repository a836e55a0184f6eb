//! The daemon's configuration file (`rvsd -c FILE`, default `/etc/rvs/rvs.toml`).
//!
//! Every key is documented in `conf/rvs.toml.sample`. Errors name the file,
//! the line and the key, so an operator can fix them without guessing.

use std::path::{Path, PathBuf};

use rvs_core::conn::tcp::Timeouts;
use rvs_core::snapshot::PipelineConf;
use rvs_core::wire::uoa::Mode as UoaMode;
use serde::Deserialize;

mod bond;
pub mod dpdk;
mod sync;
mod synproxy;
mod vlan;
pub use bond::{BondSection, LacpRate, XmitHashConf};
use sync::check_sync;
pub use sync::{SyncRoleConf, SyncSection};
pub use synproxy::SynproxySection;
pub use vlan::VlanSection;

/// Default configuration file.
pub const DEFAULT_PATH: &str = "/etc/rvs/rvs.toml";

/// I/O backend of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// AF_PACKET rings (RX: TPACKET_V2 or V3, see `rx_ring`).
    AfPacket,
    /// AF_XDP sockets fed by rvs's own XDP program.
    AfXdp,
    /// A DPDK poll-mode driver (`dpdk_dev`; rvsd built with `--features dpdk`).
    Dpdk,
}

/// Where the XDP program of an `af_xdp` port runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum XdpModeConf {
    /// The driver's native hook when it has one, else generic.
    #[default]
    Auto,
    /// Native only.
    Native,
    /// Generic (skb) only.
    Generic,
}

/// What an `af_xdp` port does about received TCP/UDP checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RxChecksumConf {
    /// Leave them to the pipeline.
    Verify,
    /// Verify, completing partial checksums of neighbours with TX offload.
    #[default]
    Complete,
    /// Take them as verified.
    Trust,
}

/// Which TPACKET version an `af_packet` port's RX rings use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RxRingConf {
    /// Per-frame slots: each frame is seen as soon as it arrives.
    #[default]
    V2,
    /// Blocks handed over when full or after a timer: fewer wake-ups at
    /// high packet rates, milliseconds of latency at low ones.
    V3,
}

/// How a worker waits when there is no traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Idle {
    /// Poll, and sleep in poll(2) on the rings after a short idle spell.
    #[default]
    Adaptive,
    /// Poll without ever sleeping (a whole core per worker).
    Busy,
}

/// Where the connection tables get their memory (see rvs_io::mem).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HugePagesConf {
    /// Explicit huge pages if `vm.nr_hugepages` reserved enough, else
    /// transparent huge pages.
    #[default]
    Auto,
    /// Explicit huge pages only: rvsd refuses to start without enough.
    Hugetlb,
    /// Transparent huge pages only.
    Thp,
    /// The ordinary heap (4 KiB pages).
    Off,
}

/// A port rvs takes over.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Netif {
    /// The name the tools use (`dpdk0`).
    pub name: String,
    /// The kernel interface taken over.
    pub iface: String,
    /// I/O backend.
    #[serde(default = "default_backend")]
    pub backend: BackendKind,
    /// Create the `<name>.kni` exception-path device.
    #[serde(default = "yes")]
    pub kni: bool,
    /// IP MTU; default: the interface's.
    pub mtu: Option<u16>,
    /// `af_packet`: RX ring version.
    #[serde(default)]
    pub rx_ring: RxRingConf,
    /// `af_xdp`: where the XDP program runs.
    #[serde(default)]
    pub xdp_mode: XdpModeConf,
    /// `af_xdp`: how many of the device's RX queues to serve, from queue 0
    /// on (default: all of them; every worker gets a socket on each).
    pub xdp_queues: Option<u32>,
    /// `af_xdp`: UMEM frames per served queue, shared by the workers'
    /// sockets on it (default 8192).
    pub xdp_frames: Option<u32>,
    /// `af_xdp`: UMEM frame size, 2048 or 4096 (default 2048).
    pub xdp_frame_size: Option<u32>,
    /// `af_xdp`: fill ring entries, a power of two (default 4096).
    pub xdp_fill_size: Option<u32>,
    /// `af_xdp`: completion ring entries, a power of two (default 2048).
    pub xdp_comp_size: Option<u32>,
    /// `af_xdp`: each worker's RX and TX ring entries, a power of two
    /// (default 2048).
    pub xdp_ring_size: Option<u32>,
    /// `af_xdp`: receive checksum policy.
    #[serde(default)]
    pub rx_checksum: RxChecksumConf,
    /// `dpdk`: the device, `net_af_packet` (default) or `net_af_xdp` on
    /// `iface`, or a PCI address.
    pub dpdk_dev: Option<String>,
}

fn default_backend() -> BackendKind {
    BackendKind::AfPacket
}

fn yes() -> bool {
    true
}

/// Protocol timeouts in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TimeoutConf {
    /// TCP ESTABLISHED.
    pub tcp_established: Option<u32>,
    /// TCP SYN_RECV.
    pub tcp_syn_recv: Option<u32>,
    /// TCP FIN_WAIT.
    pub tcp_fin_wait: Option<u32>,
    /// TCP TIME_WAIT.
    pub tcp_time_wait: Option<u32>,
    /// TCP CLOSE.
    pub tcp_close: Option<u32>,
    /// TCP CLOSE_WAIT.
    pub tcp_close_wait: Option<u32>,
    /// TCP LAST_ACK.
    pub tcp_last_ack: Option<u32>,
    /// UDP.
    pub udp: Option<u32>,
    /// ICMP.
    pub icmp: Option<u32>,
}

/// Pipeline switches.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// Verify received TCP/UDP/ICMP checksums (the backend may vouch for them).
    #[serde(default = "yes")]
    pub verify_l4_checksum: bool,
    /// Insert the client address (TOA) into FNAT TCP traffic.
    #[serde(default = "yes")]
    pub toa: bool,
    /// IPVS's `sloppy_tcp`: a non-SYN TCP packet of an unknown flow starts
    /// a DR or TUNNEL connection (ECMP nodes).
    #[serde(default)]
    pub sloppy_tcp: bool,
    /// Fast xmit: send FNAT/NAT/SNAT replies back to the port and MAC the
    /// connection's client-side packets came from, without a route lookup
    /// (DPVS's default; its `fast_xmit_close` is `fast_xmit = false`).
    #[serde(default = "yes")]
    pub fast_xmit: bool,
    /// Slots of each worker's per-source limit table (`rvsadm --src-...`
    /// limits), 72 bytes each, allocated when a per-source limit is first
    /// set.
    #[serde(default = "limit_sources")]
    pub limit_sources: usize,
    /// Packets per second (all workers) handed to the kernel for VIPs when
    /// they match no service; 0: no limit.
    #[serde(default = "kni_vip_rate")]
    pub kni_vip_rate: u32,
    /// Forward established FNAT flows outside the workers: `"xdp"` (in
    /// the AF_XDP ports' XDP program; every port must be `af_xdp`) or
    /// `"off"` (the default).
    #[serde(default)]
    pub fast_path: FastPathConf,
    /// UOA for FNAT UDP, DPVS's `uoa_mode`: `"opp"` (a private IP protocol
    /// header before the UDP header), `"ipo"` (an IPv4 option) or `"off"`
    /// (the default: a real server without a UOA decoder drops `opp`).
    #[serde(default)]
    pub uoa_mode: UoaModeConf,
    /// DPVS's `uoa_max_trail`: UOA in at most this many datagrams of a
    /// connection (fewer when the real server answers first).
    #[serde(default = "uoa_max_trail")]
    pub uoa_max_trail: u8,
}

/// `[pipeline] uoa_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UoaModeConf {
    /// No UOA.
    #[default]
    Off,
    /// The option protocol (248) header.
    Opp,
    /// An IPv4 option.
    Ipo,
}

fn uoa_max_trail() -> u8 {
    PipelineConf::default().uoa_max_trail
}

/// Where established FNAT flows are forwarded besides the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FastPathConf {
    /// Only by the workers.
    #[default]
    Off,
    /// In the XDP program of the AF_XDP ports (see rvs-io `af_xdp::fast`).
    Xdp,
}

fn kni_vip_rate() -> u32 {
    PipelineConf::default().kni_vip_rate
}

fn limit_sources() -> usize {
    PipelineConf::default().limit_sources
}

impl Default for PipelineSection {
    fn default() -> Self {
        PipelineSection {
            verify_l4_checksum: true,
            toa: true,
            sloppy_tcp: false,
            fast_xmit: true,
            limit_sources: limit_sources(),
            kni_vip_rate: kni_vip_rate(),
            fast_path: FastPathConf::Off,
            uoa_mode: UoaModeConf::Off,
            uoa_max_trail: uoa_max_trail(),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Worker threads.
    #[serde(default = "one")]
    pub workers: u16,
    /// CPUs to pin workers to, one per worker in order (optional).
    #[serde(default)]
    pub cpus: Vec<usize>,
    /// Connection-table capacity per worker.
    #[serde(default = "default_capacity")]
    pub conn_capacity: usize,
    /// Control socket path (the `RVS_SOCKET` environment variable overrides it).
    pub socket: Option<String>,
    /// Idle strategy.
    #[serde(default)]
    pub idle: Idle,
    /// Memory of the connection tables: `auto`, `hugetlb`, `thp`, `off`.
    #[serde(default)]
    pub huge_pages: HugePagesConf,
    /// Log level: error, warn, info, debug, trace.
    #[serde(default = "default_log")]
    pub log_level: String,
    /// Ports.
    #[serde(default)]
    pub netif: Vec<Netif>,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: TimeoutConf,
    /// Pipeline switches.
    #[serde(default)]
    pub pipeline: PipelineSection,
    /// Connection sync (none: no sync daemon at start).
    pub sync: Option<SyncSection>,
    /// The data-plane watchdog.
    #[serde(default)]
    pub health: crate::daemon::health::HealthSection,
    /// A warm standby's (`rvsd --standby`) watch on a hung active.
    #[serde(default)]
    pub standby: crate::handover::standby::StandbySection,
    /// The SYN proxy's cookie key (none: a random one per process).
    #[serde(default)]
    pub synproxy: SynproxySection,
    /// Flow logs (none: off).
    #[serde(default)]
    pub flow_log: Option<crate::flowlog::FlowLogSection>,
    /// The key `[synproxy]` names, read and checked by [`Config::parse`].
    #[serde(skip)]
    pub synproxy_key: Option<[u64; 2]>,
    /// Where to serve Prometheus metrics at `GET /metrics`, e.g.
    /// "127.0.0.1:9108" (none: not served).
    pub metrics_listen: Option<String>,
    /// `metrics_listen` parsed by [`Config::parse`].
    #[serde(skip)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// VLAN devices made at start (`[[vlan]]`).
    #[serde(default)]
    pub vlan: Vec<VlanSection>,
    /// Bonding devices (`[[bond]]`).
    #[serde(default)]
    pub bond: Vec<BondSection>,
    /// DPDK's EAL options and pools (`[dpdk]`), for `backend = "dpdk"` ports.
    #[serde(default)]
    pub dpdk: dpdk::DpdkSection,
}

fn one() -> u16 {
    1
}

fn default_capacity() -> usize {
    1 << 20
}

fn default_log() -> String {
    "info".into()
}

/// A configuration error: which file, where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// Line (1-based), when known.
    pub line: Option<usize>,
    /// What was wrong, naming the key.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.path.display(), l, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line (1-based) of `key` in the `i`-th `[[netif]]` section of `text`,
/// else the line of the section's header.
fn netif_key_line(text: &str, i: usize, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[netif]]"))
        .nth(i)?
        .0;
    Some(key_line_below(&lines, header, key))
}

/// The line (1-based) of `key` in the `i`-th `header` (`"[[name]]"`)
/// section of `text`, else the line of the section's header.
fn section_nth_key_line(text: &str, header: &str, i: usize, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let h = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(header))
        .nth(i)?
        .0;
    Some(key_line_below(&lines, h, key))
}

/// The line (1-based) of `key` in section `section` (`"[name]"`) of
/// `text`, else the line of the section's header.
fn section_key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| l.trim() == section)?;
    Some(key_line_below(&lines, header, key))
}

/// The line (1-based) of `key` in the section whose header is
/// `lines[header]`, else the line of the header.
fn key_line_below(lines: &[&str], header: usize, key: &str) -> usize {
    let found = lines[header + 1..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with('['))
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
    found.map_or(header + 1, |k| header + 2 + k)
}

/// Why `name` cannot be the name of a Linux network interface, or `None`
/// when it can. Refused: what the kernel refuses (`dev_valid_name`: empty,
/// longer than 15 bytes, "." or "..", '/', ':' or whitespace), a '%' (a
/// pattern to the kernel, never a device's name), and what rvsd will not
/// write into an nftables script (quotes, backslash, control characters).
pub fn iface_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("an interface name cannot be empty".into());
    }
    if name.len() > 15 {
        return Some(format!(
            "{} bytes: an interface name has at most 15 (IFNAMSIZ - 1)",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Some("\".\" and \"..\" are not interface names".into());
    }
    let bad = name.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '/' | ':' | '"' | '\'' | '\\' | '%')
    });
    bad.map(|c| format!("{c:?} cannot appear in an interface name"))
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Parses and validates configuration text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let err = |line, message: String| ConfigError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut c: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let mut m = e.message().trim().to_string();
            // Name the key when the parser's message does not.
            let key = line
                .and_then(|l| text.lines().nth(l - 1))
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && !k.starts_with('[') && !m.contains(k));
            if let Some(k) = key {
                m = format!("{k}: {m}");
            }
            err(line, m)
        })?;
        // Validation with the line of the offending key where we can find it.
        let find = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(key))
                .map(|i| i + 1)
        };
        if c.workers == 0 || c.workers > 64 {
            return Err(err(
                find("workers"),
                format!("workers = {}: must be 1..=64", c.workers),
            ));
        }
        if !c.cpus.is_empty() && c.cpus.len() != c.workers as usize {
            return Err(err(
                find("cpus"),
                format!(
                    "cpus lists {} CPUs for {} workers: give one per worker or none",
                    c.cpus.len(),
                    c.workers
                ),
            ));
        }
        if c.pipeline.fast_path == FastPathConf::Xdp {
            if let Some(n) = c.netif.iter().find(|n| n.backend != BackendKind::AfXdp) {
                return Err(err(
                    find("fast_path"),
                    format!(
                        "fast_path = \"xdp\" needs backend = \"af_xdp\" on every [[netif]]: {} uses af_packet (the XDP fast path runs in the AF_XDP ports' XDP program)",
                        n.name
                    ),
                ));
            }
        }
        if let Some(m) = c.health.problem() {
            return Err(err(find("stall_ms"), m));
        }
        if let Some(m) = c.standby.problem() {
            return Err(err(find("hung_ms"), m));
        }
        if c.conn_capacity == 0 || c.conn_capacity > rvs_core::conn::MAX_CAPACITY {
            return Err(err(
                find("conn_capacity"),
                format!("conn_capacity = {}: must be 1..=2^31-1", c.conn_capacity),
            ));
        }
        if !(8..=1 << 26).contains(&c.pipeline.limit_sources) {
            return Err(err(
                find("limit_sources"),
                format!(
                    "limit_sources = {}: must be 8..=67108864 (slots per worker)",
                    c.pipeline.limit_sources
                ),
            ));
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&c.log_level.as_str()) {
            return Err(err(
                find("log_level"),
                format!(
                    "log_level = \"{}\": expected error, warn, info, debug or trace",
                    c.log_level
                ),
            ));
        }
        if let Some(m) = &c.metrics_listen {
            c.metrics_addr = Some(m.trim().parse().map_err(|_| {
                err(
                    find("metrics_listen"),
                    format!("metrics_listen = {m:?}: expected an address and port such as \"127.0.0.1:9108\" or \"[::1]:9108\""),
                )
            })?);
        }
        if c.netif.is_empty() {
            return Err(err(
                None,
                "no [[netif]] section: rvsd needs at least one port".into(),
            ));
        }
        for (i, n) in c.netif.iter().enumerate() {
            let at = |key: &str| netif_key_line(text, i, key);
            if n.name.is_empty()
                || n.name.len() > 11
                || !n
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            {
                return Err(err(
                    at("name"),
                    format!("netif name = \"{}\": 1 to 11 letters, digits, '-' or '_' (the kni device adds \".kni\")", n.name),
                ));
            }
            if let Some(why) = iface_name_problem(&n.iface) {
                return Err(err(
                    at("iface"),
                    format!("netif iface = {:?}: {why}", n.iface),
                ));
            }
            if c.netif.iter().filter(|m| m.name == n.name).count() > 1 {
                return Err(err(
                    at("name"),
                    format!("netif name = \"{}\" appears twice", n.name),
                ));
            }
            if c.netif.iter().filter(|m| m.iface == n.iface).count() > 1 {
                return Err(err(
                    at("iface"),
                    format!("netif iface = \"{}\" appears twice", n.iface),
                ));
            }
            if n.mtu.is_some_and(|m| !(576..=9000).contains(&m)) {
                return Err(err(
                    at("mtu"),
                    format!("netif mtu = {}: must be 576..=9000", n.mtu.unwrap_or(0)),
                ));
            }
            if let Some(f) = n.xdp_frame_size.filter(|f| *f != 2048 && *f != 4096) {
                return Err(err(
                    at("xdp_frame_size"),
                    format!("netif xdp_frame_size = {f}: must be 2048 or 4096"),
                ));
            }
            for (key, v) in [
                ("xdp_fill_size", n.xdp_fill_size),
                ("xdp_comp_size", n.xdp_comp_size),
                ("xdp_ring_size", n.xdp_ring_size),
            ] {
                if let Some(v) = v.filter(|v| !v.is_power_of_two() || *v < 64 || *v > 65536) {
                    return Err(err(
                        at(key),
                        format!("netif {key} = {v}: must be a power of two, 64..=65536"),
                    ));
                }
            }
            if let Some(q) = n.xdp_queues.filter(|q| *q == 0 || *q > 1024) {
                return Err(err(
                    at("xdp_queues"),
                    format!("netif xdp_queues = {q}: must be 1..=1024"),
                ));
            }
            if let Some(f) = n.xdp_frames.filter(|f| *f < 512 || *f > 1 << 20) {
                return Err(err(
                    at("xdp_frames"),
                    format!("netif xdp_frames = {f}: must be 512..=1048576"),
                ));
            }
        }
        if let Some(sy) = &c.sync {
            check_sync(sy, text).map_err(|(line, m)| err(line, m))?;
        }
        bond::check_bonds(&c.bond, &c.netif, c.pipeline.fast_path == FastPathConf::Xdp)
            .map_err(|(i, key, m)| err(section_nth_key_line(text, "[[bond]]", i, key), m))?;
        vlan::check_vlans(&c.vlan, &c.netif, &c.bond)
            .map_err(|(i, key, m)| err(section_nth_key_line(text, "[[vlan]]", i, key), m))?;
        dpdk::check_dpdk(&c.netif)
            .map_err(|(i, key, m)| err(section_nth_key_line(text, "[[netif]]", i, key), m))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        c.synproxy_key = c
            .synproxy
            .master_key(dir)
            .map_err(|(key, m)| err(section_key_line(text, "[synproxy]", key), m))?;
        Ok(c)
    }

    /// The control socket: `RVS_SOCKET`, else the file's `socket`, else the default.
    pub fn socket_path(&self) -> String {
        std::env::var("RVS_SOCKET")
            .ok()
            .or_else(|| self.socket.clone())
            .unwrap_or_else(|| rvs_api::DEFAULT_SOCKET.to_string())
    }

    /// Timeouts with the file's overrides applied.
    pub fn timeouts(&self) -> Timeouts {
        let mut t = Timeouts::default();
        let s = &self.timeouts;
        let ms = |v: Option<u32>, d: u32| v.map_or(d, |x| x.saturating_mul(1000));
        t.established_ms = ms(s.tcp_established, t.established_ms);
        t.syn_recv_ms = ms(s.tcp_syn_recv, t.syn_recv_ms);
        t.fin_wait_ms = ms(s.tcp_fin_wait, t.fin_wait_ms);
        t.time_wait_ms = ms(s.tcp_time_wait, t.time_wait_ms);
        t.close_ms = ms(s.tcp_close, t.close_ms);
        t.close_wait_ms = ms(s.tcp_close_wait, t.close_wait_ms);
        t.last_ack_ms = ms(s.tcp_last_ack, t.last_ack_ms);
        t.udp_ms = ms(s.udp, t.udp_ms);
        t.icmp_ms = ms(s.icmp, t.icmp_ms);
        t
    }

    /// Pipeline knobs.
    pub fn pipeline_conf(&self) -> PipelineConf {
        PipelineConf {
            verify_l4_checksum: self.pipeline.verify_l4_checksum,
            toa: self.pipeline.toa,
            sloppy_tcp: self.pipeline.sloppy_tcp,
            fast_xmit: self.pipeline.fast_xmit,
            limit_sources: self.pipeline.limit_sources,
            kni_vip_rate: self.pipeline.kni_vip_rate,
            fast_path: self.pipeline.fast_path == FastPathConf::Xdp,
            synproxy_key: self.synproxy_key,
            uoa_mode: match self.pipeline.uoa_mode {
                UoaModeConf::Off => UoaMode::Off,
                UoaModeConf::Opp => UoaMode::Opp,
                UoaModeConf::Ipo => UoaMode::Ipo,
            },
            uoa_max_trail: self.pipeline.uoa_max_trail,
            ..PipelineConf::default()
        }
    }
}

#[cfg(test)]
mod tests;

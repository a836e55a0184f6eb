//! Whether a new rvsd can take over from the running one (HELLO, the first
//! step of `docs/design/hot-upgrade.md`).
//!
//! Both processes send a [`Hello`]: their version and build, the version
//! range of every frame kind they speak ([`KindRange`]), and the settings
//! that cannot change while the kernel objects and tables are handed over
//! as they are ([`Settings`]: workers, ports and their backends, the
//! AF_XDP queue and frame geometry, the steering rules, the XDP program's
//! ABI and map layouts). [`check`] compares the running rvsd's HELLO with
//! the new one's: it picks, per kind, the highest version both speak, and
//! refuses with every difference named ("workers: the running rvsd has 2,
//! this config 4: restart to change it"; "connection records: the running
//! rvsd writes 3, this binary reads 1..2").
//!
//! What may change in a takeover passes: the binary itself, timeouts,
//! `[pipeline]` (but `fast_path`, which decides the XDP program's maps),
//! `conn_capacity` as long as every worker's live connections fit
//! ([`check_capacity`]), the log level, the flow log, CPU pinning, the idle
//! strategy, huge pages, the watchdog.
//!
//! Texts are written for the operator of the new process ("this binary",
//! "this config"); the running rvsd logs the same text.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{BackendKind, Config, FastPathConf, RxRingConf, XdpModeConf};
use rvs_io::af_xdp::abi;

/// A frame kind of the hand-over protocol (`u16` on the wire). Unknown
/// codes are kept, so that a newer peer's kinds can be named in a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Kind(pub u16);

/// Who writes frames of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The running rvsd writes, the new one reads.
    RunningToNew,
    /// The new rvsd writes, the running one reads.
    NewToRunning,
    /// Both.
    Both,
}

impl Kind {
    /// HELLO: this structure (JSON).
    pub const HELLO: Kind = Kind(1);
    /// REFUSE: a [`Refusal`].
    pub const REFUSE: Kind = Kind(2);
    /// ABORT: a failure after HELLO, as text.
    pub const ABORT: Kind = Kind(3);
    /// RUNTIME: synproxy key, sync node id and sequence numbers, epoch, pid.
    pub const RUNTIME: Kind = Kind(4);
    /// STORE: `Store::to_requests` and `Store::fingerprint`.
    pub const STORE: Kind = Kind(5);
    /// The requests the running rvsd applies after STORE.
    pub const CONTROL_LOG: Kind = Kind(6);
    /// Descriptors (ports, TAPs, XDP objects, listeners) with their manifest.
    pub const FDS: Kind = Kind(7);
    /// Connection records (sync messages with local records), per worker.
    pub const CONNS: Kind = Kind(8);
    /// Neighbours.
    pub const NEIGH: Kind = Kind(9);
    /// Counter bases.
    pub const COUNTERS: Kind = Kind(10);
    /// A worker's sweep is complete.
    pub const SWEEP_DONE: Kind = Kind(11);
    /// FREEZE: the new rvsd asks the running one to stop reading.
    pub const FREEZE: Kind = Kind(12);
    /// FROZEN: a worker parked, with its final counters and RX cursors.
    pub const FROZEN: Kind = Kind(13);
    /// The free UMEM frames of each AF_XDP queue.
    pub const POOL_STATE: Kind = Kind(14);
    /// COMMIT: the new rvsd forwards; the running one exits.
    pub const COMMIT: Kind = Kind(15);
    /// Liveness of a warm standby's active rvsd.
    pub const HEARTBEAT: Kind = Kind(16);
    /// PRECOPY_DONE: the running rvsd sent all it can while forwarding.
    pub const PRECOPY_DONE: Kind = Kind(17);
    /// STARTED: the new rvsd's workers run.
    pub const STARTED: Kind = Kind(18);
    /// Where each parked worker's receive rings stop (AF_PACKET cursors).
    pub const RX_CURSORS: Kind = Kind(19);
    /// The control socket's and the metrics' listening sockets.
    pub const LISTENERS: Kind = Kind(20);
    /// A warm standby's death watch (a memfd; [`rvs_io::deathwatch`]).
    /// Not in [`Kind::ALL`] (not negotiated): sent only to a standby whose
    /// [`Hello::deathwatch`] is set, so that peers without it still work.
    /// Numbered apart from the negotiated kinds, which count up from 1.
    pub const DEATHWATCH: Kind = Kind(1000);

    /// Every kind this binary knows.
    pub const ALL: [Kind; 20] = [
        Kind::HELLO,
        Kind::REFUSE,
        Kind::ABORT,
        Kind::RUNTIME,
        Kind::STORE,
        Kind::CONTROL_LOG,
        Kind::FDS,
        Kind::CONNS,
        Kind::NEIGH,
        Kind::COUNTERS,
        Kind::SWEEP_DONE,
        Kind::FREEZE,
        Kind::FROZEN,
        Kind::POOL_STATE,
        Kind::COMMIT,
        Kind::HEARTBEAT,
        Kind::PRECOPY_DONE,
        Kind::STARTED,
        Kind::RX_CURSORS,
        Kind::LISTENERS,
    ];

    /// The name messages use ("connection records"); `frame kind N` for a
    /// kind this binary does not know.
    pub fn name(self) -> String {
        let n = match self {
            Kind::HELLO => "hello",
            Kind::REFUSE => "refusals",
            Kind::ABORT => "aborts",
            Kind::RUNTIME => "runtime state",
            Kind::STORE => "configuration",
            Kind::CONTROL_LOG => "control log",
            Kind::FDS => "descriptors",
            Kind::CONNS => "connection records",
            Kind::NEIGH => "neighbours",
            Kind::COUNTERS => "counters",
            Kind::SWEEP_DONE => "sweep ends",
            Kind::FREEZE => "freeze requests",
            Kind::FROZEN => "frozen workers",
            Kind::POOL_STATE => "UMEM pool states",
            Kind::COMMIT => "commits",
            Kind::HEARTBEAT => "heartbeats",
            Kind::PRECOPY_DONE => "pre-copy ends",
            Kind::STARTED => "start reports",
            Kind::RX_CURSORS => "receive ring positions",
            Kind::LISTENERS => "listening sockets",
            Kind(k) => return format!("frame kind {k}"),
        };
        n.to_string()
    }

    /// Who writes it (a kind this binary does not know: both).
    pub fn direction(self) -> Direction {
        match self {
            Kind::FREEZE | Kind::COMMIT | Kind::STARTED => Direction::NewToRunning,
            // CONTROL_LOG: also the changes the new rvsd made in its probation.
            Kind::HELLO | Kind::REFUSE | Kind::ABORT | Kind::HEARTBEAT | Kind::CONTROL_LOG => {
                Direction::Both
            }
            k if Kind::ALL.contains(&k) => Direction::RunningToNew,
            _ => Direction::Both,
        }
    }
}

/// The versions of one kind a process reads and writes, `min..=max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindRange {
    /// The kind.
    pub kind: Kind,
    /// Oldest version spoken.
    pub min: u16,
    /// Newest version spoken.
    pub max: u16,
}

impl KindRange {
    fn text(&self) -> String {
        if self.min == self.max {
            self.min.to_string()
        } else {
            format!("{}..{}", self.min, self.max)
        }
    }
}

/// The versions this binary speaks, `(kind, min, max)`; a kind not listed
/// is at version 1. A kind's `max` grows when its payload changes; its
/// `min` stays as long as the older payload is still read and written. The
/// STORE payload is `rvs_api` requests (protocol [`rvs_api::VERSION`]) and
/// a fingerprint of [`crate::store::fingerprint::FORMAT`]: a change of
/// either is a new STORE version.
///
/// Every kind was listed at version 1 from the first build on, before
/// most were sent: a kind that got its meaning later starts at 2, so that
/// a build that lists it without knowing it is refused at HELLO (naming
/// the kind) rather than failing half-way.
pub const VERSIONS: [(Kind, u16, u16); 5] = [
    // The changes both ways: after STORE, and the probation's back.
    (Kind::CONTROL_LOG, 2, 2),
    // The pre-copy's marks (swept, restarted, tail).
    (Kind::SWEEP_DONE, 2, 2),
    // The final counters, as the new rvsd's bases; 3: also every second
    // to a warm standby, the latest its bases at its promotion
    // (`precopy::COUNTERS_EVERY`; a 2 standby gets none).
    (Kind::COUNTERS, 2, 3),
    // The sync node id, sequence number and daemons.
    (Kind::RUNTIME, 2, 2),
    // A warm standby's liveness, both ways.
    (Kind::HEARTBEAT, 2, 2),
];

/// The versions this binary speaks ([`VERSIONS`]; every other kind at 1).
pub fn our_kinds() -> Vec<KindRange> {
    let forced = test_version();
    Kind::ALL
        .iter()
        .map(|&kind| {
            let (min, max) = VERSIONS
                .iter()
                .find(|v| v.0 == kind)
                .map_or((1, 1), |v| (v.1, v.2));
            KindRange {
                kind,
                min: forced.unwrap_or(min),
                max: forced.unwrap_or(max),
            }
        })
        .collect()
}

/// `RVS_TEST_NO_DEATHWATCH=1` (debug builds only): the HELLO of an rvsd
/// without the death watch (as an older one), so that the pidfd path and
/// the hand-over with such a peer can be tested and timed end to end.
fn no_deathwatch() -> bool {
    cfg!(debug_assertions) && std::env::var_os("RVS_TEST_NO_DEATHWATCH").is_some()
}

/// `RVS_TEST_HANDOVER_VERSION=N` (debug builds only): every kind at
/// version N, so that the refusal can be tested end to end.
fn test_version() -> Option<u16> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var("RVS_TEST_HANDOVER_VERSION")
        .ok()?
        .parse()
        .ok()
}

/// The version of each kind both sides speak, from [`negotiate`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Agreed(BTreeMap<Kind, u16>);

impl Agreed {
    /// The version frames of `kind` are written in (`None`: not agreed,
    /// never sent).
    pub fn version(&self, kind: Kind) -> Option<u16> {
        self.0.get(&kind).copied()
    }
}

/// Why a takeover is refused: the REFUSE frame, and the text both sides show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The first kind both sides do not agree on, when a version is why.
    pub kind: Option<Kind>,
    /// The running rvsd's range of it.
    pub running: Option<(u16, u16)>,
    /// The new rvsd's.
    pub new: Option<(u16, u16)>,
    /// Every reason, `; `-separated.
    pub text: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    fn settings(reasons: Vec<String>) -> Refusal {
        Refusal {
            kind: None,
            running: None,
            new: None,
            text: reasons.join("; "),
        }
    }
}

/// The reason two ranges of `kind` share no version (`None`: one or both
/// sides lack it).
fn version_reason(kind: Kind, running: Option<&KindRange>, new: Option<&KindRange>) -> String {
    let r = running.map_or("does not speak them".to_string(), |r| r.text());
    let n = new.map_or("does not speak them".to_string(), |n| n.text());
    let name = kind.name();
    let (rv, nv) = match kind.direction() {
        Direction::RunningToNew => ("writes", "reads"),
        Direction::NewToRunning => ("reads", "writes"),
        Direction::Both => ("speaks", "speaks"),
    };
    let r = if running.is_some() {
        format!("{rv} {r}")
    } else {
        r
    };
    let n = if new.is_some() {
        format!("{nv} {n}")
    } else {
        n
    };
    match kind.direction() {
        Direction::NewToRunning => format!("{name}: this binary {n}, the running rvsd {r}"),
        _ => format!("{name}: the running rvsd {r}, this binary {n}"),
    }
}

/// The highest version of each kind both lists have; a kind one side lists
/// and the other does not, or two ranges without a common version, refuse
/// (every such kind named, in kind order).
pub fn negotiate(running: &[KindRange], new: &[KindRange]) -> Result<Agreed, Refusal> {
    let find = |v: &[KindRange], k: Kind| v.iter().find(|r| r.kind == k).copied();
    let mut kinds: Vec<Kind> = running.iter().chain(new).map(|r| r.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut agreed = Agreed::default();
    let mut reasons = Vec::new();
    let mut first: Option<(Kind, Option<KindRange>, Option<KindRange>)> = None;
    for k in kinds {
        let (r, n) = (find(running, k), find(new, k));
        let common = match (r, n) {
            (Some(r), Some(n)) => {
                let hi = r.max.min(n.max);
                (hi >= r.min.max(n.min) && r.min <= r.max && n.min <= n.max).then_some(hi)
            }
            _ => None,
        };
        match common {
            Some(v) => {
                agreed.0.insert(k, v);
            }
            None => {
                reasons.push(version_reason(k, r.as_ref(), n.as_ref()));
                first.get_or_insert((k, r, n));
            }
        }
    }
    match first {
        None => Ok(agreed),
        Some((k, r, n)) => Err(Refusal {
            kind: Some(k),
            running: r.map(|r| (r.min, r.max)),
            new: n.map(|n| (n.min, n.max)),
            text: reasons.join("; "),
        }),
    }
}

/// The AF_XDP geometry of a port, defaults filled in (`rvs_io::XdpConf`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XdpGeometry {
    /// `xdp_mode`.
    pub mode: String,
    /// `xdp_queues` as configured (`None`: every queue the device has).
    pub queues: Option<u32>,
    /// `xdp_frame_size`.
    pub frame_size: u32,
    /// `xdp_frames`.
    pub frames: u32,
    /// `xdp_fill_size`.
    pub fill_size: u32,
    /// `xdp_comp_size`.
    pub comp_size: u32,
    /// `xdp_ring_size`.
    pub ring_size: u32,
}

/// What may not change of a port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSettings {
    /// `name` (the tools' name and the `<name>.kni` device).
    pub name: String,
    /// `iface`.
    pub iface: String,
    /// `backend`: `af_packet` or `af_xdp`.
    pub backend: String,
    /// `kni`.
    pub kni: bool,
    /// `mtu` as configured (`None`: the interface's).
    pub mtu: Option<u16>,
    /// `rx_ring` of an `af_packet` port.
    pub rx_ring: Option<String>,
    /// The geometry of an `af_xdp` port.
    pub xdp: Option<XdpGeometry>,
}

/// The layout of a map of the XDP program ([`abi::MapLayout`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSettings {
    /// Name.
    pub name: String,
    /// `BPF_MAP_TYPE_*`.
    pub kind: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
}

/// What must be equal in both processes, from the configuration file and
/// the binary; and the new one's connection capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// `workers`.
    pub workers: u16,
    /// `[[netif]]`, in order (the port index is in every connection).
    pub ports: Vec<PortSettings>,
    /// `[pipeline] fast_path = "xdp"`: the XDP program has the fast map.
    pub fast_path: bool,
    /// [`rvs_io::steer::VERSION`].
    pub steer_version: u32,
    /// [`abi::PROG_ABI`].
    pub xdp_abi: u32,
    /// [`abi::MAPS`].
    pub xdp_maps: Vec<MapSettings>,
    /// `conn_capacity` (per worker): checked against the running rvsd's
    /// live connections, not for equality.
    pub conn_capacity: u64,
}

fn backend_name(b: BackendKind) -> &'static str {
    match b {
        BackendKind::AfPacket => "af_packet",
        BackendKind::AfXdp => "af_xdp",
        BackendKind::Dpdk => "dpdk",
    }
}

fn xdp_geometry(n: &crate::config::Netif) -> XdpGeometry {
    let d = rvs_io::XdpConf::default();
    XdpGeometry {
        mode: match n.xdp_mode {
            XdpModeConf::Auto => "auto",
            XdpModeConf::Native => "native",
            XdpModeConf::Generic => "generic",
        }
        .to_string(),
        queues: n.xdp_queues,
        frame_size: n.xdp_frame_size.unwrap_or(d.frame_size),
        frames: n.xdp_frames.unwrap_or(d.frames),
        fill_size: n.xdp_fill_size.unwrap_or(d.fill_size),
        comp_size: n.xdp_comp_size.unwrap_or(d.comp_size),
        ring_size: n.xdp_ring_size.unwrap_or(d.rx_size),
    }
}

impl Settings {
    /// The settings of `conf` run by this binary.
    pub fn from_config(conf: &Config) -> Settings {
        let ports = conf
            .netif
            .iter()
            .map(|n| PortSettings {
                name: n.name.clone(),
                iface: n.iface.clone(),
                backend: backend_name(n.backend).to_string(),
                kni: n.kni,
                mtu: n.mtu,
                rx_ring: (n.backend == BackendKind::AfPacket).then(|| {
                    match n.rx_ring {
                        RxRingConf::V2 => "v2",
                        RxRingConf::V3 => "v3",
                    }
                    .to_string()
                }),
                xdp: (n.backend == BackendKind::AfXdp).then(|| xdp_geometry(n)),
            })
            .collect();
        Settings {
            workers: conf.workers,
            ports,
            fast_path: conf.pipeline.fast_path == FastPathConf::Xdp,
            steer_version: rvs_io::steer::VERSION,
            xdp_abi: abi::PROG_ABI,
            xdp_maps: abi::MAPS
                .iter()
                .map(|m| MapSettings {
                    name: m.name.to_string(),
                    kind: m.kind,
                    key_size: m.key_size,
                    value_size: m.value_size,
                })
                .collect(),
            conn_capacity: conf.conn_capacity as u64,
        }
    }
}

/// Differences found so far, each "WHAT: the running rvsd has X, this
/// config Y: restart to change it".
struct Diff(Vec<String>);

/// `None` as `-`, for optional settings.
fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("none".to_string(), T::to_string)
}

impl Diff {
    fn check<T: PartialEq + fmt::Display>(&mut self, what: &str, whose: &str, old: T, new: T) {
        if old != new {
            self.0.push(format!(
                "{what}: the running rvsd has {old}, {whose} {new}: restart to change it"
            ));
        }
    }
}

fn port_names(p: &[PortSettings]) -> String {
    let v: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
    format!("{} ({})", p.len(), v.join(", "))
}

fn compare_port(d: &mut Diff, i: usize, o: &PortSettings, n: &PortSettings) {
    let at = |k: &str| format!("[[netif]] {i} ({}) {k}", o.name);
    let c = "this config";
    d.check(&at("name"), c, &o.name, &n.name);
    d.check(&at("iface"), c, &o.iface, &n.iface);
    d.check(&at("backend"), c, &o.backend, &n.backend);
    d.check(&at("kni"), c, o.kni, n.kni);
    d.check(&at("mtu"), c, opt(&o.mtu), opt(&n.mtu));
    if o.backend != n.backend {
        return;
    }
    d.check(&at("rx_ring"), c, opt(&o.rx_ring), opt(&n.rx_ring));
    if let (Some(x), Some(y)) = (&o.xdp, &n.xdp) {
        d.check(&at("xdp_mode"), c, &x.mode, &y.mode);
        d.check(&at("xdp_queues"), c, opt(&x.queues), opt(&y.queues));
        d.check(&at("xdp_frame_size"), c, x.frame_size, y.frame_size);
        d.check(&at("xdp_frames"), c, x.frames, y.frames);
        d.check(&at("xdp_fill_size"), c, x.fill_size, y.fill_size);
        d.check(&at("xdp_comp_size"), c, x.comp_size, y.comp_size);
        d.check(&at("xdp_ring_size"), c, x.ring_size, y.ring_size);
    }
}

fn map_text(m: &MapSettings) -> String {
    format!(
        "{} (type {}, key {} B, value {} B)",
        m.name, m.kind, m.key_size, m.value_size
    )
}

/// Every setting of `new` that differs from the running rvsd's `running`,
/// named; the capacity aside ([`check_capacity`]).
pub fn compare(running: &Settings, new: &Settings) -> Result<(), Refusal> {
    let mut d = Diff(Vec::new());
    let (c, b) = ("this config", "this binary");
    d.check("workers", c, running.workers, new.workers);
    if running.ports.len() != new.ports.len() {
        d.check(
            "[[netif]] ports",
            c,
            port_names(&running.ports),
            port_names(&new.ports),
        );
    } else {
        for (i, (o, n)) in running.ports.iter().zip(&new.ports).enumerate() {
            compare_port(&mut d, i, o, n);
        }
    }
    let fp = |on: bool| if on { "xdp" } else { "off" };
    d.check(
        "[pipeline] fast_path",
        c,
        fp(running.fast_path),
        fp(new.fast_path),
    );
    d.check(
        "steering rules version",
        b,
        running.steer_version,
        new.steer_version,
    );
    let xdp = |s: &Settings| s.ports.iter().any(|p| p.xdp.is_some());
    if xdp(running) && xdp(new) {
        d.check("XDP program ABI", b, running.xdp_abi, new.xdp_abi);
        let maps = |s: &Settings| {
            let v: Vec<String> = s.xdp_maps.iter().map(map_text).collect();
            v.join(", ")
        };
        d.check("XDP maps", b, maps(running), maps(new));
    }
    if d.0.is_empty() {
        Ok(())
    } else {
        Err(Refusal::settings(d.0))
    }
}

/// Whether every worker's live connections (`live[w]`, the running rvsd's)
/// fit the new `capacity` per worker.
pub fn check_capacity(live: &[u64], capacity: u64) -> Result<(), Refusal> {
    let over: Vec<String> = live
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > capacity)
        .map(|(w, n)| {
            format!(
                "conn_capacity: worker {w} of the running rvsd holds {n} connections, \
                 more than this config's {capacity} per worker: raise it, or restart to change it"
            )
        })
        .collect();
    if over.is_empty() {
        Ok(())
    } else {
        Err(Refusal::settings(over))
    }
}

/// The build of this binary: its version, `RVS_BUILD_TAG` when it was
/// built with one, and the profile.
pub fn build_id() -> String {
    format!(
        "{}+{}{}",
        env!("CARGO_PKG_VERSION"),
        option_env!("RVS_BUILD_TAG").unwrap_or("untagged"),
        if cfg!(debug_assertions) { ".debug" } else { "" }
    )
}

/// The first frame each side sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The rvsd version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// [`build_id`].
    pub build_id: String,
    /// The sender's process id.
    pub pid: u32,
    /// The versions of each frame kind it speaks.
    pub kinds: Vec<KindRange>,
    /// Its static settings.
    pub settings: Settings,
    /// Live connections per worker (the running rvsd's; empty from the new one).
    #[serde(default)]
    pub live_conns: Vec<u64>,
    /// It takes a death watch as a warm standby ([`Kind::DEATHWATCH`];
    /// absent from an older rvsd's HELLO: then the pidfd alone).
    #[serde(default)]
    pub deathwatch: bool,
    /// It parks or starts one worker at a time on a FREEZE naming it
    /// (`rvsd --takeover --rolling`; absent from an older rvsd's HELLO).
    #[serde(default)]
    pub rolling: bool,
}

impl Hello {
    /// This process's HELLO for `conf`, with `live_conns` per worker (the
    /// running rvsd's; empty for the new one).
    pub fn ours(conf: &Config, live_conns: Vec<u64>) -> Hello {
        Hello {
            version: env!("CARGO_PKG_VERSION").to_string(),
            build_id: build_id(),
            pid: std::process::id(),
            kinds: our_kinds(),
            settings: Settings::from_config(conf),
            live_conns,
            deathwatch: !no_deathwatch(),
            rolling: true,
        }
    }
}

/// Whether the new rvsd (`new`) can take over from the running one
/// (`running`): the versions of every frame kind, then the settings and the
/// capacity; every reason is named in the refusal.
pub fn check(running: &Hello, new: &Hello) -> Result<Agreed, Refusal> {
    let versions = negotiate(&running.kinds, &new.kinds);
    let mut reasons = Vec::new();
    if let Err(r) = compare(&running.settings, &new.settings) {
        reasons.push(r.text);
    }
    if let Err(r) = check_capacity(&running.live_conns, new.settings.conn_capacity) {
        reasons.push(r.text);
    }
    match versions {
        Err(mut r) => {
            reasons.insert(0, r.text);
            r.text = reasons.join("; ");
            Err(r)
        }
        Ok(_) if !reasons.is_empty() => Err(Refusal::settings(reasons)),
        Ok(a) => Ok(a),
    }
}

#[cfg(test)]
#[path = "compat_tests.rs"]
mod tests;

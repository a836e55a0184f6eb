//! `rvs-bench e2e --cases restart`: what clients see of an event on rvsd
//! (issue 14: a hot upgrade, a standby taking over, and the reference, a
//! plain restart), with the connection table filled first.
//!
//! Per load balancer (`rvs-af_packet`, `rvs-af_xdp`) one lab
//! ([`rvs_e2e::topo::TwoArm`], rvsd's worker on CPU 1, RPS as in [`bed`])
//! with the tutorial's TCP FNAT VIP 10.0.0.100:80, a UDP FNAT VIP
//! 10.0.0.100:53 to echo servers, and a UDP DR service 10.0.0.100:9 to rs2
//! (which drops it at ingress) for the fill; UDP timeout 3600 s. Then
//! `--repeat` times, the events interleaved:
//!
//! 1. fill: `rvs-bench e2e-gen --once` sends one 64-byte datagram per flow
//!    to :9 (sources 10.0.128.0/17, ports from 1024), paced at
//!    `--fill-pps`, again (at most [`FILL_ROUNDS`] rounds) until rvsd's
//!    status counts `--fill` connections; its time and rvsd's VmRSS after;
//! 2. the probers of [`rvs_e2e::disrupt`] (1 ms ping, numbered UDP stream,
//!    keep-alive HTTP), the event [`LEAD`] after they started; they run
//!    until the event is over (for a hot upgrade: the old rvsd exited, after
//!    the new one's summary line) plus [`TAIL`], and at least
//!    `--probe-secs`, so that a long pre-copy never outlasts the window;
//! 3. one line per repeat, then one `<event>_summary` line of min/median/max.
//!
//! An event is an [`Event`]: one variant and one function that does it and
//! returns how long it took: `restart`, `upgrade` (`rvsd --takeover`) and
//! `standby` (SIGKILL of the active with `rvsd --standby` beside it, started
//! in [`Event::prepare`]; [`super::standby`]); and `none`, nothing at all:
//! the probers' noise floor (their longest gap on a quiet path).
//!
//! Each line says where the longest gaps fell: `udp_gap_at_ms`,
//! `ping_gap_at_ms` are their starts less the event's start (wall clock);
//! `stop_ms` is the old process's exit on the same scale; for an upgrade,
//! `cutover_at_ms` and `cutover_end_at_ms` are the old worker's last read
//! and the new one's first read, from the new rvsd's `takeover:` line.
//!
//! Every rvsd of the lab (the first, a restarted one, the takeover's, the
//! standby) runs on CPU 1 with all its threads (`taskset`), not only its
//! workers: the load balancer gets one core and the probers the other. Its
//! control and hand-over threads used to inherit CPU 0 from this process
//! and took the probers' CPU during a takeover.

use std::time::{Duration, Instant};

use rvs_e2e::disrupt::{udp_echoes, Disruption, ProbeOpts, Probes};
use rvs_e2e::topo::{RvsdOpts, TwoArm};

use super::bed::{self, Lb, LB_CPU, LOAD_CPU, VIP};
use super::standby::{self, Standby};
use super::sweep_report::mmm;
use super::{check_stop, measure, nap, Args, E2eError, Out, V};

/// The events, by name (`--cases`).
pub const EVENTS: [&str; 5] = ["restart", "upgrade", "standby", "none", "upgrade-rolling"];

/// How long the probers run before the event.
pub const LEAD: Duration = Duration::from_millis(1500);

/// How long after the event a silence that began then is still its own.
pub const WINDOW_TAIL: Duration = Duration::from_millis(20);

/// How long the probers go on after the event is over.
pub const TAIL: Duration = Duration::from_millis(1500);

/// The probers' time limit beyond `--probe-secs`: an event longer than
/// that is cut short of its tail (the window is cut, reported as
/// `tail_ms` < 0).
const PROBE_MAX_EXTRA: f64 = 300.0;

/// Fill rounds at most (each resends every flow: lost frames are made up,
/// existing connections only refreshed).
pub const FILL_ROUNDS: u32 = 5;

/// First source address of the fill (a /17 inside the client's /16, clear
/// of the client's own 10.0.0.48 and the VIP).
const FILL_SRC: &str = "10.0.128.0";
/// Source addresses the fill uses in turn.
const FILL_SRCS: u32 = 32_768;
/// UDP port of the fill's DR service.
const FILL_PORT: u16 = 9;

/// An event on the load balancer whose cost to clients is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGTERM, start again on the same file, configuration applied again:
    /// what an operator does without hot upgrade (issue 14's reference (c)).
    Restart,
    /// `rvsd --takeover` on the same file (issue 14's (a)).
    Upgrade,
    /// SIGKILL of the active with `rvsd --standby` beside it (issue 14's (b)).
    Standby,
    /// Nothing: what the probers see of a quiet path (their noise floor).
    None,
    /// `rvsd --takeover --rolling`: one worker at a time ([`super::rolling`]).
    UpgradeRolling,
}

/// How long an event took.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Took {
    /// From its start until the load balancer is configured again.
    pub total: Duration,
    /// Of which stopping the old process (restart), when there is one.
    pub stop: Option<Duration>,
    /// A hot upgrade's cut-over as the new rvsd logged it: the old
    /// worker's last read and the new one's first (wall clock, s).
    pub cutover: Option<(f64, f64)>,
}

impl Event {
    /// The event named `s` (see [`EVENTS`]).
    pub fn parse(s: &str) -> Option<Event> {
        match s {
            "restart" => Some(Event::Restart),
            "upgrade" => Some(Event::Upgrade),
            "standby" => Some(Event::Standby),
            "none" => Some(Event::None),
            "upgrade-rolling" => Some(Event::UpgradeRolling),
            _ => None,
        }
    }

    /// Its name (the `case` field).
    pub fn name(self) -> &'static str {
        match self {
            Event::Restart => "restart",
            Event::Upgrade => "upgrade",
            Event::Standby => "standby",
            Event::None => "none",
            Event::UpgradeRolling => "upgrade-rolling",
        }
    }

    /// What must run before the fill (a standby that follows the table).
    fn prepare(self, t: &mut TwoArm) -> Result<Option<Standby>, E2eError> {
        match self {
            Event::Restart | Event::Upgrade | Event::UpgradeRolling | Event::None => Ok(None),
            Event::Standby => standby::start(t).map(Some),
        }
    }

    /// Does the event; returns how long it took.
    fn run(self, t: &mut TwoArm, standby: Option<&Standby>) -> Result<Took, E2eError> {
        match (self, standby) {
            (Event::Restart, _) => Ok(restart(t)),
            (Event::Upgrade, _) => upgrade(t, &[]),
            (Event::UpgradeRolling, _) => upgrade(t, &["--rolling"]),
            (Event::Standby, Some(s)) => standby::kill_active(t, s),
            (Event::Standby, None) => Err(E2eError::Failed("no standby was started".into())),
            (Event::None, _) => Ok(Took::default()),
        }
    }
}

/// The plain restart: [`rvs_e2e::rvsd::Rvsd::restart`], then the services
/// again.
fn restart(t: &mut TwoArm) -> Took {
    let t0 = Instant::now();
    let stop = t.rvsd.restart(&mut t.lab);
    configure(t);
    Took {
        total: t0.elapsed(),
        stop: Some(stop),
        cutover: None,
    }
}

/// The hot upgrade: [`rvs_e2e::rvsd::Rvsd::upgrade`] (the configuration
/// carries over); `stop` is how long until the old process exited.
fn upgrade(t: &mut TwoArm, args: &[&str]) -> Result<Took, E2eError> {
    let t0 = Instant::now();
    let old_gone = t
        .rvsd
        .upgrade_args(&mut t.lab, args, &[])
        .map_err(|e| E2eError::Failed(format!("rvsd --takeover: {e}")))?;
    // The new rvsd's own account (moved, pre-copy, gap per worker).
    let log = t.rvsd_log();
    let line = log.lines().find(|l| l.contains("connections moved"));
    if let Some(l) = line {
        eprintln!("{l}");
    }
    Ok(Took {
        total: t0.elapsed(),
        stop: Some(old_gone),
        cutover: line.and_then(cutover),
    })
}

/// The wall-clock times of the old worker's last read and the new one's
/// first read in rvsd's `takeover:` line (`last read there at X s, first
/// read here at Y s (unix)`), if it has both.
fn cutover(line: &str) -> Option<(f64, f64)> {
    let after = |key: &str| -> Option<f64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    Some((after("last read there at ")?, after("first read here at ")?))
}

/// The services: TCP FNAT :80 and UDP FNAT :53 (the probers), UDP DR :9 to
/// rs2 (the fill).
fn configure(t: &TwoArm) {
    t.tutorial_fnat();
    t.udp_fnat_service(&["192.168.100.2:53", "192.168.100.3:53"]);
    let vs = format!("{VIP}:{FILL_PORT}");
    t.ok("rvsadm", &["-A", "-u", &vs, "-s", "rr"]);
    t.ok("rvsadm", &["-a", "-u", &vs, "-r", "192.168.100.3", "-g"]);
}

/// One named figure of a repeat, with the decimals it is printed with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    /// Field name.
    pub name: &'static str,
    /// Value (NaN: none).
    pub value: f64,
    /// Decimals (0: an integer).
    pub dec: usize,
}

fn fig(name: &'static str, value: f64, dec: usize) -> Figure {
    Figure { name, value, dec }
}

/// What the fill did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Fill {
    /// Wall-clock time of all rounds (ms), count checks included.
    pub ms: f64,
    /// Rounds sent.
    pub rounds: u32,
    /// Frames the generator sent in all.
    pub sent: u64,
}

/// Everything one repeat measured.
#[derive(Debug, Clone, Default)]
pub struct Repeat {
    /// The fill before the event.
    pub fill: Fill,
    /// rvsd's connections after the fill, before the probers.
    pub conns_before: u64,
    /// rvsd's VmRSS then (kB).
    pub rss_kb: u64,
    /// The event.
    pub took: Took,
    /// rvsd's connections right after the event.
    pub conns_after: u64,
    /// Probing time after the event (ms): what saw it come back.
    pub tail_ms: f64,
    /// The probers' reports.
    pub seen: Disruption,
    /// When the event started (wall clock, s).
    pub at: f64,
    /// When it acted on the path (wall clock, s): the cut-over of an
    /// upgrade, the kill to the promotion, the restart, plus [`WINDOW_TAIL`].
    pub window: (f64, f64),
    /// The new rvsd's own gap per worker (a hot upgrade).
    pub rvsd_gap: super::rolling::RvsdGap,
}

impl Repeat {
    /// The figures of one output line, in order.
    pub fn figures(&self) -> Vec<Figure> {
        let d = &self.seen;
        let n = |x: u64| x as f64;
        // Milliseconds from the event's start to wall-clock `w`.
        let since = |w: f64| (w - self.at) * 1e3;
        let cut = |i: usize| self.took.cutover.map_or(f64::NAN, |c| since([c.0, c.1][i]));
        let w = self.window;
        vec![
            fig("fill_ms", self.fill.ms, 0),
            fig("fill_rounds", f64::from(self.fill.rounds), 0),
            fig("fill_sent", n(self.fill.sent), 0),
            fig("conns_before", n(self.conns_before), 0),
            fig("vmrss_mib", self.rss_kb as f64 / 1024.0, 1),
            fig("event_ms", self.took.total.as_secs_f64() * 1e3, 1),
            fig(
                "stop_ms",
                self.took.stop.map_or(f64::NAN, |s| s.as_secs_f64() * 1e3),
                1,
            ),
            fig("conns_after", n(self.conns_after), 0),
            fig("tail_ms", self.tail_ms, 0),
            fig("cutover_at_ms", cut(0), 1),
            fig("cutover_end_at_ms", cut(1), 1),
            fig("ping_gap_ms", d.ping.longest_gap_ms, 1),
            fig("ping_gap_at_ms", since(d.ping.gap_start), 1),
            fig("ping_event_gap_ms", d.ping.longest_within(w.0, w.1), 1),
            fig(
                "ping_lost",
                n(d.ping.sent.saturating_sub(d.ping.received)),
                0,
            ),
            fig("ping_sent", n(d.ping.sent), 0),
            fig("udp_gap_ms", d.udp.longest_gap_ms, 1),
            fig("udp_gap_at_ms", since(d.udp.gap_start), 1),
            fig("udp_event_gap_ms", d.udp.longest_within(w.0, w.1), 1),
            fig("udp_lost", n(d.udp.missing), 0),
            fig("udp_dups", n(d.udp.dups), 0),
            fig("udp_sent", n(d.udp.sent), 0),
            fig("http_requests", n(d.http.requests), 0),
            fig("http_failed", n(d.http.failed), 0),
            fig("http_resets", n(d.http.resets), 0),
            fig("http_closed", n(d.http.closed), 0),
            fig("http_timeouts", n(d.http.timeouts), 0),
            fig("http_max_latency_ms", d.http.max_latency_ms, 1),
            fig("rvsd_gap_max_ms", self.rvsd_gap.max_ms, 3),
            fig("rvsd_gap_min_ms", self.rvsd_gap.min_ms, 3),
            fig("rvsd_gap_workers", self.rvsd_gap.workers, 0),
        ]
    }
}

/// Min/median/max of every figure over the repeats, as `<name>_min`,
/// `<name>_median`, `<name>_max` (in the order of the first repeat; NaN
/// values are left out, a figure with none gives NaN).
pub fn summarize(rows: &[Vec<Figure>]) -> Vec<(String, f64, usize)> {
    let Some(first) = rows.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for f in first {
        let vals: Vec<f64> = rows
            .iter()
            .filter_map(|r| r.iter().find(|x| x.name == f.name).map(|x| x.value))
            .collect();
        let m = mmm(&vals);
        let dec = if f.dec == 0 && m.is_some_and(|m| m.med.fract() != 0.0) {
            1
        } else {
            f.dec
        };
        for (suffix, v) in [
            ("min", m.map(|m| m.min)),
            ("median", m.map(|m| m.med)),
            ("max", m.map(|m| m.max)),
        ] {
            out.push((format!("{}_{suffix}", f.name), v.unwrap_or(f64::NAN), dec));
        }
    }
    out
}

fn value(v: f64, dec: usize) -> V {
    if !v.is_finite() {
        V::Null
    } else if dec == 0 {
        V::I(v.max(0.0).round() as u64)
    } else {
        V::N(v, dec)
    }
}

/// rvsd's live connection count (its status: the workers' gauges, O(1)).
pub(super) fn conn_count(t: &TwoArm) -> Result<u64, E2eError> {
    let mut s = std::os::unix::net::UnixStream::connect(&t.socket)
        .map_err(|e| E2eError::Failed(format!("rvsd's socket {}: {e}", t.socket)))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    match rvs_api::call(&mut s, &rvs_api::Request::Status) {
        Ok(rvs_api::Reply::Status(st)) => Ok(st.conns),
        other => Err(E2eError::Failed(format!("rvsd's status: {other:?}"))),
    }
}

/// Waits until the count stops growing (the worker drained its ring).
fn settled_count(t: &TwoArm) -> Result<u64, E2eError> {
    let mut last = conn_count(t)?;
    for _ in 0..40 {
        nap(Duration::from_millis(50))?;
        let n = conn_count(t)?;
        if n == last {
            return Ok(n);
        }
        last = n;
    }
    Ok(last)
}

/// Sends `n` flows (one datagram each) to the DR service, round after
/// round, until rvsd counts `n` connections.
fn fill(t: &mut TwoArm, n: u32, pps: u64) -> Result<(Fill, u64), E2eError> {
    let t0 = Instant::now();
    let mut f = Fill::default();
    let mut count = conn_count(t)?;
    if n == 0 {
        return Ok((f, count));
    }
    let exe = std::env::current_exe()
        .map_err(|e| E2eError::Failed(format!("own executable: {e}")))?
        .to_string_lossy()
        .into_owned();
    let mac = t.lab.must_in("lb", &["cat", "/sys/class/net/wan/address"]);
    let (flows, pps, srcs, port, cpu) = (
        n.to_string(),
        pps.to_string(),
        FILL_SRCS.to_string(),
        FILL_PORT.to_string(),
        LOAD_CPU.to_string(),
    );
    while count < u64::from(n) && f.rounds < FILL_ROUNDS {
        super::check_stop()?;
        let o = t.lab.exec(
            "client",
            &[
                &exe,
                "e2e-gen",
                "--iface",
                "eth0",
                "--dst-mac",
                mac.trim(),
                "--src",
                FILL_SRC,
                "--src-count",
                &srcs,
                "--sport-base",
                "1024",
                "--dst",
                VIP,
                "--port",
                &port,
                "--flows",
                &flows,
                "--once",
                "--secs",
                "3600",
                "--pps",
                &pps,
                "--cpu",
                &cpu,
            ],
        );
        let text = String::from_utf8_lossy(&o.stdout);
        let sent = serde_json::from_str::<serde_json::Value>(text.trim())
            .ok()
            .and_then(|v| v["sent"].as_u64())
            .ok_or_else(|| {
                E2eError::Failed(format!(
                    "fill generator: {}{}",
                    text.trim(),
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            })?;
        f.sent += sent;
        f.rounds += 1;
        count = settled_count(t)?;
    }
    f.ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok((f, count))
}

/// The lab for `backend`, configured, with the echo servers running.
fn lab(backend: &str, a: &Args) -> Result<TwoArm, E2eError> {
    let mut t = TwoArm::new(&RvsdOpts {
        workers: a.workers,
        backend: backend.to_string(),
        conn_capacity: a.conn_capacity,
        cpus: vec![LB_CPU; usize::from(a.workers)],
        extra: "[timeouts]\nudp = 3600\n".into(),
        ..RvsdOpts::default()
    });
    // As the bed: the lb's receive work on CPU 1, the next hops' on CPU 0,
    // the bridge a switch (no netfilter).
    bed::rps(&t.lab, "lb", "wan", "2")?;
    bed::rps(&t.lab, "lb", "lan", "2")?;
    bed::rps(&t.lab, "sw", "p-lb", "1")?;
    bed::rps(&t.lab, "client", "eth0", "1")?;
    t.lab.must_in("sw", &["sh", "-c", bed::BRIDGE_NO_NF]);
    super::rolling::spread(&t, a.workers);
    // All of rvsd on CPU 1: the one started, and those started later.
    let pid = t.rvsd_proc().pid().to_string();
    let cpu = LB_CPU.to_string();
    t.lab
        .must_in("lb", &["taskset", "-a", "-p", "-c", &cpu, &pid]);
    t.rvsd.pin = Some(cpu);
    configure(&t);
    udp_echoes(&mut t.lab, &["rs1", "rs2"]);
    let drop = format!(
        "table netdev rvsbench_fill {{\n  chain rx {{\n    type filter hook ingress device \"eth0\" priority 0; policy accept;\n    udp dport {FILL_PORT} drop\n  }}\n}}\n"
    );
    let f = t.lab.file("fill-drop.nft", &drop);
    t.lab.must_in("rs2", &["nft", "-f", &f.to_string_lossy()]);
    t.lab
        .curl("client", "http://10.0.0.100/")
        .map_err(|e| E2eError::Failed(format!("the VIP does not answer: {e}")))?;
    Ok(t)
}

/// How long a prober may take to end once told to stop.
const PROBE_END_WAIT: Duration = Duration::from_secs(15);

/// When the probers stop (s after they started), the event having ended
/// `ended` s after they started: [`TAIL`] after it, and not before
/// `probe_secs`.
fn window_end(ended: f64, probe_secs: f64) -> f64 {
    (ended + TAIL.as_secs_f64()).max(probe_secs)
}

/// One repeat of `ev` on the lab.
fn once(t: &mut TwoArm, ev: Event, a: &Args) -> Result<Repeat, E2eError> {
    let standby = ev.prepare(t)?;
    let (fill, conns_before) = fill(t, a.fill, a.fill_pps)?;
    let pid = t.rvsd_proc().pid();
    let rss_kb = measure::vm_rss_kb(pid).unwrap_or(0);
    let o = ProbeOpts {
        secs: a.probe_secs + PROBE_MAX_EXTRA,
        udp_pps: a.udp_pps,
        http_conns: a.http_conns,
        ..ProbeOpts::default()
    };
    let probes = Probes::start(&mut t.lab, &o);
    let lead = nap(LEAD);
    let at = rvs_e2e::gap::wall();
    let took = lead.and_then(|()| ev.run(t, standby.as_ref()));
    let ended = probes.elapsed();
    let rvsd_gap = match (ev, &took) {
        (Event::Upgrade | Event::UpgradeRolling, Ok(_)) => {
            super::rolling::RvsdGap::of_log(&t.rvsd_log())
        }
        _ => super::rolling::RvsdGap::default(),
    };
    let counted = took.as_ref().ok().map(|_| conn_count(t));
    let until = window_end(ended, a.probe_secs);
    let _ = nap(Duration::from_secs_f64((until - probes.elapsed()).max(0.0)));
    probes.stop();
    let tail_ms = (probes.elapsed() - ended) * 1e3;
    let seen = probes
        .try_finish(&mut t.lab, PROBE_END_WAIT)
        .map_err(|e| E2eError::Failed(format!("probers: {e}")));
    let took = took?;
    let seen = seen?;
    check_stop()?;
    let conns_after = counted.unwrap_or(Ok(0))?;
    let window = event_window(at, &took);
    Ok(Repeat {
        fill,
        conns_before,
        rss_kb,
        took,
        conns_after,
        tail_ms,
        seen,
        at,
        window,
        rvsd_gap,
    })
}

/// What a silence must overlap to be the event's rather than the
/// machine's (`*_event_gap_ms`): the cut-over of an upgrade (the old
/// worker's last read to the new one's first), else the event from its
/// start at `at` to its end (for `none`, an instant), each followed by
/// [`WINDOW_TAIL`] (the backlog forwarded after it).
fn event_window(at: f64, took: &Took) -> (f64, f64) {
    let tail = WINDOW_TAIL.as_secs_f64();
    match took.cutover {
        Some((last, first)) => (last, first + tail),
        None => (at, at + took.total.as_secs_f64() + tail),
    }
}

/// Runs `events` on every rvs load balancer of `lbs`: one line per repeat,
/// one summary line per event and load balancer.
pub(super) fn run(lbs: &[Lb], events: &[Event], a: &Args, out: &Out) -> Result<(), E2eError> {
    for lb in lbs {
        let Lb::Rvs(backend) = lb else { continue };
        let head = |case: String| vec![("case", V::S(case)), ("lb", V::S(lb.name()))];
        let fail = |e: &E2eError| {
            for ev in events {
                out.emit(&[
                    ("case", V::S(ev.name().into())),
                    ("lb", V::S(lb.name())),
                    ("error", V::S(e.to_string())),
                ]);
            }
        };
        if backend.ends_with(bed::FAST_SUFFIX) {
            fail(&E2eError::Refused(
                "not measured with the XDP fast path".into(),
            ));
            continue;
        }
        let mut t = match lab(backend, a) {
            Ok(t) => t,
            Err(E2eError::Interrupted) => return Err(E2eError::Interrupted),
            Err(e) => {
                fail(&e);
                continue;
            }
        };
        let mut rows: Vec<Vec<Vec<Figure>>> = vec![Vec::new(); events.len()];
        'repeats: for r in 0..a.repeat.max(1) {
            for (k, ev) in events.iter().enumerate() {
                match once(&mut t, *ev, a) {
                    Ok(rep) => {
                        let figs = rep.figures();
                        let mut f = head(ev.name().into());
                        f.push(("repeat", V::I(r as u64)));
                        f.push(("fill", V::I(u64::from(a.fill))));
                        f.push(("conn_capacity", V::I(a.conn_capacity as u64)));
                        f.extend(figs.iter().map(|x| (x.name, value(x.value, x.dec))));
                        out.emit(&f);
                        rows[k].push(figs);
                    }
                    Err(E2eError::Interrupted) => return Err(E2eError::Interrupted),
                    Err(e) => {
                        out.emit(&[
                            ("case", V::S(ev.name().into())),
                            ("lb", V::S(lb.name())),
                            ("repeat", V::I(r as u64)),
                            ("error", V::S(e.to_string())),
                        ]);
                        // The lab may have no rvsd left (a standby that
                        // did not take over): the next events get a new one.
                        drop(t);
                        t = match lab(backend, a) {
                            Ok(t) => t,
                            Err(E2eError::Interrupted) => return Err(E2eError::Interrupted),
                            Err(e) => {
                                fail(&e);
                                break 'repeats;
                            }
                        };
                    }
                }
            }
        }
        for (k, ev) in events.iter().enumerate() {
            let s = summarize(&rows[k]);
            let names: Vec<&str> = s.iter().map(|x| x.0.as_str()).collect();
            let mut f: Vec<(&str, V)> = head(format!("{}_summary", ev.name()));
            f.push(("repeats", V::I(rows[k].len() as u64)));
            f.push(("fill", V::I(u64::from(a.fill))));
            f.extend(names.iter().zip(&s).map(|(n, x)| (*n, value(x.1, x.2))));
            out.emit(&f);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_by_name() {
        for n in EVENTS {
            assert_eq!(Event::parse(n).map(Event::name), Some(n));
        }
        assert_eq!(Event::parse("standby-kill"), None);
        assert_eq!(Event::parse("none"), Some(Event::None));
    }

    #[test]
    fn the_probe_window_covers_a_long_event_and_its_tail() {
        // The 5M-connection upgrade: 9.7 s from its start, 1.5 s in; the
        // fixed 6 s window ended before its freeze.
        assert_eq!(window_end(1.5 + 9.7, 6.0), 1.5 + 9.7 + 1.5);
        // A short event keeps the minimum window.
        assert_eq!(window_end(1.5 + 0.5, 6.0), 6.0);
    }

    #[test]
    fn the_event_s_gap_is_the_silence_over_its_cut_over_not_the_longest() {
        let took = Took {
            total: Duration::from_millis(900),
            stop: None,
            cutover: Some((1000.600, 1000.601)),
        };
        let mut r = Repeat {
            at: 1000.0,
            window: event_window(1000.0, &took),
            took,
            ..Repeat::default()
        };
        // The machine's 12 ms at 122 ms in; the cut-over's 2.5 ms.
        r.seen.ping.gaps = vec![[1000.122, 12.0], [1000.5995, 2.5], [1001.9, 1.2]];
        r.seen.ping.longest_gap_ms = 12.0;
        let f = r.figures();
        let get = |n: &str| f.iter().find(|x| x.name == n).map(|x| x.value);
        assert_eq!(get("ping_gap_ms"), Some(12.0));
        assert_eq!(get("ping_event_gap_ms"), Some(2.5));
        // No silence of 1 ms over it: 0.
        assert_eq!(get("udp_event_gap_ms"), Some(0.0));
        // Without a cut-over (a standby, a restart): the event's span.
        let t = Took {
            total: Duration::from_millis(100),
            ..Took::default()
        };
        assert_eq!(event_window(50.0, &t), (50.0, 50.0 + 0.1 + 0.02));
    }

    #[test]
    fn a_repeat_reports_what_the_probers_saw() {
        let mut r = Repeat {
            conns_before: 100_000,
            rss_kb: 2048,
            took: Took {
                total: Duration::from_millis(420),
                stop: Some(Duration::from_millis(20)),
                cutover: Some((1000.0125, 1000.0175)),
            },
            at: 1000.0,
            ..Repeat::default()
        };
        r.seen.udp.gap_start = 1000.012;
        r.seen.ping.gap_start = 999.5;
        r.seen.ping.sent = 6000;
        r.seen.ping.received = 5500;
        r.seen.udp.missing = 21_000;
        r.seen.http.failed = 4;
        let f = r.figures();
        let get = |n: &str| f.iter().find(|x| x.name == n).map(|x| x.value);
        assert_eq!(get("ping_lost"), Some(500.0));
        assert_eq!(get("udp_lost"), Some(21_000.0));
        assert_eq!(get("http_failed"), Some(4.0));
        assert_eq!(get("vmrss_mib"), Some(2.0));
        assert_eq!(get("event_ms"), Some(420.0));
        assert_eq!(get("stop_ms"), Some(20.0));
        assert_eq!(get("conns_before"), Some(100_000.0));
        // Where the gaps fell, from the event's start.
        let near = |n: &str, v: f64| {
            let x = get(n).unwrap_or(f64::NAN);
            assert!((x - v).abs() < 1e-3, "{n}: {x} != {v}");
        };
        near("udp_gap_at_ms", 12.0);
        near("ping_gap_at_ms", -500.0);
        near("cutover_at_ms", 12.5);
        near("cutover_end_at_ms", 17.5);
        r.took.cutover = None;
        let f = r.figures();
        let cut = f
            .iter()
            .find(|x| x.name == "cutover_at_ms")
            .map(|x| x.value);
        assert!(cut.is_some_and(f64::is_nan), "{cut:?}");
    }

    #[test]
    fn the_cutover_is_read_from_the_takeover_line() {
        let line = "2026-12-01T03:00:00Z INFO rvsd: takeover: 100000 connections moved, 4800000 bytes (48 B/conn; 4700000 before the freeze), pre-copy 80.1 ms (daemon built in 12 ms), 0 sweep restart(s), freeze to start 3.200 ms, gap per worker (first read here - last read there): w0 5.100 ms (last read there to FROZEN 2.000 ms, FROZEN to go 1.000 ms, go to first read here 2.100 ms); 0 record(s) refused; last read there at 1764558000.123456 s, first read here at 1764558000.128556 s (unix)";
        assert_eq!(
            cutover(line),
            Some((1_764_558_000.123_456, 1_764_558_000.128_556))
        );
        // A side that read no frame logs `-`.
        let none = line.replace("at 1764558000.123456 s", "at - s");
        assert_eq!(cutover(&none), None);
        assert_eq!(cutover("takeover: 0 connections moved"), None);
    }

    #[test]
    fn the_summary_gives_min_median_max_per_figure_and_skips_missing_values() {
        let row = |gap: f64, lost: f64, stop: f64| {
            vec![
                fig("udp_gap_ms", gap, 1),
                fig("udp_lost", lost, 0),
                fig("stop_ms", stop, 1),
            ]
        };
        let s = summarize(&[
            row(400.0, 20_000.0, f64::NAN),
            row(380.0, 19_000.0, f64::NAN),
            row(500.0, 24_000.0, 15.0),
            row(390.0, 20_001.0, f64::NAN),
        ]);
        let get = |n: &str| s.iter().find(|x| x.0 == n).map(|x| (x.1, x.2));
        assert_eq!(get("udp_gap_ms_min"), Some((380.0, 1)));
        assert_eq!(get("udp_gap_ms_median"), Some((395.0, 1)));
        assert_eq!(get("udp_gap_ms_max"), Some((500.0, 1)));
        // A median between two integers keeps its half.
        assert_eq!(get("udp_lost_median"), Some((20_000.5, 1)));
        assert_eq!(get("stop_ms_median"), Some((15.0, 1)));
        assert_eq!(s.len(), 9);
        assert!(summarize(&[]).is_empty());
        let none = summarize(&[vec![fig("stop_ms", f64::NAN, 1)]]);
        assert!(none.iter().all(|x| x.1.is_nan()), "{none:?}");
        assert!(matches!(value(f64::NAN, 1), V::Null));
    }
}

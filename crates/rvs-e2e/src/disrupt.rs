//! What a client sees of an event on the load balancer (a hot upgrade, a
//! standby taking over, a plain restart; issue 14), from three probers run
//! side by side in the `client` namespace of a [`crate::topo::TwoArm`]:
//!
//! - a 1 ms ping to the VIP (rvsd answers it; `rvs-udp ping`, ICMP echo
//!   1,000 a second): the longest gap, probes lost;
//! - a numbered UDP stream (`rvs-udp stream`, 50,000 datagrams/s by
//!   default) through the UDP FNAT VIP to echo servers on the real servers:
//!   the longest gap, datagrams lost, echoes seen twice;
//! - `rvs-keepalive`: HTTP keep-alive connections through the TCP FNAT VIP
//!   to nginx, each sending a request every 2 ms: requests answered, and
//!   requests failed by reset, close or a 1 s timeout (each loses its
//!   connection), the longest latency. Not wrk: a keep-alive connection
//!   that stalls for good (the load balancer forgot it) shows in no wrk
//!   figure, as its request is still pending when wrk's run ends.
//!
//! The gaps of ping and stream are the path's
//! ([`crate::stream`]): from the kernel's receive time of an answer, or the
//! send of the next number if that came later, to the next answer. They
//! used to be the time between two answers as the prober's thread saw them
//! (iputils ping's `-D` stamps are its print times, and it holds its next
//! request up to 10 ms while one is unanswered): a prober not scheduled for
//! a few ms on its busy CPU showed as a gap of the load balancer.
//! `rvs-udp` sends and reads by the batch (`sendmmsg`/`recvmmsg`, the
//! kernel's time still per datagram), so that the stream's 50,000/s, its
//! echo servers, ping and HTTP fit on the one CPU the client side has.
//!
//! [`Probes::start`] starts them for at most a given time; the caller does
//! its event meanwhile; [`Probes::stop`] ends them early (a window that
//! covers an event of unknown length: stop once it is over plus a margin);
//! [`Probes::finish`] waits for them and reads their reports.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::stream::StreamReport;
use crate::{bin, Lab};

/// How hard the probers push.
#[derive(Debug, Clone)]
pub struct ProbeOpts {
    /// How long they run at most (s; [`Probes::stop`] ends them earlier).
    pub secs: f64,
    /// UDP datagrams per second.
    pub udp_pps: u64,
    /// Keep-alive connections.
    pub http_conns: u32,
    /// The first seconds, in which ping and stream count no silence (their
    /// own start; [`crate::stream::Tally::warm_until`]): an event comes later.
    pub warmup_secs: f64,
}

impl Default for ProbeOpts {
    fn default() -> Self {
        ProbeOpts {
            secs: 4.0,
            udp_pps: 50_000,
            http_conns: 4,
            warmup_secs: 0.3,
        }
    }
}

/// What the ping saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PingReport {
    /// Probes sent.
    pub sent: u64,
    /// Replies.
    pub received: u64,
    /// The longest gap (ms; see the module's doc).
    pub longest_gap_ms: f64,
    /// When it began (wall clock, s since the epoch).
    pub gap_start: f64,
    /// Every silence of a millisecond or more (as [`StreamReport::gaps`]).
    pub gaps: Vec<[f64; 2]>,
}

impl PingReport {
    /// As [`StreamReport::longest_within`].
    pub fn longest_within(&self, from: f64, to: f64) -> f64 {
        crate::stream::longest_within(&self.gaps, from, to)
    }
}

impl From<&StreamReport> for PingReport {
    fn from(r: &StreamReport) -> PingReport {
        PingReport {
            sent: r.sent,
            received: r.received,
            longest_gap_ms: r.longest_gap_ms,
            gap_start: r.gap_start,
            gaps: r.gaps.clone(),
        }
    }
}

/// What `rvs-keepalive` saw: requests on keep-alive connections, and what
/// failed (each failure loses that connection; it is opened again).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeepaliveReport {
    /// Requests answered (2xx/3xx).
    pub requests: u64,
    /// Requests that failed, by any of the reasons below.
    pub failed: u64,
    /// The connection was reset (RST).
    pub resets: u64,
    /// The server closed the connection.
    pub closed: u64,
    /// No answer within the timeout.
    pub timeouts: u64,
    /// Another error or an answer other than 2xx/3xx.
    pub bad: u64,
    /// Connections opened (the first ones plus one per failure).
    pub connects: u64,
    /// Attempts to open one that failed.
    pub connect_failed: u64,
    /// The longest time a request took (ms).
    pub max_latency_ms: f64,
}

impl KeepaliveReport {
    /// Adds another connection's figures.
    pub fn add(&mut self, o: &KeepaliveReport) {
        self.requests += o.requests;
        self.failed += o.failed;
        self.resets += o.resets;
        self.closed += o.closed;
        self.timeouts += o.timeouts;
        self.bad += o.bad;
        self.connects += o.connects;
        self.connect_failed += o.connect_failed;
        self.max_latency_ms = self.max_latency_ms.max(o.max_latency_ms);
    }
}

/// The three reports of one event.
#[derive(Debug, Clone, Default)]
pub struct Disruption {
    /// ICMP echo to the VIP.
    pub ping: PingReport,
    /// The UDP stream.
    pub udp: StreamReport,
    /// HTTP keep-alive.
    pub http: KeepaliveReport,
}

impl std::fmt::Display for Disruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ping: longest gap {:.1} ms, lost {} of {}; udp: longest gap {:.1} ms, lost {} of {}, dups {}; http: {} requests, {} failed ({} reset, {} closed, {} timed out), max latency {:.1} ms",
            self.ping.longest_gap_ms,
            self.ping.sent.saturating_sub(self.ping.received),
            self.ping.sent,
            self.udp.longest_gap_ms,
            self.udp.missing,
            self.udp.sent,
            self.udp.dups,
            self.http.requests,
            self.http.failed,
            self.http.resets,
            self.http.closed,
            self.http.timeouts,
            self.http.max_latency_ms
        )
    }
}

/// Running probers.
pub struct Probes {
    ping: usize,
    udp: usize,
    http: usize,
    secs: f64,
    started: Instant,
    stop_file: std::path::PathBuf,
}

/// Starts UDP echo servers (port 53, quiet) on the real servers `rss`
/// (namespace names), for [`crate::rvsd::Rvsd::udp_fnat_service`].
pub fn udp_echoes(lab: &mut Lab, rss: &[&str]) {
    let udp = bin("rvs-udp").to_string_lossy().into_owned();
    for rs in rss {
        lab.spawn(
            rs,
            &format!("echo-{rs}"),
            &[&udp, "echo", "0.0.0.0:53", rs, "--quiet"],
            &[],
        );
        lab.wait_udp_port(rs, 53, Duration::from_secs(5));
    }
}

impl Probes {
    /// Starts the probers in `client` against the VIP 10.0.0.100 (ICMP,
    /// UDP port 53, HTTP port 80).
    pub fn start(lab: &mut Lab, o: &ProbeOpts) -> Probes {
        let stop_file = lab.dir.join("probes.stop");
        let _ = std::fs::remove_file(&stop_file);
        let stop = stop_file.to_string_lossy().into_owned();
        let secs = format!("{}", o.secs);
        let warm = format!("{}", (o.warmup_secs * 1e3) as u64);
        let udp = bin("rvs-udp").to_string_lossy().into_owned();
        let ping = lab.spawn(
            "client",
            "probe-ping",
            &[
                &udp,
                "ping",
                "--pps",
                "1000",
                "--secs",
                &secs,
                "--stop-file",
                &stop,
                "--warmup-ms",
                &warm,
                "10.0.0.100:0",
            ],
            &[],
        );
        let pps = o.udp_pps.to_string();
        let udp = lab.spawn(
            "client",
            "probe-udp",
            &[
                &udp,
                "stream",
                "--pps",
                &pps,
                "--secs",
                &secs,
                "--from-port",
                "42000",
                "--stop-file",
                &stop,
                "--warmup-ms",
                &warm,
                "10.0.0.100:53",
            ],
            &[],
        );
        let conns = o.http_conns.to_string();
        let ka = bin("rvs-keepalive").to_string_lossy().into_owned();
        let http = lab.spawn(
            "client",
            "probe-http",
            &[
                &ka,
                "--conns",
                &conns,
                "--secs",
                &secs,
                "--interval-ms",
                "2",
                "--timeout-ms",
                "1000",
                "--stop-file",
                &stop,
                "10.0.0.100:80",
            ],
            &[],
        );
        Probes {
            ping,
            udp,
            http,
            secs: o.secs,
            started: Instant::now(),
            stop_file,
        }
    }

    /// Ends the probers now (before their time is up): they see the stop
    /// file, stop sending and report.
    pub fn stop(&self) {
        std::fs::write(&self.stop_file, "").expect("the probers' stop file");
    }

    /// Seconds since the probers started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Waits for the probers to end and reads their reports.
    pub fn finish(self, lab: &mut Lab) -> Disruption {
        let limit = Duration::from_secs_f64(self.secs + 15.0);
        self.try_finish(lab, limit)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Probes::finish`], waiting at most `limit` for each prober: one
    /// still running then is killed and named in the error.
    pub fn try_finish(self, lab: &mut Lab, limit: Duration) -> Result<Disruption, String> {
        let mut logs = Vec::new();
        for i in [self.ping, self.udp, self.http] {
            let p = lab.proc(i);
            let code = p.wait_exit(limit);
            let log = p.log();
            if code.is_none() {
                p.signal("KILL");
                return Err(format!("{} did not end within {limit:?}: {log}", p.name));
            }
            logs.push(log);
        }
        let ping = last_json::<StreamReport>(&logs[0], "rvs-udp ping")?;
        let udp = last_json::<StreamReport>(&logs[1], "rvs-udp stream")?;
        let http = last_json::<KeepaliveReport>(&logs[2], "rvs-keepalive")?;
        if std::env::var_os("RVS_PROBE_LOGS").is_some() {
            eprintln!("http:\n{}\nudp:\n{}", logs[2], logs[1]);
        }
        Ok(Disruption {
            ping: PingReport::from(&ping),
            udp,
            http,
        })
    }
}

/// The last line of `log` that parses as a `T` (a prober's JSON report).
fn last_json<T: serde::de::DeserializeOwned>(log: &str, what: &str) -> Result<T, String> {
    log.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<T>(l).ok())
        .ok_or_else(|| format!("no report from {what}: {log}"))
}

//! Flow logs (`[flow_log]`): one line per connection made and ended, written
//! by a thread of its own to a file or to syslog.
//!
//! The workers keep their records in the pipeline's bounded buffer and hand
//! them over between bursts with `try_send` on a bounded channel (no syscall
//! and no waiting in a worker; a full channel counts the record as lost).
//! The writer passes at most `max_per_sec` lines a second and counts the
//! rest; every loss is reported in rvsd's log once a second.
//!
//! Line format (key=value, space separated, one line per event):
//!
//! ```text
//! ts=1764500000.123 event=new worker=0 proto=tcp client=10.0.0.48:40000 vip=10.0.0.100:80 laddr=192.168.100.200:1024 rs=192.168.100.2:80 packets=0 bytes=0 duration_ms=0
//! ts=1764500007.456 event=end worker=0 proto=tcp client=10.0.0.48:40000 vip=10.0.0.100:80 laddr=192.168.100.200:1024 rs=192.168.100.2:80 packets=10 bytes=1234 duration_ms=7333 reason=timeout state=TIME_WAIT
//! ```
//!
//! `ts`: Unix time in seconds with milliseconds; `bytes`: IP bytes both ways
//! (as ipvsadm counts them); `reason`: `timeout` (its timer ran out in
//! `state`) or `removed` (reset, replaced by a new SYN, failed SYN proxy, a
//! sync peer's removal).

use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rvs_core::addr::{proto, Addr};
use rvs_core::pipeline::{FlowEvent, FlowRecord, Worker};
use serde::Deserialize;

/// Records a worker's pipeline keeps between two drains.
pub const WORKER_RECORDS: usize = 4096;
/// Records in flight from all workers to the writer.
pub const CHANNEL_RECORDS: usize = 16384;

/// `[flow_log]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowLogSection {
    /// A file to append to, or `syslog` (the local `/dev/log`, facility daemon).
    pub path: String,
    /// Lines written per second at most; more are counted and dropped.
    #[serde(default = "default_rate")]
    pub max_per_sec: u32,
}

fn default_rate() -> u32 {
    1000
}

/// A worker's side: its records go here.
#[derive(Clone)]
pub struct FlowSink {
    tx: SyncSender<(u16, FlowRecord)>,
    lost: Arc<AtomicU64>,
}

impl FlowSink {
    /// Moves the records `worker` made since the last call to the writer.
    pub fn drain(&self, worker: &mut Worker) {
        let id = worker.id();
        worker.drain_flow_log(|r| {
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                self.tx.try_send((id, *r))
            {
                self.lost.fetch_add(1, Relaxed);
            }
        });
    }
}

/// Where lines go.
enum Out {
    File(std::io::BufWriter<std::fs::File>),
    Syslog(UnixDatagram),
}

impl Out {
    fn open(path: &str) -> std::io::Result<Out> {
        if path == "syslog" {
            let s = UnixDatagram::unbound()?;
            s.connect("/dev/log")?;
            return Ok(Out::Syslog(s));
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Out::File(std::io::BufWriter::new(f)))
    }

    fn line(&mut self, l: &str) -> std::io::Result<()> {
        match self {
            Out::File(f) => writeln!(f, "{l}"),
            // <30>: facility daemon (3), severity info (6).
            Out::Syslog(s) => s.send(format!("<30>rvsd-flow: {l}").as_bytes()).map(|_| ()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Out::File(f) => f.flush(),
            Out::Syslog(_) => Ok(()),
        }
    }
}

fn ep(f: &mut String, key: &str, (a, p): (Addr, u16)) {
    let _ = match a.to_ip() {
        std::net::IpAddr::V4(v) => write!(f, " {key}={v}:{p}"),
        std::net::IpAddr::V6(v) => write!(f, " {key}=[{v}]:{p}"),
    };
}

/// One record as a line; `epoch_wall_ms`: the wall clock at the workers' 0.
pub fn format_line(worker: u16, r: &FlowRecord, epoch_wall_ms: u64) -> String {
    let ts = epoch_wall_ms + r.at_ms;
    let mut f = format!("ts={}.{:03}", ts / 1000, ts % 1000);
    let event = match r.event {
        FlowEvent::New => "new",
        FlowEvent::End(_) => "end",
    };
    let p = match r.proto {
        proto::TCP => "tcp".to_string(),
        proto::UDP => "udp".to_string(),
        proto::ICMP | proto::ICMPV6 => "icmp".to_string(),
        n => n.to_string(),
    };
    let _ = write!(f, " event={event} worker={worker} proto={p}");
    ep(&mut f, "client", r.client);
    ep(&mut f, "vip", r.vip);
    ep(&mut f, "laddr", r.laddr);
    ep(&mut f, "rs", r.rs);
    let c = &r.counts;
    let dur = r.at_ms.saturating_sub(c.created_ms);
    let _ = write!(
        f,
        " packets={} bytes={} duration_ms={dur}",
        c.packets, c.bytes
    );
    if let FlowEvent::End(reason) = r.event {
        let _ = write!(f, " reason={} state={}", reason.name(), r.state);
    }
    f
}

/// Lines allowed per second: a token bucket of one second's worth.
#[derive(Debug)]
pub struct RateBound {
    per_sec: u32,
    tokens: f64,
    last: Instant,
}

impl RateBound {
    /// A bound of `per_sec` lines a second, starting full.
    pub fn new(per_sec: u32, now: Instant) -> RateBound {
        RateBound {
            per_sec,
            tokens: per_sec as f64,
            last: now,
        }
    }

    /// Whether a line may be written at `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.per_sec as f64).min(self.per_sec as f64);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Opens the output and starts the writer thread; the workers get the sink.
/// The thread ends when every worker has dropped its sink, after writing
/// what they sent.
pub fn start(
    conf: &FlowLogSection,
    epoch: Instant,
) -> std::io::Result<(FlowSink, std::thread::JoinHandle<()>)> {
    let out = Out::open(&conf.path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("[flow_log] path {}: cannot open: {e}", conf.path),
        )
    })?;
    let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL_RECORDS);
    let lost = Arc::new(AtomicU64::new(0));
    let sink = FlowSink {
        tx,
        lost: lost.clone(),
    };
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let epoch_wall_ms = wall.saturating_sub(epoch.elapsed().as_millis() as u64);
    let rate = conf.max_per_sec;
    let h = std::thread::Builder::new()
        .name("rvs-flowlog".into())
        .spawn(move || write_loop(rx, out, rate, epoch_wall_ms, &lost))?;
    Ok((sink, h))
}

fn write_loop(
    rx: Receiver<(u16, FlowRecord)>,
    mut out: Out,
    rate: u32,
    epoch_wall_ms: u64,
    lost: &AtomicU64,
) {
    let mut bound = RateBound::new(rate, Instant::now());
    let mut over = 0u64;
    let mut reported = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(first) => {
                // This record and every one already waiting, then a flush.
                for (w, r) in std::iter::once(first).chain(rx.try_iter()) {
                    if !bound.take(Instant::now()) {
                        over += 1;
                    } else if let Err(e) = out.line(&format_line(w, &r, epoch_wall_ms)) {
                        tracing::warn!("flow log: cannot write: {e}");
                    }
                }
                let _ = out.flush();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if reported.elapsed() >= Duration::from_secs(1) {
            reported = Instant::now();
            let l = lost.swap(0, Relaxed);
            if over > 0 || l > 0 {
                tracing::warn!(
                    "flow log: {over} records over max_per_sec = {rate}, {l} lost (buffers full) in the last second"
                );
                over = 0;
            }
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::pipeline::{EndReason, FlowCounts};

    #[test]
    fn an_end_record_is_one_key_value_line() {
        let counts = FlowCounts {
            created_ms: 1_000,
            packets: 10,
            bytes: 1234,
            ..FlowCounts::default()
        };
        let r = FlowRecord {
            event: FlowEvent::End(EndReason::Timeout),
            at_ms: 8_333,
            proto: proto::TCP,
            client: (Addr::v4(10, 0, 0, 48), 40000),
            vip: (Addr::v4(10, 0, 0, 100), 80),
            laddr: (Addr::v4(192, 168, 100, 200), 1024),
            rs: (Addr::v4(192, 168, 100, 2), 80),
            state: "TIME_WAIT",
            counts,
        };
        assert_eq!(
            format_line(1, &r, 1_764_500_000_000),
            "ts=1764500008.333 event=end worker=1 proto=tcp client=10.0.0.48:40000 \
             vip=10.0.0.100:80 laddr=192.168.100.200:1024 rs=192.168.100.2:80 \
             packets=10 bytes=1234 duration_ms=7333 reason=timeout state=TIME_WAIT"
        );
    }

    #[test]
    fn the_rate_bound_passes_max_per_sec_then_refills() {
        let t0 = Instant::now();
        let mut b = RateBound::new(3, t0);
        let first: Vec<bool> = (0..5).map(|_| b.take(t0)).collect();
        assert_eq!(first, [true, true, true, false, false]);
        let later = t0 + Duration::from_millis(700);
        assert!(b.take(later), "0.7 s refills two lines");
        assert!(b.take(later));
        assert!(!b.take(later));
    }
}

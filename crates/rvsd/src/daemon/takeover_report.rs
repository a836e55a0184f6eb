//! The one line a hot upgrade's new rvsd logs once its workers run
//! (`docs/design/hot-upgrade.md`, section 5): connections moved, bytes,
//! pre-copy time, sweep restarts, and per worker the gap between the old
//! worker's last frame read and the new one's first, both on
//! CLOCK_MONOTONIC (comparable across the two processes).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::dormant::Gates;
use super::Daemon;

/// What the takeover measured.
pub(super) struct Report {
    /// The running rvsd accepted.
    pub accepted: Option<Instant>,
    /// The pre-copy was installed (FREEZE follows).
    pub prepared: Option<Instant>,
    /// The workers were let go.
    pub started: Option<Instant>,
    /// Bytes of connection records received.
    pub bytes: u64,
    /// Of which before the freeze (the pre-copy).
    pub pre_bytes: u64,
    /// Sweeps the old workers restarted.
    pub restarts: u32,
    /// By worker: the old one's last frame read (CLOCK_MONOTONIC ns; 0: none).
    pub last_rx: Vec<u64>,
    /// How long building the dormant daemon took.
    pub build_ms: u64,
    /// CLOCK_MONOTONIC ns when everything up to FROZEN was in.
    pub frozen_ns: u64,
    /// CLOCK_MONOTONIC ns when the workers were let go (rolling: the last).
    pub go_ns: u64,
    /// One worker at a time (`--rolling`): `frozen_ns` is the first
    /// worker's FROZEN.
    pub rolling: bool,
}

fn ms(a: Option<Instant>, b: Option<Instant>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64() * 1e3,
        _ => 0.0,
    }
}

/// CLOCK_MONOTONIC ns `mono` as wall-clock seconds since the epoch (to
/// line the gap up with a client's capture), `-` for none.
fn wall(mono: u64) -> String {
    if mono == 0 {
        return "-".to_string();
    }
    let now = rvs_io::clock::monotonic_ns();
    let wall_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    format!("{:.6}", wall_now - now.saturating_sub(mono) as f64 / 1e9)
}

impl Report {
    /// An empty report for `workers` workers.
    pub(super) fn new(workers: usize) -> Report {
        Report {
            accepted: None,
            prepared: None,
            started: None,
            bytes: 0,
            pre_bytes: 0,
            restarts: 0,
            last_rx: vec![0; workers],
            build_ms: 0,
            frozen_ns: 0,
            go_ns: 0,
            rolling: false,
        }
    }

    /// Each worker's gap in ms, `None` where a side read no frame.
    pub(super) fn gaps(&self, g: &Gates) -> Vec<Option<f64>> {
        self.last_rx
            .iter()
            .zip(&g.stats)
            .map(|(&last, s)| {
                let first = s.first_rx.load(Relaxed);
                (last > 0 && first > 0).then(|| first.saturating_sub(last) as f64 / 1e6)
            })
            .collect()
    }

    /// Logs the summary line.
    pub(super) fn log(&self, d: &Daemon, g: &Gates) {
        let conns: u64 = d.ctl.as_ref().map_or(0, |c| {
            c.workers.iter().map(|w| w.gauges.conns.load(Relaxed)).sum()
        });
        let per = self.bytes.checked_div(conns).unwrap_or(0);
        let gaps: Vec<String> = self
            .gaps(g)
            .iter()
            .enumerate()
            .map(|(w, x)| match x {
                Some(ms) => format!("w{w} {ms:.3} ms"),
                None => format!("w{w} no frame"),
            })
            .collect();
        // The gap's parts: the old worker's last read to FROZEN in here
        // (its park, the log's tail, the frames), FROZEN to the workers let
        // go (ring positions set), then to the first read.
        let last = self
            .last_rx
            .iter()
            .copied()
            .filter(|&l| l > 0)
            .min()
            .unwrap_or(0);
        let first = g
            .stats
            .iter()
            .map(|s| s.first_rx.load(Relaxed))
            .filter(|&f| f > 0)
            .max()
            .unwrap_or(0);
        let part = |a: u64, b: u64| match a > 0 && b >= a {
            true => format!("{:.3}", (b - a) as f64 / 1e6),
            false => "-".to_string(),
        };
        let parts = format!(
            "last read there to FROZEN {} ms, FROZEN to go {} ms, go to first read here {} ms",
            part(last, self.frozen_ns),
            part(self.frozen_ns, self.go_ns),
            part(self.go_ns, first)
        );
        let at = format!(
            "last read there at {} s, first read here at {} s (unix)",
            wall(last),
            wall(first)
        );
        tracing::info!(
            "takeover{}: {conns} connections moved, {} bytes ({per} B/conn; {} before the freeze), pre-copy {:.1} ms (daemon built in {} ms), {} sweep restart(s), freeze to start {:.3} ms, gap per worker (first read here - last read there): {} ({parts}); {} record(s) refused; {at}",
            if self.rolling { " (rolling, one worker at a time)" } else { "" },
            self.bytes,
            self.pre_bytes,
            ms(self.accepted, self.prepared),
            self.build_ms,
            self.restarts,
            ms(self.prepared, self.started),
            gaps.join(", "),
            g.refused()
        );
    }
}

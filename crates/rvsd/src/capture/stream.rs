//! The control thread's side of a capture: starts it on every worker,
//! streams the frames as reply lines, and stops it on the count, the
//! duration, or when the client goes away.

use std::io::{BufWriter, ErrorKind as IoKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rvs_api::{
    ApiError, CaptureEnd, CaptureFrame, CaptureMode, CaptureSpec, ErrorKind, Reply, SNAPLEN_MAX,
};

use super::{ring, DrainSide, Filter, RING_SLOTS};
use crate::control::{Control, Query};

/// Capture state of the control plane: the workers' clock and whether a
/// capture runs (one at a time).
#[derive(Debug)]
pub struct CaptureCtl {
    /// The workers' clock's 0.
    pub epoch: Instant,
    busy: AtomicBool,
}

impl CaptureCtl {
    /// The state for workers whose clock started at `epoch`.
    pub fn new(epoch: Instant) -> CaptureCtl {
        CaptureCtl {
            epoch,
            busy: AtomicBool::new(false),
        }
    }
}

impl Default for CaptureCtl {
    fn default() -> CaptureCtl {
        CaptureCtl::new(Instant::now())
    }
}

/// Clears the busy flag however the capture ends.
struct Busy<'a>(&'a AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Checks the limits of `spec`; an error names the bad value.
pub fn validate(spec: &CaptureSpec) -> Result<Filter, ApiError> {
    let bad = |m: String| Err(ApiError::new(ErrorKind::Invalid, m));
    if spec.snaplen == 0 || spec.snaplen > SNAPLEN_MAX {
        return bad(format!(
            "snaplen {} is out of range: 1 to {SNAPLEN_MAX} bytes",
            spec.snaplen
        ));
    }
    if spec.count == 0 {
        return bad("a capture count must be at least 1".into());
    }
    if let CaptureMode::OneIn(0) | CaptureMode::FirstPerFlow(0) = spec.mode {
        return bad("--sample and --first take a number of at least 1".into());
    }
    Filter::new(spec)
}

fn send(w: &mut impl Write, reply: &Reply) -> bool {
    w.write_all(rvs_api::encode_reply(reply).as_bytes()).is_ok()
}

/// Whether the client closed its end.
fn client_gone(r: &mut UnixStream) -> bool {
    let _ = r.set_nonblocking(true);
    let mut b = [0u8; 64];
    let gone = match r.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), IoKind::WouldBlock | IoKind::Interrupted),
    };
    let _ = r.set_nonblocking(false);
    gone
}

/// Serves one `Capture` request on the client's connection: an error line,
/// or frame lines and a closing [`CaptureEnd`].
pub fn stream(ctl: &Control, spec: &CaptureSpec, w: &mut UnixStream, r: &mut UnixStream) {
    let filter = match validate(spec) {
        Ok(f) => f,
        Err(e) => {
            send(w, &Reply::Error(e));
            return;
        }
    };
    let busy = &ctl.capture.busy;
    if busy.swap(true, Ordering::SeqCst) {
        let m = "a capture is already running (rvsd runs one at a time): try again when it ends";
        send(w, &Reply::Error(ApiError::new(ErrorKind::Full, m)));
        return;
    }
    let _busy = Busy(busy);
    let mut drains = Vec::new();
    for (i, h) in ctl.workers.iter().enumerate() {
        let (wc, d) = ring(filter.clone(), spec, RING_SLOTS);
        if h.queries.send(Query::Capture(Box::new(wc))).is_err() {
            tracing::warn!("capture: worker {i} is not running");
        }
        drains.push(d);
    }
    tracing::info!("capture started: {spec:?}");
    let mut out = BufWriter::new(w);
    let (frames, reason) = drain(ctl, spec, &drains, &mut out, r);
    for h in &ctl.workers {
        let _ = h.queries.send(Query::CaptureStop);
    }
    let lost = drains.iter().map(|d| d.lost.load(Ordering::Relaxed)).sum();
    tracing::info!("capture ended ({reason}): {frames} frames, {lost} lost");
    let end = CaptureEnd {
        frames,
        lost,
        reason: reason.into(),
    };
    send(&mut out, &Reply::CaptureEnd(end));
    let _ = out.flush();
}

/// Streams frames until the count, the duration or the client ends it.
fn drain(
    ctl: &Control,
    spec: &CaptureSpec,
    drains: &[DrainSide],
    out: &mut impl Write,
    r: &mut UnixStream,
) -> (u64, &'static str) {
    let start = Instant::now();
    let deadline = spec.duration_ms.map(|ms| start + Duration::from_millis(ms));
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64;
    let epoch_wall_us = wall.saturating_sub(ctl.capture.epoch.elapsed().as_micros() as u64);
    let mut frames = 0u64;
    let mut checked = Instant::now();
    loop {
        let mut got = 0;
        for (wi, d) in drains.iter().enumerate() {
            while let Ok(mut slot) = d.full.try_recv() {
                got += 1;
                let f = CaptureFrame {
                    ts_us: epoch_wall_us + slot.now_us,
                    worker: wi as u16,
                    dir: slot.dir,
                    orig_len: slot.orig_len,
                    hex: rvs_api::to_hex(&slot.data),
                };
                slot.data.clear();
                let _ = d.free.try_send(slot);
                if !send(out, &Reply::CaptureFrame(f)) {
                    return (frames, "client");
                }
                frames += 1;
                if frames >= spec.count {
                    return (frames, "count");
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return (frames, "duration");
        }
        if got == 0 {
            if out.flush().is_err() {
                return (frames, "client");
            }
            if checked.elapsed() >= Duration::from_millis(50) {
                checked = Instant::now();
                if client_gone(r) {
                    return (frames, "client");
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

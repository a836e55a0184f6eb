//! The log: lines on stderr with the time and a level, as keepalived's
//! console log (`-l`); `-D` adds the detailed lines.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static DETAIL: AtomicBool = AtomicBool::new(false);

/// Turns the detailed log (`-D`) on or off.
pub fn set_detailed(on: bool) {
    DETAIL.store(on, Ordering::Relaxed);
}

fn line(level: &str, msg: &str) {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let s = t.as_secs() % 86400;
    eprintln!(
        "{:02}:{:02}:{:02}.{:03} rvs-keepalived {level}: {msg}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        t.subsec_millis()
    );
}

/// A normal line.
pub fn info(msg: &str) {
    line("info", msg);
}

/// Something went wrong but the daemon goes on.
pub fn warn(msg: &str) {
    line("warning", msg);
}

/// A detailed line (only with `-D`).
pub fn debug(msg: &str) {
    if DETAIL.load(Ordering::Relaxed) {
        line("debug", msg);
    }
}

//! `rvs-bench e2e --cases standby`: issue 14's (b), SIGKILL of the active
//! rvsd with a warm standby beside it.
//!
//! Before the fill, `rvsd --standby -c FILE` starts on the active's file
//! (same control socket and run directory, pinned like the active) and is
//! waited for until it logs [`READY`] (it follows the table from then on).
//! The event: SIGKILL of the active by its pid, then the standby's log is
//! watched until it logs [`PROMOTED`] (it forwards); from then on it is the
//! lab's rvsd. `event_ms` is SIGKILL to [`PROMOTED`] seen (5 ms polls),
//! `stop_ms` SIGKILL to the active reaped.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rvs_e2e::topo::TwoArm;

use super::disruption::Took;
use super::{check_stop, E2eError};

/// What the standby logs once it holds an up-to-date copy of the state.
pub const READY: &str = "standby ready";
/// What it logs once it took over and forwards.
pub const PROMOTED: &str = "standby promoted";

/// How long the standby may take to catch up (a 5M-connection table takes
/// ~10 s to copy).
const READY_WAIT: Duration = Duration::from_secs(120);
/// How long it may take to take over after the active died.
const PROMOTE_WAIT: Duration = Duration::from_secs(10);

/// Standbys started in this process (their names, so their logs, differ).
static SEQ: AtomicU32 = AtomicU32::new(0);

/// A started standby: its lab process and name.
#[derive(Debug, Clone)]
pub struct Standby {
    index: usize,
    name: String,
}

/// The last lines of `log` (a message's context).
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Waits until the standby's log contains `what`; how long that took.
fn wait_line(
    t: &mut TwoArm,
    s: &Standby,
    what: &str,
    limit: Duration,
) -> Result<Duration, E2eError> {
    let t0 = Instant::now();
    loop {
        check_stop()?;
        let p = t.lab.proc(s.index);
        if p.log().contains(what) {
            return Ok(t0.elapsed());
        }
        if !p.alive() {
            return Err(E2eError::Failed(format!(
                "rvsd --standby exited before logging '{what}':\n{}",
                tail(&p.log())
            )));
        }
        if t0.elapsed() > limit {
            return Err(E2eError::Failed(format!(
                "rvsd --standby did not log '{what}' within {limit:?}:\n{}",
                tail(&p.log())
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts `rvsd --standby` beside the lab's rvsd and waits until it is
/// ready.
pub fn start(t: &mut TwoArm) -> Result<Standby, E2eError> {
    let name = format!("rvsd-standby{}", SEQ.fetch_add(1, Ordering::Relaxed));
    let conf = t.rvsd.conf.to_string_lossy().into_owned();
    let bin = rvs_e2e::bin("rvsd").to_string_lossy().into_owned();
    let cmd: Vec<String> = t
        .rvsd
        .pinned(&[&bin, "--standby", "-c", &conf])
        .into_iter()
        .map(str::to_string)
        .collect();
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let env = [
        ("RVS_SOCKET", t.rvsd.socket.clone()),
        ("RVS_RUN_DIR", t.rvsd.run_dir.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let index = t.lab.spawn("lb", &name, &cmd, &env);
    let s = Standby { index, name };
    if let Err(e) = wait_line(t, &s, READY, READY_WAIT) {
        t.lab.proc(s.index).signal("KILL");
        return Err(e);
    }
    Ok(s)
}

/// SIGKILL of the active rvsd; returns once the standby took over (it is
/// then the lab's rvsd).
pub fn kill_active(t: &mut TwoArm, s: &Standby) -> Result<Took, E2eError> {
    let old = t.rvsd.index;
    let t0 = Instant::now();
    t.lab.proc(old).signal("KILL");
    let gone = t
        .lab
        .proc(old)
        .wait_exit(Duration::from_secs(5))
        .map(|_| t0.elapsed());
    let promoted = wait_line(t, s, PROMOTED, PROMOTE_WAIT).map(|_| t0.elapsed());
    // Whatever happened, the killed process is not the lab's rvsd any more.
    t.rvsd.replaced_by(&t.lab, s.index, &s.name);
    if promoted.is_err() && std::env::var_os("RVS_PROBE_LOGS").is_some() {
        eprintln!("killed active:\n{}", t.lab.proc(old).log());
    }
    let total = promoted?;
    // Then it answers on the control socket (bound once it took over).
    let end = Instant::now() + PROMOTE_WAIT;
    while let Err(e) = super::disruption::conn_count(t) {
        check_stop()?;
        if Instant::now() > end {
            return Err(E2eError::Failed(format!(
                "the promoted standby does not answer on {} within {PROMOTE_WAIT:?}: {e}",
                t.rvsd.socket
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some(l) = t
        .lab
        .proc(s.index)
        .log()
        .lines()
        .find(|l| l.contains(PROMOTED))
    {
        eprintln!("{l}");
    }
    // The whole story, for a gap to explain (as the probers' logs).
    if std::env::var_os("RVS_PROBE_LOGS").is_some() {
        eprintln!(
            "killed active:\n{}\nstandby:\n{}",
            t.lab.proc(old).log(),
            t.lab.proc(s.index).log()
        );
    }
    let Some(gone) = gone else {
        return Err(E2eError::Failed(format!(
            "the active rvsd (pid {}) did not die within 5 s of SIGKILL",
            t.lab.proc(old).pid()
        )));
    };
    Ok(Took {
        total,
        stop: Some(gone),
        cutover: None,
    })
}

//! The Environment Abstraction Layer, initialised once per process.

use std::ffi::{CStr, CString};
use std::io;
use std::sync::Mutex;

use rvs_dpdk_sys as sys;

/// EAL options used when the configuration gives none: no hugepages, no
/// PCI scan, no files or IPC shared with other DPDK processes
/// (`--no-shconf`; `--in-memory` would do more, but DPDK 22.11 refuses it
/// with `--no-huge`, which implies `--legacy-mem`), no telemetry socket.
/// [`init`] adds `--file-prefix=rvs<pid>` unless the options name one, so
/// two processes (two rvsd in two namespaces) stay apart.
pub const DEFAULT_EAL: &[&str] = &[
    "--no-huge",
    "-m",
    "512",
    "--no-pci",
    "--no-shconf",
    "--no-telemetry",
    "--log-level",
    "*:notice",
];

/// The outcome of the one `rte_eal_init` of this process (`None`: not yet).
static EAL: Mutex<Option<Result<(), String>>> = Mutex::new(None);

/// The message of DPDK's `rte_errno` for `e` (positive).
pub(crate) fn strerror(e: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or per-lcore
    // NUL-terminated string.
    unsafe { CStr::from_ptr(sys::rte_strerror(e)) }
        .to_string_lossy()
        .into_owned()
}

/// DPDK's `rte_errno` of the calling thread.
pub(crate) fn errno() -> i32 {
    // SAFETY: reads a thread-local integer.
    unsafe { sys::rvs_errno() }
}

/// The CPUs the calling thread may run on.
fn affinity() -> io::Result<libc::cpu_set_t> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    crate::sys::cvt(r).map(|_| set)
}

fn set_affinity(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(set), set) };
    crate::sys::cvt(r).map(drop)
}

/// Initialises the EAL with `args` (argv after the program name) unless
/// it was already; the calling thread's CPU affinity is restored after
/// (EAL pins its main lcore). A second call with other options gets the
/// first call's outcome: EAL can be initialised once per process.
pub fn init(args: &[String]) -> io::Result<()> {
    let mut st = EAL.lock().unwrap_or_else(|e| e.into_inner());
    if st.is_none() {
        *st = Some(init_once(args));
    }
    match st.as_ref() {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(io::Error::other(e.clone())),
        None => unreachable!(),
    }
}

fn init_once(args: &[String]) -> Result<(), String> {
    let saved = affinity().map_err(|e| format!("sched_getaffinity: {e}"))?;
    let mut argv: Vec<String> = vec!["rvsd".into()];
    // The main lcore may run wherever this thread may.
    if !args.iter().any(|a| a == "-l" || a.starts_with("--lcores")) {
        let cpus: Vec<String> = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: CPU_ISSET reads the set within its size.
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &saved) })
            .map(|c| c.to_string())
            .collect();
        argv.push(format!("--lcores=0@({})", cpus.join(",")));
    }
    let prefix = format!("rvs{}", std::process::id());
    if !args.iter().any(|a| a.starts_with("--file-prefix")) {
        argv.push(format!("--file-prefix={prefix}"));
    }
    argv.extend(args.iter().cloned());
    let line = argv.join(" ");
    let cs: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| format!("EAL option with a NUL: {a:?}")))
        .collect::<Result<_, _>>()?;
    // EAL keeps pointers into argv (it permutes it): leak it.
    let mut v: Vec<*mut libc::c_char> = cs.into_iter().map(CString::into_raw).collect();
    let argc = v.len() as libc::c_int;
    v.push(std::ptr::null_mut());
    let ptrs = v.as_mut_ptr();
    std::mem::forget(v);
    // SAFETY: argc/argv are valid NUL-terminated strings, leaked so they
    // outlive EAL; called once per process (under the EAL lock).
    let r = unsafe { sys::rte_eal_init(argc, ptrs) };
    let restored = set_affinity(&saved);
    if r < 0 {
        let e = errno();
        return Err(format!(
            "DPDK EAL init failed: {} (rte_errno {e}); EAL options: {line}",
            strerror(e)
        ));
    }
    restored.map_err(|e| format!("restoring the CPU affinity after EAL init: {e}"))?;
    // With --no-shconf EAL's runtime directory stays empty: leave nothing behind.
    let _ = std::fs::remove_dir(format!("/var/run/dpdk/{prefix}"));
    eprintln!("rvs-io: DPDK EAL initialised: {line}");
    Ok(())
}

thread_local! {
    static REGISTERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Registers the calling thread with EAL (an lcore id, so a mempool
/// cache), once per thread; a thread EAL cannot register still works,
/// without a cache.
pub(crate) fn register_thread() {
    REGISTERED.with(|r| {
        if !r.get() {
            r.set(true);
            // SAFETY: EAL is initialised (a port exists); registering a
            // thread twice is prevented by the flag.
            unsafe { sys::rte_thread_register() };
        }
    });
}

/// Releases what EAL holds (`rte_eal_cleanup`: its memory, its threads,
/// the buses' devices), once every port and queue is gone (rvsd's exit);
/// nothing when EAL was never initialised. EAL cannot be initialised again
/// in this process afterwards ([`init`] then fails, saying so).
pub fn cleanup() {
    let mut st = EAL.lock().unwrap_or_else(|e| e.into_inner());
    if !matches!(*st, Some(Ok(()))) {
        return;
    }
    // SAFETY: EAL was initialised by this process and the caller closed
    // every port (no DPDK object is used after this).
    let r = unsafe { sys::rte_eal_cleanup() };
    *st = Some(Err(
        "DPDK EAL was cleaned up: it cannot start again in this process".into(),
    ));
    if r != 0 {
        eprintln!("rvs-io: DPDK EAL cleanup failed: {}", strerror(-r));
    } else {
        eprintln!("rvs-io: DPDK EAL cleaned up");
    }
}

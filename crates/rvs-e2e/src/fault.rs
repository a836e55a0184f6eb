//! Faults to inject: a thread of a process frozen while the others run (a
//! worker stuck in a loop, as far as anyone outside can tell).

use crate::Lab;

/// Freezes one thread (not its process) with PTRACE_SEIZE +
/// PTRACE_INTERRUPT for argv[2] seconds, then detaches.
const FREEZE: &str = r#"
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid, secs = int(sys.argv[1]), float(sys.argv[2])
for req in (0x4206, 0x4207):  # PTRACE_SEIZE, PTRACE_INTERRUPT
    if libc.ptrace(req, tid, None, None) != 0:
        sys.exit("ptrace %#x on %d: errno %d" % (req, tid, ctypes.get_errno()))
os.waitpid(tid, 0x40000000)  # __WALL
print("frozen", tid, flush=True)
time.sleep(secs)
libc.ptrace(17, tid, None, None)  # PTRACE_DETACH
print("thawed", tid, flush=True)
"#;

/// The thread id of thread `name` (its `comm`) of process `pid`.
pub fn tid_of(pid: u32, name: &str) -> String {
    let dir = format!("/proc/{pid}/task");
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let p = e.expect("task entry").path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            return p.file_name().expect("tid").to_string_lossy().into_owned();
        }
    }
    panic!("process {pid} has no thread {name}");
}

/// Freezes thread `name` of process `pid` for `secs` seconds, from a
/// process of the lab started in namespace `ns` (ptrace needs only the same
/// pid namespace; its log says "frozen" and "thawed"); returns its index in
/// the lab.
pub fn freeze_thread(lab: &mut Lab, ns: &str, pid: u32, name: &str, secs: f64) -> usize {
    crate::require_tools(&["python3"]);
    let tid = tid_of(pid, name);
    let s = secs.to_string();
    lab.spawn(
        ns,
        &format!("freeze-{tid}"),
        &["python3", "-c", FREEZE, &tid, &s],
        &[],
    )
}

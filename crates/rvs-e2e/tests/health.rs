//! The data-plane watchdog: a worker that stops making progress (here
//! frozen by ptrace, as a worker stuck in a loop would be, while the rest
//! of rvsd runs) makes rvsd take its kni devices down, so that the routing
//! daemons on them withdraw the node, and run the `notify` program; when
//! the worker runs again, the devices come back up. rvsd dying needs no
//! watchdog: its kni devices disappear with it (asserted at the end).

use rvs_e2e::topo::{RvsdOpts, TwoArm};
use std::time::{Duration, Instant};

/// Freezes one thread (not its process) with PTRACE_SEIZE + PTRACE_INTERRUPT
/// for argv[2] seconds, then detaches.
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

/// Whether `dev` in the lb namespace is administratively up.
fn is_up(t: &TwoArm, dev: &str) -> bool {
    let s = t
        .lab
        .must_in("lb", &["ip", "-o", "link", "show", "dev", dev]);
    let flags = s.split('<').nth(1).and_then(|r| r.split('>').next());
    flags.is_some_and(|f| f.split(',').any(|x| x == "UP"))
}

fn wait_for(what: &str, t: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < t {
        if f() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not within {t:?}");
}

/// The thread id of rvsd's thread `name`.
fn tid_of(pid: u32, name: &str) -> String {
    let dir = format!("/proc/{pid}/task");
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let p = e.expect("task entry").path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            return p.file_name().expect("tid").to_string_lossy().into_owned();
        }
    }
    panic!("rvsd (pid {pid}) has no thread {name}");
}

#[test]
fn a_stalled_worker_takes_the_kni_devices_down_until_it_runs_again() {
    rvs_e2e::require_tools(&["ip", "nginx", "python3"]);
    // The notify program: appends its arguments to a file next to it.
    let notify = std::env::temp_dir().join(format!("rvs-health-{}.sh", std::process::id()));
    let log = std::path::PathBuf::from(format!("{}.log", notify.display()));
    std::fs::write(&notify, "#!/bin/sh\necho \"$@\" >>\"$0.log\"\n").expect("notify script");
    let _ = std::process::Command::new("chmod")
        .args(["+x", &notify.to_string_lossy()])
        .status();
    struct Rm(Vec<std::path::PathBuf>);
    impl Drop for Rm {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let _rm = Rm(vec![notify.clone(), log.clone()]);

    let mut t = TwoArm::new(&RvsdOpts {
        workers: 2,
        extra: format!(
            "[health]\nstall_ms = 300\nnotify = \"{}\"\n",
            notify.display()
        ),
        ..Default::default()
    });
    t.tutorial_fnat();
    t.lab
        .must_in("lb", &["ip", "link", "set", "dpdk1.kni", "up"]);
    // The operator has no use for the LAN's kni device here.
    t.lab
        .must_in("lb", &["ip", "link", "set", "dpdk0.kni", "down"]);
    assert!(is_up(&t, "dpdk1.kni") && !is_up(&t, "dpdk0.kni"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(is_up(&t, "dpdk1.kni"), "healthy workers: kni stays up");

    let pid = t.rvsd_proc().pid();
    let tid = tid_of(pid, "rvs-worker-1");
    let freezer = t
        .lab
        .spawn("lb", "freeze", &["python3", "-c", FREEZE, &tid, "2"], &[]);
    let down = wait_for(
        "dpdk1.kni down after worker 1 froze",
        Duration::from_secs(2),
        || !is_up(&t, "dpdk1.kni"),
    );
    println!("worker 1 frozen: dpdk1.kni down after {down:?}");
    let up = wait_for(
        "dpdk1.kni back up after worker 1 thawed",
        Duration::from_secs(4),
        || is_up(&t, "dpdk1.kni"),
    );
    println!("dpdk1.kni up again {up:?} later");
    let f = t.lab.proc(freezer).log();
    assert!(f.contains("frozen") && f.contains("thawed"), "freezer: {f}");
    assert!(
        !is_up(&t, "dpdk0.kni"),
        "a kni device the operator left down stays down"
    );
    let rl = t.rvsd_log();
    assert!(
        rl.contains("worker 1 made no progress") && rl.contains("dpdk1.kni"),
        "rvsd log names the worker and the device:\n{rl}"
    );
    // The notify program ran for both changes, in order.
    wait_for("notify ran twice", Duration::from_secs(2), || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.lines().count() >= 2)
    });
    let s = std::fs::read_to_string(&log).expect("notify log");
    assert_eq!(s.lines().collect::<Vec<_>>(), ["stalled 1", "recovered"]);
    // Forwarding goes on.
    t.lab
        .curl("client", "http://10.0.0.100/")
        .unwrap_or_else(|e| panic!("curl after recovery: {e}"));

    // rvsd gone (SIGKILL: no clean-up of its own): the kni devices go with it.
    t.rvsd_proc().signal("KILL");
    wait_for("dpdk1.kni gone with rvsd", Duration::from_secs(3), || {
        !t.lab
            .exec("lb", &["ip", "link", "show", "dev", "dpdk1.kni"])
            .status
            .success()
    });
}

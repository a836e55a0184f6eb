//! `scripts/deps.sh`, the first thing `./demo` and the test suite run on a
//! fresh machine: it installs what is missing and succeeds when the
//! installation did, also on an image that ships its own
//! `/usr/sbin/policy-rc.d` (Docker-built Debian images do). Run against
//! stubs: `apt-get` records its arguments, every tool but `wrk` is "there",
//! and the policy file's path is a temporary one (`RVS_POLICY_RC`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Tools the script looks for by name (all but `wrk`, which is missing).
const PRESENT: &[&str] = &[
    "ip",
    "nginx",
    "curl",
    "tcpdump",
    "tshark",
    "nft",
    "haproxy",
    "taskset",
    "ss",
    "cc",
    "ping",
    "arping",
    "keepalived",
    "python3",
    "bird",
    "hping3",
    "ethtool",
    "ovs-vswitchd",
    "dpdk-testpmd",
];

fn stub(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("stub");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A directory of stubs; `apt-get install` exits with `install_rc`.
fn stubs(install_rc: i32) -> (tempdir::Dir, PathBuf) {
    let d = tempdir::Dir::new();
    let bin = d.0.join("bin");
    std::fs::create_dir(&bin).expect("bin");
    for t in PRESENT {
        stub(&bin, t, "exit 0");
    }
    stub(&bin, "ls", "exit 0");
    stub(&bin, "id", "echo 0");
    for real in ["chmod", "rm"] {
        std::os::unix::fs::symlink(format!("/bin/{real}"), bin.join(real)).expect("symlink");
    }
    let log = d.0.join("apt.log");
    stub(
        &bin,
        "apt-get",
        &format!(
            "if [ -e \"$RVS_POLICY_RC\" ]; then p=policy; else p=no-policy; fi\n\
             echo \"$* $p\" >> {}\n\
             if [ \"$1\" = install ]; then exit {install_rc}; fi\nexit 0",
            log.display()
        ),
    );
    (d, bin)
}

/// Runs the script with the stubs; its exit code and apt-get's log.
fn run(bin: &Path, policy: &Path) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/deps.sh");
    let out = Command::new("/bin/bash")
        .arg(&script)
        .env("PATH", bin)
        .env("RVS_POLICY_RC", policy)
        .output()
        .expect("bash");
    let log =
        std::fs::read_to_string(bin.parent().expect("dir").join("apt.log")).unwrap_or_default();
    (out.status.code().unwrap_or(-1), log)
}

#[test]
fn an_image_s_own_policy_file_is_kept_and_the_install_succeeds() {
    let (d, bin) = stubs(0);
    let policy = d.0.join("policy-rc.d");
    std::fs::write(&policy, "#!/bin/sh\nexit 101\n").expect("policy");
    let (rc, log) = run(&bin, &policy);
    assert_eq!(rc, 0, "deps.sh failed after a good install: {log}");
    assert!(log.contains("install -y -q wrk"), "{log}");
    assert!(policy.exists(), "the image's own policy file was removed");
}

#[test]
fn a_policy_file_made_for_the_install_is_there_during_it_and_gone_after() {
    let (d, bin) = stubs(0);
    let policy = d.0.join("policy-rc.d");
    let (rc, log) = run(&bin, &policy);
    assert_eq!(rc, 0, "{log}");
    assert!(
        log.contains("install -y -q wrk") && log.contains("wrk policy"),
        "{log}"
    );
    assert!(
        !policy.exists(),
        "the script's own policy file was left behind"
    );
}

#[test]
fn a_failed_install_fails_the_script_and_removes_its_policy_file() {
    let (d, bin) = stubs(100);
    let policy = d.0.join("policy-rc.d");
    let (rc, log) = run(&bin, &policy);
    assert_eq!(rc, 100, "{log}");
    assert!(!policy.exists());
}

/// A temporary directory, removed on drop.
mod tempdir {
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "rvs-deps-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

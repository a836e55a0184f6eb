//! Tests of the keepalived.conf parser, on the DPVS tutorial's file and on
//! stock keepalived syntax.

mod errors;
mod stock;
mod syntax;
mod tutorial;

use std::path::{Path, PathBuf};

use super::{parse_str, ConfError, Loaded};

/// The DPVS tutorial's keepalived.conf (master), verbatim from
/// `../shared/seeds/001_*.txt` (its lines 286..348).
pub(super) const TUTORIAL: &str = include_str!("../../../testdata/tutorial-master.conf");

/// The name diagnostics use for the tutorial file.
pub(super) const TUTORIAL_NAME: &str = "testdata/tutorial-master.conf";

/// The tutorial's backup: "the same with Master, except the state should be
/// 'BACKUP', and priority should be lower" (its example: BACKUP, 80).
pub(super) fn tutorial_backup() -> String {
    let master_state = "state MASTER # master\n";
    let master_prio = "priority 100 # master's priority is bigger than worker\n";
    assert!(TUTORIAL.contains(master_state) && TUTORIAL.contains(master_prio));
    TUTORIAL
        .replace(master_state, "state BACKUP\n")
        .replace(master_prio, "priority 80\n")
}

/// Parses `text` named `t.conf`; panics on error.
pub(super) fn ok(text: &str) -> Loaded {
    parse_str(text, "t.conf").unwrap_or_else(|e| panic!("unexpected error: {e}"))
}

/// Parses `text` named `t.conf`; panics if it parses.
pub(super) fn err(text: &str) -> ConfError {
    match parse_str(text, "t.conf") {
        Ok(l) => panic!("parsed, expected an error: {:?}", l.config),
        Err(e) => e,
    }
}

/// A fresh directory under the system temp dir (removed on drop).
pub(super) struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rvs-kaconf-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// Writes `text` to `rel` (creating directories).
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap_or(Path::new("."))).expect("mkdir");
        std::fs::write(&p, text).expect("write");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

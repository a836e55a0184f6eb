//! An Open vSwitch of the lab's own (userspace datapath): ovsdb-server and
//! ovs-vswitchd started in one namespace with their database, sockets,
//! pidfiles and logs under `<lab dir>/ovs`, killed by pid with the lab.
//! Nothing system-wide is touched. Used as the 802.1Q trunk switch
//! (`tests/vlan.rs`) and as the 802.1AX LACP peer (`tests/lacp_ovs.rs`).
//!
//! ```ignore
//! let ovs = Ovs::with_bridge(&mut lab, "sw");
//! ovs.add_lacp_bond(&lab, &["p-lb1", "p-lb2"]);
//! ovs.appctl(&lab, &["bond/show", "bond0"]);
//! ```

use std::time::{Duration, Instant};

use crate::Lab;

/// The tools an [`Ovs`] needs (for [`crate::require_tools`]).
pub const TOOLS: [&str; 5] = [
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-appctl",
];

/// A running lab-local Open vSwitch.
pub struct Ovs {
    /// The namespace it runs in (short name).
    pub ns: String,
    /// `--db=unix:<dir>/db.sock`.
    db: String,
    /// ovs-vswitchd's unixctl socket.
    ctl: String,
}

impl Ovs {
    /// Starts ovsdb-server (waiting for its socket), initialises the
    /// database and starts ovs-vswitchd in namespace `ns`.
    pub fn start(lab: &mut Lab, ns: &str) -> Ovs {
        let dir = lab.dir.join("ovs");
        std::fs::create_dir_all(&dir).expect("ovs dir");
        let d = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let (db, sock) = (d("conf.db"), d("db.sock"));
        lab.must_in(
            ns,
            &[
                "ovsdb-tool",
                "create",
                &db,
                "/usr/share/openvswitch/vswitch.ovsschema",
            ],
        );
        let env = [
            ("OVS_RUNDIR", d("")),
            ("OVS_LOGDIR", d("")),
            ("OVS_DBDIR", d("")),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        lab.spawn(
            ns,
            "ovsdb-server",
            &[
                "ovsdb-server",
                &db,
                &format!("--remote=punix:{sock}"),
                &format!("--pidfile={}", d("ovsdb-server.pid")),
                &format!("--unixctl={}", d("ovsdb-server.ctl")),
            ],
            &env,
        );
        let end = Instant::now() + Duration::from_secs(10);
        while !std::path::Path::new(&sock).exists() {
            assert!(Instant::now() < end, "ovsdb-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let ovs = Ovs {
            ns: ns.to_string(),
            db: format!("--db=unix:{sock}"),
            ctl: d("ovs-vswitchd.ctl"),
        };
        ovs.vsctl(lab, &["--no-wait", "init"]);
        lab.spawn(
            ns,
            "ovs-vswitchd",
            &[
                "ovs-vswitchd",
                &format!("unix:{sock}"),
                &format!("--pidfile={}", d("ovs-vswitchd.pid")),
                &format!("--unixctl={}", ovs.ctl),
            ],
            &env,
        );
        ovs
    }

    /// [`Ovs::start`], then bridge `br0` on the userspace datapath
    /// (`datapath_type=netdev`: it tags, strips and runs LACP in user
    /// space), up, with no port yet.
    pub fn with_bridge(lab: &mut Lab, ns: &str) -> Ovs {
        let ovs = Ovs::start(lab, ns);
        let br = ["add-br", "br0", "--", "set", "bridge", "br0"];
        ovs.vsctl(lab, &[&br[..], &["datapath_type=netdev"]].concat());
        lab.must_in(ns, &["ip", "link", "set", "br0", "up"]);
        ovs
    }

    /// Adds `ports` to `br0` as bond `bond0` with LACP: active, fast rate
    /// (a LACPDU a second, partner timeout 3 s), `balance-tcp`.
    pub fn add_lacp_bond(&self, lab: &Lab, ports: &[&str]) {
        let mut cmd = vec!["add-bond", "br0", "bond0"];
        cmd.extend_from_slice(ports);
        cmd.extend_from_slice(&[
            "lacp=active",
            "bond_mode=balance-tcp",
            "other_config:lacp-time=fast",
        ]);
        self.vsctl(lab, &cmd);
    }

    /// `ovs-vsctl --timeout=10` against this switch's database; must succeed.
    pub fn vsctl(&self, lab: &Lab, args: &[&str]) -> String {
        let mut cmd = vec!["ovs-vsctl", "--timeout=10", &self.db];
        cmd.extend_from_slice(args);
        lab.must_in(&self.ns, &cmd)
    }

    /// `ovs-appctl` against this switch's ovs-vswitchd; must succeed.
    pub fn appctl(&self, lab: &Lab, args: &[&str]) -> String {
        let mut cmd = vec!["ovs-appctl", "-t", &self.ctl];
        cmd.extend_from_slice(args);
        lab.must_in(&self.ns, &cmd)
    }
}

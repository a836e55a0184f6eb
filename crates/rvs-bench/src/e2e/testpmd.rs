//! DPDK `testpmd` in MAC-forwarding mode as a reference row of the packet
//! rate sweep (`--lbs testpmd-af_xdp,testpmd-af_packet`): the two interfaces
//! of the `lb` namespace taken by DPDK's `net_af_xdp` or `net_af_packet`
//! poll-mode driver, every frame received on `wan` sent out of `lan` with the
//! destination MAC of rs1 (and the reverse direction to the client). No
//! lookup, no rewrite beyond the MACs: the I/O floor of any DPDK data plane
//! (DPVS included) over that driver on this path.
//!
//! Command (Debian's dpdk-dev 22.11), in the `lb` namespace:
//!
//! ```text
//! dpdk-testpmd --lcores 0@1,1@1 --no-huge -m 256 --no-pci --no-shconf --file-prefix <lab>
//!   --no-telemetry --vdev net_<pmd>0,iface=wan --vdev net_<pmd>1,iface=lan --
//!   --forward-mode=mac --total-num-mbufs=16384 --eth-peer=0,<client eth0> --eth-peer=1,<rs1 eth0>
//! ```
//!
//! `-l 1` alone is refused ("No cores defined for forwarding": testpmd wants
//! a main lcore besides the forwarding one), so both lcores are mapped to
//! CPU 1; the main lcore only waits on stdin. testpmd exits as soon as stdin
//! reaches end of file, so its stdin is a pipe held open until it is stopped.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use rvs_e2e::Lab;

use super::bed::{last_lines, LB_CPU};
use super::{nap, E2eError};

/// The testpmd binary (Debian package dpdk-dev).
pub const BIN: &str = "dpdk-testpmd";

/// A running testpmd; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Testpmd {
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
    /// EAL's runtime directory (`/var/run/dpdk/<file prefix>`), removed on drop.
    run_dir: PathBuf,
}

fn mac_in(lab: &Lab, ns: &str, iface: &str) -> Result<String, E2eError> {
    let o = lab.exec(ns, &["cat", &format!("/sys/class/net/{iface}/address")]);
    let m = String::from_utf8_lossy(&o.stdout).trim().to_string();
    if o.status.success() && m.len() == 17 {
        Ok(m)
    } else {
        Err(E2eError::Failed(format!(
            "no MAC address for {iface} in {ns}"
        )))
    }
}

/// The `--vdev` argument of `pmd` (`af_xdp`, `af_packet`) for port `n` on `iface`.
fn vdev(pmd: &str, n: usize, iface: &str) -> Result<String, E2eError> {
    match pmd {
        "af_xdp" | "af_packet" => Ok(format!("net_{pmd}{n},iface={iface}")),
        _ => Err(E2eError::Refused(format!(
            "testpmd-{pmd}: unknown poll-mode driver (af_xdp, af_packet)"
        ))),
    }
}

impl Testpmd {
    /// Starts testpmd on `wan` (port 0) and `lan` (port 1) of the lab's `lb`
    /// namespace, forwarding to the client's and rs1's MAC addresses, and
    /// returns once it forwards. rs1's MAC is made a static entry of the
    /// switch's bridge so that no frame is flooded to rs2 (which would count
    /// it a second time).
    pub fn start(lab: &Lab, pmd: &str) -> Result<Testpmd, E2eError> {
        let (v0, v1) = (vdev(pmd, 0, "wan")?, vdev(pmd, 1, "lan")?);
        if !super::have(BIN) {
            return Err(E2eError::Failed(format!(
                "{BIN} is not installed (apt-get install dpdk-dev; scripts/deps.sh)"
            )));
        }
        let client = mac_in(lab, "client", "eth0")?;
        let rs1 = mac_in(lab, "rs1", "eth0")?;
        let o = lab.exec(
            "sw",
            &[
                "bridge", "fdb", "replace", &rs1, "dev", "p-rs1", "master", "static",
            ],
        );
        if !o.status.success() {
            return Err(E2eError::Failed(format!(
                "bridge fdb: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        let log = lab.dir.join(format!("testpmd-{pmd}.log"));
        let f = std::fs::File::create(&log)
            .map_err(|e| E2eError::Failed(format!("{}: {e}", log.display())))?;
        let f2 = f
            .try_clone()
            .map_err(|e| E2eError::Failed(format!("{}: {e}", log.display())))?;
        let lcores = format!("0@{LB_CPU},1@{LB_CPU}");
        let (peer0, peer1) = (
            format!("--eth-peer=0,{client}"),
            format!("--eth-peer=1,{rs1}"),
        );
        let ns = lab.ns("lb");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, "stdbuf", "-oL", "-eL", BIN])
            .args(["--lcores", &lcores, "--no-huge", "-m", "256", "--no-pci"])
            .args(["--no-shconf", "--file-prefix", &lab.id, "--no-telemetry"])
            .args(["--vdev", &v0, "--vdev", &v1, "--"])
            .args([
                "--forward-mode=mac",
                "--total-num-mbufs=16384",
                &peer0,
                &peer1,
            ])
            .stdin(Stdio::piped())
            .stdout(f)
            .stderr(f2)
            .spawn()
            .map_err(|e| E2eError::Failed(format!("cannot start {BIN}: {e}")))?;
        let mut t = Testpmd {
            stdin: None,
            child,
            log,
            run_dir: PathBuf::from("/var/run/dpdk").join(&lab.id),
        };
        t.stdin = t.child.stdin.take();
        t.wait_forwarding()?;
        Ok(t)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_forwarding(&mut self) -> Result<(), E2eError> {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if self.log().contains("Press enter to exit") {
                return Ok(());
            }
            self.alive()?;
            if Instant::now() > end {
                return Err(E2eError::Failed(format!(
                    "testpmd did not start forwarding within 30 s: {}",
                    last_lines(&self.log(), 3)
                )));
            }
            nap(Duration::from_millis(50))?;
        }
    }

    /// Its pid (`ip netns exec` and `stdbuf` exec it, so the child is testpmd).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Err with the end of its log if it exited.
    pub fn alive(&mut self) -> Result<(), E2eError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            _ => Err(E2eError::Failed(format!(
                "testpmd exited: {}",
                last_lines(&self.log(), 4)
            ))),
        }
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

impl Testpmd {
    fn stop(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            // A newline is testpmd's own way out ("Press enter to exit").
            let _ = s.write_all(b"\n");
        }
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Not reaped yet, so the pid is still this child's.
        let _ = rvs_e2e::run(&["kill", "-TERM", &self.child.id().to_string()]);
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vdev_names_the_pmd_and_refuses_others() {
        assert_eq!(
            vdev("af_xdp", 0, "wan").ok().as_deref(),
            Some("net_af_xdp0,iface=wan")
        );
        assert_eq!(
            vdev("af_packet", 1, "lan").ok().as_deref(),
            Some("net_af_packet1,iface=lan")
        );
        assert!(matches!(vdev("ring", 0, "wan"), Err(E2eError::Refused(_))));
    }
}

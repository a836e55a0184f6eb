//! IPv6 on the tutorial's topologies (issue 15 item 3): the same
//! namespaces as [`crate::topo::TwoArm`] and [`crate::one_arm::OneArm`],
//! given IPv6 addresses next to their IPv4 ones.
//!
//! Addresses are added with `nodad`, so they are usable at once (duplicate
//! address detection would keep them tentative for a second or more).

use crate::one_arm::OneArm;
use crate::rvsd::Rvsd;
use crate::topo::TwoArm;
use crate::Lab;

/// The client's address on the two-arm WAN (`2001:db8::/64`, rvs's dpdk1).
pub const CLIENT: &str = "2001:db8::48";
/// The two-arm VIP (on dpdk1, inside the client's prefix).
pub const VIP: &str = "2001:db8::100";
/// The two-arm real servers on the LAN (`fd00:100::/64`, rvs's dpdk0).
pub const RS: [&str; 2] = ["fd00:100::2", "fd00:100::3"];
/// The two-arm FNAT local address (on dpdk0).
pub const LIP: &str = "fd00:100::200";

/// The one-arm LAN's prefix: client, real servers and rvs on one link.
pub const LAN1: &str = "2001:db8:100::/64";
/// The one-arm client.
pub const CLIENT1: &str = "2001:db8:100::146";
/// The one-arm VIP.
pub const VIP1: &str = "2001:db8:100::254";
/// The one-arm real servers.
pub const RS1: [&str; 2] = ["2001:db8:100::2", "2001:db8:100::3"];

impl Lab {
    /// Adds IPv6 address `cidr` (e.g. `2001:db8::48/64`) to `dev` in
    /// namespace `short`, without duplicate address detection.
    pub fn addr6(&self, short: &str, dev: &str, cidr: &str) {
        self.must_in(
            short,
            &["ip", "-6", "addr", "add", cidr, "dev", dev, "nodad"],
        );
    }

    /// `curl -6` from namespace `short` to `url` (IPv6 literals in
    /// brackets, `-g` so curl does not glob them); the body, or curl's error.
    pub fn curl6(&self, short: &str, url: &str) -> Result<String, String> {
        let o = self.exec(short, &["curl", "-g", "-6", "-sS", "--max-time", "5", url]);
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    }

    /// The client's neighbour entry for `addr` on `dev` in namespace
    /// `short` (`ip -6 neigh show`), e.g. `2001:db8::100 lladdr ... REACHABLE`.
    pub fn neigh6(&self, short: &str, dev: &str, addr: &str) -> String {
        let out = self.must_in(short, &["ip", "-6", "neigh", "show", addr, "dev", dev]);
        out.trim().to_string()
    }
}

/// Gives a [`TwoArm`] lab its IPv6 addresses: [`CLIENT`]/64 on the client,
/// [`RS`]/64 on the real servers (their nginx listens on `[::]:80`).
pub fn two_arm(t: &TwoArm) {
    t.lab.addr6("client", "eth0", &format!("{CLIENT}/64"));
    for (ns, a) in ["rs1", "rs2"].iter().zip(RS) {
        t.lab.addr6(ns, "eth0", &format!("{a}/64"));
    }
}

/// The two-arm VIP ([`VIP`]/128 on dpdk1) and the route to the client's
/// prefix through dpdk1, as the tutorial's IPv6 section has them (`dpip
/// route -6 add 2001::/64 dev dpdk1`).
pub fn wan_vip(r: &Rvsd) {
    let vip = format!("{VIP}/128");
    r.ok("rvsip", &["addr", "add", &vip, "dev", "dpdk1"]);
    r.ok(
        "rvsip",
        &["route", "-6", "add", "2001:db8::/64", "dev", "dpdk1"],
    );
}

/// [`wan_vip`] and the route to the real servers' prefix through dpdk0:
/// what the two-arm IPv6 FNAT services need before `rvsadm`.
pub fn fnat_routes(r: &Rvsd) {
    wan_vip(r);
    r.ok(
        "rvsip",
        &["route", "-6", "add", "fd00:100::/64", "dev", "dpdk0"],
    );
}

/// Gives a [`OneArm`] lab its IPv6 addresses: [`CLIENT1`] and [`RS1`] on
/// one /64.
pub fn one_arm(t: &OneArm) {
    t.lab.addr6("client", "eth0", &format!("{CLIENT1}/64"));
    for (ns, a) in ["rs1", "rs2"].iter().zip(RS1) {
        t.lab.addr6(ns, "eth0", &format!("{a}/64"));
    }
}

/// Makes namespace `rs` a DR real server for [`VIP1`]: the VIP on `lo`.
/// IPv6 needs nothing like IPv4's `arp_ignore`: the kernel answers a
/// neighbour solicitation only for addresses of the interface it arrived on.
pub fn dr_real_server(t: &OneArm, rs: &str) {
    t.lab.addr6(rs, "lo", &format!("{VIP1}/128"));
}

/// The interface's MAC address as `ip` prints it (`aa:bb:...`).
pub fn mac_text(lab: &Lab, short: &str, iface: &str) -> String {
    let m = crate::one_arm::mac(lab, short, iface);
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Starts the IPv6 TUNNEL real server in namespace `rs`
/// (`tools/tun_rs.py serve6`): it takes apart the IPv6-in-IPv6 packets rvs
/// sends and answers each inner UDP datagram straight to the client from
/// the VIP. Returns its process index.
pub fn tun_responder(t: &mut OneArm, rs: &str, label: &str) -> usize {
    let script = crate::one_arm::tool_script("tun_rs.py");
    let i = t.lab.spawn(
        rs,
        &format!("tun6-{label}"),
        &["python3", "-u", &script, "serve6", label],
        &[],
    );
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < end {
        if t.lab.proc(i).log().contains("ready") {
            return i;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!(
        "the IPv6 tunnel responder in {rs} did not start: {}",
        t.lab.proc(i).log()
    );
}

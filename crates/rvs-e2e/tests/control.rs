//! The control socket as an operator meets it on a real rvsd: `rvsadm -lnc`
//! over more connections than one page holds (each listed once), and the
//! socket file's mode. (The limits of the socket and the service filter of
//! the paged listing are tested in rvsd's `control::tests`.)

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use rvs_e2e::bin;
use rvs_e2e::topo::{RvsdOpts, TwoArm};

/// More than one page (`rvs_api::CONN_PAGE_MAX` = 4096).
const FLOWS: usize = 5000;

#[test]
fn lnc_lists_more_than_a_page_each_connection_once() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft"]);
    let mut t = TwoArm::new(&RvsdOpts::default());
    t.tutorial_fnat();
    t.udp_fnat_service(&["192.168.100.2:53"]);
    // The socket is root's only.
    let mode = std::fs::metadata(&t.socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let udp = bin("rvs-udp").to_string_lossy().into_owned();
    t.lab
        .spawn("rs1", "echo-rs1", &[&udp, "echo", "0.0.0.0:53", "rs1"], &[]);
    let log = t.lab.dir.join("echo-rs1.log");
    let end = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("listening")
    {
        assert!(Instant::now() < end, "echo server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // In batches of 250 source ports (bursts of 1,000 already lose echoes
    // in the lab); a batch is sent again until every echo came back.
    for batch in 0..FLOWS / 250 {
        let from = (20_000 + batch * 250).to_string();
        let mut tries = 0;
        loop {
            let o = t.lab.exec(
                "client",
                &[
                    &udp,
                    "probe",
                    "--sources",
                    "250",
                    "--from-port",
                    &from,
                    "--timeout-ms",
                    "5000",
                    "10.0.0.100:53",
                ],
            );
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            if out.contains("sent 250 replies 250") {
                break;
            }
            tries += 1;
            assert!(tries < 3, "echoes missing after 3 tries: {out}");
        }
    }
    // A TCP connection too, on the same worker's table.
    t.lab.curl("client", "http://10.0.0.100/").expect("curl");
    let all = t.ok("rvsadm", &["-lnc"]);
    let udp_lines: Vec<&str> = all.lines().filter(|l| l.starts_with("UDP")).collect();
    assert_eq!(udp_lines.len(), FLOWS, "every UDP flow, over two pages");
    let mut clients: Vec<&str> = udp_lines
        .iter()
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    clients.sort_unstable();
    clients.dedup();
    assert_eq!(clients.len(), FLOWS, "each flow exactly once");
    assert!(all.lines().any(|l| l.starts_with("TCP")), "{all}");
    assert!(all.starts_with("IPVS connection entries\npro expire state"));
}

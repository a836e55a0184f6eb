//! UOA for FNAT UDP (`[pipeline] uoa_mode = "opp"`): a client's datagrams
//! from three source ports through the tutorial's UDP FNAT VIP reach the
//! real server carrying UOA, and `rvs-uoa-decode` on the real server
//! reports the client's own address and ports (the datagrams' source there
//! is rvs's local address). Run on the backend RVS_E2E_BACKEND names.

use std::time::{Duration, Instant};

use rvs_e2e::bin;
use rvs_e2e::topo::{RvsdOpts, TwoArm};

#[test]
fn the_real_server_decodes_the_client_address_from_uoa() {
    rvs_e2e::require_tools(&["ip", "nft"]);
    let mut t = TwoArm::new(&RvsdOpts {
        extra: "[pipeline]\nuoa_mode = \"opp\"\nuoa_max_trail = 3\n".into(),
        ..Default::default()
    });
    t.ok("rvsip", &["addr", "add", "10.0.0.100/32", "dev", "dpdk1"]);
    t.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]);
    t.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    t.udp_fnat_service(&["192.168.100.2:53"]);

    let dec = bin("rvs-uoa-decode").to_string_lossy().into_owned();
    let d = t.lab.spawn(
        "rs1",
        "uoa-decode",
        &[&dec, "--count", "3", "--timeout-ms", "10000"],
        &[],
    );
    let end = Instant::now() + Duration::from_secs(5);
    while !t.lab.proc(d).log().contains("listening") {
        assert!(
            Instant::now() < end,
            "rvs-uoa-decode did not start: {}",
            t.lab.proc(d).log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let udp = bin("rvs-udp").to_string_lossy().into_owned();
    let o = t.lab.exec(
        "client",
        &[
            &udp,
            "probe",
            "--sources",
            "3",
            "--from-port",
            "41000",
            "--timeout-ms",
            "300",
            "10.0.0.100:53",
        ],
    );
    assert!(
        o.status.success(),
        "probe: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let code = t.lab.proc(d).wait_exit(Duration::from_secs(10));
    let log = t.lab.proc(d).log();
    println!("rs1$ rvs-uoa-decode --count 3\n{log}");
    assert_eq!(
        code,
        Some(0),
        "rvs-uoa-decode did not see 3 datagrams with UOA:\n{log}\nrvsd log:\n{}",
        t.rvsd_log()
    );
    for port in 41000..41003 {
        let want = format!("client 10.0.0.48:{port} dport 53 opp 11 bytes");
        assert!(log.contains(&want), "no {want:?} in:\n{log}");
    }
}

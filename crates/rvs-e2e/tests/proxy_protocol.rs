//! PROXY protocol (`rvsadm --proxy-protocol v1|v2`): nginx on the real
//! servers listens with `proxy_protocol` and prints
//! `$proxy_protocol_addr:$proxy_protocol_port`, which must be the client's
//! own address and port, while its TCP peer stays rvs's local address. A
//! 200 kB request body checks the shifted sequence numbers beyond the first
//! segment. Run on the backend RVS_E2E_BACKEND names (CI runs both).

use rvs_e2e::topo::{RvsdOpts, TwoArm};

/// curl from the client's `port` to `url`, optionally POSTing `body_file`.
fn curl(t: &TwoArm, port: u16, url: &str, body_file: Option<&str>) -> String {
    let port = port.to_string();
    let mut args = vec!["curl", "-sS", "--max-time", "10", "--local-port", &port];
    let data;
    if let Some(f) = body_file {
        data = format!("@{f}");
        args.extend(["-H", "Expect:", "--data-binary", &data]);
    }
    args.push(url);
    let o = t.lab.exec("client", &args);
    assert!(
        o.status.success(),
        "curl {url} from port {port} failed: {}\nrvsd log:\n{}",
        String::from_utf8_lossy(&o.stderr),
        t.rvsd_log()
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn nginx_sees_the_client_address_through_proxy_protocol_v1_and_v2() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft"]);
    let mut t = TwoArm::new(&RvsdOpts::default());
    t.tutorial_fnat();
    for (port, v) in [(8081u16, "v1"), (8082, "v2")] {
        for rs in ["rs1", "rs2"] {
            t.lab.nginx_proxy_protocol(rs, &format!("{rs}-{v}"), port);
        }
        t.proxy_protocol_service(port, v);
    }
    let listed = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{listed}");
    assert!(
        listed.contains("TCP  10.0.0.100:8081 rr proxy-protocol v1"),
        "{listed}"
    );
    assert!(
        listed.contains("TCP  10.0.0.100:8082 rr proxy-protocol v2"),
        "{listed}"
    );
    let big = t.lab.file("body.bin", &"x".repeat(200_000));
    let big = big.to_string_lossy().into_owned();
    for (port, v) in [(8081u16, "v1"), (8082, "v2")] {
        let url = format!("http://10.0.0.100:{port}/");
        for (k, cport) in [41000u16, 41007, 41014].into_iter().enumerate() {
            let cport = cport + port;
            let body = (k == 2).then_some(big.as_str());
            let got = curl(&t, cport, &url, body);
            println!("client$ curl 10.0.0.100:{port} (from port {cport}) -> {got}");
            let mut w = got.split_whitespace();
            let (label, client, via, peer) = (w.next(), w.next(), w.next(), w.next());
            assert!(label.is_some_and(|l| l.ends_with(v)), "{got}");
            assert_eq!(client, Some(format!("10.0.0.48:{cport}").as_str()), "{got}");
            assert_eq!(via, Some("via"), "{got}");
            assert!(
                peer.is_some_and(|p| p.starts_with("192.168.100.200:")),
                "the TCP peer is the local address: {got}"
            );
        }
    }
}

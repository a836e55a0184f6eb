//! Rate limits, as an operator would check them: the tutorial's FNAT
//! service with a per-source connection-rate limit (`rvsadm -E ...
//! --src-conn-rate 1,10`, two workers), a burst of concurrent curls from one
//! client gets through only partly and every refusal is counted; another
//! source of the same client host is not affected; `rvsadm -ln --rate`
//! shows the limit and what it refused, `-S` saves it.

use std::process::{Command, Stdio};

use rvs_e2e::topo::{RvsdOpts, TwoArm};

/// Concurrent curls from `src` to the VIP, from local ports `ports`; how
/// many got an answer. Each gives up connecting after 0.8 s, before its SYN
/// would be sent again (1 s): one SYN per curl.
fn burst(t: &TwoArm, src: &str, ports: std::ops::Range<u16>) -> usize {
    let ns = t.lab.ns("client");
    let children: Vec<_> = ports
        .map(|p| {
            Command::new("ip")
                .args(["netns", "exec", &ns, "curl", "-s", "-o", "/dev/null"])
                .args(["--connect-timeout", "0.8", "--max-time", "3"])
                .args(["--interface", src, "--local-port", &p.to_string()])
                .arg("http://10.0.0.100/")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn curl")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait for curl"))
        .filter(|o| o.status.success())
        .count()
}

/// The number after `what` in `text` (`refused 17;` → 17).
fn number_after(text: &str, what: &str) -> Option<u64> {
    let rest = &text[text.find(what)? + what.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `rvsadm -E -t 10.0.0.100:80 -s rr --src-conn-rate RATE`.
fn set_src_conn_rate(t: &TwoArm, rate: &str) {
    let args = [
        "-E",
        "-t",
        "10.0.0.100:80",
        "-s",
        "rr",
        "--src-conn-rate",
        rate,
    ];
    t.ok("rvsadm", &args);
}

#[test]
fn per_source_conn_rate_limits_one_client_only() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft"]);
    let t = TwoArm::new(&RvsdOpts {
        workers: 2,
        ..Default::default()
    });
    t.tutorial_fnat();
    t.lab.must_in(
        "client",
        &["ip", "addr", "add", "10.0.0.49/16", "dev", "eth0"],
    );
    // One new connection per second per source, bursts of 10 (5 per worker).
    set_src_conn_rate(&t, "1,10");
    let saved = t.ok("rvsadm", &["-S", "-n"]);
    println!("$ rvsadm -S -n\n{saved}");
    assert!(
        saved.contains("-A -t 10.0.0.100:80 -s rr --src-conn-rate 1,10\n"),
        "{saved}"
    );

    // 30 curls at once from 10.0.0.48; the local ports alternate in
    // parity, so the two workers get 15 SYNs each (steering by source
    // address and port).
    let a = burst(&t, "10.0.0.48", 41000..41030);
    let rate = t.ok("rvsadm", &["-ln", "--rate"]);
    let links = t.ok("rvsip", &["-s", "link", "show"]);
    println!("client 10.0.0.48: {a} of 30 curls answered\n$ rvsadm -ln --rate\n{rate}");
    // 5 per worker from the burst, and at most one more each if spawning
    // the curls took over a second (the rate is 0.5/s per worker).
    assert!(
        (10..=12).contains(&a),
        "a burst of 10 (5 per worker) must pass, the rest not: {a} passed\n{rate}\n{links}\nrvsd log:\n{}",
        t.rvsd_log()
    );
    let refused = number_after(&rate, "conn-rate 1/s burst 10, refused")
        .unwrap_or_else(|| panic!("-ln --rate shows the limit: {rate}"));
    assert_eq!(refused, 30 - a as u64, "every refused curl is counted once");
    assert!(
        rate.contains("  limit per source /32,/128: conn-rate 1/s burst 10, refused"),
        "{rate}"
    );
    assert_eq!(
        number_after(&links, "limit_src_conn_rate:"),
        Some(refused),
        "{links}"
    );

    // Another source is not affected: 8 curls, 4 per worker.
    let b = burst(&t, "10.0.0.49", 42000..42008);
    println!("client 10.0.0.49: {b} of 8 curls answered");
    assert_eq!(b, 8, "{}", t.ok("rvsadm", &["-ln", "--rate"]));
    let rate = t.ok("rvsadm", &["-ln", "--rate"]);
    assert_eq!(
        number_after(&rate, "conn-rate 1/s burst 10, refused"),
        Some(refused),
        "{rate}"
    );

    // Limits removed (-E with a 0 limit): the first source gets through again.
    set_src_conn_rate(&t, "0");
    assert_eq!(burst(&t, "10.0.0.48", 43000..43010), 10);
    let rate = t.ok("rvsadm", &["-ln", "--rate"]);
    assert!(!rate.contains("limit"), "{rate}");
}

//! `rvsadm --capture` piped into tshark while a curl goes through the
//! tutorial's FNAT VIP (runs on the backend `RVS_E2E_BACKEND` names).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rvs_e2e::topo::{RvsdOpts, TwoArm};

/// Waits until rvsd's log holds `what` (at most 10 s).
fn wait_log(t: &TwoArm, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while !t.rvsd_log().contains(what) {
        assert!(
            Instant::now() < until,
            "rvsd never logged {what:?}; its log:\n{}",
            t.rvsd_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn curl(t: &mut TwoArm) {
    let o = t.lab.exec(
        "client",
        &["curl", "-sS", "--max-time", "5", "http://10.0.0.100/"],
    );
    assert!(
        o.status.success(),
        "curl through the VIP failed: {}\nrvsd log:\n{}",
        String::from_utf8_lossy(&o.stderr),
        t.rvsd_log()
    );
}

#[test]
fn capture_of_a_curl_through_fnat_read_back_by_tshark() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "tshark", "sh"]);
    let mut t = TwoArm::new(&RvsdOpts::default());
    t.tutorial_fnat();
    // The handshake alone is 6 frames (3 packets, each received and sent).
    let pipe = format!(
        "{} --capture -t 10.0.0.100:80 -c 6 --duration 20 -w - \
         | tshark -r - -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' \
           -T fields -e ip.src -e ip.dst -e tcp.dstport",
        rvs_e2e::bin("rvsadm").display()
    );
    let reader = Command::new("sh")
        .args(["-c", &pipe])
        .env("RVS_SOCKET", &t.socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run sh");
    wait_log(&t, "capture started");
    curl(&mut t);
    let o = reader.wait_with_output().expect("the capture pipeline");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    println!("$ {pipe}\n{out}{err}");
    assert!(o.status.success(), "the pipeline failed: {err}");
    assert!(
        err.contains("rvsadm: 6 frames captured, 0 lost"),
        "rvsadm's summary: {err}"
    );
    let syns: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert!(
        syns.contains(&vec!["10.0.0.48", "10.0.0.100", "80"]),
        "the client's SYN to the VIP, as received: {syns:?}"
    );
    assert!(
        syns.iter()
            .any(|s| s[0] == "192.168.100.200" && s[1].starts_with("192.168.100.") && s[2] == "80"),
        "the SYN from the local address to a real server, as sent: {syns:?}"
    );
    assert_eq!(syns.len(), 2, "{syns:?}");
    // The capture is over: the workers were told, a new one may start.
    wait_log(&t, "capture ended (count): 6 frames");
}

/// Polls `path` until a line holds every one of `keys` (at most 10 s).
fn wait_line(t: &TwoArm, path: &str, keys: &[&str]) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| keys.iter().all(|k| l.contains(k))) {
            return l.to_string();
        }
        assert!(
            Instant::now() < until,
            "no flow-log line with {keys:?} in {path}:\n{text}\nrvsd log:\n{}",
            t.rvsd_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of `key=` in a flow-log line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[test]
fn flow_log_records_a_completed_connection() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl"]);
    let path = format!("/tmp/rvs-e2e-flows-{}.log", std::process::id());
    let _ = std::fs::remove_file(&path);
    let mut t = TwoArm::new(&RvsdOpts {
        extra: format!(
            "[flow_log]\npath = \"{path}\"\nmax_per_sec = 100\n\n\
             [timeouts]\ntcp_time_wait = 1\ntcp_close = 1\ntcp_fin_wait = 1\ntcp_last_ack = 1\n"
        ),
        ..RvsdOpts::default()
    });
    t.tutorial_fnat();
    curl(&mut t);
    let new = wait_line(&t, &path, &["event=new", "client=10.0.0.48:"]);
    let end = wait_line(&t, &path, &["event=end", "client=10.0.0.48:"]);
    println!("{path}:\n{new}\n{end}");
    let _ = std::fs::remove_file(&path);
    for l in [&new, &end] {
        assert_eq!(field(l, "vip"), "10.0.0.100:80", "{l}");
        assert!(field(l, "laddr").starts_with("192.168.100.200:"), "{l}");
        assert!(field(l, "rs").starts_with("192.168.100."), "{l}");
        assert_eq!(field(l, "proto"), "tcp", "{l}");
    }
    assert_eq!(field(&new, "client"), field(&end, "client"));
    let n = |k: &str| field(&end, k).parse::<u64>().unwrap();
    // SYN, ACK, request, FIN and ACKs one way, SYN-ACK, response, FIN the other.
    assert!(n("packets") >= 8, "{end}");
    assert!(
        n("bytes") > 40 * n("packets"),
        "headers and an HTTP exchange: {end}"
    );
    assert!(
        n("duration_ms") >= 1000,
        "a TIME_WAIT of 1 s at least: {end}"
    );
    assert_eq!(field(&end, "reason"), "timeout", "{end}");
    assert_eq!(field(&end, "state"), "TIME_WAIT", "{end}");
}

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

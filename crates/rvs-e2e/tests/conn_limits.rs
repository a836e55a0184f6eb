//! Connection limits, as an operator would check them (issue 11 item 4): a
//! service limited to N concurrent connections (`rvsadm -E ... --max-conns
//! N`), per source (`--src-max-conns`), and a full connection table. In each
//! case N connections are held open, the next one is refused and counted,
//! and the held ones still get their answers: a limit refuses new flows,
//! never established ones.

use std::time::{Duration, Instant};

use rvs_e2e::topo::{RvsdOpts, TwoArm};

/// Opens `n` connections from `src` to the VIP, prints `held`, waits for
/// the file `go` to exist, then sends a request on each and prints each
/// answer's status line.
const HOLDER: &str = r#"
import os, socket, sys, time
src, n, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = []
for _ in range(n):
    s = socket.create_connection(("10.0.0.100", 80), timeout=3, source_address=(src, 0))
    conns.append(s)
print("held", flush=True)
end = time.time() + 20
while not os.path.exists(go) and time.time() < end:
    time.sleep(0.05)
for s in conns:
    s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
    print(s.recv(4096).split(b"\r\n")[0].decode(), flush=True)
"#;

/// A process in the client namespace holding connections.
struct Holder {
    index: usize,
    go: std::path::PathBuf,
}

impl Holder {
    /// Starts it and waits until its `n` connections are open.
    fn start(t: &mut TwoArm, src: &str, n: usize) -> Holder {
        let script = t.lab.file(&format!("hold-{src}.py"), HOLDER);
        let go = t.lab.file(&format!("go-{src}"), "");
        std::fs::remove_file(&go).expect("go file");
        let (s, count, g) = (
            script.to_string_lossy().into_owned(),
            n.to_string(),
            go.to_string_lossy().into_owned(),
        );
        let index = t.lab.spawn(
            "client",
            &format!("hold-{src}"),
            &["python3", &s, src, &count, &g],
            &[],
        );
        let end = Instant::now() + Duration::from_secs(10);
        while !t.lab.proc(index).log().contains("held") {
            assert!(
                Instant::now() < end && t.lab.proc(index).alive(),
                "the {n} connections from {src} did not open: {}\nrvsd log:\n{}",
                t.lab.proc(index).log(),
                t.rvsd_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Holder { index, go }
    }

    /// Lets it send its requests: the status lines it got.
    fn finish(self, t: &mut TwoArm) -> Vec<String> {
        std::fs::write(&self.go, "").expect("go file");
        let p = t.lab.proc(self.index);
        p.wait_exit(Duration::from_secs(10));
        p.log()
            .lines()
            .filter(|l| l.starts_with("HTTP/"))
            .map(str::to_string)
            .collect()
    }
}

/// Whether one curl from `src` gets an answer (1 s to connect).
fn curl_ok(t: &TwoArm, src: &str) -> bool {
    let o = t.lab.exec(
        "client",
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "--connect-timeout",
            "1",
            "--interface",
            src,
            "http://10.0.0.100/",
        ],
    );
    o.status.success()
}

fn setup(opts: &RvsdOpts) -> TwoArm {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "python3"]);
    let t = TwoArm::new(opts);
    t.tutorial_fnat();
    for a in ["10.0.0.49/16", "10.0.0.50/16"] {
        t.lab
            .must_in("client", &["ip", "addr", "add", a, "dev", "eth0"]);
    }
    t
}

#[test]
fn max_conns_per_service_and_per_source_refuse_new_flows_only() {
    let mut t = setup(&RvsdOpts::default());
    let svc = ["-E", "-t", "10.0.0.100:80", "-s", "rr"];
    t.ok("rvsadm", &[&svc[..], &["--max-conns", "4"]].concat());

    let h = Holder::start(&mut t, "10.0.0.48", 4);
    assert!(
        !curl_ok(&t, "10.0.0.49"),
        "a fifth connection must be refused"
    );
    let rate = t.ok("rvsadm", &["-ln", "--rate"]);
    println!("$ rvsadm -ln --rate\n{rate}");
    assert!(rate.contains("max-conns 4, refused"), "{rate}");
    assert!(t.drops("limit_conns") >= 1, "counted as limit_conns");
    assert_eq!(
        h.finish(&mut t),
        vec!["HTTP/1.1 200 OK"; 4],
        "the held four are served"
    );

    // Per source (the -E replaces the service's limits): two from
    // 10.0.0.49; 10.0.0.50 is not affected. (10.0.0.48's four connections
    // are still closing, and count until they are gone.)
    t.ok("rvsadm", &[&svc[..], &["--src-max-conns", "2"]].concat());
    let h = Holder::start(&mut t, "10.0.0.49", 2);
    assert!(
        !curl_ok(&t, "10.0.0.49"),
        "a third from the same source is refused"
    );
    assert!(
        t.drops("limit_src_conns") >= 1,
        "counted as limit_src_conns"
    );
    assert!(curl_ok(&t, "10.0.0.50"), "another source is not");
    assert_eq!(h.finish(&mut t), vec!["HTTP/1.1 200 OK"; 2]);
}

#[test]
fn a_full_connection_table_refuses_new_flows_and_keeps_the_established() {
    let mut t = setup(&RvsdOpts {
        conn_capacity: 6,
        ..Default::default()
    });
    let h = Holder::start(&mut t, "10.0.0.48", 6);
    assert!(
        !curl_ok(&t, "10.0.0.49"),
        "no room for a seventh connection"
    );
    let full = t.drops("conn_table_full");
    assert!(full >= 1, "counted as conn_table_full");
    assert_eq!(
        h.finish(&mut t),
        vec!["HTTP/1.1 200 OK"; 6],
        "the held six are served"
    );
}

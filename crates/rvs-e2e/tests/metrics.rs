//! Prometheus metrics (`metrics_listen`): a real scrape with curl after known
//! FNAT traffic, checked against what was sent and against `rvsadm --stats`;
//! and a metrics address in use refuses the start with the key named.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Duration;

use rvs_e2e::topo::{RvsdOpts, TwoArm};
use rvs_e2e::{bin, run, Lab};

const LISTEN: &str = "127.0.0.1:9108";
const REQUESTS: u64 = 5;

/// Sample lines of a text exposition: `name{labels}` -> value.
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, v) = l.rsplit_once(' ').expect("sample line: series value");
            (series.to_string(), v.parse().expect("a number"))
        })
        .collect()
}

/// The sum of the samples of `name` whose labels contain every `want`.
fn sum(m: &HashMap<String, f64>, name: &str, want: &[&str]) -> f64 {
    m.iter()
        .filter(|(k, _)| {
            k.split_once('{')
                .is_some_and(|(n, l)| n == name && want.iter().all(|w| l.contains(w)))
        })
        .map(|(_, v)| v)
        .sum()
}

fn scrape(t: &TwoArm, path: &str) -> (String, String) {
    let o = t.lab.exec(
        "lb",
        &[
            "curl",
            "-sS",
            "-i",
            "--max-time",
            "5",
            &format!("http://{LISTEN}{path}"),
        ],
    );
    assert!(
        o.status.success(),
        "curl {path} failed: {}\nrvsd log:\n{}",
        String::from_utf8_lossy(&o.stderr),
        t.rvsd_log()
    );
    let all = String::from_utf8_lossy(&o.stdout).replace("\r\n", "\n");
    let (head, body) = all.split_once("\n\n").expect("an HTTP head and body");
    (head.to_string(), body.to_string())
}

/// `rvsadm -ln --stats --exact`'s service line: Conns InPkts OutPkts InBytes OutBytes.
fn adm_stats(t: &TwoArm) -> Vec<u64> {
    let st = t.ok("rvsadm", &["-ln", "--stats", "--exact"]);
    st.lines()
        .find(|l| l.starts_with("TCP  10.0.0.100:80"))
        .expect("service line")
        .split_whitespace()
        .skip(2)
        .map(|x| x.parse().expect("a number"))
        .collect()
}

#[test]
fn scrape_counts_the_traffic_sent() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft"]);
    let mut t = TwoArm::new(&RvsdOpts {
        workers: 2,
        head: format!("metrics_listen = \"{LISTEN}\"\n"),
        ..Default::default()
    });
    t.lab.must_in("lb", &["ip", "link", "set", "lo", "up"]);
    t.tutorial_fnat();
    for rs in ["rs1", "rs2"] {
        t.lab.wait_port(rs, 80, Duration::from_secs(5));
    }
    for i in 0..REQUESTS {
        let r = t.lab.curl("client", "http://10.0.0.100/");
        assert!(r.is_ok(), "curl {i}: {r:?}\nrvsd log:\n{}", t.rvsd_log());
    }
    // The last ACKs of the closes arrive just after curl returns.
    std::thread::sleep(Duration::from_millis(500));
    let (head, body) = scrape(&t, "/metrics");
    println!("$ curl -i http://{LISTEN}/metrics\n{head}\n\n{body}");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("openmetrics-text"), "{head}");
    let m = parse(&body);
    let svc = ["vip=\"10.0.0.100\"", "port=\"80\"", "proto=\"tcp\""];
    let with = |extra: &'static str| -> Vec<&str> { svc.iter().copied().chain([extra]).collect() };
    let adm = adm_stats(&t);
    println!("rvsadm --stats: {adm:?}");
    let conns = sum(&m, "rvs_service_connections_total", &svc);
    let inpkts = sum(&m, "rvs_service_packets_total", &with("direction=\"in\""));
    let outpkts = sum(&m, "rvs_service_packets_total", &with("direction=\"out\""));
    let inbytes = sum(&m, "rvs_service_bytes_total", &with("direction=\"in\""));
    let outbytes = sum(&m, "rvs_service_bytes_total", &with("direction=\"out\""));
    assert_eq!(conns, REQUESTS as f64, "one connection per request");
    assert!(
        inpkts >= (REQUESTS * 5) as f64 && outpkts >= (REQUESTS * 4) as f64,
        "a handshake, a request, an answer and a close each: in {inpkts}, out {outpkts}"
    );
    assert_eq!(
        [conns, inpkts, outpkts, inbytes, outbytes]
            .map(|v| v as u64)
            .to_vec(),
        adm,
        "the scrape and rvsadm --stats read the same counters"
    );
    // Per dest: the two real servers share the connections (rr).
    let d1 = sum(
        &m,
        "rvs_dest_connections_total",
        &with("dest=\"192.168.100.2\""),
    );
    let d2 = sum(
        &m,
        "rvs_dest_connections_total",
        &with("dest=\"192.168.100.3\""),
    );
    assert_eq!((d1 + d2, d1 > 0.0, d2 > 0.0), (REQUESTS as f64, true, true));
    // The local address's pool, the ports, the table, the control plane.
    let lip = ["addr=\"192.168.100.200\""];
    assert!(sum(&m, "rvs_laddr_ports_free", &lip) > 0.0, "{body}");
    assert_eq!(sum(&m, "rvs_laddr_port_misses_total", &lip), 0.0);
    assert!(
        sum(
            &m,
            "rvs_port_rx_packets_total",
            &["dev=\"dpdk1\"", "worker=\"0\""]
        ) >= inpkts
    );
    assert!(sum(&m, "rvs_port_tx_packets_total", &["dev=\"dpdk0\""]) >= inpkts);
    assert_eq!(
        sum(&m, "rvs_conn_table_capacity", &["worker=\"0\""]),
        65536.0
    );
    assert!(m
        .keys()
        .any(|k| k.starts_with("rvs_worker_drops_total{") && k.contains("reason=\"no_route\"")));
    assert!(
        sum(
            &m,
            "rvs_control_op_duration_seconds_count",
            &["op=\"add_dest\""]
        ) >= 2.0
    );
    // Anything but GET /metrics is refused.
    let (head, _) = scrape(&t, "/nope");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    rates_during_traffic(&mut t);
}

/// `rvsadm -ln --rate` shows the traffic while it flows, and `rvsip -s link
/// show` a row per worker.
fn rates_during_traffic(t: &mut TwoArm) {
    let p = t.lab.spawn(
        "client",
        "curl-loop",
        &[
            "sh",
            "-c",
            "for i in $(seq 30); do curl -s -o /dev/null --max-time 2 http://10.0.0.100/; sleep 0.05; done",
        ],
        &[],
    );
    // Two samples (one per second) inside the traffic.
    std::thread::sleep(Duration::from_millis(2200));
    let r = t.ok("rvsadm", &["-ln", "--rate", "--exact"]);
    println!("$ rvsadm -ln --rate --exact\n{r}");
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        [
            "Prot",
            "LocalAddress:Port",
            "CPS",
            "InPPS",
            "OutPPS",
            "InBPS",
            "OutBPS"
        ]
    );
    let nums = |l: &str| -> Vec<u64> {
        l.split_whitespace()
            .skip_while(|w| !w.contains(':'))
            .skip(1)
            .map(|x| x.parse().expect("a rate"))
            .collect()
    };
    let svc = nums(
        lines
            .iter()
            .find(|l| l.starts_with("TCP  10.0.0.100:80"))
            .expect("service line"),
    );
    assert!(
        svc.iter().all(|&x| x > 0),
        "every rate of the service is nonzero during traffic: {r}"
    );
    let dests: Vec<Vec<u64>> = lines
        .iter()
        .filter(|l| l.starts_with("  -> 192.168.100."))
        .map(|l| nums(l))
        .collect();
    assert_eq!(dests.len(), 2, "{r}");
    assert!(
        dests.iter().all(|d| d[0] > 0 && d[1] > 0),
        "both real servers get connections: {r}"
    );
    let s = t.ok("rvsip", &["-s", "link", "show", "dpdk1"]);
    println!("$ rvsip -s link show dpdk1\n{s}");
    let rows: Vec<Vec<&str>> = s
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .skip_while(|w| w.first() != Some(&"worker"))
        .take(3)
        .collect();
    assert_eq!(
        rows[0],
        ["worker", "ipackets", "opackets", "ibytes", "obytes"],
        "{s}"
    );
    assert_eq!((rows[1][0], rows[2][0]), ("0", "1"), "{s}");
    let rx: u64 = rows[1..]
        .iter()
        .map(|w| w[1].parse::<u64>().expect("ipackets"))
        .sum();
    let total: u64 = s
        .lines()
        .nth(4)
        .and_then(|l| l.split_whitespace().next())
        .and_then(|x| x.parse().ok())
        .expect("total ipackets");
    assert!(
        rx > 0 && rx <= total,
        "the workers' rows add up to at most the port's (read a moment apart): {s}"
    );
    assert_eq!(t.lab.proc(p).wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_metrics_address_in_use_refuses_the_start() {
    let lab = Lab::new();
    let taken = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().expect("its address");
    let f = lab.file(
        "m.toml",
        &format!("metrics_listen = \"{addr}\"\n[[netif]]\nname = \"dpdk0\"\niface = \"rvs-no-such-if\"\n"),
    );
    let o = run(&[
        bin("rvsd").to_str().unwrap_or("rvsd"),
        "-c",
        f.to_str().unwrap_or(""),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    println!(
        "rvsd with {addr} taken -> exit {:?}: {err}",
        o.status.code()
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("metrics_listen") && err.contains(&addr.to_string()),
        "{err}"
    );
    assert!(
        !err.contains("rvs-no-such-if"),
        "refused before any port is looked at: {err}"
    );
}

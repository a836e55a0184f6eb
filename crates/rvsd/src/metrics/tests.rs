//! The exposition: names, labels and values from known counters, and the
//! dashboard's expressions against what rvsd exports.

use std::collections::BTreeSet;

use rvs_api::{
    AddrInfo, DestInfo, DestSpec, Forward, LinkInfo, LinkStats, Proto, Rates, Request, Scope,
    ServiceInfo, ServiceKey, ServiceSpec, Stats,
};

use super::{observe_op, op_name, render, Scrape, EXPORTED};

fn sample() -> Scrape {
    let key = ServiceKey::Vs {
        proto: Proto::Tcp,
        vip: "10.0.0.100".parse().unwrap(),
        port: 80,
    };
    // From JSON, so that settings added later with a default do not break it.
    let mut spec: ServiceSpec =
        serde_json::from_str(r#"{"key":{"match":"x"},"sched":"rr","persistence":null}"#).unwrap();
    spec.key = key;
    let dest = DestInfo {
        spec: DestSpec {
            addr: "192.168.1.2".parse().unwrap(),
            port: 8080,
            weight: 1,
            forward: Forward::Fnat,
            u_threshold: 0,
            l_threshold: 0,
        },
        active: 2,
        inactive: 1,
        stats: Stats {
            conns: 3,
            inpkts: 30,
            outpkts: 20,
            inbytes: 3000,
            outbytes: 9000,
        },
        rates: Rates::default(),
    };
    let svc = ServiceInfo {
        spec,
        dests: vec![dest],
        stats: Stats {
            conns: 3,
            inpkts: 30,
            outpkts: 20,
            inbytes: 3000,
            outbytes: 9000,
        },
        rates: Rates::default(),
    };
    let w0 = LinkStats {
        rx_packets: 7,
        rx_full_bursts: 1,
        ..LinkStats::default()
    };
    Scrape {
        services: vec![svc],
        addrs: vec![AddrInfo {
            addr: "192.168.1.254".parse().unwrap(),
            plen: 24,
            dev: "dpdk1".into(),
            scope: Scope::Global,
            sapool: Some((4, 60000, 2)),
            standby: false,
        }],
        links: vec![
            LinkInfo {
                index: 0,
                name: "dpdk0".into(),
                iface: "eth0".into(),
                backend: "af_packet".into(),
                mac: "02:00:00:00:00:01".into(),
                mtu: 1500,
                up: true,
                kni: None,
                stats: LinkStats {
                    workers: vec![w0, LinkStats::default()],
                    ..LinkStats::default()
                },
                bond: None,
                slave_of: None,
            },
            super::bond::sample_bond(),
        ],
        drops: vec![vec![("no_route", 5), ("bad_checksum", 0)]],
        conns: vec![3],
        capacity: 1024,
        uoa: vec![(4, 1)],
        icmp: vec![(7, 2)],
        mld: vec![("dpdk1".into(), 4)],
    }
}

/// The value of the sample `name{labels}` in the text.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
}

/// The metric names of every sample line.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

#[test]
fn counters_show_with_their_labels_and_values() {
    observe_op(&Request::Status, std::time::Duration::from_micros(50));
    let t = render(&sample());
    let svc = r#"vip="10.0.0.100",port="80",proto="tcp""#;
    assert_eq!(
        value(
            &t,
            &format!("rvs_service_packets_total{{{svc},direction=\"in\"}}")
        ),
        Some(30.0),
        "{t}"
    );
    assert_eq!(
        value(
            &t,
            &format!("rvs_service_bytes_total{{{svc},direction=\"out\"}}")
        ),
        Some(9000.0)
    );
    assert_eq!(
        value(&t, &format!("rvs_service_connections_total{{{svc}}}")),
        Some(3.0)
    );
    let d = format!(r#"{svc},dest="192.168.1.2",dest_port="8080""#);
    assert_eq!(
        value(
            &t,
            &format!("rvs_dest_current_connections{{{d},state=\"active\"}}")
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &t,
            r#"rvs_laddr_ports_in_use{addr="192.168.1.254",dev="dpdk1"}"#
        ),
        Some(4.0)
    );
    assert_eq!(
        value(
            &t,
            r#"rvs_laddr_port_misses_total{addr="192.168.1.254",dev="dpdk1"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&t, r#"rvs_port_rx_packets_total{dev="dpdk0",worker="0"}"#),
        Some(7.0)
    );
    assert_eq!(
        value(&t, r#"rvs_port_rx_packets_total{dev="dpdk0",worker="1"}"#),
        Some(0.0)
    );
    assert_eq!(
        value(
            &t,
            r#"rvs_worker_drops_total{worker="0",reason="no_route"}"#
        ),
        Some(5.0)
    );
    assert_eq!(
        value(&t, r#"rvs_conn_table_capacity{worker="0"}"#),
        Some(1024.0)
    );
    assert!(
        t.contains("# TYPE rvs_control_op_duration_seconds histogram"),
        "{t}"
    );
    assert!(value(&t, r#"rvs_control_op_duration_seconds_count{op="status"}"#).unwrap() >= 1.0);
    assert!(t.ends_with("# EOF\n"));
}

#[test]
fn exported_lists_exactly_the_families_rendered() {
    observe_op(&Request::Status, std::time::Duration::from_micros(50));
    let names = sample_names(&render(&sample()));
    let base: BTreeSet<String> = names
        .iter()
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s).filter(|b| b.ends_with("_seconds")))
                .unwrap_or(n)
                .to_string()
        })
        .collect();
    let exported: BTreeSet<String> = EXPORTED.iter().map(|s| s.to_string()).collect();
    assert_eq!(base, exported);
}

#[test]
fn op_names_are_the_api_tags() {
    assert_eq!(op_name(&Request::Status), "status");
    assert_eq!(
        op_name(&Request::ListServices { key: None }),
        "list_services"
    );
    assert_eq!(op_name(&Request::ListRoutes), "list_routes");
}

#[test]
fn only_get_metrics_is_served() {
    use super::http::route;
    assert_eq!(
        route("GET /metrics HTTP/1.1\r\nHost: x\r\n"),
        ("200 OK", true)
    );
    assert_eq!(route("GET / HTTP/1.1\r\n"), ("404 Not Found", false));
    assert_eq!(
        route("POST /metrics HTTP/1.1\r\n"),
        ("405 Method Not Allowed", false)
    );
}

/// Every string under an `expr` or `query` key of the dashboard.
fn expressions(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "query", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => expressions(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| expressions(x, out)),
        _ => {}
    }
}

/// The `rvs_...` metric names an expression uses.
fn names_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("rvs_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_dashboard_uses_only_and_all_exported_names() {
    let text = include_str!("../../../../conf/grafana/rvs.json");
    let dash: serde_json::Value = serde_json::from_str(text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    expressions(&dash, &mut exprs);
    observe_op(&Request::Status, std::time::Duration::from_micros(50));
    let exported = sample_names(&render(&sample()));
    let mut used = BTreeSet::new();
    for e in &exprs {
        for n in names_in(e) {
            assert!(
                exported.contains(&n),
                "the dashboard uses {n}, which rvsd does not export: {e}"
            );
            used.insert(n);
        }
    }
    for family in EXPORTED {
        assert!(
            used.iter().any(|u| u.starts_with(family)),
            "the dashboard shows nothing of {family}"
        );
    }
}

/// The cost of rendering a large scrape (100 services of 4 real servers, 2
/// ports, 2 workers): prints the time, asserts nothing about it. Run with
/// `cargo test --release -p rvsd --lib scrape_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn scrape_cost() {
    let one = sample();
    let mut sc = sample();
    sc.services = (0..100u16)
        .map(|i| {
            let mut s = one.services[0].clone();
            if let ServiceKey::Vs { port, .. } = &mut s.spec.key {
                *port = 1000 + i;
            }
            s.dests = (0..4u8)
                .map(|j| {
                    let mut d = one.services[0].dests[0].clone();
                    d.spec.addr = std::net::IpAddr::from([192, 168, 1, 10 + j]);
                    d
                })
                .collect();
            s
        })
        .collect();
    let mut link = one.links[0].clone();
    link.stats.workers = vec![LinkStats::default(); 2];
    sc.links = vec![
        link.clone(),
        LinkInfo {
            name: "dpdk1".into(),
            ..link
        },
    ];
    let reasons = rvs_core::stats::DropReason::ALL
        .iter()
        .map(|r| (r.name(), 1))
        .collect();
    sc.drops = vec![reasons; 2];
    let n = 50;
    let t = std::time::Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        bytes = render(&sc).len();
    }
    let series = render(&sc).lines().filter(|l| !l.starts_with('#')).count();
    println!(
        "render: {:.2} ms per scrape (wall), {bytes} bytes, {series} series",
        t.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
    );
}

#[test]
fn uoa_counters_per_worker() {
    let t = render(&sample());
    let w = r#"{worker="0"}"#;
    assert_eq!(
        value(&t, &format!("rvs_worker_uoa_sent_total{w}")),
        Some(4.0),
        "{t}"
    );
    assert_eq!(
        value(&t, &format!("rvs_worker_uoa_too_big_total{w}")),
        Some(1.0),
        "{t}"
    );
}

#[test]
fn icmp_error_counters_per_worker() {
    let t = render(&sample());
    let w = r#"{worker="0"}"#;
    assert_eq!(
        value(&t, &format!("rvs_worker_icmp_sent_total{w}")),
        Some(7.0),
        "{t}"
    );
    assert_eq!(
        value(&t, &format!("rvs_worker_icmp_rate_limited_total{w}")),
        Some(2.0),
        "{t}"
    );
}

#[test]
fn mld_reports_per_port() {
    let t = render(&sample());
    assert_eq!(
        value(&t, r#"rvs_mld_reports_sent_total{port="dpdk1"}"#),
        Some(4.0),
        "{t}"
    );
}

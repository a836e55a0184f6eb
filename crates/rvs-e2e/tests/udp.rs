//! Case 6: a UDP FNAT service (the tutorial's two-arm FNAT with `-u`), a
//! client talking to it from many source ports, UDP echo servers on the RS.

use std::collections::BTreeMap;
use std::time::Duration;

use rvs_e2e::bin;
use rvs_e2e::topo::{RvsdOpts, TwoArm};

const SOURCES: u16 = 200;

fn tools() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft"]);
}

/// `rvs-udp probe` output: `sent`, `replies`, and the `from`/`label`/`peer` counts.
struct Probe {
    sent: u32,
    replies: u32,
    from: BTreeMap<String, u32>,
    label: BTreeMap<String, u32>,
    peer: BTreeMap<String, u32>,
}

fn parse_probe(out: &str) -> Probe {
    let mut p = Probe {
        sent: 0,
        replies: 0,
        from: BTreeMap::new(),
        label: BTreeMap::new(),
        peer: BTreeMap::new(),
    };
    for l in out.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["sent", n, "replies", m] => {
                p.sent = n.parse().expect("sent");
                p.replies = m.parse().expect("replies");
            }
            [k, v, n] => {
                let n: u32 = n.parse().expect("count");
                let map = match *k {
                    "from" => &mut p.from,
                    "label" => &mut p.label,
                    "peer" => &mut p.peer,
                    _ => panic!("unexpected probe line {l:?}"),
                };
                map.insert(v.to_string(), n);
            }
            _ => panic!("unexpected probe line {l:?}"),
        }
    }
    p
}

/// Runs case 6 with `workers` workers.
pub fn udp_fnat(workers: u16) {
    tools();
    let mut t = TwoArm::new(&RvsdOpts {
        workers,
        ..Default::default()
    });
    // The tutorial's FNAT two-arm commands, for a UDP service.
    t.ok("rvsip", &["addr", "add", "10.0.0.100/32", "dev", "dpdk1"]);
    t.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]);
    t.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    t.udp_fnat_service(&["192.168.100.2:53", "192.168.100.3:53"]);

    let udp = bin("rvs-udp").to_string_lossy().into_owned();
    let mut echo = Vec::new();
    for rs in ["rs1", "rs2"] {
        let i = t.lab.spawn(
            rs,
            &format!("echo-{rs}"),
            &[&udp, "echo", "0.0.0.0:53", rs],
            &[],
        );
        echo.push(i);
    }
    for rs in ["rs1", "rs2"] {
        let log = t.lab.dir.join(format!("echo-{rs}.log"));
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening")
        {
            assert!(
                std::time::Instant::now() < end,
                "echo server on {rs} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    let n = SOURCES.to_string();
    let o = t.lab.exec(
        "client",
        &[
            &udp,
            "probe",
            "--sources",
            &n,
            "--from-port",
            "30000",
            "--timeout-ms",
            "5000",
            "10.0.0.100:53",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    println!(
        "client$ rvs-udp probe --sources {SOURCES} --from-port 30000 10.0.0.100:53\n{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "the probe failed");
    let p = parse_probe(&out);
    assert_eq!(p.sent, u32::from(SOURCES));
    assert_eq!(
        p.replies,
        u32::from(SOURCES),
        "every source port must get its echo back\n$ rvsadm -ln\n{}\n$ rvsip -s link show\n{}\nrvsd log:\n{}",
        t.ok("rvsadm", &["-ln"]),
        t.ok("rvsip", &["-s", "link", "show"]),
        t.rvsd_log()
    );
    // Every answer comes from the VIP:port the client asked.
    assert_eq!(
        p.from.keys().collect::<Vec<_>>(),
        ["10.0.0.100:53"],
        "{:?}",
        p.from
    );
    // Both RS answered; with one worker rr splits exactly.
    let rs1 = p.label.get("rs1").copied().unwrap_or(0);
    let rs2 = p.label.get("rs2").copied().unwrap_or(0);
    assert!(rs1 > 0 && rs2 > 0, "both RS must answer: {:?}", p.label);
    assert_eq!(rs1 + rs2, u32::from(SOURCES), "{:?}", p.label);
    if workers == 1 {
        assert_eq!((rs1, rs2), (100, 100), "rr over two RS");
    }
    // The RS saw the LIP, never the client.
    assert_eq!(
        p.peer.keys().collect::<Vec<_>>(),
        ["192.168.100.200"],
        "{:?}",
        p.peer
    );
    for (rs, i) in ["rs1", "rs2"].iter().zip(&echo) {
        let log = t.lab.proc(*i).log();
        let seen: Vec<&str> = log
            .lines()
            .filter_map(|l| l.strip_prefix("seen "))
            .collect();
        println!(
            "{rs} echo server: {} datagrams, first peers {:?}",
            seen.len(),
            &seen[..seen.len().min(3)]
        );
        assert!(!seen.is_empty(), "{rs} saw nothing");
        assert!(
            seen.iter().all(|s| s.starts_with("192.168.100.200:")),
            "{rs} must see only the LIP: {seen:?}"
        );
        // One LIP port per client source port: as many distinct peers as datagrams.
        let mut ports: Vec<&str> = seen.clone();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), seen.len(), "{rs}: one LIP port per flow");
    }

    // The LIP port tells the worker that owns the conn (port % workers):
    // with two workers, both must have had flows.
    let mut by_worker = vec![0u32; usize::from(workers)];
    for i in &echo {
        for l in t.lab.proc(*i).log().lines() {
            let peer = l.strip_prefix("seen ").unwrap_or_default();
            if let Some(port) = peer
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
            {
                by_worker[usize::from(port % workers)] += 1;
            }
        }
    }
    println!("conns by worker (LIP port % workers): {by_worker:?}");
    assert_eq!(by_worker.iter().sum::<u32>(), u32::from(SOURCES));
    assert!(
        by_worker.iter().all(|n| *n > 0),
        "every worker must carry flows: {by_worker:?}"
    );

    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    let lines: Vec<&str> = ln.lines().collect();
    assert_eq!(lines[3].trim_end(), "UDP  10.0.0.100:53 rr", "{ln}");
    let mut inact_total = 0;
    for (l, rs) in lines[4..6]
        .iter()
        .zip(["192.168.100.2:53", "192.168.100.3:53"])
    {
        let w: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(w[..4], ["->", rs, "FullNat", "1"], "{ln}");
        let inact: u32 = w[5].parse().expect("InActConn");
        assert!(inact > 0, "{rs}: UDP conns count as InActConn: {ln}");
        inact_total += inact;
    }
    assert_eq!(
        inact_total,
        u32::from(SOURCES),
        "one conn per source port: {ln}"
    );

    let c = t.ok("rvsadm", &["-lnc"]);
    let udp_conns: Vec<&str> = c.lines().filter(|l| l.starts_with("UDP")).collect();
    println!(
        "$ rvsadm -lnc | grep UDP | head -3\n{}\n({} UDP conns)",
        udp_conns[..udp_conns.len().min(3)].join("\n"),
        udp_conns.len()
    );
    assert_eq!(udp_conns.len(), usize::from(SOURCES), "{c}");
}

#[test]
fn udp_fnat_one_worker() {
    udp_fnat(1);
}

#[test]
fn udp_fnat_two_workers() {
    udp_fnat(2);
}

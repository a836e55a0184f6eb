//! Case 10: the exception path. rvsd creates `dpdk0.kni`/`dpdk1.kni` in its
//! namespace; what rvs does not handle itself reaches the kernel through
//! them, and what the kernel sends on them leaves by the port (the tutorial's
//! OSPF section relies on this: an address on `dpdk1.kni`, and a `kni_host`
//! route).

use rvs_e2e::topo::{RvsdOpts, TwoArm};

fn tools() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft", "ping"]);
}

fn ping(t: &TwoArm, from: &str, to: &str) -> Result<String, String> {
    let o = t
        .lab
        .exec(from, &["ping", "-c", "2", "-W", "2", "-i", "0.2", to]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    println!("{from}$ ping {to}\n{out}");
    if o.status.success() {
        Ok(out)
    } else {
        Err(format!("{out}{}", String::from_utf8_lossy(&o.stderr)))
    }
}

/// The `kni-packets` counter of `dev` in `rvsip -s link show`.
fn kni_packets(t: &TwoArm, dev: &str) -> u64 {
    let s = t.ok("rvsip", &["-s", "link", "show", dev]);
    let lines: Vec<&str> = s.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.contains("kni-packets"))
        .unwrap_or_else(|| panic!("no kni-packets in rvsip -s link show {dev}:\n{s}"));
    let head: Vec<&str> = lines[i].split_whitespace().collect();
    let vals: Vec<&str> = lines[i + 1].split_whitespace().collect();
    let k = head
        .iter()
        .position(|h| *h == "kni-packets")
        .expect("column");
    vals[k]
        .parse()
        .unwrap_or_else(|_| panic!("kni-packets value in:\n{s}"))
}

/// Runs case 10 with `workers` workers.
pub fn kni(workers: u16) {
    tools();
    let mut t = TwoArm::new(&RvsdOpts {
        workers,
        ..Default::default()
    });

    // rvsip link show lists the kni devices; the kernel has them.
    let links = t.ok("rvsip", &["link", "show"]);
    println!("$ rvsip link show\n{links}");
    for (port, kni) in [("dpdk0", "dpdk0.kni"), ("dpdk1", "dpdk1.kni")] {
        let line = links
            .lines()
            .skip_while(|l| !l.contains(&format!(": {port}:")))
            .nth(1)
            .unwrap_or_default();
        assert!(
            line.contains(&format!("kni {kni}")),
            "rvsip link show must list {kni} under {port}:\n{links}"
        );
        let k = t.lab.must_in("lb", &["ip", "-br", "link", "show", kni]);
        println!("lb$ ip -br link show {kni}\n{k}");
    }

    // The tutorial's OSPF section, on our addresses.
    t.lab
        .must_in("lb", &["ip", "link", "set", "dpdk1.kni", "up"]);
    t.lab.must_in(
        "lb",
        &["ip", "addr", "add", "10.0.0.2/16", "dev", "dpdk1.kni"],
    );
    let before = kni_packets(&t, "dpdk1");

    // ICMP to an address only the kernel has.
    ping(&t, "client", "10.0.0.2").unwrap_or_else(|e| {
        panic!(
            "ping 10.0.0.2 (on dpdk1.kni) failed: {e}\nrvsip -s link show:\n{}\nrvsd log:\n{}",
            t.ok("rvsip", &["-s", "link", "show"]),
            t.rvsd_log()
        )
    });

    // TCP to a server of the kernel, listening on the kni address only.
    let root = t.lab.dir.join("kni-www");
    std::fs::create_dir_all(&root).expect("www dir");
    std::fs::write(root.join("hello.txt"), "hello from the lb kernel\n").expect("www file");
    let r = root.to_string_lossy().into_owned();
    t.lab.spawn(
        "lb",
        "kni-http",
        &[
            "python3",
            "-m",
            "http.server",
            "--bind",
            "10.0.0.2",
            "--directory",
            &r,
            "8080",
        ],
        &[],
    );
    t.lab
        .wait_port("lb", 8080, std::time::Duration::from_secs(5));
    let body = t
        .lab
        .curl("client", "http://10.0.0.2:8080/hello.txt")
        .unwrap_or_else(|e| {
            panic!(
                "curl to the kernel's server on 10.0.0.2 failed: {e}\nrvsd log:\n{}",
                t.rvsd_log()
            )
        });
    println!("client$ curl http://10.0.0.2:8080/hello.txt\n{body}");
    assert_eq!(body, "hello from the lb kernel\n");
    // The kernel's server saw the client itself (python logs the peer).
    let log = std::fs::read_to_string(t.lab.dir.join("kni-http.log")).unwrap_or_default();
    println!("lb http.server log:\n{log}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("10.0.0.48 ") && l.contains("GET /hello.txt")),
        "the kernel's server must see the client 10.0.0.48:\n{log}"
    );

    let after = kni_packets(&t, "dpdk1");
    println!("dpdk1 kni-packets: {before} -> {after}");
    assert!(
        after >= before + 4,
        "ping and curl went through dpdk1.kni: kni-packets {before} -> {after}"
    );

    // With a route of rvs covering them (the tutorial's WAN route), the
    // kernel's addresses are no longer the kernel's ...
    t.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]);
    t.lab.must_in(
        "lb",
        &["ip", "addr", "add", "10.0.0.3/32", "dev", "dpdk1.kni"],
    );
    let e = ping(&t, "client", "10.0.0.3");
    assert!(
        e.is_err(),
        "10.0.0.3 is covered by rvs's route 10.0.0.0/16 dev dpdk1: it must not reach the kernel without a kni_host route"
    );
    println!("without a kni_host route, 10.0.0.3 does not reach the kernel (as expected)");
    // ... until a kni_host route hands them over (the OSPF section does
    // this for its inter-connection address).
    for a in ["10.0.0.3/32", "10.0.0.2/32"] {
        t.ok(
            "rvsip",
            &["route", "add", a, "dev", "dpdk1", "scope", "kni_host"],
        );
    }
    let routes = t.ok("rvsip", &["route", "show"]);
    println!("$ rvsip route show\n{routes}");
    for a in ["10.0.0.3/32", "10.0.0.2/32"] {
        assert!(
            routes.lines().any(|l| l.starts_with(&format!("inet {a} "))
                && l.contains("dev dpdk1")
                && l.contains("scope kni_host")),
            "{routes}"
        );
    }
    ping(&t, "client", "10.0.0.3").unwrap_or_else(|e| {
        panic!(
            "ping 10.0.0.3 (kni_host route) failed: {e}\nrvsd log:\n{}",
            t.rvsd_log()
        )
    });
    let body = t
        .lab
        .curl("client", "http://10.0.0.2:8080/hello.txt")
        .unwrap_or_else(|e| panic!("curl 10.0.0.2 with its kni_host route failed: {e}"));
    println!("client$ curl http://10.0.0.2:8080/hello.txt (kni_host)\n{body}");
    assert_eq!(body, "hello from the lb kernel\n");
}

#[test]
fn kni_one_worker() {
    kni(1);
}

#[test]
fn kni_two_workers() {
    kni(2);
}

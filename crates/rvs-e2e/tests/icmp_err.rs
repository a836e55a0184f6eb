//! ICMP errors with several workers: with 2 workers, a path-MTU error from
//! the real servers' side (a router in front of a real server with a
//! smaller MTU) and a UDP port unreachable (a real server with no listener)
//! reach the client for connections owned by both workers.
//!
//! The worker that owns an FNAT connection is the one whose local ports it
//! got (`lport % workers`); the real servers see the local port, so the
//! test reads each connection's owner from their side.

use std::collections::BTreeMap;

use rvs_e2e::capture::{Capture, Frame, IcmpError};
use rvs_e2e::topo::{RvsdOpts, TwoArm};

const WORKERS: u16 = 2;
const CLIENT: [u8; 4] = [10, 0, 0, 48];
const VIP: [u8; 4] = [10, 0, 0, 100];
/// Client ports of the TCP connections, one at a time.
const TCP_PORTS: std::ops::Range<u16> = 41000..41004;
/// Client ports of the UDP flows, all at once.
const UDP_PORTS: std::ops::Range<u16> = 42000..42010;

fn tools() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft", "tcpdump", "python3"]);
}

/// The two-arm lab with 2 workers, plus `rs3` (192.168.200.2) behind a
/// router `rt` (192.168.100.9 on the LAN switch) whose link to rs3 has an
/// MTU of 1280 while rs3 itself has 1500 (so rs3 advertises an MSS that
/// does not fit); a TCP FNAT service 10.0.0.100:80 -> rs3:80 and a UDP FNAT
/// service 10.0.0.100:53 -> rs1:53, where nothing listens.
fn lab() -> TwoArm {
    let mut t = TwoArm::new(&RvsdOpts {
        workers: WORKERS,
        ..Default::default()
    });
    let lab = &mut t.lab;
    lab.add_ns("rt");
    lab.add_ns("rs3");
    lab.veth("rt", "eth0", "sw", "p-rt");
    lab.must_in("sw", &["ip", "link", "set", "p-rt", "master", "br0"]);
    lab.veth("rt", "eth1", "rs3", "eth0");
    lab.must_in(
        "rt",
        &["ip", "addr", "add", "192.168.100.9/24", "dev", "eth0"],
    );
    lab.must_in(
        "rt",
        &["ip", "addr", "add", "192.168.200.1/24", "dev", "eth1"],
    );
    lab.must_in("rt", &["ip", "link", "set", "eth1", "mtu", "1280"]);
    lab.must_in("rt", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.must_in(
        "rs3",
        &["ip", "addr", "add", "192.168.200.2/24", "dev", "eth0"],
    );
    lab.must_in(
        "rs3",
        &["ip", "route", "add", "default", "via", "192.168.200.1"],
    );
    lab.nginx("rs3", "rs3");
    // One port unreachable per datagram, not one per second.
    lab.must_in("rs1", &["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"]);

    t.ok("rvsip", &["addr", "add", "10.0.0.100/32", "dev", "dpdk1"]);
    t.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]);
    t.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    t.ok(
        "rvsip",
        &[
            "route",
            "add",
            "192.168.200.0/24",
            "via",
            "192.168.100.9",
            "dev",
            "dpdk0",
        ],
    );
    for (proto, vs, rs) in [
        ("-t", "10.0.0.100:80", "192.168.200.2:80"),
        ("-u", "10.0.0.100:53", "192.168.100.2:53"),
    ] {
        t.ok("rvsadm", &["-A", proto, vs, "-s", "rr"]);
        t.ok("rvsadm", &["-a", proto, vs, "-r", rs, "-b"]);
        t.ok(
            "rvsadm",
            &[
                "--add-laddr",
                "-z",
                "192.168.100.200",
                proto,
                vs,
                "-F",
                "dpdk0",
            ],
        );
    }
    t
}

/// What went wrong, with rvsd's counters (drop reasons) and log.
fn context(t: &TwoArm) -> String {
    format!(
        "$ rvsip -s link show\n{}\nrvsd log:\n{}",
        t.ok("rvsip", &["-s", "link", "show"]),
        t.rvsd_log()
    )
}

/// The ICMP errors the client received, by the client port they quote.
fn errors_by_port(frames: &[Frame]) -> BTreeMap<u16, Vec<IcmpError>> {
    let mut m: BTreeMap<u16, Vec<IcmpError>> = BTreeMap::new();
    for e in frames.iter().filter_map(Frame::icmp_error) {
        if e.src == CLIENT && e.dst == VIP {
            m.entry(e.sport).or_default().push(e);
        }
    }
    m
}

/// Requests from each TCP port in turn, each too big for the path to rs3:
/// it completes only if the router's "fragmentation needed" (to the local
/// address) is translated and reaches the client, which then sends smaller
/// segments. Returns the local port rs3 saw for each client port.
fn tcp_requests(t: &TwoArm) -> Vec<(u16, Result<u16, String>)> {
    let pad = "x".repeat(3000);
    let (h1, h2) = (format!("X-Pad1: {pad}"), format!("X-Pad2: {pad}"));
    let mut out = Vec::new();
    for port in TCP_PORTS {
        // The client keeps a learned path MTU per destination: forget it,
        // so that every connection needs its own error.
        t.lab.must_in("client", &["ip", "route", "flush", "cache"]);
        let p = port.to_string();
        let o = t.lab.exec(
            "client",
            &[
                "curl",
                "-sS",
                "--max-time",
                "4",
                "--local-port",
                &p,
                "-H",
                &h1,
                "-H",
                &h2,
                "http://10.0.0.100/",
            ],
        );
        let body = String::from_utf8_lossy(&o.stdout).trim().to_string();
        println!("client$ curl --local-port {port} (6 KB of headers) 10.0.0.100 -> {body}");
        let r = if o.status.success() {
            // nginx answers "rs3 <peer address>:<peer port>".
            body.strip_prefix("rs3 192.168.100.200:")
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| format!("unexpected answer {body:?}"))
        } else {
            Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
        };
        out.push((port, r));
    }
    out
}

/// One datagram from each UDP port, on connected sockets, to the UDP
/// service whose real server has no listener: each socket must get
/// ECONNREFUSED (the real server's port unreachable, translated). Returns
/// the outcome per client port: `refused`, `answered` or `silent`.
fn udp_probes(t: &TwoArm) -> BTreeMap<u16, String> {
    let script = "
import socket, sys, time
first, n = int(sys.argv[1]), int(sys.argv[2])
socks = {}
for p in range(first, first + n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('0.0.0.0', p))
    s.connect(('10.0.0.100', 53))
    s.setblocking(False)
    s.send(b'probe-%d' % p)
    socks[p] = s
res = {}
end = time.time() + 3
while len(res) < n and time.time() < end:
    for p, s in socks.items():
        if p in res:
            continue
        try:
            s.recv(2048)
            res[p] = 'answered'
        except ConnectionRefusedError:
            res[p] = 'refused'
        except BlockingIOError:
            pass
    time.sleep(0.01)
for p in socks:
    print(p, res.get(p, 'silent'))
";
    let first = UDP_PORTS.start.to_string();
    let n = UDP_PORTS.len().to_string();
    let o = t.lab.exec("client", &["python3", "-c", script, &first, &n]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    println!("client$ one datagram from ports {first}.. to 10.0.0.100:53\n{out}");
    assert!(
        o.status.success(),
        "the UDP probe failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(p, r)| (p.parse().expect("port"), r.to_string()))
        .collect()
}

/// Which worker owns each UDP flow, from what rs1 received: the local port
/// of the datagram carrying `probe-<client port>`.
fn udp_owners(frames: &[Frame]) -> BTreeMap<u16, u16> {
    let mut m = BTreeMap::new();
    for f in frames {
        let (Some((lport, 53)), Some(payload)) = (f.ports(), f.udp_payload()) else {
            continue;
        };
        let text = String::from_utf8_lossy(payload);
        if let Some(cport) = text.strip_prefix("probe-").and_then(|p| p.parse().ok()) {
            m.insert(cport, lport % WORKERS);
        }
    }
    m
}

#[test]
fn icmp_errors_reach_the_client_for_connections_of_both_workers() {
    tools();
    let mut t = lab();
    let client_cap = Capture::start(&mut t.lab, "client", "eth0", "icmp");
    let rs1_cap = Capture::start(&mut t.lab, "rs1", "eth0", "udp dst port 53");

    let tcp = tcp_requests(&t);
    let udp = udp_probes(&t);

    let rs1_frames = rs1_cap.stop(&mut t.lab);
    let client_frames = client_cap.stop(&mut t.lab);
    let errors = errors_by_port(&client_frames);
    for (port, es) in &errors {
        let kinds: Vec<String> = es.iter().map(|e| format!("{}/{}", e.ty, e.code)).collect();
        println!("client got ICMP (type/code) quoting port {port}: {kinds:?}");
    }

    // TCP: every request completed, each after its own "fragmentation
    // needed" (MTU 1280) reached the client, and both workers owned some.
    let mut tcp_owners = Vec::new();
    for (port, r) in &tcp {
        let lport = r.as_ref().unwrap_or_else(|e| {
            panic!(
                "TCP from client port {port}: {e} (the fragmentation-needed error did not reach the client?)\nICMP errors at the client: {errors:?}\n{}",
                context(&t)
            )
        });
        tcp_owners.push(lport % WORKERS);
        let pmtu = errors
            .get(port)
            .into_iter()
            .flatten()
            .any(|e| e.ty == 3 && e.code == 4 && e.proto == 6 && e.dport == 80);
        assert!(
            pmtu,
            "no fragmentation needed quoting client port {port} reached the client: {errors:?}"
        );
    }
    println!("TCP connections' owners (local port % {WORKERS}): {tcp_owners:?}");
    for w in 0..WORKERS {
        assert!(
            tcp_owners.contains(&w),
            "worker {w} owned no TCP connection: {tcp_owners:?}"
        );
    }

    // UDP: every connected socket was refused, by a port unreachable
    // quoting its own port, and both workers owned some flows.
    let owners = udp_owners(&rs1_frames);
    println!("UDP flows' owners (local port % {WORKERS}): {owners:?}");
    assert_eq!(
        owners.keys().copied().collect::<Vec<_>>(),
        UDP_PORTS.collect::<Vec<_>>(),
        "rs1 must have received every datagram"
    );
    for w in 0..WORKERS {
        assert!(
            owners.values().any(|o| *o == w),
            "worker {w} owned no UDP flow: {owners:?}"
        );
    }
    for port in UDP_PORTS {
        let unreachable = errors
            .get(&port)
            .into_iter()
            .flatten()
            .any(|e| e.ty == 3 && e.code == 3 && e.proto == 17 && e.dport == 53);
        assert!(
            udp[&port] == "refused" && unreachable,
            "UDP from client port {port} (owned by worker {}): {}, port unreachable at the client: {unreachable}\nall: {udp:?}\n{}",
            owners[&port],
            udp[&port],
            context(&t)
        );
    }
}

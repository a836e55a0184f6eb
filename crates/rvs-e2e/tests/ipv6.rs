//! Issue 15 item 3: the first end-to-end cases over IPv6, on the tutorial's
//! topologies with IPv6 addresses (`rvs_e2e::v6`): FNAT two-arm over TCP
//! (with neighbour discovery, TOA, `rvsadm -ln`, ping6) and UDP, and DR
//! one-arm. The DPVS tutorial's IPv6 section is the model: an IPv6 VIP,
//! IPv6 real servers and an IPv6 local address, configured like IPv4.

use std::collections::BTreeMap;
use std::time::Duration;

use rvs_e2e::bin;
use rvs_e2e::capture::Capture;
use rvs_e2e::one_arm::OneArm;
use rvs_e2e::rvsd::FnatService;
use rvs_e2e::topo::{RvsdOpts, TwoArm};
use rvs_e2e::v6::{self, CLIENT, CLIENT1, LIP, RS, RS1, VIP, VIP1};

fn tools() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft", "tcpdump", "ping", "python3"]);
}

/// The tutorial's IPv6 FNAT commands on the two-arm lab (dpip → rvsip,
/// ipvsadm → rvsadm) for protocol flag `proto` (`-t` or `-u`) and `port`.
fn fnat6_service(t: &TwoArm, proto: &str, port: u16) {
    v6::fnat_routes(t);
    fnat6_dests(t, proto, port);
}

/// The IPv6 FNAT service `[VIP]:port` to both real servers' `port`, the
/// local address on dpdk0.
fn fnat6_dests(t: &TwoArm, proto: &str, port: u16) {
    let vs = format!("[{VIP}]:{port}");
    let rss: Vec<String> = RS.iter().map(|rs| format!("[{rs}]:{port}")).collect();
    let s = FnatService {
        proto,
        vs: &vs,
        lip: LIP,
        ..FnatService::tutorial()
    };
    t.fnat_service(&s, &rss);
}

/// FNAT over IPv6, TCP: curl -6 reaches both real servers through the VIP,
/// which they see as coming from the local address, with the client in a
/// 20-byte TOA; the client resolved the VIP by neighbour discovery to
/// rvs's MAC; `rvsadm -ln` shows the addresses as ipvsadm does; ping6 to
/// the VIP is answered.
#[test]
fn fnat6() {
    tools();
    let mut t = TwoArm::new(&RvsdOpts::default());
    v6::two_arm(&t);
    fnat6_service(&t, "-t", 80);

    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    let lines: Vec<&str> = ln.lines().map(str::trim_end).collect();
    assert_eq!(lines[3], "TCP  [2001:db8::100]:80 rr", "{ln}");
    assert!(
        lines[4].starts_with("  -> [fd00:100::2]:80             FullNat 1 "),
        "{ln}"
    );
    assert!(
        lines[5].starts_with("  -> [fd00:100::3]:80             FullNat 1 "),
        "{ln}"
    );
    let a = t.ok("rvsip", &["addr", "show"]);
    println!("$ rvsip addr show\n{a}");
    assert!(
        a.contains("inet6 2001:db8::100/128 scope global dpdk1"),
        "{a}"
    );
    assert!(
        a.contains("inet6 fd00:100::200/128 scope global dpdk0"),
        "{a}"
    );
    // `-6` shows the IPv6 routes only (an IPv4 route is added to see it
    // filtered out), `-4` the IPv4 one only.
    t.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]);
    let r = t.ok("rvsip", &["route", "-6", "show"]);
    println!("$ rvsip route -6 show\n{r}");
    assert!(r.lines().all(|l| l.starts_with("inet6 ")), "{r}");
    assert!(r.contains("inet6 2001:db8::/64 "), "{r}");
    let r4 = t.ok("rvsip", &["-4", "route", "show"]);
    assert_eq!(r4.lines().count(), 1, "{r4}");

    let cap = Capture::start(&mut t.lab, "rs1", "eth0", "ip6 and tcp port 80");
    let url = format!("http://[{VIP}]/");
    let mut served = Vec::new();
    for i in 0..4 {
        let body = t
            .lab
            .curl6("client", &url)
            .unwrap_or_else(|e| panic!("curl -6 {i} to {url} failed: {e}\n{}", t.diag()));
        let body = body.trim().to_string();
        println!("client$ curl -6 {url}   -> {body}");
        let (rs, peer) = body.split_once(' ').expect("nginx answers '<rs> <peer>'");
        assert!(
            peer.starts_with(&format!("{LIP}:")),
            "the RS must see the IPv6 LIP as its peer, saw {peer}"
        );
        served.push(rs.to_string());
    }
    let frames = cap.stop(&mut t.lab);
    for w in served.windows(2) {
        assert_ne!(w[0], w[1], "rr must alternate: {served:?}");
    }

    // TOA for IPv6: option 254 of 20 bytes with the client's address.
    let toas: Vec<_> = frames.iter().filter_map(|f| f.toa6()).collect();
    println!("rs1 capture: {} frames, TOA {toas:?}", frames.len());
    assert!(!toas.is_empty(), "no 20-byte TCP option 254 seen on rs1");
    let client: std::net::Ipv6Addr = CLIENT.parse().expect("client address");
    assert!(toas.iter().all(|(_, a)| *a == client), "{toas:?}");
    let lip: std::net::Ipv6Addr = LIP.parse().expect("LIP");
    for f in frames
        .iter()
        .filter(|f| f.ports6().is_some_and(|p| p.1 == 80))
    {
        assert_eq!(f.addrs6().map(|a| a.0), Some(lip), "to the RS from the LIP");
    }

    // Neighbour discovery: the client learned the VIP's MAC from rvs's NA.
    let lb_mac = v6::mac_text(&t.lab, "lb", "wan");
    let n = t.lab.neigh6("client", "eth0", VIP);
    println!("client$ ip -6 neigh show {VIP} dev eth0\n{n}");
    assert!(n.contains(&format!("lladdr {lb_mac}")), "{n}");
    assert!(
        ["REACHABLE", "STALE", "DELAY", "PROBE"]
            .iter()
            .any(|s| n.ends_with(s)),
        "{n}"
    );
    // The port joined the solicited-node groups of the VIP and the LIP (a
    // NIC with a multicast filter would drop the solicitations otherwise;
    // the takeover turned IPv6 off on it, so the kernel holds none).
    for dev in ["wan", "lan"] {
        let m = t.lab.must_in("lb", &["ip", "maddr", "show", "dev", dev]);
        println!("lb$ ip maddr show dev {dev}\n{m}");
        for g in ["33:33:ff:00:01:00", "33:33:ff:00:02:00"] {
            assert!(
                m.contains(&format!("link  {g}")),
                "{g} not joined on {dev}:\n{m}"
            );
        }
    }
    let rn = t.ok("rvsip", &["neigh", "show"]);
    println!("$ rvsip neigh show\n{rn}");
    for ip in [CLIENT, RS[0], RS[1]] {
        assert!(rn.lines().any(|l| l.contains(ip)), "{ip} not in\n{rn}");
    }

    let c = t.ok("rvsadm", &["-lnc"]);
    println!("$ rvsadm -lnc\n{c}");
    assert!(
        c.lines()
            .any(|l| l.contains(&format!("[{CLIENT}]:")) && l.contains(&format!("[{VIP}]:80"))),
        "{c}"
    );

    // ICMPv6 echo to the VIP, as for IPv4.
    let p = t.lab.exec(
        "client",
        &["ping", "-6", "-c", "2", "-W", "2", "-i", "0.2", VIP],
    );
    println!(
        "client$ ping -6 {VIP}\n{}",
        String::from_utf8_lossy(&p.stdout)
    );
    assert!(p.status.success(), "ping -6 to the VIP failed");
}

/// FNAT over IPv6, UDP, two workers: datagrams from 50 source ports all
/// come back from the VIP; the real servers saw only the IPv6 local
/// address, one local port per flow, spread over both workers.
#[test]
fn udp_fnat6() {
    tools();
    let mut t = TwoArm::new(&RvsdOpts {
        workers: 2,
        ..Default::default()
    });
    v6::two_arm(&t);
    fnat6_service(&t, "-u", 53);
    let udp = bin("rvs-udp").to_string_lossy().into_owned();
    let mut echo = Vec::new();
    for rs in ["rs1", "rs2"] {
        echo.push(t.lab.spawn(
            rs,
            &format!("echo-{rs}"),
            &[&udp, "echo", "[::]:53", rs],
            &[],
        ));
        t.lab.wait_udp_port(rs, 53, Duration::from_secs(5));
    }
    let target = format!("[{VIP}]:53");
    let o = t.lab.exec(
        "client",
        &[
            &udp,
            "probe",
            "--sources",
            "50",
            "--from-port",
            "30000",
            "--timeout-ms",
            "5000",
            &target,
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    println!("client$ rvs-udp probe --sources 50 {target}\n{out}");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut kv: BTreeMap<String, String> = BTreeMap::new();
    for l in out.lines() {
        let (k, v) = l.split_once(' ').expect("probe line");
        kv.entry(k.to_string())
            .and_modify(|s| {
                s.push(';');
                s.push_str(v)
            })
            .or_insert_with(|| v.to_string());
    }
    assert_eq!(
        kv.get("sent").map(String::as_str),
        Some("50 replies 50"),
        "every source port must get its echo\n$ rvsip -s link show\n{}\nrvsd log:\n{}",
        t.ok("rvsip", &["-s", "link", "show"]),
        t.rvsd_log()
    );
    assert_eq!(kv.get("from"), Some(&format!("{target} 50")), "{out}");
    assert_eq!(kv.get("peer"), Some(&format!("[{LIP}] 50")), "{out}");
    let labels = kv.get("label").cloned().unwrap_or_default();
    assert!(labels.contains("rs1 ") && labels.contains("rs2 "), "{out}");

    // Local ports tell the owning worker (port % 2): both carried flows.
    let mut by_worker = [0u32; 2];
    for i in &echo {
        for l in t.lab.proc(*i).log().lines() {
            let Some(peer) = l.strip_prefix("seen ") else {
                continue;
            };
            assert!(peer.starts_with(&format!("[{LIP}]:")), "{peer}");
            let port: u16 = peer
                .rsplit_once(':')
                .expect("port")
                .1
                .parse()
                .expect("port");
            by_worker[usize::from(port % 2)] += 1;
        }
    }
    println!("flows by worker (LIP port % 2): {by_worker:?}");
    assert!(by_worker.iter().all(|n| *n > 0), "{by_worker:?}");
    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    assert!(ln.contains("UDP  [2001:db8::100]:53 rr"), "{ln}");

    // ICMPv6 errors translated like ICMP: a service toward a port nothing
    // listens on; each real server's port unreachable (to the local
    // address) reaches the client's socket as "connection refused", for
    // flows of both workers (consecutive source ports).
    fnat6_dests(&t, "-u", 54);
    let vs = format!("[{VIP}]:54");
    let script = format!(
        "import socket\n\
         for p in range(31000, 31004):\n\
         \x20   s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
         \x20   s.bind(('::', p)); s.settimeout(3); s.connect(('{VIP}', 54)); s.send(b'x')\n\
         \x20   try:\n\
         \x20       s.recv(100); print(p, 'reply')\n\
         \x20   except ConnectionRefusedError:\n\
         \x20       print(p, 'refused')\n\
         \x20   except socket.timeout:\n\
         \x20       print(p, 'timeout')\n"
    );
    let out = t.lab.must_in("client", &["python3", "-c", &script]);
    println!("client$ UDP to {vs} from ports 31000-31003\n{out}");
    assert_eq!(
        out.lines().filter(|l| l.ends_with(" refused")).count(),
        4,
        "every flow must see the port unreachable: {out}\n$ rvsip -s link show\n{}",
        t.ok("rvsip", &["-s", "link", "show"])
    );
}

/// DR over IPv6, one-arm: the real servers hold the VIP on `lo`; rvs
/// only rewrites the MACs, so nginx sees the client's own address, and the
/// replies reach the client straight from the real servers.
#[test]
fn dr6() {
    tools();
    let mut t = OneArm::new(&RvsdOpts::default());
    v6::one_arm(&t);
    t.ok(
        "rvsip",
        &["addr", "add", &format!("{VIP1}/128"), "dev", "dpdk0"],
    );
    t.ok("rvsip", &["route", "add", v6::LAN1, "dev", "dpdk0"]);
    let vs = format!("[{VIP1}]:80");
    t.ok("rvsadm", &["-A", "-t", &vs, "-s", "rr"]);
    for rs in RS1 {
        t.ok("rvsadm", &["-a", "-t", &vs, "-r", rs, "-g"]);
    }
    for rs in ["rs1", "rs2"] {
        v6::dr_real_server(&t, rs);
    }
    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    assert!(
        ln.lines()
            .any(|l| l.starts_with("  -> [2001:db8:100::2]:80         Route   1 ")),
        "{ln}"
    );

    let rs_macs = [
        v6::mac_text(&t.lab, "rs1", "eth0"),
        v6::mac_text(&t.lab, "rs2", "eth0"),
    ];
    let cap = Capture::start(&mut t.lab, "client", "eth0", "ip6 and tcp src port 80");
    let url = format!("http://[{VIP1}]/");
    let mut served = Vec::new();
    for i in 0..4 {
        let body = t.lab.curl6("client", &url).unwrap_or_else(|e| {
            panic!(
                "curl -6 {i} to {url} failed: {e}\nrvsd log:\n{}",
                t.rvsd_log()
            )
        });
        let body = body.trim().to_string();
        println!("client$ curl -6 {url}   -> {body}");
        let (rs, peer) = body.split_once(' ').expect("nginx answers '<rs> <peer>'");
        assert!(
            peer.starts_with(&format!("{CLIENT1}:")),
            "DR keeps the client's address, {rs} saw {peer}"
        );
        served.push(rs.to_string());
    }
    let frames = cap.stop(&mut t.lab);
    assert!(
        served.contains(&"rs1".to_string()) && served.contains(&"rs2".to_string()),
        "{served:?}"
    );
    // Every reply came from a real server's MAC (bypassing rvs), from the VIP.
    assert!(!frames.is_empty(), "no reply captured at the client");
    let vip: std::net::Ipv6Addr = VIP1.parse().expect("VIP");
    for f in &frames {
        let src_mac = f.data[6..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        assert!(rs_macs.contains(&src_mac), "reply from {src_mac}, not a RS");
        assert_eq!(f.addrs6().map(|a| a.0), Some(vip));
    }
}

/// NAT over IPv6, two workers: the real servers route back through rvs's
/// LAN address; nginx sees the client's own address, and every one of
/// eight connections (consecutive client ports, so both workers own some)
/// is answered: the real servers' replies reach the worker that owns the
/// connection.
#[test]
fn nat6() {
    tools();
    let t = TwoArm::new(&RvsdOpts {
        workers: 2,
        ..Default::default()
    });
    v6::two_arm(&t);
    v6::wan_vip(&t);
    // An interface address: its /64 route comes with it.
    t.ok("rvsip", &["addr", "add", "fd00:100::1/64", "dev", "dpdk0"]);
    let vs = format!("[{VIP}]:80");
    t.ok("rvsadm", &["-A", "-t", &vs, "-s", "rr"]);
    for rs in RS {
        t.ok(
            "rvsadm",
            &["-a", "-t", &vs, "-r", &format!("[{rs}]:80"), "-m"],
        );
    }
    for rs in ["rs1", "rs2"] {
        t.lab.must_in(
            rs,
            &["ip", "-6", "route", "add", "default", "via", "fd00:100::1"],
        );
    }
    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    assert!(
        ln.lines()
            .any(|l| l.starts_with("  -> [fd00:100::2]:80             Masq    1 ")),
        "{ln}"
    );
    let url = format!("http://[{VIP}]/");
    let mut served = Vec::new();
    for port in 43000..43008u16 {
        let lp = port.to_string();
        let o = t.lab.exec(
            "client",
            &[
                "curl",
                "-g",
                "-6",
                "-sS",
                "--max-time",
                "5",
                "--local-port",
                &lp,
                &url,
            ],
        );
        assert!(
            o.status.success(),
            "curl -6 from port {port} failed: {}\n$ rvsip -s link show\n{}",
            String::from_utf8_lossy(&o.stderr),
            t.ok("rvsip", &["-s", "link", "show"])
        );
        let body = String::from_utf8_lossy(&o.stdout).trim().to_string();
        println!("client$ curl -6 --local-port {port} {url}   -> {body}");
        let (rs, peer) = body.split_once(' ').expect("nginx answers '<rs> <peer>'");
        assert_eq!(peer, format!("{CLIENT}:{port}"), "NAT keeps the client");
        served.push(rs.to_string());
    }
    assert!(
        served.contains(&"rs1".to_string()) && served.contains(&"rs2".to_string()),
        "{served:?}"
    );
}

/// TUNNEL over IPv6 (IPv6-in-IPv6), one-arm, UDP: rvs encapsulates the
/// client's datagram toward the real server (outer next header 41 from
/// rvs's LAN address), whose responder answers the client straight from
/// the VIP.
#[test]
fn tunnel6() {
    rvs_e2e::require_tools(&["ip", "nginx", "nft", "tcpdump", "python3"]);
    let mut t = OneArm::new(&RvsdOpts::default());
    v6::one_arm(&t);
    t.ok(
        "rvsip",
        &["addr", "add", "2001:db8:100::1/64", "dev", "dpdk0"],
    );
    t.ok(
        "rvsip",
        &["addr", "add", &format!("{VIP1}/128"), "dev", "dpdk0"],
    );
    let vs = format!("[{VIP1}]:53");
    t.ok("rvsadm", &["-A", "-u", &vs, "-s", "rr"]);
    for rs in RS1 {
        t.ok("rvsadm", &["-a", "-u", &vs, "-r", rs, "-i"]);
    }
    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    assert!(
        ln.lines()
            .any(|l| l.starts_with("  -> [2001:db8:100::2]:53         Tunnel  1 ")),
        "{ln}"
    );
    let r1 = v6::tun_responder(&mut t, "rs1", "rs1");
    let r2 = v6::tun_responder(&mut t, "rs2", "rs2");
    let cap = Capture::start(&mut t.lab, "rs1", "eth0", "ip6 proto 41");
    let mut served = Vec::new();
    for i in 0..4 {
        let msg = format!("hello-{i}");
        let line = t.udp_ask(VIP1, 53, &msg).unwrap_or_else(|e| {
            panic!(
                "no reply to {msg}: {e}\nrs1 responder:\n{}\nrs2 responder:\n{}\nrvsd log:\n{}",
                t.lab.proc(r1).log(),
                t.lab.proc(r2).log(),
                t.rvsd_log()
            )
        });
        println!("client$ udp [{VIP1}]:53 {msg}   -> {line}");
        let rest = line
            .strip_prefix(&format!("reply from {VIP1}:53: "))
            .unwrap_or_else(|| panic!("the reply must come from the VIP:port: {line}"));
        let w: Vec<&str> = rest.split(' ').collect();
        assert_eq!(w.len(), 3, "{line}");
        assert!(w[1].starts_with(&format!("{CLIENT1}:")), "{line}");
        assert_eq!(w[2], msg, "{line}");
        served.push(w[0].to_string());
    }
    let frames = cap.stop(&mut t.lab);
    for w in served.windows(2) {
        assert_ne!(w[0], w[1], "rr must alternate: {served:?}");
    }
    // On the wire to rs1: outer IPv6, next header 41, from rvs's LAN
    // address to the RIP; inside, the client's datagram to the VIP.
    assert!(!frames.is_empty(), "no IPv6-in-IPv6 frame reached rs1");
    let a6 = |b: &[u8]| -> std::net::Ipv6Addr { <[u8; 16]>::try_from(b).expect("16 bytes").into() };
    for f in &frames {
        let d = &f.data;
        assert_eq!((&d[12..14], d[20]), (&[0x86, 0xdd][..], 41), "{d:02x?}");
        assert_eq!(a6(&d[22..38]).to_string(), "2001:db8:100::1");
        assert_eq!(a6(&d[38..54]).to_string(), RS1[0]);
        let inner = &d[54..];
        assert_eq!((inner[0] >> 4, inner[6]), (6, 17), "inner IPv6 UDP");
        assert_eq!(a6(&inner[8..24]).to_string(), CLIENT1);
        assert_eq!(a6(&inner[24..40]).to_string(), VIP1);
    }

    // A 1440-byte datagram is a 1488-byte packet: 1528 once encapsulated,
    // over the 1500 of the LAN. rvs tells the client (ICMPv6 Packet Too
    // Big, MTU 1460, from the VIP) and the client's kernel learns the path
    // MTU; without it TUNNEL would silently lose every full-size packet.
    let send = format!(
        "import socket,time\ns=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n\
         s.sendto(b'x'*1440,('{VIP1}',53))\ntime.sleep(0.5)\n"
    );
    let out = t.lab.exec("client", &["python3", "-c", &send]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = t.lab.must_in("client", &["ip", "-6", "route", "get", VIP1]);
    println!("client$ ip -6 route get {VIP1}\n{r}");
    assert!(r.contains("mtu 1460"), "no path MTU learned from rvs:\n{r}");
    let m = t.ok("rvsip", &["-s", "link", "show"]);
    assert!(m.contains("too_big"), "{m}");
}

/// SNAT over IPv6, as the tutorial's SNAT section with IPv6 addresses: LAN
/// hosts (the real-server namespaces, default route via rvs's
/// `fd00:100::1`) reach an "Internet" nginx behind the WAN gateway (the
/// client namespace), which sees rvs's WAN address; a `-H` match service
/// with an IPv6 source range.
#[test]
fn snat6() {
    tools();
    let mut t = TwoArm::new(&RvsdOpts::default());
    v6::two_arm(&t);
    // The Internet side: the WAN host, also the gateway to 2001:db8:ffff::10.
    t.lab.addr6("client", "lo", "2001:db8:ffff::10/128");
    t.lab.nginx("client", "wan");
    for h in ["rs1", "rs2"] {
        t.lab.must_in(
            h,
            &["ip", "-6", "route", "add", "default", "via", "fd00:100::1"],
        );
    }
    let wan = "2001:db8::1";
    t.ok(
        "rvsip",
        &[
            "addr",
            "add",
            &format!("{wan}/64"),
            "dev",
            "dpdk1",
            "sapool",
        ],
    );
    t.ok("rvsip", &["addr", "add", "fd00:100::1/64", "dev", "dpdk0"]);
    t.ok(
        "rvsip",
        &[
            "route", "-6", "add", "default", "via", CLIENT, "dev", "dpdk1",
        ],
    );
    let m = "proto=tcp,src-range=fd00:100::1-fd00:100::ffff,oif=dpdk1";
    t.ok("rvsadm", &["-A", "-s", "rr", "-H", m]);
    t.ok(
        "rvsadm",
        &[
            "-a",
            "-H",
            m,
            "-r",
            &format!("[{wan}]:0"),
            "-w",
            "100",
            "-J",
        ],
    );
    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    for (h, src) in [("rs1", RS[0]), ("rs2", RS[1])] {
        let body = t
            .lab
            .curl6(h, "http://[2001:db8:ffff::10]/")
            .unwrap_or_else(|e| {
                panic!(
                    "curl -6 from {h} failed: {e}\n$ rvsip -s link show\n{}",
                    t.ok("rvsip", &["-s", "link", "show"])
                )
            });
        let body = body.trim().to_string();
        println!("{h} ({src})$ curl -6 http://[2001:db8:ffff::10]/   -> {body}");
        assert!(
            body.starts_with(&format!("wan {wan}:")),
            "the Internet host must see rvs's WAN address: {body}"
        );
    }
}

/// Sends one MLDv2 General Query (Maximum Response Delay 1 s) out of
/// `eth0` from `fe80::fe`, as a querier (a router) would: Router Alert,
/// hop limit 1, written here byte by byte apart from rvs's own builder.
const MLD_QUERY_PY: &str = r#"
import socket, struct
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src = socket.inet_pton(socket.AF_INET6, 'fe80::fe')
dst = socket.inet_pton(socket.AF_INET6, 'ff02::1')
msg = bytearray(struct.pack('!BBHHH', 130, 0, 0, 1000, 0) + bytes(16) + bytes([2, 125, 0, 0]))
struct.pack_into('!H', msg, 2, csum(src + dst + struct.pack('!I', len(msg)) + bytes([0, 0, 0, 58]) + bytes(msg)))
hbh = bytes([58, 0, 5, 2, 0, 0, 1, 0])
ip = struct.pack('!IHBB', 0x60000000, len(hbh) + len(msg), 0, 1) + src + dst
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
mac = s.getsockname()[4]
s.send(bytes([0x33, 0x33, 0, 0, 0, 1]) + mac + b'\x86\xdd' + ip + hbh + bytes(msg))
"#;

/// One MLDv2 Report tshark decoded: IPv6 source, hop limit, whether the
/// Router Alert option was there, checksum status, and its records as
/// (type, group).
#[derive(Debug)]
struct Mld {
    src: String,
    hlim: String,
    router_alert: bool,
    checksum: String,
    records: Vec<(String, String)>,
}

fn parse_reports(log: &str) -> Vec<Mld> {
    log.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 6 || f[0] != "143" {
                return None;
            }
            let types = f[5].split(',');
            let groups = f.get(6).copied().unwrap_or("").split(',');
            Some(Mld {
                src: f[1].to_string(),
                hlim: f[2].to_string(),
                router_alert: !f[3].is_empty(),
                checksum: f[4].to_string(),
                records: types
                    .zip(groups)
                    .map(|(t, g)| (t.to_string(), g.to_string()))
                    .collect(),
            })
        })
        .collect()
}

/// MLD (RFC 3810): a switch doing MLD snooping learns where rvs's IPv6
/// addresses are. tshark on the client's side of the WAN sees, right after
/// the VIP is added, MLDv2 Reports from rvs (source `::`: the port has no
/// link-local address) joining the VIP's solicited-node group (record type
/// 4, change to exclude), twice (robustness 2), with hop limit 1, the
/// Router Alert option and a good checksum, and never one for the
/// all-nodes group; a General Query sent from the client (Maximum Response
/// Delay 1 s; the test waits 5) is answered with the current state (record
/// type 2).
#[test]
fn mld_reports() {
    rvs_e2e::require_tools(&["ip", "tshark", "python3"]);
    let mut t = TwoArm::new(&RvsdOpts::default());
    v6::two_arm(&t);
    let args = [
        "tshark",
        "-l",
        "-n",
        "-i",
        "eth0",
        "-f",
        "ip6 proto 0",
        "-Y",
        "icmpv6",
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-e",
        "icmpv6.type",
        "-e",
        "ipv6.src",
        "-e",
        "ipv6.hlim",
        "-e",
        "ipv6.opt.router_alert",
        "-e",
        "icmpv6.checksum.status",
        "-e",
        "icmpv6.mldr.mar.record_type",
        "-e",
        "icmpv6.mldr.mar.multicast_address",
    ];
    let p = t.lab.spawn("client", "tshark-mld", &args, &[]);
    let log = t.lab.dir.join("tshark-mld.log");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let until = |what: &dyn Fn(&str) -> bool, secs: u64| {
        let end = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < end && !what(&read()) {
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    until(&|l| l.contains("Capture started"), 20);
    // dumpcap may still be setting its filter when tshark says so.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        read().contains("Capture started"),
        "tshark did not start:\n{}",
        read()
    );

    t.ok(
        "rvsip",
        &["addr", "add", &format!("{VIP}/128"), "dev", "dpdk1"],
    );
    let group = "ff02::1:ff00:100";
    let joins = |l: &str| {
        parse_reports(l)
            .iter()
            .filter(|r| r.records.contains(&("4".into(), group.into())))
            .count()
    };
    until(&|l| joins(l) >= 2, 10);
    let reports = parse_reports(&read());
    println!("client$ tshark (MLDv2 reports)\n{reports:#?}");
    assert!(
        joins(&read()) >= 2,
        "two joins of {group} expected:\n{}",
        read()
    );
    let ours: Vec<&Mld> = reports.iter().filter(|r| r.src == "::").collect();
    assert!(
        !ours.is_empty(),
        "no report from rvs (source ::):\n{}",
        read()
    );
    for r in &ours {
        assert_eq!(r.hlim, "1", "{r:?}");
        assert!(r.router_alert, "no Router Alert: {r:?}");
        // Wireshark's PROTO_CHECKSUM_E_GOOD.
        assert_eq!(r.checksum, "1", "tshark: checksum not good (1): {r:?}");
        assert!(
            r.records.iter().all(|(_, g)| g != "ff02::1"),
            "all-nodes is never reported: {r:?}"
        );
    }

    // A General Query from the client: answered with the current state.
    let q = t.lab.file("mld_query.py", MLD_QUERY_PY);
    let out = t.lab.exec("client", &["python3", &q.to_string_lossy()]);
    assert!(
        out.status.success(),
        "query: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let current = |l: &str| {
        parse_reports(l)
            .iter()
            .any(|r| r.src == "::" && r.records.contains(&("2".into(), group.into())))
    };
    until(&current, 5);
    let l = read();
    t.lab.proc(p).signal("INT");
    assert!(
        current(&l),
        "no answer (record type 2 for {group}) to the General Query:\n{l}\nrvsd log:\n{}",
        t.rvsd_log()
    );
}

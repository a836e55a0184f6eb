//! Issue 15 item 4: NAT64 (an IPv6 VIP with IPv4 real servers, as DPVS
//! has it) and NAT46 (an IPv4 VIP with IPv6 real servers, which DPVS does
//! not have) in FNAT, with real HTTP: curl over IPv6 to the IPv4 nginx on
//! the real servers, the PROXY protocol giving nginx the IPv6 client, and
//! curl over IPv4 to nginx listening on `[::]:80`, and a client learning
//! the path MTU of a NAT46 service from rvs. One two-arm lab with
//! both families (`rvs_e2e::v6`). Run on the backend RVS_E2E_BACKEND names
//! (CI runs both).

use rvs_e2e::rvsd::FnatService;
use rvs_e2e::topo::{RvsdOpts, TwoArm};
use rvs_e2e::v6::{self, CLIENT, LIP, RS, VIP};

/// The IPv4 client, VIP and local address of the tutorial's lab.
const CLIENT4: &str = "10.0.0.48";
const VIP4: &str = "10.0.0.100";
const LIP4: &str = "192.168.100.200";
const RS4: [&str; 2] = ["192.168.100.2", "192.168.100.3"];

/// `curl` (IPv4) from the client; the body.
fn curl4(t: &TwoArm, url: &str) -> String {
    let o = t
        .lab
        .exec("client", &["curl", "-sS", "--max-time", "5", url]);
    assert!(
        o.status.success(),
        "curl {url} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        t.diag()
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `curl -g -6` from the client; the body.
fn curl6(t: &TwoArm, url: &str) -> String {
    let body = t
        .lab
        .curl6("client", url)
        .unwrap_or_else(|e| panic!("curl -6 {url} failed: {e}\n{}", t.diag()));
    body.trim().to_string()
}

/// The service `vs` (rr) of protocol flag `proto` (`-t` or `-u`) with
/// FullNat dests `rss` and local address `lip` on dpdk0, with `options`.
/// The first dest's `rvsadm -a` stderr (its warning) is returned.
fn service(
    t: &TwoArm,
    proto: &str,
    vs: &str,
    rss: &[String],
    lip: &str,
    options: &[&str],
) -> String {
    let s = FnatService {
        proto,
        vs,
        lip,
        options,
        ..FnatService::tutorial()
    };
    t.fnat_service(&s, rss)
}

#[test]
fn nat64_and_nat46_carry_real_http() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "python3"]);
    let mut t = TwoArm::new(&RvsdOpts::default());
    v6::two_arm(&t);
    v6::fnat_routes(&t);
    t.ok(
        "rvsip",
        &["addr", "add", &format!("{VIP4}/32"), "dev", "dpdk1"],
    );
    t.ok("rvsip", &["route", "add", "10.0.0.0/16", "dev", "dpdk1"]);
    t.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );

    // (1) NAT64: the IPv6 VIP, the IPv4 nginx. Until the service has an
    // IPv4 local address, adding an IPv4 dest warns (and is accepted).
    let vs = format!("[{VIP}]:80");
    let rss: Vec<String> = RS4.iter().map(|r| format!("{r}:80")).collect();
    let warning = service(&t, "-t", &vs, &rss, LIP4, &[]);
    println!("$ rvsadm -a -t {vs} -r {} -b\n{warning}", rss[0]);
    assert!(
        warning.starts_with("warning: no IPv4 local address yet for") && warning.contains(&vs),
        "{warning:?}"
    );
    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    assert!(ln.contains("  -> 192.168.100.2:80"), "{ln}");
    // NAT/DR/TUNNEL still refuse a dest of the other family.
    let o = t.rvsadm(&["-a", "-t", &vs, "-r", "192.168.100.3:8080", "-m"]);
    assert!(!o.status.success(), "-m across families was accepted");
    let url = format!("http://[{VIP}]/");
    let mut served = Vec::new();
    for _ in 0..2 {
        let body = curl6(&t, &url);
        println!("client$ curl -g -6 {url}   -> {body}");
        let (rs, peer) = body.split_once(' ').expect("nginx answers '<rs> <peer>'");
        assert!(
            peer.starts_with(&format!("{LIP4}:")),
            "the IPv4 RS sees the IPv4 local address: {body}"
        );
        served.push(rs.to_string());
    }
    assert_ne!(served[0], served[1], "rr over both IPv4 RSs: {served:?}");

    // (2) NAT64 with the PROXY protocol: nginx gets the IPv6 client.
    for rs in ["rs1", "rs2"] {
        t.lab.nginx_proxy_protocol(rs, &format!("{rs}-v1"), 8081);
    }
    let vs = format!("[{VIP}]:8081");
    let rss: Vec<String> = RS4.iter().map(|r| format!("{r}:8081")).collect();
    service(&t, "-t", &vs, &rss, LIP4, &["--proxy-protocol", "v1"]);
    let url = format!("http://[{VIP}]:8081/");
    let body = curl6(&t, &url);
    println!("client$ curl -g -6 {url}   -> {body}");
    let w: Vec<&str> = body.split_whitespace().collect();
    assert!(
        w.len() == 4 && w[1].starts_with(&format!("{CLIENT}:")) && w[2] == "via",
        "nginx must see the IPv6 client through PROXY TCP6: {body}"
    );
    assert!(w[3].starts_with(&format!("{LIP4}:")), "{body}");

    // (3) NAT46: the IPv4 VIP, nginx on the RSs' `[::]:80` (ipv6only).
    let vs = format!("{VIP4}:80");
    let rss: Vec<String> = RS.iter().map(|r| format!("[{r}]:80")).collect();
    let warning = service(&t, "-t", &vs, &rss, LIP, &[]);
    assert!(warning.contains("no IPv6 local address yet"), "{warning:?}");
    let url = format!("http://{VIP4}/");
    let mut served = Vec::new();
    for _ in 0..2 {
        let body = curl4(&t, &url);
        println!("client ({CLIENT4})$ curl {url}   -> {body}");
        let (rs, peer) = body.split_once(' ').expect("nginx answers '<rs> <peer>'");
        assert!(
            peer.starts_with(&format!("{LIP}:")),
            "the IPv6 RS sees the IPv6 local address: {body}"
        );
        served.push(rs.to_string());
    }
    assert_ne!(served[0], served[1], "rr over both IPv6 RSs: {served:?}");
    let stats = t.ok("rvsip", &["-s", "link", "show"]);
    assert!(!stats.contains("xlate_"), "no translation drops:\n{stats}");

    // (4) PMTU: a 1500-byte IPv4 datagram with DF is 1520 bytes as IPv6,
    // over the LAN's 1500. rvs tells the client Fragmentation Needed with
    // 1480 and the client's kernel learns that path MTU.
    let vs = format!("{VIP4}:53");
    let rss: Vec<String> = RS.iter().map(|r| format!("[{r}]:53")).collect();
    service(&t, "-u", &vs, &rss, LIP, &[]);
    let send = format!(
        "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.IPPROTO_IP,10,2)\n\
         s.sendto(b'x'*1472,('{VIP4}',53))\ntime.sleep(0.5)\n"
    );
    let out = t.lab.exec("client", &["python3", "-c", &send]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = t.lab.must_in("client", &["ip", "route", "get", VIP4]);
    println!("client$ ip route get {VIP4}\n{r}");
    assert!(r.contains("mtu 1480"), "no path MTU learned from rvs:\n{r}");
}

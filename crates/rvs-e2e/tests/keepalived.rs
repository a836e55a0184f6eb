//! rvs-keepalived: two rvs nodes on one LAN segment (a bridge) with a
//! client, each with an address on its kni device and a `kni_host` route
//! for it, running the tutorial's keepalived.conf (the backup with `state
//! BACKUP` and `priority 80`). The master alone holds the VIP in rvsd and
//! answers ARP for it; when it dies (SIGKILL of rvs-keepalived and rvsd)
//! the backup holds it within 3 × advert_int + skew and the client's ARP
//! follows; a SIGTERM hands over at once (priority-0 advert), and the
//! master preempts back when it returns. And interop: one rvs node and a
//! stock keepalived (Debian's) on the same LAN, each master in turn.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rvs_e2e::rvsd::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;

const VIP: &str = "192.168.100.254";

fn tools() {
    rvs_e2e::require_tools(&["ip", "ping", "arping", "keepalived"]);
}

/// One rvs node: rvsd on `lan` (dpdk0) and its kni address.
struct Node {
    ns: &'static str,
    rvsd: Rvsd,
    /// The MAC of its port (and of `dpdk0.kni`).
    mac: String,
    conf: PathBuf,
    keepalived: Option<usize>,
}

/// The lab and its rvs nodes (n1 is `nodes[0]`).
struct Pair {
    lab: Lab,
    nodes: Vec<Node>,
}

fn tutorial_conf() -> String {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rvs-keepalived/testdata/tutorial-master.conf"
    );
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// The tutorial's file for the backup: only state and priority differ.
fn backup_conf() -> String {
    let t = tutorial_conf();
    let b = t
        .replace("state MASTER", "state BACKUP")
        .replace("priority 100", "priority 80");
    assert!(
        b.contains("state BACKUP") && b.contains("priority 80"),
        "{b}"
    );
    b
}

fn mac_of(lab: &Lab, ns: &str, dev: &str) -> String {
    let out = lab.must_in(ns, &["ip", "-o", "link", "show", dev]);
    let w: Vec<&str> = out.split_whitespace().collect();
    let i = w.iter().position(|x| *x == "link/ether").expect("mac");
    w[i + 1].to_string()
}

fn node(lab: &mut Lab, ns: &'static str, kni_addr: &str, conf: &str) -> Node {
    node_ll(lab, ns, kni_addr, None, conf)
}

/// A node whose kni device has the link-local address `ll` (if given) and
/// no other.
fn node_ll(lab: &mut Lab, ns: &'static str, kni_addr: &str, ll: Option<&str>, conf: &str) -> Node {
    let rvsd = Rvsd::start_in(
        lab,
        ns,
        &format!("{ns}-"),
        &[("dpdk0", "lan")],
        &RvsdOpts::default(),
    );
    if ll.is_some() {
        lab.must_in(
            ns,
            &["ip", "link", "set", "dpdk0.kni", "addrgenmode", "none"],
        );
    }
    lab.must_in(ns, &["ip", "link", "set", "dpdk0.kni", "up"]);
    if let Some(ll) = ll {
        lab.must_in(
            ns,
            &[
                "ip",
                "addr",
                "add",
                &format!("{ll}/64"),
                "dev",
                "dpdk0.kni",
                "nodad",
            ],
        );
    }
    lab.must_in(
        ns,
        &[
            "ip",
            "addr",
            "add",
            &format!("{kni_addr}/24"),
            "dev",
            "dpdk0.kni",
        ],
    );
    rvsd.ok(
        "rvsip",
        &[
            "route",
            "add",
            &format!("{kni_addr}/32"),
            "dev",
            "dpdk0",
            "scope",
            "kni_host",
        ],
    );
    let mac = mac_of(lab, ns, "lan");
    assert_eq!(
        mac,
        mac_of(lab, ns, "dpdk0.kni"),
        "the kni device has the port's MAC"
    );
    let conf = lab.file(&format!("{ns}-keepalived.conf"), conf);
    Node {
        ns,
        rvsd,
        mac,
        conf,
        keepalived: None,
    }
}

fn pair() -> Pair {
    pair_with(&tutorial_conf(), &backup_conf(), false)
}

/// Two nodes running `c1` and `c2`; with `v6`, the kni devices have the
/// link-local addresses fe80::11 and fe80::12 and the client 2001:db8::48.
fn pair_with(c1: &str, c2: &str, v6: bool) -> Pair {
    tools();
    let mut lab = Lab::new();
    for n in ["n1", "n2", "sw", "client"] {
        lab.add_ns(n);
    }
    lab.veth("n1", "lan", "sw", "p-n1");
    lab.veth("n2", "lan", "sw", "p-n2");
    lab.veth("client", "eth0", "sw", "p-c");
    lab.must_in("sw", &["ip", "link", "add", "br0", "type", "bridge"]);
    for p in ["p-n1", "p-n2", "p-c"] {
        lab.must_in("sw", &["ip", "link", "set", p, "master", "br0"]);
    }
    lab.must_in("sw", &["ip", "link", "set", "br0", "up"]);
    lab.must_in(
        "client",
        &["ip", "addr", "add", "192.168.100.48/24", "dev", "eth0"],
    );
    if v6 {
        lab.must_in(
            "client",
            &[
                "ip",
                "addr",
                "add",
                "2001:db8::48/64",
                "dev",
                "eth0",
                "nodad",
            ],
        );
    }
    let (l1, l2) = if v6 {
        (Some("fe80::11"), Some("fe80::12"))
    } else {
        (None, None)
    };
    let n1 = node_ll(&mut lab, "n1", "192.168.100.11", l1, c1);
    let n2 = node_ll(&mut lab, "n2", "192.168.100.12", l2, c2);
    Pair {
        lab,
        nodes: vec![n1, n2],
    }
}

impl Pair {
    fn node(&mut self, which: u8) -> &mut Node {
        &mut self.nodes[which as usize - 1]
    }

    /// Starts rvs-keepalived on node `which` with keepalived's options.
    fn start_keepalived(&mut self, which: u8) {
        let bin = rvs_e2e::bin("rvs-keepalived")
            .to_string_lossy()
            .into_owned();
        let dir = self.lab.dir.clone();
        let n = &self.nodes[which as usize - 1];
        let (ns, conf, sock) = (
            n.ns,
            n.conf.to_string_lossy().into_owned(),
            n.rvsd.socket.clone(),
        );
        let pid = dir
            .join(format!("{ns}-keepalived.pid"))
            .to_string_lossy()
            .into_owned();
        let i = self.lab.spawn(
            ns,
            &format!("{ns}-keepalived"),
            &[&bin, "-n", "-l", "-D", "-f", &conf, "-p", &pid],
            &[("RVS_SOCKET", &sock)],
        );
        self.node(which).keepalived = Some(i);
    }

    fn keepalived_log(&mut self, which: u8) -> String {
        let i = self.node(which).keepalived.expect("started");
        self.lab.proc(i).log()
    }

    fn logs(&mut self) -> String {
        let mut s = String::new();
        for w in 1..=self.nodes.len() as u8 {
            if self.node(w).keepalived.is_some() {
                s += &format!("--- n{w} rvs-keepalived:\n{}\n", self.keepalived_log(w));
            }
        }
        s
    }

    fn signal(&mut self, which: u8, sig: &str) {
        let i = self.node(which).keepalived.expect("started");
        self.lab.proc(i).signal(sig);
    }
}

/// Whether rvsd of `n` has the VIP (`rvsip addr show`); None if rvsd is gone.
fn has_vip(n: &Node) -> Option<bool> {
    let o = n.rvsd.rvsip(&["addr", "show"]);
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).contains(&format!("{VIP}/")))
}

fn wait_for(t: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < t {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The MACs that answer the client's ARP requests for the VIP.
fn arp_answers(lab: &Lab) -> Vec<String> {
    let o = lab.exec(
        "client",
        &["arping", "-c", "2", "-w", "2", "-I", "eth0", VIP],
    );
    let out = String::from_utf8_lossy(&o.stdout).to_lowercase();
    println!("client$ arping {VIP}\n{out}");
    // Habets' arping (Debian's `arping`): "58 bytes from MAC (IP): ...";
    // iputils' arping: "Unicast reply from IP [MAC] ...".
    let mut macs: Vec<String> = out
        .lines()
        .filter_map(|l| {
            if let Some(r) = l.split(" bytes from ").nth(1) {
                return r.split_whitespace().next().map(str::to_string);
            }
            let s = l.find("reply from").and_then(|_| l.find('['))?;
            let e = l.find(']')?;
            Some(l[s + 1..e].to_string())
        })
        .collect();
    macs.sort();
    macs.dedup();
    macs
}

/// The client's neighbour entry for the VIP.
fn client_neigh(lab: &Lab) -> String {
    let o = lab.exec("client", &["ip", "neigh", "show", VIP]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Starts the master, then the backup, and checks that only the master
/// holds the VIP and answers ARP for it.
fn master_and_backup() -> Pair {
    let mut p = pair();
    p.start_keepalived(1);
    // Priority 100: master after 3 s + (256 - 100)/256 s of silence.
    if wait_for(Duration::from_secs(6), || {
        has_vip(&p.nodes[0]) == Some(true)
    })
    .is_none()
    {
        panic!(
            "n1 did not take the VIP within 6 s\n{}\nrvsd:\n{}",
            p.logs(),
            p.nodes[0].rvsd.rvsd_log()
        );
    }
    p.start_keepalived(2);
    // Longer than the backup's Master_Down_Interval (3 + 176/256 s): it
    // stays backup only because it hears the master's adverts.
    std::thread::sleep(Duration::from_millis(4200));
    println!(
        "n1$ rvsip addr show\n{}",
        p.nodes[0].rvsd.ok("rvsip", &["addr", "show"])
    );
    println!(
        "n2$ rvsip addr show\n{}",
        p.nodes[1].rvsd.ok("rvsip", &["addr", "show"])
    );
    let logs = p.logs();
    assert_eq!(
        has_vip(&p.nodes[0]),
        Some(true),
        "the master holds the VIP\n{logs}"
    );
    assert_eq!(
        has_vip(&p.nodes[1]),
        Some(false),
        "the backup must not hold the VIP\n{logs}"
    );
    assert!(
        p.keepalived_log(2).contains("INIT -> BACKUP")
            && !p.keepalived_log(2).contains("-> MASTER"),
        "{logs}"
    );
    let macs = arp_answers(&p.lab);
    assert_eq!(
        macs,
        vec![p.nodes[0].mac.clone()],
        "only the master answers ARP for the VIP\n{logs}"
    );
    p
}

#[test]
fn crash_of_the_master_moves_the_vip_to_the_backup() {
    let mut p = master_and_backup();
    let o = p.lab.exec("client", &["ping", "-c", "1", "-W", "1", VIP]);
    assert!(o.status.success(), "ping {VIP} through the master");
    assert!(
        client_neigh(&p.lab).contains(&p.nodes[0].mac),
        "{}",
        client_neigh(&p.lab)
    );

    // SIGHUP with a file that does not parse: logged, the running
    // configuration stays; with the file unchanged: nothing moves.
    let conf = p.nodes[0].conf.clone();
    let good = std::fs::read_to_string(&conf).expect("conf");
    let bad = good.replace("virtual_router_id 123", "virtual_router_id 300");
    std::fs::write(&conf, bad).expect("write conf");
    p.signal(1, "HUP");
    let failed = wait_for(Duration::from_secs(2), || {
        p.keepalived_log(1)
            .contains("reload failed, keeping the running configuration")
    });
    assert!(failed.is_some(), "{}", p.logs());
    std::fs::write(&conf, &good).expect("write conf");
    p.signal(1, "HUP");
    let reloaded = wait_for(Duration::from_secs(2), || {
        p.keepalived_log(1).matches("SIGHUP: reloading").count() == 2
    });
    std::thread::sleep(Duration::from_millis(300));
    let log1 = p.keepalived_log(1);
    assert!(reloaded.is_some(), "{log1}");
    assert!(
        log1.contains("virtual_router_id: 300 is out of range"),
        "{log1}"
    );
    assert!(
        !log1.contains("removed or changed"),
        "an unchanged instance keeps running\n{log1}"
    );
    assert_eq!(log1.matches("-> MASTER").count(), 1, "{log1}");
    assert_eq!(has_vip(&p.nodes[0]), Some(true), "{log1}");

    // The master node dies: its rvs-keepalived and its rvsd.
    p.signal(1, "KILL");
    let rvsd1 = p.nodes[0].rvsd.index;
    p.lab.proc(rvsd1).signal("KILL");
    // 3 × advert_int + skew (176/256 s) for priority 80, plus 1 s of slack
    // (the kill lands anywhere within an advert interval).
    let limit = Duration::from_millis(3000 + 688 + 1000);
    let took = wait_for(limit, || has_vip(&p.nodes[1]) == Some(true));
    let logs = p.logs();
    let took =
        took.unwrap_or_else(|| panic!("the backup did not take the VIP within {limit:?}\n{logs}"));
    println!("backup holds the VIP {took:?} after the master was killed (polling every 20 ms)");
    assert!(p.keepalived_log(2).contains("BACKUP -> MASTER"), "{logs}");

    // Its gratuitous ARPs moved the client's entry without a new request.
    let n2mac = p.nodes[1].mac.clone();
    let moved = wait_for(Duration::from_secs(1), || {
        client_neigh(&p.lab).contains(&n2mac)
    });
    assert!(
        moved.is_some(),
        "gratuitous ARP from the new master: client entry is {}\n{logs}",
        client_neigh(&p.lab)
    );
    assert_eq!(
        arp_answers(&p.lab),
        vec![n2mac],
        "the client's ARP resolves to the backup\n{logs}"
    );
    let o = p.lab.exec("client", &["ping", "-c", "1", "-W", "1", VIP]);
    assert!(o.status.success(), "ping {VIP} through the new master");
}

#[test]
fn sigterm_hands_over_at_once_and_the_master_preempts_back() {
    let mut p = master_and_backup();
    // A graceful stop: the priority-0 advert makes the backup master after
    // its skew time (176/256 s), not after 3 advert intervals.
    p.signal(1, "TERM");
    let took = wait_for(Duration::from_millis(2500), || {
        has_vip(&p.nodes[1]) == Some(true)
    });
    let logs = p.logs();
    let took = took.unwrap_or_else(|| panic!("the backup did not take over after SIGTERM\n{logs}"));
    println!("backup holds the VIP {took:?} after SIGTERM of the master");
    assert!(
        took < Duration::from_millis(2000),
        "took {took:?}: no priority-0 advert?\n{logs}"
    );
    let i = p.nodes[0].keepalived.expect("started");
    assert_eq!(
        p.lab.proc(i).wait_exit(Duration::from_secs(3)),
        Some(0),
        "{logs}"
    );
    assert_eq!(
        has_vip(&p.nodes[0]),
        Some(false),
        "a stopped master removes its VIP\n{logs}"
    );

    // Back with priority 100: it preempts the backup (priority 80).
    p.start_keepalived(1);
    let back = wait_for(Duration::from_secs(6), || {
        has_vip(&p.nodes[0]) == Some(true) && has_vip(&p.nodes[1]) == Some(false)
    });
    let logs = p.logs();
    assert!(back.is_some(), "the master did not preempt back\n{logs}");
    assert!(p.keepalived_log(2).contains("MASTER -> BACKUP"), "{logs}");
    assert_eq!(arp_answers(&p.lab), vec![p.nodes[0].mac.clone()], "{logs}");
}

/// A stock keepalived's VRRP-only configuration for `eth0`, the tutorial's
/// instance with another state and priority.
fn stock_conf(state: &str, priority: u8) -> String {
    format!(
        "global_defs {{\n router_id STOCK\n}}\n\
         vrrp_instance VI_1 {{\n state {state}\n interface eth0\n virtual_router_id 123\n\
         priority {priority}\n advert_int 1\n authentication {{\n auth_type PASS\n auth_pass ****\n }}\n\
         virtual_ipaddress {{\n {VIP}\n }}\n}}\n"
    )
}

/// Starts Debian's keepalived (VRRP only, its own pid files) in `ka`.
fn start_stock(lab: &mut Lab, tag: &str, state: &str, priority: u8) -> usize {
    let conf = lab.file(&format!("stock-{tag}.conf"), &stock_conf(state, priority));
    let d = lab.dir.clone();
    let f = |n: &str| {
        d.join(format!("stock-{tag}-{n}.pid"))
            .to_string_lossy()
            .into_owned()
    };
    let (p, r, c) = (f("main"), f("vrrp"), f("checkers"));
    let conf = conf.to_string_lossy().into_owned();
    lab.spawn(
        "ka",
        &format!("stock-{tag}"),
        &[
            "keepalived",
            "-n",
            "-l",
            "-D",
            "--vrrp",
            "-f",
            &conf,
            "-p",
            &p,
            "-r",
            &r,
            "-c",
            &c,
        ],
        &[],
    )
}

/// Whether the stock keepalived put the VIP on its `eth0`.
fn stock_has_vip(lab: &Lab) -> bool {
    let o = lab.exec("ka", &["ip", "-o", "addr", "show", "dev", "eth0"]);
    String::from_utf8_lossy(&o.stdout).contains(&format!(" {VIP}/"))
}

#[test]
fn interop_with_stock_keepalived_both_ways() {
    tools();
    let mut lab = Lab::new();
    for n in ["n1", "ka", "sw"] {
        lab.add_ns(n);
    }
    lab.veth("n1", "lan", "sw", "p-n1");
    lab.veth("ka", "eth0", "sw", "p-ka");
    lab.must_in("sw", &["ip", "link", "add", "br0", "type", "bridge"]);
    for p in ["p-n1", "p-ka"] {
        lab.must_in("sw", &["ip", "link", "set", p, "master", "br0"]);
    }
    lab.must_in("sw", &["ip", "link", "set", "br0", "up"]);
    lab.must_in(
        "ka",
        &["ip", "addr", "add", "192.168.100.13/24", "dev", "eth0"],
    );
    let n1 = node(&mut lab, "n1", "192.168.100.11", &backup_conf());
    let mut p = Pair {
        lab,
        nodes: vec![n1],
    };

    // 1. Stock keepalived is master (priority 150); rvs-keepalived
    // (priority 80) accepts its adverts and stays backup.
    let stock = start_stock(&mut p.lab, "a", "MASTER", 150);
    let stock_log = |p: &mut Pair, i: usize| p.lab.proc(i).log();
    if wait_for(Duration::from_secs(6), || stock_has_vip(&p.lab)).is_none() {
        panic!(
            "stock keepalived did not become master\n{}",
            stock_log(&mut p, stock)
        );
    }
    p.start_keepalived(1);
    std::thread::sleep(Duration::from_millis(4200));
    let logs = format!("{}--- stock:\n{}", p.logs(), stock_log(&mut p, stock));
    assert_eq!(
        has_vip(&p.nodes[0]),
        Some(false),
        "rvs-keepalived must stay backup to a stock master of higher priority\n{logs}"
    );
    assert!(!p.keepalived_log(1).contains("-> MASTER"), "{logs}");

    // 2. Stock keepalived stops: its priority-0 advert makes us master at once.
    p.lab.proc(stock).signal("TERM");
    let took = wait_for(Duration::from_millis(2500), || {
        has_vip(&p.nodes[0]) == Some(true)
    });
    let logs = format!("{}--- stock:\n{}", p.logs(), stock_log(&mut p, stock));
    let took = took.unwrap_or_else(|| {
        panic!("rvs-keepalived did not take over from stock keepalived\n{logs}")
    });
    println!("rvs-keepalived holds the VIP {took:?} after SIGTERM of stock keepalived");
    assert!(took < Duration::from_millis(2000), "took {took:?}\n{logs}");
    assert_eq!(
        p.lab.proc(stock).wait_exit(Duration::from_secs(5)),
        Some(0),
        "{logs}"
    );

    // 3. Stock keepalived comes back as backup (priority 50): it accepts our
    // adverts and stays backup.
    let stock = start_stock(&mut p.lab, "b", "BACKUP", 50);
    std::thread::sleep(Duration::from_millis(4500));
    let logs = format!("{}--- stock:\n{}", p.logs(), stock_log(&mut p, stock));
    assert!(
        !stock_has_vip(&p.lab),
        "stock keepalived must stay backup to rvs-keepalived\n{logs}"
    );
    assert_eq!(has_vip(&p.nodes[0]), Some(true), "{logs}");

    // 4. We stop: our priority-0 advert makes it master at once.
    p.signal(1, "TERM");
    let took = wait_for(Duration::from_millis(2500), || stock_has_vip(&p.lab));
    let logs = format!("{}--- stock:\n{}", p.logs(), stock_log(&mut p, stock));
    let took = took.unwrap_or_else(|| {
        panic!("stock keepalived did not take over from rvs-keepalived\n{logs}")
    });
    println!("stock keepalived holds the VIP {took:?} after SIGTERM of rvs-keepalived");
    assert!(took < Duration::from_millis(2000), "took {took:?}\n{logs}");
    assert_eq!(has_vip(&p.nodes[0]), Some(false), "{logs}");
}

/// VRRPv3 over IPv6 between two rvs nodes: the instance of the tutorial
/// with an IPv6 VIP (the backup with state BACKUP and priority 80).
fn v6_conf(state: &str, priority: u8) -> String {
    format!(
        "global_defs {{\n router_id V6\n vrrp_version 3\n}}\n\
         vrrp_instance VI_6 {{\n state {state}\n interface dpdk0.kni\n dpdk_interface dpdk0\n\
         virtual_router_id 124\n priority {priority}\n advert_int 1\n\
         virtual_ipaddress {{\n 2001:db8::254\n }}\n}}\n"
    )
}

fn has_vip6(n: &Node) -> Option<bool> {
    let o = n.rvsd.rvsip(&["addr", "show"]);
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).contains("2001:db8::254/"))
}

#[test]
fn vrrp_v3_over_ipv6_moves_the_vip_on_a_crash() {
    let mut p = pair_with(&v6_conf("MASTER", 100), &v6_conf("BACKUP", 80), true);
    p.start_keepalived(1);
    if wait_for(Duration::from_secs(6), || {
        has_vip6(&p.nodes[0]) == Some(true)
    })
    .is_none()
    {
        panic!("n1 did not take the IPv6 VIP\n{}", p.logs());
    }
    p.start_keepalived(2);
    std::thread::sleep(Duration::from_millis(4200));
    let logs = p.logs();
    assert_eq!(
        has_vip6(&p.nodes[1]),
        Some(false),
        "the backup hears the master's IPv6 adverts\n{logs}"
    );
    assert_eq!(has_vip6(&p.nodes[0]), Some(true), "{logs}");
    let o = p.lab.exec(
        "client",
        &["ping", "-6", "-c", "1", "-W", "2", "2001:db8::254"],
    );
    assert!(
        o.status.success(),
        "ping the IPv6 VIP through the master\n{logs}"
    );

    p.signal(1, "KILL");
    let rvsd1 = p.nodes[0].rvsd.index;
    p.lab.proc(rvsd1).signal("KILL");
    let limit = Duration::from_millis(3000 + 688 + 1000);
    let took = wait_for(limit, || has_vip6(&p.nodes[1]) == Some(true));
    let logs = p.logs();
    let took = took
        .unwrap_or_else(|| panic!("the backup did not take the IPv6 VIP within {limit:?}\n{logs}"));
    println!("backup holds the IPv6 VIP {took:?} after the master was killed");
    // Its unsolicited neighbour advertisements moved the client's entry.
    let n2mac = p.nodes[1].mac.clone();
    let moved = wait_for(Duration::from_secs(1), || {
        let o = p
            .lab
            .exec("client", &["ip", "-6", "neigh", "show", "2001:db8::254"]);
        String::from_utf8_lossy(&o.stdout).contains(&n2mac)
    });
    assert!(
        moved.is_some(),
        "unsolicited NA from the new master\n{logs}"
    );
    let o = p.lab.exec(
        "client",
        &["ping", "-6", "-c", "1", "-W", "2", "2001:db8::254"],
    );
    assert!(
        o.status.success(),
        "ping the IPv6 VIP through the new master\n{logs}"
    );
}

/// The tutorial's file with unicast adverts from `src` to `peer`.
fn unicast(conf: &str, src: &str, peer: &str) -> String {
    let c = conf.replace(
        "advert_int 1\n",
        &format!("advert_int 1\nunicast_src_ip {src}\nunicast_peer {{\n{peer}\n}}\n"),
    );
    assert!(c.contains("unicast_peer"), "{c}");
    c
}

#[test]
fn unicast_adverts_keep_the_backup_and_hand_over_on_sigterm() {
    let (a, b) = ("192.168.100.11", "192.168.100.12");
    let mut p = pair_with(
        &unicast(&tutorial_conf(), a, b),
        &unicast(&backup_conf(), b, a),
        false,
    );
    p.start_keepalived(1);
    if wait_for(Duration::from_secs(6), || {
        has_vip(&p.nodes[0]) == Some(true)
    })
    .is_none()
    {
        panic!("n1 did not take the VIP\n{}", p.logs());
    }
    p.start_keepalived(2);
    std::thread::sleep(Duration::from_millis(4200));
    let logs = p.logs();
    assert_eq!(
        has_vip(&p.nodes[1]),
        Some(false),
        "the backup hears the unicast adverts\n{logs}"
    );
    assert_eq!(has_vip(&p.nodes[0]), Some(true), "{logs}");
    p.signal(1, "TERM");
    let took = wait_for(Duration::from_millis(2000), || {
        has_vip(&p.nodes[1]) == Some(true)
    });
    let logs = p.logs();
    assert!(
        took.is_some(),
        "unicast priority-0 advert: the backup takes over at once\n{logs}"
    );
    println!("backup holds the VIP {took:?} after SIGTERM (unicast)");
}

/// The master alone with the tutorial's real servers: n1, the client and
/// rs1/rs2 (192.168.100.2 and .3, nginx) on the LAN switch; rvsd routes the
/// LAN (`rvsip route add 192.168.100.0/24 dev dpdk0`, as in the tutorial).
/// Returns the lab and the nginx processes of rs1 and rs2.
fn master_with_real_servers(conf: &str) -> (Pair, [usize; 2]) {
    rvs_e2e::require_tools(&["ip", "curl", "nginx", "python3"]);
    tools();
    let mut lab = Lab::new();
    for n in ["n1", "sw", "client", "rs1", "rs2"] {
        lab.add_ns(n);
    }
    lab.veth("n1", "lan", "sw", "p-n1");
    lab.veth("client", "eth0", "sw", "p-c");
    lab.veth("rs1", "eth0", "sw", "p-rs1");
    lab.veth("rs2", "eth0", "sw", "p-rs2");
    lab.must_in("sw", &["ip", "link", "add", "br0", "type", "bridge"]);
    for p in ["p-n1", "p-c", "p-rs1", "p-rs2"] {
        lab.must_in("sw", &["ip", "link", "set", p, "master", "br0"]);
    }
    lab.must_in("sw", &["ip", "link", "set", "br0", "up"]);
    for (ns, a) in [
        ("client", "192.168.100.48"),
        ("rs1", "192.168.100.2"),
        ("rs2", "192.168.100.3"),
    ] {
        lab.must_in(
            ns,
            &["ip", "addr", "add", &format!("{a}/24"), "dev", "eth0"],
        );
    }
    let nginx = [lab.nginx("rs1", "rs1"), lab.nginx("rs2", "rs2")];
    let n1 = node(&mut lab, "n1", "192.168.100.11", conf);
    n1.rvsd.ok(
        "rvsip",
        &["route", "add", "192.168.100.0/24", "dev", "dpdk0"],
    );
    let mut p = Pair {
        lab,
        nodes: vec![n1],
    };
    p.start_keepalived(1);
    if wait_for(Duration::from_secs(6), || {
        has_vip(&p.nodes[0]) == Some(true)
    })
    .is_none()
    {
        panic!("n1 did not take the VIP within 6 s\n{}", p.logs());
    }
    (p, nginx)
}

/// `rvsadm -ln` of node 1.
fn ln(p: &Pair) -> String {
    p.nodes[0].rvsd.ok("rvsadm", &["-ln"])
}

/// The weight of real server `rs` in `rvsadm -ln`.
fn weight_of(ln: &str, rs: &str) -> Option<u32> {
    let l = ln.lines().find(|l| l.contains(&format!("-> {rs}:80 ")))?;
    l.split_whitespace().nth(3)?.parse().ok()
}

/// `n` requests to the VIP from the client: who answered each.
fn curl_vip(p: &Pair, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let body = p
                .lab
                .curl("client", &format!("http://{VIP}/"))
                .unwrap_or_else(|e| panic!("curl {i} through the VIP failed: {e}"));
            body.split_whitespace().next().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn the_tutorials_virtual_server_is_applied_and_serves() {
    let (mut p, _) = master_with_real_servers(&tutorial_conf());
    let applied = wait_for(Duration::from_secs(5), || {
        let l = ln(&p);
        weight_of(&l, "192.168.100.2") == Some(100) && weight_of(&l, "192.168.100.3") == Some(100)
    });
    let l = ln(&p);
    println!("n1$ rvsadm -ln\n{l}");
    assert!(applied.is_some(), "{l}\n{}", p.logs());
    let lines: Vec<&str> = l.lines().map(str::trim_end).collect();
    assert_eq!(lines[3], "TCP  192.168.100.254:80 rr", "{l}");
    assert!(
        lines[4].starts_with("  -> 192.168.100.2:80             FullNat 100 "),
        "{l}"
    );
    assert!(
        lines[5].starts_with("  -> 192.168.100.3:80             FullNat 100 "),
        "{l}"
    );
    let g = p.nodes[0].rvsd.ok("rvsadm", &["-G"]);
    println!("n1$ rvsadm -G\n{g}");
    let gl: Vec<Vec<&str>> = g.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(gl[1], ["192.168.100.254:80", "2"], "{g}");
    assert_eq!(gl[2][0], "192.168.100.200", "{g}");
    assert_eq!(gl[3][0], "192.168.100.201", "{g}");

    let served = curl_vip(&p, 6);
    println!("client$ curl http://{VIP}/ x6 -> {served:?}");
    assert!(
        served.iter().any(|s| s == "rs1") && served.iter().any(|s| s == "rs2"),
        "both real servers answer through the VIP: {served:?}"
    );
    let log = p.keepalived_log(1);
    assert!(
        log.contains("virtual servers: add service TCP 192.168.100.254:80"),
        "{log}"
    );

    // SIGTERM: as keepalived, the virtual servers are removed from rvsd.
    p.signal(1, "TERM");
    let i = p.nodes[0].keepalived.expect("started");
    assert_eq!(p.lab.proc(i).wait_exit(Duration::from_secs(5)), Some(0));
    let l = ln(&p);
    assert!(!l.contains("192.168.100.254:80"), "removed on exit:\n{l}");
}

#[test]
fn tcp_check_inhibits_a_dead_real_server_and_brings_it_back() {
    let (mut p, nginx) = master_with_real_servers(&tutorial_conf());
    let both = wait_for(Duration::from_secs(5), || {
        let l = ln(&p);
        weight_of(&l, "192.168.100.2") == Some(100) && weight_of(&l, "192.168.100.3") == Some(100)
    });
    assert!(both.is_some(), "{}\n{}", ln(&p), p.logs());
    // Both checkers have passed at least once (warmup: up to delay_loop).
    std::thread::sleep(Duration::from_secs(3));
    assert!(!p.keepalived_log(1).contains(": down"), "{}", p.logs());

    // nginx of rs1 dies: refused connections; the checker fails its first
    // attempt and nb_sock_retry (2) retries, delay_before_retry (1 s) apart.
    p.lab.proc(nginx[0]).signal("KILL");
    // delay_loop + retries × (connect_timeout + delay_before_retry) + slack.
    let limit = Duration::from_secs(3 + 2 * (3 + 1) + 2);
    let took = wait_for(limit, || weight_of(&ln(&p), "192.168.100.2") == Some(0));
    let l = ln(&p);
    println!("n1$ rvsadm -ln\n{l}");
    let took = took.unwrap_or_else(|| {
        panic!(
            "rs1 not inhibited within {limit:?}\n{l}\n{}",
            p.keepalived_log(1)
        )
    });
    println!("rs1 at weight 0 {took:?} after its nginx was killed");
    assert_eq!(weight_of(&l, "192.168.100.3"), Some(100), "{l}");
    let log = p.keepalived_log(1);
    assert!(
        log.contains("checker 0 of real server 192.168.100.2 port 80: down"),
        "{log}"
    );
    // One weight edit, nothing deleted.
    assert!(
        log.contains(
            "virtual servers: set real server 192.168.100.2:80 of TCP 192.168.100.254:80 to weight 0"
        ),
        "{log}"
    );
    assert!(!log.contains("delete"), "{log}");
    let served = curl_vip(&p, 4);
    println!("client$ curl http://{VIP}/ x4 -> {served:?}");
    assert!(served.iter().all(|s| s == "rs2"), "{served:?}");

    // nginx of rs1 is back: UP at its next attempt (delay_loop).
    p.lab.nginx("rs1", "rs1");
    let limit = Duration::from_secs(3 + 3 + 2);
    let took = wait_for(limit, || weight_of(&ln(&p), "192.168.100.2") == Some(100));
    let took = took.unwrap_or_else(|| {
        panic!(
            "rs1 not back within {limit:?}\n{}\n{}",
            ln(&p),
            p.keepalived_log(1)
        )
    });
    println!("rs1 at weight 100 {took:?} after its nginx came back");
    let served = curl_vip(&p, 6);
    println!("client$ curl http://{VIP}/ x6 -> {served:?}");
    assert!(
        served.iter().any(|s| s == "rs1") && served.iter().any(|s| s == "rs2"),
        "{served:?}"
    );
}

/// A client that keeps one connection to the VIP: a request, then, once
/// `go` exists, a second request on the same connection; prints both
/// answers' first lines.
const KEEP_CONN: &str = r#"
import os, socket, sys, time
go = sys.argv[1]
s = socket.create_connection(("192.168.100.254", 80), timeout=5)
def ask():
    s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"\n") and len(data) < 60:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print("answer:", data.split(b"\r\n\r\n", 1)[-1].decode().strip(), flush=True)
ask()
while not os.path.exists(go):
    time.sleep(0.05)
ask()
"#;

#[test]
fn sighup_with_the_same_file_changes_nothing_in_rvsd() {
    let (mut p, _) = master_with_real_servers(&tutorial_conf());
    let applied = wait_for(Duration::from_secs(5), || {
        weight_of(&ln(&p), "192.168.100.3") == Some(100)
    });
    assert!(applied.is_some(), "{}\n{}", ln(&p), p.logs());
    // The checkers have passed at least once (warmup: up to delay_loop).
    std::thread::sleep(Duration::from_secs(3));
    let script = p.lab.file("keep_conn.py", KEEP_CONN);
    let go = p.lab.dir.join("go");
    let (s, g) = (
        script.to_string_lossy().into_owned(),
        go.to_string_lossy().into_owned(),
    );
    let client = p
        .lab
        .spawn("client", "keep-conn", &["python3", "-u", &s, &g], &[]);
    let first = wait_for(Duration::from_secs(5), || {
        p.lab.proc(client).log().contains("answer:")
    });
    assert!(first.is_some(), "{}", p.lab.proc(client).log());
    let before = ln(&p);
    println!("n1$ rvsadm -ln (before)\n{before}");
    assert!(before.contains("ActiveConn"), "{before}");

    let log_before = p.keepalived_log(1);
    p.signal(1, "HUP");
    // The checkers restart with their health; leave them a round.
    let reloaded = wait_for(Duration::from_secs(2), || {
        p.keepalived_log(1).contains("SIGHUP: reloading")
    });
    assert!(reloaded.is_some(), "{}", p.logs());
    std::thread::sleep(Duration::from_secs(4));
    let after = ln(&p);
    println!("n1$ rvsadm -ln (after)\n{after}");
    assert_eq!(before, after, "rvsadm -ln changed across the reload");
    let log = p.keepalived_log(1);
    let since = &log[log_before.len()..];
    println!("rvs-keepalived after SIGHUP:\n{since}");
    assert!(
        !since.contains("virtual servers:"),
        "a reload of the same file sent requests to rvsd:\n{since}"
    );
    // The connection made before the reload still works.
    std::fs::write(&go, "").expect("go");
    let i = client;
    assert_eq!(
        p.lab.proc(i).wait_exit(Duration::from_secs(5)),
        Some(0),
        "{}",
        p.lab.proc(i).log()
    );
    let out = p.lab.proc(i).log();
    println!("client$ python3 keep_conn.py\n{out}");
    assert_eq!(out.matches("answer: rs").count(), 2, "{out}");
}

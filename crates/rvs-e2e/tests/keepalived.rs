//! rvs-keepalived: two rvs nodes on one LAN segment (a bridge) with a
//! client, each with an address on its kni device and a `kni_host` route
//! for it, running the tutorial's keepalived.conf (the backup with `state
//! BACKUP` and `priority 80`). The master alone holds the VIP in rvsd and
//! answers ARP for it; when it dies (SIGKILL of rvs-keepalived and rvsd)
//! the backup holds it within 3 × advert_int + skew and the client's ARP
//! follows; a SIGTERM hands over at once (priority-0 advert), and the
//! master preempts back when it returns. The local addresses of
//! `local_address_group` follow the master the same way (the backup keeps
//! them standby: configured, not answered for). And interop: one rvs node and a
//! stock keepalived (Debian's) on the same LAN, each master in turn.

mod ka_common;

use std::time::Duration;

use ka_common::*;
use rvs_e2e::Lab;

/// A local address of the tutorial's `local_address_group laddr_g1`.
const LIP: &str = "192.168.100.200";

/// The MACs that answer the client's ARP requests for the VIP.
fn arp_answers(lab: &Lab) -> Vec<String> {
    arp_answers_for(lab, VIP)
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
    // Both nodes have the local addresses (synced connections need their
    // pools), the backup's standby: only the master answers ARP for them.
    let has_lip = |n: &Node| n.rvsd.ok("rvsadm", &["-G"]).contains(LIP);
    let both = wait_for(Duration::from_secs(3), || {
        has_lip(&p.nodes[0]) && has_lip(&p.nodes[1])
    });
    assert!(both.is_some(), "local addresses applied on both\n{logs}");
    assert_eq!(
        arp_answers_for(&p.lab, LIP),
        vec![p.nodes[0].mac.clone()],
        "only the master answers ARP for its local address\n{logs}"
    );
    let g2 = p.nodes[1].rvsd.ok("rvsadm", &["-G"]);
    println!("n2$ rvsadm -G\n{g2}");
    assert!(
        g2.lines()
            .any(|l| l.contains(LIP) && l.ends_with("standby")),
        "{g2}"
    );
    p
}

/// A graceful hand-over (priority-0 advert): the backup takes over after its
/// skew time (0.61 s at priority 100 with advert_int 1), plus the time the
/// old master takes to stop and rvsd to add the VIP. A crash would take
/// 3 x advert_int + skew (3.6 s) from the last advert; the bound sits between,
/// with room for a loaded 2-core CI machine (2.0 s was seen there once when
/// stock keepalived was slow to stop).
const HANDOVER_MAX: Duration = Duration::from_millis(2600);
/// How long a hand-over check waits before calling it failed.
const HANDOVER_WAIT: Duration = Duration::from_millis(3000);

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
    assert_eq!(
        arp_answers_for(&p.lab, LIP),
        vec![p.nodes[1].mac.clone()],
        "the new master owns the local address\n{logs}"
    );
}

#[test]
fn sigterm_hands_over_at_once_and_the_master_preempts_back() {
    let mut p = master_and_backup();
    // A graceful stop: the priority-0 advert makes the backup master after
    // its skew time (176/256 s), not after 3 advert intervals.
    p.signal(1, "TERM");
    let took = wait_for(HANDOVER_WAIT, || has_vip(&p.nodes[1]) == Some(true));
    let logs = p.logs();
    let took = took.unwrap_or_else(|| panic!("the backup did not take over after SIGTERM\n{logs}"));
    println!("backup holds the VIP {took:?} after SIGTERM of the master");
    assert!(
        took < HANDOVER_MAX,
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
    let took = wait_for(HANDOVER_WAIT, || has_vip(&p.nodes[0]) == Some(true));
    let logs = format!("{}--- stock:\n{}", p.logs(), stock_log(&mut p, stock));
    let took = took.unwrap_or_else(|| {
        panic!("rvs-keepalived did not take over from stock keepalived\n{logs}")
    });
    println!("rvs-keepalived holds the VIP {took:?} after SIGTERM of stock keepalived");
    assert!(took < HANDOVER_MAX, "took {took:?}\n{logs}");
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
    let took = wait_for(HANDOVER_WAIT, || stock_has_vip(&p.lab));
    let logs = format!("{}--- stock:\n{}", p.logs(), stock_log(&mut p, stock));
    let took = took.unwrap_or_else(|| {
        panic!("stock keepalived did not take over from rvs-keepalived\n{logs}")
    });
    println!("stock keepalived holds the VIP {took:?} after SIGTERM of rvs-keepalived");
    assert!(took < HANDOVER_MAX, "took {took:?}\n{logs}");
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
    let took = wait_for(HANDOVER_WAIT, || has_vip(&p.nodes[1]) == Some(true));
    let logs = p.logs();
    assert!(
        took.is_some(),
        "unicast priority-0 advert: the backup takes over at once\n{logs}"
    );
    println!("backup holds the VIP {took:?} after SIGTERM (unicast)");
}

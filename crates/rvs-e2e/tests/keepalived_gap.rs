//! Failover gaps (issue 9, "Tested and measured" item 3): how long the VIP
//! stays silent to a client that pings it every 10 ms while the master of
//! an rvs pair is lost. Two rvs nodes on a bridge with a client (the lab of
//! `ka_common`), the tutorial's keepalived.conf (VRRPv2, `advert_int 1`)
//! and the same file with VRRPv3 and `advert_int 0.1`. Three events:
//!
//! 1. SIGTERM of the master's rvs-keepalived (graceful hand-over: its
//!    priority-0 advert makes the backup master after its skew time); the
//!    master is then started again and preempts back;
//! 2. node loss: SIGKILL of the master's rvs-keepalived and rvsd;
//! 3. link loss (on a second pair): the master's port on the bridge set
//!    down (the cable pulled).
//!
//! Link loss comes last on a pair of its own (the link is not restored).
//! [`the_master_back_from_link_loss_announces_the_vip`] restores it: the
//! old master, in FAULT while rvsd reported its port without carrier, is
//! master again and announces the VIP. Before rvs-keepalived tracked the
//! port's carrier, the master never left MASTER (the carrier does not
//! reach its kni device) and sent no gratuitous ARP unless it heard one of
//! the other side's adverts first; the client then kept sending to the old
//! backup.
//!
//! The prober is `ping -D -O -i 0.01` in the client: the VIP answers echo
//! through rvsd, and the client's neighbour entry for it moves only with
//! the new master's gratuitous ARP. The longest gap between two replies
//! and the number of probes lost are printed; the test asserts the bounds
//! of the issue with slack for a loaded CI machine:
//!
//! - `advert_int 1`: node and link loss within 3 × advert_int + skew
//!   (176/256 s for the backup's priority 80) + 1 s; SIGTERM within the
//!   skew + 1 s.
//! - VRRPv3 `advert_int 0.1`: node and link loss within the goal of 400 ms
//!   + 600 ms of slack (1 s); SIGTERM within 1 s.
//!
//! The figures of BENCHMARKS.md come from the same test run with
//! `RVS_GAP_RUNS=N` (N rounds per version; min / median / max printed);
//! the ignored test `stock_keepalived_reference_gap` measures Debian's
//! keepalived managing a kernel VIP in the same topology.

mod ka_common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ka_common::*;
use rvs_e2e::Lab;

/// Seconds since the epoch, as `ping -D` prints them.
fn wall() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// What the prober saw across one event.
#[derive(Clone, Copy, Debug)]
struct Gap {
    /// The longest time between two consecutive replies (ms).
    longest_ms: f64,
    /// Probes without a reply between the first and the last reply.
    lost: u32,
}

/// The replies in a `ping -D` log: (icmp_seq, time of the reply).
fn replies(log: &str) -> Vec<(u32, f64)> {
    log.lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| {
            let ts = l.strip_prefix('[')?.split(']').next()?.parse().ok()?;
            let seq = l.split("icmp_seq=").nth(1)?.split_whitespace().next()?;
            Some((seq.parse().ok()?, ts))
        })
        .collect()
}

fn gap_of(r: &[(u32, f64)]) -> Gap {
    let longest = r.windows(2).map(|w| w[1].1 - w[0].1).fold(0.0, f64::max);
    let mut seqs: Vec<u32> = r.iter().map(|x| x.0).collect();
    seqs.sort();
    seqs.dedup();
    let span = seqs.last().map_or(0, |l| l - seqs[0] + 1);
    Gap {
        longest_ms: longest * 1000.0,
        lost: span - seqs.len() as u32,
    }
}

/// A 10 ms ping to the VIP from the client, running.
struct Prober {
    index: usize,
}

impl Prober {
    /// Starts the ping; None if the VIP does not answer it within 3 s.
    fn start(lab: &mut Lab, tag: &str) -> Result<Prober, String> {
        let index = lab.spawn(
            "client",
            &format!("ping-{tag}"),
            &["stdbuf", "-oL", "ping", "-D", "-O", "-n", "-i", "0.01", VIP],
            &[],
        );
        let pr = Prober { index };
        match wait_for(Duration::from_secs(3), || pr.replies(lab).len() >= 20) {
            Some(_) => Ok(pr),
            None => Err(lab.proc(index).log()),
        }
    }

    fn replies(&self, lab: &mut Lab) -> Vec<(u32, f64)> {
        replies(&lab.proc(self.index).log())
    }

    /// Waits (up to `limit` after `event`) for 20 replies after the event,
    /// stops the ping and measures the gap; None if the VIP stayed silent.
    fn finish(self, lab: &mut Lab, event: f64, limit: Duration) -> Option<Gap> {
        let back = wait_for(limit + Duration::from_millis(300), || {
            self.replies(lab).iter().filter(|r| r.1 > event).count() >= 20
        });
        lab.proc(self.index).signal("INT");
        let _ = lab.proc(self.index).wait_exit(Duration::from_secs(2));
        back.map(|_| gap_of(&self.replies(lab)))
    }
}

/// A case of the measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Case {
    Sigterm,
    NodeLoss,
    LinkLoss,
}

const CASES: [Case; 3] = [Case::Sigterm, Case::NodeLoss, Case::LinkLoss];

/// A master/backup pair under test: n1 master, n2 backup.
trait Stand {
    fn lab(&mut self) -> &mut Lab;
    /// Starts the VRRP daemon of node `which` (1 or 2).
    fn start(&mut self, which: u8);
    /// Whether node `which` holds the VIP.
    fn holds(&mut self, which: u8) -> bool;
    /// Makes `case` happen to n1.
    fn event(&mut self, case: Case);
    /// How many times n2 became master.
    fn n2_takeovers(&mut self) -> usize;
    /// The log of node `which`'s VRRP daemon.
    fn log(&mut self, which: u8) -> String;
    /// The daemons' logs.
    fn logs(&mut self) -> String;
    /// What n2 logged of its takeover, in ms after `event`.
    fn timeline(&mut self, _event: f64) -> String {
        String::new()
    }
}

fn pull_cable(lab: &Lab, port: &str) {
    lab.must_in("sw", &["ip", "link", "set", port, "down"]);
}

impl Stand for Pair {
    fn lab(&mut self) -> &mut Lab {
        &mut self.lab
    }
    fn start(&mut self, which: u8) {
        self.start_keepalived(which);
    }
    fn holds(&mut self, which: u8) -> bool {
        has_vip(&self.nodes[which as usize - 1]) == Some(true)
    }
    fn event(&mut self, case: Case) {
        match case {
            Case::Sigterm => self.signal(1, "TERM"),
            Case::LinkLoss => pull_cable(&self.lab, "p-n1"),
            Case::NodeLoss => {
                self.signal(1, "KILL");
                let rvsd1 = self.nodes[0].rvsd.index;
                self.lab.proc(rvsd1).signal("KILL");
            }
        }
    }
    fn n2_takeovers(&mut self) -> usize {
        self.keepalived_log(2).matches("BACKUP -> MASTER").count()
    }
    fn log(&mut self, which: u8) -> String {
        self.keepalived_log(which)
    }
    fn logs(&mut self) -> String {
        Pair::logs(self)
    }
    fn timeline(&mut self, event: f64) -> String {
        let log = self.keepalived_log(2);
        let marks = [
            ("-> MASTER", "master"),
            ("added ", "VIP added"),
            ("announcements", "GARP sent"),
        ];
        let day = event.rem_euclid(86400.0);
        let mut out = Vec::new();
        for (key, name) in marks {
            // The first such line at or after the event.
            let t = log
                .lines()
                .filter(|l| l.contains(key))
                .filter_map(|l| log_time(l.split_whitespace().next()?))
                .find(|t| *t >= day - 0.001);
            if let Some(t) = t {
                out.push(format!("{name} +{:.0} ms", (t - day) * 1000.0));
            }
        }
        out.join(", ")
    }
}

/// Seconds of the day of a log time stamp "HH:MM:SS.mmm" (UTC).
fn log_time(s: &str) -> Option<f64> {
    let mut it = s.split(':');
    let (h, m, sec): (f64, f64, f64) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    Some(h * 3600.0 + m * 60.0 + sec)
}

/// One configuration measured: its files and its bounds.
struct Version {
    name: &'static str,
    master: String,
    backup: String,
    /// Bound for node and link loss.
    loss: Duration,
    /// Bound for SIGTERM.
    sigterm: Duration,
}

fn v2() -> Version {
    Version {
        name: "VRRPv2 advert_int 1",
        master: tutorial_conf(),
        backup: backup_conf(),
        loss: Duration::from_millis(3000 + 688 + 1000),
        sigterm: Duration::from_millis(688 + 1000),
    }
}

/// The tutorial's file with VRRPv3 and adverts every 100 ms.
fn v3_fast(conf: &str) -> String {
    let c = conf
        .replace(
            "router_id DPVS_DEVEL\n",
            "router_id DPVS_DEVEL\nvrrp_version 3\n",
        )
        .replace("advert_int 1\n", "advert_int 0.1\n");
    assert!(
        c.contains("vrrp_version 3") && c.contains("advert_int 0.1"),
        "{c}"
    );
    c
}

fn v3() -> Version {
    Version {
        name: "VRRPv3 advert_int 0.1",
        master: v3_fast(&tutorial_conf()),
        backup: v3_fast(&backup_conf()),
        loss: Duration::from_millis(400 + 600),
        sigterm: Duration::from_millis(1000),
    }
}

/// Waits until n1 alone holds the VIP (after a start or a preemption).
fn n1_master(s: &mut dyn Stand, what: &str) {
    let ok = wait_for(Duration::from_secs(6), || s.holds(1) && !s.holds(2));
    assert!(
        ok.is_some(),
        "n1 is not the only master {what}\n{}",
        s.logs()
    );
}

/// Starts n1, waits for it to be master, then starts n2.
fn start_pair(s: &mut dyn Stand, n2_backup_log: &str) {
    s.start(1);
    let up = wait_for(Duration::from_secs(6), || s.holds(1));
    assert!(up.is_some(), "n1 did not take the VIP\n{}", s.logs());
    s.start(2);
    let backup = wait_for(Duration::from_secs(3), || s.log(2).contains(n2_backup_log));
    assert!(backup.is_some(), "n2 is not backup\n{}", s.logs());
    // A few adverts heard: n2 stays backup.
    std::thread::sleep(Duration::from_millis(300));
    n1_master(s, "with n2 started");
}

/// Measures one event (n1 master, n2 backup): the prober runs across it.
fn measure(s: &mut dyn Stand, v: &Version, case: Case) -> Gap {
    let tag = format!("{case:?}");
    let takeovers = s.n2_takeovers();
    let pr = Prober::start(s.lab(), &tag).unwrap_or_else(|ping| {
        panic!(
            "the VIP does not answer the client's ping before {tag}\n{ping}\n{}",
            s.logs()
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    // n2 must not have become master before the event: the gap would not
    // be the failover's.
    assert_eq!(
        s.n2_takeovers(),
        takeovers,
        "{}, {case:?}: n2 became master before the event\n{}",
        v.name,
        s.logs()
    );
    let event = wall();
    s.event(case);
    let limit = if case == Case::Sigterm {
        v.sigterm
    } else {
        v.loss
    };
    let gap = pr.finish(s.lab(), event, limit);
    let logs = s.logs();
    let gap = gap.unwrap_or_else(|| {
        panic!(
            "{}, {case:?}: the VIP did not answer again within {limit:?}\n{logs}",
            v.name
        )
    });
    println!(
        "GAP {} {case:?}: longest gap {:.0} ms, {} probes lost (bound {limit:?}); n2: {}",
        v.name,
        gap.longest_ms,
        gap.lost,
        s.timeline(event)
    );
    assert!(
        gap.longest_ms <= limit.as_millis() as f64,
        "{}, {case:?}: gap {:.0} ms over {limit:?}\n{logs}",
        v.name,
        gap.longest_ms
    );
    assert!(s.holds(2), "n2 holds the VIP\n{logs}");
    assert_eq!(
        s.n2_takeovers(),
        takeovers + 1,
        "one takeover by n2\n{logs}"
    );
    gap
}

/// One round: a pair through SIGTERM, restart and node loss, and a second
/// pair through link loss; the gaps in the order of [`CASES`].
fn round(v: &Version, mut stand: impl FnMut() -> Box<dyn Stand>, backup_log: &str) -> [Gap; 3] {
    let mut s = stand();
    start_pair(s.as_mut(), backup_log);
    let term = measure(s.as_mut(), v, Case::Sigterm);
    s.start(1);
    n1_master(s.as_mut(), "after its restart");
    let node = measure(s.as_mut(), v, Case::NodeLoss);
    drop(s);
    let mut s = stand();
    start_pair(s.as_mut(), backup_log);
    let link = measure(s.as_mut(), v, Case::LinkLoss);
    [term, node, link]
}

/// `RVS_GAP_RUNS` (default 1): rounds measured per version.
fn runs() -> usize {
    std::env::var("RVS_GAP_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn report(v: &Version, all: &[[Gap; 3]]) {
    for (i, case) in CASES.iter().enumerate() {
        let mut ms: Vec<f64> = all.iter().map(|g| g[i].longest_ms).collect();
        let mut lost: Vec<u32> = all.iter().map(|g| g[i].lost).collect();
        ms.sort_by(f64::total_cmp);
        lost.sort();
        let n = ms.len();
        println!(
            "SUMMARY {} {case:?} ({n} runs): gap min {:.0} / median {:.0} / max {:.0} ms; \
             lost min {} / median {} / max {}",
            v.name,
            ms[0],
            ms[n / 2],
            ms[n - 1],
            lost[0],
            lost[n / 2],
            lost[n - 1]
        );
    }
}

fn run_rvs(v: Version) {
    let stand = || -> Box<dyn Stand> { Box::new(pair_with(&v.master, &v.backup, false)) };
    let all: Vec<[Gap; 3]> = (0..runs())
        .map(|_| round(&v, stand, "INIT -> BACKUP"))
        .collect();
    report(&v, &all);
}

#[test]
fn failover_gap_with_advert_int_1() {
    run_rvs(v2());
}

#[test]
fn failover_gap_with_vrrp_v3_advert_int_0_1() {
    run_rvs(v3());
}
/// Debian's keepalived (VRRP only) managing a kernel VIP on `eth0` of n1
/// and n2, on the same bridge with the same client.
struct Stock {
    lab: Lab,
    ka: [Option<usize>; 2],
    starts: usize,
    v3: bool,
}

impl Stock {
    fn new(v3: bool) -> Stock {
        tools();
        let mut lab = Lab::new();
        for n in ["n1", "n2", "sw", "client"] {
            lab.add_ns(n);
        }
        lab.must_in("sw", &["ip", "link", "add", "br0", "type", "bridge"]);
        for (n, port, addr) in [
            ("n1", "p-n1", "192.168.100.11/24"),
            ("n2", "p-n2", "192.168.100.12/24"),
            ("client", "p-c", "192.168.100.48/24"),
        ] {
            lab.veth(n, "eth0", "sw", port);
            lab.must_in("sw", &["ip", "link", "set", port, "master", "br0"]);
            lab.must_in(n, &["ip", "addr", "add", addr, "dev", "eth0"]);
        }
        lab.must_in("sw", &["ip", "link", "set", "br0", "up"]);
        Stock {
            lab,
            ka: [None, None],
            starts: 0,
            v3,
        }
    }

    fn conf(&self, which: u8) -> String {
        let (state, prio) = if which == 1 {
            ("MASTER", 100)
        } else {
            ("BACKUP", 80)
        };
        let (version, advert, auth) = if self.v3 {
            ("vrrp_version 3\n", "0.1", "")
        } else {
            (
                "",
                "1",
                "authentication {\n auth_type PASS\n auth_pass ****\n }\n",
            )
        };
        format!(
            "global_defs {{\n router_id STOCK{which}\n {version}}}\n\
             vrrp_instance VI_1 {{\n state {state}\n interface eth0\n virtual_router_id 123\n\
             priority {prio}\n advert_int {advert}\n {auth}\
             virtual_ipaddress {{\n {VIP}/32\n }}\n}}\n"
        )
    }

    fn signal(&mut self, which: u8, sig: &str) {
        let i = self.ka[which as usize - 1].expect("started");
        self.lab.proc(i).signal(sig);
    }
}

impl Stand for Stock {
    fn lab(&mut self) -> &mut Lab {
        &mut self.lab
    }
    fn start(&mut self, which: u8) {
        self.starts += 1;
        let tag = format!("stock-n{which}-{}", self.starts);
        let conf = self.lab.file(&format!("{tag}.conf"), &self.conf(which));
        let conf = conf.to_string_lossy().into_owned();
        let d = self.lab.dir.clone();
        let f = |n: &str| {
            d.join(format!("{tag}-{n}.pid"))
                .to_string_lossy()
                .into_owned()
        };
        let (p, r, c) = (f("main"), f("vrrp"), f("checkers"));
        let args = [
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
        ];
        let i = self.lab.spawn(&format!("n{which}"), &tag, &args, &[]);
        self.ka[which as usize - 1] = Some(i);
    }
    fn holds(&mut self, which: u8) -> bool {
        let o = self.lab.exec(
            &format!("n{which}"),
            &["ip", "-o", "addr", "show", "dev", "eth0"],
        );
        String::from_utf8_lossy(&o.stdout).contains(&format!(" {VIP}/"))
    }
    fn event(&mut self, case: Case) {
        match case {
            Case::Sigterm => self.signal(1, "TERM"),
            Case::LinkLoss => pull_cable(&self.lab, "p-n1"),
            Case::NodeLoss => {
                // The node dies: its NIC first (a dead node sends nothing,
                // and the kernel would go on answering for the VIP), then
                // keepalived. Killed first, its VRRP child still sent a
                // priority-0 advert: the gap was a SIGTERM's (723 ms with
                // advert_int 1).
                self.lab
                    .must_in("n1", &["ip", "link", "set", "eth0", "down"]);
                self.signal(1, "KILL");
            }
        }
    }
    fn n2_takeovers(&mut self) -> usize {
        self.log(2).matches("Entering MASTER STATE").count()
    }
    fn log(&mut self, which: u8) -> String {
        let i = self.ka[which as usize - 1].expect("started");
        self.lab.proc(i).log()
    }
    fn logs(&mut self) -> String {
        let mut s = String::new();
        for (w, i) in self.ka.into_iter().enumerate() {
            if let Some(i) = i {
                s += &format!("--- n{} keepalived:\n{}\n", w + 1, self.lab.proc(i).log());
            }
        }
        s
    }
}

/// The reference row: Debian's keepalived in the same topology, run with
/// `--ignored` (and `RVS_GAP_RUNS`) for BENCHMARKS.md.
#[test]
#[ignore = "a measurement of Debian's keepalived, the reference row of BENCHMARKS.md"]
fn stock_keepalived_reference_gap() {
    for (v, v3) in [(v2(), false), (v3(), true)] {
        let v = Version {
            name: if v3 {
                "stock keepalived VRRPv3 advert_int 0.1"
            } else {
                "stock keepalived VRRPv2 advert_int 1"
            },
            ..v
        };
        let stand = || -> Box<dyn Stand> { Box::new(Stock::new(v3)) };
        let all: Vec<[Gap; 3]> = (0..runs())
            .map(|_| round(&v, stand, "Entering BACKUP STATE"))
            .collect();
        report(&v, &all);
    }
}

#[test]
fn the_gap_parser_reads_ping_output() {
    let log = "PING 1.2.3.4 (1.2.3.4) 56(84) bytes of data.\n\
        [100.000] 64 bytes from 1.2.3.4: icmp_seq=1 ttl=64 time=0.1 ms\n\
        [100.010] 64 bytes from 1.2.3.4: icmp_seq=2 ttl=64 time=0.1 ms\n\
        [100.030] no answer yet for icmp_seq=3\n\
        [100.350] 64 bytes from 1.2.3.4: icmp_seq=35 ttl=64 time=0.1 ms\n\
        [100.360] 64 bytes from 1.2.3.4: icmp_seq=36 ttl=64 time=0.1 ms\n";
    let g = gap_of(&replies(log));
    assert!((g.longest_ms - 340.0).abs() < 0.01, "{g:?}");
    assert_eq!(g.lost, 32);
}

/// The MACs that answer the client's ARP requests for the VIP.
fn arp_answers(lab: &Lab) -> Vec<String> {
    arp_answers_for(lab, VIP)
}

/// The client's neighbour entry for the VIP.
fn client_neigh(lab: &Lab) -> String {
    let o = lab.exec("client", &["ip", "neigh", "show", VIP]);
    String::from_utf8_lossy(&o.stdout).to_lowercase()
}

/// Link loss and return, as keepalived on a kernel interface handles it:
/// the master's cable pulled, the backup takes over, the old master goes
/// to FAULT (rvsd reports its port without carrier); the cable back, the
/// old master (priority 100, preempting) is master again and announces
/// the VIP, so the client's neighbour entry moves to it without the client
/// asking, its ARP requests are answered by it alone, and ping works.
///
/// Before rvs-keepalived tracked the port's carrier, the master never left
/// MASTER (its kni device stays up) and, not hearing the backup's advert
/// first, sent no gratuitous ARP: the client kept the backup's MAC.
#[test]
fn the_master_back_from_link_loss_announces_the_vip() {
    let mut p = pair();
    start_pair(&mut p, "INIT -> BACKUP");
    let n1mac = p.nodes[0].mac.to_lowercase();
    let n2mac = p.nodes[1].mac.to_lowercase();
    // The client has the VIP on n1's MAC.
    let ping = p.lab.exec("client", &["ping", "-c", "2", "-W", "1", VIP]);
    assert!(ping.status.success(), "no ping to the VIP\n{}", p.logs());
    assert!(
        client_neigh(&p.lab).contains(&n1mac),
        "{}",
        client_neigh(&p.lab)
    );

    pull_cable(&p.lab, "p-n1");
    let over = wait_for(Duration::from_secs(6), || Stand::holds(&mut p, 2));
    assert!(over.is_some(), "n2 did not take over\n{}", p.logs());
    let ping = p.lab.exec("client", &["ping", "-c", "2", "-W", "1", VIP]);
    assert!(
        ping.status.success(),
        "no ping to the VIP on n2\n{}",
        p.logs()
    );
    assert!(
        client_neigh(&p.lab).contains(&n2mac),
        "{}",
        client_neigh(&p.lab)
    );

    p.lab.must_in("sw", &["ip", "link", "set", "p-n1", "up"]);
    n1_master(&mut p, "after its link came back");
    // Announced: the entry moves without the client sending a request.
    let moved = wait_for(Duration::from_secs(3), || {
        client_neigh(&p.lab).contains(&n1mac)
    });
    assert!(
        moved.is_some(),
        "n1 is master again but the client still sends to {}: {}\n{}",
        n2mac,
        client_neigh(&p.lab),
        p.logs()
    );
    assert_eq!(arp_answers(&p.lab), vec![n1mac.clone()], "{}", p.logs());
    let ping = p.lab.exec("client", &["ping", "-c", "3", "-W", "1", VIP]);
    assert!(
        ping.status.success(),
        "no ping to the VIP after n1's return\n{}",
        p.logs()
    );
    let log = p.keepalived_log(1);
    assert!(
        log.contains("MASTER -> FAULT"),
        "n1 did not go to FAULT on link loss\n{log}"
    );
    assert!(
        log.contains("FAULT -> BACKUP") || log.contains("FAULT -> MASTER"),
        "n1 did not leave FAULT\n{log}"
    );
}

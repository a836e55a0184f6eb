//! Output shapes of the DPVS tutorial and ipvsadm, written out by hand, and
//! the `-S` / `-R` round trip.

use std::net::IpAddr;

use rvs_api::{
    ConnInfo, ConnOrigin, DestInfo, DestSpec, Forward, LaddrGroup, LaddrInfo, Proto, Rates,
    Request, ServiceInfo, ServiceKey, ServiceSpec, Stats, StatusInfo,
};

use super::{
    format_conn_lines, format_conns, format_laddrs, format_list, format_save, large_num,
    parse_restore, ListOpts, ListView,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(vip: &str, port: u16) -> ServiceKey {
    ServiceKey::Vs {
        proto: Proto::Tcp,
        vip: ip(vip),
        port,
    }
}

fn dinfo(addr: &str, port: u16, weight: u32, forward: Forward) -> DestInfo {
    DestInfo {
        spec: DestSpec {
            addr: ip(addr),
            port,
            weight,
            forward,
            u_threshold: 0,
            l_threshold: 0,
        },
        active: 0,
        inactive: 0,
        stats: Stats::default(),
        rates: Rates::default(),
    }
}

fn sinfo(
    key: ServiceKey,
    sched: &str,
    persistence: Option<u32>,
    dests: Vec<DestInfo>,
) -> ServiceInfo {
    ServiceInfo {
        spec: ServiceSpec {
            key,
            sched: sched.into(),
            persistence,
            sched_flags: Vec::new(),
            synproxy: None,
            proxy_protocol: None,
        },
        dests,
        stats: Stats::default(),
        rates: Rates::default(),
    }
}

fn status() -> StatusInfo {
    StatusInfo {
        version: "0.1.0".into(),
        uptime_s: 5,
        workers: 2,
        conn_capacity: 1024,
        conns: 0,
        generation: 1,
    }
}

fn opts(view: ListView) -> ListOpts {
    ListOpts {
        key: None,
        view,
        exact: false,
        sort: true,
    }
}

fn sp(n: usize) -> String {
    " ".repeat(n)
}

#[test]
fn list_matches_the_tutorial_fnat_table() {
    // Added .3 before .2: ipvsadm sorts the servers by address.
    let svc = sinfo(
        tcp("10.0.0.100", 80),
        "rr",
        None,
        vec![
            dinfo("192.168.100.3", 80, 1, Forward::Fnat),
            dinfo("192.168.100.2", 80, 1, Forward::Fnat),
        ],
    );
    let got = format_list(Some(&status()), &[svc], &opts(ListView::Table));
    let want = [
        "IP Virtual Server version 0.1.0 (size=2048)".to_string(),
        "Prot LocalAddress:Port Scheduler Flags".to_string(),
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn".to_string(),
        "TCP  10.0.0.100:80 rr".to_string(),
        format!(
            "  -> 192.168.100.2:80{}FullNat 1{}0{}0{}",
            sp(13),
            sp(6),
            sp(10),
            sp(9)
        ),
        format!(
            "  -> 192.168.100.3:80{}FullNat 1{}0{}0{}",
            sp(13),
            sp(6),
            sp(10),
            sp(9)
        ),
    ]
    .map(|l| l + "\n")
    .concat();
    assert_eq!(got, want);
}

#[test]
fn list_shows_weights_counts_persistence_and_matches() {
    let mut d = dinfo("192.168.100.2", 80, 100, Forward::Dr);
    d.active = 12;
    d.inactive = 3;
    let dr = sinfo(tcp("192.168.100.254", 80), "wlc", Some(300), vec![d]);
    let snat = sinfo(
        ServiceKey::Match("proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1".into()),
        "rr",
        None,
        vec![dinfo("123.1.2.3", 0, 100, Forward::Snat)],
    );
    let v6 = sinfo(
        ServiceKey::Vs {
            proto: Proto::Udp,
            vip: ip("2001:db8::1"),
            port: 53,
        },
        "wrr",
        None,
        vec![dinfo("2001:db8::2", 53, 1, Forward::Nat)],
    );
    // Daemon order is MATCH, UDP, TCP; ipvsadm order is TCP, UDP, then MATCH.
    let got = format_list(None, &[snat, v6, dr], &opts(ListView::Table));
    let want = [
        "Prot LocalAddress:Port Scheduler Flags".to_string(),
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn".to_string(),
        "TCP  192.168.100.254:80 wlc persistent 300".to_string(),
        format!(
            "  -> 192.168.100.2:80{}Route   100{}12{}3{}",
            sp(13),
            sp(4),
            sp(9),
            sp(9)
        ),
        "UDP  [2001:db8::1]:53 wrr".to_string(),
        format!(
            "  -> [2001:db8::2]:53{}Masq    1{}0{}0{}",
            sp(13),
            sp(6),
            sp(10),
            sp(9)
        ),
        "MATCH proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1 rr".to_string(),
        format!(
            "  -> 123.1.2.3:0{}SNAT    100{}0{}0{}",
            sp(18),
            sp(4),
            sp(10),
            sp(9)
        ),
    ]
    .map(|l| l + "\n")
    .concat();
    assert_eq!(got, want);
}

#[test]
fn large_numbers_abbreviate_like_ipvsadm() {
    assert_eq!(large_num(0, false), "        0");
    assert_eq!(large_num(99_999_999, false), " 99999999");
    assert_eq!(large_num(100_000_000, false), "  100000K");
    assert_eq!(large_num(1_500_000_000, false), "    1500M");
    assert_eq!(large_num(250_000_000_000, false), "     250G");
    assert_eq!(large_num(123_000_000_000_000, false), "     123T");
    assert_eq!(large_num(1_500_000_000, true), " 1500000000");
    assert_eq!(large_num(42, true), "       42");
}

#[test]
fn stats_and_rate_views() {
    let mut svc = sinfo(
        tcp("10.0.0.100", 80),
        "rr",
        None,
        vec![dinfo("192.168.100.2", 80, 1, Forward::Fnat)],
    );
    svc.stats = Stats {
        conns: 5,
        inpkts: 123_456_789,
        outpkts: 99_999_999,
        inbytes: 1_500_000_000,
        outbytes: 250_000_000_000,
    };
    svc.dests[0].stats = Stats {
        conns: 5,
        inpkts: 60,
        outpkts: 50,
        inbytes: 4000,
        outbytes: 300_000,
    };
    svc.rates = Rates {
        cps: 1,
        inpps: 2,
        outpps: 3,
        inbps: 400_000_000,
        outbps: 5,
    };
    svc.dests[0].rates = Rates {
        cps: 1,
        inpps: 2,
        outpps: 3,
        inbps: 400_000_000,
        outbps: 5,
    };
    let got = format_list(
        Some(&status()),
        std::slice::from_ref(&svc),
        &opts(ListView::Stats),
    );
    let want = [
        "IP Virtual Server version 0.1.0 (size=2048)".to_string(),
        format!(
            "Prot LocalAddress:Port{}Conns   InPkts  OutPkts  InBytes OutBytes",
            sp(15)
        ),
        "  -> RemoteAddress:Port".to_string(),
        format!(
            "TCP  10.0.0.100:80{}        5  123456K 99999999    1500M     250G",
            sp(15)
        ),
        format!(
            "  -> 192.168.100.2:80{}        5       60       50     4000   300000",
            sp(12)
        ),
    ]
    .map(|l| l + "\n")
    .concat();
    assert_eq!(got, want);

    let got = format_list(None, &[svc], &opts(ListView::Rate));
    let want = [
        format!(
            "Prot LocalAddress:Port{}  CPS    InPPS   OutPPS    InBPS   OutBPS",
            sp(15)
        ),
        "  -> RemoteAddress:Port".to_string(),
        format!(
            "TCP  10.0.0.100:80{}        1        2        3  400000K        5",
            sp(15)
        ),
        format!(
            "  -> 192.168.100.2:80{}        1        2        3  400000K        5",
            sp(12)
        ),
    ]
    .map(|l| l + "\n")
    .concat();
    assert_eq!(got, want);
}

#[test]
fn connection_entries_like_lnc() {
    let c = ConnInfo {
        proto: "TCP".into(),
        state: "ESTABLISHED".into(),
        expire_s: 899,
        client: (ip("10.0.0.48"), 37177),
        virt: (ip("10.0.0.100"), 80),
        local: Some((ip("192.168.100.200"), 1025)),
        dest: (ip("192.168.100.2"), 80),
        worker: 0,
        origin: ConnOrigin::Local,
    };
    let want = "IPVS connection entries\n\
                pro expire state       source             virtual            destination\n\
                TCP 14:59  ESTABLISHED 10.0.0.48:37177    10.0.0.100:80      192.168.100.2:80\n";
    assert_eq!(format_conns(std::slice::from_ref(&c)), want);
    // Synced from a master: as on an LVS backup, the same line. Through an
    // active peer's local address: marked at the end of the line.
    let synced = ConnInfo {
        origin: ConnOrigin::Synced,
        ..c.clone()
    };
    let foreign = ConnInfo {
        origin: ConnOrigin::Foreign,
        client: (ip("10.0.0.48"), 37178),
        ..c
    };
    assert_eq!(
        format_conn_lines(&[synced, foreign]),
        "TCP 14:59  ESTABLISHED 10.0.0.48:37177    10.0.0.100:80      192.168.100.2:80\n\
         TCP 14:59  ESTABLISHED 10.0.0.48:37178    10.0.0.100:80      192.168.100.2:80   foreign\n"
    );
    assert_eq!(
        format_conns(&[]),
        "IPVS connection entries\npro expire state       source             virtual            destination\n"
    );
}

#[test]
fn laddrs_like_the_tutorial() {
    let group = |vip: &str, addrs: &[&str]| LaddrGroup {
        key: tcp(vip, 80),
        laddrs: addrs
            .iter()
            .map(|a| LaddrInfo {
                addr: ip(a),
                dev: "dpdk0".into(),
                conflicts: 0,
                conns: 0,
                standby: false,
            })
            .collect(),
    };
    let title = format!(
        "VIP:VPORT{}TOTAL{}SNAT_IP{}CONFLICTS{}CONNS{}\n",
        sp(12),
        sp(4),
        sp(14),
        sp(2),
        sp(5)
    );
    let laddr = |a: &str, pad: usize| format!("{}{a}{}0{}0{}\n", sp(30), sp(pad), sp(10), sp(9));
    let got = format_laddrs(&[group("10.0.0.100", &["192.168.100.200"])], false);
    assert_eq!(
        got,
        format!(
            "{title}10.0.0.100:80{}1{}\n{}",
            sp(8),
            sp(8),
            laddr("192.168.100.200", 6)
        )
    );
    let got = format_laddrs(
        &[group(
            "192.168.100.254",
            &["192.168.100.200", "192.168.100.201"],
        )],
        false,
    );
    assert_eq!(
        got,
        format!(
            "{title}192.168.100.254:80{}2{}\n{}{}",
            sp(3),
            sp(8),
            laddr("192.168.100.200", 6),
            laddr("192.168.100.201", 6)
        )
    );
    assert_eq!(format_laddrs(&[], false), "");
    assert_eq!(format_laddrs(&[], true), title);
}

/// A tiny model of the daemon's table, fed with restored requests, so the
/// round trip goes through the same data the daemon would hold.
fn apply_all(reqs: &[Request]) -> (Vec<ServiceInfo>, Vec<LaddrGroup>) {
    let mut svcs: Vec<ServiceInfo> = Vec::new();
    let mut laddrs: Vec<LaddrGroup> = Vec::new();
    for r in reqs {
        match r {
            Request::AddService { spec } => svcs.push(sinfo(
                spec.key.clone(),
                &spec.sched,
                spec.persistence,
                vec![],
            )),
            Request::AddDest { key, dest } => {
                let s = svcs
                    .iter_mut()
                    .find(|s| &s.spec.key == key)
                    .expect("service added first");
                s.dests.push(DestInfo {
                    spec: dest.clone(),
                    active: 0,
                    inactive: 0,
                    stats: Stats::default(),
                    rates: Rates::default(),
                });
            }
            Request::AddLaddr { key, addr, dev } => {
                let info = LaddrInfo {
                    addr: *addr,
                    dev: dev.clone(),
                    conflicts: 0,
                    conns: 0,
                    standby: false,
                };
                match laddrs.iter_mut().find(|g| &g.key == key) {
                    Some(g) => g.laddrs.push(info),
                    None => laddrs.push(LaddrGroup {
                        key: key.clone(),
                        laddrs: vec![info],
                    }),
                }
            }
            other => panic!("unexpected restore request {other:?}"),
        }
    }
    (svcs, laddrs)
}

#[test]
fn save_restore_round_trip() {
    const M: &str = "proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1";
    let v6 = ServiceKey::Vs {
        proto: Proto::Udp,
        vip: ip("2001:db8::1"),
        port: 53,
    };
    let mut nat = dinfo("2001:db8::2", 5353, 5, Forward::Nat);
    nat.spec.u_threshold = 100;
    nat.spec.l_threshold = 10;
    let services = vec![
        sinfo(
            ServiceKey::Match(M.into()),
            "rr",
            None,
            vec![dinfo("123.1.2.3", 0, 100, Forward::Snat)],
        ),
        sinfo(v6.clone(), "wrr", Some(600), vec![nat]),
        sinfo(
            tcp("192.168.100.254", 80),
            "wlc",
            None,
            vec![dinfo("192.168.100.2", 80, 1, Forward::Dr)],
        ),
        sinfo(
            tcp("10.0.0.100", 80),
            "rr",
            None,
            vec![
                dinfo("192.168.100.3", 80, 1, Forward::Fnat),
                dinfo("192.168.100.2", 80, 1, Forward::Fnat),
            ],
        ),
    ];
    let laddrs = vec![LaddrGroup {
        key: tcp("10.0.0.100", 80),
        laddrs: ["192.168.100.200", "192.168.100.201"]
            .iter()
            .map(|a| LaddrInfo {
                addr: ip(a),
                dev: "dpdk0".into(),
                conflicts: 3,
                conns: 9,
                standby: false,
            })
            .collect(),
    }];
    let saved = format_save(&services, &laddrs);
    let want = "\
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 192.168.100.2:80 -b -w 1
-a -t 10.0.0.100:80 -r 192.168.100.3:80 -b -w 1
--add-laddr -t 10.0.0.100:80 -z 192.168.100.200 -F dpdk0
--add-laddr -t 10.0.0.100:80 -z 192.168.100.201 -F dpdk0
-A -t 192.168.100.254:80 -s wlc
-a -t 192.168.100.254:80 -r 192.168.100.2:80 -g -w 1
-A -u [2001:db8::1]:53 -s wrr -p 600
-a -u [2001:db8::1]:53 -r [2001:db8::2]:5353 -m -w 5 -x 100 -y 10
-A -H proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1 -s rr
-a -H proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1 -r 123.1.2.3:0 -J -w 100
";
    assert_eq!(saved, want);

    let reqs = parse_restore(&saved).expect("own -S output restores");
    let dspec = |a: &str, port, weight, forward| DestSpec {
        addr: ip(a),
        port,
        weight,
        forward,
        u_threshold: 0,
        l_threshold: 0,
    };
    let svc = |key: ServiceKey, sched: &str, persistence| Request::AddService {
        spec: ServiceSpec {
            key,
            sched: sched.into(),
            persistence,
            sched_flags: Vec::new(),
            synproxy: None,
            proxy_protocol: None,
        },
    };
    let k = tcp("10.0.0.100", 80);
    let expected = vec![
        svc(k.clone(), "rr", None),
        Request::AddDest {
            key: k.clone(),
            dest: dspec("192.168.100.2", 80, 1, Forward::Fnat),
        },
        Request::AddDest {
            key: k.clone(),
            dest: dspec("192.168.100.3", 80, 1, Forward::Fnat),
        },
        Request::AddLaddr {
            key: k.clone(),
            addr: ip("192.168.100.200"),
            dev: "dpdk0".into(),
        },
        Request::AddLaddr {
            key: k,
            addr: ip("192.168.100.201"),
            dev: "dpdk0".into(),
        },
        svc(tcp("192.168.100.254", 80), "wlc", None),
        Request::AddDest {
            key: tcp("192.168.100.254", 80),
            dest: dspec("192.168.100.2", 80, 1, Forward::Dr),
        },
        svc(v6.clone(), "wrr", Some(600)),
        Request::AddDest {
            key: v6,
            dest: DestSpec {
                u_threshold: 100,
                l_threshold: 10,
                ..dspec("2001:db8::2", 5353, 5, Forward::Nat)
            },
        },
        svc(ServiceKey::Match(M.into()), "rr", None),
        Request::AddDest {
            key: ServiceKey::Match(M.into()),
            dest: dspec("123.1.2.3", 0, 100, Forward::Snat),
        },
    ];
    assert_eq!(reqs, expected);

    let (svcs2, laddrs2) = apply_all(&reqs);
    assert_eq!(format_save(&svcs2, &laddrs2), saved);
}

#[test]
fn sched_flags_are_listed_saved_and_restored() {
    let mut s = sinfo(
        tcp("10.0.0.100", 80),
        "mh",
        Some(60),
        vec![dinfo("192.168.100.2", 80, 1, Forward::Fnat)],
    );
    s.spec.sched_flags = vec!["mh-fallback".into(), "mh-port".into()];
    let services = vec![s];
    // ipvsadm -Ln: the flags in parentheses after the scheduler.
    let listed = format_list(Some(&status()), &services, &opts(ListView::Table));
    assert!(
        listed.contains("TCP  10.0.0.100:80 mh (mh-fallback,mh-port) persistent 60"),
        "{listed}"
    );
    let saved = format_save(&services, &[]);
    assert!(
        saved.starts_with("-A -t 10.0.0.100:80 -s mh --sched-flags mh-fallback,mh-port -p 60\n"),
        "{saved}"
    );
    let back = parse_restore(&saved).expect("restore parses");
    assert!(
        back.iter()
            .any(|r| matches!(r, rvs_api::Request::AddService { spec }
            if spec.sched_flags == ["mh-fallback", "mh-port"])),
        "{back:?}"
    );
}

/// A daemon that lists `total` connections in pages of at most `page`.
struct Pager {
    total: u16,
    page: usize,
    asked: Vec<rvs_api::ConnCursor>,
}

impl crate::client::Transport for Pager {
    fn call(&mut self, req: &Request) -> Result<rvs_api::Reply, crate::client::CliError> {
        let Request::ListConnPage { cursor, limit, .. } = req else {
            panic!("-lnc must ask for pages: {req:?}");
        };
        self.asked.push(*cursor);
        let from = cursor.slot as usize;
        let to = (from + self.page.min(*limit)).min(self.total as usize);
        let conns = (from..to)
            .map(|i| ConnInfo {
                proto: "UDP".into(),
                state: "UDP".into(),
                expire_s: 300,
                client: (ip("10.0.0.48"), i as u16),
                virt: (ip("10.0.0.100"), 53),
                local: None,
                dest: (ip("192.168.100.2"), 53),
                worker: 0,
                origin: ConnOrigin::Local,
            })
            .collect();
        let next = (to < self.total as usize).then_some(rvs_api::ConnCursor {
            worker: 0,
            slot: to as u32,
        });
        Ok(rvs_api::Reply::ConnPage(rvs_api::ConnPage { conns, next }))
    }
}

#[test]
fn lnc_fetches_every_page_and_prints_one_table() {
    let mut t = Pager {
        total: 10_000,
        page: 4096,
        asked: Vec::new(),
    };
    let opts = ListOpts {
        key: None,
        view: ListView::Conns,
        exact: false,
        sort: true,
    };
    let out = super::execute(
        &super::AdmCommand::List(opts),
        &mut t,
        &mut std::io::empty(),
    )
    .expect("listing");
    assert_eq!(t.asked.len(), 3, "three pages: {:?}", t.asked);
    assert_eq!(t.asked[0], rvs_api::ConnCursor::default());
    assert_eq!(out.lines().count(), 2 + 10_000);
    assert_eq!(out.matches("IPVS connection entries").count(), 1);
    assert!(out.contains("10.0.0.48:9999 "), "the last entry is there");
}

#[test]
fn synproxy_is_listed_as_dpvs_does_saved_and_restored() {
    let mut s = sinfo(
        tcp("10.0.0.100", 80),
        "rr",
        Some(60),
        vec![dinfo("192.168.100.2", 80, 1, Forward::Fnat)],
    );
    s.spec.synproxy = Some(true);
    let services = vec![s];
    // DPVS's ipvsadm -Ln: "synproxy" after the persistence.
    let listed = format_list(Some(&status()), &services, &opts(ListView::Table));
    assert!(
        listed.contains("TCP  10.0.0.100:80 rr persistent 60 synproxy\n"),
        "{listed}"
    );
    let saved = format_save(&services, &[]);
    assert!(
        saved.starts_with("-A -t 10.0.0.100:80 -s rr -p 60 -j enable\n"),
        "{saved}"
    );
    let back = parse_restore(&saved).expect("restore parses");
    assert!(
        back.iter()
            .any(|r| matches!(r, rvs_api::Request::AddService { spec }
            if spec.synproxy == Some(true))),
        "{back:?}"
    );
    // Off: nothing shown, nothing saved.
    let off = sinfo(tcp("10.0.0.100", 80), "rr", None, vec![]);
    assert!(!format_list(Some(&status()), &[off], &opts(ListView::Table)).contains("synproxy"));
}

#[test]
fn proxy_protocol_is_listed_saved_and_restored() {
    let mut s = sinfo(
        tcp("10.0.0.100", 80),
        "rr",
        None,
        vec![dinfo("192.168.100.2", 80, 1, Forward::Fnat)],
    );
    s.spec.proxy_protocol = Some(rvs_api::ProxyProtocol::V2);
    let services = vec![s];
    let listed = format_list(Some(&status()), &services, &opts(ListView::Table));
    assert!(
        listed.contains("TCP  10.0.0.100:80 rr proxy-protocol v2\n"),
        "{listed}"
    );
    let saved = format_save(&services, &[]);
    assert!(
        saved.starts_with("-A -t 10.0.0.100:80 -s rr --proxy-protocol v2\n"),
        "{saved}"
    );
    let back = parse_restore(&saved).expect("restore parses");
    assert!(
        back.iter()
            .any(|r| matches!(r, rvs_api::Request::AddService { spec }
            if spec.proxy_protocol == Some(rvs_api::ProxyProtocol::V2))),
        "{back:?}"
    );
}

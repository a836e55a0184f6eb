//! The DPVS tutorial's keepalived.conf, verbatim, on master and backup.

use std::net::IpAddr;
use std::time::Duration;

use super::super::*;
use super::{tutorial_backup, TUTORIAL, TUTORIAL_NAME};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn loc(line: u32) -> Loc {
    Loc {
        file: TUTORIAL_NAME.into(),
        line,
    }
}

#[test]
fn tutorial_master_parses_verbatim_with_every_value() {
    let Loaded {
        config: c,
        warnings,
    } = parse_str(TUTORIAL, TUTORIAL_NAME).unwrap();
    assert_eq!(warnings, vec![], "the tutorial's file draws no warning");

    let g = &c.global;
    assert_eq!(g.router_id.as_deref(), Some("DPVS_DEVEL"));
    assert_eq!(g.notification_email, vec!["[email protected]"]);
    assert_eq!(
        g.notification_email_from.as_deref(),
        Some("[email protected]")
    );
    assert_eq!(g.smtp_server.as_deref(), Some("1.2.3.4"));
    assert_eq!(g.smtp_connect_timeout.as_deref(), Some("60"));
    assert_eq!(g.vrrp_version, 2);

    assert_eq!(
        c.laddr_groups,
        vec![LaddrGroup {
            loc: loc(11),
            name: "laddr_g1".into(),
            addrs: vec![
                (ip("192.168.100.200"), "dpdk0".into()),
                (ip("192.168.100.201"), "dpdk0".into()),
            ],
        }]
    );

    assert_eq!(c.vrrp_instances.len(), 1);
    let v = &c.vrrp_instances[0];
    assert_eq!(v.loc, loc(18));
    assert_eq!(v.name, "VI_1");
    assert_eq!(v.state, VrrpState::Master);
    assert_eq!(v.interface, "dpdk0.kni");
    assert_eq!(v.dpdk_interface.as_deref(), Some("dpdk0"));
    assert_eq!(v.virtual_router_id, 123);
    assert_eq!(v.priority, 100);
    assert_eq!(v.advert_int, Duration::from_secs(1));
    assert_eq!(v.version, 2);
    assert_eq!(
        v.auth,
        Some(Auth {
            pass: "****".into()
        })
    );
    assert_eq!(
        v.virtual_ipaddress,
        vec![VirtualIp {
            addr: ip("192.168.100.254"),
            plen: 32,
            dev: None,
            label: None,
            scope: None,
        }]
    );
    assert!(v.virtual_ipaddress_excluded.is_empty());
    assert!(!v.nopreempt);
    assert_eq!(v.preempt_delay, Duration::ZERO);
    assert_eq!((v.src_ip, v.unicast_peers.len()), (None, 0));
    assert!(v.track_interfaces.is_empty() && v.track_scripts.is_empty());
    assert_eq!(v.notify, Notify::default());
    assert_eq!(v.garp, Garp::default());
    assert!(c.vrrp_sync_groups.is_empty() && c.vrrp_scripts.is_empty());

    assert_eq!(
        c.virtual_server_groups,
        vec![VirtualServerGroup {
            loc: loc(36),
            name: "192.168.100.254-80".into(),
            entries: vec![VsgEntry {
                first: ip("192.168.100.254"),
                last: ip("192.168.100.254"),
                port: 80,
            }],
        }]
    );

    assert_eq!(c.virtual_servers.len(), 1);
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.loc, loc(39));
    assert_eq!(vs.addr, VsAddr::Group("192.168.100.254-80".into()));
    assert_eq!(vs.delay_loop, Duration::from_secs(3));
    assert_eq!(vs.lb_algo, "rr");
    assert_eq!(vs.lb_kind, LbKind::Fnat);
    assert_eq!(vs.protocol, Protocol::Tcp);
    assert_eq!(vs.laddr_group_name.as_deref(), Some("laddr_g1"));
    assert_eq!(
        (vs.persistence_timeout, vs.quorum, vs.hysteresis),
        (None, 1, 0)
    );
    assert_eq!(vs.sorry_server, None);
    assert_eq!(vs.real_servers.len(), 2);
    for (rs, addr, line) in [
        (&vs.real_servers[0], "192.168.100.2", 45),
        (&vs.real_servers[1], "192.168.100.3", 54),
    ] {
        let check = Checker {
            loc: loc(line + 3),
            kind: CheckKind::Tcp,
            connect_ip: None,
            connect_port: Some(80),
            bindto: None,
            bind_port: None,
            connect_timeout: Duration::from_secs(3),
            retry: 2,
            delay_before_retry: Duration::from_secs(1),
            warmup: Duration::from_secs(3),
            delay_loop: Duration::from_secs(3),
        };
        let want = RealServer {
            loc: loc(line),
            addr: ip(addr),
            port: 80,
            weight: 100,
            lb_kind: None,
            inhibit_on_failure: true,
            alpha: false,
            notify_up: None,
            notify_down: None,
            uthreshold: 0,
            lthreshold: 0,
            checkers: vec![check],
        };
        assert_eq!(rs, &want);
        assert_eq!(rs.checkers[0].target(rs), (ip(addr), 80));
    }
}

#[test]
fn tutorial_backup_differs_only_in_state_and_priority() {
    let master = parse_str(TUTORIAL, TUTORIAL_NAME).unwrap().config;
    let backup = parse_str(&tutorial_backup(), TUTORIAL_NAME).unwrap();
    assert_eq!(backup.warnings, vec![]);
    let b = &backup.config.vrrp_instances[0];
    assert_eq!((b.state, b.priority), (VrrpState::Backup, 80));
    let mut expected = master.clone();
    expected.vrrp_instances[0].state = VrrpState::Backup;
    expected.vrrp_instances[0].priority = 80;
    assert_eq!(backup.config, expected);
}

#[test]
fn tutorial_parses_the_same_when_indented() {
    // The tutorial's web page lost its indentation; the original file has it.
    let indented: String = TUTORIAL.lines().map(|l| format!("    {l}\n")).collect();
    let a = parse_str(TUTORIAL, TUTORIAL_NAME).unwrap();
    let b = parse_str(&indented, TUTORIAL_NAME).unwrap();
    assert_eq!(a, b);
}

/// `ipvsadm -ln`'s lines for the wanted services (without the counters).
fn ipvsadm_ln(services: &[WantedService]) -> Vec<String> {
    let mut out = Vec::new();
    for s in services {
        out.push(format!("{} {}", s.spec.key, s.spec.sched));
        for d in &s.dests {
            let column = d.forward.column();
            out.push(format!("  -> {}:{} {column} {}", d.addr, d.port, d.weight));
        }
    }
    out
}

#[test]
fn tutorial_wanted_services_are_the_tutorials_ipvsadm_ln() {
    let c = parse_str(TUTORIAL, TUTORIAL_NAME).unwrap().config;
    let w = wanted_services(&c).unwrap();
    // The tutorial's `./ipvsadm -ln`:
    //   TCP 192.168.100.254:80 rr
    //     -> 192.168.100.2:80 FullNat 100 0 0
    //     -> 192.168.100.3:80 FullNat 100 0 0
    assert_eq!(
        ipvsadm_ln(&w),
        vec![
            "TCP 192.168.100.254:80 rr",
            "  -> 192.168.100.2:80 FullNat 100",
            "  -> 192.168.100.3:80 FullNat 100",
        ]
    );
    assert_eq!(w[0].spec.persistence, None);
    assert!(w[0].spec.sched_flags.is_empty());
    assert_eq!(w[0].vs, 0);
    // Its `./ipvsadm -G`: 192.168.100.200 and .201, on dpdk0.
    assert_eq!(
        w[0].laddrs,
        vec![
            (ip("192.168.100.200"), "dpdk0".to_string()),
            (ip("192.168.100.201"), "dpdk0".to_string()),
        ]
    );
    let backup = parse_str(&tutorial_backup(), TUTORIAL_NAME).unwrap().config;
    assert_eq!(wanted_services(&backup).unwrap(), w);
}

#[test]
fn lvs_sync_daemon_in_global_defs() {
    let text = TUTORIAL.replacen(
        "router_id DPVS_DEVEL",
        "router_id DPVS_DEVEL\nlvs_sync_daemon sync0 VI_1 id 7 maxlen 1400 port 9000 ttl 2 group 224.0.0.99",
        1,
    );
    let Loaded { config, warnings } = parse_str(&text, TUTORIAL_NAME).unwrap();
    assert_eq!(warnings, vec![], "lvs_sync_daemon is understood");
    let d = config.global.lvs_sync_daemon.expect("parsed");
    assert_eq!(
        (d.interface.as_str(), d.instance.as_str(), d.syncid),
        ("sync0", "VI_1", 7)
    );
    assert_eq!((d.port, d.ttl), (Some(9000), Some(2)));
    assert_eq!(d.group, Some("224.0.0.99".parse().unwrap()));
    let plain = TUTORIAL.replacen("router_id DPVS_DEVEL", "lvs_sync_daemon sync0 VI_1", 1);
    let d = parse_str(&plain, TUTORIAL_NAME)
        .unwrap()
        .config
        .global
        .lvs_sync_daemon
        .unwrap();
    assert_eq!((d.syncid, d.port, d.group), (0, None, None));
}

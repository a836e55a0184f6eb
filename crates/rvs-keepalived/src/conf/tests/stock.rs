//! Stock keepalived syntax, as keepalived.conf(5) documents it.

use std::net::IpAddr;
use std::time::Duration;

use super::super::*;
use super::ok;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const STOCK: &str = r#"
global_defs {
    router_id lb1
    vrrp_version 3
    vrrp_garp_master_delay 10
    vrrp_garp_master_repeat 2
    vrrp_garp_interval 0.001
    vrrp_mcast_group4 224.0.0.19
    script_user root
}
vrrp_script chk_nginx {
    script "/usr/bin/pgrep nginx"
    interval 2
    weight -20
    fall 3
    rise 2
}
vrrp_sync_group VG_1 {
    group {
        VI_1
        VI_GONE
    }
    notify_master "/etc/keepalived/master.sh VG_1"
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.1
    nopreempt
    preempt_delay 4.5
    unicast_src_ip 10.0.0.1
    unicast_peer {
        10.0.0.2
        10.0.0.3
    }
    track_interface {
        eth1
        eth2 weight -10
    }
    track_script {
        chk_nginx
        chk_missing weight 5
    }
    garp_master_delay 1
    virtual_ipaddress {
        192.168.200.17/24 dev eth1
        192.168.200.18/24 dev eth2 label eth2:1
    }
    notify_master /etc/keepalived/to_master.sh
    notify "/etc/keepalived/notify.sh"
    use_vmac
}
virtual_server 192.168.200.100 443 {
    delay_loop 6
    lvs_sched wlc
    lvs_method DR
    protocol TCP
    persistence_timeout
    quorum 2
    hysteresis 1
    quorum_up "/bin/up.sh"
    quorum_down /bin/down.sh
    alpha
    omega
    connect_timeout 7
    retry 4
    virtualhost www.example.com
    sorry_server 192.168.200.200 1358
    sorry_server_inhibit
    real_server 192.168.201.100 443 {
        weight 2
        inhibit_on_failure
        notify_up /bin/rs_up.sh
        HTTP_GET {
            url {
                path /testurl/test.jsp
                digest 640205B7B0FC66C1EA91C463FAC6334D
                status_code 200 300-304
            }
            url {
                path /health
                virtualhost other.example.com
            }
            connect_port 8443
            delay_before_retry 3
        }
    }
    real_server 192.168.201.101 443 {
        lvs_method NAT
        uthreshold 100
        MISC_CHECK {
            misc_path "/usr/local/bin/check.sh 192.168.201.101"
            misc_timeout 5
            misc_dynamic
        }
        UDP_CHECK {
            connect_ip 192.168.201.250
            retry 1
            warmup 0
        }
        SMTP_CHECK {
            helo_name x
        }
    }
}
"#;

#[test]
fn stock_keepalived_syntax() {
    let l = ok(STOCK);
    let w: Vec<&str> = l.warnings.iter().map(|d| d.keyword.as_str()).collect();
    assert_eq!(
        w,
        [
            "script_user",
            "use_vmac",
            "SMTP_CHECK",
            "track_script",
            "group"
        ]
    );
    let c = &l.config;
    let g = &c.global;
    assert_eq!(
        (g.vrrp_version, g.vrrp_mcast_group4.to_string()),
        (3, "224.0.0.19".into())
    );
    assert_eq!(g.garp.master_delay, Duration::from_secs(10));
    assert_eq!(
        g.garp.lower_prio_delay,
        Duration::from_secs(10),
        "defaults to master_delay"
    );
    assert_eq!((g.garp.master_repeat, g.garp.lower_prio_repeat), (2, 2));
    assert_eq!(g.garp.interval, Duration::from_millis(1));

    let s = &c.vrrp_scripts[0];
    assert_eq!(s.script, "/usr/bin/pgrep nginx");
    assert_eq!(
        (s.interval, s.weight, s.fall, s.rise),
        (Duration::from_secs(2), -20, 3, 2)
    );

    assert_eq!(
        c.vrrp_sync_groups[0].group,
        vec!["VI_1"],
        "VI_GONE dropped with a warning"
    );
    let sg_notify = c.vrrp_sync_groups[0].notify.master.as_deref();
    assert_eq!(sg_notify, Some("/etc/keepalived/master.sh VG_1"));

    let v = &c.vrrp_instances[0];
    assert_eq!(
        (v.state, v.priority, v.version),
        (VrrpState::Backup, 150, 3)
    );
    assert_eq!(v.advert_int, Duration::from_millis(100));
    assert!(v.nopreempt);
    assert_eq!(v.preempt_delay, Duration::from_millis(4500));
    assert_eq!(v.src_ip, Some(ip("10.0.0.1")));
    assert_eq!(v.unicast_peers, vec![ip("10.0.0.2"), ip("10.0.0.3")]);
    assert_eq!(
        v.track_interfaces,
        vec![
            Tracked {
                name: "eth1".into(),
                weight: None
            },
            Tracked {
                name: "eth2".into(),
                weight: Some(-10)
            },
        ]
    );
    assert_eq!(
        v.track_scripts,
        vec![Tracked {
            name: "chk_nginx".into(),
            weight: None
        }]
    );
    assert_eq!(
        v.garp.master_delay,
        Duration::from_secs(1),
        "instance overrides global"
    );
    assert_eq!(v.garp.master_repeat, 2, "global default");
    assert_eq!(v.virtual_ipaddress[1].label.as_deref(), Some("eth2:1"));
    assert_eq!(v.virtual_ipaddress[1].dev.as_deref(), Some("eth2"));
    assert_eq!(
        v.notify.master.as_deref(),
        Some("/etc/keepalived/to_master.sh")
    );
    assert_eq!(v.notify.any.as_deref(), Some("/etc/keepalived/notify.sh"));

    let vs = &c.virtual_servers[0];
    assert_eq!(
        vs.addr,
        VsAddr::Ip {
            addr: ip("192.168.200.100"),
            port: 443
        }
    );
    assert_eq!((vs.lb_algo.as_str(), vs.lb_kind), ("wlc", LbKind::Dr));
    assert_eq!(
        (vs.persistence_timeout, vs.quorum, vs.hysteresis),
        (Some(360), 2, 1)
    );
    assert_eq!(vs.quorum_up.as_deref(), Some("/bin/up.sh"));
    assert!(vs.omega);
    let ss = vs.sorry_server.as_ref().unwrap();
    assert_eq!(
        (ss.addr, ss.port, ss.inhibit),
        (ip("192.168.200.200"), 1358, true)
    );

    let rs0 = &vs.real_servers[0];
    assert_eq!(
        (rs0.weight, rs0.inhibit_on_failure, rs0.alpha),
        (2, true, true)
    );
    let http = &rs0.checkers[0];
    assert_eq!(http.target(rs0), (ip("192.168.201.100"), 8443));
    assert_eq!(
        http.connect_timeout,
        Duration::from_secs(7),
        "from the virtual server"
    );
    assert_eq!((http.retry, http.delay_loop), (4, Duration::from_secs(6)));
    assert_eq!(http.delay_before_retry, Duration::from_secs(3));
    let CheckKind::Http(h) = &http.kind else {
        panic!("not HTTP_GET")
    };
    assert!(!h.tls);
    assert_eq!(
        h.urls[0].digest.as_deref(),
        Some("640205b7b0fc66c1ea91c463fac6334d")
    );
    assert_eq!(h.urls[0].status_codes, vec![(200, 200), (300, 304)]);
    assert_eq!(h.urls[0].virtualhost.as_deref(), Some("www.example.com"));
    assert_eq!(h.urls[1].virtualhost.as_deref(), Some("other.example.com"));

    let rs1 = &vs.real_servers[1];
    assert_eq!(
        (rs1.weight, rs1.lb_kind, rs1.uthreshold),
        (1, Some(LbKind::Nat), 100)
    );
    assert_eq!(rs1.checkers.len(), 2, "SMTP_CHECK is skipped");
    let CheckKind::Misc(m) = &rs1.checkers[0].kind else {
        panic!("not MISC_CHECK")
    };
    assert_eq!(m.path, "/usr/local/bin/check.sh 192.168.201.101");
    assert_eq!((m.timeout, m.dynamic), (Duration::from_secs(5), true));
    assert_eq!(
        rs1.checkers[0].retry, 4,
        "inherited beats the MISC_CHECK default"
    );
    let udp = &rs1.checkers[1];
    assert_eq!(udp.kind, CheckKind::Udp(UdpCheck::default()));
    assert_eq!(
        (udp.target(rs1), udp.retry),
        ((ip("192.168.201.250"), 443), 1)
    );
    assert_eq!(udp.warmup, Duration::ZERO);

    let w = wanted_services(c).unwrap();
    assert_eq!(w[0].spec.persistence, Some(360));
    let fw: Vec<_> = w[0].dests.iter().map(|d| d.forward).collect();
    assert_eq!(fw, [rvs_api::Forward::Dr, rvs_api::Forward::Nat]);
    assert_eq!(w[0].dests[1].u_threshold, 100);
}

#[test]
fn checker_defaults_are_keepaliveds() {
    let c = ok("virtual_server 1.1.1.1 80 {\n real_server 2.2.2.2 8080 {\n TCP_CHECK {\n }\n MISC_CHECK {\n misc_path /bin/true\n }\n }\n}\n").config;
    let vs = &c.virtual_servers[0];
    assert_eq!(
        (vs.lb_algo.as_str(), vs.lb_kind, vs.delay_loop),
        ("wlc", LbKind::Nat, Duration::from_secs(60))
    );
    let tcp = &vs.real_servers[0].checkers[0];
    assert_eq!(tcp.connect_timeout, Duration::from_secs(5));
    assert_eq!(
        (tcp.retry, tcp.delay_before_retry),
        (1, Duration::from_secs(1))
    );
    assert_eq!(
        (tcp.delay_loop, tcp.warmup),
        (Duration::from_secs(60), Duration::from_secs(60))
    );
    assert_eq!(tcp.target(&vs.real_servers[0]), (ip("2.2.2.2"), 8080));
    let misc = &vs.real_servers[0].checkers[1];
    assert_eq!(misc.retry, 0);
    let CheckKind::Misc(m) = &misc.kind else {
        panic!()
    };
    assert_eq!(m.timeout, Duration::from_secs(60));
}

#[test]
fn vrrp_defaults_and_advert_rounding() {
    let l = ok("vrrp_instance V {\n interface e\n virtual_router_id 1\n advert_int 1.4\n authentication {\n auth_type PASS\n auth_pass 123456789\n }\n}\n");
    let v = &l.config.vrrp_instances[0];
    assert_eq!(
        (v.state, v.priority, v.version),
        (VrrpState::Backup, 100, 2)
    );
    assert_eq!(
        v.advert_int,
        Duration::from_secs(1),
        "VRRPv2: whole seconds"
    );
    assert_eq!(v.auth.as_ref().unwrap().pass, "12345678");
    let w: Vec<(u32, &str)> = l
        .warnings
        .iter()
        .map(|d| (d.loc.line, d.keyword.as_str()))
        .collect();
    assert_eq!(w, [(7, "auth_pass"), (4, "advert_int")]);
    let v3 = ok(
        "vrrp_instance V {\n version 3\n interface e\n virtual_router_id 1\n advert_int 0.015\n}\n",
    );
    assert_eq!(
        v3.config.vrrp_instances[0].advert_int,
        Duration::from_millis(20)
    );
}

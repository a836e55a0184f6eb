//! The configuration file: the sample, every key, and every error with its line.

use super::*;

fn parse(t: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/rvs/rvs.toml"), t)
}

#[test]
fn sample_parses() {
    let text = include_str!("../../../../conf/rvs.toml.sample");
    let c = parse(text).expect("the sample must parse");
    assert_eq!(c.netif.len(), 2);
    assert_eq!(c.netif[0].name, "dpdk0");
    assert_eq!(c.idle, Idle::Adaptive);
    assert_eq!((c.standby.hung_ms, c.standby.kill_hung), (200, false));
}

#[test]
fn af_xdp_backend_and_its_keys() {
    let c = parse(
        "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\nbackend = \"af_xdp\"\n\
         xdp_mode = \"generic\"\nxdp_ring_size = 1024\nrx_checksum = \"trust\"\n",
    )
    .unwrap();
    let n = &c.netif[0];
    assert_eq!(n.backend, BackendKind::AfXdp);
    assert_eq!(n.xdp_mode, XdpModeConf::Generic);
    assert_eq!(n.xdp_ring_size, Some(1024));
    assert_eq!(n.rx_checksum, RxChecksumConf::Trust);
    let d = parse("[[netif]]\nname = \"dpdk0\"\niface = \"a\"\nbackend = \"af_xdp\"\n").unwrap();
    assert_eq!(d.netif[0].xdp_mode, XdpModeConf::Auto);
    assert_eq!(d.netif[0].rx_checksum, RxChecksumConf::Complete);
    let e =
        parse("[[netif]]\nname = \"dpdk0\"\niface = \"a\"\nxdp_ring_size = 1000\n").unwrap_err();
    assert!(e.message.contains("xdp_ring_size"), "{e}");
    assert_eq!(e.line, Some(4), "the line of the key: {e}");
    let e = parse("[[netif]]\nname = \"dpdk0\"\niface = \"a\"\nxdp_mode = \"fast\"\n").unwrap_err();
    assert_eq!(e.line, Some(4), "{e}");
    assert_eq!(d.netif[0].xdp_queues, None, "default: every RX queue");
    let q = parse("[[netif]]\nname = \"dpdk0\"\niface = \"a\"\nxdp_queues = 2\n").unwrap();
    assert_eq!(q.netif[0].xdp_queues, Some(2));
    let e = parse("[[netif]]\nname = \"dpdk0\"\niface = \"a\"\nxdp_queues = 0\n").unwrap_err();
    assert!(e.message.contains("xdp_queues = 0"), "{e}");
    assert_eq!(e.line, Some(4), "{e}");
}

#[test]
fn sloppy_tcp_is_off_unless_asked_for() {
    let base = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n";
    assert!(!parse(base).unwrap().pipeline_conf().sloppy_tcp);
    let c = parse(&format!("{base}[pipeline]\nsloppy_tcp = true\n")).unwrap();
    assert!(c.pipeline_conf().sloppy_tcp);
    let e = parse(&format!("{base}[pipeline]\nsloppy_tcp = 1\n")).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
}

#[test]
fn a_health_stall_time_too_short_to_judge_is_refused() {
    let one = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n";
    let e = parse(&format!("{one}[health]\nstall_ms = 80\n")).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.message.contains("stall_ms = 80"), "{e}");
    assert!(parse(&format!("{one}[health]\nstall_ms = 0\n")).is_ok());
}

#[test]
fn a_standby_s_hung_time_defaults_to_200_ms_and_is_checked() {
    let one = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n";
    let s = parse(one).unwrap().standby;
    assert_eq!((s.hung_ms, s.kill_hung), (200, false));
    let s = parse(&format!(
        "{one}[standby]\nhung_ms = 500\nkill_hung = true\n"
    ))
    .unwrap()
    .standby;
    assert_eq!((s.hung_ms, s.kill_hung), (500, true));
    for bad in [20, 70_000] {
        let e = parse(&format!("{one}[standby]\nhung_ms = {bad}\n")).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(
            e.message
                .contains(&format!("[standby] hung_ms = {bad}: must be 50..=60000")),
            "{e}"
        );
    }
    let e = parse(&format!("{one}[standby]\nkill_hung = \"yes\"\n")).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
}

#[test]
fn limit_sources_defaults_and_is_checked() {
    let one = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n";
    assert_eq!(parse(one).unwrap().pipeline_conf().limit_sources, 65536);
    let c = parse(&format!("{one}[pipeline]\nlimit_sources = 1024\n")).unwrap();
    assert_eq!(c.pipeline_conf().limit_sources, 1024);
    let e = parse(&format!("{one}[pipeline]\nlimit_sources = 0\n")).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.to_string().contains("limit_sources = 0"), "{e}");
}

#[test]
fn kni_vip_rate_defaults_to_1000_and_takes_zero() {
    let one = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n";
    assert_eq!(parse(one).unwrap().pipeline_conf().kni_vip_rate, 1000);
    let off = parse(&format!("{one}[pipeline]\nkni_vip_rate = 0\n")).unwrap();
    assert_eq!(off.pipeline_conf().kni_vip_rate, 0);
    let e = parse(&format!("{one}[pipeline]\nkni_vip_rate = -1\n")).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
}

#[test]
fn fast_xmit_is_on_unless_turned_off() {
    let one = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n";
    assert!(parse(one).unwrap().pipeline_conf().fast_xmit);
    let off = parse(&format!("{one}[pipeline]\nfast_xmit = false\n")).unwrap();
    assert!(!off.pipeline_conf().fast_xmit);
    let e = parse(&format!("{one}[pipeline]\nfast_xmit = \"no\"\n")).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
}

#[test]
fn fast_path_xdp_needs_af_xdp_on_every_port() {
    let xdp = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\nbackend = \"af_xdp\"\n";
    assert!(
        !parse(xdp).unwrap().pipeline_conf().fast_path,
        "off by default"
    );
    let on = parse(&format!("{xdp}[pipeline]\nfast_path = \"xdp\"\n")).unwrap();
    assert!(on.pipeline_conf().fast_path);
    let pkt = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n";
    let e = parse(&format!("{pkt}[pipeline]\nfast_path = \"xdp\"\n")).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
    assert!(
        e.message.contains("needs backend = \"af_xdp\"")
            && e.message.contains("dpdk0 uses af_packet"),
        "{e}"
    );
    assert!(parse(&format!("{xdp}[pipeline]\nfast_path = \"dpdk\"\n")).is_err());
}

#[test]
fn af_packet_rx_ring() {
    let d = parse("[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n").unwrap();
    assert_eq!(d.netif[0].rx_ring, RxRingConf::V2);
    let c = parse("[[netif]]\nname = \"dpdk0\"\niface = \"a\"\nrx_ring = \"v3\"\n").unwrap();
    assert_eq!(c.netif[0].rx_ring, RxRingConf::V3);
    let e = parse("[[netif]]\nname = \"dpdk0\"\niface = \"a\"\nrx_ring = \"v1\"\n").unwrap_err();
    assert_eq!(e.line, Some(4), "{e}");
}

#[test]
fn errors_name_file_line_and_key() {
    let e =
        parse("workers = 1\n[[netif]]\nname = \"dpdk0\"\niface = \"veth0\"\ncolour = \"red\"\n")
            .unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("/etc/rvs/rvs.toml:5:"), "{s}");
    assert!(s.contains("colour"), "{s}");
    let e = parse("workers = 0\n[[netif]]\nname = \"dpdk0\"\niface = \"veth0\"\n").unwrap_err();
    assert_eq!(e.line, Some(1));
    assert!(e.message.contains("workers"), "{e}");
    let e = parse("workers = \"two\"\n").unwrap_err();
    assert_eq!(e.line, Some(1), "{e}");
    let e = parse("workers = 1\n").unwrap_err();
    assert!(e.message.contains("[[netif]]"), "{e}");
    let e = parse(
        "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n[[netif]]\nname = \"dpdk0\"\niface = \"b\"\n",
    )
    .unwrap_err();
    assert!(e.message.contains("twice"), "{e}");
    // Without the DPDK feature a DPDK port is refused at its line.
    if cfg!(not(feature = "dpdk")) {
        let e =
            parse("[[netif]]\nname = \"dpdk0\"\niface = \"a\"\nbackend = \"dpdk\"\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
    }
}

#[test]
fn iface_names_the_kernel_refuses_are_refused_with_file_line_and_key() {
    let conf = |iface: &str| {
        format!("workers = 1\n[[netif]]\nname = \"dpdk0\"\n# the port\niface = {iface:?}\n")
    };
    for bad in [
        "",
        "a234567890123456",
        ".",
        "..",
        "a/b",
        "../../../etc",
        "a:1",
        "a b",
        "a\tb",
        "a\nb",
        "a\"b",
        "a'b",
        "a\\b",
        "eth%d",
    ] {
        let e = parse(&conf(bad)).expect_err(bad);
        let s = e.to_string();
        assert!(
            s.starts_with("/etc/rvs/rvs.toml:5: netif iface = "),
            "{bad:?}: {s}"
        );
    }
    for good in [
        "eth0",
        "a23456789012345",
        "eth0.100",
        "veth-a_b",
        "enp3s0f1",
    ] {
        let c = parse(&conf(good)).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        assert_eq!(c.netif[0].iface, good);
    }
}

#[test]
fn netif_errors_point_at_the_key_of_their_section() {
    let two = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n\n[[netif]]\niface = \"b\"\n";
    let e = parse(&format!("{two}name = \"dpdk1.kni\"\n")).unwrap_err();
    assert_eq!(e.line, Some(7), "{e}");
    assert!(e.message.starts_with("netif name = \"dpdk1.kni\""), "{e}");
    let e = parse(&format!("{two}name = \"a23456789012\"\n")).unwrap_err();
    assert_eq!(e.line, Some(7), "12 bytes and \".kni\" exceed 15: {e}");
    let e = parse(&format!("{two}name = \"dpdk1\"\nmtu = 100\n")).unwrap_err();
    assert_eq!(e.line, Some(8), "{e}");
    let e = parse(
        "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n[[netif]]\nname = \"dpdk1\"\niface = \"a\"\n",
    )
    .unwrap_err();
    assert!(e.message.contains("twice"), "{e}");
    assert_eq!(e.line, Some(3), "{e}");
}

#[test]
fn timeouts_in_seconds() {
    let c = parse(
        "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n[timeouts]\ntcp_established = 120\nudp = 10\n",
    )
    .unwrap();
    let t = c.timeouts();
    assert_eq!(t.established_ms, 120_000);
    assert_eq!(t.udp_ms, 10_000);
    assert_eq!(t.syn_recv_ms, Timeouts::default().syn_recv_ms);
}

#[test]
fn sync_section() {
    let base = "[[netif]]\nname = \"dpdk0\"\niface = \"veth0\"\n";
    let c = parse(&format!(
        "{base}[sync]\nrole = \"both\"\nsync_id = 3\nmcast_interface = \"sync0\"\npeers = [\"10.9.0.2\", \"10.9.0.3:9000\"]\n"
    ))
    .unwrap();
    let specs = c.sync.unwrap().specs().unwrap();
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0].syncid, 3);
    assert_eq!(specs[1].role, rvs_api::SyncRole::Backup);
    assert_eq!(specs[0].peers[0].to_string(), "10.9.0.2:8848");
    assert_eq!(specs[0].peers[1].to_string(), "10.9.0.3:9000");
    for (bad, line, word) in [
        (
            "role = \"primary\"\nmcast_interface = \"s\"\n",
            5,
            "primary",
        ),
        (
            "role = \"master\"\nmcast_interface = \"s\"\nmcast_group = \"10.0.0.1\"\n",
            7,
            "mcast_group",
        ),
        (
            "role = \"master\"\nmcast_interface = \"a/b\"\n",
            6,
            "mcast_interface",
        ),
        (
            "role = \"master\"\nmcast_interface = \"s\"\npeers = [\"nowhere\"]\n",
            7,
            "peers",
        ),
        (
            "role = \"master\"\nmcast_interface = \"s\"\nsync_id = 300\n",
            7,
            "sync_id",
        ),
        ("role = \"master\"\n", 4, "mcast_interface"),
        (
            "role = \"master\"\nmcast_interface = \"s\"\npeers = [\"fd00::2\"]\n",
            7,
            "IPv6",
        ),
    ] {
        let e = parse(&format!("{base}[sync]\n{bad}")).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with(&format!("/etc/rvs/rvs.toml:{line}:")),
            "{bad}: {s}"
        );
        assert!(s.contains(word), "{bad}: {s}");
    }
}

#[test]
fn metrics_listen_is_off_by_default_and_checked() {
    let net = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n";
    assert_eq!(parse(net).unwrap().metrics_addr, None);
    let c = parse(&format!("metrics_listen = \"127.0.0.1:9108\"\n{net}")).unwrap();
    assert_eq!(c.metrics_addr, Some("127.0.0.1:9108".parse().unwrap()));
    let e = parse(&format!(
        "workers = 1\nmetrics_listen = \"localhost\"\n{net}"
    ))
    .unwrap_err();
    assert!(e.message.contains("metrics_listen"), "{e}");
    assert_eq!(e.line, Some(2), "the line of the key: {e}");
}

#[test]
fn uoa_mode_and_max_trail_as_dpvs_names_them() {
    use rvs_core::wire::uoa::Mode;
    let one = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n";
    let d = parse(one).unwrap().pipeline_conf();
    assert_eq!((d.uoa_mode, d.uoa_max_trail), (Mode::Off, 3));
    let c = parse(&format!(
        "{one}[pipeline]\nuoa_mode = \"opp\"\nuoa_max_trail = 5\n"
    ))
    .unwrap();
    let c = c.pipeline_conf();
    assert_eq!((c.uoa_mode, c.uoa_max_trail), (Mode::Opp, 5));
    let c = parse(&format!("{one}[pipeline]\nuoa_mode = \"ipo\"\n")).unwrap();
    assert_eq!(c.pipeline_conf().uoa_mode, Mode::Ipo);
    let e = parse(&format!("{one}[pipeline]\nuoa_mode = \"tcp\"\n")).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.to_string().contains("uoa_mode"), "{e}");
}

#[test]
fn vlan_sections() {
    let ports = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n";
    let c = parse(&format!(
        "{ports}\n[[vlan]]\nlink = \"dpdk0\"\nid = 100\n\n[[vlan]]\nname = \"v7\"\nlink = \"dpdk0\"\nproto = \"802.1ad\"\nid = 7\n"
    ))
    .unwrap();
    assert_eq!(c.vlan.len(), 2);
    assert_eq!(c.vlan[0].spec().proto, rvs_api::VlanProto::Dot1q);
    assert_eq!(c.vlan[0].name, None);
    assert_eq!(c.vlan[1].proto, rvs_api::VlanProto::Dot1ad);
    let e = parse(&format!("{ports}\n[[vlan]]\nlink = \"bond1\"\nid = 103\n")).unwrap_err();
    assert!(e.message.contains("vlan link = \"bond1\""), "{e}");
    assert_eq!(e.line, Some(6), "{e}");
    let e = parse(&format!("{ports}\n[[vlan]]\nlink = \"dpdk0\"\nid = 4095\n")).unwrap_err();
    assert!(e.message.contains("vlan id = 4095"), "{e}");
    assert_eq!(e.line, Some(7), "{e}");
    let e = parse(&format!(
        "{ports}\n[[vlan]]\nlink = \"dpdk0\"\nid = 5\nproto = \"x\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.line, Some(8), "{e}");
}

#[test]
fn bond_sections() {
    let ports =
        "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n[[netif]]\nname = \"dpdk2\"\niface = \"b\"\n";
    let bond = "\n[[bond]]\nname = \"bond1\"\nmode = 4\nslaves = [\"dpdk0\", \"dpdk2\"]\n";
    let c = parse(&format!(
        "{ports}{bond}lacp_rate = \"slow\"\nxmit_hash = \"layer2+3\"\n\n[[vlan]]\nlink = \"bond1\"\nid = 103\n"
    ))
    .unwrap();
    assert_eq!(c.bond[0].primary(), "dpdk0");
    assert_eq!(c.bond[0].lacp_rate, super::LacpRate::Slow);
    assert_eq!(c.bond[0].xmit_hash, super::XmitHashConf::Layer23);
    assert_eq!(c.bond[0].miimon_ms, 100);
    let bad = |extra: &str, want: &str, line: usize| {
        let e = parse(&format!("{ports}{bond}{extra}")).unwrap_err();
        assert!(e.message.contains(want), "{e}");
        assert_eq!(e.line, Some(line), "{e}");
    };
    bad(
        "primary = \"dpdk9\"\n",
        "primary = \"dpdk9\" is not one of its slaves",
        12,
    );
    let e = parse(&format!("{ports}{}", bond.replace("mode = 4", "mode = 2"))).unwrap_err();
    assert!(e.message.contains("bond mode = 2: rvs has mode 0"), "{e}");
    assert_eq!(e.line, Some(10), "{e}");
    let e = parse(&format!(
        "{ports}{}",
        bond.replace("\"dpdk2\"]", "\"dpdk3\"]")
    ))
    .unwrap_err();
    assert!(e.message.contains("slave \"dpdk3\" is no [[netif]]"), "{e}");
    let e = parse(&format!(
        "{ports}{bond}\n[[vlan]]\nlink = \"dpdk2\"\nid = 5\n"
    ))
    .unwrap_err();
    assert!(e.message.contains("dpdk2 is a slave of bond1"), "{e}");
}

//! HELLO: each refusal names what differs and both sides' values; what may
//! change in a takeover passes; versions are negotiated per kind.

use std::path::Path;

use super::*;

/// Two ports, one of each backend, two workers.
const BASE: &str = r#"
workers = 2
conn_capacity = 1000
log_level = "info"

[timeouts]
tcp_established = 900

[[netif]]
name = "dpdk0"
iface = "eth1"
backend = "af_packet"

[[netif]]
name = "dpdk1"
iface = "eth2"
backend = "af_xdp"
xdp_frames = 4096
"#;

fn conf(text: &str) -> Config {
    Config::parse(Path::new("/etc/rvs/rvs.toml"), text).expect("test config")
}

/// `BASE` with `from` replaced by `to` (which must occur).
fn changed(from: &str, to: &str) -> Config {
    assert!(BASE.contains(from), "{from}");
    conf(&BASE.replacen(from, to, 1))
}

fn hello(c: &Config, live: Vec<u64>) -> Hello {
    Hello::ours(c, live)
}

/// The refusal of a takeover of `BASE` (2 workers each holding 10
/// connections) by `new`.
fn refusal(new: &Config) -> String {
    let old = hello(&conf(BASE), vec![10, 10]);
    match check(&old, &hello(new, Vec::new())) {
        Ok(_) => panic!("accepted: {:?}", new.netif),
        Err(r) => r.text,
    }
}

#[test]
fn the_same_config_is_accepted_at_the_highest_common_versions() {
    let c = conf(BASE);
    let a = check(&hello(&c, vec![10, 10]), &hello(&c, Vec::new())).expect("same config");
    for r in our_kinds() {
        assert_eq!(a.version(r.kind), Some(r.max), "{}", r.kind.name());
    }
}

/// The HELLO of a build from before the control log, the pre-copy's marks,
/// the counters, the runtime state, the heartbeats and the listeners had
/// their meaning:
/// it listed every kind but the listeners at version 1.
fn an_older_build() -> Vec<KindRange> {
    Kind::ALL
        .iter()
        .filter(|&&k| k != Kind::LISTENERS)
        .map(|&kind| range(kind, 1, 1))
        .collect()
}

#[test]
fn a_takeover_between_builds_that_disagree_on_the_newer_kinds_is_refused_at_hello() {
    let c = conf(BASE);
    let mut old = hello(&c, vec![10, 10]);
    old.kinds = an_older_build();
    // This binary taking over from an older rvsd: refused, the running
    // one keeps running (the caller sends REFUSE), every such kind named.
    let r = check(&old, &hello(&c, Vec::new())).unwrap_err();
    for part in [
        "runtime state: the running rvsd writes 1, this binary reads 2",
        "control log: the running rvsd speaks 1, this binary speaks 2",
        "counters: the running rvsd writes 1, this binary reads 2..3",
        "sweep ends: the running rvsd writes 1, this binary reads 2",
        "heartbeats: the running rvsd speaks 1, this binary speaks 2",
        "listening sockets: the running rvsd does not speak them, this binary reads 1",
    ] {
        assert!(r.text.contains(part), "{part}: {r}");
    }
    assert_eq!(
        (r.kind, r.running, r.new),
        (Some(Kind::RUNTIME), Some((1, 1)), Some((2, 2)))
    );
    // And an older binary taking over from this one.
    let mut new = hello(&c, Vec::new());
    new.kinds = an_older_build();
    let r = check(&hello(&c, vec![10, 10]), &new).unwrap_err();
    assert!(
        r.text
            .contains("sweep ends: the running rvsd writes 2, this binary reads 1"),
        "{r}"
    );
}

/// A warm standby (or an active) of the build before the counters went
/// every second to a standby (COUNTERS 2 only) still attaches, both
/// ways: they agree on 2, and the active sends the counters at a freeze
/// only (`precopy::COUNTERS_EVERY`).
#[test]
fn a_peer_of_the_build_before_periodic_counters_agrees_on_counters_2() {
    let c = conf(BASE);
    let mut older = hello(&c, Vec::new());
    for k in &mut older.kinds {
        if k.kind == Kind::COUNTERS {
            (k.min, k.max) = (2, 2);
        }
    }
    let a = check(&hello(&c, vec![1, 1]), &older).expect("an older standby");
    assert_eq!(a.version(Kind::COUNTERS), Some(2));
    older.live_conns = vec![1, 1];
    let a = check(&older, &hello(&c, Vec::new())).expect("an older active");
    assert_eq!(a.version(Kind::COUNTERS), Some(2));
    const { assert!(crate::handover::precopy::COUNTERS_EVERY > 2) };
    let ours = check(&hello(&c, vec![1, 1]), &hello(&c, Vec::new())).expect("same");
    assert_eq!(
        ours.version(Kind::COUNTERS),
        Some(crate::handover::precopy::COUNTERS_EVERY)
    );
}

#[test]
fn what_may_change_passes() {
    let old = hello(&conf(BASE), vec![900, 1000]);
    let changes = [
        ("tcp_established = 900", "tcp_established = 60\nudp = 10"),
        ("log_level = \"info\"", "log_level = \"debug\""),
        ("conn_capacity = 1000", "conn_capacity = 1000\nidle = \"busy\"\ncpus = [0, 1]"),
        ("conn_capacity = 1000", "conn_capacity = 5000"),
        (
            "[timeouts]",
            "[pipeline]\ntoa = false\nsloppy_tcp = true\nkni_vip_rate = 5\n\n[flow_log]\npath = \"/tmp/flows\"\n\n[timeouts]",
        ),
        ("xdp_frames = 4096", "xdp_frames = 4096\nrx_checksum = \"trust\""),
    ];
    for (from, to) in changes {
        let new = changed(from, to);
        if let Err(r) = check(&old, &hello(&new, Vec::new())) {
            panic!("{to}: refused: {r}");
        }
    }
}

#[test]
fn each_static_setting_is_refused_naming_both_values() {
    let cases = [
        (
            "workers = 2",
            "workers = 4",
            "workers: the running rvsd has 2, this config 4: restart to change it",
        ),
        (
            "iface = \"eth2\"",
            "iface = \"eth3\"",
            "[[netif]] 1 (dpdk1) iface: the running rvsd has eth2, this config eth3: restart to change it",
        ),
        (
            "name = \"dpdk0\"",
            "name = \"lan0\"",
            "[[netif]] 0 (dpdk0) name: the running rvsd has dpdk0, this config lan0",
        ),
        (
            "backend = \"af_packet\"",
            "backend = \"af_xdp\"",
            "[[netif]] 0 (dpdk0) backend: the running rvsd has af_packet, this config af_xdp",
        ),
        (
            "backend = \"af_packet\"",
            "backend = \"af_packet\"\nrx_ring = \"v3\"",
            "[[netif]] 0 (dpdk0) rx_ring: the running rvsd has v2, this config v3",
        ),
        (
            "backend = \"af_packet\"",
            "backend = \"af_packet\"\nkni = false",
            "[[netif]] 0 (dpdk0) kni: the running rvsd has true, this config false",
        ),
        (
            "backend = \"af_packet\"",
            "backend = \"af_packet\"\nmtu = 1400",
            "[[netif]] 0 (dpdk0) mtu: the running rvsd has none, this config 1400",
        ),
        (
            "xdp_frames = 4096",
            "xdp_frames = 8192",
            "[[netif]] 1 (dpdk1) xdp_frames: the running rvsd has 4096, this config 8192",
        ),
        (
            "xdp_frames = 4096",
            "xdp_frames = 4096\nxdp_frame_size = 4096",
            "xdp_frame_size: the running rvsd has 2048, this config 4096",
        ),
        (
            "xdp_frames = 4096",
            "xdp_frames = 4096\nxdp_queues = 2",
            "xdp_queues: the running rvsd has none, this config 2",
        ),
        (
            "xdp_frames = 4096",
            "xdp_frames = 4096\nxdp_ring_size = 1024",
            "xdp_ring_size: the running rvsd has 2048, this config 1024",
        ),
        (
            "xdp_frames = 4096",
            "xdp_frames = 4096\nxdp_fill_size = 8192\nxdp_comp_size = 4096",
            "xdp_fill_size: the running rvsd has 4096, this config 8192",
        ),
        (
            "xdp_frames = 4096",
            "xdp_frames = 4096\nxdp_mode = \"generic\"",
            "xdp_mode: the running rvsd has auto, this config generic",
        ),
        (
            "conn_capacity = 1000",
            "conn_capacity = 5",
            "conn_capacity: worker 0 of the running rvsd holds 10 connections, more than this config's 5 per worker",
        ),
    ];
    for (from, to, want) in cases {
        let text = refusal(&changed(from, to));
        assert!(text.contains(want), "{to}: '{text}' does not say '{want}'");
    }
    // A third port, and several differences at once, all named.
    let more = format!("{BASE}\n[[netif]]\nname = \"dpdk2\"\niface = \"eth3\"\n");
    let text = refusal(&conf(&more.replace("workers = 2", "workers = 3")));
    assert!(
        text.contains("workers: the running rvsd has 2, this config 3"),
        "{text}"
    );
    assert!(
        text.contains("[[netif]] ports: the running rvsd has 2 (dpdk0, dpdk1), this config 3 (dpdk0, dpdk1, dpdk2)"),
        "{text}"
    );
    // The fast path decides the XDP program's maps.
    let all_xdp = BASE.replace("backend = \"af_packet\"", "backend = \"af_xdp\"");
    let old = hello(&conf(&all_xdp), Vec::new());
    let fast = conf(&format!("{all_xdp}\n[pipeline]\nfast_path = \"xdp\"\n"));
    let r = check(&old, &hello(&fast, Vec::new())).unwrap_err();
    assert!(
        r.text.contains(
            "[pipeline] fast_path: the running rvsd has off, this config xdp: restart to change it"
        ),
        "{r}"
    );
}

#[test]
fn the_binary_s_steering_and_xdp_abi_must_match() {
    let c = conf(BASE);
    let old = hello(&c, Vec::new());
    let mut new = hello(&c, Vec::new());
    new.settings.steer_version += 1;
    let r = check(&old, &new).unwrap_err();
    let v = rvs_io::steer::VERSION;
    assert!(
        r.text.contains(&format!(
            "steering rules version: the running rvsd has {v}, this binary {}: restart to change it",
            v + 1
        )),
        "{r}"
    );
    let mut new = hello(&c, Vec::new());
    new.settings.xdp_abi += 1;
    assert!(check(&old, &new)
        .unwrap_err()
        .text
        .contains("XDP program ABI"));
    let mut new = hello(&c, Vec::new());
    new.settings.xdp_maps[0].value_size = 8;
    let r = check(&old, &new).unwrap_err();
    assert!(
        r.text
            .contains("XDP maps: the running rvsd has rvs_addrs (type 1, key 16 B, value 4 B)"),
        "{r}"
    );
    // Without an af_xdp port, the XDP program is not handed over.
    let packet = conf(&BASE.replace("backend = \"af_xdp\"", "backend = \"af_packet\""));
    let mut new = hello(&packet, Vec::new());
    new.settings.xdp_abi += 1;
    assert!(check(&hello(&packet, Vec::new()), &new).is_ok());
}

fn range(kind: Kind, min: u16, max: u16) -> KindRange {
    KindRange { kind, min, max }
}

#[test]
fn versions_pick_the_highest_common_one_per_kind() {
    let old = [
        range(Kind::CONNS, 1, 3),
        range(Kind::STORE, 2, 2),
        range(Kind::FREEZE, 1, 1),
    ];
    let new = [
        range(Kind::CONNS, 2, 5),
        range(Kind::STORE, 1, 4),
        range(Kind::FREEZE, 1, 2),
    ];
    let a = negotiate(&old, &new).expect("common versions");
    assert_eq!(a.version(Kind::CONNS), Some(3));
    assert_eq!(a.version(Kind::STORE), Some(2));
    assert_eq!(a.version(Kind::FREEZE), Some(1));
    assert_eq!(a.version(Kind::COMMIT), None);
}

#[test]
fn a_version_refusal_names_the_kind_and_both_ranges() {
    let old = [range(Kind::CONNS, 3, 3), range(Kind::STORE, 1, 1)];
    let new = [range(Kind::CONNS, 1, 2), range(Kind::STORE, 1, 1)];
    let r = negotiate(&old, &new).unwrap_err();
    assert_eq!(
        r.text,
        "connection records: the running rvsd writes 3, this binary reads 1..2"
    );
    assert_eq!(
        (r.kind, r.running, r.new),
        (Some(Kind::CONNS), Some((3, 3)), Some((1, 2)))
    );
    // A kind the new rvsd writes, one side lacks, one the binary does not know.
    let old = [range(Kind::FREEZE, 2, 3), range(Kind(99), 1, 1)];
    let new = [range(Kind::FREEZE, 1, 1), range(Kind::COMMIT, 1, 1)];
    let r = negotiate(&old, &new).unwrap_err();
    assert_eq!(
        r.text,
        "freeze requests: this binary writes 1, the running rvsd reads 2..3; \
         commits: this binary writes 1, the running rvsd does not speak them; \
         frame kind 99: the running rvsd speaks 1, this binary does not speak them"
    );
    // Through the HELLO: the version refusal first, then the settings.
    let c = conf(BASE);
    let mut old = hello(&c, Vec::new());
    old.kinds = vec![range(Kind::CONNS, 3, 3)];
    let mut new = hello(&changed("workers = 2", "workers = 3"), Vec::new());
    new.kinds = vec![range(Kind::CONNS, 1, 2)];
    let r = check(&old, &new).unwrap_err();
    assert!(
        r.text.starts_with(
            "connection records: the running rvsd writes 3, this binary reads 1..2; workers:"
        ),
        "{r}"
    );
}

#[test]
fn hello_and_refusal_survive_json() {
    let h = hello(&conf(BASE), vec![1, 2]);
    let line = serde_json::to_string(&h).unwrap();
    assert_eq!(serde_json::from_str::<Hello>(&line).unwrap(), h);
    assert!(line.contains(&build_id()), "{line}");
    assert!(h.build_id.starts_with(env!("CARGO_PKG_VERSION")));
    let r = negotiate(&[range(Kind::CONNS, 3, 3)], &[range(Kind::CONNS, 1, 2)]).unwrap_err();
    let line = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<Refusal>(&line).unwrap(), r);
}

#[test]
fn the_store_payload_version_follows_its_formats() {
    // STORE version 1 carries API protocol 1 requests and a fingerprint of
    // format 1: a change of either needs a new STORE version (our_kinds).
    assert_eq!(rvs_api::VERSION, 1, "bump Kind::STORE in our_kinds");
    assert_eq!(
        crate::store::fingerprint::FORMAT,
        1,
        "bump Kind::STORE in our_kinds"
    );
}

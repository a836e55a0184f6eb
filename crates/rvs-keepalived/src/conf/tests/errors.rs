//! Errors that make a file unusable name file, line and keyword.

use super::super::*;
use super::{err, TempDir, TUTORIAL, TUTORIAL_NAME};

/// (line, keyword) of an error in `t.conf`.
fn at(e: &ConfError) -> (u32, &str) {
    assert_eq!(&*e.loc.file, "t.conf", "{e}");
    (e.loc.line, e.keyword.as_str())
}

/// The tutorial with line `n` (1-based) replaced by `with`.
fn tutorial_with(n: usize, with: &str) -> String {
    let mut lines: Vec<&str> = TUTORIAL.lines().collect();
    lines[n - 1] = with;
    lines.join("\n") + "\n"
}

#[test]
fn error_display_is_file_line_keyword_message() {
    let e = parse_str(&tutorial_with(22, "virtual_router_id 256"), TUTORIAL_NAME).unwrap_err();
    assert_eq!(
        e.to_string(),
        "testdata/tutorial-master.conf:22: virtual_router_id: 256 is out of range (1..255)"
    );
}

#[test]
fn unbalanced_braces() {
    // The tutorial without its last '}': the virtual_server block never closes.
    let text = TUTORIAL.trim_end().strip_suffix('}').unwrap();
    let e = parse_str(text, TUTORIAL_NAME).unwrap_err();
    assert_eq!((e.loc.line, e.keyword.as_str()), (39, "virtual_server"));
    assert!(e.message.contains("missing '}'"), "{e}");
    let e = err("global_defs {\n router_id a\n}\n}\n");
    assert_eq!(at(&e), (4, "}"));
}

#[test]
fn missing_required_values() {
    let e = parse_str(&tutorial_with(22, "# no vrid"), TUTORIAL_NAME).unwrap_err();
    assert_eq!((e.loc.line, e.keyword.as_str()), (18, "virtual_router_id"));
    assert!(e.message.contains("VI_1 has no virtual_router_id"), "{e}");
    let e = parse_str(&tutorial_with(20, "# no interface"), TUTORIAL_NAME).unwrap_err();
    assert_eq!((e.loc.line, e.keyword.as_str()), (18, "interface"));
    // A keyword without its value.
    let e = parse_str(&tutorial_with(23, "priority # none"), TUTORIAL_NAME).unwrap_err();
    assert_eq!((e.loc.line, e.keyword.as_str()), (23, "priority"));
    assert_eq!(e.message, "missing value");
    let e = err("vrrp_script chk {\n interval 2\n}\n");
    assert_eq!(at(&e), (1, "vrrp_script"));
    let e = err("virtual_server 1.1.1.1 80 {\n real_server 2.2.2.2 80 {\n MISC_CHECK {\n misc_timeout 3\n }\n }\n}\n");
    assert_eq!(at(&e), (3, "misc_path"));
    let e = err("virtual_server 1.1.1.1 80 {\n real_server 2.2.2.2 {\n }\n}\n");
    assert_eq!(at(&e), (2, "real_server"));
}

#[test]
fn bad_addresses() {
    let e = parse_str(&tutorial_with(30, "192.168.100.300"), TUTORIAL_NAME).unwrap_err();
    assert_eq!((e.loc.line, e.keyword.as_str()), (30, "virtual_ipaddress"));
    assert!(
        e.message.contains("'192.168.100.300' is not an IP address"),
        "{e}"
    );
    let e = parse_str(&tutorial_with(12, "192.168.100.2000 dpdk0"), TUTORIAL_NAME).unwrap_err();
    assert_eq!(
        (e.loc.line, e.keyword.as_str()),
        (12, "local_address_group")
    );
    let e = parse_str(
        &tutorial_with(45, "real_server 192.168.100.x 80 {"),
        TUTORIAL_NAME,
    )
    .unwrap_err();
    assert_eq!((e.loc.line, e.keyword.as_str()), (45, "real_server"));
    let e = parse_str(&tutorial_with(37, "192.168.100.254-1 80"), TUTORIAL_NAME).unwrap_err();
    assert_eq!(
        (e.loc.line, e.keyword.as_str()),
        (37, "virtual_server_group")
    );
    assert!(e.message.contains("not above its start"), "{e}");
    let e = err("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n unicast_peer {\n 10.0.0.x\n }\n}\n");
    assert_eq!(at(&e), (5, "unicast_peer"));
}

#[test]
fn values_out_of_range() {
    for (n, line, kw) in [
        (22, "virtual_router_id 0", "virtual_router_id"),
        (23, "priority 256", "priority"),
        (24, "advert_int 300", "advert_int"),
        (46, "weight 70000", "weight"),
        (50, "connect_timeout 0", "connect_timeout"),
        (51, "connect_port 65536", "connect_port"),
        (41, "lb_algo lblc", "lb_algo"),
        (42, "lb_kind XNAT", "lb_kind"),
        (43, "protocol SCTP", "protocol"),
        (19, "state LEADER", "state"),
    ] {
        let e = parse_str(&tutorial_with(n, line), TUTORIAL_NAME).unwrap_err();
        assert_eq!(
            (e.loc.line, e.keyword.as_str()),
            (n as u32, kw),
            "{line}: {e}"
        );
    }
    let e = parse_str(&tutorial_with(41, "lb_algo lblc"), TUTORIAL_NAME).unwrap_err();
    assert!(
        e.message
            .contains("not supported by rvs (rr wrr lc wlc sh conhash fo mh)"),
        "{e}"
    );
}

#[test]
fn undefined_groups() {
    let e = parse_str(
        &tutorial_with(44, "laddr_group_name laddr_g2"),
        TUTORIAL_NAME,
    )
    .unwrap_err();
    assert_eq!((e.loc.line, e.keyword.as_str()), (44, "laddr_group_name"));
    assert_eq!(e.message, "no local_address_group named 'laddr_g2'");
    let e = parse_str(
        &tutorial_with(39, "virtual_server group vsg2 {"),
        TUTORIAL_NAME,
    )
    .unwrap_err();
    assert_eq!((e.loc.line, e.keyword.as_str()), (39, "virtual_server"));
    assert_eq!(e.message, "no virtual_server_group named 'vsg2'");
    let e = err("virtual_server 1.1.1.1 80 {\n daddr_group_name nope\n}\n");
    assert_eq!(at(&e), (2, "daddr_group_name"));
}

#[test]
fn missing_include_file() {
    let dir = TempDir::new("missing");
    let main = dir.write(
        "main.conf",
        "global_defs {\n router_id a\n}\ninclude nothere.conf\n",
    );
    let e = load(&main).unwrap_err();
    assert_eq!(&*e.loc.file, main.display().to_string());
    assert_eq!((e.loc.line, e.keyword.as_str()), (4, "include"));
    assert!(e.message.contains("nothere.conf"), "{e}");
    let e = load(dir.0.join("absent.conf")).unwrap_err();
    assert_eq!(e.loc.line, 0);
    assert!(e.message.starts_with("cannot read"), "{e}");
}

#[test]
fn duplicates() {
    let e = err("vrrp_instance A {\n interface e\n virtual_router_id 1\n}\nvrrp_instance B {\n interface e\n virtual_router_id 1\n}\n");
    assert_eq!(at(&e), (5, "virtual_router_id"));
    let e = err("local_address_group g {\n}\nlocal_address_group g {\n}\n");
    assert_eq!(at(&e), (3, "local_address_group"));
    let e =
        err("virtual_server 1.1.1.1 80 {\n real_server 2.2.2.2 80\n real_server 2.2.2.2 80\n}\n");
    assert_eq!(at(&e), (3, "real_server"));
    // The same service twice: an error when services are computed.
    let c = super::ok("virtual_server 1.1.1.1 80 {\n}\nvirtual_server 1.1.1.1 80 {\n}\n").config;
    let e = wanted_services(&c).unwrap_err();
    assert_eq!(at(&e), (3, "virtual_server"));
    assert!(
        e.message
            .contains("TCP 1.1.1.1:80 is already defined at t.conf:1"),
        "{e}"
    );
}

#[test]
fn unterminated_quote() {
    let e = err("vrrp_script s {\n script \"/bin/true\n}\n");
    assert_eq!(at(&e), (2, "script"));
}

#[test]
fn lvs_sync_daemon_names_an_existing_instance() {
    // Line 9 is `router_id DPVS_DEVEL` inside global_defs.
    let e = err(&tutorial_with(9, "lvs_sync_daemon sync0 VI_9 id 7"));
    assert_eq!(at(&e), (9, "lvs_sync_daemon"));
    assert_eq!(e.message, "no vrrp_instance named 'VI_9'");
    let e = err(&tutorial_with(9, "lvs_sync_daemon sync0 VI_1 id 300"));
    assert_eq!(at(&e), (9, "lvs_sync_daemon"));
}

//! Includes, unknown keywords, ranges, DPVS extensions.

use std::net::IpAddr;

use rvs_api::{Forward, Proto, ServiceKey};

use super::super::*;
use super::{ok, TempDir, TUTORIAL};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn include_glob_relative_to_the_including_file() {
    let dir = TempDir::new("glob[x]");
    let main = dir.write(
        "etc/keepalived.conf",
        "global_defs {\n router_id main\n}\ninclude conf.d/*.conf\ninclude {a,b}.inc\n",
    );
    // Included in name order; relative includes from conf.d/ resolve there.
    dir.write(
        "etc/conf.d/10-vrrp.conf",
        "vrrp_instance VI_1 {\n interface dpdk0.kni\n virtual_router_id 7\n include vips.inc\n}\n",
    );
    dir.write("etc/conf.d/vips.inc", "virtual_ipaddress {\n 10.0.0.1\n}\n");
    dir.write(
        "etc/conf.d/20-vs.conf",
        "virtual_server 10.0.0.1 80 {\n bogus 1\n real_server 10.0.1.1 80\n}\n",
    );
    dir.write("etc/conf.d/ignored.txt", "this is not included {\n");
    dir.write(
        "etc/a.inc",
        "local_address_group la {\n 10.0.0.5 dpdk0\n}\n",
    );
    dir.write(
        "etc/b.inc",
        "local_address_group lb {\n 10.0.0.6 dpdk0\n}\n",
    );
    let l = load(&main).unwrap();
    let c = &l.config;
    assert_eq!(c.global.router_id.as_deref(), Some("main"));
    assert_eq!(c.vrrp_instances[0].virtual_router_id, 7);
    assert_eq!(
        c.vrrp_instances[0].virtual_ipaddress[0].addr,
        ip("10.0.0.1")
    );
    assert_eq!(c.virtual_servers[0].real_servers[0].addr, ip("10.0.1.1"));
    let names: Vec<&str> = c.laddr_groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["la", "lb"]);
    // Diagnostics and locations name the included file and its own lines.
    let vs_file = dir.0.join("etc/conf.d/20-vs.conf").display().to_string();
    assert_eq!(&*c.virtual_servers[0].loc.file, vs_file);
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert_eq!(&*l.warnings[0].loc.file, vs_file);
    assert_eq!(
        (l.warnings[0].loc.line, l.warnings[0].keyword.as_str()),
        (2, "bogus")
    );
}

#[test]
fn include_of_a_pattern_matching_nothing_is_a_warning() {
    let dir = TempDir::new("nomatch");
    let main = dir.write(
        "k.conf",
        "include conf.d/*.conf\nglobal_defs {\n router_id x\n}\n",
    );
    let l = load(&main).unwrap();
    assert_eq!(l.config.global.router_id.as_deref(), Some("x"));
    assert_eq!(
        (l.warnings[0].loc.line, l.warnings[0].keyword.as_str()),
        (1, "include")
    );
}

#[test]
fn include_loop_is_an_error() {
    let dir = TempDir::new("loop");
    let main = dir.write("k.conf", "include k.conf\n");
    let e = load(&main).unwrap_err();
    assert_eq!((e.loc.line, e.keyword.as_str()), (1, "include"));
    assert!(e.message.contains("include loop"), "{e}");
}

#[test]
fn unknown_keywords_are_warnings_and_the_rest_parses() {
    let mut text = TUTORIAL.replace(
        "advert_int 1\n",
        "advert_int 1\nfrobnicate 3\nweird_block {\n virtual_router_id 9\n}\n",
    );
    text.push_str("no_such_section foo {\n a {\n b\n }\n}\nvrrp_instance VI_2 {\n interface x\n virtual_router_id 9\n}\n");
    let l = ok(&text);
    let w: Vec<(u32, &str)> = l
        .warnings
        .iter()
        .map(|d| (d.loc.line, d.keyword.as_str()))
        .collect();
    assert_eq!(
        w,
        [
            (25, "frobnicate"),
            (26, "weird_block"),
            (68, "no_such_section")
        ]
    );
    assert!(l.warnings[0]
        .message
        .contains("unknown keyword in vrrp_instance"));
    assert!(l.warnings[1].message.contains("its block is skipped"));
    assert_eq!(&*l.warnings[2].loc.file, "t.conf");
    // The skipped block's virtual_router_id was not taken.
    assert_eq!(l.config.vrrp_instances[0].virtual_router_id, 123);
    assert_eq!(l.config.vrrp_instances[1].name, "VI_2");
    assert_eq!(wanted_services(&l.config).unwrap().len(), 1);
}

#[test]
fn virtual_server_group_ranges_expand() {
    let text = "virtual_server_group web {\n 192.168.1.1-10 80\n 10.0.0.5 8080\n 2001:db8::1-3 443\n fwmark 7\n}\n\
                virtual_server group web {\n lb_algo wrr\n protocol UDP\n real_server 10.1.1.1 80 {\n weight 3\n }\n}\n";
    let l = ok(text);
    assert_eq!(
        l.warnings.len(),
        1,
        "fwmark entry is dropped with a warning"
    );
    assert_eq!(l.warnings[0].keyword, "fwmark");
    let w = wanted_services(&l.config).unwrap();
    assert_eq!(w.len(), 14);
    let key = |vip: &str, port| ServiceKey::Vs {
        proto: Proto::Udp,
        vip: ip(vip),
        port,
    };
    assert_eq!(w[0].spec.key, key("192.168.1.1", 80));
    assert_eq!(w[9].spec.key, key("192.168.1.10", 80));
    assert_eq!(w[10].spec.key, key("10.0.0.5", 8080));
    assert_eq!(w[13].spec.key, key("2001:db8::3", 443));
    assert!(w
        .iter()
        .all(|s| s.spec.sched == "wrr" && s.dests.len() == 1 && s.vs == 0));
    assert_eq!(
        (w[5].dests[0].weight, w[5].dests[0].forward),
        (3, Forward::Nat)
    );
}

#[test]
fn braces_glued_to_words_and_one_line_blocks() {
    let l = ok("vrrp_instance V{\ninterface e\nvirtual_router_id 1\nvirtual_ipaddress {10.0.0.1/24 dev dpdk1}}\n");
    let v = &l.config.vrrp_instances[0];
    assert_eq!(v.name, "V");
    assert_eq!(v.virtual_ipaddress[0].plen, 24);
    assert_eq!(v.virtual_ipaddress[0].dev.as_deref(), Some("dpdk1"));
    let l = ok("global_defs\n{\nrouter_id r\n}\n");
    assert_eq!(l.config.global.router_id.as_deref(), Some("r"));
}

#[test]
fn dpvs_match_snat_and_address_groups() {
    let text = "\
deny_address_group deny1 {
    192.168.9.100
    192.168.9.200-210
}
allow_address_group allow1 {
    ipset:trusted
}
virtual_server match SNAT {
    protocol TCP
    lb_algo rr
    lb_kind SNAT
    src-range 192.168.100.0-192.168.100.254
    oif dpdk1
    daddr_group_name deny1
    waddr_group_name allow1
    real_server 123.1.2.3 0 {
        weight 100
    }
    acl_entry acl1 {
        rule permit
    }
}
";
    let l = ok(text);
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(l.warnings[0].keyword, "acl_entry");
    let c = &l.config;
    assert_eq!(
        c.deny_address_groups[0].entries,
        vec![
            AddrEntry::Range {
                first: ip("192.168.9.100"),
                last: ip("192.168.9.100")
            },
            AddrEntry::Range {
                first: ip("192.168.9.200"),
                last: ip("192.168.9.210")
            },
        ]
    );
    assert_eq!(
        c.allow_address_groups[0].entries,
        vec![AddrEntry::Ipset("trusted".into())]
    );
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.deny_group_name.as_deref(), Some("deny1"));
    assert_eq!(vs.allow_group_name.as_deref(), Some("allow1"));
    let w = wanted_services(c).unwrap();
    // As `rvsadm -A -H proto=tcp,src-range=...,oif=dpdk1 -s rr` of the tutorial's SNAT section.
    assert_eq!(
        w[0].spec.key,
        ServiceKey::Match("proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1".into())
    );
    assert_eq!(
        (w[0].dests[0].port, w[0].dests[0].forward),
        (0, Forward::Snat)
    );
    assert!(w[0].laddrs.is_empty());
}

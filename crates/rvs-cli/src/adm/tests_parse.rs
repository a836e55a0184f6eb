//! Every ipvsadm command line of the DPVS tutorial, the other commands, and
//! the usage errors with ipvsadm's messages.

use rvs_api::{DestSpec, Forward, Proto, Request, ServiceKey, ServiceSpec};

use super::{parse_args, parse_restore, AdmCommand, ListOpts, ListView};
use crate::client::CliError;

fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn p(s: &str) -> Result<AdmCommand, CliError> {
    parse_args(&argv(s))
}

fn req(s: &str) -> Request {
    match p(s) {
        Ok(AdmCommand::Apply(r)) => r,
        other => panic!("{s}: {other:?}"),
    }
}

fn tcp(vip: &str, port: u16) -> ServiceKey {
    ServiceKey::Vs {
        proto: Proto::Tcp,
        vip: vip.parse().unwrap(),
        port,
    }
}

fn dest(addr: &str, port: u16, weight: u32, forward: Forward) -> DestSpec {
    DestSpec {
        addr: addr.parse().unwrap(),
        port,
        weight,
        forward,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn usage_err(s: &str) -> String {
    let e = p(s).expect_err(s);
    assert_eq!(e.code, 2, "{s}: {e:?}");
    e.message
}

const MATCH0: &str = "proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1";
const MATCH1: &str = "proto=icmp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1";

#[test]
fn tutorial_fnat_commands() {
    assert_eq!(
        req("-A -t 10.0.0.100:80 -s rr"),
        Request::AddService {
            spec: ServiceSpec {
                key: tcp("10.0.0.100", 80),
                sched: "rr".into(),
                persistence: None,
                sched_flags: Vec::new(),
                synproxy: None,
                proxy_protocol: None,
            }
        }
    );
    // Without a port the real server takes the service's port.
    assert_eq!(
        req("-a -t 10.0.0.100:80 -r 192.168.100.2 -b"),
        Request::AddDest {
            key: tcp("10.0.0.100", 80),
            dest: dest("192.168.100.2", 80, 1, Forward::Fnat)
        }
    );
    assert_eq!(
        req("-a -t 10.0.0.100:80 -r 192.168.100.3 -b"),
        Request::AddDest {
            key: tcp("10.0.0.100", 80),
            dest: dest("192.168.100.3", 80, 1, Forward::Fnat)
        }
    );
    assert_eq!(
        req("--add-laddr -z 192.168.100.200 -t 10.0.0.100:80 -F dpdk0"),
        Request::AddLaddr {
            key: tcp("10.0.0.100", 80),
            addr: "192.168.100.200".parse().unwrap(),
            dev: "dpdk0".into()
        }
    );
    assert_eq!(
        req("--add-laddr -z 192.168.100.201 -t 123.1.2.3:80 -F dpdk0"),
        Request::AddLaddr {
            key: tcp("123.1.2.3", 80),
            addr: "192.168.100.201".parse().unwrap(),
            dev: "dpdk0".into()
        }
    );
    let all = ListOpts {
        key: None,
        view: ListView::Table,
        exact: false,
        sort: true,
    };
    assert_eq!(p("-ln"), Ok(AdmCommand::List(all.clone())));
    assert_eq!(p("-Ln"), Ok(AdmCommand::List(all.clone())));
    assert_eq!(p("-L -n"), Ok(AdmCommand::List(all.clone())));
    assert_eq!(p(""), Ok(AdmCommand::List(all)));
    assert_eq!(p("-G"), Ok(AdmCommand::GetLaddr(None)));
}

#[test]
fn tutorial_dr_and_snat_commands() {
    assert_eq!(
        req("-a -t 192.168.100.254:80 -r 192.168.100.2 -g"),
        Request::AddDest {
            key: tcp("192.168.100.254", 80),
            dest: dest("192.168.100.2", 80, 1, Forward::Dr)
        }
    );
    assert_eq!(
        req(&format!("-A -s rr -H {MATCH0}")),
        Request::AddService {
            spec: ServiceSpec {
                key: ServiceKey::Match(MATCH0.into()),
                sched: "rr".into(),
                persistence: None,
                sched_flags: Vec::new(),
                synproxy: None,
                proxy_protocol: None,
            }
        }
    );
    assert_eq!(
        req(&format!("-a -H {MATCH0} -r 123.1.2.3:0 -w 100 -J")),
        Request::AddDest {
            key: ServiceKey::Match(MATCH0.into()),
            dest: dest("123.1.2.3", 0, 100, Forward::Snat)
        }
    );
    assert_eq!(
        req(&format!("-A -s rr -H {MATCH1}")),
        Request::AddService {
            spec: ServiceSpec {
                key: ServiceKey::Match(MATCH1.into()),
                sched: "rr".into(),
                persistence: None,
                sched_flags: Vec::new(),
                synproxy: None,
                proxy_protocol: None,
            }
        }
    );
    // With -H and no port, the real server's port is 0.
    assert_eq!(
        req(&format!("-a -H {MATCH1} -r 123.1.2.3 -w 100 -J")),
        Request::AddDest {
            key: ServiceKey::Match(MATCH1.into()),
            dest: dest("123.1.2.3", 0, 100, Forward::Snat)
        }
    );
}

#[test]
fn defaults_and_other_commands() {
    // ipvsadm defaults: wlc, direct routing, weight 1, persistence 300 s.
    assert_eq!(
        req("-A -t 10.0.0.1:80 -p"),
        Request::AddService {
            spec: ServiceSpec {
                key: tcp("10.0.0.1", 80),
                sched: "wlc".into(),
                persistence: Some(300),
                sched_flags: Vec::new(),
                synproxy: None,
                proxy_protocol: None,
            }
        }
    );
    assert_eq!(
        req("-E -u [2001:db8::1]:53 -s wrr -p 600"),
        Request::EditService {
            spec: ServiceSpec {
                key: ServiceKey::Vs {
                    proto: Proto::Udp,
                    vip: "2001:db8::1".parse().unwrap(),
                    port: 53
                },
                sched: "wrr".into(),
                persistence: Some(600),
                sched_flags: Vec::new(),
                synproxy: None,
                proxy_protocol: None,
            }
        }
    );
    assert_eq!(
        req("-a -t 10.0.0.1:80 -r 10.1.1.1"),
        Request::AddDest {
            key: tcp("10.0.0.1", 80),
            dest: dest("10.1.1.1", 80, 1, Forward::Dr)
        }
    );
    // DR and tunnel cannot change the port; NAT can.
    assert_eq!(
        req("-e -t 10.0.0.1:80 -r 10.1.1.1:8080 -i -w 0"),
        Request::EditDest {
            key: tcp("10.0.0.1", 80),
            dest: dest("10.1.1.1", 80, 0, Forward::Tunnel)
        }
    );
    let mut d = dest("10.1.1.1", 8080, 3, Forward::Nat);
    d.u_threshold = 100;
    d.l_threshold = 10;
    assert_eq!(
        req("-a -t 10.0.0.1:80 -r 10.1.1.1:8080 -m -w 3 -x 100 -y 10"),
        Request::AddDest {
            key: tcp("10.0.0.1", 80),
            dest: d
        }
    );
    assert_eq!(
        req("-d -t 10.0.0.1:80 -r 10.1.1.1"),
        Request::DelDest {
            key: tcp("10.0.0.1", 80),
            addr: "10.1.1.1".parse().unwrap(),
            port: 80
        }
    );
    assert_eq!(
        req("-D -t 10.0.0.1:80"),
        Request::DelService {
            key: tcp("10.0.0.1", 80)
        }
    );
    assert_eq!(req("-C"), Request::Clear);
    assert_eq!(req("--clear"), Request::Clear);
    assert_eq!(req("-Z"), Request::Zero { key: None });
    assert_eq!(
        req("-Z -t 10.0.0.1:80"),
        Request::Zero {
            key: Some(tcp("10.0.0.1", 80))
        }
    );
    assert_eq!(
        req("--del-laddr -t 10.0.0.1:80 -z 10.2.2.2 -F dpdk0"),
        Request::DelLaddr {
            key: tcp("10.0.0.1", 80),
            addr: "10.2.2.2".parse().unwrap(),
            dev: "dpdk0".into()
        }
    );
    assert_eq!(p("-S"), Ok(AdmCommand::Save));
    assert_eq!(p("-S -n"), Ok(AdmCommand::Save));
    assert_eq!(p("-R"), Ok(AdmCommand::Restore));
    assert_eq!(
        p("-G -t 10.0.0.1:80"),
        Ok(AdmCommand::GetLaddr(Some(tcp("10.0.0.1", 80))))
    );
    assert_eq!(p("-h"), Ok(AdmCommand::Help));
    assert_eq!(p("--version"), Ok(AdmCommand::Version));
}

#[test]
fn getopt_forms() {
    let expect = Request::AddService {
        spec: ServiceSpec {
            key: tcp("10.0.0.1", 80),
            sched: "rr".into(),
            persistence: None,
            sched_flags: Vec::new(),
            synproxy: None,
            proxy_protocol: None,
        },
    };
    assert_eq!(req("-At10.0.0.1:80 -srr"), expect);
    assert_eq!(
        req("--add-service --tcp-service=10.0.0.1:80 --scheduler rr"),
        expect
    );
    assert_eq!(req("-s rr -t 10.0.0.1:80 -A"), expect);
    assert_eq!(
        req("-a -t 10.0.0.1:80 -r 10.1.1.1 --fullnat --weight=7"),
        Request::AddDest {
            key: tcp("10.0.0.1", 80),
            dest: dest("10.1.1.1", 80, 7, Forward::Fnat)
        }
    );
    let list = |key, view, exact, sort| {
        Ok(AdmCommand::List(ListOpts {
            key,
            view,
            exact,
            sort,
        }))
    };
    assert_eq!(p("-lnc"), list(None, ListView::Conns, false, true));
    assert_eq!(p("-Ln --stats"), list(None, ListView::Stats, false, true));
    assert_eq!(
        p("-L --rate --exact"),
        list(None, ListView::Rate, true, true)
    );
    assert_eq!(
        p("--list -n --nosort -t 10.0.0.1:80"),
        list(Some(tcp("10.0.0.1", 80)), ListView::Table, false, false)
    );
}

#[test]
fn usage_errors_have_ipvsadm_messages() {
    assert!(usage_err("-A -t 10.0.0.100:99999").starts_with("Illegal port number"));
    assert!(
        usage_err("-a -t 10.0.0.100:80 -r 192.168.100.2:http").starts_with("Illegal port number")
    );
    assert_eq!(
        usage_err("-a -r 192.168.100.2 -b"),
        "You need to supply the 'service-address' option for the 'add-server' command"
    );
    assert_eq!(
        usage_err("-a -t 10.0.0.1:80 -b"),
        "You need to supply the 'real-server' option for the 'add-server' command"
    );
    assert_eq!(
        usage_err("--add-laddr -t 10.0.0.1:80 -z 10.2.2.2"),
        "You need to supply the 'ifname' option for the 'add-laddr' command"
    );
    assert_eq!(
        usage_err("-A -a -t 10.0.0.1:80"),
        "Two or more commands specified"
    );
    assert_eq!(usage_err("-Ln -C"), "Two or more commands specified");
    assert_eq!(
        usage_err("-A -t 10.0.0.1:80 -r 10.1.1.1"),
        "Illegal 'real-server' option with the 'add-service' command"
    );
    assert_eq!(
        usage_err("-C -t 10.0.0.1:80"),
        "Illegal 'service-address' option with the 'flush' command"
    );
    assert_eq!(
        usage_err("-L -c -t 10.0.0.1:80"),
        "The option 'service-address' conflicts with the 'connection' option in the 'list' command"
    );
    assert_eq!(
        usage_err("-Lc --stats"),
        "options conflicts in the list command"
    );
    assert_eq!(
        usage_err("-A -t 10.0.0.1:80 -s rr -s wrr"),
        "multiple 'scheduler' options specified"
    );
    assert_eq!(
        usage_err("-a -t 10.0.0.1:80 -r 10.1.1.1 -b -g"),
        "multiple 'forwarding-method' options specified"
    );
    assert_eq!(
        usage_err("-a -t 10.0.0.1:80 -r 10.1.1.1 -w 65536"),
        "illegal weight specified"
    );
    assert_eq!(
        usage_err("-a -t 10.0.0.1:80 -r 10.1.1.1 -w -1"),
        "illegal weight specified"
    );
    assert_eq!(
        usage_err("-a -t 10.0.0.1:80 -r 10.1.1.1 -x lots"),
        "illegal u_threshold specified"
    );
    assert_eq!(
        usage_err("-a -t 10.0.0.1:80 -r 10.1.1.1 -y 1.5"),
        "illegal l_threshold specified"
    );
    assert_eq!(
        usage_err("-A -t 10.0.0.1:80 -p 0"),
        "invalid timeout value `0' specified"
    );
    assert_eq!(
        usage_err("-A -t 10.0.0.1:80 -p abc"),
        "invalid timeout value `abc' specified"
    );
    assert_eq!(
        usage_err("-A -t 10.0.0.1"),
        "Zero port specified for non-persistent service"
    );
    assert_eq!(
        usage_err("-A -t 10.0.0.x:80"),
        "illegal virtual server address[:port] specified: 10.0.0.x:80"
    );
    assert_eq!(
        usage_err("-a -t 10.0.0.1:80 -r www.example.com"),
        "illegal real server address[:port] specified: www.example.com"
    );
    assert_eq!(
        usage_err("--add-laddr -t 10.0.0.1:80 -z 10.2.2.2:80 -F dpdk0"),
        "illegal local address: 10.2.2.2:80"
    );
    assert!(usage_err("-A -s rr -H proto=tcp").starts_with("illegal match specified"));
    assert!(usage_err("-A -s rr -H proto=gre,src-range=10.0.0.1")
        .starts_with("illegal match specified"));
    assert!(usage_err("-A -s rr -H proto=tcp,src-range=10.0.0.300")
        .starts_with("illegal match specified"));
    assert_eq!(
        parse_args(&[
            "-A",
            "-s",
            "rr",
            "-H",
            "proto=tcp,src-range=10.0.0.1,oif=dpdk 1"
        ])
        .unwrap_err()
        .message,
        "illegal match specified: blanks and quotes are not allowed"
    );
    assert!(usage_err("--bogus").starts_with("--bogus: unknown option"));
    assert!(usage_err("-L -q").starts_with("-q: unknown option"));
    assert_eq!(usage_err("-A -t"), "-t: missing argument");
    assert_eq!(
        usage_err("-A --tcp-service"),
        "--tcp-service: missing argument"
    );
    assert_eq!(usage_err("-L extra"), "unexpected argument extra");
    assert!(usage_err("-n").starts_with("No command specified"));
}

#[test]
fn restore_parses_lines_and_reports_the_bad_one() {
    let text =
        "\n# saved\n-A -t 10.0.0.100:80 -s rr\n  -a -t 10.0.0.100:80 -r 192.168.100.2:80 -b -w 1\n";
    assert_eq!(
        parse_restore(text),
        Ok(vec![
            Request::AddService {
                spec: ServiceSpec {
                    key: tcp("10.0.0.100", 80),
                    sched: "rr".into(),
                    persistence: None,
                    sched_flags: Vec::new(),
                    synproxy: None,
                    proxy_protocol: None,
                }
            },
            Request::AddDest {
                key: tcp("10.0.0.100", 80),
                dest: dest("192.168.100.2", 80, 1, Forward::Fnat)
            },
        ])
    );
    let quoted = format!("ipvsadm -A -H '{MATCH0}' -s rr");
    assert_eq!(
        parse_restore(&quoted),
        Ok(vec![Request::AddService {
            spec: ServiceSpec {
                key: ServiceKey::Match(MATCH0.into()),
                sched: "rr".into(),
                persistence: None,
                sched_flags: Vec::new(),
                synproxy: None,
                proxy_protocol: None,
            }
        }])
    );
    let e =
        parse_restore("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.1.1 -w x\n").unwrap_err();
    assert_eq!(e, CliError::usage("line 2: illegal weight specified"));
    let e = parse_restore("-L -n\n").unwrap_err();
    assert_eq!(e.code, 2);
    assert!(e.message.starts_with("line 1: "), "{}", e.message);
    assert!(parse_restore("-A -H 'proto=tcp\n").is_err());
}

#[test]
fn sched_flags_take_a_comma_list() {
    assert_eq!(
        req("-A -t 10.0.0.100:80 -s sh --sched-flags sh-fallback,sh-port"),
        Request::AddService {
            spec: ServiceSpec {
                key: tcp("10.0.0.100", 80),
                sched: "sh".into(),
                persistence: None,
                sched_flags: vec!["sh-fallback".into(), "sh-port".into()],
                synproxy: None,
                proxy_protocol: None,
            }
        }
    );
    assert!(usage_err("-A -t 10.0.0.100:80 -s sh --sched-flags sh-port,,x").contains("sched flag"));
    // Only services take flags.
    assert!(
        usage_err("-a -t 10.0.0.100:80 -r 192.168.100.2 --sched-flags sh-port")
            .contains("sched-flags")
    );
}

#[test]
fn synproxy_switch_as_dpvs_ipvsadm() {
    let spec = |s: &str| match req(s) {
        Request::AddService { spec } | Request::EditService { spec } => spec,
        r => panic!("{r:?}"),
    };
    assert_eq!(
        spec("-A -t 10.0.0.100:80 -s rr -j enable").synproxy,
        Some(true)
    );
    assert_eq!(
        spec("-A -t 10.0.0.100:80 -s rr --synproxy=enable").synproxy,
        Some(true)
    );
    assert_eq!(
        spec("-E -t 10.0.0.100:80 -s rr -j disable").synproxy,
        Some(false)
    );
    // -E without -j leaves it as it is.
    assert_eq!(spec("-E -t 10.0.0.100:80 -s rr").synproxy, None);
    assert!(usage_err("-A -t 10.0.0.100:80 -j on").contains("must be enable or disable, not `on'"));
    assert!(usage_err("-A -t 10.0.0.100:80 -j enable -j disable").contains("multiple 'synproxy'"));
    assert_eq!(
        usage_err("-a -t 10.0.0.100:80 -r 192.168.100.2 -b -j enable"),
        "Illegal 'synproxy' option with the 'add-server' command"
    );
}

#[test]
fn proxy_protocol_option_as_dpvs_ipvsadm() {
    use rvs_api::ProxyProtocol;
    let spec = |s: &str| match req(s) {
        Request::AddService { spec } | Request::EditService { spec } => spec,
        r => panic!("{r:?}"),
    };
    let pp = |s: &str| spec(s).proxy_protocol;
    assert_eq!(
        pp("-A -t 10.0.0.100:80 -s rr --proxy-protocol v1"),
        Some(ProxyProtocol::V1)
    );
    assert_eq!(
        pp("-A -t 10.0.0.100:80 --proxy-protocol=v2"),
        Some(ProxyProtocol::V2)
    );
    assert_eq!(
        pp("-E -t 10.0.0.100:80 --proxy-protocol disable"),
        Some(ProxyProtocol::Disable)
    );
    // -E without it leaves it as it is.
    assert_eq!(pp("-E -t 10.0.0.100:80 -s rr"), None);
    assert!(usage_err("-A -t 10.0.0.100:80 --proxy-protocol v3").contains("v1, v2 or disable"));
    assert!(
        usage_err("-A -t 10.0.0.100:80 --proxy-protocol v1 --proxy-protocol v2")
            .contains("multiple 'proxy-protocol'")
    );
    assert!(
        usage_err("-a -t 10.0.0.100:80 -r 192.168.100.2 --proxy-protocol v1")
            .contains("Illegal 'proxy-protocol' option with the 'add-server' command")
    );
}

//! The blklst/whtlst commands of DPVS's ipvsadm: parsing, errors, the
//! `--get-*` table and `-S`/`-R`.

use rvs_api::{
    AclKind, AclListing, AclRejected, AclRule, AclRuleInfo, Proto, Reply, Request, ServiceKey,
};

use super::{execute, format_acl, parse_args, parse_restore, AdmCommand};
use crate::client::{CliError, Transport};

fn p(s: &str) -> Result<AdmCommand, CliError> {
    let v: Vec<&str> = s.split_whitespace().collect();
    parse_args(&v)
}

fn tcp(vip: &str, port: u16) -> ServiceKey {
    ServiceKey::Vs {
        proto: Proto::Tcp,
        vip: vip.parse().unwrap(),
        port,
    }
}

fn rule(kind: AclKind, key: Option<ServiceKey>, subject: &str) -> AclRule {
    AclRule {
        kind,
        key,
        subject: subject.into(),
    }
}

#[test]
fn dpvs_list_commands_parse() {
    let add = |r| AdmCommand::Apply(Request::AddAcl { rule: r });
    assert_eq!(
        p("--add-blklst -t 10.0.0.100:80 -k 192.168.1.1").unwrap(),
        add(rule(
            AclKind::Blklst,
            Some(tcp("10.0.0.100", 80)),
            "192.168.1.1"
        ))
    );
    assert_eq!(
        p("-O -u [2001:db8::1]:53 -2 ipset:friends").unwrap(),
        add(rule(
            AclKind::Whtlst,
            Some(ServiceKey::Vs {
                proto: Proto::Udp,
                vip: "2001:db8::1".parse().unwrap(),
                port: 53
            }),
            "ipset:friends"
        ))
    );
    assert_eq!(
        p("--add-blklst --blklst=10.1.0.0/16").unwrap(),
        add(rule(AclKind::Blklst, None, "10.1.0.0/16")),
        "without a service: the global list"
    );
    assert_eq!(
        p("--del-whtlst -t10.0.0.100:80 -2 10.0.0.48").unwrap(),
        AdmCommand::Apply(Request::DelAcl {
            rule: rule(AclKind::Whtlst, Some(tcp("10.0.0.100", 80)), "10.0.0.48")
        })
    );
    assert_eq!(
        p("--get-blklst").unwrap(),
        AdmCommand::GetAcl {
            kind: AclKind::Blklst,
            key: None,
            stats: false
        }
    );
    assert_eq!(
        p("-W -t 10.0.0.100:80 --stats").unwrap(),
        AdmCommand::GetAcl {
            kind: AclKind::Whtlst,
            key: Some(tcp("10.0.0.100", 80)),
            stats: true
        }
    );
}

#[test]
fn list_command_errors_say_what_is_wrong() {
    let err = |s: &str| {
        let e = p(s).expect_err(s);
        assert_eq!(e.code, 2, "{s}");
        e.message
    };
    assert!(err("--add-blklst -t 10.0.0.100:80")
        .contains("You need to supply the 'blklst-address' option for the 'add-blklst' command"));
    assert!(err("--add-blklst -2 10.0.0.1")
        .contains("Illegal 'whtlst-address' option with the 'add-blklst' command"));
    assert!(err("--add-whtlst -2 10.0.0.x").contains("illegal whitelist entry format '10.0.0.x'"));
    assert!(err("--add-blklst -k ipset:").contains("illegal blacklist entry format"));
    assert!(err("--add-blklst --add-whtlst -k 1.2.3.4").contains("Two or more commands"));
    assert!(err("--add-blklst -k 1.2.3.4 -s rr").contains("-s: not an option"));
    assert!(err("--add-blklst -t 10.0.0.100:99999 -k 1.2.3.4").contains("Illegal port number"));
    assert!(err("--get-blklst -k 1.2.3.4").contains("Illegal 'blklst-address' option"));
}

fn listing() -> AclListing {
    AclListing {
        rules: vec![
            AclRuleInfo {
                rule: rule(AclKind::Whtlst, None, "10.9.0.0/16"),
                hits: 4,
            },
            AclRuleInfo {
                rule: rule(
                    AclKind::Whtlst,
                    Some(tcp("10.0.0.100", 80)),
                    "ipset:friends",
                ),
                hits: 12,
            },
        ],
        rejected: vec![AclRejected {
            key: Some(tcp("10.0.0.100", 80)),
            count: 3,
        }],
    }
}

#[test]
fn get_whtlst_prints_dpvs_columns_and_counters_with_stats() {
    assert_eq!(
        format_acl(&listing(), AclKind::Whtlst, false),
        "PROTO    VIP:VPORT                      WHITELIST\n\
         *        *                              10.9.0.0/16\n\
         TCP      10.0.0.100:80                  ipset:friends\n"
    );
    assert_eq!(
        format_acl(&listing(), AclKind::Whtlst, true),
        "PROTO    VIP:VPORT                      WHITELIST                      HITS\n\
         *        *                              10.9.0.0/16                    4\n\
         TCP      10.0.0.100:80                  ipset:friends                  12\n\
         TCP      10.0.0.100:80                  (no match: refused)            3\n"
    );
}

/// Answers `-S`'s questions: no service, the lists of [`listing`].
struct Fake;

impl Transport for Fake {
    fn call(&mut self, req: &Request) -> Result<Reply, CliError> {
        Ok(match req {
            Request::ListServices { .. } => Reply::Services(vec![]),
            Request::ListLaddrs { .. } => Reply::Laddrs(vec![]),
            Request::ListAcl {
                kind: AclKind::Whtlst,
                ..
            } => Reply::Acl(listing()),
            Request::ListAcl { .. } => Reply::Acl(AclListing {
                rules: vec![AclRuleInfo {
                    rule: rule(AclKind::Blklst, Some(tcp("10.0.0.100", 80)), "10.0.0.48"),
                    hits: 0,
                }],
                rejected: vec![],
            }),
            Request::ListLimits { .. } => Reply::Limits(vec![]),
            other => panic!("unexpected {other:?}"),
        })
    }
}

#[test]
fn save_writes_the_rules_and_restore_reads_them_back() {
    let out = execute(&AdmCommand::Save, &mut Fake, &mut std::io::empty()).unwrap();
    assert_eq!(
        out,
        "--add-blklst -t 10.0.0.100:80 -k 10.0.0.48\n\
         --add-whtlst -2 10.9.0.0/16\n\
         --add-whtlst -t 10.0.0.100:80 -2 ipset:friends\n"
    );
    let reqs = parse_restore(&out).unwrap();
    assert_eq!(
        reqs,
        [
            Request::AddAcl {
                rule: rule(AclKind::Blklst, Some(tcp("10.0.0.100", 80)), "10.0.0.48")
            },
            Request::AddAcl {
                rule: rule(AclKind::Whtlst, None, "10.9.0.0/16")
            },
            Request::AddAcl {
                rule: rule(
                    AclKind::Whtlst,
                    Some(tcp("10.0.0.100", 80)),
                    "ipset:friends"
                )
            },
        ]
    );
}

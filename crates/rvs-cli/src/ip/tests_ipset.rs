//! `rvsip ipset` as DPVS's `dpip ipset` documents it: commands, the list
//! output, test answers, and save/restore.

use rvs_api::{Family, IpsetEntry, IpsetInfo, IpsetMember, IpsetSpec, Reply, Request};

use super::ipset::{execute, format_ipsets, parse_restore, IpsetCmd, RESTORE_BATCH};
use super::{parse_args, IpCommand};
use crate::client::{CliError, Transport};

fn p(s: &str) -> Result<IpCommand, CliError> {
    let v: Vec<&str> = s.split_whitespace().collect();
    parse_args(&v)
}

fn apply(s: &str) -> Request {
    match p(s) {
        Ok(IpCommand::Ipset(IpsetCmd::Apply(r))) => r,
        other => panic!("{s}: {other:?}"),
    }
}

fn entry(e: &str, nomatch: bool, comment: Option<&str>) -> IpsetEntry {
    IpsetEntry {
        entry: e.into(),
        nomatch,
        comment: comment.map(str::to_string),
    }
}

#[test]
fn dpip_ipset_commands_parse() {
    assert_eq!(
        apply("ipset create foo hash:net hashsize 256 maxelem 1000 comment"),
        Request::IpsetCreate {
            spec: IpsetSpec {
                name: "foo".into(),
                kind: "hash:net".into(),
                family: Family::Inet,
                hashsize: Some(256),
                maxelem: Some(1000),
                comment: true,
            }
        }
    );
    match apply("ipset -6 create bar hash:ip,port") {
        Request::IpsetCreate { spec } => assert_eq!(spec.family, Family::Inet6),
        r => panic!("{r:?}"),
    }
    let v: Vec<&str> = vec![
        "ipset",
        "add",
        "foo",
        "192.168.88.200-192.168.88.255,tcp:8082",
        "nomatch",
        "comment",
        "bad guys",
    ];
    assert_eq!(
        parse_args(&v).unwrap(),
        IpCommand::Ipset(IpsetCmd::Apply(Request::IpsetAdd {
            name: "foo".into(),
            entries: vec![entry(
                "192.168.88.200-192.168.88.255,tcp:8082",
                true,
                Some("bad guys")
            )],
            force: false,
        }))
    );
    assert_eq!(
        apply("ipset add foo 10.0.0.1 -F"),
        Request::IpsetAdd {
            name: "foo".into(),
            entries: vec![entry("10.0.0.1", false, None)],
            force: true,
        }
    );
    assert_eq!(
        apply("ipset del foo 10.0.0.1"),
        Request::IpsetDel {
            name: "foo".into(),
            entries: vec!["10.0.0.1".into()],
            force: false,
        }
    );
    assert_eq!(
        apply("ipset destroy foo"),
        Request::IpsetDestroy { name: "foo".into() }
    );
    assert_eq!(apply("ipset flush"), Request::IpsetFlush { name: None });
    assert_eq!(
        p("-v ipset test foo 10.132.1.2,udp:10240").unwrap(),
        IpCommand::Ipset(IpsetCmd::Test {
            name: "foo".into(),
            entry: "10.132.1.2,udp:10240".into(),
            verbose: true,
        })
    );
    assert_eq!(
        p("ipset list foo -v").unwrap(),
        IpCommand::Ipset(IpsetCmd::List {
            name: Some("foo".into())
        })
    );
    assert_eq!(
        p("ipset").unwrap(),
        IpCommand::Ipset(IpsetCmd::List { name: None })
    );
}

#[test]
fn ipset_usage_errors() {
    let err = |s: &str| p(s).expect_err(s).message;
    assert!(err("ipset create foo").contains("missing set type"));
    assert!(err("ipset create foo hash:ip maxelem x").contains("invalid maxelem \"x\""));
    assert!(err("ipset create foo hash:ip family ipx").contains("invalid family \"ipx\""));
    assert!(err("ipset create foo hash:ip range 1.2.3.0/24")
        .contains("unknown create option \"range\""));
    assert!(err("ipset add foo").contains("missing entry"));
    assert!(err("ipset del foo 1.2.3.4 nomatch").contains("unexpected argument \"nomatch\""));
    assert!(err("ipset add foo 1.2.3.4 -x").contains("invalid option \"-x\""));
    assert!(err("ipset zap foo").contains("unknown command \"zap\""));
    assert!(err("ipset help").contains("hash:ip,port"));
}

fn foo() -> IpsetInfo {
    let m = |e: &str, nomatch: bool, c: Option<&str>| IpsetMember {
        entry: e.into(),
        nomatch,
        comment: c.map(str::to_string),
    };
    IpsetInfo {
        spec: IpsetSpec {
            name: "foo".into(),
            kind: "hash:net".into(),
            family: Family::Inet,
            hashsize: Some(1024),
            maxelem: Some(65536),
            comment: true,
        },
        size: 16992,
        references: 1,
        entries: 3,
        hits: 7,
        members: vec![
            m("192.168.88.222/32", false, Some("you are an exception")),
            m("192.168.88.200/29", true, None),
            m("192.168.88.0/24", false, None),
        ],
    }
}

#[test]
fn list_prints_what_dpip_prints() {
    assert_eq!(
        format_ipsets(&[foo()]),
        "Name: foo\n\
         Type: hash:net\n\
         Header: family inet  hashsize 1024  maxelem 65536  comment\n\
         Size in memory: 16992\n\
         References: 1\n\
         Hits: 7\n\
         Number of entries: 3\n\
         Members:\n\
         192.168.88.222/32  comment \"you are an exception\"\n\
         192.168.88.200/29 nomatch\n\
         192.168.88.0/24\n\
         \n"
    );
}

/// Answers list and test; records changes.
#[derive(Default)]
struct Fake {
    sent: Vec<Request>,
}

impl Transport for Fake {
    fn call(&mut self, req: &Request) -> Result<Reply, CliError> {
        Ok(match req {
            Request::IpsetList { .. } => Reply::Ipsets(vec![foo()]),
            Request::IpsetTest { entry, .. } => Reply::IpsetTest(entry.starts_with("192.168.88.")),
            other => {
                self.sent.push(other.clone());
                Reply::Ok
            }
        })
    }
}

#[test]
fn test_answers_true_false_or_dpips_sentence() {
    let run = |s: &str| match p(s).unwrap() {
        IpCommand::Ipset(c) => execute(&c, &mut Fake::default(), &mut std::io::empty()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(run("ipset test foo 192.168.88.1"), "true\n");
    assert_eq!(run("ipset test foo 10.0.0.1"), "false\n");
    assert_eq!(
        run("ipset -v test foo 192.168.88.1"),
        "192.168.88.1 is in set foo\n"
    );
    assert_eq!(
        run("ipset -v test foo 10.0.0.1"),
        "10.0.0.1 is NOT in set foo\n"
    );
}

#[test]
fn save_then_restore_recreates_the_set_in_batches() {
    let mut t = Fake::default();
    let saved = execute(
        &IpsetCmd::Save { name: None },
        &mut t,
        &mut std::io::empty(),
    )
    .unwrap();
    assert_eq!(
        saved,
        "create foo hash:net family inet hashsize 1024 maxelem 65536 comment\n\
         add foo 192.168.88.222/32  comment \"you are an exception\"\n\
         add foo 192.168.88.200/29 nomatch\n\
         add foo 192.168.88.0/24\n"
    );
    let reqs = parse_restore(&saved, false).unwrap();
    assert_eq!(
        reqs,
        [
            apply("ipset create foo hash:net family inet hashsize 1024 maxelem 65536 comment"),
            Request::IpsetAdd {
                name: "foo".into(),
                entries: vec![
                    entry("192.168.88.222/32", false, Some("you are an exception")),
                    entry("192.168.88.200/29", true, None),
                    entry("192.168.88.0/24", false, None),
                ],
                force: false,
            }
        ]
    );
    // A large file goes in batches; `ipset`-prefixed lines and comments are fine.
    let mut big = String::from("# sets\nipset create big hash:ip maxelem 100000\n");
    for i in 0..20_000u32 {
        big.push_str(&format!(
            "add big 10.{}.{}.{}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    let reqs = parse_restore(&big, true).unwrap();
    let sizes: Vec<usize> = reqs
        .iter()
        .filter_map(|r| match r {
            Request::IpsetAdd { entries, force, .. } => {
                assert!(force, "-F applies to every line");
                Some(entries.len())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        sizes,
        [RESTORE_BATCH, RESTORE_BATCH, 20_000 - 2 * RESTORE_BATCH]
    );
    let line = rvs_api::encode_request(&reqs[1]);
    // Long comments make smaller batches, each still within the limit.
    let long = "c".repeat(300);
    let mut text = String::from("create c hash:ip comment\n");
    for i in 0..3000u32 {
        text.push_str(&format!(
            "add c 10.1.{}.{} comment {long}\n",
            i >> 8,
            i & 255
        ));
    }
    let reqs = parse_restore(&text, false).unwrap();
    assert!(reqs.len() > 2, "split by size: {}", reqs.len());
    for r in &reqs {
        assert!(rvs_api::encode_request(r).len() < 1 << 20);
    }
    assert!(
        line.len() < 1 << 20,
        "a batch fits rvsd's line limit: {}",
        line.len()
    );
    // One bad line: nothing is sent, and the line is named.
    let e = parse_restore("create a hash:ip\nadd a 1.2.3.4 bogus\n", false).unwrap_err();
    assert!(e.message.starts_with("line 2:"), "{e:?}");
    let mut t = Fake::default();
    let cmd = IpsetCmd::Restore { force: false };
    let mut input = "create a hash:ip\nlist a\n".as_bytes();
    assert!(execute(&cmd, &mut t, &mut input).is_err());
    assert!(t.sent.is_empty());
}

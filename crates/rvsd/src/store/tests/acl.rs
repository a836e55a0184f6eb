//! Allow/deny lists and ipsets in the store: what the snapshot enforces,
//! what the listings show, and every refusal with a store left as it was.

use rvs_api::{
    AclKind, AclRule, ErrorKind, Family, IpsetEntry, IpsetSpec, Proto, Request, ServiceKey,
};
use rvs_core::addr::{proto, Addr};
use rvs_core::stats::DropReason;

use super::*;

fn vs() -> ServiceKey {
    tcp("10.0.0.100", 80)
}

fn base() -> Store {
    let mut s = store();
    run(&mut s, &fnat_two_arm());
    s
}

fn rule(kind: AclKind, key: Option<ServiceKey>, subject: &str) -> AclRule {
    AclRule {
        kind,
        key,
        subject: subject.into(),
    }
}

fn add(kind: AclKind, key: Option<ServiceKey>, subject: &str) -> Request {
    Request::AddAcl {
        rule: rule(kind, key, subject),
    }
}

fn create(name: &str, kind: &str) -> Request {
    Request::IpsetCreate {
        spec: IpsetSpec {
            name: name.into(),
            kind: kind.into(),
            family: Family::Inet,
            hashsize: None,
            maxelem: None,
            comment: false,
        },
    }
}

fn set_add(name: &str, entries: &[&str]) -> Request {
    Request::IpsetAdd {
        name: name.into(),
        entries: entries
            .iter()
            .map(|e| IpsetEntry {
                entry: e.to_string(),
                nomatch: false,
                comment: None,
            })
            .collect(),
        force: false,
    }
}

/// What the snapshot decides for a TCP connection from `src` to the tutorial VIP.
fn verdict(s: &Store, src: &str) -> Result<(), DropReason> {
    let snap = s.snapshot();
    let a: Addr = src.parse().unwrap();
    snap.acl().check(0, &a, proto::TCP, 80, 0)
}

fn fingerprint_acl(s: &Store) -> String {
    format!(
        "{}\n{:?}\n{:?}\n{:?}",
        fingerprint(s),
        s.list_acl(AclKind::Blklst, None),
        s.list_acl(AclKind::Whtlst, None),
        s.ipset_list(None, true)
    )
}

#[track_caller]
fn refused(s: &mut Store, req: Request, kind: ErrorKind, names: &[&str]) {
    refused_seen_by(fingerprint_acl, s, req, kind, names);
}

#[test]
fn lists_reach_the_snapshot_and_the_listing() {
    let mut s = base();
    run(
        &mut s,
        &[
            create("bad", "hash:net"),
            set_add("bad", &["192.0.2.0/24"]),
            add(AclKind::Blklst, Some(vs()), "10.0.0.48"),
            add(AclKind::Blklst, None, "ipset:bad"),
            add(AclKind::Whtlst, Some(vs()), "10.0.0.0/16"),
        ],
    );
    assert_eq!(verdict(&s, "10.0.0.48"), Err(DropReason::AclDeny));
    assert_eq!(verdict(&s, "192.0.2.9"), Err(DropReason::AclDeny));
    assert_eq!(verdict(&s, "10.0.5.5"), Ok(()));
    assert_eq!(verdict(&s, "10.1.5.5"), Err(DropReason::AclNotAllowed));
    let l = s.list_acl(AclKind::Blklst, None).unwrap();
    let shown: Vec<String> = l
        .rules
        .iter()
        .map(|r| {
            format!(
                "{:?} {} {}",
                r.rule.key.as_ref().map(|k| k.to_string()),
                r.rule.subject,
                r.hits
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            "None ipset:bad 1",
            "Some(\"TCP 10.0.0.100:80\") 10.0.0.48 1"
        ]
    );
    let w = s.list_acl(AclKind::Whtlst, Some(&vs())).unwrap();
    assert_eq!(w.rules[0].rule.subject, "10.0.0.0/16");
    assert_eq!(w.rules[0].hits, 1);
    assert_eq!(w.rejected[0].count, 1);
    // An ipset change keeps the rules and the set's counters.
    run(&mut s, &[set_add("bad", &["198.51.100.0/24"])]);
    assert_eq!(verdict(&s, "198.51.100.1"), Err(DropReason::AclDeny));
    let info = &s.ipset_list(Some("bad"), true).unwrap()[0];
    assert_eq!((info.entries, info.hits, info.references), (2, 2, 1));
    assert_eq!(info.members[0].entry, "192.0.2.0/24");
    // Deleting a rule lets the client in again.
    run(
        &mut s,
        &[Request::DelAcl {
            rule: rule(AclKind::Blklst, Some(vs()), "10.0.0.48"),
        }],
    );
    assert_eq!(verdict(&s, "10.0.0.48"), Ok(()));
}

#[test]
fn service_lists_go_with_the_service_and_clear_takes_the_global_ones() {
    let mut s = base();
    run(
        &mut s,
        &[
            add(AclKind::Blklst, Some(vs()), "10.0.0.48"),
            add(AclKind::Blklst, None, "10.0.0.49"),
            Request::DelService { key: vs() },
        ],
    );
    assert_eq!(s.list_acl(AclKind::Blklst, None).unwrap().rules.len(), 1);
    // A service added again under the same key starts without lists.
    run(&mut s, &[svc_add(&vs(), "rr")]);
    assert_eq!(verdict(&s, "10.0.0.48"), Ok(()));
    assert_eq!(verdict(&s, "10.0.0.49"), Err(DropReason::AclDeny));
    run(&mut s, &[Request::Clear]);
    assert!(s.list_acl(AclKind::Blklst, None).unwrap().rules.is_empty());
    assert!(s.snapshot().acl().is_empty());
}

#[test]
fn list_errors() {
    let mut s = base();
    run(
        &mut s,
        &[
            create("six", "hash:ip"),
            add(AclKind::Blklst, Some(vs()), "10.0.0.48"),
        ],
    );
    let six = Request::IpsetCreate {
        spec: IpsetSpec {
            name: "v6".into(),
            kind: "hash:ip".into(),
            family: Family::Inet6,
            hashsize: None,
            maxelem: None,
            comment: false,
        },
    };
    run(&mut s, &[six]);
    use ErrorKind::*;
    let udp = ServiceKey::Vs {
        proto: Proto::Udp,
        vip: ip("10.0.0.100"),
        port: 80,
    };
    refused(
        &mut s,
        add(AclKind::Blklst, Some(udp), "1.2.3.4"),
        NotFound,
        &["No such service", "UDP 10.0.0.100:80"],
    );
    refused(
        &mut s,
        add(
            AclKind::Blklst,
            Some(ServiceKey::Match("proto=tcp".into())),
            "1.2.3.4",
        ),
        Invalid,
        &["-t/-u", "not -H"],
    );
    refused(
        &mut s,
        add(AclKind::Blklst, Some(vs()), "10.0.0.48"),
        Exists,
        &["10.0.0.48 already exists", "TCP 10.0.0.100:80"],
    );
    refused(
        &mut s,
        add(AclKind::Whtlst, Some(vs()), "2001:db8::1"),
        Invalid,
        &["2001:db8::1", "address family"],
    );
    refused(
        &mut s,
        add(AclKind::Whtlst, Some(vs()), "ipset:v6"),
        Invalid,
        &["ipset:v6", "address family"],
    );
    refused(
        &mut s,
        add(AclKind::Whtlst, None, "ipset:nope"),
        NotFound,
        &["no such ipset nope"],
    );
    refused(
        &mut s,
        add(AclKind::Whtlst, None, "10.0.0.1/33"),
        Invalid,
        &["prefix length '33'"],
    );
    refused(
        &mut s,
        add(AclKind::Whtlst, None, "bogus"),
        Invalid,
        &["'bogus'", "ipset:NAME"],
    );
    refused(
        &mut s,
        Request::DelAcl {
            rule: rule(AclKind::Whtlst, Some(vs()), "10.0.0.48"),
        },
        NotFound,
        &["no such whtlst entry 10.0.0.48"],
    );
    refused(
        &mut s,
        Request::DelAcl {
            rule: rule(AclKind::Blklst, None, "10.0.0.48"),
        },
        NotFound,
        &["no such blklst entry 10.0.0.48 (global)"],
    );
}

#[test]
fn ipset_errors() {
    let mut s = base();
    run(
        &mut s,
        &[
            create("bad", "hash:ip"),
            set_add("bad", &["10.9.0.1"]),
            add(AclKind::Blklst, Some(vs()), "ipset:bad"),
        ],
    );
    use ErrorKind::*;
    refused(
        &mut s,
        create("bad", "hash:ip"),
        Exists,
        &["ipset bad already exists"],
    );
    refused(
        &mut s,
        create("x", "hash:mac"),
        Invalid,
        &["unsupported ipset type 'hash:mac'"],
    );
    refused(
        &mut s,
        create("a b", "hash:ip"),
        Invalid,
        &["invalid ipset name 'a b'"],
    );
    refused(
        &mut s,
        Request::IpsetDestroy { name: "bad".into() },
        Invalid,
        &["ipset bad is in use by blklst of TCP 10.0.0.100:80"],
    );
    refused(
        &mut s,
        Request::IpsetDestroy {
            name: "nope".into(),
        },
        NotFound,
        &["no such ipset nope"],
    );
    // One bad entry: none of the request's entries is added.
    refused(
        &mut s,
        set_add("bad", &["10.9.0.2", "10.9.0.300"]),
        Invalid,
        &["'10.9.0.300'"],
    );
    refused(
        &mut s,
        set_add("bad", &["10.9.0.1"]),
        Exists,
        &["10.9.0.1 is already in ipset bad"],
    );
    refused(
        &mut s,
        set_add("bad", &["2001::1"]),
        Invalid,
        &["2001::1", "inet"],
    );
    refused(
        &mut s,
        Request::IpsetDel {
            name: "bad".into(),
            entries: vec!["10.9.0.7".into()],
            force: false,
        },
        NotFound,
        &["10.9.0.7 is not in ipset bad"],
    );
    refused(
        &mut s,
        Request::IpsetTest {
            name: "bad".into(),
            entry: "x".into(),
        }
        .clone(),
        Invalid,
        &["does not change the configuration"],
    );
    assert!(s.ipset_test("bad", "10.9.0.1").unwrap());
    assert!(!s.ipset_test("bad", "10.9.0.2").unwrap());
    assert!(s.ipset_test("bad", "10.9.0.300").is_err());
    // Once its rule is gone, the set can go.
    run(
        &mut s,
        &[
            Request::DelAcl {
                rule: rule(AclKind::Blklst, Some(vs()), "ipset:bad"),
            },
            Request::IpsetDestroy { name: "bad".into() },
        ],
    );
    assert!(s.ipset_list(None, false).unwrap().is_empty());
}

#[test]
fn flush_empties_a_set_in_use_and_its_whitelist_then_admits_nobody() {
    let mut s = base();
    run(
        &mut s,
        &[
            create("ok", "hash:ip"),
            set_add("ok", &["10.8.0.0/16"]),
            add(AclKind::Whtlst, None, "ipset:ok"),
        ],
    );
    let info = &s.ipset_list(Some("ok"), false).unwrap()[0];
    assert_eq!((info.entries, info.references), (65536, 1));
    assert!(info.members.is_empty(), "headers only");
    assert_eq!(verdict(&s, "10.8.1.1"), Ok(()));
    run(&mut s, &[Request::IpsetFlush { name: None }]);
    assert_eq!(s.ipset_list(Some("ok"), false).unwrap()[0].entries, 0);
    assert_eq!(verdict(&s, "10.8.1.1"), Err(DropReason::AclNotAllowed));
}

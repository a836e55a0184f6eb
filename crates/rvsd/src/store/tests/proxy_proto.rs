//! `--proxy-protocol v1|v2|disable`: kept in the listing, built into the
//! snapshot, kept by edits that do not name it, and refused for UDP.

use rvs_api::{ErrorKind, ProxyProtocol, Request, ServiceKey, ServiceSpec};
use rvs_core::wire::proxy_proto::Version;

use super::*;

fn spec(key: ServiceKey, pp: Option<ProxyProtocol>) -> ServiceSpec {
    ServiceSpec {
        key,
        sched: "rr".into(),
        persistence: None,
        sched_flags: Vec::new(),
        synproxy: None,
        proxy_protocol: pp,
    }
}

fn state(s: &Store) -> (Version, Option<ProxyProtocol>) {
    (
        s.snapshot().services[0].proxy_protocol,
        s.list_services(None).unwrap()[0].spec.proxy_protocol,
    )
}

#[test]
fn set_listed_kept_by_edits_and_disabled() {
    let mut s = store();
    let key = tcp("10.0.0.100", 80);
    let add = Request::AddService {
        spec: spec(key.clone(), Some(ProxyProtocol::V1)),
    };
    s.apply(&add).unwrap();
    assert_eq!(state(&s), (Version::V1, Some(ProxyProtocol::V1)));
    let edit = |pp| Request::EditService {
        spec: spec(key.clone(), pp),
    };
    s.apply(&edit(None)).unwrap();
    assert_eq!(state(&s), (Version::V1, Some(ProxyProtocol::V1)));
    s.apply(&edit(Some(ProxyProtocol::V2))).unwrap();
    assert_eq!(state(&s), (Version::V2, Some(ProxyProtocol::V2)));
    s.apply(&edit(Some(ProxyProtocol::Disable))).unwrap();
    assert_eq!(state(&s), (Version::Off, None));
}

#[test]
fn a_udp_service_is_refused_naming_why() {
    let mut s = store();
    let key = ServiceKey::Vs {
        proto: rvs_api::Proto::Udp,
        vip: ip("10.0.0.100"),
        port: 53,
    };
    let e = s
        .apply(&Request::AddService {
            spec: spec(key, Some(ProxyProtocol::V2)),
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("needs a TCP virtual service"), "{e:?}");
}

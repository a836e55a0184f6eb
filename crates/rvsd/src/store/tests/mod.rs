//! Store tests: the DPVS tutorial's command sequences as requests, every
//! error with its kind and message, counters, ids and rates.
//!
//! The listings are rendered here in the tools' text formats so that they can
//! be compared with the tutorial's literal output.

mod acl;
mod bond;
mod counters;
mod errors;
mod fingerprint;
mod lifecycle;
mod limits;
mod mcast;
mod nat64;
mod proxy_proto;
mod save;
mod sched_flags;
mod synproxy;
mod tutorial;
mod vlan;

use std::net::IpAddr;

use rvs_api::{
    DestSpec, Forward, Proto, Request, RouteInfo, RouteSpec, Scope, ServiceKey, ServiceSpec,
};
use rvs_core::addr::Mac;
use rvs_core::conn::tcp::Timeouts;
use rvs_core::snapshot::PipelineConf;

use super::{PortDef, Store};

/// The sa_free DPVS shows for a fresh pool in the tutorial.
const SA_FREE: u64 = 1032176;

fn ports() -> Vec<PortDef> {
    vec![
        PortDef {
            name: "dpdk0".into(),
            iface: "eth1".into(),
            mac: Mac([0x02, 0, 0, 0, 0, 0x10]),
            mtu: 1500,
            kni: true,
            slave_of: None,
        },
        PortDef {
            name: "dpdk1".into(),
            iface: "eth2".into(),
            mac: Mac([0x02, 0, 0, 0, 0, 0x11]),
            mtu: 1500,
            kni: true,
            slave_of: None,
        },
    ]
}

fn store() -> Store {
    Store::new(ports(), 2, Timeouts::default(), PipelineConf::default())
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn tcp(vip: &str, port: u16) -> ServiceKey {
    ServiceKey::Vs {
        proto: Proto::Tcp,
        vip: ip(vip),
        port,
    }
}

fn addr_add(a: &str, plen: u8, dev: &str, sapool: bool) -> Request {
    Request::AddAddr {
        addr: ip(a),
        plen,
        dev: dev.into(),
        sapool,
    }
}

fn route_add(
    prefix: &str,
    plen: u8,
    via: Option<&str>,
    dev: &str,
    scope: Option<Scope>,
) -> Request {
    Request::AddRoute {
        route: RouteSpec {
            prefix: ip(prefix),
            plen,
            via: via.map(ip),
            dev: dev.into(),
            scope,
            src: None,
            mtu: None,
            metric: 0,
        },
    }
}

fn svc_add(key: &ServiceKey, sched: &str) -> Request {
    Request::AddService {
        spec: ServiceSpec {
            key: key.clone(),
            sched: sched.into(),
            persistence: None,
            sched_flags: Vec::new(),
            synproxy: None,
            proxy_protocol: None,
        },
    }
}

fn dest(a: &str, port: u16, weight: u32, forward: Forward) -> DestSpec {
    DestSpec {
        addr: ip(a),
        port,
        weight,
        forward,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn dest_add(key: &ServiceKey, d: DestSpec) -> Request {
    Request::AddDest {
        key: key.clone(),
        dest: d,
    }
}

fn laddr_add(key: &ServiceKey, a: &str, dev: &str) -> Request {
    Request::AddLaddr {
        key: key.clone(),
        addr: ip(a),
        dev: dev.into(),
    }
}

fn run(s: &mut Store, reqs: &[Request]) {
    for r in reqs {
        if let Err(e) = s.apply(r) {
            panic!("{r:?} failed: {e}");
        }
    }
}

fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::Host => "host",
        Scope::Link => "link",
        Scope::Global => "global",
        Scope::KniHost => "kni_host",
    }
}

/// A route as `dpip route show` prints it, without the trailing `proto`.
fn dpip_route(r: &RouteInfo) -> String {
    let z = |a: Option<IpAddr>| a.map_or("0.0.0.0".to_string(), |a| a.to_string());
    format!(
        "inet {}/{} via {} src {} dev {} mtu {} tos 0 scope {} metric {}",
        r.route.prefix,
        r.route.plen,
        z(r.route.via),
        z(r.route.src),
        r.route.dev,
        r.mtu,
        scope_name(r.scope),
        r.route.metric
    )
}

fn route_show(s: &Store) -> Vec<String> {
    s.list_routes().iter().map(dpip_route).collect()
}

/// `ipvsadm -ln` without its three header lines.
fn ipvsadm_ln(s: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for svc in s.list_services(None).expect("list") {
        out.push(format!("{} {}", svc.spec.key, svc.spec.sched));
        for d in &svc.dests {
            let ep = match d.spec.addr {
                IpAddr::V4(a) => format!("{a}:{}", d.spec.port),
                IpAddr::V6(a) => format!("[{a}]:{}", d.spec.port),
            };
            out.push(format!(
                "-> {ep} {} {} {} {}",
                d.spec.forward.column(),
                d.spec.weight,
                d.active,
                d.inactive
            ));
        }
    }
    out
}

/// `ipvsadm -G` without its header, with every pool unused.
fn ipvsadm_g(s: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for g in s.list_laddrs(None, |_| (0, SA_FREE, 0)).expect("list") {
        let vs = match &g.key {
            ServiceKey::Vs { vip, port, .. } => format!("{vip}:{port}"),
            ServiceKey::Match(m) => m.clone(),
        };
        out.push(format!("{vs} {}", g.laddrs.len()));
        for l in &g.laddrs {
            out.push(format!("{} {} {}", l.addr, l.conflicts, l.conns));
        }
    }
    out
}

/// `dpip addr show` (first line of each address, plus the pool line), every pool fresh.
fn addr_show(s: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for a in s.list_addrs(None, |_| Some((0, SA_FREE, 0))).expect("list") {
        out.push(format!(
            "inet {}/{} scope {} {}",
            a.addr,
            a.plen,
            scope_name(a.scope),
            a.dev
        ));
        if let Some((u, f, m)) = a.sapool {
            out.push(format!("sa_used {u} sa_free {f} sa_miss {m}"));
        }
    }
    out
}

/// Everything a client can observe, to check that a failed request changed nothing.
fn fingerprint(s: &Store) -> String {
    format!(
        "{}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        s.generation(),
        s.list_services(None),
        s.list_laddrs(None, |_| (1, 2, 3)),
        s.list_addrs(None, |_| Some((1, 2, 3))),
        s.list_routes(),
        s.static_neigh(None),
        s.steering()
    )
}

/// Applies `req`, which must fail with `kind` and a message naming each of
/// `names`, and leave what `observe` sees of the store as it was.
#[track_caller]
fn refused_seen_by(
    observe: fn(&Store) -> String,
    s: &mut Store,
    req: Request,
    kind: rvs_api::ErrorKind,
    names: &[&str],
) {
    let before = observe(s);
    let e = match s.apply(&req) {
        Ok(()) => panic!("{req:?} was accepted"),
        Err(e) => e,
    };
    assert_eq!(e.kind, kind, "{req:?}: {e}");
    for n in names {
        assert!(e.message.contains(n), "{req:?}: '{e}' does not name '{n}'");
    }
    assert_eq!(observe(s), before, "{req:?} changed the store");
}

/// The tutorial's two-arm FNAT script.
fn fnat_two_arm() -> Vec<Request> {
    let vs = tcp("10.0.0.100", 80);
    vec![
        addr_add("10.0.0.100", 32, "dpdk1", false),
        route_add("10.0.0.0", 16, None, "dpdk1", None),
        route_add("192.168.100.0", 24, None, "dpdk0", None),
        svc_add(&vs, "rr"),
        dest_add(&vs, dest("192.168.100.2", 80, 1, Forward::Fnat)),
        dest_add(&vs, dest("192.168.100.3", 80, 1, Forward::Fnat)),
        laddr_add(&vs, "192.168.100.200", "dpdk0"),
    ]
}

use std::net::IpAddr;

use rvs_api::{
    ApiError, DestInfo, ErrorKind, LaddrGroup, LaddrInfo, Proto, Reply, Request, ServiceInfo,
    ServiceKey,
};

use super::*;
use crate::conf::{parse_str, wanted_services};

const TUTORIAL: &str = include_str!("../../testdata/tutorial-master.conf");

fn wanted(text: &str) -> Vec<WantedService> {
    let loaded = parse_str(text, "keepalived.conf").expect("config parses");
    wanted_services(&loaded.config).expect("wanted services")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip80() -> ServiceKey {
    ServiceKey::Vs {
        proto: Proto::Tcp,
        vip: ip("192.168.100.254"),
        port: 80,
    }
}

/// An in-memory rvsd: answers the list requests and carries out the
/// changes with rvsd's errors for missing or existing objects; records
/// every request it was sent.
#[derive(Default)]
pub(crate) struct FakeRvsd {
    pub(crate) state: Current,
    pub(crate) sent: Vec<Request>,
    /// Requests to refuse (by equality) with this message.
    pub(crate) refuse: Vec<(Request, String)>,
    /// Not answering at all (rvsd not started yet).
    pub(crate) down: bool,
}

impl FakeRvsd {
    fn svc(&mut self, key: &ServiceKey) -> Result<usize, ApiError> {
        self.state
            .services
            .iter()
            .position(|s| &s.spec.key == key)
            .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("No such service {key}")))
    }

    fn laddrs(&mut self, key: &ServiceKey) -> &mut Vec<LaddrInfo> {
        if !self.state.laddrs.iter().any(|g| &g.key == key) {
            self.state.laddrs.push(LaddrGroup {
                key: key.clone(),
                laddrs: vec![],
            });
        }
        let g = self.state.laddrs.iter_mut().find(|g| &g.key == key);
        &mut g.expect("just added").laddrs
    }

    fn change(&mut self, r: &Request) -> Result<(), ApiError> {
        let exists = |m: String| Err(ApiError::new(ErrorKind::Exists, m));
        match r {
            Request::AddService { spec } => {
                if self.svc(&spec.key).is_ok() {
                    return exists("Service already exists".into());
                }
                self.state.services.push(ServiceInfo {
                    spec: spec.clone(),
                    dests: vec![],
                    stats: Default::default(),
                    rates: Default::default(),
                });
            }
            Request::EditService { spec } => {
                let i = self.svc(&spec.key)?;
                self.state.services[i].spec = spec.clone();
            }
            Request::DelService { key } => {
                let i = self.svc(key)?;
                self.state.services.remove(i);
                self.state.laddrs.retain(|g| &g.key != key);
            }
            Request::AddDest { key, dest } => {
                let i = self.svc(key)?;
                let ds = &mut self.state.services[i].dests;
                if ds
                    .iter()
                    .any(|d| d.spec.addr == dest.addr && d.spec.port == dest.port)
                {
                    return exists("Destination already exists".into());
                }
                ds.push(DestInfo {
                    spec: dest.clone(),
                    active: 0,
                    inactive: 0,
                    stats: Default::default(),
                    rates: Default::default(),
                });
            }
            Request::EditDest { key, dest } => {
                let i = self.svc(key)?;
                let d = self.state.services[i]
                    .dests
                    .iter_mut()
                    .find(|d| d.spec.addr == dest.addr && d.spec.port == dest.port)
                    .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "No such destination"))?;
                d.spec = dest.clone();
            }
            Request::DelDest { key, addr, port } => {
                let i = self.svc(key)?;
                let ds = &mut self.state.services[i].dests;
                let n = ds.len();
                ds.retain(|d| !(d.spec.addr == *addr && d.spec.port == *port));
                if ds.len() == n {
                    return Err(ApiError::new(ErrorKind::NotFound, "No such destination"));
                }
            }
            Request::AddLaddr { key, addr, dev } => {
                self.svc(key)?;
                let l = self.laddrs(key);
                if l.iter().any(|l| l.addr == *addr) {
                    return exists(format!("local address {addr} already exists"));
                }
                l.push(LaddrInfo {
                    addr: *addr,
                    dev: dev.clone(),
                    conflicts: 0,
                    conns: 0,
                    standby: false,
                });
            }
            Request::DelLaddr { key, addr, dev } => {
                self.svc(key)?;
                let l = self.laddrs(key);
                let n = l.len();
                l.retain(|l| !(l.addr == *addr && &l.dev == dev));
                if l.len() == n {
                    return Err(ApiError::new(ErrorKind::NotFound, "No such local address"));
                }
            }
            other => panic!("the reconciler sent an unexpected request {other:?}"),
        }
        Ok(())
    }
}

impl Transport for FakeRvsd {
    fn call(&mut self, req: &Request) -> Result<Reply, CliError> {
        if self.down {
            return Err(CliError::failure("cannot connect: Connection refused"));
        }
        match req {
            Request::ListServices { key: None } => {
                return Ok(Reply::Services(self.state.services.clone()))
            }
            Request::ListLaddrs { key: None } => {
                let groups = self.state.laddrs.clone();
                return Ok(Reply::Laddrs(groups));
            }
            _ => {}
        }
        self.sent.push(req.clone());
        if let Some((_, m)) = self.refuse.iter().find(|(r, _)| r == req) {
            return Ok(Reply::Error(ApiError::new(ErrorKind::Invalid, m.clone())));
        }
        Ok(match self.change(req) {
            Ok(()) => Reply::Ok,
            Err(e) => Reply::Error(e),
        })
    }
}

/// rvsd holding exactly `w` (as if applied earlier), owned.
fn applied(w: &[WantedService]) -> (FakeRvsd, Reconciler) {
    let mut rvsd = FakeRvsd::default();
    let mut rec = Reconciler::new();
    let report = rec.reconcile(&mut rvsd, w).unwrap();
    assert!(report.ok(), "{:?}", report.failures);
    rvsd.sent.clear();
    (rvsd, rec)
}

#[test]
fn tutorial_on_empty_rvsd_adds_service_dests_and_laddrs() {
    let w = wanted(TUTORIAL);
    let reqs = plan(&w, &Current::default(), &Owned::new());
    let words: Vec<String> = reqs.iter().map(describe).collect();
    assert_eq!(
        words,
        [
            "add service TCP 192.168.100.254:80 (scheduler rr)",
            "add real server 192.168.100.2:80 (weight 100) to TCP 192.168.100.254:80",
            "add real server 192.168.100.3:80 (weight 100) to TCP 192.168.100.254:80",
            "add local address 192.168.100.200 on dpdk0 to TCP 192.168.100.254:80",
            "add local address 192.168.100.201 on dpdk0 to TCP 192.168.100.254:80",
        ]
    );
}

#[test]
fn reloading_the_tutorial_twice_sends_nothing_the_second_time() {
    let w = wanted(TUTORIAL);
    let mut rvsd = FakeRvsd::default();
    let mut rec = Reconciler::new();
    let first = rec.reconcile(&mut rvsd, &w).unwrap();
    assert!(first.ok(), "{:?}", first.failures);
    assert_eq!(first.done, 5);
    rvsd.sent.clear();
    let w2 = wanted(TUTORIAL);
    let second = rec.reconcile(&mut rvsd, &w2).unwrap();
    assert_eq!(second, ApplyReport::default());
    assert!(rvsd.sent.is_empty(), "{:?}", rvsd.sent);
}

#[test]
fn identical_state_gives_no_request() {
    let w = wanted(TUTORIAL);
    let (rvsd, rec) = applied(&w);
    assert_eq!(plan(&w, &rvsd.state, rec.owned()), vec![]);
}

#[test]
fn weight_change_is_one_edit_dest() {
    let w = wanted(TUTORIAL);
    let (rvsd, rec) = applied(&w);
    let w2 = wanted(&TUTORIAL.replacen("weight 100", "weight 50", 1));
    let reqs = plan(&w2, &rvsd.state, rec.owned());
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    match &reqs[0] {
        Request::EditDest { key, dest } => {
            assert_eq!(key, &vip80());
            assert_eq!(
                (dest.addr, dest.port, dest.weight),
                (ip("192.168.100.2"), 80, 50)
            );
        }
        other => panic!("expected EditDest, got {other:?}"),
    }
}

#[test]
fn removed_real_server_is_one_del_dest() {
    let w = wanted(TUTORIAL);
    let (mut rvsd, mut rec) = applied(&w);
    let mut w2 = w.clone();
    w2[0].dests.retain(|d| d.addr != ip("192.168.100.3"));
    let reqs = plan(&w2, &rvsd.state, rec.owned());
    assert_eq!(
        reqs,
        vec![Request::DelDest {
            key: vip80(),
            addr: ip("192.168.100.3"),
            port: 80
        }]
    );
    // Applied, rvsd holds exactly the wanted real servers.
    assert!(rec.reconcile(&mut rvsd, &w2).unwrap().ok());
    let dests: Vec<IpAddr> = rvsd.state.services[0]
        .dests
        .iter()
        .map(|d| d.spec.addr)
        .collect();
    assert_eq!(dests, vec![ip("192.168.100.2")]);
}

#[test]
fn added_virtual_server_adds_only_it() {
    let w = wanted(TUTORIAL);
    let (rvsd, rec) = applied(&w);
    let extra = "virtual_server 10.0.0.1 53 {\n protocol UDP\n lb_algo wrr\n lb_kind NAT\n real_server 10.1.0.1 53 {\n weight 3\n }\n}\n";
    let w2 = wanted(&format!("{TUTORIAL}{extra}"));
    let reqs = plan(&w2, &rvsd.state, rec.owned());
    let words: Vec<String> = reqs.iter().map(describe).collect();
    assert_eq!(
        words,
        [
            "add service UDP 10.0.0.1:53 (scheduler wrr)",
            "add real server 10.1.0.1:53 (weight 3) to UDP 10.0.0.1:53",
        ]
    );
}

#[test]
fn scheduler_or_persistence_change_is_one_edit_service() {
    let w = wanted(TUTORIAL);
    let (rvsd, rec) = applied(&w);
    let w2 = wanted(&TUTORIAL.replace("lb_algo rr", "lb_algo wlc\npersistence_timeout 30"));
    let reqs = plan(&w2, &rvsd.state, rec.owned());
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    match &reqs[0] {
        Request::EditService { spec } => {
            assert_eq!(spec.key, vip80());
            assert_eq!((spec.sched.as_str(), spec.persistence), ("wlc", Some(30)));
        }
        other => panic!("expected EditService, got {other:?}"),
    }
    // Scheduler flags in another order (rvsd lists them in ipvsadm's) are the same.
    let mut w3 = w.clone();
    w3[0].spec.sched = "sh".into();
    w3[0].spec.sched_flags = vec!["sh-port".into(), "sh-fallback".into()];
    let mut cur = rvsd.state.clone();
    cur.services[0].spec.sched = "sh".into();
    cur.services[0].spec.sched_flags = vec!["sh-fallback".into(), "sh-port".into()];
    assert_eq!(plan(&w3, &cur, rec.owned()), vec![]);
}

#[test]
fn laddr_changes_delete_and_add_only_the_difference() {
    let w = wanted(TUTORIAL);
    let (rvsd, rec) = applied(&w);
    let text = TUTORIAL.replace("192.168.100.201 dpdk0", "192.168.100.202 dpdk0");
    let reqs = plan(&wanted(&text), &rvsd.state, rec.owned());
    assert_eq!(
        reqs,
        vec![
            Request::DelLaddr {
                key: vip80(),
                addr: ip("192.168.100.201"),
                dev: "dpdk0".into()
            },
            Request::AddLaddr {
                key: vip80(),
                addr: ip("192.168.100.202"),
                dev: "dpdk0".into()
            },
        ]
    );
}

#[test]
fn unwanted_service_is_deleted_only_when_owned() {
    let w = wanted(TUTORIAL);
    let (mut rvsd, mut rec) = applied(&w);
    // A service added by an operator with rvsadm, never in the file.
    let theirs = ServiceKey::Vs {
        proto: Proto::Tcp,
        vip: ip("10.9.9.9"),
        port: 443,
    };
    rvsd.change(&Request::AddService {
        spec: ServiceSpec {
            key: theirs.clone(),
            sched: "rr".into(),
            persistence: None,
            sched_flags: vec![],
            synproxy: None,
            proxy_protocol: None,
        },
    })
    .unwrap();
    // The file loses its virtual server: ours goes, theirs stays.
    let report = rec.reconcile(&mut rvsd, &[]).unwrap();
    assert!(report.ok(), "{:?}", report.failures);
    assert_eq!(rvsd.sent, vec![Request::DelService { key: vip80() }]);
    let keys: Vec<&ServiceKey> = rvsd.state.services.iter().map(|s| &s.spec.key).collect();
    assert_eq!(keys, vec![&theirs]);
    assert!(rec.owned().is_empty());
}

#[test]
fn match_keys_compare_in_rvsd_spelling() {
    let text = "virtual_server match SNAT {\n protocol TCP\n lb_algo rr\n lb_kind SNAT\n src-range 192.168.100.0-192.168.100.254:0-65535\n oif dpdk1\n real_server 10.0.0.1 0 {\n weight 1\n }\n}\n";
    let w = wanted(text);
    let (mut rvsd, rec) = applied(&w);
    // rvsd lists the key in its canonical spelling.
    let canon = canonical_key(&w[0].spec.key);
    assert_eq!(
        canon,
        ServiceKey::Match("proto=tcp,src-range=192.168.100.0-192.168.100.254,oif=dpdk1".into())
    );
    assert_ne!(
        canon, w[0].spec.key,
        "the test needs a non-canonical spelling"
    );
    rvsd.state.services[0].spec.key = canon.clone();
    assert_eq!(plan(&w, &rvsd.state, rec.owned()), vec![]);
    assert!(rec.owned().contains(&canon));
}

#[test]
fn apply_reports_each_failure_and_skips_a_service_that_could_not_be_added() {
    let w = wanted(TUTORIAL);
    let reqs = plan(&w, &Current::default(), &Owned::new());
    let mut rvsd = FakeRvsd {
        refuse: vec![(reqs[0].clone(), "invalid scheduler 'rr'".into())],
        ..FakeRvsd::default()
    };
    let report = apply(&mut rvsd, &reqs);
    assert_eq!(report.done, 0);
    assert_eq!(
        rvsd.sent,
        vec![reqs[0].clone()],
        "dependent requests were sent"
    );
    assert_eq!(report.failures.len(), 5);
    assert_eq!(
        report.failures[0].to_string(),
        "cannot add service TCP 192.168.100.254:80 (scheduler rr): invalid scheduler 'rr'"
    );
    assert_eq!(
        report.failures[1].to_string(),
        "cannot add real server 192.168.100.2:80 (weight 100) to TCP 192.168.100.254:80: skipped: service TCP 192.168.100.254:80 could not be added"
    );
    // A refused dest does not stop the others.
    let mut rvsd = FakeRvsd {
        refuse: vec![(reqs[1].clone(), "no route to 192.168.100.2".into())],
        ..FakeRvsd::default()
    };
    let report = apply(&mut rvsd, &reqs);
    assert_eq!(report.done, 4);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].request, reqs[1]);
    assert!(report.failures[0].message.contains("no route"));
}

#[test]
fn unreachable_rvsd_is_an_error_naming_the_socket() {
    let mut t = SocketTransport::new("rvs-keepalived", "/nonexistent/rvs-ka-test.sock");
    let e = Reconciler::new().reconcile(&mut t, &[]).unwrap_err();
    assert!(
        e.message
            .starts_with("rvs-keepalived: cannot connect to rvsd at /nonexistent/rvs-ka-test.sock"),
        "{}",
        e.message
    );
}

#[test]
fn syn_proxy_in_the_file_turns_the_synproxy_on_and_off() {
    let w = wanted(TUTORIAL);
    assert_eq!(w[0].spec.synproxy, Some(false));
    let (mut rvsd, rec) = applied(&w);
    let on = wanted(&TUTORIAL.replace("lb_algo rr", "lb_algo rr\n    syn_proxy"));
    let reqs = plan(&on, &rvsd.state, rec.owned());
    match &reqs[..] {
        [Request::EditService { spec }] => assert_eq!(spec.synproxy, Some(true)),
        other => panic!("expected one EditService, got {other:?}"),
    }
    rvsd.change(&reqs[0]).unwrap();
    assert_eq!(
        plan(&on, &rvsd.state, rec.owned()),
        vec![],
        "a reload sends nothing"
    );
    let reqs = plan(&w, &rvsd.state, rec.owned());
    match &reqs[..] {
        [Request::EditService { spec }] => assert_eq!(spec.synproxy, Some(false)),
        other => panic!("expected one EditService, got {other:?}"),
    }
    // rvsd lists "off" as absent: the same.
    rvsd.state.services[0].spec.synproxy = None;
    assert_eq!(plan(&w, &rvsd.state, rec.owned()), vec![]);
}

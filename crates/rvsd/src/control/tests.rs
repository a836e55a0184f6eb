//! The control plane against real pipeline workers served by the worker
//! loop's own query code, and the socket's limits.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rvs_api::{ConnCursor, ConnInfo, ErrorKind, Proto, Reply, Request, ServiceKey};
use rvs_core::addr::{proto, Addr, Mac};
use rvs_core::conn::tcp::Timeouts;
use rvs_core::conn::FwdMode;
use rvs_core::lab::{self, DestSpec, FrameSpec};
use rvs_core::pipeline::{Packet, Verdict, Worker, WorkerConf};
use rvs_core::sched::SchedKind;
use rvs_core::service::ServiceKey as CoreKey;
use rvs_core::snapshot::PipelineConf;
use rvs_core::stats::{DropCounters, WorkerGauges};

use super::socket::{bind_private, serve, serve_with, Limits};
use super::{Control, Query, WorkerHandle, ASK_TIMEOUT};
use crate::store::{PortDef, Store};

fn control(workers: Vec<WorkerHandle>) -> Arc<Control> {
    let ports = ["dpdk0", "dpdk1"]
        .iter()
        .enumerate()
        .map(|(i, n)| PortDef {
            name: n.to_string(),
            iface: format!("eth{i}"),
            mac: Mac([2, 0, 0, 0, 0, i as u8]),
            mtu: 1500,
            kni: false,
            slave_of: None,
        })
        .collect();
    let store = Store::new(
        ports,
        workers.len() as u16,
        Timeouts::default(),
        PipelineConf::default(),
    );
    Arc::new(Control {
        snap: Arc::new(ArcSwap::from_pointee(store.snapshot())),
        store: Mutex::new(store),
        workers,
        started: Instant::now(),
        conn_capacity: 1 << 16,
        links: Box::new(Vec::new),
        on_change: Box::new(|_| {}),
        reload: Arc::new(AtomicBool::new(false)),
        sync: Arc::new(crate::sync::SyncCtl::new(Default::default(), 1)),
        capture: Default::default(),
        handover: None,
        followers: Default::default(),
    })
}

/// A worker whose query channel nobody serves, with its gauges.
fn silent_worker(conns: u64) -> (WorkerHandle, mpsc::Receiver<Query>) {
    let (tx, rx) = mpsc::channel();
    let gauges = Arc::new(WorkerGauges::default());
    gauges.conns.store(conns, Ordering::Relaxed);
    let h = WorkerHandle {
        queries: tx,
        drops: Arc::new(DropCounters::default()),
        gauges,
    };
    (h, rx)
}

/// TCP services on the lab VIP, ports 80 and 81, each over two real servers.
fn two_services(workers: u16) -> rvs_core::snapshot::Snapshot {
    let svc = |id, vport| {
        lab::service(
            id,
            CoreKey::Vs {
                proto: proto::TCP,
                vip: lab::VIP,
                vport,
            },
            SchedKind::Rr,
            &[
                DestSpec::new(lab::rs_ip(0), vport, FwdMode::Fnat),
                DestSpec::new(lab::rs_ip(1), vport, FwdMode::Fnat),
            ],
            &[(lab::LIP, lab::LAN)],
            0,
            workers as usize,
        )
    };
    lab::snapshot(workers, vec![svc(1, 80), svc(2, 81)], 2)
}

/// Worker `id` of `workers` with `conns` connections per virtual port, in
/// that order (so the first port's fill the first slots).
fn worker_with(id: u16, workers: u16, conns: &[(u16, u16)]) -> Worker {
    let mut w = Worker::new(
        WorkerConf {
            id,
            conn_capacity: 1 << 16,
            ..WorkerConf::default()
        },
        Arc::new(two_services(workers)),
        0,
    );
    let mut buf = vec![0u8; 2048];
    for (k, &(vport, n)) in conns.iter().enumerate() {
        for i in 0..n {
            let cip = Addr::v4(10, 1, k as u8, (i / 50_000) as u8);
            let f = FrameSpec::tcp(cip, 1 + i % 50_000, lab::VIP, vport, 0x02).to_vec();
            buf[64..64 + f.len()].copy_from_slice(&f);
            let mut p = Packet {
                buf: &mut buf,
                head: 64,
                len: f.len(),
                port: lab::WAN,
                csum_ok: false,
            };
            let v = w.process(&mut p, 0);
            assert_eq!(v, Verdict::Transmit(lab::LAN), "{:?}", w.drops().nonzero());
        }
    }
    w
}

/// Runs `w` on a thread that serves queries with the worker loop's code.
struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(w: Worker) -> (WorkerHandle, Running) {
    let (tx, rx) = mpsc::channel();
    let h = WorkerHandle {
        queries: tx,
        drops: w.drops().clone(),
        gauges: w.gauges().clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut scans = super::ConnScans::default();
        while !s.load(Ordering::Relaxed) {
            crate::runtime::serve_queries(&w, &[], &rx, &mut scans, &mut None, &mut None, 0);
            if scans.is_idle() {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    });
    (
        h,
        Running {
            stop,
            thread: Some(thread),
        },
    )
}

fn tcp(port: u16) -> ServiceKey {
    ServiceKey::Vs {
        proto: Proto::Tcp,
        vip: IpAddr::from([10, 0, 0, 100]),
        port,
    }
}

/// Every page from the start; the pages and all the connections.
fn all_pages(ctl: &Control, key: Option<ServiceKey>, limit: usize) -> (usize, Vec<ConnInfo>) {
    let mut cursor = Some(ConnCursor::default());
    let (mut pages, mut all) = (0, Vec::new());
    while let Some(c) = cursor {
        let req = Request::ListConnPage {
            key: key.clone(),
            cursor: c,
            limit,
        };
        match ctl.handle(&req) {
            Reply::ConnPage(p) => {
                assert!(p.conns.len() <= limit, "{} > {limit}", p.conns.len());
                pages += 1;
                all.extend(p.conns);
                cursor = p.next;
            }
            other => panic!("{other:?}"),
        }
    }
    (pages, all)
}

#[test]
fn status_counts_from_gauges_without_asking_workers() {
    // Nobody serves these workers' queries: asking them would time out.
    let (a, _qa) = silent_worker(123);
    let (b, _qb) = silent_worker(7);
    let ctl = control(vec![a, b]);
    let t = Instant::now();
    let Reply::Status(s) = ctl.handle(&Request::Status) else {
        panic!("no status");
    };
    assert_eq!(s.conns, 130);
    assert!(t.elapsed() < ASK_TIMEOUT / 4, "took {:?}", t.elapsed());
    // With real workers the gauge is the table's count.
    let (h, _r) = run(worker_with(0, 1, &[(80, 300), (81, 20)]));
    let ctl = control(vec![h]);
    let Reply::Status(s) = ctl.handle(&Request::Status) else {
        panic!("no status");
    };
    assert_eq!(s.conns, 320);
}

#[test]
fn pages_list_every_conn_exactly_once() {
    let (h0, _r0) = run(worker_with(0, 2, &[(80, 5000)]));
    let (h1, _r1) = run(worker_with(1, 2, &[(80, 3000), (81, 2000)]));
    let ctl = control(vec![h0, h1]);
    let (pages, all) = all_pages(&ctl, None, 1000);
    assert_eq!(all.len(), 10_000);
    assert!(pages >= 10, "{pages} pages");
    let unique: BTreeSet<_> = all.iter().map(|c| (c.worker, c.client, c.virt)).collect();
    assert_eq!(unique.len(), 10_000, "each connection exactly once");
    assert_eq!(all.iter().filter(|c| c.worker == 1).count(), 5000);
    // The one-shot request is assembled from the same pages.
    let Reply::Conns(v) = ctl.handle(&Request::ListConns {
        key: None,
        limit: 7000,
    }) else {
        panic!("no conns");
    };
    assert_eq!(v.len(), 7000);
}

#[test]
fn service_filter_applies_before_the_limit() {
    // 3,000 connections to :80 fill the first slots, 50 to :81 come after.
    let (h, _r) = run(worker_with(0, 1, &[(80, 3000), (81, 50)]));
    let ctl = control(vec![h]);
    let req = Request::ListConnPage {
        key: Some(tcp(81)),
        cursor: ConnCursor::default(),
        limit: 20,
    };
    let Reply::ConnPage(p) = ctl.handle(&req) else {
        panic!("no page");
    };
    assert_eq!(p.conns.len(), 20, "limit matching connections");
    assert!(p.conns.iter().all(|c| c.virt.1 == 81));
    let (_, all) = all_pages(&ctl, Some(tcp(81)), 20);
    assert_eq!(all.len(), 50);
    let Reply::Conns(v) = ctl.handle(&Request::ListConns {
        key: Some(tcp(81)),
        limit: 20,
    }) else {
        panic!("no conns");
    };
    assert_eq!(v.len(), 20, "the one-shot request too");
    assert!(v.iter().all(|c| c.virt.1 == 81));
}

#[test]
fn a_worker_that_does_not_answer_is_an_error_not_a_gap() {
    let (h0, _r0) = run(worker_with(0, 2, &[(80, 10)]));
    let (h1, _q1) = silent_worker(10);
    let ctl = control(vec![h0, h1]);
    let Reply::Error(e) = ctl.handle(&Request::ListConns {
        key: None,
        limit: 100,
    }) else {
        panic!("a listing without worker 1");
    };
    assert_eq!(e.kind, ErrorKind::Internal);
    assert!(e.message.contains("worker 1 did not answer"), "{e}");
}

// ---- the socket ----

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "rvsd-ctl-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

struct Served {
    path: String,
    stop: Arc<AtomicBool>,
    dir: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn served(limits: Option<Limits>) -> Served {
    let dir = temp_dir();
    let path = dir.join("run/rvs.sock").to_string_lossy().into_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let (h, _q) = silent_worker(0);
    let ctl = control(vec![h]);
    match limits {
        Some(l) => serve_with(&path, ctl, stop.clone(), l),
        None => serve(&path, ctl, stop.clone()),
    }
    .expect("serve");
    Served { path, stop, dir }
}

fn connect(path: &str) -> UnixStream {
    let s = UnixStream::connect(path).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// The next line the daemon sends, or "" at EOF.
fn read_line(s: &UnixStream) -> String {
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .expect("a line in time");
    line
}

fn status_ok(path: &str) -> bool {
    let mut s = connect(path);
    s.write_all(rvs_api::encode_request(&Request::Status).as_bytes())
        .expect("send");
    matches!(rvs_api::decode_reply(&read_line(&s)), Ok(Reply::Status(_)))
}

fn error_of(line: &str) -> rvs_api::ApiError {
    match rvs_api::decode_reply(line) {
        Ok(Reply::Error(e)) => e,
        other => panic!("expected an error line, got {other:?} from {line:?}"),
    }
}

#[test]
fn socket_is_0600_from_bind_in_a_0755_directory() {
    let s = served(None);
    let mode = |p: &str| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&s.path), 0o600);
    let dir = std::path::Path::new(&s.path).parent().expect("dir");
    assert_eq!(mode(&dir.to_string_lossy()), 0o755);
    // The bind itself, before anything else touches the file.
    let p = s.dir.join("bare.sock");
    let _l = bind_private(&p).expect("bind");
    assert_eq!(mode(&p.to_string_lossy()), 0o600, "mode at bind time");
    assert!(status_ok(&s.path));
}

#[test]
fn a_line_longer_than_the_limit_is_refused_and_closed() {
    let s = served(None);
    let mut c = connect(&s.path);
    c.set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let big = vec![b'x'; super::socket::MAX_LINE + 1];
    // The daemon may close before taking everything: a write error is fine.
    let _ = c.write_all(&big);
    let e = error_of(&read_line(&c));
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("longer than 1048576 bytes"), "{e}");
    assert_eq!(read_line(&c), "", "closed after the error");
    assert!(status_ok(&s.path), "still serving others");
}

#[test]
fn an_idle_client_is_disconnected() {
    let s = served(Some(Limits {
        idle: Duration::from_millis(300),
        ..Limits::default()
    }));
    let mut c = connect(&s.path);
    // A request, then silence; and a partial line does not count as activity.
    c.write_all(rvs_api::encode_request(&Request::Status).as_bytes())
        .expect("send");
    assert!(matches!(
        rvs_api::decode_reply(&read_line(&c)),
        Ok(Reply::Status(_))
    ));
    let t = Instant::now();
    c.write_all(b"{\"v\":1,").expect("send");
    let e = error_of(&read_line(&c));
    assert!(
        e.message.contains("no complete request within 0.3 s"),
        "{e}"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(read_line(&c), "", "closed after the error");
}

#[test]
fn clients_above_the_cap_are_refused() {
    let s = served(None);
    let max = super::socket::MAX_CLIENTS;
    let held: Vec<UnixStream> = (0..max).map(|_| connect(&s.path)).collect();
    // Each of those is being served (it answers), so all slots are taken.
    for h in held.iter().take(2) {
        let mut h = h;
        h.write_all(rvs_api::encode_request(&Request::Status).as_bytes())
            .expect("send");
        assert!(matches!(
            rvs_api::decode_reply(&read_line(h)),
            Ok(Reply::Status(_))
        ));
    }
    let extra = connect(&s.path);
    let e = error_of(&read_line(&extra));
    assert_eq!(e.kind, ErrorKind::Full);
    assert!(e.message.contains("too many control clients"), "{e}");
    assert!(e.message.contains(&max.to_string()), "{e}");
    let mut rest = String::new();
    let _ = (&extra).read_to_string(&mut rest);
    assert_eq!(rest, "", "closed after the error");
    // One leaves: a new client is served.
    drop(held);
    let end = Instant::now() + Duration::from_secs(5);
    while !status_ok(&s.path) {
        assert!(
            Instant::now() < end,
            "no client served after the others left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sync_daemons_start_stop_and_list_with_errors_that_name_the_problem() {
    use rvs_api::{SyncDaemonSpec, SyncRole};
    let ctl = control(Vec::new());
    let spec = |role, iface: &str| SyncDaemonSpec {
        role,
        mcast_interface: iface.into(),
        syncid: 3,
        group: None,
        port: Some(0),
        ttl: None,
        peers: Vec::new(),
    };
    let err = |r: Reply| match r {
        Reply::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    };
    let e = err(ctl.handle(&Request::StartDaemon {
        spec: spec(SyncRole::Master, "nosuchif0"),
    }));
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("nosuchif0"), "{e:?}");
    let e = err(ctl.handle(&Request::StopDaemon {
        role: SyncRole::Backup,
    }));
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("backup"), "{e:?}");
    // The loopback device exists everywhere; port 0 of the request is refused.
    let e = err(ctl.handle(&Request::StartDaemon {
        spec: spec(SyncRole::Backup, "lo"),
    }));
    assert!(e.message.contains("port 0"), "{e:?}");
    let mut ok = spec(SyncRole::Master, "lo");
    ok.port = Some(18848);
    assert_eq!(
        ctl.handle(&Request::StartDaemon { spec: ok.clone() }),
        Reply::Ok
    );
    let e = err(ctl.handle(&Request::StartDaemon { spec: ok.clone() }));
    assert_eq!(e.kind, ErrorKind::Exists);
    match ctl.handle(&Request::ListDaemon) {
        Reply::Daemons(l) => {
            assert_eq!(l.daemons.len(), 1);
            assert_eq!(l.daemons[0].spec, ok);
            assert_eq!(l.stats.node_id, 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(ctl.sync.shared.master_on.load(Ordering::Relaxed));
    assert_eq!(
        ctl.handle(&Request::StopDaemon {
            role: SyncRole::Master
        }),
        Reply::Ok
    );
    assert!(!ctl.sync.shared.master_on.load(Ordering::Relaxed));
}

fn addr_req(a: &str) -> Request {
    Request::AddAddr {
        addr: a.parse().expect("test address"),
        plen: 24,
        dev: "dpdk0".into(),
        sapool: false,
    }
}

/// A follower gets the store as it was, then exactly the changes applied
/// after (not the refused ones), in order; a store rebuilt from both has
/// the running one's fingerprint.
#[test]
fn a_follower_gets_the_store_then_every_change_in_order() {
    let (h, _q) = silent_worker(0);
    let ctl = control(vec![h]);
    assert_eq!(ctl.handle(&addr_req("10.0.0.1")), Reply::Ok);
    let f = ctl.follow().expect("follow");
    assert_eq!(f.requests, vec![addr_req("10.0.0.1")]);
    assert_eq!(ctl.followers.count(), 1);

    assert_eq!(ctl.handle(&addr_req("10.0.0.2")), Reply::Ok);
    let Reply::Error(_) = ctl.handle(&addr_req("10.0.0.2")) else {
        panic!("a duplicate address must be refused");
    };
    assert_eq!(ctl.handle(&addr_req("10.0.0.3")), Reply::Ok);
    let tail: Vec<Request> = f.tail.try_iter().collect();
    assert_eq!(tail, vec![addr_req("10.0.0.2"), addr_req("10.0.0.3")]);

    let ports = ctl.store.lock().unwrap().ports().to_vec();
    let mut rebuilt = Store::new(ports, 1, Timeouts::default(), PipelineConf::default());
    for r in f.requests.iter().chain(&tail) {
        rebuilt.apply(r).expect("replay");
    }
    assert_eq!(
        rebuilt.fingerprint(),
        ctl.store.lock().unwrap().fingerprint()
    );

    // A follower that went away is dropped at the next change.
    drop(f);
    assert_eq!(ctl.handle(&addr_req("10.0.0.4")), Reply::Ok);
    assert_eq!(ctl.followers.count(), 0);
}

/// One that falls too far behind is let go: its channel closes after the
/// backlog, and the control plane goes on.
#[test]
fn a_follower_too_far_behind_is_let_go() {
    let (h, _q) = silent_worker(0);
    let ctl = control(vec![h]);
    let f = ctl.follow_bounded(3).expect("follow");
    let n = 4;
    for i in 0..n {
        let a = format!("10.{}.{}.1", i / 256, i % 256);
        assert_eq!(ctl.handle(&addr_req(&a)), Reply::Ok, "{a}");
    }
    assert_eq!(ctl.followers.count(), 0);
    assert_eq!(f.tail.try_iter().count(), 3);
    assert!(matches!(
        f.tail.try_recv(),
        Err(mpsc::TryRecvError::Disconnected)
    ));
}

/// While a hand-over switches over, changes are refused with a message
/// saying why (and reach no follower); afterwards they apply again.
#[test]
fn a_frozen_configuration_refuses_changes_until_thawed() {
    let (h, _q) = silent_worker(0);
    let ctl = control(vec![h]);
    let f = ctl.follow().expect("follow");
    ctl.freeze_config().expect("freeze");
    let Reply::Error(e) = ctl.handle(&addr_req("10.0.0.9")) else {
        panic!("a change while frozen must be refused");
    };
    assert!(e.message.contains("hot upgrade"), "{e}");
    assert_eq!(f.tail.try_iter().count(), 0, "nothing reached the follower");
    // Reads still work.
    assert!(matches!(ctl.handle(&Request::Status), Reply::Status(_)));
    ctl.thaw_config();
    assert_eq!(ctl.handle(&addr_req("10.0.0.9")), Reply::Ok);
    assert_eq!(f.tail.try_iter().count(), 1);
}

/// A hot upgrade's probation: the new rvsd serves the control socket and
/// sends every change it applies back before answering; if it fails, the
/// old one (frozen, taking no client) applies them: nothing confirmed to
/// an operator is lost.
#[test]
fn changes_a_successor_confirmed_in_its_probation_are_applied_here_when_it_fails() {
    let (h, _q) = silent_worker(0);
    let old = control(vec![h]);
    let (h, _q2) = silent_worker(0);
    let new = control(vec![h]);
    old.freeze_config().expect("freeze");
    old.hand_socket(true);
    assert!(old.handed());
    let carried: Arc<Mutex<Vec<Request>>> = Default::default();
    let c = carried.clone();
    new.set_back(Some(Box::new(move |r: &Request| {
        c.lock().unwrap().push(r.clone());
        Ok(())
    })));
    assert_eq!(new.handle(&addr_req("10.0.0.9")), Reply::Ok);
    // Sent back before the answer.
    assert_eq!(carried.lock().unwrap().len(), 1);
    let fp = |c: &Control| c.store.lock().unwrap().fingerprint();
    assert_ne!(fp(&old), fp(&new));
    // The new one fails: it stops taking changes, the old one applies them.
    new.freeze_config().expect("freeze");
    new.set_back(None);
    assert!(matches!(
        new.handle(&addr_req("10.0.0.10")),
        Reply::Error(_)
    ));
    let back = carried.lock().unwrap().clone();
    assert_eq!(old.apply_carried(&back), 1);
    assert_eq!(
        fp(&old),
        fp(&new),
        "the old rvsd has what the new one confirmed"
    );
    old.hand_socket(false);
    old.thaw_config();
    assert_eq!(old.handle(&addr_req("10.0.0.10")), Reply::Ok);
}

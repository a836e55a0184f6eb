//! The built binaries against a fake rvsd: a thread on a unix socket in a
//! temporary directory that records every request and answers with canned
//! replies. Checks the requests sent, stdout, stderr and exit codes.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rvs_api::{
    AddrInfo, ApiError, DestInfo, DestSpec, ErrorKind, Forward, LaddrGroup, LaddrInfo, Proto,
    Rates, Reply, Request, RouteInfo, RouteSpec, Scope, ServiceInfo, ServiceKey, ServiceSpec,
    Stats, StatusInfo,
};

type Answer = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

struct FakeDaemon {
    dir: PathBuf,
    sock: PathBuf,
    got: Arc<Mutex<Vec<Request>>>,
}

impl FakeDaemon {
    fn start(answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FakeDaemon {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rvs-cli-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("rvs.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let answer: Answer = Arc::new(answer);
        let rec = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let Ok(read) = stream.try_clone() else {
                    continue;
                };
                for line in BufReader::new(read).lines() {
                    let Ok(line) = line else { break };
                    let reply = match rvs_api::decode_request(&line) {
                        Ok(req) => {
                            let r = answer(&req);
                            rec.lock().unwrap().push(req);
                            r
                        }
                        Err(e) => Reply::Error(e),
                    };
                    if stream
                        .write_all(rvs_api::encode_reply(&reply).as_bytes())
                        .is_err()
                    {
                        break;
                    }
                }
            }
        });
        FakeDaemon { dir, sock, got }
    }

    fn requests(&self) -> Vec<Request> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(bin: &str, sock: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(bin)
        .args(args)
        .env("RVS_SOCKET", sock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn adm(d: &FakeDaemon, args: &[&str]) -> Run {
    run(env!("CARGO_BIN_EXE_rvsadm"), &d.sock, args, "")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(vip: &str, port: u16) -> ServiceKey {
    ServiceKey::Vs {
        proto: Proto::Tcp,
        vip: ip(vip),
        port,
    }
}

fn fnat(addr: &str) -> DestSpec {
    DestSpec {
        addr: ip(addr),
        port: 80,
        weight: 1,
        forward: Forward::Fnat,
        u_threshold: 0,
        l_threshold: 0,
    }
}

/// The daemon's state after the tutorial's FNAT example.
fn tutorial_reply(req: &Request) -> Reply {
    let dest = |a: &str| DestInfo {
        spec: fnat(a),
        active: 0,
        inactive: 0,
        stats: Stats::default(),
        rates: Rates::default(),
    };
    match req {
        Request::Status => Reply::Status(StatusInfo {
            version: "0.1.0".into(),
            uptime_s: 1,
            workers: 1,
            conn_capacity: 4096,
            conns: 0,
            generation: 3,
        }),
        Request::ListServices { .. } => Reply::Services(vec![ServiceInfo {
            spec: ServiceSpec {
                key: tcp("10.0.0.100", 80),
                sched: "rr".into(),
                persistence: None,
                sched_flags: Vec::new(),
                synproxy: None,
                proxy_protocol: None,
            },
            dests: vec![dest("192.168.100.2"), dest("192.168.100.3")],
            stats: Stats::default(),
            rates: Rates::default(),
        }]),
        Request::ListLimits { .. } => Reply::Limits(Vec::new()),
        Request::ListAcl { .. } => Reply::Acl(rvs_api::AclListing::default()),
        Request::ListLaddrs { .. } => Reply::Laddrs(vec![LaddrGroup {
            key: tcp("10.0.0.100", 80),
            laddrs: vec![LaddrInfo {
                addr: ip("192.168.100.200"),
                dev: "dpdk0".into(),
                conflicts: 0,
                conns: 0,
                standby: false,
            }],
        }]),
        Request::ListAddrs { .. } => Reply::Addrs(vec![AddrInfo {
            addr: ip("192.168.100.200"),
            plen: 32,
            dev: "dpdk0".into(),
            scope: Scope::Global,
            sapool: Some((0, 1032176, 0)),
            standby: false,
        }]),
        Request::ListRoutes => Reply::Routes(vec![
            RouteInfo {
                route: RouteSpec {
                    prefix: ip("10.0.0.0"),
                    plen: 16,
                    via: None,
                    dev: "dpdk1".into(),
                    scope: None,
                    src: None,
                    mtu: None,
                    metric: 0,
                },
                scope: Scope::Link,
                mtu: 1500,
                origin: "auto".into(),
            },
            RouteInfo {
                route: RouteSpec {
                    prefix: ip("192.168.100.0"),
                    plen: 24,
                    via: None,
                    dev: "dpdk0".into(),
                    scope: None,
                    src: None,
                    mtu: None,
                    metric: 0,
                },
                scope: Scope::Link,
                mtu: 1500,
                origin: "auto".into(),
            },
        ]),
        Request::AddAddr { dev, .. } if dev == "dpdk9" => {
            Reply::Error(ApiError::new(ErrorKind::NotFound, "no such device dpdk9"))
        }
        _ => Reply::Ok,
    }
}

#[test]
fn rvsadm_tutorial_commands_send_their_requests() {
    let d = FakeDaemon::start(tutorial_reply);
    for args in [
        "-A -t 10.0.0.100:80 -s rr",
        "-a -t 10.0.0.100:80 -r 192.168.100.2 -b",
        "-a -t 10.0.0.100:80 -r 192.168.100.3 -b",
        "--add-laddr -z 192.168.100.200 -t 10.0.0.100:80 -F dpdk0",
    ] {
        let r = adm(&d, &args.split(' ').collect::<Vec<_>>());
        assert_eq!(
            (r.code, r.stdout.as_str(), r.stderr.as_str()),
            (0, "", ""),
            "{args}"
        );
    }
    let key = tcp("10.0.0.100", 80);
    assert_eq!(
        d.requests(),
        vec![
            Request::AddService {
                spec: ServiceSpec {
                    key: key.clone(),
                    sched: "rr".into(),
                    persistence: None,
                    sched_flags: Vec::new(),
                    synproxy: None,
                    proxy_protocol: None,
                }
            },
            Request::AddDest {
                key: key.clone(),
                dest: fnat("192.168.100.2")
            },
            Request::AddDest {
                key: key.clone(),
                dest: fnat("192.168.100.3")
            },
            Request::AddLaddr {
                key,
                addr: ip("192.168.100.200"),
                dev: "dpdk0".into()
            },
        ]
    );
}

#[test]
fn rvsadm_lists_like_the_tutorial() {
    let d = FakeDaemon::start(tutorial_reply);
    let r = adm(&d, &["-ln"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dest = |a: &str| {
        format!(
            "  -> {a}:80{}FullNat 1      0          0         \n",
            " ".repeat(13)
        )
    };
    assert_eq!(
        r.stdout,
        format!(
            "IP Virtual Server version 0.1.0 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n\
             \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  10.0.0.100:80 rr\n{}{}",
            dest("192.168.100.2"),
            dest("192.168.100.3")
        )
    );
    assert_eq!(
        d.requests(),
        vec![Request::Status, Request::ListServices { key: None }]
    );

    let r = adm(&d, &["-G"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().map(str::trim_end).collect();
    assert_eq!(
        lines,
        [
            "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS",
            "10.0.0.100:80        1",
            "                              192.168.100.200      0          0",
        ]
    );
}

#[test]
fn rvsadm_save_and_restore() {
    let d = FakeDaemon::start(tutorial_reply);
    let r = adm(&d, &["-S", "-n"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let saved = "-A -t 10.0.0.100:80 -s rr\n\
                 -a -t 10.0.0.100:80 -r 192.168.100.2:80 -b -w 1\n\
                 -a -t 10.0.0.100:80 -r 192.168.100.3:80 -b -w 1\n\
                 --add-laddr -t 10.0.0.100:80 -z 192.168.100.200 -F dpdk0\n";
    assert_eq!(r.stdout, saved);

    let d2 = FakeDaemon::start(tutorial_reply);
    let r = run(env!("CARGO_BIN_EXE_rvsadm"), &d2.sock, &["-R"], saved);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let key = tcp("10.0.0.100", 80);
    assert_eq!(
        d2.requests(),
        vec![
            Request::AddService {
                spec: ServiceSpec {
                    key: key.clone(),
                    sched: "rr".into(),
                    persistence: None,
                    sched_flags: Vec::new(),
                    synproxy: None,
                    proxy_protocol: None,
                }
            },
            Request::AddDest {
                key: key.clone(),
                dest: fnat("192.168.100.2")
            },
            Request::AddDest {
                key: key.clone(),
                dest: fnat("192.168.100.3")
            },
            Request::AddLaddr {
                key,
                addr: ip("192.168.100.200"),
                dev: "dpdk0".into()
            },
        ]
    );

    // A bad line is reported before anything is sent.
    let d3 = FakeDaemon::start(tutorial_reply);
    let r = run(
        env!("CARGO_BIN_EXE_rvsadm"),
        &d3.sock,
        &["-R"],
        "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80\n",
    );
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "line 2: You need to supply the 'real-server' option for the 'add-server' command\n"
    );
    assert!(d3.requests().is_empty());
}

#[test]
fn rvsadm_errors_and_exit_codes() {
    let d = FakeDaemon::start(|req| match req {
        Request::AddService { .. } => {
            Reply::Error(ApiError::new(ErrorKind::Exists, "Service already exists"))
        }
        Request::DelService { .. } => {
            Reply::Error(ApiError::new(ErrorKind::NotFound, "No such service"))
        }
        _ => Reply::Ok,
    });
    let r = adm(&d, &["-A", "-t", "10.0.0.100:80", "-s", "rr"]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (1, "", "Service already exists\n")
    );
    let r = adm(&d, &["-D", "-t", "10.0.0.100:80"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "No such service\n"));
    let sent = d.requests().len();

    let r = adm(&d, &["-a", "-r", "192.168.100.2", "-b"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            2,
            "You need to supply the 'service-address' option for the 'add-server' command\n"
        )
    );
    let r = adm(&d, &["-A", "-t", "10.0.0.100:65536"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("Illegal port number"), "{}", r.stderr);
    let r = adm(&d, &["-A", "-D", "-t", "10.0.0.100:80"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "Two or more commands specified\n")
    );
    assert_eq!(
        d.requests().len(),
        sent,
        "usage errors must not reach the daemon"
    );

    // Help and version need no daemon.
    let nowhere = d.dir.join("absent.sock");
    let r = run(env!("CARGO_BIN_EXE_rvsadm"), &nowhere, &["-h"], "");
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("--add-server      -a"), "{}", r.stdout);
}

#[test]
fn cannot_connect_names_the_socket() {
    let d = FakeDaemon::start(|_| Reply::Ok);
    let nowhere = d.dir.join("absent.sock");
    let prefix = format!("cannot connect to rvsd at {}: ", nowhere.display());
    let hint = " (is rvsd running? RVS_SOCKET overrides the path)\n";
    for (bin, tool, args) in [
        (env!("CARGO_BIN_EXE_rvsadm"), "rvsadm", vec!["-ln"]),
        (env!("CARGO_BIN_EXE_rvsip"), "rvsip", vec!["addr", "show"]),
    ] {
        let r = run(bin, &nowhere, &args, "");
        assert_eq!(r.code, 1, "{tool}");
        assert!(
            r.stderr.starts_with(&format!("{tool}: {prefix}")),
            "{}",
            r.stderr
        );
        assert!(r.stderr.ends_with(hint), "{}", r.stderr);
        assert_eq!(r.stdout, "");
    }
}

#[test]
fn rvsip_commands_output_and_errors() {
    let d = FakeDaemon::start(tutorial_reply);
    let ipc = |args: &str| {
        run(
            env!("CARGO_BIN_EXE_rvsip"),
            &d.sock,
            &args.split(' ').collect::<Vec<_>>(),
            "",
        )
    };
    let r = ipc("addr add 10.0.0.100/32 dev dpdk1");
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    let r = ipc("route add 192.168.100.0/24 dev dpdk0");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ipc("addr show");
    assert_eq!(
        r.stdout,
        "inet 192.168.100.200/32 scope global dpdk0\n     valid_lft forever preferred_lft forever sa_used 0 sa_free 1032176 sa_miss 0\n"
    );
    let r = ipc("route show dev dpdk0");
    assert_eq!(
        r.stdout,
        "inet 192.168.100.0/24 via 0.0.0.0 src 0.0.0.0 dev dpdk0 mtu 1500 tos 0 scope link metric 0 proto auto\n"
    );
    let r = ipc("addr add 10.0.0.1/32 dev dpdk9");
    assert_eq!((r.code, r.stderr.as_str()), (1, "no such device dpdk9\n"));
    let sent = d.requests();
    assert_eq!(
        sent[..2],
        [
            Request::AddAddr {
                addr: ip("10.0.0.100"),
                plen: 32,
                dev: "dpdk1".into(),
                sapool: false
            },
            Request::AddRoute {
                route: RouteSpec {
                    prefix: ip("192.168.100.0"),
                    plen: 24,
                    via: None,
                    dev: "dpdk0".into(),
                    scope: None,
                    src: None,
                    mtu: None,
                    metric: 0
                }
            },
        ]
    );
    assert_eq!(sent[2], Request::ListAddrs { dev: None });
    assert_eq!(sent[3], Request::ListRoutes);

    let r = ipc("addr add 10.0.0.1/40 dev dpdk0");
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "invalid prefix length \"40\" in \"10.0.0.1/40\"\n")
    );
    let r = ipc("tunnel show");
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "Object \"tunnel\" is unknown, try \"rvsip help\".\n")
    );
    assert_eq!(
        d.requests().len(),
        sent.len(),
        "usage errors must not reach the daemon"
    );
}

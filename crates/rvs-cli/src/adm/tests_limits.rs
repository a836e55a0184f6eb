//! Limit options of `-A/-E`: parsing and its errors, the requests sent,
//! `-S`/`-R`, and the lines `-L --rate` adds.

use rvs_api::{
    LimitDropStats, LimitInfo, LimitSet, Limits, Proto, RateLimit, Rates, Reply, Request,
    ServiceInfo, ServiceKey, ServiceSpec, Stats, StatusInfo,
};

use super::{execute, parse_args, parse_restore, AdmCommand, ListOpts, ListView};
use crate::client::{CliError, Transport};

fn tcp(vip: &str, port: u16) -> ServiceKey {
    ServiceKey::Vs {
        proto: Proto::Tcp,
        vip: vip.parse().unwrap(),
        port,
    }
}

fn parse(line: &str) -> Result<AdmCommand, CliError> {
    parse_args(&line.split_whitespace().collect::<Vec<_>>())
}

fn rate(rate: u64, burst: u64) -> Option<RateLimit> {
    Some(RateLimit { rate, burst })
}

#[test]
fn add_service_with_limits_sends_the_service_then_its_limits() {
    let cmd = parse(
        "-A -t 10.0.0.100:80 -s rr --conn-rate 1K,2K --bit-rate=100M --src-conn-rate 5,10 \
         --src-max-conns 20 --src-prefix 24,64",
    )
    .unwrap();
    let AdmCommand::ApplyAll(reqs) = cmd else {
        panic!("{cmd:?}")
    };
    assert!(matches!(&reqs[0], Request::AddService { spec } if spec.sched == "rr"));
    let want = Limits {
        service: LimitSet {
            conn_rate: rate(1000, 2000),
            bit_rate: rate(100_000_000, 0),
            ..LimitSet::default()
        },
        source: LimitSet {
            conn_rate: rate(5, 10),
            max_conns: Some(20),
            ..LimitSet::default()
        },
        src_prefix_v4: Some(24),
        src_prefix_v6: Some(64),
    };
    assert_eq!(
        reqs[1],
        Request::SetLimits {
            key: tcp("10.0.0.100", 80),
            limits: want
        }
    );
    // Without limit options: the plain request, as before.
    assert!(matches!(
        parse("-A -t 10.0.0.100:80 -s rr").unwrap(),
        AdmCommand::Apply(Request::AddService { .. })
    ));
    // -E with options replaces all limits; 0 removes one.
    let AdmCommand::ApplyAll(reqs) = parse("-E -t 10.0.0.100:80 -s wrr --max-conns 0").unwrap()
    else {
        panic!()
    };
    assert!(matches!(&reqs[0], Request::EditService { .. }));
    assert_eq!(
        reqs[1],
        Request::SetLimits {
            key: tcp("10.0.0.100", 80),
            limits: Limits::default()
        }
    );
}

#[test]
fn bad_limit_options_are_refused_with_a_reason() {
    let cases = [
        (
            "-A -t 10.0.0.100:80 --conn-rate fast",
            "--conn-rate: invalid value `fast'",
        ),
        (
            "-A -t 10.0.0.100:80 --conn-rate 5,x",
            "--conn-rate: invalid value `5,x'",
        ),
        (
            "-A -t 10.0.0.100:80 --src-max-conns -1",
            "--src-max-conns: invalid value",
        ),
        (
            "-A -t 10.0.0.100:80 --src-prefix 33",
            "33 is not an IPv4 prefix length within 1-32",
        ),
        (
            "-A -t 10.0.0.100:80 --src-prefix 24,129",
            "129 is not an IPv6 prefix length within 1-128",
        ),
        (
            "-A -t 10.0.0.100:80 --pkt-rate 1,2 --pkt-rate 3",
            "multiple 'pkt-rate'",
        ),
        (
            "-A -t 10.0.0.100:80 --pkt-rate 1000G",
            "pkt-rate: rate 1000000000000 is above",
        ),
        (
            "-A -t 10.0.0.100:80 --conn-rate",
            "--conn-rate: missing argument",
        ),
        (
            "-a -t 10.0.0.100:80 -r 192.168.100.2 --conn-rate 5",
            "go with -A or -E only",
        ),
        ("-L -n --src-conn-rate 5", "go with -A or -E only"),
    ];
    for (line, want) in cases {
        let e = parse(line).expect_err(line);
        assert!(e.message.contains(want), "{line}: {}", e.message);
        assert_eq!(e.code, crate::client::EXIT_USAGE, "{line}");
    }
    // The rest of the line is still checked as ipvsadm does.
    let e = parse("-A --conn-rate 5").unwrap_err();
    assert!(e.message.contains("service-address"), "{}", e.message);
}

/// A daemon keeping services and their limits, enough for `-A`, `-S`, `-R`, `-L --rate`.
#[derive(Default)]
struct Daemon {
    services: Vec<ServiceSpec>,
    limits: Vec<(ServiceKey, Limits)>,
    sent: Vec<Request>,
}

impl Transport for Daemon {
    fn call(&mut self, req: &Request) -> Result<Reply, CliError> {
        self.sent.push(req.clone());
        Ok(match req {
            Request::AddService { spec } => {
                self.services.push(spec.clone());
                Reply::Ok
            }
            Request::SetLimits { key, limits } => {
                self.limits.retain(|(k, _)| k != key);
                self.limits.push((key.clone(), *limits));
                Reply::Ok
            }
            Request::Status => Reply::Status(StatusInfo {
                version: "0.1.0".into(),
                uptime_s: 1,
                workers: 2,
                conn_capacity: 1024,
                conns: 0,
                generation: 1,
            }),
            Request::ListServices { .. } => Reply::Services(
                self.services
                    .iter()
                    .map(|spec| ServiceInfo {
                        spec: spec.clone(),
                        dests: Vec::new(),
                        stats: Stats::default(),
                        rates: Rates {
                            cps: 3,
                            ..Rates::default()
                        },
                    })
                    .collect(),
            ),
            Request::ListLaddrs { .. } => Reply::Laddrs(Vec::new()),
            Request::ListLimits { .. } => Reply::Limits(
                self.services
                    .iter()
                    .map(|s| LimitInfo {
                        key: s.key.clone(),
                        limits: self
                            .limits
                            .iter()
                            .find(|(k, _)| *k == s.key)
                            .map(|(_, l)| *l)
                            .unwrap_or_default(),
                        drops: LimitDropStats {
                            src_conn_rate: 7,
                            ..LimitDropStats::default()
                        },
                    })
                    .collect(),
            ),
            Request::ListAcl { .. } => Reply::Acl(rvs_api::AclListing::default()),
            other => panic!("unexpected {other:?}"),
        })
    }
}

fn run(d: &mut Daemon, line: &str) -> String {
    execute(&parse(line).unwrap(), d, &mut std::io::empty()).unwrap()
}

#[test]
fn save_writes_the_limit_options_and_restore_reads_them_back() {
    let mut d = Daemon::default();
    run(
        &mut d,
        "-A -t 10.0.0.100:80 -s rr --src-conn-rate 5,10 --bit-rate 1500K --src-prefix 24",
    );
    run(&mut d, "-A -t 10.0.0.101:80 -s rr");
    let saved = run(&mut d, "-S -n");
    assert_eq!(
        saved,
        "-A -t 10.0.0.100:80 -s rr --bit-rate 1500K --src-conn-rate 5,10 --src-prefix 24\n\
         -A -t 10.0.0.101:80 -s rr\n"
    );
    let reqs = parse_restore(&saved).unwrap();
    let mut again = Daemon::default();
    for r in &reqs {
        again.call(r).unwrap();
    }
    assert_eq!(again.limits, d.limits);
    assert_eq!(again.services, d.services);
}

#[test]
fn rate_listing_shows_the_limits_under_their_service() {
    let mut d = Daemon::default();
    run(
        &mut d,
        "-A -t 10.0.0.100:80 -s rr --conn-rate 100 --max-conns 1000 --src-conn-rate 5,10 \
         --src-bit-rate 8M",
    );
    run(&mut d, "-A -t 10.0.0.101:80 -s rr");
    let opts = ListOpts {
        key: None,
        view: ListView::Rate,
        exact: false,
        sort: true,
    };
    let out = execute(&AdmCommand::List(opts), &mut d, &mut std::io::empty()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[1..],
        [
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
            "  -> RemoteAddress:Port",
            "TCP  10.0.0.100:80                       3        0        0        0        0",
            "  limit service: conn-rate 100/s burst 100, refused 0; max-conns 1000, refused 0",
            "  limit per source /32,/128: conn-rate 5/s burst 10, refused 7; \
             bit-rate 8M/s burst 8M, refused 0",
            "TCP  10.0.0.101:80                       3        0        0        0        0",
        ],
        "{out}"
    );
    // The plain listing is ipvsadm's, untouched.
    let plain = run(&mut d, "-L -n");
    assert!(!plain.contains("limit"), "{plain}");
}

#[test]
fn usage_lists_the_limit_options() {
    let u = super::usage();
    for o in [
        "--conn-rate",
        "--src-conn-rate",
        "--bit-rate",
        "--src-prefix",
        "--max-conns",
    ] {
        assert!(u.contains(o), "{o} missing from rvsadm -h");
    }
}

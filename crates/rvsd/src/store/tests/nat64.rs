//! NAT64/NAT46: a FullNat dest of the other family than its service is
//! accepted (with a warning while the service has no local address of that
//! family), other modes and the SYN proxy still refuse it, and the snapshot
//! forwards a NAT64 SYN as IPv4.

use std::sync::Arc;

use rvs_api::{ErrorKind, Forward, Request, ServiceSpec};
use rvs_core::addr::Addr;
use rvs_core::lab::FrameSpec;
use rvs_core::pipeline::{Packet, Verdict, Worker, WorkerConf};
use rvs_core::wire::tcp::flags::SYN;

use super::*;

fn a(s: &str) -> Addr {
    s.parse().unwrap()
}

fn v6_svc() -> ServiceKey {
    tcp("2001:db8::100", 80)
}

#[test]
fn fnat_dest_of_the_other_family_is_accepted_with_a_warning_until_a_laddr() {
    let mut s = store();
    let key = v6_svc();
    let add = dest_add(&key, dest("192.168.100.2", 80, 1, Forward::Fnat));
    run(&mut s, &[svc_add(&key, "rr"), add.clone()]);
    let w = s.warning(&add).expect("a warning");
    for n in ["no IPv4 local address", "[2001:db8::100]:80", "NAT64"] {
        assert!(w.contains(n), "'{w}' does not name '{n}'");
    }
    assert!(!w.contains('\n'), "one line: {w}");
    run(&mut s, &[laddr_add(&key, "192.168.100.200", "dpdk0")]);
    assert_eq!(s.warning(&add), None);
    assert_eq!(
        ipvsadm_ln(&s)
            .iter()
            .filter(|l| l.contains("192.168.100.2:80"))
            .count(),
        1,
        "{:?}",
        ipvsadm_ln(&s)
    );

    // NAT46 the other way round.
    let k4 = tcp("10.0.0.100", 80);
    let add = dest_add(&k4, dest("fd00::2", 80, 1, Forward::Fnat));
    run(&mut s, &[svc_add(&k4, "rr"), add.clone()]);
    assert!(s
        .warning(&add)
        .is_some_and(|w| w.contains("no IPv6 local address") && w.contains("NAT46")));
    // A same-family dest never warns.
    let same = dest_add(&k4, dest("192.168.100.3", 80, 1, Forward::Fnat));
    run(&mut s, std::slice::from_ref(&same));
    assert_eq!(s.warning(&same), None);
}

#[test]
fn the_syn_proxy_refuses_a_dest_of_the_other_family() {
    let mut s = store();
    let key = v6_svc();
    let spec = |synproxy| ServiceSpec {
        key: key.clone(),
        sched: "rr".into(),
        persistence: None,
        sched_flags: Vec::new(),
        synproxy,
        proxy_protocol: None,
    };
    run(
        &mut s,
        &[Request::AddService {
            spec: spec(Some(true)),
        }],
    );
    let e = s
        .apply(&dest_add(&key, dest("192.168.100.2", 80, 1, Forward::Fnat)))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("NAT64/NAT46"), "{e}");
    run(
        &mut s,
        &[
            Request::EditService {
                spec: spec(Some(false)),
            },
            dest_add(&key, dest("192.168.100.2", 80, 1, Forward::Fnat)),
        ],
    );
    let e = s
        .apply(&Request::EditService {
            spec: spec(Some(true)),
        })
        .unwrap_err();
    assert!(
        e.message.contains("192.168.100.2:80") && e.message.contains("NAT64/NAT46"),
        "{e}"
    );
}

#[test]
fn a_nat64_snapshot_sends_the_ipv6_clients_syn_as_ipv4() {
    let mut s = store();
    let key = v6_svc();
    run(
        &mut s,
        &[
            addr_add("2001:db8::100", 128, "dpdk1", false),
            route_add("2001:db8::", 64, None, "dpdk1", None),
            route_add("192.168.100.0", 24, None, "dpdk0", None),
            svc_add(&key, "rr"),
            dest_add(&key, dest("192.168.100.2", 80, 1, Forward::Fnat)),
            laddr_add(&key, "192.168.100.200", "dpdk0"),
            Request::AddNeigh {
                addr: ip("192.168.100.2"),
                mac: "02:00:00:00:01:02".into(),
                dev: "dpdk0".into(),
            },
        ],
    );
    let conf = WorkerConf {
        conn_capacity: 1024,
        ..Default::default()
    };
    let mut w = Worker::new(conf, Arc::new(s.snapshot()), 0);
    let mut syn = FrameSpec::tcp(a("2001:db8::48"), 37177, a("2001:db8::100"), 80, SYN);
    syn.dst_mac = ports()[1].mac;
    let frame = syn.to_vec();
    let mut buf = vec![0u8; 2048];
    buf[64..64 + frame.len()].copy_from_slice(&frame);
    let mut p = Packet {
        buf: &mut buf,
        head: 64,
        len: frame.len(),
        port: 1,
        csum_ok: false,
    };
    let v = w.process(&mut p, 0);
    assert_eq!(v, Verdict::Transmit(0), "drops: {:?}", w.drops().nonzero());
    let out = p.frame();
    assert_eq!(&out[12..14], &[0x08, 0x00]);
    assert_eq!(&out[26..30], &[192, 168, 100, 200]);
    assert_eq!(&out[30..34], &[192, 168, 100, 2]);
}

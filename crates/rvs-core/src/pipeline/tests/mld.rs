//! MLD Queries heard by a worker ([`crate::pipeline::MldHeard`]) for the
//! daemon's listener; invalid ones are not kept.

use super::util::*;
use crate::addr::{Addr, Mac};
use crate::lab::{self, WAN};
use crate::pipeline::{MldHeard, Verdict, Worker};
use crate::wire::mld::write_query;

fn heard(w: &mut Worker) -> Vec<MldHeard> {
    let mut v = Vec::new();
    w.take_mld_queries(|q| v.push(q));
    v
}

fn query(src: &str, group: Addr, code: u16) -> Vec<u8> {
    let mut b = vec![0u8; 200];
    let n = write_query(
        &mut b,
        Mac([2, 0, 0, 0, 0, 0xfe]),
        &v6::a(src),
        &group,
        code,
        2,
    );
    b.truncate(n);
    b
}

#[test]
fn general_and_group_queries_are_kept_for_the_listener() {
    let mut w = worker(v6_lab());
    let (v, _) = run(
        &mut w,
        &query("fe80::fe", Addr::UNSPECIFIED, 10_000),
        WAN,
        0,
    );
    // The frame goes on as any multicast: to the kernel (the lab's ports have kni).
    assert_eq!(v, Verdict::ToKernel(WAN));
    let g = v6::a("ff02::1:ff00:100");
    run(&mut w, &query("fe80::fe", g, 1000), WAN, 0);
    assert_eq!(
        heard(&mut w),
        vec![
            MldHeard {
                port: WAN,
                group: Addr::UNSPECIFIED,
                max_resp_ms: 10_000,
                qrv: 2
            },
            MldHeard {
                port: WAN,
                group: g,
                max_resp_ms: 1000,
                qrv: 2
            }
        ]
    );
    assert!(heard(&mut w).is_empty(), "taken once");
}

#[test]
fn invalid_queries_are_not_kept() {
    let mut w = worker(v6_lab());
    // Not from a link-local address (RFC 3810 section 5.1.14).
    run(
        &mut w,
        &query("2001:db8::fe", Addr::UNSPECIFIED, 1000),
        WAN,
        0,
    );
    // Hop limit other than 1.
    let mut f = query("fe80::fe", Addr::UNSPECIFIED, 1000);
    f[21] = 2;
    run(&mut w, &f, WAN, 0);
    // A bad checksum.
    let mut f = query("fe80::fe", Addr::UNSPECIFIED, 1000);
    let last = f.len() - 1;
    f[last] ^= 1;
    run(&mut w, &f, WAN, 0);
    assert!(heard(&mut w).is_empty());
    // More than a loop iteration keeps.
    for _ in 0..20 {
        run(&mut w, &query("fe80::fe", Addr::UNSPECIFIED, 1000), WAN, 0);
    }
    assert_eq!(heard(&mut w).len(), 8);
    let _ = lab::ports();
}

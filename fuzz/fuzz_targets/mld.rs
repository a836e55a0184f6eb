//! Feeds arbitrary bytes to the MLD views (`rvs_core::wire::mld`) and to a
//! listener (`rvs_core::mld`). Besides "never panics": a Report that parses
//! yields as many records as it counts; a Query that parses is answered,
//! if at all, within its Maximum Response Delay, with Reports that parse,
//! verify and never name the all-nodes group.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_core::addr::{Addr, Mac};
use rvs_core::mld::Listener;
use rvs_core::wire::mld::{self, QueryPacket, ReportPacket};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = ReportPacket::new_checked(data) {
        assert_eq!(r.records().count(), usize::from(r.count()));
    }
    let mut l = Listener::new(data.len() as u64);
    // Groups from the bytes, 16 at a time (most are not multicast).
    let groups = data.chunks_exact(16).map(|c| {
        let mut a = [0u8; 16];
        a.copy_from_slice(c);
        Addr(a)
    });
    l.set_groups(groups, 0);
    let src = "fe80::1".parse().unwrap();
    let check = |f: &[u8]| {
        let r = ReportPacket::new_checked(mld::message(f)).expect("a built Report parses");
        assert!(r.verify_checksum(&src, &mld::ALL_MLDV2_ROUTERS));
        assert!(r.records().all(|(_, g)| mld::reportable(&g)));
    };
    l.tick(0, Mac([2; 6]), &src, &mut |f| check(f));
    if let Ok(q) = QueryPacket::new_checked(data) {
        let max = u64::from(q.max_resp_ms());
        l.query(q.group(), q.max_resp_ms(), q.qrv(), 10_000);
        if let Some(due) = l.next_due() {
            assert!(due <= 10_000 + max.max(1000), "due {due}, max {max}");
        }
        while let Some(due) = l.next_due() {
            l.tick(due, Mac([2; 6]), &src, &mut |f| check(f));
        }
    }
});

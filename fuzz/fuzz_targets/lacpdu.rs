//! Feeds arbitrary bytes to the slow-protocols views and to a bond's LACP
//! machines (`rvs_core::bond`). Besides "never panics": a LACPDU that
//! parses rebuilds to a frame with the same fields; a Marker Information
//! frame is answered with a response that parses and copies the request;
//! the masks never name a slave whose carrier is down.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_core::bond::pdu::{self, LacpPdu, MarkerPdu};
use rvs_core::bond::{xmit_hash, Lacp, LacpConf, XmitHash};

fuzz_target!(|data: &[u8]| {
    for p in [XmitHash::Layer2, XmitHash::Layer23, XmitHash::Layer34] {
        let _ = xmit_hash(data, p);
    }
    if let Some(body) = data.get(14..) {
        if let Ok(v) = LacpPdu::new_checked(body) {
            let f = pdu::build_lacpdu([2; 6], &v.actor(), &v.partner());
            let w = LacpPdu::new_checked(&f[14..]).expect("a built LACPDU parses");
            assert_eq!((w.actor(), w.partner()), (v.actor(), v.partner()));
        }
        if let Ok(m) = MarkerPdu::new_checked(body) {
            let r = pdu::marker_response(data, [2; 6]);
            assert_eq!(r.is_some(), m.tlv_type() == pdu::MARKER_INFO);
            if let Some(r) = r {
                let n = MarkerPdu::new_checked(&r[14..]).expect("a response parses");
                assert_eq!(n.tlv_type(), pdu::MARKER_RESPONSE);
                assert_eq!(n.transaction_id(), m.transaction_id());
                assert_eq!(n.requester_system(), m.requester_system());
            }
        }
    }
    let conf = LacpConf {
        system_priority: 1,
        system_mac: [2, 0, 0, 0, 0, 1],
        key: 1,
        fast: true,
        active: true,
        fallback: true,
    };
    let mut l = Lacp::new(conf, &[[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1]], 0);
    l.link(0, true, 0);
    // The same bytes as a LACPDU on slave 0 at several times, then slave 1's
    // carrier goes down.
    for (i, now) in [0u64, 1_500, 2_500, 9_000].into_iter().enumerate() {
        let _ = l.receive(i % 2, data, now);
        l.tick(now, &mut |s, f| {
            assert!(s < 2);
            assert!(LacpPdu::new_checked(&f[14..]).is_ok());
        });
        let (c, d) = l.masks();
        assert_eq!(d & 0b10, 0, "slave 1 is down but distributing");
        assert_eq!(c, d);
    }
});

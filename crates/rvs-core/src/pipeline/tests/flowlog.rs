//! Flow logs: one record when a connection is made, one when it ends, with
//! its packets, bytes and duration; nothing when not enabled.

use super::util::*;
use crate::lab;
use crate::pipeline::{EndReason, FlowEvent, FlowRecord, Worker};
use crate::wire::tcp::flags::RST;

fn records(w: &mut Worker) -> Vec<FlowRecord> {
    let mut v = Vec::new();
    w.drain_flow_log(|r| v.push(*r));
    v
}

#[test]
fn a_connection_gives_a_new_and_an_end_record_with_its_counts() {
    let mut w = worker(lab::tutorial_fnat(1));
    w.enable_flow_log(16);
    resolve_client(&mut w, CIP, 0);
    let (rs, lport) = establish(&mut w, 40000, 100);
    let made = records(&mut w);
    assert_eq!(made.len(), 1, "{made:?}");
    let r = made[0];
    assert_eq!(r.event, FlowEvent::New);
    assert_eq!((r.client, r.vip), ((CIP, 40000), (lab::VIP, 80)));
    assert_eq!((r.laddr, r.rs), ((lab::LIP, lport), (lab::rs_ip(rs), 80)));
    // The RS resets the connection: it ends now.
    let rst = from_rs(rs, 80, lab::LIP, lport, RST).to_vec();
    run_tx(&mut w, &rst, lab::LAN, lab::WAN, 350);
    w.tick(400);
    let mut ended = records(&mut w);
    // A reset leaves the connection in CLOSE until its timer runs out.
    let mut now = 400;
    while ended.is_empty() && now < 1_000_000 {
        now += 100;
        w.tick(now);
        ended = records(&mut w);
    }
    println!("ended at {now} ms");
    assert_eq!(ended.len(), 1, "{ended:?}");
    let e = ended[0];
    assert!(matches!(
        e.event,
        FlowEvent::End(EndReason::Timeout | EndReason::Removed)
    ));
    assert_eq!(e.counts.packets, 4, "SYN, SYN-ACK, ACK, RST");
    assert_eq!(e.counts.bytes, 4 * 40, "four bare TCP/IPv4 headers");
    assert_eq!(e.counts.created_ms, 100);
    assert_eq!(e.state, "CLOSE");
    assert_eq!(w.flow_log_lost(), 0);
}

#[test]
fn a_full_buffer_counts_lost_records_and_off_records_nothing() {
    let mut w = worker(lab::tutorial_fnat(1));
    resolve_client(&mut w, CIP, 0);
    establish(&mut w, 40000, 0);
    assert!(records(&mut w).is_empty(), "flow logs are off by default");
    w.enable_flow_log(2);
    for p in 0..5 {
        establish(&mut w, 41000 + p, 0);
    }
    assert_eq!(records(&mut w).len(), 2);
    assert_eq!(w.flow_log_lost(), 3);
}

//! Neighbours the operator configured (`rvsip neigh add`, the snapshot's
//! `static_neigh`) are static in every worker: they do not age out, and they
//! go when the configuration drops them.

use super::util::*;
use crate::lab::{self, WAN};
use crate::neigh::NeighState;
use crate::pipeline::Verdict;
use crate::sched::SchedKind;
use crate::wire::tcp::flags::SYN;
use std::sync::Arc;

/// An hour of worker time with no ARP from a real server: its configured
/// entry stays, and a new connection to it goes out at once instead of
/// waiting for an ARP reply the operator said not to need.
#[test]
fn configured_neighbours_do_not_age_out() {
    let mut w = worker(fnat_weighted(SchedKind::Rr, &[1]));
    let rs = lab::rs_ip(0);
    assert_eq!(
        w.neigh().get(&rs).map(|e| e.state),
        Some(NeighState::Static)
    );
    let hour = 3_600_000;
    for t in (0..=hour).step_by(1_000) {
        w.tick(t);
    }
    assert_eq!(
        w.neigh().get(&rs).map(|e| e.state),
        Some(NeighState::Static),
        "the configured neighbour aged out"
    );
    let (v, _) = run(&mut w, &from_client(40_000, 80, SYN).to_vec(), WAN, hour);
    assert!(matches!(v, Verdict::Transmit(_)), "{v:?}");
}

/// A configuration without the neighbour removes it from the worker.
#[test]
fn a_neighbour_the_configuration_drops_goes() {
    let rs = lab::rs_ip(0);
    let mut w = worker(fnat_weighted(SchedKind::Rr, &[1]));
    let mut next = fnat_weighted(SchedKind::Rr, &[1]);
    next.static_neigh.retain(|(a, _, _)| *a != rs);
    w.set_snapshot(Arc::new(next), 10);
    assert!(w.neigh().get(&rs).is_none(), "{:?}", w.neigh().get(&rs));
}

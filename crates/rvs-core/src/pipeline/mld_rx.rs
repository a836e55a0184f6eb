//! MLD Queries heard on a port ([`crate::wire::mld`]): the worker keeps
//! the valid ones for the daemon's MLD listener ([`crate::mld`]), which
//! answers them; the frame itself goes on like any multicast (to the kernel
//! when the port has a kni device).

use super::parse::Parsed;
use super::{Packet, State, Worker};
use crate::addr::{Addr, PortId};
use crate::wire::mld::{QueryPacket, HOP_LIMIT};

/// Queries kept between two [`Worker::take_mld_queries`] (more in one
/// loop iteration are not kept: a querier sends one in seconds).
pub(super) const MLD_HEARD_MAX: usize = 8;

/// A valid MLD Query heard on a port.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MldHeard {
    /// The port (a bond's or VLAN device's when heard there).
    pub port: PortId,
    /// The queried group; unspecified for a General Query.
    pub group: Addr,
    /// Its Maximum Response Delay, in milliseconds.
    pub max_resp_ms: u32,
    /// Its Querier's Robustness Variable (0: not given).
    pub qrv: u8,
}

impl State {
    /// Keeps the MLD Query of `pkt` if it is valid (RFC 3810 section 5.1:
    /// hop limit 1, a link-local source, whole, its checksum right).
    pub(super) fn mld_heard(&mut self, pkt: &Packet<'_>, p: &Parsed) {
        let link_local = p.src.0[0] == 0xfe && p.src.0[1] & 0xc0 == 0x80;
        if p.ttl != HOP_LIMIT || !link_local || self.mld_heard.len() >= MLD_HEARD_MAX {
            return;
        }
        let Some(m) = pkt.buf.get(pkt.head + p.l4..pkt.head + p.l3 + p.ip_len) else {
            return;
        };
        let Ok(q) = QueryPacket::new_checked(m) else {
            return;
        };
        if !q.verify_checksum(&p.src, &p.dst) {
            return;
        }
        self.mld_heard.push(MldHeard {
            port: pkt.port,
            group: q.group(),
            max_resp_ms: q.max_resp_ms(),
            qrv: if q.is_v2() { q.qrv() } else { 0 },
        });
    }
}

impl Worker {
    /// The MLD Queries heard since the last call, for the MLD listener.
    pub fn take_mld_queries(&mut self, mut f: impl FnMut(MldHeard)) {
        for q in self.st.mld_heard.drain(..) {
            f(q);
        }
    }
}

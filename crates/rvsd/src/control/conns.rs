//! Connection listings (`rvsadm -lnc`), paged.
//!
//! The control thread asks one worker at a time for the connections of its
//! table from a slot on ([`ConnScan`]); the worker walks at most
//! [`SLOTS_PER_ROUND`] slots per loop iteration ([`ConnScans::step`]),
//! filtering by service before counting towards the limit, and answers when
//! the page is full, its table ends, or the request has looked at
//! [`SLOTS_PER_REQUEST`] slots. It copies plain `Conn` values; the strings of
//! the reply are built here, on the control thread.

use std::collections::VecDeque;
use std::sync::mpsc::Sender;

use rvs_api::{
    ApiError, ConnCursor, ConnInfo, ConnOrigin, ConnPage, Proto, ServiceKey, CONN_PAGE_MAX,
};
use rvs_core::addr::{proto, Addr};
use rvs_core::conn::tcp::TcpState;
use rvs_core::conn::{flags, Conn, FwdMode};
use rvs_core::pipeline::Worker;

use super::{Control, Query};

/// Slots of its table a worker looks at per loop iteration for a listing:
/// about 256 cache misses, a few tens of microseconds.
pub const SLOTS_PER_ROUND: usize = 256;

/// Slots one request may look at before the worker answers with what it
/// found (a short page, with the slot to resume from): bounds the time one
/// request takes however sparse the matches are.
pub const SLOTS_PER_REQUEST: usize = 65_536;

/// Which connections a listing keeps: those of one virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnFilter {
    /// IP protocol.
    pub proto: u8,
    /// Virtual address.
    pub vip: Addr,
    /// Virtual port.
    pub vport: u16,
}

impl ConnFilter {
    /// The filter for a `-t/-u` service; `None` (no filter) for a `-H` match.
    pub fn of(key: &ServiceKey) -> Option<ConnFilter> {
        match key {
            ServiceKey::Vs {
                proto: p,
                vip,
                port,
            } => Some(ConnFilter {
                proto: if *p == Proto::Tcp {
                    proto::TCP
                } else {
                    proto::UDP
                },
                vip: Addr::from(*vip),
                vport: *port,
            }),
            ServiceKey::Match(_) => None,
        }
    }

    /// Whether `c` belongs to the service.
    pub fn matches(&self, c: &Conn) -> bool {
        c.proto == self.proto && c.vport == self.vport && c.vip == self.vip
    }
}

/// A request for one worker's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnScan {
    /// Only these (`None`: all).
    pub filter: Option<ConnFilter>,
    /// The slot to start from.
    pub start: u32,
    /// At most this many connections.
    pub limit: usize,
}

/// A worker's answer to a [`ConnScan`].
#[derive(Debug, Clone)]
pub struct ConnChunk {
    /// The worker's clock when it answered (expiry times are relative to it).
    pub now_ms: u64,
    /// The connections found, in slot order.
    pub conns: Vec<Conn>,
    /// The slot to resume from; `None` when the walk reached the end of the table.
    pub next: Option<u32>,
}

struct Pending {
    scan: ConnScan,
    reply: Sender<ConnChunk>,
    found: Vec<Conn>,
    at: u32,
    looked: usize,
}

/// The listings a worker is part-way through, answered in order.
#[derive(Default)]
pub struct ConnScans {
    queue: VecDeque<Pending>,
}

impl ConnScans {
    /// Takes a request; work on it starts with the next [`ConnScans::step`].
    pub fn push(&mut self, scan: ConnScan, reply: Sender<ConnChunk>) {
        self.queue.push_back(Pending {
            scan,
            reply,
            found: Vec::with_capacity(scan.limit.min(SLOTS_PER_ROUND)),
            at: scan.start,
            looked: 0,
        });
    }

    /// Whether no listing is waiting (the worker may sleep).
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// One loop iteration's share of work: at most [`SLOTS_PER_ROUND`] slots
    /// of the oldest listing; answers it when done.
    pub fn step(&mut self, worker: &Worker, now_ms: u64) {
        let Some(p) = self.queue.front_mut() else {
            return;
        };
        let limit = p.scan.limit.max(1);
        let slots = SLOTS_PER_ROUND.min(SLOTS_PER_REQUEST - p.looked);
        let filter = p.scan.filter;
        let found = &mut p.found;
        let next = worker.scan_conns(p.at, slots, |_, c| {
            if filter.is_none_or(|f| f.matches(c)) {
                found.push(*c);
            }
            found.len() < limit
        });
        p.looked += next.map_or(slots, |n| (n - p.at) as usize);
        let done = next.is_none() || p.found.len() >= limit || p.looked >= SLOTS_PER_REQUEST;
        if let Some(n) = next {
            p.at = n;
        }
        if done {
            if let Some(p) = self.queue.pop_front() {
                // The asker may have given up; nothing to do then.
                let _ = p.reply.send(ConnChunk {
                    now_ms,
                    conns: p.found,
                    next,
                });
            }
        }
    }
}

/// A connection as `rvsadm -lnc` lists it.
pub fn conn_info(worker: u16, c: &Conn, now_ms: u64) -> ConnInfo {
    let p = match c.proto {
        proto::TCP => "TCP",
        proto::UDP => "UDP",
        _ => "ICMP",
    };
    let state = if c.proto == proto::TCP {
        TcpState::from_u8(c.state).map_or("NONE", |s| s.name())
    } else {
        p
    };
    let local = matches!(c.mode, FwdMode::Fnat | FwdMode::Snat).then(|| (c.lip.to_ip(), c.lport));
    ConnInfo {
        proto: p.to_string(),
        state: state.to_string(),
        expire_s: c.expires_ms().saturating_sub(now_ms).div_ceil(1000),
        client: (c.cip.to_ip(), c.cport),
        virt: (c.vip.to_ip(), c.vport),
        local,
        dest: (c.rip.to_ip(), c.rport),
        worker,
        origin: if c.flags & flags::FOREIGN != 0 {
            ConnOrigin::Foreign
        } else if c.flags & flags::SYNCED != 0 {
            ConnOrigin::Synced
        } else {
            ConnOrigin::Local
        },
    }
}

impl Control {
    /// One page of connections from `cursor` on (workers in order, each
    /// table in slot order), at most `limit` (clamped to 1..=[`CONN_PAGE_MAX`]).
    pub fn conn_page(
        &self,
        key: Option<&ServiceKey>,
        cursor: ConnCursor,
        limit: usize,
    ) -> Result<ConnPage, ApiError> {
        let limit = limit.clamp(1, CONN_PAGE_MAX);
        let filter = key.and_then(ConnFilter::of);
        let mut conns = Vec::new();
        let (mut w, mut slot) = (cursor.worker as usize, cursor.slot);
        while w < self.workers.len() && conns.len() < limit {
            let scan = ConnScan {
                filter,
                start: slot,
                limit: limit - conns.len(),
            };
            let chunk = self.ask_one(w, "the connection listing", |reply| Query::Conns {
                scan,
                reply,
            })?;
            conns.extend(
                chunk
                    .conns
                    .iter()
                    .map(|c| conn_info(w as u16, c, chunk.now_ms)),
            );
            match chunk.next {
                Some(s) => {
                    let next = ConnCursor {
                        worker: w as u16,
                        slot: s,
                    };
                    return Ok(ConnPage {
                        conns,
                        next: Some(next),
                    });
                }
                None => (w, slot) = (w + 1, 0),
            }
        }
        let next = (w < self.workers.len()).then_some(ConnCursor {
            worker: w as u16,
            slot,
        });
        Ok(ConnPage { conns, next })
    }

    /// Up to `limit` connections in one list, fetched page by page.
    pub fn list_conns(
        &self,
        key: Option<&ServiceKey>,
        limit: usize,
    ) -> Result<Vec<ConnInfo>, ApiError> {
        let mut all = Vec::new();
        let mut cursor = Some(ConnCursor::default());
        while let Some(c) = cursor {
            if all.len() >= limit {
                break;
            }
            let page = self.conn_page(key, c, limit - all.len())?;
            all.extend(page.conns);
            cursor = page.next;
        }
        Ok(all)
    }
}

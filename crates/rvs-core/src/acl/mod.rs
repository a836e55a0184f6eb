//! Allow and deny lists (DPVS's whitelists and blacklists) and the named
//! sets they may refer to (`dpip ipset`), checked when a connection is
//! created, before scheduling.
//!
//! A list holds rules: an address, a prefix, or `ipset:NAME`. There is one
//! pair of lists (deny, allow) for all services together (the global lists)
//! and one per virtual service. A new connection from a client address is
//! refused when
//! - a deny rule of the global lists or of its service matches (counted
//!   under `acl_deny`), or
//! - an allow list applies to its service (the service's or the global one
//!   has rules) and no allow rule of either matches (`acl_not_allowed`),
//!
//! so deny wins over allow. Packets of established connections are never
//! looked at: changing a list affects new connections only.
//!
//! Everything here is immutable once in a [`crate::snapshot::Snapshot`]; a
//! check makes no allocation, and a snapshot without any rule costs one
//! branch per new connection.

pub mod entry;
pub mod net;
pub mod set;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::addr::Addr;
use crate::stats::{bump, DropReason};
pub use entry::{parse_entry, parse_probe, Member, SetKind};
use net::{Flat, NetTable};
pub use set::{IpSet, SetOpts};

/// What kind of failure an [`AclError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclErrorKind {
    /// A value is malformed or does not fit.
    Invalid,
    /// The member or rule is already there.
    Exists,
    /// The member or rule is not there.
    NotFound,
    /// The set reached its `maxelem`.
    Full,
}

/// Why a list or set change was refused, with a message naming what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclError {
    /// The kind.
    pub kind: AclErrorKind,
    /// The message.
    pub message: String,
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AclError {}

/// A padded per-worker counter cell.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Cell(AtomicU64);

/// A counter with one cell per worker (single writer each), summed by readers.
#[derive(Debug)]
pub struct Hits {
    cells: Box<[Cell]>,
}

impl Hits {
    /// Cells for `workers` workers (at least one).
    pub fn new(workers: usize) -> Hits {
        Hits {
            cells: (0..workers.max(1)).map(|_| Cell::default()).collect(),
        }
    }

    /// Counts one for worker `w` (out-of-range workers share the last cell).
    #[inline]
    pub fn bump(&self, w: usize) {
        let last = self.cells.len() - 1;
        if let Some(c) = self.cells.get(w.min(last)) {
            bump(&c.0, 1);
        }
    }

    /// The sum over workers.
    pub fn sum(&self) -> u64 {
        self.cells.iter().map(|c| c.0.load(Relaxed)).sum()
    }
}

/// What a rule matches, as `-k`/`-2` give it: `ADDR`, `ADDR/PLEN` or `ipset:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// An address (`plen` the family's width) or a prefix.
    Net {
        /// Network address (host bits clear).
        addr: Addr,
        /// Prefix length.
        plen: u8,
    },
    /// A set, by name.
    Set(String),
}

impl Subject {
    /// Parses `ADDR`, `ADDR/PLEN` (host bits are cleared) or `ipset:NAME`.
    pub fn parse(s: &str) -> Result<Subject, AclError> {
        if let Some(name) = s.strip_prefix("ipset:") {
            set::check_name(name)?;
            return Ok(Subject::Set(name.to_string()));
        }
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let a = a.trim_start_matches('[').trim_end_matches(']');
        let addr: Addr = a.parse().map_err(|_| {
            AclError::invalid(format!(
                "invalid list entry '{s}': expected IP, IP/PLEN or ipset:NAME"
            ))
        })?;
        let w = entry::width(&addr);
        let plen = match l {
            None => w,
            Some(l) => match l.parse::<u8>() {
                Ok(p) if p <= w && l.bytes().all(|b| b.is_ascii_digit()) => p,
                _ => {
                    return Err(AclError::invalid(format!(
                        "invalid prefix length '{l}' in '{s}' (0 to {w})"
                    )))
                }
            },
        };
        Ok(Subject::Net {
            addr: entry::network(&addr, plen),
            plen,
        })
    }

    /// Whether the subject is an address of the other family than `v4`
    /// (a set's family is checked by the caller).
    pub fn family_differs(&self, v4: bool) -> bool {
        matches!(self, Subject::Net { addr, .. } if addr.is_v4() != v4)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Net { addr, plen } if *plen == entry::width(addr) => write!(f, "{addr}"),
            Subject::Net { addr, plen } => write!(f, "{addr}/{plen}"),
            Subject::Set(n) => write!(f, "ipset:{n}"),
        }
    }
}

/// A rule resolved for a snapshot: its target and its hit counter.
#[derive(Debug, Clone)]
pub enum Target {
    /// An address or prefix.
    Net(Addr, u8),
    /// A set.
    Set(Arc<IpSet>),
}

/// The rules of one list, ready for lookups.
#[derive(Debug, Default)]
pub struct RuleList {
    /// Address and prefix rules; the value is the rule's index.
    addrs: NetTable,
    /// Set rules: (rule index, set).
    sets: Vec<(u32, Arc<IpSet>)>,
    /// Per rule: connections it matched.
    hits: Vec<Arc<Hits>>,
}

impl RuleList {
    /// A list of `rules`, each with its counter.
    pub fn new(rules: impl IntoIterator<Item = (Target, Arc<Hits>)>) -> RuleList {
        let mut l = RuleList::default();
        for (t, h) in rules {
            let i = l.hits.len() as u32;
            match t {
                Target::Net(a, plen) => {
                    l.addrs.insert(&a, plen, i);
                }
                Target::Set(s) => l.sets.push((i, s)),
            }
            l.hits.push(h);
        }
        l.addrs.reindex();
        l
    }

    /// Whether the list has no rule.
    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// The first matching rule (the most specific address rule, else the
    /// first matching set), counted for worker `w`.
    #[inline]
    fn hit(&self, src: &Addr, proto: u8, dport: u16, w: usize) -> bool {
        let by_addr = match self.addrs.is_empty() {
            true => None,
            false => self.addrs.lookup(src),
        };
        let rule = match by_addr {
            Some(i) => Some(i),
            None => self.sets.iter().find_map(|(i, s)| {
                s.matches(src, proto, dport).then(|| {
                    s.hits().bump(w);
                    *i
                })
            }),
        };
        match rule.and_then(|i| self.hits.get(i as usize)) {
            Some(h) => {
                h.bump(w);
                true
            }
            None => false,
        }
    }
}

/// The IPv4 ranges the deny lists `deny` match in (value 0), flattened:
/// each large set's own index (shared, nothing to build), and one built
/// here for everything else (address rules, small sets, `hash:ip,port`),
/// so that a snapshot build costs what the small rules cost.
fn deny_index(deny: &[&RuleList]) -> Box<[Arc<Flat>]> {
    let mut out: Vec<Arc<Flat>> = Vec::new();
    let mut ranges = Vec::new();
    for l in deny {
        l.addrs.v4_ranges(|_| true, &mut ranges);
        for (_, s) in &l.sets {
            match s.v4_flat() {
                Some(f) if out.iter().any(|x| Arc::ptr_eq(x, f)) => {}
                Some(f) => out.push(f.clone()),
                None => s.v4_ranges(&mut ranges),
            }
        }
    }
    if !ranges.is_empty() {
        out.push(Arc::new(Flat::build(merge(ranges))));
    }
    out.into()
}

/// `ranges` sorted and joined where they overlap or touch, each with value 0.
fn merge(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32, u32)> {
    ranges.sort_unstable();
    let mut out: Vec<(u32, u32, u32)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if u64::from(lo) <= u64::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi, 0)),
        }
    }
    out
}

/// A deny list and an allow list (global, or of one service).
#[derive(Debug)]
pub struct Lists {
    /// Blacklist (`--add-blklst`).
    pub deny: RuleList,
    /// Whitelist (`--add-whtlst`).
    pub allow: RuleList,
    /// Connections refused because no allow rule matched.
    pub rejected: Arc<Hits>,
}

impl Lists {
    fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.allow.is_empty()
    }
}

/// The lists of a snapshot: global and per service (by service index).
#[derive(Debug, Default)]
pub struct Acl {
    global: Option<Arc<Lists>>,
    by_svc: Vec<Option<Arc<Lists>>>,
    any: bool,
    /// Per service index: whether an allow list applies to it.
    allow: Vec<bool>,
    /// The IPv4 ranges some deny rule (of any list) matches in, flattened
    /// (usually one index) and reached from here without a walk through
    /// lists and sets: a source in none of them, to a service without an
    /// allow list, passes after a few loads.
    deny_v4: Box<[Arc<Flat>]>,
}

impl Acl {
    /// The lists for services `svc_ids` (the snapshot's services, in order):
    /// `global` for all of them, and `per_svc` by service id.
    pub fn new(global: Option<Arc<Lists>>, per_svc: &[(u32, Arc<Lists>)], svc_ids: &[u32]) -> Acl {
        let global = global.filter(|g| !g.is_empty());
        let by_svc: Vec<_> = svc_ids
            .iter()
            .map(|id| {
                per_svc
                    .iter()
                    .find(|(i, l)| i == id && !l.is_empty())
                    .map(|(_, l)| l.clone())
            })
            .collect();
        let any = global.is_some() || by_svc.iter().any(Option::is_some);
        let g_allow = global.as_ref().is_some_and(|g| !g.allow.is_empty());
        let allow = by_svc
            .iter()
            .map(|l| g_allow || l.as_ref().is_some_and(|l| !l.allow.is_empty()))
            .collect();
        let deny: Vec<&RuleList> = global
            .iter()
            .chain(by_svc.iter().flatten())
            .map(|l| &l.deny)
            .collect();
        let deny_v4 = deny_index(&deny);
        Acl {
            global,
            by_svc,
            any,
            allow,
            deny_v4,
        }
    }

    /// Whether any rule is configured.
    pub fn is_empty(&self) -> bool {
        !self.any
    }

    /// Whether a new connection from `src` to service index `svc` (port
    /// `dport` over `proto`) may be created; counts the rule that decided
    /// for worker `w`.
    #[inline]
    pub fn check(
        &self,
        svc: usize,
        src: &Addr,
        proto: u8,
        dport: u16,
        w: usize,
    ) -> Result<(), DropReason> {
        if !self.any {
            return Ok(());
        }
        if src.is_v4() && !self.allow.get(svc).copied().unwrap_or(true) {
            let k = src.v4_u32();
            if !self.deny_v4.iter().any(|f| f.lookup(k) == Some(0)) {
                return Ok(());
            }
        }
        self.check_lists(svc, src, proto, dport, w)
    }

    fn check_lists(
        &self,
        svc: usize,
        src: &Addr,
        proto: u8,
        dport: u16,
        w: usize,
    ) -> Result<(), DropReason> {
        let own = self.by_svc.get(svc).and_then(Option::as_ref);
        let g = self.global.as_ref();
        for l in [g, own].into_iter().flatten() {
            if l.deny.hit(src, proto, dport, w) {
                return Err(DropReason::AclDeny);
            }
        }
        let own_allow = own.filter(|l| !l.allow.is_empty());
        let g_allow = g.filter(|l| !l.allow.is_empty());
        let Some(judge) = own_allow.or(g_allow) else {
            return Ok(());
        };
        for l in [own_allow, g_allow].into_iter().flatten() {
            if l.allow.hit(src, proto, dport, w) {
                return Ok(());
            }
        }
        judge.rejected.bump(w);
        Err(DropReason::AclNotAllowed)
    }
}

//! Schedulers: which real server ("dest") gets a new connection.
//!
//! The algorithms and their names follow Linux IPVS (`ipvsadm -s`) and DPVS:
//!
//! - `rr` (round robin): the dests take turns in list order, skipping
//!   quiescent (weight 0) and unavailable ones.
//! - `wrr` (weighted round robin): LVS's interleaved scheme; a current weight
//!   steps down from the maximum weight by the weights' gcd and each round
//!   picks every dest whose weight reaches it, so over `sum(weights)`
//!   decisions each dest is picked exactly `weight` times.
//! - `lc` (least connection): the dest with the least `active * 256 + inactive`.
//! - `wlc` (weighted least connection): the least `(active * 256 + inactive) / weight`,
//!   compared by cross-multiplication as the kernel does.
//! - `sh` (source hashing): the source address indexes a 256-bucket table in
//!   which each dest holds buckets in proportion to its weight. When the
//!   source's dest is unusable the connection is refused, unless the
//!   `sh-fallback` flag sends it to the following buckets (as IPVS).
//! - `conhash` (consistent hashing, DPVS): the source address is looked up on
//!   a ring of 160 points per unit of weight per dest; an unusable dest falls
//!   through clockwise to the next usable one.
//! - `fo` (weighted failover): the usable dest with the highest weight.
//! - `mh` (Maglev hashing, Eisenbud et al., NSDI'16): a prime-sized lookup
//!   table filled from per-dest permutations, so that a dest change moves
//!   only about its own share of flows; weights set how many turns each dest
//!   takes while the table is populated (as in `ip_vs_mh.c`). An unusable
//!   dest refuses the connection unless `mh-fallback` is set.
//!
//! Tables (`SchedTable`) are immutable and shared by all workers; the small
//! mutable state (`SchedState`: the rr cursor and the wrr position) is per
//! worker, as are the connection counters the pipeline exposes through
//! `DestSet`. A decision never allocates.

mod conhash;
mod hash;
mod lc;
mod mh;
mod rr;
mod sh;
#[cfg(test)]
mod testutil;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::addr::Addr;

pub use conhash::{MAX_RING_POINTS, REPLICAS_PER_WEIGHT};
pub use mh::{MH_DEFAULT_TABLE_SIZE, MH_MAX_TABLE_SIZE};

/// The largest number of dests a hashed table (sh, conhash, mh) can address;
/// its entries are `u16` to halve the memory of a Maglev table. Dests past
/// this index are left out of the hashed tables (they can still be reached by
/// the fallback scan).
pub const MAX_HASHED_DESTS: usize = u16::MAX as usize;

/// Marks a table entry that points at no dest.
const NO_DEST: u16 = u16::MAX;

/// Scheduler names as in `ipvsadm -s`: rr, wrr, wlc, lc, sh, conhash, fo, mh.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SchedKind {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Weighted least connection.
    Wlc,
    /// Least connection.
    Lc,
    /// Source hashing.
    Sh,
    /// Consistent hashing on the source address (DPVS).
    Conhash,
    /// Weighted failover.
    Fo,
    /// Maglev hashing.
    Mh,
}

const ALL_KINDS: [SchedKind; 8] = [
    SchedKind::Rr,
    SchedKind::Wrr,
    SchedKind::Wlc,
    SchedKind::Lc,
    SchedKind::Sh,
    SchedKind::Conhash,
    SchedKind::Fo,
    SchedKind::Mh,
];

impl SchedKind {
    /// The `ipvsadm -s` name.
    pub fn name(&self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Wlc => "wlc",
            SchedKind::Lc => "lc",
            SchedKind::Sh => "sh",
            SchedKind::Conhash => "conhash",
            SchedKind::Fo => "fo",
            SchedKind::Mh => "mh",
        }
    }

    /// Every scheduler: rr, wrr, wlc, lc, sh, conhash, fo, mh.
    pub fn all() -> &'static [SchedKind] {
        &ALL_KINDS
    }
}

impl fmt::Display for SchedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scheduler name that is not one of [`SchedKind::all`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseSchedKindError(pub String);

impl fmt::Display for ParseSchedKindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown scheduler '{}' (valid: ", self.0)?;
        for (i, k) in SchedKind::all().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(k.name())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ParseSchedKindError {}

impl FromStr for SchedKind {
    type Err = ParseSchedKindError;
    fn from_str(s: &str) -> Result<SchedKind, ParseSchedKindError> {
        // Case-insensitive because configs written for ipvsadm sometimes say "WRR".
        SchedKind::all()
            .iter()
            .copied()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseSchedKindError(s.to_string()))
    }
}

/// What the scheduler may read of the dests at decision time.
///
/// The pipeline implements it over its own storage so that no list is built
/// per decision. Index `i` is the position in the service's dest list; the
/// scheduler only calls the accessors with `i < len()`.
pub trait DestSet {
    /// Number of dests.
    fn len(&self) -> usize;
    /// Whether there are no dests.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Weight of dest `i`; 0 means quiescent: never chosen for new connections.
    fn weight(&self, i: usize) -> u32;
    /// This worker's active (established) connections to dest `i`.
    fn active(&self, i: usize) -> u32;
    /// This worker's other connections to dest `i`.
    fn inactive(&self, i: usize) -> u32;
    /// False when dest `i` is overloaded (upper threshold) or otherwise excluded.
    fn available(&self, i: usize) -> bool;
}

/// Whether dest `i` may take a new connection.
#[inline]
fn usable<D: DestSet>(dests: &D, i: usize) -> bool {
    i < dests.len() && dests.weight(i) > 0 && dests.available(i)
}

/// Identity of a dest for building hash tables: address, port and weight.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DestKey {
    /// The real server's address.
    pub addr: Addr,
    /// The real server's port.
    pub port: u16,
    /// The configured weight (0 = quiescent, left out of hashed tables).
    pub weight: u32,
}

/// The flow's identity for the hashing schedulers.
///
/// sh, conhash and mh hash the source address; sh and mh also hash the
/// source port when their option asks for it.
#[derive(Copy, Clone, Debug)]
pub struct FlowKey {
    /// Client (source) address.
    pub src: Addr,
    /// Client (source) port.
    pub sport: u16,
    /// Virtual (destination) address.
    pub dst: Addr,
    /// Virtual (destination) port.
    pub dport: u16,
}

/// Build options for [`SchedTable::build_with`]: the scheduler flags of
/// `ipvsadm --sched-flags` (`rvsadm --sched-flags`; in DPVS's ipvsadm, as in
/// rvsadm, `-b` is `--fullnat`), plus the Maglev table size.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedOpts {
    /// mh: hash the source port too (`mh-port`), spreading one client's
    /// connections over several dests.
    pub mh_port: bool,
    /// mh: when the source's dest is unusable (weight 0, overloaded), pick
    /// another (`mh-fallback`); without it the connection is refused.
    pub mh_fallback: bool,
    /// sh: hash the source port too (`sh-port`).
    pub sh_port: bool,
    /// sh: when the source's dest is unusable, pick another (`sh-fallback`);
    /// without it the connection is refused.
    pub sh_fallback: bool,
    /// mh: requested lookup table size; 0 means [`MH_DEFAULT_TABLE_SIZE`].
    /// Rounded up to a prime and clamped to
    /// `MH_DEFAULT_TABLE_SIZE..=MH_MAX_TABLE_SIZE`.
    pub mh_table_size: usize,
}

/// Gives every built table an identity so that a worker's wrr position,
/// which is only meaningful for the table it was computed on, can notice
/// that the service was reconfigured.
static NEXT_TABLE_ID: AtomicU64 = AtomicU64::new(1);

/// Immutable per-service tables, built off the hot path when the dest list changes.
#[derive(Clone)]
pub struct SchedTable {
    kind: SchedKind,
    opts: SchedOpts,
    id: u64,
    ndests: usize,
    data: TableData,
}

#[derive(Clone)]
enum TableData {
    /// rr, lc, wlc, fo read everything from the `DestSet`.
    None,
    /// wrr's maximum weight and gcd of the non-zero weights.
    Wrr { max_weight: u32, gcd: u32 },
    /// sh's 256 buckets.
    Sh(Box<[u16; sh::BUCKETS]>),
    /// conhash's ring: sorted points and, in parallel, their dests.
    Ring(conhash::Ring),
    /// mh's lookup table (prime length).
    Mh(Box<[u16]>),
}

impl SchedTable {
    /// Builds the table for `kind` over `dests` with default options.
    pub fn build(kind: SchedKind, dests: &[DestKey]) -> SchedTable {
        SchedTable::build_with(kind, dests, SchedOpts::default())
    }

    /// Builds the table for `kind` over `dests`.
    ///
    /// Allocates (up to a few hundred KiB for mh); call it from the control
    /// plane, never per packet.
    pub fn build_with(kind: SchedKind, dests: &[DestKey], opts: SchedOpts) -> SchedTable {
        let data = match kind {
            SchedKind::Rr | SchedKind::Lc | SchedKind::Wlc | SchedKind::Fo => TableData::None,
            SchedKind::Wrr => {
                let max_weight = dests.iter().map(|d| d.weight).max().unwrap_or(0);
                let gcd = dests.iter().fold(0, |g, d| hash::gcd(g, d.weight));
                TableData::Wrr { max_weight, gcd }
            }
            SchedKind::Sh => TableData::Sh(sh::build(dests)),
            SchedKind::Conhash => TableData::Ring(conhash::build(dests)),
            SchedKind::Mh => TableData::Mh(mh::build(dests, opts.mh_table_size)),
        };
        SchedTable {
            kind,
            opts,
            id: NEXT_TABLE_ID.fetch_add(1, Ordering::Relaxed),
            ndests: dests.len(),
            data,
        }
    }

    /// The scheduler this table is for.
    pub fn kind(&self) -> SchedKind {
        self.kind
    }

    /// The options the table was built with.
    pub fn opts(&self) -> SchedOpts {
        self.opts
    }

    /// Number of dests the table was built over.
    pub fn dest_count(&self) -> usize {
        self.ndests
    }

    /// mh: the lookup table's size (a prime); `None` for the other schedulers.
    pub fn mh_table_size(&self) -> Option<usize> {
        match &self.data {
            TableData::Mh(t) => Some(t.len()),
            _ => None,
        }
    }

    /// Memory used, for reporting.
    pub fn memory_bytes(&self) -> usize {
        let heap = match &self.data {
            TableData::None | TableData::Wrr { .. } => 0,
            TableData::Sh(b) => std::mem::size_of_val(&**b),
            TableData::Ring(r) => r.memory_bytes(),
            TableData::Mh(t) => std::mem::size_of_val(&**t),
        };
        std::mem::size_of::<SchedTable>() + heap
    }
}

impl fmt::Debug for SchedTable {
    // Hand-written so that logging a table does not print 65537 entries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchedTable")
            .field("kind", &self.kind)
            .field("opts", &self.opts)
            .field("dests", &self.ndests)
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

/// Per-worker mutable state (rr cursor, wrr current weight, ...).
/// `Default` gives a fresh state.
#[derive(Default, Clone, Debug)]
pub struct SchedState {
    rr_next: usize,
    wrr: rr::WrrState,
}

/// Chooses a dest for a new connection: the index into `dests`, or `None`
/// when no dest can take it (all weight 0, all unavailable, or none at all).
///
/// Never allocates. O(1) amortised for rr, wrr, sh, conhash and mh while most
/// dests are usable; O(n) for lc, wlc and fo, as in LVS.
pub fn schedule<D: DestSet>(
    table: &SchedTable,
    state: &mut SchedState,
    dests: &D,
    flow: &FlowKey,
) -> Option<usize> {
    match &table.data {
        TableData::None => match table.kind {
            SchedKind::Rr => rr::rr(&mut state.rr_next, dests),
            SchedKind::Lc => lc::lc(dests),
            SchedKind::Wlc => lc::wlc(dests),
            SchedKind::Fo => lc::fo(dests),
            // A table's data always matches its kind (see build_with); this
            // arm only exists to keep the match total.
            SchedKind::Wrr | SchedKind::Sh | SchedKind::Conhash | SchedKind::Mh => None,
        },
        TableData::Wrr { max_weight, gcd } => {
            rr::wrr(&mut state.wrr, table.id, *max_weight, *gcd, dests)
        }
        TableData::Sh(buckets) => {
            let port = if table.opts.sh_port { flow.sport } else { 0 };
            sh::lookup(buckets, dests, &flow.src, port, table.opts.sh_fallback)
        }
        TableData::Ring(ring) => ring.lookup(dests, &flow.src),
        TableData::Mh(t) => {
            let port = if table.opts.mh_port { flow.sport } else { 0 };
            mh::lookup(t, dests, &flow.src, port, table.opts.mh_fallback)
        }
    }
}

/// Last resort for the hashing schedulers: the first usable dest at or after
/// a hash-chosen position, so that fallback flows still spread by source.
fn scan_from<D: DestSet>(dests: &D, h: u64) -> Option<usize> {
    let n = dests.len();
    if n == 0 {
        return None;
    }
    let start = hash::reduce(h, n);
    (start..n).chain(0..start).find(|&i| usable(dests, i))
}

#[cfg(test)]
mod tests;

//! [`ConnTable`]: the slab, the index glue and the lazy timer wheel.

use super::index::{sig_of, Index, WAYS};
use super::mem::{MemVec, Prefetch, TableMem};
use super::{flags, Conn, ConnId, Dir, Expiry, InsertError, Tuple, SLOT_HAS_OUT, SLOT_USED};

/// Largest supported capacity: slot values keep the direction in bit 0 of a `u32`.
pub const MAX_CAPACITY: usize = (1 << 31) - 1;
/// Granularity of the timer wheel in milliseconds: conns expire at most this late.
pub const WHEEL_TICK_MS: u64 = 32;
/// Slots of the timer wheel (one revolution = `WHEEL_SLOTS * WHEEL_TICK_MS` ms).
pub const WHEEL_SLOTS: usize = 4096;

/// End of a list (wheel slot or free list).
const NIL: u32 = u32::MAX;
/// Most lookups [`ConnTable::lookup_batch`] keeps in flight at once.
const BATCH: usize = 32;

/// A hash seed nobody can predict: std's per-process random SipHash keys
/// (one `getrandom` per thread, then a counter), so every table differs.
/// Called once per table at construction, never per packet.
pub fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Per-worker connection table. See the [module doc](super) for the design.
pub struct ConnTable {
    conns: MemVec<Conn>,
    index: Index,
    /// Heads of the wheel slots' lists.
    heads: Vec<u32>,
    free_head: u32,
    /// Most conns the table holds (`conns` is reserved for this many).
    cap: usize,
    len: usize,
    /// Conns ever inserted (wraps); lets a caller tell whether the table
    /// gained an entry since an earlier lookup.
    inserts: u64,
    /// Ticks before this one have been started by [`ConnTable::expire`].
    cursor: u64,
    /// Next conn to visit in the slot `expire` is part-way through (budget ran out).
    resume: u32,
    /// The caller's CPU prefetch ([`ConnTable::set_prefetch`]), if any.
    prefetch: Option<Prefetch>,
}

#[inline(always)]
fn tick_of(ms: u64) -> u64 {
    ms.div_ceil(WHEEL_TICK_MS)
}

#[inline(always)]
fn slot_val(idx: u32, dir: Dir) -> u32 {
    idx << 1 | (dir == Dir::Out) as u32
}

#[inline(always)]
fn decode(v: u32) -> (ConnId, Dir) {
    (ConnId(v >> 1), if v & 1 == 0 { Dir::In } else { Dir::Out })
}

/// Whether slot value `v` names a conn whose tuple on that side is `t`.
#[inline(always)]
fn key_matches(conns: &[Conn], v: u32, t: &Tuple) -> bool {
    let Some(c) = conns.get((v >> 1) as usize) else {
        return false;
    };
    if v & 1 == 0 {
        c.cport == t.sport
            && c.vport == t.dport
            && c.proto == t.proto
            && c.cip == t.src
            && c.vip == t.dst
    } else {
        c.rport == t.sport
            && c.lport == t.dport
            && c.oproto == t.proto
            && c.rip == t.src
            && c.lip == t.dst
    }
}

impl ConnTable {
    /// Preallocates everything for `capacity` conns (clamped to [`MAX_CAPACITY`]).
    /// `now_ms` is the caller's monotonic clock in milliseconds. The index is
    /// keyed with a [`fresh_seed`], so tuples cannot be crafted offline to pile
    /// into one probe run (hash flooding).
    pub fn new(capacity: usize, now_ms: u64) -> ConnTable {
        ConnTable::with_seed(capacity, now_ms, fresh_seed())
    }

    /// As [`ConnTable::new`], with a given hash seed: for reproducible tests,
    /// fuzzing and benchmarks only (a fixed seed invites hash flooding).
    pub fn with_seed(capacity: usize, now_ms: u64, seed: u64) -> ConnTable {
        ConnTable::with_seed_in(capacity, now_ms, seed, TableMem::heap())
    }

    /// As [`ConnTable::new`], with the slab and index allocated from `mem`
    /// (e.g. huge pages).
    pub fn new_in(capacity: usize, now_ms: u64, mem: TableMem) -> ConnTable {
        ConnTable::with_seed_in(capacity, now_ms, fresh_seed(), mem)
    }

    /// As [`ConnTable::with_seed`], with the slab and index allocated from `mem`.
    pub fn with_seed_in(capacity: usize, now_ms: u64, seed: u64, mem: TableMem) -> ConnTable {
        let capacity = capacity.min(MAX_CAPACITY);
        // Reserved, not written: slots are pushed as conns arrive (never past
        // the reservation, so never reallocated), which keeps start-up fast
        // and resident memory proportional to use.
        let conns = MemVec::with_capacity_in(capacity, mem.0);
        ConnTable {
            conns,
            cap: capacity,
            index: Index::new(capacity.saturating_mul(2), seed, mem),
            heads: vec![NIL; WHEEL_SLOTS],
            free_head: NIL,
            len: 0,
            inserts: 0,
            cursor: now_ms / WHEEL_TICK_MS,
            resume: NIL,
            prefetch: None,
        }
    }

    /// Bytes of the two large allocations (slab, index) of a table of
    /// `capacity` conns: what a caller must find in the memory it hands over.
    pub fn allocations_for(capacity: usize) -> [usize; 2] {
        let capacity = capacity.min(MAX_CAPACITY);
        [
            capacity.saturating_mul(std::mem::size_of::<Conn>()),
            Index::bytes_for(capacity.saturating_mul(2)),
        ]
    }

    /// Gives the table a CPU prefetch (which this crate cannot issue without
    /// `unsafe`): expiry, which follows the wheel's list from conn to conn,
    /// starts the next conn's misses and the current conn's bucket misses
    /// while it handles the current one, so they overlap. (Batched lookups
    /// need none: their plain loads already overlap, and measured no slower.)
    pub fn set_prefetch(&mut self, prefetch: Option<Prefetch>) {
        self.prefetch = prefetch;
    }

    /// Most conns the table holds.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// How many conns were ever inserted (wrapping): unchanged means no
    /// lookup miss since then can have become a hit.
    pub fn inserts(&self) -> u64 {
        self.inserts
    }

    /// Live conns.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no conn is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total heap bytes of conn storage + index + wheel (for
    /// `bytes_per_conn = memory_bytes() / capacity`).
    pub fn memory_bytes(&self) -> usize {
        self.conns.capacity() * std::mem::size_of::<Conn>()
            + self.index.memory_bytes()
            + self.heads.capacity() * std::mem::size_of::<u32>()
    }

    /// Buckets a lookup of `t` visits (1 when its home bucket settles it):
    /// the cost an attacker who could aim tuples at one bucket would inflate.
    pub fn probe_len(&self, t: &Tuple) -> usize {
        self.index.probe_len(self.index.hash(t))
    }

    /// The home bucket of `t` (tests build colliding sets with it).
    #[cfg(test)]
    pub(super) fn home_of(&self, t: &Tuple) -> usize {
        self.index.home(self.index.hash(t))
    }

    #[inline(always)]
    fn lookup_hashed(&self, h: u64, t: &Tuple) -> Option<(ConnId, Dir)> {
        let conns = &self.conns[..];
        self.index.find(h, |v| key_matches(conns, v, t)).map(decode)
    }

    /// The conn whose in or out tuple is `t`, and which of the two it matched.
    #[inline]
    pub fn lookup(&self, t: &Tuple) -> Option<(ConnId, Dir)> {
        self.lookup_hashed(self.index.hash(t), t)
    }

    /// Looks up many tuples, overlapping the cache misses of independent lookups:
    /// all home buckets are read first, then the first candidate conn of each key,
    /// and only then are keys compared. `out[i]` receives the result for `keys[i]`
    /// (as [`ConnTable::lookup`] would return it); entries beyond the shorter of the
    /// two slices are left alone. Any length works; work proceeds 32 keys at a time.
    pub fn lookup_batch(&self, keys: &[Tuple], out: &mut [Option<(ConnId, Dir)>]) {
        for (k, o) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            self.lookup_chunk(k, o);
        }
    }

    fn lookup_chunk(&self, keys: &[Tuple], out: &mut [Option<(ConnId, Dir)>]) {
        let n = keys.len().min(out.len()).min(BATCH);
        let mut hashes = [0u64; BATCH];
        let mut homes = [0usize; BATCH];
        let mut masks = [0u16; BATCH];
        // Pass 1: hashes only (pure arithmetic), then one load per bucket with
        // nothing else in the loop, so the CPU keeps as many misses in flight as
        // it has fill buffers; then the signature compares hit the cache.
        for i in 0..n {
            let h = self.index.hash(&keys[i]);
            hashes[i] = h;
            homes[i] = self.index.home(h);
        }
        let mut touch = 0u16;
        for &b in &homes[..n] {
            touch ^= self.index.buckets.get(b).map_or(0, |bk| bk.sigs[0]);
        }
        std::hint::black_box(touch);
        for i in 0..n {
            masks[i] = self.index.sig_mask(homes[i], sig_of(hashes[i]));
        }
        // Pass 2: touch both cache lines of the first candidate conn (the key for
        // this side, and the other side's key that the pipeline rewrites with).
        let mut ports = [0u16; BATCH];
        let mut touch = 0u16;
        for i in 0..n {
            if masks[i] != 0 {
                let w = (masks[i].trailing_zeros() as usize).min(WAYS - 1);
                let v = self.index.buckets[homes[i]].slots[w];
                if let Some(c) = self.conns.get((v >> 1) as usize) {
                    let (mine, other) = if v & 1 == 0 {
                        (c.cport, c.rport)
                    } else {
                        (c.rport, c.cport)
                    };
                    ports[i] = mine;
                    touch ^= other;
                }
            }
        }
        std::hint::black_box(touch);
        // Pass 3: compare, with the lines now in cache. A single candidate whose
        // source port differs, in a bucket nothing overflowed from, is a miss.
        for i in 0..n {
            let no_overflow = self.index.buckets[homes[i]].overflow == 0;
            let settled_miss = no_overflow
                && (masks[i] == 0 || (masks[i].count_ones() == 1 && ports[i] != keys[i].sport));
            out[i] = if settled_miss {
                None
            } else {
                self.lookup_hashed(hashes[i], &keys[i])
            };
        }
    }

    /// Indexes the in tuple, and the out tuple unless `conn.flags` has
    /// [`flags::NO_OUT_TUPLE`], and sets the expiry to `now_ms + timeout_ms`.
    ///
    /// `Err(Full)` at capacity (checked first, so a full table costs no lookups);
    /// `Err(Exists)` if either tuple is already indexed, or the two tuples are equal
    /// (a lookup could not tell the sides apart). On error nothing is changed.
    pub fn insert(
        &mut self,
        mut conn: Conn,
        timeout_ms: u32,
        now_ms: u64,
    ) -> Result<ConnId, InsertError> {
        if self.free_head == NIL && self.conns.len() >= self.cap {
            return Err(InsertError::Full);
        }
        let in_t = conn.in_tuple();
        let h_in = self.index.hash(&in_t);
        if self.lookup_hashed(h_in, &in_t).is_some() {
            return Err(InsertError::Exists);
        }
        let has_out = conn.flags & flags::NO_OUT_TUPLE == 0;
        let mut h_out = 0;
        if has_out {
            let out_t = conn.out_tuple();
            h_out = self.index.hash(&out_t);
            if out_t == in_t || self.lookup_hashed(h_out, &out_t).is_some() {
                return Err(InsertError::Exists);
            }
        }
        let idx = if self.free_head != NIL {
            let i = self.free_head;
            self.free_head = self.conns[i as usize].next;
            i
        } else {
            self.conns.push(Conn::EMPTY);
            (self.conns.len() - 1) as u32
        };
        conn.store_bits = SLOT_USED | if has_out { SLOT_HAS_OUT } else { 0 };
        conn.oproto = conn.proto;
        conn.expires = now_ms.saturating_add(u64::from(timeout_ms));
        self.conns[idx as usize] = conn;
        self.index.insert(h_in, slot_val(idx, Dir::In));
        if has_out {
            self.index.insert(h_out, slot_val(idx, Dir::Out));
        }
        self.file(idx);
        self.len += 1;
        self.inserts = self.inserts.wrapping_add(1);
        Ok(ConnId(idx))
    }

    /// Index of a live conn; panics on an id out of range or naming a free slot.
    #[inline(always)]
    fn live(&self, id: ConnId) -> usize {
        let i = id.0 as usize;
        assert!(
            self.conns.get(i).is_some_and(|c| c.used()),
            "stale or invalid ConnId {}",
            id.0
        );
        i
    }

    /// Whether `id` names a live conn.
    pub fn contains(&self, id: ConnId) -> bool {
        self.conns.get(id.0 as usize).is_some_and(|c| c.used())
    }

    /// The conn `id`, or `None` if `id` names no live conn.
    pub fn try_get(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id.0 as usize).filter(|c| c.used())
    }

    /// The conn `id`. Panics if `id` names no live conn (a pipeline bug: ids only
    /// come from this table); see [`ConnTable::try_get`].
    #[inline]
    pub fn get(&self, id: ConnId) -> &Conn {
        let i = self.live(id);
        &self.conns[i]
    }

    /// The conn `id`, mutable. The key fields (addresses, ports, `proto`) and the
    /// [`flags::NO_OUT_TUPLE`] bit must not be changed: the index was built from them
    /// (a changed key is simply not found; [`ConnTable::remove`] still cleans up).
    /// Panics like [`ConnTable::get`].
    #[inline]
    pub fn get_mut(&mut self, id: ConnId) -> &mut Conn {
        let i = self.live(id);
        &mut self.conns[i]
    }

    /// Pushes the expiry to `now_ms + timeout_ms`. Called on every packet: when the
    /// expiry moves later (the usual case) this is one store, the wheel re-files the
    /// conn lazily; when it moves earlier (a shorter state timeout) the conn is
    /// re-filed now, in O(1). Panics like [`ConnTable::get`].
    #[inline]
    pub fn refresh(&mut self, id: ConnId, timeout_ms: u32, now_ms: u64) {
        let i = self.live(id);
        let new = now_ms.saturating_add(u64::from(timeout_ms));
        let c = &mut self.conns[i];
        let old = c.expires;
        c.expires = new;
        if new < old {
            self.unlink(i as u32);
            self.file(i as u32);
        }
    }

    /// Removes the conn now (unindexes both tuples, frees the slot) and returns it.
    /// Panics like [`ConnTable::get`].
    pub fn remove(&mut self, id: ConnId) -> Conn {
        let i = self.live(id);
        let idx = i as u32;
        let c = self.conns[i];
        let h_in = self.index.hash(&c.in_tuple());
        if !self.index.remove(h_in, slot_val(idx, Dir::In)) {
            self.index.purge(slot_val(idx, Dir::In));
        }
        if c.has_out() {
            let h_out = self.index.hash(&Tuple {
                proto: c.oproto,
                ..c.out_tuple()
            });
            if !self.index.remove(h_out, slot_val(idx, Dir::Out)) {
                self.index.purge(slot_val(idx, Dir::Out));
            }
        }
        self.unlink(idx);
        let slot = &mut self.conns[i];
        slot.store_bits = 0;
        slot.next = self.free_head;
        self.free_head = idx;
        self.len -= 1;
        c
    }

    /// Advances the wheel to `now_ms` and handles due conns, at most `budget` of them
    /// (the rest on the next call). For each due conn `f` decides: [`Expiry::Remove`]
    /// (the table removes it after `f` returns) or [`Expiry::Extend`]. Returns how
    /// many were removed.
    ///
    /// Conns found not yet due (refreshed since they were filed) are re-filed on
    /// the way without counting against `budget`; that work is amortised, at most
    /// one visit per conn per expiry period or wheel revolution.
    pub fn expire(
        &mut self,
        now_ms: u64,
        budget: usize,
        mut f: impl FnMut(ConnId, &Conn) -> Expiry,
    ) -> usize {
        let target = now_ms / WHEEL_TICK_MS;
        let mut handled = 0;
        let mut removed = 0;
        loop {
            while self.resume != NIL {
                if handled >= budget {
                    return removed;
                }
                let idx = self.resume;
                let c = &self.conns[idx as usize];
                self.resume = c.next;
                if let Some(pf) = self.prefetch.filter(|_| c.next != NIL) {
                    // The chain's next miss overlaps this conn's work.
                    let next = self.conns.as_ptr().wrapping_add(c.next as usize);
                    pf(next.cast());
                    pf(next.cast::<u8>().wrapping_add(64));
                }
                if c.expires > now_ms {
                    self.unlink(idx);
                    self.file(idx);
                    continue;
                }
                self.prefetch_buckets(idx);
                handled += 1;
                match f(ConnId(idx), c) {
                    Expiry::Remove => {
                        self.remove(ConnId(idx));
                        removed += 1;
                    }
                    Expiry::Extend(ms) => {
                        self.conns[idx as usize].expires = now_ms.saturating_add(u64::from(ms));
                        self.unlink(idx);
                        self.file(idx);
                    }
                }
            }
            if self.cursor > target {
                return removed;
            }
            // After a long gap every slot needs one visit, not every elapsed tick.
            if target - self.cursor >= WHEEL_SLOTS as u64 {
                self.cursor = target + 1 - WHEEL_SLOTS as u64;
            }
            self.resume = self.heads[(self.cursor % WHEEL_SLOTS as u64) as usize];
            self.cursor += 1;
        }
    }

    /// Starts the misses of the index buckets that removing conn `idx` writes.
    #[inline(always)]
    fn prefetch_buckets(&self, idx: u32) {
        let (Some(pf), Some(c)) = (self.prefetch, self.conns.get(idx as usize)) else {
            return;
        };
        let home_in = self.index.home(self.index.hash(&c.in_tuple()));
        pf(self.index.buckets.as_ptr().wrapping_add(home_in).cast());
        if c.has_out() {
            let out = Tuple {
                proto: c.oproto,
                ..c.out_tuple()
            };
            let home_out = self.index.home(self.index.hash(&out));
            pf(self.index.buckets.as_ptr().wrapping_add(home_out).cast());
        }
    }

    /// Slots ever used (live or free): ids of live conns are below this, so
    /// `0..slots()` with [`ConnTable::try_get`] walks the table in bounded
    /// steps that can resume at any slot.
    pub fn slots(&self) -> usize {
        self.conns.len()
    }

    /// Iterates live conns (for `ipvsadm -lnc` style listing; not hot).
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> + '_ {
        self.conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.used())
            .map(|(i, c)| (ConnId(i as u32), c))
    }

    /// Files conn `idx` in the slot of the tick at or after its expiry, but never in
    /// a tick `expire` has already started (it would wait a whole revolution).
    fn file(&mut self, idx: u32) {
        let due = tick_of(self.conns[idx as usize].expires).max(self.cursor);
        let slot = (due % WHEEL_SLOTS as u64) as usize;
        let head = self.heads[slot];
        let c = &mut self.conns[idx as usize];
        c.prev = NIL;
        c.next = head;
        c.wslot = slot as u16;
        if head != NIL {
            self.conns[head as usize].prev = idx;
        }
        self.heads[slot] = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let c = &self.conns[idx as usize];
        let (prev, next, slot) = (c.prev, c.next, c.wslot as usize);
        if self.resume == idx {
            self.resume = next;
        }
        if prev == NIL {
            self.heads[slot] = next;
        } else {
            self.conns[prev as usize].next = next;
        }
        if next != NIL {
            self.conns[next as usize].prev = prev;
        }
    }
}

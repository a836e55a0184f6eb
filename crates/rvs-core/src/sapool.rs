//! Local-address port pools (the FNAT/SNAT "sapool" of DPVS).
//!
//! FNAT rewrites the client side of a connection to a local address (LIP) and
//! a local port, and SNAT does the same with a WAN address. Return traffic to
//! `LIP:port` must reach the worker that owns the connection without any
//! shared state, so ports are partitioned: worker `w` of `W` owns exactly the
//! ports `p` with `p % W == w`, and the I/O layer steers by that rule.
//!
//! Within a pool, ports are handed out oldest-freed first (a FIFO ring, not a
//! stack): the real server may still hold a just-closed `LIP:port` in
//! TIME_WAIT, and reusing it at once would collide with that state.

/// The worker that owns local port `port` when there are `workers` workers.
/// A `workers` of 0 is treated as 1 (everything belongs to worker 0) rather
/// than dividing by zero.
#[inline]
pub fn owner_worker(port: u16, workers: u16) -> u16 {
    port % workers.max(1)
}

/// The ports of one (local address, worker) pair: a preallocated ring of
/// free ports plus a bitmap of which ports are currently free.
#[derive(Clone, Debug)]
pub struct PortPool {
    worker: u16,
    workers: u16,
    min_port: u16,
    max_port: u16,
    /// Free ports in the order they will be handed out; capacity = owned ports.
    ring: Vec<u16>,
    /// Index of the oldest free port in `ring`.
    head: usize,
    /// Number of free ports in `ring`.
    free: usize,
    /// Bit `p - min_port` set when port `p` is free (in the ring); guards
    /// the ring against double frees, which would otherwise hand a port to
    /// two connections.
    free_bits: Vec<u64>,
    /// Ring index of each owned port, by rank (`(port - first) / workers`):
    /// lets [`PortPool::take`] pull a given port out of the ring in O(1).
    /// Meaningful only for free ports.
    pos: Vec<u16>,
    /// The lowest owned port (the rank origin).
    first: u16,
    owned: u32,
    misses: u64,
    bad_frees: u64,
}

/// Why [`PortPool::take`] refused a port.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TakeError {
    /// The port is outside the pool's range or belongs to another worker
    /// (`port % workers != worker`).
    NotOwned,
    /// The port is already handed out.
    InUse,
}

impl std::fmt::Display for TakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TakeError::NotOwned => "local port not owned by this worker's pool",
            TakeError::InUse => "local port already in use",
        })
    }
}

impl std::error::Error for TakeError {}

impl PortPool {
    /// The pool of worker `worker` of `workers` over `min_port..=max_port`:
    /// exactly the owned ports in that range, handed out ascending at first.
    /// An empty range or a `worker` >= `workers` gives an empty pool.
    pub fn new(worker: u16, workers: u16, min_port: u16, max_port: u16) -> PortPool {
        let workers = workers.max(1);
        let ring: Vec<u16> = if worker < workers && min_port <= max_port {
            (min_port..=max_port)
                .filter(|&p| owner_worker(p, workers) == worker)
                .collect()
        } else {
            Vec::new()
        };
        let span = if min_port <= max_port {
            usize::from(max_port - min_port) + 1
        } else {
            0
        };
        let mut free_bits = vec![0u64; span.div_ceil(64)];
        for &p in &ring {
            let i = usize::from(p - min_port);
            if let Some(w) = free_bits.get_mut(i / 64) {
                *w |= 1 << (i % 64);
            }
        }
        let free = ring.len();
        let first = ring.first().copied().unwrap_or(0);
        let pos = (0..ring.len()).map(|i| i as u16).collect();
        PortPool {
            pos,
            first,
            worker,
            workers,
            min_port,
            max_port,
            owned: free as u32,
            ring,
            head: 0,
            free,
            free_bits,
            misses: 0,
            bad_frees: 0,
        }
    }

    /// Whether `port` belongs to this pool at all.
    pub fn owns(&self, port: u16) -> bool {
        port >= self.min_port
            && port <= self.max_port
            && self.worker < self.workers
            && owner_worker(port, self.workers) == self.worker
    }

    /// Bit position of `port` in `free_bits`; `None` when out of range.
    fn bit(&self, port: u16) -> Option<(usize, u64)> {
        let i = usize::from(port.checked_sub(self.min_port)?);
        Some((i / 64, 1u64 << (i % 64)))
    }

    /// Rank of an owned port among the owned ports (its `pos` index).
    fn rank(&self, port: u16) -> usize {
        usize::from(port.wrapping_sub(self.first)) / usize::from(self.workers.max(1))
    }

    /// Takes this particular port (a connection synced from a peer keeps its
    /// local port). The oldest free port moves into its place in the ring,
    /// so it is handed out a little later than it would have been, never
    /// sooner. O(1).
    pub fn take(&mut self, port: u16) -> Result<(), TakeError> {
        if !self.owns(port) {
            return Err(TakeError::NotOwned);
        }
        let (w, m) = self.bit(port).ok_or(TakeError::NotOwned)?;
        let cap = self.ring.len();
        match self.free_bits.get_mut(w) {
            Some(word) if *word & m != 0 && cap > 0 => *word &= !m,
            _ => return Err(TakeError::InUse),
        }
        let at = usize::from(*self.pos.get(self.rank(port)).ok_or(TakeError::NotOwned)?);
        let oldest = self.ring.get(self.head).copied().unwrap_or(port);
        if at != self.head {
            if let Some(slot) = self.ring.get_mut(at) {
                *slot = oldest;
            }
            let r = self.rank(oldest);
            if let Some(p) = self.pos.get_mut(r) {
                *p = at as u16;
            }
        }
        self.head = (self.head + 1) % cap;
        self.free -= 1;
        Ok(())
    }

    /// Takes the oldest free port; `None` (counted as a miss) when exhausted.
    pub fn alloc(&mut self) -> Option<u16> {
        let cap = self.ring.len();
        if self.free == 0 || cap == 0 {
            self.misses += 1;
            return None;
        }
        let port = *self.ring.get(self.head)?;
        self.head = (self.head + 1) % cap;
        self.free -= 1;
        if let Some((w, m)) = self.bit(port) {
            if let Some(word) = self.free_bits.get_mut(w) {
                *word &= !m;
            }
        }
        Some(port)
    }

    /// Returns `port` to the back of the ring. A port this pool does not own,
    /// or one that is already free, is ignored and counted (see
    /// [`PortPool::bad_frees`]); the return value says whether it was taken.
    pub fn free(&mut self, port: u16) -> bool {
        if !self.owns(port) {
            self.bad_frees += 1;
            return false;
        }
        let Some((w, m)) = self.bit(port) else {
            self.bad_frees += 1;
            return false;
        };
        let cap = self.ring.len();
        match self.free_bits.get_mut(w) {
            Some(word) if *word & m == 0 && self.free < cap => {
                *word |= m;
                let tail = (self.head + self.free) % cap;
                if let Some(slot) = self.ring.get_mut(tail) {
                    *slot = port;
                }
                let r = self.rank(port);
                if let Some(p) = self.pos.get_mut(r) {
                    *p = tail as u16;
                }
                self.free += 1;
                true
            }
            _ => {
                self.bad_frees += 1;
                false
            }
        }
    }

    /// Ports this pool owns (handed out or free).
    pub fn owned(&self) -> u32 {
        self.owned
    }

    /// Ports currently handed out (dpip's `sa_used`).
    pub fn used(&self) -> u32 {
        self.owned - self.free as u32
    }

    /// Ports available (dpip's `sa_free`).
    pub fn free_count(&self) -> u32 {
        self.free as u32
    }

    /// Allocations that failed because the pool was exhausted (dpip's `sa_miss`).
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Frees that were ignored: foreign port or double free.
    pub fn bad_frees(&self) -> u64 {
        self.bad_frees
    }

    /// Heap and inline memory held by the pool.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.ring.capacity() * std::mem::size_of::<u16>()
            + self.free_bits.capacity() * std::mem::size_of::<u64>()
            + self.pos.capacity() * std::mem::size_of::<u16>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(p: &mut PortPool) -> Vec<u16> {
        std::iter::from_fn(|| p.alloc()).collect()
    }

    #[test]
    fn owner_worker_is_port_mod_workers() {
        assert_eq!(owner_worker(1024, 2), 0);
        assert_eq!(owner_worker(1025, 2), 1);
        assert_eq!(owner_worker(65535, 4), 3);
        assert_eq!(owner_worker(1030, 3), 1);
        assert_eq!(owner_worker(5000, 1), 0);
        assert_eq!(owner_worker(5000, 0), 0);
    }

    #[test]
    fn worker_one_of_two_gets_only_odd_ports() {
        let mut p = PortPool::new(1, 2, 1024, 1040);
        assert_eq!(p.free_count(), 8);
        assert_eq!(p.used(), 0);
        let got = drain(&mut p);
        assert_eq!(got, [1025, 1027, 1029, 1031, 1033, 1035, 1037, 1039]);
        let mut p0 = PortPool::new(0, 2, 1024, 1040);
        assert_eq!(
            drain(&mut p0),
            [1024, 1026, 1028, 1030, 1032, 1034, 1036, 1038, 1040]
        );
    }

    #[test]
    fn default_range_covers_all_owned_ports() {
        let mut p = PortPool::new(3, 4, 1024, 65535);
        // 1024..=65535 is 64512 ports, a multiple of 4.
        assert_eq!(p.free_count(), 64512 / 4);
        let all = drain(&mut p);
        assert_eq!(all.len(), 16128);
        assert!(all.iter().all(|&x| x % 4 == 3));
        assert_eq!(all.first(), Some(&1027));
        assert_eq!(all.last(), Some(&65535));
        assert!(p.memory_bytes() >= 16128 * 2);
    }

    #[test]
    fn freed_ports_come_back_oldest_first() {
        let mut p = PortPool::new(0, 1, 1024, 1040);
        let a = p.alloc().unwrap();
        let b = p.alloc().unwrap();
        assert_eq!((a, b), (1024, 1025));
        assert!(p.free(b));
        assert!(p.free(a));
        // The 15 never-used ports come first, then b, then a: freed order, not LIFO.
        let rest = drain(&mut p);
        let mut want: Vec<u16> = (1026..=1040).collect();
        want.extend([1025, 1024]);
        assert_eq!(rest, want);
        // Once the ring has wrapped, FIFO still holds.
        for x in [1030, 1024, 1040] {
            assert!(p.free(x));
        }
        assert_eq!(drain(&mut p), [1030, 1024, 1040]);
    }

    #[test]
    fn exhaustion_returns_none_and_counts_misses() {
        let mut p = PortPool::new(0, 2, 1024, 1030);
        assert_eq!(drain(&mut p).len(), 4);
        assert_eq!(p.misses(), 1); // the `None` that ended the drain
        assert_eq!(p.alloc(), None);
        assert_eq!(p.misses(), 2);
        assert_eq!((p.used(), p.free_count()), (4, 0));
        assert!(p.free(1028));
        assert_eq!((p.used(), p.free_count()), (3, 1));
        assert_eq!(p.alloc(), Some(1028));
        assert_eq!(p.misses(), 2);
    }

    #[test]
    fn double_and_foreign_frees_are_ignored() {
        let mut p = PortPool::new(1, 2, 1024, 1040);
        let x = p.alloc().unwrap();
        assert!(p.free(x));
        assert!(!p.free(x)); // double free
        assert!(!p.free(1027)); // never allocated: already free
        assert!(!p.free(1026)); // other worker's port
        assert!(!p.free(1023)); // below range
        assert!(!p.free(1041)); // above range
        assert_eq!(p.bad_frees(), 5);
        assert_eq!(p.free_count(), 8);
        // The ring holds each port exactly once.
        let mut all = drain(&mut p);
        all.sort_unstable();
        assert_eq!(all, [1025, 1027, 1029, 1031, 1033, 1035, 1037, 1039]);
    }

    #[test]
    fn take_claims_a_given_port_once_and_keeps_fifo_safe() {
        let mut p = PortPool::new(1, 2, 1024, 1040);
        assert_eq!(p.take(1026), Err(TakeError::NotOwned), "worker 0's port");
        assert_eq!(p.take(1023), Err(TakeError::NotOwned), "below range");
        assert_eq!(p.take(1041), Err(TakeError::NotOwned), "above range");
        assert_eq!(p.take(1031), Ok(()));
        assert_eq!(p.take(1031), Err(TakeError::InUse));
        assert_eq!((p.used(), p.free_count()), (1, 7));
        // 1025, the oldest, moved into 1031's place: later, never sooner.
        assert_eq!(drain(&mut p), [1027, 1029, 1025, 1033, 1035, 1037, 1039]);
        assert_eq!(p.take(1027), Err(TakeError::InUse));
        // Freed ports can be taken back out of the middle of a wrapped ring.
        for x in [1029, 1033, 1027, 1039] {
            assert!(p.free(x));
        }
        // Ring 1029 1033 1027 1039: 1029 (head) moves to 1027's place, then
        // 1033 (new head) to 1029's.
        assert_eq!(p.take(1027), Ok(()));
        assert_eq!(p.take(1029), Ok(()));
        assert_eq!(drain(&mut p), [1033, 1039]);
        assert!(p.free(1031));
        assert_eq!(p.take(1031), Ok(()), "the head itself");
        assert_eq!(p.alloc(), None);
        assert_eq!(p.used(), 8);
    }

    #[test]
    fn take_and_alloc_never_hand_out_a_port_twice() {
        let mut p = PortPool::new(2, 3, 1024, 1300);
        let mut used = std::collections::HashSet::new();
        let mut x = 0x1234_5678_u32;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let port = 1024 + (x % 277) as u16;
            match x % 3 {
                0 => {
                    if let Some(q) = p.alloc() {
                        assert!(used.insert(q), "alloc gave {q} twice");
                    }
                }
                1 => match p.take(port) {
                    Ok(()) => assert!(used.insert(port), "take gave {port} twice"),
                    Err(TakeError::InUse) => assert!(used.contains(&port)),
                    Err(TakeError::NotOwned) => assert_ne!(port % 3, 2),
                },
                _ => assert_eq!(p.free(port), used.remove(&port)),
            }
            assert_eq!(p.used() as usize, used.len());
        }
    }

    #[test]
    fn degenerate_pools_are_empty_not_panicking() {
        let mut p = PortPool::new(2, 2, 1024, 1040); // worker out of range
        assert_eq!(p.alloc(), None);
        assert!(!p.free(1024));
        let mut p = PortPool::new(0, 1, 2000, 1000); // inverted range
        assert_eq!(p.alloc(), None);
        assert!(!p.free(1500));
        assert_eq!(
            PortPool::new(0, 1, 2000, 1000).take(1500),
            Err(TakeError::NotOwned)
        );
        let mut p = PortPool::new(0, 0, 65535, 65535); // zero workers
        assert_eq!(p.alloc(), Some(65535));
        assert_eq!(p.alloc(), None);
        assert!(p.free(65535));
    }
}

//! Where the conn table's large arrays (the conn slab and the index) get their
//! memory: an [`Allocator`] chosen by the caller. The core only asks; an I/O
//! crate can hand out huge pages (rvs-io's `mem::HugePages`), which cuts the
//! TLB misses of lookups spread over hundreds of megabytes.

pub use allocator_api2::alloc::{AllocError, Allocator, Global};
use std::fmt;

/// The allocator of a conn table's slab and index: `'static`, shared by every
/// worker, so the choice costs one pointer per table and nothing per packet.
#[derive(Copy, Clone)]
pub struct TableMem(pub &'static (dyn Allocator + Send + Sync));

static HEAP: Global = Global;

impl TableMem {
    /// The ordinary heap (the global allocator).
    pub fn heap() -> TableMem {
        TableMem(&HEAP)
    }
}

impl Default for TableMem {
    fn default() -> Self {
        TableMem::heap()
    }
}

impl fmt::Debug for TableMem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TableMem")
    }
}

/// A vector whose buffer comes from a [`TableMem`].
pub(super) type MemVec<T> = allocator_api2::vec::Vec<T, &'static (dyn Allocator + Send + Sync)>;

/// A CPU prefetch of the cache line holding an address, given by the caller
/// (rvs-io's `mem::prefetch`): this crate cannot issue one without `unsafe`.
/// It must not fault or read memory for any address.
pub type Prefetch = fn(*const u8);

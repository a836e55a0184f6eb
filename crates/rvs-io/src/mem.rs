//! Huge pages for the connection tables.
//!
//! A worker's conn slab and index span hundreds of megabytes that lookups
//! visit in no particular order: with 4 KiB pages nearly every lookup also
//! misses the TLB and walks the page tables. [`HugePages`] is the
//! [`Allocator`] rvsd gives the tables ([`rvs_core::conn::mem::TableMem`]):
//!
//! 1. explicit huge pages (`mmap(MAP_HUGETLB)`, 2 MiB), when the operator
//!    reserved enough of them (`vm.nr_hugepages`); they are reserved at
//!    allocation, so a table either gets all of them or none;
//! 2. otherwise an anonymous mapping aligned to 2 MiB with
//!    `madvise(MADV_HUGEPAGE)`, so the kernel backs it with transparent huge
//!    pages on first touch (`AnonHugePages` in `/proc/PID/smaps`) when
//!    `/sys/kernel/mm/transparent_hugepage/enabled` is `always` or
//!    `madvise`. Memory stays lazy: only what the table touches is resident.
//!
//! Allocations under 2 MiB go to the ordinary heap. [`HugePages::report`]
//! says which kind each large allocation got.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

use rvs_core::conn::mem::{AllocError, Allocator, Global, TableMem};

/// The huge page size used (x86-64 and arm64 default).
pub const HUGE_PAGE: usize = 2 << 20;

/// Which kinds of memory [`HugePages`] may use.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum HugeMode {
    /// Explicit huge pages if reserved, else transparent huge pages.
    Auto = 0,
    /// Explicit huge pages only: allocation fails without them.
    HugeTlb = 1,
    /// Transparent huge pages only (`madvise`).
    Transparent = 2,
    /// The ordinary heap.
    Off = 3,
}

/// An [`Allocator`] handing out huge pages (see the [module doc](self)).
pub struct HugePages {
    mode: AtomicU8,
    hugetlb_bytes: AtomicUsize,
    thp_bytes: AtomicUsize,
    heap_bytes: AtomicUsize,
}

/// The process's huge page allocator.
pub static HUGE_PAGES: HugePages = HugePages::new(HugeMode::Auto);

/// Bytes currently allocated, by kind.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct HugeReport {
    /// On explicit (hugetlbfs) huge pages.
    pub hugetlb_bytes: usize,
    /// In mappings advised for transparent huge pages.
    pub thp_bytes: usize,
    /// Large allocations that fell back to the heap (`off`, or every mmap failed).
    pub heap_bytes: usize,
}

impl HugePages {
    /// An allocator in `mode` (rvsd uses [`HUGE_PAGES`]; tests make their own).
    pub const fn new(mode: HugeMode) -> HugePages {
        HugePages {
            mode: AtomicU8::new(mode as u8),
            hugetlb_bytes: AtomicUsize::new(0),
            thp_bytes: AtomicUsize::new(0),
            heap_bytes: AtomicUsize::new(0),
        }
    }

    /// Sets the mode for later allocations (call before building tables).
    pub fn set_mode(&self, mode: HugeMode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }

    /// The mode in force.
    pub fn mode(&self) -> HugeMode {
        match self.mode.load(Ordering::Relaxed) {
            1 => HugeMode::HugeTlb,
            2 => HugeMode::Transparent,
            3 => HugeMode::Off,
            _ => HugeMode::Auto,
        }
    }

    /// What the live large allocations got.
    pub fn report(&self) -> HugeReport {
        HugeReport {
            hugetlb_bytes: self.hugetlb_bytes.load(Ordering::Relaxed),
            thp_bytes: self.thp_bytes.load(Ordering::Relaxed),
            heap_bytes: self.heap_bytes.load(Ordering::Relaxed),
        }
    }

    /// This allocator as a conn table's memory.
    pub fn table_mem(&'static self) -> TableMem {
        TableMem(self)
    }
}

fn round_up(n: usize) -> usize {
    n.div_ceil(HUGE_PAGE).saturating_mul(HUGE_PAGE)
}

/// A private anonymous mapping of `len` bytes with extra `flags`, or `None`.
fn map_anon(len: usize, flags: libc::c_int) -> Option<NonNull<u8>> {
    // SAFETY: a fresh private anonymous mapping at an address of the kernel's
    // choosing; it aliases nothing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(p.cast())
    }
}

/// Unmaps `len` bytes at `p` (a whole mapping or an aligned part of one).
fn unmap(p: *mut u8, len: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: callers pass a range inside a mapping made by `map_anon` that
    // no live object uses any more.
    unsafe {
        libc::munmap(p.cast(), len);
    }
}

/// `len` bytes (a multiple of [`HUGE_PAGE`]) of explicit huge pages.
fn map_hugetlb(len: usize) -> Option<NonNull<u8>> {
    map_anon(len, libc::MAP_HUGETLB | libc::MAP_HUGE_2MB)
}

/// `len` bytes (a multiple of [`HUGE_PAGE`]) aligned to [`HUGE_PAGE`] and
/// advised for transparent huge pages.
fn map_thp(len: usize) -> Option<NonNull<u8>> {
    let over = len.checked_add(HUGE_PAGE)?;
    let raw = map_anon(over, libc::MAP_NORESERVE)?.as_ptr();
    let head = (HUGE_PAGE - (raw as usize % HUGE_PAGE)) % HUGE_PAGE;
    // Trim to an aligned window: THP only backs aligned 2 MiB ranges.
    unmap(raw, head);
    // SAFETY: `head < HUGE_PAGE`, so `raw + head .. raw + head + len` lies
    // inside the `len + HUGE_PAGE` bytes just mapped.
    let p = unsafe { raw.add(head) };
    // SAFETY: as above, the tail `p + len .. raw + over` is inside the mapping.
    unmap(unsafe { p.add(len) }, over - head - len);
    // SAFETY: `p .. p + len` is the mapping just made; advice changes no data.
    // A kernel without THP refuses the advice: the memory works the same.
    unsafe {
        libc::madvise(p.cast(), len, libc::MADV_HUGEPAGE);
    }
    NonNull::new(p)
}

/// The mappings handed out (address, kind): tables are few and long-lived,
/// so a short list behind a lock, touched only at allocation and free.
static MAPPINGS: Mutex<Vec<(usize, Kind)>> = Mutex::new(Vec::new());

#[derive(Copy, Clone, PartialEq, Eq)]
enum Kind {
    HugeTlb,
    Transparent,
}

fn remember(p: NonNull<u8>, kind: Kind) {
    MAPPINGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((p.as_ptr() as usize, kind));
}

fn forget(p: NonNull<u8>) -> Option<Kind> {
    let mut m = MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
    let i = m.iter().position(|&(a, _)| a == p.as_ptr() as usize)?;
    Some(m.swap_remove(i).1)
}

impl HugePages {
    fn map(&self, len: usize, mode: HugeMode) -> Option<NonNull<u8>> {
        let tlb = matches!(mode, HugeMode::Auto | HugeMode::HugeTlb);
        if let Some(p) = tlb.then(|| map_hugetlb(len)).flatten() {
            self.hugetlb_bytes.fetch_add(len, Ordering::Relaxed);
            remember(p, Kind::HugeTlb);
            return Some(p);
        }
        if mode == HugeMode::HugeTlb {
            return None;
        }
        let p = map_thp(len)?;
        self.thp_bytes.fetch_add(len, Ordering::Relaxed);
        remember(p, Kind::Transparent);
        Some(p)
    }
}

// SAFETY: a block is either a whole private mapping of `round_up(size)` bytes
// that nothing else references, aligned to 2 MiB (≥ any table's alignment),
// listed in MAPPINGS until `deallocate` unmaps it; or the global allocator's,
// not listed, and given back to it with the same layout. Mappings read as zeros.
unsafe impl Allocator for HugePages {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let mode = self.mode();
        if layout.size() < HUGE_PAGE || layout.align() > HUGE_PAGE || mode == HugeMode::Off {
            if layout.size() >= HUGE_PAGE {
                self.heap_bytes.fetch_add(layout.size(), Ordering::Relaxed);
            }
            return Global.allocate(layout);
        }
        let len = round_up(layout.size());
        let p = self.map(len, mode).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, len))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        let len = round_up(layout.size());
        match forget(ptr) {
            Some(Kind::HugeTlb) => {
                self.hugetlb_bytes.fetch_sub(len, Ordering::Relaxed);
                unmap(ptr.as_ptr(), len);
            }
            Some(Kind::Transparent) => {
                self.thp_bytes.fetch_sub(len, Ordering::Relaxed);
                unmap(ptr.as_ptr(), len);
            }
            None => {
                if layout.size() >= HUGE_PAGE {
                    self.heap_bytes.fetch_sub(layout.size(), Ordering::Relaxed);
                }
                // SAFETY: not one of our mappings, so `Global` allocated it
                // with this layout (see `allocate`).
                unsafe { Global.deallocate(ptr, layout) };
            }
        }
    }
}

/// Starts loading the cache line holding `p` into all cache levels (the conn
/// table's [`rvs_core::conn::mem::Prefetch`]); a no-op on other architectures.
#[inline]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and changes no memory,
    // whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A `key: N kB` figure of a /proc file such as `/proc/meminfo` or
/// `/proc/self/smaps_rollup` (for `HugePages_*` the count of pages); `None`
/// when the file cannot be read or has no such key.
pub fn proc_kb(file: &str, key: &str) -> Option<usize> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod proc_tests {
    use super::proc_kb;

    #[test]
    fn proc_kb_reads_a_key_and_only_that_key() {
        assert!(proc_kb("/proc/meminfo", "MemTotal").unwrap_or(0) > 0);
        // "MemTotal" must not match a longer key, nor a missing one.
        assert_eq!(proc_kb("/proc/meminfo", "MemTot"), None);
        assert_eq!(proc_kb("/proc/meminfo", "NoSuchKey"), None);
        assert_eq!(proc_kb("/proc/no-such-file", "MemTotal"), None);
    }
}

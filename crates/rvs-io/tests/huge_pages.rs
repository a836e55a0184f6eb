//! The connection tables' huge pages (rvs_io::mem): what an operator checks in
//! /proc — AnonHugePages for transparent huge pages, HugePages_Free for explicit
//! ones. Needs root for the explicit case (it reserves pages and gives them back).

use std::alloc::Layout;

use rvs_core::conn::mem::{Allocator, TableMem};
use rvs_core::conn::ConnTable;
use rvs_io::mem::{HugeMode, HugePages, HUGE_PAGE};

/// A kB figure of /proc/self/smaps_rollup or /proc/meminfo.
fn kb(file: &str, key: &str) -> usize {
    rvs_io::mem::proc_kb(file, key).unwrap_or_else(|| panic!("{file} has no {key}"))
}

fn anon_huge_kb() -> usize {
    kb("/proc/self/smaps_rollup", "AnonHugePages")
}

static THP: HugePages = HugePages::new(HugeMode::Transparent);
static OFF: HugePages = HugePages::new(HugeMode::Off);
static TLB: HugePages = HugePages::new(HugeMode::HugeTlb);

/// A table of a million conns writes its 50 MiB index at construction: with
/// transparent huge pages that memory is backed by 2 MiB pages; on the heap
/// (`off`) it is not.
#[test]
fn transparent_huge_pages_back_the_index() {
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .expect("this kernel has no transparent huge pages");
    assert!(
        !thp.contains("[never]"),
        "transparent huge pages are disabled on this machine ({thp})"
    );
    let before = anon_huge_kb();
    let off = ConnTable::with_seed_in(1_000_000, 0, 1, TableMem(&OFF));
    let after_off = anon_huge_kb();
    let t = ConnTable::with_seed_in(1_000_000, 0, 1, TableMem(&THP));
    let after_thp = anon_huge_kb();
    let index_kb = ConnTable::allocations_for(1_000_000)[1] / 1024;
    assert!(
        after_thp - after_off >= index_kb / 2,
        "AnonHugePages grew by {} kB for a {index_kb} kB index on transparent huge pages",
        after_thp - after_off
    );
    assert!(
        after_off.saturating_sub(before) < index_kb / 4,
        "the heap table got huge pages too ({} kB): the comparison proves nothing",
        after_off - before
    );
    let r = THP.report();
    assert!(
        r.thp_bytes >= ConnTable::allocations_for(1_000_000)[0],
        "{r:?}"
    );
    assert_eq!(r.hugetlb_bytes, 0);
    drop(t);
    assert_eq!(
        THP.report().thp_bytes,
        0,
        "the mappings were not given back"
    );
    drop(off);
}

fn set_nr_hugepages(n: usize) {
    std::fs::write("/proc/sys/vm/nr_hugepages", n.to_string())
        .expect("cannot write /proc/sys/vm/nr_hugepages: this test needs root");
}

/// Gives the reserved pages back even if the test fails.
struct Reserve(usize);

impl Drop for Reserve {
    fn drop(&mut self) {
        set_nr_hugepages(self.0);
    }
}

/// With pages reserved, a table takes them (HugePages_Free falls) and gives
/// them back when dropped; without enough, `hugetlb` mode fails the
/// allocation instead of falling back.
#[test]
fn explicit_huge_pages_are_taken_and_given_back() {
    let total = kb("/proc/meminfo", "HugePages_Total");
    let cap = 100_000;
    let need: usize = ConnTable::allocations_for(cap)
        .iter()
        .map(|b| b.div_ceil(HUGE_PAGE))
        .sum();
    let _restore = Reserve(total);
    set_nr_hugepages(total + need);
    let free0 = kb("/proc/meminfo", "HugePages_Free");
    assert!(
        free0 >= need,
        "the kernel reserved {free0} of {need} huge pages"
    );
    let t = ConnTable::with_seed_in(cap, 0, 1, TableMem(&TLB));
    let free1 = kb("/proc/meminfo", "HugePages_Free");
    assert_eq!(TLB.report().hugetlb_bytes, need * HUGE_PAGE);
    // Reserved at mmap, counted as used once touched: the index is written.
    let rsvd = kb("/proc/meminfo", "HugePages_Rsvd");
    assert!(
        free1 + need <= free0 + rsvd,
        "free {free0} → {free1}, reserved {rsvd}"
    );
    let err = TLB.allocate(Layout::from_size_align(free0 * HUGE_PAGE + HUGE_PAGE, 64).unwrap());
    assert!(
        err.is_err(),
        "hugetlb mode fell back without enough huge pages"
    );
    drop(t);
    assert_eq!(TLB.report().hugetlb_bytes, 0);
    assert_eq!(
        kb("/proc/meminfo", "HugePages_Free"),
        free0,
        "pages not given back"
    );
}

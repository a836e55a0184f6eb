//! The memory of the workers' connection tables (`huge_pages` in the config).

use rvs_core::conn::mem::TableMem;
use rvs_core::conn::ConnTable;
use rvs_io::mem::{HugeMode, HUGE_PAGE, HUGE_PAGES};

use super::DaemonError;
use crate::config::{Config, HugePagesConf};

/// Sets the mode of [`HUGE_PAGES`] from the config and returns the tables'
/// memory. With `hugetlb`, refuses (changing nothing) unless enough explicit huge pages
/// are free for every worker's table.
pub(super) fn table_mem(conf: &Config) -> Result<TableMem, DaemonError> {
    let mode = match conf.huge_pages {
        HugePagesConf::Auto => HugeMode::Auto,
        HugePagesConf::Hugetlb => HugeMode::HugeTlb,
        HugePagesConf::Thp => HugeMode::Transparent,
        HugePagesConf::Off => HugeMode::Off,
    };
    if mode == HugeMode::HugeTlb {
        let need = needed_bytes(conf.conn_capacity, conf.workers.max(1));
        let free = free_hugetlb_bytes();
        if free < need {
            return Err(DaemonError::Memory(format!(
                "huge_pages = \"hugetlb\": the connection tables need {} MiB of 2 MiB huge pages \
                 ({} workers × conn_capacity {}), but only {} MiB are free (HugePages_Free in \
                 /proc/meminfo); reserve them with `sysctl vm.nr_hugepages={}`, or set \
                 huge_pages = \"auto\"",
                need >> 20,
                conf.workers.max(1),
                conf.conn_capacity,
                free >> 20,
                need.div_ceil(HUGE_PAGE) + hugetlb_total_pages() - free / HUGE_PAGE,
            )));
        }
    }
    HUGE_PAGES.set_mode(mode);
    Ok(HUGE_PAGES.table_mem())
}

/// Huge-page bytes `workers` tables of `capacity` take (each allocation of
/// 2 MiB or more is rounded up to whole huge pages; smaller ones use the heap).
pub(super) fn needed_bytes(capacity: usize, workers: u16) -> usize {
    let per: usize = ConnTable::allocations_for(capacity)
        .iter()
        .filter(|&&b| b >= HUGE_PAGE)
        .map(|b| b.div_ceil(HUGE_PAGE) * HUGE_PAGE)
        .sum();
    per.saturating_mul(usize::from(workers))
}

fn meminfo(key: &str) -> usize {
    rvs_io::mem::proc_kb("/proc/meminfo", key).unwrap_or(0)
}

fn free_hugetlb_bytes() -> usize {
    if meminfo("Hugepagesize") != 2048 {
        return 0;
    }
    meminfo("HugePages_Free").saturating_mul(HUGE_PAGE)
}

fn hugetlb_total_pages() -> usize {
    meminfo("HugePages_Total")
}

/// One line for the start-up log: what the tables got.
pub(super) fn describe() -> String {
    let r = HUGE_PAGES.report();
    let mut parts = Vec::new();
    if r.hugetlb_bytes > 0 {
        parts.push(format!(
            "{} MiB on explicit huge pages",
            r.hugetlb_bytes >> 20
        ));
    }
    if r.thp_bytes > 0 {
        parts.push(format!(
            "{} MiB advised for transparent huge pages (see AnonHugePages in /proc/{}/smaps_rollup)",
            r.thp_bytes >> 20,
            std::process::id()
        ));
    }
    if r.heap_bytes > 0 {
        parts.push(format!(
            "{} MiB on the heap (4 KiB pages)",
            r.heap_bytes >> 20
        ));
    }
    if parts.is_empty() {
        "all on the heap (tables under 2 MiB)".to_string()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: &str = "[[netif]]\nname = \"dpdk0\"\niface = \"eth0\"\n";

    fn parse(top: &str) -> Result<Config, String> {
        Config::parse(std::path::Path::new("t.toml"), &format!("{top}{PORT}"))
            .map_err(|e| e.to_string())
    }

    fn conf(top: &str) -> Config {
        parse(top).expect("config")
    }

    #[test]
    fn every_table_allocation_is_counted_in_whole_huge_pages() {
        let [slab, index] = ConnTable::allocations_for(1_000_000);
        let pages = slab.div_ceil(HUGE_PAGE) + index.div_ceil(HUGE_PAGE);
        assert_eq!(needed_bytes(1_000_000, 3), 3 * pages * HUGE_PAGE);
        // Small tables stay on the heap: no huge page needed.
        assert_eq!(needed_bytes(100, 4), 0);
    }

    /// Asking for more explicit huge pages than any machine here has is
    /// refused with a message naming the setting, the need and the sysctl.
    #[test]
    fn hugetlb_without_enough_pages_is_refused_with_the_fix() {
        let c = conf("workers = 2\nconn_capacity = 1000000000\nhuge_pages = \"hugetlb\"\n");
        let e = table_mem(&c).expect_err("refused").to_string();
        for want in [
            "huge_pages = \"hugetlb\"",
            "HugePages_Free",
            "vm.nr_hugepages=",
            "2 workers",
        ] {
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
    }

    #[test]
    fn the_modes_parse_and_a_typo_names_the_choices() {
        assert_eq!(conf("").huge_pages, HugePagesConf::Auto);
        assert_eq!(
            conf("huge_pages = \"off\"\n").huge_pages,
            HugePagesConf::Off
        );
        assert_eq!(
            conf("huge_pages = \"thp\"\n").huge_pages,
            HugePagesConf::Thp
        );
        let e = parse("huge_pages = \"yes\"\n").unwrap_err();
        assert!(e.contains("hugetlb") && e.contains("huge_pages"), "{e}");
    }
}

//! Without the `link` feature: nothing (the crate is empty, so the default
//! build needs neither DPDK nor libclang). With it: libdpdk by pkg-config,
//! the C shim compiled with DPDK's cflags, and bindgen over the shim header.

fn main() {
    #[cfg(feature = "link")]
    link::build();
}

#[cfg(feature = "link")]
mod link {
    use std::path::PathBuf;

    pub fn build() {
        println!("cargo:rerun-if-changed=shim/rvs_shim.c");
        println!("cargo:rerun-if-changed=shim/rvs_shim.h");
        let dpdk = pkg_config::Config::new()
            .atleast_version("22.11")
            .probe("libdpdk")
            .unwrap_or_else(|e| {
                panic!("rvs-dpdk-sys (feature link) needs libdpdk >= 22.11 by pkg-config (apt-get install dpdk-dev): {e}")
            });
        // -include rte_config.h, -march=...: what DPDK's headers need.
        let mut args: Vec<String> = Vec::new();
        for p in &dpdk.include_paths {
            args.push(format!("-I{}", p.display()));
        }
        let out = std::process::Command::new("pkg-config")
            .args(["--cflags", "libdpdk"])
            .output()
            .expect("pkg-config --cflags libdpdk");
        let flags = String::from_utf8_lossy(&out.stdout).to_string();
        let mut it = flags.split_whitespace();
        while let Some(f) = it.next() {
            if f == "-include" {
                if let Some(h) = it.next() {
                    args.push("-include".into());
                    args.push(h.into());
                }
            } else if f.starts_with("-march") || f.starts_with("-D") {
                args.push(f.into());
            }
        }
        let mut cc = cc::Build::new();
        cc.file("shim/rvs_shim.c").warnings(false);
        for a in &args {
            cc.flag(a);
        }
        cc.compile("rvs_shim");
        let bindings = bindgen::Builder::default()
            .header("shim/rvs_shim.h")
            .clang_args(&args)
            .allowlist_function("rvs_.*")
            .allowlist_function("rte_eal_(init|cleanup)")
            .allowlist_function("rte_thread_(register|unregister)")
            .allowlist_function("rte_dev_(probe|remove)")
            .allowlist_function(
                "rte_eth_dev_(get_port_by_name|stop|close|count_avail|is_valid_port)",
            )
            .allowlist_function("rte_eth_stats_get")
            .allowlist_function("rte_pktmbuf_pool_create")
            .allowlist_function("rte_pktmbuf_free_bulk")
            .allowlist_function("rte_mempool_(free|avail_count|in_use_count)")
            .allowlist_function("rte_ring_(create|free)")
            .allowlist_function("rte_strerror")
            .allowlist_function("rte_socket_id")
            .allowlist_var(
                "RING_F_SP_ENQ|RING_F_SC_DEQ|RTE_PKTMBUF_HEADROOM|RTE_MBUF_DEFAULT_BUF_SIZE",
            )
            .opaque_type("rte_mbuf")
            .opaque_type("rte_mempool")
            .opaque_type("rte_ring")
            .layout_tests(true)
            .generate()
            .expect("bindgen over shim/rvs_shim.h (needs libclang: apt-get install libclang-dev)");
        let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
        bindings
            .write_to_file(out.join("bindings.rs"))
            .expect("writing bindings.rs");
    }
}

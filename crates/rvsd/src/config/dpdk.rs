//! `[dpdk]` and `backend = "dpdk"`: ports driven by DPDK, in an rvsd built
//! with `--features dpdk`.

use serde::Deserialize;

use super::{BackendKind, Netif};

/// What rvsd says when a port asks for DPDK and the build has none.
pub const NOT_BUILT: &str = "rvsd was built without DPDK (cargo build -p rvsd --features dpdk)";

/// `[dpdk]`: EAL options (default `rvs_io::dpdk::eal::DEFAULT_EAL`:
/// `--no-huge -m 512 --no-pci --no-shconf --no-telemetry --log-level *:notice`,
/// and `--file-prefix=rvs<pid>`) and the mbufs of each port's pool (0: sized
/// for the workers' queues and hand-off rings).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DpdkSection {
    /// EAL options, as on a DPDK application's command line.
    #[serde(default)]
    pub eal: Vec<String>,
    /// Mbufs per port.
    #[serde(default)]
    pub mbufs: u32,
}

/// The device of a `backend = "dpdk"` port: `dpdk_dev`, by default
/// `net_af_packet` (the vdev on the port's kernel interface).
pub fn dev(n: &Netif) -> &str {
    n.dpdk_dev.as_deref().unwrap_or("net_af_packet")
}

/// Checks the DPDK ports: the index of the `[[netif]]` at fault, its key
/// and what is wrong.
pub(super) fn check_dpdk(netif: &[Netif]) -> Result<(), (usize, &'static str, String)> {
    for (i, n) in netif.iter().enumerate() {
        if n.backend != BackendKind::Dpdk {
            if n.dpdk_dev.is_some() {
                return Err((
                    i,
                    "dpdk_dev",
                    format!("netif {}: dpdk_dev needs backend = \"dpdk\"", n.name),
                ));
            }
            continue;
        }
        let d = dev(n);
        if d.starts_with("net_") && d != "net_af_packet" && d != "net_af_xdp" {
            return Err((
                i,
                "dpdk_dev",
                format!(
                    "netif {} dpdk_dev = {d:?}: the vdevs rvs drives are net_af_packet and net_af_xdp (or give a PCI address)",
                    n.name
                ),
            ));
        }
        if cfg!(not(feature = "dpdk")) {
            return Err((i, "backend", format!("netif {}: {NOT_BUILT}", n.name)));
        }
    }
    Ok(())
}

/// Why a daemon with DPDK ports cannot hand over to a successor (hot
/// upgrade): EAL's state (memory, devices, queues) belongs to this process.
pub fn no_handover(netif: &[Netif]) -> Option<String> {
    netif.iter().find(|n| n.backend == BackendKind::Dpdk).map(|n| {
        format!(
            "{}: a DPDK port cannot be handed over (EAL's memory and devices belong to this process); restart instead",
            n.name
        )
    })
}

/// The port's backend settings.
#[cfg(feature = "dpdk")]
pub fn backend(n: &Netif, s: &DpdkSection) -> rvs_io::Backend {
    rvs_io::Backend::Dpdk(rvs_io::dpdk::DpdkConf {
        eal: s.eal.clone(),
        dev: dev(n).to_string(),
        mbufs: s.mbufs,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    const PORT: &str = "[[netif]]\nname = \"dpdk0\"\niface = \"eth0\"\nbackend = \"dpdk\"\n";

    #[cfg(not(feature = "dpdk"))]
    #[test]
    fn a_dpdk_port_without_the_feature_is_refused_by_name() {
        let e = Config::parse(Path::new("t.toml"), PORT).unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(
            e.to_string().contains(
                "netif dpdk0: rvsd was built without DPDK (cargo build -p rvsd --features dpdk)"
            ),
            "{e}"
        );
    }

    #[cfg(feature = "dpdk")]
    #[test]
    fn a_dpdk_port_parses_with_the_feature() {
        let t = format!("{PORT}dpdk_dev = \"net_af_xdp\"\n");
        let c = Config::parse(Path::new("t.toml"), &t).unwrap();
        assert_eq!(super::dev(&c.netif[0]), "net_af_xdp");
    }

    #[test]
    fn dpdk_section_parses() {
        let p0 = "[[netif]]\nname = \"p0\"\niface = \"eth0\"\n";
        let t = format!("{p0}[dpdk]\neal = [\"--no-huge\", \"-m\", \"256\"]\nmbufs = 4096\n");
        let c = Config::parse(Path::new("t.toml"), &t).unwrap();
        assert_eq!(c.dpdk.eal, ["--no-huge", "-m", "256"]);
        assert_eq!(c.dpdk.mbufs, 4096);
        let c = Config::parse(Path::new("t.toml"), p0).unwrap();
        assert!(c.dpdk.eal.is_empty() && c.dpdk.mbufs == 0);
        let t = format!("{p0}[dpdk]\nmbuf = 1\n");
        let e = Config::parse(Path::new("t.toml"), &t).unwrap_err();
        assert!(e.to_string().contains("mbuf"), "{e}");
    }

    #[test]
    fn hot_upgrade_is_refused_naming_the_dpdk_port() {
        let t = "[[netif]]\nname = \"p0\"\niface = \"eth0\"\n";
        let mut c = Config::parse(Path::new("t.toml"), t).unwrap();
        assert_eq!(super::no_handover(&c.netif), None);
        c.netif[0].backend = crate::config::BackendKind::Dpdk;
        let why = super::no_handover(&c.netif).unwrap();
        assert!(
            why.starts_with("p0: a DPDK port cannot be handed over"),
            "{why}"
        );
        assert!(why.ends_with("restart instead"), "{why}");
    }

    #[test]
    fn dpdk_dev_needs_the_dpdk_backend_and_a_known_vdev() {
        let t = "[[netif]]\nname = \"p0\"\niface = \"eth0\"\ndpdk_dev = \"net_af_xdp\"\n";
        let e = Config::parse(Path::new("t.toml"), t).unwrap_err();
        assert!(
            e.to_string().contains("dpdk_dev needs backend = \"dpdk\""),
            "{e}"
        );
        let t = format!("{PORT}dpdk_dev = \"net_tap\"\n");
        let e = Config::parse(Path::new("t.toml"), &t).unwrap_err();
        assert!(
            e.to_string().contains("net_af_packet and net_af_xdp"),
            "{e}"
        );
    }
}

//! From the parsed keepalived.conf ([`conf::VrrpInstance`]) to what the
//! state machine runs ([`InstanceConf`]).

use std::net::IpAddr;

use crate::conf::{self, Config, VrrpInstance, VrrpState};
use crate::vrrp::packet::{Auth, Family, Version};
use crate::vrrp::{GarpConf, InitialState, InstanceConf, NotifyScripts, Tracked, VirtualAddress};

/// One instance as the runtime runs it: the state machine's configuration
/// and the rvs port its addresses go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunConf {
    /// The state machine's configuration.
    pub vrrp: InstanceConf,
    /// `dpdk_interface` (the rvs port; without it, `interface`).
    pub port: String,
    /// `lvs_sync_daemon`, when it follows this instance.
    pub sync: Option<conf::LvsSyncDaemon>,
    /// The `vrrp_script`s it tracks (directly or through its sync group),
    /// with `loc` cleared: moving a block in the file is no change.
    pub scripts: Vec<conf::VrrpScript>,
    /// The `vrrp_sync_group` it belongs to.
    pub group: Option<GroupConf>,
}

/// A `vrrp_sync_group` as the runtime runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConf {
    /// The group's name.
    pub name: String,
    /// Its member instances.
    pub members: Vec<String>,
    /// Its `notify_*` scripts.
    pub notify: NotifyScripts,
}

/// Builds the configuration of `vi`; `iface_addr` finds an interface's
/// address of a family (IPv4: the first; IPv6: the link-local one) when
/// `unicast_src_ip` is not given. The family is that of the first virtual
/// address, as in keepalived.
pub fn run_conf(
    vi: &VrrpInstance,
    cfg: &Config,
    iface_addr: &dyn Fn(&str, Family) -> Option<IpAddr>,
) -> Result<RunConf, String> {
    let at = format!("{}: vrrp_instance {}", vi.loc, vi.name);
    let family = vi
        .virtual_ipaddress
        .first()
        .map_or(Family::V4, |v| Family::of(v.addr));
    let src = match vi.src_ip {
        Some(a) => a,
        None => iface_addr(&vi.interface, family).ok_or_else(|| match family {
            Family::V4 => format!(
                "{at}: interface {} has no IPv4 address to send adverts from (give it one, e.g. `ip addr add 192.168.100.11/24 dev {}`, or set unicast_src_ip)",
                vi.interface, vi.interface
            ),
            Family::V6 => format!(
                "{at}: interface {} has no IPv6 link-local address to send adverts from (is it up, with IPv6 on?)",
                vi.interface
            ),
        })?,
    };
    let mut c = InstanceConf::new(&vi.name, vi.virtual_router_id, &vi.interface, src);
    c.priority = vi.priority;
    c.interval_cs = (vi.advert_int.as_millis() / 10).min(u16::MAX as u128) as u16;
    c.version = if vi.version == 3 {
        Version::V3
    } else {
        Version::V2
    };
    c.initial_state = match vi.state {
        VrrpState::Master => InitialState::Master,
        VrrpState::Backup => InitialState::Backup,
    };
    c.preempt = !vi.nopreempt;
    c.preempt_delay_ms = vi.preempt_delay.as_millis() as u64;
    c.virtual_addresses = vi
        .virtual_ipaddress
        .iter()
        .map(|v| VirtualAddress {
            addr: v.addr,
            prefix_len: v.plen,
            dev: v.dev.clone(),
        })
        .collect();
    let port = vi
        .dpdk_interface
        .clone()
        .unwrap_or_else(|| vi.interface.clone());
    c.owned_addresses = owned_addresses(vi, cfg, &port);
    c.unicast_peers = vi.unicast_peers.clone();
    c.auth = vi
        .auth
        .as_ref()
        .map_or(Auth::None, |a| Auth::pass(&a.pass).0);
    let sg = cfg
        .vrrp_sync_groups
        .iter()
        .find(|g| g.group.contains(&vi.name));
    let sg_ifs = sg.map_or(&[][..], |g| &g.track_interfaces[..]);
    let sg_scripts = sg.map_or(&[][..], |g| &g.track_scripts[..]);
    c.track_interfaces = vi
        .track_interfaces
        .iter()
        .chain(sg_ifs)
        .map(|t| Tracked::new(&t.name).weight(t.weight.unwrap_or(0)))
        .collect();
    let tracked = vi.track_scripts.iter().chain(sg_scripts);
    c.track_scripts = tracked.clone().map(|t| script_tracker(t, cfg)).collect();
    let mut scripts: Vec<conf::VrrpScript> = Vec::new();
    for t in tracked {
        if let Some(s) = cfg.vrrp_script(&t.name) {
            if !scripts.iter().any(|x| x.name == s.name) {
                let mut s = s.clone();
                s.loc.line = 0;
                scripts.push(s);
            }
        }
    }
    let group = sg.map(|g| GroupConf {
        name: g.name.clone(),
        members: g.group.clone(),
        notify: notify(&g.notify),
    });
    c.notify = notify(&vi.notify);
    c.garp = garp(&vi.garp);
    c.validate().map_err(|e| format!("{at}: {e}"))?;
    let sync = cfg
        .global
        .lvs_sync_daemon
        .as_ref()
        .filter(|d| d.instance == vi.name)
        .cloned();
    Ok(RunConf {
        vrrp: c,
        port,
        sync,
        scripts,
        group,
    })
}

/// The addresses only the master answers for
/// ([`InstanceConf::owned_addresses`]): the VIPs of `vi` on rvs port `port`,
/// then every address of the `local_address_group`s on `port`, once each.
pub fn owned_addresses(vi: &VrrpInstance, cfg: &Config, port: &str) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for v in &vi.virtual_ipaddress {
        if v.dev.as_deref().is_none_or(|d| d == port) && !out.contains(&v.addr) {
            out.push(v.addr);
        }
    }
    for g in &cfg.laddr_groups {
        for (a, dev) in &g.addrs {
            if dev == port && !out.contains(a) {
                out.push(*a);
            }
        }
    }
    out
}

fn script_tracker(t: &conf::Tracked, cfg: &Config) -> Tracked {
    let script = cfg.vrrp_script(&t.name);
    let weight = t.weight.or(script.map(|s| s.weight)).unwrap_or(0);
    let mut tr = Tracked::new(&t.name).weight(weight);
    tr.init_fail = script.is_some_and(|s| s.init_fail);
    tr
}

fn notify(n: &conf::Notify) -> NotifyScripts {
    NotifyScripts {
        master: n.master.clone(),
        backup: n.backup.clone(),
        fault: n.fault.clone(),
        stop: n.stop.clone(),
        any: n.any.clone(),
    }
}

fn garp(g: &conf::Garp) -> GarpConf {
    GarpConf {
        master_delay_ms: g.master_delay.as_millis() as u64,
        master_repeat: g.master_repeat,
        lower_prio_delay_ms: g.lower_prio_delay.as_millis() as u64,
        lower_prio_repeat: g.lower_prio_repeat,
        refresh_ms: g.master_refresh.as_millis() as u64,
        refresh_repeat: g.master_refresh_repeat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tutorial() -> Config {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tutorial-master.conf");
        crate::conf::load(p).expect("tutorial parses").config
    }

    #[test]
    fn tutorial_instance_runs_on_the_kni_address_with_vips_on_dpdk0() {
        let cfg = tutorial();
        let vi = cfg.vrrp_instance("VI_1").unwrap();
        let kni: IpAddr = "192.168.100.11".parse().unwrap();
        let rc = run_conf(vi, &cfg, &|i, f| {
            (i == "dpdk0.kni" && f == Family::V4).then_some(kni)
        })
        .unwrap();
        assert_eq!(rc.port, "dpdk0");
        assert_eq!(rc.vrrp.src, kni);
        assert_eq!(rc.vrrp.vrid, 123);
        assert_eq!(rc.vrrp.interval_cs, 100);
        assert_eq!(rc.vrrp.initial_state, InitialState::Master);
        assert_eq!(rc.vrrp.auth, Auth::pass("****").0);
        assert_eq!(
            rc.vrrp.virtual_addresses,
            vec![VirtualAddress::host("192.168.100.254".parse().unwrap())]
        );
        let owned: Vec<IpAddr> = ["192.168.100.254", "192.168.100.200", "192.168.100.201"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(rc.vrrp.owned_addresses, owned, "VIP and laddr_g1 on dpdk0");
        assert_eq!(rc.sync, None, "no lvs_sync_daemon in the tutorial");
    }

    #[test]
    fn missing_interface_address_is_a_clear_error() {
        let cfg = tutorial();
        let vi = cfg.vrrp_instance("VI_1").unwrap();
        let e = run_conf(vi, &cfg, &|_, _| None).unwrap_err();
        assert!(e.contains("interface dpdk0.kni has no IPv4 address"), "{e}");
        assert!(e.contains("tutorial-master.conf:"), "{e}");
    }

    const GROUPED: &str = r#"
vrrp_script chk_a {
    script "/bin/check a"
    weight -20
    fall 3
}
vrrp_script chk_b {
    script /bin/true
    init_fail
}
vrrp_sync_group G1 {
    group {
        VI_1
        VI_2
    }
    track_script {
        chk_b
    }
    notify_master /up
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    priority 100
    unicast_src_ip 192.0.2.1
    virtual_ipaddress {
        10.0.0.1
    }
    track_script {
        chk_a weight -5
    }
}
vrrp_instance VI_2 {
    interface eth1
    virtual_router_id 2
    priority 100
    unicast_src_ip 192.0.2.2
    virtual_ipaddress {
        10.0.1.1
    }
}
"#;

    #[test]
    fn tracked_scripts_with_weight_override_and_the_group_reach_the_run_conf() {
        let cfg = crate::conf::parse_str(GROUPED, "g.conf").unwrap().config;
        let none = |_: &str, _: Family| None;
        let vi1 = run_conf(cfg.vrrp_instance("VI_1").unwrap(), &cfg, &none).unwrap();
        let t = &vi1.vrrp.track_scripts;
        assert_eq!(t.len(), 2, "own chk_a and the group's chk_b: {t:?}");
        assert_eq!((t[0].name.as_str(), t[0].weight), ("chk_a", -5));
        assert_eq!(
            (t[1].name.as_str(), t[1].weight, t[1].init_fail),
            ("chk_b", 0, true)
        );
        let names: Vec<&str> = vi1.scripts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["chk_a", "chk_b"]);
        assert_eq!(vi1.scripts[0].fall, 3);
        let g = vi1.group.as_ref().expect("VI_1 is in G1");
        assert_eq!(g.name, "G1");
        assert_eq!(g.members, ["VI_1", "VI_2"]);
        assert_eq!(g.notify.master.as_deref(), Some("/up"));
        let vi2 = run_conf(cfg.vrrp_instance("VI_2").unwrap(), &cfg, &none).unwrap();
        assert_eq!(vi2.group, vi1.group);
        let names: Vec<&str> = vi2.scripts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["chk_b"]);
    }
}

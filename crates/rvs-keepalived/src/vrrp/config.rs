//! The typed configuration of one VRRP instance ([`InstanceConf`]), what the
//! keepalived.conf `vrrp_instance` block becomes once parsed.
//!
//! Defaults are keepalived's: priority 100, advert_int 1 s, VRRPv2, preempt
//! on, state BACKUP, gratuitous ARP 5 at once and 5 more after 5 s.

use core::fmt;
use std::net::IpAddr;

use super::packet::{Auth, ChecksumMode, Family, Version, MAX_V3_INTERVAL_CS};

/// The priority of the address owner.
pub const PRIORITY_OWNER: u8 = 255;
/// The largest tracking weight, in absolute value (keepalived's range).
pub const MAX_WEIGHT: i32 = 253;

/// The `state` keyword: where an instance wants to be.
///
/// As in keepalived, `Master` does not make an instance master at start-up
/// unless its priority is 255 (the address owner): otherwise it starts as
/// backup and becomes master when the Master_Down_Interval passes without a
/// higher-priority advertisement. The priority decides, not this.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum InitialState {
    /// `state MASTER`.
    Master,
    /// `state BACKUP` (the default).
    #[default]
    Backup,
}

/// A `virtual_ipaddress` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VirtualAddress {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (`/24`; 32 or 128 when not given).
    pub prefix_len: u8,
    /// `dev IFACE` when given (otherwise the instance's `dpdk_interface`).
    pub dev: Option<String>,
}

impl VirtualAddress {
    /// A host address (/32 or /128) on the instance's port.
    pub fn host(addr: IpAddr) -> Self {
        let prefix_len = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        VirtualAddress {
            addr,
            prefix_len,
            dev: None,
        }
    }
}

/// A `track_interface` or `track_script` entry.
///
/// Weight 0: a failure puts the instance in FAULT. A positive weight is
/// added to the priority while the object is up; a negative one while it is
/// down. `reverse` swaps up and down. The effective priority stays within
/// 1..=254 (an address owner may not track with a weight).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tracked {
    /// Interface name, or `vrrp_script` name.
    pub name: String,
    /// Weight, -253..=253.
    pub weight: i32,
    /// Whether up and down are swapped.
    pub reverse: bool,
    /// Scripts: whether the object starts failed (`init_fail`); otherwise it
    /// is taken as up until its first result.
    pub init_fail: bool,
}

impl Tracked {
    /// An unweighted entry (a failure means FAULT).
    pub fn new(name: &str) -> Self {
        Tracked {
            name: name.to_string(),
            weight: 0,
            reverse: false,
            init_fail: false,
        }
    }

    /// The same with a weight.
    pub fn weight(mut self, weight: i32) -> Self {
        self.weight = weight;
        self
    }
}

/// The `notify_*` scripts (command lines, run by the runtime).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NotifyScripts {
    /// `notify_master`: run as configured on becoming master.
    pub master: Option<String>,
    /// `notify_backup`.
    pub backup: Option<String>,
    /// `notify_fault`.
    pub fault: Option<String>,
    /// `notify_stop`: on shutdown.
    pub stop: Option<String>,
    /// `notify`: on every transition, with `INSTANCE NAME STATE PRIORITY`
    /// appended.
    pub any: Option<String>,
}

/// Gratuitous ARP / unsolicited NA settings (`garp_*`), times in ms.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct GarpConf {
    /// `garp_master_delay`: the second burst after becoming master (0: none).
    pub master_delay_ms: u64,
    /// `garp_master_repeat`: announcements per burst.
    pub master_repeat: u32,
    /// `garp_lower_prio_delay`: the second burst after a lower-priority
    /// advertisement reached the master (0: none).
    pub lower_prio_delay_ms: u64,
    /// `garp_lower_prio_repeat` (0: no burst on a lower-priority advert).
    pub lower_prio_repeat: u32,
    /// `garp_master_refresh`: periodic bursts while master (0: none).
    pub refresh_ms: u64,
    /// `garp_master_refresh_repeat`.
    pub refresh_repeat: u32,
}

impl Default for GarpConf {
    fn default() -> Self {
        GarpConf {
            master_delay_ms: 5000,
            master_repeat: 5,
            lower_prio_delay_ms: 5000,
            lower_prio_repeat: 5,
            refresh_ms: 0,
            refresh_repeat: 1,
        }
    }
}

/// One `vrrp_instance`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConf {
    /// The instance name (`vrrp_instance NAME`), passed to `notify`.
    pub name: String,
    /// `virtual_router_id`, 1..=255.
    pub vrid: u8,
    /// `priority`, 1..=255 (255: address owner).
    pub priority: u8,
    /// `advert_int` in centiseconds (VRRPv2: whole seconds).
    pub interval_cs: u16,
    /// `vrrp_version` (global) or per instance.
    pub version: Version,
    /// `state`.
    pub initial_state: InitialState,
    /// `preempt` (default) or `nopreempt` (false).
    pub preempt: bool,
    /// `preempt_delay` in ms: how long a backup keeps accepting a
    /// lower-priority master before it starts to preempt it.
    pub preempt_delay_ms: u64,
    /// `interface`: the device adverts go out of (the kni device); its
    /// going down is a FAULT.
    pub interface: String,
    /// The primary address: `unicast_src_ip`, or the interface's address
    /// (IPv6: link-local). The source of adverts, and the tie-breaker
    /// between equal priorities.
    pub src: IpAddr,
    /// `virtual_ipaddress`, all of the family of `src`.
    pub virtual_addresses: Vec<VirtualAddress>,
    /// The addresses rvs must answer ARP/ND for only while this node is
    /// MASTER: the local addresses (`local_address_group`) on the
    /// instance's rvs port, and the VIPs (rvs answers for a virtual
    /// server's VIP whenever a route leads to it, even with the address
    /// removed). Active while MASTER, standby otherwise.
    pub owned_addresses: Vec<IpAddr>,
    /// `unicast_peer` (empty: multicast to 224.0.0.18 / ff02::12).
    pub unicast_peers: Vec<IpAddr>,
    /// `authentication { auth_type PASS auth_pass ... }` (VRRPv2 only).
    pub auth: Auth,
    /// VRRPv3 IPv4 checksum flavour (`v3_checksum_as_v2`,
    /// `old_unicast_checksum`).
    pub checksum_mode: ChecksumMode,
    /// `track_interface`.
    pub track_interfaces: Vec<Tracked>,
    /// `track_script`.
    pub track_scripts: Vec<Tracked>,
    /// `notify_*`.
    pub notify: NotifyScripts,
    /// `garp_*`.
    pub garp: GarpConf,
    /// `lower_prio_no_advert`: a master that hears a lower-priority advert
    /// stays silent (RFC behaviour) instead of answering at once.
    pub lower_prio_no_advert: bool,
}

impl InstanceConf {
    /// An instance with keepalived's defaults.
    pub fn new(name: &str, vrid: u8, interface: &str, src: IpAddr) -> Self {
        InstanceConf {
            name: name.to_string(),
            vrid,
            priority: 100,
            interval_cs: 100,
            version: Version::V2,
            initial_state: InitialState::Backup,
            preempt: true,
            preempt_delay_ms: 0,
            interface: interface.to_string(),
            src,
            virtual_addresses: Vec::new(),
            owned_addresses: Vec::new(),
            unicast_peers: Vec::new(),
            auth: Auth::None,
            checksum_mode: ChecksumMode::Rfc,
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            notify: NotifyScripts::default(),
            garp: GarpConf::default(),
            lower_prio_no_advert: false,
        }
    }

    /// The address family (that of `src`).
    pub fn family(&self) -> Family {
        Family::of(self.src)
    }

    /// Whether adverts go to unicast peers.
    pub fn is_unicast(&self) -> bool {
        !self.unicast_peers.is_empty()
    }

    /// Checks the values the state machine relies on.
    pub fn validate(&self) -> Result<(), ConfError> {
        let err = |field, problem: String| Err(ConfError { field, problem });
        if self.vrid == 0 {
            return err("virtual_router_id", "must be 1-255, not 0".into());
        }
        if self.priority == 0 {
            return err("priority", "must be 1-255, not 0".into());
        }
        self.validate_interval()?;
        self.validate_family()?;
        if self.version == Version::V3 && self.auth != Auth::None {
            return err("authentication", "VRRPv3 has no authentication".into());
        }
        for t in self.track_interfaces.iter().chain(&self.track_scripts) {
            if t.weight.abs() > MAX_WEIGHT {
                let p = format!("weight {} of {} is not within -253..253", t.weight, t.name);
                return err("weight", p);
            }
            if t.weight != 0 && self.priority == PRIORITY_OWNER {
                let p = format!("{} has weight {}; an address owner (priority 255) may only track with weight 0", t.name, t.weight);
                return err("weight", p);
            }
        }
        Ok(())
    }

    fn validate_interval(&self) -> Result<(), ConfError> {
        let bad = |problem: String| {
            Err(ConfError {
                field: "advert_int",
                problem,
            })
        };
        let cs = self.interval_cs;
        match self.version {
            Version::V2 if cs == 0 || !cs.is_multiple_of(100) || cs > 25500 => bad(format!(
                "{}.{:02} s: VRRPv2 needs whole seconds 1-255",
                cs / 100,
                cs % 100
            )),
            Version::V3 if cs == 0 || cs > MAX_V3_INTERVAL_CS => bad(format!(
                "{}.{:02} s: VRRPv3 needs 0.01-40.95 s",
                cs / 100,
                cs % 100
            )),
            _ => Ok(()),
        }
    }

    fn validate_family(&self) -> Result<(), ConfError> {
        let family = self.family();
        let err = |field, problem: String| Err(ConfError { field, problem });
        if self.version == Version::V2 && family == Family::V6 {
            return err("vrrp_version", "VRRPv2 is IPv4 only; use 3 for IPv6".into());
        }
        if let Some(v) = self
            .virtual_addresses
            .iter()
            .find(|v| Family::of(v.addr) != family)
        {
            let p = format!("{} is not of the family of {}", v.addr, self.src);
            return err("virtual_ipaddress", p);
        }
        if let Some(p) = self
            .unicast_peers
            .iter()
            .find(|p| Family::of(**p) != family)
        {
            let p = format!("{p} is not of the family of {}", self.src);
            return err("unicast_peer", p);
        }
        if let IpAddr::V6(a) = self.src {
            let link_local = a.segments()[0] & 0xffc0 == 0xfe80;
            if !self.is_unicast() && !link_local {
                let p = format!("{a}: multicast VRRPv3 over IPv6 needs a link-local source");
                return err("unicast_src_ip", p);
            }
        }
        Ok(())
    }
}

/// A configuration value the state machine cannot run with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfError {
    /// The keepalived.conf keyword at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for ConfError {}

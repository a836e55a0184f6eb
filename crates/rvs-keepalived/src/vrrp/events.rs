//! What goes into an [`Instance`](super::Instance) ([`Event`]) and what
//! comes out ([`Action`]), and the counters it keeps ([`Stats`]).

use core::fmt;
use std::net::IpAddr;

use super::config::VirtualAddress;
use super::packet::{IpMeta, PacketError};

/// The state of an instance (RFC 5798 6.4, plus keepalived's FAULT).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or shut down.
    Init,
    /// Watching the master; owns no virtual address.
    Backup,
    /// Owns the virtual addresses and advertises.
    Master,
    /// A tracked interface or script (weight 0) failed: neither.
    Fault,
}

impl State {
    /// The upper-case name keepalived uses (`notify` argument, logs).
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An input to [`Instance::handle`](super::Instance::handle). Every event
/// comes with the current time in milliseconds (any monotonic origin).
#[derive(Copy, Clone, Debug)]
pub enum Event<'a> {
    /// Start the protocol (RFC 5798 6.4.1 Startup).
    Startup,
    /// A VRRP message arrived: its IP source, destination and TTL, and the
    /// IP payload. The instance decodes, checks and counts it itself (rather
    /// than taking a decoded advert) because the checks depend on it: its
    /// version, password, interval, checksum flavour, multicast or unicast;
    /// a runtime with several instances dispatches on
    /// [`packet::peek_vrid`](super::packet::peek_vrid).
    Advert {
        /// The IP facts.
        meta: IpMeta,
        /// The VRRP message.
        payload: &'a [u8],
    },
    /// The time passed [`Instance::next_timeout`](super::Instance::next_timeout).
    Timeout,
    /// An interface went up or down (the instance's own interface, or a
    /// tracked one; others are ignored).
    Link {
        /// Interface name.
        ifname: &'a str,
        /// Whether it is up now.
        up: bool,
    },
    /// A `vrrp_script` changed status (after its rise / fall counts).
    Script {
        /// The `vrrp_script` name.
        name: &'a str,
        /// Whether it succeeds now.
        ok: bool,
    },
    /// Stop (RFC 5798 Shutdown): a master sends a priority-0 advert.
    Shutdown,
    /// Its `vrrp_sync_group` moves it ([`SyncGroup`](super::SyncGroup)):
    /// `Fault` holds it in FAULT until another `Sync`; `Backup` releases
    /// that hold and makes a master a backup; `Master` releases it and
    /// makes a backup master.
    Sync {
        /// Where the group goes.
        to: State,
    },
}

/// An output of the instance, for the runtime to carry out in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The state changed (for logs; the other actions do the work).
    Transition {
        /// Old state.
        from: State,
        /// New state.
        to: State,
    },
    /// Send a VRRP message, IP protocol 112, TTL / hop limit 255.
    SendAdvert {
        /// IP source (the instance's primary address).
        src: IpAddr,
        /// IP destination (the multicast group, or one unicast peer).
        dst: IpAddr,
        /// The priority advertised (0 when stopping).
        priority: u8,
        /// The encoded VRRP message (checksum computed for `src`, `dst`).
        payload: Vec<u8>,
    },
    /// Add the virtual addresses to rvsd (on `dpdk_interface`).
    AddVips(Vec<VirtualAddress>),
    /// Remove the virtual addresses from rvsd.
    RemoveVips(Vec<VirtualAddress>),
    /// Make the owned addresses (local addresses and VIPs,
    /// [`crate::vrrp::InstanceConf::owned_addresses`]) active in rvsd
    /// (answered for in ARP/ND): this node is master. Never empty.
    ActivateLaddrs(Vec<IpAddr>),
    /// Make the owned addresses standby in rvsd (configured, not answered
    /// for): the master of the pair owns them. Never empty.
    StandbyLaddrs(Vec<IpAddr>),
    /// Send `repeat` gratuitous ARPs (IPv4) / unsolicited neighbour
    /// advertisements (IPv6) for each address, from the rvs port.
    Announce {
        /// The addresses to announce.
        addresses: Vec<IpAddr>,
        /// How many of each.
        repeat: u32,
    },
    /// Run a notify script: the configured command line, then `args`.
    RunScript {
        /// The configured command line.
        script: String,
        /// Arguments appended (`INSTANCE NAME STATE PRIORITY` for `notify`,
        /// none for `notify_master` and the like).
        args: Vec<String>,
    },
}

/// Advertisements dropped, by reason.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// Length inconsistent with the header.
    pub length: u64,
    /// Version not 2 or 3 (or 2 over IPv6).
    pub bad_version: u64,
    /// The other valid version.
    pub version_mismatch: u64,
    /// Type not ADVERTISEMENT.
    pub bad_type: u64,
    /// Checksum wrong.
    pub bad_checksum: u64,
    /// TTL / hop limit not 255 (multicast).
    pub bad_ttl: u64,
    /// VRRPv2 authentication type differs.
    pub auth_type_mismatch: u64,
    /// VRRPv2 password differs.
    pub auth_mismatch: u64,
    /// VRRPv2 interval differs.
    pub interval_mismatch: u64,
    /// Interval 0.
    pub zero_interval: u64,
    /// Source or destination of the wrong address family.
    pub family_mismatch: u64,
    /// Another virtual router id.
    pub wrong_vrid: u64,
    /// Our own advertisement (source is our primary address).
    pub own_advert: u64,
    /// Multicast received by a unicast instance, or the reverse.
    pub cast_mismatch: u64,
    /// Arrived while the instance is not running (INIT or FAULT).
    pub not_running: u64,
}

impl Drops {
    /// Counts a decoding or checking error under its reason. An address
    /// count mismatch is not a drop (see [`Stats::address_list_errors`]),
    /// and encoding errors cannot come from a received advert: those are
    /// not counted here.
    pub fn count(&mut self, e: &PacketError) {
        let c = match e {
            PacketError::Length { .. } => &mut self.length,
            PacketError::BadVersion { .. } => &mut self.bad_version,
            PacketError::VersionMismatch { .. } => &mut self.version_mismatch,
            PacketError::BadType { .. } => &mut self.bad_type,
            PacketError::BadChecksum { .. } => &mut self.bad_checksum,
            PacketError::BadTtl { .. } => &mut self.bad_ttl,
            PacketError::AuthTypeMismatch { .. } => &mut self.auth_type_mismatch,
            PacketError::AuthMismatch => &mut self.auth_mismatch,
            PacketError::IntervalMismatch { .. } => &mut self.interval_mismatch,
            PacketError::ZeroInterval => &mut self.zero_interval,
            PacketError::FamilyMismatch => &mut self.family_mismatch,
            PacketError::AddressCountMismatch { .. }
            | PacketError::FieldRange { .. }
            | PacketError::BufferTooSmall { .. } => return,
        };
        *c += 1;
    }

    /// Every counter with its name, for metrics.
    pub fn by_reason(&self) -> [(&'static str, u64); 15] {
        [
            ("length", self.length),
            ("bad_version", self.bad_version),
            ("version_mismatch", self.version_mismatch),
            ("bad_type", self.bad_type),
            ("bad_checksum", self.bad_checksum),
            ("bad_ttl", self.bad_ttl),
            ("auth_type_mismatch", self.auth_type_mismatch),
            ("auth_mismatch", self.auth_mismatch),
            ("interval_mismatch", self.interval_mismatch),
            ("zero_interval", self.zero_interval),
            ("family_mismatch", self.family_mismatch),
            ("wrong_vrid", self.wrong_vrid),
            ("own_advert", self.own_advert),
            ("cast_mismatch", self.cast_mismatch),
            ("not_running", self.not_running),
        ]
    }

    /// The sum of all drops.
    pub fn total(&self) -> u64 {
        self.by_reason().iter().map(|(_, n)| n).sum()
    }
}

/// Counters of one instance (as keepalived's `vrrp_stats`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Valid advertisements received.
    pub adverts_received: u64,
    /// Advertisements sent (one per destination).
    pub adverts_sent: u64,
    /// Valid priority-0 advertisements received.
    pub priority_zero_received: u64,
    /// Priority-0 advertisements sent (one per destination).
    pub priority_zero_sent: u64,
    /// Transitions to MASTER.
    pub became_master: u64,
    /// Transitions out of MASTER.
    pub released_master: u64,
    /// Advertisements whose address count differs from ours (still used).
    pub address_list_errors: u64,
    /// Lower-priority advertisements a preempting backup ignored.
    pub lower_priority_ignored: u64,
    /// VRRPv3 unicast adverts with keepalived ≤ 1.3.6's checksum, which
    /// switched this instance to that checksum.
    pub old_checksum_detected: u64,
    /// Advertisements dropped.
    pub drops: Drops,
}

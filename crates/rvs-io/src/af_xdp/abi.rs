//! What a process taking over a running port's XDP program and maps must
//! agree on with the one that created them (hot upgrade, issue 14): the
//! program's contract with its maps ([`PROG_ABI`]) and the maps' layouts
//! ([`MAPS`]). The maps are handed over as they are; a new program may be
//! loaded on them only when both are equal (the steering rules have their
//! own version, [`crate::steer::VERSION`]).

use super::{bpf, fast};

/// Version of the contract between the XDP program and its maps: what a
/// key and a value of each map mean (`rvs_addrs`: an IPv4 address as
/// `::ffff:a.b.c.d`, bit 0 pool, bit 1 NAT real server; `rvs_xsks`:
/// index `queue * workers + worker`; `rvs_fast`: see `fast.rs`). Bump it
/// whenever one changes, even when the sizes stay.
pub const PROG_ABI: u32 = 1;

/// The layout of one of the program's maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapLayout {
    /// Its name in the kernel.
    pub name: &'static str,
    /// `BPF_MAP_TYPE_*`.
    pub kind: u32,
    /// Key size, bytes.
    pub key_size: u32,
    /// Value size, bytes.
    pub value_size: u32,
}

/// The steering map (`rvs_addrs`).
pub const ADDRS: MapLayout = MapLayout {
    name: "rvs_addrs",
    kind: bpf::MAP_HASH,
    key_size: 16,
    value_size: 4,
};

/// The sockets map (`rvs_xsks`).
pub const XSKS: MapLayout = MapLayout {
    name: "rvs_xsks",
    kind: bpf::MAP_XSKMAP,
    key_size: 4,
    value_size: 4,
};

/// The fast-path map (`rvs_fast`, only with `fast_path = "xdp"`).
pub const FAST: MapLayout = MapLayout {
    name: "rvs_fast",
    kind: bpf::MAP_HASH,
    key_size: fast::KEY_LEN as u32,
    value_size: fast::VALUE_LEN as u32,
};

/// Every map a port's program may use.
pub const MAPS: [MapLayout; 3] = [ADDRS, XSKS, FAST];

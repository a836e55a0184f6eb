//! VRRP v2 (RFC 3768) and v3 (RFC 5798), sans-IO.
//!
//! As quinn-proto is to quinn, this module holds the protocol and nothing
//! else: no socket, no clock, no thread. A runtime (later) reads VRRP from a
//! raw socket on the kni device, feeds each message to its [`Instance`] as an
//! [`Event`] with the current time, carries out the [`Action`]s it gets back
//! (send an advert, add or remove the virtual addresses in rvsd, announce
//! them, run notify scripts), and calls again at [`Instance::next_timeout`].
//!
//! What the runtime owes the state machine: send each
//! [`Action::SendAdvert`] with IP protocol 112 and TTL / hop limit 255 (for
//! IPv6 from the link-local source given; the payload already carries its
//! checksum, which a kernel doing `IPV6_CHECKSUM` recomputes identically);
//! hand over each received message as the IP payload cut at the IP length,
//! with the TTL / hop limit when the socket reports it. Its own multicast
//! adverts looped back are recognised by their source and dropped.
//!
//! - [`packet`]: the advertisement, a checked view ([`packet::Advert`]) that
//!   never panics and an encoder ([`packet::AdvertRepr`]).
//! - [`config`]: [`InstanceConf`], one `vrrp_instance` with keepalived's
//!   defaults.
//! - [`events`]: [`Event`], [`Action`], [`State`], [`Stats`].
//! - [`instance`]: the state machine.
//! - [`sync_group`]: [`SyncGroup`], members of a `vrrp_sync_group` moved
//!   together.
//!
//! ```
//! use rvs_keepalived::vrrp::{Action, Event, Instance, InstanceConf, State};
//!
//! let src = "192.168.100.1".parse().unwrap();
//! let mut conf = InstanceConf::new("VI_1", 51, "dpdk0.kni", src);
//! conf.priority = 150;
//! let mut vi = Instance::new(conf).unwrap();
//! let mut out = Vec::new();
//! vi.handle(0, Event::Startup, &mut out);
//! assert_eq!(vi.state(), State::Backup);
//! // Nobody advertises: master after 3 × 1 s + (256 - 150) / 256 s.
//! let t = vi.next_timeout().unwrap();
//! assert_eq!(t, 3414);
//! out.clear();
//! vi.handle(t, Event::Timeout, &mut out);
//! assert_eq!(vi.state(), State::Master);
//! assert!(out.iter().any(|a| matches!(a, Action::SendAdvert { priority: 150, .. })));
//! ```

pub mod config;
pub mod events;
pub mod instance;
pub mod packet;
pub mod sync_group;

pub use config::{
    ConfError, GarpConf, InitialState, InstanceConf, NotifyScripts, Tracked, VirtualAddress,
};
pub use events::{Action, Drops, Event, State, Stats};
pub use instance::Instance;
pub use sync_group::SyncGroup;

#[cfg(test)]
mod tests;

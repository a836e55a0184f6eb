//! rvs-keepalived: keepalived for rvs, in the DPVS dialect of the DPVS
//! tutorial's keepalived section. It speaks to rvsd only through the control
//! API (like `rvsadm`), and runs VRRP on the kni device.
//!
//! Modules, as in holo's protocol crates:
//! - [`conf`]: the keepalived.conf language (parser, typed configuration,
//!   warnings and errors with file, line and keyword).
//! - [`vrrp`]: VRRP v2/v3 packets and a sans-IO state machine per instance
//!   (events in, actions out), driven by a thin socket runtime.
//! - [`check`]: health checkers (TCP_CHECK, HTTP_GET, UDP_CHECK,
//!   MISC_CHECK) on their own timers, and the policy that turns real-server
//!   health into the wanted services.
//! - [`reconcile`]: the diff between the wanted services and rvsd's, applied
//!   through the control API.
//! - [`services`]: the thread that runs the checkers and keeps the
//!   virtual servers in rvsd (reconciling on every health change and
//!   reload).
//! - [`runtime`]: the sockets on the kni devices that drive the VRRP
//!   instances, and their actions (VIPs through the control API, gratuitous
//!   ARP / unsolicited NA on the kni device, notify scripts).
#![forbid(unsafe_code)]

pub mod check;
pub mod conf;
pub mod reconcile;
pub mod runtime;
pub mod services;
pub mod vrrp;

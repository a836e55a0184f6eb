//! Pipeline tests on crafted frames. Expected bytes are written out here and
//! checksums are verified by [`oracle`], an independent implementation.

mod acl;
mod bad_input;
mod churn;
mod fast;
mod fast_xmit;
mod flowlog;
mod fnat;
mod fuzz;
mod half_open;
mod host;
mod icmp;
mod kni_guard;
mod limits;
mod limits_rate;
mod listing;
mod modes;
mod oracle;
mod parsers;
mod proxy_proto;
mod proxy_proto_icmp;
mod proxy_proto_sync;
mod sched;
mod sloppy;
mod smoke;
mod snat_family;
mod static_neigh;
mod sync;
mod sync_active;
mod synproxy;
mod synproxy_ecmp;
mod synproxy_icmp;
mod synproxy_retry;
mod synproxy_sync;
mod uoa;
mod util;

//! Pipeline tests on crafted frames. Expected bytes are written out here and
//! checksums are verified by [`oracle`], an independent implementation.

mod oracle;
mod smoke;
mod util;
mod fnat;
mod modes;
mod icmp;
mod host;
mod sched;
mod limits;

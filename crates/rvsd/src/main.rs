//! rvsd: the rvs daemon.
fn main() {}

//! rvs-bench: benchmarks of rvs.
fn main() {}

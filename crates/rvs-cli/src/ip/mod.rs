//! `rvsip`: placeholder until written.

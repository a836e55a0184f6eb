//! rvs-cli: parsing and output of rvsadm and rvsip.

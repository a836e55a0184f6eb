#!/usr/bin/env bash
# The whole test suite of rvs, as CI runs it: format, lints, unit and
# integration tests, then a short fuzz smoke run of every fuzz target.
# Idempotent: installs what it needs first. Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "packages"
bash scripts/deps.sh

step "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace --exclude rvs-e2e

step "end-to-end suite (network namespaces, as root)"
cargo build --workspace
cargo test -p rvs-e2e -- --test-threads=1 --nocapture

step "end-to-end suite again on the af_xdp backend"
RVS_E2E_BACKEND=af_xdp cargo test -p rvs-e2e -- --test-threads=1 --nocapture

step "DPDK backend: rvsd --features dpdk (libdpdk, libclang), its smoke test and the FNAT case on both vdevs"
cargo clippy -p rvs-io -p rvsd --features rvs-io/dpdk,rvsd/dpdk --all-targets -- -D warnings
cargo test -p rvs-io --features dpdk --test dpdk -- --test-threads=1
cargo build -p rvsd --features dpdk
for vdev in af_packet af_xdp; do
  RVS_E2E_BACKEND=dpdk-$vdev cargo test -p rvs-e2e --test fnat_two_arm -- --ignored dpdk --test-threads=1 --nocapture
done
RVS_E2E_BACKEND=dpdk-af_xdp cargo test -p rvs-e2e --test dpdk -- --ignored --test-threads=1 --nocapture

step "fuzz smoke (${FUZZ_SECONDS:=30}s per target)"
bash scripts/fuzz.sh "$FUZZ_SECONDS"

#!/usr/bin/env bash
# Runs every cargo-fuzz target for N seconds (default 60). cargo-fuzz needs
# nightly features; the stable toolchain allows them with RUSTC_BOOTSTRAP=1.
# Installs cargo-fuzz from crates.io if missing. Fails if a target crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
targets=$(cd fuzz && cargo fuzz list)
for t in $targets; do
  echo "fuzz target $t: ${secs}s"
  mkdir -p "fuzz/corpus/$t"
  (cd fuzz && cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=2048 -print_final_stats=1 2>&1 | tail -n 12)
done

#!/usr/bin/env bash
# rvs side by side with kernel forwarding, nftables and HAProxy on veth pairs
# between network namespaces (created and removed by the benchmark itself):
# installs what is missing, builds the workspace in release mode, runs
# `rvs-bench e2e --json` (as root; through sudo when not root). Extra
# arguments go to rvs-bench, e.g. `--lbs kernel,rvs-af_packet --cases pps`.
# One JSON object per line on stdout (the pps sweep's Markdown summary on
# stderr); about 12 minutes, 8-9 of them the pps sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --workspace
bin="${CARGO_TARGET_DIR:-target}/release/rvs-bench"
if [ "$(id -u)" = 0 ]; then
  exec "$bin" e2e --json "$@"
else
  exec sudo "$bin" e2e --json "$@"
fi

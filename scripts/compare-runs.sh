#!/usr/bin/env bash
# Checks that two runs published the same datasets: every parquet dataset of each run directory,
# the same columns and types, the same rows in the same order, integers and text exact, floats to
# 1e-9 relative (crates/mirador-cli/examples/compare_runs.rs). Exit 0 when they agree, 1 otherwise.
#   scripts/compare-runs.sh RUN_A RUN_B [--rel 1e-9]
#   scripts/compare-runs.sh /tmp/before/latest target/bench-runs/latest
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: scripts/compare-runs.sh RUN_A RUN_B [--rel 1e-9]"; exit 1; }
A=$(cd "$1" && pwd -P)
B=$(cd "$2" && pwd -P)
shift 2
cd "$(dirname "$0")/.."
cargo build --release -q --workspace --example compare_runs   # --workspace: -p would build polars with other features
exec target/release/examples/compare_runs "$A" "$B" "$@"

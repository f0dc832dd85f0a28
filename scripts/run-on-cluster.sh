#!/usr/bin/env bash
# A pipeline run on a local Ballista cluster, for a trial on one machine: starts a scheduler and
# EXECUTORS executors (`mirador cluster up`), runs the pipeline with --engine on it, and stops
# the cluster, whatever the run's outcome (its exit code is the run's).
#   scripts/run-on-cluster.sh [PIPELINE] [EXECUTORS] [-- MORE RUN FLAGS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cluster-lib.sh
PIPELINE=${1:-pipelines/nightly.toml}
EXECUTORS=${2:-2}
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = "--" ] && shift
cargo build --release -q --workspace
BIN=target/release/mirador
LOG=$(mktemp)
trap 'cluster_down; rm -f "$LOG"' EXIT
cluster_up "$LOG" "$EXECUTORS" 0
echo "cluster: $ADDRESS, $EXECUTORS executors"
$BIN run "$PIPELINE" --engine "$ADDRESS" "$@"

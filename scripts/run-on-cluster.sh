#!/usr/bin/env bash
# A pipeline run on a local Ballista cluster, for a trial on one machine: starts a scheduler and
# EXECUTORS executors (`mirador cluster up`), runs the pipeline with --engine on it, and stops
# the cluster, whatever the run's outcome (its exit code is the run's).
#   scripts/run-on-cluster.sh [PIPELINE] [EXECUTORS] [-- MORE RUN FLAGS]
set -euo pipefail
cd "$(dirname "$0")/.."
PIPELINE=${1:-pipelines/nightly.toml}
EXECUTORS=${2:-2}
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = "--" ] && shift
cargo build --release -q --workspace
BIN=target/release/mirador
LOG=$(mktemp)
$BIN cluster up --executors "$EXECUTORS" --port 0 > "$LOG" 2>&1 &
CLUSTER=$!
trap 'kill "$CLUSTER" 2>/dev/null || true; wait "$CLUSTER" 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 600); do grep -q "^executors:" "$LOG" 2>/dev/null && break; kill -0 "$CLUSTER" 2>/dev/null || break; sleep 0.1; done
ADDRESS=$(sed -n 's/^scheduler: //p' "$LOG")
[ -n "$ADDRESS" ] || { cat "$LOG"; echo "the cluster did not start"; exit 1; }
echo "cluster: $ADDRESS, $EXECUTORS executors"
$BIN run "$PIPELINE" --engine "$ADDRESS" "$@"

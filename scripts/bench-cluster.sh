#!/usr/bin/env bash
# The revenue_gap's per-declaration map and join (mirror_exposure) on a local Ballista cluster,
# against the same plan in one process, on a committed run; then again with an executor killed
# midway. Prints wall time, rows, each process's peak memory, and whether the outputs agree.
#   scripts/bench-cluster.sh [RUN_DIR] [EXECUTORS] [KILL_AFTER_SECONDS]
# RUN_DIR defaults to target/bench-runs/latest (`just bench-scale N` makes it). Outputs go to
# target/bench-cluster/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cluster-lib.sh
RUN=${1:-target/bench-runs/latest}
EXECUTORS=${2:-2}
KILL_AFTER=${3:-5}
bench_setup "$RUN" bench-cluster
OUT=target/bench-cluster
rm -rf "$OUT" && mkdir -p "$OUT"
PORT=${PORT:-50090}

# Prints each executor's peak memory, then stops the cluster.
down() {
    for p in $PIDS; do echo "  executor $p: $(peak "$p")"; done
    cluster_down
}

echo "== one process"
$TIME -f "  peak %M KiB" $EXPOSURE "$RUN" local "$OUT/local"
echo "== cluster of $EXECUTORS executors"
cluster_up "$OUT/up-calm.txt" "$EXECUTORS" "$PORT" "$OUT/scratch-calm"
$TIME -f "  client peak %M KiB" $EXPOSURE "$RUN" "$ADDRESS" "$OUT/cluster" "$OUT/local"
down
echo "== cluster of $EXECUTORS executors, the first killed after $KILL_AFTER s"
cluster_up "$OUT/up-killed.txt" "$EXECUTORS" "$PORT" "$OUT/scratch-killed"
$EXPOSURE "$RUN" "$ADDRESS" "$OUT/killed" "$OUT/local" &
JOB=$!
sleep "$KILL_AFTER"
VICTIM=$(echo "$PIDS" | awk '{print $1}')
kill -9 "$VICTIM" && echo "  killed executor $VICTIM at $KILL_AFTER s"
if wait "$JOB"; then echo "  the job completed"; else echo "  the job FAILED (exit $?)"; fi
down

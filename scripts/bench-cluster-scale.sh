#!/usr/bin/env bash
# How the engine's cost grows: revenue_gap's per-declaration map and join (mirror_exposure) on a
# local cluster of 2 executors, over K copies of a committed run's declarations (K = 1 3 10 on the
# 10M bench run: 10M, 30M, 100M rows). Prints, per size: wall time, the peak memory of the
# client, the scheduler and each executor, and the bytes the executors shuffled (their scratch
# directories when the job ends).
#   scripts/bench-cluster-scale.sh [RUN_DIR] [K...]
# RUN_DIR defaults to target/bench-runs/latest (`just bench-scale 10000000` makes it). Outputs go
# to target/bench-cluster-scale/ and are removed after each size.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cluster-lib.sh
RUN=${1:-target/bench-runs/latest}
shift || true
SIZES=${*:-1 3 10}
bench_setup "$RUN" bench-cluster-scale
OUT=target/bench-cluster-scale
PORT=${PORT:-50091}

for K in $SIZES; do
    rm -rf "$OUT" && mkdir -p "$OUT"
    cluster_up "$OUT/up.txt" 2 "$PORT" "$OUT/scratch"
    SCHEDULER=$(pgrep -f "cluster scheduler --port $PORT" | head -1)
    echo "== x$K"
    $TIME -f "  client peak %M KiB, wall %e s" $EXPOSURE "$RUN" "$ADDRESS" "$OUT/exposure" "x$K"
    echo "  output $(du -sb "$OUT/exposure" | cut -f1) bytes; shuffled $(du -sb "$OUT/scratch" | cut -f1) bytes"
    echo "  scheduler $SCHEDULER: $(peak "$SCHEDULER")"
    for p in $PIDS; do echo "  executor $p: $(peak "$p")"; done
    cluster_down
done
rm -rf "$OUT"

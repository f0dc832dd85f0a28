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
RUN=${1:-target/bench-runs/latest}
shift || true
SIZES=${*:-1 3 10}
[ -f "$RUN/manifest.json" ] || { echo "no committed run at $RUN (run: just bench-scale 10000000)"; exit 1; }
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench-cluster-scale needs GNU time at /usr/bin/time (Debian: apt install time) for peak memory"; exit 1; }
cargo build --release -q --workspace --examples
BIN=target/release/mirador
EXPOSURE=target/release/examples/exposure
OUT=target/bench-cluster-scale
PORT=${PORT:-50091}
peak() { awk '/VmHWM/{printf "%.2f GiB", $2/1048576}' "/proc/$1/status" 2>/dev/null || echo ended; }

for K in $SIZES; do
    rm -rf "$OUT" && mkdir -p "$OUT"
    $BIN cluster up --executors 2 --port "$PORT" --work-dir "$OUT/scratch" > "$OUT/up.txt" 2>&1 &
    CLUSTER=$!
    for _ in $(seq 600); do grep -q "^executors:" "$OUT/up.txt" 2>/dev/null && break; sleep 0.1; done
    PIDS=$(sed -n 's/.*pids \[\(.*\)\].*/\1/p' "$OUT/up.txt" | tr -d ',')
    [ -n "$PIDS" ] || { cat "$OUT/up.txt"; exit 1; }
    SCHEDULER=$(pgrep -f "cluster scheduler --port $PORT" | head -1)
    echo "== x$K"
    $TIME -f "  client peak %M KiB, wall %e s" $EXPOSURE "$RUN" "ballista://127.0.0.1:$PORT" "$OUT/exposure" "x$K"
    echo "  output $(du -sb "$OUT/exposure" | cut -f1) bytes; shuffled $(du -sb "$OUT/scratch" | cut -f1) bytes"
    echo "  scheduler $SCHEDULER: $(peak "$SCHEDULER")"
    for p in $PIDS; do echo "  executor $p: $(peak "$p")"; done
    kill "$CLUSTER" 2>/dev/null || true
    wait "$CLUSTER" 2>/dev/null || true
done
rm -rf "$OUT"

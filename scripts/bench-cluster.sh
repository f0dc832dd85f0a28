#!/usr/bin/env bash
# The revenue_gap's per-declaration map and join (mirror_exposure) on a local Ballista cluster,
# against the same plan in one process, on a committed run; then again with an executor killed
# midway. Prints wall time, rows, each process's peak memory, and whether the outputs agree.
#   scripts/bench-cluster.sh [RUN_DIR] [EXECUTORS] [KILL_AFTER_SECONDS]
# RUN_DIR defaults to target/bench-runs/latest (`just bench-scale N` makes it). Outputs go to
# target/bench-cluster/.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-target/bench-runs/latest}
EXECUTORS=${2:-2}
KILL_AFTER=${3:-5}
[ -f "$RUN/manifest.json" ] || { echo "no committed run at $RUN (run: just bench-scale 10000000)"; exit 1; }
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench-cluster needs GNU time at /usr/bin/time (Debian: apt install time) for peak memory"; exit 1; }
cargo build --release -q --workspace --examples
BIN=target/release/mirador
EXPOSURE=target/release/examples/exposure
OUT=target/bench-cluster
rm -rf "$OUT" && mkdir -p "$OUT"
PORT=${PORT:-50090}

# Starts a cluster in the background; sets CLUSTER (its pid) and PIDS (the executors').
up() {
    $BIN cluster up --executors "$EXECUTORS" --port "$PORT" --work-dir "$OUT/scratch-$1" > "$OUT/up-$1.txt" 2>&1 &
    CLUSTER=$!
    for _ in $(seq 600); do grep -q "^executors:" "$OUT/up-$1.txt" 2>/dev/null && break; sleep 0.1; done
    PIDS=$(sed -n 's/.*pids \[\(.*\)\].*/\1/p' "$OUT/up-$1.txt" | tr -d ',')
    [ -n "$PIDS" ] || { cat "$OUT/up-$1.txt"; exit 1; }
}
# Prints each executor's peak memory (VmHWM), then stops the cluster.
down() {
    for p in $PIDS; do
        PEAK=$(awk '/VmHWM/{printf "%.0f MiB", $2/1024}' /proc/$p/status 2>/dev/null || true)
        echo "  executor $p: ${PEAK:-ended}"
    done
    kill "$CLUSTER" 2>/dev/null || true
    wait "$CLUSTER" 2>/dev/null || true
}

echo "== one process"
$TIME -f "  peak %M KiB" $EXPOSURE "$RUN" local "$OUT/local"
echo "== cluster of $EXECUTORS executors"
up calm
$TIME -f "  client peak %M KiB" $EXPOSURE "$RUN" "ballista://127.0.0.1:$PORT" "$OUT/cluster" "$OUT/local"
down
echo "== cluster of $EXECUTORS executors, the first killed after $KILL_AFTER s"
up killed
$EXPOSURE "$RUN" "ballista://127.0.0.1:$PORT" "$OUT/killed" "$OUT/local" &
JOB=$!
sleep "$KILL_AFTER"
VICTIM=$(echo "$PIDS" | awk '{print $1}')
kill -9 "$VICTIM" && echo "  killed executor $VICTIM at $KILL_AFTER s"
if wait "$JOB"; then echo "  the job completed"; else echo "  the job FAILED (exit $?)"; fi
down

#!/usr/bin/env bash
# Memory that does not grow with history: a synthetic world of TOTAL declarations over MONTHS
# months (default 30,000,000 over 36, i.e. 10M a year) is written one parquet file per month, then
# pipelines/carried.toml runs once per month and, for the last month, once per day, each run handed
# only its new declarations and the inspection outcomes decided in its period, and continuing from
# the previous run's state (model, entity history, training window, k-means peers, rank window). Records each run's wall time, peak memory, rows and the history
# behind it (target/bench-results/history-TOTAL.csv).
#   scripts/bench-history.sh                     # 30M over 36 months
#   scripts/bench-history.sh 3000000 12          # smaller
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL=${1:-30000000}
MONTHS=${2:-36}
cargo build --release -q --workspace
BIN=target/release/mirador
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench-history needs GNU time at /usr/bin/time (Debian: apt install time) for peak memory"; exit 1; }
W=${HISTORY_WORLD:-target/history-world}
OUT=${HISTORY_RUNS:-target/history-runs}
rm -rf "$OUT"
mkdir -p target/bench-results
# The world is deterministic: one already written with the same size is reused.
if [ ! -d "$W/outcomes" ] || ! python3 -c "import json,sys; p=json.load(open('$W/world.json'))['params']; sys.exit(not (p['declarations']==$TOTAL and p['months']==$MONTHS))" 2>/dev/null; then
    rm -rf "$W"
    $TIME -f "synth: %e s, %M KiB peak" $BIN synth --declarations "$TOTAL" --months "$MONTHS" --by-month --out "$W" > /dev/null
fi
CSV=target/bench-results/history-$TOTAL.csv
echo "run,declarations,history_before,seconds,peak_rss_mib,fraud_model_seconds,retrained,window_rows,outcomes_late,outcomes_unapplied" > "$CSV"
HISTORY=0
# A night without decided outcomes is handed an empty feed.
NO_OUTCOMES="$W/no-outcomes.csv"
echo "declaration_id,item_no,decided_on,fraud,critical_fraud" > "$NO_OUTCOMES"
run() { # run <label> <declarations file> <outcomes file>
    $TIME -o target/bench-results/history-time.txt -f "%e %M" $BIN -q run pipelines/carried.toml --out "$OUT" \
        --source "declarations=$2" --source "inspection_outcomes=$3" --source "mirror_flows=$W/mirror_flows.parquet" \
        --source "tariffs=$W/tariffs.parquet" --source "fx_rates=$W/fx_rates.parquet" > /dev/null
    read -r WALL RSS_KIB < target/bench-results/history-time.txt
    ROW=$(python3 - "$OUT/latest/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
st = {s["name"]: s for s in m["stages"]}
fm = st["fraud_model"]
o = fm["metrics"].get("inspection_outcomes") or {}
print(st["ingest"]["rows_out"]["declarations"], round(fm.get("seconds", 0), 1), str(fm["metrics"].get("retrained")).lower(),
      fm["metrics"].get("window_rows"), o.get("late", 0), o.get("unapplied", 0), sep=",")
PY
)
    ROWS=${ROW%%,*}
    echo "$1,$ROWS,$HISTORY,$WALL,$((RSS_KIB / 1024)),${ROW#*,}" | tee -a "$CSV"
    HISTORY=$((HISTORY + ROWS))
}
# Every month but the last as one run each (a monthly batch: the model retrains every time)…
MONTH_FILES=("$W"/declarations/*.parquet)
LAST=${MONTH_FILES[${#MONTH_FILES[@]}-1]}
for f in "${MONTH_FILES[@]:0:${#MONTH_FILES[@]}-1}"; do
    m=$(basename "$f" .parquet)
    run "$m" "$f" "$W/outcomes/$m.parquet"
done
# …then the last month night by night, as a scheduler runs it: most nights the carried model
# scores, and it retrains once its newest training day is retrain-every-days old.
rm -rf "$W/days" "$W/outcome-days"
cargo run --release -q --example split_by_day -- "$LAST" "$W/days" > /dev/null
cargo run --release -q --example split_by_day -- "$W/outcomes/$(basename "$LAST")" "$W/outcome-days" decided_on > /dev/null
for f in "$W"/days/*.parquet; do
    d=$(basename "$f" .parquet)
    outcomes="$W/outcome-days/$d.parquet"
    [ -f "$outcomes" ] || outcomes="$NO_OUTCOMES"
    run "$d" "$f" "$outcomes"
done
echo "history: $HISTORY declarations; per-run figures in $CSV"

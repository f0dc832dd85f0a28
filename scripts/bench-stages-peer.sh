#!/usr/bin/env bash
# Every stage alone, Mirador against the Python peer (../shared/peer), on the world that
# ../shared/peer/bench.sh writes (/tmp/bench/N, with at least one committed Mirador run of its
# bench.toml there). In a whole run revenue_gap and kmeans_scores share the cores; here each stage
# has them to itself. Alternates, RUNS times: `mirador run --only STAGE --force` (the stage's
# seconds from the run manifest: reading what it needs that is not in memory, computing, writing
# and checking its outputs) and the peer's stage function on the same run's datasets
# (scripts/peer_stage.py: computing and writing). Prints the medians; every figure is kept in
# /tmp/bench/N/log/stages-TAG.jsonl.
#   scripts/bench-stages-peer.sh [N] [RUNS]          # default 1000000 5
# Environment: MIRADOR (default target/release/mirador), PY (python with polars, scikit-learn,
# lightgbm, matplotlib; default python3), TAG, STAGES (default: all six, in pipeline order).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-1000000}
RUNS=${2:-5}
MIRADOR=$(realpath "${MIRADOR:-$REPO/target/release/mirador}")
PY=${PY:-python3}
TAG=${TAG:-$(date +%H%M%S)}
STAGES=${STAGES:-ingest revenue_gap kmeans_scores fraud_model rank report}
B=/tmp/bench/$N
[ -e "$B/runs/latest/manifest.json" ] || { echo "no committed run in $B/runs: run ../shared/peer/bench.sh $N 1 first"; exit 1; }
LOG=$B/log/stages-$TAG.jsonl
mkdir -p "$B/log"
: > "$LOG"
cd "$B"
RUN=$(readlink -f runs/latest)
rm -rf "$B/stage-input"
cp -a "$RUN" "$B/stage-input"   # the peer reads this copy: --only runs replace latest
trap 'rm -rf "$B/stage-input"' EXIT
for i in $(seq "$RUNS"); do
    for stage in $STAGES; do
        "$MIRADOR" -q run pipelines/bench.toml --only "$stage" --force > /dev/null
        "$PY" - "$stage" "$(uptime | sed 's/.*load average: //')" >> "$LOG" <<'PY'
import json, sys
m = json.load(open("runs/latest/manifest.json"))
s = next(s for s in m["stages"] if s["name"] == sys.argv[1])
print(json.dumps({"who": "mirador", "stage": sys.argv[1], "seconds": round(s["seconds"], 3), "load": sys.argv[2]}))
PY
        WORLD="$B/world" "$PY" "$REPO/scripts/peer_stage.py" "$B/stage-input" "$stage" 1 "$B/peer-stage" 2> /dev/null \
            | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"who":"peer","stage":r["stage"],"seconds":r["seconds"][0],"load":sys.argv[1]}))' "$(uptime | sed 's/.*load average: //')" >> "$LOG"
    done
done
"$PY" - "$LOG" $STAGES <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
# Each Mirador run is paired with the peer run right after it: the ratio of a pair is less
# moved by the machine's load than the medians are.
print("| stage | Mirador s (median, range) | peer s (median, range) | peer ÷ Mirador (median of pairs, range) |")
print("|---|---:|---:|---:|")
for stage in sys.argv[2:]:
    m = [r["seconds"] for r in rows if r["stage"] == stage and r["who"] == "mirador"]
    p = [r["seconds"] for r in rows if r["stage"] == stage and r["who"] == "peer"]
    ratios = [b / a for a, b in zip(m, p)]
    mm, pm, rm = statistics.median(m), statistics.median(p), statistics.median(ratios)
    print(f"| {stage} | {mm:.2f} ({min(m):.2f}–{max(m):.2f}) | {pm:.2f} ({min(p):.2f}–{max(p):.2f}) | {rm:.2f}× ({min(ratios):.2f}–{max(ratios):.2f}) |")
print(f"({len(m)} runs each, alternating; load averages {rows[0]['load']} at the start, {rows[-1]['load']} at the end)")
PY

#!/usr/bin/env bash
# The whole nightly pipeline at scale: for each N given (default 1,000,000 and 10,000,000), writes
# a synthetic world of N declarations as parquet, runs pipelines/bench.toml on it and records the
# per-stage wall time, rows/s and the run's peak memory, as a table and as JSON
# (target/bench-results/scale-N.json).
#   scripts/bench-scale.sh                 # 1M and 10M
#   scripts/bench-scale.sh 1000000         # one size
#   KEEP_WORLD=1 scripts/bench-scale.sh 10000000   # reuse the world of the last run of this size
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(1000000 10000000)
cargo build --release -q --workspace
BIN=target/release/mirador
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench-scale needs GNU time at /usr/bin/time (Debian: apt install time) for peak memory"; exit 1; }
mkdir -p target/bench-results
for N in "${SIZES[@]}"; do
    rm -rf target/bench-runs
    echo "== $N declarations"
    # The world is the same for the same N (synth is seeded): KEEP_WORLD=1 skips writing it again.
    if [ "${KEEP_WORLD:-0}" = 1 ] && [ "$(cat target/bench-world/.declarations 2>/dev/null)" = "$N" ]; then
        echo "synth: kept target/bench-world"
    else
        rm -rf target/bench-world
        $TIME -f "synth: %e s, %M KiB peak" $BIN synth --declarations "$N" --format parquet --out target/bench-world > /dev/null
        echo "$N" > target/bench-world/.declarations
    fi
    $TIME -o target/bench-results/time-$N.txt -f "%e %M" $BIN -q run pipelines/bench.toml > /dev/null
    read -r WALL RSS_KIB < target/bench-results/time-$N.txt
    python3 - "$N" "$WALL" "$RSS_KIB" <<'PY' || echo "(python3 not found: see target/bench-runs/latest/manifest.json; $WALL s, $RSS_KIB KiB)"
import json, sys
n, wall, rss = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
m = json.load(open("target/bench-runs/latest/manifest.json"))
rows = [{"stage": s["name"], "seconds": s.get("seconds", 0.0), "rows_per_s": n / s["seconds"] if s.get("seconds") else None} for s in m["stages"]]
out = {"declarations": n, "wall_seconds": wall, "peak_rss_mib": rss / 1024, "stages": rows}
json.dump(out, open(f"target/bench-results/scale-{n}.json", "w"), indent=2)
PY
done
python3 - "${SIZES[@]}" <<'PY' || true
import json, sys
runs = [json.load(open(f"target/bench-results/scale-{n}.json")) for n in sys.argv[1:]]
print()
print("| stage | " + " | ".join(f"{r['declarations']:,} s | rows/s" for r in runs) + " |")
print("|---|" + "---:|---:|" * len(runs))
for i, s in enumerate(runs[0]["stages"]):
    cells = []
    for r in runs:
        st = r["stages"][i]
        cells += [f"{st['seconds']:.1f}", f"{st['rows_per_s']:,.0f}" if st["rows_per_s"] else "-"]
    print(f"| {s['stage']} | " + " | ".join(cells) + " |")
print("| **whole run** | " + " | ".join(f"**{r['wall_seconds']:.1f}** | peak {r['peak_rss_mib'] / 1024:.1f} GiB" for r in runs) + " |")
PY

#!/usr/bin/env bash
# Runs the nightly stages on a synthetic world of N declarations and prints per-stage wall time,
# rows/s and the peak memory of the run (also written as JSON to target/bench-runs/scale-N.json).
#   scripts/bench-scale.sh 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
cargo build --release -q --workspace
BIN=target/release/mirador
rm -rf target/bench-world target/bench-runs
/usr/bin/time -f "%e s, %M KiB peak" $BIN synth --declarations "$N" --format parquet --out target/bench-world
/usr/bin/time -o target/bench-time.txt -f "%e %M" $BIN -q run pipelines/bench.toml
read -r WALL RSS_KIB < target/bench-time.txt
mkdir -p target/bench-runs
python3 - "$N" "$WALL" "$RSS_KIB" <<'PY' || echo "(python3 not found: see target/bench-runs/latest/manifest.json)"
import json, sys
n, wall, rss = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
m = json.load(open("target/bench-runs/latest/manifest.json"))
rows = []
for s in m["stages"]:
    secs = s.get("seconds", 0.0)
    rows.append({"stage": s["name"], "seconds": secs, "rows_per_s": n / secs if secs else None})
out = {"declarations": n, "wall_seconds": wall, "peak_rss_mib": rss / 1024, "stages": rows}
json.dump(out, open(f"target/bench-runs/scale-{n}.json", "w"), indent=2)
print(f"{n} declarations: {wall:.1f} s wall, {rss/1024:.0f} MiB peak")
for r in rows:
    print(f"  {r['stage']:<14} {r['seconds']:8.2f} s  {r['rows_per_s'] or 0:12.0f} rows/s")
PY

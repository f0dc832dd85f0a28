"""Times one stage function of the Python peer (../shared/peer/mirador_peer.py) alone, on the
datasets of a committed Mirador run: `revenue_gap` on its declarations, mirror flows and tariffs;
`rank` on its declarations, fraud scores, k-means scores and mirror exposure (the rows the
peer's own ingest and stages give, in the same order). The peer writes its outputs as it does in
its own run (parquet, zstd level 1; rank also its CSVs), under OUT.

    python3 scripts/peer_stage.py RUN_DIR revenue_gap|rank [REPS] [OUT]

Prints one JSON line: the stage and the seconds of each repetition.
"""
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import polars as pl

# The peer beside the checkout (`../shared/peer`, as ../shared/peer/README.md runs it), or PEER.
PEER = Path(os.environ.get("PEER", Path(__file__).resolve().parent.parent.parent / "shared" / "peer" / "mirador_peer.py"))


def main():
    run, stage = Path(sys.argv[1]), sys.argv[2]
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    out = Path(sys.argv[4]) if len(sys.argv) > 4 else Path("/tmp/peer-stage-out")
    out.mkdir(parents=True, exist_ok=True)
    spec = importlib.util.spec_from_file_location("mirador_peer", PEER)
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    read = lambda name: pl.read_parquet(run / f"{name}.parquet")
    decl = read("declarations")
    if stage == "revenue_gap":
        mirror, tariffs = read("mirror_flows"), read("tariffs")
        call = lambda: peer.stage_revenue_gap(decl, mirror, tariffs, out, {})
    elif stage == "rank":
        fraud, kmeans, exposure = read("fraud_scores"), read("kmeans_scores"), read("mirror_exposure")
        call = lambda: peer.stage_rank(decl, fraud, kmeans, exposure, out, {})
    else:
        sys.exit(f"unknown stage {stage}: revenue_gap or rank")
    seconds = []
    for _ in range(reps):
        t = time.perf_counter()
        call()
        seconds.append(round(time.perf_counter() - t, 3))
    print(json.dumps({"stage": stage, "seconds": seconds}))


if __name__ == "__main__":
    main()

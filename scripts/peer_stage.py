"""Times one stage function of the Python peer (../shared/peer/mirador_peer.py) alone, on the
datasets of a committed Mirador run (the rows the peer's own ingest and stages give, in the same
order): `ingest` on the run's world (WORLD, the directory of the source files); `revenue_gap` on
its declarations, mirror flows and tariffs; `kmeans_scores` on its declarations; `fraud_model`
on its declarations, k-means scores and mirror exposure; `rank` on its declarations, fraud
scores, k-means scores and mirror exposure; `report` on the datasets its charts read (and ingest's reconciliation from the run's manifest). The peer
writes its outputs as it does in its own run (parquet, zstd level 1; rank also its CSVs; report
its charts and page), under OUT.

    python3 scripts/peer_stage.py RUN_DIR STAGE [REPS] [OUT]

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
    # Rows are explained by path attribution, Mirador's method (the peer's `--explain saabas`).
    peer.EXPLAIN = "saabas"
    read = lambda name: pl.read_parquet(run / f"{name}.parquet")
    decl = read("declarations")
    if stage == "ingest":
        world = Path(os.environ["WORLD"])
        call = lambda: peer.stage_ingest(world, out, {})
    elif stage == "kmeans_scores":
        call = lambda: peer.stage_kmeans(decl, out, {})
    elif stage == "fraud_model":
        kmeans, exposure = read("kmeans_scores"), read("mirror_exposure")
        call = lambda: peer.stage_fraud_model(decl, kmeans, exposure, out, {}, peer.Clock())
    elif stage == "report":
        frames = [read(n) for n in ("quarantine", "declarations", "gap_by_cell", "gap_by_chapter", "gap_by_partner",
                                    "kmeans_scores", "kmeans_groups", "fraud_scores", "fraud_importance")]
        # The data-quality chart reads ingest's reconciliation, as the run's manifest records it.
        manifest = json.loads((run / "manifest.json").read_text())
        ingest = next(s["metrics"] for s in manifest["stages"] if s["name"] == "ingest")
        call = lambda: peer.stage_report(out, *frames, {"ingest": ingest})
    elif stage == "revenue_gap":
        mirror, tariffs = read("mirror_flows"), read("tariffs")
        call = lambda: peer.stage_revenue_gap(decl, mirror, tariffs, out, {})
    elif stage == "rank":
        fraud, kmeans, exposure = read("fraud_scores"), read("kmeans_scores"), read("mirror_exposure")
        call = lambda: peer.stage_rank(decl, fraud, kmeans, exposure, out, {})
    else:
        sys.exit(f"unknown stage {stage}: ingest, revenue_gap, kmeans_scores, fraud_model, rank or report")
    seconds = []
    for _ in range(reps):
        t = time.perf_counter()
        call()
        seconds.append(round(time.perf_counter() - t, 3))
    print(json.dumps({"stage": stage, "seconds": seconds}))


if __name__ == "__main__":
    main()

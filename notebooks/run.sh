#!/usr/bin/env bash
# Executes notebooks/walkthrough.ipynb top to bottom against a run (default: the latest nightly run
# on the sample data). Needs Python 3 with polars, nbformat, nbclient and ipykernel; says so and
# exits 0 without them, so machines without Python are not failed by it.
set -euo pipefail
cd "$(dirname "$0")"
RUN="${MIRADOR_RUN:-../reports/nightly/latest}"
if ! command -v python3 >/dev/null; then
    echo "notebook: python3 not found; skipped (install Python 3 with polars, nbformat, nbclient, ipykernel)"
    exit 0
fi
if ! python3 -c "import polars, nbformat, nbclient, ipykernel" 2>/dev/null; then
    echo "notebook: Python packages missing; skipped (pip install polars nbformat nbclient ipykernel)"
    exit 0
fi
if [ ! -f "$RUN/manifest.json" ]; then
    echo "notebook: no run at $RUN; run the nightly pipeline first (cargo run --release -- run pipelines/nightly.toml)" >&2
    exit 1
fi
MIRADOR_RUN="$(cd "$RUN" && pwd)" python3 - <<'PY'
import nbformat
from nbclient import NotebookClient
nb = nbformat.read("walkthrough.ipynb", as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3").execute()
print("notebook: walkthrough.ipynb ran top to bottom without errors")
PY

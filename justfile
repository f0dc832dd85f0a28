# Mirador recipes for analysts and developers. Install just with `cargo install just`.

[private]
default:
    @just --list --unsorted

# Run a pipeline on its configured data (default: the nightly run on sample_data); extra args go to `mirador run`
run pipeline="nightly" *args:
    cargo run --release -p mirador-cli -- run pipelines/{{pipeline}}.toml {{args}}

# The nightly run on the bundled sample data, with the report
nightly *args:
    cargo run --release -p mirador-cli -- run pipelines/nightly.toml {{args}}

# Re-run one stage (and nothing else), reusing the other stages' outputs from the latest run
stage name pipeline="nightly" *args:
    cargo run --release -p mirador-cli -- run pipelines/{{pipeline}}.toml --only {{name}} --force {{args}}

# Re-run a stage and everything downstream of it
from name pipeline="nightly" *args:
    cargo run --release -p mirador-cli -- run pipelines/{{pipeline}}.toml --from {{name}} --force {{args}}

# Backfill past months, one run each as of the month's end, e.g. `just backfill 2023-01..2023-03`
# (runs land in reports/<pipeline>/periods/<YYYY-MM>/; periods already committed are skipped)
backfill periods pipeline="nightly" *args:
    cargo run --release -p mirador-cli -- run pipelines/{{pipeline}}.toml --period {{periods}} {{args}}

# The nightly run with carried state, handed only the night's declarations, e.g.
# `just carried incoming/2024-03-01.csv` (no file: the pipeline's own, for the first run)
carried *files:
    #!/usr/bin/env bash
    set -euo pipefail
    args=()
    for f in {{files}}; do args+=(--source "declarations=$f"); done
    cargo run --release -p mirador-cli -- run pipelines/carried.toml ${args[@]+"${args[@]}"}

# Load a report in headless Chromium at 1280 and 800 px and fail if the page scrolls sideways or a
# table or chart runs past its card (default: the latest nightly report; skipped without Chromium)
report-check *pages:
    scripts/report-check.sh {{pages}}

# Copy a committed run's row-level datasets, hive-partitioned by period (`<dataset>/period=YYYY-MM/`),
# for DataFusion, Spark, DuckDB or polars (see docs/scale-out.md); extra args go to `mirador export`
export-hive run="reports/nightly/latest" out="reports/nightly-export" *args:
    cargo run --release -p mirador-cli -- export {{run}} --layout hive --out {{out}} {{args}}

# A Ballista cluster on this machine: a scheduler (ballista://127.0.0.1:50050) and N executors, until Ctrl-C
cluster executors="2" *args:
    cargo run --release -p mirador-cli -- cluster up --executors {{executors}} {{args}}

# A pipeline run on a local cluster it starts and stops: just run-on-cluster pipelines/nightly.toml 2 --out /tmp/x
run-on-cluster pipeline="pipelines/nightly.toml" executors="2" *args:
    scripts/run-on-cluster.sh {{pipeline}} {{executors}} {{args}}

# mirror_exposure on a local cluster against one process, and with an executor killed midway
bench-cluster *args:
    scripts/bench-cluster.sh {{args}}

# How the engine's cost grows: mirror_exposure on 1, 3 and 10 copies of the 10M bench run (10M, 30M, 100M rows)
bench-cluster-scale *args:
    scripts/bench-cluster-scale.sh {{args}}

# Check a pipeline file without running it
check pipeline="nightly":
    cargo run --release -p mirador-cli -- check pipelines/{{pipeline}}.toml

# Regenerate the seeded sample data
synth seed="42":
    cargo run --release -p mirador-cli -- synth --seed {{seed}} --out sample_data

# The fraud model on the public KCS declarations (needs ../shared/datasets)
kcs:
    cargo run --release -p mirador-cli -- run pipelines/kcs.toml

# The inspection backtest on a shifting synthetic world (fraud moves to new importers and goods
# from 2023-05): five policies replayed week by week; outputs in reports/backtest/backtest/
backtest seed="42" declarations="60000":
    cargo run --release -p mirador-cli -- synth --seed {{seed}} --declarations {{declarations}} --shift-period 2023-05 --shift-share 0.7 --out target/backtest-world
    cargo run --release -p mirador-cli -- backtest pipelines/backtest.toml --from 2023-04 --to 2023-12 --budget 5%

# The revenue forecasts on a four-year seasonal world (2022-01 to 2025-12) with a leak planted in HS
# chapter 61 from 2025-05: the nightly stages with revenue_forecast; outputs and report in
# target/forecast-runs/
forecast seed="42" declarations="1000000":
    cargo run --release -p mirador-cli -- synth --seed {{seed}} --declarations {{declarations}} --start-period 2022-01 --months 48 --seasonality 0.3 --leak-chapter 61 --leak-period 2025-05 --out target/forecast-world
    cargo run --release -p mirador-cli -- run pipelines/forecast.toml

# The inspection backtest on the public KCS declarations: weekly, 5 %, from 2020-07 (needs ../shared/datasets)
backtest-kcs *args:
    cargo run --release -p mirador-cli -- backtest pipelines/kcs.toml --from 2020-07 --to 2021-06 --budget 5% {{args}}

# The backtest benchmark: 52 weekly steps, five policies, on a synthetic year of about 1.2M
# declarations (one month of history before it); the timings are printed and in backtest.json
bench-backtest n="1300000":
    cargo run --release -p mirador-cli -- synth --declarations {{n}} --months 13 --format parquet --out target/bench-world
    cargo run --release -p mirador-cli -- backtest pipelines/bench.toml --from 2023-02 --to 2024-01 --budget 5% --out target/bench-backtest

# Run the tests (exactly what CI runs)
test:
    cargo test --workspace --release

# Format, lint, test
check-all: fmt-check clippy test

fmt-check:
    cargo fmt --all -- --check

clippy:
    cargo clippy --workspace --release --all-targets

# Benchmarks: the whole nightly pipeline on synthetic worlds of 1M and 10M declarations (per-stage
# time, rows/s, peak memory; JSON in target/bench-results/), then the micro-benchmarks
bench: bench-scale bench-micro

# Micro-benchmarks of the hot kernels: ingest read/validate, k-means, GBDT histograms/scoring/SHAP
bench-micro:
    cargo bench --workspace --bench validate --bench group --bench kernels

# Execute the analyst notebook against the latest nightly run (needs Python + jupyter)
notebook:
    bash notebooks/run.sh

# The nightly pipeline on synthetic worlds of the given sizes (default 1M and 10M), e.g. `just bench-scale 1000000`
bench-scale *sizes:
    scripts/bench-scale.sh {{sizes}}

# Memory that does not grow with history: carried-state runs month by month over a synthetic world
# of TOTAL declarations (default 30M over 36 months); per-run time and peak memory in target/bench-results/
bench-history total="30000000" months="36":
    scripts/bench-history.sh {{total}} {{months}}

# Against the Python peer (../shared/peer; PY: a Python with its packages): the whole bench pipeline
# side by side on one world of N declarations, RUNS alternating runs each, then every stage alone
# (bench.sh copies bench.toml beside the world; bench.toml extends nightly.toml, copied here)
bench-peer n="1000000" runs="3":
    cargo build --release
    mkdir -p /tmp/bench/{{n}}/pipelines && cp pipelines/nightly.toml /tmp/bench/{{n}}/pipelines/
    MIRADOR=$PWD/target/release/mirador ../shared/peer/bench.sh {{n}} {{runs}} --explain saabas
    scripts/bench-stages-peer.sh {{n}} {{runs}}

# Ingest, then the k-means and revenue-gap stages on its output, on a streamed synthetic world of N declarations
bench-stages n="10000000":
    cargo run --release -- synth --declarations {{n}} --format parquet --out target/bench-world
    cargo run --release --example stage_bench -- target/bench-world

#!/usr/bin/env python3
"""Trains LightGBM on the rows of the mirador-gbdt training bench, for a speed and AUC comparison.

The rows come from `crates/mirador-gbdt/examples/export_bench_data.rs`, which writes the bench's
training and held-out rows as CSV and trains mirador-gbdt on them itself. To reproduce (from the
repository root; needs `pip install lightgbm pandas scikit-learn`):

    cargo run --release --example export_bench_data -- target/bench-data 1000000
    python3 scripts/lightgbm_compare.py target/bench-data

Both sides use 2 threads, 100 trees of at most 63 leaves and depth 8, learning rate 0.1, and the
other mirador-gbdt `Params` defaults where LightGBM has the same parameter (see PARAMS). Only
`lgb.train` is timed as training; building the binned `lgb.Dataset` (which mirador-gbdt does inside
`Booster::train`) is timed and printed separately, as is reading the CSV files (not timed at all).
"""

import argparse
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

CATEGORICAL = [f"cat_{i}" for i in range(5)]

# mirador-gbdt's bench parameters (`bench_params()` in benches/common/synthetic.rs) and the
# `Params` defaults behind them, in LightGBM's names.
PARAMS = {
    "objective": "binary",
    "num_iterations": 100,
    "learning_rate": 0.1,
    "num_leaves": 63,
    "max_depth": 8,
    "min_data_in_leaf": 20,
    "min_sum_hessian_in_leaf": 1e-3,
    "lambda_l2": 1.0,  # LightGBM's default is 0
    "min_gain_to_split": 0.0,
    # mirador-gbdt keeps up to 255 value bins plus one bin for missing values; LightGBM counts the
    # NaN bin in max_bin, so 256 gives its numeric features (all with NaNs) the same 255 value bins.
    "max_bin": 256,
    "bin_construct_sample_cnt": 200_000,  # mirador-gbdt also learns bin bounds from 200,000 rows
    "feature_fraction": 1.0,
    "bagging_fraction": 1.0,
    "bagging_freq": 0,
    "cat_smooth": 10.0,
    "max_cat_threshold": 32,
    "max_cat_to_onehot": 4,
    "min_data_per_group": 50,  # LightGBM's default is 100
    "cat_l2": 0.0,  # mirador-gbdt regularises categorical splits with lambda_l2 only
    "seed": 42,
    "num_threads": 2,
    "verbosity": -1,
}


def load(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features as a float64 matrix (missing values as NaN), labels, and feature names."""
    # pandas 3 parses floats exactly by default (and deprecates the option); older versions need it.
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    frame = pd.read_csv(path, **exact)
    names = [name for name in frame.columns if name != "label"]
    return frame[names].to_numpy(dtype=np.float64), frame["label"].to_numpy(dtype=np.float64), names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path, nargs="?", default=Path("target/bench-data"))
    parser.add_argument("--threads", type=int, default=PARAMS["num_threads"])
    parser.add_argument("--max-bin", type=int, default=PARAMS["max_bin"])
    parser.add_argument("--verbose", action="store_true", help="show LightGBM's own log (e.g. row- or col-wise histograms)")
    args = parser.parse_args()
    params = dict(PARAMS, num_threads=args.threads, max_bin=args.max_bin, verbosity=1 if args.verbose else -1)

    started = time.perf_counter()
    x_train, y_train, names = load(args.data_dir / "train.csv")
    x_held_out, y_held_out, _ = load(args.data_dir / "held_out.csv")
    print(f"read {len(y_train)} + {len(y_held_out)} rows in {time.perf_counter() - started:.2f} s")

    started = time.perf_counter()
    train = lgb.Dataset(x_train, label=y_train, feature_name=names, categorical_feature=CATEGORICAL, params=params, free_raw_data=False)
    train.construct()
    construct_seconds = time.perf_counter() - started
    bins = {name: train.feature_num_bin(name) for name in ("num_0", "cat_4")}

    started = time.perf_counter()
    booster = lgb.train(params, train)
    train_seconds = time.perf_counter() - started

    scores = booster.predict(x_held_out, num_threads=args.threads)
    held_out_auc = roc_auc_score(y_held_out, scores)
    print(
        f"lightgbm {lgb.__version__}: Dataset construction {construct_seconds:.2f} s (bins incl. missing: {bins}); "
        f"trained {booster.num_trees()} trees on {len(y_train)} rows x {len(names)} features in {train_seconds:.2f} s "
        f"({args.threads} threads); held-out AUC {held_out_auc:.4f}"
    )


if __name__ == "__main__":
    main()

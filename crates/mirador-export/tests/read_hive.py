"""Reads datasets of a Mirador export with polars' own hive partitioning and writes each, ordered
by period (stable, the null partition last), to a plain parquet file for the Rust test to compare.

    python3 read_hive.py EXPORT_DIR OUT_DIR DATASET...
"""
import sys

import polars as pl

export, out, datasets = sys.argv[1], sys.argv[2], sys.argv[3:]
for name in datasets:
    df = pl.scan_parquet(f"{export}/{name}/", hive_partitioning=True).collect()
    assert df.schema["period"] == pl.String, f"{name}: period read as {df.schema['period']}"
    assert df.columns.count("period") == 1, f"{name}: {df.columns}"
    df.sort("period", nulls_last=True, maintain_order=True).write_parquet(f"{out}/{name}.parquet")
    print(name, df.height, df["period"].null_count())

"""Reads recflow's ETL outputs with pandas, pyarrow and polars; prints row counts per reader as JSON.
usage: check_parquet_readers.py PROCESSED_DIR"""
import json
import sys

import pandas as pd
import polars as pl
import pyarrow.parquet as pq

d = sys.argv[1]
out = {}
for name, read in [
    ("pandas", lambda f: pd.read_parquet(f"{d}/{f}")),
    ("pyarrow", lambda f: pq.read_table(f"{d}/{f}").to_pandas()),
    ("polars", lambda f: pl.read_parquet(f"{d}/{f}").to_pandas()),
]:
    inter = read("interactions.parquet")
    assert list(inter.columns)[:3] == ["user_idx", "item_idx", "rating"], inter.columns
    pop = read("popular_items.parquet")
    out[name] = dict(
        interactions=len(inter),
        user_map=len(read("user_map.parquet")),
        item_map=len(read("item_map.parquet")),
        popular_first=str(pop["item_id"].iloc[0]),
    )
print(json.dumps(out))

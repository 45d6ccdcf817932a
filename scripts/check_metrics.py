"""Independent evaluator: recomputes recflow's metrics from a model folder's exported factors and a
saved split, with numpy only, following ../shared/METRICS.md. Prints a JSON object of metrics.

usage: check_metrics.py MODEL_DIR SPLIT_DIR K [implicit]
SPLIT_DIR holds train.parquet and test.parquet (user_idx, item_idx, rating), as written by
`recflow eval --save-split SPLIT_DIR`."""
import glob
import json
import sys

import numpy as np
import pyarrow.parquet as pq

model_dir, split_dir, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
implicit = len(sys.argv) > 4 and sys.argv[4] == "implicit"


def factors(sub):
    t = pq.read_table(sorted(glob.glob(f"{model_dir}/{sub}/*.parquet"))).to_pandas().sort_values("id")
    return np.vstack(t["features"].to_numpy()).astype(np.float64)


U, V = factors("userFactors"), factors("itemFactors")
tr = pq.read_table(f"{split_dir}/train.parquet").to_pandas()
te = pq.read_table(f"{split_dir}/test.parquet").to_pandas()
n_items = len(V)
known_u = set(tr.user_idx.unique())
known_i = set(tr.item_idx.unique())

out = {}
if not implicit:
    ok = te[te.user_idx.isin(known_u) & te.item_idx.isin(known_i)]
    pred = np.einsum("ij,ij->i", U[ok.user_idx.to_numpy()], V[ok.item_idx.to_numpy()])
    err = pred - ok.rating.to_numpy()
    out["rmse"] = float(np.sqrt(np.mean(err**2)))
    out["mae"] = float(np.mean(np.abs(err)))

seen = tr.groupby("user_idx")["item_idx"].apply(np.array).to_dict()
rel = te.groupby("user_idx")["item_idx"].apply(set).to_dict()
disc = 1.0 / np.log2(np.arange(2, k + 2))
P = R = N = M = 0.0
recommended = set()
users = sorted(rel)
for u in users:
    items = rel[u]
    if u not in known_u:
        continue  # counts as zero, stays in the average
    s = V @ U[u]
    s[seen.get(u, [])] = -np.inf
    order = np.lexsort((np.arange(n_items), -s))[:k]
    order = [i for i in order if np.isfinite(s[i])]
    recommended.update(order)
    hits = np.array([1.0 if i in items else 0.0 for i in order] + [0.0] * (k - len(order)))
    P += hits.sum() / k
    R += hits.sum() / len(items)
    N += (hits * disc).sum() / disc[: min(len(items), k)].sum()
    prec_at = np.cumsum(hits) / np.arange(1, k + 1)
    M += (prec_at * hits).sum() / min(len(items), k)
n = len(users)
out.update({f"precision_at_{k}": P / n, f"recall_at_{k}": R / n, f"ndcg_at_{k}": N / n, f"map_at_{k}": M / n,
            f"coverage_at_{k}": len(recommended) / n_items, "users": n})
print(json.dumps(out))

"""Scores a recflow model with the peers' own evaluator (../shared/peers/evalcommon.py), so recflow
and the peers are compared by the same code on the same split. Prints one dict like the peers do.
usage: eval_with_peer_evaluator.py MODEL_DIR SPLIT_DIR (train.csv, test.csv from split_ml100k.py)"""
import glob
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "shared" / "peers"))
from evalcommon import load, ranking, set_item_ids  # noqa: E402

model, d = sys.argv[1], sys.argv[2]


def factors(sub):
    t = pq.read_table(sorted(glob.glob(f"{model}/{sub}/*.parquet"))).to_pandas().sort_values("id")
    return np.vstack(t["features"].to_numpy()).astype(np.float64)


U, V = factors("userFactors"), factors("itemFactors")
tr, te = load(d)
um = pq.read_table(f"{model}/user_map.parquet").to_pandas()
im = pq.read_table(f"{model}/item_map.parquet").to_pandas()
# Ids as the CSVs hold them (ints), restricted to what the model trained on.
users = {int(u): int(i) for i, u in zip(um.user_idx, um.user_id) if int(u) in set(tr.user)}
items = {int(it): int(i) for i, it in zip(im.item_idx, im.item_id) if int(it) in set(tr.item)}
# evalcommon indexes the score row by the item index: give it scores over exactly those items.
order = sorted(items, key=items.get)
pos = {it: k for k, it in enumerate(order)}
Vs = V[[items[it] for it in order]]
set_item_ids(pos)
ok = te[te.user.isin(users) & te.item.isin(items)]
pred = np.einsum("ij,ij->i", U[[users[u] for u in ok.user]], V[[items[i] for i in ok.item]])
rmse = float(np.sqrt(np.mean((pred - ok.rating.values) ** 2)))
r = ranking(lambda idx: U[idx] @ Vs.T, tr, te, users, pos)
print(dict(system="recflow", rmse=round(rmse, 4), **{k: round(float(v), 4) for k, v in r.items()}))

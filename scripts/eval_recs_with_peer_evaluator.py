"""Scores a saved recflow model of any family with the peers' own evaluator
(../shared/peers/evalcommon.py) from what `recflow recommend --all` writes, so every family is
compared with the peers by the same code on the same split. Prints one dict like the peers do.

Ranking: RECS is `recommend --all -k K` (user_id, rank, item_id, score); each user's K items get
descending scores (K, K-1, ..., 1) and every other item -inf, so the evaluator ranks exactly recflow's
list. Its item universe is every item of the model's id map (training items and the test file's
items alike): an item recflow may recommend is never dropped. evalcommon excludes training items
itself.
RMSE (optional): PRED is `recommend --all -k <all items>`, whose scores are the predicted ratings of
every (user, unseen item) pair; test pairs whose user and item are both in train.csv are scored,
as scripts/eval_with_peer_evaluator.py does for ALS factors.
usage: eval_recs_with_peer_evaluator.py MODEL_DIR SPLIT_DIR RECS.parquet|- [PRED.parquet]
(`-`: no ranking, for a family that does not rank)"""
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "shared" / "peers"))
from evalcommon import load, ranking, set_item_ids  # noqa: E402

model, d, recs = sys.argv[1], sys.argv[2], sys.argv[3]
pred = sys.argv[4] if len(sys.argv) > 4 else None
tr, te = load(d)
# The peers' CSVs hold ids as ints (as every shared data set has them); recflow's maps hold strings.
um = pq.read_table(f"{model}/user_map.parquet").to_pandas()
im = pq.read_table(f"{model}/item_map.parquet").to_pandas()
users = {int(u): k for k, u in enumerate(um.sort_values("user_idx").user_id)}
items = {int(i): k for k, i in enumerate(im.sort_values("item_idx").item_id)}
set_item_ids(items)
out = {}

if recs != "-":
    r = pq.read_table(recs, columns=["user_id", "rank", "item_id"]).to_pandas()
    K = int(r["rank"].max())
    S = np.full((len(users), len(items)), -np.inf, dtype=np.float32)
    S[[users[int(u)] for u in r.user_id], [items[int(i)] for i in r.item_id]] = (K + 1 - r["rank"].to_numpy()).astype(
        np.float32)
    listed = set(int(u) for u in r.user_id)
    test_users = set(te.user)
    out["users_without_list"] = sum(1 for u in test_users if u in users and u not in listed)
    res = ranking(lambda idx: S[idx], tr, te, users, items, k=K)
    out.update({key: float(v) for key, v in res.items()})

if pred:
    p = pq.read_table(pred, columns=["user_id", "item_id", "score"]).to_pandas()
    p["user"] = p.user_id.astype(int)
    p["item"] = p.item_id.astype(int)
    ok = te[te.user.isin(set(tr.user)) & te.item.isin(set(tr.item))]
    m = ok.merge(p[["user", "item", "score"]], on=["user", "item"], how="left")
    out["rmse_pairs"] = int(m.score.notna().sum())
    out["rmse_pairs_missing"] = int(m.score.isna().sum())
    m = m[m.score.notna()]
    out["rmse"] = float(np.sqrt(np.mean((m.score.to_numpy(np.float64) - m.rating.to_numpy()) ** 2)))
print(dict(system="recflow", **out))

"""MLflow `python_function` loader for recflow models (numpy and pyarrow only).

recflow writes this file into every model it logs to MLflow (`code/recflow_pyfunc.py`), so
`mlflow.pyfunc.load_model("models:/<model_id>")` and `mlflow models serve` work without recflow
installed. It reads the recflow model folder (`data/`, described in recflow's
docs/model-format.md) and answers as `recflow recommend` does:

- a DataFrame with a `user_id` column (and optionally `k`, or the `k` param, default 10) gives
  each user's top K: columns `user_id`, `rank`, `item_id`, `score`, `strategy`. Known users get
  the model's scores with their training items excluded, ties by item index (`strategy` = the
  family); unknown users (and users with no training rating) get the cold-start list
  (`strategy = "popular"`: most rated first, `score` = the item's damped mean rating);
- a DataFrame with `user_id` and `item_id` columns gives predicted ratings (`prediction`, NaN
  for a user or item the model does not know) from models that predict ratings.

Families: als, biases, global_mean, popularity, random, ease, item_knn. Any other family is
refused with an error naming it.
"""

import json
import os
import struct

import numpy as np
import pyarrow.parquet as pq

FORMAT_VERSION = 2
DEFAULT_K = 10
_DTYPES = {"F32": np.float32, "I32": np.int32, "I64": np.int64}


def _load_pyfunc(data_path):
    return RecflowModel(data_path)


def _read_safetensors(path):
    """The tensors of a safetensors file: an 8-byte header length, a JSON header, raw data."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = memoryview(raw)[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        start, end = t["data_offsets"]
        dtype = _DTYPES.get(t["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor `{name}` has unsupported dtype {t['dtype']}")
        out[name] = np.frombuffer(body[start:end], dtype=np.dtype(dtype).newbyteorder("<")).reshape(
            t["shape"]
        )
    return out


def _read_factors(folder):
    """Spark ALSModel factors (`id` int, `features` array<float>), as a matrix in id order."""
    parts = sorted(p for p in os.listdir(folder) if p.endswith(".parquet"))
    ids, rows = [], []
    for p in parts:
        t = pq.read_table(os.path.join(folder, p), columns=["id", "features"])
        ids.append(t.column("id").to_numpy())
        feats = t.column("features").combine_chunks()
        width = len(feats[0]) if len(feats) else 0
        rows.append(feats.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, width))
    ids = np.concatenate(ids)
    m = np.concatenate(rows)
    return m[np.argsort(ids, kind="stable")]


def _mix(x):
    """SplitMix64's finalizer on uint64 arrays (wrapping), as recflow's random baseline."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class RecflowModel:
    def __init__(self, path):
        with open(os.path.join(path, "metadata.json")) as f:
            self.meta = json.load(f)
        version = self.meta.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{path}: recflow model format {version}; this loader reads format {FORMAT_VERSION}"
            )
        self.family = self.meta["family"]
        self.predicts_ratings = bool(self.meta.get("predicts_ratings"))
        users = pq.read_table(os.path.join(path, "user_map.parquet")).to_pydict()
        items = pq.read_table(os.path.join(path, "item_map.parquet")).to_pydict()
        self.user_ids = [None] * len(users["user_idx"])
        for i, u in zip(users["user_idx"], users["user_id"]):
            self.user_ids[i] = u
        self.item_ids = [None] * len(items["item_idx"])
        for i, it in zip(items["item_idx"], items["item_id"]):
            self.item_ids[i] = it
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {it: i for i, it in enumerate(self.item_ids)}
        self.n_users, self.n_items = len(self.user_ids), len(self.item_ids)

        h = pq.read_table(os.path.join(path, "history.parquet"), columns=["user_idx", "item_idx"])
        hu = h.column("user_idx").to_numpy().astype(np.int64)
        hi = h.column("item_idx").to_numpy().astype(np.int64)
        order = np.lexsort((hi, hu))
        self.hist_items = hi[order]
        self.hist_ptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.add.at(self.hist_ptr, hu + 1, 1)
        self.hist_ptr = np.cumsum(self.hist_ptr)

        pop = pq.read_table(os.path.join(path, "popular_items.parquet")).to_pydict()
        self.popular = list(zip(pop["item_id"], pop["damped_mean_rating"]))

        self._load_family(path)

    def _load_family(self, path):
        fam = self.family
        weights = os.path.join(path, "weights.safetensors")
        if fam == "als":
            self.users = _read_factors(os.path.join(path, "userFactors"))
            self.items = _read_factors(os.path.join(path, "itemFactors"))
        elif fam in ("biases", "global_mean"):
            t = _read_safetensors(weights)
            self.global_mean = np.float32(t["global_mean"][0])
            zu, zi = np.zeros(self.n_users, np.float32), np.zeros(self.n_items, np.float32)
            self.user_bias = t.get("user_bias", zu).astype(np.float32)
            self.item_bias = t.get("item_bias", zi).astype(np.float32)
        elif fam == "popularity":
            t = _read_safetensors(weights)
            count, mean = t["item_count"], t["item_mean"]
            order = np.lexsort((np.arange(self.n_items), -mean, -count))
            self.pop_score = np.zeros(self.n_items, np.float32)
            self.pop_score[order] = (self.n_items - np.arange(self.n_items)).astype(np.float32)
        elif fam == "random":
            self.seed = np.uint64(int(self.meta.get("params", {}).get("seed", 0)))
        elif fam == "ease":
            t = _read_safetensors(weights)
            self.B = t["B"].reshape(self.n_items, self.n_items)
        elif fam == "item_knn":
            t = _read_safetensors(weights)
            self.knn_ptr, self.knn_idx, self.knn_val = t["indptr"], t["indices"], t["data"]
        else:
            raise ValueError(
                f"recflow family `{fam}` has no python_function loader; "
                "load it with `recflow serve --model <this model>/data` instead"
            )

    # -- scoring ------------------------------------------------------------------------------

    def _seen(self, u):
        return self.hist_items[self.hist_ptr[u] : self.hist_ptr[u + 1]]

    def _scores(self, u):
        fam = self.family
        if fam == "als":
            return self.items @ self.users[u]
        if fam in ("biases", "global_mean"):
            return self.global_mean + self.user_bias[u] + self.item_bias
        if fam == "popularity":
            return self.pop_score.copy()
        if fam == "random":
            items = np.arange(self.n_items, dtype=np.uint64)
            h = _mix(self.seed ^ _mix((np.uint64(u) << np.uint64(32)) | items))
            return ((h >> np.uint64(40)).astype(np.float64) / float(1 << 24)).astype(np.float32)
        out = np.zeros(self.n_items, np.float32)
        seen = self._seen(u)
        if fam == "ease":
            for j in seen:
                out += self.B[j]
        else:
            for j in seen:
                a, b = self.knn_ptr[j], self.knn_ptr[j + 1]
                np.add.at(out, self.knn_idx[a:b], self.knn_val[a:b])
        return out

    def _top(self, u, k):
        scores = self._scores(u).astype(np.float32)
        scores[self._seen(u)] = -np.inf
        keep = np.nonzero(scores > -np.inf)[0]  # NaN and -inf never rank, as in recflow
        order = keep[np.lexsort((keep, -scores[keep]))][:k]
        return order, scores[order]

    def _known(self, user_id):
        u = self.user_index.get(user_id)
        if u is None or u >= self.n_users or self.hist_ptr[u + 1] == self.hist_ptr[u]:
            return None
        return u

    def recommend(self, user_ids, k):
        rows = {"user_id": [], "rank": [], "item_id": [], "score": [], "strategy": []}
        for user_id, kk in zip(user_ids, k):
            kk = int(kk)
            u = self._known(user_id)
            if u is None:
                picks = [(it, float(s)) for it, s in self.popular[:kk]]
                strategy = "popular"
            else:
                idx, sc = self._top(u, kk)
                picks = [(self.item_ids[i], float(s)) for i, s in zip(idx, sc)]
                strategy = self.family
            for r, (it, s) in enumerate(picks, start=1):
                rows["user_id"].append(user_id)
                rows["rank"].append(r)
                rows["item_id"].append(it)
                rows["score"].append(s)
                rows["strategy"].append(strategy)
        return rows

    def predict_pairs(self, user_ids, item_ids):
        if not self.predicts_ratings:
            raise ValueError(
                f"this `{self.family}` model ranks items but does not predict ratings; "
                "send only a `user_id` column for top-K recommendations"
            )
        out = np.full(len(user_ids), np.nan)
        for n, (user_id, item_id) in enumerate(zip(user_ids, item_ids)):
            u, i = self.user_index.get(user_id), self.item_index.get(item_id)
            if u is None or i is None:
                continue
            if self.family == "als":
                out[n] = float(np.dot(self.users[u], self.items[i]))
            else:
                out[n] = float(self.global_mean + self.user_bias[u] + self.item_bias[i])
        return {"user_id": list(user_ids), "item_id": list(item_ids), "prediction": out}

    # -- the pyfunc entry point -------------------------------------------------------------------

    def predict(self, model_input, params=None):
        import pandas as pd  # MLflow itself depends on pandas

        df = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "user_id" not in df.columns:
            raise ValueError(
                f"the input needs a `user_id` column (got {list(df.columns)}); "
                "add `item_id` to predict ratings for (user, item) pairs"
            )
        users = [str(u) for u in df["user_id"]]
        if "item_id" in df.columns and df["item_id"].notna().any():
            return pd.DataFrame(self.predict_pairs(users, [str(i) for i in df["item_id"]]))
        default_k = int((params or {}).get("k") or DEFAULT_K)
        if "k" in df.columns:
            k = [default_k if pd.isna(x) else int(x) for x in df["k"]]
        else:
            k = [default_k] * len(users)
        if any(x < 1 for x in k):
            raise ValueError("`k` must be at least 1")
        return pd.DataFrame(self.recommend(users, k))

"""myFM's Bayesian factorization machine (Gibbs sampling) on one-hot user and item ids: the
Bayesian peer of `recflow train --solver gibbs`, on a fixed split. Test RMSE with cold pairs dropped,
as recflow and the other peers drop them. Prints one dict, like the shared peers.

usage: PYTHON scripts/peer_myfm.py SPLIT_DIR [RANK] [N_ITER] [N_KEPT]   (defaults 10, 200, 150)
  PYTHON: a venv with myfm (`make venv-myfm` makes .venv-myfm); myFM is not among the pinned peers."""
import sys
import time

import myfm
import numpy as np
import pandas as pd
from sklearn.preprocessing import OneHotEncoder

d = sys.argv[1]
rank, n_iter, n_kept = (int(x) for x in (sys.argv[2:5] + ["10", "200", "150"][len(sys.argv) - 2:]))
tr = pd.read_csv(f"{d}/train.csv")
te = pd.read_csv(f"{d}/test.csv")
te = te[te.user.isin(set(tr.user)) & te.item.isin(set(tr.item))]
enc = OneHotEncoder(handle_unknown="ignore").fit(tr[["user", "item"]])
xtr, xte = enc.transform(tr[["user", "item"]]), enc.transform(te[["user", "item"]])
fm = myfm.MyFMRegressor(rank=rank, random_seed=42)
t0 = time.time()
fm.fit(xtr, tr.rating.to_numpy(dtype=float), n_iter=n_iter, n_kept_samples=n_kept)
fit_s = time.time() - t0
y = te.rating.to_numpy(dtype=float)
rmse = float(np.sqrt(np.mean((fm.predict(xte) - y) ** 2)))
print(dict(system="myfm-gibbs", rank=rank, n_iter=n_iter, n_kept=n_kept, fit_s=round(fit_s, 2), rmse=round(rmse, 4)))

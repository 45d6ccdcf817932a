"""What other rating-prediction models reach on the MovieLens 100K split of `make bench-als`.

Context for recflow's explicit RMSE: runs Surprise's SGD-trained biased MF (SVD) over a few
settings, Surprise's SVD++, and, when the `myfm` package is importable, a Bayesian MF sampled by
Gibbs (myFM's regressor on one-hot user and item ids). Every figure is RMSE on the test split,
cold pairs dropped as recflow does. The settings are compared on the test split itself, so the
best SGD figure is an optimistic bound, not a tuned result.

usage: PYTHON scripts/rmse_other_models.py [SPLIT_DIR]
  SPLIT_DIR holds train.csv and test.csv (default bench-out/als/ml100k, written by bench_als.py).
  PYTHON needs scikit-surprise (`.venv-peers` has it); for the Bayesian MF, use a separate venv
  rather than adding to the pinned peers, e.g. `python3 -m venv /tmp/rmse && /tmp/rmse/bin/pip
  install scikit-surprise==1.1.5 myfm==0.4.0 scikit-learn pandas`, then `/tmp/rmse/bin/python`."""
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from surprise import SVD, SVDpp, Dataset, Reader

ROOT = Path(__file__).resolve().parent.parent
d = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench-out" / "als" / "ml100k"
tr = pd.read_csv(d / "train.csv")
te = pd.read_csv(d / "test.csv")
te = te[te.user.isin(set(tr.user)) & te.item.isin(set(tr.item))]
truth = te.rating.to_numpy(dtype=float)


def rmse(pred):
    return float(np.sqrt(np.mean((np.asarray(pred, dtype=float) - truth) ** 2)))


trainset = Dataset.load_from_df(tr[["user", "item", "rating"]], Reader(rating_scale=(1, 5))).build_full_trainset()
pairs = list(te[["user", "item", "rating"]].itertuples(index=False, name=None))


def surprise(name, algo):
    t0 = time.time()
    algo.fit(trainset)
    fit = time.time() - t0
    print(f"{name:<48} RMSE {rmse([p.est for p in algo.test(pairs)]):.4f}  fit {fit:5.1f} s", flush=True)


for k, lr, reg, epochs in [(10, 0.01, 0.02, 20), (10, 0.005, 0.05, 100), (10, 0.007, 0.1, 80),
                           (50, 0.005, 0.05, 60), (100, 0.005, 0.1, 60)]:
    surprise(f"Surprise SVD (SGD) k{k} lr{lr} reg{reg} {epochs} epochs",
             SVD(n_factors=k, lr_all=lr, reg_all=reg, n_epochs=epochs, random_state=42))
surprise("Surprise SVD++ (defaults)", SVDpp(random_state=42))

try:
    import myfm
    from sklearn.preprocessing import OneHotEncoder
except ImportError:
    print("myfm not installed: Bayesian MF skipped")
else:
    enc = OneHotEncoder(handle_unknown="ignore").fit(tr[["user", "item"]])
    x_train, x_test = enc.transform(tr[["user", "item"]]), enc.transform(te[["user", "item"]])
    for rank in (10, 32):
        fm = myfm.MyFMRegressor(rank=rank, random_seed=42)
        t0 = time.time()
        fm.fit(x_train, tr.rating.to_numpy(dtype=float), n_iter=300, n_kept_samples=250)
        fit = time.time() - t0
        name = f"Bayesian MF (myFM Gibbs, 300 sweeps) rank {rank}"
        print(f"{name:<48} RMSE {rmse(np.clip(fm.predict(x_test), 1, 5)):.4f}  fit {fit:5.1f} s", flush=True)

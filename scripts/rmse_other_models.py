"""What other rating-prediction models reach on the MovieLens 100K split of `make bench-als`.

Context for recflow's explicit RMSE: runs Surprise's SGD-trained biased MF (SVD) over a few
settings, Surprise's SVD++, and, when the `myfm` package is importable, a Bayesian MF sampled by
Gibbs (myFM's regressor on one-hot user and item ids), alone and with each side's rated set as
features (close to `recflow train-als --solver gibbs --rated-sets`; myFM's factorization machine
also has linear and within-side terms for those features). Every figure is RMSE on the test split,
cold pairs dropped as recflow does. The settings are compared on the test split itself, so the
best SGD figure is an optimistic bound, not a tuned result.

usage: PYTHON scripts/rmse_other_models.py [SPLIT_DIR]
  SPLIT_DIR holds train.csv and test.csv (default bench-out/als/ml100k, written by bench_als.py).
  PYTHON needs scikit-surprise (`.venv-peers` has it); for the Bayesian MF, use a separate venv
  rather than adding to the pinned peers, e.g. `python3 -m venv /tmp/rmse && /tmp/rmse/bin/pip
  install scikit-surprise==1.1.5 myfm==0.4.0 scikit-learn scipy pandas`, then `/tmp/rmse/bin/python`."""
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

    # Rated sets: a user's row is [one-hot user, its training items / sqrt(count)], an item's
    # [one-hot item, its training users / sqrt(count)], as relational blocks.
    import scipy.sparse as sps
    from myfm import RelationBlock

    uid = {u: k for k, u in enumerate(sorted(set(tr.user)))}
    iid = {i: k for k, i in enumerate(sorted(set(tr.item)))}
    tu, ti = tr.user.map(uid).to_numpy(), tr.item.map(iid).to_numpy()
    eu, ei = te.user.map(uid).to_numpy(), te.item.map(iid).to_numpy()
    rated = sps.csr_matrix((np.ones(len(tr)), (tu, ti)), shape=(len(uid), len(iid)))

    def side(m):
        m = sps.diags(1 / np.sqrt(np.maximum(np.asarray(m.sum(1)).ravel(), 1))) @ m
        return sps.hstack([sps.identity(m.shape[0], format="csr"), m]).tocsr()

    us, its = side(rated), side(rated.T.tocsr())
    for rank in (10, 32):
        fm = myfm.MyFMRegressor(rank=rank, random_seed=42)
        t0 = time.time()
        fm.fit(None, tr.rating.to_numpy(dtype=float), X_rel=[RelationBlock(tu, us), RelationBlock(ti, its)],
               n_iter=300, n_kept_samples=250)
        fit = time.time() - t0
        pred = fm.predict(None, X_rel=[RelationBlock(eu, us), RelationBlock(ei, its)])
        name = f"Bayesian MF + rated sets (myFM) rank {rank}"
        print(f"{name:<48} RMSE {rmse(np.clip(pred, 1, 5)):.4f}  fit {fit:5.1f} s", flush=True)

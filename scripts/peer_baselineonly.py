"""Surprise's BaselineOnly (ALS biases; its predictions clipped to 1..5) on a fixed split: the
`biases` family's peer on the same split. usage: peer_baselineonly.py SPLIT_DIR [REG_USER REG_ITEM]
(no regs: Surprise's defaults, reg_u 15 and reg_i 10). Prints one dict per setting."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "peers"))
from evalcommon import load  # noqa: E402
from surprise import BaselineOnly, Dataset, Reader, accuracy  # noqa: E402

tr, te = load(sys.argv[1])
ts = Dataset.load_from_df(tr[["user", "item", "rating"]], Reader(rating_scale=(1, 5))).build_full_trainset()
pairs = list(te[["user", "item", "rating"]].itertuples(index=False, name=None))
settings = [dict(method="als")]
if len(sys.argv) == 4:
    settings.append(dict(method="als", reg_u=float(sys.argv[2]), reg_i=float(sys.argv[3])))
for opts in settings:
    algo = BaselineOnly(bsl_options=opts, verbose=False)
    t0 = time.time()
    algo.fit(ts)
    fit_s = time.time() - t0
    rmse = accuracy.rmse(algo.test(pairs), verbose=False)
    print(dict(system="surprise-baselineonly", reg_u=opts.get("reg_u", 15.0), reg_i=opts.get("reg_i", 10.0),
               fit_s=round(fit_s, 3), rmse=round(rmse, 4)))

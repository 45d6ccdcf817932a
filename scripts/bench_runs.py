"""Run-comparison benchmark: `recflow runs list` and `runs compare` over RUNS runs (one parent and
its children, 20 params, 30 metrics and 10 tags each) against `mlflow.search_runs` returning the
same runs, on a file store and on a local `mlflow server` (sqlite), side by side; then the
bootstrap intervals' time against the evaluation's own at the Electronics size.

recflow is timed as a whole process (start-up included); `mlflow.search_runs` as the call alone,
inside an already started Python with mlflow imported. Best of REPEATS each.

usage: bench_runs.py [RUNS] [REPEATS]"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import end_group, mlflow_server, table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PY = ROOT / ".venv" / "bin" / "python"
BIN = Path(os.environ.get("RECFLOW_BIN", ROOT / "target" / "release" / "recflow"))
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 500
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
ENV = dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true", COLUMNS="200")

# Logs the runs with MLflow's own client and times search_runs in the same process.
PEER = r'''
import json, sys, time, mlflow
from mlflow.tracking import MlflowClient
from mlflow.entities import Metric, Param, RunTag
uri, runs, repeats, make = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "make"
mlflow.set_tracking_uri(uri)
c = MlflowClient()
if make:
    exp = c.create_experiment("bench-runs")
    parent = c.create_run(exp, run_name="parent").info.run_id
    ts = int(time.time() * 1000)
    for i in range(runs - 1):
        r = c.create_run(exp, run_name=f"als rank={8 * (1 + i % 8)} reg={0.01 * (1 + i // 8)}",
                         tags={"mlflow.parentRunId": parent}).info.run_id
        params = [Param(f"p{j}", str(j)) for j in range(18)] + [Param("rank", str(8 * (1 + i % 8))),
                                                              Param("reg", str(0.01 * (1 + i // 8)))]
        metrics = [Metric(f"val_m{j}", 0.5 + 1e-4 * i + 1e-6 * j, ts, 0) for j in range(30)]
        tags = [RunTag(f"t{j}", str(j)) for j in range(10)]
        c.log_batch(r, metrics=metrics, params=params, tags=tags)
        c.set_terminated(r)
    c.set_terminated(parent)
    print(json.dumps({"parent": parent, "experiment": exp}))
    sys.exit(0)
exp = c.get_experiment_by_name("bench-runs").experiment_id
parent = sys.argv[5]
best = {"all": 1e9, "children": 1e9}
for _ in range(repeats):
    t = time.perf_counter()
    df = mlflow.search_runs([exp], max_results=100000)
    best["all"] = min(best["all"], time.perf_counter() - t)
    n_all = len(df)
    t = time.perf_counter()
    df = mlflow.search_runs([exp], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'", max_results=100000)
    best["children"] = min(best["children"], time.perf_counter() - t)
    n_children = len(df)
# A server's answer alone (one plain POST, no client library): the floor any client pays.
floor = {"all": None, "children": None}
if uri.startswith("http"):
    import urllib.request
    def post(body):
        req = urllib.request.Request(f"{uri}/api/2.0/mlflow/runs/search", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        t = time.perf_counter()
        n = len(json.loads(urllib.request.urlopen(req).read()).get("runs", []))
        return time.perf_counter() - t, n
    f_all = min(post({"experiment_ids": [exp], "max_results": 1000})[0] for _ in range(repeats))
    f_kids = min(post({"experiment_ids": [exp], "max_results": 1000,
                       "filter": f"tags.`mlflow.parentRunId` = '{parent}'"})[0] for _ in range(repeats))
    floor = {"all": f_all, "children": f_kids}
print(json.dumps({"all": best["all"], "children": best["children"], "n_all": n_all, "n_children": n_children,
                  "floor": floor}))
'''


def peer(uri, *args):
    out = subprocess.run([str(PY), "-c", PEER, uri, str(RUNS), str(REPEATS), *args], capture_output=True, text=True,
                         env=ENV)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def recflow_best(args):
    best, rows = 1e9, 0
    for _ in range(REPEATS):
        t = time.perf_counter()
        out = subprocess.run([str(BIN), *args], capture_output=True, text=True, env=ENV)
        dt = time.perf_counter() - t
        if out.returncode != 0:
            raise SystemExit(f"recflow {' '.join(args)} failed:\n{out.stderr[-2000:]}")
        best, rows = min(best, dt), len(out.stdout.strip().splitlines()) - 1
    return best, rows


def bench_store(name, uri, rows):
    made = peer(uri, "make")
    parent = made["parent"]
    p = peer(uri, "time", parent)
    lst, n_list = recflow_best(["runs", "list", "--experiment", "bench-runs", "--max-results", "100000", "--csv",
                                "--columns", "run_id,name,params.*,metrics.*", "--tracking-uri", uri])
    cmp_, n_cmp = recflow_best(["runs", "compare", "--children-of", parent, "--csv", "--tracking-uri", uri])
    assert n_list == p["n_all"] == RUNS, (n_list, p["n_all"])
    assert n_cmp == p["n_children"] == RUNS - 1, (n_cmp, p["n_children"])
    fl = p["floor"]
    shown = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    rows.append({"store": name, "task": f"list {RUNS} runs", "recflow": f"{lst:.3f}", "mlflow": f"{p['all']:.3f}",
                 "ratio": f"{lst / p['all']:.3f}", "server floor": shown(fl["all"])})
    rows.append({"store": name, "task": f"compare {RUNS - 1} children", "recflow": f"{cmp_:.3f}",
                 "mlflow": f"{p['children']:.3f}", "ratio": f"{cmp_ / p['children']:.3f}",
                 "server floor": shown(fl["children"])})


def main():
    rows = []
    with tempfile.TemporaryDirectory() as d:
        bench_store("file store", f"file:{d}/mlruns", rows)
    proc, uri = mlflow_server(2, ROOT / ".venv" / "bin" / "mlflow")
    try:
        bench_store("mlflow server", uri, rows)
    finally:
        end_group(proc)
    print(f"runs list / compare over {RUNS} runs (20 params, 30 metrics, 10 tags each), best of {REPEATS};"
          " recflow = whole process, mlflow = the search_runs call alone, server floor = one plain POST of"
          " runs/search answered (seconds)")
    print(table(rows, ["store", "task", "recflow", "mlflow", "ratio", "server floor"]))
    out = subprocess.run(["cargo", "bench", "-q", "--bench", "bootstrap"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    b = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"bootstrap, {b['resamples']} resamples of {b['users_evaluated']:,} users (RMSE, MAE, 4 ranking metrics): "
          f"{b['bootstrap_seconds']:.2f} s against the evaluation's {b['eval_seconds']:.2f} s "
          f"({b['users']:,} users x {b['items']:,} items, rank {b['rank']}): ratio {b['ratio']:.3f}")


if __name__ == "__main__":
    main()

"""MLflow logging benchmark: the same workload (RUNS x 20 params x 10 metrics x 100 steps) logged to
one local `mlflow server` (sqlite) through recflow, MLflow's Python client (log_batch, and the
per-call log_metric loop users write; ../shared/peers/peer_mlflow_logging.py), and a minimal
sequential HTTP client posting the same JSON (the server's own floor); then to a file store.

usage: bench_tracking.py [RUNS]"""
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import end_group, mlflow_server, peer_dict, table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "peers"
PY = ROOT / ".venv" / "bin" / "python"
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 50


def recflow(uri, runs, threads=1):
    out = subprocess.run(["cargo", "bench", "-q", "--bench", "logging", "--", uri, str(runs), str(threads)], cwd=ROOT,
                         capture_output=True, text=True, env=dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true"))
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def peer(uri, mode, runs):
    out = subprocess.run([str(PY), str(PEERS / "peer_mlflow_logging.py"), uri, mode, str(runs)], capture_output=True,
                         text=True, env=dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true"))
    return peer_dict(out.stdout.strip().splitlines()[-1])["seconds"]


def minimal(uri, runs):
    """A plain sequential client: one create, three log-batch posts (params, metrics in 1000s), one update."""
    def post(path, body):
        req = urllib.request.Request(f"{uri}/api/2.0/mlflow/{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req).read() or b"{}")
    exp = post("experiments/create", {"name": f"bench-minimal-{time.time_ns()}"})["experiment_id"]
    t0 = time.time()
    for _ in range(runs):
        ts = int(time.time() * 1000)
        run = post("runs/create", {"experiment_id": exp, "start_time": ts})["run"]["info"]["run_id"]
        post("runs/log-batch", {"run_id": run, "params": [{"key": f"p{i}", "value": str(i)} for i in range(20)]})
        ms = [{"key": f"m{j}", "value": 0.5 + s * 1e-3, "timestamp": ts, "step": s} for j in range(10) for s in range(100)]
        for k in range(0, len(ms), 1000):
            post("runs/log-batch", {"run_id": run, "metrics": ms[k:k + 1000]})
        post("runs/update", {"run_id": run, "status": "FINISHED", "end_time": int(time.time() * 1000)})
    return time.time() - t0


rows = []
p, uri = mlflow_server(1, ROOT / ".venv" / "bin" / "mlflow")
try:
    floor = minimal(uri, RUNS)
    ours = recflow(uri, RUNS)
    batch = peer(uri, "batch", RUNS)
    naive_runs = 2
    naive = peer(uri, "naive", naive_runs) / naive_runs * RUNS
    rows += [
        dict(store="server, 1 worker", system="minimal HTTP client", seconds=round(floor, 2)),
        dict(store="server, 1 worker", system="recflow (sequential)", seconds=round(ours, 2),
             vs=f"{ours / floor:.2f}x the floor"),
        dict(store="server, 1 worker", system="mlflow log_batch", seconds=round(batch, 2), vs=f"{batch / ours:.1f}x slower"),
        dict(store="server, 1 worker", system=f"mlflow log_metric loop ({naive_runs} runs, scaled)",
             seconds=round(naive, 1), vs=f"{naive / ours:.0f}x slower"),
    ]
finally:
    end_group(p)
p, uri = mlflow_server(4, ROOT / ".venv" / "bin" / "mlflow")
try:
    ours4 = recflow(uri, RUNS, 4)
    batch4 = peer(uri, "batch", RUNS)
    rows += [
        dict(store="server, 4 workers", system="recflow (4 concurrent uploads)", seconds=round(ours4, 2)),
        dict(store="server, 4 workers", system="mlflow log_batch", seconds=round(batch4, 2), vs=f"{batch4 / ours4:.1f}x slower"),
    ]
finally:
    end_group(p)
with tempfile.TemporaryDirectory() as d:
    ours_f = recflow(f"file:{d}/recflow", RUNS)
    theirs_f = peer(f"file:{d}/mlflow", "batch", RUNS)
    rows += [
        dict(store="file store", system="recflow", seconds=round(ours_f, 3)),
        dict(store="file store", system="mlflow log_batch", seconds=round(theirs_f, 2), vs=f"{theirs_f / ours_f:.0f}x slower"),
    ]
print(f"MLflow logging, {RUNS} runs x 20 params x 10 metrics x 100 steps, local mlflow 3.17.2 server (sqlite)")
print(table(rows, ["store", "system", "seconds", "vs"]))

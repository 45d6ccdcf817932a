"""Serving benchmark: `recflow serve` vs the FastAPI + numpy peer (../shared/peers/peer_fastapi_serve.py)
on one Electronics-size model, on loopback, with wrk (or oha) as the load generator.

Both servers load the same model folder (random factors in recflow's layout, which is also Spark's
ALSModel layout: userFactors/ and itemFactors/ Parquet, user_map.parquet, ...). Requests ask for
`GET /v1/users/U<n>/recommendations?k=10` with n drawn at random (fixed seed) from the known users,
so every request scores a real user; no answer is cached. Prints requests/s and p50/p99 latency at
1, 8 and 64 connections side by side with ratios, then a soak at saturation (errors, RSS).

usage: bench_serve.py [--duration S] [--soak S] [--server-cmd "BIN ... {model} ... {port}"]
(defaults: 20 s per point, 60 s soak, `target/release/recflow serve --model {model} --port {port}`)"""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "peers"
PEER_PY = ROOT / ".venv-peers" / "bin" / "python"

# numpy and pyarrow write the model; the peers' venv has both.
try:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:
    # Compared by prefix: a venv's interpreter is a link to the system one, so the resolved
    # binaries are the same file even when the venvs differ.
    if PEER_PY.exists() and Path(sys.prefix).resolve() != PEER_PY.parent.parent.resolve():
        os.execv(str(PEER_PY), [str(PEER_PY), *sys.argv])
    sys.exit("bench_serve.py needs numpy and pyarrow: run `make venv-peers` first")

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import end_group, table  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--users", type=int, default=192_403)
ap.add_argument("--items", type=int, default=63_001)
ap.add_argument("--rank", type=int, default=64)
ap.add_argument("--ratings", type=int, default=1_689_188)
ap.add_argument("--duration", type=int, default=20, help="seconds per measured point")
ap.add_argument("--soak", type=int, default=60, help="seconds of the soak at saturation (0: skip)")
ap.add_argument("--connections", default="1,8,64")
ap.add_argument("--peer-workers", default=f"1,{os.cpu_count() or 2}",
                help="uvicorn worker counts to run the peer with; ratios use its best figure per point")
ap.add_argument("--out", default=str(ROOT / "bench-out"))
ap.add_argument("--server-cmd", default=f"{ROOT / 'target' / 'release' / 'recflow'} serve --model {{model}} --port {{port}}")
ap.add_argument("--json", help="also write the figures to this file")
ap.add_argument("--page", type=int, default=300,
                help="requests of the demo page and of the JSON answer for the same users, one at a time (0: skip)")
ap.add_argument("--page-only", action="store_true", help="only the page-vs-JSON timing: no load points, no peer")
a = ap.parse_args()


def write_model(d: Path):
    """A biased rank-`rank` model with folded biases (users [x, b_u + mu, 1], items [y, 1, b_i]),
    random but fixed by the seed, in the layout `SavedModel::load` and Spark's ALSModel read."""
    rng = np.random.default_rng(7)
    tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=d.parent))
    r = a.rank
    scale = 1 / np.sqrt(r)
    users = np.hstack([rng.standard_normal((a.users, r), dtype=np.float32) * scale,
                       (3.9 + 0.3 * rng.standard_normal((a.users, 1))).astype(np.float32),
                       np.ones((a.users, 1), np.float32)])
    items = np.hstack([rng.standard_normal((a.items, r), dtype=np.float32) * scale,
                       np.ones((a.items, 1), np.float32),
                       (0.3 * rng.standard_normal((a.items, 1))).astype(np.float32)])

    def factors(name, m):
        (tmp / name).mkdir()
        feats = pa.FixedSizeListArray.from_arrays(pa.array(m.ravel(), pa.float32()), m.shape[1]).cast(
            pa.list_(pa.float32()))
        pq.write_table(pa.table({"id": pa.array(np.arange(len(m), dtype=np.int32)), "features": feats}),
                       tmp / name / "part-00000-bench-c000.snappy.parquet")
        (tmp / name / "_SUCCESS").touch()

    factors("userFactors", users)
    factors("itemFactors", items)
    for side, n, prefix in [("user", a.users, "U"), ("item", a.items, "I")]:
        pq.write_table(pa.table({f"{side}_idx": pa.array(np.arange(n, dtype=np.int32)),
                                 f"{side}_id": pa.array([f"{prefix}{i}" for i in range(n)])}),
                       tmp / f"{side}_map.parquet")
    # Every user has at least one training rating; items drawn with a long-tailed popularity.
    per_user = np.maximum(1, rng.poisson(a.ratings / a.users, a.users))
    u = np.repeat(np.arange(a.users, dtype=np.int32), per_user)
    weights = 1 / np.arange(1, a.items + 1) ** 0.8
    i = rng.choice(a.items, size=len(u), p=weights / weights.sum()).astype(np.int32)
    rating = rng.integers(1, 6, size=len(u)).astype(np.float32)
    pq.write_table(pa.table({"user_idx": u, "item_idx": i, "rating": rating}), tmp / "train_interactions.parquet")
    (tmp / "metadata").mkdir()
    (tmp / "metadata" / "part-00000").write_text(json.dumps({
        "class": "org.apache.spark.ml.recommendation.ALSModel", "timestamp": 0, "sparkVersion": "4.3.0",
        "uid": "ALS_bench", "paramMap": {"userCol": "user", "itemCol": "item"}, "defaultParamMap": {},
        "rank": r + 2}) + "\n")
    (tmp / "metadata" / "_SUCCESS").touch()
    (tmp / "metadata.json").write_text(json.dumps({
        "format_version": 1, "model": "als", "implicit": False, "rank": r, "scoring_rank": r + 2,
        "biases": True, "params": {"rank": r, "note": "random factors for the serving benchmark"},
        "metrics": {}, "data": {}, "split": {"strategy": "random", "seed": 7}, "seed": 7, "timings": {}, "n_users": a.users,
        "n_items": a.items, "n_train": int(len(u)), "recflow_version": "bench", "git_commit": None,
        "created_at": "1970-01-01T00:00:00Z", "run_id": None}, indent=2))
    tmp.rename(d)


def wait_http(url, seconds, proc):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def rss_mib(pid):
    """Resident memory of `pid` and its children (uvicorn workers are children)."""
    total, stack, kids = 0, [pid], {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    kids.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(p))
            except (OSError, IndexError, ValueError):
                pass
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
        stack.extend(kids.get(p, []))
    return total / 1024


LUA = """
local counter = 0
local threads = {}
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
function init(args)
  math.randomseed(1000 + id)
end
request = function()
  return wrk.format("GET", "/v1/users/U" .. math.random(0, %d) .. "/recommendations?k=10")
end
"""


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def load(port, conns, seconds, script):
    """Runs the load generator; returns dict(rps, p50_ms, p99_ms, errors, requests)."""
    if shutil.which("wrk"):
        cmd = ["wrk", "-t", str(min(conns, 2)), "-c", str(conns), "-d", f"{seconds}s", "--latency",
               "--timeout", "10s", "-s", script, f"http://127.0.0.1:{port}"]
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
        errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if sock:
            errors += sum(int(x) for x in sock.groups())
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        reqs = re.search(r"(\d+) requests in", out)
        return dict(rps=float(rps.group(1)) if rps else 0.0, p50_ms=to_ms(lat.get("50", "")),
                    p99_ms=to_ms(lat.get("99", "")), errors=errors, requests=int(reqs.group(1)) if reqs else 0)
    if shutil.which("oha"):
        url = f"http://127.0.0.1:{port}/v1/users/U[0-9]{{1,5}}/recommendations?k=10"
        out = subprocess.run(["oha", "-z", f"{seconds}s", "-c", str(conns), "--no-tui", "--json", "--rand-regex-url", url],
                             capture_output=True, text=True).stdout
        d = json.loads(out)
        codes = d.get("statusCodeDistribution", {})
        ok = sum(v for k, v in codes.items() if k.startswith("2"))
        errs = sum(v for k, v in codes.items() if not k.startswith("2")) + sum(d.get("errorDistribution", {}).values())
        pct = d.get("latencyPercentiles", {})
        return dict(rps=d["summary"]["requestsPerSec"], p50_ms=1e3 * (pct.get("p50") or float("nan")),
                    p99_ms=1e3 * (pct.get("p99") or float("nan")), errors=errs, requests=ok + errs)
    sys.exit("no load generator: install wrk (`apt-get install wrk`) or oha (`cargo install oha`)")


def start(cmd, env, url, what):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
                            start_new_session=True)
    t0 = time.time()
    if not wait_http(url, 600, proc):
        end_group(proc)
        err = proc.stderr.read()[-2000:] if proc.stderr else ""
        print(f"skipping {what}: it did not answer {url}\n{err}")
        return None, 0.0
    return proc, time.time() - t0


def stop(proc):
    return end_group(proc)


def page_vs_json(port, n):
    """Median and mean time of `GET /?user=U` (history, top 10, explanations, model panel) and of
    `GET /v1/users/U/recommendations?k=10` for the same users, alternated, one request at a time."""
    rng = np.random.default_rng(11)
    users = rng.integers(0, a.users, n)
    times = {"page": [], "json": [], "json_explain": []}
    urls = {"page": "/?user=U{}", "json": "/v1/users/U{}/recommendations?k=10",
            "json_explain": "/v1/users/U{}/recommendations?k=10&explain=true"}
    for warm in (True, False):
        for u in users[:20] if warm else users:
            for kind, url in urls.items():
                t0 = time.perf_counter()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}" + url.format(u), timeout=30) as r:
                    r.read()
                if not warm:
                    times[kind].append((time.perf_counter() - t0) * 1000)
    return {k: (float(np.median(v)), float(np.mean(v))) for k, v in times.items()}


out = Path(a.out)
out.mkdir(parents=True, exist_ok=True)
model = out / f"serve-model-{a.users}x{a.items}r{a.rank}"
if not model.exists():
    t0 = time.time()
    write_model(model)
    print(f"wrote {model.name} in {time.time() - t0:.1f}s")
script = out / "bench_serve.lua"
script.write_text(LUA % (a.users - 1))
conns = [int(c) for c in a.connections.split(",")]

systems = [("recflow", shlex.split(a.server_cmd.format(model=model, port=18080)), 18080, dict(os.environ))]
# The peer at its best: numpy's own OpenBLAS kernel choice (without this machine's core-type pins)
# and one BLAS thread per uvicorn worker process (one worker per core), as it would be deployed;
# BLAS threads in every worker would fight over the same cores.
peer_env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
peer_env["OPENBLAS_NUM_THREADS"] = "1"
if a.page_only:
    pass
elif PEER_PY.exists():
    for w in sorted({int(x) for x in a.peer_workers.split(",")}):
        systems.append((f"fastapi-numpy-w{w}", [str(PEER_PY), str(PEERS / "peer_fastapi_serve.py"), str(18081 + w),
                                                str(w), str(model)], 18081 + w, peer_env))
else:
    print("skipping fastapi-numpy: .venv-peers missing (make venv-peers)")

results, soak = {}, None
for name, cmd, port, env in systems:
    proc, ready_s = start(cmd, env, f"http://127.0.0.1:{port}/v1/users/U0/recommendations?k=10", name)
    if proc is None:
        continue
    print(f"{name}: answering after {ready_s:.1f}s, RSS {rss_mib(proc.pid):.0f} MiB")
    if name == "recflow" and a.page > 0:
        page = page_vs_json(port, a.page)
        print(f"  demo page vs JSON, {a.page} users one at a time (median / mean ms):")
        for kind, (med, mean) in page.items():
            print(f"    {kind:<13} {med:7.2f} / {mean:7.2f}")
        print(f"    page / json: {page['page'][0] / page['json'][0]:.2f}x (median), "
              f"{page['page'][1] / page['json'][1]:.2f}x (mean)")
    if a.page_only:
        stop(proc)
        continue
    load(port, 8, 3, str(script))  # warm-up
    for c in conns:
        r = load(port, c, a.duration, str(script))
        results[(name, c)] = r
        print(f"  {c:>3} connections: {r['rps']:9.0f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
              f"errors {r['errors']}")
    if name == "recflow" and a.soak > 0:
        rss0 = rss_mib(proc.pid)
        r = load(port, max(conns), a.soak, str(script))
        rss1 = rss_mib(proc.pid)
        soak = dict(r, rss_start_mib=round(rss0), rss_end_mib=round(rss1))
    code = stop(proc)
    if name == "recflow":
        print(f"  stopped with SIGTERM, exit code {code}")

if a.page_only:
    sys.exit(0)
rows = []
peers = sorted({name for name, _ in results if name != "recflow"})
for c in conns:
    ours = results.get(("recflow", c))
    row = {"connections": c}
    if ours:
        row.update(recflow_rps=f"{ours['rps']:.0f}", recflow_p50_ms=f"{ours['p50_ms']:.2f}",
                   recflow_p99_ms=f"{ours['p99_ms']:.2f}", recflow_errors=ours["errors"])
    for name in peers:
        r = results.get((name, c))
        if r:
            row[name] = f"{r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f}, p99 {r['p99_ms']:.2f}, err {r['errors']}"
    best = max((results[(n, c)] for n in peers if (n, c) in results), key=lambda r: r["rps"], default=None)
    if ours and best and best["rps"] > 0:
        row["throughput_ratio"] = f"{ours['rps'] / best['rps']:.1f}x"
        row["p99_ratio"] = f"{best['p99_ms'] / ours['p99_ms']:.1f}x"
    rows.append(row)
cols = ["connections", "recflow_rps", "recflow_p50_ms", "recflow_p99_ms", "recflow_errors", *peers,
        "throughput_ratio", "p99_ratio"]
print(f"\nGET /v1/users/{{id}}/recommendations?k=10, {a.users} users x {a.items} items, rank {a.rank} "
      f"(+2 bias columns), {a.duration}s per point, loopback, {os.cpu_count()} cores shared with the load generator")
print(table(rows, cols))
print("(fastapi-numpy-wN: the peer with N uvicorn workers; throughput_ratio: recflow req/s over the peer's best "
      "req/s at that point; p99_ratio: that run's p99 over recflow's; latencies in ms)")
if soak:
    print(f"\nsoak: {a.soak}s at {max(conns)} connections: {soak['requests']} requests, {soak['rps']:.0f} req/s, "
          f"p99 {soak['p99_ms']:.2f} ms, errors {soak['errors']}, RSS {soak['rss_start_mib']} -> "
          f"{soak['rss_end_mib']} MiB")
if a.json:
    Path(a.json).write_text(json.dumps({"points": rows, "soak": soak}, indent=2))

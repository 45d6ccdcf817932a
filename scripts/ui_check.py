"""Opens MLflow's UI on a recflow file store in headless Chromium, checks what each page shows and
saves screenshots (`make ui-check`).

usage: ui_check.py STORE_PATH OUT_DIR [EXPERIMENT_NAME]

Starts `mlflow ui` on a free loopback port, finds the experiment's latest parent run, its winner's
final child and the winner's LoggedModel through MLflow's REST API, then renders the runs table,
the parent's page, the child's metric charts, the Models tab and the model's page. Each page's
rendered DOM must contain the texts listed for it; each gets a PNG in OUT_DIR. Exits non-zero
naming the page and the missing text. Stops the server's whole process group.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base, path, body=None):
    req = urllib.request.Request(
        f"{base}/api/2.0/mlflow/{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("ui_check: no Chromium found (apt-get install chromium)")


def render(browser, url, png, budget_ms=15000, width=1500, height=1000):
    """The page's DOM after its scripts ran (for `budget_ms` of virtual time), and a screenshot."""
    common = [
        browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--window-size={width},{height}", f"--virtual-time-budget={budget_ms}",
    ]
    dom = subprocess.run(common + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    subprocess.run(common + [f"--screenshot={png}", url], capture_output=True, timeout=120)
    return dom.stdout


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    store, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    name = sys.argv[3] if len(sys.argv) > 3 else "quickstart"
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true", PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    server = subprocess.Popen(
        [str(VENV_BIN / "mlflow"), "ui", "--backend-store-uri", str(store), "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    failures = []
    try:
        t0 = time.time()
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                if time.time() - t0 > 90:
                    sys.exit("ui_check: mlflow ui did not start within 90 s")
                time.sleep(0.5)
        exp = api(base, f"experiments/get-by-name?experiment_name={name}")["experiment"]
        eid = exp["experiment_id"]
        runs = api(base, "runs/search", {
            "experiment_ids": [eid], "max_results": 1000, "order_by": ["attributes.start_time DESC"],
        })["runs"]
        tags = lambda r: {t["key"]: t["value"] for t in r["data"].get("tags", [])}  # noqa: E731
        parent = next(r for r in runs if "mlflow.parentRunId" not in tags(r))
        best = tags(parent)["best_run_id"]
        child = next(r for r in runs if r["info"]["run_id"] == best)
        models = api(base, "logged-models/search", {"experiment_ids": [eid]})["models"]
        model = next(m for m in models if m["info"].get("source_run_id") == best)
        model_id = model["info"]["model_id"]
        ml = "workflowType=machine_learning"
        pages = [
            ("runs_table", f"#/experiments/{eid}/runs?{ml}", [parent["info"]["run_name"]]),
            ("parent_run", f"#/experiments/{eid}/runs/{parent['info']['run_id']}?{ml}",
             [parent["info"]["run_name"], "best_run_id", model_id]),
            ("child_charts", f"#/experiments/{eid}/runs/{best}/model-metrics?{ml}",
             ["fit_seconds"]),
            ("models_tab", f"#/experiments/{eid}/models?{ml}", [model_id[:10]]),
            ("model_page", f"#/experiments/{eid}/models/{model_id}?{ml}",
             [model_id, child["info"]["run_name"]]),
            ("model_artifacts", f"#/experiments/{eid}/models/{model_id}/artifacts?{ml}",
             ["MLmodel", "python_env.yaml"]),
        ]
        # A child with learning curves (ALS), when the experiment has one.
        curves = next(
            (r for r in runs if any(m["key"] == "train_loss" for m in r["data"].get("metrics", []))),
            None,
        )
        if curves:
            pages.append(("curves", f"#/experiments/{eid}/runs/{curves['info']['run_id']}/model-metrics?{ml}",
                          ["iteration_seconds"]))
        browser = chromium()
        for page, route, wanted in pages:
            png = out / f"{page}.png"
            dom = render(browser, f"{base}/{route}", png)
            missing = [w for w in wanted if w not in dom]
            if missing:
                # A busy machine can leave the page mid-load: once more with twice the time.
                dom = render(browser, f"{base}/{route}", png, budget_ms=30000)
                missing = [w for w in wanted if w not in dom]
            status = "ok" if not missing else f"MISSING {missing}"
            print(f"{page:16s} {status:30s} {png}")
            if missing:
                failures.append(page)
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
    if failures:
        print(f"ui_check: {', '.join(failures)} did not show what they should", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reads an MLflow file store with MLflow itself and prints what it sees as JSON.

usage: check_mlflow_filestore.py STORE_PATH [--no-migrate]

Checks that a store written by recflow is read correctly by MLflow (pinned 3.17.2): experiments
(with tags), every run through `mlflow.search_runs` and `MlflowClient` (info, params, latest
metrics, full metric histories, tags, parent run, dataset inputs, artifacts with sizes), then
logged models (`search_logged_models`, run outputs), converts the store with
`mlflow migrate-filestore` to SQLite and reads it back from there.
Exits non-zero when MLflow cannot read something or the SQLite copy differs from the store.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# MLflow 3.13+ refuses file stores unless this is set.
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import ViewType  # noqa: E402


def num(v):
    """JSON has no NaN or infinities: spell them as strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def list_artifacts(client, run_id, path=None):
    out = []
    for f in client.list_artifacts(run_id, path):
        if f.is_dir:
            out.extend(list_artifacts(client, run_id, f.path))
        else:
            out.append({"path": f.path, "size": f.file_size})
    return out


def read_store(uri, with_artifacts):
    client = MlflowClient(tracking_uri=uri)
    mlflow.set_tracking_uri(uri)
    result = {"experiments": []}
    for exp in client.search_experiments(view_type=ViewType.ACTIVE_ONLY):
        runs_df = mlflow.search_runs(experiment_ids=[exp.experiment_id], max_results=50000)
        runs = []
        for run in client.search_runs([exp.experiment_id], max_results=50000):
            info, data = run.info, run.data
            full = client.get_run(info.run_id)
            histories = {
                key: [[m.timestamp, num(m.value), m.step] for m in client.get_metric_history(info.run_id, key)]
                for key in sorted(data.metrics)
            }
            runs.append({
                "run_id": info.run_id,
                "run_name": info.run_name,
                "status": info.status,
                "user_id": info.user_id,
                "start_time": info.start_time,
                "end_time": info.end_time,
                "artifact_uri": info.artifact_uri if with_artifacts else None,
                "parent_run_id": data.tags.get("mlflow.parentRunId"),
                "params": dict(sorted(data.params.items())),
                "metrics": {k: num(v) for k, v in sorted(data.metrics.items())},
                "metric_history": histories,
                "tags": dict(sorted(data.tags.items())),
                "datasets": sorted(
                    [
                        {
                            "name": d.dataset.name,
                            "digest": d.dataset.digest,
                            "source_type": d.dataset.source_type,
                            "source": d.dataset.source,
                            "schema": d.dataset.schema,
                            "profile": d.dataset.profile,
                            "context": {t.key: t.value for t in d.tags}.get("mlflow.data.context"),
                        }
                        for d in full.inputs.dataset_inputs
                    ],
                    key=lambda d: (d["name"], d["digest"]),
                ),
                "artifacts": list_artifacts(client, info.run_id) if with_artifacts else None,
                "model_outputs": sorted(
                    o.model_id for o in (full.outputs.model_outputs if full.outputs else [])
                ),
            })
        runs.sort(key=lambda r: r["run_name"] + r["run_id"])
        models = client.search_logged_models(experiment_ids=[exp.experiment_id])
        result["experiments"].append({
            "name": exp.name,
            "logged_models": sorted(
                [
                    {
                        "model_id": m.model_id,
                        "name": m.name,
                        "source_run_id": m.source_run_id,
                        "status": str(m.status),
                        "params": dict(sorted(m.params.items())),
                        "metrics": {x.key: num(x.value) for x in sorted(m.metrics or [], key=lambda x: x.key)},
                        "tags": dict(sorted(m.tags.items())),
                    }
                    for m in models
                ],
                key=lambda m: m["model_id"],
            ),
            "tags": dict(sorted(exp.tags.items())),
            "search_runs_rows": len(runs_df),
            "runs": runs,
        })
    result["experiments"].sort(key=lambda e: e["name"])
    return result


def comparable(store):
    """What must survive migration: artifact locations are not copied, and SQL stores keep
    infinities as the largest finite float (MLflow's `sanitize_metric_value`)."""

    def inf(v):
        if isinstance(v, float) and abs(v) >= sys.float_info.max:
            return "Infinity" if v > 0 else "-Infinity"
        return v

    store = json.loads(json.dumps(store))
    for exp in store["experiments"]:
        for run in exp["runs"]:
            run.pop("artifact_uri", None)
            run.pop("artifacts", None)
            run["metrics"] = {k: inf(v) for k, v in run["metrics"].items()}
            run["metric_history"] = {
                k: [[ts, inf(v), step] for ts, v, step in h] for k, h in run["metric_history"].items()
            }
    return store


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    store = Path(sys.argv[1]).resolve()
    migrate = "--no-migrate" not in sys.argv[2:]
    out = {"mlflow_version": mlflow.__version__, "store": str(store)}
    out["filestore"] = read_store(store.as_uri(), with_artifacts=True)
    ok = True
    if migrate:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "mlflow.db"
            proc = subprocess.run(
                [sys.executable, "-m", "mlflow", "migrate-filestore", "--source", str(store),
                 "--target", f"sqlite:///{db}", "--no-progress"],
                capture_output=True, text=True,
            )
            out["migrate_returncode"] = proc.returncode
            if proc.returncode != 0:
                out["migrate_stderr"] = proc.stderr[-4000:]
                ok = False
            else:
                migrated = read_store(f"sqlite:///{db}", with_artifacts=False)
                same = comparable(out["filestore"]) == comparable(migrated)
                out["migrated_equal"] = same
                if not same:
                    out["sqlite"] = migrated
                    ok = False
    print(json.dumps(out, indent=2, sort_keys=True, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Small MLflow client actions for recflow's integration tests (MLflow's own Python client).

usage:
  mlflow_client.py search URI EXPERIMENT FILTER      -> JSON list of run ids MLflow's search_runs returns
  mlflow_client.py read URI EXPERIMENT               -> JSON: runs with params, metrics, histories, tags, artifacts
"""
import json
import math
import os
import sys

os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402


def num(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def artifacts(client, run_id, path=None):
    out = []
    for f in client.list_artifacts(run_id, path):
        out.extend(artifacts(client, run_id, f.path) if f.is_dir else [f.path])
    return out


cmd, uri, experiment = sys.argv[1], sys.argv[2], sys.argv[3]
client = MlflowClient(tracking_uri=uri)
exp = client.get_experiment_by_name(experiment)
if cmd == "search":
    runs = client.search_runs([exp.experiment_id], filter_string=sys.argv[4], max_results=10000)
    print(json.dumps(sorted(r.info.run_id for r in runs)))
elif cmd == "read":
    out = []
    for r in client.search_runs([exp.experiment_id], max_results=10000):
        out.append(dict(
            run_id=r.info.run_id, run_name=r.info.run_name, status=r.info.status,
            parent=r.data.tags.get("mlflow.parentRunId"), params=r.data.params,
            metrics={k: num(v) for k, v in r.data.metrics.items()}, tags=r.data.tags,
            history={k: len(client.get_metric_history(r.info.run_id, k)) for k in r.data.metrics},
            artifacts=artifacts(client, r.info.run_id),
        ))
    print(json.dumps(out))

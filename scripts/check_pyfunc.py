"""Loads recflow models through MLflow's pyfunc API and prints what they answer, as JSON.

usage: check_pyfunc.py TRACKING_URI USERS_JSON ITEMS_JSON MODEL_URI...

USERS_JSON and ITEMS_JSON are JSON lists of ids. Prints
`{"logged_models": [...], "models": {MODEL_URI: {...}}}` where each model has its signature,
`top` (each user's top 5 as [item, score, strategy], the `k` param), `first_k3` (the first
user's top 3, a `k` column), `pairs` (predicted ratings for every user x item, row-major, or
`{"error": message}`) and how many rows its input example answers.
"""

import json
import os
import sys

os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"

import mlflow  # noqa: E402
import pandas as pd  # noqa: E402


def check(model_uri, users, items):
    model = mlflow.pyfunc.load_model(model_uri)
    sig = model.metadata.signature
    out = {
        "signature": {
            "inputs": sig.inputs.to_dict() if sig and sig.inputs else None,
            "params": sig.params.to_dict() if sig and sig.params else None,
        }
    }
    df = model.predict(pd.DataFrame({"user_id": users}), params={"k": 5})
    top = {}
    for row in df.itertuples():
        top.setdefault(row.user_id, []).append([row.item_id, row.score, row.strategy])
    out["top"] = top
    first = model.predict(pd.DataFrame({"user_id": users[:1], "k": [3]}))
    out["first_k3"] = first["item_id"].tolist()
    frame = pd.DataFrame(
        {"user_id": [u for u in users for _ in items], "item_id": [i for _ in users for i in items]}
    )
    try:
        pred = model.predict(frame)
        out["pairs"] = [None if pd.isna(x) else float(x) for x in pred["prediction"]]
    except Exception as e:  # the loader's own message, checked by the caller
        out["pairs"] = {"error": str(e)}
    local = mlflow.artifacts.download_artifacts(model_uri)
    with open(os.path.join(local, "input_example.json")) as f:
        example = json.load(f)
    out["example_answer_rows"] = len(
        model.predict(pd.DataFrame(example["data"], columns=example["columns"]))
    )
    return out


def main():
    uri, users, items = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    mlflow.set_tracking_uri(uri)
    exps = [e.experiment_id for e in mlflow.search_experiments()]
    models = mlflow.search_logged_models(experiment_ids=exps, output_format="list")
    out = {
        "logged_models": [
            {
                "model_id": m.model_id,
                "name": m.name,
                "source_run_id": m.source_run_id,
                "status": str(m.status),
                "artifact_location": m.artifact_location,
                "params": m.params,
                "metrics": {x.key: x.value for x in m.metrics or []},
                "tags": m.tags,
            }
            for m in models
        ],
        "models": {m: check(m, users, items) for m in sys.argv[4:]},
    }
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

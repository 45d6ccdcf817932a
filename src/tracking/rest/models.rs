//! MLflow 3 LoggedModels over the REST API (`mlflow/protos/service.proto` of 3.17.2):
//! `POST logged-models` creates one (PENDING) and answers its artifact location, the files go
//! through the artifact proxy, `PATCH logged-models/{id}` marks it READY and `POST runs/outputs`
//! links it to runs.

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};

use super::RestStore;
use crate::tracking::{
    join_artifact_path, logged_mlmodel, walk_files, LoggedModel, Metric, ModelToLog, TrackingError,
};

fn kv(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|kv| {
                    Some((
                        kv["key"].as_str()?.to_string(),
                        kv["value"].as_str().unwrap_or_default().to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A `LoggedModel` message (`{"info": {...}, "data": {...}}`).
fn decode(v: &Value) -> Option<LoggedModel> {
    let info = &v["info"];
    let status = match info["status"].as_str().unwrap_or_default() {
        "LOGGED_MODEL_READY" => "READY",
        "LOGGED_MODEL_PENDING" => "PENDING",
        "LOGGED_MODEL_UPLOAD_FAILED" => "FAILED_UPLOAD",
        _ => "UNSPECIFIED",
    };
    Some(LoggedModel {
        model_id: info["model_id"].as_str()?.to_string(),
        name: info["name"].as_str().unwrap_or_default().to_string(),
        experiment_id: info["experiment_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        source_run_id: info["source_run_id"].as_str().map(str::to_string),
        artifact_location: info["artifact_uri"].as_str()?.to_string(),
        status: status.to_string(),
        params: kv(&v["data"]["params"]),
        metrics: v["data"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                Some(Metric {
                    key: m["key"].as_str()?.to_string(),
                    value: m["value"].as_f64()?,
                    timestamp: m["timestamp"].as_i64().unwrap_or(0),
                    step: m["step"].as_i64().unwrap_or(0),
                })
            })
            .collect(),
        tags: kv(&info["tags"]),
    })
}

impl RestStore {
    pub(super) fn create_logged_model(&self, m: &ModelToLog) -> Result<LoggedModel, TrackingError> {
        let pairs = |items: Vec<(&String, &String)>| -> Vec<Value> {
            items
                .into_iter()
                .map(|(k, v)| json!({ "key": k, "value": v }))
                .collect()
        };
        let mut body = json!({
            "experiment_id": m.experiment_id,
            "name": m.name,
            "source_run_id": m.source_run_id,
            "params": pairs(m.params.iter().map(|p| (&p.key, &p.value)).collect()),
            "tags": pairs(m.tags.iter().map(|t| (&t.key, &t.value)).collect()),
        });
        if let Some(t) = &m.model_type {
            body["model_type"] = json!(t);
        }
        let answer = self.post("logged-models", &body)?;
        let model = decode(&answer["model"])
            .ok_or_else(|| self.protocol("logged-models returned no model"))?;
        let root = self.proxied(&model.model_id, &model.artifact_location)?;
        let mut size = 0u64;
        for (path, rel) in walk_files(&m.dir)? {
            size += std::fs::metadata(&path).map(|md| md.len()).unwrap_or(0);
            self.upload(&root, &rel, &path)?;
        }
        let mlmodel = tempfile::NamedTempFile::new().map_err(|e| TrackingError::io(&m.dir, e))?;
        std::fs::write(
            mlmodel.path(),
            logged_mlmodel(
                &m.mlmodel,
                &model.model_id,
                &model.artifact_location,
                &m.source_run_id,
                size,
            ),
        )
        .map_err(|e| TrackingError::io(mlmodel.path(), e))?;
        self.upload(&root, "MLmodel", mlmodel.path())?;
        let id = model.model_id.clone();
        if !m.metrics.is_empty() {
            // The run has these points already: the server keeps one copy on the run and links
            // the model's.
            let metrics: Vec<Value> = m
                .metrics
                .iter()
                .map(|x| {
                    let mut v = super::metric_json(x);
                    v["model_id"] = json!(id);
                    v
                })
                .collect();
            for chunk in metrics.chunks(super::MAX_METRICS_PER_BATCH) {
                self.post(
                    "runs/log-batch",
                    &json!({ "run_id": m.source_run_id, "metrics": chunk }),
                )?;
            }
        }
        let url = self.api(&format!("logged-models/{id}"));
        let done = self.call(
            Method::PATCH,
            &url,
            Some(&json!({ "model_id": id, "status": "LOGGED_MODEL_READY" })),
        )?;
        for run_id in std::iter::once(&m.source_run_id).chain(&m.output_of) {
            self.post(
                "runs/outputs",
                &json!({ "run_id": run_id, "models": [{ "model_id": id, "step": 0 }] }),
            )?;
        }
        Ok(decode(&done["model"]).unwrap_or(LoggedModel {
            status: "READY".into(),
            ..model
        }))
    }

    pub(super) fn logged_models_of(&self, run_id: &str) -> Result<Vec<LoggedModel>, TrackingError> {
        let run = self.get("runs/get", &[("run_id", run_id)])?;
        let ids: Vec<String> = run["run"]["outputs"]["model_outputs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["model_id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Vec::new();
        for id in ids {
            let v = self.get(&format!("logged-models/{id}"), &[])?;
            out.push(
                decode(&v["model"])
                    .ok_or_else(|| self.protocol("logged-models returned no model"))?,
            );
        }
        out.sort_by(|a, b| a.model_id.cmp(&b.model_id));
        out.dedup_by(|a, b| a.model_id == b.model_id);
        Ok(out)
    }

    /// Downloads every file under the proxied `root` (through the artifact proxy's listing).
    pub(super) fn download_logged_model(
        &self,
        model: &LoggedModel,
        dest: &Path,
    ) -> Result<(), TrackingError> {
        let root = self.proxied(&model.model_id, &model.artifact_location)?;
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let path = join_artifact_path(&[&root, &rel]);
            let mut url = self.url(&["api/2.0/mlflow-artifacts/artifacts"]);
            url.query_pairs_mut().append_pair("path", &path);
            let listing = self.call(Method::GET, &url, None)?;
            for f in listing["files"].as_array().into_iter().flatten() {
                let Some(name) = f["path"].as_str() else {
                    continue;
                };
                // The proxy answers paths relative to the listed folder.
                let child = join_artifact_path(&[&rel, name.rsplit('/').next().unwrap_or(name)]);
                if f["is_dir"].as_bool().unwrap_or(false) {
                    stack.push(child);
                } else {
                    self.download_file(&root, &child, &dest.join(&child))?;
                }
            }
        }
        Ok(())
    }
}

//! MLflow 3 LoggedModels in the file store, laid out as MLflow 3.17's `FileStore` writes them:
//! `<experiment>/models/<model_id>/` with `meta.yaml` (status 1 PENDING, then 2 READY),
//! `params/`, `tags/`, `metrics/` and `artifacts/`; each run that records the model as an
//! output has `<run>/outputs/<model_id>/meta.yaml`.

use std::path::{Path, PathBuf};

use super::yaml::{self, Yaml};
use super::{
    corrupt, create_dir_all, read_kv_dir, read_yaml_opt, subdirs, write_atomic, FileStore, META,
};
use crate::tracking::{
    copy_tree, logged_mlmodel, now_ms, path_to_file_uri, validate_key, walk_files, LoggedModel,
    Metric, ModelToLog, TrackingError, TrackingUri,
};

const MODELS: &str = "models";
const OUTPUTS: &str = "outputs";
const PENDING: i64 = 1;
const READY: i64 = 2;

fn status_name(code: Option<i64>) -> &'static str {
    match code {
        Some(READY) => "READY",
        Some(PENDING) => "PENDING",
        Some(3) => "FAILED_UPLOAD",
        _ => "UNSPECIFIED",
    }
}

/// The latest point of each metric file: lines `<timestamp> <value> <step> <run_id>` (MLflow
/// adds the dataset's name and digest when a metric names one).
fn read_model_metrics(dir: &Path) -> Result<Vec<Metric>, TrackingError> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for (path, key) in walk_files(dir)? {
        let text = std::fs::read_to_string(&path).map_err(|e| TrackingError::io(&path, e))?;
        let mut points = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let f: Vec<&str> = line.split(' ').collect();
            let parsed = (f.len() >= 3)
                .then(|| {
                    Some(Metric {
                        key: key.clone(),
                        timestamp: f[0].parse().ok()?,
                        value: super::parse_metric_value(f[1])?,
                        step: f[2].parse().ok()?,
                    })
                })
                .flatten();
            points.push(parsed.ok_or_else(|| {
                corrupt(
                    &path,
                    &format!("line {} is not `<timestamp> <value> <step> <run>`", i + 1),
                )
            })?);
        }
        out.extend(super::latest_metric(points));
    }
    Ok(out)
}

impl FileStore {
    pub(super) fn log_model_files(&self, m: &ModelToLog) -> Result<LoggedModel, TrackingError> {
        let exp_dir = self.experiment_dir(&m.experiment_id)?;
        let model_id = m
            .model_id
            .clone()
            .unwrap_or_else(|| format!("m-{}", uuid::Uuid::new_v4().simple()));
        super::check_id("model", &model_id, 64)?;
        for p in &m.params {
            validate_key("param", &p.key)?;
        }
        for t in &m.tags {
            validate_key("tag", &t.key)?;
        }
        let mut runs = vec![self.find_active_run(&m.source_run_id)?.0];
        for r in &m.output_of {
            runs.push(self.find_active_run(r)?.0);
        }
        let model_dir = exp_dir.join(MODELS).join(&model_id);
        let artifacts = model_dir.join("artifacts");
        let location = path_to_file_uri(&artifacts);
        let created = now_ms();
        let meta = |status: i64, updated: i64| {
            vec![
                ("artifact_location".to_string(), Yaml::str(&location)),
                ("creation_timestamp".to_string(), Yaml::Int(created)),
                ("experiment_id".to_string(), Yaml::str(&m.experiment_id)),
                ("last_updated_timestamp".to_string(), Yaml::Int(updated)),
                ("lifecycle_stage".to_string(), Yaml::str("active")),
                ("model_id".to_string(), Yaml::str(&model_id)),
                (
                    "model_type".to_string(),
                    m.model_type.as_ref().map_or(Yaml::Null, Yaml::str),
                ),
                ("name".to_string(), Yaml::str(&m.name)),
                ("source_run_id".to_string(), Yaml::str(&m.source_run_id)),
                ("status".to_string(), Yaml::Int(status)),
                ("status_message".to_string(), Yaml::Null),
            ]
        };
        create_dir_all(&model_dir.join("metrics"))?;
        let mut lines: std::collections::BTreeMap<&str, String> = Default::default();
        for x in &m.metrics {
            validate_key("metric", &x.key)?;
            lines.entry(&x.key).or_default().push_str(&format!(
                "{} {} {} {}\n",
                x.timestamp,
                super::format_metric_value(x.value),
                x.step,
                m.source_run_id
            ));
        }
        for (key, text) in lines {
            write_atomic(
                &exp_dir,
                &model_dir.join("metrics").join(key),
                text.as_bytes(),
            )?;
        }
        write_atomic(
            &exp_dir,
            &model_dir.join(META),
            yaml::to_string(&meta(PENDING, created)).as_bytes(),
        )?;
        for p in &m.params {
            write_atomic(
                &exp_dir,
                &model_dir.join("params").join(&p.key),
                p.value.as_bytes(),
            )?;
        }
        for t in &m.tags {
            write_atomic(
                &exp_dir,
                &model_dir.join("tags").join(&t.key),
                t.value.as_bytes(),
            )?;
        }
        create_dir_all(&artifacts)?;
        copy_tree(&m.dir, &artifacts)?;
        let size = walk_files(&artifacts)?
            .iter()
            .filter_map(|(p, _)| std::fs::metadata(p).ok())
            .map(|md| md.len())
            .sum();
        write_atomic(
            &exp_dir,
            &artifacts.join("MLmodel"),
            logged_mlmodel(&m.mlmodel, &model_id, &location, &m.source_run_id, size).as_bytes(),
        )?;
        write_atomic(
            &exp_dir,
            &model_dir.join(META),
            yaml::to_string(&meta(READY, now_ms())).as_bytes(),
        )?;
        for run_dir in runs {
            // MLflow 3.17 writes the model id as both ends of the link.
            let link = vec![
                ("destination_id".to_string(), Yaml::str(&model_id)),
                ("destination_type".to_string(), Yaml::str("MODEL_OUTPUT")),
                ("source_id".to_string(), Yaml::str(&model_id)),
                ("source_type".to_string(), Yaml::str("RUN_OUTPUT")),
                ("step".to_string(), Yaml::Int(0)),
                ("tags".to_string(), Yaml::Map(Vec::new())),
            ];
            write_atomic(
                &run_dir,
                &run_dir.join(OUTPUTS).join(&model_id).join(META),
                yaml::to_string(&link).as_bytes(),
            )?;
        }
        self.read_model(&model_dir)
    }

    /// Reads `models/<id>/` (meta, params, tags).
    fn read_model(&self, model_dir: &Path) -> Result<LoggedModel, TrackingError> {
        let path = model_dir.join(META);
        let map = read_yaml_opt(&path)?.ok_or_else(|| corrupt(&path, "it is missing"))?;
        let get = |k: &str| yaml::get(&map, k).and_then(Yaml::as_string);
        Ok(LoggedModel {
            model_id: get("model_id").ok_or_else(|| corrupt(&path, "no `model_id`"))?,
            name: get("name").unwrap_or_default(),
            experiment_id: get("experiment_id").unwrap_or_default(),
            source_run_id: get("source_run_id"),
            artifact_location: get("artifact_location").unwrap_or_default(),
            status: status_name(yaml::get(&map, "status").and_then(Yaml::as_i64)).to_string(),
            params: read_kv_dir(&model_dir.join("params"))?,
            metrics: read_model_metrics(&model_dir.join("metrics"))?,
            tags: read_kv_dir(&model_dir.join("tags"))?,
        })
    }

    pub(super) fn models_of_run(&self, run_id: &str) -> Result<Vec<LoggedModel>, TrackingError> {
        let (run_dir, _) = self.find_run(run_id)?;
        let exp_dir = run_dir.parent().unwrap_or(&self.root).to_path_buf();
        let mut out = Vec::new();
        for (id, _) in subdirs(&run_dir.join(OUTPUTS))? {
            let dir = exp_dir.join(MODELS).join(&id);
            if dir.join(META).is_file() {
                out.push(self.read_model(&dir)?);
            } else {
                tracing::warn!("model `{id}`, an output of run `{run_id}`, is missing");
            }
        }
        Ok(out)
    }

    pub(super) fn copy_model_files(
        &self,
        model: &LoggedModel,
        dest: &Path,
    ) -> Result<(), TrackingError> {
        let dir: PathBuf = match TrackingUri::parse(&model.artifact_location) {
            Ok(TrackingUri::File(p)) => p,
            _ => {
                return Err(TrackingError::ArtifactsNotLocal {
                    run_id: model.model_id.clone(),
                    uri: model.artifact_location.clone(),
                })
            }
        };
        copy_tree(&dir, dest)
    }
}

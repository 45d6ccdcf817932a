//! The REST API's answers as MLflow's protobuf JSON writes them, decoded with serde and turned
//! into the tracking layer's types. Protobuf JSON sends int64 as a string or a number and
//! non-finite doubles as `"NaN"`, `"Infinity"`, `"-Infinity"`; missing fields take protobuf's
//! defaults; unknown fields are ignored, so a newer server still reads.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;

use crate::tracking::{
    ArtifactEntry, DatasetInput, Experiment, Metric, Run, RunInfo, RunStatus, TAG_DATASET_CONTEXT,
};

/// Decodes `v` as a wire type; `None` when it does not have that shape.
fn decode<T: DeserializeOwned>(v: &Value) -> Option<T> {
    T::deserialize(v).ok()
}

pub(super) fn experiment(v: &Value) -> Option<Experiment> {
    decode::<WireExperiment>(v).map(Into::into)
}

pub(super) fn run_info(v: &Value) -> Option<RunInfo> {
    decode::<WireRunInfo>(v).and_then(|w| w.into_info())
}

pub(super) fn run(v: &Value) -> Option<Run> {
    decode::<WireRun>(v).and_then(|w| w.into_run())
}

pub(super) fn metric(v: &Value) -> Option<Metric> {
    decode::<WireMetric>(v).map(Into::into)
}

pub(super) fn file(v: &Value) -> Option<ArtifactEntry> {
    decode::<WireFile>(v).map(Into::into)
}

/// An id that is a string or a number (`experiment_id`).
pub(super) fn id(v: &Value) -> Option<String> {
    decode::<Id>(v).map(|i| i.0)
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: String,
}

fn map(kvs: Vec<KeyValue>) -> BTreeMap<String, String> {
    kvs.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

fn active() -> String {
    "active".into()
}

#[derive(Deserialize)]
struct WireExperiment {
    experiment_id: Id,
    name: String,
    #[serde(default)]
    artifact_location: String,
    #[serde(default = "active")]
    lifecycle_stage: String,
    #[serde(default, deserialize_with = "opt_i64")]
    creation_time: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    last_update_time: Option<i64>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

impl From<WireExperiment> for Experiment {
    fn from(w: WireExperiment) -> Self {
        Experiment {
            experiment_id: w.experiment_id.0,
            name: w.name,
            artifact_location: w.artifact_location,
            lifecycle_stage: w.lifecycle_stage,
            creation_time: w.creation_time,
            last_update_time: w.last_update_time,
            tags: map(w.tags),
        }
    }
}

#[derive(Deserialize)]
struct WireRunInfo {
    // MLflow sends both; `run_uuid` is the deprecated name.
    run_id: Option<String>,
    run_uuid: Option<String>,
    experiment_id: Id,
    #[serde(default)]
    run_name: String,
    #[serde(default)]
    user_id: String,
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    start_time: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    end_time: Option<i64>,
    #[serde(default)]
    artifact_uri: String,
    #[serde(default = "active")]
    lifecycle_stage: String,
}

impl WireRunInfo {
    fn into_info(self) -> Option<RunInfo> {
        Some(RunInfo {
            run_id: self.run_id.or(self.run_uuid)?,
            experiment_id: self.experiment_id.0,
            run_name: self.run_name,
            user_id: self.user_id,
            status: self
                .status
                .as_deref()
                .and_then(RunStatus::from_name)
                .unwrap_or(RunStatus::Running),
            start_time: self.start_time.unwrap_or(0),
            end_time: self.end_time,
            artifact_uri: self.artifact_uri,
            lifecycle_stage: self.lifecycle_stage,
        })
    }
}

#[derive(Deserialize)]
struct WireMetric {
    key: String,
    #[serde(deserialize_with = "f64_or_name")]
    value: f64,
    #[serde(default, deserialize_with = "opt_i64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    step: Option<i64>,
}

impl From<WireMetric> for Metric {
    fn from(w: WireMetric) -> Self {
        Metric {
            key: w.key,
            value: w.value,
            timestamp: w.timestamp.unwrap_or(0),
            step: w.step.unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct WireRun {
    info: WireRunInfo,
    #[serde(default)]
    data: WireRunData,
    #[serde(default)]
    inputs: WireRunInputs,
}

#[derive(Deserialize, Default)]
struct WireRunData {
    #[serde(default)]
    metrics: Vec<WireMetric>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

#[derive(Deserialize, Default)]
struct WireRunInputs {
    #[serde(default)]
    dataset_inputs: Vec<WireDatasetInput>,
}

#[derive(Deserialize)]
struct WireDatasetInput {
    dataset: Option<WireDataset>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct WireDataset {
    #[serde(default)]
    name: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    source_type: String,
    #[serde(default)]
    source: String,
    schema: Option<String>,
    profile: Option<String>,
}

impl WireRun {
    fn into_run(self) -> Option<Run> {
        let inputs = self
            .inputs
            .dataset_inputs
            .into_iter()
            .filter_map(|di| {
                let ds = di.dataset?;
                Some(DatasetInput {
                    name: ds.name,
                    digest: ds.digest,
                    source_type: ds.source_type,
                    source: ds.source,
                    schema: ds.schema,
                    profile: ds.profile,
                    context: map(di.tags).remove(TAG_DATASET_CONTEXT),
                })
            })
            .collect();
        Some(Run {
            info: self.info.into_info()?,
            metrics: self
                .data
                .metrics
                .into_iter()
                .map(|m| (m.key.clone(), Metric::from(m)))
                .collect(),
            params: map(self.data.params),
            tags: map(self.data.tags),
            inputs,
        })
    }
}

#[derive(Deserialize)]
struct WireFile {
    #[serde(default)]
    path: String,
    #[serde(default)]
    is_dir: bool,
    #[serde(default, deserialize_with = "opt_i64")]
    file_size: Option<i64>,
}

impl From<WireFile> for ArtifactEntry {
    fn from(w: WireFile) -> Self {
        ArtifactEntry {
            path: w.path,
            is_dir: w.is_dir,
            file_size: w.file_size.and_then(|s| u64::try_from(s).ok()),
        }
    }
}

/// A string or an integer, kept as a string.
struct Id(String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Id(s)),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Id(n.to_string())),
            other => Err(D::Error::custom(format!("expected an id, got {other}"))),
        }
    }
}

/// Int64 as a number or a string; anything unreadable counts as absent, as protobuf's default.
fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A double as a number, a decimal string, or protobuf's names for the non-finite values.
fn f64_or_name<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| D::Error::custom("number out of range")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| D::Error::custom(format!("`{other}` is not a number"))),
        },
        other => Err(D::Error::custom(format!("expected a number, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn protobuf_json_numbers_arrive_as_numbers_or_strings() {
        let m = metric(&json!({ "key": "rmse", "value": "NaN", "timestamp": "17", "step": 2 }))
            .unwrap();
        assert!(m.value.is_nan());
        assert_eq!((m.timestamp, m.step), (17, 2));
        for (wire, want) in [
            ("Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
        ] {
            let v = metric(&json!({ "key": "k", "value": wire })).unwrap().value;
            assert_eq!(v, want);
        }
        assert!(metric(&json!({ "key": "k", "value": "high" })).is_none());
        assert_eq!(id(&json!(12)).as_deref(), Some("12"));
        assert_eq!(id(&json!("12")).as_deref(), Some("12"));
    }

    #[test]
    fn a_run_reads_with_defaults_for_what_the_server_leaves_out() {
        let r = run(&json!({
            "info": { "run_uuid": "abc", "experiment_id": "1", "status": "FINISHED",
                      "start_time": "5", "unknown_field": true },
            "data": { "params": [{ "key": "rank", "value": "8" }] },
            "inputs": { "dataset_inputs": [
                { "dataset": { "name": "d", "digest": "x" },
                  "tags": [{ "key": TAG_DATASET_CONTEXT, "value": "training" }] },
                { "tags": [] }
            ] }
        }))
        .unwrap();
        assert_eq!(r.info.run_id, "abc");
        assert_eq!(r.info.status, RunStatus::Finished);
        assert_eq!(r.info.start_time, 5);
        assert_eq!(r.info.lifecycle_stage, "active");
        assert_eq!(r.params["rank"], "8");
        assert_eq!(r.inputs.len(), 1);
        assert_eq!(r.inputs[0].context.as_deref(), Some("training"));
        assert!(run(&json!({ "info": { "experiment_id": "1" } })).is_none());
    }
}

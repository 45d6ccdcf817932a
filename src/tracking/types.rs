//! What the tracking layer logs and reads back: runs, their metrics, params, tags and datasets.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{now_ms, TAG_PARENT_RUN_ID, TAG_RUN_NAME};

/// A run's lifecycle status, stored in the file store as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    /// The name MLflow's REST API and search filters use (`FINISHED`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RUNNING" => RunStatus::Running,
            "SCHEDULED" => RunStatus::Scheduled,
            "FINISHED" => RunStatus::Finished,
            "FAILED" => RunStatus::Failed,
            "KILLED" => RunStatus::Killed,
            _ => return None,
        })
    }

    /// The integer the file store's `meta.yaml` holds.
    pub fn code(self) -> i64 {
        match self {
            RunStatus::Running => 1,
            RunStatus::Scheduled => 2,
            RunStatus::Finished => 3,
            RunStatus::Failed => 4,
            RunStatus::Killed => 5,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => RunStatus::Running,
            2 => RunStatus::Scheduled,
            3 => RunStatus::Finished,
            4 => RunStatus::Failed,
            5 => RunStatus::Killed,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Finished | RunStatus::Failed | RunStatus::Killed
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One metric value at a step. `timestamp` is in milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

impl Metric {
    pub fn new(key: impl Into<String>, value: f64, step: i64) -> Self {
        Metric {
            key: key.into(),
            value,
            timestamp: now_ms(),
            step,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    pub key: String,
    pub value: String,
}

impl Param {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Param {
            key: key.into(),
            value: value.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Metrics, params and tags logged together. Stores split it as their limits require.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub metrics: Vec<Metric>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty() && self.params.is_empty() && self.tags.is_empty()
    }

    pub fn len(&self) -> usize {
        self.metrics.len() + self.params.len() + self.tags.len()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    /// `active` or `deleted`.
    pub lifecycle_stage: String,
    pub creation_time: Option<i64>,
    pub last_update_time: Option<i64>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    pub run_name: String,
    pub user_id: String,
    pub status: RunStatus,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
}

/// A logged dataset: MLflow's dataset entity plus the input's context tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetInput {
    pub name: String,
    /// At most 36 characters.
    pub digest: String,
    /// Where the data lives, e.g. `local`, `http`.
    pub source_type: String,
    /// A JSON description of the source, e.g. `{"uri": "data/processed"}`.
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
    /// `training`, `validation`, `test`: stored as the input tag `mlflow.data.context`.
    pub context: Option<String>,
}

impl DatasetInput {
    /// A dataset read from a local path.
    pub fn local(name: impl Into<String>, digest: impl Into<String>, uri: &str) -> Self {
        DatasetInput {
            name: name.into(),
            digest: digest.into(),
            source_type: "local".into(),
            source: serde_json::json!({ "uri": uri }).to_string(),
            schema: None,
            profile: None,
            context: None,
        }
    }

    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// The dataset's columns as MLflow writes them: `{"mlflow_colspec": [...]}`.
    pub fn with_schema(mut self, schema: String) -> Self {
        self.schema = Some(schema);
        self
    }

    /// A JSON summary of the dataset (rows, users, items, density).
    pub fn with_profile(mut self, profile: String) -> Self {
        self.profile = Some(profile);
        self
    }
}

/// A run with its params, latest metric values, tags and dataset inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub info: RunInfo,
    /// The latest value of each metric: the max by (step, timestamp, value), as MLflow shows it.
    pub metrics: BTreeMap<String, Metric>,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub inputs: Vec<DatasetInput>,
}

impl Run {
    pub fn parent_run_id(&self) -> Option<&str> {
        self.tags.get(TAG_PARENT_RUN_ID).map(String::as_str)
    }

    pub fn metric(&self, key: &str) -> Option<f64> {
        self.metrics.get(key).map(|m| m.value)
    }
}

/// One entry of an artifact listing; `path` is relative to the run's artifact root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactEntry {
    pub path: String,
    pub is_dir: bool,
    pub file_size: Option<u64>,
}

/// What a new run starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub experiment_id: String,
    /// MLflow generates a name when none is given; recflow always gives one.
    pub run_name: Option<String>,
    pub user_id: String,
    pub start_time: i64,
    /// Include `mlflow.parentRunId` for a nested run (see [`NewRun::with_parent`]).
    pub tags: Vec<Tag>,
}

impl NewRun {
    pub fn new(experiment_id: impl Into<String>, run_name: impl Into<String>) -> Self {
        NewRun {
            experiment_id: experiment_id.into(),
            run_name: Some(run_name.into()),
            user_id: String::new(),
            start_time: now_ms(),
            tags: Vec::new(),
        }
    }

    pub fn with_parent(self, parent_run_id: impl Into<String>) -> Self {
        self.with_tag(TAG_PARENT_RUN_ID, parent_run_id)
    }

    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push(Tag::new(key, value));
        self
    }

    pub fn with_user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = user_id.into();
        self
    }

    /// The run name: the explicit one, else the `mlflow.runName` tag.
    pub(crate) fn resolved_name(&self) -> Option<String> {
        self.run_name.clone().filter(|n| !n.is_empty()).or_else(|| {
            self.tags
                .iter()
                .find(|t| t.key == TAG_RUN_NAME)
                .map(|t| t.value.clone())
        })
    }
}

/// A run search: MLflow's filter string and order-by entries (see [`super::filestore`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RunQuery {
    pub experiment_ids: Vec<String>,
    /// e.g. `metrics.rmse < 1 and params.rank = '10'`.
    pub filter: Option<String>,
    /// e.g. `["metrics.rmse ASC"]`; ties fall back to start time (newest first), then run id.
    pub order_by: Vec<String>,
    pub max_results: usize,
}

impl RunQuery {
    pub fn new(experiment_ids: Vec<String>) -> Self {
        RunQuery {
            experiment_ids,
            filter: None,
            order_by: Vec::new(),
            max_results: 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_status_codes_round_trip() {
        for s in [
            RunStatus::Running,
            RunStatus::Scheduled,
            RunStatus::Finished,
            RunStatus::Failed,
            RunStatus::Killed,
        ] {
            assert_eq!(RunStatus::from_code(s.code()), Some(s));
            assert_eq!(RunStatus::from_name(s.as_str()), Some(s));
        }
        assert_eq!(RunStatus::Finished.code(), 3);
    }
}

/// An MLflow 3 LoggedModel to create from a local folder. The store writes the folder's
/// `MLmodel` itself from `mlmodel` plus the fields only it knows (`model_id`, `model_uuid`,
/// `artifact_path`, `run_id`, `utc_time_created`, `model_size_bytes`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelToLog {
    pub experiment_id: String,
    /// The model's name in its run (`model`), so `runs:/<source_run_id>/model` finds it.
    pub name: String,
    pub source_run_id: String,
    /// The model's files, without `MLmodel`.
    pub dir: std::path::PathBuf,
    /// The `MLmodel` fields the caller sets (flavors, signature, input example info).
    pub(crate) mlmodel: Vec<(String, crate::tracking::filestore::yaml::Yaml)>,
    pub params: Vec<Param>,
    /// The source run's figures of this model, logged on the model as well (MLflow's
    /// `log_metrics(..., model_id=...)`); the same points as on the run, so the run's history
    /// does not grow.
    pub metrics: Vec<Metric>,
    pub tags: Vec<Tag>,
    pub model_type: Option<String>,
    /// Further runs that record the model as an output (the source run always does).
    pub output_of: Vec<String>,
    /// An id to use when the store chooses ids itself (a local copy of a spooled model);
    /// a server assigns its own.
    pub model_id: Option<String>,
}

/// A logged model as a store reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModel {
    pub model_id: String,
    pub name: String,
    pub experiment_id: String,
    pub source_run_id: Option<String>,
    /// Where its files live (`file:///...` or `mlflow-artifacts:/...`).
    pub artifact_location: String,
    /// `READY`, `PENDING` or `FAILED_UPLOAD`.
    pub status: String,
    pub params: BTreeMap<String, String>,
    /// The latest value of each of its metrics.
    pub metrics: Vec<Metric>,
    pub tags: BTreeMap<String, String>,
}

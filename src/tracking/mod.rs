//! Experiment tracking in MLflow's formats (observed against MLflow 3.17.2).
//!
//! The rest of recflow logs through the object-safe [`Tracker`] trait and gets one from
//! [`open_tracker`]: a local file store ([`filestore::FileStore`], `file:./mlruns`, written exactly
//! as MLflow reads it, with MLflow's run filter and order-by grammar) or an MLflow tracking server
//! over its REST API ([`rest::RestStore`]). [`spool::BufferedTracker`] keeps a run's results when
//! a server goes away mid-run, and [`sync::sync`] copies runs from one store to another.
//!
//! Layout: `types` (runs, metrics, params, tags), `error`, `uri` (tracking URIs), `limits`
//! (MLflow's key and value rules), `tags` (MLflow's tag names), `files` (artifact paths),
//! `mlmodel` (the `MLmodel` file);
//! `filestore/` and `rest/` each hold their private parts.
//!
//! This module knows nothing about models, evaluation, the command line or the environment:
//! URIs, credentials and timeouts come in as values ([`TrackingSettings`]).

mod error;
mod files;
pub mod filestore;
mod limits;
mod mlmodel;
pub mod rest;
pub mod spool;
pub mod sync;
mod tags;
#[cfg(test)]
mod testserver;
mod types;
mod uri;

use std::path::Path;

pub use error::TrackingError;
pub(crate) use files::{copy_tree, join_artifact_path, walk_files};
pub use filestore::{FileStore, SearchError};
pub(crate) use limits::{
    experiment_tags, normalize_batch, validate_artifact_path, validate_dataset,
    validate_experiment_name, validate_key,
};
pub use limits::{
    validate_registered_name, MAX_DATASET_DIGEST_CHARS, MAX_EXPERIMENT_NAME_CHARS, MAX_KEY_CHARS,
    MAX_PARAM_VALUE_CHARS, MAX_TAG_VALUE_CHARS,
};
pub(crate) use mlmodel::{logged_mlmodel, without_identity};
pub use rest::{RestStore, RetryPolicy, TrackingSettings};
pub use spool::{BufferedTracker, SpoolOutcome};
pub use sync::{sync, SyncReport};
pub use tags::*;
pub use types::{
    ArtifactEntry, Batch, DatasetInput, Experiment, LoggedModel, Metric, ModelToLog, NewRun, Param,
    Run, RunInfo, RunQuery, RunStatus, Tag,
};
pub(crate) use uri::path_to_file_uri;
pub use uri::{link_uri, mask_uri, redact, TrackingUri};

/// A tracking store recflow can log to and read from. Object safe: recflow holds a
/// `Box<dyn Tracker>` from [`open_tracker`].
pub trait Tracker: Send + Sync {
    /// The store's URI for messages, with secrets masked.
    fn uri(&self) -> String;

    /// Fails fast when the store cannot be used (server down, bad credentials, unwritable
    /// folder). Call it before any training.
    fn ping(&self) -> Result<(), TrackingError>;

    /// The id of the experiment `name`, created with `description` and `tags` when missing.
    /// On an existing experiment, a description or tag with a different value is updated.
    fn get_or_create_experiment(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
    ) -> Result<String, TrackingError>;

    fn create_run(&self, run: &NewRun) -> Result<RunInfo, TrackingError>;

    /// Logs params (immutable: a different value for a logged key is an error naming it),
    /// metrics (appended to their history) and tags (overwritten).
    fn log_batch(&self, run_id: &str, batch: &Batch) -> Result<(), TrackingError>;

    /// Stores the file `local_file` as `<artifact_path>/<file name>` among the run's artifacts.
    fn log_artifact(
        &self,
        run_id: &str,
        local_file: &Path,
        artifact_path: Option<&str>,
    ) -> Result<(), TrackingError>;

    /// Stores the contents of the folder `local_dir` under `artifact_path` (any depth).
    fn log_artifacts(
        &self,
        run_id: &str,
        local_dir: &Path,
        artifact_path: Option<&str>,
    ) -> Result<(), TrackingError>;

    fn log_input(&self, run_id: &str, input: &DatasetInput) -> Result<(), TrackingError>;

    /// Ends the run with a terminal status and an end time in milliseconds.
    fn end_run(&self, run_id: &str, status: RunStatus, end_time: i64) -> Result<(), TrackingError>;

    /// Active experiments, newest first.
    fn list_experiments(&self) -> Result<Vec<Experiment>, TrackingError>;

    /// The experiment named `name`, active or deleted.
    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, TrackingError>;

    fn search_runs(&self, query: &RunQuery) -> Result<Vec<Run>, TrackingError>;

    fn get_run(&self, run_id: &str) -> Result<Run, TrackingError>;

    /// Runs of an experiment that exist but cannot be read (a file store's malformed
    /// `meta.yaml`): (run folder or id, what is wrong). Searches skip them; `sync` names them.
    fn unreadable_runs(
        &self,
        _experiment_id: &str,
    ) -> Result<Vec<(String, String)>, TrackingError> {
        Ok(Vec::new())
    }

    /// Every logged value of one metric, in logging order.
    fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>, TrackingError>;

    /// The entries directly under `path` (the artifact root when `None`).
    fn list_artifacts(
        &self,
        run_id: &str,
        path: Option<&str>,
    ) -> Result<Vec<ArtifactEntry>, TrackingError>;

    /// Copies the artifact file or folder `path` (everything when `None`) into the folder `dest`.
    fn download_artifacts(
        &self,
        run_id: &str,
        path: Option<&str>,
        dest: &Path,
    ) -> Result<(), TrackingError>;

    /// Logs an MLflow 3 LoggedModel: creates it (PENDING), stores its files and `MLmodel`,
    /// marks it READY and records it as an output of its source run and of `output_of`.
    fn log_model(&self, model: &ModelToLog) -> Result<LoggedModel, TrackingError>;

    /// The logged models a run records as outputs.
    fn run_models(&self, run_id: &str) -> Result<Vec<LoggedModel>, TrackingError>;

    /// Copies a logged model's files (its `MLmodel` included) into the folder `dest`.
    fn download_model(&self, model: &LoggedModel, dest: &Path) -> Result<(), TrackingError>;

    fn log_params(&self, run_id: &str, params: &[Param]) -> Result<(), TrackingError> {
        self.log_batch(
            run_id,
            &Batch {
                params: params.to_vec(),
                ..Batch::default()
            },
        )
    }

    fn log_metrics(&self, run_id: &str, metrics: &[Metric]) -> Result<(), TrackingError> {
        self.log_batch(
            run_id,
            &Batch {
                metrics: metrics.to_vec(),
                ..Batch::default()
            },
        )
    }

    fn set_tags(&self, run_id: &str, tags: &[Tag]) -> Result<(), TrackingError> {
        self.log_batch(
            run_id,
            &Batch {
                tags: tags.to_vec(),
                ..Batch::default()
            },
        )
    }

    fn log_metric(
        &self,
        run_id: &str,
        key: &str,
        value: f64,
        step: i64,
    ) -> Result<(), TrackingError> {
        self.log_metrics(run_id, &[Metric::new(key, value, step)])
    }
}

/// Opens the store a tracking URI names. Database and Databricks URIs get an error telling
/// the user to put an MLflow server in front of them.
pub fn open_tracker(
    uri: &str,
    settings: &TrackingSettings,
) -> Result<Box<dyn Tracker>, TrackingError> {
    match TrackingUri::parse(uri)? {
        TrackingUri::File(path) => Ok(Box::new(FileStore::open(path)?)),
        TrackingUri::Http(url) => Ok(Box::new(RestStore::new(&url, settings)?)),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

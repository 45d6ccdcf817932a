//! Experiment tracking in MLflow's formats (observed against MLflow 3.17.2).
//!
//! The rest of recflow logs through the object-safe [`Tracker`] trait and gets one from
//! [`open_tracker`]: a local file store ([`filestore::FileStore`], `file:./mlruns`, written exactly
//! as MLflow reads it) or an MLflow tracking server over its REST API ([`rest::RestStore`]).
//! [`search`] implements MLflow's run filter and order-by grammar for the file store,
//! [`spool::BufferedTracker`] keeps a run's results when a server goes away mid-run, and
//! [`sync::sync`] copies runs from one store to another.
//!
//! This module knows nothing about models, evaluation, the command line or the environment:
//! URIs, credentials and timeouts come in as values ([`TrackingSettings`]).

pub mod filestore;
mod limits;
mod md5;
pub mod rest;
pub mod search;
pub mod spool;
pub mod sync;
mod tags;
#[cfg(test)]
mod testserver;
mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use filestore::FileStore;
pub use rest::{RestStore, RetryPolicy};
pub use search::SearchError;
pub use spool::{BufferedTracker, SpoolOutcome};
pub use sync::{sync, SyncReport};

pub use limits::*;
pub use tags::*;

/// Errors of the tracking layer. Messages never contain passwords or tokens.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error(
        "recflow cannot write to `{uri}` directly: it writes `file:` stores and talks to MLflow \
         servers over HTTP\nhint: start `mlflow server --backend-store-uri {uri} --host 127.0.0.1 \
         --port 5000` and pass `--tracking-uri http://127.0.0.1:5000`"
    )]
    UnsupportedUri { uri: String },
    #[error("invalid tracking uri `{uri}`: {reason}")]
    InvalidUri { uri: String, reason: String },
    #[error(
        "tracking server `{uri}` is unreachable: {cause}\nhint: pass \
         `--tracking-uri file:./mlruns` to log locally, then copy the runs with `recflow sync`"
    )]
    Unreachable { uri: String, cause: String },
    #[error(
        "tracking server `{uri}` rejected the credentials (401{}): {message}\nhint: set \
         MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN",
        with_space(.code)
    )]
    Unauthorized {
        uri: String,
        code: String,
        message: String,
    },
    #[error(
        "tracking server `{uri}` refused the request (403{}): {message}\nhint: the user may \
         lack permission on this experiment; a server behind another host name needs \
         `mlflow server --allowed-hosts <host>`",
        with_space(.code)
    )]
    Forbidden {
        uri: String,
        code: String,
        message: String,
    },
    #[error("tracking server `{uri}` answered {status}{}: {message}", with_space(.code))]
    Server {
        uri: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("unexpected answer from tracking server `{uri}`: {reason}")]
    Protocol { uri: String, reason: String },
    #[error("invalid {kind} key `{key}`: {reason}")]
    InvalidKey {
        kind: &'static str,
        key: String,
        reason: String,
    },
    #[error("invalid value for `{key}`: {reason}")]
    InvalidValue { key: String, reason: String },
    #[error(
        "param `{key}` of run `{run_id}` is already `{old}`; params cannot change (tried `{new}`)"
    )]
    ParamChanged {
        run_id: String,
        key: String,
        old: String,
        new: String,
    },
    #[error("invalid experiment name `{name}`: {reason}")]
    InvalidExperimentName { name: String, reason: String },
    #[error(
        "experiment `{name}` exists in deleted state\nhint: restore it in the MLflow UI, or remove \
         it for good with `mlflow gc`, to use the name again"
    )]
    ExperimentDeleted { name: String },
    #[error("experiment `{0}` not found")]
    ExperimentNotFound(String),
    #[error("run `{0}` not found")]
    RunNotFound(String),
    #[error("run `{run_id}` is deleted; it cannot be changed")]
    RunDeleted { run_id: String },
    #[error(
        "the tracking server does not proxy artifacts: run `{run_id}` stores them at \
         `{artifact_uri}`\nhint: start the server with `--serve-artifacts` and \
         `--artifacts-destination <dir or bucket>` so recflow can upload through it"
    )]
    ArtifactsNotProxied {
        run_id: String,
        artifact_uri: String,
    },
    #[error("artifact location `{uri}` of run `{run_id}` is not a local path")]
    ArtifactsNotLocal { run_id: String, uri: String },
    #[error("invalid artifact path `{path}`: {reason}")]
    InvalidArtifactPath { path: String, reason: String },
    #[error("malformed tracking file `{path}`: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("`{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out waiting for the lock `{path}` (held by another recflow?)")]
    LockTimeout { path: PathBuf },
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// ` CODE`, or nothing for an error without MLflow's `error_code`.
fn with_space(code: &str) -> String {
    if code.is_empty() {
        String::new()
    } else {
        format!(" {code}")
    }
}

impl TrackingError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrackingError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether the failure may pass: the server is down, overloaded or timed out. Anything else
    /// (bad keys, bad credentials, changed params) fails again the same way.
    pub fn is_transient(&self) -> bool {
        match self {
            TrackingError::Unreachable { .. } => true,
            TrackingError::Server { status, .. } => rest::RETRY_STATUSES.contains(status),
            _ => false,
        }
    }
}

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

/// A run search: MLflow's filter string and order-by entries (see [`search`]).
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

/// How to reach a tracking server: credentials, TLS and timeouts. Resolved by the caller from
/// the command line and the environment; the library never reads the environment itself.
#[derive(Clone)]
pub struct TrackingSettings {
    /// Basic auth user; with `password` it wins over `token`.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Bearer token, used when no username and password are given.
    pub token: Option<String>,
    /// Skip TLS certificate verification (testing only).
    pub insecure_tls: bool,
    /// A PEM bundle of CA certificates to trust besides the system's.
    pub ca_bundle: Option<PathBuf>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for TrackingSettings {
    fn default() -> Self {
        TrackingSettings {
            username: None,
            password: None,
            token: None,
            insecure_tls: false,
            ca_bundle: None,
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
        }
    }
}

impl fmt::Debug for TrackingSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |s: &Option<String>| s.as_ref().map(|_| "****");
        f.debug_struct("TrackingSettings")
            .field("username", &self.username)
            .field("password", &mask(&self.password))
            .field("token", &mask(&self.token))
            .field("insecure_tls", &self.insecure_tls)
            .field("ca_bundle", &self.ca_bundle)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// A parsed tracking URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackingUri {
    /// `file:./mlruns`, `file:///abs/mlruns` or a plain path.
    File(PathBuf),
    /// `http://` or `https://` base URL of an MLflow tracking server.
    Http(String),
}

impl TrackingUri {
    pub fn parse(uri: &str) -> Result<Self, TrackingError> {
        let trimmed = uri.trim();
        if trimmed.is_empty() {
            return Err(TrackingError::InvalidUri {
                uri: String::new(),
                reason: "it is empty".into(),
            });
        }
        // MLflow reads these bare words as schemes.
        if ["databricks", "databricks-uc", "uc"].contains(&trimmed.to_ascii_lowercase().as_str()) {
            return Err(TrackingError::UnsupportedUri {
                uri: trimmed.to_string(),
            });
        }
        let scheme = uri_scheme(trimmed);
        match scheme.as_deref() {
            None => Ok(TrackingUri::File(PathBuf::from(trimmed))),
            Some("file") => Ok(TrackingUri::File(file_uri_to_path(trimmed).map_err(
                |reason| TrackingError::InvalidUri {
                    uri: mask_uri(trimmed),
                    reason,
                },
            )?)),
            Some("http") | Some("https") => Ok(TrackingUri::Http(trimmed.to_string())),
            Some(_) => Err(TrackingError::UnsupportedUri {
                uri: mask_uri(trimmed),
            }),
        }
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

/// The scheme of a URI (lowercase), or `None` for a plain path (including `C:\...`).
fn uri_scheme(uri: &str) -> Option<String> {
    let colon = uri.find(':')?;
    let scheme = &uri[..colon];
    let valid = scheme.len() > 1
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// `file:./x` -> `./x`, `file:///a%20b` -> `/a b`, `file:/a` -> `/a`.
fn file_uri_to_path(uri: &str) -> Result<PathBuf, String> {
    let rest = &uri["file:".len()..];
    let path = if let Some(after) = rest.strip_prefix("//") {
        // `file://host/path`: only an empty host or `localhost` is local.
        let slash = after.find('/').unwrap_or(after.len());
        let host = &after[..slash];
        if !host.is_empty() && host != "localhost" {
            return Err(format!("host `{host}` is not local"));
        }
        &after[slash..]
    } else {
        rest
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path.is_empty() {
        return Err("it names no path".into());
    }
    Ok(PathBuf::from(percent_decode(path)?))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("truncated `%` escape")?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape `%{hex}`"))?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "escapes are not UTF-8".to_string())
}

/// `/abs/my runs` -> `file:///abs/my%20runs`, as Python's `pathlib.Path.as_uri` writes it.
pub(crate) fn path_to_file_uri(path: &Path) -> String {
    let s = path.to_string_lossy();
    let mut out = String::from("file://");
    if !s.starts_with('/') {
        out.push('/');
    }
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-' | b'~') {
            out.push(b as char);
        } else if b == b'\\' {
            out.push('/');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A URI with passwords and tokens replaced by `****`, for messages and logs.
pub fn mask_uri(uri: &str) -> String {
    let mut out = uri.to_string();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let authority_end = out[start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..authority_end].rfind('@').map(|i| start + i) {
            if let Some(colon) = out[start..at].find(':').map(|i| start + i) {
                out.replace_range(colon + 1..at, "****");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_name(k) => format!("{k}=****"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", masked.join("&"));
    }
    out
}

fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "passwd", "pwd", "token", "secret", "key"]
        .iter()
        .any(|s| n.contains(s))
}

/// Checks a registered model name against MLflow's rules: not empty, at most 250 characters,
/// and none of `/`, `:` or `%` (they break `models:/NAME/VERSION` URIs).
pub fn validate_registered_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("a registered model name must not be empty".into());
    }
    if name.chars().count() > MAX_KEY_CHARS {
        return Err(format!("it is longer than {MAX_KEY_CHARS} characters"));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | ':' | '%')) {
        return Err(format!(
            "it contains `{c}`, which MLflow's model URIs cannot hold"
        ));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Checks a metric, param or tag key against MLflow's rules: `[/\w.\- :]`, at most 250
/// characters, and a normalized relative path (it becomes a file path in the file store).
pub(crate) fn validate_key(kind: &'static str, key: &str) -> Result<(), TrackingError> {
    let bad = |reason: &str| TrackingError::InvalidKey {
        kind,
        key: key.to_string(),
        reason: reason.to_string(),
    };
    if key.is_empty() {
        return Err(bad("it is empty"));
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(bad("it is longer than 250 characters"));
    }
    if let Some(c) = key
        .chars()
        .find(|&c| !(c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | ' ' | ':')))
    {
        return Err(bad(&format!(
            "`{c}` is not allowed; keys may only contain letters, digits, `_`, `-`, `.`, ` `, `:` \
             and `/`"
        )));
    }
    let normalized = !key.starts_with('/')
        && !key.starts_with("..")
        && !key.ends_with('/')
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if !normalized {
        return Err(bad(
            "it must be a normalized relative path (no leading `/`, `..`, `//` or `./`)",
        ));
    }
    Ok(())
}

/// Cuts a value to `limit` characters, as MLflow does, with a warning.
pub(crate) fn truncate_value(key: &str, value: &str, limit: usize, kind: &str) -> String {
    match value.char_indices().nth(limit) {
        None => value.to_string(),
        Some((cut, _)) => {
            tracing::warn!(
                "{kind} `{key}` is {} characters long; truncated to MLflow's limit of {limit}",
                value.chars().count()
            );
            value[..cut].to_string()
        }
    }
}

/// Checks a batch's keys and makes its values fit MLflow's limits. Params repeated with the
/// same value collapse into one; a repeated param with another value is an error.
pub(crate) fn normalize_batch(run_id: &str, batch: &Batch) -> Result<Batch, TrackingError> {
    let mut params: Vec<Param> = Vec::with_capacity(batch.params.len());
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &batch.params {
        validate_key("param", &p.key)?;
        let value = truncate_value(&p.key, &p.value, MAX_PARAM_VALUE_CHARS, "param");
        match seen.get(p.key.as_str()) {
            Some(&i) if params[i].value == value => {}
            Some(&i) => {
                return Err(TrackingError::ParamChanged {
                    run_id: run_id.to_string(),
                    key: p.key.clone(),
                    old: params[i].value.clone(),
                    new: value,
                })
            }
            None => {
                seen.insert(&p.key, params.len());
                params.push(Param {
                    key: p.key.clone(),
                    value,
                });
            }
        }
    }
    for m in &batch.metrics {
        validate_key("metric", &m.key)?;
    }
    let mut tags = Vec::with_capacity(batch.tags.len());
    for t in &batch.tags {
        validate_key("tag", &t.key)?;
        let value = truncate_value(&t.key, &t.value, MAX_TAG_VALUE_CHARS, "tag");
        tags.push(Tag {
            key: t.key.clone(),
            value,
        });
    }
    Ok(Batch {
        metrics: batch.metrics.clone(),
        params,
        tags,
    })
}

/// The tags a new experiment gets: `tags`, with `description` as its note (replacing any note
/// among them), every key checked.
pub(crate) fn experiment_tags(
    tags: &[Tag],
    description: Option<&str>,
) -> Result<Vec<Tag>, TrackingError> {
    let mut wanted: Vec<Tag> = tags.to_vec();
    if let Some(d) = description {
        wanted.retain(|t| t.key != TAG_NOTE);
        wanted.push(Tag::new(TAG_NOTE, d));
    }
    for t in &wanted {
        validate_key("tag", &t.key)?;
    }
    Ok(wanted)
}

pub(crate) fn validate_experiment_name(name: &str) -> Result<(), TrackingError> {
    let bad = |reason: &str| TrackingError::InvalidExperimentName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.trim().is_empty() {
        return Err(bad("it is empty"));
    }
    if name.chars().count() > MAX_EXPERIMENT_NAME_CHARS {
        return Err(bad("it is longer than MLflow's 500 characters"));
    }
    Ok(())
}

pub(crate) fn validate_dataset(input: &DatasetInput) -> Result<(), TrackingError> {
    if input.name.is_empty() {
        return Err(TrackingError::InvalidValue {
            key: "dataset.name".into(),
            reason: "it is empty".into(),
        });
    }
    if input.digest.chars().count() > MAX_DATASET_DIGEST_CHARS {
        return Err(TrackingError::InvalidValue {
            key: format!("dataset `{}` digest", input.name),
            reason: format!("`{}` is longer than MLflow's 36 characters", input.digest),
        });
    }
    Ok(())
}

/// Checks an artifact path: relative, `/`-separated, without `..`.
pub(crate) fn validate_artifact_path(path: &str) -> Result<(), TrackingError> {
    let bad = |reason: &str| TrackingError::InvalidArtifactPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.starts_with('/') || path.contains('\\') {
        return Err(bad("it must be a relative path with `/` separators"));
    }
    if path.split('/').any(|seg| seg == "..") {
        return Err(bad("it must not contain `..`"));
    }
    Ok(())
}

/// Joins artifact path segments, dropping empty ones.
pub(crate) fn join_artifact_path(parts: &[&str]) -> String {
    parts
        .iter()
        .flat_map(|p| p.split('/'))
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Copies the files under `src` (any depth) into `dest`.
pub(crate) fn copy_tree(src: &Path, dest: &Path) -> Result<(), TrackingError> {
    for (file, rel) in walk_files(src)? {
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| TrackingError::io(parent, e))?;
        }
        std::fs::copy(&file, &to).map_err(|e| TrackingError::io(&file, e))?;
    }
    Ok(())
}

/// The files under `dir` as (absolute path, `/`-separated path relative to `dir`), sorted.
pub(crate) fn walk_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, TrackingError> {
    fn visit(
        dir: &Path,
        prefix: &str,
        out: &mut Vec<(PathBuf, String)>,
    ) -> Result<(), TrackingError> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| TrackingError::io(dir, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| TrackingError::io(dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            let file_type = entry.file_type().map_err(|e| TrackingError::io(&path, e))?;
            let is_dir = file_type.is_dir() || (file_type.is_symlink() && path.is_dir());
            if is_dir {
                visit(&path, &rel, out)?;
            } else {
                out.push((path, rel));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    visit(dir, "", &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_resolve_to_paths() {
        assert_eq!(
            TrackingUri::parse("file:./mlruns").unwrap(),
            TrackingUri::File("./mlruns".into())
        );
        assert_eq!(
            TrackingUri::parse("file:///tmp/my%20runs").unwrap(),
            TrackingUri::File("/tmp/my runs".into())
        );
        assert_eq!(
            TrackingUri::parse("file:/abs").unwrap(),
            TrackingUri::File("/abs".into())
        );
        assert_eq!(
            TrackingUri::parse("mlruns").unwrap(),
            TrackingUri::File("mlruns".into())
        );
        assert_eq!(
            TrackingUri::parse("C:\\runs").unwrap(),
            TrackingUri::File("C:\\runs".into())
        );
        assert!(matches!(
            TrackingUri::parse("file://otherhost/x"),
            Err(TrackingError::InvalidUri { .. })
        ));
    }

    #[test]
    fn http_uris_go_to_the_rest_store() {
        assert_eq!(
            TrackingUri::parse("http://127.0.0.1:5000").unwrap(),
            TrackingUri::Http("http://127.0.0.1:5000".into())
        );
        assert!(matches!(
            TrackingUri::parse("HTTPS://h/x").unwrap(),
            TrackingUri::Http(_)
        ));
    }

    #[test]
    fn database_uris_say_to_start_a_server_and_mask_the_password() {
        for uri in [
            "sqlite:///mlflow.db",
            "postgresql://bob:hunter2@db:5432/mlflow",
            "mysql+pymysql://bob:hunter2@db/mlflow",
            "databricks",
            "databricks://profile",
        ] {
            let err = TrackingUri::parse(uri).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, TrackingError::UnsupportedUri { .. }), "{uri}");
            assert!(msg.contains("mlflow server --backend-store-uri"), "{msg}");
            assert!(!msg.contains("hunter2"), "{msg}");
        }
    }

    #[test]
    fn mask_uri_hides_passwords_and_tokens() {
        assert_eq!(
            mask_uri("https://u:pw@host:5000/x"),
            "https://u:****@host:5000/x"
        );
        assert_eq!(mask_uri("https://u@host/x"), "https://u@host/x");
        assert_eq!(
            mask_uri("postgresql://h/db?user=a&password=b"),
            "postgresql://h/db?user=a&password=****"
        );
        assert_eq!(mask_uri("http://h/x@y"), "http://h/x@y");
    }

    #[test]
    fn path_to_file_uri_escapes_like_pathlib() {
        assert_eq!(
            path_to_file_uri(Path::new("/tmp/my runs/a+b#c%d~e")),
            "file:///tmp/my%20runs/a%2Bb%23c%25d~e"
        );
        let back = file_uri_to_path(&path_to_file_uri(Path::new("/tmp/é x"))).unwrap();
        assert_eq!(back, PathBuf::from("/tmp/é x"));
    }

    #[test]
    fn keys_follow_mlflow_rules() {
        for ok in [
            "rmse",
            "train/loss",
            "popularity.precision_at_10",
            "a b:c-d",
            "größe",
        ] {
            assert!(validate_key("metric", ok).is_ok(), "{ok}");
        }
        let bad_keys = [
            "", "/a", "a/", "a//b", "a/./b", "a/../b", "..", ".", "...a", "a?b", "a\\b", "x=1",
        ];
        for bad in bad_keys {
            let err = validate_key("param", bad).unwrap_err();
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        assert!(validate_key("tag", &"k".repeat(251)).is_err());
        assert!(validate_key("tag", &"k".repeat(250)).is_ok());
    }

    #[test]
    fn normalize_batch_truncates_long_values_and_rejects_conflicting_params() {
        let batch = Batch {
            params: vec![
                Param::new("a", "x".repeat(7000)),
                Param::new("b", "1"),
                Param::new("b", "1"),
            ],
            tags: vec![Tag::new("t", "y".repeat(9000))],
            metrics: vec![],
        };
        let n = normalize_batch("r", &batch).unwrap();
        assert_eq!(n.params.len(), 2);
        assert_eq!(n.params[0].value.len(), MAX_PARAM_VALUE_CHARS);
        assert_eq!(n.tags[0].value.len(), MAX_TAG_VALUE_CHARS);
        let conflict = Batch {
            params: vec![Param::new("b", "1"), Param::new("b", "2")],
            ..Batch::default()
        };
        let err = normalize_batch("r", &conflict).unwrap_err();
        assert!(matches!(err, TrackingError::ParamChanged { ref key, .. } if key == "b"));
    }

    #[test]
    fn settings_debug_masks_secrets() {
        let s = TrackingSettings {
            username: Some("bob".into()),
            password: Some("hunter2".into()),
            token: Some("tok123".into()),
            ..TrackingSettings::default()
        };
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("tok123"), "{dbg}");
        assert!(dbg.contains("bob"));
    }

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

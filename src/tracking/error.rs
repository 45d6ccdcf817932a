//! The tracking layer's one error type.

use std::path::PathBuf;

use super::rest;
use super::SearchError;

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
    /// A success status with a body that is not JSON (a proxy's page, a cut answer): nothing
    /// says the server took the request, so it is retried and then kept locally.
    #[error(
        "tracking server `{uri}` answered `{endpoint}` with something that is not JSON \
         ({reason}); a proxy in the way?\nhint: pass `--tracking-uri file:./mlruns` to log \
         locally, then copy the runs with `recflow sync`"
    )]
    Unreadable {
        uri: String,
        endpoint: String,
        reason: String,
    },
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
            TrackingError::Unreachable { .. } | TrackingError::Unreadable { .. } => true,
            TrackingError::Server { status, .. } => rest::RETRY_STATUSES.contains(status),
            _ => false,
        }
    }
}

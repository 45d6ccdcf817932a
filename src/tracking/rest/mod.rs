//! A client of an MLflow tracking server's REST API 2.0 (`mlflow/server/handlers.py`).
//!
//! Batches are split to fit the server's limits (1000 metrics, 100 params, 100 tags, 1000
//! entities, under 1 MB per request). Artifacts go through the server's proxy
//! (`PUT /api/2.0/mlflow-artifacts/artifacts/...`), the only way when the artifact store is
//! the server's own. Requests are retried with exponential backoff and jitter on 408, 429,
//! 500, 502, 503, 504, timeouts and dropped connections, as MLflow's own client does (logging a
//! batch twice is harmless: the server ignores identical metric rows and equal params).
//! Credentials arrive in [`TrackingSettings`]: username and password give Basic auth (and win),
//! else a token gives Bearer. No message, log line or `Debug` output contains them.
//! This module knows nothing about the file store, models or the command line.

mod models;
mod retry;

/// A logged model's registered versions (`[{"name": ..., "version": ...}]`), as MLflow keeps them.
const TAG_MODEL_VERSIONS: &str = "mlflow.modelVersions";
mod wire;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};

use retry::retry_after;
pub use retry::RetryPolicy;
pub(crate) use retry::RETRY_STATUSES;

/// Retries of a request whose connection is refused (about 15 s with the default backoff).
const CONNECT_RETRIES: u32 = 3;

use super::{
    experiment_tags, join_artifact_path, mask_uri, normalize_batch, redact, validate_artifact_path,
    validate_dataset, validate_experiment_name, walk_files, ArtifactEntry, Batch, DatasetInput,
    Experiment, LoggedModel, Metric, ModelToLog, NewRun, Run, RunInfo, RunQuery, RunStatus, Tag,
    Tracker, TrackingError, TAG_DATASET_CONTEXT,
};

/// The server's limits for one `runs/log-batch` request.
const MAX_METRICS_PER_BATCH: usize = 1000;
const MAX_PARAMS_PER_BATCH: usize = 100;
const MAX_TAGS_PER_BATCH: usize = 100;
const MAX_ENTITIES_PER_BATCH: usize = 1000;
/// Under the server's 1 MB, leaving room for the envelope.
const MAX_BATCH_BYTES: usize = 900_000;
/// `metrics/get-history` pages.
const HISTORY_PAGE: usize = 25_000;
const SEARCH_PAGE: usize = 1000;

#[derive(Clone)]
enum Auth {
    None,
    Basic { username: String, password: String },
    Bearer(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}:****)"),
            Auth::Bearer(_) => f.write_str("Bearer(****)"),
        }
    }
}

/// How long the first contact (`ping`) waits for each answer: a server that accepts connections
/// but never answers is reported in seconds, not after the upload timeout.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// A request body.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Empty,
    Json(&'a Value),
    File(&'a Path),
}

/// An MLflow tracking server.
pub struct RestStore {
    /// Base URL without credentials.
    base: Url,
    display: String,
    client: Client,
    auth: Auth,
    retry: RetryPolicy,
    /// Each answer's wait in `ping`: the client's timeout, at most [`PING_TIMEOUT`].
    ping_timeout: Duration,
    /// Artifact roots of runs seen, so an upload needs no extra request.
    artifact_uris: Mutex<HashMap<String, String>>,
}

impl fmt::Debug for RestStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestStore")
            .field("uri", &self.display)
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .finish()
    }
}

impl RestStore {
    pub fn new(uri: &str, settings: &TrackingSettings) -> Result<Self, TrackingError> {
        let display = mask_uri(uri.trim_end_matches('/'));
        let invalid = |reason: String| TrackingError::InvalidUri {
            uri: display.clone(),
            reason,
        };
        let mut base = Url::parse(uri.trim()).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("expected `http://` or `https://`".into()));
        }
        let url_user = (!base.username().is_empty()).then(|| {
            (
                percent_decode(base.username()),
                base.password().map(percent_decode).unwrap_or_default(),
            )
        });
        let _ = base.set_username("");
        let _ = base.set_password(None);
        base.set_query(None);
        base.set_fragment(None);
        let auth = match (&settings.username, &settings.password, &settings.token) {
            (Some(u), Some(p), _) if !u.is_empty() && !p.is_empty() => Auth::Basic {
                username: u.clone(),
                password: p.clone(),
            },
            (_, _, Some(t)) if !t.is_empty() => Auth::Bearer(t.clone()),
            _ => match url_user {
                Some((username, password)) => Auth::Basic { username, password },
                None => Auth::None,
            },
        };
        let mut builder = Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("recflow/", env!("CARGO_PKG_VERSION")))
            .tls_danger_accept_invalid_certs(settings.insecure_tls);
        if let Some(ca) = &settings.ca_bundle {
            let pem = std::fs::read(ca).map_err(|e| TrackingError::io(ca, e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                TrackingError::InvalidValue {
                    key: "MLFLOW_TRACKING_SERVER_CERT_PATH".into(),
                    reason: format!("`{}` is not a PEM certificate bundle: {e}", ca.display()),
                }
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(RestStore {
            base,
            display,
            client,
            auth,
            retry: settings.retry.clone(),
            ping_timeout: settings.timeout.min(PING_TIMEOUT),
            artifact_uris: Mutex::new(HashMap::new()),
        })
    }

    /// `<base>/<segments...>`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for seg in segments {
                for part in seg.split('/').filter(|p| !p.is_empty()) {
                    path.push(part);
                }
            }
        }
        url
    }

    fn api(&self, endpoint: &str) -> Url {
        self.url(&["api/2.0/mlflow", endpoint])
    }

    fn authorize(&self, req: RequestBuilder) -> RequestBuilder {
        match &self.auth {
            Auth::None => req,
            Auth::Basic { username, password } => req.basic_auth(username, Some(password)),
            Auth::Bearer(token) => req.bearer_auth(token),
        }
    }

    /// Sends a request with retries; returns the body of a successful answer. `timeout`
    /// replaces the client's for each attempt (the first contact waits less than an upload).
    fn send(
        &self,
        method: Method,
        url: &Url,
        payload: Payload<'_>,
        policy: &RetryPolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, TrackingError> {
        let mut rng = rand::thread_rng();
        let mut attempt = 0u32;
        loop {
            let mut req = self.authorize(self.client.request(method.clone(), url.clone()));
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            req = match &payload {
                Payload::Empty => req,
                Payload::Json(v) => req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(v).unwrap_or_default()),
                Payload::File(path) => {
                    let file =
                        std::fs::File::open(path).map_err(|e| TrackingError::io(*path, e))?;
                    req.body(file)
                }
            };
            let outcome = req.send().and_then(|resp| {
                let status = resp.status();
                let retry_after = retry_after(&resp);
                resp.bytes().map(|b| (status, retry_after, b.to_vec()))
            });
            let can_retry = attempt < policy.max_retries;
            match outcome {
                Ok((status, _, body)) if status.is_success() => return Ok(body),
                Ok((status, retry_after, body)) => {
                    if can_retry && RETRY_STATUSES.contains(&status.as_u16()) {
                        attempt += 1;
                        let wait = retry_after
                            .map(|d| d.min(policy.backoff_cap))
                            .unwrap_or_else(|| policy.delay(attempt, &mut rng));
                        tracing::warn!(
                            "{} {} answered {status}; retry {attempt}/{} in {:.1}s",
                            method,
                            url.path(),
                            policy.max_retries,
                            wait.as_secs_f64()
                        );
                        std::thread::sleep(wait);
                        continue;
                    }
                    return Err(self.error_from(status, &body));
                }
                Err(e) if e.is_builder() => {
                    return Err(TrackingError::Protocol {
                        uri: self.display.clone(),
                        reason: e.without_url().to_string(),
                    })
                }
                Err(e) => {
                    let cause = error_chain(&e);
                    // A refused connection means no server is listening: a few quick retries
                    // cover a restart, then the run goes on logging to the spool instead of
                    // waiting minutes (a stalled or failing server keeps the full schedule).
                    let can_retry = can_retry && !(e.is_connect() && attempt >= CONNECT_RETRIES);
                    if can_retry {
                        attempt += 1;
                        let wait = policy.delay(attempt, &mut rng);
                        tracing::warn!(
                            "{} {} failed ({cause}); retry {attempt}/{} in {:.1}s",
                            method,
                            url.path(),
                            policy.max_retries,
                            wait.as_secs_f64()
                        );
                        std::thread::sleep(wait);
                        continue;
                    }
                    return Err(TrackingError::Unreachable {
                        uri: self.display.clone(),
                        cause,
                    });
                }
            }
        }
    }

    fn error_from(&self, status: StatusCode, body: &[u8]) -> TrackingError {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let field = |k: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let code = field("error_code").unwrap_or_default();
        let text = field("message").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        let message = match redact(text.trim()) {
            m if m.is_empty() => status
                .canonical_reason()
                .unwrap_or("no message")
                .to_string(),
            m => m,
        };
        let uri = self.display.clone();
        match status.as_u16() {
            401 => TrackingError::Unauthorized { uri, code, message },
            403 => TrackingError::Forbidden { uri, code, message },
            s => TrackingError::Server {
                uri,
                status: s,
                code,
                message,
            },
        }
    }

    fn call(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<Value, TrackingError> {
        let payload = body.map_or(Payload::Empty, Payload::Json);
        let mut rng = rand::thread_rng();
        let mut attempt = 0u32;
        loop {
            let bytes = self.send(method.clone(), url, payload, &self.retry, None)?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(json!({}));
            }
            let e = match serde_json::from_slice(&bytes) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if attempt >= self.retry.max_retries {
                return Err(TrackingError::Unreadable {
                    uri: self.display.clone(),
                    endpoint: url.path().to_string(),
                    reason: redact(&e.to_string()),
                });
            }
            attempt += 1;
            let wait = self.retry.delay(attempt, &mut rng);
            tracing::warn!(
                "{method} {} answered with something that is not JSON; retry {attempt}/{} in {:.1}s",
                url.path(),
                self.retry.max_retries,
                wait.as_secs_f64()
            );
            std::thread::sleep(wait);
        }
    }

    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Value, TrackingError> {
        let mut url = self.api(endpoint);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.call(Method::GET, &url, None)
    }

    fn post(&self, endpoint: &str, body: &Value) -> Result<Value, TrackingError> {
        self.call(Method::POST, &self.api(endpoint), Some(body))
    }

    /// The version `alias` points at in the registered model `name`, with its run id; `None`
    /// when the model or the alias does not exist.
    pub fn alias_version(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Option<(String, String)>, TrackingError> {
        match self.get(
            "registered-models/alias",
            &[("name", name), ("alias", alias)],
        ) {
            Ok(v) => {
                let mv = &v["model_version"];
                let version = match &mv["version"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Ok(None),
                };
                Ok(Some((
                    version,
                    mv["run_id"].as_str().unwrap_or_default().to_string(),
                )))
            }
            Err(TrackingError::Server { status: 404, .. }) => Ok(None),
            Err(TrackingError::Server { code, .. })
                if code == "RESOURCE_DOES_NOT_EXIST" || code == "INVALID_PARAMETER_VALUE" =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Points `alias` of the registered model `name` at `version`.
    pub fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), TrackingError> {
        self.post(
            "registered-models/alias",
            &json!({ "name": name, "alias": alias, "version": version }),
        )
        .map(drop)
    }

    /// Sets a tag on one version of a registered model.
    pub fn set_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<(), TrackingError> {
        self.post(
            "model-versions/set-tag",
            &json!({ "name": name, "version": version, "key": key, "value": value }),
        )
        .map(drop)
    }

    /// Registers the LoggedModel `model_id` (made by `run_id`) as a new version of the
    /// registered model `name` (created when missing), and records the version on the model's
    /// `mlflow.modelVersions` tag as MLflow's `register_model` does. Returns the version.
    pub fn create_version(
        &self,
        name: &str,
        run_id: &str,
        model_id: &str,
    ) -> Result<String, TrackingError> {
        match self.post("registered-models/create", &json!({ "name": name })) {
            Ok(_) => {}
            Err(TrackingError::Server { code, .. }) if code == "RESOURCE_ALREADY_EXISTS" => {}
            Err(e) => return Err(e),
        }
        let answer = self.post(
            "model-versions/create",
            &json!({
                "name": name,
                "source": format!("models:/{model_id}"),
                "run_id": run_id,
                "model_id": model_id,
            }),
        )?;
        let version = match &answer["model_version"]["version"] {
            Value::String(v) => v.clone(),
            Value::Number(v) => v.to_string(),
            _ => return Err(self.protocol("model-versions/create returned no version")),
        };
        let model = self.get(&format!("logged-models/{model_id}"), &[])?;
        let mut versions: Vec<Value> = model["model"]["info"]["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["key"] == TAG_MODEL_VERSIONS)
            .and_then(|t| serde_json::from_str(t["value"].as_str()?).ok())
            .unwrap_or_default();
        versions.push(json!({ "name": name, "version": version }));
        let url = self.api(&format!("logged-models/{model_id}/tags"));
        self.call(
            Method::PATCH,
            &url,
            Some(&json!({ "tags": [{ "key": TAG_MODEL_VERSIONS, "value": Value::from(versions).to_string() }] })),
        )?;
        Ok(version)
    }

    fn protocol(&self, reason: impl Into<String>) -> TrackingError {
        TrackingError::Protocol {
            uri: self.display.clone(),
            reason: reason.into(),
        }
    }

    fn artifact_uri(&self, run_id: &str) -> Result<String, TrackingError> {
        if let Some(uri) = self
            .artifact_uris
            .lock()
            .ok()
            .and_then(|m| m.get(run_id).cloned())
        {
            return Ok(uri);
        }
        let run = self.get_run(run_id)?;
        Ok(run.info.artifact_uri)
    }

    fn remember_artifact_uri(&self, info: &RunInfo) {
        if let Ok(mut m) = self.artifact_uris.lock() {
            m.insert(info.run_id.clone(), info.artifact_uri.clone());
        }
    }

    /// The proxy path of a run's artifact root: `mlflow-artifacts:/1/<run>/artifacts` ->
    /// `1/<run>/artifacts`.
    fn proxied_root(&self, run_id: &str) -> Result<String, TrackingError> {
        self.proxied(run_id, &self.artifact_uri(run_id)?)
    }

    /// The proxy path of an `mlflow-artifacts:` URI of `owner` (a run or a logged model).
    fn proxied(&self, owner: &str, uri: &str) -> Result<String, TrackingError> {
        let rest = uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
            TrackingError::ArtifactsNotProxied {
                run_id: owner.to_string(),
                artifact_uri: uri.to_string(),
            }
        })?;
        let path = match rest.strip_prefix("//") {
            Some(after) => after.find('/').map_or("", |i| &after[i..]),
            None => rest,
        };
        Ok(path.trim_matches('/').to_string())
    }

    fn upload(&self, root: &str, rel: &str, file: &Path) -> Result<(), TrackingError> {
        let url = self.url(&["api/2.0/mlflow-artifacts/artifacts", root, rel]);
        self.send(Method::PUT, &url, Payload::File(file), &self.retry, None)
            .map(drop)
    }

    fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, TrackingError> {
        match self.get("experiments/get-by-name", &[("experiment_name", name)]) {
            Ok(v) => Ok(Some(
                wire::experiment(v.get("experiment").unwrap_or(&Value::Null))
                    .ok_or_else(|| self.protocol("`experiment` is missing from get-by-name"))?,
            )),
            Err(TrackingError::Server { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn download_file(&self, root: &str, rel: &str, target: &Path) -> Result<(), TrackingError> {
        let url = self.url(&["api/2.0/mlflow-artifacts/artifacts", root, rel]);
        let bytes = self.send(Method::GET, &url, Payload::Empty, &self.retry, None)?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| TrackingError::io(parent, e))?;
        }
        std::fs::write(target, bytes).map_err(|e| TrackingError::io(target, e))
    }

    fn download_tree(
        &self,
        run_id: &str,
        root: &str,
        rel: &str,
        dest: &Path,
    ) -> Result<(), TrackingError> {
        let entries = self.list_artifacts(run_id, (!rel.is_empty()).then_some(rel))?;
        if entries.is_empty() && !rel.is_empty() {
            // A file lists as nothing.
            return self.download_file(root, rel, &dest.join(rel));
        }
        for e in entries {
            if e.is_dir {
                self.download_tree(run_id, root, &e.path, dest)?;
            } else {
                self.download_file(root, &e.path, &dest.join(&e.path))?;
            }
        }
        Ok(())
    }
}

impl Tracker for RestStore {
    fn uri(&self) -> String {
        self.display.clone()
    }

    fn ping(&self) -> Result<(), TrackingError> {
        // One quick retry at most: this runs before training and should fail fast.
        let quick = RetryPolicy {
            max_retries: self.retry.max_retries.min(1),
            backoff_factor: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(1),
            jitter: Duration::from_millis(100),
        };
        let not_mlflow = |e: TrackingError| match e {
            TrackingError::Server { status: 404, .. } => {
                self.protocol("it has no MLflow API (404); is this an MLflow tracking server?")
            }
            other => other,
        };
        self.send(
            Method::GET,
            &self.url(&["health"]),
            Payload::Empty,
            &quick,
            Some(self.ping_timeout),
        )
        .map_err(not_mlflow)?;
        // `health` needs no credentials; a search proves they work and that this is MLflow.
        let mut url = self.api("experiments/search");
        url.query_pairs_mut().append_pair("max_results", "1");
        let body = self
            .send(
                Method::GET,
                &url,
                Payload::Empty,
                &quick,
                Some(self.ping_timeout),
            )
            .map_err(not_mlflow)?;
        serde_json::from_slice::<Value>(&body)
            .map(drop)
            .map_err(|_| {
                self.protocol("`experiments/search` did not answer JSON; is this an MLflow server?")
            })
    }

    fn get_or_create_experiment(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
    ) -> Result<String, TrackingError> {
        validate_experiment_name(name)?;
        let wanted = experiment_tags(tags, description)?;
        let exp = match self.experiment_by_name(name)? {
            Some(e) => e,
            None => {
                let tags = kv_json(wanted.iter().map(|t| (&t.key, &t.value)));
                let body = json!({ "name": name, "tags": tags });
                match self.post("experiments/create", &body) {
                    Ok(v) => {
                        return v
                            .get("experiment_id")
                            .and_then(wire::id)
                            .ok_or_else(|| self.protocol("`experiment_id` is missing from create"))
                    }
                    // Another client created it between our two calls.
                    Err(TrackingError::Server { code, .. })
                        if code == "RESOURCE_ALREADY_EXISTS" =>
                    {
                        self.experiment_by_name(name)?
                            .ok_or_else(|| TrackingError::ExperimentNotFound(name.to_string()))?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if exp.lifecycle_stage != "active" {
            return Err(TrackingError::ExperimentDeleted {
                name: name.to_string(),
            });
        }
        for t in wanted
            .iter()
            .filter(|t| exp.tags.get(&t.key) != Some(&t.value))
        {
            self.post(
                "experiments/set-experiment-tag",
                &json!({ "experiment_id": exp.experiment_id, "key": t.key, "value": t.value }),
            )?;
        }
        Ok(exp.experiment_id)
    }

    fn create_run(&self, run: &NewRun) -> Result<RunInfo, TrackingError> {
        let tags = normalize_batch(
            "",
            &Batch {
                tags: run.tags.clone(),
                ..Batch::default()
            },
        )?
        .tags;
        let mut body = json!({
            "experiment_id": run.experiment_id,
            "user_id": run.user_id,
            "start_time": run.start_time,
            "tags": kv_json(tags.iter().map(|t| (&t.key, &t.value))),
        });
        if let Some(name) = run.resolved_name() {
            body["run_name"] = json!(name);
        }
        let v = self.post("runs/create", &body)?;
        let info = v
            .pointer("/run/info")
            .and_then(wire::run_info)
            .ok_or_else(|| self.protocol("`run.info` is missing from runs/create"))?;
        self.remember_artifact_uri(&info);
        Ok(info)
    }

    fn log_batch(&self, run_id: &str, batch: &Batch) -> Result<(), TrackingError> {
        let batch = normalize_batch(run_id, batch)?;
        for chunk in split_batch(&batch) {
            let body = json!({
                "run_id": run_id,
                "metrics": chunk.metrics.iter().map(metric_json).collect::<Vec<_>>(),
                "params": kv_json(chunk.params.iter().map(|p| (&p.key, &p.value))),
                "tags": kv_json(chunk.tags.iter().map(|t| (&t.key, &t.value))),
            });
            self.post("runs/log-batch", &body)
                .map_err(|e| name_batch_key(e, &chunk))?;
        }
        Ok(())
    }

    fn log_artifact(
        &self,
        run_id: &str,
        local_file: &Path,
        artifact_path: Option<&str>,
    ) -> Result<(), TrackingError> {
        let dir = artifact_path.unwrap_or("");
        validate_artifact_path(dir)?;
        let name = local_file
            .file_name()
            .ok_or_else(|| TrackingError::InvalidArtifactPath {
                path: local_file.display().to_string(),
                reason: "it names no file".into(),
            })?;
        let root = self.proxied_root(run_id)?;
        self.upload(
            &root,
            &join_artifact_path(&[dir, &name.to_string_lossy()]),
            local_file,
        )
    }

    fn log_artifacts(
        &self,
        run_id: &str,
        local_dir: &Path,
        artifact_path: Option<&str>,
    ) -> Result<(), TrackingError> {
        let dir = artifact_path.unwrap_or("");
        validate_artifact_path(dir)?;
        let files = walk_files(local_dir)?;
        let root = self.proxied_root(run_id)?;
        for (path, rel) in files {
            self.upload(&root, &join_artifact_path(&[dir, &rel]), &path)?;
        }
        Ok(())
    }

    fn log_input(&self, run_id: &str, input: &DatasetInput) -> Result<(), TrackingError> {
        validate_dataset(input)?;
        let mut dataset = json!({
            "name": input.name,
            "digest": input.digest,
            "source_type": input.source_type,
            "source": input.source,
        });
        if let Some(s) = &input.schema {
            dataset["schema"] = json!(s);
        }
        if let Some(p) = &input.profile {
            dataset["profile"] = json!(p);
        }
        let tags: Vec<Value> = input
            .context
            .iter()
            .map(|c| json!({ "key": TAG_DATASET_CONTEXT, "value": c }))
            .collect();
        let body = json!({ "run_id": run_id, "datasets": [{ "tags": tags, "dataset": dataset }] });
        self.post("runs/log-inputs", &body).map(drop)
    }

    fn log_model(&self, model: &ModelToLog) -> Result<LoggedModel, TrackingError> {
        self.create_logged_model(model)
    }

    fn run_models(&self, run_id: &str) -> Result<Vec<LoggedModel>, TrackingError> {
        self.logged_models_of(run_id)
    }

    fn download_model(&self, model: &LoggedModel, dest: &Path) -> Result<(), TrackingError> {
        self.download_logged_model(model, dest)
    }

    fn end_run(&self, run_id: &str, status: RunStatus, end_time: i64) -> Result<(), TrackingError> {
        let body = json!({ "run_id": run_id, "status": status.as_str(), "end_time": end_time });
        self.post("runs/update", &body).map(drop)
    }

    fn list_experiments(&self) -> Result<Vec<Experiment>, TrackingError> {
        let fetch = |token: Option<&str>, _| {
            let mut body = json!({ "max_results": SEARCH_PAGE, "view_type": "ACTIVE_ONLY" });
            if let Some(t) = token {
                body["page_token"] = json!(t);
            }
            self.post("experiments/search", &body)
        };
        collect_pages("experiments", usize::MAX, fetch, |e| {
            wire::experiment(e).ok_or_else(|| self.protocol("malformed experiment"))
        })
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, TrackingError> {
        self.experiment_by_name(name)
    }

    fn search_runs(&self, query: &RunQuery) -> Result<Vec<Run>, TrackingError> {
        let fetch = |token: Option<&str>, have: usize| {
            let mut body = json!({
                "experiment_ids": query.experiment_ids,
                "run_view_type": "ACTIVE_ONLY",
                "max_results": (query.max_results - have).min(SEARCH_PAGE),
                "order_by": query.order_by,
            });
            if let Some(f) = query.filter.as_deref().filter(|f| !f.trim().is_empty()) {
                body["filter"] = json!(f);
            }
            if let Some(t) = token {
                body["page_token"] = json!(t);
            }
            self.post("runs/search", &body)
        };
        collect_pages("runs", query.max_results, fetch, |r| {
            let run = wire::run(r).ok_or_else(|| self.protocol("malformed run in runs/search"))?;
            self.remember_artifact_uri(&run.info);
            Ok(run)
        })
    }

    fn get_run(&self, run_id: &str) -> Result<Run, TrackingError> {
        let v = match self.get("runs/get", &[("run_id", run_id)]) {
            Err(TrackingError::Server { status: 404, .. }) => {
                return Err(TrackingError::RunNotFound(run_id.to_string()))
            }
            other => other?,
        };
        let run = v
            .get("run")
            .and_then(wire::run)
            .ok_or_else(|| self.protocol("malformed run in runs/get"))?;
        self.remember_artifact_uri(&run.info);
        Ok(run)
    }

    fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>, TrackingError> {
        let page = HISTORY_PAGE.to_string();
        let fetch = |token: Option<&str>, _| {
            let mut query = vec![
                ("run_id", run_id),
                ("metric_key", key),
                ("max_results", page.as_str()),
            ];
            if let Some(t) = token {
                query.push(("page_token", t));
            }
            self.get("metrics/get-history", &query)
        };
        collect_pages("metrics", usize::MAX, fetch, |m| {
            wire::metric(m).ok_or_else(|| self.protocol("malformed metric in get-history"))
        })
    }

    fn list_artifacts(
        &self,
        run_id: &str,
        path: Option<&str>,
    ) -> Result<Vec<ArtifactEntry>, TrackingError> {
        let fetch = |token: Option<&str>, _| {
            let mut query = vec![("run_id", run_id)];
            if let Some(p) = path.filter(|p| !p.is_empty()) {
                query.push(("path", p));
            }
            if let Some(t) = token {
                query.push(("page_token", t));
            }
            self.get("artifacts/list", &query)
        };
        collect_pages("files", usize::MAX, fetch, |f| {
            wire::file(f).ok_or_else(|| self.protocol("malformed file in artifacts/list"))
        })
    }

    fn download_artifacts(
        &self,
        run_id: &str,
        path: Option<&str>,
        dest: &Path,
    ) -> Result<(), TrackingError> {
        let rel = path.unwrap_or("");
        validate_artifact_path(rel)?;
        let root = self.proxied_root(run_id)?;
        self.download_tree(run_id, &root, rel, dest)
    }
}

/// Splits a batch into requests within the server's limits, params first.
pub(crate) fn split_batch(batch: &Batch) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut current = Batch::default();
    let mut bytes = 0usize;
    let full = |b: &Batch, bytes: usize, extra: usize| {
        b.len() >= MAX_ENTITIES_PER_BATCH || bytes + extra > MAX_BATCH_BYTES
    };
    for p in &batch.params {
        let size = p.key.len() + p.value.len() + 32;
        if full(&current, bytes, size) || current.params.len() >= MAX_PARAMS_PER_BATCH {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.params.push(p.clone());
    }
    for t in &batch.tags {
        let size = t.key.len() + t.value.len() + 32;
        if full(&current, bytes, size) || current.tags.len() >= MAX_TAGS_PER_BATCH {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.tags.push(t.clone());
    }
    for m in &batch.metrics {
        let size = m.key.len() + 96;
        if full(&current, bytes, size) || current.metrics.len() >= MAX_METRICS_PER_BATCH {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.metrics.push(m.clone());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Adds the key to a 400 that points at `metrics[i]`, `params[i]` or `tags[i]` of the batch.
fn name_batch_key(err: TrackingError, chunk: &Batch) -> TrackingError {
    let TrackingError::Server {
        uri,
        status: 400,
        code,
        message,
    } = err
    else {
        return err;
    };
    let key = [("metrics[", 0), ("params[", 1), ("tags[", 2)]
        .iter()
        .find_map(|(pat, kind)| {
            let start = message.find(pat)? + pat.len();
            let end = start + message[start..].find(']')?;
            let i: usize = message[start..end].parse().ok()?;
            match kind {
                0 => chunk.metrics.get(i).map(|m| m.key.clone()),
                1 => chunk.params.get(i).map(|p| p.key.clone()),
                _ => chunk.tags.get(i).map(|t| t.key.clone()),
            }
        });
    let message = match key {
        Some(k) if !message.contains(&format!("`{k}`")) => format!("{message} (key `{k}`)"),
        _ => message,
    };
    TrackingError::Server {
        uri,
        status: 400,
        code,
        message,
    }
}

fn kv_json<'a>(items: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<Value> {
    items
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect()
}

/// Non-finite values travel as the strings the server's JSON parser accepts.
fn metric_json(m: &Metric) -> Value {
    let value = if m.value.is_nan() {
        json!("NaN")
    } else if m.value.is_infinite() {
        json!(if m.value > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        })
    } else {
        json!(m.value)
    };
    json!({ "key": m.key, "value": value, "timestamp": m.timestamp, "step": m.step })
}

/// An error and its causes on one line, without URLs (they may carry query values).
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = vec![if e.is_timeout() {
        "timed out".to_string()
    } else {
        String::new()
    }];
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.retain(|p| !p.is_empty());
    parts.dedup();
    if parts.is_empty() {
        "the request failed".into()
    } else {
        parts.join(": ")
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Follows MLflow's `next_page_token` until a page comes without one or `limit` items are in,
/// turning each element of a page's `key` array into an item. `fetch` gets the token (none for
/// the first page) and how many items are already in.
fn collect_pages<T>(
    key: &str,
    limit: usize,
    mut fetch: impl FnMut(Option<&str>, usize) -> Result<Value, TrackingError>,
    mut item: impl FnMut(&Value) -> Result<T, TrackingError>,
) -> Result<Vec<T>, TrackingError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    while out.len() < limit {
        let v = fetch(token.as_deref(), out.len())?;
        for x in v.get(key).and_then(Value::as_array).into_iter().flatten() {
            out.push(item(x)?);
        }
        token = next_token(&v);
        if token.is_none() {
            break;
        }
    }
    out.truncate(limit);
    Ok(out)
}

fn next_token(v: &Value) -> Option<String> {
    v.get("next_page_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::tracking::testserver::{MockServer, Reply};
    use crate::tracking::Param;

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

    fn fast_settings() -> TrackingSettings {
        TrackingSettings {
            timeout: Duration::from_millis(500),
            retry: RetryPolicy {
                max_retries: 3,
                backoff_factor: Duration::from_millis(20),
                backoff_cap: Duration::from_millis(200),
                jitter: Duration::from_millis(5),
            },
            ..TrackingSettings::default()
        }
    }

    fn run_json(id: &str, artifact_uri: &str) -> String {
        json!({ "run": { "info": {
            "run_id": id, "run_uuid": id, "experiment_id": "1", "run_name": "r", "user_id": "",
            "status": "RUNNING", "start_time": "1700000000000", "artifact_uri": artifact_uri,
            "lifecycle_stage": "active"
        }, "data": { "tags": [{ "key": "mlflow.runName", "value": "r" }] } } })
        .to_string()
    }

    #[test]
    fn a_500_then_success_is_retried() {
        let server = MockServer::scripted(vec![
            Reply::json(
                500,
                r#"{"error_code":"INTERNAL_ERROR","message":"db locked"}"#,
            ),
            Reply::json(200, "{}"),
        ]);
        let store = RestStore::new(&server.url, &fast_settings()).unwrap();
        store.log_metric("abc", "rmse", 0.5, 1).unwrap();
        let reqs = server.requests();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].path, "/api/2.0/mlflow/runs/log-batch");
        assert_eq!(reqs[0].body, reqs[1].body);
        let body: Value = serde_json::from_slice(&reqs[1].body).unwrap();
        assert_eq!(body["metrics"][0]["key"], "rmse");
        assert_eq!(body["metrics"][0]["step"], 1);
        assert!(reqs[0]
            .header("content-type")
            .unwrap()
            .starts_with("application/json"));
        assert!(reqs[0].header("origin").is_none());
    }

    #[test]
    fn a_429_waits_before_retrying() {
        let server = MockServer::scripted(vec![
            Reply::json(
                429,
                r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}"#,
            )
            .with_header("Retry-After", "1"),
            Reply::json(
                429,
                r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}"#,
            ),
            Reply::json(200, "{}"),
        ]);
        let store = RestStore::new(&server.url, &fast_settings()).unwrap();
        let t0 = Instant::now();
        store.end_run("abc", RunStatus::Finished, 5).unwrap();
        // Retry-After (capped at 200 ms) then the second backoff step (40 ms).
        assert!(
            t0.elapsed() >= Duration::from_millis(240),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(server.requests().len(), 3);
    }

    #[test]
    fn persistent_5xx_gives_up_with_the_servers_message() {
        let server = MockServer::scripted(vec![
            Reply::json(
                503,
                r#"{"error_code":"TEMPORARILY_UNAVAILABLE","message":"down for maintenance"}"#
            );
            4
        ]);
        let store = RestStore::new(&server.url, &fast_settings()).unwrap();
        let err = store.end_run("abc", RunStatus::Finished, 5).unwrap_err();
        assert!(err.is_transient());
        assert!(err.to_string().contains("down for maintenance"), "{err}");
        assert_eq!(server.requests().len(), 4);
    }

    #[test]
    fn a_timeout_is_retried() {
        let server = MockServer::scripted(vec![
            Reply::json(200, "{}").after(Duration::from_millis(1500)),
            Reply::json(200, "{}"),
        ]);
        let store = RestStore::new(&server.url, &fast_settings()).unwrap();
        store.end_run("abc", RunStatus::Finished, 5).unwrap();
        assert_eq!(server.requests().len(), 2);
    }

    #[test]
    fn a_refused_connection_gets_a_few_quick_retries_not_the_full_schedule() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut settings = fast_settings();
        // The full schedule would wait 0.2 + 0.4 + 0.8 + ... = about 25 s.
        settings.retry = RetryPolicy {
            max_retries: 7,
            backoff_factor: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(60),
            jitter: Duration::ZERO,
        };
        let store = RestStore::new(&format!("http://127.0.0.1:{port}"), &settings).unwrap();
        let t0 = std::time::Instant::now();
        let err = store.end_run("abc", RunStatus::Finished, 5).unwrap_err();
        let waited = t0.elapsed();
        assert!(matches!(err, TrackingError::Unreachable { .. }), "{err}");
        // CONNECT_RETRIES = 3 retries: 0.2 + 0.4 + 0.8 s.
        assert!(
            waited >= Duration::from_millis(1400) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }

    #[test]
    fn timeouts_every_time_end_as_unreachable() {
        let server = MockServer::scripted(vec![
            Reply::json(200, "{}")
                .after(Duration::from_millis(1500));
            4
        ]);
        let mut settings = fast_settings();
        settings.retry.max_retries = 1;
        let store = RestStore::new(&server.url, &settings).unwrap();
        let err = store.end_run("abc", RunStatus::Finished, 5).unwrap_err();
        assert!(matches!(err, TrackingError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("recflow sync"), "{err}");
    }

    #[test]
    fn a_success_whose_body_is_not_json_is_retried_then_kept_for_the_spool() {
        let page = "<html><body>proxy login</body></html>";
        let server = MockServer::scripted(vec![Reply::json(200, page), Reply::json(200, "{}")]);
        let store = RestStore::new(&server.url, &fast_settings()).unwrap();
        let metrics = [Metric::new("loss", 1.0, 0)];
        store.log_metrics("abc", &metrics).unwrap();
        assert_eq!(server.requests().len(), 2, "sent again after the page");

        let server = MockServer::scripted(vec![Reply::json(200, page); 4]);
        let store = RestStore::new(&server.url, &fast_settings()).unwrap();
        let err = store.log_metrics("abc", &metrics).unwrap_err();
        assert!(matches!(err, TrackingError::Unreadable { .. }), "{err}");
        // Transient: the buffered tracker spools the run instead of ending it with data missing.
        assert!(err.is_transient());
        assert!(err.to_string().contains("recflow sync"), "{err}");
        assert_eq!(server.requests().len(), 4);
    }

    #[test]
    fn the_first_contact_with_a_server_that_never_answers_fails_within_the_ping_timeout() {
        let server = MockServer::scripted(vec![
            Reply::json(200, "{}")
                .after(Duration::from_secs(60));
            2
        ]);
        // The upload timeout stays long; only the first contact is short.
        let settings = TrackingSettings {
            timeout: Duration::from_secs(120),
            ..fast_settings()
        };
        let store = RestStore::new(&server.url, &settings).unwrap();
        let t0 = Instant::now();
        let err = store.ping().unwrap_err();
        let took = t0.elapsed();
        assert!(took < PING_TIMEOUT * 2 + Duration::from_secs(5), "{took:?}");
        assert!(matches!(err, TrackingError::Unreachable { .. }), "{err}");
    }

    #[test]
    fn a_connection_dropped_mid_batch_is_retried_and_nothing_is_lost() {
        let server = MockServer::scripted(vec![
            Reply::json(200, "{}"),
            Reply::Drop,
            Reply::json(200, "{}"),
            Reply::json(200, "{}"),
        ]);
        let store = RestStore::new(&server.url, &fast_settings()).unwrap();
        let metrics: Vec<Metric> = (0..2500)
            .map(|i| Metric::new("loss", i as f64, i))
            .collect();
        store.log_metrics("abc", &metrics).unwrap();
        let reqs = server.requests();
        assert_eq!(reqs.len(), 4);
        let mut steps = std::collections::BTreeSet::new();
        for r in [&reqs[0], &reqs[2], &reqs[3]] {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            for m in body["metrics"].as_array().unwrap() {
                steps.insert(m["step"].as_i64().unwrap());
            }
        }
        assert_eq!(steps.len(), 2500);
        assert_eq!(reqs[1].body, reqs[2].body);
    }

    #[test]
    fn a_401_is_a_clear_auth_error_without_the_secret() {
        let server = MockServer::scripted(vec![Reply::json(
            401,
            r#"{"error_code":"UNAUTHENTICATED","message":"You are not authenticated."}"#,
        )]);
        let settings = TrackingSettings {
            username: Some("bob".into()),
            password: Some("hunter2".into()),
            token: Some("tok-secret".into()),
            ..fast_settings()
        };
        let store = RestStore::new(&server.url, &settings).unwrap();
        let err = store.get_run("abc").unwrap_err();
        assert!(matches!(err, TrackingError::Unauthorized { .. }));
        let msg = err.to_string();
        assert!(msg.contains("MLFLOW_TRACKING_USERNAME"), "{msg}");
        assert!(!msg.contains("hunter2") && !format!("{err:?}").contains("hunter2"));
        assert!(!format!("{store:?}").contains("hunter2"));
        // Basic wins over the token.
        let auth = server.requests()[0].header("authorization").unwrap();
        assert!(auth.starts_with("Basic "), "{auth}");
        assert_eq!(server.requests().len(), 1);
    }

    #[test]
    fn a_server_that_echoes_the_request_headers_never_gets_them_printed() {
        // A 400 is not retried; its text body is what a debugging proxy sends back.
        let echo = "Bad Request\r\nPOST /api/2.0/mlflow/runs/get HTTP/1.1\r\n\
                    authorization: Basic Ym9iOmh1bnRlcjI=\r\nhost: 127.0.0.1\r\n";
        let server = MockServer::scripted(vec![Reply::json(400, &echo.repeat(50))]);
        let settings = TrackingSettings {
            username: Some("bob".into()),
            password: Some("hunter2".into()),
            ..fast_settings()
        };
        let store = RestStore::new(&server.url, &settings).unwrap();
        let err = store.get_run("abc").unwrap_err();
        let sent = server.requests()[0].header("authorization").unwrap();
        let b64 = sent.trim_start_matches("Basic ");
        let msg = format!("{err} {err:?}");
        assert!(!msg.contains(b64) && !msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("authorization: ****"), "{msg}");
        // Long echoes are cut.
        assert!(err.to_string().len() < 600, "{err}");
    }

    #[test]
    fn a_token_alone_is_sent_as_bearer() {
        let server = MockServer::scripted(vec![Reply::json(200, &run_json("abc", "x"))]);
        let settings = TrackingSettings {
            token: Some("tok".into()),
            ..fast_settings()
        };
        let store = RestStore::new(&server.url, &settings).unwrap();
        store.get_run("abc").unwrap();
        assert_eq!(
            server.requests()[0].header("authorization"),
            Some("Bearer tok".into())
        );
    }

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_are_masked() {
        let server = MockServer::scripted(vec![Reply::json(200, &run_json("abc", "x"))]);
        let url = server.url.replace("http://", "http://bob:s%40cret@");
        let store = RestStore::new(&url, &fast_settings()).unwrap();
        assert!(!store.uri().contains("cret"), "{}", store.uri());
        store.get_run("abc").unwrap();
        let auth = server.requests()[0].header("authorization").unwrap();
        assert_eq!(auth, "Basic Ym9iOnNAY3JldA=="); // bob:s@cret
    }

    #[test]
    fn a_400_for_a_bad_key_names_the_key() {
        let server = MockServer::scripted(vec![Reply::json(
            400,
            r#"{"error_code":"INVALID_PARAMETER_VALUE",
                "message":"Invalid value for parameter 'params[1].key' supplied"}"#,
        )]);
        let store = RestStore::new(&server.url, &fast_settings()).unwrap();
        let err = store
            .log_params("abc", &[Param::new("rank", "10"), Param::new("reg", "0.1")])
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("INVALID_PARAMETER_VALUE") && msg.contains("`reg`"),
            "{msg}"
        );
        assert!(!err.is_transient());
        assert_eq!(server.requests().len(), 1);
        // A key MLflow would refuse never leaves the machine.
        let err = store.log_metric("abc", "bad key?", 1.0, 0).unwrap_err();
        assert!(err.to_string().contains("`bad key?`"), "{err}");
        assert_eq!(server.requests().len(), 1);
    }

    #[test]
    fn batches_are_split_within_mlflow_limits() {
        let batch = Batch {
            params: (0..250).map(|i| Param::new(format!("p{i}"), "v")).collect(),
            tags: (0..150)
                .map(|i| Tag::new(format!("t{i}"), "x".repeat(7000)))
                .collect(),
            metrics: (0..2500).map(|i| Metric::new("m", 1.0, i)).collect(),
        };
        let chunks = split_batch(&batch);
        for c in &chunks {
            assert!(c.params.len() <= 100 && c.tags.len() <= 100 && c.metrics.len() <= 1000);
            assert!(c.len() <= 1000);
            let body = json!({
                "run_id": "0123456789abcdef0123456789abcdef",
                "metrics": c.metrics.iter().map(metric_json).collect::<Vec<_>>(),
                "params": kv_json(c.params.iter().map(|p| (&p.key, &p.value))),
                "tags": kv_json(c.tags.iter().map(|t| (&t.key, &t.value))),
            });
            assert!(serde_json::to_vec(&body).unwrap().len() < 1_000_000);
        }
        let total: usize = chunks.iter().map(Batch::len).sum();
        assert_eq!(total, batch.len());
        assert!(split_batch(&Batch::default()).is_empty());
    }

    #[test]
    fn non_finite_metrics_travel_as_strings() {
        let m = |v: f64| {
            metric_json(&Metric {
                key: "k".into(),
                value: v,
                timestamp: 1,
                step: 2,
            })
        };
        assert_eq!(m(f64::NAN)["value"], "NaN");
        assert_eq!(m(f64::INFINITY)["value"], "Infinity");
        assert_eq!(m(f64::NEG_INFINITY)["value"], "-Infinity");
        assert_eq!(m(0.5)["value"], 0.5);
    }

    #[test]
    fn experiment_creation_race_falls_back_to_get_by_name() {
        let exp = r#"{"experiment":
            {"experiment_id":"7","name":"e","lifecycle_stage":"active","tags":[]}}"#;
        let server = MockServer::scripted(vec![
            Reply::json(
                404,
                r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"no"}"#,
            ),
            Reply::json(
                400,
                r#"{"error_code":"RESOURCE_ALREADY_EXISTS","message":"exists"}"#,
            ),
            Reply::json(200, exp),
        ]);
        let store = RestStore::new(&server.url, &fast_settings()).unwrap();
        assert_eq!(store.get_or_create_experiment("e", None, &[]).unwrap(), "7");
        let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
        assert_eq!(
            paths,
            [
                "/api/2.0/mlflow/experiments/get-by-name?experiment_name=e",
                "/api/2.0/mlflow/experiments/create",
                "/api/2.0/mlflow/experiments/get-by-name?experiment_name=e",
            ]
        );
    }

    #[test]
    fn artifacts_upload_through_the_proxy() {
        let server = MockServer::scripted(vec![
            Reply::json(200, &run_json("abc", "mlflow-artifacts:/1/abc/artifacts")),
            Reply::json(200, "{}"),
        ]);
        let store = RestStore::new(&format!("{}/prefix/", server.url), &fast_settings()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("my model.txt");
        std::fs::write(&file, "weights").unwrap();
        store.log_artifact("abc", &file, Some("model")).unwrap();
        let reqs = server.requests();
        assert_eq!(reqs[1].method, "PUT");
        assert_eq!(
            reqs[1].path,
            "/prefix/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/my%20model.txt"
        );
        assert_eq!(reqs[1].body, b"weights");
    }

    #[test]
    fn artifacts_without_the_proxy_give_a_clear_error() {
        let server = MockServer::scripted(vec![Reply::json(
            200,
            &run_json("abc", "/srv/mlruns/1/abc/artifacts"),
        )]);
        let store = RestStore::new(&server.url, &fast_settings()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        std::fs::write(&file, "x").unwrap();
        let err = store.log_artifact("abc", &file, None).unwrap_err();
        assert!(err.to_string().contains("--serve-artifacts"), "{err}");
        assert!(err.to_string().contains("--artifacts-destination"), "{err}");
    }

    #[test]
    fn metric_history_is_paged() {
        let page1 = json!({
            "metrics": [{ "key": "m", "value": 1.0, "timestamp": "5", "step": "0" }],
            "next_page_token": "tok"
        });
        let page2 =
            json!({ "metrics": [{ "key": "m", "value": "NaN", "timestamp": 6, "step": 1 }] });
        let server = MockServer::scripted(vec![
            Reply::json(200, &page1.to_string()),
            Reply::json(200, &page2.to_string()),
        ]);
        let store = RestStore::new(&server.url, &fast_settings()).unwrap();
        let h = store.get_metric_history("abc", "m").unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].timestamp, h[0].step), (5, 0));
        assert!(h[1].value.is_nan());
        assert!(server.requests()[1].path.contains("page_token=tok"));
    }

    #[test]
    fn ping_fails_fast_with_the_local_store_hint() {
        let server = MockServer::scripted(vec![]);
        let url = server.url.clone();
        drop(server);
        let settings = TrackingSettings {
            retry: RetryPolicy::default(),
            ..fast_settings()
        };
        let store = RestStore::new(&url, &settings).unwrap();
        let t0 = Instant::now();
        let err = store.ping().unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        let msg = err.to_string();
        assert!(
            msg.contains("--tracking-uri file:./mlruns") && msg.contains("recflow sync"),
            "{msg}"
        );
    }

    proptest::proptest! {
        #[test]
        fn split_batches_keep_every_entity_in_order_within_limits(
            params in 0usize..350,
            tags in 0usize..250,
            metrics in 0usize..3500,
            len in 0usize..9000,
        ) {
            let batch = Batch {
                params: (0..params)
                    .map(|i| Param::new(format!("p{i}"), "v".repeat(len.min(6000))))
                    .collect(),
                tags: (0..tags).map(|i| Tag::new(format!("t{i}"), "w".repeat(len))).collect(),
                metrics: (0..metrics).map(|i| Metric::new("m", 0.5, i as i64)).collect(),
            };
            let chunks = split_batch(&batch);
            for c in &chunks {
                proptest::prop_assert!(!c.is_empty());
                proptest::prop_assert!(c.params.len() <= 100 && c.tags.len() <= 100);
                proptest::prop_assert!(c.metrics.len() <= 1000 && c.len() <= 1000);
                let kv = |k: &str, v: &str| k.len() + v.len();
                let bytes: usize = c.params.iter().map(|p| kv(&p.key, &p.value)).sum::<usize>()
                    + c.tags.iter().map(|t| kv(&t.key, &t.value)).sum::<usize>()
                    + c.metrics.len() * 100;
                proptest::prop_assert!(bytes < 1_000_000);
            }
            let joined = Batch {
                params: chunks.iter().flat_map(|c| c.params.clone()).collect(),
                tags: chunks.iter().flat_map(|c| c.tags.clone()).collect(),
                metrics: chunks.iter().flat_map(|c| c.metrics.clone()).collect(),
            };
            proptest::prop_assert_eq!(joined, batch);
        }
    }
}

//! `recflow run`: one experiment spec end to end. Prepares the data (the processed-data cache),
//! runs the training pipeline, saves the winning model, and logs the run tree to MLflow: a parent
//! run, one child per (entry, configuration) with `val_` metrics, and one `recflow.role = final`
//! child per entry with its refit's `test_` metrics (DECISIONS.md).
//!
//! Takes resolved settings and a [`Tracker`]; knows nothing about the command line.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use thiserror::Error;

use crate::data::cache::{self, CacheError, Prepared};
use crate::data::etl::EtlSettings;
use crate::data::store::{self, Dataset, StoreError};
use crate::eval::keys::Split;
use crate::model::artifact::ArtifactError;
use crate::pipeline::observer::{Observer, Role, Step};
use crate::pipeline::report::{warnings, with_comparisons, Leaderboard, Warning};
use crate::pipeline::saved::{saved_model, ModelContext};
use crate::pipeline::search::{self, Candidate, Entry};
use crate::pipeline::train::{self, EntryOutcome, Outcome, PipelineSettings, TrainError, Trial};
use crate::progress::Progress;
use crate::tracking::{
    Batch, DatasetInput, Metric, NewRun, Param, RunStatus, Tag, Tracker, TrackingError, TAG_NOTE,
};

#[derive(Debug, Error)]
pub enum ExperimentError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Tracking(#[from] TrackingError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("cannot prepare `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    TestFile(#[from] crate::data::testfile::TestFileError),
    #[error("no entry reports the selection metric `{0}`, so there is no winner to save")]
    NoWinner(String),
}

impl ExperimentError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Cache(e) => e.hint(),
            Self::Store(e) => e.hint(),
            Self::Train(e) => e.hint(),
            Self::Artifact(e) => e.hint(),
            Self::TestFile(e) => e.hint(),
            Self::NoWinner(_) => {
                Some("choose an `eval.select` metric that an entry reports".into())
            }
            _ => None,
        }
    }
}

/// Everything `recflow run` needs, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentSettings {
    pub name: String,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// The spec file; `None` when a command line (`recflow train`) describes the runs.
    pub spec_path: Option<PathBuf>,
    /// The spec as run (after `--set`), TOML.
    #[serde(skip)]
    pub resolved_spec: String,
    pub pipeline: PipelineSettings,
    pub test_file: Option<PathBuf>,
    pub model_dir: PathBuf,
    /// Flat params logged on the parent run (every resolved setting).
    pub params: Vec<(String, String)>,
    pub user: Option<String>,
    #[serde(skip)]
    pub git: Option<GitInfo>,
    /// Where local summaries go (`artifacts/metrics`).
    pub metrics_dir: PathBuf,
    /// Continue the latest parent of this spec on the same data (`--resume`).
    pub resume: bool,
    /// Sample MLflow's system metrics while each model fits.
    pub system_metrics: bool,
    /// Log every entry's final model as an MLflow LoggedModel, not only the winner's.
    pub log_all_models: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct GitInfo {
    pub commit: String,
    pub branch: Option<String>,
    pub dirty: bool,
    pub repo_url: Option<String>,
}

/// Reads the working directory's git state, if it is a checkout.
pub fn git_info() -> Option<GitInfo> {
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    Some(GitInfo {
        commit,
        branch: git(&["rev-parse", "--abbrev-ref", "HEAD"]).filter(|b| b != "HEAD"),
        dirty: git(&["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.is_empty()),
        repo_url: git(&["config", "--get", "remote.origin.url"])
            .map(|u| crate::tracking::mask_uri(&u)),
    })
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ExperimentError + '_ {
    move |source| ExperimentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs that are open, so an interrupt can end them as KILLED.
pub type OpenRuns = Arc<Mutex<Vec<String>>>;

fn lock(open: &OpenRuns) -> std::sync::MutexGuard<'_, Vec<String>> {
    open.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a finished experiment reports.
pub struct Report {
    pub outcome: Outcome,
    pub leaderboard: Leaderboard,
    pub warnings: Vec<Warning>,
    pub parent_run_id: String,
    pub child_run_ids: Vec<String>,
    /// The winner's final child.
    pub best_run_id: Option<String>,
    pub experiment_id: String,
    pub prepared: Prepared,
    /// The first tracking failure, when logging had trouble (results are still local).
    pub tracking_warning: Option<String>,
    /// The winner's MLflow LoggedModel id (`models:/<id>`), when it was logged.
    pub model_id: Option<String>,
}

/// Logs the run tree while the pipeline runs, and forwards events to the progress observer.
struct TrackingObserver<'a> {
    tracker: &'a dyn Tracker,
    experiment_id: String,
    parent: String,
    user: Option<String>,
    open: OpenRuns,
    /// The child being fitted.
    child: Option<String>,
    children: Vec<String>,
    /// Each entry's final child.
    finals: BTreeMap<usize, String>,
    /// Each final child's test figures as logged, for its model (entry index -> metrics).
    final_metrics: BTreeMap<usize, Vec<Metric>>,
    datasets: Vec<DatasetInput>,
    first_error: Option<TrackingError>,
    inner: &'a mut dyn Observer,
    scratch: PathBuf,
    /// Seconds spent sending to the tracking store.
    log_seconds: f64,
    bootstrap: crate::eval::stats::Bootstrap,
    /// Original user ids, for the per-user artifact.
    user_ids: &'a [String],
    data_fingerprint: String,
    /// `recflow.split_fingerprint`, once the split is made.
    split_fingerprint: Option<String>,
    /// The parent's source, git, version and experiment tags, which every child carries too.
    inherited: Vec<Tag>,
    /// Configurations per entry (by entry index), for children's descriptions.
    configs_per_entry: BTreeMap<usize, usize>,
    n_items: usize,
    /// Samples system metrics while the open child fits (off with `--no-system-metrics`).
    system: Option<crate::pipeline::system::Sampler>,
    system_metrics: bool,
}

impl TrackingObserver<'_> {
    /// Writes an evaluation's per-user figures and logs them under `eval/` of run `id`.
    fn log_per_user(&mut self, id: &str, report: &crate::eval::EvalReport, file: &str) {
        let t0 = std::time::Instant::now();
        let dir = self.scratch.join(id).join("eval");
        let path = dir.join(file);
        let written = fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                crate::pipeline::saved::write_per_user(&path, report, self.user_ids)
                    .map_err(|e| e.to_string())
            });
        match written {
            Ok(()) => {
                let r = self.tracker.log_artifact(id, &path, Some("eval"));
                self.keep(r);
            }
            Err(e) => tracing::warn!("per-user figures not saved: {e}"),
        }
        self.log_seconds += t0.elapsed().as_secs_f64();
    }

    fn keep(&mut self, r: Result<(), TrackingError>) {
        if let Err(e) = r {
            tracing::warn!("tracking: {e}");
            if self.first_error.is_none() {
                self.first_error = Some(e);
            }
        }
    }

    fn start_child(&mut self, name: String, tags: Vec<(String, String)>, params: Vec<Param>) {
        let t0 = std::time::Instant::now();
        let mut new =
            NewRun::new(self.experiment_id.clone(), name).with_parent(self.parent.clone());
        if let Some(u) = &self.user {
            new = new
                .with_user(u.clone())
                .with_tag(crate::tracking::TAG_USER, u.clone());
        }
        for t in &self.inherited {
            new = new.with_tag(t.key.clone(), t.value.clone());
        }
        for (k, v) in tags {
            new = new.with_tag(k, v);
        }
        match self.tracker.create_run(&new) {
            Ok(info) => {
                let id = info.run_id;
                lock(&self.open).push(id.clone());
                let r = self.tracker.log_batch(
                    &id,
                    &Batch {
                        params,
                        ..Default::default()
                    },
                );
                self.keep(r);
                for d in self.datasets.clone() {
                    let r = self.tracker.log_input(&id, &d);
                    self.keep(r);
                }
                self.child = Some(id);
                if self.system_metrics {
                    self.system = Some(crate::pipeline::system::Sampler::start());
                }
            }
            Err(e) => {
                self.keep(Err(e));
                self.child = None;
            }
        }
        self.log_seconds += t0.elapsed().as_secs_f64();
    }

    fn finish_child(
        &mut self,
        metrics: Vec<Metric>,
        tags: Vec<Tag>,
        artifacts: &[(String, serde_json::Value)],
    ) -> Option<String> {
        let mut metrics = metrics;
        if let Some(s) = self.system.take() {
            metrics.extend(s.finish());
        }
        let t0 = std::time::Instant::now();
        let id = self.child.take()?;
        let r = self.tracker.log_batch(
            &id,
            &Batch {
                metrics,
                tags,
                ..Default::default()
            },
        );
        self.keep(r);
        for (name, value) in artifacts {
            let path = self.scratch.join(&id).join(name);
            let ok = path.parent().is_some_and(|p| fs::create_dir_all(p).is_ok())
                && fs::write(&path, serde_json::to_vec_pretty(value).unwrap_or_default()).is_ok();
            if ok {
                let dir = Path::new(name)
                    .parent()
                    .and_then(|p| p.to_str())
                    .filter(|p| !p.is_empty());
                let r = self.tracker.log_artifact(&id, &path, dir);
                self.keep(r);
            }
        }
        let r = self
            .tracker
            .end_run(&id, RunStatus::Finished, crate::tracking::now_ms());
        self.keep(r);
        lock(&self.open).retain(|r| r != &id);
        self.children.push(id.clone());
        self.log_seconds += t0.elapsed().as_secs_f64();
        Some(id)
    }
}

fn params_of(entry: &Entry, used: &crate::model::family::Config) -> Vec<Param> {
    let mut p = vec![
        Param::new("entry", entry.name.clone()),
        Param::new("family", entry.family.to_string()),
    ];
    p.extend(
        used.iter()
            .map(|(k, v)| Param::new(k.clone(), v.to_string())),
    );
    p
}

fn counts_json(counts: &[(String, usize)]) -> serde_json::Value {
    serde_json::Value::Object(
        counts
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect(),
    )
}

impl Observer for TrackingObserver<'_> {
    fn started(
        &mut self,
        entries: &[Entry],
        candidates: &[Candidate],
        sizes: &crate::model::artifact::SplitSizes,
        shape: &crate::model::family::DataShape,
    ) {
        self.inner.started(entries, candidates, sizes, shape);
        for c in candidates {
            *self.configs_per_entry.entry(c.entry).or_default() += 1;
        }
        self.datasets = profiled(&self.datasets, sizes, self.user_ids.len(), self.n_items);
        for d in self.datasets.clone() {
            let r = self.tracker.log_input(&self.parent, &d);
            self.keep(r);
        }
        let fp = format!("{}:{:016x}", self.data_fingerprint, sizes.test_digest);
        let r = self.tracker.set_tags(
            &self.parent,
            &[Tag::new(crate::tracking::TAG_SPLIT_FINGERPRINT, fp.clone())],
        );
        self.keep(r);
        self.split_fingerprint = Some(fp);
    }

    fn fit_started(&mut self, entry: &Entry, candidate: &Candidate, role: Role) {
        self.inner.fit_started(entry, candidate, role);
        let (name, role_tag) = match role {
            Role::Trial => (format!("{} {}", entry.name, candidate.label()), "trial"),
            Role::Final => (format!("{} final", entry.name), "final"),
        };
        let tags = vec![
            (crate::tracking::TAG_ENTRY.to_string(), entry.name.clone()),
            (crate::tracking::TAG_ROLE.to_string(), role_tag.to_string()),
            (
                crate::tracking::TAG_CONFIG_INDEX.to_string(),
                candidate.index.to_string(),
            ),
            (crate::tracking::TAG_CONFIG.to_string(), candidate.label()),
            (
                crate::tracking::TAG_NOTE.to_string(),
                match role {
                    Role::Trial => format!(
                        "`{}` ({}), configuration {} of {}: {}. Fitted on the training split less the validation split, scored on validation. Part of run {}.",
                        entry.name,
                        entry.family,
                        candidate.index + 1,
                        self.configs_per_entry
                            .get(&candidate.entry)
                            .copied()
                            .unwrap_or(1),
                        candidate.label(),
                        self.parent
                    ),
                    Role::Final => format!(
                        "`{}` ({}) final model: {}, the configuration selected on validation. Refit on the whole training split, scored on the test split. Part of run {}.",
                        entry.name,
                        entry.family,
                        candidate.label(),
                        self.parent
                    ),
                },
            ),
        ];
        let params = params_of(entry, &candidate.plans[0].used_params());
        self.start_child(name, tags, params);
    }

    fn iteration(&mut self, entry: &Entry, role: Role, step: &Step<'_>) {
        self.inner.iteration(entry, role, step);
        let Some(id) = self.child.clone() else {
            return;
        };
        let t0 = std::time::Instant::now();
        let it = step.report.iteration as i64;
        let mut metrics = vec![Metric::new("iteration_seconds", step.report.seconds, it)];
        if let Some(v) = step.report.train_loss {
            metrics.push(Metric::new("train_loss", v, it));
        }
        metrics.extend(
            step.metrics
                .iter()
                .map(|(k, v)| Metric::new(k.clone(), *v, it)),
        );
        // One write per iteration so MLflow's charts update while training runs.
        let r = self.tracker.log_batch(
            &id,
            &Batch {
                metrics,
                ..Default::default()
            },
        );
        self.keep(r);
        self.log_seconds += t0.elapsed().as_secs_f64();
    }

    fn trial_finished(&mut self, entry: &Entry, candidate: &Candidate, trial: &Trial) {
        self.inner.trial_finished(entry, candidate, trial);
        // The model's figures after its last iteration (the kept one, with early stopping:
        // MLflow's own Keras autologging logs restored weights' values so), at the step after
        // the curve's last, so MLflow's latest value of a curve key is the model's.
        let step = trial.history.last().map_or(0, |h| h.iteration as i64 + 1);
        let mut metrics: Vec<Metric> = trial
            .metrics
            .iter()
            .chain(&trial.sd)
            .map(|(k, v)| Metric::new(k.clone(), *v, step))
            .collect();
        metrics.push(Metric::new("fit_seconds", trial.fit_seconds, 0));
        metrics.push(Metric::new("eval_seconds", trial.eval_seconds, 0));
        if let Some(best) = trial.best_iteration {
            metrics.push(Metric::new("best_iteration", best as f64, 0));
        }
        if let (Some(report), Some(id)) = (&trial.report, self.child.clone()) {
            self.log_per_user(&id, report, "per_user_val.parquet");
        }
        let mut artifacts = vec![("eval/counts.json".to_string(), counts_json(&trial.counts))];
        if !trial.per_repeat.is_empty() {
            artifacts.push((
                "repeats.json".to_string(),
                serde_json::json!(trial
                    .per_repeat
                    .iter()
                    .map(|m| m.iter().cloned().collect::<BTreeMap<_, _>>())
                    .collect::<Vec<_>>()),
            ));
        }
        self.finish_child(metrics, Vec::new(), &artifacts);
    }

    fn final_finished(&mut self, entry: &Entry, outcome: &EntryOutcome) {
        self.inner.final_finished(entry, outcome);
        if self.child.is_none() {
            return;
        }
        let trial = outcome.best_trial();
        let mut metrics: Vec<Metric> = outcome
            .test
            .metrics(Split::Test)
            .into_iter()
            .chain(trial.metrics.iter().cloned())
            .map(|(k, v)| Metric::new(k, v, 0))
            .collect();
        for (k, ci) in &outcome.test_ci {
            let key = format!("{}_{k}", Split::Test);
            metrics.push(Metric::new(format!("{key}_ci_low"), ci.low, 0));
            metrics.push(Metric::new(format!("{key}_ci_high"), ci.high, 0));
        }
        metrics.push(Metric::new("fit_seconds", outcome.fit_seconds, 0));
        metrics.push(Metric::new("eval_seconds", outcome.eval_seconds, 0));
        let mut tags = vec![Tag::new(
            crate::tracking::TAG_SELECTED_CONFIG,
            search::label(&trial.point),
        )];
        tags.extend(
            self.split_fingerprint
                .clone()
                .map(|fp| Tag::new(crate::tracking::TAG_SPLIT_FINGERPRINT, fp)),
        );
        let boot = self.bootstrap;
        // Per-user figures, for paired comparisons of runs later (`eval/per_user_test.parquet`).
        if let Some(id) = self.child.clone() {
            self.log_per_user(&id, &outcome.test, "per_user_test.parquet");
        }
        let artifacts = vec![
            (
                "eval/counts_test.json".to_string(),
                counts_json(&outcome.test.counts()),
            ),
            (
                "eval/intervals_test.json".to_string(),
                serde_json::json!({
                    "method": "percentile bootstrap over test users, 95%",
                    "resamples": boot.resamples,
                    "seed": boot.seed,
                    "intervals": outcome.test_ci.iter().map(|(k, ci)| serde_json::json!({
                        "key": format!("{}_{k}", Split::Test), "low": ci.low, "high": ci.high,
                    })).collect::<Vec<_>>(),
                }),
            ),
        ];
        let model_metrics: Vec<Metric> = metrics
            .iter()
            .filter(|m| m.key.starts_with("test_") || m.key.starts_with("val_"))
            .cloned()
            .collect();
        if let Some(id) = self.finish_child(metrics, tags, &artifacts) {
            self.finals.insert(outcome.entry, id);
            self.final_metrics.insert(outcome.entry, model_metrics);
        }
    }

    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

/// The parent to continue (`--resume`): the latest run of the same spec on the same data with
/// the same split and evaluation settings, and the trials it finished. Its earlier final
/// children are marked superseded (the resumed run refits its entries again).
fn find_resumable(
    tracker: &dyn Tracker,
    experiment_id: &str,
    s: &ExperimentSettings,
    prepared: &Prepared,
) -> Result<Option<(String, Vec<crate::pipeline::train::Done>)>, ExperimentError> {
    let quote = |v: &str| v.replace('\'', "\\'");
    let parents = tracker.search_runs(&crate::tracking::RunQuery {
        experiment_ids: vec![experiment_id.to_string()],
        filter: Some(format!(
            "tags.`{}` = '{}' and tags.`{}` = '{}'",
            crate::tracking::TAG_SPEC,
            quote(&source_name(s)),
            crate::tracking::TAG_DATA_FINGERPRINT,
            quote(&prepared.fingerprint)
        )),
        order_by: vec!["attributes.start_time DESC".into()],
        max_results: 50,
    })?;
    // Selection happens on the same split with the same cut-off, or not at all.
    let same = |p: &crate::tracking::Run| {
        s.params
            .iter()
            .filter(|(k, _)| {
                k.starts_with("split.") || k.starts_with("data.") || k.starts_with("eval.")
            })
            .all(|(k, v)| p.params.get(k) == Some(v))
    };
    let Some(parent) = parents
        .into_iter()
        .find(|p| p.parent_run_id().is_none() && same(p))
    else {
        return Ok(None);
    };
    let id = parent.info.run_id.clone();
    let children = tracker.search_runs(&crate::tracking::RunQuery {
        experiment_ids: vec![experiment_id.to_string()],
        filter: Some(format!(
            "tags.`{}` = '{}'",
            crate::tracking::TAG_PARENT_RUN_ID,
            id
        )),
        order_by: vec![],
        max_results: 100_000,
    })?;
    let mut done = Vec::new();
    for c in children {
        let role = c.tags.get(crate::tracking::TAG_ROLE).map(String::as_str);
        if role == Some("final") && !c.tags.contains_key(crate::tracking::TAG_SUPERSEDED) {
            tracker.set_tags(
                &c.info.run_id,
                &[Tag::new(crate::tracking::TAG_SUPERSEDED, "true")],
            )?;
        }
        if role != Some("trial") || c.info.status != RunStatus::Finished {
            continue;
        }
        let Some(entry) = c.tags.get(crate::tracking::TAG_ENTRY) else {
            continue;
        };
        let mut params = c.params.clone();
        params.remove("entry");
        params.remove("family");
        done.push(crate::pipeline::train::Done {
            entry: entry.clone(),
            params,
            metrics: c
                .metrics
                .iter()
                .filter(|(k, _)| {
                    crate::eval::keys::MetricKey::parse(k).is_some_and(|m| {
                        matches!(m.split, Some(Split::Val | Split::Test)) && m.suffix.is_none()
                    })
                })
                .map(|(k, m)| (k.clone(), m.value))
                .collect(),
            fit_seconds: c.metric("fit_seconds").unwrap_or(0.0),
        });
    }
    Ok(Some((id, done)))
}

/// The processed interactions' columns, as MLflow's column spec (`mlflow.types.Schema`).
fn interactions_schema(ds: &Dataset) -> String {
    let mut cols = vec![
        serde_json::json!({ "type": "integer", "name": "user_idx", "required": true }),
        serde_json::json!({ "type": "integer", "name": "item_idx", "required": true }),
        serde_json::json!({ "type": "float", "name": "rating", "required": true }),
    ];
    if ds.interactions.timestamp.is_some() {
        cols.push(serde_json::json!({ "type": "long", "name": "timestamp", "required": true }));
    }
    serde_json::json!({ "mlflow_colspec": cols }).to_string()
}

/// The dataset inputs with their profiles, once the split's sizes are known: each context's
/// rows, the id spaces' users and items, and its density.
fn profiled(
    base: &[DatasetInput],
    sizes: &crate::model::artifact::SplitSizes,
    users: usize,
    items: usize,
) -> Vec<DatasetInput> {
    base.iter()
        .map(|d| {
            let rows = match d.context.as_deref() {
                // The whole training split; trials fit it less the validation split.
                Some("training") => sizes.train,
                Some("validation") => sizes.validation,
                Some("test") => sizes.test,
                _ => sizes.sampled,
            };
            let cells = (users as f64) * (items as f64);
            // One dataset per split: MLflow keeps one input per (name, digest) and run.
            let context = d.context.clone().unwrap_or_default();
            let mut d = d.clone();
            d.name = format!("{}-{context}", d.name);
            d.digest = format!("{}-{context}-{rows}", d.digest)
                .chars()
                .take(36)
                .collect();
            d.with_profile(
                serde_json::json!({
                    "num_rows": rows,
                    "users": users,
                    "items": items,
                    "density": if cells > 0.0 { rows as f64 / cells } else { 0.0 },
                })
                .to_string(),
            )
        })
        .collect()
}

/// The three dataset inputs of a run (training, validation, test contexts).
fn datasets(s: &ExperimentSettings, prepared: &Prepared, ds: &Dataset) -> Vec<DatasetInput> {
    // MLflow caps digests at 36 characters; the context and the split's rows are added later.
    let digest: String = prepared.fingerprint.chars().take(16).collect();
    let uri = std::fs::canonicalize(&prepared.dir)
        .map(|p| crate::tracking::path_to_file_uri(&p))
        .unwrap_or_else(|_| prepared.dir.display().to_string());
    let base = DatasetInput::local(format!("{}-{}", s.name, prepared.fingerprint), digest, &uri)
        .with_schema(interactions_schema(ds));
    let mut out = vec![base.clone().with_context("training")];
    if s.pipeline.validation_fraction > 0.0 {
        out.push(base.clone().with_context("validation"));
    }
    out.push(base.with_context("test"));
    out
}

/// The run's `mlflow.source.name`: the spec file, or the command that described the runs.
fn source_name(s: &ExperimentSettings) -> String {
    match &s.spec_path {
        Some(p) => p.display().to_string(),
        None => "recflow train".to_string(),
    }
}

/// Runs the experiment: the ETL into the processed-data cache under `processed_root`, then
/// [`run_prepared`]. `inner` draws progress and says when to stop; `open` collects runs an
/// interrupt must end.
pub fn run(
    s: &ExperimentSettings,
    etl: &EtlSettings,
    processed_root: &Path,
    tracker: &dyn Tracker,
    progress: &Progress,
    inner: &mut dyn Observer,
    open: OpenRuns,
) -> Result<Report, ExperimentError> {
    let prepared = cache::prepare(etl, &s.name, processed_root, progress)?;
    let ds: Dataset = store::load_dataset(&prepared.dir)?;
    run_prepared(s, prepared, ds, tracker, inner, open)
}

/// Logs the run tree of an experiment on data already processed: the parent, a child per
/// (entry, configuration), each entry's final child, and the winner's model.
pub fn run_prepared(
    s: &ExperimentSettings,
    prepared: Prepared,
    mut ds: Dataset,
    tracker: &dyn Tracker,
    inner: &mut dyn Observer,
    open: OpenRuns,
) -> Result<Report, ExperimentError> {
    let fixed_test = match &s.test_file {
        Some(p) => Some(crate::data::testfile::attach_test_file(&mut ds, p)?),
        None => None,
    };
    let exp_tags: Vec<Tag> = s.tags.iter().map(|(k, v)| Tag::new(k, v)).collect();
    let experiment_id =
        tracker.get_or_create_experiment(&s.name, s.description.as_deref(), &exp_tags)?;
    let run_name = format!("{}-{}", s.name, chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    let mut new = NewRun::new(experiment_id.clone(), run_name)
        .with_tag(crate::tracking::TAG_SOURCE_NAME, source_name(s))
        .with_tag(crate::tracking::TAG_SOURCE_TYPE, "LOCAL")
        .with_tag(
            crate::tracking::TAG_RECFLOW_VERSION,
            env!("CARGO_PKG_VERSION"),
        )
        .with_tag(crate::tracking::TAG_ENGINE, "local");
    if let Some(p) = &s.spec_path {
        new = new.with_tag(crate::tracking::TAG_SPEC, p.display().to_string());
    }
    if let Some(u) = &s.user {
        new = new
            .with_user(u.clone())
            .with_tag(crate::tracking::TAG_USER, u.clone());
    }
    for (k, v) in &s.tags {
        new = new.with_tag(k.clone(), v.clone());
    }
    if let Some(g) = &s.git {
        new = new
            .with_tag(crate::tracking::TAG_GIT_COMMIT, g.commit.clone())
            .with_tag(crate::tracking::TAG_GIT_DIRTY, g.dirty.to_string());
        if let Some(b) = &g.branch {
            new = new.with_tag(crate::tracking::TAG_GIT_BRANCH, b.clone());
        }
        if let Some(u) = &g.repo_url {
            new = new.with_tag(crate::tracking::TAG_GIT_REPO_URL, u.clone());
        }
    }
    // Children carry the parent's context (source, git, version, the experiment's tags), not
    // its identity (name, data fingerprint: `--resume` finds parents by it).
    let inherited: Vec<Tag> = new
        .tags
        .iter()
        .filter(|t| {
            t.key != crate::tracking::TAG_RUN_NAME
                && t.key != crate::tracking::TAG_USER
                && t.key != crate::tracking::TAG_PARENT_RUN_ID
        })
        .cloned()
        .collect();
    let resumed = if s.resume {
        find_resumable(tracker, &experiment_id, s, &prepared)?
    } else {
        None
    };
    let mut settings = s.clone();
    let parent = match resumed {
        Some((id, done)) => {
            tracing::info!(
                "resuming run {id}: {} finished configuration(s) are not fitted again",
                done.len()
            );
            tracker.end_run(&id, RunStatus::Running, crate::tracking::now_ms())?;
            tracker.set_tags(
                &id,
                &[Tag::new(
                    crate::tracking::TAG_RESUMED,
                    chrono::Utc::now().to_rfc3339(),
                )],
            )?;
            settings.pipeline.done = done;
            id
        }
        None => {
            if s.resume {
                tracing::info!("no earlier run of this spec on this data to resume: starting one");
            }
            new = new.with_tag(
                crate::tracking::TAG_DATA_FINGERPRINT,
                prepared.fingerprint.clone(),
            );
            tracker.create_run(&new)?.run_id
        }
    };
    let s = &settings;
    lock(&open).push(parent.clone());
    let result = run_logged(
        s,
        tracker,
        inner,
        &open,
        &prepared,
        &ds,
        fixed_test.as_ref(),
        &experiment_id,
        &parent,
        &inherited,
    );
    let status = match &result {
        Ok(_) => RunStatus::Finished,
        Err(ExperimentError::Train(TrainError::Cancelled)) => RunStatus::Killed,
        Err(_) => RunStatus::Failed,
    };
    // Children still open after a failure end with it.
    let still_open: Vec<String> = lock(&open).drain(..).collect();
    for id in still_open {
        if let Err(e) = tracker.end_run(&id, status, crate::tracking::now_ms()) {
            tracing::warn!("tracking: could not end run {id}: {e}");
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run_logged(
    s: &ExperimentSettings,
    tracker: &dyn Tracker,
    inner: &mut dyn Observer,
    open: &OpenRuns,
    prepared: &Prepared,
    ds: &Dataset,
    fixed_test: Option<&crate::data::interactions::Interactions>,
    experiment_id: &str,
    parent: &str,
    inherited: &[Tag],
) -> Result<Report, ExperimentError> {
    let datasets = datasets(s, prepared, ds);
    let mut params: Vec<Param> = s.params.iter().map(|(k, v)| Param::new(k, v)).collect();
    params.push(Param::new("data.fingerprint", prepared.fingerprint.clone()));
    params.push(Param::new("data.users", ds.user_ids.len().to_string()));
    params.push(Param::new("data.items", ds.item_ids.len().to_string()));
    params.push(Param::new(
        "data.ratings",
        ds.interactions.len().to_string(),
    ));
    tracker.log_batch(
        parent,
        &Batch {
            params,
            ..Default::default()
        },
    )?;
    // The dataset inputs are logged once the split is made (their profiles need its sizes).
    let scratch = tempfile::tempdir().map_err(io(Path::new("temporary folder")))?;
    if s.spec_path.is_some() {
        let spec_file = scratch.path().join("spec.toml");
        fs::write(&spec_file, &s.resolved_spec).map_err(io(&spec_file))?;
        tracker.log_artifact(parent, &spec_file, None)?;
    }
    let summary = prepared.dir.join(store::SUMMARY);
    if summary.exists() {
        tracker.log_artifact(parent, &summary, None)?;
    }

    let mut observer = TrackingObserver {
        tracker,
        experiment_id: experiment_id.to_string(),
        parent: parent.to_string(),
        user: s.user.clone(),
        open: open.clone(),
        child: None,
        children: Vec::new(),
        finals: BTreeMap::new(),
        final_metrics: BTreeMap::new(),
        datasets,
        first_error: None,
        inner,
        scratch: scratch.path().join("children"),
        log_seconds: 0.0,
        bootstrap: s.pipeline.bootstrap(),
        user_ids: &ds.user_ids,
        data_fingerprint: prepared.fingerprint.clone(),
        split_fingerprint: None,
        inherited: inherited.to_vec(),
        configs_per_entry: BTreeMap::new(),
        n_items: ds.item_ids.len(),
        system: None,
        system_metrics: s.system_metrics,
    };
    let outcome = train::run(&s.pipeline, &ds.interactions, fixed_test, &mut observer)?;
    let children = std::mem::take(&mut observer.children);
    let finals = std::mem::take(&mut observer.finals);
    let mut final_metrics = std::mem::take(&mut observer.final_metrics);
    let warning = observer.first_error.take().map(|e| e.to_string());
    let log_seconds = observer.log_seconds;
    drop(observer);

    let board = with_comparisons(&s.pipeline, &outcome);
    let warns = warnings(&s.pipeline, &outcome);
    let winner = outcome
        .winner
        .ok_or_else(|| ExperimentError::NoWinner(s.pipeline.select.name.clone()))?;
    let best_run_id = finals.get(&winner).cloned();
    let win = &outcome.entries[winner];
    let entry = &s.pipeline.entries[win.entry];
    let ctx = ModelContext {
        settings: &s.pipeline,
        entry,
        prepared: Some(prepared),
        data_dir: &prepared.dir,
        git_commit: s.git.as_ref().map(|g| g.commit.clone()),
        run_id: best_run_id.clone(),
        test_file: s.test_file.as_ref().map(|p| p.display().to_string()),
    };
    let winner_saved = saved_model(
        &ctx,
        &outcome,
        win,
        &ds.user_ids,
        &ds.item_ids,
        ds.item_meta.as_deref(),
    );
    winner_saved.save(&s.model_dir)?;

    // The parent: the winner's figures under `best.`, the leaderboard, the warnings.
    let mut metrics: Vec<Metric> = win
        .test
        .metrics(Split::Test)
        .into_iter()
        .chain(win.best_trial().metrics.iter().cloned())
        .map(|(k, v)| Metric::new(format!("best.{k}"), v, 0))
        .collect();
    metrics.push(Metric::new("log_seconds", log_seconds, 0));
    let mut tags = vec![
        Tag::new(TAG_NOTE, note(s, prepared, &board, &warns)),
        Tag::new(
            crate::tracking::TAG_SELECTED_ON,
            outcome.selected_on.to_string(),
        ),
        Tag::new(
            crate::tracking::TAG_SELECTION,
            s.pipeline.select.name.clone(),
        ),
        Tag::new(crate::tracking::TAG_WINNER, entry.name.clone()),
    ];
    if !warns.is_empty() {
        tags.push(Tag::new(
            crate::tracking::TAG_WARNINGS,
            warns
                .iter()
                .map(|w| w.message.clone())
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    if let Some(b) = &best_run_id {
        tags.push(Tag::new(crate::tracking::TAG_BEST_RUN_ID, b.clone()));
    }
    tracker.log_batch(
        parent,
        &Batch {
            metrics,
            tags,
            params: vec![
                Param::new("best.entry", entry.name.clone()),
                Param::new("best.config", search::label(&win.best_trial().point)),
            ],
        },
    )?;
    let board_file = scratch.path().join("leaderboard.csv");
    let (header, rows) = board.cells(|v| format!("{v}"));
    let mut table = crate::output::Table::new(header);
    for r in rows {
        table.push(r);
    }
    fs::write(&board_file, table.to_csv()).map_err(io(&board_file))?;
    tracker.log_artifact(parent, &board_file, None)?;
    if let Err(e) = log_pictures(tracker, parent, s, &outcome, &board, ds, scratch.path()) {
        tracing::warn!("pictures were not logged: {e}");
    }
    // The winner (every entry's final model with `--log-models all`) as an MLflow LoggedModel
    // of its final child, recorded as an output of the parent too.
    let mut model_id = None;
    let mut run_tags = inherited.to_vec();
    if let Some(u) = &s.user {
        run_tags.push(Tag::new(crate::tracking::TAG_USER, u.clone()));
    }
    for (i, e) in outcome.entries.iter().enumerate() {
        let Some(run_id) = finals.get(&i) else {
            continue;
        };
        if i != winner && !s.log_all_models {
            continue;
        }
        let (saved_dir, owned);
        let saved = if i == winner {
            saved_dir = s.model_dir.clone();
            &winner_saved
        } else {
            let ctx = ModelContext {
                entry: &s.pipeline.entries[e.entry],
                run_id: Some(run_id.clone()),
                git_commit: ctx.git_commit.clone(),
                test_file: ctx.test_file.clone(),
                ..ctx
            };
            owned = saved_model(
                &ctx,
                &outcome,
                e,
                &ds.user_ids,
                &ds.item_ids,
                ds.item_meta.as_deref(),
            );
            saved_dir = scratch.path().join(format!("saved-{i}"));
            owned.save(&saved_dir)?;
            &owned
        };
        let root = scratch.path().join(format!("mlflow-model-{i}"));
        let written =
            crate::pipeline::mlflow_model::write(&root, &saved_dir, saved).map_err(io(&root))?;
        let to_log = crate::pipeline::mlflow_model::to_log(
            experiment_id,
            run_id,
            written,
            saved,
            final_metrics.remove(&i).unwrap_or_default(),
            &run_tags,
            // The parent records the winner's model only, so it names one model.
            if i == winner {
                vec![parent.to_string()]
            } else {
                Vec::new()
            },
        );
        let logged = tracker.log_model(&to_log)?;
        if i == winner {
            model_id = Some(logged.model_id);
        }
    }
    fs::create_dir_all(&s.metrics_dir).map_err(io(&s.metrics_dir))?;
    store::write_atomic(
        &s.metrics_dir.join("mlflow_run_id.txt"),
        format!("{parent}\n").as_bytes(),
    )?;
    Ok(Report {
        outcome,
        leaderboard: board,
        warnings: warns,
        parent_run_id: parent.to_string(),
        child_run_ids: children,
        best_run_id,
        experiment_id: experiment_id.to_string(),
        prepared: prepared.clone(),
        tracking_warning: warning,
        model_id,
    })
}

/// A Markdown summary for `mlflow.note.content`.
fn note(
    s: &ExperimentSettings,
    prepared: &Prepared,
    board: &Leaderboard,
    warns: &[Warning],
) -> String {
    let mut md = String::new();
    if let Some(d) = &s.description {
        md.push_str(&format!("{d}\n\n"));
    }
    match &prepared.summary {
        Some(sum) => md.push_str(&format!(
            "**Data**: `{}` → {} users × {} items, {} ratings (min {} per user/item).\n\n",
            sum.input.path, sum.users, sum.items, sum.ratings, sum.min_interactions
        )),
        None => md.push_str(&format!("**Data**: `{}`.\n\n", prepared.dir.display())),
    }
    md.push_str(&format!(
        "**Leaderboard** (selected on `{}`, {}; test figures of each entry's final model):\n\n",
        board.selection_key,
        board.direction.word()
    ));
    md.push_str(&board.markdown());
    if let Some((w, b, d)) = board.versus_baseline() {
        md.push_str(&format!(
            "\n**Winner** `{}` against the best baseline `{}`: {} {:+.4}.\n",
            w.entry, b.entry, board.selection_key, d
        ));
    }
    md.push_str(&board.comparisons_markdown());
    if !warns.is_empty() {
        md.push_str("\n**Warnings**\n\n");
        for w in warns {
            md.push_str(&format!("- {}\n", w.message));
        }
    }
    md
}

/// Writes the EDA report, learning curves and search heatmaps, and logs them on the parent run.
fn log_pictures(
    tracker: &dyn Tracker,
    parent: &str,
    s: &ExperimentSettings,
    outcome: &Outcome,
    board: &crate::pipeline::report::Leaderboard,
    ds: &Dataset,
    scratch: &Path,
) -> Result<(), String> {
    let eda_dir = scratch.join("eda");
    let stats = crate::eda::compute_stats(ds);
    crate::eda::write_report(&stats, ds, &eda_dir).map_err(|e| e.to_string())?;
    tracker
        .log_artifacts(parent, &eda_dir, Some("eda"))
        .map_err(|e| e.to_string())?;
    let plots = scratch.join("plots");
    let mut any = false;
    for o in &outcome.entries {
        let e = &s.pipeline.entries[o.entry];
        let key = o.select.on(outcome.selected_on);
        let series: Vec<crate::eda::LearningSeries> = o
            .trials
            .iter()
            .filter(|t| t.history.iter().any(|h| h.train_loss.is_some()))
            .map(|t| {
                (
                    search::label(&t.point),
                    t.history
                        .iter()
                        .filter_map(|h| {
                            Some((
                                h.iteration,
                                h.train_loss?,
                                h.metrics.iter().find(|(k, _)| *k == key).map(|(_, v)| *v),
                            ))
                        })
                        .collect(),
                )
            })
            .collect();
        if !series.is_empty() {
            let stem = format!("learning_curves_{}", e.name);
            if crate::eda::learning_curves(&series, &key, &plots, &stem).is_ok() {
                any = true;
            }
        }
        // A rank x reg heatmap of the selection metric for each combination of the other
        // searched axes (`alpha`, ...): one picture per held value, the selected one first.
        let best = o.best_trial();
        let rank_reg = |t: &Trial| -> Option<(usize, f64)> {
            Some((
                t.point.get("rank")?.as_f64()? as usize,
                t.point.get("reg")?.as_f64()?,
            ))
        };
        let rest = |t: &Trial| -> crate::model::family::Config {
            t.point
                .iter()
                .filter(|(k, _)| *k != "rank" && *k != "reg")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        if rank_reg(best).is_some() {
            let mut groups: Vec<crate::model::family::Config> = vec![rest(best)];
            for t in &o.trials {
                let r = rest(t);
                if rank_reg(t).is_some() && !groups.contains(&r) {
                    groups.push(r);
                }
            }
            let several = groups.len() > 1;
            for held in groups {
                let group: Vec<&Trial> = o.trials.iter().filter(|t| rest(t) == held).collect();
                let cells: Vec<crate::eda::GridCell> = group
                    .iter()
                    .filter_map(|t| Some((rank_reg(t)?.0, rank_reg(t)?.1, t.metric(&key)?)))
                    .collect();
                if cells.len() < 2 {
                    continue;
                }
                // Outlined: the selected point in its picture, the best of the others in theirs.
                let mark = cells
                    .iter()
                    .copied()
                    .reduce(|a, b| {
                        if o.select.direction.better(b.2, a.2) {
                            b
                        } else {
                            a
                        }
                    })
                    .map(|(r, g, _)| (r, g));
                let mark = match rank_reg(best) {
                    Some(b) if rest(best) == held => b,
                    _ => match mark {
                        Some(m) => m,
                        None => continue,
                    },
                };
                let label = search::label(&held);
                let fixed = if label == "defaults" {
                    String::new()
                } else {
                    label
                };
                let mut stem = format!("grid_{}_{}", e.name, key.replace(['.', '/'], "_"));
                if several {
                    stem.push('_');
                    stem.push_str(
                        &fixed
                            .chars()
                            .map(|c| {
                                if c.is_ascii_alphanumeric() || c == '.' {
                                    c
                                } else {
                                    '_'
                                }
                            })
                            .collect::<String>(),
                    );
                }
                if crate::eda::grid_heatmap(&cells, &key, &fixed, mark, &plots, &stem).is_ok() {
                    any = true;
                }
            }
        }
    }
    // A forest plot of the test figures with their intervals, and the paired differences
    // from the best baseline.
    let test_key = s.pipeline.select.on(Split::Test);
    let models: Vec<crate::eda::ForestRow> = board
        .rows
        .iter()
        .filter_map(|r| {
            let value = r.test.iter().find(|(k, _)| *k == test_key)?.1;
            Some(crate::eda::ForestRow {
                label: r.entry.clone(),
                value,
                ci: r
                    .test_ci
                    .iter()
                    .find(|(k, _, _)| *k == test_key)
                    .map(|c| (c.1, c.2)),
                baseline: r.baseline,
            })
        })
        .collect();
    let diffs: Vec<crate::eda::ForestRow> = board
        .comparisons
        .iter()
        .map(|c| crate::eda::ForestRow {
            label: format!("{}{}", c.entry, if c.is_real() { "" } else { " (noise)" }),
            value: c.mean_diff,
            ci: c.ci_low.zip(c.ci_high),
            baseline: false,
        })
        .collect();
    let against = board
        .comparisons
        .first()
        .map(|c| c.baseline.clone())
        .unwrap_or_else(|| "the best baseline".into());
    if models.len() > 1
        && crate::eda::forest_plot(
            &test_key,
            &models,
            &diffs,
            &against,
            &plots,
            &format!("forest_{}", test_key.replace(['.', '/'], "_")),
        )
        .is_ok()
    {
        any = true;
    }
    if any {
        tracker
            .log_artifacts(parent, &plots, Some("plots"))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

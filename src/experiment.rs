//! `recflow run`: one experiment spec end to end. Prepares the data (reusing a processed copy per
//! input fingerprint and ETL settings), runs the training pipeline, saves the best model, and logs
//! a parent run with one nested child run per grid point to MLflow.
//!
//! Takes resolved settings and a [`Tracker`]; knows nothing about the command line.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::data::etl::{run_etl, EtlError, EtlSettings, EtlSummary};
use crate::data::store::{self, Dataset, StoreError};
use crate::model::als::IterationReport;
use crate::model::artifact::ModelMetadata;
use crate::progress::Progress;
use crate::tracking::{
    Batch, DatasetInput, Metric, NewRun, Param, RunStatus, Tag, Tracker, TrackingError, TAG_NOTE,
    TAG_RUN_NAME,
};
use crate::train::{
    self, Axes, GridPoint, Observer, Outcome, PointResult, SplitSizes, TrainError, TrainSettings,
};

#[derive(Debug, Error)]
pub enum ExperimentError {
    #[error(transparent)]
    Etl(#[from] EtlError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Tracking(#[from] TrackingError),
    #[error(transparent)]
    Artifact(#[from] crate::model::artifact::ArtifactError),
    #[error("cannot prepare `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Everything `recflow run` needs, resolved.
#[derive(Debug, Clone)]
pub struct ExperimentSettings {
    pub name: String,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub spec_path: PathBuf,
    /// The spec as run (after `--set`), TOML.
    pub resolved_spec: String,
    pub etl: EtlSettings,
    /// Where per-fingerprint processed copies live (`data/processed`).
    pub processed_root: PathBuf,
    pub train: TrainSettings,
    pub model_dir: PathBuf,
    /// Flat params logged on the parent run (every setting).
    pub params: Vec<(String, String)>,
    pub user: String,
    pub git: Option<GitInfo>,
    /// Where local summaries go (`artifacts/metrics`).
    pub metrics_dir: PathBuf,
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

/// The processed data for `etl`, reused when the input's content and the ETL settings match.
pub struct Prepared {
    pub dir: PathBuf,
    pub summary: EtlSummary,
    pub reused: bool,
    pub fingerprint: String,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ExperimentError + '_ {
    move |source| ExperimentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Fingerprint: the input's SHA-256 and every ETL setting but the output folder.
pub fn fingerprint(etl: &EtlSettings) -> Result<String, ExperimentError> {
    let mut h = Sha256::new();
    let mut f = fs::File::open(&etl.input).map_err(|e| {
        ExperimentError::Etl(EtlError::Read(
            if e.kind() == std::io::ErrorKind::NotFound {
                crate::data::read::ReadError::Missing(etl.input.clone())
            } else {
                crate::data::read::ReadError::Io {
                    path: etl.input.clone(),
                    source: e,
                }
            },
        ))
    })?;
    std::io::copy(&mut f, &mut h).map_err(io(&etl.input))?;
    let settings = serde_json::json!({
        "format": etl.format, "columns": etl.columns, "has_header": etl.has_header,
        "min_interactions": etl.min_interactions, "rating_range": etl.rating_range.to_string(), "strict": etl.strict,
    });
    h.update(settings.to_string().as_bytes());
    Ok(format!("{:x}", h.finalize())[..12].to_string())
}

/// Runs the ETL into `processed_root/<name>-<fingerprint>/` unless that folder is already there.
/// Built in a temporary folder and renamed, so concurrent runs never see half a copy.
pub fn prepare(
    etl: &EtlSettings,
    name: &str,
    processed_root: &Path,
    progress: &Progress,
) -> Result<Prepared, ExperimentError> {
    let fp = fingerprint(etl)?;
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let dir = processed_root.join(format!("{slug}-{fp}"));
    let summary_path = dir.join(store::SUMMARY);
    if let Some(summary) = fs::read_to_string(&summary_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
    {
        tracing::info!("reusing processed data in {}", dir.display());
        return Ok(Prepared {
            dir,
            summary,
            reused: true,
            fingerprint: fp,
        });
    }
    fs::create_dir_all(processed_root).map_err(io(processed_root))?;
    let tmp = tempfile::Builder::new()
        .prefix(".etl-")
        .tempdir_in(processed_root)
        .map_err(io(processed_root))?;
    let settings = EtlSettings {
        output: tmp.path().to_path_buf(),
        ..etl.clone()
    };
    let summary = run_etl(&settings, progress)?;
    let tmp_path = tmp.keep();
    if let Err(e) = fs::rename(&tmp_path, &dir) {
        let _ = fs::remove_dir_all(&tmp_path);
        // Another run finished the same copy first: use it.
        if !summary_path.exists() {
            return Err(io(&dir)(e));
        }
    }
    Ok(Prepared {
        dir,
        summary,
        reused: false,
        fingerprint: fp,
    })
}

/// Runs that are open, so an interrupt can end them as KILLED.
pub type OpenRuns = Arc<Mutex<Vec<String>>>;

/// Logs the grid to the tracker as child runs, and draws progress.
struct TrackingObserver<'a> {
    tracker: &'a dyn Tracker,
    experiment_id: String,
    parent: String,
    open: OpenRuns,
    child: Option<String>,
    children: Vec<String>,
    base_params: Vec<Param>,
    dataset: DatasetInput,
    axes: Axes,
    first_error: Option<TrackingError>,
    inner: &'a mut dyn Observer,
    scratch: PathBuf,
}

impl TrackingObserver<'_> {
    fn keep(&mut self, r: Result<(), TrackingError>) {
        if let Err(e) = r {
            tracing::warn!("tracking: {e}");
            if self.first_error.is_none() {
                self.first_error = Some(e);
            }
        }
    }
}

fn point_name(p: &GridPoint, axes: Axes) -> String {
    axes.describe("=", p)
}

impl Observer for TrackingObserver<'_> {
    fn grid_started(&mut self, points: &[GridPoint], sizes: &SplitSizes) {
        self.inner.grid_started(points, sizes);
    }

    fn point_started(&mut self, index: usize, point: &GridPoint) {
        self.inner.point_started(index, point);
        let new = NewRun::new(self.experiment_id.clone(), point_name(point, self.axes))
            .with_parent(self.parent.clone())
            .with_tag("recflow.grid_index", index.to_string());
        match self.tracker.create_run(&new) {
            Ok(info) => {
                let id = info.run_id;
                lock(&self.open).push(id.clone());
                let mut params = self.base_params.clone();
                params.retain(|p| !matches!(p.key.as_str(), "rank" | "reg" | "alpha"));
                params.push(Param::new("rank", point.rank.to_string()));
                if self.axes.reg {
                    params.push(Param::new("reg", point.reg.to_string()));
                }
                params.push(Param::new("alpha", point.alpha.to_string()));
                let r = self.tracker.log_batch(
                    &id,
                    &Batch {
                        params,
                        ..Default::default()
                    },
                );
                self.keep(r);
                let r = self
                    .tracker
                    .log_input(&id, &self.dataset.clone().with_context("training"));
                self.keep(r);
                self.child = Some(id);
            }
            Err(e) => {
                self.keep(Err(e));
                self.child = None;
            }
        }
    }

    fn iteration(&mut self, index: Option<usize>, report: &IterationReport) {
        self.inner.iteration(index, report);
        let Some(id) = self.child.clone().filter(|_| index.is_some()) else {
            return;
        };
        let step = report.iteration as i64;
        let mut metrics = vec![Metric::new("iteration_seconds", report.seconds, step)];
        if let Some(v) = report.train_loss {
            metrics.push(Metric::new("train_loss", v, step));
        }
        if let Some(v) = report.val_rmse {
            metrics.push(Metric::new("val_rmse", v, step));
        }
        // One write per iteration so MLflow's charts update while training runs.
        let r = self.tracker.log_batch(
            &id,
            &Batch {
                metrics,
                ..Default::default()
            },
        );
        self.keep(r);
    }

    fn point_finished(&mut self, index: usize, result: &PointResult) {
        self.inner.point_finished(index, result);
        let Some(id) = self.child.take() else {
            return;
        };
        let mut metrics: Vec<Metric> = result
            .metrics
            .iter()
            .map(|(k, v)| Metric::new(k.clone(), *v, 0))
            .collect();
        metrics.extend(
            result
                .counts
                .iter()
                .map(|(k, v)| Metric::new(k.clone(), *v as f64, 0)),
        );
        metrics.push(Metric::new("fit_seconds", result.fit_seconds, 0));
        metrics.push(Metric::new("eval_seconds", result.eval_seconds, 0));
        let r = self.tracker.log_batch(
            &id,
            &Batch {
                metrics,
                ..Default::default()
            },
        );
        self.keep(r);
        let meta = serde_json::json!({
            "params": result.params,
            "metrics": result.metrics.iter().cloned().collect::<BTreeMap<_, _>>(),
            "counts": result.counts.iter().cloned().collect::<BTreeMap<_, _>>(),
            "fit_seconds": result.fit_seconds,
            "eval_seconds": result.eval_seconds,
            "history": result.history.iter().map(|h| serde_json::json!({"iteration": h.iteration, "train_loss": h.train_loss, "val_rmse": h.val_rmse, "seconds": h.seconds})).collect::<Vec<_>>(),
        });
        let path = self
            .scratch
            .join(format!("child-{index}"))
            .join("metadata.json");
        if fs::create_dir_all(path.parent().unwrap_or(&self.scratch)).is_ok()
            && fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap_or_default()).is_ok()
        {
            let r = self.tracker.log_artifact(&id, &path, None);
            self.keep(r);
        }
        let r = self
            .tracker
            .end_run(&id, RunStatus::Finished, crate::tracking::now_ms());
        self.keep(r);
        lock(&self.open).retain(|r| r != &id);
        self.children.push(id);
    }

    fn final_started(&mut self, point: &GridPoint, refit: bool) {
        self.inner.final_started(point, refit);
    }
}

fn lock(open: &OpenRuns) -> std::sync::MutexGuard<'_, Vec<String>> {
    open.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a finished experiment reports.
pub struct Report {
    pub outcome: Outcome,
    pub parent_run_id: String,
    pub child_run_ids: Vec<String>,
    pub best_run_id: Option<String>,
    pub experiment_id: String,
    pub prepared_dir: PathBuf,
    pub reused_data: bool,
    pub metadata: ModelMetadata,
    /// The first tracking failure, when logging had trouble (results are still local).
    pub tracking_warning: Option<String>,
}

/// A Markdown summary for `mlflow.note.content`.
fn note(s: &ExperimentSettings, prepared: &Prepared, outcome: &Outcome) -> String {
    let mut md = String::new();
    if let Some(d) = &s.description {
        md.push_str(&format!("{d}\n\n"));
    }
    let sum = &prepared.summary;
    md.push_str(&format!(
        "**Data**: `{}` → {} users × {} items, {} ratings (min {} per user/item).\n\n",
        sum.input.path, sum.users, sum.items, sum.ratings, sum.min_interactions
    ));
    md.push_str(&format!(
        "**Best**: {} (selected on the {} split by `{}`).\n\n",
        Axes::of(&outcome.params.clone().into()).describe(
            " ",
            &GridPoint {
                rank: outcome.params.rank(),
                reg: outcome.params.reg(),
                alpha: outcome.params.alpha(),
            }
        ),
        outcome.selected_on,
        s.train.selection.metric
    ));
    md.push_str("| metric | model | popularity |\n|---|---|---|\n");
    let metrics = outcome.test.metrics();
    for (k, v) in metrics
        .iter()
        .filter(|(k, _)| !k.starts_with("popularity."))
    {
        let pop = metrics
            .iter()
            .find(|(p, _)| *p == format!("popularity.{k}"))
            .map(|(_, v)| format!("{v:.4}"))
            .unwrap_or_else(|| "–".into());
        md.push_str(&format!("| {k} | {v:.4} | {pop} |\n"));
    }
    md
}

/// The `MLmodel` file of an MLflow model directory with a `recflow` flavor.
fn mlmodel(run_id: &str, meta: &ModelMetadata) -> String {
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f");
    format!(
        "artifact_path: model\nflavors:\n  recflow:\n    data: data\n    model_type: als\n    implicit: {}\n    rank: {}\n    recflow_version: {}\n    loader: recflow serve --model <this folder>/data\nmodel_uuid: {}\nrun_id: {}\nutc_time_created: '{}'\n",
        meta.implicit,
        meta.rank,
        meta.recflow_version,
        uuid::Uuid::new_v4().simple(),
        run_id,
        now
    )
}

/// Runs the experiment. `inner` draws progress; `open` collects runs an interrupt must end.
pub fn run(
    s: &ExperimentSettings,
    tracker: &dyn Tracker,
    progress: &Progress,
    inner: &mut dyn Observer,
    open: OpenRuns,
) -> Result<Report, ExperimentError> {
    let prepared = prepare(&s.etl, &s.name, &s.processed_root, progress)?;
    let ds: Dataset = store::load_dataset(&prepared.dir)?;
    let exp_tags: Vec<Tag> = s.tags.iter().map(|(k, v)| Tag::new(k, v)).collect();
    let experiment_id =
        tracker.get_or_create_experiment(&s.name, s.description.as_deref(), &exp_tags)?;
    let run_name = format!("{}-{}", s.name, chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    let mut new = NewRun::new(experiment_id.clone(), run_name.clone())
        .with_user(s.user.clone())
        .with_tag("mlflow.user", s.user.clone())
        .with_tag("mlflow.source.name", s.spec_path.display().to_string())
        .with_tag("mlflow.source.type", "LOCAL")
        .with_tag("recflow.version", env!("CARGO_PKG_VERSION"))
        .with_tag("recflow.engine", "recflow-als")
        .with_tag("recflow.spec", s.spec_path.display().to_string());
    for (k, v) in &s.tags {
        new = new.with_tag(k.clone(), v.clone());
    }
    if let Some(g) = &s.git {
        new = new
            .with_tag("mlflow.source.git.commit", g.commit.clone())
            .with_tag("mlflow.source.git.dirty", g.dirty.to_string());
        if let Some(b) = &g.branch {
            new = new.with_tag("mlflow.source.git.branch", b.clone());
        }
        if let Some(u) = &g.repo_url {
            new = new.with_tag("mlflow.source.git.repoURL", u.clone());
        }
    }
    let parent = tracker.create_run(&new)?.run_id;
    lock(&open).push(parent.clone());
    let result = run_logged(
        s,
        tracker,
        progress,
        inner,
        &open,
        &prepared,
        &ds,
        &experiment_id,
        &parent,
    );
    let status = if result.is_ok() {
        RunStatus::Finished
    } else {
        RunStatus::Failed
    };
    // Children still open after a failure end with it.
    let still_open: Vec<String> = lock(&open).drain(..).collect();
    for id in still_open {
        let st = if id == parent {
            status
        } else {
            RunStatus::Failed
        };
        if let Err(e) = tracker.end_run(&id, st, crate::tracking::now_ms()) {
            tracing::warn!("tracking: could not end run {id}: {e}");
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run_logged(
    s: &ExperimentSettings,
    tracker: &dyn Tracker,
    _progress: &Progress,
    inner: &mut dyn Observer,
    open: &OpenRuns,
    prepared: &Prepared,
    ds: &Dataset,
    experiment_id: &str,
    parent: &str,
) -> Result<Report, ExperimentError> {
    let digest = format!("{}-{}", prepared.fingerprint, ds.interactions.len());
    let dataset = DatasetInput::local(
        format!("{}-{}", s.name, prepared.fingerprint),
        digest.chars().take(36).collect::<String>(),
        &prepared.dir.display().to_string(),
    );
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
            params: params.clone(),
            ..Default::default()
        },
    )?;
    tracker.log_input(parent, &dataset.clone().with_context("training"))?;
    let scratch = tempfile::tempdir().map_err(io(Path::new("temporary folder")))?;
    let spec_file = scratch.path().join("spec.toml");
    fs::write(&spec_file, &s.resolved_spec).map_err(io(&spec_file))?;
    tracker.log_artifact(parent, &spec_file, None)?;
    tracker.log_artifact(parent, &prepared.dir.join(store::SUMMARY), None)?;

    let mut observer = TrackingObserver {
        tracker,
        experiment_id: experiment_id.to_string(),
        parent: parent.to_string(),
        open: open.clone(),
        child: None,
        children: Vec::new(),
        base_params: params,
        dataset,
        axes: Axes::of(&s.train.base),
        first_error: None,
        inner,
        scratch: scratch.path().to_path_buf(),
    };
    let outcome = train::run(&s.train, &ds.interactions, None, &mut observer)?;
    let children = std::mem::take(&mut observer.children);
    let warning = observer.first_error.take().map(|e| e.to_string());
    drop(observer);
    let best_run_id = children.get(outcome.best).cloned();

    // Save the model, then log it and the parent's figures.
    let metadata = save_model(s, &outcome, ds, prepared, parent)?;
    let mut metrics: Vec<Metric> = outcome
        .test
        .metrics()
        .into_iter()
        .map(|(k, v)| Metric::new(k, v, 0))
        .collect();
    metrics.extend(
        outcome
            .test
            .counts()
            .into_iter()
            .map(|(k, v)| Metric::new(k, v as f64, 0)),
    );
    metrics.push(Metric::new("fit_seconds", outcome.fit_seconds, 0));
    metrics.push(Metric::new("eval_seconds", outcome.eval_seconds, 0));
    for h in &outcome.history {
        if let Some(v) = h.train_loss {
            metrics.push(Metric::new("train_loss", v, h.iteration as i64));
        }
    }
    let best = &outcome.points[outcome.best];
    let mut tags = vec![
        Tag::new(TAG_NOTE, note(s, prepared, &outcome)),
        Tag::new("recflow.selected_on", outcome.selected_on),
        Tag::new("recflow.selection", s.train.selection.metric.clone()),
        Tag::new("best.rank", best.point.rank.to_string()),
        Tag::new("best.reg", best.point.reg.to_string()),
        Tag::new("best.alpha", best.point.alpha.to_string()),
    ];
    if let Some(b) = &best_run_id {
        tags.push(Tag::new("best_run_id", b.clone()));
    }
    // The best child's selection-split metrics, under their own prefix.
    metrics.extend(
        best.metrics
            .iter()
            .map(|(k, v)| Metric::new(format!("best_{}.{k}", outcome.selected_on), *v, 0)),
    );
    tracker.log_batch(
        parent,
        &Batch {
            metrics,
            tags,
            params: vec![
                Param::new("best.rank", best.point.rank.to_string()),
                Param::new("best.reg", best.point.reg.to_string()),
                Param::new("best.alpha", best.point.alpha.to_string()),
            ],
        },
    )?;
    // Pictures: the data report of the ETL, learning curves and the grid heatmap.
    if let Err(e) = log_pictures(tracker, parent, s, &outcome, ds, scratch.path()) {
        tracing::warn!("pictures were not logged: {e}");
    }
    let model_root = scratch.path().join("model");
    fs::create_dir_all(&model_root).map_err(io(&model_root))?;
    fs::write(model_root.join("MLmodel"), mlmodel(parent, &metadata)).map_err(io(&model_root))?;
    fs::write(
        model_root.join("metadata.json"),
        serde_json::to_vec_pretty(&metadata).unwrap_or_default(),
    )
    .map_err(io(&model_root))?;
    copy_dir(&s.model_dir, &model_root.join("data")).map_err(io(&s.model_dir))?;
    tracker.log_artifacts(parent, &model_root, Some("model"))?;
    fs::create_dir_all(&s.metrics_dir).map_err(io(&s.metrics_dir))?;
    store::write_atomic(
        &s.metrics_dir.join("mlflow_run_id.txt"),
        format!("{parent}\n").as_bytes(),
    )?;
    let _ = TAG_RUN_NAME;
    Ok(Report {
        outcome,
        parent_run_id: parent.to_string(),
        child_run_ids: children,
        best_run_id,
        experiment_id: experiment_id.to_string(),
        prepared_dir: prepared.dir.clone(),
        reused_data: prepared.reused,
        metadata,
        tracking_warning: warning,
    })
}

/// Writes the EDA report, learning curves and the grid heatmap, and logs them on the parent run.
fn log_pictures(
    tracker: &dyn Tracker,
    parent: &str,
    s: &ExperimentSettings,
    outcome: &Outcome,
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
    let axes = Axes::of(&outcome.params.clone().into());
    let series: Vec<crate::eda::LearningSeries> = outcome
        .points
        .iter()
        .map(|r| {
            (
                point_name(&r.point, axes),
                r.history
                    .iter()
                    .filter_map(|h| Some((h.iteration, h.train_loss?, h.val_rmse)))
                    .collect(),
            )
        })
        .collect();
    crate::eda::learning_curves(&series, &plots, "learning_curves").map_err(|e| e.to_string())?;
    // The heatmap shows rank x reg at the selected alpha (alpha is a third axis for implicit).
    let best = &outcome.points[outcome.best];
    let metric = &s.train.selection.metric;
    let cells: Vec<crate::eda::GridCell> = outcome
        .points
        .iter()
        .filter(|r| r.point.alpha == best.point.alpha)
        .filter_map(|r| {
            r.metrics
                .iter()
                .find(|(k, _)| k == metric)
                .map(|(_, v)| (r.point.rank, r.point.reg, *v))
        })
        .collect();
    if !cells.is_empty() {
        let stem = format!("grid_{}", metric.replace(['.', '/'], "_"));
        crate::eda::grid_heatmap(
            &cells,
            metric,
            (best.point.rank, best.point.reg),
            &plots,
            &stem,
        )
        .map_err(|e| e.to_string())?;
    }
    tracker
        .log_artifacts(parent, &plots, Some("plots"))
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn save_model(
    s: &ExperimentSettings,
    outcome: &Outcome,
    ds: &Dataset,
    prepared: &Prepared,
    run_id: &str,
) -> Result<ModelMetadata, ExperimentError> {
    let data = serde_json::json!({
        "path": prepared.dir.display().to_string(),
        "fingerprint": prepared.fingerprint,
        "input": prepared.summary.input.path,
        "input_sha256": prepared.summary.input.sha256,
        "users": ds.user_ids.len(), "items": ds.item_ids.len(), "ratings": ds.interactions.len(),
    });
    let git = s.git.as_ref().map(|g| g.commit.clone());
    let saved = train::saved_model(
        &s.train,
        outcome,
        &ds.user_ids,
        &ds.item_ids,
        data,
        git,
        Some(run_id.to_string()),
    );
    saved.save(&s.model_dir)?;
    Ok(saved.metadata)
}

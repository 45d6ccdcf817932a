//! MLflow's file store (`mlruns/`), written the way MLflow 3.17.2's `FileStore` reads it.
//!
//! Layout: `<root>/.trash/`, `<root>/0/` (experiment `Default`), `<root>/<experiment_id>/meta.yaml`
//! and `tags/`, `<root>/<experiment_id>/<run_id>/{meta.yaml, metrics/, params/, tags/,
//! artifacts/, inputs/}` and `<root>/<experiment_id>/datasets/`. Keys with `/` become folders.
//! Whole files (YAML, params, tags, artifacts) are written to a temporary file beside them and
//! renamed into place, so a reader never sees half a file; metric lines are appended with one
//! write each. A run's or an experiment's `meta.yaml` is written last, so MLflow skips a
//! folder that is still being created. Creating an experiment holds a lock file in the root,
//! so two processes asking for the same name end up with one experiment.
//! This module knows nothing about HTTP, models or the command line.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{ErrorKind, Write as _};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use rand::Rng;

mod md5;
mod models;
mod search;
pub(crate) mod yaml;

pub use search::SearchError;

use super::{
    copy_tree, experiment_tags, join_artifact_path, normalize_batch, now_ms, path_to_file_uri,
    validate_artifact_path, validate_dataset, validate_experiment_name, validate_key, walk_files,
    ArtifactEntry, Batch, DatasetInput, Experiment, LoggedModel, Metric, ModelToLog, NewRun, Run,
    RunInfo, RunQuery, RunStatus, Tag, Tracker, TrackingError, TrackingUri, TAG_DATASET_CONTEXT,
    TAG_RUN_NAME,
};
use md5::md5_hex;
use yaml::Yaml;

const META: &str = "meta.yaml";
const TRASH: &str = ".trash";
/// Experiment sub-folders that are not runs (`FileStore.RESERVED_EXPERIMENT_FOLDERS`).
const RESERVED_EXPERIMENT_FOLDERS: &[&str] = &["tags", "datasets", "traces", "models"];
/// The model registry's folder in the root, which MLflow skips when listing experiments.
const MODELS_FOLDER: &str = "models";
const DEFAULT_EXPERIMENT_ID: &str = "0";
const DEFAULT_EXPERIMENT_NAME: &str = "Default";
const LOCK_FILE: &str = ".recflow-experiments.lock";
/// Temporary files and folders start with this, and sit where MLflow does not look.
const TMP_PREFIX: &str = ".recflow-tmp-";
/// The experiment lock is held for milliseconds; one this old was left by a crashed process.
const STALE_LOCK: Duration = Duration::from_secs(10);
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);
const ACTIVE: &str = "active";

/// A local MLflow file store.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// Opens (and creates when missing) the store at `path`, with `.trash/` and the `Default`
    /// experiment `0/`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TrackingError> {
        let path = path.as_ref();
        let abs = std::path::absolute(path).map_err(|e| TrackingError::io(path, e))?;
        let store = FileStore {
            root: normalize_path(&abs),
        };
        store.init()?;
        Ok(store)
    }

    /// Opens the store a `file:` URI or plain path names.
    pub fn open_uri(uri: &str) -> Result<Self, TrackingError> {
        match TrackingUri::parse(uri)? {
            TrackingUri::File(path) => FileStore::open(path),
            TrackingUri::Http(_) => Err(TrackingError::InvalidUri {
                uri: super::mask_uri(uri),
                reason: "a local file store is needed here, not a server".into(),
            }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn init(&self) -> Result<(), TrackingError> {
        if self.root.exists() && !self.root.is_dir() {
            return Err(TrackingError::io(
                &self.root,
                std::io::Error::new(ErrorKind::AlreadyExists, "exists and is not a folder"),
            ));
        }
        create_dir_all(&self.root.join(TRASH))?;
        if !self.root.join(DEFAULT_EXPERIMENT_ID).join(META).is_file() {
            let _lock = StoreLock::acquire(&self.root)?;
            let default_dir = self.root.join(DEFAULT_EXPERIMENT_ID);
            let name_taken = self.find_experiment(DEFAULT_EXPERIMENT_NAME)?.is_some();
            if !default_dir.exists() && !name_taken {
                self.write_new_experiment(DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, &[])?;
            }
        }
        Ok(())
    }

    /// Experiment folders: (id, folder, deleted), active ones first.
    fn experiment_dirs(&self) -> Result<Vec<(String, PathBuf, bool)>, TrackingError> {
        let mut out = Vec::new();
        for (parent, deleted) in [(self.root.clone(), false), (self.root.join(TRASH), true)] {
            for (name, path) in subdirs(&parent)? {
                if name.starts_with('.') || (!deleted && name == MODELS_FOLDER) {
                    continue;
                }
                out.push((name, path, deleted));
            }
        }
        Ok(out)
    }

    fn experiment_dir(&self, experiment_id: &str) -> Result<PathBuf, TrackingError> {
        check_id("experiment", experiment_id, 64)?;
        [
            self.root.join(experiment_id),
            self.root.join(TRASH).join(experiment_id),
        ]
        .into_iter()
        .find(|p| p.join(META).is_file())
        .ok_or_else(|| TrackingError::ExperimentNotFound(experiment_id.to_string()))
    }

    /// Reads an experiment; `None` for a folder without `meta.yaml` or with another id in it.
    fn read_experiment(&self, id: &str, dir: &Path) -> Result<Option<Experiment>, TrackingError> {
        let Some(map) = read_yaml_opt(&dir.join(META))? else {
            return Ok(None);
        };
        let meta_path = dir.join(META);
        let experiment_id = yaml::get(&map, "experiment_id")
            .and_then(Yaml::as_string)
            .ok_or_else(|| corrupt(&meta_path, "`experiment_id` is missing"))?;
        if experiment_id != id {
            tracing::warn!(
                "experiment folder `{}` holds id `{experiment_id}`; MLflow ignores it",
                dir.display()
            );
            return Ok(None);
        }
        let get_str = |k: &str| yaml::get(&map, k).and_then(Yaml::as_string);
        Ok(Some(Experiment {
            experiment_id,
            name: get_str("name").ok_or_else(|| corrupt(&meta_path, "`name` is missing"))?,
            artifact_location: get_str("artifact_location").unwrap_or_default(),
            lifecycle_stage: get_str("lifecycle_stage").unwrap_or_else(|| ACTIVE.into()),
            creation_time: yaml::get(&map, "creation_time").and_then(Yaml::as_i64),
            last_update_time: yaml::get(&map, "last_update_time").and_then(Yaml::as_i64),
            tags: read_kv_dir(&dir.join("tags"))?,
        }))
    }

    fn all_experiments(&self) -> Result<Vec<Experiment>, TrackingError> {
        let mut out = Vec::new();
        for (id, dir, _) in self.experiment_dirs()? {
            match self.read_experiment(&id, &dir) {
                Ok(Some(e)) => out.push(e),
                Ok(None) => {}
                Err(e) => tracing::warn!("skipping malformed experiment `{id}`: {e}"),
            }
        }
        Ok(out)
    }

    fn find_experiment(&self, name: &str) -> Result<Option<Experiment>, TrackingError> {
        Ok(self.all_experiments()?.into_iter().find(|e| e.name == name))
    }

    /// Writes a new experiment folder; `Ok(false)` when the id is taken.
    fn write_new_experiment(
        &self,
        id: &str,
        name: &str,
        tags: &[Tag],
    ) -> Result<bool, TrackingError> {
        let dir = self.root.join(id);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(TrackingError::io(&dir, e)),
        }
        for tag in tags {
            write_atomic(&dir, &dir.join("tags").join(&tag.key), tag.value.as_bytes())?;
        }
        let now = now_ms();
        let meta = vec![
            (
                "artifact_location".to_string(),
                Yaml::str(path_to_file_uri(&dir)),
            ),
            ("creation_time".to_string(), Yaml::Int(now)),
            ("effective_trace_archival_retention".to_string(), Yaml::Null),
            ("experiment_id".to_string(), Yaml::str(id)),
            ("last_update_time".to_string(), Yaml::Int(now)),
            ("lifecycle_stage".to_string(), Yaml::str(ACTIVE)),
            ("name".to_string(), Yaml::str(name)),
            ("trace_location".to_string(), Yaml::Null),
            ("workspace".to_string(), Yaml::str("default")),
        ];
        write_atomic(&dir, &dir.join(META), yaml::to_string(&meta).as_bytes())?;
        Ok(true)
    }

    /// Finds a run folder in any experiment, active or deleted, as MLflow's `_find_run_root`.
    fn find_run(&self, run_id: &str) -> Result<(PathBuf, RunInfo), TrackingError> {
        check_id("run", run_id, 256)?;
        for (exp_id, exp_dir, _) in self.experiment_dirs()? {
            let run_dir = exp_dir.join(run_id);
            let valid = ["metrics", "params", "artifacts"]
                .iter()
                .all(|d| run_dir.join(d).is_dir());
            if !valid {
                continue;
            }
            let Some(info) = read_run_info(&run_dir)? else {
                continue;
            };
            if info.run_id != run_id || info.experiment_id != exp_id {
                return Err(corrupt(
                    &run_dir.join(META),
                    "its ids do not match its folders",
                ));
            }
            return Ok((run_dir, info));
        }
        Err(TrackingError::RunNotFound(run_id.to_string()))
    }

    /// A run that may still be changed (not deleted).
    fn find_active_run(&self, run_id: &str) -> Result<(PathBuf, RunInfo), TrackingError> {
        let (dir, info) = self.find_run(run_id)?;
        if info.lifecycle_stage != ACTIVE {
            return Err(TrackingError::RunDeleted {
                run_id: run_id.to_string(),
            });
        }
        Ok((dir, info))
    }

    fn read_run(&self, run_dir: &Path, mut info: RunInfo) -> Result<Run, TrackingError> {
        let tags = read_kv_dir(&run_dir.join("tags"))?;
        if info.run_name.is_empty() {
            if let Some(name) = tags.get(TAG_RUN_NAME) {
                info.run_name = name.clone();
            }
        }
        let mut metrics = BTreeMap::new();
        let metrics_dir = run_dir.join("metrics");
        if metrics_dir.is_dir() {
            for (path, key) in walk_files(&metrics_dir)? {
                let history = read_metric_file(&path, &key)?;
                if let Some(latest) = latest_metric(history) {
                    metrics.insert(key, latest);
                }
            }
        }
        Ok(Run {
            info,
            metrics,
            params: read_kv_dir(&run_dir.join("params"))?,
            tags,
            inputs: self.read_inputs(run_dir)?,
        })
    }

    fn read_inputs(&self, run_dir: &Path) -> Result<Vec<DatasetInput>, TrackingError> {
        let inputs_dir = run_dir.join("inputs");
        let Some(datasets_dir) = run_dir.parent().map(|p| p.join("datasets")) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (_, dir) in subdirs(&inputs_dir)? {
            let Some(map) = read_yaml_opt(&dir.join(META))? else {
                continue;
            };
            let get = |k: &str| yaml::get(&map, k).and_then(Yaml::as_string);
            if get("source_type").as_deref() != Some("DATASET") {
                continue;
            }
            let Some(dataset_id) = get("source_id") else {
                continue;
            };
            let Some(ds) = read_yaml_opt(&datasets_dir.join(&dataset_id).join(META))? else {
                tracing::warn!(
                    "dataset `{dataset_id}` of run `{}` is missing",
                    run_dir.display()
                );
                continue;
            };
            let ds_get = |k: &str| yaml::get(&ds, k).and_then(Yaml::as_string);
            let context = match yaml::get(&map, "tags") {
                Some(Yaml::Map(tags)) => {
                    yaml::get(tags, TAG_DATASET_CONTEXT).and_then(Yaml::as_string)
                }
                _ => None,
            };
            out.push(DatasetInput {
                name: ds_get("name").unwrap_or_default(),
                digest: ds_get("digest").unwrap_or_default(),
                source_type: ds_get("source_type").unwrap_or_default(),
                source: ds_get("source").unwrap_or_default(),
                schema: ds_get("schema"),
                profile: ds_get("profile"),
                context,
            });
        }
        Ok(out)
    }

    /// Creates a run with a given id: how a run kept in memory is replayed into this store.
    pub fn create_run_with_id(&self, run: &NewRun, run_id: &str) -> Result<RunInfo, TrackingError> {
        check_id("run", run_id, 256)?;
        let exp_dir = self.experiment_dir(&run.experiment_id)?;
        let experiment = self
            .read_experiment(&run.experiment_id, &exp_dir)?
            .ok_or_else(|| TrackingError::ExperimentNotFound(run.experiment_id.clone()))?;
        if experiment.lifecycle_stage != ACTIVE {
            return Err(TrackingError::ExperimentDeleted {
                name: experiment.name,
            });
        }
        let tag_name = run
            .tags
            .iter()
            .find(|t| t.key == TAG_RUN_NAME)
            .map(|t| t.value.clone());
        let run_name = match (&run.run_name, &tag_name) {
            (Some(n), Some(t)) if !n.is_empty() && n != t => {
                return Err(TrackingError::InvalidValue {
                    key: TAG_RUN_NAME.into(),
                    reason: format!("run name `{n}` and tag `{t}` differ"),
                })
            }
            _ => run
                .resolved_name()
                .unwrap_or_else(|| format!("run-{}", &run_id[..run_id.len().min(8)])),
        };
        let mut tags = run.tags.clone();
        if tag_name.is_none() {
            tags.push(Tag::new(TAG_RUN_NAME, run_name.clone()));
        }
        let tags = normalize_batch(
            run_id,
            &Batch {
                tags,
                ..Batch::default()
            },
        )?
        .tags;

        let run_dir = exp_dir.join(run_id);
        fs::create_dir(&run_dir).map_err(|e| TrackingError::io(&run_dir, e))?;
        for sub in ["metrics", "params", "artifacts", "tags"] {
            create_dir_all(&run_dir.join(sub))?;
        }
        for tag in &tags {
            write_atomic(
                &run_dir,
                &run_dir.join("tags").join(&tag.key),
                tag.value.as_bytes(),
            )?;
        }
        let artifact_uri = format!(
            "{}/{run_id}/artifacts",
            experiment.artifact_location.trim_end_matches('/')
        );
        let info = RunInfo {
            run_id: run_id.to_string(),
            experiment_id: run.experiment_id.clone(),
            run_name,
            user_id: run.user_id.clone(),
            status: RunStatus::Running,
            start_time: run.start_time,
            end_time: None,
            artifact_uri,
            lifecycle_stage: ACTIVE.into(),
        };
        let mut meta = run_meta(&info);
        meta.push(("deleted_time".into(), Yaml::Null));
        write_atomic(
            &run_dir,
            &run_dir.join(META),
            yaml::to_string(&meta).as_bytes(),
        )?;
        Ok(info)
    }

    /// Rewrites a run's `meta.yaml`, keeping fields this code does not know.
    fn update_run_meta(
        &self,
        run_dir: &Path,
        update: impl FnOnce(&mut Vec<(String, Yaml)>),
    ) -> Result<(), TrackingError> {
        let path = run_dir.join(META);
        let mut map = read_yaml_opt(&path)?.ok_or_else(|| corrupt(&path, "it is missing"))?;
        update(&mut map);
        map.retain(|(k, _)| k != "deleted_time");
        write_atomic(run_dir, &path, yaml::to_string(&map).as_bytes())
    }

    fn artifact_root(&self, info: &RunInfo) -> Result<PathBuf, TrackingError> {
        let not_local = || TrackingError::ArtifactsNotLocal {
            run_id: info.run_id.clone(),
            uri: info.artifact_uri.clone(),
        };
        match TrackingUri::parse(&info.artifact_uri) {
            Ok(TrackingUri::File(p)) => Ok(p),
            _ => Err(not_local()),
        }
    }

    fn copy_artifact(&self, root: &Path, src: &Path, dest_rel: &str) -> Result<(), TrackingError> {
        let target = root.join(dest_rel);
        // The temporary copy sits beside the artifact root, where listings do not look.
        let tmp_dir = root.parent().unwrap_or(root).to_path_buf();
        if let Some(parent) = target.parent() {
            create_dir_all(parent)?;
        }
        let tmp = tmp_dir.join(tmp_name());
        fs::copy(src, &tmp).map_err(|e| TrackingError::io(src, e))?;
        fs::rename(&tmp, &target).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            TrackingError::io(&target, e)
        })
    }
}

impl Tracker for FileStore {
    fn uri(&self) -> String {
        path_to_file_uri(&self.root)
    }

    fn ping(&self) -> Result<(), TrackingError> {
        // Proves the root is writable without leaving anything behind.
        tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(&self.root)
            .map(drop)
            .map_err(|e| TrackingError::io(&self.root, e))
    }

    fn get_or_create_experiment(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
    ) -> Result<String, TrackingError> {
        validate_experiment_name(name)?;
        if name.contains('\'') {
            return Err(TrackingError::InvalidExperimentName {
                name: name.to_string(),
                reason: "MLflow's file store cannot look up names containing `'`".into(),
            });
        }
        let wanted = experiment_tags(tags, description)?;
        let exp = match self.find_experiment(name)? {
            Some(e) => e,
            None => {
                let _lock = StoreLock::acquire(&self.root)?;
                match self.find_experiment(name)? {
                    Some(e) => e,
                    None => {
                        let mut rng = rand::thread_rng();
                        loop {
                            // MLflow's ids: 18 random digits.
                            let id = rng
                                .gen_range(100_000_000_000_000_000u64..1_000_000_000_000_000_000)
                                .to_string();
                            if self.write_new_experiment(&id, name, &wanted)? {
                                return Ok(id);
                            }
                        }
                    }
                }
            }
        };
        if exp.lifecycle_stage != ACTIVE {
            return Err(TrackingError::ExperimentDeleted {
                name: name.to_string(),
            });
        }
        let dir = self.experiment_dir(&exp.experiment_id)?;
        for t in wanted
            .iter()
            .filter(|t| exp.tags.get(&t.key) != Some(&t.value))
        {
            write_atomic(&dir, &dir.join("tags").join(&t.key), t.value.as_bytes())?;
        }
        Ok(exp.experiment_id)
    }

    fn create_run(&self, run: &NewRun) -> Result<RunInfo, TrackingError> {
        self.create_run_with_id(run, &uuid::Uuid::new_v4().simple().to_string())
    }

    fn log_batch(&self, run_id: &str, batch: &Batch) -> Result<(), TrackingError> {
        let batch = normalize_batch(run_id, batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        let (run_dir, _) = self.find_active_run(run_id)?;
        for p in &batch.params {
            let path = run_dir.join("params").join(&p.key);
            if !write_new(&run_dir, &path, p.value.as_bytes())? {
                let old = fs::read_to_string(&path).map_err(|e| TrackingError::io(&path, e))?;
                if old != p.value {
                    return Err(TrackingError::ParamChanged {
                        run_id: run_id.to_string(),
                        key: p.key.clone(),
                        old,
                        new: p.value.clone(),
                    });
                }
            }
        }
        // One open per key, one write per line: concurrent appends never interleave a line.
        let mut by_key: BTreeMap<&str, Vec<&Metric>> = BTreeMap::new();
        for m in &batch.metrics {
            by_key.entry(&m.key).or_default().push(m);
        }
        for (key, metrics) in by_key {
            let path = run_dir.join("metrics").join(key);
            if let Some(parent) = path.parent() {
                create_dir_all(parent)?;
            }
            // Identical points are written once, as the SQL stores keep them: a repeated line
            // makes `mlflow migrate-filestore` fail on its primary key.
            let mut seen = tail_lines(&path)?;
            let mut file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| TrackingError::io(&path, e))?;
            for m in metrics {
                let line = format!(
                    "{} {} {}\n",
                    m.timestamp,
                    format_metric_value(m.value),
                    m.step
                );
                if seen.insert(line.clone()) {
                    file.write_all(line.as_bytes())
                        .map_err(|e| TrackingError::io(&path, e))?;
                }
            }
        }
        for t in &batch.tags {
            write_atomic(
                &run_dir,
                &run_dir.join("tags").join(&t.key),
                t.value.as_bytes(),
            )?;
            if t.key == TAG_RUN_NAME {
                self.update_run_meta(&run_dir, |m| yaml::set(m, "run_name", Yaml::str(&t.value)))?;
            }
        }
        Ok(())
    }

    fn log_artifact(
        &self,
        run_id: &str,
        local_file: &Path,
        artifact_path: Option<&str>,
    ) -> Result<(), TrackingError> {
        let (_, info) = self.find_active_run(run_id)?;
        let dir = artifact_path.unwrap_or("");
        validate_artifact_path(dir)?;
        let name = local_file
            .file_name()
            .ok_or_else(|| TrackingError::InvalidArtifactPath {
                path: local_file.display().to_string(),
                reason: "it names no file".into(),
            })?;
        if !local_file.is_file() {
            return Err(TrackingError::io(
                local_file,
                std::io::Error::new(ErrorKind::NotFound, "no such file"),
            ));
        }
        let root = self.artifact_root(&info)?;
        self.copy_artifact(
            &root,
            local_file,
            &join_artifact_path(&[dir, &name.to_string_lossy()]),
        )
    }

    fn log_artifacts(
        &self,
        run_id: &str,
        local_dir: &Path,
        artifact_path: Option<&str>,
    ) -> Result<(), TrackingError> {
        let (_, info) = self.find_active_run(run_id)?;
        let dir = artifact_path.unwrap_or("");
        validate_artifact_path(dir)?;
        let root = self.artifact_root(&info)?;
        create_dir_all(&root.join(dir))?;
        for (path, rel) in walk_files(local_dir)? {
            self.copy_artifact(&root, &path, &join_artifact_path(&[dir, &rel]))?;
        }
        Ok(())
    }

    fn log_input(&self, run_id: &str, input: &DatasetInput) -> Result<(), TrackingError> {
        validate_dataset(input)?;
        let (run_dir, _) = self.find_active_run(run_id)?;
        let exp_dir = run_dir.parent().unwrap_or(&self.root).to_path_buf();
        let dataset_id = md5_hex(&[input.name.as_bytes(), input.digest.as_bytes()]);
        let opt = |v: &Option<String>| v.as_ref().map_or(Yaml::Null, Yaml::str);
        let dataset = vec![
            ("digest".to_string(), Yaml::str(&input.digest)),
            ("name".to_string(), Yaml::str(&input.name)),
            ("profile".to_string(), opt(&input.profile)),
            ("schema".to_string(), opt(&input.schema)),
            ("source".to_string(), Yaml::str(&input.source)),
            ("source_type".to_string(), Yaml::str(&input.source_type)),
        ];
        write_new_dir(
            &run_dir,
            &exp_dir.join("datasets").join(&dataset_id),
            &dataset,
        )?;
        let input_id = md5_hex(&[dataset_id.as_bytes(), run_id.as_bytes()]);
        let tags = match &input.context {
            Some(c) => vec![(TAG_DATASET_CONTEXT.to_string(), Yaml::str(c))],
            None => Vec::new(),
        };
        let link = vec![
            // MLflow writes the dataset id here too.
            ("destination_id".to_string(), Yaml::str(&dataset_id)),
            ("destination_type".to_string(), Yaml::str("RUN")),
            ("source_id".to_string(), Yaml::str(&dataset_id)),
            ("source_type".to_string(), Yaml::str("DATASET")),
            ("tags".to_string(), Yaml::Map(tags)),
        ];
        write_new_dir(&run_dir, &run_dir.join("inputs").join(input_id), &link)?;
        Ok(())
    }

    fn log_model(&self, model: &ModelToLog) -> Result<LoggedModel, TrackingError> {
        self.log_model_files(model)
    }

    fn run_models(&self, run_id: &str) -> Result<Vec<LoggedModel>, TrackingError> {
        self.models_of_run(run_id)
    }

    fn download_model(&self, model: &LoggedModel, dest: &Path) -> Result<(), TrackingError> {
        self.copy_model_files(model, dest)
    }

    fn end_run(&self, run_id: &str, status: RunStatus, end_time: i64) -> Result<(), TrackingError> {
        let (run_dir, _) = self.find_active_run(run_id)?;
        self.update_run_meta(&run_dir, |m| {
            yaml::set(m, "status", Yaml::Int(status.code()));
            yaml::set(m, "end_time", Yaml::Int(end_time));
        })
    }

    fn list_experiments(&self) -> Result<Vec<Experiment>, TrackingError> {
        let mut exps: Vec<Experiment> = self
            .all_experiments()?
            .into_iter()
            .filter(|e| e.lifecycle_stage == ACTIVE)
            .collect();
        exps.sort_by(|a, b| {
            b.creation_time
                .cmp(&a.creation_time)
                .then_with(|| a.experiment_id.cmp(&b.experiment_id))
        });
        Ok(exps)
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, TrackingError> {
        self.find_experiment(name)
    }

    fn search_runs(&self, query: &RunQuery) -> Result<Vec<Run>, TrackingError> {
        // Parse first, so a bad filter fails before any reading.
        search::parse_filter(query.filter.as_deref().unwrap_or(""))?;
        let mut dirs = Vec::new();
        for exp_id in &query.experiment_ids {
            let exp_dir = match self.experiment_dir(exp_id) {
                Ok(d) => d,
                Err(TrackingError::ExperimentNotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            for (name, run_dir) in subdirs(&exp_dir)? {
                if name.starts_with('.') || RESERVED_EXPERIMENT_FOLDERS.contains(&name.as_str()) {
                    continue;
                }
                dirs.push((exp_id, name, run_dir));
            }
        }
        // A run is dozens of small files: reading runs in parallel is most of a search's speed.
        use rayon::prelude::*;
        let read: Vec<Option<Run>> = dirs
            .par_iter()
            .map(|(exp_id, name, run_dir)| {
                let info = match read_run_info(run_dir) {
                    Ok(Some(info)) => info,
                    Ok(None) => return Ok(None),
                    Err(e) => {
                        tracing::warn!("skipping malformed run `{name}`: {e}");
                        return Ok(None);
                    }
                };
                if &info.experiment_id != *exp_id || info.lifecycle_stage != ACTIVE {
                    return Ok(None);
                }
                self.read_run(run_dir, info).map(Some)
            })
            .collect::<Result<_, TrackingError>>()?;
        let runs: Vec<Run> = read.into_iter().flatten().collect();
        Ok(search::apply(
            runs,
            query.filter.as_deref(),
            &query.order_by,
            query.max_results,
        )?)
    }

    fn get_run(&self, run_id: &str) -> Result<Run, TrackingError> {
        let (run_dir, info) = self.find_run(run_id)?;
        self.read_run(&run_dir, info)
    }

    fn unreadable_runs(&self, experiment_id: &str) -> Result<Vec<(String, String)>, TrackingError> {
        let exp_dir = match self.experiment_dir(experiment_id) {
            Ok(d) => d,
            Err(TrackingError::ExperimentNotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for (name, run_dir) in subdirs(&exp_dir)? {
            if name.starts_with('.') || RESERVED_EXPERIMENT_FOLDERS.contains(&name.as_str()) {
                continue;
            }
            if let Err(e) = read_run_info(&run_dir) {
                out.push((name, e.to_string()));
            }
        }
        Ok(out)
    }

    fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>, TrackingError> {
        validate_key("metric", key)?;
        let (run_dir, _) = self.find_run(run_id)?;
        let path = run_dir.join("metrics").join(key);
        if !path.is_file() {
            return Ok(Vec::new());
        }
        read_metric_file(&path, key)
    }

    fn list_artifacts(
        &self,
        run_id: &str,
        path: Option<&str>,
    ) -> Result<Vec<ArtifactEntry>, TrackingError> {
        let (_, info) = self.find_run(run_id)?;
        let rel = path.unwrap_or("");
        validate_artifact_path(rel)?;
        let dir = self.artifact_root(&info)?.join(rel);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .map_err(|e| TrackingError::io(&dir, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| TrackingError::io(&dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.path().is_dir();
            let file_size = if is_dir {
                None
            } else {
                entry.metadata().ok().map(|m| m.len())
            };
            out.push(ArtifactEntry {
                path: join_artifact_path(&[rel, &name]),
                is_dir,
                file_size,
            });
        }
        Ok(out)
    }

    fn download_artifacts(
        &self,
        run_id: &str,
        path: Option<&str>,
        dest: &Path,
    ) -> Result<(), TrackingError> {
        let (_, info) = self.find_run(run_id)?;
        let rel = path.unwrap_or("");
        validate_artifact_path(rel)?;
        let src = self.artifact_root(&info)?.join(rel);
        let target = dest.join(rel);
        if src.is_file() {
            if let Some(parent) = target.parent() {
                create_dir_all(parent)?;
            }
            fs::copy(&src, &target).map_err(|e| TrackingError::io(&src, e))?;
            return Ok(());
        }
        if !src.is_dir() {
            return Err(TrackingError::InvalidArtifactPath {
                path: rel.to_string(),
                reason: format!("run `{run_id}` has no such artifact"),
            });
        }
        create_dir_all(&target)?;
        copy_tree(&src, &target)
    }
}

/// The meta.yaml mapping MLflow writes for a run.
fn run_meta(info: &RunInfo) -> Vec<(String, Yaml)> {
    vec![
        ("artifact_uri".into(), Yaml::str(&info.artifact_uri)),
        (
            "end_time".into(),
            info.end_time.map_or(Yaml::Null, Yaml::Int),
        ),
        ("entry_point_name".into(), Yaml::str("")),
        ("experiment_id".into(), Yaml::str(&info.experiment_id)),
        ("lifecycle_stage".into(), Yaml::str(&info.lifecycle_stage)),
        ("run_id".into(), Yaml::str(&info.run_id)),
        ("run_name".into(), Yaml::str(&info.run_name)),
        ("source_name".into(), Yaml::str("")),
        // SourceType.LOCAL, for old readers.
        ("source_type".into(), Yaml::Int(4)),
        ("source_version".into(), Yaml::str("")),
        ("start_time".into(), Yaml::Int(info.start_time)),
        ("status".into(), Yaml::Int(info.status.code())),
        ("tags".into(), Yaml::Seq(Vec::new())),
        ("user_id".into(), Yaml::str(&info.user_id)),
    ]
}

fn read_run_info(run_dir: &Path) -> Result<Option<RunInfo>, TrackingError> {
    let path = run_dir.join(META);
    let Some(map) = read_yaml_opt(&path)? else {
        return Ok(None);
    };
    let get_str = |k: &str| yaml::get(&map, k).and_then(Yaml::as_string);
    let run_id = get_str("run_id")
        .or_else(|| get_str("run_uuid"))
        .ok_or_else(|| corrupt(&path, "`run_id` is missing"))?;
    let status = match yaml::get(&map, "status") {
        None | Some(Yaml::Null) => RunStatus::Running,
        Some(Yaml::Int(code)) => RunStatus::from_code(*code)
            .ok_or_else(|| corrupt(&path, &format!("unknown status `{code}`")))?,
        Some(Yaml::Str(name)) => RunStatus::from_name(name)
            .ok_or_else(|| corrupt(&path, &format!("unknown status `{name}`")))?,
        Some(_) => return Err(corrupt(&path, "`status` is not a number")),
    };
    Ok(Some(RunInfo {
        run_id,
        experiment_id: get_str("experiment_id")
            .ok_or_else(|| corrupt(&path, "`experiment_id` is missing"))?,
        run_name: get_str("run_name").unwrap_or_default(),
        user_id: get_str("user_id").unwrap_or_default(),
        status,
        start_time: yaml::get(&map, "start_time")
            .and_then(Yaml::as_i64)
            .unwrap_or(0),
        end_time: yaml::get(&map, "end_time").and_then(Yaml::as_i64),
        artifact_uri: get_str("artifact_uri").unwrap_or_default(),
        lifecycle_stage: get_str("lifecycle_stage").unwrap_or_else(|| ACTIVE.into()),
    }))
}

/// Reads a metric history file: lines `<timestamp> <value> <step>` (2, 3 or 5 fields).
fn read_metric_file(path: &Path, key: &str) -> Result<Vec<Metric>, TrackingError> {
    let text = fs::read_to_string(path).map_err(|e| TrackingError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split(' ').collect();
        let bad = || {
            corrupt(
                path,
                &format!("line {} is not `<timestamp> <value> <step>`", i + 1),
            )
        };
        if !matches!(parts.len(), 2 | 3 | 5) {
            return Err(bad());
        }
        let timestamp = parts[0].parse::<i64>().map_err(|_| bad())?;
        let value = parse_metric_value(parts[1]).ok_or_else(bad)?;
        let step = if parts.len() >= 3 {
            parts[2].parse::<i64>().map_err(|_| bad())?
        } else {
            0
        };
        out.push(Metric {
            key: key.to_string(),
            value,
            timestamp,
            step,
        });
    }
    Ok(out)
}

/// The complete lines among the last few KB of a metric file (repeats come from the same
/// millisecond, so they sit at the end); none when it does not exist yet.
fn tail_lines(path: &Path) -> Result<HashSet<String>, TrackingError> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 4096;
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(TrackingError::io(path, e)),
    };
    let len = file
        .metadata()
        .map_err(|e| TrackingError::io(path, e))?
        .len();
    let start = len.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))
        .map_err(|e| TrackingError::io(path, e))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)
        .map_err(|e| TrackingError::io(path, e))?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    if start > 0 && !lines.is_empty() {
        // The first piece may be the end of a longer line.
        lines.remove(0);
    }
    Ok(lines
        .into_iter()
        .filter(|l| l.ends_with('\n'))
        .map(str::to_string)
        .collect())
}

/// Python's `float()` spellings of non-finite values.
fn parse_metric_value(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().trim_start_matches('+') {
        "nan" | "-nan" => Some(f64::NAN),
        "inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Writes a value the way Python's `str(float)` does for non-finite ones.
fn format_metric_value(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:?}")
    }
}

/// The latest value as MLflow shows it: Python's `max` by (step, timestamp, value), where a
/// later element replaces the current one only when strictly greater.
fn latest_metric(history: Vec<Metric>) -> Option<Metric> {
    let mut best: Option<Metric> = None;
    for m in history {
        let greater = match &best {
            None => true,
            Some(b) => {
                if m.step != b.step {
                    m.step > b.step
                } else if m.timestamp != b.timestamp {
                    m.timestamp > b.timestamp
                } else {
                    m.value > b.value
                }
            }
        };
        if greater {
            best = Some(m);
        }
    }
    best
}

/// Files under `dir` (any depth) as key -> content; `{}` when the folder is missing.
fn read_kv_dir(dir: &Path) -> Result<BTreeMap<String, String>, TrackingError> {
    let mut out = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for (path, key) in walk_files(dir)? {
        let value = fs::read_to_string(&path).map_err(|e| TrackingError::io(&path, e))?;
        out.insert(key, value);
    }
    Ok(out)
}

fn read_yaml_opt(path: &Path) -> Result<Option<Vec<(String, Yaml)>>, TrackingError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TrackingError::io(path, e)),
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    yaml::parse(&text)
        .map(Some)
        .map_err(|reason| corrupt(path, &reason))
}

fn corrupt(path: &Path, reason: &str) -> TrackingError {
    TrackingError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Sub-folders of `dir` as (name, path), sorted; none when `dir` is missing.
fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, TrackingError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TrackingError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| TrackingError::io(dir, e))?;
        let path = entry.path();
        if path.is_dir() {
            out.push((entry.file_name().to_string_lossy().into_owned(), path));
        }
    }
    out.sort();
    Ok(out)
}

/// MLflow's id rule (`^[a-zA-Z0-9][\w\-]{0,N}$`); also keeps ids from escaping the store.
fn check_id(kind: &'static str, id: &str, max: usize) -> Result<(), TrackingError> {
    let ok = id.len() <= max
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(TrackingError::InvalidKey {
            kind,
            key: id.to_string(),
            reason: "it is not a valid id".into(),
        })
    }
}

fn create_dir_all(dir: &Path) -> Result<(), TrackingError> {
    fs::create_dir_all(dir).map_err(|e| TrackingError::io(dir, e))
}

fn tmp_name() -> String {
    format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

fn write_tmp(tmp_dir: &Path, bytes: &[u8]) -> Result<PathBuf, TrackingError> {
    let tmp = tmp_dir.join(tmp_name());
    fs::write(&tmp, bytes).map_err(|e| TrackingError::io(&tmp, e))?;
    Ok(tmp)
}

/// Writes `target` whole: a temporary file in `tmp_dir` (same file system, a folder MLflow does
/// not list) renamed over it.
fn write_atomic(tmp_dir: &Path, target: &Path, bytes: &[u8]) -> Result<(), TrackingError> {
    if let Some(parent) = target.parent() {
        create_dir_all(parent)?;
    }
    let tmp = write_tmp(tmp_dir, bytes)?;
    fs::rename(&tmp, target).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        TrackingError::io(target, e)
    })
}

/// Writes `target` whole unless it exists; `Ok(false)` when it did. A hard link does not
/// replace an existing file, so two writers of one param cannot both win.
fn write_new(tmp_dir: &Path, target: &Path, bytes: &[u8]) -> Result<bool, TrackingError> {
    if target.exists() {
        return Ok(false);
    }
    if let Some(parent) = target.parent() {
        create_dir_all(parent)?;
    }
    let tmp = write_tmp(tmp_dir, bytes)?;
    let created = match fs::hard_link(&tmp, target) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        // A file system without hard links: a checked rename, racy only there.
        Err(_) if !target.exists() => fs::rename(&tmp, target)
            .map(|_| true)
            .map_err(|e| TrackingError::io(target, e)),
        Err(_) => Ok(false),
    };
    let _ = fs::remove_file(&tmp);
    created
}

/// Creates the folder `target` holding one `meta.yaml`, unless it exists: built under a
/// temporary name in `tmp_dir` and renamed, so readers never see it without its file.
fn write_new_dir(
    tmp_dir: &Path,
    target: &Path,
    meta: &[(String, Yaml)],
) -> Result<(), TrackingError> {
    if target.join(META).is_file() {
        return Ok(());
    }
    if let Some(parent) = target.parent() {
        create_dir_all(parent)?;
    }
    let tmp = tmp_dir.join(tmp_name());
    create_dir_all(&tmp)?;
    let result = fs::write(tmp.join(META), yaml::to_string(meta))
        .map_err(|e| TrackingError::io(tmp.join(META), e))
        .and_then(|()| match fs::rename(&tmp, target) {
            Ok(()) => Ok(()),
            // Another writer created it first: same content, nothing to do.
            Err(_) if target.join(META).is_file() => Ok(()),
            Err(e) => Err(TrackingError::io(target, e)),
        });
    let _ = fs::remove_dir_all(&tmp);
    result
}

/// Resolves `.` and `..` without touching the file system, like Python's `os.path.abspath`.
fn normalize_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// An exclusive lock on experiment creation: a file created with `create_new` in the root
/// (MLflow lists only folders there), removed on drop.
struct StoreLock {
    path: PathBuf,
}

impl StoreLock {
    fn acquire(root: &Path) -> Result<Self, TrackingError> {
        let path = root.join(LOCK_FILE);
        let deadline = Instant::now() + LOCK_TIMEOUT;
        let mut rng = rand::thread_rng();
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(StoreLock { path });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > STALE_LOCK);
                    if stale {
                        tracing::warn!("removing a stale lock `{}`", path.display());
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if Instant::now() > deadline {
                        return Err(TrackingError::LockTimeout { path });
                    }
                    std::thread::sleep(Duration::from_millis(rng.gen_range(2..20)));
                }
                Err(e) => return Err(TrackingError::io(&path, e)),
            }
        }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::tracking::{Param, TAG_PARENT_RUN_ID};

    fn store() -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("mlruns")).unwrap();
        (dir, store)
    }

    fn read(path: impl AsRef<Path>) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn opening_creates_trash_and_the_default_experiment() {
        let (_d, s) = store();
        assert!(s.root().join(".trash").is_dir());
        let meta = yaml::parse(&read(s.root().join("0/meta.yaml"))).unwrap();
        assert_eq!(yaml::get(&meta, "experiment_id"), Some(&Yaml::str("0")));
        assert_eq!(yaml::get(&meta, "name"), Some(&Yaml::str("Default")));
        let loc = yaml::get(&meta, "artifact_location")
            .and_then(Yaml::as_string)
            .unwrap();
        assert_eq!(loc, path_to_file_uri(&s.root().join("0")));
        // Opening again changes nothing.
        FileStore::open(s.root()).unwrap();
        assert_eq!(s.list_experiments().unwrap().len(), 1);
    }

    #[test]
    fn experiments_get_18_digit_ids_and_are_found_by_name() {
        let (_d, s) = store();
        let id = s
            .get_or_create_experiment("recsys", Some("grid"), &[Tag::new("team", "a")])
            .unwrap();
        assert_eq!(id.len(), 18);
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(
            read(s.root().join(&id).join("tags/mlflow.note.content")),
            "grid"
        );
        assert_eq!(
            s.get_or_create_experiment("recsys", Some("grid"), &[])
                .unwrap(),
            id
        );
        // A new description updates the tag.
        s.get_or_create_experiment("recsys", Some("new"), &[])
            .unwrap();
        assert_eq!(
            read(s.root().join(&id).join("tags/mlflow.note.content")),
            "new"
        );
        let exp = s.get_experiment_by_name("recsys").unwrap().unwrap();
        assert_eq!(exp.tags.get("team").map(String::as_str), Some("a"));
        assert!(s.get_experiment_by_name("nope").unwrap().is_none());
        assert!(s.get_or_create_experiment("it's", None, &[]).is_err());
    }

    #[test]
    fn run_layout_matches_mlflow() {
        let (_d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        let info = s
            .create_run(&NewRun::new(&exp, "parent").with_user("ann"))
            .unwrap();
        assert_eq!(info.run_id.len(), 32);
        let run_dir = s.root().join(&exp).join(&info.run_id);
        for sub in ["metrics", "params", "artifacts", "tags"] {
            assert!(run_dir.join(sub).is_dir(), "{sub}");
        }
        assert_eq!(read(run_dir.join("tags/mlflow.runName")), "parent");
        let meta = yaml::parse(&read(run_dir.join("meta.yaml"))).unwrap();
        let get = |k: &str| yaml::get(&meta, k).cloned();
        assert_eq!(get("run_id"), Some(Yaml::str(&info.run_id)));
        assert_eq!(get("experiment_id"), Some(Yaml::str(&exp)));
        assert_eq!(get("status"), Some(Yaml::Int(1)));
        assert_eq!(get("end_time"), Some(Yaml::Null));
        assert_eq!(get("user_id"), Some(Yaml::str("ann")));
        assert_eq!(get("source_type"), Some(Yaml::Int(4)));
        assert_eq!(get("tags"), Some(Yaml::Seq(vec![])));
        assert_eq!(get("lifecycle_stage"), Some(Yaml::str("active")));
        let uri = get("artifact_uri").and_then(|v| v.as_string()).unwrap();
        assert_eq!(uri, path_to_file_uri(&run_dir.join("artifacts")));
        assert!(uri.starts_with("file:///"));
    }

    #[test]
    fn keys_with_slashes_become_folders_and_values_have_no_newline() {
        let (_d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        let run = s.create_run(&NewRun::new(&exp, "r")).unwrap();
        let batch = Batch {
            metrics: vec![
                Metric {
                    key: "train/loss".into(),
                    value: 0.5,
                    timestamp: 10,
                    step: 0,
                },
                Metric {
                    key: "train/loss".into(),
                    value: f64::NAN,
                    timestamp: 11,
                    step: 1,
                },
                Metric {
                    key: "inf".into(),
                    value: f64::NEG_INFINITY,
                    timestamp: 12,
                    step: 2,
                },
            ],
            params: vec![Param::new("als/rank", "10")],
            tags: vec![Tag::new("a/b", "x")],
        };
        s.log_batch(&run.run_id, &batch).unwrap();
        let run_dir = s.root().join(&exp).join(&run.run_id);
        assert_eq!(
            read(run_dir.join("metrics/train/loss")),
            "10 0.5 0\n11 nan 1\n"
        );
        assert_eq!(read(run_dir.join("metrics/inf")), "12 -inf 2\n");
        assert_eq!(read(run_dir.join("params/als/rank")), "10");
        assert_eq!(read(run_dir.join("tags/a/b")), "x");
        let got = s.get_run(&run.run_id).unwrap();
        assert_eq!(got.params.get("als/rank").map(String::as_str), Some("10"));
        assert!(got.metric("train/loss").unwrap().is_nan());
        let hist = s.get_metric_history(&run.run_id, "train/loss").unwrap();
        assert_eq!(hist.len(), 2);
        assert_eq!(
            (hist[0].timestamp, hist[0].value, hist[0].step),
            (10, 0.5, 0)
        );
        assert!(s
            .get_metric_history(&run.run_id, "nope")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn identical_metric_points_are_written_once() {
        let (_d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        let run = s.create_run(&NewRun::new(&exp, "r")).unwrap();
        let m = Metric {
            key: "m".into(),
            value: 1.0,
            timestamp: 5,
            step: 0,
        };
        let other = Metric {
            value: 2.0,
            ..m.clone()
        };
        s.log_metrics(&run.run_id, &[m.clone(), m.clone(), other])
            .unwrap();
        s.log_metrics(&run.run_id, std::slice::from_ref(&m))
            .unwrap();
        let nan = Metric {
            value: f64::NAN,
            ..m.clone()
        };
        s.log_metrics(&run.run_id, &[nan.clone(), nan]).unwrap();
        let path = s.root().join(&exp).join(&run.run_id).join("metrics/m");
        assert_eq!(read(path), "5 1.0 0\n5 2.0 0\n5 nan 0\n");
    }

    #[test]
    fn params_are_immutable_and_the_error_names_the_key() {
        let (_d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        let run = s.create_run(&NewRun::new(&exp, "r")).unwrap();
        s.log_params(&run.run_id, &[Param::new("rank", "10")])
            .unwrap();
        s.log_params(&run.run_id, &[Param::new("rank", "10")])
            .unwrap();
        let err = s
            .log_params(&run.run_id, &[Param::new("rank", "20")])
            .unwrap_err();
        assert!(matches!(err, TrackingError::ParamChanged { ref key, .. } if key == "rank"));
        assert!(err.to_string().contains("`rank`"), "{err}");
    }

    #[test]
    fn bad_keys_are_rejected_before_anything_is_written() {
        let (_d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        let run = s.create_run(&NewRun::new(&exp, "r")).unwrap();
        let batch = Batch {
            params: vec![Param::new("ok", "1")],
            metrics: vec![Metric::new("bad?key", 1.0, 0)],
            tags: vec![],
        };
        let err = s.log_batch(&run.run_id, &batch).unwrap_err();
        assert!(err.to_string().contains("`bad?key`"), "{err}");
        assert!(s.get_run(&run.run_id).unwrap().params.is_empty());
    }

    #[test]
    fn latest_metric_is_max_by_step_timestamp_value() {
        let m = |v: f64, ts: i64, step: i64| Metric {
            key: "k".into(),
            value: v,
            timestamp: ts,
            step,
        };
        let latest =
            latest_metric(vec![m(1.0, 5, 2), m(3.0, 1, 1), m(0.5, 5, 2), m(0.7, 6, 2)]).unwrap();
        assert_eq!(latest.value, 0.7);
        let tie = latest_metric(vec![m(1.0, 5, 2), m(2.0, 5, 2)]).unwrap();
        assert_eq!(tie.value, 2.0);
    }

    #[test]
    fn end_run_sets_status_code_and_end_time_and_keeps_other_fields() {
        let (_d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        let run = s.create_run(&NewRun::new(&exp, "r")).unwrap();
        let meta_path = s.root().join(&exp).join(&run.run_id).join("meta.yaml");
        let text = read(&meta_path).replace("user_id: ''", "user_id: ''\nextra_field: keep");
        fs::write(&meta_path, text).unwrap();
        s.end_run(&run.run_id, RunStatus::Failed, 1234).unwrap();
        let meta = yaml::parse(&read(&meta_path)).unwrap();
        assert_eq!(yaml::get(&meta, "status"), Some(&Yaml::Int(4)));
        assert_eq!(yaml::get(&meta, "end_time"), Some(&Yaml::Int(1234)));
        assert_eq!(yaml::get(&meta, "extra_field"), Some(&Yaml::str("keep")));
        let info = s.get_run(&run.run_id).unwrap().info;
        assert_eq!(
            (info.status, info.end_time),
            (RunStatus::Failed, Some(1234))
        );
    }

    #[test]
    fn run_name_tag_updates_meta() {
        let (_d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        let run = s.create_run(&NewRun::new(&exp, "old")).unwrap();
        s.set_tags(&run.run_id, &[Tag::new(TAG_RUN_NAME, "new")])
            .unwrap();
        assert_eq!(s.get_run(&run.run_id).unwrap().info.run_name, "new");
    }

    #[test]
    fn artifacts_files_and_folders_are_copied_and_listed() {
        let (d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        let run = s.create_run(&NewRun::new(&exp, "r")).unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("a.txt"), "A").unwrap();
        fs::write(src.join("sub/b.txt"), "BB").unwrap();
        s.log_artifact(&run.run_id, &src.join("a.txt"), Some("x/y"))
            .unwrap();
        s.log_artifacts(&run.run_id, &src, Some("model")).unwrap();
        s.log_artifacts(&run.run_id, &src, None).unwrap();
        let art = s.root().join(&exp).join(&run.run_id).join("artifacts");
        assert_eq!(read(art.join("x/y/a.txt")), "A");
        assert_eq!(read(art.join("model/sub/b.txt")), "BB");
        assert_eq!(read(art.join("sub/b.txt")), "BB");
        let top = s.list_artifacts(&run.run_id, None).unwrap();
        let names: Vec<(&str, bool)> = top.iter().map(|e| (e.path.as_str(), e.is_dir)).collect();
        assert_eq!(
            names,
            [
                ("a.txt", false),
                ("model", true),
                ("sub", true),
                ("x", true)
            ]
        );
        let sub = s.list_artifacts(&run.run_id, Some("model/sub")).unwrap();
        assert_eq!(
            sub,
            [ArtifactEntry {
                path: "model/sub/b.txt".into(),
                is_dir: false,
                file_size: Some(2)
            }]
        );
        let out = d.path().join("out");
        s.download_artifacts(&run.run_id, Some("model"), &out)
            .unwrap();
        assert_eq!(read(out.join("model/sub/b.txt")), "BB");
        // No temporary files are left behind.
        let leftovers: Vec<_> = walk_files(&s.root().join(&exp))
            .unwrap()
            .into_iter()
            .filter(|(_, r)| r.contains(TMP_PREFIX))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert!(s
            .log_artifact(&run.run_id, &src.join("a.txt"), Some("../up"))
            .is_err());
    }

    #[test]
    fn dataset_inputs_are_written_like_mlflow() {
        let (_d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        let run = s.create_run(&NewRun::new(&exp, "r")).unwrap();
        let input = DatasetInput::local("ml100k", "abc123", "/x").with_context("training");
        s.log_input(&run.run_id, &input).unwrap();
        s.log_input(&run.run_id, &input).unwrap();
        let ds = s
            .root()
            .join(&exp)
            .join("datasets/35f56c5d5644aeec2a77a129c6dc8b6b/meta.yaml");
        assert!(read(ds).contains("name: ml100k"));
        let got = s.get_run(&run.run_id).unwrap();
        assert_eq!(got.inputs, vec![input]);
        let long = DatasetInput::local("d", "x".repeat(37), "/x");
        assert!(s.log_input(&run.run_id, &long).is_err());
    }

    #[test]
    fn search_filters_and_orders_runs() {
        let (_d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        let mut ids = Vec::new();
        for (i, rmse) in [0.9, 0.7, 1.1].iter().enumerate() {
            let mut nr = NewRun::new(&exp, format!("r{i}"));
            nr.start_time = 1000 + i as i64;
            let run = s.create_run(&nr).unwrap();
            s.log_batch(
                &run.run_id,
                &Batch {
                    metrics: vec![Metric::new("rmse", *rmse, 0)],
                    params: vec![Param::new("rank", (i * 10).to_string())],
                    tags: vec![],
                },
            )
            .unwrap();
            ids.push(run.run_id);
        }
        let mut q = RunQuery::new(vec![exp.clone(), "missing".into()]);
        q.filter = Some("metrics.rmse < 1".into());
        q.order_by = vec!["metrics.rmse ASC".into()];
        let runs = s.search_runs(&q).unwrap();
        let got: Vec<&str> = runs.iter().map(|r| r.info.run_id.as_str()).collect();
        assert_eq!(got, [ids[1].as_str(), ids[0].as_str()]);
        let all = s.search_runs(&RunQuery::new(vec![exp.clone()])).unwrap();
        let names: Vec<&str> = all.iter().map(|r| r.info.run_name.as_str()).collect();
        assert_eq!(names, ["r2", "r1", "r0"]);
        q.filter = Some("metrics.rmse <".into());
        assert!(matches!(s.search_runs(&q), Err(TrackingError::Search(_))));
    }

    #[test]
    fn folders_without_meta_are_skipped_like_mlflow() {
        let (_d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        fs::create_dir_all(s.root().join(&exp).join("half-made-run/metrics")).unwrap();
        fs::create_dir_all(s.root().join("123")).unwrap();
        assert!(s.search_runs(&RunQuery::new(vec![exp])).unwrap().is_empty());
        assert_eq!(s.list_experiments().unwrap().len(), 2);
    }

    #[test]
    fn nested_runs_keep_their_parent_tag() {
        let (_d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        let parent = s.create_run(&NewRun::new(&exp, "grid")).unwrap();
        let child = s
            .create_run(&NewRun::new(&exp, "rank=10").with_parent(&parent.run_id))
            .unwrap();
        let got = s.get_run(&child.run_id).unwrap();
        assert_eq!(got.parent_run_id(), Some(parent.run_id.as_str()));
        assert_eq!(got.tags.get(TAG_PARENT_RUN_ID), Some(&parent.run_id));
    }

    #[test]
    fn concurrent_experiment_creation_yields_one_experiment() {
        let (_d, s) = store();
        let root = s.root().to_path_buf();
        let s = Arc::new(s);
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let root = root.clone();
                std::thread::spawn(move || {
                    // Separate store handles, as separate processes would have.
                    let store = FileStore::open(&root).unwrap();
                    let id = store.get_or_create_experiment("race", None, &[]).unwrap();
                    let run = store
                        .create_run(&NewRun::new(&id, format!("r{i}")))
                        .unwrap();
                    for step in 0..50 {
                        store
                            .log_metric(&run.run_id, "shared", step as f64, step)
                            .unwrap();
                    }
                    store
                        .log_params(&run.run_id, &[Param::new("p", i.to_string())])
                        .unwrap();
                    id
                })
            })
            .collect();
        let ids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
        let exps = s.list_experiments().unwrap();
        assert_eq!(exps.iter().filter(|e| e.name == "race").count(), 1);
        let runs = s.search_runs(&RunQuery::new(vec![ids[0].clone()])).unwrap();
        assert_eq!(runs.len(), 8);
        for r in &runs {
            assert_eq!(
                s.get_metric_history(&r.info.run_id, "shared")
                    .unwrap()
                    .len(),
                50
            );
        }
        assert!(!root.join(LOCK_FILE).exists());
    }

    #[test]
    fn concurrent_appends_to_one_metric_never_tear_lines() {
        let (_d, s) = store();
        let exp = s.get_or_create_experiment("e", None, &[]).unwrap();
        let run = s.create_run(&NewRun::new(&exp, "r")).unwrap();
        let s = Arc::new(s);
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let s = Arc::clone(&s);
                let id = run.run_id.clone();
                std::thread::spawn(move || {
                    let metrics: Vec<Metric> = (0..500)
                        .map(|i| Metric::new("m", (t * 1000 + i) as f64 + 0.123456789, i))
                        .collect();
                    for chunk in metrics.chunks(50) {
                        s.log_metrics(&id, chunk).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(s.get_metric_history(&run.run_id, "m").unwrap().len(), 2000);
    }

    #[test]
    fn stale_locks_are_taken_over() {
        let (_d, s) = store();
        let lock = s.root().join(LOCK_FILE);
        fs::write(&lock, "999999").unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        s.get_or_create_experiment("after-crash", None, &[])
            .unwrap();
        assert!(!lock.exists());
    }

    #[test]
    fn file_uris_open_the_same_store() {
        let (_d, s) = store();
        let again = FileStore::open_uri(&s.uri()).unwrap();
        assert_eq!(again.root(), s.root());
        assert!(FileStore::open_uri("http://x").is_err());
    }
}

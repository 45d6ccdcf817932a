//! Keeping a run's results when the tracking server goes away mid-run.
//!
//! [`BufferedTracker`] wraps a tracker (a [`super::RestStore`]) and journals every run it
//! creates. When a call fails in a way that may pass (server down, overloaded, timed out, after
//! the inner store's own retries), the call is queued instead of failing and the wrapper goes
//! offline: later calls are queued without touching the network, and every `reconnect_every`
//! one ping checks whether the server is back, then the queue is sent in order. At the end,
//! [`BufferedTracker::finish`] tries once more and writes every run that still has undelivered
//! parts, complete, into a local [`FileStore`] (tagged `recflow.spooled_from`), from where
//! `recflow sync` copies it later. Errors that would fail again (bad keys, changed params, bad
//! credentials) are returned to the caller as usual.
//! This module knows nothing about HTTP details, models or the command line.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{
    normalize_batch, ArtifactEntry, Batch, DatasetInput, Experiment, FileStore, LoggedModel,
    Metric, ModelToLog, NewRun, Run, RunInfo, RunQuery, RunStatus, Tag, Tracker, TrackingError,
    TAG_PARENT_RUN_ID, TAG_PARTIAL_REMOTE_RUN, TAG_SPOOLED_FROM,
};

/// One logging call, kept until the server has it.
#[derive(Debug, Clone)]
enum Op {
    Create,
    Batch(Batch),
    /// Index into the run's artifacts.
    Artifact(usize),
    Input(usize),
    /// Index into the run's logged models.
    Model(usize),
    End,
}

#[derive(Debug, Clone)]
struct ModelRecord {
    /// The model, its files a private copy.
    model: ModelToLog,
    /// The id the caller was given while the model was not delivered, and its local copy's.
    local_id: String,
}

#[derive(Debug, Clone)]
struct ArtifactRecord {
    /// The caller's file or folder, or a private copy once a delivery failed.
    local: PathBuf,
    artifact_path: Option<String>,
    is_dir: bool,
}

#[derive(Debug)]
struct RunRecord {
    /// The id the caller knows the run by.
    id: String,
    /// The server's id, once the run exists there.
    remote_id: Option<String>,
    new_run: NewRun,
    /// Everything logged, for a complete local copy.
    logged: Batch,
    inputs: Vec<DatasetInput>,
    artifacts: Vec<ArtifactRecord>,
    models: Vec<ModelRecord>,
    end: Option<(RunStatus, i64)>,
    pending: VecDeque<Op>,
    /// The server refused part of it for good; keep a local copy.
    incomplete: bool,
}

#[derive(Debug, Clone)]
struct ExperimentRecord {
    name: String,
    description: Option<String>,
    tags: Vec<Tag>,
}

#[derive(Default)]
struct State {
    offline: bool,
    last_attempt: Option<Instant>,
    experiments: HashMap<String, ExperimentRecord>,
    runs: Vec<RunRecord>,
    spool_dir: Option<tempfile::TempDir>,
}

/// A run written to the local store by [`BufferedTracker::finish`].
#[derive(Debug, Clone, PartialEq)]
pub struct SpooledRun {
    pub run_id: String,
    pub run_name: String,
    pub experiment_id: String,
    /// The partial run on the server, if its creation got there.
    pub partial_remote_run_id: Option<String>,
}

/// What [`BufferedTracker::finish`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolOutcome {
    /// Runs saved locally because the server did not take them; empty when all arrived.
    pub saved: Vec<SpooledRun>,
    /// The local store's URI, when anything was saved.
    pub local_uri: Option<String>,
    /// The caller's run id -> the server's, for runs created while offline and sent later.
    pub renamed: Vec<(String, String)>,
}

impl SpoolOutcome {
    pub fn all_delivered(&self) -> bool {
        self.saved.is_empty()
    }
}

/// A tracker that never loses a run's results to a server outage (see the module docs).
pub struct BufferedTracker {
    inner: Box<dyn Tracker>,
    state: Mutex<State>,
    reconnect_every: Duration,
}

impl BufferedTracker {
    pub fn new(inner: Box<dyn Tracker>) -> Self {
        BufferedTracker {
            inner,
            state: Mutex::new(State::default()),
            reconnect_every: Duration::from_secs(30),
        }
    }

    /// How often, while offline, a call first checks whether the server is back.
    pub fn with_reconnect_every(mut self, every: Duration) -> Self {
        self.reconnect_every = every;
        self
    }

    /// Whether a delivery has failed and the server has not come back since.
    pub fn is_offline(&self) -> bool {
        self.lock().offline
    }

    /// Whether anything is waiting to be delivered.
    pub fn has_pending(&self) -> bool {
        self.lock()
            .runs
            .iter()
            .any(|r| !r.pending.is_empty() || r.incomplete)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent journal: keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tries the server once more, then writes every run with undelivered parts, complete,
    /// into `local`. Call it once at the end of a command, also after a failure.
    pub fn finish(&self, local: &FileStore) -> Result<SpoolOutcome, TrackingError> {
        let mut state = self.lock();
        if state.runs.iter().any(|r| !r.pending.is_empty()) {
            state.last_attempt = None;
            self.try_reconnect(&mut state, true);
        }
        let renamed: Vec<(String, String)> = state
            .runs
            .iter()
            .filter_map(|r| {
                r.remote_id
                    .as_ref()
                    .filter(|rid| **rid != r.id)
                    .map(|rid| (r.id.clone(), rid.clone()))
            })
            .collect();
        // A spooled run takes its whole subtree along, delivered children too: its copy on the
        // server will be a new run, and a tree split across two parents is not one experiment.
        // Runs are journalled parents first, so one pass sees every parent before its children.
        let mut spooled: std::collections::HashSet<String> = Default::default();
        for r in &state.runs {
            let parent_spooled = r
                .new_run
                .tags
                .iter()
                .any(|t| t.key == TAG_PARENT_RUN_ID && spooled.contains(&t.value));
            if !r.pending.is_empty() || r.incomplete || parent_spooled {
                spooled.insert(r.id.clone());
            }
        }
        let mut saved = Vec::new();
        let mut local_exp_ids: HashMap<String, String> = HashMap::new();
        let remote_uri = self.inner.uri();
        for rec in state.runs.iter().filter(|r| spooled.contains(&r.id)) {
            let exp = state
                .experiments
                .get(&rec.new_run.experiment_id)
                .cloned()
                .unwrap_or_else(|| ExperimentRecord {
                    name: format!("recflow-spooled-{}", rec.new_run.experiment_id),
                    description: None,
                    tags: Vec::new(),
                });
            let local_exp = match local_exp_ids.get(&exp.name) {
                Some(id) => id.clone(),
                None => {
                    let id = local.get_or_create_experiment(
                        &exp.name,
                        exp.description.as_deref(),
                        &exp.tags,
                    )?;
                    local_exp_ids.insert(exp.name.clone(), id.clone());
                    id
                }
            };
            let mut new_run = rec.new_run.clone();
            new_run.experiment_id = local_exp.clone();
            new_run.tags.push(Tag::new(TAG_SPOOLED_FROM, &remote_uri));
            if let Some(rid) = &rec.remote_id {
                new_run.tags.push(Tag::new(TAG_PARTIAL_REMOTE_RUN, rid));
            }
            let info = local.create_run_with_id(&new_run, &rec.id)?;
            local.log_batch(&rec.id, &rec.logged)?;
            for input in &rec.inputs {
                local.log_input(&rec.id, input)?;
            }
            for a in &rec.artifacts {
                let result = if a.is_dir {
                    local.log_artifacts(&rec.id, &a.local, a.artifact_path.as_deref())
                } else {
                    local.log_artifact(&rec.id, &a.local, a.artifact_path.as_deref())
                };
                if let Err(e) = result {
                    tracing::warn!(
                        "artifact `{}` of run `{}` could not be saved: {e}",
                        a.local.display(),
                        rec.id
                    );
                }
            }
            for m in &rec.models {
                let mut model = m.model.clone();
                model.experiment_id = local_exp.clone();
                model.model_id = Some(m.local_id.clone());
                // Runs created before this one (parents) are here already; others stay remote.
                model.output_of.retain(|r| spooled.contains(r));
                if let Err(e) = local.log_model(&model) {
                    tracing::warn!(
                        "model `{}` of run `{}` could not be saved: {e}",
                        m.local_id,
                        rec.id
                    );
                }
            }
            if let Some((status, end_time)) = rec.end {
                local.end_run(&rec.id, status, end_time)?;
            }
            saved.push(SpooledRun {
                run_id: info.run_id,
                run_name: info.run_name,
                experiment_id: local_exp,
                partial_remote_run_id: rec.remote_id.clone(),
            });
        }
        let local_uri = (!saved.is_empty()).then(|| local.uri());
        state.runs.clear();
        state.spool_dir = None;
        Ok(SpoolOutcome {
            saved,
            local_uri,
            renamed,
        })
    }

    /// While offline, at most every `reconnect_every` (or now when `force`): ping, then send
    /// the queue.
    fn try_reconnect(&self, state: &mut State, force: bool) {
        if !state.offline && !state.runs.iter().any(|r| !r.pending.is_empty()) {
            return;
        }
        let due = force
            || state
                .last_attempt
                .is_none_or(|t| t.elapsed() >= self.reconnect_every);
        if !due {
            return;
        }
        state.last_attempt = Some(Instant::now());
        if state.offline && self.inner.ping().is_err() {
            return;
        }
        state.offline = false;
        if let Err(e) = self.flush(state) {
            self.go_offline(state, &e);
        }
    }

    fn go_offline(&self, state: &mut State, cause: &TrackingError) {
        if !state.offline {
            // The cause alone: its own hint (log locally) does not apply to a run under way.
            let why = match cause {
                TrackingError::Unreachable { cause, .. } => cause.clone(),
                e => e.to_string().lines().next().unwrap_or_default().to_string(),
            };
            tracing::warn!(
                "tracking server `{}` stopped answering ({why}); results are kept and sent when \
                 it is back, else saved locally at the end",
                self.inner.uri()
            );
        }
        state.offline = true;
        state.last_attempt = Some(Instant::now());
    }

    /// Sends queued calls, runs in creation order (parents before children).
    fn flush(&self, state: &mut State) -> Result<(), TrackingError> {
        for i in 0..state.runs.len() {
            while let Some(op) = state.runs[i].pending.front().cloned() {
                match self.deliver(state, i, &op) {
                    Ok(()) => {
                        state.runs[i].pending.pop_front();
                    }
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => {
                        tracing::warn!(
                            "tracking server refused part of run `{}`: {e}",
                            state.runs[i].id
                        );
                        state.runs[i].incomplete = true;
                        state.runs[i].pending.pop_front();
                        if matches!(op, Op::Create) {
                            // Nothing else of this run can go there.
                            state.runs[i].pending.clear();
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The server's id for a run id the caller knows.
    fn remote_of(state: &State, id: &str) -> Option<String> {
        state
            .runs
            .iter()
            .find(|r| r.id == id)
            .map_or(Some(id.to_string()), |r| r.remote_id.clone())
    }

    /// The server's ids of `runs`, leaving out runs not there yet.
    fn remote_runs(state: &State, runs: &[String]) -> Vec<String> {
        runs.iter()
            .filter_map(|r| Self::remote_of(state, r))
            .collect()
    }

    fn remap_tags(state: &State, tags: &[Tag]) -> Vec<Tag> {
        tags.iter()
            .map(|t| {
                match (t.key == TAG_PARENT_RUN_ID)
                    .then(|| Self::remote_of(state, &t.value))
                    .flatten()
                {
                    Some(rid) => Tag::new(&t.key, rid),
                    None => t.clone(),
                }
            })
            .collect()
    }

    fn deliver(&self, state: &mut State, i: usize, op: &Op) -> Result<(), TrackingError> {
        let rec = &state.runs[i];
        if let Op::Create = op {
            let mut new_run = rec.new_run.clone();
            new_run.tags = Self::remap_tags(state, &new_run.tags);
            let info = self.inner.create_run(&new_run)?;
            state.runs[i].remote_id = Some(info.run_id);
            return Ok(());
        }
        let Some(remote) = rec.remote_id.clone() else {
            return Err(TrackingError::RunNotFound(rec.id.clone()));
        };
        match op {
            Op::Create => Ok(()),
            Op::Batch(b) => {
                let b = Batch {
                    tags: Self::remap_tags(state, &b.tags),
                    ..b.clone()
                };
                self.inner.log_batch(&remote, &b)
            }
            Op::Artifact(k) => {
                let a = &rec.artifacts[*k];
                if a.is_dir {
                    self.inner
                        .log_artifacts(&remote, &a.local, a.artifact_path.as_deref())
                } else {
                    self.inner
                        .log_artifact(&remote, &a.local, a.artifact_path.as_deref())
                }
            }
            Op::Input(k) => self.inner.log_input(&remote, &rec.inputs[*k]),
            Op::Model(k) => {
                let mut model = rec.models[*k].model.clone();
                model.source_run_id = remote;
                model.output_of = Self::remote_runs(state, &model.output_of);
                self.inner.log_model(&model).map(drop)
            }
            Op::End => {
                let (status, end_time) = rec.end.unwrap_or((RunStatus::Finished, super::now_ms()));
                self.inner.end_run(&remote, status, end_time)
            }
        }
    }

    /// Runs `send` now when nothing of this run waits and the server is up; queues `op` when
    /// it is down or fails in a way that may pass. `Ok(true)` when queued.
    fn send_or_queue(
        &self,
        state: &mut State,
        i: usize,
        op: Op,
        send: impl FnOnce(&dyn Tracker, &str) -> Result<(), TrackingError>,
    ) -> Result<bool, TrackingError> {
        self.try_reconnect(state, false);
        let rec = &state.runs[i];
        if !state.offline && rec.pending.is_empty() {
            if let Some(remote) = rec.remote_id.clone() {
                match send(self.inner.as_ref(), &remote) {
                    Ok(()) => return Ok(false),
                    Err(e) if e.is_transient() => self.go_offline(state, &e),
                    Err(e) => return Err(e),
                }
            }
        }
        state.runs[i].pending.push_back(op);
        Ok(true)
    }

    fn index(state: &State, run_id: &str) -> Option<usize> {
        state.runs.iter().position(|r| r.id == run_id)
    }

    /// A private copy of a file or folder the run's local copy may need; the caller may delete theirs.
    fn keep_copy(state: &mut State, src: &Path, is_dir: bool) -> Result<PathBuf, TrackingError> {
        if state.spool_dir.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("recflow-spool-")
                .tempdir()
                .map_err(|e| TrackingError::io(std::env::temp_dir(), e))?;
            state.spool_dir = Some(dir);
        }
        let base = state
            .spool_dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        let target = base.join(uuid::Uuid::new_v4().simple().to_string());
        if is_dir {
            super::copy_tree(src, &target)?;
            Ok(target)
        } else {
            std::fs::create_dir_all(&target).map_err(|e| TrackingError::io(&target, e))?;
            let name = src
                .file_name()
                .unwrap_or_else(|| std::ffi::OsStr::new("artifact"));
            let to = target.join(name);
            std::fs::copy(src, &to).map_err(|e| TrackingError::io(src, e))?;
            Ok(to)
        }
    }

    fn log_artifact_any(
        &self,
        run_id: &str,
        local: &Path,
        artifact_path: Option<&str>,
        is_dir: bool,
    ) -> Result<(), TrackingError> {
        let mut state = self.lock();
        let Some(i) = Self::index(&state, run_id) else {
            drop(state);
            return if is_dir {
                self.inner.log_artifacts(run_id, local, artifact_path)
            } else {
                self.inner.log_artifact(run_id, local, artifact_path)
            };
        };
        if !local.exists() {
            return Err(TrackingError::io(
                local,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
        let k = state.runs[i].artifacts.len();
        self.send_or_queue(&mut state, i, Op::Artifact(k), |t, rid| {
            if is_dir {
                t.log_artifacts(rid, local, artifact_path)
            } else {
                t.log_artifact(rid, local, artifact_path)
            }
        })?;
        // A private copy even when delivered: if a later call fails, the run's local copy
        // needs every artifact, and the caller's file is often in a folder already deleted.
        let local = Self::keep_copy(&mut state, local, is_dir)?;
        state.runs[i].artifacts.push(ArtifactRecord {
            local,
            artifact_path: artifact_path.map(str::to_string),
            is_dir,
        });
        Ok(())
    }
}

impl Drop for BufferedTracker {
    fn drop(&mut self) {
        let state = self.lock();
        let lost = state
            .runs
            .iter()
            .filter(|r| !r.pending.is_empty() || r.incomplete)
            .count();
        if lost > 0 {
            tracing::error!(
                "{lost} run(s) were not delivered to `{}` and `finish` was not called",
                self.inner.uri()
            );
        }
    }
}

impl Tracker for BufferedTracker {
    fn uri(&self) -> String {
        self.inner.uri()
    }

    fn ping(&self) -> Result<(), TrackingError> {
        self.inner.ping()
    }

    fn get_or_create_experiment(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
    ) -> Result<String, TrackingError> {
        let id = self
            .inner
            .get_or_create_experiment(name, description, tags)?;
        self.lock().experiments.insert(
            id.clone(),
            ExperimentRecord {
                name: name.to_string(),
                description: description.map(str::to_string),
                tags: tags.to_vec(),
            },
        );
        Ok(id)
    }

    fn create_run(&self, run: &NewRun) -> Result<RunInfo, TrackingError> {
        let mut state = self.lock();
        self.try_reconnect(&mut state, false);
        // A child waits for a parent that is not on the server yet.
        let parent_pending = run
            .tags
            .iter()
            .find(|t| t.key == TAG_PARENT_RUN_ID)
            .is_some_and(|t| Self::remote_of(&state, &t.value).is_none());
        if !state.offline && !parent_pending {
            let mut sent = run.clone();
            sent.tags = Self::remap_tags(&state, &run.tags);
            match self.inner.create_run(&sent) {
                Ok(info) => {
                    state.runs.push(RunRecord {
                        id: info.run_id.clone(),
                        remote_id: Some(info.run_id.clone()),
                        new_run: run.clone(),
                        logged: Batch::default(),
                        inputs: Vec::new(),
                        artifacts: Vec::new(),
                        models: Vec::new(),
                        end: None,
                        pending: VecDeque::new(),
                        incomplete: false,
                    });
                    return Ok(info);
                }
                Err(e) if e.is_transient() => self.go_offline(&mut state, &e),
                Err(e) => return Err(e),
            }
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        state.runs.push(RunRecord {
            id: id.clone(),
            remote_id: None,
            new_run: run.clone(),
            logged: Batch::default(),
            inputs: Vec::new(),
            artifacts: Vec::new(),
            models: Vec::new(),
            end: None,
            pending: VecDeque::from([Op::Create]),
            incomplete: false,
        });
        Ok(RunInfo {
            run_id: id,
            experiment_id: run.experiment_id.clone(),
            run_name: run.resolved_name().unwrap_or_default(),
            user_id: run.user_id.clone(),
            status: RunStatus::Running,
            start_time: run.start_time,
            end_time: None,
            artifact_uri: String::new(),
            lifecycle_stage: "active".into(),
        })
    }

    fn log_batch(&self, run_id: &str, batch: &Batch) -> Result<(), TrackingError> {
        let mut state = self.lock();
        let Some(i) = Self::index(&state, run_id) else {
            drop(state);
            return self.inner.log_batch(run_id, batch);
        };
        // Keys are checked here, so a bad key fails now rather than in the queue.
        let batch = normalize_batch(run_id, batch)?;
        // A changed param fails now, as the server would, rather than in the local copy.
        for p in &batch.params {
            let old = state.runs[i].logged.params.iter().find(|o| o.key == p.key);
            if let Some(old) = old.filter(|o| o.value != p.value) {
                return Err(TrackingError::ParamChanged {
                    run_id: run_id.to_string(),
                    key: p.key.clone(),
                    old: old.value.clone(),
                    new: p.value.clone(),
                });
            }
        }
        let b = batch.clone();
        self.send_or_queue(&mut state, i, Op::Batch(batch.clone()), |t, rid| {
            t.log_batch(rid, &b)
        })?;
        let logged = &mut state.runs[i].logged;
        logged.params.extend(batch.params);
        logged.metrics.extend(batch.metrics);
        logged.tags.extend(batch.tags);
        Ok(())
    }

    fn log_artifact(
        &self,
        run_id: &str,
        local_file: &Path,
        artifact_path: Option<&str>,
    ) -> Result<(), TrackingError> {
        self.log_artifact_any(run_id, local_file, artifact_path, false)
    }

    fn log_artifacts(
        &self,
        run_id: &str,
        local_dir: &Path,
        artifact_path: Option<&str>,
    ) -> Result<(), TrackingError> {
        self.log_artifact_any(run_id, local_dir, artifact_path, true)
    }

    fn log_input(&self, run_id: &str, input: &DatasetInput) -> Result<(), TrackingError> {
        let mut state = self.lock();
        let Some(i) = Self::index(&state, run_id) else {
            drop(state);
            return self.inner.log_input(run_id, input);
        };
        super::validate_dataset(input)?;
        let k = state.runs[i].inputs.len();
        self.send_or_queue(&mut state, i, Op::Input(k), |t, rid| {
            t.log_input(rid, input)
        })?;
        state.runs[i].inputs.push(input.clone());
        Ok(())
    }

    fn log_model(&self, model: &ModelToLog) -> Result<LoggedModel, TrackingError> {
        let mut state = self.lock();
        let Some(i) = Self::index(&state, &model.source_run_id) else {
            drop(state);
            return self.inner.log_model(model);
        };
        let outputs = Self::remote_runs(&state, &model.output_of);
        let mut delivered = None;
        let k = state.runs[i].models.len();
        self.send_or_queue(&mut state, i, Op::Model(k), |t, rid| {
            let sent = ModelToLog {
                source_run_id: rid.to_string(),
                output_of: outputs,
                ..model.clone()
            };
            delivered = Some(t.log_model(&sent)?);
            Ok(())
        })?;
        let dir = Self::keep_copy(&mut state, &model.dir, true)?;
        let local_id = format!("m-{}", uuid::Uuid::new_v4().simple());
        state.runs[i].models.push(ModelRecord {
            model: ModelToLog {
                dir,
                ..model.clone()
            },
            local_id: local_id.clone(),
        });
        Ok(delivered.unwrap_or_else(|| LoggedModel {
            model_id: local_id,
            name: model.name.clone(),
            experiment_id: model.experiment_id.clone(),
            source_run_id: Some(model.source_run_id.clone()),
            artifact_location: String::new(),
            status: "PENDING".into(),
            params: model
                .params
                .iter()
                .map(|p| (p.key.clone(), p.value.clone()))
                .collect(),
            metrics: model.metrics.clone(),
            tags: model
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
        }))
    }

    fn run_models(&self, run_id: &str) -> Result<Vec<LoggedModel>, TrackingError> {
        let remote = Self::remote_of(&self.lock(), run_id).unwrap_or_else(|| run_id.to_string());
        self.inner.run_models(&remote)
    }

    fn download_model(&self, model: &LoggedModel, dest: &Path) -> Result<(), TrackingError> {
        self.inner.download_model(model, dest)
    }

    fn end_run(&self, run_id: &str, status: RunStatus, end_time: i64) -> Result<(), TrackingError> {
        let mut state = self.lock();
        let Some(i) = Self::index(&state, run_id) else {
            drop(state);
            return self.inner.end_run(run_id, status, end_time);
        };
        state.runs[i].end = Some((status, end_time));
        self.send_or_queue(&mut state, i, Op::End, |t, rid| {
            t.end_run(rid, status, end_time)
        })?;
        Ok(())
    }

    fn list_experiments(&self) -> Result<Vec<Experiment>, TrackingError> {
        self.inner.list_experiments()
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, TrackingError> {
        self.inner.get_experiment_by_name(name)
    }

    fn search_runs(&self, query: &RunQuery) -> Result<Vec<Run>, TrackingError> {
        self.inner.search_runs(query)
    }

    fn get_run(&self, run_id: &str) -> Result<Run, TrackingError> {
        let remote = Self::remote_of(&self.lock(), run_id).unwrap_or_else(|| run_id.to_string());
        self.inner.get_run(&remote)
    }

    fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>, TrackingError> {
        let remote = Self::remote_of(&self.lock(), run_id).unwrap_or_else(|| run_id.to_string());
        self.inner.get_metric_history(&remote, key)
    }

    fn list_artifacts(
        &self,
        run_id: &str,
        path: Option<&str>,
    ) -> Result<Vec<ArtifactEntry>, TrackingError> {
        let remote = Self::remote_of(&self.lock(), run_id).unwrap_or_else(|| run_id.to_string());
        self.inner.list_artifacts(&remote, path)
    }

    fn download_artifacts(
        &self,
        run_id: &str,
        path: Option<&str>,
        dest: &Path,
    ) -> Result<(), TrackingError> {
        let remote = Self::remote_of(&self.lock(), run_id).unwrap_or_else(|| run_id.to_string());
        self.inner.download_artifacts(&remote, path, dest)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use serde_json::{json, Value};

    use super::*;
    use crate::tracking::testserver::{MockServer, Reply};
    use crate::tracking::{Param, RestStore, RetryPolicy, TrackingSettings};

    fn settings() -> TrackingSettings {
        TrackingSettings {
            timeout: Duration::from_millis(500),
            retry: RetryPolicy {
                max_retries: 1,
                backoff_factor: Duration::from_millis(5),
                backoff_cap: Duration::from_millis(20),
                jitter: Duration::ZERO,
            },
            ..TrackingSettings::default()
        }
    }

    /// A fake MLflow server that answers experiment and run creation and accepts everything
    /// else, until `down` is set: then every request gets a 503.
    fn fake_mlflow(down: Arc<AtomicBool>) -> MockServer {
        let mut runs = 0;
        MockServer::start(move |req| {
            if down.load(Ordering::SeqCst) {
                return Reply::json(
                    503,
                    r#"{"error_code":"TEMPORARILY_UNAVAILABLE","message":"down"}"#,
                );
            }
            if req
                .path
                .starts_with("/api/2.0/mlflow/experiments/get-by-name")
            {
                return Reply::json(
                    200,
                    r#"{"experiment":{"experiment_id":"1","name":"e","lifecycle_stage":"active"}}"#,
                );
            }
            if req.path == "/api/2.0/mlflow/runs/create" {
                runs += 1;
                let id = format!("remote{runs}");
                return Reply::json(
                    200,
                    &json!({"run": {"info": {
                        "run_id": id, "experiment_id": "1", "status": "RUNNING", "start_time": 1,
                        "artifact_uri": format!("mlflow-artifacts:/1/{id}/artifacts"),
                        "lifecycle_stage": "active"}}})
                    .to_string(),
                );
            }
            Reply::json(200, "{}")
        })
    }

    #[test]
    fn server_gone_mid_run_loses_nothing() {
        let down = Arc::new(AtomicBool::new(false));
        let server = fake_mlflow(Arc::clone(&down));
        let rest = RestStore::new(&server.url, &settings()).unwrap();
        let tracker =
            BufferedTracker::new(Box::new(rest)).with_reconnect_every(Duration::from_secs(3600));
        let exp = tracker
            .get_or_create_experiment("e", Some("desc"), &[])
            .unwrap();
        let parent = tracker.create_run(&NewRun::new(&exp, "grid")).unwrap();
        tracker
            .log_params(&parent.run_id, &[Param::new("rank", "10")])
            .unwrap();
        // Delivered while the server is up, from a folder the caller deletes at once.
        let scratch = tempfile::tempdir().unwrap();
        let spec = scratch.path().join("spec.toml");
        std::fs::write(&spec, "[experiment]").unwrap();
        tracker.log_artifact(&parent.run_id, &spec, None).unwrap();
        drop(scratch);

        // The server dies; the server process is gone for good.
        down.store(true, Ordering::SeqCst);
        tracker.log_metric(&parent.run_id, "rmse", 0.91, 0).unwrap();
        assert!(tracker.is_offline());
        let child = tracker
            .create_run(&NewRun::new(&exp, "rank=10").with_parent(&parent.run_id))
            .unwrap();
        tracker
            .log_metrics(
                &child.run_id,
                &[
                    Metric::new("val_rmse", 0.95, 0),
                    Metric::new("val_rmse", 0.93, 1),
                ],
            )
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.bin");
        std::fs::write(&model, "factors").unwrap();
        tracker
            .log_artifact(&child.run_id, &model, Some("model"))
            .unwrap();
        std::fs::remove_file(&model).unwrap();
        tracker
            .log_input(&child.run_id, &DatasetInput::local("ml100k", "d1", "/data"))
            .unwrap();
        tracker
            .end_run(&child.run_id, RunStatus::Finished, 100)
            .unwrap();
        tracker
            .end_run(&parent.run_id, RunStatus::Finished, 101)
            .unwrap();
        // Bad keys and changed params still fail at once.
        assert!(tracker.log_metric(&child.run_id, "bad?", 1.0, 0).is_err());
        let changed = tracker.log_params(&parent.run_id, &[Param::new("rank", "20")]);
        assert!(matches!(changed, Err(TrackingError::ParamChanged { .. })));
        drop(server);

        let local = FileStore::open(dir.path().join("mlruns")).unwrap();
        let outcome = tracker.finish(&local).unwrap();
        assert_eq!(outcome.saved.len(), 2);
        assert!(!outcome.all_delivered());
        let local_exp = local.get_experiment_by_name("e").unwrap().unwrap();
        assert_eq!(
            local_exp
                .tags
                .get(crate::tracking::TAG_NOTE)
                .map(String::as_str),
            Some("desc")
        );

        let p = local.get_run(&parent.run_id).unwrap();
        assert_eq!(p.params.get("rank").map(String::as_str), Some("10"));
        assert_eq!(p.metric("rmse"), Some(0.91));
        assert_eq!(p.info.status, RunStatus::Finished);
        assert_eq!(
            p.tags.get(TAG_PARTIAL_REMOTE_RUN).map(String::as_str),
            Some("remote1")
        );
        assert!(p.tags.contains_key(TAG_SPOOLED_FROM));

        let c = local.get_run(&child.run_id).unwrap();
        assert_eq!(c.parent_run_id(), Some(parent.run_id.as_str()));
        assert_eq!(
            local
                .get_metric_history(&child.run_id, "val_rmse")
                .unwrap()
                .len(),
            2
        );
        assert_eq!(c.inputs.len(), 1);
        assert_eq!(
            (c.info.status, c.info.end_time),
            (RunStatus::Finished, Some(100))
        );
        let arts = local.list_artifacts(&child.run_id, Some("model")).unwrap();
        assert_eq!(arts[0].path, "model/model.bin");
        let parent_arts = local.list_artifacts(&parent.run_id, None).unwrap();
        assert!(
            parent_arts.iter().any(|a| a.path == "spec.toml"),
            "an artifact delivered before the failure is in the local copy: {parent_arts:?}"
        );
        assert!(!tracker.has_pending());
    }

    #[test]
    fn a_spooled_parent_takes_its_delivered_children_along() {
        // The rule: one experiment is one tree, so a child the server has whole is saved
        // locally too when its parent is (the parent's copy gets a new id on sync).
        let down = Arc::new(AtomicBool::new(false));
        let server = fake_mlflow(Arc::clone(&down));
        let rest = RestStore::new(&server.url, &settings()).unwrap();
        let tracker =
            BufferedTracker::new(Box::new(rest)).with_reconnect_every(Duration::from_secs(3600));
        let exp = tracker.get_or_create_experiment("e", None, &[]).unwrap();
        let parent = tracker.create_run(&NewRun::new(&exp, "grid")).unwrap();
        let done = tracker
            .create_run(&NewRun::new(&exp, "first").with_parent(&parent.run_id))
            .unwrap();
        tracker
            .log_metric(&done.run_id, "val_rmse", 0.9, 0)
            .unwrap();
        tracker
            .end_run(&done.run_id, RunStatus::Finished, 10)
            .unwrap();
        let other = tracker.create_run(&NewRun::new(&exp, "unrelated")).unwrap();
        tracker
            .end_run(&other.run_id, RunStatus::Finished, 11)
            .unwrap();
        down.store(true, Ordering::SeqCst);
        tracker
            .log_metric(&parent.run_id, "best.rmse", 0.9, 0)
            .unwrap();
        tracker
            .end_run(&parent.run_id, RunStatus::Finished, 12)
            .unwrap();
        drop(server);
        let dir = tempfile::tempdir().unwrap();
        let local = FileStore::open(dir.path().join("mlruns")).unwrap();
        let outcome = tracker.finish(&local).unwrap();
        let saved: Vec<&str> = outcome.saved.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(saved, [parent.run_id.as_str(), done.run_id.as_str()]);
        let c = local.get_run(&done.run_id).unwrap();
        assert_eq!(c.parent_run_id(), Some(parent.run_id.as_str()));
        assert_eq!(c.metric("val_rmse"), Some(0.9));
        assert_eq!(
            c.tags.get(TAG_PARTIAL_REMOTE_RUN).map(String::as_str),
            Some("remote2"),
            "the server's whole copy is named, so a sync supersedes it"
        );
    }

    #[test]
    fn a_server_that_comes_back_gets_the_queue_in_order() {
        let down = Arc::new(AtomicBool::new(false));
        let server = fake_mlflow(Arc::clone(&down));
        let rest = RestStore::new(&server.url, &settings()).unwrap();
        let tracker = BufferedTracker::new(Box::new(rest)).with_reconnect_every(Duration::ZERO);
        let exp = tracker.get_or_create_experiment("e", None, &[]).unwrap();
        down.store(true, Ordering::SeqCst);
        let parent = tracker.create_run(&NewRun::new(&exp, "grid")).unwrap();
        let child = tracker
            .create_run(&NewRun::new(&exp, "c").with_parent(&parent.run_id))
            .unwrap();
        tracker.log_metric(&child.run_id, "rmse", 0.9, 0).unwrap();
        assert!(tracker.has_pending());
        down.store(false, Ordering::SeqCst);
        tracker
            .end_run(&child.run_id, RunStatus::Finished, 5)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let outcome = tracker
            .finish(&FileStore::open(dir.path().join("mlruns")).unwrap())
            .unwrap();
        assert!(outcome.all_delivered(), "{outcome:?}");
        assert_eq!(outcome.renamed.len(), 2);
        let reqs = server.requests();
        let creates: Vec<Value> = reqs
            .iter()
            .filter(|r| r.path == "/api/2.0/mlflow/runs/create")
            .filter_map(|r| serde_json::from_slice(&r.body).ok())
            .collect();
        // The child names the parent by its server id.
        let child_create = creates.iter().find(|v| v["run_name"] == "c").unwrap();
        let parent_tag = child_create["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == TAG_PARENT_RUN_ID)
            .unwrap();
        assert_eq!(parent_tag["value"], "remote1");
    }
}

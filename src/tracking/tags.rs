//! Tag names MLflow and recflow give meaning to, shared by every writer and reader.

/// Run name, kept equal to the run's `run_name`.
pub const TAG_RUN_NAME: &str = "mlflow.runName";
/// Parent run of a nested run; the UI shows the child under its parent.
pub const TAG_PARENT_RUN_ID: &str = "mlflow.parentRunId";
/// Markdown description of a run or an experiment.
pub const TAG_NOTE: &str = "mlflow.note.content";
pub const TAG_USER: &str = "mlflow.user";
pub const TAG_SOURCE_NAME: &str = "mlflow.source.name";
/// One of `LOCAL`, `JOB`, `PROJECT`, `NOTEBOOK`, `UNKNOWN`.
pub const TAG_SOURCE_TYPE: &str = "mlflow.source.type";
pub const TAG_GIT_COMMIT: &str = "mlflow.source.git.commit";
pub const TAG_GIT_BRANCH: &str = "mlflow.source.git.branch";
pub const TAG_GIT_REPO_URL: &str = "mlflow.source.git.repoURL";
pub const TAG_GIT_DIRTY: &str = "mlflow.source.git.dirty";
/// Role of a dataset input (`training`, `validation`, `test`), stored as an input tag.
pub const TAG_DATASET_CONTEXT: &str = "mlflow.data.context";
/// Set on a run copied by [`sync()`]: the source run's id. Runs carrying it are not copied again.
pub const TAG_SYNCED_FROM: &str = "recflow.synced_from";
/// Set on a run written to a local store because the server it was meant for went away.
pub const TAG_SPOOLED_FROM: &str = "recflow.spooled_from";
/// Set on a spooled run whose creation had reached the server: the partial run's id there.
pub const TAG_PARTIAL_REMOTE_RUN: &str = "recflow.partial_remote_run_id";

/// recflow's version, on every run it creates.
pub const TAG_RECFLOW_VERSION: &str = "recflow.version";
/// `local` or `spark`.
pub const TAG_ENGINE: &str = "recflow.engine";
/// The spec file a run came from.
pub const TAG_SPEC: &str = "recflow.spec";
/// A child's model entry.
pub const TAG_ENTRY: &str = "recflow.entry";
/// A child's role: `trial` (a search configuration) or `final` (the entry's refit).
pub const TAG_ROLE: &str = "recflow.role";
/// A trial's position in its entry's search.
pub const TAG_CONFIG_INDEX: &str = "recflow.config_index";
/// A final child's selected configuration.
pub const TAG_SELECTED_CONFIG: &str = "recflow.selected_config";
/// The split selection used (`val`, or `test` without a validation split).
pub const TAG_SELECTED_ON: &str = "recflow.selected_on";
/// The selection metric (split-free).
pub const TAG_SELECTION: &str = "recflow.selection";
/// The winning entry.
pub const TAG_WINNER: &str = "recflow.winner";
/// The run's warnings, one per line.
pub const TAG_WARNINGS: &str = "recflow.warnings";
/// The winner's final child.
pub const TAG_BEST_RUN_ID: &str = "best_run_id";
/// A parent's processed-data fingerprint (for `--resume`).
pub const TAG_DATA_FINGERPRINT: &str = "recflow.data_fingerprint";
/// A trial's searched values (`rank=16 reg=0.1`).
pub const TAG_CONFIG: &str = "recflow.config";
/// Set on a final child that a resumed run refit again.
pub const TAG_SUPERSEDED: &str = "recflow.superseded";
/// Which test split a run's per-user figures come from: `<data fingerprint>:<test digest>`.
/// `runs compare --significance` pairs runs only when theirs agree.
pub const TAG_SPLIT_FINGERPRINT: &str = "recflow.split_fingerprint";
/// Set on a parent continued by `--resume`: when.
pub const TAG_RESUMED: &str = "recflow.resumed";

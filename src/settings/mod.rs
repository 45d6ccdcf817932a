//! Settings, resolved once per command: command line > experiment spec > environment > `.env` >
//! built-in defaults ([`defaults`]). One `resolve_*` function per command turns its clap
//! arguments (and spec, and [`Env`]) into the settings the core takes; every default is written
//! once. `--show-settings` prints what a command resolved.
//!
//! The core never reads the environment or the command line: commands call these and pass the
//! results down.

pub mod defaults;
pub mod env;
mod experiment;

use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

pub use env::{Env, LogLevel, Source};
pub use experiment::{resolve_run, RunData, RunSettings};

use crate::cli::{DataArgs, EtlArgs, EvalArgs, ModelArgs, SplitArgs, TrainAlsArgs, TrainArgs};
use crate::data::etl::EtlSettings;
use crate::data::format::InputFormat;
use crate::data::split::{SplitParams, SplitStrategy};
use crate::data::store;
use crate::eval::keys::SelectMetric;
use crate::eval::EvalSettings;
use crate::model::artifact::ModelMetadata;
use crate::model::family::{Config, FamilyName, ParamValue};
use crate::pipeline::search::{Entry, Search};
use crate::pipeline::train::PipelineSettings;
use crate::tracking::{TrackingSettings, TrackingUri};

/// A setting that cannot be resolved.
#[derive(Debug, Error)]
pub enum SettingsError {
    #[error(transparent)]
    Env(#[from] env::EnvError),
    #[error("{message}")]
    Invalid {
        message: String,
        hint: Option<String>,
    },
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Tracking(#[from] crate::tracking::TrackingError),
}

impl SettingsError {
    pub fn hint(&self) -> Option<String> {
        match self {
            SettingsError::Invalid { hint, .. } => hint.clone(),
            SettingsError::Spec(e) => e.hint(),
            _ => None,
        }
    }
}

pub(crate) fn invalid(message: impl Into<String>, hint: Option<&str>) -> SettingsError {
    SettingsError::Invalid {
        message: message.into(),
        hint: hint.map(str::to_string),
    }
}

// ---------------------------------------------------------------------------------------------
// ETL and download

/// `recflow etl`'s settings.
#[derive(Debug, Clone, Serialize)]
pub struct EtlCommand {
    pub etl: EtlSettings,
    /// Where a missing input may be downloaded from (only `etl` of RAW_REVIEWS_PATH, or
    /// `--download`).
    pub download_url: Option<String>,
}

/// The ETL's input, format and k-core threshold from the command line and the environment.
fn etl_settings(
    input: Option<PathBuf>,
    format: Option<InputFormat>,
    min_interactions: Option<usize>,
    env: &Env,
    output: PathBuf,
) -> Result<EtlSettings, SettingsError> {
    let input = input.unwrap_or_else(|| env.raw_reviews_path.value.clone());
    let format = match format {
        Some(f) => f,
        None => InputFormat::from_path(&input).map_err(|e| SettingsError::Invalid {
            message: e.to_string(),
            hint: Some("name the format with `--format json|csv|tsv|parquet`".into()),
        })?,
    };
    let min_interactions = match min_interactions {
        Some(n) => n,
        None => env.min_interactions.clone()?.value,
    };
    Ok(EtlSettings {
        input,
        input_label: None,
        format,
        columns: Default::default(),
        has_header: None,
        min_interactions,
        rating_range: None,
        strict: false,
        max_line_bytes: crate::data::read::DEFAULT_MAX_LINE_BYTES,
        items_meta: None,
        output,
    })
}

pub fn resolve_etl(a: &EtlArgs, env: &Env) -> Result<EtlCommand, SettingsError> {
    let mut etl = etl_settings(
        a.input.clone(),
        a.format,
        a.min_interactions,
        env,
        a.output.clone(),
    )?;
    etl.columns = a.columns.clone().unwrap_or_default();
    etl.has_header = a.has_header();
    etl.rating_range = a.rating_range;
    etl.strict = a.strict;
    if let Some(n) = a.max_line_bytes {
        etl.max_line_bytes = usize::try_from(n).unwrap_or(usize::MAX);
    }
    etl.items_meta = a.items_meta.clone();
    let may_download = a.input.is_none() || a.download;
    Ok(EtlCommand {
        etl,
        download_url: may_download.then(|| env.raw_reviews_url.value.clone()),
    })
}

/// `recflow download`'s settings.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadCommand {
    pub url: String,
    pub out: PathBuf,
}

pub fn resolve_download(a: &crate::cli::DownloadArgs, env: &Env) -> DownloadCommand {
    DownloadCommand {
        url: a
            .url
            .clone()
            .unwrap_or_else(|| env.raw_reviews_url.value.clone()),
        out: a
            .out
            .clone()
            .unwrap_or_else(|| env.raw_reviews_path.value.clone()),
    }
}

// ---------------------------------------------------------------------------------------------
// Processed data

/// Where a command's processed data comes from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSource {
    /// A folder with the ETL outputs.
    Processed { dir: PathBuf },
    /// The default folder is empty: run the ETL of RAW_REVIEWS_PATH into it first (the input
    /// exists; nothing is downloaded).
    EtlFirst { etl: Box<EtlSettings> },
}

impl DataSource {
    pub fn dir(&self) -> &Path {
        match self {
            DataSource::Processed { dir } => dir,
            DataSource::EtlFirst { etl } => &etl.output,
        }
    }
}

fn has_outputs(dir: &Path) -> bool {
    dir.join(store::INTERACTIONS).exists()
}

/// The data of a training command: `--data`, else `data/processed` when it has outputs, else the
/// ETL of RAW_REVIEWS_PATH when that file exists.
fn training_data(a: &DataArgs, env: &Env) -> Result<DataSource, SettingsError> {
    if let Some(dir) = &a.data {
        return Ok(DataSource::Processed { dir: dir.clone() });
    }
    let dir = PathBuf::from(defaults::PROCESSED);
    if has_outputs(&dir) {
        return Ok(DataSource::Processed { dir });
    }
    let etl = etl_settings(None, None, None, env, dir.clone())?;
    if etl.input.exists() {
        return Ok(DataSource::EtlFirst { etl: Box::new(etl) });
    }
    Err(invalid(
        format!(
            "no processed data in `{}` and no input file `{}` to make it from",
            dir.display(),
            etl.input.display()
        ),
        Some("run `recflow etl --input FILE` (or `recflow download`, then `recflow etl`), or point `--data` at a folder with ETL outputs"),
    ))
}

/// The data a saved model was trained on: `--data`, else the folder its metadata records.
pub fn model_data(a: &DataArgs, meta: &ModelMetadata) -> Result<PathBuf, SettingsError> {
    if let Some(dir) = &a.data {
        return Ok(dir.clone());
    }
    let recorded = PathBuf::from(&meta.data.path);
    if !meta.data.path.is_empty() && has_outputs(&recorded) {
        return Ok(recorded);
    }
    let default = PathBuf::from(defaults::PROCESSED);
    if has_outputs(&default) {
        return Ok(default);
    }
    Err(invalid(
        format!(
            "the model's data folder `{}` has no ETL outputs",
            if meta.data.path.is_empty() {
                defaults::PROCESSED
            } else {
                &meta.data.path
            }
        ),
        Some("point `--data` at the processed folder the model was trained on"),
    ))
}

// ---------------------------------------------------------------------------------------------
// Training

/// `train-als` and `train`: the data, the pipeline, where the model goes.
#[derive(Debug, Clone, Serialize)]
pub struct TrainCommand {
    pub data: DataSource,
    pub pipeline: PipelineSettings,
    pub test_file: Option<PathBuf>,
    pub model_dir: PathBuf,
    /// Where the run is logged, when `--tracking-uri` or `--experiment` asks for it.
    pub tracking: Option<TrainTracking>,
    /// `recflow train` with tracking logs the run tree of `recflow run` (parent, a child per
    /// configuration, the final child): these are its settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<Box<RunSettings>>,
}

/// Where a `train` or `train-als` logs (`train` a run tree, `train-als` one run).
#[derive(Debug, Clone, Serialize)]
pub struct TrainTracking {
    pub target: TrackingTarget,
    pub experiment: String,
    /// `train` or `train-als`, the run's source name.
    pub command: String,
    pub user: Option<String>,
}

fn train_tracking(a: &crate::cli::TrainLogArgs, command: &str, env: &Env) -> Option<TrainTracking> {
    (a.tracking_uri.is_some() || a.experiment.is_some()).then(|| TrainTracking {
        target: tracking_target(a.tracking_uri.as_deref(), None, env),
        experiment: a
            .experiment
            .clone()
            .unwrap_or_else(|| defaults::TRAIN_EXPERIMENT.into()),
        command: command.into(),
        user: env.user.clone(),
    })
}

fn split_params(a: &SplitArgs) -> SplitParams {
    SplitParams {
        strategy: SplitStrategy::of(
            a.split.unwrap_or(crate::data::split::SplitKind::Random),
            a.leave_n.unwrap_or(defaults::LEAVE_N),
        ),
        test_fraction: a.test_fraction.unwrap_or(defaults::TEST_FRACTION),
        seed: a.seed.unwrap_or(defaults::SEED),
    }
}

fn eval_settings(a: &EvalArgs, k: usize, threshold: Option<f32>) -> EvalSettings {
    EvalSettings {
        k: a.k.unwrap_or(k),
        threshold: a.relevance_threshold.or(threshold),
        ..EvalSettings::default()
    }
}

/// The ALS parameters the model flags give (the family fills the rest).
fn als_params(m: &ModelArgs) -> Config {
    let mut c = Config::new();
    if m.implicit {
        c.insert("implicit".into(), true.into());
    }
    if let Some(s) = m.solver {
        c.insert("solver".into(), s.to_string().as_str().into());
    }
    if let Some(v) = m.burn_in {
        c.insert("burn_in".into(), v.into());
    }
    if let Some(v) = m.samples {
        c.insert("samples".into(), v.into());
    }
    if m.rated_sets {
        c.insert("rated_sets".into(), true.into());
    }
    if let Some(v) = m.cg_steps {
        c.insert("cg_steps".into(), v.into());
    }
    if let Some(b) = m.biases() {
        c.insert("biases".into(), b.into());
    }
    if let Some(r) = m.reg_scaling {
        c.insert("reg_scaling".into(), r.to_string().as_str().into());
    }
    if let Some(v) = m.reg_bias {
        c.insert("reg_bias".into(), ParamValue::Float(v));
    }
    if let Some(v) = m.confidence {
        c.insert("confidence".into(), v.to_string().as_str().into());
    }
    if let Some(v) = m.weighting {
        c.insert("weighting".into(), v.to_string().as_str().into());
    }
    for (key, v) in [
        ("epsilon", m.epsilon),
        ("bm25_k1", m.bm25_k1),
        ("bm25_b", m.bm25_b),
    ] {
        if let Some(v) = v {
            c.insert(key.into(), ParamValue::Float(v));
        }
    }
    if let Some(v) = m.maxiter {
        c.insert("max_iter".into(), v.into());
    }
    c
}

/// The default selection: RMSE for a model that predicts ratings, NDCG@K otherwise.
fn default_select(predicts_ratings: bool, k: usize) -> SelectMetric {
    SelectMetric::default_for(predicts_ratings, k)
}

/// Whether a family's models predict ratings with these parameters.
fn predicts(family: FamilyName, config: &Config) -> bool {
    match family {
        FamilyName::Als => !matches!(config.get("implicit"), Some(ParamValue::Bool(true))),
        FamilyName::GlobalMean | FamilyName::Biases => true,
        _ => false,
    }
}

fn parse_select(
    name: Option<&str>,
    predicts: bool,
    k: usize,
) -> Result<SelectMetric, SettingsError> {
    match name {
        Some(n) => SelectMetric::parse(n, &[k]).map_err(|e| SettingsError::Invalid {
            message: format!("`--select`: {e}"),
            hint: e.hint(),
        }),
        None => Ok(default_select(predicts, k)),
    }
}

/// The command names runs are logged under.
const TRAIN_ALS: &str = "train-als";
const TRAIN: &str = "train";

pub fn resolve_train_als(a: &TrainAlsArgs, env: &Env) -> Result<TrainCommand, SettingsError> {
    let mut fixed = als_params(&a.model);
    if let Some(r) = a.rank {
        fixed.insert("rank".into(), r.into());
    }
    if let Some(r) = a.reg {
        fixed.insert("reg".into(), r.into());
    }
    if let Some(al) = a.alpha {
        fixed.insert("alpha".into(), al.into());
    }
    let eval = eval_settings(&a.model.eval, defaults::K, None);
    let entry = Entry {
        name: "als".into(),
        family: FamilyName::Als,
        fixed: fixed.clone(),
        search: Search::default(),
        repeats: 1,
        early_stopping: None,
    };
    let pipeline = pipeline_settings(
        &a.split,
        &a.model,
        a.validation_fraction
            .unwrap_or(defaults::VALIDATION_FRACTION_SINGLE),
        vec![entry],
        eval,
        default_select(predicts(FamilyName::Als, &fixed), eval.k),
        None,
    );
    // Every rule is checked before any work (the ETL included).
    crate::pipeline::train::check(&pipeline).map_err(|e| SettingsError::Invalid {
        message: e.to_string(),
        hint: e.hint(),
    })?;
    Ok(TrainCommand {
        data: training_data(&a.data, env)?,
        pipeline,
        test_file: a.split.test_file.clone(),
        model_dir: a.model.model_dir.clone(),
        tracking: train_tracking(&a.log, TRAIN_ALS, env),
        tree: None,
    })
}

fn pipeline_settings(
    split: &SplitArgs,
    model: &ModelArgs,
    validation_fraction: f64,
    entries: Vec<Entry>,
    eval: EvalSettings,
    select: SelectMetric,
    max_runs: Option<usize>,
) -> PipelineSettings {
    PipelineSettings {
        sample_fraction: split.sample_fraction.unwrap_or(defaults::SAMPLE_FRACTION),
        sample_seed: split.sample_seed.unwrap_or(defaults::SEED),
        split: split_params(split),
        validation_fraction,
        entries,
        eval,
        select,
        curves: !model.no_curves,
        seed: split.seed.unwrap_or(defaults::SEED),
        threads: model.threads,
        max_runs: max_runs.unwrap_or(defaults::MAX_RUNS),
        test_file: split.test_file.as_ref().map(|p| p.display().to_string()),
        per_user_trials: false,
        done: Vec::new(),
    }
}

/// `NAME=VALUE` of `--param` / `--grid`.
fn name_value(flag: &str, s: &str) -> Result<(String, String), SettingsError> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| {
            invalid(
                format!("`{flag} {s}`: expected NAME=VALUE"),
                Some("for example `--param lambda=500` or `--grid lambda=100,500`"),
            )
        })
}

/// The default search of an ALS entry: rank x reg (x reg_bias for explicit models with biases),
/// with alpha for implicit feedback and without reg for the Gibbs sampler (it learns its priors).
/// `given` holds the axes the user searched: reg_bias joins only the default reg search, so a
/// user's own reg list keeps the biases following reg unless reg_bias is set too.
pub fn default_als_grid(
    fixed: &Config,
    given: &std::collections::BTreeMap<String, Vec<ParamValue>>,
) -> std::collections::BTreeMap<String, Vec<ParamValue>> {
    let mut axes = std::collections::BTreeMap::new();
    let gibbs = matches!(fixed.get("solver"), Some(ParamValue::Str(s)) if s == "gibbs");
    let implicit = matches!(fixed.get("implicit"), Some(ParamValue::Bool(true)));
    let biases = match fixed.get("biases") {
        Some(ParamValue::Bool(b)) => *b,
        _ => !implicit,
    };
    let ints = |v: &[usize]| v.iter().map(|&x| ParamValue::from(x)).collect::<Vec<_>>();
    let floats = |v: &[f64]| v.iter().map(|&x| ParamValue::Float(x)).collect::<Vec<_>>();
    let (ranks, regs) = if implicit {
        (defaults::GRID_RANKS_IMPLICIT, defaults::GRID_REGS_IMPLICIT)
    } else {
        (defaults::GRID_RANKS, defaults::GRID_REGS)
    };
    if !fixed.contains_key("rank") {
        axes.insert("rank".into(), ints(ranks));
    }
    if !gibbs && !fixed.contains_key("reg") {
        axes.insert("reg".into(), floats(regs));
    }
    if !gibbs
        && !implicit
        && biases
        && !fixed.contains_key("reg_bias")
        && !fixed.contains_key("reg")
        && !given.contains_key("reg")
    {
        axes.insert("reg_bias".into(), floats(defaults::GRID_REG_BIAS));
    }
    if implicit && !fixed.contains_key("alpha") {
        axes.insert("alpha".into(), floats(defaults::GRID_ALPHAS_IMPLICIT));
    }
    axes
}

pub fn resolve_train(a: &TrainArgs, env: &Env) -> Result<TrainCommand, SettingsError> {
    let mut fixed = if a.family == FamilyName::Als {
        als_params(&a.model)
    } else {
        Config::new()
    };
    for p in &a.params {
        let (k, v) = name_value("--param", p)?;
        fixed.insert(k, ParamValue::parse(&v));
    }
    let mut axes = std::collections::BTreeMap::new();
    for g in &a.grid {
        let (k, v) = name_value("--grid", g)?;
        axes.insert(k, v.split(',').map(ParamValue::parse).collect::<Vec<_>>());
    }
    if a.family == FamilyName::Als {
        let lists: [(&str, Vec<ParamValue>); 3] = [
            ("rank", a.rank.iter().map(|&r| r.into()).collect()),
            ("reg", a.reg.iter().map(|&r| ParamValue::Float(r)).collect()),
            (
                "alpha",
                a.alpha.iter().map(|&r| ParamValue::Float(r)).collect(),
            ),
        ];
        for (k, v) in lists {
            if !v.is_empty() {
                axes.insert(k.to_string(), v);
            }
        }
        for (k, v) in default_als_grid(&fixed, &axes) {
            if !fixed.contains_key(&k) {
                axes.entry(k).or_insert(v);
            }
        }
    }
    let eval = eval_settings(&a.model.eval, defaults::K, None);
    let select = parse_select(a.select.as_deref(), predicts(a.family, &fixed), eval.k)?;
    let entry = Entry {
        name: a.family.to_string(),
        family: a.family,
        fixed,
        search: Search::Grid { axes },
        repeats: 1,
        early_stopping: None,
    };
    let pipeline = pipeline_settings(
        &a.split,
        &a.model,
        a.validation_fraction
            .unwrap_or(defaults::VALIDATION_FRACTION),
        vec![entry],
        eval,
        select,
        a.max_runs,
    );
    crate::pipeline::train::check(&pipeline).map_err(|e| SettingsError::Invalid {
        message: e.to_string(),
        hint: e.hint(),
    })?;
    let data = training_data(&a.data, env)?;
    let tracking = train_tracking(&a.log, TRAIN, env);
    let tree = tracking.as_ref().map(|t| {
        let test_file = a.split.test_file.as_ref().map(|p| p.display().to_string());
        let mut params = vec![("data.dir".to_string(), data.dir().display().to_string())];
        params.extend(experiment::pipeline_params(
            &pipeline,
            test_file.as_deref(),
            env,
        ));
        Box::new(RunSettings {
            experiment: crate::pipeline::experiment::ExperimentSettings {
                name: t.experiment.clone(),
                description: None,
                tags: Default::default(),
                spec_path: None,
                resolved_spec: String::new(),
                pipeline: pipeline.clone(),
                test_file: a.split.test_file.clone(),
                model_dir: a.model.model_dir.clone(),
                params,
                user: t.user.clone(),
                git: crate::pipeline::experiment::git_info(),
                metrics_dir: PathBuf::from(defaults::METRICS_DIR),
                resume: false,
                system_metrics: true,
                log_all_models: false,
            },
            data: RunData::Processed { data: data.clone() },
            tracking: t.target.clone(),
            register: None,
            force: false,
        })
    });
    Ok(TrainCommand {
        data,
        pipeline,
        test_file: a.split.test_file.clone(),
        model_dir: a.model.model_dir.clone(),
        tracking,
        tree,
    })
}

// ---------------------------------------------------------------------------------------------
// Evaluation of a saved model

/// `recflow eval`: the model, its data, the split (the model's unless overridden).
#[derive(Debug, Clone, Serialize)]
pub struct EvalCommand {
    pub model_dir: PathBuf,
    pub data_dir: PathBuf,
    pub sample_fraction: f64,
    pub sample_seed: u64,
    pub split: SplitParams,
    pub test_file: Option<PathBuf>,
    #[serde(skip)]
    pub eval: EvalSettings,
    pub k: usize,
    pub relevance_threshold: Option<f32>,
    pub save_split: Option<PathBuf>,
    pub per_user: Option<PathBuf>,
}

pub fn resolve_eval(
    a: &crate::cli::EvalCmdArgs,
    meta: &ModelMetadata,
) -> Result<EvalCommand, SettingsError> {
    let m = &meta.split;
    let split = SplitParams {
        strategy: match (a.split.split, a.split.leave_n) {
            (Some(kind), n) => SplitStrategy::of(kind, n.unwrap_or(defaults::LEAVE_N)),
            (None, Some(n)) if m.strategy.kind() == crate::data::split::SplitKind::LeaveLastN => {
                SplitStrategy::LeaveLastN(n)
            }
            (None, _) => m.strategy,
        },
        test_fraction: a.split.test_fraction.unwrap_or(m.test_fraction),
        seed: a.split.seed.unwrap_or(m.seed),
    };
    split.check().map_err(|e| invalid(e.to_string(), None))?;
    let eval = eval_settings(&a.eval, m.k, m.relevance_threshold);
    if eval.k == 0 {
        return Err(invalid("`-k` must be at least 1", None));
    }
    Ok(EvalCommand {
        model_dir: a.model.clone(),
        data_dir: model_data(&a.data, meta)?,
        sample_fraction: a.split.sample_fraction.unwrap_or(m.sample_fraction),
        sample_seed: a.split.sample_seed.unwrap_or(m.sample_seed),
        split,
        test_file: a
            .split
            .test_file
            .clone()
            .or_else(|| m.test_file.as_ref().map(PathBuf::from)),
        k: eval.k,
        relevance_threshold: eval.threshold,
        eval,
        save_split: a.save_split.clone(),
        per_user: a.per_user.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// Tracking

/// A tracking store and how to reach it.
#[derive(Debug, Clone, Serialize)]
pub struct TrackingTarget {
    /// As given (may hold credentials: print it through `mask_uri`).
    #[serde(serialize_with = "masked")]
    pub uri: String,
    pub source: Source,
    #[serde(skip)]
    pub connection: TrackingSettings,
}

fn masked<S: serde::Serializer>(uri: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::tracking::mask_uri(uri))
}

impl TrackingTarget {
    pub fn is_server(&self) -> bool {
        matches!(TrackingUri::parse(&self.uri), Ok(TrackingUri::Http(_)))
    }
}

/// Credentials and TLS options from the environment (secrets stay in memory only).
pub fn tracking_connection(env: &Env) -> TrackingSettings {
    TrackingSettings {
        username: env.tracking_username.clone(),
        password: env
            .tracking_password
            .as_ref()
            .map(|s| s.expose().to_string()),
        token: env.tracking_token.as_ref().map(|s| s.expose().to_string()),
        insecure_tls: env.tracking_insecure_tls,
        ca_bundle: env.tracking_cert_path.clone(),
        ..TrackingSettings::default()
    }
}

/// The tracking URI: command line > spec > environment > `.env` > default.
pub fn tracking_target(cli: Option<&str>, spec: Option<&str>, env: &Env) -> TrackingTarget {
    let (uri, source) = env::pick([
        (cli.map(str::to_string), Source::Cli),
        (spec.map(str::to_string), Source::Spec),
        (
            Some(env.tracking_uri.value.clone()),
            env.tracking_uri.source,
        ),
    ])
    .unwrap_or_else(|| (defaults::TRACKING_URI.to_string(), Source::Default));
    TrackingTarget {
        uri,
        source,
        connection: tracking_connection(env),
    }
}

// ---------------------------------------------------------------------------------------------
// EDA

/// The folder `recflow eda` describes: `--input`, else `data/processed` when it has outputs,
/// else the data of the default model.
pub fn resolve_eda_input(input: Option<&Path>) -> Result<PathBuf, SettingsError> {
    if let Some(p) = input {
        return Ok(p.to_path_buf());
    }
    let default = PathBuf::from(defaults::PROCESSED);
    if has_outputs(&default) {
        return Ok(default);
    }
    let meta_path = Path::new(defaults::MODEL_DIR).join(crate::model::artifact::METADATA);
    if let Some(dir) = std::fs::read_to_string(meta_path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["data"]["path"].as_str().map(PathBuf::from))
        .filter(|d| has_outputs(d))
    {
        return Ok(dir);
    }
    Err(invalid(
        format!("no processed data in `{}`", defaults::PROCESSED),
        Some("point `--input` at a folder with ETL outputs (`recflow run` keeps them under data/processed/<name>-<fingerprint>/)"),
    ))
}

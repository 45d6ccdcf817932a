//! `recflow run`'s settings: the spec (with `--set` applied) resolved against the command line
//! and the environment into the experiment the pipeline runs. Every value is checked here, each
//! error located at its spec line or `--set`, before any data is read or any run is created.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::{default_als_grid, defaults, tracking_target, Env, SettingsError, TrackingTarget};
use crate::cli::RunArgs;
use crate::data::etl::{EtlSettings, RatingRange};
use crate::data::format::InputFormat;
use crate::data::split::{SplitKind, SplitParams, SplitStrategy};
use crate::eval::keys::{KeyError, SelectMetric};
use crate::eval::EvalSettings;
use crate::model::family::{Config, FamilyError, FamilyName, ParamValue};
use crate::names::Named;
use crate::pipeline::experiment::{git_info, ExperimentSettings};
use crate::pipeline::search::{EarlyStopping, Entry, Range, Search, Space};
use crate::pipeline::train::{PipelineSettings, TrainError};
use crate::spec::{Spec, SpecError, SpecSource};

/// Everything `recflow run` needs.
#[derive(Debug, Clone, Serialize)]
pub struct RunSettings {
    pub experiment: ExperimentSettings,
    #[serde(flatten)]
    pub data: RunData,
    pub tracking: TrackingTarget,
    /// Register the winner under this name in the server's Model Registry.
    pub register: Option<String>,
    /// Move the `champion` alias whatever the comparison says.
    pub force: bool,
}

/// Where an experiment's data comes from.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RunData {
    /// `recflow run`: the spec's ETL, into the processed-data cache under `processed_root`.
    Etl {
        etl: Box<EtlSettings>,
        processed_root: PathBuf,
    },
    /// `recflow train`: a processed folder (made first when the default one is empty).
    Processed { data: super::DataSource },
}

/// TOML to a parameter value; `None` for tables, arrays and datetimes.
fn param_value(v: &toml::Value) -> Option<ParamValue> {
    match v {
        toml::Value::Boolean(b) => Some(ParamValue::Bool(*b)),
        toml::Value::Integer(i) => Some(ParamValue::Int(*i)),
        toml::Value::Float(f) => Some(ParamValue::Float(*f)),
        toml::Value::String(s) => Some(ParamValue::Str(s.clone())),
        _ => None,
    }
}

/// The keys of a `[[models]]` entry that are not family parameters.
const ENTRY_KEYS: &[&str] = &[
    "name",
    "family",
    "grid",
    "search",
    "repeats",
    "early_stopping",
];

/// A `[[models]]` entry, checked.
fn entry(src: &SpecSource, pos: usize, t: &toml::Table, ks: &[usize]) -> Result<Entry, SpecError> {
    let p = pos.to_string();
    let at = |key: &str| -> Vec<String> { vec!["models".into(), p.clone(), key.into()] };
    let err = |key: &str, message: String, hint: Option<String>| {
        let path = at(key);
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        src.error(&refs, message, hint)
    };
    let name = match t.get("name") {
        Some(toml::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(_) => {
            return Err(err(
                "name",
                "an entry's `name` must be a non-empty string".into(),
                None,
            ))
        }
        None => {
            return Err(src.error(
                &["models", &p],
                format!("model entry {} has no `name`", pos + 1),
                Some("every `[[models]]` entry needs a unique `name` (used in run names)".into()),
            ))
        }
    };
    let family = match t.get("family") {
        Some(toml::Value::String(s)) => {
            FamilyName::from_name(s).map_err(|e| err("family", e.to_string(), e.hint()))?
        }
        Some(_) => return Err(err("family", "`family` must be a string".into(), None)),
        None => {
            return Err(err(
                "name",
                format!("entry `{name}` has no `family`"),
                Some(format!("one of {}", FamilyName::names().join(", "))),
            ))
        }
    };
    let mut fixed = Config::new();
    for (k, v) in t {
        if ENTRY_KEYS.contains(&k.as_str()) {
            continue;
        }
        let v = param_value(v).ok_or_else(|| {
            err(
                k,
                format!("`{k}` must be a single value (a number, string or boolean)"),
                Some("list values to search under `[models.grid]`".into()),
            )
        })?;
        fixed.insert(k.clone(), v);
    }
    let repeats = match t.get("repeats") {
        None => 1,
        Some(toml::Value::Integer(n)) if *n >= 1 => *n as usize,
        Some(_) => {
            return Err(err(
                "repeats",
                "`repeats` must be a whole number of at least 1".into(),
                None,
            ))
        }
    };
    let early_stopping = match t.get("early_stopping") {
        None => None,
        Some(toml::Value::Table(es)) => {
            for k in es.keys() {
                if k != "metric" && k != "patience" {
                    return Err(err(
                        "early_stopping",
                        format!("unknown key `{k}` in `early_stopping`"),
                        Some("it takes `metric` and `patience`".into()),
                    ));
                }
            }
            let metric = es.get("metric").and_then(|m| m.as_str()).ok_or_else(|| {
                err(
                    "early_stopping",
                    "`early_stopping` needs a `metric`".into(),
                    None,
                )
            })?;
            let metric = SelectMetric::parse(metric, ks).map_err(|e| {
                err(
                    "early_stopping",
                    format!("`early_stopping.metric`: {e}"),
                    e.hint(),
                )
            })?;
            let patience = match es.get("patience") {
                None => 3,
                Some(toml::Value::Integer(n)) if *n >= 1 => *n as usize,
                Some(_) => {
                    return Err(err(
                        "early_stopping",
                        "`early_stopping.patience` must be at least 1".into(),
                        None,
                    ))
                }
            };
            Some(EarlyStopping { metric, patience })
        }
        Some(_) => {
            return Err(err(
                "early_stopping",
                "`early_stopping` must be a table: `{ metric = \"rmse\", patience = 3 }`".into(),
                None,
            ))
        }
    };
    if t.contains_key("grid") && t.contains_key("search") {
        return Err(err(
            "search",
            format!("entry `{name}` has both `grid` and `search`; choose one"),
            None,
        ));
    }
    let search = if let Some(g) = t.get("grid") {
        let g = g
            .as_table()
            .ok_or_else(|| err("grid", "`grid` must be a table of lists".into(), None))?;
        let mut axes = BTreeMap::new();
        for (k, v) in g {
            let list = v
                .as_array()
                .ok_or_else(|| err("grid", format!("`grid.{k}` must be a list of values"), None))?;
            let values: Vec<ParamValue> = list
                .iter()
                .map(|x| {
                    param_value(x).ok_or_else(|| {
                        err(
                            "grid",
                            format!(
                                "`grid.{k}` holds a value that is not a number, string or boolean"
                            ),
                            None,
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            if values.is_empty() {
                return Err(err("grid", format!("`grid.{k}` is empty"), None));
            }
            axes.insert(k.clone(), values);
        }
        Search::Grid { axes }
    } else if let Some(s) = t.get("search") {
        let s = s
            .as_table()
            .ok_or_else(|| err("search", "`search` must be a table".into(), None))?;
        let trials = match s.get("trials") {
            Some(toml::Value::Integer(n)) if *n >= 1 => *n as usize,
            _ => {
                return Err(err(
                    "search",
                    "`search.trials` must be a whole number of at least 1".into(),
                    None,
                ))
            }
        };
        let seed = match s.get("seed") {
            None => defaults::SEED,
            Some(toml::Value::Integer(n)) if *n >= 0 => *n as u64,
            Some(_) => {
                return Err(err(
                    "search",
                    "`search.seed` must be a whole number".into(),
                    None,
                ))
            }
        };
        let mut space = BTreeMap::new();
        for (k, v) in s {
            if k == "trials" || k == "seed" {
                continue;
            }
            let sp = match v {
                toml::Value::Array(list) => Space::List(
                    list.iter()
                        .map(|x| {
                            param_value(x).ok_or_else(|| {
                                err("search", format!("`search.{k}` holds a value that is not a number, string or boolean"), None)
                            })
                        })
                        .collect::<Result<_, _>>()?,
                ),
                toml::Value::Table(r) => {
                    for key in r.keys() {
                        if !["min", "max", "log", "int"].contains(&key.as_str()) {
                            return Err(err(
                                "search",
                                format!("unknown key `{key}` in the range of `{k}`"),
                                Some("a range is `{ min = .., max = .., log = true, int = false }`".into()),
                            ));
                        }
                    }
                    let num = |key: &str| -> Result<f64, SpecError> {
                        match r.get(key) {
                            Some(toml::Value::Integer(i)) => Ok(*i as f64),
                            Some(toml::Value::Float(f)) => Ok(*f),
                            _ => Err(err("search", format!("the range of `{k}` needs a numeric `{key}`"), None)),
                        }
                    };
                    let flag = |key: &str| r.get(key).and_then(|b| b.as_bool()).unwrap_or(false);
                    let range = Range {
                        min: num("min")?,
                        max: num("max")?,
                        log: flag("log"),
                        int: flag("int"),
                    };
                    range
                        .check()
                        .map_err(|problem| err("search", format!("the range of `{k}` {problem}"), None))?;
                    Space::Range(range)
                }
                _ => {
                    return Err(err(
                        "search",
                        format!("`search.{k}` must be a list or a range table"),
                        None,
                    ))
                }
            };
            space.insert(k.clone(), sp);
        }
        Search::Random {
            trials,
            seed,
            space,
        }
    } else {
        Search::default()
    };
    Ok(Entry {
        name,
        family,
        fixed,
        search,
        repeats,
        early_stopping,
    })
}

/// The one-model form (`[model]` and `[grid]`) as one entry, with the default grid for axes it
/// does not give.
fn legacy_entry(spec: &Spec, src: &SpecSource) -> Result<Entry, SpecError> {
    let m = spec.model.clone().unwrap_or_default();
    let family = m.kind.unwrap_or(FamilyName::Als);
    if family != FamilyName::Als {
        return Err(src.error(
            &["model", "kind"],
            format!("`[model]` describes ALS only; write a `[[models]]` entry with `family = \"{family}\"`"),
            None,
        ));
    }
    let implicit = m.implicit.unwrap_or(false);
    let mut fixed = Config::new();
    let mut put = |k: &str, v: Option<ParamValue>| {
        if let Some(v) = v {
            fixed.insert(k.into(), v);
        }
    };
    put("implicit", m.implicit.map(ParamValue::Bool));
    put("solver", m.solver.map(|s| ParamValue::Str(s.to_string())));
    put("cg_steps", m.cg_steps.map(ParamValue::from));
    put("max_iter", m.max_iter.map(ParamValue::from));
    put("burn_in", m.burn_in.map(ParamValue::from));
    put("samples", m.samples.map(ParamValue::from));
    put("rated_sets", m.rated_sets.map(ParamValue::Bool));
    put("biases", m.biases.map(ParamValue::Bool));
    put(
        "reg_scaling",
        m.reg_scaling.map(|s| ParamValue::Str(s.to_string())),
    );
    put("seed", m.seed.map(|s| ParamValue::Int(s as i64)));
    let g = spec.grid.clone().unwrap_or_default();
    let mut axes = BTreeMap::new();
    if let Some(r) = g.rank {
        axes.insert(
            "rank".to_string(),
            r.into_iter().map(ParamValue::Int).collect(),
        );
    }
    if let Some(r) = g.reg {
        axes.insert(
            "reg".to_string(),
            r.into_iter().map(ParamValue::Float).collect(),
        );
    }
    match (g.alpha, m.alpha) {
        (Some(a), _) if implicit => {
            axes.insert(
                "alpha".to_string(),
                a.into_iter().map(ParamValue::Float).collect(),
            );
        }
        (None, Some(a)) if implicit => {
            fixed.insert("alpha".into(), ParamValue::Float(a));
        }
        (Some(_), _) => {
            return Err(src.error(
                &["grid", "alpha"],
                "`grid.alpha` is used by implicit models only (`model.implicit = true`)",
                None,
            ))
        }
        _ => {}
    }
    for (k, v) in default_als_grid(&fixed, &axes) {
        axes.entry(k).or_insert(v);
    }
    Ok(Entry {
        name: "als".into(),
        family,
        fixed,
        search: Search::Grid { axes },
        repeats: 1,
        early_stopping: None,
    })
}

/// A family's complaint about an entry, located at the parameter's key.
fn family_error(src: &SpecSource, legacy: bool, pos: usize, e: &FamilyError) -> SpecError {
    let key = match e {
        FamilyError::UnknownParam { name, .. }
        | FamilyError::BadType { name, .. }
        | FamilyError::OutOfRange { name, .. } => Some(name.clone()),
        _ => None,
    };
    let p = pos.to_string();
    let path: Vec<&str> = match (legacy, key.as_deref()) {
        (true, Some(k)) if ["rank", "reg", "alpha"].contains(&k) => vec!["grid", k],
        (true, Some(k)) => vec!["model", k],
        (true, None) => vec!["model"],
        (false, Some(k)) => vec!["models", &p, k],
        (false, None) => vec!["models", &p],
    };
    // A searched parameter lives under the entry's grid or search table.
    let loc_path: Vec<&str> =
        if !legacy && key.is_some() && crate::spec::line_of_path(&src.text, &path).is_none() {
            vec!["models", &p]
        } else {
            path
        };
    src.error(&loc_path, e.to_string(), e.hint())
}

/// Resolves `recflow run SPEC` into settings, checking everything before any work.
pub fn resolve_run(
    args: &RunArgs,
    spec: &Spec,
    src: &SpecSource,
    env: &Env,
) -> Result<RunSettings, SettingsError> {
    let d = &spec.data;
    let input = PathBuf::from(
        d.input
            .clone()
            .unwrap_or_else(|| env.raw_reviews_path.value.display().to_string()),
    );
    let format = match d.format {
        Some(f) => f,
        None => InputFormat::from_path(&input).map_err(|e| {
            src.error(
                &["data", "input"],
                e.to_string(),
                Some("set `data.format`".into()),
            )
        })?,
    };
    let min_interactions = match d.min_interactions {
        Some(n) => n,
        None => env.min_interactions.clone()?.value,
    };
    let rating_range: Option<RatingRange> = match &d.rating_range {
        Some(r) => Some(
            r.parse()
                .map_err(|e: String| src.error(&["data", "rating_range"], e, None))?,
        ),
        None => None,
    };
    let etl = EtlSettings {
        input,
        input_label: None,
        format,
        columns: d.columns.clone().unwrap_or_default(),
        has_header: d.header,
        min_interactions,
        rating_range,
        strict: false,
        max_line_bytes: d
            .max_line_bytes
            .unwrap_or(crate::data::read::DEFAULT_MAX_LINE_BYTES),
        items_meta: d.items_meta.as_ref().map(PathBuf::from),
        output: PathBuf::from(defaults::PROCESSED),
    };
    let sp = &spec.split;
    let strategy = SplitStrategy::of(
        sp.strategy.unwrap_or(SplitKind::Random),
        sp.n.unwrap_or(defaults::LEAVE_N),
    );
    let ks: Vec<usize> = spec
        .eval
        .k
        .as_ref()
        .map(crate::spec::Cutoffs::values)
        .unwrap_or_else(|| vec![defaults::K]);
    // The main cut-off: the selection metric's when it names one, else the largest listed.
    let largest = ks.iter().copied().max().unwrap_or(defaults::K);
    if let Some(metrics) = &spec.eval.metrics {
        for m in metrics {
            SelectMetric::parse(m, &ks).map_err(|e| {
                src.error(
                    &["eval", "metrics"],
                    format!("`eval.metrics`: {e}"),
                    e.hint(),
                )
            })?;
        }
    }
    let legacy = spec.models.is_empty();
    let mut entries = if legacy {
        vec![legacy_entry(spec, src)?]
    } else {
        spec.models
            .iter()
            .enumerate()
            .map(|(i, t)| entry(src, i, t, &ks))
            .collect::<Result<Vec<_>, _>>()?
    };
    for (i, e) in entries.iter().enumerate() {
        if let Some(j) = entries[..i].iter().position(|o| o.name == e.name) {
            return Err(src
                .error(
                    &["models", &i.to_string(), "name"],
                    format!(
                        "entry name `{}` is used twice (entries {} and {})",
                        e.name,
                        j + 1,
                        i + 1
                    ),
                    Some("names must be unique: they name the runs".into()),
                )
                .into());
        }
    }
    let any_rating = entries
        .iter()
        .any(|e| super::predicts(e.family, &e.fixed) && !e.family.is_baseline());
    let select = match &spec.eval.select {
        Some(name) => SelectMetric::parse(name, &ks).map_err(|e| {
            let hint = match &e {
                KeyError::Unknown { hint, .. } => Some(hint.clone()),
                _ => None,
            };
            src.error(&["eval", "select"], format!("`eval.select`: {e}"), hint)
        })?,
        None => SelectMetric::default_for(
            any_rating,
            if ks.contains(&defaults::K) {
                defaults::K
            } else {
                largest
            },
        ),
    };
    let k = select.k.unwrap_or(largest);
    // Baselines every experiment is compared with, unless the spec lists its own.
    let baselines: Vec<FamilyName> = match &spec.eval.baselines {
        Some(b) => b.clone(),
        None => {
            let mut b = vec![FamilyName::Popularity];
            if any_rating || select.is_rating() {
                b.push(FamilyName::Biases);
            }
            b
        }
    };
    for b in baselines {
        if !b.is_baseline() {
            return Err(src
                .error(
                    &["eval", "baselines"],
                    format!("`{b}` is not a baseline family"),
                    Some("baselines are global_mean, biases, popularity and random; list other families as `[[models]]` entries".into()),
                )
                .into());
        }
        if !entries.iter().any(|e| e.family == b) {
            entries.push(Entry {
                name: b.to_string(),
                family: b,
                fixed: Config::new(),
                search: Search::default(),
                repeats: 1,
                early_stopping: None,
            });
        }
    }
    let threads = spec.model.as_ref().and_then(|m| m.threads);
    let seed = sp.seed.unwrap_or(defaults::SEED);
    let pipeline = PipelineSettings {
        sample_fraction: d.sample_fraction.unwrap_or(defaults::SAMPLE_FRACTION),
        sample_seed: d.seed.unwrap_or(defaults::SEED),
        split: SplitParams {
            strategy,
            test_fraction: sp.test_fraction.unwrap_or(defaults::TEST_FRACTION),
            seed,
        },
        validation_fraction: sp
            .validation_fraction
            .unwrap_or(defaults::VALIDATION_FRACTION),
        entries,
        eval: EvalSettings {
            k,
            // Checked against the limit in the spec's own checks.
            more_k: crate::eval::MoreK::new(&ks, k).unwrap_or_default(),
            threshold: spec.eval.relevance_threshold.map(|t| t as f32),
            ..EvalSettings::default()
        },
        select,
        curves: true,
        seed,
        threads,
        max_runs: args
            .max_runs
            .or(spec.experiment.max_runs)
            .unwrap_or(defaults::MAX_RUNS),
        test_file: sp.test_file.clone(),
        per_user_trials: spec.eval.per_user == Some(crate::spec::PerUserScope::All),
        done: Vec::new(),
    };
    // Every family rule, search and limit, before any work.
    crate::pipeline::train::check(&pipeline).map_err(|e| check_error(src, legacy, &pipeline, e))?;
    let tracking = tracking_target(
        args.tracking_uri.as_deref(),
        spec.experiment.tracking_uri.as_deref(),
        env,
    );
    crate::tracking::TrackingUri::parse(&tracking.uri)?;
    if args.register.is_some() && !tracking.is_server() {
        return Err(super::invalid(
            "`--register` needs an MLflow server (`--tracking-uri http://...`); the file store has no Model Registry",
            None,
        ));
    }
    if let Some(name) = &args.register {
        crate::tracking::validate_registered_name(name)
            .map_err(|m| super::invalid(format!("`--register {name}`: {m}"), None))?;
    }
    let model_dir = PathBuf::from(
        spec.output
            .model_dir
            .clone()
            .unwrap_or_else(|| defaults::MODEL_DIR.into()),
    );
    let params = parent_params(spec, &etl, &pipeline, env);
    let resolved_spec = toml::to_string_pretty(spec).unwrap_or_else(|_| src.text.clone());
    let experiment = ExperimentSettings {
        name: spec.experiment.name.clone(),
        description: spec.experiment.description.clone(),
        tags: spec.experiment.tags.clone(),
        spec_path: Some(args.spec.clone()),
        resolved_spec,
        test_file: sp.test_file.as_ref().map(PathBuf::from),
        pipeline,
        model_dir,
        params,
        user: env.user.clone(),
        git: git_info(),
        metrics_dir: PathBuf::from(defaults::METRICS_DIR),
        resume: args.resume,
        system_metrics: !args.no_system_metrics,
        log_all_models: args.log_models == crate::cli::LogModels::All,
    };
    Ok(RunSettings {
        experiment,
        data: RunData::Etl {
            etl: Box::new(etl),
            processed_root: PathBuf::from(defaults::PROCESSED_ROOT),
        },
        tracking,
        register: args.register.clone(),
        force: args.force,
    })
}

/// A pipeline check's error located in the spec where it can be.
fn check_error(
    src: &SpecSource,
    legacy: bool,
    p: &PipelineSettings,
    e: TrainError,
) -> SettingsError {
    let pos_of = |name: &str| p.entries.iter().position(|e| e.name == name).unwrap_or(0);
    match &e {
        TrainError::Search(crate::pipeline::search::SearchError::Family {
            entry, source, ..
        }) => family_error(src, legacy, pos_of(entry), source).into(),
        TrainError::Search(crate::pipeline::search::SearchError::TooManyRuns { .. }) => {
            SettingsError::Invalid {
                message: e.to_string(),
                hint: e.hint(),
            }
        }
        TrainError::EarlyStoppingWithoutValidation { entry }
        | TrainError::EarlyStoppingMetric { entry, .. }
        | TrainError::EarlyStoppingNotIterative { entry, .. }
        | TrainError::MixedCapabilities { entry } => {
            let pos = pos_of(entry).to_string();
            src.error(&["models", &pos], e.to_string(), None).into()
        }
        TrainError::NoEntryReports { .. } => src
            .error(&["eval", "select"], e.to_string(), e.hint())
            .into(),
        _ => src.error(&["split"], e.to_string(), e.hint()).into(),
    }
}

/// Every resolved setting, flat, for the parent run's params.
fn parent_params(
    spec: &Spec,
    etl: &EtlSettings,
    p: &PipelineSettings,
    env: &Env,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| out.push((k.to_string(), v));
    put("data.input", etl.input.display().to_string());
    put("data.format", etl.format.to_string());
    put("data.min_interactions", etl.min_interactions.to_string());
    if let Some(meta) = &etl.items_meta {
        put("data.items_meta", meta.display().to_string());
    }
    put(
        "data.rating_range",
        etl.rating_range
            .map_or_else(|| "inferred".to_string(), |r| r.to_string()),
    );
    put(
        "data.sample_fraction",
        ParamValue::Float(p.sample_fraction).to_string(),
    );
    put("data.sample_seed", p.sample_seed.to_string());
    out.extend(pipeline_params(p, spec.split.test_file.as_deref(), env));
    out
}

/// The parent run's params of the split, evaluation and entries, shared by `recflow run` and
/// `recflow train`.
pub(crate) fn pipeline_params(
    p: &PipelineSettings,
    test_file: Option<&str>,
    env: &Env,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| out.push((k.to_string(), v));
    put("split.strategy", p.split.strategy.kind().to_string());
    if let SplitStrategy::LeaveLastN(n) = p.split.strategy {
        put("split.n", n.to_string());
    } else {
        put(
            "split.test_fraction",
            ParamValue::Float(p.split.test_fraction).to_string(),
        );
    }
    put(
        "split.validation_fraction",
        ParamValue::Float(p.validation_fraction).to_string(),
    );
    put("split.seed", p.split.seed.to_string());
    if let Some(f) = test_file {
        put("split.test_file", f.to_string());
    }
    put(
        "eval.k",
        if p.eval.more_k.is_empty() {
            p.eval.k.to_string()
        } else {
            let mut ks: Vec<usize> = p.eval.more_k.iter().chain([p.eval.k]).collect();
            ks.sort_unstable();
            format!("{ks:?}")
        },
    );
    put("eval.select", p.select.name.clone());
    put(
        "eval.relevance_threshold",
        p.eval.threshold.map_or("off".into(), |t| {
            ParamValue::Float(f64::from(t)).to_string()
        }),
    );
    put(
        "entries",
        p.entries
            .iter()
            .map(|e| format!("{} ({})", e.name, e.family))
            .collect::<Vec<_>>()
            .join(", "),
    );
    put("engine", "local".into());
    put("environment", env.environment.value.clone());
    out
}

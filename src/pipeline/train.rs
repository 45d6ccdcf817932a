//! The training pipeline shared by `train-als`, `train` and `run`: sample, split, carve a
//! validation split, fit every configuration of every model entry (repeats and early stopping
//! included), evaluate each on the validation split, select each entry's best, refit it on the
//! whole training split, report it on the test split, and pick the experiment's winner on
//! validation. Nothing is chosen on the test split.
//!
//! Takes resolved settings and reports progress through an [`Observer`]; knows nothing about the
//! command line, files or tracking.

use std::time::Instant;

use serde::Serialize;
use thiserror::Error;

use crate::data::interactions::{Csr, Interactions};
use crate::data::split::{sample, split, SplitError, SplitParams};
use crate::eval::keys::{Direction, SelectMetric, Split};
use crate::eval::stats::{Bootstrap, Interval};
use crate::eval::{evaluate_with_history, EvalError, EvalReport, EvalSettings};
use crate::model::artifact::SplitSizes;
use crate::model::family::{
    check_memory, Config, DataShape, FamilyError, FitError, FitObserver, FitPlan, Flow,
    IterationReport, ParamValue, Recommender,
};
use crate::model::FitOptions;
use crate::pipeline::observer::{Observer, Role, Step};
use crate::pipeline::search::{self, Candidate, Entry, SearchError};
use crate::pipeline::select::{best_index, Ranked};

#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error("entry `{entry}`: {source}")]
    Shape {
        entry: String,
        #[source]
        source: FamilyError,
    },
    #[error("entry `{entry}`, configuration {point}: fitting failed")]
    Fit {
        entry: String,
        point: String,
        #[source]
        source: FitError,
    },
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("the experiment has no model entries")]
    NoEntries,
    #[error("the training set is empty after sampling and splitting")]
    EmptyTraining,
    #[error("validation fraction `{0}` must be at least 0 and below 1")]
    ValidationFraction(f64),
    #[error(
        "entry `{entry}`: early stopping needs a validation split (`validation_fraction` above 0)"
    )]
    EarlyStoppingWithoutValidation { entry: String },
    #[error("entry `{entry}`: early stopping on `{metric}`, which `{family}` cannot report")]
    EarlyStoppingMetric {
        entry: String,
        metric: String,
        family: String,
    },
    #[error(
        "entry `{entry}`: early stopping needs an iterative family (`{family}` fits in one step)"
    )]
    EarlyStoppingNotIterative { entry: String, family: String },
    #[error("entry `{entry}` mixes models that predict ratings with models that do not (for example `implicit` searched); make them two entries")]
    MixedCapabilities { entry: String },
    #[error("no model entry reports the selection metric `{metric}` ({entries}); baselines alone cannot win")]
    NoEntryReports { metric: String, entries: String },
    #[error(
        "every training rating is {value}: the data is implicit feedback, so `{metric}` cannot tell models apart"
    )]
    NoRatings { metric: String, value: f32 },
    #[error("cannot start {0} worker threads")]
    Threads(usize),
    #[error("stopped by a signal")]
    Cancelled,
}

impl TrainError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Search(e) => e.hint(),
            Self::Shape { source, .. } => source.hint(),
            Self::NoEntryReports { .. } => Some(
                "choose a metric the models report: ranking metrics (ndcg_at_K, precision_at_K, ...) for implicit and item-item models, rmse or mae for rating models".into(),
            ),
            Self::NoRatings { .. } => Some(
                "select a ranking metric: `eval.select = \"ndcg_at_10\"` in the spec, or `--select ndcg_at_10`".into(),
            ),
            Self::EmptyTraining => {
                Some("raise `--sample-fraction` or lower `--test-fraction`".into())
            }
            _ => None,
        }
    }
}

/// Resolved settings of a pipeline run.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineSettings {
    pub sample_fraction: f64,
    pub sample_seed: u64,
    pub split: SplitParams,
    /// Share of the training split held out for selection; 0 selects on the test split.
    pub validation_fraction: f64,
    pub entries: Vec<Entry>,
    #[serde(skip)]
    pub eval: EvalSettings,
    /// The experiment's selection metric (split-free).
    pub select: SelectMetric,
    pub curves: bool,
    pub seed: u64,
    pub threads: Option<usize>,
    pub max_runs: usize,
    /// The file used as the test split instead of drawing one, when given.
    pub test_file: Option<String>,
    /// Whether every trial, not only final models, keeps its per-user validation figures
    /// (`eval.per_user = "all"`).
    pub per_user_trials: bool,
    /// Trials already finished (a resumed run): (entry, the configuration's parameters as
    /// logged) to their figures. They are not fitted again.
    #[serde(skip)]
    pub done: Vec<Done>,
}

impl PipelineSettings {
    /// How intervals and paired tests resample users: 1,000 draws seeded by the run's seed.
    pub fn bootstrap(&self) -> Bootstrap {
        Bootstrap {
            resamples: 1000,
            seed: self.seed,
        }
    }
}

#[cfg(test)]
impl PipelineSettings {
    /// Settings for unit tests: a seeded random split, a 10% validation split, no test file.
    pub(crate) fn for_tests(entries: Vec<Entry>, select: &str) -> Self {
        use crate::data::split::SplitStrategy;
        PipelineSettings {
            sample_fraction: 1.0,
            sample_seed: 1,
            split: SplitParams {
                strategy: SplitStrategy::Random,
                test_fraction: 0.2,
                seed: 1,
            },
            validation_fraction: 0.1,
            entries,
            eval: EvalSettings::default(),
            select: SelectMetric::parse(select, &[10]).expect("a valid selection metric"),
            curves: true,
            seed: 1,
            threads: None,
            max_runs: 10,
            test_file: None,
            per_user_trials: false,
            done: Vec::new(),
        }
    }
}

/// A trial a resumed run finished before.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub entry: String,
    pub params: std::collections::BTreeMap<String, String>,
    pub metrics: Vec<(String, f64)>,
    pub fit_seconds: f64,
}

impl PipelineSettings {
    fn fit_options(&self) -> FitOptions {
        FitOptions {
            curves: self.curves,
            seed: self.seed,
        }
    }
}

/// One configuration's fits (repeats) and their validation figures.
#[derive(Debug, Clone)]
pub struct Trial {
    pub point: Config,
    /// Every parameter the model used, as written in a spec.
    pub used: Config,
    /// Mean over repeats, under keys of the selection split (`val_rmse`).
    pub metrics: Vec<(String, f64)>,
    /// Standard deviation over repeats (`val_rmse_sd`); empty without repeats.
    pub sd: Vec<(String, f64)>,
    /// Each repeat's figures.
    pub per_repeat: Vec<Vec<(String, f64)>>,
    pub counts: Vec<(String, usize)>,
    /// The first repeat's learning curve.
    pub history: Vec<IterationRecord>,
    /// The iteration whose model was kept (early stopping), when it is not the last.
    pub best_iteration: Option<usize>,
    pub fit_seconds: f64,
    pub eval_seconds: f64,
    /// Per-user validation values of the selection metric (first repeat), kept while the trial
    /// is among the entry's two best: what the "within noise" check pairs.
    pub user_values: Option<std::sync::Arc<UserValues>>,
    /// The first repeat's whole validation evaluation, with `eval.per_user = "all"`, until the
    /// observer has logged it.
    pub report: Option<std::sync::Arc<EvalReport>>,
}

/// One evaluation's per-user values of a selection metric, users ascending.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserValues {
    /// (user, value) of a ranking metric.
    pub ranking: Vec<(u32, f64)>,
    /// (user, squared or absolute error sum, pairs) for RMSE or MAE.
    pub errors: Vec<(u32, f64, f64)>,
}

impl UserValues {
    fn of(report: &EvalReport, select: &SelectMetric) -> Self {
        let base = select.info.base;
        if select.is_rating() {
            let sq = base == "rmse";
            UserValues {
                ranking: Vec::new(),
                errors: report
                    .per_user
                    .rating
                    .iter()
                    .map(|e| {
                        (
                            e.user,
                            if sq { e.sq_err } else { e.abs_err },
                            f64::from(e.pairs),
                        )
                    })
                    .collect(),
            }
        } else {
            UserValues {
                ranking: report
                    .per_user
                    .ranking
                    .iter()
                    .filter_map(|u| u.value(base).map(|v| (u.user, v)))
                    .collect(),
                errors: Vec::new(),
            }
        }
    }
}

/// The best trial against the runner-up on validation, user by user (`best - runner-up`).
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseCheck {
    /// Index of the runner-up among the entry's trials.
    pub runner_up: usize,
    pub users: usize,
    pub diff: f64,
    /// 95% bootstrap interval of the difference over users.
    pub ci: Interval,
}

impl NoiseCheck {
    /// Whether the two are within noise: the interval contains 0.
    pub fn within_noise(&self) -> bool {
        self.ci.contains(0.0)
    }
}

/// Pairs the users two trials share and bootstraps the difference of the selection metric.
fn noise_check(
    best: &UserValues,
    other: &UserValues,
    select: &SelectMetric,
    runner_up: usize,
    boot: Bootstrap,
) -> Option<NoiseCheck> {
    if select.is_rating() {
        let a: Vec<(u32, (f64, f64))> = best.errors.iter().map(|e| (e.0, (e.1, e.2))).collect();
        let b: Vec<(u32, (f64, f64))> = other.errors.iter().map(|e| (e.0, (e.1, e.2))).collect();
        let pairs = crate::eval::stats::shared_users(&a, &b);
        // The same validation pairs for both: a user's pair count agrees.
        let num_a: Vec<f64> = pairs.iter().map(|p| p.0 .0).collect();
        let num_b: Vec<f64> = pairs.iter().map(|p| p.1 .0).collect();
        let den: Vec<f64> = pairs.iter().map(|p| p.0 .1).collect();
        let sqrt = select.info.base == "rmse";
        let f = |num: &[f64]| {
            let r = num.iter().sum::<f64>() / den.iter().sum::<f64>();
            if sqrt {
                r.sqrt()
            } else {
                r
            }
        };
        let ci = crate::eval::stats::ratio_diff_ci(&num_a, &num_b, &den, sqrt, boot)?;
        Some(NoiseCheck {
            runner_up,
            users: pairs.len(),
            diff: f(&num_a) - f(&num_b),
            ci,
        })
    } else {
        let pairs = crate::eval::stats::shared_users(&best.ranking, &other.ranking);
        if pairs.len() < 2 {
            return None;
        }
        let d: Vec<f64> = pairs.iter().map(|(x, y)| x - y).collect();
        let ci = crate::eval::stats::mean_ci(&d, boot)?;
        Some(NoiseCheck {
            runner_up,
            users: d.len(),
            diff: d.iter().sum::<f64>() / d.len() as f64,
            ci,
        })
    }
}

/// The runner-up of `ranked` after `best`, when one reports the metric.
fn runner_up(ranked: &[Ranked], best: usize, direction: Direction) -> Option<usize> {
    let mut r = ranked.to_vec();
    r[best] = Ranked::new(None, None);
    let i = best_index(&r, direction);
    (i != best && r[i].value.is_some()).then_some(i)
}

impl Trial {
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.metrics.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// One iteration of a learning curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IterationRecord {
    pub iteration: usize,
    pub train_loss: Option<f64>,
    pub seconds: f64,
    /// Validation figures of this iteration (`val_rmse`, `val_ndcg_at_10`).
    pub metrics: Vec<(String, f64)>,
}

/// An entry's result: its trials, the selected one, and the final model refit on the whole
/// training split with its test figures.
pub struct EntryOutcome {
    pub entry: usize,
    pub trials: Vec<Trial>,
    pub best: usize,
    /// What the entry's trials were ranked by.
    pub select: SelectMetric,
    /// Whether the entry reports the experiment's selection metric (unranked otherwise).
    pub ranked: bool,
    pub final_model: std::sync::Arc<dyn Recommender>,
    pub final_used: Config,
    pub test: EvalReport,
    /// 95% bootstrap intervals over test users of the per-user metrics, by split-free name.
    pub test_ci: Vec<(String, Interval)>,
    pub fit_seconds: f64,
    pub eval_seconds: f64,
    /// The selected trial's model with its factors zeroed scored the same on validation
    /// (within 0.1%): a biases-only model in disguise.
    pub collapsed: Option<(f64, f64)>,
    /// The selected trial against the runner-up on validation, user by user.
    pub noise: Option<NoiseCheck>,
}

impl EntryOutcome {
    pub fn best_trial(&self) -> &Trial {
        &self.trials[self.best]
    }
}

/// Everything a run produced.
pub struct Outcome {
    pub sizes: SplitSizes,
    /// `Val` when a validation split was carved, `Test` when selection used the test split.
    pub selected_on: Split,
    pub entries: Vec<EntryOutcome>,
    /// Index into `entries` of the best entry on the selection metric (validation), among the
    /// entries that report it.
    pub winner: Option<usize>,
    /// The data the final models were trained on (what each user already has).
    pub train: Interactions,
}

/// Checks everything that needs no data: searches, families' rules, the split, limits.
pub fn check(settings: &PipelineSettings) -> Result<Vec<Candidate>, TrainError> {
    if settings.entries.is_empty() {
        return Err(TrainError::NoEntries);
    }
    settings.split.check()?;
    let f = settings.sample_fraction;
    if !(f > 0.0 && f <= 1.0) {
        return Err(SplitError::SampleFraction(f).into());
    }
    if !(0.0..1.0).contains(&settings.validation_fraction) {
        return Err(TrainError::ValidationFraction(settings.validation_fraction));
    }
    if settings.validation_fraction > 0.0 {
        settings
            .split
            .for_validation(settings.validation_fraction)
            .check()?;
    }
    let mut options = settings.fit_options();
    let mut all = Vec::new();
    let mut reporting = Vec::new();
    for (ei, e) in settings.entries.iter().enumerate() {
        options.curves = settings.curves || e.early_stopping.is_some();
        let mut cands = search::candidates(std::slice::from_ref(e), &options, usize::MAX)?;
        for c in &mut cands {
            c.entry = ei;
        }
        let caps: Vec<_> = cands.iter().map(|c| c.plans[0].capabilities()).collect();
        if caps.windows(2).any(|w| w[0] != w[1]) {
            return Err(TrainError::MixedCapabilities {
                entry: e.name.clone(),
            });
        }
        if let (Some(es), Some(cap)) = (&e.early_stopping, caps.first()) {
            if settings.validation_fraction == 0.0 {
                return Err(TrainError::EarlyStoppingWithoutValidation {
                    entry: e.name.clone(),
                });
            }
            if !cap.iterative {
                return Err(TrainError::EarlyStoppingNotIterative {
                    entry: e.name.clone(),
                    family: e.family.to_string(),
                });
            }
            if (es.metric.is_rating() && !cap.predicts_ratings)
                || (!es.metric.is_rating() && !cap.ranks)
            {
                return Err(TrainError::EarlyStoppingMetric {
                    entry: e.name.clone(),
                    metric: es.metric.name.clone(),
                    family: e.family.to_string(),
                });
            }
        }
        if let Some(c) = cands.first() {
            let caps = c.plans[0].capabilities();
            let can = if settings.select.is_rating() {
                caps.predicts_ratings
            } else {
                caps.ranks
            };
            reporting.push((e, can));
        }
        all.extend(cands);
    }
    let models: Vec<&(&Entry, bool)> = reporting
        .iter()
        .filter(|(e, _)| !e.family.is_baseline())
        .collect();
    if !models.is_empty() && !models.iter().any(|(_, can)| *can) {
        return Err(TrainError::NoEntryReports {
            metric: settings.select.name.clone(),
            entries: models
                .iter()
                .map(|(e, _)| format!("`{}`", e.name))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let runs: usize = settings
        .entries
        .iter()
        .map(|e| e.runs())
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .sum();
    if runs > settings.max_runs {
        return Err(SearchError::TooManyRuns {
            runs,
            limit: settings.max_runs,
        }
        .into());
    }
    Ok(all)
}

/// Which metric an entry's trials are ranked by: the experiment's when the entry can report it,
/// else NDCG@K for a ranking model or RMSE for one that only predicts ratings.
fn entry_select(settings: &PipelineSettings, plan: &dyn FitPlan) -> (SelectMetric, bool) {
    let caps = plan.capabilities();
    let s = &settings.select;
    let can = if s.is_rating() {
        caps.predicts_ratings
    } else {
        caps.ranks
    };
    if can {
        return (s.clone(), true);
    }
    let k = settings.eval.k;
    let name = if caps.ranks {
        format!("ndcg_at_{k}")
    } else {
        "rmse".to_string()
    };
    let fallback = SelectMetric::parse(&name, &[k]).unwrap_or_else(|_| s.clone());
    (fallback, false)
}

/// Runs the pipeline on `data`. With `fixed_test`, `data` is the whole training split and
/// `fixed_test` the test split (both over the same id spaces); no test split is drawn.
pub fn run(
    settings: &PipelineSettings,
    data: &Interactions,
    fixed_test: Option<&Interactions>,
    observer: &mut dyn Observer,
) -> Result<Outcome, TrainError> {
    let candidates = check(settings)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.threads.unwrap_or(0))
        .build()
        .map_err(|_| TrainError::Threads(settings.threads.unwrap_or(0)))?;
    crate::model::als::linalg::blas_single_threaded();
    pool.install(|| run_in_pool(settings, &candidates, data, fixed_test, observer))
}

/// The splits a run fits and evaluates on.
struct Halves {
    sizes: SplitSizes,
    selected_on: Split,
    fit_train: Interactions,
    fit_by_user: Csr,
    select_on: Interactions,
    train: Interactions,
    train_by_user: Csr,
    test: Interactions,
}

fn halves(
    settings: &PipelineSettings,
    data: &Interactions,
    fixed_test: Option<&Interactions>,
) -> Result<Halves, TrainError> {
    let sampled = if settings.sample_fraction < 1.0 {
        sample(data, settings.sample_fraction, settings.sample_seed)?
    } else {
        data.clone()
    };
    let outer = match fixed_test {
        Some(test) => crate::data::split::Split {
            train: sampled.clone(),
            test: test.clone(),
        },
        None => split(&sampled, &settings.split)?,
    };
    let (fit_train, select_on, selected_on) = if settings.validation_fraction > 0.0 {
        let inner = split(
            &outer.train,
            &settings.split.for_validation(settings.validation_fraction),
        )?;
        (inner.train, inner.test, Split::Val)
    } else {
        (outer.train.clone(), outer.test.clone(), Split::Test)
    };
    if fit_train.is_empty() {
        return Err(TrainError::EmptyTraining);
    }
    let sizes = SplitSizes {
        sampled: sampled.len(),
        train: outer.train.len(),
        validation: if selected_on == Split::Val {
            select_on.len()
        } else {
            0
        },
        test: outer.test.len(),
        test_digest: pairs_digest(&outer.test),
    };
    Ok(Halves {
        sizes,
        selected_on,
        fit_by_user: fit_train.by_user(),
        fit_train,
        select_on,
        train_by_user: outer.train.by_user(),
        train: outer.train,
        test: outer.test,
    })
}

/// The first 8 bytes of SHA-256 over the (user, item) index pairs of `x`, in row order, and its
/// id-space sizes.
fn pairs_digest(x: &Interactions) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((x.n_users as u64).to_le_bytes());
    h.update((x.n_items as u64).to_le_bytes());
    for (u, i) in x.user.iter().zip(&x.item) {
        h.update(u.to_le_bytes());
        h.update(i.to_le_bytes());
    }
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().unwrap_or_default())
}

fn run_in_pool(
    settings: &PipelineSettings,
    candidates: &[Candidate],
    data: &Interactions,
    fixed_test: Option<&Interactions>,
    observer: &mut dyn Observer,
) -> Result<Outcome, TrainError> {
    let h = halves(settings, data, fixed_test)?;
    // Implicit feedback: rating errors say nothing, so they are neither reported nor selected on.
    let constant = h
        .train
        .rating
        .first()
        .copied()
        .filter(|&v| h.train.rating.iter().all(|&r| r == v));
    let owned;
    let settings = match constant {
        None => settings,
        Some(value) => {
            let rating_metric = std::iter::once(&settings.select)
                .chain(
                    settings
                        .entries
                        .iter()
                        .filter_map(|e| e.early_stopping.as_ref().map(|s| &s.metric)),
                )
                .find(|m| m.is_rating());
            if let Some(m) = rating_metric {
                return Err(TrainError::NoRatings {
                    metric: m.name.clone(),
                    value,
                });
            }
            owned = PipelineSettings {
                eval: EvalSettings {
                    ratings: false,
                    ..settings.eval
                },
                ..settings.clone()
            };
            &owned
        }
    };
    let shape = DataShape {
        n_users: data.n_users,
        n_items: data.n_items,
        n_ratings: h.fit_train.len().max(h.train.len()),
    };
    // Rules that need the data's size, and memory, for every fit before the first one.
    for c in candidates {
        let entry = &settings.entries[c.entry];
        for p in &c.plans {
            let shape_err = |source| TrainError::Shape {
                entry: entry.name.clone(),
                source,
            };
            p.check_shape(&shape).map_err(shape_err)?;
            check_memory(p.as_ref(), &shape).map_err(shape_err)?;
        }
    }
    observer.started(&settings.entries, candidates, &h.sizes, &shape);
    let mut outcomes = Vec::new();
    for (ei, entry) in settings.entries.iter().enumerate() {
        let cands: Vec<&Candidate> = candidates.iter().filter(|c| c.entry == ei).collect();
        let Some(first) = cands.first() else { continue };
        let (select, ranked) = entry_select(settings, first.plans[0].as_ref());
        let select_key = select.on(h.selected_on);
        let mut trials: Vec<Trial> = Vec::new();
        let mut best: Option<(usize, Box<dyn Recommender>)> = None;
        for c in &cands {
            if observer.cancelled() {
                return Err(TrainError::Cancelled);
            }
            let used = c.plans[0].used_params();
            let as_logged: std::collections::BTreeMap<String, String> = used
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect();
            if let Some(d) = settings
                .done
                .iter()
                .find(|d| d.entry == entry.name && d.params == as_logged)
            {
                tracing::info!(
                    "{} {}: finished in the resumed run, not fitted again",
                    entry.name,
                    c.label()
                );
                trials.push(Trial {
                    point: c.point.clone(),
                    used,
                    metrics: d.metrics.clone(),
                    sd: Vec::new(),
                    per_repeat: Vec::new(),
                    counts: Vec::new(),
                    history: Vec::new(),
                    best_iteration: None,
                    fit_seconds: d.fit_seconds,
                    eval_seconds: 0.0,
                    user_values: None,
                    report: None,
                });
                continue;
            }
            observer.fit_started(entry, c, Role::Trial);
            let mut per_repeat = Vec::new();
            let mut kept_model = None;
            let (mut fit_s, mut eval_s) = (0.0, 0.0);
            let mut history = Vec::new();
            let mut best_iteration = None;
            let mut counts = Vec::new();
            let mut values = None;
            let mut kept_report = None;
            for (r, plan) in c.plans.iter().enumerate() {
                let fitted = fit_watched(
                    settings,
                    entry,
                    c,
                    plan.as_ref(),
                    Role::Trial,
                    &h.fit_train,
                    Some((&h.fit_by_user, &h.select_on, h.selected_on)),
                    observer,
                )?;
                let t0 = Instant::now();
                let report = evaluate_with_history(
                    fitted.model.as_ref(),
                    &h.fit_train,
                    &h.fit_by_user,
                    &h.select_on,
                    &settings.eval,
                )?;
                eval_s += t0.elapsed().as_secs_f64() + fitted.eval_seconds;
                fit_s += fitted.fit_seconds;
                per_repeat.push(report.metrics(h.selected_on));
                if r == 0 {
                    values = Some(std::sync::Arc::new(UserValues::of(&report, &select)));
                    if settings.per_user_trials {
                        kept_report = Some(std::sync::Arc::new(report.clone()));
                    }
                    history = fitted.history;
                    best_iteration = fitted.best_iteration;
                    counts = report.counts();
                    kept_model = Some(fitted.model);
                }
            }
            let (metrics, sd) = mean_sd(&per_repeat);
            let trial = Trial {
                point: c.point.clone(),
                used: c.plans[0].used_params(),
                metrics,
                sd,
                per_repeat: if c.plans.len() > 1 {
                    per_repeat
                } else {
                    Vec::new()
                },
                counts,
                history,
                best_iteration,
                fit_seconds: fit_s / c.plans.len() as f64,
                eval_seconds: eval_s,
                user_values: values,
                report: kept_report,
            };
            observer.trial_finished(entry, c, &trial);
            // Logged: the whole report is not kept through the search.
            let mut trial = trial;
            trial.report = None;
            trials.push(trial);
            // Keep only the best trial's model in memory.
            let ranked_trials: Vec<Ranked> = trials
                .iter()
                .map(|t| {
                    Ranked::new(
                        t.metric(&select_key),
                        tie_break(t, &select, settings.eval.k, h.selected_on),
                    )
                })
                .collect();
            let b = best_index(&ranked_trials, select.direction);
            if b == trials.len() - 1 {
                best = kept_model.map(|m| (b, m));
            }
            // Per-user values only for the two best so far (memory stays flat over a search).
            let second = runner_up(&ranked_trials, b, select.direction);
            for (i, t) in trials.iter_mut().enumerate() {
                if i != b && Some(i) != second {
                    t.user_values = None;
                }
            }
        }
        let ranked_trials: Vec<Ranked> = trials
            .iter()
            .map(|t| {
                Ranked::new(
                    t.metric(&select_key),
                    tie_break(t, &select, settings.eval.k, h.selected_on),
                )
            })
            .collect();
        let b = best_index(&ranked_trials, select.direction);
        let noise = runner_up(&ranked_trials, b, select.direction).and_then(|r| {
            match (&trials[b].user_values, &trials[r].user_values) {
                (Some(x), Some(y)) => noise_check(x, y, &select, r, settings.bootstrap()),
                _ => None,
            }
        });
        for t in &mut trials {
            t.user_values = None;
        }
        let best_model = best.filter(|(i, _)| *i == b).map(|(_, m)| m);
        let collapsed = match &best_model {
            Some(m) => collapse_check(m.as_ref(), &h, settings, &select_key)?,
            None => None,
        };
        let c = cands[b];
        if observer.cancelled() {
            return Err(TrainError::Cancelled);
        }
        // Without a validation split the selected trial is the final model, unless it was
        // finished by an earlier run (resumed) and must be fitted again.
        let refit = h.selected_on == Split::Val || best_model.is_none();
        let (final_model, _history, fit_seconds, final_used) = if refit {
            let plan = match trials[b].best_iteration {
                // Early stopping kept an earlier iteration: the final refit stops there too.
                Some(it) => {
                    let mut config = c.config.clone();
                    config.insert("max_iter".into(), ParamValue::Int(it as i64));
                    crate::model::plan(entry.family, &config, &settings.fit_options()).map_err(
                        |source| TrainError::Shape {
                            entry: entry.name.clone(),
                            source,
                        },
                    )?
                }
                None => crate::model::plan(entry.family, &c.config, &settings.fit_options())
                    .map_err(|source| TrainError::Shape {
                        entry: entry.name.clone(),
                        source,
                    })?,
            };
            observer.fit_started(entry, c, Role::Final);
            let used = plan.used_params();
            let fitted = fit_watched(
                settings,
                entry,
                c,
                plan.as_ref(),
                Role::Final,
                &h.train,
                None,
                observer,
            )?;
            (fitted.model, fitted.history, fitted.fit_seconds, used)
        } else {
            let m = best_model.ok_or(TrainError::NoEntries)?;
            (
                m,
                trials[b].history.clone(),
                trials[b].fit_seconds,
                trials[b].used.clone(),
            )
        };
        let t0 = Instant::now();
        let test = evaluate_with_history(
            final_model.as_ref(),
            &h.train,
            &h.train_by_user,
            &h.test,
            &settings.eval,
        )?;
        let test_ci = test.intervals(settings.bootstrap());
        let outcome = EntryOutcome {
            entry: ei,
            trials,
            best: b,
            select,
            ranked,
            test_ci,
            final_model: final_model.into(),
            final_used,
            test,
            fit_seconds,
            eval_seconds: t0.elapsed().as_secs_f64(),
            collapsed,
            noise,
        };
        observer.final_finished(entry, &outcome);
        outcomes.push(outcome);
    }
    let key = settings.select.on(h.selected_on);
    let ranked: Vec<Ranked> = outcomes
        .iter()
        .map(|o| {
            Ranked::new(
                o.ranked.then(|| o.best_trial().metric(&key)).flatten(),
                None,
            )
        })
        .collect();
    let winner = ranked
        .iter()
        .any(|r| r.value.is_some())
        .then(|| best_index(&ranked, settings.select.direction));
    Ok(Outcome {
        sizes: h.sizes,
        selected_on: h.selected_on,
        entries: outcomes,
        winner,
        train: h.train,
    })
}

/// The second key of a selection: precision at K for ties on the main metric.
fn tie_break(t: &Trial, select: &SelectMetric, k: usize, split: Split) -> Option<f64> {
    let name = format!("precision_at_{k}");
    (select.name != name)
        .then(|| t.metric(&format!("{split}_{name}")))
        .flatten()
}

/// Figures under their keys.
type Figures = Vec<(String, f64)>;

/// Means and standard deviations (n - 1) of each key over repeats.
fn mean_sd(per_repeat: &[Figures]) -> (Figures, Figures) {
    let Some(first) = per_repeat.first() else {
        return (Vec::new(), Vec::new());
    };
    let n = per_repeat.len() as f64;
    let mut mean = Vec::new();
    let mut sd = Vec::new();
    for (key, _) in first {
        let vals: Vec<f64> = per_repeat
            .iter()
            .filter_map(|m| m.iter().find(|(k, _)| k == key).map(|(_, v)| *v))
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        mean.push((key.clone(), m));
        if per_repeat.len() > 1 {
            let var = vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
            sd.push((format!("{key}_sd"), var.sqrt()));
        }
    }
    (mean, sd)
}

/// Validation figure of the model with its latent factors zeroed, when the family has factors
/// and the two agree within 0.1%: `(model, zeroed)`.
fn collapse_check(
    model: &dyn Recommender,
    h: &Halves,
    settings: &PipelineSettings,
    key: &str,
) -> Result<Option<(f64, f64)>, TrainError> {
    let Some(zeroed) = model.without_factors() else {
        return Ok(None);
    };
    let a = evaluate_with_history(
        model,
        &h.fit_train,
        &h.fit_by_user,
        &h.select_on,
        &settings.eval,
    )?
    .get(h.selected_on, key);
    let b = evaluate_with_history(
        zeroed.as_ref(),
        &h.fit_train,
        &h.fit_by_user,
        &h.select_on,
        &settings.eval,
    )?
    .get(h.selected_on, key);
    Ok(match (a, b) {
        (Some(a), Some(b)) if (a - b).abs() <= 1e-3 * a.abs().max(b.abs()).max(1e-12) => {
            Some((a, b))
        }
        _ => None,
    })
}

/// A fit's model and what the watcher recorded.
struct Fitted {
    model: Box<dyn Recommender>,
    history: Vec<IterationRecord>,
    best_iteration: Option<usize>,
    fit_seconds: f64,
    eval_seconds: f64,
}

#[allow(clippy::too_many_arguments)]
fn fit_watched(
    settings: &PipelineSettings,
    entry: &Entry,
    candidate: &Candidate,
    plan: &dyn FitPlan,
    role: Role,
    train: &Interactions,
    validation: Option<(&Csr, &Interactions, Split)>,
    observer: &mut dyn Observer,
) -> Result<Fitted, TrainError> {
    let caps = plan.capabilities();
    // A ranking curve for iterative ranking models (their fits compute no validation RMSE).
    let ranking_curve = (settings.curves && caps.iterative && !caps.predicts_ratings)
        .then(|| format!("ndcg_at_{}", settings.eval.k));
    let mut watch = Watch {
        settings,
        entry,
        role,
        train,
        validation,
        ranking_curve,
        early: if role == Role::Trial {
            entry.early_stopping.clone()
        } else {
            None
        },
        best: None,
        since_best: 0,
        history: Vec::new(),
        spent: 0.0,
        eval_seconds: 0.0,
        observer,
        error: None,
    };
    let t0 = Instant::now();
    let result = plan.fit(train, validation.map(|v| v.1), &mut watch);
    let wall = t0.elapsed().as_secs_f64();
    if let Some(e) = watch.error.take() {
        return Err(e);
    }
    let model = match result {
        Ok(m) => m,
        Err(FitError::Cancelled) => return Err(TrainError::Cancelled),
        Err(source) => {
            return Err(TrainError::Fit {
                entry: entry.name.clone(),
                point: candidate.label(),
                source,
            })
        }
    };
    let last = watch.history.last().map(|h| h.iteration);
    let (model, best_iteration) = match watch.best.take() {
        Some((it, _, m)) if Some(it) != last => (m, Some(it)),
        _ => (model, None),
    };
    Ok(Fitted {
        model,
        history: watch.history,
        best_iteration,
        fit_seconds: (wall - watch.spent).max(0.0),
        eval_seconds: watch.eval_seconds,
    })
}

/// The best iteration so far under early stopping: (iteration, value, model).
type Kept = Option<(usize, f64, Box<dyn Recommender>)>;

/// Watches a fit: computes the validation curves, stops early, forwards iterations.
struct Watch<'a> {
    settings: &'a PipelineSettings,
    entry: &'a Entry,
    role: Role,
    train: &'a Interactions,
    validation: Option<(&'a Csr, &'a Interactions, Split)>,
    ranking_curve: Option<String>,
    early: Option<crate::pipeline::search::EarlyStopping>,
    best: Kept,
    since_best: usize,
    history: Vec<IterationRecord>,
    /// Seconds spent here, not fitting (curves, tracking).
    spent: f64,
    eval_seconds: f64,
    observer: &'a mut dyn Observer,
    error: Option<TrainError>,
}

impl FitObserver for Watch<'_> {
    fn iteration(
        &mut self,
        report: &IterationReport,
        current: &dyn Fn() -> Box<dyn Recommender>,
    ) -> Flow {
        let t0 = Instant::now();
        let mut metrics = Vec::new();
        if let Some((by_user, val, split)) = self.validation {
            if let Some(v) = report.val_rmse {
                metrics.push((format!("{split}_rmse"), v));
            }
            let wanted: Vec<String> = self
                .ranking_curve
                .iter()
                .cloned()
                .chain(
                    self.early
                        .iter()
                        .filter(|e| !e.metric.is_rating())
                        .map(|e| e.metric.name.clone()),
                )
                .collect();
            let mut snapshot = None;
            if !wanted.is_empty() {
                let t = Instant::now();
                let model = current();
                match evaluate_with_history(
                    model.as_ref(),
                    self.train,
                    by_user,
                    val,
                    &self.settings.eval,
                ) {
                    Ok(r) => {
                        for name in &wanted {
                            let key = format!("{split}_{name}");
                            if let Some(v) = r.get(split, &key) {
                                if !metrics.iter().any(|(k, _)| k == &key) {
                                    metrics.push((key, v));
                                }
                            }
                        }
                    }
                    Err(e) => {
                        self.error = Some(e.into());
                        return Flow::Stop;
                    }
                }
                self.eval_seconds += t.elapsed().as_secs_f64();
                snapshot = Some(model);
            }
            if let Some(es) = self.early.clone() {
                let key = es.metric.on(split);
                if let Some(v) = metrics.iter().find(|(k, _)| *k == key).map(|(_, v)| *v) {
                    let better = match &self.best {
                        None => true,
                        Some((_, b, _)) => es.metric.direction.better(v, *b),
                    };
                    if better {
                        let m = snapshot.take().unwrap_or_else(current);
                        self.best = Some((report.iteration, v, m));
                        self.since_best = 0;
                    } else {
                        self.since_best += 1;
                    }
                }
            }
        }
        let step = Step {
            report,
            metrics: &metrics,
        };
        self.observer.iteration(self.entry, self.role, &step);
        self.history.push(IterationRecord {
            iteration: report.iteration,
            train_loss: report.train_loss,
            seconds: report.seconds,
            metrics,
        });
        self.spent += t0.elapsed().as_secs_f64();
        let patience = self.early.as_ref().map_or(usize::MAX, |e| e.patience);
        if self.since_best >= patience || self.observer.cancelled() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn cancelled(&self) -> bool {
        self.observer.cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::baselines::BiasModel;
    use crate::model::family::{Capabilities, Estimate, FamilyName};
    use crate::pipeline::observer::Silent;
    use crate::pipeline::search::{EarlyStopping, Search};

    /// Reports a scripted validation RMSE per iteration; the model after iteration `i` predicts
    /// `i` everywhere, so the kept iteration can be read back from the model.
    struct Scripted(Vec<f64>);

    impl FitPlan for Scripted {
        fn family(&self) -> FamilyName {
            FamilyName::Als
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                predicts_ratings: true,
                ranks: true,
                iterative: true,
            }
        }
        fn estimate(&self, _: &DataShape) -> Estimate {
            Estimate {
                bytes: 0,
                what: String::new(),
                flop: 0.0,
            }
        }
        fn used_params(&self) -> Config {
            Config::new()
        }
        fn fit(
            &self,
            train: &Interactions,
            _: Option<&Interactions>,
            observer: &mut dyn FitObserver,
        ) -> Result<Box<dyn Recommender>, FitError> {
            let model = |i: usize| -> Box<dyn Recommender> {
                Box::new(BiasModel::new(
                    FamilyName::Biases,
                    i as f32,
                    vec![0.0; train.n_users],
                    vec![0.0; train.n_items],
                ))
            };
            let mut last = 0;
            for (i, v) in self.0.iter().enumerate() {
                last = i + 1;
                let report = IterationReport {
                    iteration: last,
                    train_loss: Some(1.0),
                    val_rmse: Some(*v),
                    seconds: 0.0,
                };
                if observer.iteration(&report, &|| model(last)) == Flow::Stop {
                    break;
                }
            }
            Ok(model(last))
        }
    }

    fn settings(early: Option<EarlyStopping>) -> (PipelineSettings, Entry) {
        let entry = Entry {
            name: "e".into(),
            family: FamilyName::Als,
            fixed: Config::new(),
            search: Search::default(),
            repeats: 1,
            early_stopping: early,
        };
        let s = PipelineSettings::for_tests(vec![entry.clone()], "rmse");
        (s, entry)
    }

    fn watched(early: Option<EarlyStopping>, curve: Vec<f64>) -> Fitted {
        let (s, entry) = settings(early);
        let cand = Candidate {
            entry: 0,
            index: 0,
            config: Config::new(),
            point: Config::new(),
            plans: Vec::new(),
        };
        let train = Interactions::from_rows(&[(0, 0, 4.0), (1, 1, 3.0)], 2, 2);
        let by_user = train.by_user();
        fit_watched(
            &s,
            &entry,
            &cand,
            &Scripted(curve),
            Role::Trial,
            &train,
            Some((&by_user, &train, Split::Val)),
            &mut Silent,
        )
        .unwrap()
    }

    #[test]
    fn early_stopping_keeps_the_best_iteration_and_stops_after_the_patience() {
        let es = EarlyStopping {
            metric: SelectMetric::parse("rmse", &[10]).unwrap(),
            patience: 2,
        };
        let f = watched(Some(es), vec![1.0, 0.8, 0.9, 0.95, 0.7, 0.6]);
        // Best at 2; iterations 3 and 4 do not improve: stopped after 4.
        assert_eq!(f.history.len(), 4);
        assert_eq!(f.best_iteration, Some(2));
        assert_eq!(f.model.predict(0, 0), Some(2.0));
    }

    /// An observer as slow as logging each iteration to a distant tracking server.
    struct SlowLogging(std::time::Duration);

    impl crate::pipeline::observer::Observer for SlowLogging {
        fn iteration(&mut self, _: &Entry, _: Role, _: &crate::pipeline::observer::Step<'_>) {
            std::thread::sleep(self.0);
        }
    }

    #[test]
    fn fit_seconds_leave_out_the_time_observers_spend_logging() {
        let (s, entry) = settings(None);
        let cand = Candidate {
            entry: 0,
            index: 0,
            config: Config::new(),
            point: Config::new(),
            plans: Vec::new(),
        };
        let train = Interactions::from_rows(&[(0, 0, 4.0), (1, 1, 3.0)], 2, 2);
        let by_user = train.by_user();
        let t0 = Instant::now();
        let f = fit_watched(
            &s,
            &entry,
            &cand,
            &Scripted(vec![1.0; 5]),
            Role::Trial,
            &train,
            Some((&by_user, &train, Split::Val)),
            &mut SlowLogging(std::time::Duration::from_millis(60)),
        )
        .unwrap();
        let wall = t0.elapsed().as_secs_f64();
        // Five iterations of 60 ms logging: the wall clock has them, fit_seconds must not.
        assert!(wall >= 0.3, "{wall}");
        assert!(
            f.fit_seconds < 0.1,
            "fit_seconds {} of {wall} s",
            f.fit_seconds
        );
    }

    #[test]
    fn without_early_stopping_the_last_iteration_is_kept() {
        let f = watched(None, vec![1.0, 0.8, 0.9]);
        assert_eq!(f.history.len(), 3);
        assert_eq!(f.best_iteration, None);
        assert_eq!(f.model.predict(0, 0), Some(3.0));
        assert_eq!(f.history[1].metrics, vec![("val_rmse".to_string(), 0.8)]);
    }

    #[test]
    fn repeats_are_summarized_by_mean_and_sample_sd() {
        let per = vec![
            vec![("val_rmse".to_string(), 1.0)],
            vec![("val_rmse".to_string(), 3.0)],
        ];
        let (mean, sd) = mean_sd(&per);
        assert_eq!(mean, vec![("val_rmse".to_string(), 2.0)]);
        assert_eq!(sd.len(), 1);
        assert_eq!(sd[0].0, "val_rmse_sd");
        assert!((sd[0].1 - 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn noise_check_pairs_shared_users_and_tells_a_real_gap_from_noise() {
        let select = SelectMetric::parse("ndcg_at_10", &[10]).unwrap();
        let users: Vec<(u32, f64)> = (0..300u32).map(|u| (u, f64::from(u % 10) / 10.0)).collect();
        // Per-user noise around the same mean: no real difference.
        let noisy: Vec<(u32, f64)> = users
            .iter()
            .map(|&(u, v)| (u, v + if u % 2 == 0 { 0.05 } else { -0.05 }))
            .collect();
        let a = UserValues {
            ranking: users.clone(),
            errors: Vec::new(),
        };
        let b = UserValues {
            ranking: noisy,
            errors: Vec::new(),
        };
        let n = noise_check(&a, &b, &select, 1, Bootstrap::default()).unwrap();
        assert_eq!(n.users, 300);
        assert!(n.within_noise(), "{n:?}");
        // Every user 0.05 better, except the users the other never saw (not paired).
        let better = UserValues {
            ranking: users.iter().map(|&(u, v)| (u, v + 0.05)).collect(),
            errors: Vec::new(),
        };
        let fewer = UserValues {
            ranking: users[..200].to_vec(),
            errors: Vec::new(),
        };
        let n = noise_check(&better, &fewer, &select, 1, Bootstrap::default()).unwrap();
        assert_eq!(n.users, 200);
        assert!((n.diff - 0.05).abs() < 1e-12 && !n.within_noise(), "{n:?}");
        // RMSE: the same errors on the same pairs are within noise.
        let rmse = SelectMetric::parse("rmse", &[10]).unwrap();
        let e = UserValues {
            ranking: Vec::new(),
            errors: (0..100u32).map(|u| (u, f64::from(u % 4), 2.0)).collect(),
        };
        let n = noise_check(&e, &e, &rmse, 1, Bootstrap::default()).unwrap();
        assert_eq!((n.diff, n.ci.low, n.ci.high), (0.0, 0.0, 0.0));
    }
}
